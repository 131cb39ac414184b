//! `impossible-travel`: see [`DOC`] for what it detects and why.

use std::marker::PhantomData;

use entrawatch_ingest::model::{Event, Kind};
use serde_json::{Map, Value, json};

use super::{actor, app_name, time_text};
use super::{place, sign_in_principal, who};
use crate::detector::{Context, Detector};
use crate::finding::{Finding, Severity};
use crate::keys::country_text;
use crate::privileged::PrivilegedDirectory;
use crate::settings::{Of, RuleSettings, SettingsKind};
use crate::state::{Fix, valid_coordinates};

pub const ID: &str = "impossible-travel";

/// User documentation, printed by `entrawatch rules impossible-travel`.
pub const DOC: &str = r#"## What it detects
Two successful sign-ins by one user, interactive or not, whose locations are more than
`min_km` (default 500 km) apart at an implied speed over `min_kmh` (default
900 km/h, faster than an airliner). Each successful sign-in with coordinates is compared with the
user's previous one; two sign-ins in the same second from far apart always fire.

## Why it matters
One person cannot be in Seattle and in Lagos forty minutes apart. When both sign-ins succeeded,
someone else most likely holds the password or a stolen session (token theft, adversary-in-the-
middle phishing), and is using it alongside the real user. MITRE ATT&CK T1078.004 (Valid
Accounts: Cloud Accounts).

## Signals used
`status.errorCode` (0), `location.geoCoordinates` (latitude and longitude Entra derives from the
source IP), `location.city` / `countryOrRegion`, `ipAddress` and the event time of this sign-in and
of the user's previous successful sign-in with coordinates (kept by the engine). Distance is the
great-circle (haversine) distance. Severity uses the privileged directory and
`crossTenantAccessType`. Not used: failures and interrupts (they prove nothing about who holds
the account), sign-ins without coordinates (or with 0, 0), service principal and managed identity
sign-ins (workloads run from many cloud regions at once), and two sign-ins from the same IP
address placed differently by the geolocation database.

## Example
Ann signs in from Seattle (203.0.113.10) at 10:00; at 10:40 a sign-in for Ann succeeds from
Lagos, 12,000 km away, an implied 18,000 km/h: this fires medium, naming both sign-ins, and high
for an admin or a partner technician. A flight from Seattle to London that lands ten hours
later (about 770 km/h) does not fire.

## Known false positives and tuning
VPNs, secure web gateways and cloud proxies that egress far from the user (Zscaler, Netskope,
iCloud Private Relay) make the location jump as the user connects and disconnects; mobile
carriers and IPv6 ranges are sometimes placed hundreds of kilometres away. A pair of sign-ins
where either address is in `allow.impossible-travel.ips` does not fire, so add corporate VPN and
proxy egress ranges there. Raise `min_km` to ignore regional geolocation noise. Repeats
for the same user group into one episode.

## References
Microsoft Learn: "What are risk detections?" in Microsoft Entra ID Protection ("Atypical
travel", "Impossible travel" from Defender for Cloud Apps); the Graph `signIn` resource
(`location.geoCoordinates`); MITRE ATT&CK T1078.004.
"#;

/// `[detect.rules.impossible-travel]`: this rule's settings, each with its default.
#[derive(Debug, Clone, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// Two sign-ins closer than this many kilometres are never travel (default 500.0).
    pub min_km: f64,
    /// The speed (km/h) above which the trip is impossible: an airliner's (default 900.0).
    pub min_kmh: f64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            min_km: 500.0,
            min_kmh: 900.0,
        }
    }
}

impl RuleSettings for Settings {
    crate::settings_slot!();

    const KEYS: &'static [(&'static str, &'static str)] = &[
        (
            "min_km",
            "two sign-ins closer than this many kilometres are never travel",
        ),
        (
            "min_kmh",
            "the speed (km/h) above which the trip is impossible: an airliner's",
        ),
    ];

    fn validate(&self, path: &str) -> Vec<String> {
        crate::settings::greater_than_zero(
            path,
            &[("min_km", self.min_km), ("min_kmh", self.min_kmh)],
        )
    }
}

/// Mean Earth radius (IUGG), in km.
const EARTH_RADIUS_KM: f64 = 6371.0088;

/// Great-circle distance between two points, in km.
fn haversine_km(lat1: f64, lon1: f64, lat2: f64, lon2: f64) -> f64 {
    let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
    let dp = p2 - p1;
    let dl = (lon2 - lon1).to_radians();
    let a = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_KM * a.sqrt().min(1.0).asin()
}

