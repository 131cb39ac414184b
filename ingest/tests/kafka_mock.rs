//! The Kafka source against librdkafka's mock cluster (a real Kafka-protocol broker in process, on
//! loopback): Event Hub fixtures end to end, poison messages, injected broker errors, a rebalance
//! mid-stream, a consumer killed mid-batch, resuming from a snapshot position, and a throughput
//! figure. Every run checks that each message was processed at least once and that no committed
//! offset ever passed a message that was not durable at the time (sampled while running, and at
//! the end with a fresh consumer's `committed_offsets`).
//!
//! Needs feature `kafka`: `cargo test -p entrawatch-ingest --features kafka --test kafka_mock`.

#![cfg(feature = "kafka")]

mod kafka_support;

use std::time::{Duration, Instant};

use entrawatch_ingest::reader::{Item, ReadOptions, read_bytes};
use kafka_support::*;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Headers;
use rdkafka::mocking::{MockCluster, MockCoordinator};
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use serde_json::json;

fn fixture(rel: &str) -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Sum of a counter vector's values for one label value in the first position.
fn counter_total(c: &prometheus::IntCounterVec) -> u64 {
    use prometheus::core::Collector;
    c.collect()
        .iter()
        .flat_map(|f| f.get_metric())
        .map(|m| m.get_counter().get_value() as u64)
        .sum()
}

