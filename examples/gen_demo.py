#!/usr/bin/env python3
"""Generate examples/demo/: a small synthetic Entra ID log bundle for `entrawatch replay examples/demo`.

Python 3.11 stdlib only, deterministic (random.Random(42), no wall clock): re-running gives
byte-identical files. All names, ids and IPs are invented (IPs from the RFC 5737 documentation ranges).
"""
import base64, csv, json, random, shutil, uuid  # noqa: E401
from datetime import datetime, timedelta, timezone
from pathlib import Path

rng = random.Random(42)
OUT = Path(__file__).resolve().parent / "demo"
UTC = timezone.utc
END = datetime(2026, 11, 20, tzinfo=UTC)
START = END - timedelta(days=7)
TICK = 10**7  # 100 ns ticks per second, as Entra's 7 fractional digits

PARTNER = "33333333-cccc-4ccc-8ccc-333333333333"
WORKSPACE = "9c4d2e7a-5b1f-4e38-a6d0-7f2b8c1e4a95"
GLOBAL_ADMIN = "62e90394-69f5-4237-9190-012177145e10"
DIRECTORY_READERS = "88d8e3e3-8f55-4a1e-953a-9b9898b8876b"

CITIES = {  # city, state, country, lat, lon, UTC offset in November
    "Seattle": ("Seattle", "Washington", "US", 47.6062, -122.3321, -8),
    "Amsterdam": ("Amsterdam", "Noord-Holland", "NL", 52.3676, 4.9041, 1),
    "London": ("London", "England", "GB", 51.5072, -0.1276, 0),
    "Lagos": ("Lagos", "Lagos", "NG", 6.5244, 3.3792, 1),
    "Bucharest": ("Bucharest", "Bucuresti", "RO", 44.4268, 26.1025, 2),
    "Dublin": ("Dublin", "Dublin", "IE", 53.3498, -6.2603, 0),
}

# app display name, app id, resource display name, resource id
APPS = {
    "sharepoint": ("Office 365 SharePoint Online", "00000003-0000-0ff1-ce00-000000000000",
                   "Office 365 SharePoint Online", "00000003-0000-0ff1-ce00-000000000000"),
    "owa": ("One Outlook Web", "9199bf20-a13f-4107-85dc-02114787ef48",
            "Office 365 Exchange Online", "00000002-0000-0ff1-ce00-000000000000"),
    "officehome": ("OfficeHome", "4765445b-32c6-49b0-83e6-1d93765276ca",
                   "OfficeHome", "4765445b-32c6-49b0-83e6-1d93765276ca"),
    "teams": ("Microsoft Teams", "1fec8e78-bce4-4aaf-ab1b-5451cc387264",
              "Microsoft Teams Services", "cc15fd57-2c6c-4117-a88c-83b1d56b4bbe"),
    "office": ("Microsoft Office", "d3590ed6-52b3-4102-aeff-aad2292ab01c",
               "Microsoft Graph", "00000003-0000-0000-c000-000000000000"),
    "portal": ("Azure Portal", "c44b4083-3bb0-49c1-b47d-974e53cbdf3c",
               "Windows Azure Service Management API", "797f4846-ba00-4fd7-ba43-dac1f8f63013"),
    "mggraph": ("Microsoft Graph Command Line Tools", "14d82eec-204b-4c2f-b7e8-296a70dab67e",
                "Microsoft Graph", "00000003-0000-0000-c000-000000000000"),
}
USER_APPS_I, USER_APPS_N = ["sharepoint", "owa", "officehome", "teams"], ["office", "teams"]
ADMIN_APPS = ["portal", "mggraph"]
UA_EDGE = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
           "Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0")
UA_CHROME = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
             "Chrome/131.0.0.0 Safari/537.36")
UA_NONINT = {"office": "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.18129; Pro)",
             "teams": "Microsoft Teams/24295.605.3225.8804 (Windows NT 10.0)",
             "portal": UA_EDGE, "mggraph": "Mozilla/5.0 (Windows NT 10.0; Microsoft Windows 10.0.22631; "
             "en-US) PowerShell/7.4.6"}
FAIL = {50126: "Error validating credentials due to invalid username or password.",
        50140: "This error occurred due to 'Keep me signed in' interrupt when the user was signing-in."}


def guid():
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def hexs(n):
    return "%0*x" % (n, rng.getrandbits(4 * n))


def ticks(dt):
    """Event time as 100 ns ticks since the epoch, with random sub-second digits."""
    return int(dt.timestamp()) * TICK + rng.randrange(TICK)


