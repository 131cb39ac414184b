//! Sign-ins as the resource tenant's log shows them: who signed in (a member, a guest, a partner's
//! technician, a service principal), the authentication steps, the user agent and device, the
//! location, the Conditional Access policies and their results, and the risk. Event Hub `properties`
//! and Graph beta entities share one builder; `graph` picks the shape.

use serde_json::{Map, Value, json};

use super::{iso_secs, iso7, location, resource_path};
use crate::simulate::catalog::{self, APPS, CITIES, Method};
use crate::simulate::records::{Auth, Cat, Client, SignIn, Who};
use crate::simulate::rng::{SEC, Ticks};
use crate::simulate::world::{Kind, World};

/// A Graph-style opaque token from 16 bytes (URL-safe base64 without padding).
fn token(bytes: [u8; 16]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(22);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..=chunk.len() {
            out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
        }
    }
    out
}

/// Who a sign-in names, as the resource tenant's log shows them.
struct Identity {
    id: String,
    display: String,
    upn: String,
    user_type: &'static str,
    home: String,
    home_name: Option<String>,
    cross: &'static str,
}

fn identity(w: &World, s: &SignIn) -> Identity {
    let tenant = &w.tenants[s.tenant];
    match s.who {
        Who::Unknown(name) => Identity {
            id: String::new(),
            display: String::new(),
            upn: format!(
                "{}@{}",
                crate::simulate::records::UNKNOWN_NAMES[name],
                tenant.domain
            ),
            user_type: "Member",
            home: tenant.id.to_string(),
            home_name: None,
            cross: "none",
        },
        Who::Connector(_) => Identity {
            id: String::new(),
            display: String::new(),
            upn: String::new(),
            user_type: "Member",
            home: tenant.id.to_string(),
            home_name: None,
            cross: "none",
        },
        Who::User(a) => {
            let acc = &w.accounts[a];
            let home = &w.tenants[acc.home_tenant];
            if acc.kind == Kind::Technician && acc.home_tenant != s.tenant {
                Identity {
                    id: acc.id.to_string(),
                    display: w.technician_display(a),
                    upn: w.technician_upn(a),
                    user_type: "Member",
                    home: home.id.to_string(),
                    home_name: Some(home.name.clone()),
                    cross: "serviceProvider",
                }
            } else if acc.kind == Kind::Guest {
                Identity {
                    id: acc.id.to_string(),
                    display: acc.display.clone(),
                    upn: acc.upn.clone(),
                    user_type: "Guest",
                    home: home.id.to_string(),
                    home_name: None,
                    cross: "b2bCollaboration",
                }
            } else {
                Identity {
                    id: acc.id.to_string(),
                    display: acc.display.clone(),
                    upn: acc.upn.clone(),
                    user_type: "Member",
                    home: tenant.id.to_string(),
                    home_name: None,
                    cross: "none",
                }
            }
        }
    }
}

fn step(
    graph: bool,
    t: Ticks,
    method: &str,
    detail: Option<&str>,
    ok: bool,
    result: &str,
    requirement: &str,
) -> Value {
    let mut m = Map::new();
    m.insert(
        "authenticationStepDateTime".into(),
        json!(if graph {
            iso_secs(t)
        } else {
            iso7(t, "+00:00")
        }),
    );
    m.insert("authenticationMethod".into(), json!(method));
    if graph {
        m.insert("authenticationMethodDetail".into(), json!(detail));
    }
    m.insert("succeeded".into(), json!(ok));
    m.insert("authenticationStepResultDetail".into(), json!(result));
    m.insert("authenticationStepRequirement".into(), json!(requirement));
    Value::Object(m)
}

