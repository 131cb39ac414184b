//! `partner-sensitive-change`: see [`DOC`] for what it detects and why.
//!
//! Record shapes follow Microsoft Learn "Microsoft Entra audit log activity reference" (activity
//! names by category: RoleManagement, UserManagement, Policy, ApplicationManagement,
//! CrossTenantAccessSettings, DirectoryManagement) and Graph `directoryAudit`, whose
//! `initiatedBy.user.homeTenantId` names a service provider's home tenant; GDAP technicians appear
//! in customer logs as `user_<32 hex>@partner domain` ("Granular delegated admin privileges
//! (GDAP) introduction").

use entrawatch_ingest::model::{Audit, Body, Event, Kind, TargetResource};
use serde_json::{Map, json};

use super::{actor_ip, actor_name, names_of_roles, partner_initiator, succeeded};
use crate::apps::{normalized_activity, with_activity};
use crate::detector::{Context, Detector};
use crate::finding::{Finding, Principal, PrincipalKind, Severity};
use crate::privileged::audit_role_template;

pub const ID: &str = "partner-sensitive-change";

/// User documentation, printed by `entrawatch rules partner-sensitive-change`.
pub const DOC: &str = r#"## What it detects
A successful audit in a customer tenant initiated by a partner technician (a GDAP / service-
provider identity: the initiator's `homeTenantId` is another tenant, its user name has the GDAP
technician shape `user_<32 hex digits>@`, or it signed in to this tenant as a service provider in
the last 30 days) that changes something sensitive:

- **roles**: `Add member to role`, `Add eligible member to role`, `Add scoped member to role`,
  `Remove member from role`, `Remove eligible member from role`;
- **credentials of a privileged user** (one holding a privileged role or configured as
  privileged): `Reset user password`, `Reset password (by admin)`, `Change user password`, `Set
  force change user password`, `Admin registered security info`, `Admin updated security info`,
  `Admin deleted security info`, `Admin registered temporary access pass method for user`;
- **Conditional Access**: `Add`, `Update` or `Delete conditional access policy`;
- **applications**: `Consent to application`, `Add delegated permission grant`, `Add app role
  assignment to service principal`, `Add service principal credentials`, `Update application –
  Certificates and secrets management`, `Add owner to application`, `Add owner to service
  principal`;
- **cross-tenant access**: `Add a partner to cross-tenant access setting`, `Update a partner
  cross-tenant access setting`, `Update the company default cross-tenant access setting`,
  `Delete partner specific cross-tenant access setting`;
- **domains**: `Set domain authentication`, `Set federation settings on domain`, `Verify domain`,
  `Add unverified domain`.

High; **critical** when the change gives or touches a tier-0 role (Global Administrator,
Privileged Role Administrator, Privileged Authentication Administrator, Security Administrator,
Conditional Access Administrator, Hybrid Identity Administrator, Application Administrator,
Cloud Application Administrator): a role granted or removed is tier-0, or the target user holds
one. Accounts and guests a technician creates are `partner-created-account`'s; credential changes
of users without a privileged role stay quiet (helpdesk work), as do failed audits and the same
changes made by the customer's own staff.

## Why it matters
Through GDAP a partner's technicians hold delegated admin roles in every customer tenant. A
compromised technician account, or a malicious insider at the partner, can use them to plant
persistence in many customers at once: an admin role for an account they control, a reset
password or a Temporary Access Pass on a Global Administrator, a Conditional Access exclusion, a
secret on an application that reads all mail, a federated domain. Customer SOCs rarely watch what
the partner does, and the partner's own logs do not show it: only the customer tenant's audit log
does. Microsoft's CSP guidance asks partners to use least privilege and to monitor delegated
administration. MITRE ATT&CK T1199 (Trusted Relationship) and T1098 (Account Manipulation).