def dt_of(t):
    return datetime.fromtimestamp(t // TICK, UTC)


def iso7(t, suffix="Z"):  # 2026-11-17T02:14:37.3324357Z (or +00:00)
    return dt_of(t).strftime("%Y-%m-%dT%H:%M:%S") + ".%07d" % (t % TICK) + suffix


def isoz(t):
    return dt_of(t).strftime("%Y-%m-%dT%H:%M:%SZ")


def us_clock(t, sep, frac):
    """US-locale times: "11/14/2025 1:48:53 AM" (Event Hub risk records), "4/28/2021, 2:08:45.221 PM" (LA CSV)."""
    d = dt_of(t)
    ms = ".%03d" % ((t % TICK) // 10**4) if frac else ""
    return f"{d.month}/{d.day}/{d.year}{sep} {(d.hour % 12) or 12}:{d:%M:%S}{ms} {'AM' if d.hour < 12 else 'PM'}"


# ------------------------------------------------------------------------------------------- world
def make_users(names, domain, it, ips):
    users = []
    for i, name in enumerate(names):
        first, last = name.split(" ", 1)
        users.append({
            "name": name, "id": guid(), "admin": i == 0,
            "upn": f"{first}.{last.replace(' ', '')}@{domain}".lower(),
            "device": {"deviceId": guid(), "displayName": f"{it}-LT-{rng.randrange(100, 999)}",
                       "operatingSystem": "Windows10", "browser": "Edge 131.0.0"},
            "ip": rng.choice(ips)})
    return users


TENANTS = {
    "contoso": {"id": "11111111-aaaa-4aaa-8aaa-111111111111", "name": "Contoso", "domain": "contoso.com",
                "city": "Seattle", "shape": "Event Hub NDJSON",
                "ips": ["203.0.113.10", "203.0.113.11", "203.0.113.12"],
                "names": ["Megan Bowen", "Adele Vance", "Alex Wilber", "Diego Siciliani", "Isaiah Langer",
                          "Johanna Lorenz", "Lee Gu", "Lidia Holloway"]},
    "fabrikam": {"id": "22222222-bbbb-4bbb-8bbb-222222222222", "name": "Fabrikam", "domain": "fabrikam.com",
                 "city": "Amsterdam", "shape": "Graph beta pages",
                 "ips": ["198.51.100.20", "198.51.100.21", "198.51.100.22"],
                 "names": ["Sanne de Vries", "Daan Jansen", "Emma Bakker", "Lars Visser", "Sophie Smit",
                           "Thijs Meijer", "Julia de Boer", "Ruben Mulder"]},
    "tailspin": {"id": "44444444-dddd-4ddd-8ddd-444444444444", "name": "Tailspin", "domain": "tailspintoys.com",
                 "city": "London", "shape": "Log Analytics CSV",
                 "ips": ["192.0.2.30", "192.0.2.31", "192.0.2.32"],
                 "names": ["Oliver Hughes", "Amelia Clarke", "Harry Patel", "Isla Turner", "George Evans",
                           "Ava Wright", "Jack Robinson", "Mia Walker"]},
}
for key, ten in TENANTS.items():
    ten["users"] = make_users(ten["names"], ten["domain"], key[:4].upper(), ten["ips"])
# Four Contoso shared/dormant accounts that never sign in; only the password spray touches them.
DORMANT = make_users(["Reception Desk", "Scan Station", "Finance Shared", "Training Room"],
                     "contoso.com", "CONT", ["203.0.113.10"])
TECH = {"name": "Northwind CSP Technician", "id": "5f0c2a9e-8b7d-4c3a-9e1f-2b3c4d5e6f70", "admin": True,
        "upn": "user_5f0c2a9e8b7d4c3a9e1f2b3c4d5e6f70@northwindcsp.onmicrosoft.com",
        "device": {"deviceId": guid(), "displayName": "NWCSP-WS-017", "operatingSystem": "Windows10",
                   "browser": "Edge 131.0.0"}, "ip": "198.51.100.200"}
USER = {ten["users"][i]["name"]: ten["users"][i] for ten in TENANTS.values() for i in range(8)}

SIGNINS = []  # neutral sign-in dicts, rendered per tenant shape later


def sign_in(tenant, user, t, interactive, app, auth="mfa", err=0, ip=None, city=None, device="managed",
            home=None, cross="none"):
    s = {"tenant": tenant, "user": user, "t": t, "interactive": interactive, "app": app, "auth": auth,
         "err": err, "ip": ip or user["ip"], "city": city or TENANTS[tenant]["city"], "id": guid(),
         "corr": guid(), "device": user["device"] if device == "managed" else None,
         "home": home or TENANTS[tenant]["id"], "cross": cross, "ms": rng.randrange(60, 400)}
    SIGNINS.append(s)
    return s


def auth_steps(s):
    """authenticationDetails for the neutral sign-in (without the EH/LA Status/RequestSequence extras)."""
    t, kind = s["t"], s["auth"]
    pw = {"authenticationStepDateTime": t, "authenticationMethod": "Password",
          "authenticationMethodDetail": "Password in the cloud", "succeeded": True,
          "authenticationStepResultDetail": "Correct password",
          "authenticationStepRequirement": "Primary authentication"}
    if kind == "prev":
        return [{"authenticationStepDateTime": t, "authenticationMethod": "Previously satisfied",
                 "succeeded": True,
                 "authenticationStepResultDetail": "First factor requirement satisfied by claim in the token",
                 "authenticationStepRequirement": "Primary authentication"}]
    if kind == "pwfail":
        return [dict(pw, succeeded=False, authenticationStepResultDetail="Invalid username or password or "
                     "Invalid on-premise username or password.")]
    if kind == "sf":
        return [pw]
    method = "FIDO2 security key" if kind == "fido" else "Mobile app notification"
    return [pw, {"authenticationStepDateTime": t + (9 + t % 11) * TICK + t % 7919 * 997, "authenticationMethod": method,
                 "succeeded": True, "authenticationStepResultDetail": "MFA successfully completed",
                 "authenticationStepRequirement": "MFA"}]


def requirement(s):
    return "multiFactorAuthentication" if s["auth"] in ("mfa", "fido") else "singleFactorAuthentication"


# ---------------------------------------------------------------------------------- normal activity
def normal_activity():
    for key, ten in TENANTS.items():
        off = CITIES[ten["city"]][5]
        for u in ten["users"]:
            for day in range(-1, 8):
                local = (START + timedelta(days=day)).replace(tzinfo=None)
                workday = local.weekday() < 5
                n_int = rng.randint(1, 3 if key == "tailspin" else 4) if workday else rng.choice([0, 0, 0, 1])
                for _ in range(n_int):
                    when = local + timedelta(seconds=rng.randrange(8 * 3600, 17 * 3600 + 1800))
                    utc = (when - timedelta(hours=off)).replace(tzinfo=UTC)
                    if not START <= utc < END - timedelta(hours=1):
                        continue
                    t = ticks(utc)
                    apps = ADMIN_APPS if u["admin"] else USER_APPS_I
                    app = rng.choice(apps)
                    roll = rng.random()
                    if roll < 0.05:  # a mistyped password just before the real sign-in
                        sign_in(key, u, t - rng.randrange(30 * TICK, 90 * TICK), True, app, "pwfail", 50126)
                    elif roll < 0.11:  # 'Keep me signed in' interrupt, then the sign-in completes
                        sign_in(key, u, t - rng.randrange(5 * TICK, 20 * TICK), True, app,
                                "fido" if u["admin"] else "mfa", 50140)
                    ip, dev = u["ip"], "managed"
                    if not u["admin"] and rng.random() < 0.06:  # now and then from a personal laptop at home
                        ip, dev = ten["ips"][0].rsplit(".", 1)[0] + f".{rng.randrange(100, 190)}", None
                    sign_in(key, u, t, True, app, "fido" if u["admin"] else "mfa", ip=ip, device=dev)
                    if key == "tailspin":  # the CSV export holds interactive sign-ins only
                        continue
                    for _ in range(rng.choice([1, 1, 2]) if workday else 1):  # token refreshes afterwards
                        tn = t + rng.randrange(20 * 60 * TICK, 4 * 3600 * TICK)
                        if tn < ticks(END - timedelta(minutes=5)):
                            napp = rng.choice(ADMIN_APPS if u["admin"] else USER_APPS_N)
                            sign_in(key, u, tn, False, napp, "prev", ip=ip, device=dev)


# ---------------------------------------------------------------------------------- injected stories
STORIES = []


def story(when, tenant, who, what, detector):
    STORIES.append((when, tenant, who, what, detector))


def inject_stories():
    at = lambda s: ticks(datetime.fromisoformat(s).replace(tzinfo=UTC))  # noqa: E731
    megan = USER["Megan Bowen"]
    s = sign_in("contoso", megan, at("2026-11-17T02:14:37"), True, "portal", "sf", ip="192.0.2.66",
                city="Lagos", device=None)
    story(isoz(s["t"]), "Contoso", megan["upn"], "Global Administrator, password only, from 192.0.2.66 "
          "(Lagos NG), no device id", "mfa-not-satisfied / high")
    lars = USER["Lars Visser"]
    for ts in ("2026-11-18T09:05:12", "2026-11-18T09:48:40"):
        sign_in("fabrikam", lars, at(ts), True, "owa", "sf")
    story("2026-11-18T09:05:12Z", "Fabrikam", lars["upn"], "two single-factor interactive successes "
          "43 min apart", "mfa-not-satisfied / medium (one alert, count 2)")
    for tenant, ts, app, auth in (("contoso", "2026-11-19T14:02:09", "portal", "fido"),
                                  ("fabrikam", "2026-11-19T14:19:51", "mggraph", "fido"),
                                  ("tailspin", "2026-11-19T14:38:27", "portal", "sf")):
        sign_in(tenant, TECH, at(ts), True, app, auth, city="Dublin", home=PARTNER, cross="serviceProvider")
    story("2026-11-19T14:02:09Z", "Contoso, Fabrikam, Tailspin", TECH["upn"], "partner technician "
          "(serviceProvider, 198.51.100.200) in 3 customers within 37 min; Tailspin one password only",
          "mfa-not-satisfied / high, Tailspin only (see note 1)")
    story("2026-11-18T22:47:10Z", "Fabrikam", USER["Emma Bakker"]["upn"], "Graph riskyUsers: riskLevel "
          "high, riskState atRisk", "risky-user / high")
    story("2026-11-17T12:41:03Z", "Contoso", USER["Alex Wilber"]["upn"], "UserRiskEvents leakedCredentials, "
          "offline, medium, atRisk; lastUpdated 30 h after activity", "risky-user / medium")
    story("2026-11-16T10:12:44Z", "Fabrikam", USER["Thijs Meijer"]["upn"], "riskyUsers riskState "
          "remediated (riskLevel medium)", "none (must not alert)")
    victims = TENANTS["contoso"]["users"] + DORMANT
    base = at("2026-11-15T03:10:05")
    for i, v in enumerate(victims):
        sign_in("contoso", v, base + i * 70 * TICK + rng.randrange(40 * TICK), True, "officehome", "pwfail",
                50126, ip="203.0.113.99", city="Bucharest", device=None)
    story("2026-11-15T03:10:05Z", "Contoso", "12 distinct users", "password spray: 203.0.113.99 fails "
          "(50126) against 12 users in 14 min", "password-spray / medium (see note 2)")


# ------------------------------------------------------------------------------------------ renderers
def loc(s, altitude):
    c = CITIES[s["city"]]
    geo = {"latitude": c[3], "longitude": c[4]}
    if altitude:
        geo = {"altitude": None, **geo}
    return {"city": c[0], "state": c[1], "countryOrRegion": c[2], "geoCoordinates": geo}


def device(s, graph):
    d = dict(s["device"]) if s["device"] else {"deviceId": "", "operatingSystem": "Windows10",
                                                 "browser": "Chrome 131.0.0"}
    if not graph:  # Event Hub records seldom carry the device display name
        d.pop("displayName", None)
    if s["device"]:
        d.update(isCompliant=True, isManaged=True, trustType="Azure AD joined")
    elif graph:
        d.update(displayName="", isCompliant=False, isManaged=False, trustType="")
    return d


def ca_policies(s):
    if not s["interactive"]:  # token refreshes: the demo leaves CA detail out to stay small
        return []
    result = "success" if s["auth"] in ("mfa", "fido") and s["err"] == 0 else "notApplied"
    return [{"id": "a1f4c3d2-7b6e-4d5c-9e8f-0a1b2c3d4e5f", "displayName": "Require MFA for all users",
             "enforcedGrantControls": ["Mfa"], "enforcedSessionControls": [], "result": result}]


def ua(s):
    if not s["interactive"]:
        return UA_NONINT[s["app"]]
    return UA_CHROME if s["device"] is None else UA_EDGE


def signin_props(s, graph):
    """Graph-beta-like properties shared by Event Hub records and Graph pages."""
    app, app_id, res, res_id = APPS[s["app"]]
    u, tid = s["user"], TENANTS[s["tenant"]]["id"]
    fmt = isoz if graph else (lambda t: iso7(t, "+00:00"))
    steps = [dict(st, authenticationStepDateTime=fmt(st["authenticationStepDateTime"])) for st in auth_steps(s)]
    if not graph:
        for st in steps:  # Event Hub: no method detail; the first step carries the sequence extras
            st.pop("authenticationMethodDetail", None)
        steps[0].update(StatusSequence=0, RequestSequence=0)
    status = {"errorCode": s["err"]}
    if s["err"]:
        status["failureReason"] = FAIL[s["err"]]
    elif graph:
        status["failureReason"] = "Other."
    p = {"id": s["id"], "createdDateTime": fmt(s["t"]), "userDisplayName": u["name"],
         "userPrincipalName": u["upn"], "userId": u["id"], "appId": app_id, "appDisplayName": app,
         "ipAddress": s["ip"], "status": status,
         "clientAppUsed": "Browser" if s["interactive"] else "Mobile Apps and Desktop clients",
         "userAgent": ua(s), "deviceDetail": device(s, graph), "location": loc(s, graph),
         "correlationId": s["corr"],
         "conditionalAccessStatus": "success" if s["auth"] in ("mfa", "fido") and not s["err"] else "notApplied",
         "appliedConditionalAccessPolicies": ca_policies(s), "originalRequestId": s["id"],
         "isInteractive": s["interactive"], "processingTimeInMilliseconds": s["ms"],
         "riskDetail": "none", "riskLevelAggregated": "none", "riskLevelDuringSignIn": "none",
         "riskState": "none", "riskEventTypes_v2": [], "resourceDisplayName": res, "resourceId": res_id,
         "resourceTenantId": tid, "homeTenantId": s["home"], "tokenIssuerName": "", "tokenIssuerType": "AzureAD",
         "authenticationDetails": steps, "authenticationRequirement": requirement(s),
         "userType": "member" if graph else "Member", "crossTenantAccessType": s["cross"]}
    if graph:
        p["signInEventTypes"] = ["interactiveUser" if s["interactive"] else "nonInteractiveUser"]
    return p


def eh_envelope_record(tid, t, category, op, props, **top):
    return {"time": iso7(t), "resourceId": f"/tenants/{tid}/providers/Microsoft.aadiam", "operationName": op,
            "operationVersion": "1.0", "category": category, "tenantId": tid, **top, "properties": props}


def eh_signin(s):
    tid = TENANTS[s["tenant"]]["id"]
    top = {"resultType": str(s["err"]), "resultSignature": "None"}
    if s["err"]:
        top["resultDescription"] = FAIL[s["err"]]
    top.update(durationMs=0, callerIpAddress=s["ip"], correlationId=s["corr"], identity=s["user"]["name"],
               Level=4, location=CITIES[s["city"]][2])
    cat = "SignInLogs" if s["interactive"] else "NonInteractiveUserSignInLogs"
    return eh_envelope_record(tid, s["t"], cat, "Sign-in activity", signin_props(s, False), **top)


def audit_props(t, actor, target, activity, graph):
    corr = guid()
    cat, op, mods = {
        "Update user": ("UserManagement", "Update", [
            {"displayName": "JobTitle", "oldValue": '["Analyst"]', "newValue": '["Senior Analyst"]'},
            {"displayName": "Included Updated Properties", "oldValue": None, "newValue": '"JobTitle"'}]),
        "Add member to group": ("GroupManagement", "Assign", [
            {"displayName": "Group.DisplayName", "oldValue": None, "newValue": '"Project Falcon"'}]),
        "Reset user password": ("UserManagement", "Reset", []),
    }[activity]
    rand5 = "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") for _ in range(5))
    p = {"id": f"Directory_{corr}_{rand5}_{rng.randrange(10**8, 10**9)}", "category": cat,
         "correlationId": corr, "result": "success", "resultReason": "", "activityDisplayName": activity,
         "activityDateTime": iso7(t) if graph else iso7(t, "+00:00"), "loggedByService": "Core Directory",
         "operationType": op,
         "initiatedBy": {"user": {"id": actor["id"], "displayName": actor["name"],
                                  "userPrincipalName": actor["upn"], "ipAddress": actor["ip"]}},
         "targetResources": [{"id": target["id"], "displayName": target["name"], "type": "User",
                              "userPrincipalName": target["upn"], "modifiedProperties": mods}],
         "additionalDetails": [{"key": "User-Agent", "value": UA_EDGE}]}
    if graph:
        p["initiatedBy"]["app"] = None
    return p