#[tokio::test] // a current-thread runtime: the source must not need a second worker
async fn event_hub_fixtures_end_to_end() {
    let mock = MockCluster::new(1).unwrap();
    let topic = unique("insights-logs-signinlogs");
    mock.create_topic(&topic, 1, 1).unwrap();
    let bootstrap = mock.bootstrap_servers();

    let mut payloads = Vec::new();
    for f in [
        "derived/eventhub_envelope_signinlogs.json",
        "derived/eventhub_envelope_auditlogs.json",
        "quirks/eh_mixed_categories.json",
        "quirks/eh_audit_roles_string.json",
        "quirks/eh_signin_us_locale_time.json",
        "real/entra-docs/eventhub_signinlogs_record.json",
    ] {
        payloads.push(fixture(f));
    }
    for f in [
        "real/datadog-integrations-core/azure_activedirectory_eventhub_records.jsonl",
        "quirks/eh_signin_level_lowercase.jsonl",
    ] {
        let text = fixture(f);
        for line in text
            .split(|b| *b == b'\n')
            .filter(|l| !l.trim_ascii().is_empty())
        {
            payloads.push(line.to_vec());
        }
    }
    // The oracle: what `replay` makes of each message on its own.
    let mut expected = Vec::new();
    let (mut skipped, mut rejected) = (0u64, 0u64);
    for p in &payloads {
        read_bytes(
            "oracle",
            p,
            None,
            &ReadOptions::default(),
            &mut |i| match i {
                Item::Event(e) => expected.push((
                    e.meta.tenant_id.to_string(),
                    e.kind().as_str().to_owned(),
                    e.meta.id.to_string(),
                )),
                Item::Skipped { .. } => skipped += 1,
                Item::Rejected(_) => rejected += 1,
                Item::EmptyFile { .. } => {}
            },
        );
    }
    assert!(
        expected.len() >= 15 && skipped >= 2,
        "{expected:?} {skipped}"
    );

    let producer = Producer::new(&bootstrap);
    for (n, p) in payloads.iter().enumerate() {
        producer.send(&topic, Some(0), n, p);
    }
    producer.flush();

    let group = unique("g");
    let ledger = Ledger::new(1);
    let cfg = source_config("eh", &bootstrap, &topic, &group);
    let mut member = Member::start(cfg, ledger.clone(), RuntimeOpts::default(), None);
    member.joined().await;
    let want = expected.len();
    wait_until(
        &ledger,
        Duration::from_secs(30),
        "every fixture event",
        |l| {
            l.events >= want
                && l.positions
                    .get("eh")
                    .is_some_and(|p| p[format!("{topic}/0")] == json!(payloads.len()))
        },
    )
    .await;
    // The lag gauges follow: everything read and committed leaves no lag.
    let n = payloads.len() as i64;
    let deadline = Instant::now() + Duration::from_secs(15);
    while by_partition(&member.metrics.kafka_committed).get("0") != Some(&n)
        || by_partition(&member.metrics.kafka_lag).get("0") != Some(&0)
    {
        assert!(
            Instant::now() < deadline,
            "lag gauges: committed {:?}, lag {:?}",
            by_partition(&member.metrics.kafka_committed),
            by_partition(&member.metrics.kafka_lag)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let metrics = member.metrics.clone();
    member.stop().await.expect("clean stop");

    let l = ledger.lock().unwrap();
    let mut got = l.keys.clone();
    got.sort();
    expected.sort();
    assert_eq!(
        got, expected,
        "the source yields exactly what replay yields"
    );
    assert_eq!(l.other_items, 0, "only events are handed on");
    for tenant in [
        "4d3bac44-0230-4732-9e70-cc00736f0a97",
        "11111111-aaaa-4aaa-8aaa-111111111111",
        "22222222-bbbb-4bbb-8bbb-222222222222",
    ] {
        assert!(l.tenants.contains(tenant), "{tenant} in {:?}", l.tenants);
    }
    assert_eq!(counter_total(&metrics.events_received), want as u64);
    assert_eq!(counter_total(&metrics.records_skipped), skipped);
    assert_eq!(counter_total(&metrics.records_rejected), rejected);
    let view = GroupView::new(&bootstrap, &group, &topic, 1);
    assert_eq!(
        view.committed().unwrap()[&0],
        Some(payloads.len() as i64),
        "committed to the end after a graceful stop"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_messages_are_dead_lettered_and_the_partition_continues() {
    let mock = MockCluster::new(1).unwrap();
    let topic = unique("signins");
    let dl_topic = format!("{topic}-dead");
    mock.create_topic(&topic, 1, 1).unwrap();
    mock.create_topic(&dl_topic, 1, 1).unwrap();
    let bootstrap = mock.bootstrap_servers();
    let mixed = serde_json::to_vec(&json!({"records": [sign_in("m4-r0"), 42]})).unwrap();
    let messages: Vec<Vec<u8>> = vec![
        envelope(0, 1),
        br#"{"records": [ {"category": "SignInLogs", "time": "#.to_vec(),
        envelope(2, 1),
        Vec::new(),
        mixed,
        b"\x1f\x8b\x08\x00compressed".to_vec(),
        envelope(6, 1),
    ];
    let producer = Producer::new(&bootstrap);
    for (n, m) in messages.iter().enumerate() {
        producer.send(&topic, Some(0), n, m);
    }
    producer.flush();

    let dir = tempfile::tempdir().unwrap();
    let dl_file = dir.path().join("dead.jsonl");
    let group = unique("g");
    let mut cfg = source_config("poison", &bootstrap, &topic, &group);
    cfg.dead_letter_file = Some(dl_file.clone());
    cfg.dead_letter_topic = Some(dl_topic.clone());
    let ledger = Ledger::new(1);
    let mut member = Member::start(cfg, ledger.clone(), RuntimeOpts::default(), None);
    member.joined().await;
    wait_until(&ledger, Duration::from_secs(30), "the good messages", |l| {
        [0, 2, 4, 6].iter().all(|m| l.durable_at.contains_key(m))
    })
    .await;
    let metrics = member.metrics.clone();
    member.stop().await.expect("clean stop");

    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&dl_file)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let offsets: Vec<i64> = lines
        .iter()
        .map(|l| l["offset"].as_i64().unwrap())
        .collect();
    assert_eq!(offsets, vec![1, 3, 4, 5], "{lines:#?}");
    for l in &lines {
        assert_eq!(l["topic"], json!(topic));
        assert_eq!(l["partition"], json!(0));
        assert_eq!(l["source"], json!("poison"));
        assert!(!l["reason"].as_str().unwrap().is_empty());
    }
    assert!(
        lines[0]["reason"].as_str().unwrap().contains("truncated"),
        "{}",
        lines[0]
    );
    assert!(lines[0]["raw"].as_str().unwrap().contains("SignInLogs"));
    assert!(lines[1]["reason"].as_str().unwrap().contains("empty"));
    assert_eq!(
        lines[2]["record"],
        json!(2),
        "the bad record of a good message"
    );
    assert!(
        lines[2]["reason"]
            .as_str()
            .unwrap()
            .contains("not a JSON object")
    );
    assert!(lines[3]["reason"].as_str().unwrap().contains("gzip"));
    assert_eq!(counter_total(&metrics.records_rejected), 4);

    let view = GroupView::new(&bootstrap, &group, &topic, 1);
    assert_eq!(
        view.committed().unwrap()[&0],
        Some(7),
        "nothing blocked the partition"
    );

    // The dead-letter topic holds the raw values, keyed by where they came from.
    let reader: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("group.id", unique("dl-reader"))
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(&dl_topic, 0, Offset::Beginning)
        .unwrap();
    reader.assign(&tpl).unwrap();
    let mut keys = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while keys.len() < 4 && Instant::now() < deadline {
        if let Some(Ok(m)) = reader.poll(Duration::from_millis(200)) {
            let reason = m
                .headers()
                .and_then(|h| h.iter().find(|h| h.key == "entrawatch-reason"))
                .and_then(|h| h.value.map(|v| String::from_utf8_lossy(v).into_owned()));
            assert!(reason.is_some_and(|r| !r.is_empty()));
            keys.push(String::from_utf8_lossy(m.key().unwrap()).into_owned());
        }
    }
    let want: Vec<String> = [1, 3, 4, 5]
        .iter()
        .map(|o| format!("{topic}/0@{o}"))
        .collect();
    assert_eq!(keys, want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_errors_mid_stream_lose_nothing() {
    let mock = MockCluster::new(3).unwrap();
    let topic = unique("signins");
    mock.create_topic(&topic, 3, 1).unwrap();
    for p in 0..3 {
        mock.partition_leader(&topic, p, Some(p + 1)).unwrap();
    }
    let group = unique("g");
    mock.coordinator(MockCoordinator::Group(group.clone()), 1)
        .unwrap();
    let bootstrap = mock.bootstrap_servers();
    let producer = Producer::new(&bootstrap);
    let total = 450;
    for n in 0..150 {
        producer.send(&topic, Some((n % 3) as i32), n, &envelope(n, 2));
    }
    producer.flush();

    let checker = Checker::start(&bootstrap, &group, &topic, 3);
    let ledger = Ledger::new(2);
    // A slow pipeline too: the out channel fills, so the source pauses and resumes partitions.
    let opts = RuntimeOpts {
        delay: Duration::from_millis(10),
        capacity: 1,
        report_at_most: None,
        take_delay: Duration::from_millis(15),
    };
    let mut member = Member::start(
        source_config("errors", &bootstrap, &topic, &group),
        ledger.clone(),
        opts,
        None,
    );
    member.joined().await;
    wait_until(&ledger, Duration::from_secs(30), "a first part", |l| {
        l.durable_count() >= 30
    })
    .await;

    mock.request_errors(
        RDKafkaApiKey::Fetch,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION; 4],
    );
    mock.request_errors(
        RDKafkaApiKey::OffsetCommit,
        &[
            RDKafkaRespErr::RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT,
            RDKafkaRespErr::RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE,
            RDKafkaRespErr::RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT,
        ],
    );
    // The leader of partition 1 goes away while more is produced, then comes back.
    mock.broker_down(2).unwrap();
    for n in 150..300 {
        producer.send(&topic, Some((n % 3) as i32), n, &envelope(n, 2));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    mock.broker_up(2).unwrap();
    // The group coordinator goes away briefly.
    mock.broker_down(1).unwrap();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    mock.broker_up(1).unwrap();
    for n in 300..total {
        producer.send(&topic, Some((n % 3) as i32), n, &envelope(n, 2));
    }
    tokio::task::block_in_place(|| producer.flush());
    wait_for_every_message(&ledger, &producer, total, Duration::from_secs(30)).await;
    // The commits refused above are retried while the member runs: everything durable gets
    // committed without waiting for the stop.
    let view = GroupView::new(&bootstrap, &group, &topic, 3);
    wait_committed_to_end(&view, Duration::from_secs(30)).await;
    let requests = member.metrics.requests.clone();
    member.stop().await.expect("clean stop");

    let at = producer.at();
    let l = ledger.lock().unwrap();
    check_final(&l, &at, &view, total);
    let sampled = checker.finish(&l, &at);
    assert!(sampled > 0, "the checker saw commits while running");
    assert!(l.taken_when_full > 0, "the pipeline never pushed back");
    eprintln!(
        "broker errors: {total} messages, {} record copies, {} error reports counted, \
         {} of {} batches taken from a full channel",
        l.received.values().sum::<usize>(),
        counter_total(&requests),
        l.taken_when_full,
        l.batches
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rebalance_between_two_consumers_mid_stream() {
    let mock = MockCluster::new(3).unwrap();
    let topic = unique("signins");
    mock.create_topic(&topic, 4, 1).unwrap();
    let bootstrap = mock.bootstrap_servers();
    let group = unique("g");
    // Three records per message and five items per batch: messages straddle batches. The stream
    // keeps flowing until the second member has read, then stops (at most 1200 messages, well
    // under the mock's 5 MB per partition).
    let producer = std::sync::Arc::new(Producer::new(&bootstrap));
    for n in 0..100 {
        producer.send(&topic, Some((n % 4) as i32), n, &envelope(n, 3));
    }
    producer.flush();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let background = {
        let (producer, topic, stop) = (producer.clone(), topic.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut n = 100;
            while n < 1200 && !stop.load(std::sync::atomic::Ordering::SeqCst) {
                producer.send(&topic, Some((n % 4) as i32), n, &envelope(n, 3));
                n += 1;
                std::thread::sleep(Duration::from_millis(20));
            }
            producer.flush();
            n
        })
    };

    let checker = Checker::start(&bootstrap, &group, &topic, 4);
    let ledger = Ledger::new(3);
    let opts = RuntimeOpts {
        delay: Duration::from_millis(30),
        capacity: 1,
        report_at_most: None,
        take_delay: Duration::ZERO,
    };
    let config = |name: &str| {
        let mut c = source_config(name, &bootstrap, &topic, &group);
        c.batch_max = 5;
        c
    };
    let mut a = Member::start(config("a"), ledger.clone(), opts.clone(), None);
    a.joined().await;
    wait_until(
        &ledger,
        Duration::from_secs(30),
        "a's first messages",
        |l| l.durable_count() >= 40,
    )
    .await;
    let mut b = Member::start(config("b"), ledger.clone(), opts, None);
    b.joined().await;
    wait_until(
        &ledger,
        Duration::from_secs(60),
        "b reading moved partitions",
        |l| l.by_member.get("b").is_some_and(|n| *n >= 60),
    )
    .await;
    // Two members share the group: the newcomer says it holds only some of the partitions (the
    // service logs it, and `/readyz` and a rule report it: detection needs them all in one place).
    let b_held = b.metrics.kafka_assigned.with_label_values(&["b"]).get();
    let b_total = b.metrics.kafka_partitions.with_label_values(&["b"]).get();
    assert_eq!(b_total, 4, "b read the topic's partition count");
    assert!(
        b_held > 0 && b_held < 4,
        "b holds {b_held} of 4 partitions while a holds the rest"
    );
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let total = tokio::task::block_in_place(|| background.join().unwrap());
    // The backlog at this point is most of the stream (about 800 of 1,000 messages in a quiet run)
    // and the members take 5 items per 30 ms: a CI run once needed more than 50 s here, so the
    // wait is bounded by a lack of progress, not by the drain's length.
    wait_for_every_message(&ledger, &producer, total, Duration::from_secs(30)).await;
    let view = GroupView::new(&bootstrap, &group, &topic, 4);
    wait_committed_to_end(&view, Duration::from_secs(30)).await;
    let a_events_before_stop = ledger.lock().unwrap().by_member.get("a").copied();
    a.stop().await.expect("a stops cleanly");
    // Let the group settle before b leaves too: the mock refuses commits while a rebalance is
    // pending (it waits session.timeout.ms - 1 s for members after a leave). b's lag gauges show
    // when it owns all four partitions.
    let deadline = Instant::now() + Duration::from_secs(30);
    while by_partition(&b.metrics.kafka_lag).len() < 4 {
        assert!(Instant::now() < deadline, "b never got a's partitions");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    b.stop().await.expect("b stops cleanly");

    let at = producer.at();
    let l = ledger.lock().unwrap();
    check_final(&l, &at, &view, total);
    let sampled = checker.finish(&l, &at);
    assert!(sampled > 0, "the checker saw commits while running");
    let b_partitions = l
        .positions
        .get("b")
        .and_then(|p| p.as_object())
        .map_or(0, |p| p.len());
    assert!(
        b_partitions > 0,
        "partitions moved to the second member: {:?}",
        l.positions
    );
    assert!(a_events_before_stop.is_some_and(|n| n > 0));
    let copies: usize = l.received.values().sum();
    eprintln!(
        "rebalance: {total} messages x 3 records, {copies} record copies received ({} repeated), \
         a read {:?} events, b read {:?} events from {b_partitions} partitions",
        copies - total * 3,
        l.by_member.get("a"),
        l.by_member.get("b"),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_consumer_mid_batch_then_restarted() {
    let mock = MockCluster::new(1).unwrap();
    let topic = unique("signins");
    mock.create_topic(&topic, 2, 1).unwrap();
    let bootstrap = mock.bootstrap_servers();
    let group = unique("g");
    let total = 200;
    let producer = Producer::new(&bootstrap);
    for n in 0..total {
        producer.send(&topic, Some((n % 2) as i32), n, &envelope(n, 1));
    }
    producer.flush();
    let at = producer.at();

    let checker = Checker::start(&bootstrap, &group, &topic, 2);
    let view = GroupView::new(&bootstrap, &group, &topic, 2);
    let ledger = Ledger::new(1);
    // The first pipeline makes three batches durable and then never finishes another.
    let stuck = RuntimeOpts {
        delay: Duration::ZERO,
        capacity: 4,
        report_at_most: Some(3),
        take_delay: Duration::ZERO,
    };
    let mut cfg = source_config("first", &bootstrap, &topic, &group);
    cfg.batch_max = 10;
    let mut first = Member::start(cfg, ledger.clone(), stuck, None);
    first.joined().await;
    wait_until(
        &ledger,
        Duration::from_secs(30),
        "more received than durable",
        |l| l.received.len() >= 50 && l.durable_count() >= 10,
    )
    .await;
    // Wait (bounded) until the durable part is committed, so the kill happens past a commit.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let c = tokio::task::block_in_place(|| view.committed()).unwrap_or_default();
        if c.values().any(|o| o.is_some_and(|o| o > 0)) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "nothing committed before the kill"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The lag gauges show what the stuck pipeline left uncommitted: per partition, high
    // watermark minus the committed offset (or minus the start when nothing is committed).
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let lag = by_partition(&first.metrics.kafka_lag);
        let committed = by_partition(&first.metrics.kafka_committed);
        let lag_sum: i64 = lag.values().sum();
        if lag.len() == 2
            && lag_sum > 0
            && lag_sum + committed.values().sum::<i64>() == total as i64
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "lag {lag:?}, committed {committed:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (received_before, durable_before) = {
        let l = ledger.lock().unwrap();
        (l.received.len(), l.durable_count())
    };
    first.kill().await;

    let killed_at = Instant::now();
    let committed = tokio::task::block_in_place(|| view.committed()).unwrap();
    {
        let l = ledger.lock().unwrap();
        let wm = l.watermarks_at(&at, killed_at);
        for (p, c) in &committed {
            let w = wm.get(p).copied().unwrap_or(0);
            assert!(
                c.is_none_or(|c| c <= w),
                "partition {p}: committed {c:?} past durable {w}"
            );
        }
    }
    let cfg = source_config("second", &bootstrap, &topic, &group);
    let mut second = Member::start(cfg, ledger.clone(), RuntimeOpts::default(), None);
    second.joined().await;
    wait_until(&ledger, Duration::from_secs(40), "every message", |l| {
        l.durable_count() >= total
    })
    .await;
    second.stop().await.expect("clean stop");

    let l = ledger.lock().unwrap();
    check_final(&l, &at, &view, total);
    assert!(checker.finish(&l, &at) > 0);
    let copies: usize = l.received.values().sum();
    eprintln!(
        "kill test: {total} messages; before the kill {received_before} received, {durable_before} durable, \
         committed {committed:?}; after restart {copies} copies in all ({} read twice)",
        copies - total
    );
    assert!(
        copies > total,
        "the restarted consumer re-read what was not durable"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_position_seeks_behind_the_group_without_moving_it_back() {
    let mock = MockCluster::new(1).unwrap();
    let topic = unique("signins");
    mock.create_topic(&topic, 1, 1).unwrap();
    let bootstrap = mock.bootstrap_servers();
    let group = unique("g");
    let producer = Producer::new(&bootstrap);
    for n in 0..20 {
        producer.send(&topic, Some(0), n, &envelope(n, 1));
    }
    producer.flush();
    let ledger = Ledger::new(1);
    let mut first = Member::start(
        source_config("first", &bootstrap, &topic, &group),
        ledger.clone(),
        RuntimeOpts::default(),
        None,
    );
    first.joined().await;
    wait_until(&ledger, Duration::from_secs(30), "all", |l| {
        l.durable_count() >= 20
    })
    .await;
    first.stop().await.unwrap();

    let resume = json!({ format!("{topic}/0"): 5, "other-topic/0": 1 });
    let mut again = Member::start(
        source_config("again", &bootstrap, &topic, &group),
        ledger.clone(),
        RuntimeOpts::default(),
        Some(resume),
    );
    again.joined().await;
    wait_until(&ledger, Duration::from_secs(30), "the replay", |l| {
        (5..20).all(|m| l.received.get(&m) == Some(&2))
    })
    .await;
    // Let a commit interval pass: a replay must not move the group's offset back.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    again.stop().await.unwrap();
    let l = ledger.lock().unwrap();
    assert!(
        (0..5).all(|m| l.received.get(&m) == Some(&1)),
        "{:?}",
        l.received
    );
    let view = GroupView::new(&bootstrap, &group, &topic, 1);
    assert_eq!(view.committed().unwrap()[&0], Some(20));
    assert_eq!(l.positions["again"][format!("{topic}/0")], json!(20));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throughput_against_the_mock_cluster() {
    let mock = MockCluster::new(1).unwrap();
    let topic = unique("signins");
    // The mock keeps 5 MB per partition: 150 envelopes of about 19 KB each fit.
    let partitions = 8;
    mock.create_topic(&topic, partitions, 1).unwrap();
    let bootstrap = mock.bootstrap_servers();
    let (messages, per) = (1200, 10);
    let producer = Producer::new(&bootstrap);
    for n in 0..messages {
        producer.send(&topic, Some(n as i32 % partitions), n, &envelope(n, per));
    }
    producer.flush();
    let ledger = Ledger::new(per);
    let group = unique("g");
    let mut cfg = source_config("bench", &bootstrap, &topic, &group);
    cfg.batch_max = 500;
    cfg.batch_wait_ms = 200;
    let opts = RuntimeOpts {
        capacity: 8,
        ..RuntimeOpts::default()
    };
    let mut member = Member::start(cfg, ledger.clone(), opts, None);
    member.joined().await;
    let start = Instant::now();
    // A bound, not a timing: the figure is printed below.
    wait_until(&ledger, Duration::from_secs(180), "every record", |l| {
        l.events >= messages * per
    })
    .await;
    let elapsed = start.elapsed();
    member.stop().await.unwrap();
    let view = GroupView::new(&bootstrap, &group, &topic, partitions);
    check_final(&ledger.lock().unwrap(), &producer.at(), &view, messages);
    let records = (messages * per) as f64;
    eprintln!(
        "throughput (mock cluster, {} profile): {} records in {} messages in {:.2} s = {:.0} records/s",
        if cfg!(debug_assertions) {
            "test"
        } else {
            "release"
        },
        messages * per,
        messages,
        elapsed.as_secs_f64(),
        records / elapsed.as_secs_f64()
    );
}
