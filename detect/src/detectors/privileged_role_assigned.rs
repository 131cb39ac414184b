//! `privileged-role-assigned`: see [`DOC`] for what it detects and why.

use entrawatch_ingest::model::{Audit, Body, Event, Kind, TargetResource};
use serde_json::{Map, Value, json};

use super::{actor_ip, actor_name, partner_initiator, succeeded};
use crate::config::{DetectConfig, PRIVILEGED_ROLE_TEMPLATES};
use crate::detector::{Context, Detector};
use crate::finding::{Finding, Principal, PrincipalKind, Severity};
use crate::privileged::{audit_role_member, audit_role_template};

pub const ID: &str = "privileged-role-assigned";

/// Roles that own the tenant outright: granting them is critical.
const TENANT_OWNER_ROLES: [&str; 2] = [
    "62e90394-69f5-4237-9190-012177145e10", // Global Administrator
    "e8611ab8-c189-46e8-94e1-60213ab1f814", // Privileged Role Administrator
];

/// User documentation, printed by `entrawatch rules privileged-role-assigned`.
pub const DOC: &str = r#"## What it detects
A role of the privileged catalogue (`privileged_roles`, by role template id) granted to a user,
group or service principal outside Privileged Identity Management, by a successful audit:

- `Add member to role` that the PIM service did not perform (PIM's own directory writes are
  initiated by the app `MS-PIM`, or logged by the `PIM` service);
- `Add member to role outside of PIM` (PIM's record of a direct assignment);
- a permanent active assignment made in PIM (`Add member to role in PIM completed (permanent)`).

PIM activations (`... (PIM activation)`), eligible assignments and time-bound active assignments
are how just-in-time access is meant to work: they never fire (the privileged directory still
learns from them). Severity is high, critical for Global Administrator and Privileged Role
Administrator.

## Why it matters
Microsoft's CSP guidance is least privilege with no standing admin access. A direct, permanent
grant of an admin role is the first thing an intruder with admin rights does to keep them, and
the grant bypasses the approval, justification and expiry PIM would enforce.
MITRE ATT&CK T1098.003 (Account Manipulation: Additional Cloud Roles).

## Signals used
`activityDisplayName`, `result`, `loggedByService`, `initiatedBy` (user, app `MS-PIM`),
`targetResources` (the member, its type, and the role), the modified properties
`Role.TemplateId`, `Role.ObjectID` and `Role.DisplayName`, and for the actor's partner status
its `homeTenantId`, technician user name, or service-provider sign-ins.

## Example
At 01:12 `helpdesk@contoso.com` adds `temp-ops@contoso.com` to Global Administrator with
`Add member to role`, initiated by the user and not by MS-PIM: this fires critical, with the
member as the principal and the actor and its IP in the evidence.

## Known false positives and tuning
Tenants that do not use PIM assign every role this way; Microsoft and partner onboarding
scripts do too. Moving role management into PIM is the fix; meanwhile allow-list an expected
member (for example a provisioning service principal) by object id under
`[detect.allow.privileged-role-assigned]`, or trim `privileged_roles`.

## References
Microsoft Learn: "Microsoft Entra built-in roles" (role template ids), "Audit activity reference"
(RoleManagement), "View audit history for Microsoft Entra roles in PIM", and the Partner Center
"Partner security requirements" (least privilege).
"#;

#[derive(Debug, Clone, Copy, Default)]
pub struct PrivilegedRoleAssigned;

/// Why an audit is a grant outside PIM, or `None` when it is not one.
fn outside_pim(a: &Audit) -> Option<&'static str> {
    // Asked of every audit: most are not role grants, and are turned away before any copy.
    let grant = "add member to role";
    let activity = a.activity_display_name.trim();
    if !activity
        .get(..grant.len())
        .is_some_and(|p| p.eq_ignore_ascii_case(grant))
    {
        return None;
    }
    let name = activity.to_ascii_lowercase();
    if name.contains("pim activation")
        || name.contains("eligible")
        || !name.starts_with("add member to role")
    {
        return None;
    }
    if name == "add member to role" {
        let by_pim = a
            .logged_by_service
            .as_deref()
            .is_some_and(|s| s.trim().eq_ignore_ascii_case("PIM"))
            || a.initiated_by.app.as_ref().is_some_and(|p| {
                p.display_name
                    .as_deref()
                    .is_some_and(|n| n.trim().to_ascii_lowercase().starts_with("ms-pim"))
            });
        return (!by_pim).then_some("assigned directly, not through PIM");
    }
    if name.starts_with("add member to role outside of pim") {
        return Some("assigned outside PIM");
    }
    name.contains("(permanent)")
        .then_some("permanent active assignment in PIM")
}