fn steps(s: &SignIn, graph: bool) -> Vec<Value> {
    let t = s.t;
    let first = t - 9 * SEC - i64::from(s.ms) * 10_000;
    let password = |ok: bool| {
        step(
            graph,
            first,
            "Password",
            Some("Password in the cloud"),
            ok,
            if ok {
                "Correct password"
            } else {
                "Invalid username or password or Invalid on-premise username or password."
            },
            "Primary authentication",
        )
    };
    let claim_first = || {
        step(
            graph,
            t,
            "Previously satisfied",
            None,
            true,
            "First factor requirement satisfied by claim in the token",
            "Primary authentication",
        )
    };
    let claim_mfa = || {
        step(
            graph,
            t,
            "Previously satisfied",
            None,
            true,
            "MFA requirement satisfied by claim in the token",
            "Multi-factor authentication",
        )
    };
    let second = |m: Method| {
        step(
            graph,
            t,
            m.log_name(),
            Some(m.detail()),
            true,
            "MFA successfully completed",
            "Multi-factor authentication",
        )
    };
    let mut out = match s.auth {
        Auth::Mfa(m) => vec![password(true), second(m)],
        Auth::Passwordless(m) => vec![step(
            graph,
            t,
            m.log_name(),
            Some(m.detail()),
            true,
            "MFA successfully completed",
            "Primary authentication",
        )],
        Auth::PasswordPrevMfa => vec![password(true), claim_mfa()],
        Auth::ClaimMfa => vec![claim_first(), claim_mfa()],
        Auth::Refresh => vec![claim_first()],
        Auth::PasswordOnly | Auth::MfaRequired => vec![password(true)],
        Auth::MfaDenied(m) => vec![
            password(true),
            step(
                graph,
                t,
                m.log_name(),
                Some(m.detail()),
                false,
                catalog::failure_details(500121).unwrap_or_default(),
                "Multi-factor authentication",
            ),
        ],
        Auth::PasswordFail => vec![password(false)],
        Auth::None => Vec::new(),
    };
    if !graph && let Some(Value::Object(first)) = out.first_mut() {
        first.insert("StatusSequence".into(), json!(0));
        first.insert("RequestSequence".into(), json!(0));
    }
    out
}

fn user_agent(w: &World, s: &SignIn) -> &'static str {
    use catalog::{apps, ua};
    if let Some(ua) = s.user_agent {
        return ua;
    }
    let device = s.device.map(|d| &w.devices[d]);
    let os = device.map_or("", |d| d.os);
    match s.app {
        apps::OFFICE_DESKTOP => ua::OFFICE_DESKTOP,
        apps::TEAMS_DESKTOP if s.cat == Cat::NonInteractive && os.starts_with("Windows") => {
            ua::TEAMS_DESKTOP
        }
        apps::ONEDRIVE_SYNC => ua::ONEDRIVE,
        apps::OUTLOOK_MOBILE if os.starts_with("Android") => ua::OUTLOOK_ANDROID,
        apps::OUTLOOK_MOBILE => ua::OUTLOOK_IOS,
        apps::TEAMS_MOBILE => ua::TEAMS_MOBILE,
        apps::GRAPH_CLI => ua::POWERSHELL,
        apps::EXCHANGE_LEGACY => "",
        _ if os.starts_with("Ios") => ua::SAFARI_IOS,
        _ if os == "MacOs" => ua::CHROME_MAC,
        _ if device.is_some_and(|d| d.managed) => ua::EDGE_WIN,
        _ => ua::CHROME_WIN,
    }
}

fn device(w: &World, s: &SignIn, graph: bool) -> Value {
    let mut m = Map::new();
    let Some(d) = s.device.map(|d| &w.devices[d]) else {
        m.insert("deviceId".into(), json!(""));
        if graph {
            m.insert("displayName".into(), Value::Null);
            m.insert("operatingSystem".into(), Value::Null);
            m.insert("browser".into(), Value::Null);
            m.insert("isCompliant".into(), Value::Null);
            m.insert("isManaged".into(), Value::Null);
            m.insert("trustType".into(), Value::Null);
        }
        return Value::Object(m);
    };
    m.insert(
        "deviceId".into(),
        json!(d.id.map(|g| g.to_string()).unwrap_or_default()),
    );
    // The simulator's Event Hub records name only the shared meeting-room device (as Teams
    // Rooms sign-ins show it); the personal devices keep their historical shape.
    if graph || d.name.starts_with("MTR-") {
        m.insert("displayName".into(), json!(d.name));
    }
    m.insert("operatingSystem".into(), json!(d.os));
    let browser = if d.browser.is_empty() {
        catalog::APPS[s.app].name
    } else {
        d.browser
    };
    m.insert("browser".into(), json!(browser));
    if graph || d.managed {
        m.insert("isCompliant".into(), json!(d.managed));
        m.insert("isManaged".into(), json!(d.managed));
    }
    if graph || !d.trust.is_empty() {
        m.insert("trustType".into(), json!(d.trust));
    }
    Value::Object(m)
}

