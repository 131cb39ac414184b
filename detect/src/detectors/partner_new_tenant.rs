//! `partner-new-tenant`: see [`DOC`] for what it detects and why.

use entrawatch_ingest::model::{Event, Kind};
use serde_json::{Map, Value, json};

use super::app_name;
use super::{history_span, place, sign_in_principal, who};
use crate::detector::{Context, Detector};
use crate::finding::{Finding, Severity};
use crate::privileged::PrivilegedDirectory;
use crate::state::{RETENTION_SECS, Stream};

pub const ID: &str = "partner-new-tenant";

/// User documentation, printed by `entrawatch rules partner-new-tenant`.
pub const DOC: &str = r#"## What it detects
A partner technician (a CSP / GDAP service-provider sign-in, keyed by home tenant and user id)
signs in successfully to a customer tenant they did not reach in the previous 30 days.

- **High**: the first sign-in ever seen of that partner home tenant (`homeTenantId`) into the
  customer: no technician of that partner has acted there before. This fires even for a
  technician with no history, since a brand-new partner has none.
- **Medium**: a technician with a learning period of history (`detect.baseline.learning_days` since first seen
  and `detect.baseline.learning_sign_ins` successful sign-ins, defaults 7 days and 10) reaches a customer that
  their partner already serves but they themselves have not touched for 30 days.

Both wait until entrawatch has watched the customer's sign-in log for `detect.baseline.learning_days`, so a
newly onboarded customer, or the first week after a restart, does not make every technician look
new. The medium alert says what history it speaks for: "for the first time in 30 days" once the
technician has 30 days of history, "in the 12 days watched" before (`history_days` in the
evidence).

## Why it matters
GDAP gives a partner's technicians admin roles in every customer that accepted the relationship.
An attacker who takes over a partner account, or who talks a customer into accepting a
relationship with a tenant they control, reaches customers that account never touched.
MITRE ATT&CK T1199 (Trusted Relationship) and T1078.004 (Valid Accounts: Cloud Accounts).

## Signals used
`crossTenantAccessType == serviceProvider` (or `homeTenantId` of a configured partner acting in
another tenant), `homeTenantId`, `userId`, `status.errorCode` (0 only: interrupts such as 50074
and failures do not count as reaching a tenant), and entrawatch's 30-day memory of which
customer tenants each technician reached and which partners ever acted in each customer.

## Example
Northwind's technician `user_5f0c...@northwindcsp.onmicrosoft.com` has worked in Contoso every
day for two weeks. At 02:40 the same account signs in to Fabrikam's Azure portal, a customer
Northwind serves but this technician never worked for: medium. An hour later a technician of a
partner tenant nobody has seen before signs in to Contoso: high.

## Known false positives and tuning
A technician picking up a new customer ticket, staff rotation, and a newly signed GDAP
relationship all fire once per technician and tenant. Confirm with the partner's ticket and
with Microsoft 365 admin center > Settings > Partner relationships. Raise `detect.baseline.learning_days` /
`detect.baseline.learning_sign_ins` for partners whose staff rotate often, or allow-list a technician by object
id or UPN under `[detect.allow.partner-new-tenant]`.

## References
Microsoft Learn: "Granular delegated admin privileges (GDAP) introduction", "Sign-in logs in
Microsoft Entra ID" (`crossTenantAccessType`, `homeTenantId`, `resourceTenantId`), and the
Partner Center "Partner security requirements".
"#;

#[derive(Debug, Clone, Copy, Default)]
pub struct PartnerNewTenant;