# --------------------------------------------------------------------------------------------- writers
COUNTS = {}
count = lambda shape, kind, n=1: COUNTS.__setitem__((shape, kind), COUNTS.get((shape, kind), 0) + n)  # noqa: E731


def dump(path, obj):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, ensure_ascii=False, separators=(",", ":")), encoding="utf-8")


def write_contoso():
    tid, ten = TENANTS["contoso"]["id"], TENANTS["contoso"]
    recs = [eh_signin(s) for s in SIGNINS if s["tenant"] == "contoso"]
    for r in recs:
        count("Event Hub", r["category"])
    megan = USER["Megan Bowen"]
    for day, activity, target in (
            (0, "Update user", "Lee Gu"), (3, "Add member to group", "Johanna Lorenz"),
            (3, "Reset user password", "Diego Siciliani"), (4, "Update user", "Lidia Holloway"),
            (5, "Add member to group", "Isaiah Langer"), (6, "Reset user password", "Adele Vance")):
        t = ticks(START + timedelta(days=day, hours=18, minutes=rng.randrange(0, 300)))
        p = audit_props(t, megan, USER[target], activity, False)
        p.update(tenantId=tid, operationName=activity, identity=megan["name"], tenantGeo="NA")
        recs.append(eh_envelope_record(tid, t, "AuditLogs", activity, p, resultSignature="None", durationMs=0,
                                       callerIpAddress=megan["ip"], correlationId=p["correlationId"],
                                       identity=megan["name"], Level=4))
        count("Event Hub", "AuditLogs")
    alex = USER["Alex Wilber"]
    act = ticks(datetime(2026, 11, 16, 6, 41, 3, tzinfo=UTC))
    upd = act + 30 * 3600 * TICK
    rid = hexs(64)
    p = {"id": rid, "requestId": "", "correlationId": "", "riskType": "leakedCredentials",
         "riskEventType": "leakedCredentials", "riskState": "atRisk", "riskLevel": "medium", "riskDetail": "none",
         "source": "IdentityProtection", "detectionTimingType": "offline", "activity": "user",
         "tokenIssuerType": "AzureAD", "ipAddress": "", "location": {}, "activityDateTime": iso7(act),
         "detectedDateTime": iso7(upd), "lastUpdatedDateTime": iso7(upd), "userId": alex["id"],
         "userDisplayName": alex["name"], "userPrincipalName": alex["upn"],
         "additionalInfo": json.dumps([{"Key": "alertUrl", "Value": None}]),
         "homeTenantId": tid, "resourceTenantId": tid, "userType": "Member", "crossTenantAccessType": "none"}
    rec = eh_envelope_record(tid, upd, "UserRiskEvents", "User Risk Detection", p, resultSignature="None",
                             durationMs=0, callerIpAddress="", correlationId=rid, identity=alex["name"], Level=4)
    rec["time"] = us_clock(upd, "", False)  # risk categories carry US-locale times in the wild
    recs.append(rec)
    count("Event Hub", "UserRiskEvents")
    for i in range(3):  # provisioning: a category entrawatch must skip
        t = ticks(START + timedelta(days=2 + i, hours=4, minutes=rng.randrange(60)))
        u = ten["users"][3 + i]
        p = {"id": guid(), "activityDateTime": iso7(t, "+00:00"), "jobId": "scim.7c1f2b3a" + hexs(24),
             "cycleId": guid(), "changeId": guid(), "action": "Update", "provisioningAction": "update",
             "provisioningStatusInfo": {"status": "success"},
             "sourceSystem": {"displayName": "Azure Active Directory"},
             "targetSystem": {"displayName": "ServiceNow"},
             "sourceIdentity": {"id": u["id"], "displayName": u["name"], "identityType": "User"}}
        recs.append(eh_envelope_record(tid, t, "ProvisioningLogs", "Provisioning activity", p,
                                       resultType="Success", resultSignature="None", durationMs=0,
                                       correlationId=p["changeId"], identity="", Level=4))
        count("Event Hub", "ProvisioningLogs (skipped)")
    # Azure Monitor batches per category: envelopes of <= 50 records, one capture file per UTC day.
    for r in recs:
        r["_t"] = r["time"] if r["category"] != "UserRiskEvents" else iso7(upd)
    by_day = {}
    for r in sorted(recs, key=lambda r: r["_t"]):
        by_day.setdefault(r["_t"][:10], {}).setdefault(r["category"], []).append(r)
    prev_tail = None
    files = []
    for day in sorted(by_day):
        envs = []
        for cat in sorted(by_day[day]):
            rs = by_day[day][cat]
            i = 0
            while i < len(rs):
                n = rng.randint(20, 50)
                envs.append(rs[i:i + n])
                i += n
        envs.sort(key=lambda e: e[0]["_t"])
        if prev_tail:  # at-least-once delivery: the previous file's last 2 sign-ins arrive again
            envs.insert(0, prev_tail)
            count("Event Hub", "extra copies (redelivered, dropped)", len(prev_tail))
        prev_tail = [r for e in envs for r in e if r["category"] == "SignInLogs"][-2:] if not files else None
        files.append((day, envs))
    d = OUT / "contoso" / "eventhub"
    d.mkdir(parents=True, exist_ok=True)
    for day, envs in files:
        lines = [json.dumps({"records": [{k: v for k, v in r.items() if k != "_t"} for r in e]},
                            ensure_ascii=False, separators=(",", ":")) for e in envs]
        (d / f"entra-diagnostics-{day}.json").write_text("\n".join(lines) + "\n", encoding="utf-8")
    roles = {"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#roleManagement/directory/"
                               "roleAssignments(principal())", "value": []}
    for role, u in ((GLOBAL_ADMIN, megan), (DIRECTORY_READERS, USER["Lee Gu"])):
        rid = base64.urlsafe_b64encode(uuid.UUID(role).bytes + uuid.UUID(u["id"]).bytes).decode().rstrip("=")
        roles["value"].append({"id": rid + "-1", "principalId": u["id"], "roleDefinitionId": role,
                               "directoryScopeId": "/", "principal": {
                                   "@odata.type": "#microsoft.graph.user", "id": u["id"],
                                   "displayName": u["name"], "userPrincipalName": u["upn"]}})
    dump(OUT / tid / "roleAssignments.json", roles)
    count("Graph v1.0 JSON", "roleAssignments", 2)