/// The privileged role an audit grants: by template id, else by the role's display name (PIM
/// records name the role in a `Role` target; directory records in `Role.DisplayName`).
fn privileged_role(config: &DetectConfig, a: &Audit) -> Option<(String, String)> {
    let display = a
        .modified_new_value("Role.DisplayName")
        .map(str::to_owned)
        .or_else(|| {
            a.target_resources
                .iter()
                .find(|t| {
                    t.resource_type
                        .as_deref()
                        .is_some_and(|k| k.eq_ignore_ascii_case("Role"))
                })
                .and_then(|t| t.display_name.as_deref().map(str::to_owned))
        });
    if let Some(template) = audit_role_template(a).filter(|t| config.is_privileged_role(t)) {
        let name = DetectConfig::role_name(&template)
            .map(str::to_owned)
            .or(display)
            .unwrap_or_else(|| template.clone());
        return Some((template, name));
    }
    let display = display?;
    let (template, name) = PRIVILEGED_ROLE_TEMPLATES
        .iter()
        .find(|(_, n)| n.eq_ignore_ascii_case(display.trim()))?;
    config
        .is_privileged_role(template)
        .then(|| ((*template).to_owned(), (*name).to_owned()))
}

/// The user, group or service principal receiving the role.
fn member(a: &Audit) -> Option<&TargetResource> {
    a.target_resources
        .iter()
        .find(|t| {
            t.id.is_some()
                && t.resource_type.as_deref().is_some_and(|k| {
                    ["user", "group", "serviceprincipal"].contains(&k.to_ascii_lowercase().as_str())
                })
        })
        .or_else(|| audit_role_member(a))
}