impl Detector for PartnerNewTenant {
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
        if !(s.is_user()
            && s.is_success()
            && PrivilegedDirectory::is_partner_technician(ctx.config, s))
        {
            return;
        }
        let (Some(home), Some(user_id)) = (s.home_tenant_id.as_deref(), s.user_id.as_deref())
        else {
            return;
        };
        let customer = &event.meta.tenant_id;
        if home.eq_ignore_ascii_case(customer) {
            return;
        }
        let state = ctx.state;
        let t = &ctx.config.baseline;
        let now = event.meta.time.timestamp();
        let learning_secs = t.learning_days * 86_400;
        let customer_index = state.tenants.get(customer);
        // The customer's own sign-in log must have been watched long enough to know who comes.
        let watched = customer_index
            .and_then(|c| state.streams.get(&(c, Stream::SignIns)))
            .is_some_and(|stream| now - stream.first >= learning_secs);
        if !watched {
            return;
        }
        let tech = state.technician(home, user_id);
        let reached = match (tech, customer_index) {
            (Some(tech), Some(c)) => tech.reached_since(c, now - RETENTION_SECS),
            _ => false,
        };
        if reached {
            return;
        }
        let partner_new = !state.partner_known_in(customer, home);
        let learned = tech.is_some_and(|x| {
            now - x.first_seen >= learning_secs && x.sign_ins >= t.learning_sign_ins
        });
        let severity = if partner_new {
            Severity::High
        } else if learned {
            Severity::Medium
        } else {
            return;
        };

        let partner = s.home_tenant_name.clone().unwrap_or_else(|| home.into());
        let partner_full = match &s.home_tenant_name {
            Some(name) => format!("{name} ({home})"),
            None => home.to_owned(),
        };
        let app = app_name(s);
        let ip = s
            .ip_address
            .clone()
            .unwrap_or_else(|| "an unknown IP".into());
        let mut usual: Vec<&str> = tech
            .map(|x| {
                x.tenants_since(now - RETENTION_SECS)
                    .map(|i| state.tenants.name(i))
                    .collect()
            })
            .unwrap_or_default();
        usual.sort_unstable();
        // What the technician's history covers (it reaches this rule only once learned).
        let span = history_span(now, tech.map_or(now, |x| x.first_seen));
        let (title, summary) = if partner_new {
            (
                format!(
                    "First sign-in ever by partner tenant {partner} to customer tenant {customer} ({})",
                    who(s)
                ),
                format!(
                    "Technician {} of partner tenant {partner_full} signed in successfully to customer tenant \
                     {customer} through {app} from {ip} ({}). No technician of this partner has acted in this \
                     tenant before. Confirm the customer has accepted a GDAP relationship with this partner \
                     (Microsoft 365 admin center > Settings > Partner relationships) and that the work was \
                     requested; if not, remove the relationship, revoke the sessions and review the tenant's \
                     audit log for what the technician changed.",
                    who(s),
                    place(s),
                ),
            )
        } else {
            (
                format!(
                    "Partner technician {} ({partner}) reached customer tenant {customer} for the first time in {span}",
                    who(s)
                ),
                format!(
                    "Technician {} of partner tenant {partner_full} signed in successfully to customer tenant \
                     {customer} through {app} from {ip} ({}), which they had not reached in {span} \
                     ({} other customer tenant(s) in that time, listed in the evidence). Check the partner's ticket for this customer with the partner; if nobody \
                     asked for it, treat the technician account as compromised: ask the partner to revoke its \
                     sessions and review this tenant's audit log.",
                    who(s),
                    place(s),
                    usual.len(),
                ),
            )
        };
        let mut evidence = Map::new();
        evidence.insert("home_tenant_id".into(), json!(home));
        evidence.insert("home_tenant_name".into(), json!(s.home_tenant_name));
        evidence.insert("customer_tenant_id".into(), json!(customer));
        evidence.insert(
            "first_partner_sign_in_to_tenant".into(),
            Value::Bool(partner_new),
        );
        evidence.insert(
            "technician_first_seen".into(),
            json!(tech.map(|x| time_text(x.first_seen))),
        );
        evidence.insert(
            "technician_sign_ins".into(),
            json!(tech.map_or(0, |x| x.sign_ins)),
        );
        evidence.insert("tenants_in_previous_30_days".into(), json!(usual));
        evidence.insert(
            "history_days".into(),
            json!(tech.map_or(0, |x| (now - x.first_seen) / 86_400)),
        );
        evidence.insert("app".into(), json!(app));
        evidence.insert("resource".into(), json!(s.resource_display_name));
        evidence.insert("ip_address".into(), json!(s.ip_address));
        evidence.insert("location".into(), json!(place(s)));
        evidence.insert("interactive".into(), Value::Bool(s.is_interactive()));
        out.push(Finding {
            rule: ID,
            severity,
            tenant_id: customer.to_string(),
            principal: sign_in_principal(s),
            time: event.meta.time,
            event_ids: vec![event.meta.id.to_string()],
            title,
            summary,
            evidence,
            mitre: &["T1199", "T1078.004"],
            ip: s.ip_address.as_deref().map(str::to_owned),
        });
    }
}