def write_fabrikam():
    tid = TENANTS["fabrikam"]["id"]
    g = OUT / tid / "graph"
    for inter, name in ((True, "interactive"), (False, "noninteractive")):
        rs = sorted((s for s in SIGNINS if s["tenant"] == "fabrikam" and s["interactive"] == inter),
                    key=lambda s: -s["t"])
        pages = [rs[i:i + 50] for i in range(0, len(rs), 50)]
        for n, page in enumerate(pages, 1):
            body = {"@odata.context": "https://graph.microsoft.com/beta/$metadata#auditLogs/signIns",
                    "value": [signin_props(s, True) for s in page]}
            if n < len(pages):
                body["@odata.nextLink"] = f"https://graph.microsoft.com/beta/auditLogs/signIns?$skiptoken={hexs(64)}"
            dump(g / f"signIns-{name}-page{n:02d}.json", body)
        count("Graph beta JSON", "signIns " + name, len(rs))
    admin = TENANTS["fabrikam"]["users"][0]
    audits = []
    for day, activity, target in ((0, "Update user", "Julia de Boer"), (3, "Reset user password", "Thijs Meijer"),
                                  (4, "Add member to group", "Ruben Mulder"), (5, "Update user", "Sophie Smit"),
                                  (6, "Add member to group", "Daan Jansen")):
        t = ticks(START + timedelta(days=day, hours=9, minutes=rng.randrange(0, 400)))
        audits.append((t, audit_props(t, admin, USER[target], activity, True)))
    audits.sort(key=lambda a: -a[0])
    dump(g / "directoryAudits-page01.json", {
        "@odata.context": "https://graph.microsoft.com/beta/$metadata#auditLogs/directoryAudits",
        "value": [a[1] for a in audits]})
    count("Graph beta JSON", "directoryAudits", len(audits))
    risky = []
    for name, level, state, detail, ts in (
            ("Emma Bakker", "high", "atRisk", "none", "2026-11-18T22:47:10.4417203Z"),
            ("Thijs Meijer", "medium", "remediated", "userPerformedSecuredPasswordReset",
             "2026-11-16T10:12:44.0925118Z")):
        u = USER[name]
        risky.append({"id": u["id"], "isDeleted": False, "isProcessing": False, "riskLastUpdatedDateTime": ts,
                      "riskLevel": level, "riskState": state, "riskDetail": detail,
                      "userDisplayName": u["name"], "userPrincipalName": u["upn"]})
    dump(g / "riskyUsers-page01.json", {"@odata.context": "https://graph.microsoft.com/beta/$metadata#riskyUsers",
                                        "value": risky})
    count("Graph beta JSON", "riskyUsers", len(risky))


