//! `mfa-not-satisfied`: see [`DOC`] for what it detects and why.

use entrawatch_ingest::model::{AuthenticationRequirement, Event, Kind};
use serde_json::{Map, Value, json};

use super::{about_sign_in, actor, app_name, place, who};
use crate::detector::{Context, Detector};
use crate::finding::{Finding, Severity};
use crate::privileged::PrivilegedDirectory;

pub const ID: &str = "mfa-not-satisfied";

/// User documentation, printed by `entrawatch rules mfa-not-satisfied`.
pub const DOC: &str = r#"## What it detects
A successful interactive user sign-in that satisfied a single factor only:
`authenticationRequirement == singleFactorAuthentication`, or, where that field is absent (Graph
v1.0), no successful second-factor step in `authenticationDetails`.

## Why it matters
Microsoft's CSP security best practices require MFA for every user, and for partner technicians
and admins above all. A password-only success is what a stolen or sprayed password looks like.
MITRE ATT&CK T1078.004 (Valid Accounts: Cloud Accounts).

## Signals used
`status.errorCode` (0), `isInteractive` or the Event Hub category, `authenticationRequirement`,
`authenticationDetails`, the privileged directory and `crossTenantAccessType` for severity.
Non-interactive token refreshes are single-factor by design and never fire; interrupts (50074,
50140, ...) are not successes.

## Example
Adele signs in to the Azure portal from an unmanaged laptop in a country she never works from;
Conditional Access is `notApplied` and the only step was a password: this fires, medium, or high
if Adele holds an admin role or is a partner technician.

## Known false positives and tuning
Tenants still on per-user MFA "remember" settings, or apps excluded from Conditional Access, will
fire until the policy gap is closed; that gap is the finding. Repeats for the same user group into
one episode.

## References
Microsoft Learn: "Partner security requirements" and "Interpret the sign-in logs schema"
(`authenticationRequirement`).
"#;

#[derive(Debug, Clone, Copy, Default)]
pub struct MfaNotSatisfied;

