//! Scenarios the `graph` tests share: seeding the fake with records, records that show up late,
//! the budget check against the fake's request log, and lag figures.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{Duration as TimeDelta, Utc};
use tokio::time::Instant;

use super::data::{Class, Endpoint};
use super::fake::{FakeGraph, Key};
use super::harness::Run;
use super::percentile;

pub const WINDOWED: [Endpoint; 4] = [
    Endpoint::SignIns,
    Endpoint::DirectoryAudits,
    Endpoint::RiskyUsers,
    Endpoint::RiskDetections,
];
pub const SIGN_IN_TYPES: [&str; 4] = [
    "interactiveUser",
    "nonInteractiveUser",
    "servicePrincipal",
    "managedIdentity",
];

/// `n` records of every windowed stream per tenant, spread over the last `days`.
pub fn seed(fake: &FakeGraph, tenant: &str, n: usize, days: i64) {
    fake.add_tenant(tenant);
    let now = Utc::now();
    let span = TimeDelta::days(days).num_seconds().max(1);
    for i in 0..n {
        let at = |salt: i64| now - TimeDelta::seconds(((i as i64 * 7919 + salt) % span) + 60);
        fake.add(tenant, Endpoint::SignIns, at(0), SIGN_IN_TYPES[i % 4]);
        fake.add(tenant, Endpoint::DirectoryAudits, at(13), "");
        if i % 4 == 0 {
            fake.add(tenant, Endpoint::RiskyUsers, at(29), "");
            fake.add(tenant, Endpoint::RiskDetections, at(31), "");
        }
    }
    fake.add(tenant, Endpoint::RoleAssignments, now, "");
    fake.add(tenant, Endpoint::RoleEligibility, now, "");
}

/// Records that show up after the source has read past their time: only the overlap finds them.
pub fn late(fake: &FakeGraph, tenant: &str) -> Vec<Key> {
    let now = Utc::now();
    vec![
        fake.add(
            tenant,
            Endpoint::SignIns,
            now - TimeDelta::minutes(12),
            "nonInteractiveUser",
        ),
        fake.add(
            tenant,
            Endpoint::SignIns,
            now - TimeDelta::minutes(7),
            "servicePrincipal",
        ),
        fake.add(
            tenant,
            Endpoint::DirectoryAudits,
            now - TimeDelta::minutes(20),
            "",
        ),
        fake.add(
            tenant,
            Endpoint::RiskDetections,
            now - TimeDelta::hours(6),
            "",
        ),
        fake.add(tenant, Endpoint::RiskyUsers, now - TimeDelta::hours(30), ""),
        fake.add(tenant, Endpoint::SignIns, now, "interactiveUser"),
    ]
}

pub fn all_endpoints() -> Vec<Endpoint> {
    Endpoint::ALL.to_vec()
}

pub fn assert_budgets(fake: &FakeGraph) -> (usize, usize) {
    let (reports, reports_sliding) = fake.peak_per_window(Class::Reports);
    let (ip, ip_sliding) = fake.peak_per_window(Class::IdentityProtection);
    assert!(
        reports <= 5,
        "reporting requests in one 10 s window: {reports}"
    );
    assert!(
        ip <= 1,
        "Identity Protection requests in one 1 s window: {ip}"
    );
    assert_eq!(
        fake.with_counters(|c| c.budget_429),
        0,
        "the fake never had to throttle for over-budget requests"
    );
    println!(
        "peak per tenant: reports {reports} / 10 s window (sliding {reports_sliding}), identity protection {ip} / 1 s window (sliding {ip_sliding})"
    );
    (reports, ip)
}

pub fn lag_figures(run: &Run, inserted: &HashMap<Key, Instant>, keys: &[Key]) -> String {
    let mut lags: Vec<Duration> = keys
        .iter()
        .filter_map(|k| Some(run.arrivals.get(k)?.duration_since(*inserted.get(k)?)))
        .collect();
    let n = lags.len();
    format!(
        "{n} records, p50 {:?}, p95 {:?}, max {:?}",
        percentile(&mut lags, 0.5),
        percentile(&mut lags, 0.95),
        percentile(&mut lags, 1.0)
    )
}
