//! `partner-created-account`: see [`DOC`] for what it detects and why.

use entrawatch_ingest::model::{Audit, Body, Event, Kind, TargetResource};
use serde_json::{Map, json};

use super::{actor_ip, actor_name, partner_initiator, succeeded};
use crate::detector::{Context, Detector};
use crate::finding::{Finding, Principal, PrincipalKind, Severity};

pub const ID: &str = "partner-created-account";

/// User documentation, printed by `entrawatch rules partner-created-account`.
pub const DOC: &str = r#"## What it detects
A successful `Add user` or `Invite external user` audit in a customer tenant whose initiator is a
service-provider (partner) identity, recognised by any of:

- the initiator's `homeTenantId` is set and is not the tenant the audit belongs to;
- the initiator's user principal name has the GDAP technician shape `user_<32 hex digits>@...`;
- the initiator's user id signed in successfully to this tenant as a service provider within the
  last 30 days (entrawatch remembers technicians by home tenant and user id).

The variant "an account created in a partner's own domain" needs partner domain names, which the
configuration does not carry (`partner_tenants` holds tenant ids only), so it is not implemented.

## Why it matters
A partner's delegated admin roles can be removed by the customer at any time; an account the
partner (or an attacker holding a technician account) creates inside the customer tenant stays.
Creating a local account or inviting an outside guest is the classic way to keep access after
the trusted relationship is cut. MITRE ATT&CK T1136.003 (Create Account: Cloud Account) and
T1199 (Trusted Relationship).

## Signals used
`activityDisplayName`, `result`, `initiatedBy.user` (`id`, `userPrincipalName`, `homeTenantId`,
`ipAddress`), the created or invited user in `targetResources`, and the technicians seen in this
tenant's sign-in log.

## Example
At 03:10 `user_5f0c2a9e8b7d4c3a9e1f2b3c4d5e6f70@northwindcsp.onmicrosoft.com`, home tenant
Northwind, runs `Add user` in Contoso and creates `svc-backup@contoso.com`: this fires high with
the technician as the principal and the new account in the evidence.

## Known false positives and tuning
Partners that onboard customers, or run user provisioning as a paid service, create accounts as
routine; confirm against the partner's ticket. Allow-list the partner's provisioning technician
by object id or UPN under `[detect.allow.partner-created-account]`.

## References
Microsoft Learn: "Audit activity reference" (Microsoft Entra ID: `Add user`, `Invite external
user`), "Granular delegated admin privileges (GDAP) introduction", and Graph `directoryAudit`
(`initiatedBy.user.homeTenantId`).
"#;

#[derive(Debug, Clone, Copy, Default)]
pub struct PartnerCreatedAccount;

/// The user an `Add user` / `Invite external user` audit created.
fn created(a: &Audit) -> Option<&TargetResource> {
    a.target_resources
        .iter()
        .find(|t| {
            t.resource_type
                .as_deref()
                .is_some_and(|k| k.eq_ignore_ascii_case("User"))
        })
        .or_else(|| a.target_resources.first())
}

