//! `conditional-access-weakened`: see [`DOC`] for what it detects and why.
//!
//! Record shapes follow Microsoft Learn "Microsoft Entra audit log activity reference" (service
//! Conditional Access, category Policy: `Update Conditional Access policy`, `Delete Conditional
//! Access policy`) and "Use audit logs to troubleshoot Conditional Access policy changes", which
//! shows the one modified property of such a record, `ConditionalAccessPolicy`, whose old and new
//! values are the whole policy as JSON text in the shape of Graph's `conditionalAccessPolicy`
//! resource (`state`, `conditions.users.{include,exclude}{Users,Groups,Roles}`,
//! `conditions.users.excludeGuestsOrExternalUsers`, `grantControls.{operator,builtInControls,
//! authenticationStrength}`). Records carry the policy as the `Policy` target (id and name),
//! `loggedByService` `Conditional Access`, and ids beginning `IPCGraph_`.

use std::collections::BTreeSet;

use entrawatch_ingest::model::{Audit, Body, Event, Kind};
use serde_json::{Map, Value, json};

use super::{
    actor_ip, actor_name, actor_principal, modified_pair, names_of_roles, partner_initiator,
    succeeded,
};
use crate::config::DetectConfig;
use crate::detector::{Context, Detector};
use crate::finding::{Finding, Severity};

pub const ID: &str = "conditional-access-weakened";

/// The modified properties that carry the whole policy, in the order they are read (any casing).
const POLICY_PROPERTIES: [&str; 2] = ["ConditionalAccessPolicy", "Policy"];

/// Grant controls whose removal takes a requirement away (`authenticationStrength` also comes as
/// its own object in `grantControls`).
const STRONG_CONTROLS: [&str; 5] = [
    "mfa",
    "compliantdevice",
    "domainjoineddevice",
    "block",
    "authenticationstrength",
];

/// Every `guestOrExternalUserTypes` value Graph knows: excluding all of them, from every external
/// tenant, is excluding all guests and external users.
const GUEST_TYPES: [&str; 6] = [
    "internalguest",
    "b2bcollaborationguest",
    "b2bcollaborationmember",
    "b2bdirectconnectuser",
    "otherexternaluser",
    "serviceprovider",
];

/// User documentation, printed by `entrawatch rules conditional-access-weakened`.
pub const DOC: &str = r#"## What it detects
A successful Conditional Access audit (category `Policy`, service `Conditional Access`) that
makes a policy protect less:
- `Delete Conditional Access policy` (high; low when the deleted policy was already disabled or
  report-only, as it enforced nothing);
- `Update Conditional Access policy` whose `ConditionalAccessPolicy` old and new values (the
  policy as JSON), compared field by field, show:
  - `state` moved from `enabled` to `disabled`, or to `enabledForReportingButNotEnforced`
    (report-only: evaluated and logged, never enforced) (high);
  - an exclusion added under `conditions.users`: `excludeUsers` or `excludeGroups` (medium),
    `excludeRoles` (high), guest or external user types in `excludeGuestsOrExternalUsers`,
    service provider (partner technician) users included (medium), or all guests and external
    users (the legacy `GuestsOrExternalUsers` value, or every guest type from every external
    tenant) (high);
  - the policy no longer applying to all users (`All` removed from `includeUsers`) or to a role
    it targeted (medium);
  - a grant control among `mfa`, `compliantDevice`, `domainJoinedDevice`, `block` and the
    `authenticationStrength` requirement removed (high), unless the operator is `OR` and the
    policy still requires one of them and offers no new alternative (then fewer ways to pass,
    which is tighter); the operator turned from `AND` to `OR` (high); a new alternative added to an
    `OR` grant (medium: any one control now suffices).

The finding's severity is the highest of the weakenings found, raised one step (medium to high,
high to critical) when the actor is a partner technician (another home tenant, a GDAP
`user_<hex>` name, or a service-provider sign-in to this tenant) or the policy targets admin
roles (`includeRoles` not empty before or after the change): those are the policies and the
actors an intruder in a CSP customer would pick.

A rename alone, any other change that weakens nothing (a new exclusion removed, a control
added, a policy enabled, a description edited), `Add Conditional Access policy`, and failed
audits do not fire. When the old value is missing, only the new state is judged (a policy now
disabled or report-only fires, noted as "previous state not recorded"); exclusions and controls
need both values.

