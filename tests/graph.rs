//! `entrawatch run` with a `graph` source against the project's fake Graph (the same one the
//! ingest tests use, `ingest/tests/graph_support`, bound to 127.0.0.1): a 30-day back-fill of
//! several tenants through the real detection path, a `kill -9` in the middle of the first
//! snapshot interval, and a tenant that loses its licence while the service runs.
//!
//! The binary runs Graph at its real time scale, so the budgets are raised in the config and in
//! the fake alike (the throttling itself is tested in `ingest/tests/graph_fake.rs`). Every wait is
//! bounded; nothing asserts on wall-clock durations (figures are printed).

mod common;
#[path = "../ingest/tests/graph_support/mod.rs"]
mod graph_support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chrono::{DateTime, Duration as TimeDelta, Utc};
use common::*;
use graph_support::data::Endpoint;
use graph_support::fake::{FakeGraph, Logged};
use graph_support::odata::parse_filter;
use graph_support::{CLIENT_ID, SECRET, options_scaled, tenant};

/// A bound on each wait, not a timing.
const LIMIT: Duration = Duration::from_secs(240);

/// The fake at real time, with budgets far above what the source is configured to spend.
fn fake(rt: &tokio::runtime::Runtime) -> FakeGraph {
    let mut opts = options_scaled(true, vec![], 1.0);
    opts.reports_limit = 1000;
    opts.ip_limit = 100;
    rt.block_on(FakeGraph::start(opts))
}

/// A service config: one `graph` source over `tenants`, alerts to `alerts.jsonl` in `dir`.
fn write_config(dir: &Path, fake: &FakeGraph, tenants: &[String], extra_service: &str) -> PathBuf {
    let secret = dir.join("graph-secret");
    std::fs::write(&secret, format!("{SECRET}\n")).unwrap();
    let mut text = format!(
        r#"
[service]
state_dir = {state}
log_format = "json"
shutdown_grace_secs = 5
{extra_service}

[[sources]]
type = "graph"
name = "graph"
client_id = "{CLIENT_ID}"
client_secret = {{ file = {secret} }}
login_url = "{base}"
graph_url = "{base}"
streams = ["sign_ins", "directory_audits"]
sign_in_event_types = ["interactiveUser", "nonInteractiveUser"]
poll_interval_secs = 2
backfill_days = 30
page_size = 50
budget = {{ reports_per_10s = 400, app_reports_per_10s = 0, identity_protection_per_second = 50, directory_per_10s = 100 }}
"#,
        state = toml_path(&dir.join("state")),
        secret = toml_path(&secret),
        base = fake.base,
    );
    for (i, t) in tenants.iter().enumerate() {
        text.push_str(&format!(
            "\n[[sources.tenants]]\nid = \"{t}\"\nname = \"customer {i}\"\n"
        ));
    }
    text.push_str(&format!(
        r#"
[[destinations]]
type = "jsonl"
name = "file"
path = {alerts}

[route]
receivers = ["file"]
group_wait_secs = 0
group_interval_secs = 1
"#,
        alerts = toml_path(&dir.join("alerts.jsonl")),
    ));
    let path = dir.join("entrawatch.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// Adds `n` records to a lane, spread over the last 30 days (less an hour at each end) with a
/// deterministic jitter of up to half their spacing.
fn spread(fake: &FakeGraph, t: &str, endpoint: Endpoint, n: i64, rng: &mut Lcg) -> usize {
    let now = Utc::now();
    let span = TimeDelta::days(30) - TimeDelta::hours(2);
    let step = span.num_seconds() / n;
    let event_type = if endpoint == Endpoint::SignIns {
        "interactiveUser"
    } else {
        ""
    };
    for i in 0..n {
        let jitter = (rng.next() % (step as u64 / 2 + 1)) as i64;
        let at = now - TimeDelta::hours(1) - TimeDelta::seconds(i * step + jitter);
        fake.add(t, endpoint, at, event_type);
    }
    n as usize
}

/// Polls `cond` every 100 ms up to `limit`; whether it came true.
fn until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    cond()
}

/// One sample of a Prometheus metric from `/metrics` (0 when absent).
fn metric(admin: &str, name: &str) -> f64 {
    let Some((200, body)) = http("GET", admin, "/metrics", "") else {
        return 0.0;
    };
    body.lines()
        .filter(|l| l.starts_with(name) && !l.starts_with('#'))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>()
        + 0.0 // an empty sum is -0
}

/// The `records` of the first "caught up" line of the Graph source in a service log.
fn caught_up(log: &str) -> Option<u64> {
    log.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| {
            v["message"]
                .as_str()
                .is_some_and(|m| m.contains("caught up"))
                && v["source"] == "graph"
        })
        .and_then(|v| v["records"].as_u64())
}

