//! `security-info-changed-privileged`: see [`DOC`] for what it detects and why.

use std::marker::PhantomData;

use entrawatch_ingest::model::{Audit, Body, Event, Kind, TargetResource};
use serde_json::{Map, Value, json};

use super::{actor_ip, actor_name, partner_initiator, succeeded, with_ascii_lowercase};
use crate::detector::{Context, Detector};
use crate::finding::{Finding, Principal, PrincipalKind, Severity};
use crate::settings::{Of, RuleSettings, SettingsKind};

pub const ID: &str = "security-info-changed-privileged";

/// `Update user` properties that hold authentication and recovery information.
const METHOD_PROPERTIES: [&str; 4] = [
    "StrongAuthenticationUserDetails",
    "StrongAuthenticationMethod",
    "StrongAuthenticationPhoneAppDetail",
    "StrongAuthenticationRequirement",
];

/// Activities that are a security-info change by name (lower case).
const ACTIVITIES: [&str; 8] = [
    "user registered security info",
    "user registered all required security info",
    "user changed default security info",
    "user deleted security info",
    "admin registered security info",
    "admin updated security info",
    "admin deleted security info",
    "disable strong authentication",
];

/// User documentation, printed by `entrawatch rules security-info-changed-privileged`.
pub const DOC: &str = r#"## What it detects
A successful change to the authentication or recovery information of a privileged principal (a
role of the privileged catalogue, active or eligible, or a principal configured as privileged):

- `Update user` whose modified properties, or its `Included Updated Properties` list, touch
  StrongAuthenticationUserDetails, StrongAuthenticationMethod,
  StrongAuthenticationPhoneAppDetail or StrongAuthenticationRequirement;
- `User registered security info` (and `... all required security info`), `User changed default
  security info`, `User deleted security info`, `Admin registered security info`, `Admin
  updated security info`, `Admin deleted security info`, `Disable Strong Authentication`;
- a Temporary Access Pass issued to the user: Entra writes `Admin registered security info`
  (category UserManagement, service Authentication Methods) with the result reason `Admin
  registered temporary access pass method for user`; any activity or result reason naming a
  temporary access pass that was registered, added or created counts (evidence `change`:
  `Temporary Access Pass created`). Deleting a pass is `Admin deleted security info`.

High; critical when another user made the change (an admin or helpdesk acting on the account),
when the actor is a partner technician, or when the target had a risky sign-in (medium or high,
at risk) in the previous `risky_hours` (default 6). Changes an app initiated stay
high: Microsoft's own services (`Azure MFA StrongAuthenticationService`) write users'
self-service registrations that way. Regular users managing their own methods never fire.

## Why it matters
An attacker holding an admin's password or session registers their own phone or authenticator,
or issues a Temporary Access Pass, so they keep the account after a password reset and pass
every MFA prompt. Microsoft's CSP guidance asks partners to review admins' recovery information.
MITRE ATT&CK T1556.006 (Modify Authentication Process: Multi-Factor Authentication) and T1098
(Account Manipulation).

## Signals used
`activityDisplayName`, `resultReason`, `result`, `targetResources` (the user and its modified
properties), `initiatedBy` (user id, UPN, `homeTenantId`, `ipAddress`, or app), the privileged
directory, and the target's last risky sign-in from entrawatch's 30-day state.

## Example
Two hours after a high-risk sign-in from an anonymising proxy, Global Administrator
`megan@contoso.com` "registers" a new Microsoft Authenticator: this fires critical. A helpdesk
admin adding a phone number to the same account, or issuing Megan a Temporary Access Pass, would
also be critical (actor is not the target); Megan adding a FIDO2 key on an ordinary day is high.
A pass issued to a regular user by the helpdesk stays quiet.

## Known false positives and tuning
Admins replacing phones, and onboarding of new admins (often with a Temporary Access Pass from the
helpdesk, critical), fire; one registration writes several audits, which group into one alert per
admin. A pass issued by an onboarding app stays high. Confirm with the admin through a channel that does
not use the new method. Allow-list a helpdesk identity-verification service by object id under
`[detect.allow.security-info-changed-privileged]`; tune `risky_hours`.

## References
Microsoft Learn: "Audit activity reference" (UserManagement and Authentication Methods),
"Configure Temporary Access Pass", "Combined security information registration", and the Partner
Center "Partner security requirements".
"#;