## Why it matters
Conditional Access is where Entra requires MFA, compliant devices and blocks legacy
authentication. An intruder holding an admin account (or a partner technician's delegated
access) turns the policy that would stop them to report-only, or excludes their own account or
a group they control, and from then on signs in with a password alone; report-only looks
harmless in the portal because the policy still shows in the list. Deleting the policy does the
same, more visibly. MITRE ATT&CK T1556 (Modify Authentication Process: the conditions of
authentication are rewritten) and T1562 (Impair Defenses).

## Signals used
`activityDisplayName`, `result`, the `Policy` target (id, name), the modified property
`ConditionalAccessPolicy` (also a property named `Policy`, any property whose value is a
policy object, or separate `State` / `Conditions` / `GrantControls` properties), read as JSON,
JSON text holding JSON, or a list holding the policy; `initiatedBy` and its `ipAddress`;
`correlationId`; the partner evidence on the initiator (home tenant, technician name,
service-provider sign-ins seen in this tenant).

## Example
`it-admin@contoso.com`, signing in from an unfamiliar address, sets "Require MFA for admins"
(which includes the Global Administrator role) from `enabled` to
`enabledForReportingButNotEnforced`: this fires critical (high, raised because the policy
targets admin roles), with the policy name and id, the weakening "state enabled → report-only
(enabledForReportingButNotEnforced)", the old and new state, the actor and the IP in the
evidence.

## Known false positives and tuning
A planned change window (a policy set to report-only while a rollout is checked), a new
break-glass account or a migration service account excluded on purpose, policies managed as code
(Microsoft365DSC, Terraform) whose pipeline deletes and recreates them. Confirm against the
change ticket and the policy owner. Allow-list the pipeline's service principal, or the admin
accounts of the identity team, under `[detect.allow.conditional-access-weakened]` only if their
changes are reviewed elsewhere. Exclusions of applications or locations and changes to session
controls are not judged.

## References
Microsoft Learn: "Microsoft Entra audit log activity reference" (Conditional Access), "Use audit
logs to troubleshoot Conditional Access policy changes", Graph "conditionalAccessPolicy resource
type", "conditionalAccessUsers resource type" (`excludeGuestsOrExternalUsers`),
"conditionalAccessGrantControls resource type", "Report-only mode", and the Microsoft Sentinel
analytics "Conditional Access Policy Modified by New User" and "Conditional Access - A
Conditional Access user/group/role exclusion has changed".
"#;

#[derive(Debug, Clone, Copy, Default)]
pub struct ConditionalAccessWeakened;

/// A policy value as an object: JSON text of an object, of a list holding one, or of a JSON
/// string holding either (up to two levels of quoting). Nothing for `null`, empty or other text.
fn parse_policy(value: Option<&str>) -> Option<Map<String, Value>> {
    let mut v: Value = serde_json::from_str(value?.trim()).ok()?;
    for _ in 0..2 {
        let Value::String(s) = &v else { break };
        v = serde_json::from_str(s.trim()).ok()?;
    }
    match v {
        Value::Object(m) => Some(m),
        Value::Array(items) => items.into_iter().find_map(|i| match i {
            Value::Object(m) => Some(m),
            _ => None,
        }),
        _ => None,
    }
}

/// Whether an object looks like a conditional access policy.
fn looks_like_policy(m: &Map<String, Value>) -> bool {
    ["conditions", "grantControls", "state"]
        .iter()
        .any(|k| field(m, k).is_some())
}

/// A key of an object in any casing.
fn field<'a>(m: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    m.get(key).or_else(|| {
        m.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    })
}

/// The value at a path of keys (any casing), `null` counting as absent.
fn at<'a>(m: &'a Map<String, Value>, path: &[&str]) -> Option<&'a Value> {
    let (first, rest) = path.split_first()?;
    let mut v = field(m, first)?;
    for key in rest {
        v = field(v.as_object()?, key)?;
    }
    (!v.is_null()).then_some(v)
}

/// A list of strings: a JSON list, or comma-separated text (`guestOrExternalUserTypes`).
fn strings(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|i| i.as_str())
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect(),
        Some(Value::String(s)) => s
            .split(',')
            .map(|p| p.trim().to_owned())
            .filter(|p| !p.is_empty())
            .collect(),
        _ => Vec::new(),
    }
}

