//! `weak-mfa-privileged`: see [`DOC`] for what it detects and why.

use entrawatch_ingest::model::{AuthenticationStep, Event, Kind, SignIn};
use serde_json::{Map, Value, json};

use super::{about_sign_in, actor, app_name, place, role_names, who};
use crate::config::DetectConfig;
use crate::detector::{Context, Detector};
use crate::finding::{Finding, Severity};
use crate::privileged::PrivilegedDirectory;

pub const ID: &str = "weak-mfa-privileged";

/// User documentation, printed by `entrawatch rules weak-mfa-privileged`.
pub const DOC: &str = r#"## What it detects
A successful interactive sign-in by a privileged principal (a holder of a role from the privileged
catalogue, active or eligible, a principal configured as privileged, or a partner technician acting
through GDAP) that completed MFA in this sign-in with phishable methods only: a second-factor step
succeeded, and no step used a phishing-resistant method. By default FIDO2 security keys, passkeys,
Windows Hello for Business, certificate-based authentication (X.509) and platform credentials count
as phishing-resistant; the list is `detect.baseline.phishing_resistant_methods`.

Steps that carry MFA over from an earlier session ("Previously satisfied", a claim in the token) say
nothing about how the MFA was done, so they are ignored: a sign-in whose only MFA is carried over
does not fire, and neither does one with no MFA at all (that is `mfa-not-satisfied`).

## Why it matters
Text messages, voice calls, push notifications and one-time codes can all be relayed by an
adversary-in-the-middle phishing kit, which then keeps the session cookie. Microsoft's CSP
security best practices and its guidance for administrators call for phishing-resistant MFA on
every admin and partner technician account. MITRE ATT&CK T1078.004 (Valid Accounts: Cloud
Accounts) and T1111 (Multi-Factor Authentication Interception).

## Signals used
`status.errorCode` (0), `isInteractive` or the Event Hub category, `authenticationDetails`
(`authenticationMethod`, `succeeded`, `authenticationStepRequirement`,
`authenticationStepResultDetail`), the privileged directory, `detect.privileged_principals` and
`crossTenantAccessType` / `homeTenantId` for partner technicians. A step that failed is not counted
as used: a failed security-key attempt followed by a successful text message still fires.

## Example
megan@contoso.com, a Global Administrator, signs in to the Azure portal with her password and a
text message code. The Conditional Access policy for admins asks for "MFA", not for the
phishing-resistant authentication strength: this fires high. The next morning she signs in with
her FIDO2 key: quiet.

## Known false positives and tuning
Admins who have not yet registered a phishing-resistant method fire on every fresh MFA prompt until
they do; repeats group into one episode per principal. Methods the tenant names differently (a
third-party certificate provider, a new passkey label) can be added to
`detect.baseline.phishing_resistant_methods`. Break-glass accounts should use FIDO2 keys; if one
cannot, put it in `[detect.allow.weak-mfa-privileged]`.

## References
Microsoft Learn: "Conditional Access authentication strengths" (the built-in "Phishing-resistant
MFA" strength), "Plan a phishing-resistant passwordless authentication deployment in Microsoft
Entra ID", "Partner security requirements", and the sign-in log schema (`authenticationDetails`).
"#;

#[derive(Debug, Clone, Copy, Default)]
pub struct WeakMfaPrivileged;

/// A step that only carries an earlier MFA over ("Previously satisfied", a claim in the token).
fn carried_over(step: &AuthenticationStep) -> bool {
    let method = step.method.as_deref().unwrap_or("").to_ascii_lowercase();
    let result = step
        .result_detail
        .as_deref()
        .unwrap_or("")
        .to_ascii_lowercase();
    method.contains("previously satisfied")
        || method.contains("claim in")
        || result.contains("claim in the token")
}

/// The methods of the steps done in this sign-in, when it performed MFA with none of them
/// phishing-resistant; `None` otherwise.
fn weak_mfa_methods<'a>(config: &DetectConfig, s: &'a SignIn) -> Option<Vec<&'a str>> {
    let fresh: Vec<&AuthenticationStep> = s
        .authentication_details
        .iter()
        .filter(|d| !carried_over(d) && d.succeeded != Some(false))
        .collect();
    let performed_mfa = fresh
        .iter()
        .any(|d| d.succeeded == Some(true) && d.is_second_factor());
    let methods: Vec<&str> = fresh.iter().filter_map(|d| d.method.as_deref()).collect();
    let resistant = methods.iter().any(|m| config.is_phishing_resistant(m));
    (performed_mfa && !resistant).then_some(methods)
}