## Signals used
`activityDisplayName`, `result`, `initiatedBy.user` (`id`, `userPrincipalName`, `homeTenantId`,
`homeTenantName`, `ipAddress`), the target (user, role, policy, application or domain) and its
modified properties (`Role.TemplateId`, `Role.DisplayName`), the technicians seen in the tenant's
sign-in log, and the privileged-role directory.

## Example
At 02:40 `user_5f0c…@northwindcsp.onmicrosoft.com` (home tenant Northwind CSP) runs `Reset user
password` on `megan@contoso.com`, a Global Administrator of Contoso, then `Admin registered
security info` on the same account: each fires critical, naming the technician, the partner, the
target and its roles.

## Known false positives and tuning
Partners that manage Conditional Access, applications or roles for the customer as a paid
service make such changes on request. Confirm against the partner's ticket. Allow-list a
partner's change-management technician by object id or UPN under
`[detect.allow.partner-sensitive-change]`, or restrict the partner's GDAP roles so the changes
cannot happen outside a request.

## References
Microsoft Learn: "Microsoft Entra audit log activity reference", "Granular delegated admin
privileges (GDAP) introduction", "Partner security requirements", "Securing privileged access:
enterprise access model" (tier 0), and Graph `directoryAudit` (`initiatedBy.user.homeTenantId`).
"#;

/// What a sensitive change is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Area {
    Roles,
    /// Only when the target user is privileged.
    Credentials,
    ConditionalAccess,
    Applications,
    CrossTenant,
    Domains,
}

impl Area {
    fn as_str(self) -> &'static str {
        match self {
            Area::Roles => "role membership",
            Area::Credentials => "credentials of a privileged user",
            Area::ConditionalAccess => "Conditional Access",
            Area::Applications => "application access",
            Area::CrossTenant => "cross-tenant access",
            Area::Domains => "domains and federation",
        }
    }
}

/// The sensitive activities, by area (matched as [`crate::apps::activity_is`] matches names).
const SENSITIVE: &[(&str, Area)] = &[
    ("Add member to role", Area::Roles),
    ("Add eligible member to role", Area::Roles),
    ("Add scoped member to role", Area::Roles),
    ("Remove member from role", Area::Roles),
    ("Remove eligible member from role", Area::Roles),
    ("Reset user password", Area::Credentials),
    ("Reset password (by admin)", Area::Credentials),
    ("Change user password", Area::Credentials),
    ("Set force change user password", Area::Credentials),
    ("Admin registered security info", Area::Credentials),
    ("Admin updated security info", Area::Credentials),
    ("Admin deleted security info", Area::Credentials),
    (
        "Admin registered temporary access pass method for user",
        Area::Credentials,
    ),
    ("Add conditional access policy", Area::ConditionalAccess),
    ("Update conditional access policy", Area::ConditionalAccess),
    ("Delete conditional access policy", Area::ConditionalAccess),
    ("Consent to application", Area::Applications),
    ("Add delegated permission grant", Area::Applications),
    (
        "Add app role assignment to service principal",
        Area::Applications,
    ),
    ("Add service principal credentials", Area::Applications),
    (
        "Update application - Certificates and secrets management",
        Area::Applications,
    ),
    ("Add owner to application", Area::Applications),
    ("Add owner to service principal", Area::Applications),
    (
        "Add a partner to cross-tenant access setting",
        Area::CrossTenant,
    ),
    (
        "Update a partner cross-tenant access setting",
        Area::CrossTenant,
    ),
    (
        "Update the company default cross-tenant access setting",
        Area::CrossTenant,
    ),
    (
        "Delete partner specific cross-tenant access setting",
        Area::CrossTenant,
    ),
    ("Set domain authentication", Area::Domains),
    ("Set federation settings on domain", Area::Domains),
    ("Verify domain", Area::Domains),
    ("Add unverified domain", Area::Domains),
];

