//! `break-glass-account-used`: see [`DOC`] for what it detects and why.

use entrawatch_ingest::model::{Event, Kind, SignIn};
use serde_json::{Map, Value, json};

use super::{about_sign_in, app_name, place, who};
use crate::detector::{Context, Detector};
use crate::finding::{Finding, Severity};

pub const ID: &str = "break-glass-account-used";

/// User documentation, printed by `entrawatch rules break-glass-account-used`.
pub const DOC: &str = r#"## What it detects
Any sign-in by an account configured as break-glass (emergency access) in `detect.break_glass`,
matched per tenant by object id or user principal name: successful or failed, interrupted,
interactive or not. Every one is critical.

## Why it matters
Emergency access accounts hold Global Administrator permanently and are often left out of some
Conditional Access policies so they still work when everything else is broken. They should never
sign in outside a declared emergency or a scheduled test. A success means someone has the most
powerful account in the tenant; a failure means someone is trying its password; an MFA interrupt
(50074 or 50076, strong authentication required) means the password was right. MITRE ATT&CK
T1078.004 (Valid Accounts: Cloud Accounts).

## Signals used
The sign-in's tenant, `userId` and `userPrincipalName` against `detect.break_glass`;
`status.errorCode` and `failureReason` for the outcome; the app, resource, IP, location, device,
`authenticationDetails` and `conditionalAccessStatus` as evidence.

## Example
At 03:10 on a Sunday `bg-admin@contoso.onmicrosoft.com` signs in to the Azure portal from an
address the tenant has never used. No outage was declared: this fires critical, and the analyst
calls the on-call identity owner before anything else.

## Known false positives and tuning
Scheduled tests of the emergency procedure fire by design; announce them to the SOC instead of
silencing the rule. An account listed under the wrong tenant id never fires: after adding one, make
a test sign-in and check that the alert arrives. Allow-listing a break-glass account defeats the
purpose.

## References
Microsoft Learn: "Manage emergency access accounts in Microsoft Entra ID" (which recommends
alerting on every sign-in of these accounts), "Partner security requirements", and the sign-in
log schema (`status`).
"#;

#[derive(Debug, Clone, Copy, Default)]
pub struct BreakGlassAccountUsed;

/// How a sign-in ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Success,
    Interrupt,
    Failure,
}

impl Outcome {
    fn of(s: &SignIn) -> Outcome {
        if s.is_success() {
            Outcome::Success
        } else if s.is_interrupt() {
            Outcome::Interrupt
        } else {
            Outcome::Failure
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Interrupt => "interrupt",
            Outcome::Failure => "failure",
        }
    }
}

/// What happened, for the summary: `failed to sign in (50126: Invalid username or password)`.
fn happened(outcome: Outcome, s: &SignIn) -> String {
    let code = s
        .error_code
        .map_or_else(|| "no error code".to_owned(), |c| c.to_string());
    let reason = match (&s.failure_reason, s.error_code) {
        (Some(r), _) => format!(": {r}"),
        (None, Some(50074 | 50076)) => ": password accepted, MFA requested".to_owned(),
        (None, _) => String::new(),
    };
    match outcome {
        Outcome::Success => "signed in successfully".to_owned(),
        Outcome::Interrupt => format!("started a sign-in that was interrupted ({code}{reason})"),
        Outcome::Failure => format!("failed to sign in ({code}{reason})"),
    }
}