impl Detector for WeakMfaPrivileged {
    fn id(&self) -> &'static str {
        ID
    }

    fn doc(&self) -> &'static str {
        DOC
    }

    fn default_severity(&self) -> Severity {
        Severity::High
    }

    fn kinds(&self) -> &'static [Kind] {
        &[Kind::SignIn]
    }

    fn observe(&self, ctx: &Context<'_>, event: &Event, out: &mut Vec<Finding>) {
        let Some(s) = event.as_sign_in() else { return };
        if !(s.is_user() && s.is_interactive() && s.is_success()) {
            return;
        }
        let tenant = &event.meta.tenant_id;
        if !ctx.sign_in_is_privileged(tenant, s) {
            return;
        }
        let Some(methods) = weak_mfa_methods(ctx.config, s) else {
            return;
        };
        let partner = PrivilegedDirectory::is_partner_technician(ctx.config, s);
        let roles = role_names(ctx, tenant, s);
        let second: Vec<&str> = s
            .authentication_details
            .iter()
            .filter(|d| !carried_over(d) && d.succeeded == Some(true) && d.is_second_factor())
            .filter_map(|d| d.method.as_deref())
            .collect();
        let mfa = if second.is_empty() {
            "an unnamed method".to_owned()
        } else {
            second.join(", ")
        };
        let app = app_name(s);
        let ip = s
            .ip_address
            .clone()
            .unwrap_or_else(|| "an unknown IP".into());
        let actor = actor(who(s), partner, true);
        let title = format!("{actor} signed in to {app} with phishable MFA ({mfa})");
        let summary = format!(
            "{actor}{} signed in interactively to {app} in tenant {tenant} from {ip} ({}) and \
             completed MFA with {mfa}, which a phishing proxy can relay; no phishing-resistant \
             method was used. Confirm the sign-in with the person. If it was not them, revoke \
             sessions and reset the password and MFA methods. Either way, register a FIDO2 key, \
             passkey or Windows Hello for Business for this account and require the \
             phishing-resistant authentication strength for admin roles.",
            if roles.is_empty() {
                String::new()
            } else {
                format!(" ({})", roles.join(", "))
            },
            place(s),
        );
        let mut evidence = Map::new();
        evidence.insert("app".into(), json!(app));
        evidence.insert("resource".into(), json!(s.resource_display_name));
        evidence.insert("ip_address".into(), json!(s.ip_address));
        evidence.insert("location".into(), json!(place(s)));
        evidence.insert("authentication_methods".into(), json!(methods));
        evidence.insert("mfa_methods".into(), json!(second));
        evidence.insert(
            "authentication_requirement".into(),
            json!(s.authentication_requirement),
        );
        evidence.insert(
            "conditional_access_status".into(),
            json!(s.conditional_access_status),
        );
        evidence.insert("partner_technician".into(), Value::Bool(partner));
        evidence.insert("roles".into(), json!(roles));
        out.push(Finding {
            rule: ID,
            severity: Severity::High,
            title,
            summary,
            evidence,
            mitre: &["T1078.004", "T1111"],
            ..about_sign_in(event, s)
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DetectConfig;
    use crate::config::PrincipalRef;
    use crate::testkit::*;

    fn step(method: &str, requirement: &str, ok: bool) -> AuthenticationStep {
        AuthenticationStep {
            method: Some(method.into()),
            succeeded: Some(ok),
            requirement: Some(requirement.into()),
            ..AuthenticationStep::default()
        }
    }

    fn config() -> DetectConfig {
        DetectConfig {
            privileged_principals: vec![PrincipalRef {
                tenant_id: TENANT.into(),
                id: "secops@contoso.com".into(),
            }]
            .into(),
            ..DetectConfig::default()
        }
    }

    #[test]
    fn fires_on_fresh_phishable_mfa_by_admins_configured_principals_and_partners() {
        let events = vec![
            role_grant(TENANT, "megan@contoso.com", GLOBAL_ADMIN),
            sign_in("w1", "megan@contoso.com", 0)
                .mfa("Text message")
                .ip("198.51.100.7")
                .build(),
            sign_in("w2", "user_5f0c@northwind.example", 10)
                .partner(PARTNER)
                .mfa("Mobile app notification")
                .build(),
            // A carried-over claim next to a fresh, phishable prompt: the fresh prompt decides.
            sign_in("w3", "secops@contoso.com", 20)
                .with(|s| {
                    s.authentication_details = vec![
                        step("Password", "Primary authentication", true),
                        step("Previously satisfied", "Multi-factor authentication", true),
                        step(
                            "OATH verification code",
                            "Multi-factor authentication",
                            true,
                        ),
                    ];
                })
                .build(),
            // The security key failed; the text message that followed is what got her in.
            sign_in("w4", "megan@contoso.com", 30)
                .with(|s| {
                    s.authentication_details = vec![
                        step("Password", "Primary authentication", true),
                        step("FIDO2 security key", "Multi-factor authentication", false),
                        step("Text message", "Multi-factor authentication", true),
                    ];
                })
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
                (ID, "w1", Severity::High),
                (ID, "w2", Severity::High),
                (ID, "w3", Severity::High),
                (ID, "w4", Severity::High),
            ]
        );
        assert_eq!(found[0].ip.as_deref(), Some("198.51.100.7"));
        assert_eq!(found[0].evidence["roles"], json!(["Global Administrator"]));
        assert_eq!(
            found[2].evidence["mfa_methods"],
            json!(["OATH verification code"])
        );
        assert_eq!(
            found[3].evidence["authentication_methods"],
            json!(["Password", "Text message"])
        );
        insta::assert_json_snapshot!("weak_mfa_privileged_fires", snapshot(&found));
    }

    #[test]
    fn stays_quiet_on_phishing_resistant_carried_over_and_ordinary_sign_ins() {
        let events = vec![
            role_grant(TENANT, "megan@contoso.com", GLOBAL_ADMIN),
            // Phishing-resistant methods, as a second factor or as the primary credential.
            sign_in("q1", "megan@contoso.com", 0)
                .mfa("FIDO2 security key")
                .build(),
            sign_in("q2", "megan@contoso.com", 1)
                .mfa("Passkey (Microsoft Authenticator)")
                .build(),
            sign_in("q3", "megan@contoso.com", 2)
                .with(|s| {
                    s.authentication_details = vec![
                        step("Windows Hello for Business", "Primary authentication", true),
                        step(
                            "Mobile app notification",
                            "Multi-factor authentication",
                            true,
                        ),
                    ];
                })
                .build(),
            sign_in("q4", "user_5f0c@northwind.example", 3)
                .partner(PARTNER)
                .mfa("X.509 Certificate")
                .build(),
            // MFA carried over from an earlier session proves nothing either way.
            sign_in("q5", "megan@contoso.com", 4)
                .mfa("Previously satisfied")
                .build(),
            sign_in("q6", "megan@contoso.com", 5)
                .with(|s| {
                    s.authentication_details[1].result_detail =
                        Some("MFA requirement satisfied by claim in the token".into());
                })
                .build(),
            // No MFA at all is mfa-not-satisfied's finding, not this one.
            sign_in("q7", "megan@contoso.com", 6)
                .single_factor()
                .build(),
            // Phishable MFA by an ordinary user.
            sign_in("q8", "ann@contoso.com", 7)
                .mfa("Text message")
                .build(),
            // Token refreshes, MFA denied, and the MFA interrupt.
            sign_in("q9", "megan@contoso.com", 8)
                .mfa("Text message")
                .non_interactive()
                .build(),
            sign_in("q10", "megan@contoso.com", 9)
                .mfa("Text message")
                .fail(500121)
                .build(),
            sign_in("q11", "megan@contoso.com", 10)
                .mfa("Text message")
                .fail(50074)
                .build(),
        ];
        assert!(run(ID, config(), &events).is_empty());
    }
}
