//! Replay is the oracle: the live service reading Event Hub envelopes from a Kafka topic must raise
//! exactly the alerts `entrawatch replay` raises on the same records, whatever the number of
//! partitions, the way records are spread over them, a partition lagging hours behind the others,
//! and `kill -9` at random points.
//!
//! The broker is librdkafka's mock cluster in this test process (a real Kafka-protocol server on
//! loopback); the service is the real binary, delivering to a local webhook receiver. The mock
//! keeps about 5 MB per partition, so envelopes are produced in chunks and each chunk is consumed
//! before the next goes out.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::*;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::mocking::MockCluster;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use serde_json::{Value, json};

const TOPIC: &str = "insights-logs-signinlogs";
/// Envelopes produced between two waits for the service to catch up (about 1.5 MB).
const CHUNK: usize = 100;

/// A simulated CSP world: its config (detection settings, tenant names), the folder of its Event
/// Hub records, and those records in event-time order.
struct World {
    config: PathBuf,
    eventhub: PathBuf,
    records: Vec<Value>,
}

fn world(dir: &Path) -> World {
    let out_dir = simulate_world(dir, 3);
    let eventhub = out_dir.join("eventhub");
    World {
        config: out_dir.join("entrawatch.toml"),
        records: eventhub_records(&eventhub),
        eventhub,
    }
}

/// One message: its partition and its envelope.
type Message = (Option<i32>, String);

/// Envelopes of ten records in event-time order, each sent to the partition `place` picks.
fn spread(records: &[Value], mut place: impl FnMut(usize, &[Value]) -> i32) -> Vec<Message> {
    records
        .chunks(10)
        .enumerate()
        .map(|(i, c)| (Some(place(i, c)), json!({ "records": c }).to_string()))
        .collect()
}

/// Envelopes of one tenant's records each (as a tenant's diagnostic setting sends them), tenant
/// `k` on partition `k % partitions`, in the order of their first record.
fn by_tenant(records: &[Value], partitions: i32) -> Vec<Message> {
    let mut tenants: Vec<String> = Vec::new();
    let mut per: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for r in records {
        let t = r["tenantId"].as_str().unwrap_or("").to_owned();
        if !tenants.contains(&t) {
            tenants.push(t.clone());
        }
        per.entry(t).or_default().push(r.clone());
    }
    let mut out: Vec<(chrono::DateTime<chrono::Utc>, i32, String)> = Vec::new();
    for (t, rs) in &per {
        let k = tenants.iter().position(|x| x == t).unwrap() as i32;
        for c in rs.chunks(10) {
            let first = event_time(&c[0]);
            out.push((first, k % partitions, json!({ "records": c }).to_string()));
        }
    }
    out.sort_by_key(|a| a.0);
    out.into_iter().map(|(_, p, m)| (Some(p), m)).collect()
}

/// The service config: the world's detection settings, one Kafka source, one webhook.
fn config(dir: &Path, world: &World, name: &str, bootstrap: &str) -> PathBuf {
    let mut text = std::fs::read_to_string(&world.config).unwrap();
    text.push_str(&format!(
        r#"
[service]
state_dir = {state}
log_format = "json"
snapshot_interval_secs = 1
shutdown_grace_secs = 5
# A partition that has read all it was given and gets nothing for this long stops holding the
# watermark; chunks here arrive far more often.
idle_source_secs = 20

[[sources]]
type = "kafka"
name = "eventhub"
brokers = "{bootstrap}"
topics = ["{TOPIC}"]
group_id = "entrawatch-{name}"
dead_letter_file = {dlq}
batch_wait_ms = 50
drain_timeout_secs = 2
settings = {{ "session.timeout.ms" = "6000", "heartbeat.interval.ms" = "500", "statistics.interval.ms" = "200", "group.instance.id" = "entrawatch-test-{name}" }}

[[destinations]]
type = "webhook"
name = "soc"
url = {{ env = "EW_STREAM_URL" }}

[route]
receivers = ["soc"]
group_wait_secs = 0
group_interval_secs = 1
"#,
        state = toml_path(&dir.join(name)),
        dlq = toml_path(&dir.join(format!("{name}-dead.jsonl"))),
    ));
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, text).unwrap();
    path
}

/// How long the caught-up state must hold before it is believed: longer than the second in which
/// delivery refreshes its pending gauge from the outbox.
const STEADY: Duration = Duration::from_millis(1200);

