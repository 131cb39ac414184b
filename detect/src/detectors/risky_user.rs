//! `risky-user`: see [`DOC`] for what it detects and why.

use entrawatch_ingest::model::{Body, Event, RiskLevel, RiskState};
use serde_json::{Map, json};

use crate::detector::{Context, Detector};
use crate::finding::{Finding, Principal, PrincipalKind, Severity};

pub const ID: &str = "risky-user";

/// User documentation, printed by `entrawatch rules risky-user`.
pub const DOC: &str = r#"## What it detects
A risky-user record (current state or a history item) or a risk detection whose `riskState` is
`atRisk` or `confirmedCompromised` and whose `riskLevel` is medium or high (`hidden`, on tenants
without P2, counts as medium). Every update counts, so late and offline detections raise it too.
Remediated, dismissed and confirmed-safe states never fire.

## Why it matters
Entra ID Protection has already seen something (leaked credentials, an anonymous IP, an unfamiliar
sign-in); a user left at risk is an account an attacker may hold. MITRE ATT&CK T1078.004.

## Signals used
`riskState`, `riskLevel`, `riskDetail`, `riskEventType` (detections), `detectionTimingType`,
`riskLastUpdatedDateTime` / `lastUpdatedDateTime`.

## Example
An offline `leakedCredentials` detection lands 30 hours after the activity, at `high`: this fires
high for that user. `confirmedCompromised` fires critical.

## Known false positives and tuning
Detections an admin has not yet triaged keep the user at risk; repeats group into one episode per
user. Dismiss or remediate in Entra to stop them.

## References
Microsoft Learn: "What are risks?" (Microsoft Entra ID Protection), Graph `riskyUser` and
`riskDetection` resources.
"#;

#[derive(Debug, Clone, Copy, Default)]
pub struct RiskyUser;

fn severity_of(level: &RiskLevel, state: &RiskState) -> Severity {
    if *state == RiskState::ConfirmedCompromised {
        Severity::Critical
    } else if *level == RiskLevel::High {
        Severity::High
    } else {
        Severity::Medium
    }
}

impl Detector for RiskyUser {
    fn id(&self) -> &'static str {
        ID
    }

    fn doc(&self) -> &'static str {
        DOC
    }

    fn default_severity(&self) -> Severity {
        Severity::Medium
    }

    fn observe(&self, _ctx: &Context<'_>, event: &Event, out: &mut Vec<Finding>) {
        let (level, state, user_id, upn, what, mut evidence) = match &event.body {
            Body::RiskyUser(u) => {
                let mut evidence = Map::new();
                evidence.insert("risk_detail".into(), json!(u.risk_detail));
                if let Some(h) = &u.history {
                    evidence.insert("risk_event_types".into(), json!(h.event_types));
                }
                (
                    &u.risk_level,
                    &u.risk_state,
                    Some(u.user_id.clone()),
                    u.user_principal_name.clone(),
                    None,
                    evidence,
                )
            }
            Body::RiskDetection(d) => {
                let mut evidence = Map::new();
                evidence.insert("risk_event_type".into(), json!(d.risk_event_type));
                evidence.insert("detection_timing".into(), json!(d.detection_timing_type));
                evidence.insert("ip_address".into(), json!(d.ip_address));
                evidence.insert("activity_time".into(), json!(d.activity_time));
                evidence.insert("request_id".into(), json!(d.request_id));
                (
                    &d.risk_level,
                    &d.risk_state,
                    d.user_id.clone(),
                    d.user_principal_name.clone(),
                    d.risk_event_type.clone(),
                    evidence,
                )
            }
            _ => return,
        };
        let (Some(level), Some(state)) = (level, state) else {
            return;
        };
        if !(state.is_active() && level.is_medium_or_high()) {
            return;
        }
        let Some(user_id) = user_id.or_else(|| upn.clone()) else {
            return;
        };
        let who = upn.clone().unwrap_or_else(|| user_id.clone());
        evidence.insert("risk_level".into(), json!(level));
        evidence.insert("risk_state".into(), json!(state));
        let title = match &what {
            Some(kind) => format!("Entra ID Protection: {kind} risk for {who} ({level}, {state})"),
            None => format!("Entra ID Protection marks {who} {state} at {level} risk"),
        };
        let summary = format!(
            "Microsoft Entra ID Protection reports {who} as {state} with {level} risk{}. Review the \
             user's recent sign-ins, revoke sessions and require a secure password reset; then \
             remediate or dismiss the risk in Entra.",
            what.as_ref()
                .map(|k| format!(" after a {k} detection"))
                .unwrap_or_default(),
        );
        out.push(Finding {
            rule: ID,
            severity: severity_of(level, state),
            tenant_id: event.meta.tenant_id.to_string(),
            principal: Principal {
                kind: PrincipalKind::User,
                id: user_id.to_string(),
                upn: upn.as_deref().map(str::to_owned),
                home_tenant_id: None,
            },
            time: event.meta.time,
            event_ids: vec![event.meta.id.to_string()],
            title,
            summary,
            evidence,
            mitre: &["T1078.004"],
            ip: None,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DetectConfig;
    use crate::testkit::*;

    #[test]
    fn fires_on_active_medium_or_high_risk_with_late_detections() {
        let events = vec![
            risky_user("eve@contoso.com", RiskLevel::High, RiskState::AtRisk, 0),
            risky_user("hal@contoso.com", RiskLevel::Hidden, RiskState::AtRisk, 1),
            risky_user(
                "ivy@contoso.com",
                RiskLevel::Medium,
                RiskState::ConfirmedCompromised,
                2,
            ),
            // An offline detection arriving 30 hours after the activity.
            risk_detection(
                "d1",
                "jo@contoso.com",
                "leakedCredentials",
                RiskLevel::High,
                RiskState::AtRisk,
                30 * 60,
            ),
        ];
        let found = run(ID, DetectConfig::default(), &events);
        let brief: Vec<(&str, Severity)> = found
            .iter()
            .map(|f| (f.principal.upn.as_deref().unwrap(), f.severity))
            .collect();
        assert_eq!(
            brief,
            vec![
                ("eve@contoso.com", Severity::High),
                ("hal@contoso.com", Severity::Medium),
                ("ivy@contoso.com", Severity::Critical),
                ("jo@contoso.com", Severity::High),
            ]
        );
        insta::assert_json_snapshot!("risky_user_fires", snapshot(&found));
    }

    #[test]
    fn stays_quiet_on_low_remediated_dismissed_and_safe() {
        let events = vec![
            risky_user("a@contoso.com", RiskLevel::Low, RiskState::AtRisk, 0),
            risky_user("b@contoso.com", RiskLevel::High, RiskState::Remediated, 1),
            risky_user("c@contoso.com", RiskLevel::High, RiskState::Dismissed, 2),
            risky_user(
                "d@contoso.com",
                RiskLevel::High,
                RiskState::ConfirmedSafe,
                3,
            ),
            risky_user("e@contoso.com", RiskLevel::None, RiskState::None, 4),
            risk_detection(
                "d2",
                "f@contoso.com",
                "unfamiliarFeatures",
                RiskLevel::Medium,
                RiskState::Remediated,
                5,
            ),
        ];
        assert!(run(ID, DetectConfig::default(), &events).is_empty());
    }
}