impl Detector for BreakGlassAccountUsed {
    fn id(&self) -> &'static str {
        ID
    }

    fn doc(&self) -> &'static str {
        DOC
    }

    fn default_severity(&self) -> Severity {
        Severity::Critical
    }

    fn kinds(&self) -> &'static [Kind] {
        &[Kind::SignIn]
    }

    fn observe(&self, ctx: &Context<'_>, event: &Event, out: &mut Vec<Finding>) {
        let Some(s) = event.as_sign_in() else { return };
        let tenant = &event.meta.tenant_id;
        let upn = s.user_principal_name.as_deref();
        let Some(id) = s.user_id.as_deref().or(upn) else {
            return;
        };
        // The principal's key, made once per event, is `id`'s when the sign-in is keyed by it.
        let id_key = crate::keys::sign_in_key(s)
            .is_some_and(|k| std::ptr::eq(k, id))
            .then(|| ctx.sign_in_keys(event).principal)
            .flatten();
        if !(ctx.config.break_glass).contains_keyed(tenant, id, id_key, upn) {
            return;
        }
        let outcome = Outcome::of(s);
        let app = app_name(s);
        let ip = s
            .ip_address
            .clone()
            .unwrap_or_else(|| "an unknown IP".into());
        let account = who(s);
        let title = match outcome {
            Outcome::Success => {
                format!("Break-glass account {account} signed in to {app} from {ip}")
            }
            Outcome::Interrupt => {
                format!("Break-glass account {account}: interrupted sign-in from {ip}")
            }
            Outcome::Failure => format!("Break-glass account {account}: failed sign-in from {ip}"),
        };
        let advice = match outcome {
            Outcome::Failure => {
                "If not, someone is trying this account: block the source address, check the \
                 account for successful sign-ins, and rotate its credentials if in any doubt."
            }
            Outcome::Success | Outcome::Interrupt => {
                "If not, treat the account as compromised: reset its credentials, revoke its \
                 sessions, and review every audit event it initiated from this time on."
            }
        };
        let methods: Vec<&str> = s
            .authentication_details
            .iter()
            .filter_map(|d| d.method.as_deref())
            .collect();
        let summary = format!(
            "Emergency access account {account} {}{} to {app} in tenant {tenant} from {ip} ({}). \
             Confirm with the identity owner that an emergency or a scheduled test is under way. \
             {advice}",
            happened(outcome, s),
            if s.is_interactive() {
                ""
            } else {
                " (non-interactive)"
            },
            place(s),
        );
        let mut evidence = Map::new();
        evidence.insert("outcome".into(), json!(outcome.as_str()));
        evidence.insert("error_code".into(), json!(s.error_code));
        evidence.insert("failure_reason".into(), json!(s.failure_reason));
        evidence.insert("app".into(), json!(app));
        evidence.insert("resource".into(), json!(s.resource_display_name));
        evidence.insert("ip_address".into(), json!(s.ip_address));
        evidence.insert("location".into(), json!(place(s)));
        evidence.insert("interactive".into(), Value::Bool(s.is_interactive()));
        evidence.insert("client_app_used".into(), json!(s.client_app_used));
        evidence.insert("user_agent".into(), json!(s.user_agent));
        evidence.insert("authentication_methods".into(), json!(methods));
        evidence.insert(
            "conditional_access_status".into(),
            json!(s.conditional_access_status),
        );
        evidence.insert(
            "device_managed".into(),
            Value::Bool(s.device.is_known_managed()),
        );
        out.push(Finding {
            rule: ID,
            severity: Severity::Critical,
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
    use crate::config::{DetectConfig, PrincipalRef};
    use crate::testkit::*;

    fn config() -> DetectConfig {
        DetectConfig {
            break_glass: vec![
                // By UPN, in a different case than the log writes it.
                PrincipalRef {
                    tenant_id: TENANT.into(),
                    id: "BG-Admin@contoso.onmicrosoft.com".into(),
                },
                // By object id, in the second tenant.
                PrincipalRef {
                    tenant_id: TENANT_B.into(),
                    id: uid("emergency@fabrikam.onmicrosoft.com"),
                },
            ]
            .into(),
            ..DetectConfig::default()
        }
    }

    #[test]
    fn fires_critical_on_every_sign_in_outcome() {
        let bg = "bg-admin@contoso.onmicrosoft.com";
        let events = vec![
            sign_in("b1", bg, 0)
                .single_factor()
                .ip("198.51.100.99")
                .place("BR", "Sao Paulo", -23.55, -46.63)
                .unmanaged()
                .build(),
            sign_in("b2", bg, 5)
                .fail(50126)
                .with(|s| s.failure_reason = Some("Invalid username or password".into()))
                .build(),
            sign_in("b3", bg, 6).fail(50074).build(),
            sign_in("b4", "emergency@fabrikam.onmicrosoft.com", 10)
                .tenant(TENANT_B)
                .non_interactive()
                .build(),
        ];
        let found = run(ID, config(), &events);
        let brief: Vec<(&str, &str, Severity)> = found
            .iter()
            .map(|f| (f.rule, f.event_ids[0].as_str(), f.severity))
            .collect();
        assert_eq!(
            brief,
            vec![
                (ID, "b1", Severity::Critical),
                (ID, "b2", Severity::Critical),
                (ID, "b3", Severity::Critical),
                (ID, "b4", Severity::Critical),
            ]
        );
        let outcomes: Vec<&Value> = found.iter().map(|f| &f.evidence["outcome"]).collect();
        assert_eq!(
            outcomes,
            [
                &json!("success"),
                &json!("failure"),
                &json!("interrupt"),
                &json!("success")
            ]
        );
        assert_eq!(found[0].ip.as_deref(), Some("198.51.100.99"));
        assert_eq!(found[3].tenant_id, TENANT_B);
        insta::assert_json_snapshot!("break_glass_account_used_fires", snapshot(&found));
    }

    #[test]
    fn stays_quiet_for_other_accounts_and_other_tenants() {
        let events = vec![
            // An ordinary Global Administrator.
            role_grant(TENANT, "megan@contoso.com", GLOBAL_ADMIN),
            sign_in("q1", "megan@contoso.com", 0).build(),
            // A look-alike name.
            sign_in("q2", "bg-admin2@contoso.onmicrosoft.com", 1).build(),
            // The same UPN and object id, but in a tenant where it is not configured.
            sign_in("q3", "bg-admin@contoso.onmicrosoft.com", 2)
                .tenant(TENANT_B)
                .build(),
            sign_in("q4", "emergency@fabrikam.onmicrosoft.com", 3).build(),
            // An audit about the account is not a sign-in by it.
            audit("q5", "Update user", 4)
                .target_user("bg-admin@contoso.onmicrosoft.com")
                .build(),
        ];
        assert!(run(ID, config(), &events).is_empty());
    }
}