fn fix_place(fix: &Fix) -> String {
    match (&fix.city, fix.country) {
        (Some(city), 0) => city.to_string(),
        (Some(city), c) => format!("{city}, {}", country_text(c)),
        (None, 0) => "unknown location".to_owned(),
        (None, c) => country_text(c),
    }
}

/// `0 s`, `40 min`, `5.5 h`.
fn span_text(secs: i64) -> String {
    if secs < 60 {
        format!("{secs} s")
    } else if secs < 2 * 3600 {
        format!("{} min", secs / 60)
    } else {
        format!("{:.1} h", secs as f64 / 3600.0)
    }
}

fn round(x: f64, places: i32) -> f64 {
    let f = 10f64.powi(places);
    (x * f).round() / f
}

#[derive(Debug, Clone, Copy, Default)]
pub struct ImpossibleTravel;

impl Detector for ImpossibleTravel {
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
        Severity::Medium
    }

    fn kinds(&self) -> &'static [Kind] {
        &[Kind::SignIn]
    }

    fn observe(&self, ctx: &Context<'_>, event: &Event, out: &mut Vec<Finding>) {
        let Some(s) = event.as_sign_in() else { return };
        if !(s.is_user() && s.is_success()) {
            return;
        }
        let (Some(lat), Some(lon)) = (s.location.latitude, s.location.longitude) else {
            return;
        };
        if !valid_coordinates(lat, lon) {
            return;
        }
        let tenant = &event.meta.tenant_id;
        let Some(prev) = ctx.sign_in_history(event).and_then(|p| p.last_fix.as_ref()) else {
            return;
        };
        // The same address placed twice by the geolocation database is not travel.
        if prev.ip != 0 && ctx.sign_in_keys(event).ip == Some(prev.ip) {
            return;
        }
        let t = ctx.config.rule::<Settings>();
        let km = haversine_km(f64::from(prev.lat), f64::from(prev.lon), lat, lon);
        if km <= t.min_km {
            return;
        }
        let now = event.meta.time.timestamp();
        let secs = (now - prev.at).abs();
        let kmh = if secs == 0 {
            f64::INFINITY
        } else {
            km * 3600.0 / secs as f64
        };
        if kmh <= t.min_kmh {
            return;
        }
        let principal = sign_in_principal(s);
        let prev_ip = prev.addr.map(|a| a.to_string());
        // An allow-listed network at the other end explains the jump as well as one at this end
        // (which the engine checks).
        if prev_ip.as_deref().is_some_and(|ip| {
            ctx.config
                .is_allowed(ID, &principal.id, principal.upn.as_deref(), Some(ip))
        }) {
            return;
        }

        let partner = PrivilegedDirectory::is_partner_technician(ctx.config, s);
        let privileged = ctx.sign_in_is_privileged(tenant, s);
        let severity = if privileged {
            Severity::High
        } else {
            Severity::Medium
        };
        let actor = actor(who(s), partner, privileged);
        let ip = s
            .ip_address
            .clone()
            .unwrap_or_else(|| "an unknown IP".into());
        let prev_ip_text = prev_ip.clone().unwrap_or_else(|| "an unknown IP".into());
        let app = app_name(s);
        let (from, to) = (fix_place(prev), place(s));
        let speed = if kmh.is_finite() {
            format!("an implied {:.0} km/h", kmh)
        } else {
            "at the same second".to_owned()
        };
        let title = format!(
            "{actor}: impossible travel from {from} to {to} ({km:.0} km in {})",
            span_text(secs)
        );
        let summary = format!(
            "{actor} signed in successfully to {app} from {ip} ({to}) {km:.0} km and {} away from \
             their previous successful sign-in from {prev_ip_text} ({from}) at {}, {speed}. One of the \
             two sessions is probably not the user's: ask which one was theirs; if either is unknown, \
             revoke sessions, reset the password, and check for new MFA methods and inbox rules. VPN \
             or proxy egress explains some cases.",
            span_text(secs),
            time_text(prev.at),
        );
        let mut evidence = Map::new();
        evidence.insert(
            "from".into(),
            json!({
                "event_id": &*prev.event_id,
                "time": time_text(prev.at),
                "ip_address": prev_ip,
                "location": from,
                "latitude": round(f64::from(prev.lat), 4),
                "longitude": round(f64::from(prev.lon), 4),
            }),
        );
        evidence.insert(
            "to".into(),
            json!({
                "event_id": event.meta.id,
                "time": time_text(now),
                "ip_address": s.ip_address,
                "location": to,
                "latitude": round(lat, 4),
                "longitude": round(lon, 4),
            }),
        );
        evidence.insert("distance_km".into(), json!(km.round() as i64));
        evidence.insert("elapsed_seconds".into(), json!(secs));
        evidence.insert(
            "speed_kmh".into(),
            if kmh.is_finite() {
                json!(kmh.round() as i64)
            } else {
                Value::Null
            },
        );
        evidence.insert("app".into(), json!(app));
        evidence.insert("interactive".into(), Value::Bool(s.is_interactive()));
        evidence.insert("privileged".into(), Value::Bool(privileged));
        evidence.insert("partner_technician".into(), Value::Bool(partner));
        out.push(Finding {
            rule: ID,
            severity,
            tenant_id: tenant.to_string(),
            principal,
            time: event.meta.time,
            event_ids: vec![prev.event_id.to_string(), event.meta.id.to_string()],
            title,
            summary,
            evidence,
            mitre: &["T1078.004"],
            ip: s.ip_address.as_deref().map(str::to_owned),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{AllowList, DetectConfig};
    use crate::testkit::*;
    use entrawatch_ingest::model::SignInEventType;

    fn pairs(found: &[Finding]) -> Vec<(&str, &str, Severity)> {
        found
            .iter()
            .map(|f| (f.event_ids[0].as_str(), f.event_ids[1].as_str(), f.severity))
            .collect()
    }

    #[test]
    fn haversine_matches_known_distances() {
        // Seattle to London: about 7,700 km; a degree of latitude: about 111 km.
        let d = haversine_km(47.6062, -122.3321, 51.5074, -0.1278);
        assert!((d - 7_700.0).abs() < 30.0, "{d}");
        assert!((haversine_km(0.0, 10.0, 1.0, 10.0) - 111.2).abs() < 0.1);
        assert_eq!(haversine_km(10.0, 10.0, 10.0, 10.0), 0.0);
    }

    #[test]
    fn fires_on_far_apart_successes_too_fast_to_travel() {
        let events = vec![
            role_grant(TENANT, "megan@contoso.com", GLOBAL_ADMIN),
            sign_in("t1", "ann@contoso.com", 0).build(),
            sign_in("t2", "ann@contoso.com", 40)
                .place("NG", "Lagos", 6.5244, 3.3792)
                .ip("102.89.4.20")
                .build(),
            // Back home twenty minutes later: the second leg is as impossible as the first.
            sign_in("t3", "ann@contoso.com", 60).build(),
            // Zero elapsed time.
            sign_in("m1", "megan@contoso.com", 100).build(),
            sign_in("m2", "megan@contoso.com", 100)
                .place("RU", "Moscow", 55.7558, 37.6173)
                .ip("198.51.100.77")
                .build(),
            // A token refresh counts: São Paulo two hours after Amsterdam.
            sign_in("b1", "bob@contoso.com", 200)
                .place("NL", "Amsterdam", 52.3676, 4.9041)
                .ip("192.0.2.80")
                .non_interactive()
                .build(),
            sign_in("b2", "bob@contoso.com", 320)
                .place("BR", "Sao Paulo", -23.5505, -46.6333)
                .ip("198.51.100.30")
                .build(),
            sign_in("p1", "user_5f0c@northwind.example", 400)
                .partner(PARTNER)
                .build(),
            sign_in("p2", "user_5f0c@northwind.example", 430)
                .partner(PARTNER)
                .place("JP", "Tokyo", 35.6762, 139.6503)
                .ip("198.51.100.99")
                .build(),
        ];
        let found = run(ID, DetectConfig::default(), &events);
        assert_eq!(
            pairs(&found),
            vec![
                ("t1", "t2", Severity::Medium),
                ("t2", "t3", Severity::Medium),
                ("m1", "m2", Severity::High),
                ("b1", "b2", Severity::Medium),
                ("p1", "p2", Severity::High),
            ]
        );
        assert_eq!(found[2].evidence["speed_kmh"], Value::Null);
        assert_eq!(
            found[0].evidence["from"]["ip_address"],
            json!("203.0.113.10")
        );
        assert_eq!(found[0].ip.as_deref(), Some("102.89.4.20"));
        insta::assert_json_snapshot!("impossible_travel_fires", snapshot(&found));
    }

    #[test]
    fn stays_quiet_on_flights_short_hops_failures_missing_coordinates_and_workloads() {
        let events = vec![
            // Seattle to London in ten hours: about 770 km/h.
            sign_in("f1", "cal@contoso.com", 0).build(),
            sign_in("f2", "cal@contoso.com", 600)
                .place("GB", "London", 51.5074, -0.1278)
                .ip("198.51.100.5")
                .build(),
            // Seattle to Portland in five minutes: 230 km.
            sign_in("h1", "dee@contoso.com", 0).build(),
            sign_in("h2", "dee@contoso.com", 5)
                .place("US", "Portland", 45.5152, -122.6784)
                .ip("198.51.100.6")
                .build(),
            // Failures, interrupts and sign-ins without coordinates from Lagos neither fire nor move Eve.
            sign_in("e1", "eve@contoso.com", 0).build(),
            sign_in("e2", "eve@contoso.com", 5)
                .place("NG", "Lagos", 6.5244, 3.3792)
                .ip("102.89.4.20")
                .fail(50126)
                .build(),
            sign_in("e3", "eve@contoso.com", 6)
                .place("NG", "Lagos", 6.5244, 3.3792)
                .ip("102.89.4.20")
                .fail(50074)
                .build(),
            sign_in("e4", "eve@contoso.com", 7)
                .ip("102.89.4.20")
                .with(|s| {
                    s.location.latitude = None;
                    s.location.longitude = None;
                })
                .build(),
            sign_in("e5", "eve@contoso.com", 8)
                .place("NG", "Lagos", 0.0, 0.0)
                .ip("102.89.4.20")
                .build(),
            sign_in("e6", "eve@contoso.com", 9).build(),
            // One address, placed in two cities by the geolocation database.
            sign_in("g1", "fay@contoso.com", 0)
                .ip("198.51.100.50")
                .build(),
            sign_in("g2", "fay@contoso.com", 10)
                .ip("198.51.100.50")
                .place("NL", "Amsterdam", 52.3676, 4.9041)
                .build(),
            // A workload identity running in two cloud regions.
            sign_in("w1", "app@contoso.com", 0)
                .with(|s| s.event_type = Some(SignInEventType::ServicePrincipal))
                .build(),
            sign_in("w2", "app@contoso.com", 1)
                .place("NL", "Amsterdam", 52.3676, 4.9041)
                .ip("198.51.100.51")
                .with(|s| s.event_type = Some(SignInEventType::ServicePrincipal))
                .build(),
            // The first sign-in ever has nothing to compare with.
            sign_in("n1", "new@contoso.com", 0)
                .place("AU", "Sydney", -33.8688, 151.2093)
                .build(),
        ];
        let found = run(ID, DetectConfig::default(), &events);
        assert!(found.is_empty(), "{:#?}", pairs(&found));
    }

    #[test]
    fn allow_listed_networks_at_either_end_explain_the_jump() {
        let mut config = DetectConfig::default();
        config.allow.insert(
            ID.into(),
            AllowList {
                principals: vec![],
                ips: vec!["192.0.2.0/24".into()],
            },
        );
        let events = vec![
            sign_in("v1", "gus@contoso.com", 0).build(),
            sign_in("v2", "gus@contoso.com", 10)
                .place("NL", "Amsterdam", 52.3676, 4.9041)
                .ip("192.0.2.8")
                .build(),
            sign_in("v3", "gus@contoso.com", 20).build(),
            sign_in("v4", "gus@contoso.com", 30)
                .place("NL", "Amsterdam", 52.3676, 4.9041)
                .ip("198.51.100.8")
                .build(),
        ];
        assert_eq!(
            pairs(&run(ID, config, &events)),
            vec![("v3", "v4", Severity::Medium)]
        );
    }

    #[test]
    fn thresholds_follow_the_config() {
        let mut config = DetectConfig::default();
        config.rule_mut::<Settings>().min_km = 8_000.0;
        let events = vec![
            sign_in("c1", "hal@contoso.com", 0).build(),
            sign_in("c2", "hal@contoso.com", 60)
                .place("GB", "London", 51.5074, -0.1278)
                .ip("198.51.100.5")
                .build(),
        ];
        assert!(run(ID, config.clone(), &events).is_empty());
        config.rule_mut::<Settings>().min_km = 500.0;
        assert_eq!(
            pairs(&run(ID, config, &events)),
            vec![("c1", "c2", Severity::Medium)]
        );
    }
}
