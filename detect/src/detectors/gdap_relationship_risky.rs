//! `gdap-relationship-risky`: see [`DOC`] for what it detects and why.
//!
//! In: GDAP relationship events ([`Body::Gdap`]), which the Graph source's GDAP discovery reads
//! from `/v1.0/tenantRelationships/delegatedAdminRelationships` (Microsoft Graph
//! `delegatedAdminRelationship`: `status`, `accessDetails.unifiedRoles[].roleDefinitionId`,
//! `duration`, `autoExtendDuration`, `endDateTime`), one per relationship and modification, in the
//! customer's tenant. Out: one finding per active relationship that grants a tier-0 role, is
//! auto-extended longer than allowed, or lasts longer than allowed. Its settings
//! (`[detect.rules.gdap-relationship-risky]`, [`Settings`]) live here.

use std::marker::PhantomData;

use entrawatch_ingest::model::{Body, Event, GdapRelationship, Kind};
use serde::{Deserialize, Serialize};
use serde_json::{Map, json};

use super::names_of_roles;
use super::partner_sensitive_change::TIER_0;
use crate::detector::{Context, Detector};
use crate::finding::{Finding, Principal, PrincipalKind, Severity};
use crate::settings::{Of, RuleSettings, SettingsKind};

pub const ID: &str = "gdap-relationship-risky";

/// The Global Administrator role template.
const GLOBAL_ADMINISTRATOR: &str = "62e90394-69f5-4237-9190-012177145e10";

/// User documentation, printed by `entrawatch rules gdap-relationship-risky`.
pub const DOC: &str = r#"## What it detects
An active granular delegated admin privileges (GDAP) relationship between a partner and a customer
tenant that is not least-privilege and time-bound:
- it grants **Global Administrator** (critical) or another **tier-0** role: Privileged Role
  Administrator, Privileged Authentication Administrator, Security Administrator, Conditional
  Access Administrator, Hybrid Identity Administrator, Application Administrator or Cloud
  Application Administrator (high);
- it is **auto-extended** (`autoExtendDuration`) by more than `max_auto_extend_days` (default 0:
  any auto-extension) (medium);
- it **lasts** (`duration`) longer than `max_duration_days` (default 365) (medium).

One finding per relationship state: a relationship is seen again only when it changes
(`lastModifiedDateTime`). Relationships not `active` (pending, expired, terminated) do not fire.

## Why it matters
A GDAP relationship lets every technician the partner puts in its access groups act in the
customer tenant with the roles it grants. A partner tenant that is breached (the NOBELIUM
campaigns against resellers and service providers) reaches every customer through them: Global
Administrator or another tier-0 role there is control of the customer's identity, and a
relationship that renews itself or runs for two years outlives the work it was made for.
Microsoft's guidance for CSP partners is least privilege (the fewest, lowest roles a task needs,
no Global Administrator) and time-bound access (the shortest duration, auto-extension only where
a long contract needs it). MITRE ATT&CK T1199 (Trusted Relationship) and T1078.004 (Valid
Accounts: Cloud Accounts).

## Signals used
The relationship's `status`, `accessDetails.unifiedRoles[].roleDefinitionId`, `duration`,
`autoExtendDuration`, `endDateTime`, `displayName`, `customer` (tenant id and name) and
`lastModifiedDateTime` (the event time), as the Graph source's discovery (`discover = "gdap"`)
reads them with the partner's token.

## Example
Relationship `Contoso admin relationship`, active, with Exchange Administrator and Global
Administrator for 730 days, auto-extended by 180 days: fires critical for Contoso's tenant, with
both roles, the tier-0 one, the duration and the auto-extension in the evidence.

## Known false positives and tuning
A relationship being migrated from DAP keeps Global Administrator until it is replaced: fix the
relationship, do not tune the rule. Long contracts may justify a longer duration or the 180-day
auto-extension: raise `max_duration_days` or `max_auto_extend_days` under
`[detect.rules.gdap-relationship-risky]`, or allow-list one customer tenant under
`[detect.allow.gdap-relationship-risky]` (principals: the customer tenant id).

