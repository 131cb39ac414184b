//! The real `entrawatch run` binary against a Kafka-protocol broker on loopback (librdkafka's mock
//! cluster, in this test process): envelopes produced to a topic come out as alerts at a local
//! webhook receiver. Two services read the same topic in two consumer groups; one is killed with
//! SIGKILL mid-stream and restarted while more envelopes are produced: it must deliver exactly the
//! alerts of the uninterrupted one, nothing lost and nothing new.
//!
//! The mock cluster keeps only about 5 MB per partition, so envelopes are produced in chunks and
//! both services catch up after each one.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use rdkafka::mocking::MockCluster;
use serde_json::json;

const TOPIC: &str = "entra-logs";

/// Event Hub records of a small simulated world, in event-time order, as envelopes of ten.
fn envelopes(dir: &Path) -> Vec<String> {
    eventhub_records(&simulate_world(dir, 3).join("eventhub"))
        .chunks(10)
        .map(|c| json!({ "records": c }).to_string())
        .collect()
}

fn config(dir: &Path, name: &str, bootstrap: &str) -> std::path::PathBuf {
    let text = format!(
        r#"
[service]
state_dir = {state}
log_format = "json"
snapshot_interval_secs = 1
shutdown_grace_secs = 5

[[sources]]
type = "kafka"
name = "eventhub"
brokers = "{bootstrap}"
topics = ["{TOPIC}"]
group_id = "entrawatch-{name}"
dead_letter_file = {dlq}
batch_wait_ms = 50
drain_timeout_secs = 2
# A killed member's partitions move to its successor after the session timeout.
settings = {{ "session.timeout.ms" = "6000", "heartbeat.interval.ms" = "500" }}

[[destinations]]
type = "webhook"
name = "soc"
url = {{ env = "EW_KAFKA_URL" }}

[route]
receivers = ["soc"]
group_wait_secs = 0
group_interval_secs = 1
"#,
        state = toml_path(&dir.join(name)),
        dlq = toml_path(&dir.join(format!("{name}-dead.jsonl"))),
    );
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, text).unwrap();
    path
}

/// Waits until the service has committed `messages` offsets and has nothing left to send.
fn wait_caught_up(service: &mut Service, messages: usize, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    let mut last = String::new();
    while Instant::now() < deadline {
        if let Some((200, text)) = http("GET", &service.admin, "/metrics", "") {
            let committed = metric(&text, "entrawatch_kafka_committed_offset");
            let pending = metric(&text, "entrawatch_outbox_pending");
            if committed >= messages as f64 && pending == 0.0 {
                return;
            }
            last = format!("committed {committed}, pending {pending}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("not caught up in {timeout:?} ({last}):\n{}", service.logs());
}

#[test]
fn the_binary_consumes_kafka_and_survives_sigkill_without_losing_an_alert() {
    let dir = tempfile::tempdir().unwrap();
    let messages = envelopes(dir.path());
    assert!(messages.len() > 100);
    let mock = MockCluster::new(1).unwrap();
    mock.create_topic(TOPIC, 1, 1).unwrap();
    let bootstrap = mock.bootstrap_servers();
    let log = dir.path().join("log.jsonl");

    let reference = Receiver::ok();
    let reference_url = reference.url();
    let mut clean = Service::start_env(
        &config(dir.path(), "reference", &bootstrap),
        free_port(),
        &log,
        &[],
        &[("EW_KAFKA_URL", reference_url.as_str())],
    );
    let receiver = Receiver::ok();
    let url = receiver.url();
    let env = [("EW_KAFKA_URL", url.as_str())];
    let crash_config = config(dir.path(), "crash", &bootstrap);
    let mut crashing = Service::start_env(&crash_config, free_port(), &log, &[], &env);
    clean.wait_ready(Duration::from_secs(60));
    crashing.wait_ready(Duration::from_secs(60));

    let chunks: Vec<&[String]> = messages.chunks(60).collect();
    let kill_at = chunks.len() / 3;
    let mut produced = 0;
    let started = Instant::now();
    for (i, chunk) in chunks.iter().enumerate() {
        let keyed: Vec<(Option<i32>, String)> = chunk.iter().map(|m| (None, m.clone())).collect();
        produce(&producer(&bootstrap), TOPIC, &keyed);
        produced += chunk.len();
        if i == kill_at {
            // Mid-stream: the chunk just produced is being consumed.
            std::thread::sleep(Duration::from_millis(300));
            crashing.kill9();
            continue;
        }
        if i == kill_at + 2 {
            crashing = Service::start_env(&crash_config, free_port(), &log, &[], &env);
            crashing.wait_ready(Duration::from_secs(60));
        }
        wait_caught_up(&mut clean, produced, Duration::from_secs(120));
        if i < kill_at || i >= kill_at + 2 {
            wait_caught_up(&mut crashing, produced, Duration::from_secs(120));
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    assert!(
        clean.terminate(Duration::from_secs(30)).success(),
        "{}",
        clean.logs()
    );
    assert!(
        crashing.terminate(Duration::from_secs(30)).success(),
        "{}",
        crashing.logs()
    );
    let expected = delivered_alert_ids(&reference.requests());
    let got = delivered_alert_ids(&receiver.requests());
    let records: usize = messages.len() * 10;
    eprintln!(
        "kafka e2e: {} messages (~{records} records) in {} chunks, two consumers caught up in {elapsed:.1}s (~{:.0} records/s each incl. waits); {} alerts",
        messages.len(),
        chunks.len(),
        records as f64 / elapsed,
        expected.len()
    );
    assert!(expected.len() >= 5, "too few alerts: {}", expected.len());
    assert_eq!(
        got, expected,
        "the killed run delivered other alerts than the clean one"
    );
}