/// Tier-0 role template ids: control of identity itself (Microsoft's enterprise access model).
pub(crate) const TIER_0: [&str; 8] = [
    "62e90394-69f5-4237-9190-012177145e10", // Global Administrator
    "e8611ab8-c189-46e8-94e1-60213ab1f814", // Privileged Role Administrator
    "7be44c8a-adaf-4e2a-84d6-ab2649e08a13", // Privileged Authentication Administrator
    "194ae4cb-b126-40b2-bd5b-6091b380977d", // Security Administrator
    "b1be1c3e-b65d-4f19-8427-f6fa0d97feb9", // Conditional Access Administrator
    "8ac3fc64-6eca-42ea-9e69-59f4c7b60eb2", // Hybrid Identity Administrator
    "9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3", // Application Administrator
    "158c047a-c907-4556-b7ef-446551a6b5f7", // Cloud Application Administrator
];

/// The area of a sensitive activity (any dash, casing and spacing, as [`crate::apps::activity_is`] compares
/// them): the activity is normalized once and looked up among the names normalized once per
/// process; every audit is asked.
fn area_of(activity: &str) -> Option<Area> {
    static NORMALIZED: std::sync::LazyLock<Vec<(String, Area)>> = std::sync::LazyLock::new(|| {
        (SENSITIVE.iter())
            .map(|(name, area)| (normalized_activity(name), *area))
            .collect()
    });
    with_activity(activity, |name| {
        (NORMALIZED.iter())
            .find(|(known, _)| known == name)
            .map(|(_, area)| *area)
    })
}

/// The user an audit is about: the first target of type User.
fn target_user(a: &Audit) -> Option<&TargetResource> {
    a.target_resources.iter().find(|t| {
        t.resource_type
            .as_deref()
            .is_some_and(|k| k.eq_ignore_ascii_case("User"))
    })
}

/// The audit's main target, named for titles.
fn target_name(a: &Audit) -> Option<String> {
    let t = target_user(a).or_else(|| a.target_resources.first())?;
    t.user_principal_name
        .as_deref()
        .or(t.display_name.as_deref())
        .or(t.id.as_deref())
        .filter(|n| !n.trim().is_empty())
        .map(str::to_owned)
}

#[derive(Debug, Clone, Copy, Default)]
pub struct PartnerSensitiveChange;

impl Detector for PartnerSensitiveChange {
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
        let Some(area) = area_of(&a.activity_display_name) else {
            return;
        };
        if !succeeded(a) {
            return;
        }
        let tenant = &event.meta.tenant_id;
        let Some(partner) = partner_initiator(ctx, tenant, a) else {
            return;
        };
        let Some(user) = a.initiated_by.user.as_ref() else {
            return;
        };
        let target = target_user(a);
        let target_roles: Vec<String> = target
            .and_then(|t| t.id.as_deref())
            .map(|id| ctx.directory.roles_of(tenant, id))
            .unwrap_or_default();
        let target_privileged = target.is_some_and(|t| {
            !target_roles.is_empty()
                || t.id.as_deref().is_some_and(|id| {
                    ctx.directory.is_privileged(
                        ctx.config,
                        tenant,
                        id,
                        t.user_principal_name.as_deref(),
                    )
                })
        });
        if area == Area::Credentials && !target_privileged {
            return;
        }
        let role = (area == Area::Roles)
            .then(|| audit_role_template(a))
            .flatten();
        let tier_0: Vec<&str> = role
            .iter()
            .map(String::as_str)
            .chain(target_roles.iter().map(String::as_str))
            .filter(|r| TIER_0.contains(r))
            .collect();
        let severity = if tier_0.is_empty() {
            Severity::High
        } else {
            Severity::Critical
        };