## References
Microsoft Learn: "delegatedAdminRelationship resource type" (Graph v1.0), "Granular delegated
admin privileges (GDAP) introduction" and "GDAP frequently asked questions" (least-privileged
roles, no Global Administrator with auto-extension), "Partner security requirements", and
Microsoft's enterprise access model (tier 0).
"#;

/// `[detect.rules.gdap-relationship-risky]`: this rule's settings, each with its default.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// Longest auto-extension allowed, in days (default 0: none).
    pub max_auto_extend_days: u32,
    /// Longest relationship allowed, in days (default 365; GDAP allows 1 to 730).
    pub max_duration_days: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            max_auto_extend_days: 0,
            max_duration_days: 365,
        }
    }
}

impl RuleSettings for Settings {
    crate::settings_slot!();

    const KEYS: &'static [(&'static str, &'static str)] = &[
        (
            "max_auto_extend_days",
            "longest auto-extension allowed, in days (0: none)",
        ),
        (
            "max_duration_days",
            "longest relationship allowed, in days (GDAP allows 1 to 730)",
        ),
    ];

    fn validate(&self, path: &str) -> Vec<String> {
        let mut p = Vec::new();
        if self.max_duration_days == 0 {
            p.push(format!(
                "{path}.max_duration_days: must be greater than zero"
            ));
        }
        p
    }
}

#[derive(Debug, Clone, Copy, Default)]
pub struct GdapRelationshipRisky;

/// Why a relationship is risky: the tier-0 roles it grants, its auto-extension and duration
/// when over the limits.
struct Risks {
    tier_0: Vec<String>,
    global_admin: bool,
    auto_extend_days: Option<i64>,
    duration_days: Option<i64>,
}

fn risks(g: &GdapRelationship, settings: &Settings) -> Option<Risks> {
    let active = g
        .status
        .as_deref()
        .is_some_and(|s| s.trim().eq_ignore_ascii_case("active"));
    if !active {
        return None;
    }
    let tier_0: Vec<String> = g
        .role_definition_ids
        .iter()
        .filter(|r| TIER_0.iter().any(|t| t.eq_ignore_ascii_case(r)))
        .map(|r| r.to_string())
        .collect();
    let global_admin = tier_0.iter().any(|r| r == GLOBAL_ADMINISTRATOR);
    let auto_extend_days = g
        .auto_extend_days
        .filter(|d| *d > i64::from(settings.max_auto_extend_days));
    let duration_days = g
        .duration_days
        .filter(|d| *d > i64::from(settings.max_duration_days));
    (!tier_0.is_empty() || auto_extend_days.is_some() || duration_days.is_some()).then_some(Risks {
        tier_0,
        global_admin,
        auto_extend_days,
        duration_days,
    })
}

