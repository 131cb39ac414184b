//! `risky-sign-in`: see [`DOC`] for what it detects and why.

use entrawatch_ingest::model::{Event, Kind, RiskLevel, RiskState, SignIn};
use serde_json::{Map, Value, json};

use super::role_names;
use super::{actor, place, sign_in_principal, who};
use crate::detector::{Context, Detector};
use crate::finding::{Finding, Principal, PrincipalKind, Severity};
use crate::privileged::PrivilegedDirectory;

pub const ID: &str = "risky-sign-in";

/// User documentation, printed by `entrawatch rules risky-sign-in`.
pub const DOC: &str = r#"## What it detects
A successful sign-in, interactive or not, that Entra ID Protection rated risky and has not cleared:
`riskLevelDuringSignIn` or `riskLevelAggregated` is `medium` or `high`, and `riskState` is
`atRisk` or `confirmedCompromised`. The severity is the higher of the two levels, one step up
(high becomes critical) when the principal is privileged: a holder of a role from the privileged
catalogue, a principal configured as privileged, or a partner technician acting through GDAP.

## Why it matters
A risky sign-in that Conditional Access let through is the moment an attacker with a stolen
password or token gets in: an anonymous or malicious IP, unfamiliar properties, a token replayed
from elsewhere. If the user had passed a risk-based MFA challenge, Entra would have set the state
to `remediated`; an active state means nobody has proved it was the owner. MITRE ATT&CK T1078.004
(Valid Accounts: Cloud Accounts).

