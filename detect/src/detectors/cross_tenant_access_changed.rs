//! `cross-tenant-access-changed`: see [`DOC`] for what it detects and why.
//!
//! Record shapes follow Microsoft Learn "Microsoft Entra audit log activity reference" (category
//! CrossTenantAccessSettings: `Add a partner to cross-tenant access setting`, `Update a partner
//! cross-tenant access setting`, `Update the company default cross-tenant access setting`) and
//! the Graph resources `crossTenantAccessPolicyConfigurationPartner` and
//! `crossTenantAccessPolicyInboundTrust`, whose property names (`tenantId`, `inboundTrust` with
//! `isMfaAccepted`, `isCompliantDeviceAccepted`, `isHybridAzureADJoinedDeviceAccepted`) the
//! modified properties carry as JSON text.

use std::marker::PhantomData;

use entrawatch_ingest::model::{Audit, Body, Event, Kind};
use serde_json::{Map, Value, json};

use super::{actor_ip, actor_name, actor_principal, modified_list, modified_pair, succeeded};
use crate::detector::{Context, Detector};
use crate::finding::{Finding, Severity};
use crate::settings::{Of, RuleSettings, SettingsKind};

pub const ID: &str = "cross-tenant-access-changed";

/// The inbound trust claims that let another tenant's MFA or device state satisfy this tenant's
/// Conditional Access.
const TRUST_CLAIMS: [(&str, &str); 3] = [
    ("isMfaAccepted", "MFA"),
    ("isCompliantDeviceAccepted", "compliant devices"),
    (
        "isHybridAzureADJoinedDeviceAccepted",
        "hybrid-joined devices",
    ),
];

/// User documentation, printed by `entrawatch rules cross-tenant-access-changed`.
pub const DOC: &str = r#"## What it detects
A successful change to the tenant's cross-tenant access settings that trusts another tenant
more, by anyone other than the GDAP plumbing:
- `Add a partner to cross-tenant access setting`: another tenant gets its own entry (medium;
  high when the new entry already trusts its claims);
- `Update a partner cross-tenant access setting` or `Update the company default cross-tenant
  access setting` that widens `inboundTrust`: a claim among `isMfaAccepted`,
  `isCompliantDeviceAccepted` and `isHybridAzureADJoinedDeviceAccepted` is true after the change
  and was not before (high). Changes that leave inbound trust as it was, or narrow it, do not
  fire.

The partner tenant is read from the `tenantId` modified property (else the target). Changes
initiated by an app in `plumbing_apps` (`[detect.rules.cross-tenant-access-changed]`) (by default the first-party
GDAP service principals Partner Customer Delegated Administration `2832473f-...`, Partner
Customer Delegated Admin Offline Processor `a3475900-...` and Partner Center Delegated Admin
Migrate `b39d63e7-...`) never fire; a user is never plumbing.

## Why it matters
Inbound trust lets users of the other tenant satisfy this tenant's Conditional Access with MFA
done, or a device marked compliant, at home: if that tenant is the attacker's, or is
compromised, MFA and device policies stop protecting against its users. A partner entry is also
the first step of B2B direct connect, cross-tenant sync and wider guest access. MITRE ATT&CK
T1484.002 (Domain or Tenant Policy Modification: Trust Modification): the change rewrites the
tenant's trust policy toward another tenant. T1199 (Trusted Relationship) describes the use of
that trust afterwards, which other rules (partner sign-ins) watch, so it is not claimed here.

## Signals used
`activityDisplayName`, `result`, the modified properties `tenantId` and `inboundTrust` (old and
new, JSON text) and the rest as evidence, the target, `initiatedBy` (user, or app with its app
id, service principal id and name) and its `ipAddress`, `correlationId`, and the
`plumbing_apps` setting.

## Example
`it-admin@contoso.com` adds tenant `5b1d...` as a partner with `inboundTrust`
`{"isMfaAccepted":true,"isCompliantDeviceAccepted":true}`: this fires high with the admin as the
principal, the partner tenant and the trust claims now accepted in the evidence. The same
entry written by the Partner Customer Delegated Administration app when a GDAP relationship is
approved does not fire.

## Known false positives and tuning
A planned B2B collaboration with a subsidiary or supplier, or a multitenant organisation being
set up. Confirm the partner tenant and its owner with the change ticket. Add a tool that manages
cross-tenant settings as code to `plumbing_apps` (by app id), or allow-list its service
principal under `[detect.allow.cross-tenant-access-changed]`.

## References
Microsoft Learn: "Microsoft Entra audit log activity reference" (CrossTenantAccessSettings),
"Cross-tenant access overview", "Configure cross-tenant access settings for B2B collaboration"
(inbound trust settings), Graph "crossTenantAccessPolicyInboundTrust resource type", and
Partner Center "GDAP frequently asked questions" (the GDAP service principals).
"#;

