//! `device-code-sign-in`: see [`DOC`] for what it detects and why.
//!
//! Record shapes follow Microsoft Learn "signIn resource type" (beta): `authenticationProtocol`
//! `deviceCode` and `originalTransferMethod` `deviceCodeFlow` (the transfer method that started
//! the session, repeated on its later requests), and "Conditional Access: Authentication flows",
//! which describes the device code flow as high risk, used for phishing, and legitimately by
//! shared devices such as Teams Rooms and digital signage.

use entrawatch_ingest::model::{Event, Kind, SignIn};
use serde_json::{Map, json};

use super::{
    about_sign_in, app_name, contains_any_caseless, hostile_network, place, time_text, who,
};
use crate::detector::{Context, Detector};
use crate::finding::{Finding, Severity};
use crate::keys::country_code;
use crate::state::{PrincipalState, RETENTION_SECS};

pub const ID: &str = "device-code-sign-in";

/// Words in a device or account name that mark a shared, input-constrained device (meeting
/// room, kiosk, signage), where the device code flow is the normal way to sign in.
const SHARED_DEVICE_WORDS: [&str; 10] = [
    "room",
    "mtr",
    "kiosk",
    "conference",
    "meeting",
    "signage",
    "surface hub",
    "lobby",
    "shared",
    "teams display",
];

/// User documentation, printed by `entrawatch rules device-code-sign-in`.
pub const DOC: &str = r#"## What it detects
A successful user sign-in through the OAuth device authorization grant (`authenticationProtocol`
`deviceCode`, or `originalTransferMethod` `deviceCodeFlow`) by a user with no device-code sign-in
in the previous 30 days: medium. It is high when the sign-in comes from a country the user has
not signed in from (interactively and successfully) in those 30 days, or from a network ID
Protection marks as anonymising or malicious (`riskEventTypes` `anonymizedIPAddress`,
`maliciousIPAddress`; Tor exits are anonymised addresses). A sign-in on a shared device (a meeting room, kiosk or signage
device, by the words `room`, `MTR`, `kiosk`, `conference`, `meeting`, `signage`, `Surface Hub`,
`lobby`, `shared`, `Teams display` in the device or account name) is low. Users with a
device-code sign-in in the previous 30 days stay quiet. The evidence says whether the tenant had
any device-code sign-in in those 30 days.

## Why it matters
In device code phishing (Storm-2372 and others) the attacker starts a device code sign-in,
sends the code to the victim in a lure ("enter this code to join the meeting"), and the victim
signs in at microsoft.com/devicelogin with their own password and MFA. The attacker's client
receives the tokens, refresh token included: MFA is satisfied and no password is stolen. Most
users never use the flow, so a first one is worth a look. MITRE ATT&CK T1528 (Steal Application
Access Token) and T1566.002 (Phishing: Spearphishing Link).

## Signals used
`authenticationProtocol`, `originalTransferMethod`, `status.errorCode`, the user, `ipAddress`,
`location.countryOrRegion`, `riskEventTypes`, `deviceDetail.displayName`, the app and resource,
and the engine's per-user time of the last device-code sign-in, the user's countries of the
last 30 days, and the per-tenant time of the last device-code sign-in (all bounded, forgotten
after 30 days).

## Example
`ann@contoso.com` (Seattle, US) completes a device-code sign-in to Microsoft Office from
198.51.100.23 in Amsterdam, NL, a country she has never signed in from; nobody in Contoso used
the flow in 30 days: high. Revoke her refresh tokens (`revokeSignInSessions`), look at what the
session did, and block the flow with a Conditional Access authentication-flows policy.

## Known false positives and tuning
Meeting-room and signage devices, Azure CLI / PowerShell `--use-device-code` on a server or in
a container, and developers on headless machines. Name shared devices so the words above match,
or allow-list their accounts under `[detect.allow.device-code-sign-in]`; after the first
sign-in a user's later ones stay quiet for 30 days. Block the flow for everyone who does not
need it with a Conditional Access authentication-flows policy.

## References
Microsoft Learn: "signIn resource type" (beta: `authenticationProtocol`,
`originalTransferMethod`), "Conditional Access: Authentication flows", "Microsoft identity
platform and the OAuth 2.0 device authorization grant flow"; Microsoft Threat Intelligence,
"Storm-2372 conducts device code phishing campaign"; MITRE ATT&CK T1528, T1566.002.
"#;