## Signals used
`status.errorCode` (0; failures and interrupts, such as a risk policy's MFA prompt, do not fire),
`riskLevelDuringSignIn`, `riskLevelAggregated`, `riskState`, `riskDetail`, `riskEventTypes`, the
privileged directory and `crossTenantAccessType` / `homeTenantId`. Service-principal sign-ins that
carry risk fire too, keyed by the service principal. A `hidden` level (tenants without Entra ID P2)
does not fire here; `risky-user` covers those tenants, where hidden counts as medium.

## Example
ann@contoso.com signs in to Outlook on the web from an anonymising proxy; ID Protection rates the
sign-in high, the tenant has no sign-in risk policy, and the sign-in succeeds with the state
`atRisk`: this fires high. Had Ann been a Security Administrator it would fire critical.

## Known false positives and tuning
Users behind consumer VPNs or travelling often raise `unfamiliarFeatures` or
`anonymizedIPAddress`. Confirm safe in Entra (the state becomes `confirmedSafe` and later sign-ins
stop firing), or remediate with a risk-based Conditional Access policy so the user self-clears
with MFA. Non-interactive token refreshes after a risky sign-in carry the aggregated level and
fire again; they group into the same episode per principal.

## References
Microsoft Learn: "What are risk detections?" and "Risk-based access policies" (Microsoft Entra ID
Protection), "Remediate risks and unblock users", and the Graph `signIn` resource
(`riskLevelDuringSignIn`, `riskLevelAggregated`, `riskState`).
"#;

#[derive(Debug, Clone, Copy, Default)]
pub struct RiskySignIn;

/// The sign-in's risk as a severity: the higher of its two levels, when medium or high.
fn risk_severity(s: &SignIn) -> Option<Severity> {
    [&s.risk_level_during_sign_in, &s.risk_level_aggregated]
        .into_iter()
        .filter_map(|l| match l {
            Some(RiskLevel::High) => Some(Severity::High),
            Some(RiskLevel::Medium) => Some(Severity::Medium),
            _ => None,
        })
        .max()
}

impl Detector for RiskySignIn {
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
        if !s.is_success() {
            return;
        }
        let Some(state) = s.risk_state.as_ref().filter(|r| r.is_active()) else {
            return;
        };
        let Some(level) = risk_severity(s) else {
            return;
        };
        let tenant = &event.meta.tenant_id;
        let partner = PrivilegedDirectory::is_partner_technician(ctx.config, s);
        let (principal, name, privileged, roles) = if s.is_user() {
            (
                sign_in_principal(s),
                who(s),
                ctx.sign_in_is_privileged(tenant, s),
                role_names(ctx, tenant, s),
            )
        } else {
            let id = s
                .service_principal_id
                .clone()
                .or_else(|| s.app_id.clone())
                .unwrap_or_else(|| "(unknown)".into());
            let name = s
                .service_principal_name
                .clone()
                .or_else(|| s.app_display_name.clone())
                .unwrap_or_else(|| id.clone());
            let privileged = ctx.directory.is_privileged(ctx.config, tenant, &id, None);
            let principal = Principal {
                kind: PrincipalKind::ServicePrincipal,
                id: id.to_string(),
                upn: None,
                home_tenant_id: None,
            };
            (
                principal,
                format!("Service principal {name}"),
                privileged,
                Vec::new(),
            )
        };
        let severity = if privileged { level.step_up() } else { level };
        // A user signs in to an app; a service principal is the app and signs in to a resource.
        let app = if s.is_user() {
            s.app_display_name.clone().or_else(|| s.app_id.clone())
        } else {
            s.resource_display_name
                .clone()
                .or_else(|| s.resource_id.clone())
        }
        .unwrap_or_else(|| "an application".into());
        let ip = s
            .ip_address
            .clone()
            .unwrap_or_else(|| "an unknown IP".into());
        let actor = actor(name, partner, privileged);
        let level_text = level.as_str();
        let detections = if s.risk_event_types.is_empty() {
            String::new()
        } else {
            format!(" ({})", s.risk_event_types.join(", "))
        };
        let title = format!("{actor} signed in to {app} from {ip} at {level_text} risk ({state})");
        let advice = if *state == RiskState::ConfirmedCompromised {
            "An administrator has already confirmed it compromised: revoke sessions, reset the \
             credentials and review what the session did."
        } else {
            "Confirm with the owner; if it was not them, confirm the sign-in compromised in \
             Entra, revoke sessions and reset the credentials; if it was, confirm it safe."
        };
        let summary = format!(
            "{actor}{} signed in successfully{} to {app} in tenant {tenant} from {ip} ({}). Entra \
             ID Protection rated the sign-in {level_text} risk{detections} and its state is still \
             {state}. {advice}",
            if roles.is_empty() {
                String::new()
            } else {
                format!(" ({})", roles.join(", "))
            },
            if s.is_interactive() {
                ""
            } else {
                " (non-interactive)"
            },
            place(s),
        );
        let mut evidence = Map::new();
        evidence.insert(
            "risk_level_during_sign_in".into(),
            json!(s.risk_level_during_sign_in),
        );
        evidence.insert(
            "risk_level_aggregated".into(),
            json!(s.risk_level_aggregated),
        );
        evidence.insert("risk_state".into(), json!(state));
        evidence.insert("risk_detail".into(), json!(s.risk_detail));
        evidence.insert("risk_event_types".into(), json!(s.risk_event_types));
        evidence.insert(
            "app".into(),
            json!(s.app_display_name.as_ref().or(s.app_id.as_ref())),
        );
        evidence.insert("resource".into(), json!(s.resource_display_name));
        evidence.insert("ip_address".into(), json!(s.ip_address));
        evidence.insert("location".into(), json!(place(s)));
        evidence.insert("interactive".into(), Value::Bool(s.is_interactive()));
        evidence.insert(
            "authentication_requirement".into(),
            json!(s.authentication_requirement),
        );
        evidence.insert("privileged".into(), Value::Bool(privileged));
        evidence.insert("partner_technician".into(), Value::Bool(partner));
        evidence.insert("roles".into(), json!(roles));
        out.push(Finding {
            rule: ID,
            severity,
            tenant_id: tenant.to_string(),
            principal,
            time: event.meta.time,
            event_ids: vec![event.meta.id.to_string()],
            title,
            summary,
            evidence,
            mitre: &["T1078.004"],
            ip: s.ip_address.as_deref().map(str::to_owned),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DetectConfig;
    use crate::testkit::*;
    use entrawatch_ingest::model::SignInEventType;

    #[test]
    fn fires_on_active_medium_and_high_risk_one_step_up_for_admins_and_partners() {
        let events = vec![
            role_grant(TENANT, "megan@contoso.com", GLOBAL_ADMIN),
            sign_in("r1", "ann@contoso.com", 0)
                .risk(RiskLevel::Medium, RiskState::AtRisk)
                .with(|s| s.risk_event_types = vec!["unfamiliarFeatures".into()])
                .ip("198.51.100.61")
                .place("RO", "Bucharest", 44.43, 26.1)
                .build(),
            sign_in("r2", "megan@contoso.com", 5)
                .risk(RiskLevel::High, RiskState::AtRisk)
                .with(|s| s.risk_event_types = vec!["anonymizedIPAddress".into()])
                .build(),
            sign_in("r3", "user_5f0c@northwind.example", 9)
                .partner(PARTNER)
                .risk(RiskLevel::Medium, RiskState::ConfirmedCompromised)
                .build(),
            // A token refresh carrying the aggregated level of an earlier risky session.
            sign_in("r4", "bob@contoso.com", 15)
                .non_interactive()
                .with(|s| {
                    s.risk_level_during_sign_in = Some(RiskLevel::None);
                    s.risk_level_aggregated = Some(RiskLevel::High);
                    s.risk_state = Some(RiskState::AtRisk);
                })
                .build(),
            // A workload identity ID Protection flagged.
            sign_in("r5", "", 20)
                .app("Backup Agent", "0b7c6a2e-4f1d-4e8a-9c3b-5d2e1f0a9b87")
                .resource("Microsoft Graph", "00000003-0000-0000-c000-000000000000")
                .with(|s| {
                    s.event_type = Some(SignInEventType::ServicePrincipal);
                    s.user_id = None;
                    s.user_principal_name = None;
                    s.user_display_name = None;
                    s.service_principal_id = Some("sp-backup-agent".into());
                    s.service_principal_name = Some("Backup Agent".into());
                    s.authentication_requirement = None;
                    s.authentication_details.clear();
                    s.risk_level_during_sign_in = Some(RiskLevel::Medium);
                    s.risk_state = Some(RiskState::AtRisk);
                })
                .build(),
        ];
        let found = run(ID, DetectConfig::default(), &events);
        let brief: Vec<(&str, &str, Severity)> = found
            .iter()
            .map(|f| (f.rule, f.event_ids[0].as_str(), f.severity))
            .collect();
        assert_eq!(
            brief,
            vec![
                (ID, "r1", Severity::Medium),
                (ID, "r2", Severity::Critical),
                (ID, "r3", Severity::High),
                (ID, "r4", Severity::High),
                (ID, "r5", Severity::Medium),
            ]
        );
        assert_eq!(found[0].ip.as_deref(), Some("198.51.100.61"));
        assert_eq!(found[4].principal.kind, PrincipalKind::ServicePrincipal);
        assert_eq!(found[4].principal.id, "sp-backup-agent");
        insta::assert_json_snapshot!("risky_sign_in_fires", snapshot(&found));
    }

    #[test]
    fn stays_quiet_on_low_cleared_hidden_failed_and_interrupted_risk() {
        let events = vec![
            role_grant(TENANT, "megan@contoso.com", GLOBAL_ADMIN),
            sign_in("q1", "ann@contoso.com", 0).build(),
            sign_in("q2", "ann@contoso.com", 1)
                .risk(RiskLevel::Low, RiskState::AtRisk)
                .build(),
            // The user passed the risk policy's MFA: remediated.
            sign_in("q3", "megan@contoso.com", 2)
                .risk(RiskLevel::High, RiskState::Remediated)
                .with(|s| s.risk_detail = Some("userPassedMFADrivenByRiskBasedPolicy".into()))
                .build(),
            sign_in("q4", "ann@contoso.com", 3)
                .risk(RiskLevel::High, RiskState::Dismissed)
                .build(),
            sign_in("q5", "ann@contoso.com", 4)
                .risk(RiskLevel::Medium, RiskState::ConfirmedSafe)
                .build(),
            // Without P2 the level is hidden; risky-user covers those tenants.
            sign_in("q6", "ann@contoso.com", 5)
                .risk(RiskLevel::Hidden, RiskState::AtRisk)
                .build(),
            // Blocked by the risk policy, wrong password, and the risk policy's MFA prompt.
            sign_in("q7", "megan@contoso.com", 6)
                .risk(RiskLevel::High, RiskState::AtRisk)
                .fail(53003)
                .build(),
            sign_in("q8", "ann@contoso.com", 7)
                .risk(RiskLevel::High, RiskState::AtRisk)
                .fail(50126)
                .build(),
            sign_in("q9", "megan@contoso.com", 8)
                .risk(RiskLevel::High, RiskState::AtRisk)
                .fail(50074)
                .build(),
            sign_in("q10", "ann@contoso.com", 9)
                .risk(RiskLevel::None, RiskState::None)
                .build(),
        ];
        assert!(run(ID, DetectConfig::default(), &events).is_empty());
    }
}
