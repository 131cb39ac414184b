//! Reload changes a running Graph source's tenants, end to end: the real binary polls the Graph
//! fake of the ingest tests (`ingest/tests/graph_support`, on 127.0.0.1) and `POST /-/reload` with
//! the admin token adds a tenant (it is polled and its records ingested without a restart) and
//! removes one (its polling stops); the reply says what changed, `/readyz` and `/metrics` show
//! the tenant count, and a bad tenant list is refused with the running set untouched.
//!
//! Time is not scaled here: the fake throttles at Graph's documented 5 reporting requests per
//! 10 s per tenant. Every wait is bounded.

mod common;
#[path = "../ingest/tests/graph_support/mod.rs"]
mod graph_support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chrono::Utc;
use common::*;
use graph_support::data::Endpoint;
use graph_support::fake::FakeGraph;
use graph_support::{CLIENT_ID, SECRET, options_scaled, tenant};

const TOKEN: &str = "admin-test-token-0123456789abcdef";
const LIMIT: Duration = Duration::from_secs(90);

/// A config with one Graph source reading directory audits of `tenants` from the fake.
fn write_config(dir: &Path, fake: &FakeGraph, tenants: &[&str]) -> PathBuf {
    let secret = dir.join("graph-secret");
    std::fs::write(&secret, format!("{SECRET}\n")).unwrap();
    let tenants: String = tenants
        .iter()
        .map(|t| format!("[[sources.tenants]]\nid = \"{t}\"\n"))
        .collect();
    let text = format!(
        r#"
[service]
state_dir = {state}
log_format = "json"
snapshot_interval_secs = 1
admin_token = {{ env = "EW_TEST_ADMIN_TOKEN" }}

[[sources]]
type = "graph"
name = "graph"
login_url = "{base}"
graph_url = "{base}"
client_id = "{CLIENT_ID}"
client_secret = {{ file = {secret} }}
streams = ["directory_audits"]
poll_interval_secs = 1
backfill_days = 1
free_backfill_days = 1
{tenants}
[[destinations]]
type = "stdout"
name = "out"
"#,
        state = toml_path(&dir.join("state")),
        base = fake.base,
        secret = toml_path(&secret),
    );
    let path = dir.join("entrawatch.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// Waits (bounded) until `done` holds.
fn wait(what: &str, service: &Service, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + LIMIT;
    while !done() {
        assert!(
            Instant::now() < deadline,
            "{what}: not within {LIMIT:?}\n{}",
            service.logs()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn reload(service: &Service) -> (u16, String) {
    let asked = Instant::now();
    let answer =
        http_auth("POST", &service.admin, "/-/reload", TOKEN, "").expect("the admin API answers");
    println!(
        "reload answered {} in {} ms",
        answer.0,
        asked.elapsed().as_millis()
    );
    answer
}

#[test]
fn reload_adds_and_removes_graph_tenants_without_a_restart() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let fake = rt.block_on(FakeGraph::start(options_scaled(true, vec![], 1.0)));
    let (a, b) = (tenant(0xa), tenant(0xb));
    for t in [&a, &b] {
        fake.add_tenant(t);
        for minutes in [90, 60, 30] {
            fake.add(
                t,
                Endpoint::DirectoryAudits,
                Utc::now() - chrono::Duration::minutes(minutes),
                "",
            );
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &fake, &[&a]);
    let mut service = Service::start_env(
        &config,
        free_port(),
        &dir.path().join("log.jsonl"),
        &[],
        &[("EW_TEST_ADMIN_TOKEN", TOKEN)],
    );
    service.wait_ready(Duration::from_secs(60));
    wait("a is polled", &service, || {
        fake.tenants_polled().contains(&a)
    });
    assert!(!fake.tenants_polled().contains(&b));

    // A bad list is refused whole, with the problem named, and changes nothing.
    write_config(dir.path(), &fake, &[&a, "not-a-guid"]);
    let (status, body) = reload(&service);
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("not-a-guid"), "{body}");

    // b is added.
    write_config(dir.path(), &fake, &[&a, &b]);
    let (status, body) = reload(&service);
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains(&format!(
            "graph source \"graph\": tenants added: {b}; removed: none; unchanged: 1"
        )),
        "{body}"
    );
    wait("b's records are ingested", &service, || {
        let (_, text) = http_auth("GET", &service.admin, "/metrics", TOKEN, "").unwrap();
        text.lines().any(|l| {
            l.starts_with("entrawatch_events_received_total{")
                && l.contains(&format!("tenant=\"{b}\""))
                && l.ends_with(" 3")
        })
    });
    let (status, ready) = http("GET", &service.admin, "/readyz", "").unwrap();
    assert_eq!(status, 200, "{ready}");
    assert!(
        ready.contains("source graph: polling 2 tenants (2 listed, 0 discovered through GDAP)"),
        "{ready}"
    );

    // a is removed: it is polled no more.
    write_config(dir.path(), &fake, &[&b]);
    let (status, body) = reload(&service);
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains(&format!("tenants added: none; removed: {a}; unchanged: 1")),
        "{body}"
    );
    std::thread::sleep(Duration::from_millis(500));
    let (_, from) = fake.requests_since(&a, 0);
    let (_, b_from) = fake.requests_since(&b, 0);
    // b is polled every second or so (within its budget): three seconds see several polls of b
    // and none of a.
    wait("b polled again", &service, || {
        fake.requests_since(&b, b_from).0 >= 2
    });
    assert_eq!(fake.requests_since(&a, from).0, 0, "a is no longer polled");
    let (_, text) = http_auth("GET", &service.admin, "/metrics", TOKEN, "").unwrap();
    assert_eq!(metric(&text, "entrawatch_graph_tenants"), 1.0, "{text}");

    let status = service.terminate(Duration::from_secs(30));
    assert!(status.success(), "{status:?}");
    let reloads = service
        .logs()
        .lines()
        .filter(|l| l.contains("\"audit\":\"config.reload\""))
        .count();
    assert_eq!(reloads, 3, "each reload is in the audit log");
}

/// GDAP discovery end to end: the partner's relationships are listed, the customer with an active
/// one is polled, and its relationship granting Global Administrator becomes an alert of
/// `gdap-relationship-risky` for the customer's tenant; the expired one's customer is not polled.
#[test]
fn gdap_discovery_polls_active_customers_and_a_global_admin_relationship_raises_an_alert() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let fake = rt.block_on(FakeGraph::start(options_scaled(true, vec![], 1.0)));
    let (partner, customer, ended) = (tenant(0x100), tenant(0xc1), tenant(0xc2));
    fake.set_partner(&partner);
    fake.relate(
        &customer,
        "Contoso",
        "active",
        &["62e90394-69f5-4237-9190-012177145e10"],
        "PT0S",
    );
    fake.relate(&ended, "Fabrikam", "expired", &[], "PT0S");
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("graph-secret");
    std::fs::write(&secret, format!("{SECRET}\n")).unwrap();
    let alerts = dir.path().join("alerts.jsonl");
    let config = dir.path().join("entrawatch.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[service]
state_dir = {state}
log_format = "json"
snapshot_interval_secs = 1
idle_source_secs = 1

[[sources]]
type = "graph"
name = "graph"
login_url = "{base}"
graph_url = "{base}"
client_id = "{CLIENT_ID}"
client_secret = {{ file = {secret} }}
streams = ["directory_audits"]
poll_interval_secs = 1
backfill_days = 1
free_backfill_days = 1
discover = "gdap"
partner_tenant_id = "{partner}"

[[destinations]]
type = "jsonl"
name = "out"
path = {alerts}

[route]
receivers = ["out"]
group_wait_secs = 0
group_interval_secs = 1
"#,
            state = toml_path(&dir.path().join("state")),
            base = fake.base,
            secret = toml_path(&secret),
            alerts = toml_path(&alerts),
        ),
    )
    .unwrap();
    let mut service = Service::start(&config, free_port(), &dir.path().join("log.jsonl"), &[]);
    service.wait_ready(Duration::from_secs(60));
    wait("the customer is polled", &service, || {
        fake.tenants_polled().contains(&customer)
    });
    wait("the alert is delivered", &service, || {
        std::fs::read_to_string(&alerts)
            .unwrap_or_default()
            .lines()
            .any(|l| l.contains("gdap-relationship-risky") && l.contains(&customer))
    });
    assert!(
        !fake.tenants_polled().contains(&ended),
        "a customer whose only relationship expired is not polled"
    );
    let (_, ready) = http("GET", &service.admin, "/readyz", "").unwrap();
    assert!(
        ready.contains(
            "source graph: polling 1 tenants (0 listed, 1 discovered through GDAP; last GDAP discovery ok)"
        ),
        "{ready}"
    );
    let status = service.terminate(Duration::from_secs(30));
    assert!(status.success(), "{status:?}");
}