#[derive(Debug, Clone, Copy, Default)]
pub struct DeviceCodeSignIn;

/// Whether the device or the account looks shared ([`SHARED_DEVICE_WORDS`]).
fn shared_device(s: &SignIn) -> bool {
    [
        &s.device.display_name,
        &s.user_display_name,
        &s.user_principal_name,
    ]
    .into_iter()
    .flatten()
    .any(|name| contains_any_caseless(name, &SHARED_DEVICE_WORDS))
}

impl Detector for DeviceCodeSignIn {
    fn id(&self) -> &'static str {
        ID
    }

    fn doc(&self) -> &'static str {
        DOC
    }

    fn default_severity(&self) -> Severity {
        Severity::Medium
    }

    fn kinds(&self) -> &'static [Kind] {
        &[Kind::SignIn]
    }

    fn observe(&self, ctx: &Context<'_>, event: &Event, out: &mut Vec<Finding>) {
        let Some(s) = event.as_sign_in() else { return };
        if !s.is_success() || !s.is_user() || !s.is_device_code() {
            return;
        }
        if ctx.sign_in_keys(event).principal.is_none() {
            return;
        }
        let now = event.meta.time.timestamp();
        let recent = |at: Option<i64>| at.is_some_and(|at| now - at <= RETENTION_SECS);
        let fresh = PrincipalState::default();
        let history = ctx.sign_in_history(event).unwrap_or(&fresh);
        if recent(history.device_code_at) {
            return;
        }
        let tenant = &event.meta.tenant_id;
        let tenant_at = ctx
            .state
            .tenant_device_code_at(tenant)
            .filter(|at| recent(Some(*at)));
        let country = country_code(s.location.country_or_region.as_deref());
        let new_country = country != 0
            && !history.countries.is_empty()
            && !history.countries.iter().any(|(c, _)| *c == country);
        let hostile = hostile_network(s);
        let shared = shared_device(s);
        let severity = if shared {
            Severity::Low
        } else if new_country || hostile.is_some() {
            Severity::High
        } else {
            Severity::Medium
        };
        let mut why = Vec::new();
        if new_country {
            why.push(format!(
                "from {}, a country the user has not signed in from in 30 days",
                place(s)
            ));
        }
        if let Some(t) = hostile {
            why.push(format!("from a network ID Protection flags ({t})"));
        }
        if shared {
            why.push("on what looks like a shared meeting-room or kiosk device".to_owned());
        }
        let first_in_tenant = tenant_at.is_none();
        let title = format!(
            "{} signed in with a device code{}{}",
            who(s),
            if first_in_tenant {
                " (first in the tenant in 30 days)"
            } else {
                " for the first time in 30 days"
            },
            if new_country {
                format!(" from new country {}", place(s))
            } else {
                String::new()
            }
        );
        let summary = format!(
            "{} completed a device code sign-in to {} from {} ({}){}. The user has no device-code \
             sign-in in the previous 30 days{}. In device code phishing the victim enters a code an \
             attacker sent and the attacker's client receives the tokens, MFA included. Ask the user \
             whether they entered a code at microsoft.com/devicelogin and for which device; if not, \
             revoke their sessions and refresh tokens and review what the session did.",
            who(s),
            app_name(s),
            s.ip_address.as_deref().unwrap_or("an unknown IP"),
            place(s),
            if why.is_empty() {
                String::new()
            } else {
                format!(", {}", why.join(", "))
            },
            match tenant_at {
                None => ", and nobody in the tenant used the flow in that time".to_owned(),
                Some(at) => format!(" (the tenant's last one was at {})", time_text(at)),
            },
        );
        let mut evidence = Map::new();
        evidence.insert(
            "authentication_protocol".into(),
            json!(s.authentication_protocol),
        );
        evidence.insert(
            "original_transfer_method".into(),
            json!(s.original_transfer_method),
        );
        evidence.insert("ip_address".into(), json!(s.ip_address));
        evidence.insert("location".into(), json!(place(s)));
        evidence.insert("new_country".into(), json!(new_country));
        evidence.insert("risky_network".into(), json!(hostile));
        evidence.insert("shared_device".into(), json!(shared));
        evidence.insert("device".into(), json!(s.device.display_name));
        evidence.insert("first_in_tenant".into(), json!(first_in_tenant));
        evidence.insert(
            "tenant_last_device_code_at".into(),
            json!(tenant_at.map(time_text)),
        );
        evidence.insert("app".into(), json!(app_name(s)));
        evidence.insert("resource".into(), json!(s.resource_display_name));
        evidence.insert("user_agent".into(), json!(s.user_agent));
        out.push(Finding {
            rule: ID,
            severity,
            title,
            summary,
            evidence,
            mitre: &["T1528", "T1566.002"],
            ..about_sign_in(event, s)
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DetectConfig;
    use crate::testkit::*;
    use entrawatch_ingest::model::AuthenticationProtocol;

    const OFFICE: (&str, &str, f64, f64) = ("US", "Seattle", 47.6062, -122.3321);

    /// A device-code sign-in as Graph beta shows it: protocol `deviceCode`, transfer method
    /// `deviceCodeFlow`, Microsoft Office as the client.
    fn device_code(id: &str, upn: &str, minute: i64) -> SignInB {
        sign_in(id, upn, minute)
            .app("Microsoft Office", "d3590ed6-52b3-4102-aeff-aad2292ab01c")
            .client_app("Mobile Apps and Desktop clients")
            .protocol(AuthenticationProtocol::DeviceCode)
            .with(|s| s.original_transfer_method = Some("deviceCodeFlow".into()))
    }

    fn brief(found: &[Finding]) -> Vec<(&str, Severity)> {
        found
            .iter()
            .map(|f| (f.event_ids[0].as_str(), f.severity))
            .collect()
    }

    #[test]
    fn fires_on_first_device_code_sign_ins_higher_from_a_new_country_or_hostile_network() {
        let mut events = baseline("ann@contoso.com", 10, 2, 0);
        let day = 10 * 1440;
        events.extend([
            // Ann, phished: a device code entered from Amsterdam, where she never signs in.
            device_code("phished", "ann@contoso.com", day + 60)
                .ip("198.51.100.23")
                .place("NL", "Amsterdam", 52.37, 4.89)
                .build(),
            // Bob's first one, from home in the US: medium (the tenant now has one).
            device_code("first", "bob@contoso.com", day + 120).build(),
            // Bob again: he has a history now.
            device_code("again", "bob@contoso.com", day + 180).build(),
            // Cal, from an anonymising proxy.
            device_code("tor", "cal@contoso.com", day + 240)
                .ip("192.0.2.66")
                .with(|s| s.risk_event_types = vec!["anonymizedIPAddress".into()])
                .build(),
        ]);
        let found = run(ID, DetectConfig::default(), &events);
        assert_eq!(
            brief(&found),
            vec![
                ("phished", Severity::High),
                ("first", Severity::Medium),
                ("tor", Severity::High)
            ]
        );
        assert_eq!(found[0].evidence["new_country"], json!(true));
        assert_eq!(found[0].evidence["first_in_tenant"], json!(true));
        assert_eq!(found[1].evidence["first_in_tenant"], json!(false));
        assert_eq!(
            found[2].evidence["risky_network"],
            json!("anonymizedIPAddress")
        );
        assert_eq!(found[0].mitre, &["T1528", "T1566.002"]);
        insta::assert_json_snapshot!("device_code_sign_in_fires", snapshot(&found));
    }

    #[test]
    fn stays_quiet_on_other_flows_failures_known_users_and_stays_low_on_shared_devices() {
        let (c, city, lat, lon) = OFFICE;
        let mut events = Vec::new();
        // A meeting-room device signing in by device code every morning: low once, then quiet.
        for d in 0..40 {
            events.push(
                device_code(
                    &format!("room{d}"),
                    "room-boardroom@contoso.com",
                    d * 1440 + 540,
                )
                .place(c, city, lat, lon)
                .with(|s| s.device.display_name = Some("MTR-Boardroom-01".into()))
                .build(),
            );
        }
        events.extend([
            // Ordinary sign-ins, and a failed device code (the user never finished).
            sign_in("plain", "dee@contoso.com", 10).build(),
            sign_in("oauth", "dee@contoso.com", 11)
                .protocol(AuthenticationProtocol::OAuth2)
                .build(),
            device_code("failed", "dee@contoso.com", 12)
                .fail(50126)
                .build(),
        ]);
        let found = run(ID, DetectConfig::default(), &events);
        assert_eq!(brief(&found), vec![("room0", Severity::Low)]);
        assert_eq!(found[0].evidence["shared_device"], json!(true));
    }
}
