//! `admin-agents-membership-changed`: see [`DOC`] for what it detects and why.

use entrawatch_ingest::model::{Audit, Body, Event, Kind, TargetResource};
use serde_json::{Map, json};

use super::{actor_ip, actor_name, succeeded};
use crate::detector::{Context, Detector};
use crate::finding::{Finding, Principal, PrincipalKind, Severity};

pub const ID: &str = "admin-agents-membership-changed";

/// The partner groups Partner Center creates, whose members act in every DAP customer.
const PARTNER_GROUPS: [&str; 3] = ["AdminAgents", "HelpdeskAgents", "SalesAgents"];

/// User documentation, printed by `entrawatch rules admin-agents-membership-changed`.
pub const DOC: &str = r#"## What it detects
A successful `Add member to group` (high) or `Remove member from group` (medium) on one of the
partner's access groups: the Partner Center groups AdminAgents, HelpdeskAgents and SalesAgents
(always watched, matched by display name), or a group listed in `partner_access_groups` (by
object id or display name), such as the security groups a GDAP relationship assigns roles to.
The group is read from a `Group` target, or from the `Group.DisplayName` / `Group.ObjectID`
modified properties the directory writes on the member.

## Why it matters
Members of AdminAgents hold admin rights in every customer that still has a DAP relationship,
and members of a GDAP access group hold its roles in every customer the relationship covers.
Adding an account to one of them is the quietest way to gain (or keep) access to all customers
at once; removing members can be an attacker clearing out the people who would respond, or
a partner offboarding staff. MITRE ATT&CK T1098 (Account Manipulation) and T1199 (Trusted
Relationship).

## Signals used
`activityDisplayName`, `result`, `targetResources` (the group and the member), the modified
properties `Group.DisplayName` and `Group.ObjectID`, `initiatedBy` and its `ipAddress`, and the
`partner_access_groups` setting.

## Example
At 23:50 `it-temp@northwindcsp.com` is added to AdminAgents in Northwind's own tenant by an
admin account signing in from an unfamiliar address: this fires high with the new member as the
principal, the group and the actor in the evidence.

## Known false positives and tuning
Staff joining or leaving the partner's support team. Confirm against the partner's HR or
onboarding ticket. Add every GDAP access group to `partner_access_groups` so the rule sees
them; allow-list an identity-governance service that manages membership by object id under
`[detect.allow.admin-agents-membership-changed]`.

## References
Microsoft Learn: "Assign roles and permissions to users" (Partner Center agent roles and the
AdminAgents group), "Granular delegated admin privileges (GDAP) introduction" (security groups
and role assignments), "Audit activity reference" (GroupManagement).
"#;

#[derive(Debug, Clone, Copy, Default)]
pub struct AdminAgentsMembershipChanged;

/// The value of a modified property on any target, new value first, then old (removals carry
/// the group in the old value).
fn modified_any<'a>(a: &'a Audit, name: &str) -> Option<&'a str> {
    a.modified_new_value(name).or_else(|| {
        a.target_resources
            .iter()
            .flat_map(|t| &t.modified_properties)
            .find(|p| {
                p.display_name
                    .as_deref()
                    .is_some_and(|n| n.eq_ignore_ascii_case(name))
            })
            .and_then(|p| p.old_value.as_deref())
    })
}

fn is_kind(t: &TargetResource, kind: &str) -> bool {
    t.resource_type
        .as_deref()
        .is_some_and(|k| k.eq_ignore_ascii_case(kind))
}