        let activity = a.activity_display_name.trim();
        let actor = actor_name(a);
        let what = target_name(a).unwrap_or_else(|| "an unnamed target".to_owned());
        let partner_name = match (&partner.home_tenant_name, &partner.home_tenant_id) {
            (Some(name), Some(id)) => format!("{name}, {id}"),
            (Some(name), None) => name.clone(),
            (None, Some(id)) => id.clone(),
            (None, None) => "home tenant unknown".to_owned(),
        };
        let from = actor_ip(a)
            .map(|ip| format!(" from {ip}"))
            .unwrap_or_default();
        let tier_0_text = if tier_0.is_empty() {
            String::new()
        } else {
            let names = names_of_roles(&tier_0.iter().map(|r| (*r).to_owned()).collect::<Vec<_>>());
            format!(" (tier-0: {})", names.join(", "))
        };
        let title = format!(
            "Partner technician {actor} ran {activity} on {what} in customer tenant {tenant}{tier_0_text}"
        );
        let summary = format!(
            "Partner technician {actor} ({partner_name}) ran `{activity}` on {what} in customer tenant \
             {tenant}{from}: a change to {}{tier_0_text}. Changes a partner makes through GDAP stay in the \
             customer tenant and can give access that outlives the relationship. Confirm with the customer \
             and the partner's ticket; if nobody asked for it, undo the change, ask the partner to revoke \
             the technician's sessions, and review everything the technician did in this tenant.",
            area.as_str(),
        );
        let mut evidence = Map::new();
        evidence.insert("activity".into(), json!(activity));
        evidence.insert("area".into(), json!(area.as_str()));
        evidence.insert("target".into(), json!(what));
        evidence.insert("target_id".into(), json!(target.and_then(|t| t.id.clone())));
        evidence.insert("target_roles".into(), json!(names_of_roles(&target_roles)));
        evidence.insert(
            "role".into(),
            json!(
                role.as_ref()
                    .map(|r| names_of_roles(std::slice::from_ref(r)))
            ),
        );
        evidence.insert("tier_0".into(), json!(!tier_0.is_empty()));
        evidence.insert("actor".into(), json!(actor));
        evidence.insert("actor_id".into(), json!(user.id));
        evidence.insert("actor_home_tenant_id".into(), json!(partner.home_tenant_id));
        evidence.insert(
            "actor_home_tenant_name".into(),
            json!(partner.home_tenant_name),
        );
        evidence.insert("partner_evidence".into(), json!(partner.reasons));
        evidence.insert("ip_address".into(), json!(actor_ip(a)));
        evidence.insert("correlation_id".into(), json!(a.correlation_id));
        out.push(Finding {
            rule: ID,
            severity,
            tenant_id: tenant.to_string(),
            principal: Principal {
                kind: PrincipalKind::User,
                id: user
                    .id
                    .as_deref()
                    .or(user.user_principal_name.as_deref())
                    .unwrap_or(&actor)
                    .to_owned(),
                upn: user.user_principal_name.as_deref().map(str::to_owned),
                home_tenant_id: partner.home_tenant_id.clone(),
            },
            time: event.meta.time,
            event_ids: vec![event.meta.id.to_string()],
            title,
            summary,
            evidence,
            mitre: &["T1199", "T1098"],
            ip: actor_ip(a),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DetectConfig;
    use crate::testkit::*;

    const MEGAN: &str = "megan@contoso.com";
    const HELPDESK_ADMIN: &str = "729827e3-9c14-49f7-bb1b-9608f156bbb8";

    #[test]
    fn fires_on_sensitive_changes_by_technicians() {
        let events = vec![
            role_grant(TENANT, MEGAN, GLOBAL_ADMIN),
            // A password reset of a Global Administrator: critical.
            audit("p1", "Reset user password", 0)
                .category("UserManagement")
                .by_technician(PARTNER)
                .target_user(MEGAN)
                .build(),
            // A Global Administrator role granted to an account the technician controls: critical.
            audit("r1", "Add member to role", 5)
                .category("RoleManagement")
                .by_technician(PARTNER)
                .target_user("svc-backup@contoso.com")
                .modified("Role.TemplateId", None, Some(GLOBAL_ADMIN))
                .modified("Role.DisplayName", None, Some("Global Administrator"))
                .build(),
            // A Conditional Access policy changed: high.
            audit("c1", "Update conditional access policy", 10)
                .category("Policy")
                .by_technician(PARTNER)
                .target(
                    "Policy",
                    "4f1b9a3e-2a41-4c8e-9d63-1d2f6a7b8c90",
                    "Require MFA for admins",
                )
                .build(),
            // A secret added to an application (the activity's en dash as Entra writes it): high.
            audit(
                "a1",
                "Update application – Certificates and secrets management",
                15,
            )
            .category("ApplicationManagement")
            .by_technician(PARTNER)
            .target(
                "Application",
                "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d",
                "Payroll Sync",
            )
            .build(),
            // A non-tier-0 role (Helpdesk Administrator): high.
            audit("r2", "Add member to role", 20)
                .category("RoleManagement")
                .by_technician(PARTNER)
                .target_user("desk@contoso.com")
                .modified("Role.TemplateId", None, Some(HELPDESK_ADMIN))
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
                ("p1", Severity::Critical),
                ("r1", Severity::Critical),
                ("c1", Severity::High),
                ("a1", Severity::High),
                ("r2", Severity::High),
            ]
        );
        assert!(
            found
                .iter()
                .all(|f| f.principal.home_tenant_id.as_deref() == Some(PARTNER))
        );
        assert_eq!(
            found[0].evidence["target_roles"],
            json!(["Global Administrator"])
        );
        insta::assert_json_snapshot!("partner_sensitive_change_fires", snapshot(&found));
    }

    #[test]
    fn stays_quiet_on_helpdesk_work_local_admins_and_failures() {
        let events = vec![
            role_grant(TENANT, MEGAN, GLOBAL_ADMIN),
            // A technician resets a regular user's password: helpdesk work.
            audit("q1", "Reset user password", 0)
                .by_technician(PARTNER)
                .target_user("ann@contoso.com")
                .build(),
            // The customer's own admin resets the Global Administrator's password.
            audit("q2", "Reset user password", 5)
                .by_user("admin@contoso.com")
                .target_user(MEGAN)
                .build(),
            // A technician's role grant that failed.
            audit("q3", "Add member to role", 10)
                .by_technician(PARTNER)
                .target_user("svc@contoso.com")
                .modified("Role.TemplateId", None, Some(GLOBAL_ADMIN))
                .failed()
                .build(),
            // Routine directory work by a technician.
            audit("q4", "Update user", 15)
                .by_technician(PARTNER)
                .target_user(MEGAN)
                .build(),
            // An account created by a technician belongs to partner-created-account.
            audit("q5", "Add user", 20)
                .by_technician(PARTNER)
                .target_user("new@contoso.com")
                .build(),
        ];
        let found = run(ID, DetectConfig::default(), &events);
        assert!(found.is_empty(), "{:#?}", snapshot(&found));
    }

    #[test]
    fn a_technician_known_only_from_its_sign_in_is_recognised() {
        // The audit names the technician by object id only; its service-provider sign-in to the
        // tenant an hour before says who it is.
        let tech_id = "5f0c2a9e-8b7d-4c3a-9e1f-2b3c4d5e6f70";
        let sign_in = sign_in(
            "s1",
            "user_5f0c2a9e8b7d4c3a9e1f2b3c4d5e6f70@northwindcsp.onmicrosoft.com",
            0,
        )
        .partner(PARTNER)
        .with(|s| s.user_id = Some(tech_id.into()))
        .build();
        let change = audit("d1", "Set federation settings on domain", 60)
            .category("DirectoryManagement")
            .with(|a| {
                a.initiated_by.user = Some(entrawatch_ingest::model::AuditUser {
                    id: Some(tech_id.into()),
                    ..Default::default()
                });
            })
            .target("Domain", "contoso.com", "contoso.com")
            .build();
        let found = run(ID, DetectConfig::default(), &[sign_in, change]);
        assert_eq!(found.len(), 1, "{found:#?}");
        assert_eq!(found[0].severity, Severity::High);
        assert_eq!(found[0].evidence["area"], "domains and federation");
    }
}