/// Waits until the service has committed `messages` offsets, has nothing left to send and (with
/// `drained`) holds nothing in its aligner, on every scrape for [`STEADY`]; returns the metrics
/// text.
fn wait_caught_up(service: &Service, messages: usize, drained: bool, timeout: Duration) -> String {
    let deadline = Instant::now() + timeout;
    let mut last = String::new();
    let mut since: Option<Instant> = None;
    while Instant::now() < deadline {
        if let Some((200, text)) = http("GET", &service.admin, "/metrics", "") {
            let committed = metric(&text, "entrawatch_kafka_committed_offset");
            let pending = metric(&text, "entrawatch_outbox_pending");
            let buffered = metric(&text, "entrawatch_aligner_buffered_events");
            if committed >= messages as f64 && pending == 0.0 && (!drained || buffered == 0.0) {
                let start = *since.get_or_insert_with(Instant::now);
                if start.elapsed() >= STEADY {
                    return text;
                }
            } else {
                since = None;
            }
            last =
                format!("committed {committed}/{messages}, pending {pending}, buffered {buffered}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let metrics = http("GET", &service.admin, "/metrics", "")
        .map(|(_, t)| t)
        .unwrap_or_default();
    let kafka: Vec<&str> = metrics
        .lines()
        .filter(|l| l.contains("kafka") && !l.starts_with('#'))
        .collect();
    panic!(
        "not caught up in {timeout:?} ({last}):\n{}\n{}",
        kafka.join("\n"),
        service.logs()
    );
}

/// Runs the service over `chunks` of messages (each chunk consumed before the next is produced)
/// and returns the alert ids delivered and the late-event count.
fn run_live(
    dir: &Path,
    world: &World,
    name: &str,
    partitions: i32,
    chunks: &[Vec<Message>],
) -> (BTreeSet<String>, f64) {
    let mock = MockCluster::new(1).unwrap();
    mock.create_topic(TOPIC, partitions, 1).unwrap();
    let bootstrap = mock.bootstrap_servers();
    let receiver = Receiver::ok();
    let url = receiver.url();
    let log = dir.join(format!("{name}.log"));
    let mut service = Service::start_env(
        &config(dir, world, name, &bootstrap),
        free_port(),
        &log,
        &[],
        &[("EW_STREAM_URL", url.as_str())],
    );
    service.wait_ready(Duration::from_secs(60));
    let producer = producer(&bootstrap);
    let mut produced = 0;
    for chunk in chunks {
        produce(&producer, TOPIC, chunk);
        produced += chunk.len();
        wait_caught_up(&service, produced, false, Duration::from_secs(120));
    }
    let text = wait_caught_up(&service, produced, true, Duration::from_secs(120));
    let late = metric(&text, "entrawatch_events_late_total");
    for line in service
        .logs()
        .lines()
        .filter(|l| l.contains("late event"))
        .take(3)
    {
        eprintln!("{name}: {line}");
    }
    assert!(
        service.terminate(Duration::from_secs(30)).success(),
        "{}",
        service.logs()
    );
    (delivered_alert_ids(&receiver.requests()), late)
}

fn chunked(messages: Vec<Message>) -> Vec<Vec<Message>> {
    messages.chunks(CHUNK).map(<[Message]>::to_vec).collect()
}

fn assert_same(name: &str, got: &BTreeSet<String>, want: &BTreeSet<String>, late: f64) {
    let missing: Vec<_> = want.difference(got).collect();
    let extra: Vec<_> = got.difference(want).collect();
    eprintln!(
        "{name}: {} alerts delivered, replay raises {}, {late} late events",
        got.len(),
        want.len()
    );
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{name}: missing {missing:?}, not in replay {extra:?}"
    );
    assert_eq!(late, 0.0, "{name}: late events");
}

#[test]
fn one_partition_gives_the_replays_alerts() {
    let dir = tempfile::tempdir().unwrap();
    let world = world(dir.path());
    let want = replay_alert_ids(&world.config, &world.eventhub);
    assert!(want.len() >= 10, "too few alerts: {}", want.len());
    let messages = spread(&world.records, |_, _| 0);
    let (got, late) = run_live(dir.path(), &world, "one", 1, &chunked(messages));
    assert_same("1 partition", &got, &want, late);
}

#[test]
fn four_partitions_spread_at_random_give_the_replays_alerts() {
    let dir = tempfile::tempdir().unwrap();
    let world = world(dir.path());
    let want = replay_alert_ids(&world.config, &world.eventhub);
    let mut rng = Lcg(0x4a11);
    let messages = spread(&world.records, |_, _| (rng.next() % 4) as i32);
    let (got, late) = run_live(dir.path(), &world, "four", 4, &chunked(messages));
    assert_same("4 partitions, random", &got, &want, late);
}

/// Eight partitions, one tenant each (two stay empty), and partition 0 a whole chunk behind the
/// others (about a day of event time): its records are produced with the next chunk.
#[test]
fn eight_partitions_with_one_a_day_behind_give_the_replays_alerts() {
    let dir = tempfile::tempdir().unwrap();
    let world = world(dir.path());
    let want = replay_alert_ids(&world.config, &world.eventhub);
    let messages = by_tenant(&world.records, 8);
    let mut chunks: Vec<Vec<Message>> = Vec::new();
    let mut held: Vec<Message> = Vec::new();
    for chunk in messages.chunks(CHUNK) {
        let (behind, rest): (Vec<Message>, Vec<Message>) =
            chunk.iter().cloned().partition(|(p, _)| *p == Some(0));
        let mut out = std::mem::replace(&mut held, behind);
        out.extend(rest);
        chunks.push(out);
    }
    chunks.push(held);
    let (got, late) = run_live(dir.path(), &world, "eight", 8, &chunks);
    assert_same("8 partitions, one behind", &got, &want, late);
}

fn service_log(log: &Path) -> String {
    std::fs::read_to_string(log).unwrap_or_default()
}

/// How many times partitions were assigned, in a log.
fn assignments(log: &str) -> usize {
    log.lines()
        .filter(|l| l.contains("\"partitions assigned\""))
        .count()
}

/// Waits until the log shows more assignments than `before` (bounded).
fn wait_assigned(service: &Service, before: usize, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while assignments(&service.logs()) <= before {
        assert!(
            Instant::now() < deadline,
            "partitions not assigned in {timeout:?}:\n{}",
            service.logs()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The group's committed offsets, by `topic/partition`.
fn group_offsets(bootstrap: &str, group: &str, partitions: i32) -> BTreeMap<String, i64> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition(TOPIC, p);
    }
    let got = consumer
        .committed_offsets(tpl, Duration::from_secs(10))
        .unwrap();
    got.elements()
        .iter()
        .filter_map(|e| match e.offset() {
            Offset::Offset(o) => Some((format!("{}/{}", e.topic(), e.partition()), o)),
            _ => None,
        })
        .collect()
}

/// The source positions a snapshot file holds (its meta section, JSON after the magic line).
fn snapshot_positions(state_dir: &Path) -> BTreeMap<String, i64> {
    let Ok(bytes) = std::fs::read(state_dir.join("snapshot.bin")) else {
        return BTreeMap::new();
    };
    let start = bytes.iter().position(|b| *b == b'\n').unwrap() + 1;
    let len = u64::from_le_bytes(bytes[start..start + 8].try_into().unwrap()) as usize;
    let meta: Value = serde_json::from_slice(&bytes[start + 8..start + 8 + len]).unwrap();
    meta["positions"]["eventhub"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_i64().unwrap()))
                .collect()
        })
        .unwrap_or_default()
}