CSV_HEADER = (
    "TenantId,SourceSystem,ResourceId,OperationName,OperationVersion,Category,ResultType,ResultSignature,"
    "ResultDescription,DurationMs,CorrelationId,Resource,ResourceGroup,ResourceProvider,Identity,Level,Location,"
    "AlternateSignInName,AppDisplayName,AppId,AuthenticationDetails,AuthenticationMethodsUsed,"
    "AuthenticationProcessingDetails,AuthenticationRequirement,AuthenticationRequirementPolicies,ClientAppUsed,"
    "ConditionalAccessPolicies_dynamic,ConditionalAccessPolicies_string,ConditionalAccessStatus,"
    "CreatedDateTime [UTC],DeviceDetail_dynamic,DeviceDetail_string,IsInteractive,Id,IPAddress,IsRisky,"
    "LocationDetails_dynamic,LocationDetails_string,MfaDetail_dynamic,MfaDetail_string,NetworkLocationDetails,"
    "OriginalRequestId,ProcessingTimeInMilliseconds,RiskDetail,RiskEventTypes,RiskEventTypes_V2,"
    "RiskLevelAggregated,RiskLevelDuringSignIn,RiskState,ResourceDisplayName,ResourceIdentity,ServicePrincipalId,"
    "ServicePrincipalName,Status_dynamic,Status_string,TokenIssuerName,TokenIssuerType,UserAgent,"
    "UserDisplayName,UserId,UserPrincipalName,AADTenantId,UserType,FlaggedForReview,SignInIdentifier,"
    "SignInIdentifierType,ResourceTenantId,HomeTenantId,Type,AdditionalDetails,InitiatedBy").split(",")