/// `[detect.rules.security-info-changed-privileged]`: this rule's settings, each with its default.
#[derive(Debug, Clone, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// A risky sign-in of the target this recent makes the change critical (default 6).
    pub risky_hours: i64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings { risky_hours: 6 }
    }
}

impl RuleSettings for Settings {
    crate::settings_slot!();

    const KEYS: &'static [(&'static str, &'static str)] = &[(
        "risky_hours",
        "a risky sign-in of the target this recent makes the change critical",
    )];

    fn validate(&self, path: &str) -> Vec<String> {
        crate::settings::greater_than_zero(path, &[("risky_hours", self.risky_hours as f64)])
    }
}

#[derive(Debug, Clone, Copy, Default)]
pub struct SecurityInfoChangedPrivileged;

/// What changed, if the audit is a security-info change. Asked of every audit, so the common
/// answer ("no") is reached without allocating.
fn change_of(a: &Audit) -> Option<String> {
    let activity = a.activity_display_name.trim();
    let reason = a.result_reason.as_deref().unwrap_or("");
    let tap_created = |text: &str| {
        with_ascii_lowercase(text, |s| {
            s.contains("temporary access pass")
                && (s.starts_with("create") || s.contains("registered") || s.contains("added"))
        })
    };
    if tap_created(activity) || tap_created(reason) {
        return Some("Temporary Access Pass created".to_owned());
    }
    if ACTIVITIES.iter().any(|x| activity.eq_ignore_ascii_case(x)) {
        return Some(activity.to_owned());
    }
    if !activity.eq_ignore_ascii_case("update user") {
        return None;
    }
    // The properties the audit names: each modified property, and the list an "Included Updated
    // Properties" entry carries.
    let listed = || {
        a.target_resources
            .iter()
            .flat_map(|t| &t.modified_properties)
            .filter_map(|p| p.display_name.as_deref().map(|n| (n, p)))
            .flat_map(|(n, p)| {
                let included = n.eq_ignore_ascii_case("Included Updated Properties");
                let list = included.then(|| {
                    p.new_value
                        .as_deref()
                        .unwrap_or("")
                        .split(',')
                        .map(|x| x.trim().trim_matches('"').trim())
                });
                list.into_iter()
                    .flatten()
                    .chain((!included).then(|| n.trim()))
            })
    };
    let touched: Vec<&str> = METHOD_PROPERTIES
        .into_iter()
        .filter(|m| listed().any(|x| x.eq_ignore_ascii_case(m)))
        .collect();
    (!touched.is_empty()).then(|| format!("Update user: {}", touched.join(", ")))
}

/// The user whose security info changed.
fn target_of(a: &Audit) -> Option<&TargetResource> {
    a.target_resources
        .iter()
        .find(|t| {
            t.id.is_some()
                && t.resource_type
                    .as_deref()
                    .is_some_and(|k| k.eq_ignore_ascii_case("User"))
        })
        .or_else(|| a.target_resources.iter().find(|t| t.id.is_some()))
}

/// Whether the initiator is a user other than the target. App initiators do not count: Microsoft's
/// own services (`Azure MFA StrongAuthenticationService`) write a user's self-service registration.
fn actor_is_other(a: &Audit, target_id: &str, target_upn: Option<&str>) -> bool {
    a.initiated_by.user.as_ref().is_some_and(|u| {
        let same_id = u.id.as_deref().is_some_and(|i| i.eq_ignore_ascii_case(target_id));
        let same_upn = matches!((u.user_principal_name.as_deref(), target_upn), (Some(x), Some(y)) if x.eq_ignore_ascii_case(y));
        !(same_id || same_upn)
    })
}