/// Starts the service on `config` (its log in `log`) and waits, bounded, until its back-fill has
/// caught up.
fn start_caught_up(config: &Path, log: &Path) -> Service {
    let mut service = Service::start(config, free_port(), log, &[]);
    service.wait_ready(Duration::from_secs(60));
    assert!(
        until(LIMIT, || caught_up(&service.logs()).is_some()),
        "the back-fill never caught up:\n{}",
        service.logs()
    );
    service
}

/// The `ge` bound of a logged request's filter (`None` for a next-page request).
fn lower_bound(l: &Logged) -> Option<DateTime<Utc>> {
    parse_filter(l.filter.as_deref()?, l.endpoint).ok()?.ge
}

/// The issue's done-when: three tenants back-fill 30 days, with lanes of very different
/// densities (one tenant's sign-ins every 20 minutes and audits every 8 hours, the next the
/// reverse, the third both hourly), through the real aligner and detection: no
/// `log-source-silent` alert, no event behind the released watermark, and the aligner's buffer
/// stays within about a day of records (the back-fill skew) ahead of the slowest lane.
#[test]
fn a_30_day_back_fill_of_several_tenants_raises_no_log_source_silent() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let fake = fake(&rt);
    let tenants: Vec<String> = (1..=3).map(tenant).collect();
    let mut rng = Lcg(0x5eed);
    let dense = 30 * 72; // every 20 minutes
    let sparse = 30 * 3; // every 8 hours
    let hourly = 30 * 24;
    let mut total = 0;
    for (k, t) in tenants.iter().enumerate() {
        fake.add_tenant(t);
        let (sign_ins, audits) = match k {
            0 => (dense, sparse),
            1 => (sparse, dense),
            _ => (hourly, hourly),
        };
        total += spread(&fake, t, Endpoint::SignIns, sign_ins, &mut rng);
        total += spread(&fake, t, Endpoint::DirectoryAudits, audits, &mut rng);
    }
    // The smallest aligner buffer the config allows: lanes far apart would overflow it (forced
    // releases, then late events and a clock run ahead of the slow streams).
    let config = write_config(
        dir.path(),
        &fake,
        &tenants,
        "snapshot_interval_secs = 3600\nalign_buffer_events = 1000",
    );
    let log = dir.path().join("log.jsonl");
    let started = Instant::now();
    let mut service = Service::start(&config, free_port(), &log, &[]);
    service.wait_ready(Duration::from_secs(60));
    let mut peak_buffered = 0.0f64;
    let done = until(LIMIT, || {
        peak_buffered =
            peak_buffered.max(metric(&service.admin, "entrawatch_aligner_buffered_events"));
        caught_up(&service.logs()).is_some()
    });
    assert!(done, "the back-fill never caught up:\n{}", service.logs());
    let back_fill = started.elapsed();
    // Detection runs on what the aligner releases; give it a few polls of every lane.
    std::thread::sleep(Duration::from_secs(3));
    let forced = metric(&service.admin, "entrawatch_aligner_forced_releases_total");
    let late = metric(&service.admin, "entrawatch_events_late_total");
    let status = service.terminate(Duration::from_secs(60));
    assert!(status.success(), "{}", service.logs());
    let records = caught_up(&service.logs()).unwrap();
    let alerts: Vec<serde_json::Value> = std::fs::read_to_string(dir.path().join("alerts.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let mut by_rule: BTreeMap<String, usize> = BTreeMap::new();
    for a in &alerts {
        *by_rule
            .entry(a["rule"].as_str().unwrap_or("?").to_owned())
            .or_default() += 1;
    }
    let requests = fake.log().len();
    println!(
        "30-day back-fill of {} tenants: {total} records, {records} read before catching up, \
         {requests} requests, {back_fill:?}; aligner peak {peak_buffered} buffered, {forced} \
         forced, {late} late; alerts by rule: {by_rule:?}",
        tenants.len()
    );
    assert!(
        records as usize >= total,
        "{records} of {total} records read"
    );
    assert_eq!(
        by_rule.get("log-source-silent"),
        None,
        "false silences: {:#?}",
        alerts
            .iter()
            .filter(|a| a["rule"] == "log-source-silent")
            .collect::<Vec<_>>()
    );
    assert_eq!(forced, 0.0, "the aligner's buffer overflowed");
    assert_eq!(late, 0.0, "events arrived behind the released watermark");
    // In step, the buffer holds about a day (the skew) of every lane's records ahead of the
    // slowest lane, and a window's worth more: far from the 30 days a lane racing ahead would
    // leave in it.
    let day: f64 = (2 * dense + 2 * sparse + 2 * hourly) as f64 / 30.0;
    assert!(
        peak_buffered <= 3.0 * day,
        "{peak_buffered} buffered; a day is {day}"
    );
}

/// `kill -9` after the back-fill is committed to the outbox but before any snapshot: the restart
/// resumes every lane from the outbox checkpoint (a few requests per lane near the present), not
/// from a new 30-day back-fill.
#[test]
fn a_kill_9_before_the_first_snapshot_resumes_from_the_outbox_checkpoint() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let fake = fake(&rt);
    let tenants: Vec<String> = (1..=2).map(tenant).collect();
    let mut rng = Lcg(7);
    for t in &tenants {
        fake.add_tenant(t);
        spread(&fake, t, Endpoint::SignIns, 30 * 24, &mut rng);
        spread(&fake, t, Endpoint::DirectoryAudits, 30 * 6, &mut rng);
    }
    let config = write_config(dir.path(), &fake, &tenants, "snapshot_interval_secs = 3600");
    let log = dir.path().join("log.jsonl");
    let mut service = start_caught_up(&config, &log);
    // Batches are committed as they are detected; let the last ones through.
    std::thread::sleep(Duration::from_secs(3));
    service.kill9();
    assert!(
        !dir.path().join("state/snapshot.bin").exists(),
        "a snapshot was written: the test would not show a resume from the outbox"
    );
    let first_run = fake.log();
    let back_fill_start = Utc::now() - TimeDelta::days(29);
    let deep = |reqs: &[Logged]| {
        reqs.iter()
            .filter(|l| lower_bound(l).is_some_and(|ge| ge < back_fill_start))
            .count()
    };
    assert!(deep(&first_run) > 0, "the first run back-filled 30 days");

    let log2 = dir.path().join("log2.jsonl");
    let mut service = Service::start(&config, free_port(), &log2, &[]);
    service.wait_ready(Duration::from_secs(60));
    // Two cycles of each of the 2 tenants' 2 lanes (user sign-ins and audits) after the restart.
    let lanes = tenants.len() * 2;
    let after = |fake: &FakeGraph| fake.log().split_off(first_run.len());
    let cycled = until(LIMIT, || {
        let reqs = after(&fake);
        let mut per_lane: BTreeMap<(String, Endpoint), usize> = BTreeMap::new();
        for l in reqs.iter().filter(|l| lower_bound(l).is_some()) {
            *per_lane.entry((l.tenant.clone(), l.endpoint)).or_default() += 1;
        }
        per_lane.len() == lanes && per_lane.values().all(|n| *n >= 2)
    });
    assert!(cycled, "the lanes did not poll after the restart");
    let status = service.terminate(Duration::from_secs(60));
    assert!(status.success(), "{}", service.logs());
    let restarted = after(&fake);
    let oldest = restarted.iter().filter_map(lower_bound).min();
    println!(
        "resume: {} requests to back-fill ({} windows deeper than 29 days), {} in the restart's \
         first two cycles, the oldest asked from {:?}",
        first_run.len(),
        deep(&first_run),
        restarted.len(),
        oldest.map(|t| t.to_rfc3339())
    );
    assert!(
        service
            .logs()
            .contains("graph lanes resume from the outbox checkpoint"),
        "{}",
        service.logs()
    );
    assert_eq!(deep(&restarted), 0, "the restart read the back-fill again");
    // From the checkpoint less the 30-minute overlap, not from 30 days back.
    let recent = Utc::now() - TimeDelta::hours(2);
    assert!(
        oldest.is_some_and(|t| t > recent),
        "the restart asked from {oldest:?}"
    );
    assert!(restarted.len() < first_run.len() / 2);
}