impl Detector for AdminAgentsMembershipChanged {
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
        let activity = a.activity_display_name.trim();
        let added = activity.eq_ignore_ascii_case("Add member to group");
        if !(added || activity.eq_ignore_ascii_case("Remove member from group")) || !succeeded(a) {
            return;
        }
        let group = a.target_resources.iter().find(|t| is_kind(t, "Group"));
        let group_name = group
            .and_then(|g| g.display_name.as_deref())
            .or_else(|| modified_any(a, "Group.DisplayName"));
        let group_id = group
            .and_then(|g| g.id.as_deref())
            .or_else(|| modified_any(a, "Group.ObjectID"));
        let name_is = |n: &str| group_name.is_some_and(|g| g.trim().eq_ignore_ascii_case(n));
        let id_is = |n: &str| group_id.is_some_and(|g| g.trim().eq_ignore_ascii_case(n));
        let builtin = PARTNER_GROUPS.iter().any(|g| name_is(g));
        let configured = ctx
            .config
            .partner_access_groups
            .iter()
            .any(|g| name_is(g) || id_is(g));
        if !(builtin || configured) {
            return;
        }
        let Some(member) = a
            .target_resources
            .iter()
            .find(|t| !is_kind(t, "Group") && t.id.is_some())
        else {
            return;
        };
        let member_id = member.id.clone().unwrap_or_default();
        let member_name = member
            .user_principal_name
            .clone()
            .or_else(|| member.display_name.clone())
            .unwrap_or_else(|| member_id.clone());
        let kind = if is_kind(member, "ServicePrincipal") {
            PrincipalKind::ServicePrincipal
        } else {
            PrincipalKind::User
        };
        let group_label = group_name.or(group_id).unwrap_or("a partner access group");
        let tenant = &event.meta.tenant_id;
        let actor = actor_name(a);
        let from = actor_ip(a)
            .map(|ip| format!(" from {ip}"))
            .unwrap_or_default();
        let (severity, title, summary) = if added {
            (
                Severity::High,
                format!("{member_name} added to partner access group {group_label} by {actor}"),
                format!(
                    "{actor}{from} added {member_name} to {group_label} in tenant {tenant}. Members of this group \
                     act with the partner's delegated admin roles in its customers' tenants. Confirm the change with \
                     the partner's onboarding ticket; if it is not expected, remove {member_name} from the group, \
                     revoke its sessions, review its sign-ins into customer tenants, and review {actor}'s account."
                ),
            )
        } else {
            (
                Severity::Medium,
                format!("{member_name} removed from partner access group {group_label} by {actor}"),
                format!(
                    "{actor}{from} removed {member_name} from {group_label} in tenant {tenant}. Usually staff \
                     offboarding; unexpected removals can be an intruder locking out responders or tidying up \
                     after using the account. Confirm with the partner's team; if unexpected, review {actor}'s \
                     recent changes to this and other partner access groups."
                ),
            )
        };
        let mut evidence = Map::new();
        evidence.insert("activity".into(), json!(activity));
        evidence.insert("group".into(), json!(group_name));
        evidence.insert("group_id".into(), json!(group_id));
        evidence.insert("configured_access_group".into(), json!(configured));
        evidence.insert("member".into(), json!(member_name));
        evidence.insert("member_type".into(), json!(member.resource_type));
        evidence.insert("actor".into(), json!(actor));
        evidence.insert("ip_address".into(), json!(actor_ip(a)));
        evidence.insert("correlation_id".into(), json!(a.correlation_id));
        out.push(Finding {
            rule: ID,
            severity,
            tenant_id: tenant.to_string(),
            principal: Principal {
                kind,
                id: member_id.to_string(),
                upn: member.user_principal_name.as_deref().map(str::to_owned),
                home_tenant_id: None,
            },
            time: event.meta.time,
            event_ids: vec![event.meta.id.to_string()],
            title,
            summary,
            evidence,
            mitre: &["T1098", "T1199"],
            ip: actor_ip(a),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DetectConfig;
    use crate::testkit::*;

    const GDAP_GROUP: &str = "7c9d1e2f-0a1b-4c2d-8e3f-4a5b6c7d8e9f";

    fn config() -> DetectConfig {
        DetectConfig {
            partner_access_groups: vec![GDAP_GROUP.into(), "GDAP Exchange Admins".into()],
            ..DetectConfig::default()
        }
    }

    #[test]
    fn fires_on_adds_and_removes_in_partner_access_groups() {
        let events = vec![
            // Graph layout: the group as a target.
            audit("g1", "Add member to group", 0)
                .tenant(PARTNER)
                .category("GroupManagement")
                .target("Group", "aa-admin-agents", "AdminAgents")
                .target_user("it-temp@northwindcsp.com")
                .with(|a| {
                    a.initiated_by.user.as_mut().unwrap().ip_address = Some("198.51.100.31".into())
                })
                .build(),
            // Directory layout: the group only in the member's modified properties; removal in the old value.
            audit("g2", "Remove member from group", 5)
                .tenant(PARTNER)
                .target_user("leaver@northwindcsp.com")
                .modified("Group.ObjectID", Some("bb-helpdesk-agents"), None)
                .modified("Group.DisplayName", Some("HelpdeskAgents"), None)
                .build(),
            // A configured GDAP access group, by object id.
            audit("g3", "Add member to group", 9)
                .tenant(PARTNER)
                .target_user("ann@northwindcsp.com")
                .modified("Group.ObjectID", None, Some(GDAP_GROUP))
                .modified("Group.DisplayName", None, Some("GDAP Tier 2"))
                .build(),
            // A configured group by name, with a service principal member.
            audit("g4", "Add member to group", 12)
                .tenant(PARTNER)
                .target("Group", "cc-exchange", "GDAP Exchange Admins")
                .target("ServicePrincipal", "sp-runbook", "Mailbox Runbook")
                .build(),
        ];
        let found = run(ID, config(), &events);
        let brief: Vec<(&str, Severity, PrincipalKind)> = found
            .iter()
            .map(|f| (f.event_ids[0].as_str(), f.severity, f.principal.kind))
            .collect();
        assert_eq!(
            brief,
            vec![
                ("g1", Severity::High, PrincipalKind::User),
                ("g2", Severity::Medium, PrincipalKind::User),
                ("g3", Severity::High, PrincipalKind::User),
                ("g4", Severity::High, PrincipalKind::ServicePrincipal),
            ]
        );
        assert_eq!(found[0].principal.id, uid("it-temp@northwindcsp.com"));
        assert_eq!(found[0].ip.as_deref(), Some("198.51.100.31"));
        assert_eq!(found[1].evidence["group"], json!("HelpdeskAgents"));
        assert_eq!(found[2].evidence["configured_access_group"], json!(true));
        insta::assert_json_snapshot!("admin_agents_membership_changed_fires", snapshot(&found));
    }

    #[test]
    fn stays_quiet_on_ordinary_groups_failures_and_other_group_changes() {
        let events = vec![
            audit("q1", "Add member to group", 0)
                .target("Group", "g-sales", "Sales Team")
                .target_user("ann@contoso.com")
                .build(),
            audit("q2", "Add member to group", 1)
                .target_user("ann@contoso.com")
                .modified("Group.DisplayName", None, Some("SalesAgents-Archive"))
                .build(),
            audit("q3", "Add member to group", 2)
                .target("Group", "aa", "AdminAgents")
                .target_user("x@northwindcsp.com")
                .failed()
                .build(),
            audit("q4", "Update group", 3)
                .target("Group", "aa", "AdminAgents")
                .build(),
            audit("q5", "Add owner to group", 4)
                .target("Group", "g-sales", "Sales Team")
                .target_user("ann@contoso.com")
                .build(),
            // A configured group id does not match a different group.
            audit("q6", "Add member to group", 5)
                .target_user("bob@contoso.com")
                .modified(
                    "Group.ObjectID",
                    None,
                    Some("00000000-1111-4222-8333-444444444444"),
                )
                .build(),
        ];
        let found = run(ID, config(), &events);
        assert!(found.is_empty(), "{:#?}", snapshot(&found));
    }
}
