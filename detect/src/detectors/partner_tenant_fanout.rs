//! `partner-tenant-fanout`: see [`DOC`] for what it detects and why.

use std::marker::PhantomData;

use entrawatch_ingest::model::{Event, Kind, SignIn};
use serde_json::{Map, json};

use super::{sign_in_principal, who};
use crate::detector::{Context, Detector};
use crate::finding::{Finding, Principal, PrincipalKind, Severity};
use crate::privileged::PrivilegedDirectory;
use crate::settings::{Of, RuleSettings, SettingsKind};
use crate::state::State;

pub const ID: &str = "partner-tenant-fanout";

/// User documentation, printed by `entrawatch rules partner-tenant-fanout`.
pub const DOC: &str = r#"## What it detects
One partner technician, or one source IP acting as a service provider, signing in successfully to
at least `min_tenants` distinct customer tenants (default 5) within
`window_minutes` (default 60). It fires once, on the sign-in that reaches the threshold,
not on every later sign-in; it can fire again only after the count has fallen back below the
threshold as the window slides.

The alert's tenant is the partner's home tenant (`homeTenantId`), not one of the customers; the
evidence lists the customer tenants reached. The technician variant names the technician; the IP
variant (principal kind `ip`) catches several technician accounts, or an attacker rotating
through them, working from one address. When one sign-in completes both, only the technician
alert is raised.

## Why it matters
A partner technician account is a key to every customer that granted the partner GDAP roles.
Someone who takes one over, or steals a technician's refresh tokens, tends to sweep as many
customers as possible in a short time, for reconnaissance, mailbox access or ransomware staging;
real technicians mostly work one ticket, and one customer, at a time.
MITRE ATT&CK T1199 (Trusted Relationship) and T1078.004 (Valid Accounts: Cloud Accounts).

## Signals used
`crossTenantAccessType == serviceProvider` (or the `homeTenantId` of a configured partner acting
in another tenant), `homeTenantId`, `userId`, `ipAddress`, `status.errorCode` (0 only), and
entrawatch's memory of the customer tenants each technician and each IP reached, with the last
time of each.

## Example
Between 02:05 and 02:40, Northwind's technician `user_5f0c...@northwindcsp.onmicrosoft.com`
signs in to Contoso, Fabrikam, Tailspin, Wingtip and Litware from one VPS address: this fires
high at the Litware sign-in, with the five customer tenants in the evidence.

## Known false positives and tuning
Month-end or licensing work that walks many customers, partner automation that signs in to every
customer, and a partner office whose technicians share one egress IP. Raise
`min_tenants` or shorten `window_minutes`, and allow-list the automation account
or the office egress range under `[detect.allow.partner-tenant-fanout]`.

## References
Microsoft Learn: "Granular delegated admin privileges (GDAP) introduction" and "Sign-in logs in
Microsoft Entra ID" (`crossTenantAccessType`, `homeTenantId`); Microsoft Security blog on
NOBELIUM targeting delegated administrative privileges (2021).
"#;

/// `[detect.rules.partner-tenant-fanout]`: this rule's settings, each with its default.
#[derive(Debug, Clone, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// One technician or IP reaching this many customer tenants... (default 5).
    pub min_tenants: u32,
    /// ...within this many minutes (default 60).
    pub window_minutes: i64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            min_tenants: 5,
            window_minutes: 60,
        }
    }
}

impl RuleSettings for Settings {
    crate::settings_slot!();

    const KEYS: &'static [(&'static str, &'static str)] = &[
        (
            "min_tenants",
            "one technician or IP reaching this many customer tenants...",
        ),
        ("window_minutes", "...within this many minutes"),
    ];

    fn validate(&self, path: &str) -> Vec<String> {
        crate::settings::greater_than_zero(
            path,
            &[
                ("min_tenants", f64::from(self.min_tenants)),
                ("window_minutes", self.window_minutes as f64),
            ],
        )
    }
}

#[derive(Debug, Clone, Copy, Default)]
pub struct PartnerTenantFanout;

/// The customer tenants reached in the window, this sign-in's included, when this sign-in is the
/// one that makes the count reach `min` (`list` is the history before it: tenant, last time).
fn crossing(
    state: &State,
    list: &[(u32, i64)],
    since: i64,
    customer: &str,
    now: i64,
    min: u32,
) -> Option<Vec<(String, i64)>> {
    let current = state.tenants.get(customer);
    let mut reached: Vec<(String, i64)> = list
        .iter()
        .filter(|(t, at)| *at >= since && Some(*t) != current)
        .map(|(t, at)| (state.tenants.name(*t).to_owned(), *at))
        .collect();
    let already = list
        .iter()
        .any(|(t, at)| *at >= since && Some(*t) == current);
    if already || reached.len() + 1 != min as usize {
        return None;
    }
    reached.sort_by(|a, b| (a.1, &a.0).cmp(&(b.1, &b.0)));
    reached.push((customer.to_owned(), now));
    Some(reached)
}