/// `[detect.rules.cross-tenant-access-changed]`: this rule's settings, with their default.
#[derive(Debug, Clone, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// The GDAP plumbing: apps whose changes to cross-tenant access never fire, by app id,
    /// service principal object id or service principal name; by display name only for records
    /// that carry no app id (Entra often writes `appId: null` for app initiators).
    /// (Default: the three GDAP service principals, by app id and by name.)
    pub plumbing_apps: Vec<String>,
}

impl RuleSettings for Settings {
    crate::settings_slot!();

    const KEYS: &'static [(&'static str, &'static str)] = &[(
        "plumbing_apps",
        "apps (app id, service principal id or name) whose changes never fire",
    )];

    fn validate(&self, path: &str) -> Vec<String> {
        (self.plumbing_apps.iter().enumerate())
            .filter(|(_, a)| a.trim().is_empty())
            .map(|(i, _)| format!("{path}.plumbing_apps[{i}]: empty"))
            .collect()
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            // The first-party service principals GDAP creates in a customer tenant ("GDAP
            // frequently asked questions"), and the one that migrated DAP to GDAP.
            plumbing_apps: [
                "2832473f-ec63-45fb-976f-5d45a7d4bb91",
                "Partner Customer Delegated Administration",
                "a3475900-ccec-4a69-98f5-a65cd5dc5306",
                "Partner Customer Delegated Admin Offline Processor",
                "b39d63e7-7fa3-4b2b-94ea-ee256fdb8c2f",
                "Partner Center Delegated Admin Migrate",
            ]
            .map(str::to_owned)
            .to_vec(),
        }
    }
}

impl Settings {
    /// Whether the audit was initiated by a plumbing app (never by a user).
    pub fn is_plumbing(&self, a: &Audit) -> bool {
        let Some(app) = a.initiated_by.app.as_ref() else {
            return false;
        };
        if a.initiated_by.user.as_ref().is_some_and(|u| u.id.is_some()) {
            return false;
        }
        let listed = |v: Option<&str>| {
            v.is_some_and(|v| {
                self.plumbing_apps
                    .iter()
                    .any(|p| p.trim().eq_ignore_ascii_case(v.trim()))
            })
        };
        listed(app.app_id.as_deref())
            || listed(app.service_principal_id.as_deref())
            || listed(app.service_principal_name.as_deref())
            || (app.app_id.is_none() && listed(app.display_name.as_deref()))
    }
}

#[derive(Debug, Clone, Copy, Default)]
pub struct CrossTenantAccessChanged;

/// What an `inboundTrust` value accepts: for each of [`TRUST_CLAIMS`], whether it is true. The
/// value is JSON text (an object, or a list holding one); keys in any casing.
fn trust_claims(value: Option<&str>) -> [bool; 3] {
    let parsed = value.and_then(|v| serde_json::from_str::<Value>(v.trim()).ok());
    let object = match &parsed {
        Some(Value::Array(items)) => items.iter().find(|v| v.is_object()),
        other => other.as_ref(),
    };
    let Some(Value::Object(map)) = object else {
        return [false; 3];
    };
    TRUST_CLAIMS.map(|(key, _)| {
        map.iter().any(|(k, v)| {
            k.eq_ignore_ascii_case(key)
                && (v.as_bool() == Some(true)
                    || v.as_str().is_some_and(|s| s.eq_ignore_ascii_case("true")))
        })
    })
}

/// The tenant the setting is about: the `tenantId` property, else the first target's id, else
/// `default` for the company default.
fn partner_tenant(a: &Audit) -> Option<String> {
    modified_pair(a, "tenantId")
        .and_then(|(old, new)| new.or(old))
        .map(|v| {
            v.trim()
                .trim_matches(|c| c == '"' || c == '[' || c == ']')
                .to_owned()
        })
        .filter(|v| !v.is_empty())
        .or_else(|| {
            a.target_resources
                .iter()
                .find_map(|t| t.id.as_deref().filter(|id| !id.trim().is_empty()))
                .map(str::to_owned)
        })
}

