//! `new-country-sign-in`: see [`DOC`] for what it detects and why.

use entrawatch_ingest::model::{Event, Kind};
use serde_json::{Map, Value, json};

use super::{about_sign_in, actor, app_name, history_span, place, who};
use crate::detector::{Context, Detector};
use crate::finding::{Finding, Severity};
use crate::keys::{country_code, country_text};
use crate::privileged::PrivilegedDirectory;
use crate::state::RETENTION_SECS;

pub const ID: &str = "new-country-sign-in";

/// User documentation, printed by `entrawatch rules new-country-sign-in`.
pub const DOC: &str = r#"## What it detects
A successful interactive user sign-in from a country this user has not signed in from
(interactively, successfully) in the previous 30 days. The rule only judges users with a
baseline: by default 7 days of history and 10 successful sign-ins (`detect.baseline.learning_days`,
`detect.baseline.learning_sign_ins`), with at least one country seen in the last 30 days. New accounts and the
first week after deployment stay quiet. The alert says what history it speaks for: "not seen for
this account in 30 days" once the account has 30 days of history, "in the 9 days watched" before
(`history_days` in the evidence).

## Why it matters
A password or session stolen by phishing is usually replayed from the attacker's own
infrastructure, which is rarely in the victim's country. A first sign-in from a new country is
one of the cheapest early signs of account takeover; for an admin or a partner technician it is
a possible way into every tenant they manage. MITRE ATT&CK T1078.004 (Valid Accounts: Cloud
Accounts).

## Signals used
`status.errorCode` (0), `isInteractive` (or the Event Hub category), `location.countryOrRegion`
(the ISO code Entra derives from the source IP), and the engine's 30-day history of the user:
countries of successful interactive sign-ins, first sighting and count of successes. Severity
uses the privileged directory and `crossTenantAccessType`. Non-interactive token refreshes,
failures and interrupts neither fire nor teach a country; sign-ins without a country are ignored.

## Example
Adele has signed in from the US every working day for three weeks. At 03:12 UTC a sign-in to
Office 365 succeeds from 102.89.4.20 in Lagos, NG: this fires low, listing the countries seen
before (`US`). The same sign-in by a Global Administrator or a CSP technician fires medium.
Adele's next sign-ins from NG do not fire again: the country is now known.

## Known false positives and tuning
Business travel, staff working abroad, and VPN or secure web gateway egress in another country
(consumer VPNs, Zscaler, Netskope) each fire once per new country. Mobile carriers and IPv6
ranges are sometimes placed in a neighbouring country. Allow-list egress ranges
(`allow.new-country-sign-in.ips`) or frequent travellers (`...principals`); raise
`detect.baseline.learning_days` / `detect.baseline.learning_sign_ins` to wait longer for a baseline. Judge a finding together
with `impossible-travel`, `risky-sign-in` and `mfa-not-satisfied` for the same user.

## References
Microsoft Learn: "Sign-in logs in Microsoft Entra ID" and the Graph `signIn` resource
(`location`, `isInteractive`); "What are risk detections?" in Microsoft Entra ID Protection
("Unfamiliar sign-in properties", a similar built-in signal); MITRE ATT&CK T1078.004.
"#;

#[derive(Debug, Clone, Copy, Default)]
pub struct NewCountrySignIn;