fn time_text(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0)
        .map(|t| t.to_rfc3339())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DetectConfig;
    use crate::testkit::*;
    use entrawatch_ingest::model::Event;

    const PARTNER_2: &str = "44444444-dddd-4ddd-8ddd-444444444444";
    const TECH: &str = "tech@northwind.example";
    const DAY: i64 = 1440;

    /// Ten days of ordinary life: a local user in each customer every few hours, and `TECH` of
    /// `PARTNER` working in `TENANT` twice a day (20 successful sign-ins).
    fn ten_days() -> Vec<Event> {
        let mut events = Vec::new();
        for d in 0..10 {
            for h in [2, 8, 14, 20] {
                events.push(
                    sign_in(&format!("a-{d}-{h}"), "ann@contoso.com", d * DAY + h * 60).build(),
                );
                events.push(
                    sign_in(
                        &format!("b-{d}-{h}"),
                        "bea@fabrikam.com",
                        d * DAY + h * 60 + 1,
                    )
                    .tenant(TENANT_B)
                    .build(),
                );
            }
            for h in [9, 15] {
                events.push(
                    sign_in(&format!("t-{d}-{h}"), TECH, d * DAY + h * 60 + 2)
                        .partner(PARTNER)
                        .tenant(TENANT)
                        .build(),
                );
            }
        }
        events
    }

    #[test]
    fn fires_on_a_technician_new_to_a_tenant_and_on_a_partner_new_to_a_customer() {
        let mut events = ten_days();
        // A second Northwind technician has served Fabrikam for the whole period, so the partner is
        // known there.
        for d in 0..10 {
            events.push(
                sign_in(&format!("o-{d}"), "other@northwind.example", d * DAY + 600)
                    .partner(PARTNER)
                    .tenant(TENANT_B)
                    .build(),
            );
        }
        events.sort_by_key(|e| e.meta.time);
        let m = 10 * DAY;
        events.extend([
            // The MFA interrupt before the success is not "reaching" the tenant.
            sign_in("n0", TECH, m + 100)
                .partner(PARTNER)
                .tenant(TENANT_B)
                .fail(50074)
                .build(),
            sign_in("n1", TECH, m + 101)
                .partner(PARTNER)
                .tenant(TENANT_B)
                .ip("198.51.100.23")
                .with(|s| s.home_tenant_name = Some("Northwind CSP".into()))
                .build(),
            // Already reached: quiet.
            sign_in("n2", TECH, m + 102)
                .partner(PARTNER)
                .tenant(TENANT_B)
                .non_interactive()
                .build(),
            // A partner tenant nobody has seen, with no history at all, into Contoso.
            sign_in("n3", "user_9a@tailspin.example", m + 130)
                .partner(PARTNER_2)
                .tenant(TENANT)
                .ip("192.0.2.200")
                .build(),
        ]);
        let found = run(ID, DetectConfig::default(), &events);
        let brief: Vec<(&str, Severity)> = found
            .iter()
            .map(|f| (f.event_ids[0].as_str(), f.severity))
            .collect();
        assert_eq!(
            brief,
            vec![("n1", Severity::Medium), ("n3", Severity::High)]
        );
        assert_eq!(found[0].tenant_id, TENANT_B);
        assert_eq!(found[0].principal.home_tenant_id.as_deref(), Some(PARTNER));
        assert_eq!(
            found[0].evidence["tenants_in_previous_30_days"],
            json!([TENANT])
        );
        assert_eq!(
            found[1].evidence["first_partner_sign_in_to_tenant"],
            json!(true)
        );
        assert_eq!(found[1].ip.as_deref(), Some("192.0.2.200"));
        insta::assert_json_snapshot!("partner_new_tenant_fires", snapshot(&found));
    }

    #[test]
    fn first_partner_in_customer_is_high_even_for_a_seasoned_technician() {
        let mut events = ten_days();
        events.push(
            sign_in("n1", TECH, 10 * DAY + 5)
                .partner(PARTNER)
                .tenant(TENANT_B)
                .build(),
        );
        let found = run(ID, DetectConfig::default(), &events);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].severity, Severity::High);
        assert_eq!(found[0].event_ids, vec!["n1"]);
    }

    #[test]
    fn stays_quiet_on_usual_tenants_failures_guests_new_technicians_and_unwatched_customers() {
        let mut events = ten_days();
        for d in 0..10 {
            events.push(
                sign_in(&format!("o-{d}"), "other@northwind.example", d * DAY + 600)
                    .partner(PARTNER)
                    .tenant(TENANT_B)
                    .build(),
            );
        }
        events.sort_by_key(|e| e.meta.time);
        let m = 10 * DAY;
        let unwatched = "55555555-eeee-4eee-8eee-555555555555";
        events.extend([
            // The technician's usual customer, interactively and by token refresh.
            sign_in("q1", TECH, m)
                .partner(PARTNER)
                .tenant(TENANT)
                .build(),
            sign_in("q2", TECH, m + 1)
                .partner(PARTNER)
                .tenant(TENANT)
                .non_interactive()
                .build(),
            // Failures and interrupts into a new tenant reach nothing.
            sign_in("q3", TECH, m + 2)
                .partner(PARTNER)
                .tenant(TENANT_B)
                .fail(50126)
                .build(),
            sign_in("q4", TECH, m + 3)
                .partner(PARTNER)
                .tenant(TENANT_B)
                .fail(50074)
                .build(),
            // A B2B guest from another tenant is not a service provider.
            sign_in("q5", "guest@tailspin.example", m + 4)
                .guest(PARTNER_2)
                .tenant(TENANT)
                .build(),
            // A technician hired yesterday: no learning period, and the partner is known in Fabrikam.
            sign_in("q6", "newhire@northwind.example", m + 5)
                .partner(PARTNER)
                .tenant(TENANT_B)
                .build(),
            // A customer whose logs entrawatch only started reading today.
            sign_in("q7", "local@newcustomer.example", m + 6)
                .tenant(unwatched)
                .build(),
            sign_in("q8", TECH, m + 7)
                .partner(PARTNER)
                .tenant(unwatched)
                .build(),
            sign_in("q9", "user_9a@tailspin.example", m + 8)
                .partner(PARTNER_2)
                .tenant(unwatched)
                .build(),
        ]);
        let found = run(ID, DetectConfig::default(), &events);
        assert!(found.is_empty(), "{:#?}", snapshot(&found));
    }

    #[test]
    fn a_technician_back_after_more_than_30_days_is_new_again() {
        let mut events = Vec::new();
        for d in 0..45 {
            events.push(sign_in(&format!("a-{d}"), "ann@contoso.com", d * DAY).build());
            events.push(
                sign_in(&format!("b-{d}"), "bea@fabrikam.com", d * DAY + 1)
                    .tenant(TENANT_B)
                    .build(),
            );
            for k in 0..2 {
                events.push(
                    sign_in(&format!("t-{d}-{k}"), TECH, d * DAY + 2 + k)
                        .partner(PARTNER)
                        .tenant(TENANT)
                        .build(),
                );
            }
        }
        // Day 8: Fabrikam once (first partner there: high); day 45: Fabrikam again, 37 days later.
        events.push(
            sign_in("once", TECH, 8 * DAY + 500)
                .partner(PARTNER)
                .tenant(TENANT_B)
                .build(),
        );
        events.sort_by_key(|e| e.meta.time);
        events.push(
            sign_in("again", TECH, 45 * DAY + 10)
                .partner(PARTNER)
                .tenant(TENANT_B)
                .build(),
        );
        let found = run(ID, DetectConfig::default(), &events);
        let brief: Vec<(&str, Severity)> = found
            .iter()
            .map(|f| (f.event_ids[0].as_str(), f.severity))
            .collect();
        assert_eq!(
            brief,
            vec![("once", Severity::High), ("again", Severity::Medium)]
        );
    }
}
