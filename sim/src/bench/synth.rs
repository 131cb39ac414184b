//! The state-at-scale phase of `entrawatch bench`: many principals through the real engine, to
//! check what the 30-day state costs per principal against what the process really holds.
//!
//! What comes in: a principal count and a detection config. What goes out: [`StateScale`], with the
//! engine's own estimate ([`entrawatch_detect::State::approx_bytes`]) beside the growth of resident
//! memory while the engine learned them. The events are built in memory (a simulated world with
//! 100 k principals would be 8 M events and 20 GB on disk) and dropped as soon as processed, so the
//! memory that remains is the state's. Each principal signs in ten times over ten days from a home
//! network with coordinates (so every one keeps a last fix for travel), a tenth of them also from a
//! second country, a twentieth with password failures: the lists a real principal fills.

use chrono::{DateTime, Utc};
use entrawatch_detect::{DetectConfig, Engine};
use entrawatch_ingest::model::{
    AuthenticationStep, Body, DeviceDetail, Event, Location, Meta, Shape, SignIn, SignInEventType,
    TimeSource,
};
use serde::Serialize;

use super::measure;

/// Sign-ins per principal.
const EVENTS_PER_PRINCIPAL: u64 = 10;
const TENANTS: u64 = 50;
const DAYS: i64 = 10;

/// What the state costs at scale.
#[derive(Debug, Clone, Serialize)]
pub struct StateScale {
    pub principals_tracked: u64,
    pub events: u64,
    pub seconds: f64,
    /// The engine's estimate (`State::approx_bytes`), in total and per principal.
    pub approx_bytes: u64,
    pub approx_bytes_per_principal: f64,
    /// How much resident memory grew while the engine learned them, per principal.
    pub rss_growth_bytes: u64,
    pub rss_bytes_per_principal: f64,
    /// Principals in one GB at the measured resident cost.
    pub principals_per_gb: f64,
}

fn guid(kind: u64, n: u64) -> String {
    format!(
        "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
        kind as u32,
        (n >> 48) as u16,
        (n >> 36) as u16 & 0xfff,
        (n >> 24) as u16 & 0xfff,
        n & 0xffff_ffff_ffff
    )
}

const PLACES: [(&str, &str, f64, f64); 6] = [
    ("GB", "London", 51.5072, -0.1276),
    ("DE", "Berlin", 52.52, 13.405),
    ("US", "Seattle", 47.6062, -122.3321),
    ("JP", "Tokyo", 35.6762, 139.6503),
    ("FR", "Paris", 48.8566, 2.3522),
    ("NL", "Amsterdam", 52.3676, 4.9041),
];

/// The `round`-th sign-in of principal `p` of `n`.
fn sign_in(p: u64, n: u64, round: u64, start: i64) -> Event {
    let span = DAYS * 86_400;
    let seq = round * n + p;
    let at = start + (seq as i128 * span as i128 / (n * EVENTS_PER_PRINCIPAL) as i128) as i64;
    let tenant = p % TENANTS;
    let home = (p % PLACES.len() as u64) as usize;
    let abroad = p % 10 == 3 && round == 5;
    let place = if abroad {
        (home + 1) % PLACES.len()
    } else {
        home
    };
    let (country, city, lat, lon) = PLACES[place];
    let failed = p % 20 == 7 && round < 3;
    let user_id = guid(0x5a5a_0000, p);
    let s = SignIn {
        event_type: Some(SignInEventType::InteractiveUser),
        is_interactive: Some(true),
        user_id: Some(user_id.into()),
        user_principal_name: Some(format!("user{p}@tenant{tenant}.example").into()),
        user_display_name: Some(format!("User {p}").into()),
        app_id: Some("00000003-0000-0ff1-ce00-000000000000".into()),
        app_display_name: Some("Office 365 SharePoint Online".into()),
        ip_address: Some(format!("203.{}.{}.{}", (p >> 16) % 256, (p >> 8) % 256, p % 256).into()),
        error_code: Some(if failed { 50126 } else { 0 }),
        client_app_used: Some("Browser".into()),
        authentication_details: vec![AuthenticationStep {
            method: Some("Password".into()),
            succeeded: Some(!failed),
            requirement: Some("Primary authentication".into()),
            ..AuthenticationStep::default()
        }],
        device: DeviceDetail {
            operating_system: Some("Windows10".into()),
            browser: Some("Edge 131.0.0".into()),
            ..DeviceDetail::default()
        },
        location: Location {
            city: Some(city.into()),
            country_or_region: Some(country.into()),
            latitude: Some(lat),
            longitude: Some(lon),
            ..Location::default()
        },
        ..SignIn::default()
    };
    Event {
        meta: Meta {
            id: guid(0x1d1d_0000 + round as u32 as u64, p).into(),
            tenant_id: guid(0x7e7e_0000, tenant).into(),
            time: DateTime::<Utc>::from_timestamp(at, 0).unwrap_or_default(),
            time_source: TimeSource::Record,
            shape: Shape::Graph,
        },
        body: Body::SignIn(Box::new(s)),
    }
}

/// Runs `principals` principals through a fresh engine and measures its state.
pub fn run(principals: u64, config: &DetectConfig) -> anyhow::Result<StateScale> {
    let start = 1_790_000_000;
    let n = principals.max(1);
    measure::reset_peak();
    let (rss_before, _) = measure::rss();
    let started = std::time::Instant::now();
    let mut engine = Engine::new(config.clone())?;
    let mut findings = Vec::new();
    for round in 0..EVENTS_PER_PRINCIPAL {
        for p in 0..n {
            let event = sign_in(p, n, round, start);
            engine.process(&event, &mut findings);
            findings.clear();
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    let (rss_after, _) = measure::rss();
    let state = engine.state();
    let tracked = state.principals.len() as u64;
    let approx = state.approx_bytes() as u64;
    let growth = rss_after.saturating_sub(rss_before);
    let per = |b: u64| b as f64 / tracked.max(1) as f64;
    Ok(StateScale {
        principals_tracked: tracked,
        events: n * EVENTS_PER_PRINCIPAL,
        seconds,
        approx_bytes: approx,
        approx_bytes_per_principal: per(approx),
        rss_growth_bytes: growth,
        rss_bytes_per_principal: per(growth),
        principals_per_gb: 1e9 / per(growth).max(1.0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_principal_is_tracked_once() {
        let scale = run(200, &DetectConfig::default()).unwrap();
        assert_eq!(scale.principals_tracked, 200);
        assert_eq!(scale.events, 2000);
        assert!(scale.approx_bytes_per_principal > 0.0);
    }

    #[test]
    fn events_are_in_time_order() {
        let n = 7;
        let mut last = i64::MIN;
        for round in 0..EVENTS_PER_PRINCIPAL {
            for p in 0..n {
                let t = sign_in(p, n, round, 0).meta.time.timestamp();
                assert!(t >= last);
                last = t;
            }
        }
        assert!(last < DAYS * 86_400);
    }
}