/// The strings at a path, in lower case, as a set.
fn lower_set(m: Option<&Map<String, Value>>, path: &[&str]) -> BTreeSet<String> {
    m.map(|m| strings(at(m, path)))
        .unwrap_or_default()
        .into_iter()
        .map(|s| s.to_ascii_lowercase())
        .collect()
}

/// The values at `path` in `new` that were not in `old` (compared in any casing, reported as
/// written in `new`).
fn added(
    old: Option<&Map<String, Value>>,
    new: Option<&Map<String, Value>>,
    path: &[&str],
) -> Vec<String> {
    let before = lower_set(old, path);
    new.map(|m| strings(at(m, path)))
        .unwrap_or_default()
        .into_iter()
        .filter(|v| !before.contains(&v.to_ascii_lowercase()))
        .collect()
}

fn state(m: Option<&Map<String, Value>>) -> Option<String> {
    m.and_then(|m| at(m, &["state"]))
        .and_then(Value::as_str)
        .map(str::to_owned)
}

/// The old and new policy of an audit: from [`POLICY_PROPERTIES`], else any modified property
/// holding a policy object, else separate `State` / `Conditions` / `GrantControls` properties.
type Policy = Option<Map<String, Value>>;

fn policies(a: &Audit) -> (Policy, Policy) {
    if let Some((old, new)) = POLICY_PROPERTIES.iter().find_map(|p| modified_pair(a, p)) {
        return (parse_policy(old), parse_policy(new));
    }
    let props = || {
        a.target_resources
            .iter()
            .flat_map(|t| &t.modified_properties)
    };
    for p in props() {
        let old = parse_policy(p.old_value.as_deref()).filter(looks_like_policy);
        let new = parse_policy(p.new_value.as_deref()).filter(looks_like_policy);
        if old.is_some() || new.is_some() {
            return (old, new);
        }
    }
    let mut old = Map::new();
    let mut new = Map::new();
    for key in ["state", "conditions", "grantControls"] {
        if let Some((o, n)) = modified_pair(a, key) {
            let read = |v: Option<&str>| {
                v.and_then(|v| serde_json::from_str::<Value>(v.trim()).ok())
                    .or_else(|| v.map(|v| json!(v.trim().trim_matches('"'))))
            };
            if let Some(o) = read(o) {
                old.insert(key.to_owned(), o);
            }
            if let Some(n) = read(n) {
                new.insert(key.to_owned(), n);
            }
        }
    }
    (
        (!old.is_empty()).then_some(old),
        (!new.is_empty()).then_some(new),
    )
}

/// One way a change weakened the policy.
struct Weakening {
    text: String,
    severity: Severity,
}

fn is_unenforced(state: &str) -> bool {
    state.eq_ignore_ascii_case("disabled")
        || state.eq_ignore_ascii_case("enabledForReportingButNotEnforced")
}

fn state_text(state: &str) -> String {
    if state.eq_ignore_ascii_case("enabledForReportingButNotEnforced") {
        "report-only (enabledForReportingButNotEnforced)".to_owned()
    } else {
        state.to_owned()
    }
}