impl Detector for NewCountrySignIn {
    fn id(&self) -> &'static str {
        ID
    }

    fn doc(&self) -> &'static str {
        DOC
    }

    fn default_severity(&self) -> Severity {
        Severity::Low
    }

    fn kinds(&self) -> &'static [Kind] {
        &[Kind::SignIn]
    }

    fn observe(&self, ctx: &Context<'_>, event: &Event, out: &mut Vec<Finding>) {
        let Some(s) = event.as_sign_in() else { return };
        if !(s.is_user() && s.is_interactive() && s.is_success()) {
            return;
        }
        let country = country_code(s.location.country_or_region.as_deref());
        if country == 0 {
            return;
        }
        let tenant = &event.meta.tenant_id;
        let Some(history) = ctx.sign_in_history(event) else {
            return;
        };
        let now = event.meta.time.timestamp();
        let t = &ctx.config.baseline;
        if !history.has_baseline(now, t.learning_days, t.learning_sign_ins) {
            return;
        }
        // Countries of the previous 30 days, most recent first.
        let mut known: Vec<(u16, i64)> = history
            .countries
            .iter()
            .filter(|(_, at)| *at >= now - RETENTION_SECS)
            .copied()
            .collect();
        if known.is_empty() || known.iter().any(|(c, _)| *c == country) {
            return;
        }
        known.sort_by_key(|(c, at)| (std::cmp::Reverse(*at), *c));
        let previous: Vec<String> = known.iter().map(|(c, _)| country_text(*c)).collect();

        let partner = PrivilegedDirectory::is_partner_technician(ctx.config, s);
        let privileged = ctx.sign_in_is_privileged(tenant, s);
        let severity = if privileged {
            Severity::Medium
        } else {
            Severity::Low
        };
        let actor = actor(who(s), partner, privileged);
        let new_country = country_text(country);
        let app = app_name(s);
        let ip = s
            .ip_address
            .clone()
            .unwrap_or_else(|| "an unknown IP".into());
        let span = history_span(now, history.first_seen);
        let title = format!(
            "{actor} signed in from {new_country}, a country not seen for this account in {span}"
        );
        let summary = format!(
            "{actor} signed in successfully and interactively to {app} from {ip} ({}); in {span} \
             this account signed in only from {}. Ask the user whether they are in \
             {new_country} or on a VPN there; if not, revoke sessions, reset the password and check \
             for newly registered MFA methods and inbox rules.",
            place(s),
            previous.join(", "),
        );
        let mut evidence = Map::new();
        evidence.insert("country".into(), json!(new_country));
        evidence.insert("location".into(), json!(place(s)));
        evidence.insert("ip_address".into(), json!(s.ip_address));
        evidence.insert("app".into(), json!(app));
        evidence.insert("client_app_used".into(), json!(s.client_app_used));
        evidence.insert("user_agent".into(), json!(s.user_agent));
        evidence.insert("previous_countries".into(), json!(previous));
        evidence.insert(
            "history_days".into(),
            json!((now - history.first_seen) / 86_400),
        );
        evidence.insert("successful_sign_ins_seen".into(), json!(history.successes));
        evidence.insert("privileged".into(), Value::Bool(privileged));
        evidence.insert("partner_technician".into(), Value::Bool(partner));
        out.push(Finding {
            rule: ID,
            severity,
            title,
            summary,
            evidence,
            mitre: &["T1078.004"],
            ..about_sign_in(event, s)
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DetectConfig;
    use crate::testkit::*;

    fn brief(found: &[Finding]) -> Vec<(&str, Severity)> {
        found
            .iter()
            .map(|f| (f.event_ids[0].as_str(), f.severity))
            .collect()
    }

    #[test]
    fn fires_on_a_new_country_once_the_user_has_a_baseline() {
        let mut events = vec![role_grant(TENANT, "megan@contoso.com", GLOBAL_ADMIN)];
        // Dave was in GB 40 days ago: older than the 30-day window.
        events.push(
            sign_in("old-gb", "dave@contoso.com", -40 * 1440)
                .place("GB", "London", 51.5074, -0.1278)
                .build(),
        );
        for upn in [
            "adele@contoso.com",
            "megan@contoso.com",
            "dave@contoso.com",
            "bob@contoso.com",
        ] {
            events.extend(baseline(upn, 8, 2, 0));
        }
        for d in 1..=8 {
            for k in 0..2 {
                let id = format!("base-tech-{d}-{k}");
                events.push(
                    sign_in(&id, "user_5f0c@northwind.example", -d * 1440 + k * 60)
                        .partner(PARTNER)
                        .build(),
                );
            }
        }
        events.extend([
            sign_in("n1", "adele@contoso.com", 0)
                .place("NG", "Lagos", 6.5244, 3.3792)
                .ip("102.89.4.20")
                .build(),
            // Now known: no second alert.
            sign_in("n2", "adele@contoso.com", 30)
                .place("NG", "Lagos", 6.5244, 3.3792)
                .ip("102.89.4.20")
                .build(),
            sign_in("n3", "megan@contoso.com", 40)
                .place("DE", "Frankfurt", 50.1109, 8.6821)
                .build(),
            sign_in("n4", "user_5f0c@northwind.example", 50)
                .partner(PARTNER)
                .place("IN", "Pune", 18.5204, 73.8567)
                .build(),
            sign_in("n5", "dave@contoso.com", 60)
                .place("GB", "London", 51.5074, -0.1278)
                .build(),
            // A token refresh from FR teaches nothing: Bob's first interactive FR sign-in still fires.
            sign_in("n6", "bob@contoso.com", 70)
                .place("FR", "Paris", 48.8566, 2.3522)
                .non_interactive()
                .build(),
            sign_in("n7", "bob@contoso.com", 80)
                .place("FR", "Paris", 48.8566, 2.3522)
                .build(),
        ]);
        let found = run(ID, DetectConfig::default(), &events);
        assert_eq!(
            brief(&found),
            vec![
                ("n1", Severity::Low),
                ("n3", Severity::Medium),
                ("n4", Severity::Medium),
                ("n5", Severity::Low),
                ("n7", Severity::Low)
            ]
        );
        assert_eq!(found[0].evidence["previous_countries"], json!(["US"]));
        assert_eq!(found[0].ip.as_deref(), Some("102.89.4.20"));
        assert_eq!(found[2].principal.home_tenant_id.as_deref(), Some(PARTNER));
        insta::assert_json_snapshot!("new_country_sign_in_fires", snapshot(&found));
    }

    #[test]
    fn stays_quiet_while_learning_and_on_refreshes_failures_interrupts_and_known_countries() {
        let mut events = baseline("ann@contoso.com", 3, 3, 0);
        events.extend(baseline("bob@contoso.com", 8, 2, 0));
        // Carol travelled to GB 20 days ago: still inside the window.
        events.push(
            sign_in("gb", "carol@contoso.com", -20 * 1440)
                .place("GB", "London", 51.5074, -0.1278)
                .build(),
        );
        events.extend(baseline("carol@contoso.com", 8, 2, 0));
        // Only token refreshes for Eve: a baseline of successes but no country learnt.
        for d in 1..=8 {
            for k in 0..2 {
                events.push(
                    sign_in(
                        &format!("eve-{d}-{k}"),
                        "eve@contoso.com",
                        -d * 1440 + k * 60,
                    )
                    .non_interactive()
                    .build(),
                );
            }
        }
        events.extend([
            // Nine successes in three days: still learning.
            sign_in("q1", "ann@contoso.com", 0)
                .place("FR", "Paris", 48.8566, 2.3522)
                .build(),
            sign_in("q2", "bob@contoso.com", 1)
                .place("FR", "Paris", 48.8566, 2.3522)
                .non_interactive()
                .build(),
            sign_in("q3", "bob@contoso.com", 2)
                .place("FR", "Paris", 48.8566, 2.3522)
                .fail(50126)
                .build(),
            sign_in("q4", "bob@contoso.com", 3)
                .place("FR", "Paris", 48.8566, 2.3522)
                .fail(50074)
                .build(),
            sign_in("q5", "bob@contoso.com", 4)
                .with(|s| s.location = Default::default())
                .build(),
            sign_in("q6", "bob@contoso.com", 5)
                .place("us", "Portland", 45.5152, -122.6784)
                .build(),
            sign_in("q7", "carol@contoso.com", 6)
                .place("GB", "Leeds", 53.8008, -1.5491)
                .build(),
            sign_in("q8", "eve@contoso.com", 7)
                .place("FR", "Paris", 48.8566, 2.3522)
                .build(),
            sign_in("q9", "svc@contoso.com", 8)
                .place("FR", "Paris", 48.8566, 2.3522)
                .with(|s| {
                    s.event_type = Some(entrawatch_ingest::model::SignInEventType::ServicePrincipal)
                })
                .build(),
        ]);
        let found = run(ID, DetectConfig::default(), &events);
        assert!(found.is_empty(), "{:#?}", brief(&found));
    }

    #[test]
    fn learning_period_follows_the_config() {
        let mut config = DetectConfig::default();
        config.baseline.learning_days = 2;
        config.baseline.learning_sign_ins = 6;
        let mut events = baseline("ann@contoso.com", 3, 3, 0);
        events.push(
            sign_in("c1", "ann@contoso.com", 0)
                .place("FR", "Paris", 48.8566, 2.3522)
                .build(),
        );
        assert_eq!(
            brief(&run(ID, config, &events)),
            vec![("c1", Severity::Low)]
        );
    }
}