impl Detector for GdapRelationshipRisky {
    fn id(&self) -> &'static str {
        ID
    }

    fn settings(&self) -> Option<&'static dyn SettingsKind> {
        Some(&Of::<Settings>(PhantomData))
    }

    fn doc(&self) -> &'static str {
        DOC
    }

    fn default_severity(&self) -> Severity {
        Severity::High
    }

    fn kinds(&self) -> &'static [Kind] {
        &[Kind::GdapRelationship]
    }

    fn observe(&self, ctx: &Context<'_>, event: &Event, out: &mut Vec<Finding>) {
        let Body::Gdap(g) = &event.body else { return };
        let settings = ctx.config.rule::<Settings>();
        let Some(r) = risks(g, settings) else { return };
        let severity = if r.global_admin {
            Severity::Critical
        } else if !r.tier_0.is_empty() {
            Severity::High
        } else {
            Severity::Medium
        };
        let tenant = &event.meta.tenant_id;
        let customer = g
            .customer_display_name
            .as_deref()
            .map(|n| format!("{n} ({tenant})"))
            .unwrap_or_else(|| tenant.to_string());
        let name = g.display_name.as_deref().unwrap_or(event.meta.id.as_str());
        let mut reasons = Vec::new();
        if !r.tier_0.is_empty() {
            reasons.push(format!(
                "grants the tier-0 role{} {}",
                if r.tier_0.len() > 1 { "s" } else { "" },
                names_of_roles(&r.tier_0).join(", ")
            ));
        }
        if let Some(d) = r.auto_extend_days {
            reasons.push(format!(
                "renews itself by {d} days (limit {})",
                settings.max_auto_extend_days
            ));
        }
        if let Some(d) = r.duration_days {
            reasons.push(format!(
                "lasts {d} days (limit {})",
                settings.max_duration_days
            ));
        }
        let title = format!(
            "GDAP relationship {name:?} with {customer} {}",
            reasons.join("; ")
        );
        let end = g
            .end
            .map(|e| format!(" It ends {}.", e.to_rfc3339()))
            .unwrap_or_default();
        let summary = format!(
            "The partner's active GDAP relationship {name:?} with customer {customer} {}.{end} Every \
             technician in the partner's access groups for it can act in this tenant with its roles. \
             Confirm with the partner which tasks need them; ask for a relationship with the fewest, \
             lowest roles and the shortest duration, without auto-extension, and have the customer \
             end this one (Microsoft 365 admin center, Partner relationships).",
            reasons.join("; ")
        );
        let mut evidence = Map::new();
        evidence.insert("relationship_id".into(), json!(event.meta.id));
        evidence.insert("relationship_name".into(), json!(g.display_name));
        evidence.insert("customer_name".into(), json!(g.customer_display_name));
        evidence.insert("status".into(), json!(g.status));
        evidence.insert(
            "roles".into(),
            json!(names_of_roles(
                &g.role_definition_ids
                    .iter()
                    .map(|r| r.to_string())
                    .collect::<Vec<_>>()
            )),
        );
        evidence.insert("tier_0_roles".into(), json!(names_of_roles(&r.tier_0)));
        evidence.insert("duration_days".into(), json!(g.duration_days));
        evidence.insert("auto_extend_days".into(), json!(g.auto_extend_days));
        evidence.insert("end".into(), json!(g.end.map(|e| e.to_rfc3339())));
        out.push(Finding {
            rule: ID,
            severity,
            tenant_id: tenant.to_string(),
            principal: Principal {
                kind: PrincipalKind::Tenant,
                id: tenant.to_string(),
                upn: None,
                home_tenant_id: None,
            },
            time: event.meta.time,
            event_ids: vec![event.meta.id.to_string()],
            title,
            summary,
            evidence,
            mitre: &["T1199", "T1078.004"],
            ip: None,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DetectConfig;
    use crate::testkit::*;
    use entrawatch_ingest::model::{Meta, Shape, TimeSource};

    const EXCHANGE_ADMIN: &str = "29232cdf-9323-42fd-ade2-1d097af3e4de";
    const SECURITY_ADMIN: &str = "194ae4cb-b126-40b2-bd5b-6091b380977d";
    const HELPDESK_ADMIN: &str = "729827e3-9c14-49f7-bb1b-9608f156bbb8";

    /// A relationship as discovery reads it (Microsoft Learn's example: 730 days, 180 days of
    /// auto-extension), with `roles`, in `TENANT`.
    fn rel(id: &str, minute: i64, status: &str, roles: &[&str], days: i64, extend: i64) -> Event {
        Event {
            meta: Meta {
                id: id.into(),
                tenant_id: TENANT.into(),
                time: at(minute),
                time_source: TimeSource::Record,
                shape: Shape::Graph,
            },
            body: Body::Gdap(Box::new(GdapRelationship {
                display_name: Some(format!("Contoso {id}").into()),
                status: Some(status.into()),
                customer_display_name: Some("Contoso Ltd".into()),
                role_definition_ids: roles.iter().map(|r| (*r).into()).collect(),
                duration_days: Some(days),
                auto_extend_days: Some(extend),
                activated: Some(at(minute)),
                end: Some(at(minute) + chrono::Duration::days(days)),
            })),
        }
    }

    #[test]
    fn fires_on_tier_0_roles_auto_extension_and_long_relationships() {
        let events = vec![
            rel("g1", 0, "active", &[EXCHANGE_ADMIN, GLOBAL_ADMIN], 730, 180),
            rel("g2", 1, "active", &[SECURITY_ADMIN], 90, 0),
            rel("g3", 2, "active", &[HELPDESK_ADMIN], 180, 180),
            rel("g4", 3, "active", &[HELPDESK_ADMIN], 730, 0),
        ];
        let found = run(ID, DetectConfig::default(), &events);
        let brief: Vec<(&str, Severity)> = found
            .iter()
            .map(|f| (f.event_ids[0].as_str(), f.severity))
            .collect();
        assert_eq!(
            brief,
            vec![
                ("g1", Severity::Critical),
                ("g2", Severity::High),
                ("g3", Severity::Medium),
                ("g4", Severity::Medium)
            ]
        );
        assert_eq!(
            found[0].evidence["tier_0_roles"],
            json!(["Global Administrator"])
        );
        assert!(
            found[2].title.contains("renews itself by 180 days"),
            "{}",
            found[2].title
        );
        assert!(
            found[3].title.contains("lasts 730 days"),
            "{}",
            found[3].title
        );
        assert_eq!(found[0].principal.kind, PrincipalKind::Tenant);
        assert_eq!(found[0].tenant_id, TENANT);
        insta::assert_json_snapshot!("gdap_relationship_risky_fires", snapshot(&found));
    }

    #[test]
    fn stays_quiet_on_least_privilege_time_bound_or_inactive_relationships() {
        let events = vec![
            // Least privilege, 90 days, no auto-extension.
            rel("q1", 0, "active", &[HELPDESK_ADMIN, EXCHANGE_ADMIN], 90, 0),
            // Global Administrator, but not granted (yet, or any more).
            rel("q2", 1, "approvalPending", &[GLOBAL_ADMIN], 730, 180),
            rel("q3", 2, "expired", &[GLOBAL_ADMIN], 730, 0),
            rel("q4", 3, "terminated", &[SECURITY_ADMIN], 30, 0),
        ];
        let found = run(ID, DetectConfig::default(), &events);
        assert!(found.is_empty(), "{:#?}", snapshot(&found));
    }

    #[test]
    fn the_limits_come_from_the_settings() {
        let events = vec![rel("t1", 0, "active", &[HELPDESK_ADMIN], 730, 180)];
        let mut config = DetectConfig::default();
        *config.rule_mut::<Settings>() = Settings {
            max_auto_extend_days: 180,
            max_duration_days: 730,
        };
        assert!(run(ID, config.clone(), &events).is_empty());
        config.rule_mut::<Settings>().max_duration_days = 729;
        assert_eq!(run(ID, config, &events).len(), 1);
        let parsed: Settings =
            serde_json::from_value(json!({"max_auto_extend_days": 180, "max_duration_days": 400}))
                .unwrap();
        assert_eq!(parsed.max_duration_days, 400);
        assert!(serde_json::from_value::<Settings>(json!({"max_days": 1})).is_err());
        assert_eq!(
            Settings {
                max_duration_days: 0,
                ..Settings::default()
            }
            .validate("detect.rules.gdap-relationship-risky"),
            ["detect.rules.gdap-relationship-risky.max_duration_days: must be greater than zero"]
        );
    }
}