fn ca_policies(w: &World, s: &SignIn, graph: bool) -> (Vec<Value>, &'static str) {
    if s.cat != Cat::Interactive {
        return (Vec::new(), "notApplied");
    }
    let legacy = matches!(s.client, Client::Legacy(_));
    let mfa_result = if s.err == 53003 && !legacy {
        "failure"
    } else if s.auth.multi_factor() && !legacy {
        "success"
    } else {
        "notApplied"
    };
    let legacy_result = if legacy && s.err == 53003 {
        "failure"
    } else {
        "notApplied"
    };
    let ids = w.tenants[s.tenant].ca_policies;
    let policy = |id: String, name: &str, control: &str, result: &str| {
        let applied = result != "notApplied";
        json!({
            "id": id,
            "displayName": name,
            "enforcedGrantControls": if applied { vec![control] } else { Vec::new() },
            "enforcedSessionControls": [],
            "result": result,
            "conditionsSatisfied": if graph { json!(if applied { "application,users" } else { "none" }) } else { json!(if applied { 3 } else { 0 }) },
            "conditionsNotSatisfied": if graph { json!("none") } else { json!(0) }
        })
    };
    let status = if mfa_result == "failure" || legacy_result == "failure" {
        "failure"
    } else if mfa_result == "success" {
        "success"
    } else {
        "notApplied"
    };
    (
        vec![
            policy(
                ids[0].to_string(),
                "Require MFA for all users",
                "Mfa",
                mfa_result,
            ),
            policy(
                ids[1].to_string(),
                "Block legacy authentication",
                "Block",
                legacy_result,
            ),
        ],
        status,
    )
}

/// The sign-in properties shared by Event Hub `properties` and Graph beta entities.
fn sign_in_props(w: &World, s: &SignIn, graph: bool) -> Map<String, Value> {
    let tenant = &w.tenants[s.tenant];
    let who = identity(w, s);
    let (app_id, app_name, resource, resource_id) = match s.who {
        Who::Connector(t) => {
            let c = &w.tenants[t].connector;
            (
                c.app_id.to_string(),
                c.name.clone(),
                "Microsoft Graph",
                "00000003-0000-0000-c000-000000000000",
            )
        }
        Who::User(_) | Who::Unknown(_) => {
            let a = APPS[s.app];
            (
                a.id.to_owned(),
                a.name.to_owned(),
                a.resource,
                a.resource_id,
            )
        }
    };
    let (policies, ca_status) = ca_policies(w, s, graph);
    let multi = s.auth.multi_factor();
    let mut status = Map::new();
    status.insert("errorCode".into(), json!(s.err));
    if s.err != 0 || graph {
        status.insert(
            "failureReason".into(),
            json!(catalog::failure_reason(s.err)),
        );
    }
    if let Some(d) = catalog::failure_details(s.err) {
        status.insert("additionalDetails".into(), json!(d));
    }
    let (during, aggregated, state, detail, types) = match s.risk {
        Some(r) => (r.during, r.aggregated, r.state, r.detail, r.types.to_vec()),
        None => ("none", "none", "none", "none", Vec::new()),
    };
    let windows_pc = s
        .device
        .is_some_and(|d| w.devices[d].os == "Windows10" && w.devices[d].managed);
    let client = match s.client {
        Client::Browser => "Browser",
        Client::MobileDesktop => "Mobile Apps and Desktop clients",
        Client::Legacy(name) => name,
    };
    let net = &w.nets[s.net];
    let mut p = Map::new();
    let mut put = |k: &str, v: Value| {
        p.insert(k.to_owned(), v);
    };
    put("id", json!(s.id.to_string()));
    put(
        "createdDateTime",
        json!(if graph {
            iso_secs(s.t)
        } else {
            iso7(s.t, "+00:00")
        }),
    );
    put("userDisplayName", json!(who.display));
    put("userPrincipalName", json!(who.upn));
    put("userId", json!(who.id));
    put("appId", json!(app_id));
    put("appDisplayName", json!(app_name));
    put("ipAddress", json!(net.ip));
    put("status", Value::Object(status));
    put("clientAppUsed", json!(client));
    put(
        "userAgent",
        json!(if matches!(s.who, Who::Connector(_)) {
            catalog::ua::PYTHON
        } else {
            user_agent(w, s)
        }),
    );
    put("deviceDetail", device(w, s, graph));
    put("location", location(w, s.net));
    put("correlationId", json!(s.corr.to_string()));
    put("conditionalAccessStatus", json!(ca_status));
    put("appliedConditionalAccessPolicies", Value::Array(policies));
    put("originalRequestId", json!(s.id.to_string()));
    put("isInteractive", json!(s.cat == Cat::Interactive));
    if let Who::User(a) = s.who {
        let session = s
            .session
            .unwrap_or_else(|| w.session_of(s.tenant, a, s.t, s.net));
        put("sessionId", json!(session.to_string()));
    }
    put(
        "authenticationProcessingDetails",
        json!([{"key": "Is CAE Token", "value": "False"}]),
    );
    put("processingTimeInMilliseconds", json!(s.ms));
    put("riskDetail", json!(detail));
    put("riskLevelAggregated", json!(aggregated));
    put("riskLevelDuringSignIn", json!(during));
    put("riskState", json!(state));
    if !graph {
        put("riskEventTypes", json!(types));
    }
    put("riskEventTypes_v2", json!(types));
    put("resourceDisplayName", json!(resource));
    put("resourceId", json!(resource_id));
    put("resourceTenantId", json!(tenant.id.to_string()));
    put("homeTenantId", json!(who.home));
    if let Some(name) = &who.home_name {
        put("homeTenantName", json!(name));
    }
    put("tokenIssuerName", json!(""));
    put("tokenIssuerType", json!("AzureAD"));
    put("authenticationDetails", Value::Array(steps(s, graph)));
    put(
        "authenticationRequirementPolicies",
        if multi {
            json!([{"requirementProvider": "multiConditionalAccess", "detail": "Conditional Access"}])
        } else {
            json!([])
        },
    );
    put(
        "authenticationRequirement",
        json!(if multi {
            "multiFactorAuthentication"
        } else {
            "singleFactorAuthentication"
        }),
    );
    put("authenticationProtocol", json!(s.protocol));
    if s.protocol == "deviceCode" {
        put("originalTransferMethod", json!("deviceCodeFlow"));
    }
    put(
        "incomingTokenType",
        json!(if s.cat == Cat::NonInteractive && windows_pc {
            "primaryRefreshToken"
        } else {
            "none"
        }),
    );
    put("crossTenantAccessType", json!(who.cross));
    put(
        "userType",
        json!(if graph {
            who.user_type.to_ascii_lowercase()
        } else {
            who.user_type.to_owned()
        }),
    );
    put("autonomousSystemNumber", json!(net.asn));
    put("uniqueTokenIdentifier", json!(token(s.id.bytes())));
    match s.who {
        Who::Connector(t) => {
            put(
                "servicePrincipalId",
                json!(w.tenants[t].connector.id.to_string()),
            );
            put("servicePrincipalName", json!(w.tenants[t].connector.name));
        }
        Who::User(_) | Who::Unknown(_) => put("servicePrincipalId", json!("")),
    }
    if graph {
        let kind = match s.cat {
            Cat::Interactive => "interactiveUser",
            Cat::NonInteractive => "nonInteractiveUser",
            Cat::ServicePrincipal => "servicePrincipal",
        };
        put("signInEventTypes", json!([kind]));
        put("flaggedForReview", json!(false));
        put("isTenantRestricted", json!(false));
    }
    p
}