impl Detector for SecurityInfoChangedPrivileged {
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
        if !succeeded(a) {
            return;
        }
        let Some(change) = change_of(a) else { return };
        let Some(target) = target_of(a) else { return };
        let Some(target_id) = target.id.as_deref() else {
            return;
        };
        let tenant = &event.meta.tenant_id;
        let target_upn = target
            .user_principal_name
            .as_deref()
            .or(target.display_name.as_deref().filter(|n| n.contains('@')));
        if !ctx
            .directory
            .is_privileged(ctx.config, tenant, target_id, target_upn)
        {
            return;
        }
        let now = event.meta.time.timestamp();
        let risky_since = now - ctx.config.rule::<Settings>().risky_hours * 3600;
        let risky_at = ctx
            .state
            .principal(tenant, target_id)
            .and_then(|p| p.risky_sign_in_at)
            .filter(|at| *at >= risky_since && *at <= now);
        let other = actor_is_other(a, target_id, target_upn);
        let partner = partner_initiator(ctx, tenant, a);
        let mut escalations: Vec<String> = Vec::new();
        if other {
            escalations.push("another user made it".into());
        }
        if partner.is_some() {
            escalations.push("the actor is a partner technician".into());
        }
        if let Some(at) = risky_at {
            escalations.push(format!(
                "the account had a risky sign-in {} minutes earlier",
                (now - at) / 60
            ));
        }
        let severity = if escalations.is_empty() {
            Severity::High
        } else {
            Severity::Critical
        };
        let who = target_upn.unwrap_or(target_id).to_owned();
        let actor = actor_name(a);
        let roles = super::names_of_roles(&ctx.directory.roles_of(tenant, target_id));
        let from = actor_ip(a)
            .map(|ip| format!(" from {ip}"))
            .unwrap_or_default();
        let title = if other {
            format!("Security info changed for privileged account {who} by {actor} ({change})")
        } else {
            format!("Privileged account {who} changed its security info ({change})")
        };
        let summary = format!(
            "The authentication or recovery information of privileged account {who}{} in tenant {tenant} \
             changed: {change}, by {actor}{from}{}. Whoever controls an admin's MFA methods keeps the account \
             through a password reset. Confirm with {who} through a channel that does not rely on the new \
             method; if unexpected, delete the method or pass, revoke sessions, reset the password and review \
             the account's recent sign-ins and changes.",
            if roles.is_empty() {
                String::new()
            } else {
                format!(" ({})", roles.join(", "))
            },
            if escalations.is_empty() {
                String::new()
            } else {
                format!(" (critical: {})", escalations.join("; "))
            },
        );
        let mut evidence = Map::new();
        evidence.insert("change".into(), json!(change));
        evidence.insert("activity".into(), json!(a.activity_display_name.trim()));
        evidence.insert("result_reason".into(), json!(a.result_reason));
        evidence.insert("target".into(), json!(who));
        evidence.insert("target_roles".into(), json!(roles));
        evidence.insert("actor".into(), json!(actor));
        evidence.insert("actor_is_target".into(), Value::Bool(!other));
        evidence.insert("actor_is_partner".into(), Value::Bool(partner.is_some()));
        evidence.insert(
            "actor_home_tenant_id".into(),
            json!(partner.and_then(|p| p.home_tenant_id)),
        );
        evidence.insert(
            "risky_sign_in_at".into(),
            json!(
                risky_at
                    .and_then(|t| chrono::DateTime::from_timestamp(t, 0))
                    .map(|t| t.to_rfc3339())
            ),
        );
        evidence.insert("critical_because".into(), json!(escalations));
        evidence.insert("ip_address".into(), json!(actor_ip(a)));
        evidence.insert("logged_by_service".into(), json!(a.logged_by_service));
        out.push(Finding {
            rule: ID,
            severity,
            tenant_id: tenant.to_string(),
            principal: Principal {
                kind: PrincipalKind::User,
                id: target_id.to_owned(),
                upn: target_upn.map(str::to_owned),
                home_tenant_id: None,
            },
            time: event.meta.time,
            event_ids: vec![event.meta.id.to_string()],
            title,
            summary,
            evidence,
            mitre: &["T1556.006", "T1098"],
            ip: actor_ip(a),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DetectConfig;
    use crate::testkit::*;
    use entrawatch_ingest::model::{RiskLevel, RiskState};

    const MEGAN: &str = "megan@contoso.com";
    const HELPDESK: &str = "helpdesk@contoso.com";

    /// An Authentication Methods audit: the user is the target, the actor is `by`.
    fn methods(id: &str, activity: &str, minute: i64, by: &str, target: &str) -> AuditB {
        audit(id, activity, minute)
            .category("UserManagement")
            .with(|a| a.logged_by_service = Some("Authentication Methods".into()))
            .by_user(by)
            .target_user(target)
    }

    #[test]
    fn fires_for_privileged_targets_and_escalates_on_other_actors_partners_and_risk() {
        let events = vec![
            role_grant(TENANT, MEGAN, GLOBAL_ADMIN),
            // Megan on an ordinary day: high.
            methods("m1", "User registered security info", 0, MEGAN, MEGAN).build(),
            // The helpdesk adds a phone to Megan's account: critical.
            methods("m2", "Admin registered security info", 10, HELPDESK, MEGAN)
                .with(|a| {
                    a.initiated_by.user.as_mut().unwrap().ip_address = Some("198.51.100.50".into())
                })
                .build(),
            // A partner technician issues Megan a Temporary Access Pass: critical.
            methods("m3", "Admin registered security info", 20, HELPDESK, MEGAN)
                .by_technician(PARTNER)
                .with(|a| {
                    a.result_reason =
                        Some("Admin registered temporary access pass method for user".into())
                })
                .build(),
            // A risky sign-in, then Megan's own Update user touching her MFA details: critical.
            sign_in("s1", MEGAN, 100)
                .risk(RiskLevel::High, RiskState::AtRisk)
                .ip("185.220.101.4")
                .build(),
            audit("m4", "Update user", 160)
                .by_user(MEGAN)
                .target_user(MEGAN)
                .modified(
                    "StrongAuthenticationPhoneAppDetail",
                    Some("[]"),
                    Some("[{\"DeviceName\":\"Pixel 8\"}]"),
                )
                .modified(
                    "Included Updated Properties",
                    None,
                    Some("StrongAuthenticationPhoneAppDetail, StrongAuthenticationMethod"),
                )
                .build(),
            // Seven hours after the risky sign-in: high again.
            methods(
                "m5",
                "User changed default security info",
                100 + 7 * 60,
                MEGAN,
                MEGAN,
            )
            .build(),
            // Only the "Included Updated Properties" list names the change.
            audit("m6", "Update user", 600)
                .by_user(MEGAN)
                .target_user(MEGAN)
                .modified(
                    "Included Updated Properties",
                    None,
                    Some("\"StrongAuthenticationRequirement\""),
                )
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
                ("m1", Severity::High),
                ("m2", Severity::Critical),
                ("m3", Severity::Critical),
                ("m4", Severity::Critical),
                ("m5", Severity::High),
                ("m6", Severity::High),
            ]
        );
        assert!(found.iter().all(|f| f.principal.id == uid(MEGAN)));
        assert_eq!(found[1].ip.as_deref(), Some("198.51.100.50"));
        assert_eq!(
            found[2].evidence["change"],
            json!("Temporary Access Pass created")
        );
        assert_eq!(found[2].evidence["actor_is_partner"], json!(true));
        assert_eq!(
            found[3].evidence["change"],
            json!("Update user: StrongAuthenticationMethod, StrongAuthenticationPhoneAppDetail")
        );
        assert_eq!(found[3].evidence["actor_is_target"], json!(true));
        insta::assert_json_snapshot!("security_info_changed_privileged_fires", snapshot(&found));
    }

    #[test]
    fn stays_quiet_on_regular_users_other_properties_failures_and_registration_steps() {
        let events = vec![
            role_grant(TENANT, MEGAN, GLOBAL_ADMIN),
            // Regular users managing their own methods, and the helpdesk helping them.
            methods(
                "q1",
                "User registered security info",
                0,
                "bob@contoso.com",
                "bob@contoso.com",
            )
            .build(),
            methods(
                "q2",
                "Admin registered security info",
                1,
                HELPDESK,
                "bob@contoso.com",
            )
            .build(),
            audit("q3", "Update user", 2)
                .by_user("bob@contoso.com")
                .target_user("bob@contoso.com")
                .modified(
                    "StrongAuthenticationMethod",
                    Some("[]"),
                    Some("[{\"MethodType\":6}]"),
                )
                .build(),
            // Megan's profile edits that are not security info.
            audit("q4", "Update user", 3)
                .by_user(MEGAN)
                .target_user(MEGAN)
                .modified("DisplayName", Some("Megan"), Some("Megan Bowen"))
                .modified("Included Updated Properties", None, Some("DisplayName"))
                .build(),
            // Failed changes, and steps of a registration that change nothing.
            methods("q5", "Admin registered security info", 4, HELPDESK, MEGAN)
                .failed()
                .build(),
            methods(
                "q6",
                "User started security info registration",
                5,
                MEGAN,
                MEGAN,
            )
            .build(),
            methods("q7", "User reviewed security info", 6, MEGAN, MEGAN).build(),
            methods(
                "q8",
                "Admin deleted temporary access pass",
                7,
                HELPDESK,
                "bob@contoso.com",
            )
            .build(),
        ];
        let found = run(ID, DetectConfig::default(), &events);
        assert!(found.is_empty(), "{:#?}", snapshot(&found));
    }

    /// A Temporary Access Pass issued by `by` to `target`, as Entra writes it.
    fn tap(id: &str, minute: i64, by: &str, target: &str) -> AuditB {
        methods(id, "Admin registered security info", minute, by, target).with(|a| {
            a.result_reason = Some("Admin registered temporary access pass method for user".into());
            a.initiated_by.user.as_mut().unwrap().ip_address = Some("198.51.100.50".into());
        })
    }

    #[test]
    fn fires_on_a_temporary_access_pass_for_a_privileged_user() {
        let events = vec![
            role_grant(TENANT, MEGAN, GLOBAL_ADMIN),
            // The helpdesk issues Megan a pass: critical (another user made it).
            tap("t1", 0, HELPDESK, MEGAN).build(),
            // An onboarding app issues one through Microsoft Graph: high.
            tap("t2", 60, HELPDESK, MEGAN)
                .by_app("Contoso Onboarding")
                .build(),
        ];
        let found = run(ID, DetectConfig::default(), &events);
        let brief: Vec<(&str, Severity)> = found
            .iter()
            .map(|f| (f.event_ids[0].as_str(), f.severity))
            .collect();
        assert_eq!(
            brief,
            vec![("t1", Severity::Critical), ("t2", Severity::High)]
        );
        assert_eq!(
            found[0].evidence["change"],
            json!("Temporary Access Pass created")
        );
        assert_eq!(
            found[0].evidence["result_reason"],
            json!("Admin registered temporary access pass method for user")
        );
        assert_eq!(found[0].evidence["actor"], json!(HELPDESK));
        assert_eq!(found[0].ip.as_deref(), Some("198.51.100.50"));
        assert!(found[0].title.contains("Temporary Access Pass created"));
        assert_eq!(found[1].evidence["actor"], json!("Contoso Onboarding"));
    }

    #[test]
    fn stays_quiet_on_a_temporary_access_pass_for_a_regular_user() {
        let events = vec![
            role_grant(TENANT, MEGAN, GLOBAL_ADMIN),
            tap("t1", 0, HELPDESK, "bob@contoso.com").build(),
            // A failed issue for Megan changes nothing.
            tap("t2", 1, HELPDESK, MEGAN).failed().build(),
        ];
        let found = run(ID, DetectConfig::default(), &events);
        assert!(found.is_empty(), "{:#?}", snapshot(&found));
    }

    #[test]
    fn reads_the_real_mfa_method_update() {
        let bytes = include_bytes!(
            "../../../ingest/tests/fixtures/real/msgraph-docs/beta_directoryaudit_get_mfa_method_update.json"
        );
        let mut events = fixture_events(
            "beta_directoryaudit_get_mfa_method_update.json",
            bytes,
            TENANT,
        );
        assert_eq!(events.len(), 1);
        // Not privileged: quiet.
        assert!(run(ID, DetectConfig::default(), &events).is_empty());
        let mut admin = role_grant(TENANT, "tuser@contoso.com", GLOBAL_ADMIN);
        if let Body::Role(r) = &mut admin.body {
            r.principal_id = "2c940657-1026-4386-bcfd-3176637ba01f".into();
        }
        events.insert(0, admin);
        let found = run(ID, DetectConfig::default(), &events);
        assert_eq!(found.len(), 1);
        assert_eq!(
            found[0].evidence["change"],
            json!("Update user: StrongAuthenticationMethod")
        );
        // The initiator has the target's object id: the user's own change.
        assert_eq!(found[0].severity, Severity::High);
    }

    #[test]
    fn event_hub_records_learn_the_role_then_fire_on_the_mfa_service_write() {
        // Add member to role (Global Administrator) for Tomasz, then the MFA service's Update user of
        // his methods: high, not critical, since an app wrote it.
        let bytes =
            include_bytes!("../../../ingest/tests/fixtures/quirks/eh_audit_roles_string.json");
        let events = fixture_events("eh_audit_roles_string.json", bytes, TENANT);
        let found = run(ID, DetectConfig::default(), &events);
        let brief: Vec<(&str, Severity)> = found
            .iter()
            .map(|f| (f.event_ids[0].as_str(), f.severity))
            .collect();
        assert_eq!(
            brief,
            vec![(
                "Directory_eea95713-6def-4566-a423-b9663d71bd45_P3MZ8_318007291",
                Severity::High
            )]
        );
        assert_eq!(
            found[0].principal.upn.as_deref(),
            Some("Tomasz.Nowak@contoso.com")
        );
        assert_eq!(
            found[0].evidence["actor"],
            json!("Azure MFA StrongAuthenticationService")
        );
    }
}