impl Detector for PartnerCreatedAccount {
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
        let invite = activity.eq_ignore_ascii_case("Invite external user");
        if !(invite || activity.eq_ignore_ascii_case("Add user")) || !succeeded(a) {
            return;
        }
        let tenant = &event.meta.tenant_id;
        let Some(partner) = partner_initiator(ctx, tenant, a) else {
            return;
        };
        let Some(user) = a.initiated_by.user.as_ref() else {
            return;
        };
        let actor = actor_name(a);
        let target = created(a);
        let account = target
            .and_then(|t| {
                t.user_principal_name
                    .clone()
                    .or_else(|| t.display_name.clone())
                    .or_else(|| t.id.clone())
            })
            .unwrap_or_else(|| "an account".into());
        let home = partner.home_tenant_id.clone();
        let from = actor_ip(a)
            .map(|ip| format!(" from {ip}"))
            .unwrap_or_default();
        let title = format!(
            "Partner technician {actor} {} {account} in tenant {tenant}",
            if invite {
                "invited guest"
            } else {
                "created account"
            }
        );
        let summary = format!(
            "Partner technician {actor} (home tenant {}) ran `{activity}` in customer tenant {tenant}{from}, \
             adding {account}. An account a partner creates stays after the partner's delegated access is \
             removed. Confirm with the customer and the partner's ticket; if nobody asked for it, {} \
             {account}, check its group and role memberships and sign-ins, and review the technician's other \
             activity in this tenant.",
            match (&partner.home_tenant_name, &home) {
                (Some(name), Some(id)) => format!("{name}, {id}"),
                (None, Some(id)) => id.clone(),
                _ => "unknown".to_owned(),
            },
            if invite {
                "remove the guest"
            } else {
                "disable"
            },
        );
        let mut evidence = Map::new();
        evidence.insert("activity".into(), json!(activity));
        evidence.insert("account".into(), json!(account));
        evidence.insert(
            "account_id".into(),
            json!(target.and_then(|t| t.id.clone())),
        );
        evidence.insert("actor".into(), json!(actor));
        evidence.insert("actor_id".into(), json!(user.id));
        evidence.insert("actor_home_tenant_id".into(), json!(home));
        evidence.insert(
            "actor_home_tenant_name".into(),
            json!(partner.home_tenant_name),
        );
        evidence.insert("partner_evidence".into(), json!(partner.reasons));
        evidence.insert("ip_address".into(), json!(actor_ip(a)));
        evidence.insert("correlation_id".into(), json!(a.correlation_id));
        out.push(Finding {
            rule: ID,
            severity: Severity::High,
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
                home_tenant_id: home,
            },
            time: event.meta.time,
            event_ids: vec![event.meta.id.to_string()],
            title,
            summary,
            evidence,
            mitre: &["T1136.003", "T1199"],
            ip: actor_ip(a),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DetectConfig;
    use crate::testkit::*;

    #[test]
    fn fires_on_accounts_created_or_invited_by_technicians() {
        let events = vec![
            // A technician whose audit names their home tenant.
            audit("u1", "Add user", 0)
                .by_technician(PARTNER)
                .target_user("svc-backup@contoso.com")
                .build(),
            // Only the technician user name gives it away.
            audit("u2", "Invite external user", 5)
                .with(|a| {
                    a.initiated_by.user = Some(entrawatch_ingest::model::AuditUser {
                        id: Some("0d1e2f3a-4b5c-4d6e-8f70-8192a3b4c5d6".into()),
                        user_principal_name: Some(
                            "user_0D1E2F3A4B5C4D6E8F708192A3B4C5D6@tailspin.onmicrosoft.com".into(),
                        ),
                        ip_address: Some("192.0.2.80".into()),
                        ..Default::default()
                    })
                })
                .target(
                    "User",
                    "guest-1",
                    "mallory_evil.example#EXT#@contoso.onmicrosoft.com",
                )
                .build(),
            // Nothing in the audit: the same user id signed in to this tenant as a service provider.
            sign_in("s1", "tech@northwind.example", 10)
                .partner(PARTNER)
                .build(),
            audit("u3", "Add user", 12)
                .by_user("tech@northwind.example")
                .target_user("helper@contoso.com")
                .build(),
        ];
        let found = run(ID, DetectConfig::default(), &events);
        let ids: Vec<&str> = found.iter().map(|f| f.event_ids[0].as_str()).collect();
        assert_eq!(ids, vec!["u1", "u2", "u3"]);
        assert!(
            found
                .iter()
                .all(|f| f.severity == Severity::High && f.tenant_id == TENANT)
        );
        assert_eq!(found[0].principal.home_tenant_id.as_deref(), Some(PARTNER));
        assert_eq!(found[1].principal.home_tenant_id, None);
        assert_eq!(found[1].ip.as_deref(), Some("192.0.2.80"));
        assert_eq!(found[2].principal.home_tenant_id.as_deref(), Some(PARTNER));
        assert_eq!(
            found[2].evidence["partner_evidence"],
            json!(["signed in to this tenant as a service provider"])
        );
        insta::assert_json_snapshot!("partner_created_account_fires", snapshot(&found));
    }

    #[test]
    fn stays_quiet_on_local_admins_sync_failures_and_other_changes() {
        let events = vec![
            // The customer's own admin, with and without a home tenant on the record.
            audit("q1", "Add user", 0)
                .target_user("new.hire@contoso.com")
                .build(),
            audit("q2", "Add user", 1)
                .with(|a| {
                    a.initiated_by.user.as_mut().unwrap().home_tenant_id = Some(TENANT.into())
                })
                .target_user("intern@contoso.com")
                .build(),
            // Directory sync creating users.
            audit("q3", "Add user", 2)
                .by_app("Microsoft Azure AD Connect")
                .target_user("synced@contoso.com")
                .build(),
            // Failed creation by a technician, and technician changes that create nothing.
            audit("q4", "Add user", 3)
                .by_technician(PARTNER)
                .target_user("x@contoso.com")
                .failed()
                .build(),
            audit("q5", "Update user", 4)
                .by_technician(PARTNER)
                .target_user("ann@contoso.com")
                .build(),
            audit("q6", "Reset user password", 5)
                .by_technician(PARTNER)
                .target_user("ann@contoso.com")
                .build(),
            // A technician seen in another customer only.
            sign_in("s1", "tech@northwind.example", 6)
                .partner(PARTNER)
                .tenant(TENANT_B)
                .build(),
            audit("q7", "Add user", 7)
                .by_user("tech@northwind.example")
                .target_user("y@contoso.com")
                .build(),
            // A failed service-provider sign-in does not make the user a technician of this tenant.
            sign_in("s2", "other@northwind.example", 8)
                .partner(PARTNER)
                .fail(50126)
                .build(),
            audit("q8", "Add user", 9)
                .by_user("other@northwind.example")
                .target_user("z@contoso.com")
                .build(),
        ];
        let found = run(ID, DetectConfig::default(), &events);
        assert!(found.is_empty(), "{:#?}", snapshot(&found));
    }

    #[test]
    fn reads_the_event_hub_technician_record() {
        let bytes =
            include_bytes!("../../../ingest/tests/fixtures/quirks/eh_audit_roles_string.json");
        let events = fixture_events("eh_audit_roles_string.json", bytes, TENANT);
        let found = run(ID, DetectConfig::default(), &events);
        assert_eq!(found.len(), 1);
        assert_eq!(
            found[0].event_ids,
            vec!["Directory_2da62783-4917-4a82-a968-5b64095dee94_ZR41C_318005867"]
        );
        assert_eq!(found[0].principal.home_tenant_id.as_deref(), Some(PARTNER));
        assert_eq!(
            found[0].evidence["account"],
            json!("jordan.ellis@contoso.com")
        );
        assert_eq!(
            found[0].evidence["actor_home_tenant_name"],
            json!("Northwind Traders")
        );
        assert_eq!(found[0].ip.as_deref(), Some("198.51.100.200"));
    }
}
