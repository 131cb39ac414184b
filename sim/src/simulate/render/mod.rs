//! Records to wire shapes: Event Hub diagnostic records (docs/formats.md §3: camelCase top level,
//! `Level`, string `resultType`, keys omitted when false, 7-digit `+00:00` times, US-locale `time` on
//! risk categories) and Graph beta entities (§1-§2: every key present, `false`/`""`/`null`, flags
//! strings in Conditional Access results, `signInEventTypes`).
//!
//! This file holds what every kind of record shares: the time formats, the resource path of a
//! tenant and the location of a network. One file per kind, in the order a tenant's logs show them:
//! - [`sign_in`]: interactive, non-interactive and service-principal sign-ins, with the identity
//!   the resource tenant sees, the authentication steps, the device and Conditional Access.
//! - [`audit`]: directory audits, with who initiated them and the resources they changed.
//! - [`risk`]: Identity Protection's risky users and risk detections.

mod audit;
mod risk;
mod sign_in;

use chrono::{DateTime, Datelike, Timelike};
use serde_json::{Value, json};

use super::catalog::CITIES;
use super::rng::{SEC, Ticks};
use super::world::World;

pub use audit::{eh_audit, graph_audit};
pub use risk::{eh_detection, eh_risky_user, graph_detection, graph_risky_user};
pub use sign_in::{eh_sign_in, graph_sign_in, sign_in_category};

fn utc(t: Ticks) -> DateTime<chrono::Utc> {
    DateTime::from_timestamp(t.div_euclid(SEC), 0).unwrap_or_default()
}

/// `2026-10-02T08:15:02Z`
pub fn iso_secs(t: Ticks) -> String {
    utc(t).format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// `2026-10-02T08:15:02.1187345` + `suffix` (`Z` or `+00:00`).
pub fn iso7(t: Ticks, suffix: &str) -> String {
    format!(
        "{}.{:07}{suffix}",
        utc(t).format("%Y-%m-%dT%H:%M:%S"),
        t.rem_euclid(SEC)
    )
}

/// `2026-10-02T08:15:02.118Z`
fn iso3(t: Ticks) -> String {
    format!(
        "{}.{:03}Z",
        utc(t).format("%Y-%m-%dT%H:%M:%S"),
        t.rem_euclid(SEC) / 10_000
    )
}

/// `10/2/2026 8:15:02 AM`: the US-locale `time` of Event Hub risk records.
fn us_clock(t: Ticks) -> String {
    let d = utc(t);
    let h = d.hour() % 12;
    format!(
        "{}/{}/{} {}:{:02}:{:02} {}",
        d.month(),
        d.day(),
        d.year(),
        if h == 0 { 12 } else { h },
        d.minute(),
        d.second(),
        if d.hour() < 12 { "AM" } else { "PM" }
    )
}

/// Where a network geolocates, as sign-ins and risk detections show it.
fn location(w: &World, net: usize) -> Value {
    let n = &w.nets[net];
    let c = CITIES[n.city];
    json!({
        "city": c.name,
        "state": c.state,
        "countryOrRegion": c.country,
        "geoCoordinates": {"latitude": n.lat, "longitude": n.lon}
    })
}

/// The `resourceId` of a tenant's Entra logs in Event Hub records.
fn resource_path(w: &World, tenant: usize) -> String {
    format!(
        "/tenants/{}/providers/Microsoft.aadiam",
        w.tenants[tenant].id
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_in_every_form() {
        let t = 1_793_491_200 * SEC + 1_187_345;
        assert_eq!(iso_secs(t), "2026-11-01T00:00:00Z");
        assert_eq!(iso7(t, "+00:00"), "2026-11-01T00:00:00.1187345+00:00");
        assert_eq!(iso3(t), "2026-11-01T00:00:00.118Z");
        assert_eq!(us_clock(t + 13 * 3600 * SEC), "11/1/2026 1:00:00 PM");
        assert_eq!(us_clock(t), "11/1/2026 12:00:00 AM");
    }
}