impl Detector for MfaNotSatisfied {
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
        if !(s.is_user() && s.is_interactive() && s.is_success()) {
            return;
        }
        let single_factor = match &s.authentication_requirement {
            Some(AuthenticationRequirement::SingleFactor) => true,
            Some(_) => false,
            None => !s.has_successful_second_factor(),
        };
        if !single_factor {
            return;
        }
        let tenant = &event.meta.tenant_id;
        let partner = PrivilegedDirectory::is_partner_technician(ctx.config, s);
        let privileged = ctx.sign_in_is_privileged(tenant, s);
        let severity = if privileged {
            Severity::High
        } else {
            Severity::Medium
        };
        let app = app_name(s);
        let ip = s
            .ip_address
            .clone()
            .unwrap_or_else(|| "an unknown IP".into());
        let methods: Vec<&str> = s
            .authentication_details
            .iter()
            .filter_map(|d| d.method.as_deref())
            .collect();
        let actor = actor(who(s), partner, privileged);
        let title = format!("{actor} signed in to {app} without MFA");
        let summary = format!(
            "{actor} signed in successfully and interactively to {app} from {ip} ({}) with a single \
             factor{}; Conditional Access: {}. Confirm with the user; if it was not them, revoke \
             sessions and reset the password, then close the Conditional Access gap that allowed it.",
            place(s),
            if methods.is_empty() {
                String::new()
            } else {
                format!(" ({})", methods.join(", "))
            },
            s.conditional_access_status
                .as_ref()
                .map_or("unknown", |c| c.as_str()),
        );
        let mut evidence = Map::new();
        evidence.insert("app".into(), json!(app));
        evidence.insert("resource".into(), json!(s.resource_display_name));
        evidence.insert("ip_address".into(), json!(s.ip_address));
        evidence.insert("location".into(), json!(place(s)));
        evidence.insert("client_app_used".into(), json!(s.client_app_used));
        evidence.insert("authentication_methods".into(), json!(methods));
        evidence.insert(
            "conditional_access_status".into(),
            json!(s.conditional_access_status),
        );
        evidence.insert(
            "device_managed".into(),
            Value::Bool(s.device.is_known_managed()),
        );
        evidence.insert("privileged".into(), Value::Bool(privileged));
        evidence.insert("partner_technician".into(), Value::Bool(partner));
        out.push(Finding {
            rule: ID,
            severity,
            title,
            summary,
            evidence,
            mitre: &["T1078.004"],
            ..about_sign_in(event, s)
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DetectConfig;
    use crate::testkit::*;

    #[test]
    fn fires_on_password_only_success_and_escalates_for_admins_and_partners() {
        let events = vec![
            role_grant(TENANT, "megan@contoso.com", GLOBAL_ADMIN),
            sign_in("s1", "adele@contoso.com", 0)
                .single_factor()
                .unmanaged()
                .place("IL", "Azor", 32.03, 34.8)
                .ip("198.51.100.9")
                .build(),
            sign_in("s2", "megan@contoso.com", 5)
                .single_factor()
                .build(),
            sign_in("s3", "user_5f0c@northwind.example", 9)
                .partner(PARTNER)
                .single_factor()
                .build(),
            // Graph v1.0: no authenticationRequirement, and no second-factor step.
            sign_in("s4", "bob@contoso.com", 12)
                .with(|s| {
                    s.authentication_requirement = None;
                    s.authentication_details.truncate(1);
                })
                .build(),
        ];
        let found = run(ID, DetectConfig::default(), &events);
        let brief: Vec<(&str, Severity)> = found
            .iter()
            .map(|f| (f.event_ids[0].as_str(), f.severity))
            .collect();
        assert_eq!(
            brief,
            vec![
                ("s1", Severity::Medium),
                ("s2", Severity::High),
                ("s3", Severity::High),
                ("s4", Severity::Medium)
            ]
        );
        assert_eq!(found[2].principal.home_tenant_id.as_deref(), Some(PARTNER));
        insta::assert_json_snapshot!("mfa_not_satisfied_fires", snapshot(&found));
    }

    #[test]
    fn stays_quiet_on_mfa_refreshes_failures_interrupts_and_service_principals() {
        let events = vec![
            sign_in("q1", "ann@contoso.com", 0).build(),
            sign_in("q2", "ann@contoso.com", 1)
                .mfa("Previously satisfied")
                .build(),
            sign_in("q3", "ann@contoso.com", 2)
                .single_factor()
                .non_interactive()
                .build(),
            sign_in("q4", "ann@contoso.com", 3)
                .single_factor()
                .fail(50126)
                .build(),
            sign_in("q5", "ann@contoso.com", 4)
                .single_factor()
                .fail(50074)
                .build(),
            sign_in("q6", "svc@contoso.com", 5)
                .single_factor()
                .with(|s| {
                    s.event_type = Some(entrawatch_ingest::model::SignInEventType::ServicePrincipal)
                })
                .build(),
            // v1.0 shape with a second factor satisfied by a claim in the token.
            sign_in("q7", "ann@contoso.com", 6)
                .with(|s| {
                    s.authentication_requirement = None;
                    s.authentication_details[1].method = Some("Previously satisfied".into());
                    s.authentication_details[1].result_detail =
                        Some("MFA requirement satisfied by claim in the token".into());
                })
                .build(),
        ];
        assert!(run(ID, DetectConfig::default(), &events).is_empty());
    }

    #[test]
    fn allow_lists_exempt_principals_and_networks() {
        let mut config = DetectConfig::default();
        config.allow.insert(
            ID.into(),
            crate::config::AllowList {
                principals: vec!["kiosk@contoso.com".into()],
                ips: vec!["192.0.2.0/24".into()],
            },
        );
        let events = vec![
            sign_in("a1", "kiosk@contoso.com", 0)
                .single_factor()
                .build(),
            sign_in("a2", "ann@contoso.com", 1)
                .single_factor()
                .ip("192.0.2.44")
                .build(),
            sign_in("a3", "ann@contoso.com", 2)
                .single_factor()
                .ip("198.51.100.1")
                .build(),
        ];
        let found = run(ID, config, &events);
        assert_eq!(
            found
                .iter()
                .map(|f| f.event_ids[0].as_str())
                .collect::<Vec<_>>(),
            vec!["a3"]
        );
    }
}