/// Role template ids as `id (name)` where the name is known.
fn roles_text(ids: &[String]) -> String {
    ids.iter()
        .map(|id| match DetectConfig::role_name(id) {
            Some(name) => format!("{name} ({id})"),
            None => id.clone(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// `conditions.users.<key>`.
fn users(key: &str) -> [&str; 3] {
    ["conditions", "users", key]
}

/// Every weakening from `old` to `new` (an update; both may be missing).
fn weakenings(
    old: Option<&Map<String, Value>>,
    new: Option<&Map<String, Value>>,
) -> Vec<Weakening> {
    let mut out = Vec::new();
    let mut push = |severity, text: String| out.push(Weakening { text, severity });
    let (old_state, new_state) = (state(old), state(new));
    if let Some(n) = new_state.as_deref().filter(|n| is_unenforced(n)) {
        match old_state.as_deref() {
            Some(o) if o.eq_ignore_ascii_case("enabled") => {
                push(Severity::High, format!("state enabled → {}", state_text(n)))
            }
            None if old.is_none() => push(
                Severity::High,
                format!("state now {} (previous state not recorded)", state_text(n)),
            ),
            _ => {}
        }
    }
    let (Some(old), Some(new)) = (old, new) else {
        return out;
    };
    let (old, new) = (Some(old), Some(new));

    // Exclusions.
    let excluded_users = added(old, new, &users("excludeUsers"));
    let (all_guests, users_only): (Vec<String>, Vec<String>) = excluded_users
        .into_iter()
        .partition(|u| u.eq_ignore_ascii_case("GuestsOrExternalUsers"));
    if !all_guests.is_empty() {
        push(
            Severity::High,
            "all guests and external users excluded (GuestsOrExternalUsers)".to_owned(),
        );
    }
    if !users_only.is_empty() {
        push(
            Severity::Medium,
            format!("users excluded: {}", users_only.join(", ")),
        );
    }
    let groups = added(old, new, &users("excludeGroups"));
    if !groups.is_empty() {
        push(
            Severity::Medium,
            format!("groups excluded: {}", groups.join(", ")),
        );
    }
    let roles = added(old, new, &users("excludeRoles"));
    if !roles.is_empty() {
        push(
            Severity::High,
            format!("roles excluded: {}", roles_text(&roles)),
        );
    }
    let guests = ["conditions", "users", "excludeGuestsOrExternalUsers"];
    let types = |m| {
        lower_set(
            m,
            &[guests[0], guests[1], guests[2], "guestOrExternalUserTypes"],
        )
    };
    let all_tenants = |m: Option<&Map<String, Value>>| {
        m.and_then(|m| {
            at(
                m,
                &[
                    guests[0],
                    guests[1],
                    guests[2],
                    "externalTenants",
                    "membershipKind",
                ],
            )
        })
        .and_then(Value::as_str)
        .is_some_and(|k| k.eq_ignore_ascii_case("all"))
    };
    let (old_types, new_types) = (types(old), types(new));
    let new_guest_types: Vec<&String> = new_types.difference(&old_types).collect();
    let widened_tenants = !new_types.is_empty() && all_tenants(new) && !all_tenants(old);
    if !new_guest_types.is_empty() || widened_tenants {
        let every_type = GUEST_TYPES.iter().all(|t| new_types.contains(*t));
        let from = if all_tenants(new) {
            "every external tenant"
        } else {
            "listed external tenants"
        };
        if every_type && all_tenants(new) {
            push(
                Severity::High,
                "all guest and external user types excluded, from every external tenant".to_owned(),
            );
        } else {
            let list: Vec<&str> = if new_guest_types.is_empty() {
                new_types.iter().map(String::as_str).collect()
            } else {
                new_guest_types.iter().map(|s| s.as_str()).collect()
            };
            push(
                Severity::Medium,
                format!(
                    "guest or external users excluded: {} (from {from})",
                    list.join(", ")
                ),
            );
        }
    }

    // Scope.
    let include_all = |m| lower_set(m, &users("includeUsers")).contains("all");
    if include_all(old) && !include_all(new) {
        push(
            Severity::Medium,
            "no longer applies to all users (includeUsers All removed)".to_owned(),
        );
    }
    let roles_dropped = added(new, old, &users("includeRoles"));
    if !roles_dropped.is_empty() {
        push(
            Severity::Medium,
            format!("roles no longer targeted: {}", roles_text(&roles_dropped)),
        );
    }

    // Grant controls.
    let controls = |m| lower_set(m, &["grantControls", "builtInControls"]);
    let strength = |m: Option<&Map<String, Value>>| {
        m.and_then(|m| at(m, &["grantControls", "authenticationStrength"]))
            .is_some_and(|v| v.as_object().is_none_or(|o| !o.is_empty()))
    };
    let operator = |m: Option<&Map<String, Value>>| {
        m.and_then(|m| at(m, &["grantControls", "operator"]))
            .and_then(Value::as_str)
            .map_or("OR".to_owned(), str::to_ascii_uppercase)
    };
    let (old_c, new_c) = (controls(old), controls(new));
    let mut removed: Vec<&str> = STRONG_CONTROLS
        .iter()
        .copied()
        .filter(|c| old_c.contains(*c) && !new_c.contains(*c))
        .collect();
    if strength(old) && !strength(new) && !removed.contains(&"authenticationstrength") {
        removed.push("authenticationStrength");
    }
    let alternatives: Vec<&String> = new_c.difference(&old_c).collect();
    let (old_op, new_op) = (operator(old), operator(new));
    let still_strong = strength(new) || STRONG_CONTROLS.iter().any(|c| new_c.contains(*c));
    // An OR grant that still requires a strong control and offers nothing new has fewer ways to
    // pass: tighter.
    let fewer_ways = new_op == "OR" && still_strong && alternatives.is_empty();
    if !removed.is_empty() && !fewer_ways {
        push(
            Severity::High,
            format!("grant control removed: {}", removed.join(", ")),
        );
    }
    let grant_count = new_c.len() + usize::from(strength(new));
    if old_op == "AND" && new_op == "OR" && grant_count > 1 {
        push(
            Severity::High,
            "grant operator AND → OR (any one control now suffices)".to_owned(),
        );
    } else if new_op == "OR" && !old_c.is_empty() && !alternatives.is_empty() {
        let list: Vec<&str> = alternatives.iter().map(|s| s.as_str()).collect();
        push(
            Severity::Medium,
            format!(
                "alternative grant control added (any one suffices): {}",
                list.join(", ")
            ),
        );
    }
    out
}

/// The policy's name and id: the `Policy` target's, else the policy object's.
fn policy_name_id(a: &Audit, policy: Option<&Map<String, Value>>) -> (String, Option<String>) {
    let target = a.target_resources.first();
    let from_policy = |k: &str| {
        policy
            .and_then(|m| at(m, &[k]))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let name = target
        .and_then(|t| t.display_name.as_deref())
        .filter(|n| !n.trim().is_empty())
        .map(str::to_owned)
        .or_else(|| from_policy("displayName"))
        .unwrap_or_else(|| "an unnamed policy".to_owned());
    let id = target
        .and_then(|t| t.id.as_deref())
        .filter(|i| !i.trim().is_empty())
        .map(str::to_owned)
        .or_else(|| from_policy("id"));
    (name, id)
}

/// One step up, for partner actors and policies that target admin roles.
fn raised(s: Severity) -> Severity {
    match s {
        Severity::Medium => Severity::High,
        Severity::High | Severity::Critical => Severity::Critical,
        other => other,
    }
}

impl Detector for ConditionalAccessWeakened {
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
        let deleted = activity.eq_ignore_ascii_case("Delete conditional access policy");
        if !(deleted || activity.eq_ignore_ascii_case("Update conditional access policy"))
            || !succeeded(a)
        {
            return;
        }
        let (old, new) = policies(a);
        let found = if deleted {
            let was = state(old.as_ref());
            vec![match was.as_deref() {
                Some(s) if is_unenforced(s) => Weakening {
                    text: format!(
                        "policy deleted (it was {}, enforcing nothing)",
                        state_text(s)
                    ),
                    severity: Severity::Low,
                },
                _ => Weakening {
                    text: "policy deleted".to_owned(),
                    severity: Severity::High,
                },
            }]
        } else {
            weakenings(old.as_ref(), new.as_ref())
        };
        let Some(base) = found.iter().map(|w| w.severity).max() else {
            return;
        };
        let tenant = &event.meta.tenant_id;
        let partner = partner_initiator(ctx, tenant, a);
        let include_roles: BTreeSet<String> = [old.as_ref(), new.as_ref()]
            .into_iter()
            .flat_map(|m| m.map(|m| strings(at(m, &["conditions", "users", "includeRoles"]))))
            .flatten()
            .collect();
        let admin_roles: Vec<String> = include_roles.into_iter().collect();
        let severity = if partner.is_some() || !admin_roles.is_empty() {
            raised(base)
        } else {
            base
        };
        let (name, policy_id) = policy_name_id(a, new.as_ref().or(old.as_ref()));
        let actor = actor_name(a);
        let who = if partner.is_some() {
            format!("Partner technician {actor}")
        } else {
            actor.clone()
        };
        let from = actor_ip(a)
            .map(|ip| format!(" from {ip}"))
            .unwrap_or_default();
        let texts: Vec<&str> = found.iter().map(|w| w.text.as_str()).collect();
        let title = if deleted {
            format!("{who} deleted Conditional Access policy {name}")
        } else {
            let more = match texts.len() {
                1 => String::new(),
                n => format!(" (+{} more)", n - 1),
            };
            format!(
                "{who} weakened Conditional Access policy {name}: {}{more}",
                texts[0]
            )
        };
        let why = match (partner.is_some(), admin_roles.is_empty()) {
            (true, false) => {
                " The actor is a partner technician and the policy targets admin roles."
            }
            (true, true) => " The actor is a partner technician.",
            (false, false) => " The policy targets admin roles.",
            (false, true) => "",
        };
        let summary = format!(
            "{who}{from} ran {activity} on Conditional Access policy {name} in tenant {tenant}: {}.{why} \
             A policy disabled, set to report-only, deleted, or with new exclusions or fewer grant \
             controls no longer requires MFA or a compliant device of the users it left. Confirm the \
             change with the policy owner's ticket; if it is not expected, restore the policy from its \
             previous value (the audit's old value), review sign-ins the policy would have blocked since \
             the change, and review {actor}'s account and recent changes.",
            texts.join("; ")
        );
        let mut evidence = Map::new();
        evidence.insert("activity".into(), json!(activity));
        evidence.insert("policy_name".into(), json!(name));
        evidence.insert("policy_id".into(), json!(policy_id));
        evidence.insert("weakenings".into(), json!(texts));
        evidence.insert("state_old".into(), json!(state(old.as_ref())));
        evidence.insert("state_new".into(), json!(state(new.as_ref())));
        evidence.insert(
            "targets_admin_roles".into(),
            json!(names_of_roles(&admin_roles)),
        );
        evidence.insert(
            "partner".into(),
            partner.as_ref().map_or(Value::Null, |p| {
                json!({
                    "home_tenant_id": p.home_tenant_id,
                    "home_tenant_name": p.home_tenant_name,
                    "reasons": p.reasons,
                })
            }),
        );
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
            mitre: &["T1556", "T1562"],
            ip: actor_ip(a),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::finding::PrincipalKind;
    use crate::testkit::*;
    use entrawatch_ingest::model::KeyValue;

    const MFA_ALL: &str = "3f1c6a2e-8b4d-4e7a-9c1f-2d3e4f5a6b7c";
    const MFA_ADMINS: &str = "7a8b9c0d-1e2f-4a3b-8c4d-5e6f7a8b9c0d";
    const INTRUDER: &str = "9d8c7b6a-5f4e-4d3c-8b2a-1f0e9d8c7b6a";

    /// A policy as Graph's `conditionalAccessPolicy` resource, as the audit's old and new values
    /// carry it (the shape of Microsoft Learn's troubleshooting example).
    fn policy(id: &str, name: &str, state: &str) -> Value {
        json!({
            "id": id,
            "displayName": name,
            "createdDateTime": "2025-03-02T10:11:12.4233280+00:00",
            "modifiedDateTime": "2026-09-20T08:00:00.0000000+00:00",
            "state": state,
            "conditions": {
                "applications": {
                    "includeApplications": ["All"],
                    "excludeApplications": [],
                    "includeUserActions": [],
                    "includeAuthenticationContextClassReferences": [],
                    "applicationFilter": null
                },
                "users": {
                    "includeUsers": ["All"],
                    "excludeUsers": [],
                    "includeGroups": [],
                    "excludeGroups": [],
                    "includeRoles": [],
                    "excludeRoles": [],
                    "includeGuestsOrExternalUsers": null,
                    "excludeGuestsOrExternalUsers": null
                },
                "locations": null,
                "userRiskLevels": [],
                "signInRiskLevels": [],
                "clientAppTypes": ["all"],
                "servicePrincipalRiskLevels": []
            },
            "grantControls": {
                "operator": "OR",
                "builtInControls": ["mfa"],
                "customAuthenticationFactors": [],
                "termsOfUse": [],
                "authenticationStrength": null
            },
            "sessionControls": null
        })
    }

    /// "Require MFA for admins": the Global Administrator role, break-glass group excluded.
    fn admins_policy(state: &str) -> Value {
        let mut p = policy(MFA_ADMINS, "Require MFA for admins", state);
        p["conditions"]["users"]["includeUsers"] = json!([]);
        p["conditions"]["users"]["includeRoles"] = json!([GLOBAL_ADMIN]);
        p["conditions"]["users"]["excludeGroups"] = json!(["0b1c2d3e-4f5a-4b6c-8d7e-9f0a1b2c3d4e"]);
        p
    }

    fn text(v: &Value) -> String {
        serde_json::to_string(v).unwrap()
    }

    /// A Conditional Access record on the policy target, as the service writes it.
    fn ca(
        id: &str,
        activity: &str,
        minute: i64,
        old: Option<&Value>,
        new: Option<&Value>,
    ) -> AuditB {
        let p = new.or(old).unwrap();
        audit(id, activity, minute)
            .category("Policy")
            .by_user("it-admin@contoso.com")
            .with(|a| {
                a.initiated_by.user.as_mut().unwrap().ip_address = Some("198.51.100.23".into());
                a.logged_by_service = Some("Conditional Access".into());
                a.operation_type = Some("Update".into());
                a.correlation_id = Some("346b264f-3d36-4c81-aaff-499fbaf093cf".into());
                a.additional_details = vec![KeyValue {
                    key: "Category".into(),
                    value: Some("Conditional Access".into()),
                }];
            })
            .target(
                "Policy",
                p["id"].as_str().unwrap(),
                p["displayName"].as_str().unwrap(),
            )
            .modified(
                "ConditionalAccessPolicy",
                old.map(text).as_deref(),
                new.map(text).as_deref(),
            )
    }

    fn update(id: &str, minute: i64, old: &Value, new: &Value) -> AuditB {
        ca(
            id,
            "Update conditional access policy",
            minute,
            Some(old),
            Some(new),
        )
    }

    #[test]
    fn fires_on_disable_report_only_exclusions_removed_controls_and_delete() {
        let all = policy(MFA_ALL, "Require MFA for all users", "enabled");
        let mut disabled = all.clone();
        disabled["state"] = json!("disabled");
        let mut excluded = all.clone();
        excluded["conditions"]["users"]["excludeUsers"] = json!([INTRUDER]);
        let mut both = all.clone();
        both["grantControls"] =
            json!({"operator": "AND", "builtInControls": ["mfa", "compliantDevice"]});
        let mut device_only = both.clone();
        device_only["grantControls"]["builtInControls"] = json!(["compliantDevice"]);
        let mut guests = all.clone();
        guests["conditions"]["users"]["excludeGuestsOrExternalUsers"] = json!({
            "guestOrExternalUserTypes": "serviceProvider",
            "externalTenants": {
                "@odata.type": "#microsoft.graph.conditionalAccessAllExternalTenants",
                "membershipKind": "all"
            }
        });
        let mut role_excluded = all.clone();
        role_excluded["conditions"]["users"]["excludeRoles"] = json!([GLOBAL_ADMIN]);
        let events = vec![
            update("c1", 0, &all, &disabled).build(),
            // Report-only on a policy that targets admins: high raised to critical.
            update(
                "c2",
                5,
                &admins_policy("enabled"),
                &admins_policy("enabledForReportingButNotEnforced"),
            )
            .build(),
            update("c3", 10, &all, &excluded).build(),
            update("c4", 15, &both, &device_only).build(),
            ca(
                "c5",
                "Delete conditional access policy",
                20,
                Some(&all),
                None,
            )
            .with(|a| a.operation_type = Some("Delete".into()))
            .build(),
            // A partner technician excluding service-provider users: medium raised to high. The
            // values come double-quoted (JSON text holding JSON text) under another name.
            audit("c6", "Update conditional access policy", 25)
                .category("Policy")
                .by_technician(PARTNER)
                .target("Policy", MFA_ALL, "Require MFA for all users")
                .modified(
                    "Policy",
                    Some(&serde_json::to_string(&text(&all)).unwrap()),
                    Some(&serde_json::to_string(&text(&guests)).unwrap()),
                )
                .build(),
            update("c7", 30, &all, &role_excluded).build(),
        ];
        let found = run(ID, DetectConfig::default(), &events);
        let brief: Vec<(&str, Severity)> = found
            .iter()
            .map(|f| (f.event_ids[0].as_str(), f.severity))
            .collect();
        assert_eq!(
            brief,
            vec![
                ("c1", Severity::High),
                ("c2", Severity::Critical),
                ("c3", Severity::Medium),
                ("c4", Severity::High),
                ("c5", Severity::High),
                ("c6", Severity::High),
                ("c7", Severity::High),
            ]
        );
        assert_eq!(found[0].evidence["state_old"], json!("enabled"));
        assert_eq!(found[0].evidence["state_new"], json!("disabled"));
        assert_eq!(found[0].evidence["policy_id"], json!(MFA_ALL));
        assert_eq!(
            found[1].evidence["weakenings"],
            json!(["state enabled → report-only (enabledForReportingButNotEnforced)"])
        );
        assert_eq!(
            found[1].evidence["targets_admin_roles"],
            json!(["Global Administrator"])
        );
        assert_eq!(
            found[2].evidence["weakenings"],
            json!([format!("users excluded: {INTRUDER}")])
        );
        assert_eq!(
            found[3].evidence["weakenings"],
            json!(["grant control removed: mfa"])
        );
        assert_eq!(found[4].evidence["weakenings"], json!(["policy deleted"]));
        assert_eq!(
            found[5].evidence["weakenings"],
            json!([
                "guest or external users excluded: serviceprovider (from every external tenant)"
            ])
        );
        assert!(found[5].evidence["partner"].is_object());
        assert!(found[5].title.starts_with("Partner technician "));
        assert!(
            found[6].evidence["weakenings"][0]
                .as_str()
                .unwrap()
                .contains("Global Administrator")
        );
        assert_eq!(found[0].principal.id, uid("it-admin@contoso.com"));
        assert_eq!(found[0].principal.kind, PrincipalKind::User);
        assert_eq!(found[0].ip.as_deref(), Some("198.51.100.23"));
        assert_eq!(found[0].mitre, &["T1556", "T1562"]);
        insta::assert_json_snapshot!("conditional_access_weakened_fires", snapshot(&found[..3]));
    }

    #[test]
    fn stays_quiet_on_renames_tightening_failures_and_unknown_values() {
        let report_only = policy(
            MFA_ALL,
            "MFA all users",
            "enabledForReportingButNotEnforced",
        );
        let mut renamed = report_only.clone();
        renamed["displayName"] = json!("Require MFA for all users");
        renamed["modifiedDateTime"] = json!("2026-10-01T00:00:00.0000000+00:00");
        // Tightened: enforced, the exclusion removed, compliant device required as well.
        let mut loose = policy(
            MFA_ALL,
            "Require MFA for all users",
            "enabledForReportingButNotEnforced",
        );
        loose["conditions"]["users"]["excludeUsers"] = json!([INTRUDER]);
        let mut tight = loose.clone();
        tight["state"] = json!("enabled");
        tight["conditions"]["users"]["excludeUsers"] = json!([]);
        tight["grantControls"] =
            json!({"operator": "AND", "builtInControls": ["mfa", "compliantDevice"]});
        // Fewer ways to pass an OR grant: tighter.
        let mut either = policy(MFA_ALL, "Require MFA for all users", "enabled");
        either["grantControls"]["builtInControls"] = json!(["mfa", "compliantDevice"]);
        let mut device = either.clone();
        device["grantControls"]["builtInControls"] = json!(["compliantDevice"]);
        let enabled = policy(MFA_ALL, "Require MFA for all users", "enabled");
        let mut disabled = enabled.clone();
        disabled["state"] = json!("disabled");
        let events = vec![
            update("q1", 0, &report_only, &renamed).build(),
            update("q2", 1, &loose, &tight).build(),
            update("q3", 2, &enabled, &disabled).failed().build(),
            ca(
                "q4",
                "Add conditional access policy",
                3,
                None,
                Some(&disabled),
            )
            .build(),
            update("q5", 4, &either, &device).build(),
            // The new value missing: nothing to judge.
            ca(
                "q6",
                "Update conditional access policy",
                5,
                Some(&enabled),
                None,
            )
            .build(),
            // A policy already disabled edited while disabled.
            update("q7", 6, &disabled, &{
                let mut d = disabled.clone();
                d["conditions"]["users"]["excludeUsers"] = json!([]);
                d
            })
            .build(),
        ];
        let found = run(ID, DetectConfig::default(), &events);
        assert!(found.is_empty(), "{:#?}", snapshot(&found));
    }

    #[test]
    fn reads_absent_old_values_and_split_properties() {
        let disabled = policy(MFA_ALL, "Require MFA for all users", "disabled");
        let events = vec![
            ca(
                "o1",
                "Update conditional access policy",
                0,
                None,
                Some(&disabled),
            )
            .build(),
            audit("o2", "Update conditional access policy", 1)
                .category("Policy")
                .target("Policy", MFA_ALL, "Require MFA for all users")
                .modified(
                    "State",
                    Some("\"enabled\""),
                    Some("\"enabledForReportingButNotEnforced\""),
                )
                .build(),
            // A disabled policy deleted: low.
            ca(
                "o3",
                "Delete conditional access policy",
                2,
                Some(&disabled),
                None,
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
                ("o1", Severity::High),
                ("o2", Severity::High),
                ("o3", Severity::Low)
            ]
        );
        assert_eq!(
            found[0].evidence["weakenings"],
            json!(["state now disabled (previous state not recorded)"])
        );
    }
}