def compact(obj):
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def pretty(obj):  # Log Analytics pretty-prints string-typed JSON columns, CRLF inside the cell
    return json.dumps(obj, indent=2, ensure_ascii=False).replace("\n", "\r\n")


def write_tailspin():
    tid = TENANTS["tailspin"]["id"]
    rows = []
    for s in sorted((s for s in SIGNINS if s["tenant"] == "tailspin"), key=lambda s: -s["t"]):
        p = signin_props(s, False)
        r = dict.fromkeys(CSV_HEADER, "")
        r.update({
            "TenantId": WORKSPACE, "SourceSystem": "Azure AD",
            "ResourceId": f"/tenants/{tid}/providers/Microsoft.aadiam",
            "OperationName": "Sign-in activity", "OperationVersion": "1", "Category": "SignInLogs",
            "ResultType": str(s["err"]), "ResultSignature": "None", "ResultDescription": FAIL.get(s["err"], ""),
            "DurationMs": "0", "CorrelationId": s["corr"], "Resource": "Microsoft.aadiam",
            "ResourceGroup": "Microsoft.aadiam", "Identity": p["userDisplayName"], "Level": "4",
            "Location": p["location"]["countryOrRegion"], "AppDisplayName": p["appDisplayName"],
            "AppId": p["appId"], "AuthenticationDetails": pretty(p["authenticationDetails"]),
            "AuthenticationProcessingDetails": pretty([{"key": "IsCAEToken", "value": "False"}]),
            "AuthenticationRequirement": p["authenticationRequirement"], "AuthenticationRequirementPolicies": "[]",
            "ClientAppUsed": p["clientAppUsed"],
            "ConditionalAccessPolicies_dynamic": compact(p["appliedConditionalAccessPolicies"]),
            "ConditionalAccessStatus": p["conditionalAccessStatus"],
            "CreatedDateTime [UTC]": us_clock(s["t"], ",", True),
            "DeviceDetail_dynamic": compact(p["deviceDetail"]),
            "IsInteractive": "TRUE", "Id": s["id"], "IPAddress": s["ip"],
            "LocationDetails_dynamic": compact(p["location"]),
            "MfaDetail_dynamic": "{}", "NetworkLocationDetails": "[]", "OriginalRequestId": s["id"],
            "ProcessingTimeInMilliseconds": str(s["ms"]), "RiskDetail": "none", "RiskEventTypes": "[]",
            "RiskEventTypes_V2": "[]", "RiskLevelAggregated": "none", "RiskLevelDuringSignIn": "none",
            "RiskState": "none", "ResourceDisplayName": p["resourceDisplayName"], "ResourceIdentity": p["resourceId"],
            "Status_dynamic": compact(p["status"]), "TokenIssuerType": "AzureAD",
            "UserAgent": p["userAgent"], "UserDisplayName": p["userDisplayName"], "UserId": p["userId"],
            "UserPrincipalName": p["userPrincipalName"], "AADTenantId": tid, "UserType": "Member",
            "ResourceTenantId": tid, "HomeTenantId": s["home"], "Type": "SigninLogs"})
        rows.append([r[c] for c in CSV_HEADER])
    path = OUT / "tailspin" / "sentinel-signinlogs.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8-sig") as f:
        w = csv.writer(f, lineterminator="\r\n")
        w.writerow(CSV_HEADER)
        w.writerows(rows)
    count("Log Analytics CSV", "SigninLogs rows", len(rows))