impl Detector for PartnerTenantFanout {
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
        let Some(home) = s.home_tenant_id.as_deref() else {
            return;
        };
        let customer = &event.meta.tenant_id;
        let t = ctx.config.rule::<Settings>();
        let now = event.meta.time.timestamp();
        let since = now - t.window_minutes * 60;
        let min = t.min_tenants;

        let by_technician = s.user_id.as_deref().and_then(|user| {
            let list = ctx
                .state
                .technician(home, user)
                .map_or(&[][..], |x| &x.tenants[..]);
            crossing(ctx.state, list, since, customer, now, min)
        });
        let (reached, principal, actor) = match by_technician {
            Some(reached) => {
                let actor = format!("Partner technician {}", who(s));
                (reached, sign_in_principal(s), actor)
            }
            None => {
                let Some(ip) = s.ip_address.as_deref() else {
                    return;
                };
                let list = ctx.state.ip(ip).map_or(&[][..], |x| &x.partner_tenants[..]);
                let Some(reached) = crossing(ctx.state, list, since, customer, now, min) else {
                    return;
                };
                let principal = Principal {
                    kind: PrincipalKind::Ip,
                    id: ip.to_owned(),
                    upn: None,
                    home_tenant_id: Some(home.to_owned()),
                };
                (reached, principal, format!("Source IP {ip}"))
            }
        };
        out.push(finding(s, event, home, reached, principal, actor));
    }
}