/// The access alerts in `alerts.jsonl` of `dir`, by rule: (rule, tenant, cause) per line.
fn access_alerts(dir: &Path) -> Vec<(String, String, String)> {
    std::fs::read_to_string(dir.join("alerts.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|a| {
            a["rule"]
                .as_str()
                .is_some_and(|r| r.starts_with("entrawatch_source_access"))
        })
        .map(|a| {
            (
                a["rule"].as_str().unwrap_or("").to_owned(),
                a["tenant_id"].as_str().unwrap_or("").to_owned(),
                a["evidence"]["cause"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

/// Issue 21, item 7: a tenant that loses its licence while the service runs raises one system
/// alert to the SOC, routed like the tenant's own alerts: not one per stream or per poll (a
/// second stream refused a poll later belongs to the same loss), not again after a restart while
/// the tenant is still refused; and one "restored" alert when every refused stream answers again.
/// A tenant refused from the start (never readable, so nothing lost) raises none.
#[test]
fn a_tenant_that_loses_its_licence_while_running_raises_one_system_alert() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let fake = fake(&rt);
    let tenants: Vec<String> = (1..=3).map(tenant).collect();
    let (losing, steady, never) = (&tenants[0], &tenants[1], &tenants[2]);
    let mut rng = Lcg(21);
    for t in &tenants {
        fake.add_tenant(t);
        spread(&fake, t, Endpoint::SignIns, 48, &mut rng);
        spread(&fake, t, Endpoint::DirectoryAudits, 12, &mut rng);
    }
    let licence = (
        "Authentication_RequestFromNonPremiumTenantOrB2CTenant",
        "Neither tenant is B2C or tenant doesn't have premium license",
    );
    fake.forbid(never, Endpoint::SignIns, licence.0, licence.1);
    let config = write_config(dir.path(), &fake, &tenants, "");
    // A refused stream is asked again after a minute (the least the config allows).
    let text = std::fs::read_to_string(&config).unwrap().replace(
        "poll_interval_secs = 2\n",
        "poll_interval_secs = 2\nunavailable_retry_minutes = 1\n",
    );
    std::fs::write(&config, text).unwrap();
    let log = dir.path().join("log.jsonl");
    let mut service = start_caught_up(&config, &log);
    // Both streams of `losing` have answered by now; then its licence goes, and a poll later
    // its audits are refused too (a permission withdrawn).
    let answered = |t: &str, e: Endpoint| {
        fake.log()
            .iter()
            .any(|l| l.tenant == t && l.endpoint == e && l.status == 200)
    };
    assert!(until(LIMIT, || answered(losing, Endpoint::SignIns)
        && answered(losing, Endpoint::DirectoryAudits)));
    let before = fake.log().len();
    fake.forbid(losing, Endpoint::SignIns, licence.0, licence.1);
    let refused_since = |e: Endpoint, from: usize| {
        fake.log()[from..]
            .iter()
            .any(|l| l.tenant == *losing && l.endpoint == e && l.status == 403)
    };
    assert!(
        until(LIMIT, || refused_since(Endpoint::SignIns, before)),
        "sign-ins were not asked again"
    );
    let lost = |dir: &Path| {
        access_alerts(dir)
            .into_iter()
            .filter(|(r, _, _)| r == "entrawatch_source_access_lost")
            .count()
    };
    assert!(
        until(LIMIT, || lost(dir.path()) >= 1),
        "no system alert for the lost licence:\n{}",
        service.logs()
    );
    let audits_from = fake.log().len();
    fake.forbid(
        losing,
        Endpoint::DirectoryAudits,
        "Authorization_RequestDenied",
        "Insufficient privileges to complete the operation.",
    );
    assert!(until(LIMIT, || refused_since(
        Endpoint::DirectoryAudits,
        audits_from
    )));
    // A few more polls of every lane: nothing more is raised.
    let polls = fake.log().len();
    assert!(until(LIMIT, || fake.log().len() >= polls + 8));
    std::thread::sleep(Duration::from_secs(2));
    let first_run = access_alerts(dir.path());
    assert_eq!(
        first_run,
        vec![(
            "entrawatch_source_access_lost".to_owned(),
            losing.clone(),
            "licence".to_owned()
        )],
        "one alert, for the tenant that had been readable, naming the first cause"
    );
    let status = service.terminate(Duration::from_secs(60));
    assert!(status.success(), "{}", service.logs());

    // A restart while the tenant is still refused raises nothing new.
    let log2 = dir.path().join("log2.jsonl");
    let restart_from = fake.log().len();
    let mut service = Service::start(&config, free_port(), &log2, &[]);
    service.wait_ready(Duration::from_secs(60));
    assert!(
        until(LIMIT, || refused_since(Endpoint::SignIns, restart_from)
            && refused_since(Endpoint::DirectoryAudits, restart_from)),
        "the restart did not ask the refused streams"
    );
    let polls = fake.log().len();
    assert!(until(LIMIT, || fake.log().len() >= polls + 8));
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(access_alerts(dir.path()), first_run, "{}", service.logs());

    // The licence and the permission come back: one "restored" alert once both answer.
    fake.allow(losing, Endpoint::SignIns);
    fake.allow(losing, Endpoint::DirectoryAudits);
    let restored = until(LIMIT, || {
        access_alerts(dir.path())
            .iter()
            .any(|(r, _, _)| r == "entrawatch_source_access_restored")
    });
    assert!(restored, "no restored alert:\n{}", service.logs());
    let status = service.terminate(Duration::from_secs(60));
    assert!(status.success(), "{}", service.logs());
    let all = access_alerts(dir.path());
    println!("access alerts: {all:?}");
    assert_eq!(all.len(), 2, "{all:?}");
    assert_eq!(all[1].0, "entrawatch_source_access_restored");
    assert_eq!(all[1].1, *losing);
    assert!(all.iter().all(|(_, t, _)| t != steady && t != never));
}
