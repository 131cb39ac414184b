//! A real Prometheus server (Debian's `prometheus`; `scripts/test` installs it) scrapes the running
//! binary on loopback: the target is up and entrawatch's counters move.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

fn query(prom: &str, q: &str) -> Option<serde_json::Value> {
    let path = format!("/api/v1/query?query={}", urlencode(q));
    let (status, body) = http("GET", prom, &path, "")?;
    (status == 200).then(|| serde_json::from_str(&body).ok())?
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' | b'-' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The first sample's value of an instant query, as a number.
fn value(v: &serde_json::Value) -> Option<f64> {
    v["data"]["result"][0]["value"][1].as_str()?.parse().ok()
}

#[test]
fn prometheus_scrapes_the_running_service() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let config = dir.path().join("entrawatch.toml");
    std::fs::write(
        &config,
        format!(
            "[service]\nstate_dir = {}\nlog_format = \"json\"\n[[sources]]\ntype = \"file\"\nname = \"demo\"\npath = {}\n[[destinations]]\ntype = \"jsonl\"\nname = \"file\"\npath = {}\n",
            toml_path(&state),
            toml_path(&root().join("examples/demo")),
            toml_path(&dir.path().join("alerts.jsonl")),
        ),
    )
    .unwrap();
    let port = free_port();
    let mut service = Service::start(&config, port, &dir.path().join("log.jsonl"), &[]);
    service.wait_ready(Duration::from_secs(60));

    let prom_port = free_port();
    let prom_addr = format!("127.0.0.1:{prom_port}");
    std::fs::write(
        dir.path().join("prometheus.yml"),
        format!(
            "global: {{scrape_interval: 1s, evaluation_interval: 1s}}\nscrape_configs:\n  - job_name: entrawatch\n    static_configs: [{{targets: ['127.0.0.1:{port}']}}]\n"
        ),
    )
    .unwrap();
    let mut prom = Command::new("prometheus")
        .arg(format!(
            "--config.file={}",
            dir.path().join("prometheus.yml").display()
        ))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("prom").display()
        ))
        .arg(format!("--web.listen-address={prom_addr}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("prometheus is needed (Debian package prometheus; scripts/test installs it)");

    let deadline = Instant::now() + Duration::from_secs(90);
    let mut up = None;
    let mut processed = None;
    while Instant::now() < deadline {
        up = query(&prom_addr, "up{job=\"entrawatch\"}")
            .as_ref()
            .and_then(value);
        processed = query(&prom_addr, "sum(entrawatch_events_processed_total)")
            .as_ref()
            .and_then(value);
        if up == Some(1.0) && processed.is_some_and(|p| p > 0.0) {
            break;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    // The error counters the alerting rules watch exist from the start (at 0 when nothing failed),
    // so the first error is an increase.
    let render_errors = query(
        &prom_addr,
        "entrawatch_render_errors_total{job=\"entrawatch\", destination=\"file\"}",
    )
    .as_ref()
    .and_then(value);
    let rejected = query(
        &prom_addr,
        "entrawatch_records_rejected_total{job=\"entrawatch\", source=\"demo\"}",
    )
    .as_ref()
    .and_then(value);
    let _ = prom.kill();
    let _ = prom.wait();
    assert_eq!(up, Some(1.0), "target not up:\n{}", service.logs());
    assert!(
        processed.is_some_and(|p| p > 0.0),
        "counters did not move: {processed:?}"
    );
    assert_eq!(render_errors, Some(0.0), "render errors not born at 0");
    assert!(rejected.is_some(), "rejected records not born at 0");
    assert!(service.terminate(Duration::from_secs(30)).success());
}