impl Detector for CrossTenantAccessChanged {
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
        &[Kind::Audit]
    }

    fn observe(&self, ctx: &Context<'_>, event: &Event, out: &mut Vec<Finding>) {
        let Body::Audit(a) = &event.body else { return };
        let activity = a.activity_display_name.trim();
        let is = |name: &str| activity.eq_ignore_ascii_case(name);
        let added = is("Add a partner to cross-tenant access setting");
        let default = is("Update the company default cross-tenant access setting");
        if !(added || default || is("Update a partner cross-tenant access setting"))
            || !succeeded(a)
            || ctx.config.rule::<Settings>().is_plumbing(a)
        {
            return;
        }
        let (old, new) = modified_pair(a, "inboundTrust").unwrap_or((None, None));
        let before = trust_claims(old);
        let after = trust_claims(new);
        let widened: Vec<&str> = TRUST_CLAIMS
            .iter()
            .zip(before.iter().zip(after))
            .filter(|(_, (was, is))| *is && !**was)
            .map(|((_, name), _)| *name)
            .collect();
        let severity = match (added, widened.is_empty()) {
            (_, false) => Severity::High,
            (true, true) => Severity::Medium,
            (false, true) => return,
        };
        let partner = if default { None } else { partner_tenant(a) };
        let whom = match (&partner, default) {
            (_, true) => "every external tenant without its own entry (the default)".to_owned(),
            (Some(p), false) => format!("tenant {p}"),
            (None, false) => "an unnamed tenant".to_owned(),
        };
        let tenant = &event.meta.tenant_id;
        let actor = actor_name(a);
        let from = actor_ip(a)
            .map(|ip| format!(" from {ip}"))
            .unwrap_or_default();
        let trust_text = match widened.split_last() {
            Some((last, rest)) if !rest.is_empty() => format!("{} and {last}", rest.join(", ")),
            _ => widened.join(""),
        };
        let title = match (added, widened.is_empty()) {
            (true, true) => format!("{actor} added {whom} to cross-tenant access settings"),
            (true, false) => format!(
                "{actor} added {whom} to cross-tenant access settings, trusting its {trust_text}"
            ),
            (false, _) => format!("{actor} made tenant {tenant} trust the {trust_text} of {whom}"),
        };
        let trust_sentence = if widened.is_empty() {
            "No inbound trust was granted yet; the entry is the first step to trusting that tenant's \
             MFA and device claims, B2B direct connect or cross-tenant sync."
                .to_owned()
        } else {
            format!(
                "Inbound trust now accepts that tenant's {trust_text}: its users satisfy this tenant's \
                 Conditional Access with MFA or device state asserted by their home tenant."
            )
        };
        let summary = format!(
            "{actor}{from} ran {activity} in tenant {tenant} for {whom}. {trust_sentence} Confirm the \
             partner tenant and the change with the owner of the collaboration; if it is not expected, \
             remove the entry or reset its inbound trust, review guest and direct-connect access from that \
             tenant, and review {actor}'s account and recent changes."
        );
        let mut evidence = Map::new();
        evidence.insert("activity".into(), json!(activity));
        evidence.insert("partner_tenant_id".into(), json!(partner));
        evidence.insert("default_setting".into(), json!(default));
        evidence.insert("trust_widened".into(), json!(widened));
        evidence.insert("inbound_trust_old".into(), json!(old));
        evidence.insert("inbound_trust_new".into(), json!(new));
        evidence.insert("modified_properties".into(), json!(modified_list(a)));
        evidence.insert("actor".into(), json!(actor));
        evidence.insert("ip_address".into(), json!(actor_ip(a)));
        evidence.insert("correlation_id".into(), json!(a.correlation_id));
        out.push(Finding {
            rule: ID,
            severity,
            tenant_id: tenant.to_string(),
            principal: actor_principal(a),
            time: event.meta.time,
            event_ids: vec![event.meta.id.to_string()],
            title,
            summary,
            evidence,
            mitre: &["T1484.002"],
            ip: actor_ip(a),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DetectConfig;
    use crate::finding::PrincipalKind;
    use crate::testkit::*;
    use entrawatch_ingest::model::AuditApp;

    const OTHER: &str = "5b1d2c3e-4f50-4a61-8b72-9c8d7e6f5a4b";

    /// A CrossTenantAccessSettings record on the policy target, the partner in `tenantId`.
    fn cta(id: &str, activity: &str, minute: i64, partner: &str) -> AuditB {
        audit(id, activity, minute)
            .category("CrossTenantAccessSettings")
            .by_user("it-admin@contoso.com")
            .with(|a| {
                a.initiated_by.user.as_mut().unwrap().ip_address = Some("203.0.113.45".into());
                a.logged_by_service = Some("Core Directory".into());
            })
            .target("Policy", "b1f2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d", "")
            .modified("tenantId", None, Some(partner))
    }

    fn gdap_app(a: &mut Audit) {
        a.initiated_by.user = None;
        a.initiated_by.app = Some(AuditApp {
            app_id: None,
            display_name: Some("Partner Customer Delegated Administration".into()),
            service_principal_id: Some("0c5a6b7d-8e9f-4a0b-9c1d-2e3f4a5b6c7d".into()),
            service_principal_name: None,
        });
    }

    #[test]
    fn fires_on_new_partners_and_widened_inbound_trust() {
        let events = vec![
            // A partner entry without trust: medium.
            cta("x1", "Add a partner to cross-tenant access setting", 0, OTHER).build(),
            // Its trust widened to MFA and compliant devices: high.
            cta("x2", "Update a partner cross-tenant access setting", 5, OTHER)
                .modified(
                    "inboundTrust",
                    Some("{\"isMfaAccepted\":false,\"isCompliantDeviceAccepted\":false,\"isHybridAzureADJoinedDeviceAccepted\":false}"),
                    Some("{\"isMfaAccepted\":true,\"isCompliantDeviceAccepted\":true,\"isHybridAzureADJoinedDeviceAccepted\":false}"),
                )
                .build(),
            // The default trusting every tenant's hybrid-joined devices: high.
            cta("x3", "Update the company default cross-tenant access setting", 9, "")
                .modified("inboundTrust", Some("null"), Some("[{\"isHybridAzureADJoinedDeviceAccepted\":true}]"))
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
                ("x1", Severity::Medium),
                ("x2", Severity::High),
                ("x3", Severity::High)
            ]
        );
        assert_eq!(found[0].evidence["partner_tenant_id"], json!(OTHER));
        assert_eq!(
            found[1].evidence["trust_widened"],
            json!(["MFA", "compliant devices"])
        );
        assert_eq!(found[2].evidence["default_setting"], json!(true));
        assert_eq!(found[1].principal.id, uid("it-admin@contoso.com"));
        assert_eq!(found[1].principal.kind, PrincipalKind::User);
        assert_eq!(found[1].ip.as_deref(), Some("203.0.113.45"));
        insta::assert_json_snapshot!("cross_tenant_access_changed_fires", snapshot(&found));
    }

    #[test]
    fn stays_quiet_on_gdap_plumbing_unchanged_or_narrowed_trust_and_failures() {
        let trusting = "{\"isMfaAccepted\":true,\"isCompliantDeviceAccepted\":false,\"isHybridAzureADJoinedDeviceAccepted\":false}";
        let events = vec![
            // The GDAP service principal adding the partner when a relationship is approved.
            cta(
                "q1",
                "Add a partner to cross-tenant access setting",
                0,
                OTHER,
            )
            .with(gdap_app)
            .modified("inboundTrust", None, Some(trusting))
            .build(),
            // The same by app id.
            cta(
                "q2",
                "Update a partner cross-tenant access setting",
                1,
                OTHER,
            )
            .with(|a| {
                gdap_app(a);
                let app = a.initiated_by.app.as_mut().unwrap();
                app.app_id = Some("2832473f-ec63-45fb-976f-5d45a7d4bb91".into());
                app.display_name = None;
            })
            .modified("inboundTrust", None, Some(trusting))
            .build(),
            // B2B collaboration settings changed, inbound trust as it was.
            cta(
                "q3",
                "Update a partner cross-tenant access setting",
                2,
                OTHER,
            )
            .modified("inboundTrust", Some(trusting), Some(trusting))
            .modified(
                "b2bCollaborationInbound",
                Some("null"),
                Some("{\"usersAndGroups\":{\"accessType\":\"blocked\"}}"),
            )
            .build(),
            // Trust narrowed.
            cta(
                "q4",
                "Update the company default cross-tenant access setting",
                3,
                "",
            )
            .modified(
                "inboundTrust",
                Some(trusting),
                Some("{\"isMfaAccepted\":false}"),
            )
            .build(),
            cta(
                "q5",
                "Add a partner to cross-tenant access setting",
                4,
                OTHER,
            )
            .failed()
            .build(),
            cta(
                "q6",
                "Delete partner specific cross-tenant access setting",
                5,
                OTHER,
            )
            .build(),
        ];
        let found = run(ID, DetectConfig::default(), &events);
        assert!(found.is_empty(), "{:#?}", snapshot(&found));
        // A look-alike app name with an app id that is not a GDAP one is no plumbing.
        let spoof = vec![
            cta(
                "s1",
                "Add a partner to cross-tenant access setting",
                0,
                OTHER,
            )
            .with(|a| {
                gdap_app(a);
                a.initiated_by.app.as_mut().unwrap().app_id =
                    Some("9e8d7c6b-5a49-4382-a716-f5e4d3c2b1a0".into());
            })
            .build(),
        ];
        assert_eq!(run(ID, DetectConfig::default(), &spoof).len(), 1);
    }

    #[test]
    fn settings_read_from_config_replace_the_defaults() {
        let s: Settings =
            serde_json::from_str(r#"{"plumbing_apps": ["11111111-2222-4333-8444-555555555555"]}"#)
                .unwrap();
        assert_eq!(s.plumbing_apps.len(), 1);
        assert!(Settings::default().plumbing_apps.len() >= 3);
        let mut config = DetectConfig::default();
        config.rule_mut::<Settings>().plumbing_apps = vec![" ".into()];
        assert_eq!(
            config.validate(&[]),
            ["detect.rules.cross-tenant-access-changed.plumbing_apps[0]: empty"]
        );
    }
}
