//! The kill -9 matrix: `entrawatch run` over a simulated CSP world (file source) delivering to a
//! local webhook receiver is killed with SIGKILL at random points 20 times and restarted each
//! time. Then it runs to the end. Every alert replay finds must have been delivered, no alert
//! replay does not find may appear (a restart that lost its baselines would raise "first seen"
//! alerts again, with new ids), and each notification may arrive at most once more than it should
//! per crash.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use common::*;

const KILLS: usize = 20;

fn simulate(dir: &Path) -> std::path::PathBuf {
    let world = simulate_world(dir, 5);
    // Only the log files: labels and the world description are not logs.
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    for sub in ["eventhub", "graph"] {
        std::fs::rename(world.join(sub), data.join(sub)).unwrap();
    }
    // The file source takes a file once it has settled (unchanged for a moment); files found
    // together are ordered together. Age them so every run sees one generation, as replay does.
    let touched = std::process::Command::new("find")
        .arg(&data)
        .args([
            "-type",
            "f",
            "-exec",
            "touch",
            "-d",
            "1 hour ago",
            "{}",
            "+",
        ])
        .status()
        .unwrap();
    assert!(touched.success());
    world.join("entrawatch.toml")
}

#[test]
fn twenty_kill_nines_lose_nothing_and_repeat_at_most_once_per_crash() {
    let dir = tempfile::tempdir().unwrap();
    let world_config = simulate(dir.path());
    let data = dir.path().join("data");
    let expected = replay_alert_ids(&world_config, &data);
    assert!(
        expected.len() >= 10,
        "the world raises too few alerts: {}",
        expected.len()
    );

    let write_config = |name: &str| {
        let mut text = std::fs::read_to_string(&world_config).unwrap();
        text.push_str(&format!(
            r#"
[service]
state_dir = {state}
log_format = "json"
snapshot_interval_secs = 1
shutdown_grace_secs = 5

[[sources]]
type = "file"
name = "world"
path = {data}
follow = false

[[destinations]]
type = "webhook"
name = "soc"
url = {{ env = "EW_CRASH_URL" }}

[route]
receivers = ["soc"]
group_wait_secs = 0
group_interval_secs = 1
"#,
            state = toml_path(&dir.path().join(name)),
            data = toml_path(&data),
        ));
        let config = dir.path().join(format!("{name}.toml"));
        std::fs::write(&config, text).unwrap();
        config
    };
    let log = dir.path().join("log.jsonl");

    // A clean reference run: what must arrive, and how long a whole run takes.
    let reference = Receiver::ok();
    let reference_url = reference.url();
    let clean_started = Instant::now();
    let mut service = Service::start_env(
        &write_config("reference"),
        free_port(),
        &log,
        &["--exit-when-done"],
        &[("EW_CRASH_URL", reference_url.as_str())],
    );
    assert!(
        service.wait(Duration::from_secs(300)).success(),
        "{}",
        service.logs()
    );
    let clean_run = clean_started.elapsed();
    // The newest notification of each alert in the clean run: what a human must end up seeing.
    // (Under a backlog the outbox folds an alert's older pending updates into its newest one, so
    // the crashing run may legitimately skip intermediate updates, never the newest.)
    let mut newest: BTreeMap<String, String> = BTreeMap::new();
    for (n, a) in notifications(&reference.requests()) {
        newest.insert(a, n);
    }

    let receiver = Receiver::ok();
    let url = receiver.url();
    let env = [("EW_CRASH_URL", url.as_str())];
    let config = write_config("crashing");
    let mut rng = Lcg(0x5eed);
    let mut crashes = 0;
    let mut clean_runs = 0;
    let started = Instant::now();
    // Kill runs at random points of a run's length until there were KILLS kills (a run that
    // finishes before its kill point is a clean run; its successor starts from a finished state and
    // must send nothing new).
    // Kill points are drawn over the length of the latest clean run, so they keep landing inside
    // runs as the remaining work shrinks.
    let mut span = clean_run.as_millis() as u64;
    for _ in 0..KILLS * 5 {
        if crashes == KILLS {
            break;
        }
        let run_started = Instant::now();
        let mut service =
            Service::start_env(&config, free_port(), &log, &["--exit-when-done"], &env);
        let delay = Duration::from_millis(20 + rng.next() % span.max(1));
        let deadline = Instant::now() + delay;
        while Instant::now() < deadline && service.child.try_wait().unwrap().is_none() {
            std::thread::sleep(Duration::from_millis(10));
        }
        if service.child.try_wait().unwrap().is_none() {
            service.kill9();
            crashes += 1;
        } else {
            let status = service.child.wait().unwrap();
            assert!(status.success(), "{}", service.logs());
            clean_runs += 1;
            span = run_started.elapsed().as_millis() as u64;
        }
    }
    assert_eq!(crashes, KILLS, "could not kill {KILLS} runs");
    let during_kills = receiver.requests().len();
    // The last run goes to the end.
    let mut service = Service::start_env(&config, free_port(), &log, &["--exit-when-done"], &env);
    let status = service.wait(Duration::from_secs(300));
    assert!(status.success(), "{}", service.logs());
    let requests = receiver.requests();
    let got = notifications(&requests);
    let delivered: BTreeSet<String> = got.iter().map(|(_, a)| a.clone()).collect();
    let missing: Vec<_> = expected.difference(&delivered).collect();
    let unexpected: Vec<_> = delivered.difference(&expected).collect();
    let mut per_notification: BTreeMap<&str, usize> = BTreeMap::new();
    for (n, _) in &got {
        *per_notification.entry(n.as_str()).or_default() += 1;
    }
    let worst = per_notification.values().copied().max().unwrap_or(0);
    let duplicates: usize = per_notification.values().map(|c| c - 1).sum();
    eprintln!(
        "crash matrix: clean run {:.1}s; {crashes} kills and {clean_runs} clean runs in {:.1}s, {during_kills} requests while killing, {} in all, {} notifications ({} distinct), {duplicates} duplicates, worst repeat {worst}",
        clean_run.as_secs_f64(),
        started.elapsed().as_secs_f64(),
        requests.len(),
        got.len(),
        per_notification.len()
    );
    assert!(
        during_kills > 0,
        "no run got as far as delivering before its kill: the matrix tested nothing"
    );
    assert!(missing.is_empty(), "alerts never delivered: {missing:?}");
    let stale: Vec<_> = newest
        .iter()
        .filter(|(_, n)| !per_notification.contains_key(n.as_str()))
        .collect();
    assert!(
        stale.is_empty(),
        "alerts whose newest notification never arrived: {stale:?}"
    );
    assert!(
        unexpected.is_empty(),
        "alerts replay does not raise: {unexpected:?}"
    );
    assert!(
        worst <= 1 + crashes,
        "a notification arrived {worst} times over {crashes} crashes"
    );
    assert!(
        duplicates <= crashes * per_notification.len().max(1),
        "{duplicates} duplicates"
    );
}