impl Detector for PrivilegedRoleAssigned {
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
        &[Kind::Audit]
    }

    fn observe(&self, ctx: &Context<'_>, event: &Event, out: &mut Vec<Finding>) {
        let Body::Audit(a) = &event.body else { return };
        if !succeeded(a) {
            return;
        }
        let Some(how) = outside_pim(a) else { return };
        let Some((template, role)) = privileged_role(ctx.config, a) else {
            return;
        };
        let Some(target) = member(a) else { return };
        let Some(member_id) = target.id.clone() else {
            return;
        };
        let tenant = &event.meta.tenant_id;
        let member_type = target
            .resource_type
            .clone()
            .unwrap_or_else(|| "User".into());
        let kind = if member_type.eq_ignore_ascii_case("ServicePrincipal") {
            PrincipalKind::ServicePrincipal
        } else {
            PrincipalKind::User
        };
        let member_name = target
            .user_principal_name
            .clone()
            .or_else(|| target.display_name.clone())
            .unwrap_or_else(|| member_id.clone());
        let severity = if TENANT_OWNER_ROLES.contains(&template.as_str()) {
            Severity::Critical
        } else {
            Severity::High
        };
        let actor = actor_name(a);
        let partner = partner_initiator(ctx, tenant, a);
        let actor_label = if partner.is_some() {
            format!("Partner technician {actor}")
        } else {
            actor.clone()
        };
        let from = actor_ip(a)
            .map(|ip| format!(" from {ip}"))
            .unwrap_or_default();
        let title = format!(
            "{role} granted to {member_name} outside PIM by {}",
            if partner.is_some() {
                format!("partner technician {actor}")
            } else {
                actor.clone()
            }
        );
        let summary = format!(
            "{actor_label}{from} granted the {role} role to {} {member_name} in tenant {tenant} ({how}: \
             `{}`). Standing admin access skips PIM's approval and expiry. Confirm the change with {actor} \
             and its change ticket; if it is not expected, remove the assignment, review {member_name}'s \
             sign-ins and changes since, and check how {actor} obtained the right to assign roles.",
            match member_type.to_ascii_lowercase().as_str() {
                "serviceprincipal" => "service principal".to_owned(),
                other => other.to_owned(),
            },
            a.activity_display_name.trim(),
        );
        let mut evidence = Map::new();
        evidence.insert("role".into(), json!(role));
        evidence.insert("role_template_id".into(), json!(template));
        evidence.insert("activity".into(), json!(a.activity_display_name.trim()));
        evidence.insert("how".into(), json!(how));
        evidence.insert("member".into(), json!(member_name));
        evidence.insert("member_type".into(), json!(member_type));
        evidence.insert("actor".into(), json!(actor));
        evidence.insert("actor_is_partner".into(), Value::Bool(partner.is_some()));
        evidence.insert("ip_address".into(), json!(actor_ip(a)));
        evidence.insert("logged_by_service".into(), json!(a.logged_by_service));
        evidence.insert("correlation_id".into(), json!(a.correlation_id));
        out.push(Finding {
            rule: ID,
            severity,
            tenant_id: tenant.to_string(),
            principal: Principal {
                kind,
                id: member_id.to_string(),
                upn: target.user_principal_name.as_deref().map(str::to_owned),
                home_tenant_id: None,
            },
            time: event.meta.time,
            event_ids: vec![event.meta.id.to_string()],
            title,
            summary,
            evidence,
            mitre: &["T1098.003"],
            ip: actor_ip(a),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::*;

    const PRIV_ROLE_ADMIN: &str = "e8611ab8-c189-46e8-94e1-60213ab1f814";
    const USER_ADMIN: &str = "fe930be7-5e62-47db-91af-98c3a49a38b1";
    const SECURITY_ADMIN: &str = "194ae4cb-b126-40b2-bd5b-6091b380977d";
    const APP_ADMIN: &str = "9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3";
    const REPORTS_READER: &str = "4a5d8f65-41da-4de4-8968-e035b65339cf";

    /// A Core Directory `Add member to role` record, shaped like Graph's: the member carries the
    /// `Role.*` properties, the role object is a second target.
    fn directory_grant(
        id: &str,
        activity: &str,
        minute: i64,
        member: &str,
        template: &str,
        role: &str,
    ) -> AuditB {
        audit(id, activity, minute)
            .category("RoleManagement")
            .target_user(member)
            .modified(
                "Role.ObjectID",
                None,
                Some("14d63ece-c0ef-45b8-9381-526fa9e82e75"),
            )
            .modified("Role.DisplayName", None, Some(role))
            .modified("Role.TemplateId", None, Some(template))
            .target("Role", "14d63ece-c0ef-45b8-9381-526fa9e82e75", "")
    }

    /// A PIM record: the role is the first target, named, then the member.
    fn pim(
        id: &str,
        activity: &str,
        minute: i64,
        member: &str,
        template: &str,
        role: &str,
    ) -> AuditB {
        audit(id, activity, minute)
            .category("RoleManagement")
            .with(|a| a.logged_by_service = Some("PIM".into()))
            .target("Role", template, role)
            .target_user(member)
    }

    #[test]
    fn fires_on_direct_outside_pim_and_permanent_grants() {
        let events = vec![
            directory_grant(
                "r1",
                "Add member to role",
                0,
                "temp-ops@contoso.com",
                GLOBAL_ADMIN,
                "Global Administrator",
            )
            .build(),
            directory_grant(
                "r2",
                "Add member to role",
                3,
                "ann@contoso.com",
                USER_ADMIN,
                "User Administrator",
            )
            .with(|a| {
                a.initiated_by.user.as_mut().unwrap().ip_address = Some("198.51.100.4".into())
            })
            .build(),
            pim(
                "r3",
                "Add member to role outside of PIM (permanent)",
                5,
                "bob@contoso.com",
                PRIV_ROLE_ADMIN,
                "Privileged Role Administrator",
            )
            .build(),
            pim(
                "r4",
                "Add member to role in PIM completed (permanent)",
                8,
                "cy@contoso.com",
                SECURITY_ADMIN,
                "Security Administrator",
            )
            .build(),
            // A service principal granted a role by a partner technician; the role named only by its object.
            audit("r5", "Add member to role", 10)
                .by_technician(PARTNER)
                .target("ServicePrincipal", "sp-backup", "Backup Tool")
                .modified("Role.DisplayName", None, Some("Application Administrator"))
                .target(
                    "Role",
                    "5d6b6bb7-de71-4623-b4af-96380a352509",
                    "Application Administrator",
                )
                .build(),
        ];
        let found = run(ID, crate::config::DetectConfig::default(), &events);
        let brief: Vec<(&str, Severity, PrincipalKind)> = found
            .iter()
            .map(|f| (f.event_ids[0].as_str(), f.severity, f.principal.kind))
            .collect();
        assert_eq!(
            brief,
            vec![
                ("r1", Severity::Critical, PrincipalKind::User),
                ("r2", Severity::High, PrincipalKind::User),
                ("r3", Severity::Critical, PrincipalKind::User),
                ("r4", Severity::High, PrincipalKind::User),
                ("r5", Severity::High, PrincipalKind::ServicePrincipal),
            ]
        );
        assert_eq!(found[0].principal.id, uid("temp-ops@contoso.com"));
        assert_eq!(found[1].ip.as_deref(), Some("198.51.100.4"));
        assert_eq!(found[4].evidence["role_template_id"], json!(APP_ADMIN));
        assert_eq!(found[4].evidence["actor_is_partner"], json!(true));
        insta::assert_json_snapshot!("privileged_role_assigned_fires", snapshot(&found));
    }

    #[test]
    fn stays_quiet_on_pim_activations_eligibility_failures_and_harmless_roles() {
        let events = vec![
            // The directory side of a PIM activation: initiated by MS-PIM.
            directory_grant(
                "q1",
                "Add member to role",
                0,
                "megan@contoso.com",
                GLOBAL_ADMIN,
                "Global Administrator",
            )
            .by_app("MS-PIM")
            .build(),
            pim(
                "q2",
                "Add member to role completed (PIM activation)",
                1,
                "megan@contoso.com",
                GLOBAL_ADMIN,
                "Global Administrator",
            )
            .build(),
            pim(
                "q3",
                "Add member to role requested (PIM activation)",
                2,
                "megan@contoso.com",
                GLOBAL_ADMIN,
                "Global Administrator",
            )
            .build(),
            pim(
                "q4",
                "Add eligible member to role in PIM completed (permanent)",
                3,
                "ann@contoso.com",
                GLOBAL_ADMIN,
                "Global Administrator",
            )
            .build(),
            pim(
                "q5",
                "Add member to role in PIM completed (timebound)",
                4,
                "ann@contoso.com",
                USER_ADMIN,
                "User Administrator",
            )
            .build(),
            // Logged by PIM although the name is the plain one.
            directory_grant(
                "q6",
                "Add member to role",
                5,
                "ann@contoso.com",
                USER_ADMIN,
                "User Administrator",
            )
            .with(|a| a.logged_by_service = Some("PIM".into()))
            .build(),
            directory_grant(
                "q7",
                "Add member to role",
                6,
                "ann@contoso.com",
                GLOBAL_ADMIN,
                "Global Administrator",
            )
            .failed()
            .build(),
            directory_grant(
                "q8",
                "Add member to role",
                7,
                "ann@contoso.com",
                REPORTS_READER,
                "Reports Reader",
            )
            .build(),
            directory_grant(
                "q9",
                "Remove member from role",
                8,
                "ann@contoso.com",
                GLOBAL_ADMIN,
                "Global Administrator",
            )
            .build(),
        ];
        let found = run(ID, crate::config::DetectConfig::default(), &events);
        assert!(found.is_empty(), "{:#?}", snapshot(&found));
    }

    #[test]
    fn the_catalogue_comes_from_the_config() {
        let config = crate::config::DetectConfig {
            privileged_roles: vec![REPORTS_READER.into()],
            ..Default::default()
        };
        let events = vec![
            directory_grant(
                "c1",
                "Add member to role",
                0,
                "ann@contoso.com",
                REPORTS_READER,
                "Reports Reader",
            )
            .build(),
            directory_grant(
                "c2",
                "Add member to role",
                1,
                "ann@contoso.com",
                USER_ADMIN,
                "User Administrator",
            )
            .build(),
        ];
        let found = run(ID, config, &events);
        assert_eq!(
            found
                .iter()
                .map(|f| (f.event_ids[0].as_str(), f.severity))
                .collect::<Vec<_>>(),
            vec![("c1", Severity::High)]
        );
    }

    #[test]
    fn the_real_ms_pim_record_stays_quiet_and_a_direct_copy_fires() {
        let bytes = include_bytes!(
            "../../../ingest/tests/fixtures/quirks/graph_directory_audits_no_tenant.json"
        );
        let mut events = fixture_events("graph_directory_audits_no_tenant.json", bytes, TENANT);
        assert!(run(ID, crate::config::DetectConfig::default(), &events).is_empty());
        // The same record initiated by a user instead of MS-PIM is a direct grant.
        let Body::Audit(a) = &mut events[0].body else {
            panic!("expected an audit")
        };
        a.initiated_by = entrawatch_ingest::model::Initiator {
            user: Some(entrawatch_ingest::model::AuditUser {
                id: Some(uid("helpdesk@fabrikam.com").into()),
                user_principal_name: Some("helpdesk@fabrikam.com".into()),
                ..Default::default()
            }),
            app: None,
        };
        let found = run(ID, crate::config::DetectConfig::default(), &events[..1]);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].severity, Severity::High);
        assert_eq!(found[0].evidence["role"], json!("Security Administrator"));
        assert_eq!(
            found[0].principal.id,
            "7ea8095c-86ba-4f87-9b0b-351e6177263e"
        );
    }

    #[test]
    fn reads_the_event_hub_global_admin_grant() {
        let bytes =
            include_bytes!("../../../ingest/tests/fixtures/quirks/eh_audit_roles_string.json");
        let events = fixture_events("eh_audit_roles_string.json", bytes, TENANT);
        let found = run(ID, crate::config::DetectConfig::default(), &events);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].severity, Severity::Critical);
        assert_eq!(
            found[0].principal.upn.as_deref(),
            Some("Tomasz.Nowak@contoso.com")
        );
        assert_eq!(
            found[0].evidence["actor"],
            json!("Priya.Natarajan@contoso.com")
        );
        assert_eq!(found[0].ip.as_deref(), Some("203.0.113.50"));
    }
}