/// Twenty `kill -9`s at random points of a 4-partition stream (one before the first snapshot,
/// others right after commits and anywhere else), a restart after each: the group's committed
/// offsets never pass the positions of the snapshot on disk, and in the end exactly the replay's
/// alerts were delivered, each notification at most once more per crash. (`EW_KILLS=N` runs fewer
/// kills, for a quick look while working on it.)
#[test]
fn twenty_kill_nines_on_four_partitions_give_the_replays_alerts() {
    let kills_wanted: usize = std::env::var("EW_KILLS")
        .ok()
        .and_then(|k| k.parse().ok())
        .unwrap_or(20);
    let dir = tempfile::tempdir().unwrap();
    let world = world(dir.path());
    let want = replay_alert_ids(&world.config, &world.eventhub);
    let mut rng = Lcg(0xc4a5);
    let messages = spread(&world.records, |_, _| (rng.next() % 4) as i32);
    let total = messages.len();
    let mock = MockCluster::new(1).unwrap();
    mock.create_topic(TOPIC, 4, 1).unwrap();
    let bootstrap = mock.bootstrap_servers();
    let producer = producer(&bootstrap);
    let receiver = Receiver::ok();
    let url = receiver.url();
    let env = [("EW_STREAM_URL", url.as_str())];
    let config = config(dir.path(), &world, "crash", &bootstrap);
    let state = dir.path().join("crash");
    let log = dir.path().join("crash.log");
    // The whole stream fits the mock broker on four partitions: produce it in a few bursts while
    // the service runs and dies.
    let bursts: Vec<&[Message]> = messages.chunks(total.div_ceil(kills_wanted / 2)).collect();
    let mut burst = bursts.iter();
    let mut kills = 0;
    let mut checked = 0;
    while kills < kills_wanted {
        let assigned = assignments(&service_log(&log));
        let mut service = Service::start_env(&config, free_port(), &log, &[], &env);
        if kills > 0 {
            service.wait_ready(Duration::from_secs(60));
        }
        if kills % 2 == 0
            && let Some(b) = burst.next()
        {
            produce(&producer, TOPIC, b);
        }
        // The first kill comes before any snapshot can have been written; the others at a random
        // point once the partitions are assigned (a restart waits for the group to rebalance).
        let delay = if kills == 0 {
            0
        } else {
            wait_assigned(&service, assigned, Duration::from_secs(60));
            rng.next() % 2500
        };
        std::thread::sleep(Duration::from_millis(delay));
        service.kill9();
        kills += 1;
        let committed = group_offsets(&bootstrap, "entrawatch-crash", 4);
        let durable = snapshot_positions(&state);
        for (tp, offset) in &committed {
            let at = durable.get(tp).copied().unwrap_or(0);
            assert!(
                *offset <= at,
                "kill {kills}: {tp} committed at {offset}, past the snapshot's {at}"
            );
            checked += 1;
        }
    }
    for b in burst {
        produce(&producer, TOPIC, b);
    }
    let mut service = Service::start_env(&config, free_port(), &log, &[], &env);
    service.wait_ready(Duration::from_secs(60));
    wait_caught_up(&service, total, true, Duration::from_secs(300));
    assert!(
        service.terminate(Duration::from_secs(30)).success(),
        "{}",
        service.logs()
    );
    let got = notifications(&receiver.requests());
    let delivered: BTreeSet<String> = got.iter().map(|(_, a)| a.clone()).collect();
    let mut per: BTreeMap<&str, usize> = BTreeMap::new();
    for (n, _) in &got {
        *per.entry(n.as_str()).or_default() += 1;
    }
    let worst = per.values().copied().max().unwrap_or(0);
    eprintln!(
        "kafka crash matrix: {kills} kills, {checked} committed offsets checked against snapshots, {} notifications ({} distinct), worst repeat {worst}",
        got.len(),
        per.len()
    );
    assert!(checked > 0, "no committed offset was ever checked");
    let missing: Vec<_> = want.difference(&delivered).collect();
    let extra: Vec<_> = delivered.difference(&want).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "missing {missing:?}, not in replay {extra:?}"
    );
    assert!(worst <= 1 + kills, "a notification arrived {worst} times");
}