pub fn sign_in_category(s: &SignIn) -> &'static str {
    match s.cat {
        Cat::Interactive => "SignInLogs",
        Cat::NonInteractive => "NonInteractiveUserSignInLogs",
        Cat::ServicePrincipal => "ServicePrincipalSignInLogs",
    }
}

/// An Event Hub record of a sign-in.
pub fn eh_sign_in(w: &World, s: &SignIn) -> Value {
    let props = sign_in_props(w, s, false);
    let display = props.get("userDisplayName").cloned().unwrap_or(Value::Null);
    let mut r = Map::new();
    r.insert("time".into(), json!(iso7(s.t, "Z")));
    r.insert("resourceId".into(), json!(resource_path(w, s.tenant)));
    r.insert("operationName".into(), json!("Sign-in activity"));
    r.insert("operationVersion".into(), json!("1.0"));
    r.insert("category".into(), json!(sign_in_category(s)));
    r.insert("tenantId".into(), json!(w.tenants[s.tenant].id.to_string()));
    r.insert("resultType".into(), json!(s.err.to_string()));
    r.insert("resultSignature".into(), json!("None"));
    if s.err != 0 {
        r.insert(
            "resultDescription".into(),
            json!(catalog::failure_reason(s.err)),
        );
    }
    r.insert("durationMs".into(), json!(0));
    r.insert("callerIpAddress".into(), json!(w.nets[s.net].ip));
    r.insert("correlationId".into(), json!(s.corr.to_string()));
    r.insert("identity".into(), display);
    r.insert("Level".into(), json!(4));
    r.insert("location".into(), json!(CITIES[w.nets[s.net].city].country));
    r.insert("properties".into(), Value::Object(props));
    Value::Object(r)
}

/// A Graph beta `signIn` entity.
pub fn graph_sign_in(w: &World, s: &SignIn) -> Value {
    Value::Object(sign_in_props(w, s, true))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_22_url_safe_characters() {
        let t = token([0xff; 16]);
        assert_eq!(t.len(), 22);
        assert!(
            t.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
    }
}