def write_readme():
    total = sum(1 for _ in SIGNINS)
    size = sum(p.stat().st_size for p in OUT.rglob("*") if p.is_file())
    L = ["# entrawatch demo bundle", "",
         "**Synthetic data** generated by `examples/gen_demo.py` (Python stdlib, `random.Random(42)`, no wall",
         "clock; re-running it rewrites these files byte for byte). No real tenant, person or log went into it:",
         "names are invented, IPs come from the RFC 5737 documentation ranges, tenant ids are placeholders.", "",
         "Run it: `cargo run --release -- replay --config examples/entrawatch.toml examples/demo` (this README is not read: replay reads only",
         "`.json`, `.jsonl`, `.ndjson`, `.csv` and `.log` files).", "",
         "## World", "",
         f"CSP partner **Northwind CSP** (home tenant `{PARTNER}`), one GDAP technician",
         f"`{TECH['upn']}` (user id `{TECH['id']}`). Seven days of activity, "
         f"{isoz(ticks(START))[:10]} to {isoz(ticks(END))[:10]} (exclusive), {total} sign-ins in all.", "",
         "| tenant | id | domain | home city | shape |", "|---|---|---|---|---|"]
    for ten in TENANTS.values():
        L.append(f"| {ten['name']} | `{ten['id']}` | {ten['domain']} | {ten['city']} | {ten['shape']} |")
    L += ["", "Eight users per tenant; the first is the admin (FIDO2 security key, Azure Portal / Graph tools),",
          "the others use Mobile app notification MFA. Normal sign-ins are work-hours, from the home city, on",
          "managed Azure AD joined devices, with a few failed passwords (50126) and 'Keep me signed in'",
          "interrupts (50140); non-interactive token refreshes are single-factor, as they always are. About",
          "6% of regular users' sign-ins come from a personal laptop at home (home IP, no device id), which",
          "no detector flags for non-privileged users. Contoso also has four shared accounts that never sign",
          "in; only the password spray touches them.", "",
          "## Layout", "", "```",
          "contoso/eventhub/entra-diagnostics-<day>.json   Event Hub captures: NDJSON, one {\"records\":[...]}",
          "                                                envelope per line (<= 50 records, one category each)",
          f"{TENANTS['contoso']['id']}/roleAssignments.json   Graph v1.0 role assignments (principal expanded)",
          f"{TENANTS['fabrikam']['id']}/graph/*.json          Graph beta pages: signIns (newest first, 50 a page,",
          "                                                @odata.nextLink), directoryAudits, riskyUsers",
          "tailspin/sentinel-signinlogs.csv                Log Analytics portal CSV export of SigninLogs",
          "```", "",
          "Event Hub records and the CSV carry their tenant (`tenantId`, `AADTenantId`/`ResourceId`). Graph",
          "audits, risky users and role assignments carry none, so those files sit in a folder named by the",
          "tenant GUID, which `entrawatch replay` uses as their tenant. In the CSV `TenantId` is the Log",
          f"Analytics workspace (`{WORKSPACE}`), not the Entra tenant. The Event Hub files also hold",
          "3 `ProvisioningLogs` records (a category entrawatch skips), 2 records delivered twice (the next",
          "day's file starts with them again) and a `UserRiskEvents` record whose `time` is in US-locale format.", "",
          "## Record counts", "", "| shape | kind | records |", "|---|---|---|"]
    for (shape, kind), n in sorted(COUNTS.items()):
        L.append(f"| {shape} | {kind} | {n} |")
    L += ["", f"Total size: {size // 1024} KiB (before this README).", "",
          "## Injected stories", "", "| time (UTC) | tenant | user | what | expected detector / severity |",
          "|---|---|---|---|---|"]
    for st in sorted(STORIES):
        L.append("| " + " | ".join(st) + " |")
    L += ["", "1. The Tailspin sign-in comes from the CSV export, whose columns (copied from a real portal export)",
          "   have no `CrossTenantAccessType`: only `HomeTenantId` (partner) differs from `ResourceTenantId`. It",
          "   rates high when Northwind's tenant is a configured partner tenant (`partner_tenants`); with no",
          "   config it can only rate medium. The Contoso and Fabrikam technician sign-ins use FIDO2 on a",
          "   managed device and are quiet.",
          "2. The spray hits the 8 Contoso users and the 4 shared accounts (12 distinct users).",
          "3. Megan's Lagos sign-in also raises `unmanaged-device-privileged` (high) and `impossible-travel`",
          "   (high: Seattle a few hours earlier). It is not `new-country-sign-in`: a week of data is shorter",
          "   than the 7-day learning period plus 10 successful sign-ins that rule waits for.",
          "",
          "With `examples/entrawatch.toml`, `entrawatch replay` reports 8 alerts: password-spray (medium,",
          "203.0.113.99), mfa-not-satisfied (Megan high, Lars medium count 2, the technician at Tailspin high),",
          "unmanaged-device-privileged and impossible-travel for Megan (high), risky-user for Alex (medium)",
          "and Emma (high). `tests/replay.rs` checks the stories.",
          "", "Everything else is meant to be quiet: MFA-satisfied, home-city activity by the tenant's own users.", ""]
    (OUT / "README.md").write_text("\n".join(L), encoding="utf-8")


def main():
    if OUT.exists():
        shutil.rmtree(OUT)
    normal_activity()
    inject_stories()
    write_contoso()
    write_fabrikam()
    write_tailspin()
    write_readme()
    size = sum(p.stat().st_size for p in OUT.rglob("*") if p.is_file())
    assert 600 <= len(SIGNINS) <= 900 and size < 1_500_000, (len(SIGNINS), size)
    print(f"sign-ins total: {len(SIGNINS)}, bundle {size} bytes")
    for (shape, kind), n in sorted(COUNTS.items()):
        print(f"{shape:20} {kind:32} {n}")
    for st in sorted(STORIES):
        print(" | ".join(st))


if __name__ == "__main__":
    main()