fn finding(
    s: &SignIn,
    event: &Event,
    home: &str,
    reached: Vec<(String, i64)>,
    principal: Principal,
    actor: String,
) -> Finding {
    let now = event.meta.time.timestamp();
    let first = reached.iter().map(|(_, at)| *at).min().unwrap_or(now);
    let minutes = (now - first + 59) / 60;
    let partner = match &s.home_tenant_name {
        Some(name) => format!("{name} ({home})"),
        None => home.to_owned(),
    };
    let ip = s
        .ip_address
        .clone()
        .unwrap_or_else(|| "an unknown IP".into());
    let tenants: Vec<&str> = reached.iter().map(|(t, _)| t.as_str()).collect();
    let ip_variant = principal.kind == PrincipalKind::Ip;
    let title = format!(
        "{actor}{} reached {} customer tenants in {minutes} minutes",
        if ip_variant {
            " (service provider)"
        } else {
            ""
        },
        tenants.len()
    );
    let app = s
        .app_display_name
        .as_deref()
        .or(s.app_id.as_deref())
        .unwrap_or("an application");
    let summary = if ip_variant {
        format!(
            "Technician accounts of partner tenant {partner} signed in successfully as service providers from \
             {ip} to {} distinct customer tenants in {minutes} minutes, the last one {} through {app} by {}. \
             Ask the partner whether this address is theirs and a bulk task was planned; if not, identify the \
             technician accounts that used it in the listed tenants' sign-in logs, have the partner revoke their \
             sessions, and review the audit logs of every tenant listed in the evidence.",
            tenants.len(),
            event.meta.tenant_id,
            who(s),
        )
    } else {
        format!(
            "{actor} of partner tenant {partner} signed in successfully as a service provider to {} distinct \
             customer tenants in {minutes} minutes, the last one {} through {app} from {ip}. Technicians rarely \
             sweep customers like this: ask the partner whether a bulk task was planned; if not, have them \
             revoke the technician's sessions and reset its credentials, and review the audit logs of every \
             tenant listed in the evidence.",
            tenants.len(),
            event.meta.tenant_id,
        )
    };
    let mut evidence = Map::new();
    evidence.insert("customer_tenants".into(), json!(tenants));
    evidence.insert("tenant_count".into(), json!(tenants.len()));
    evidence.insert("span_minutes".into(), json!(minutes));
    evidence.insert(
        "first_reached".into(),
        json!(chrono::DateTime::from_timestamp(first, 0).map(|t| t.to_rfc3339())),
    );
    evidence.insert("home_tenant_id".into(), json!(home));
    evidence.insert("home_tenant_name".into(), json!(s.home_tenant_name));
    evidence.insert("technician".into(), json!(who(s)));
    evidence.insert("ip_address".into(), json!(s.ip_address));
    evidence.insert("app".into(), json!(s.app_display_name));
    Finding {
        rule: ID,
        severity: Severity::High,
        tenant_id: home.to_owned(),
        principal,
        time: event.meta.time,
        event_ids: vec![event.meta.id.to_string()],
        title,
        summary,
        evidence,
        mitre: &["T1199", "T1078.004"],
        ip: s.ip_address.as_deref().map(str::to_owned),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DetectConfig;
    use crate::testkit::*;

    /// The n-th customer tenant of the stories.
    fn customer(n: u32) -> String {
        format!("{n:08x}-0000-4000-8000-0000000000{n:02x}")
    }

    fn tech(id: &str, upn: &str, n: u32, minute: i64) -> SignInB {
        sign_in(id, upn, minute)
            .partner(PARTNER)
            .tenant(&customer(n))
    }

    #[test]
    fn fires_once_when_a_technician_or_an_ip_reaches_five_customers_within_the_hour() {
        let t = "user_5f0c@northwindcsp.example";
        let events = vec![
            tech("a1", t, 1, 0).ip("198.51.100.7").build(),
            tech("a2", t, 2, 6).ip("198.51.100.7").build(),
            tech("a2r", t, 2, 7)
                .ip("198.51.100.7")
                .non_interactive()
                .build(),
            tech("a3", t, 3, 12).ip("198.51.100.7").build(),
            tech("a4", t, 4, 20).ip("198.51.100.7").build(),
            tech("a5", t, 5, 35)
                .ip("198.51.100.7")
                .with(|s| s.home_tenant_name = Some("Northwind CSP".into()))
                .build(),
            // Already reported: a sixth tenant and a return to the first do not fire again.
            tech("a6", t, 6, 40).ip("198.51.100.7").build(),
            tech("a7", t, 1, 41).ip("198.51.100.7").build(),
            // Two other technicians on one VPS address: three tenants each, five distinct.
            tech("b1", "user_aa@northwindcsp.example", 11, 100)
                .ip("192.0.2.66")
                .build(),
            tech("b2", "user_aa@northwindcsp.example", 12, 104)
                .ip("192.0.2.66")
                .build(),
            tech("b3", "user_aa@northwindcsp.example", 13, 108)
                .ip("192.0.2.66")
                .build(),
            tech("c1", "user_bb@northwindcsp.example", 13, 110)
                .ip("192.0.2.66")
                .build(),
            tech("c2", "user_bb@northwindcsp.example", 14, 115)
                .ip("192.0.2.66")
                .build(),
            tech("c3", "user_bb@northwindcsp.example", 15, 121)
                .ip("192.0.2.66")
                .build(),
        ];
        let found = run(ID, DetectConfig::default(), &events);
        let brief: Vec<(&str, PrincipalKind, Severity)> = found
            .iter()
            .map(|f| (f.event_ids[0].as_str(), f.principal.kind, f.severity))
            .collect();
        assert_eq!(
            brief,
            vec![
                ("a5", PrincipalKind::User, Severity::High),
                ("c3", PrincipalKind::Ip, Severity::High)
            ]
        );
        assert!(found.iter().all(|f| f.tenant_id == PARTNER));
        assert_eq!(
            found[0].evidence["customer_tenants"],
            json!((1..=5).map(customer).collect::<Vec<_>>())
        );
        assert_eq!(found[1].principal.id, "192.0.2.66");
        assert_eq!(
            found[1].evidence["customer_tenants"],
            json!((11..=15).map(customer).collect::<Vec<_>>())
        );
        insta::assert_json_snapshot!("partner_tenant_fanout_fires", snapshot(&found));
    }

    #[test]
    fn stays_quiet_on_slow_rounds_failures_guests_and_few_tenants() {
        let t = "user_5f0c@northwindcsp.example";
        let events = vec![
            // Four customers in the hour, then a fifth 70 minutes after the first.
            tech("q1", t, 1, 0).build(),
            tech("q2", t, 2, 20).build(),
            tech("q3", t, 3, 30).build(),
            tech("q4", t, 4, 50).build(),
            tech("q5", t, 5, 71).build(),
            // Failed and interrupted sign-ins to more customers reach nothing.
            tech("q6", t, 6, 72).fail(50126).build(),
            tech("q7", t, 7, 73).fail(50074).build(),
            tech("q8", t, 8, 74).fail(50076).build(),
            // Many refreshes in the same few tenants.
            tech("q9", t, 4, 75).non_interactive().build(),
            tech("q10", t, 5, 76).non_interactive().build(),
            // A B2B guest collaborating with five organisations is not a service provider.
            sign_in("g1", "guest@tailspin.example", 80)
                .guest(PARTNER)
                .tenant(&customer(21))
                .build(),
            sign_in("g2", "guest@tailspin.example", 81)
                .guest(PARTNER)
                .tenant(&customer(22))
                .build(),
            sign_in("g3", "guest@tailspin.example", 82)
                .guest(PARTNER)
                .tenant(&customer(23))
                .build(),
            sign_in("g4", "guest@tailspin.example", 83)
                .guest(PARTNER)
                .tenant(&customer(24))
                .build(),
            sign_in("g5", "guest@tailspin.example", 84)
                .guest(PARTNER)
                .tenant(&customer(25))
                .build(),
        ];
        let found = run(ID, DetectConfig::default(), &events);
        assert!(found.is_empty(), "{:#?}", snapshot(&found));
    }

    #[test]
    fn thresholds_come_from_the_config() {
        let mut config = DetectConfig::default();
        config.rule_mut::<Settings>().min_tenants = 3;
        config.rule_mut::<Settings>().window_minutes = 10;
        let t = "user_5f0c@northwindcsp.example";
        let events = vec![
            tech("k1", t, 1, 0).build(),
            tech("k2", t, 2, 5).build(),
            // 11 minutes after k1: only k2 and k3 are in the window.
            tech("k3", t, 3, 11).build(),
            tech("k4", t, 4, 12).build(),
        ];
        let found = run(ID, config, &events);
        assert_eq!(
            found
                .iter()
                .map(|f| f.event_ids[0].as_str())
                .collect::<Vec<_>>(),
            vec!["k4"]
        );
    }
}