/// `validate --online` connects with the source's settings: a reachable broker with the topic and
/// a readable group passes; a missing topic and an unreachable broker fail with their names; and
/// validation creates nothing (not even the dead-letter file or its folder).
#[test]
fn validate_online_checks_brokers_topics_and_group_and_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mock = MockCluster::new(1).unwrap();
    mock.create_topic(TOPIC, 4, 1).unwrap();
    let bootstrap = mock.bootstrap_servers();
    let dead = dir.path().join("not-yet").join("dead.jsonl");
    let write = |name: &str, brokers: &str, topic: &str| {
        let path = dir.path().join(format!("{name}.toml"));
        std::fs::write(
            &path,
            format!(
                r#"
[service]
state_dir = {state}

[[sources]]
type = "kafka"
name = "eventhub"
brokers = "{brokers}"
topics = ["{topic}"]
group_id = "entrawatch-validate"
dead_letter_file = {dead}

[[destinations]]
type = "stdout"
name = "out"
"#,
                state = toml_path(&dir.path().join("state")),
                dead = toml_path(&dead),
            ),
        )
        .unwrap();
        path
    };
    let validate = |config: &Path| {
        let out = entrawatch()
            .args(["validate", "--online", "--config"])
            .arg(config)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };

    let (code, text) = validate(&write("good", &bootstrap, TOPIC));
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains(&format!("ok      topic {TOPIC}: 4 partition(s)")),
        "{text}"
    );
    assert!(
        text.contains("ok      group entrawatch-validate: offsets readable"),
        "{text}"
    );

    let (code, text) = validate(&write("no-topic", &bootstrap, "insights-logs-auditlogs"));
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("FAILED  topic insights-logs-auditlogs"),
        "{text}"
    );

    let (code, text) = validate(&write("no-broker", "127.0.0.1:1", TOPIC));
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("FAILED  brokers 127.0.0.1:1: cannot reach them"),
        "{text}"
    );

    assert!(
        !dead.exists() && !dead.parent().unwrap().exists(),
        "validate created the dead-letter file"
    );
    assert!(
        !dir.path().join("state").exists(),
        "validate created the state folder"
    );
}
