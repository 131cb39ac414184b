//! End-to-end check of the Kafka source against a broker: produce Event Hub envelopes, consume
//! them with `KafkaSource` behind a minimal runtime (reports every batch durable at once), print
//! counts and records/s, and check that the group's committed offsets reached the end.
//!
//! ```text
//! cargo run --release -p entrawatch-ingest --features kafka --example kafka_e2e -- --mock
//! kafka_e2e --brokers 127.0.0.1:19092 --topic t --create 4 --produce 2000
//! kafka_e2e --brokers 127.0.0.1:19092 --topic t --consume --group g --expect-events 20400
//! ```
//!
//! `--mock` runs both halves against an in-process librdkafka mock cluster. Messages are
//! synthetic sign-in envelopes (`--records` per message, unique ids) with the project's real Event
//! Hub fixture envelopes mixed in (every tenth message). The consumer exits 1 when the count of
//! events differs from `--expect-events` or a committed offset is short of the end.

#[cfg(feature = "kafka")]
mod e2e {
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use entrawatch_ingest::metrics::SourceMetrics;
    use entrawatch_ingest::reader::{Item, ReadOptions, read_bytes};
    use entrawatch_ingest::source::{Committed, Source, SourceContext};
    use entrawatch_ingest::sources::kafka::{KafkaConfig, KafkaSource};
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    use rdkafka::client::DefaultClientContext;
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
    use rdkafka::{ClientConfig, Offset, TopicPartitionList};
    use serde_json::{Value, json};
    use tokio::sync::{mpsc, watch};

    const FIXTURES: [&[u8]; 3] = [
        include_bytes!("../tests/fixtures/derived/eventhub_envelope_signinlogs.json"),
        include_bytes!("../tests/fixtures/derived/eventhub_envelope_auditlogs.json"),
        include_bytes!("../tests/fixtures/quirks/eh_mixed_categories.json"),
    ];
    const SIGN_IN: &str = include_str!("../tests/fixtures/quirks/eh_signin_level_lowercase.jsonl");

    #[derive(Debug)]
    struct Args {
        mock: bool,
        brokers: Option<String>,
        topic: String,
        create: Option<i32>,
        produce: Option<usize>,
        records: usize,
        consume: bool,
        group: String,
        expect_events: Option<usize>,
        idle_secs: u64,
        baseline: bool,
    }

    fn args() -> Result<Args, String> {
        let mut a = Args {
            mock: false,
            brokers: None,
            topic: "entrawatch-e2e".into(),
            create: None,
            produce: None,
            records: 10,
            consume: false,
            group: "entrawatch-e2e".into(),
            expect_events: None,
            idle_secs: 5,
            baseline: false,
        };
        let mut it = std::env::args().skip(1);
        while let Some(flag) = it.next() {
            let mut value = || it.next().ok_or(format!("{flag} needs a value"));
            let num = |v: String| v.parse::<usize>().map_err(|e| format!("{v}: {e}"));
            match flag.as_str() {
                "--mock" => a.mock = true,
                "--brokers" => a.brokers = Some(value()?),
                "--topic" => a.topic = value()?,
                "--create" => a.create = Some(num(value()?)? as i32),
                "--produce" => a.produce = Some(num(value()?)?),
                "--records" => a.records = num(value()?)?,
                "--consume" => a.consume = true,
                "--group" => a.group = value()?,
                "--expect-events" => a.expect_events = Some(num(value()?)?),
                "--idle-secs" => a.idle_secs = num(value()?)? as u64,
                "--baseline" => a.baseline = true,
                other => return Err(format!("unknown argument {other}")),
            }
        }
        if a.mock == a.brokers.is_some() {
            return Err("give either --mock or --brokers HOST:PORT".into());
        }
        Ok(a)
    }

    /// Message `n`: a real fixture envelope every tenth message, else `records` sign-ins.
    fn message(n: usize, records: usize) -> Vec<u8> {
        if n % 10 == 9 {
            return FIXTURES[(n / 10) % FIXTURES.len()].to_vec();
        }
        let template: Value =
            serde_json::from_str(SIGN_IN.lines().next().expect("line")).expect("fixture json");
        let recs: Vec<Value> = (0..records)
            .map(|r| {
                let mut v = template.clone();
                v["properties"]["id"] = json!(format!("e2e-{n}-{r}"));
                v
            })
            .collect();
        serde_json::to_vec(&json!({ "records": recs })).expect("json")
    }

    fn events_in(payload: &[u8]) -> usize {
        let mut n = 0;
        read_bytes("count", payload, None, &ReadOptions::default(), &mut |i| {
            n += usize::from(matches!(i, Item::Event(_)));
        });
        n
    }

    async fn create(brokers: &str, topic: &str, partitions: i32) -> Result<(), String> {
        let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .create()
            .map_err(|e| e.to_string())?;
        let t = NewTopic::new(topic, partitions, TopicReplication::Fixed(1));
        let res = admin
            .create_topics([&t], &AdminOptions::new())
            .await
            .map_err(|e| e.to_string())?;
        for r in res {
            match r {
                Ok(_) => {}
                Err((t, rdkafka::types::RDKafkaErrorCode::TopicAlreadyExists)) => {
                    println!("topic {t} exists");
                }
                Err((t, e)) => return Err(format!("create {t}: {e}")),
            }
        }
        Ok(())
    }

    /// Produces `count` messages round-robin over the topic's partitions; returns the events in them.
    fn produce(brokers: &str, topic: &str, count: usize, records: usize) -> Result<usize, String> {
        let producer: BaseProducer = ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .set("linger.ms", "5")
            .set("message.max.bytes", "2000000")
            .create()
            .map_err(|e| e.to_string())?;
        let start = Instant::now();
        let mut events = 0;
        for n in 0..count {
            let payload = message(n, records);
            events += events_in(&payload);
            let key = format!("m{n}");
            let mut record = BaseRecord::to(topic).key(&key).payload(&payload);
            loop {
                match producer.send(record) {
                    Ok(()) => break,
                    Err((_, r)) => {
                        record = r;
                        producer.poll(Duration::from_millis(10));
                    }
                }
            }
            producer.poll(Duration::ZERO);
        }
        producer
            .flush(Duration::from_secs(120))
            .map_err(|e| format!("flush: {e}"))?;
        println!(
            "produced {count} messages ({events} events) in {:.2} s",
            start.elapsed().as_secs_f64()
        );
        Ok(events)
    }

    /// Consumes with `KafkaSource` until `expect` events arrived (or nothing came for
    /// `idle` after the last one); returns (events, seconds from the first batch to the last).
    async fn consume(
        brokers: &str,
        topic: &str,
        group: &str,
        expect: Option<usize>,
        idle: Duration,
    ) -> Result<(usize, f64), String> {
        let cfg: KafkaConfig = serde_json::from_value(json!({
            "name": "e2e", "brokers": brokers, "topics": [topic], "group_id": group,
            // A short batch wait so the last partial batch does not dominate the timing.
            "batch_wait_ms": 20,
        }))
        .map_err(|e| e.to_string())?;
        let source = KafkaSource::new(cfg).map_err(|e| e.to_string())?;
        let (out_tx, mut out_rx) = mpsc::channel(8);
        let (c_tx, c_rx) = mpsc::unbounded_channel();
        let (stop_tx, stop_rx) = watch::channel(false);
        let (ready_tx, mut ready_rx) = watch::channel(false);
        let ctx = SourceContext {
            name: Arc::from("e2e"),
            out: out_tx,
            committed: c_rx,
            resume: None,
            shutdown: stop_rx,
            ready: ready_tx,
            read: ReadOptions::default(),
            metrics: SourceMetrics::unregistered(),
        };
        let task = tokio::spawn(Box::new(source).run(ctx));
        tokio::time::timeout(Duration::from_secs(60), ready_rx.wait_for(|r| *r))
            .await
            .map_err(|_| "not joined within 60 s".to_owned())?
            .map_err(|e| e.to_string())?;
        println!("consumer joined group {group}");
        let (mut events, mut first, mut last) = (0usize, None, Instant::now());
        let hard_stop = Instant::now() + Duration::from_secs(600);
        loop {
            if expect.is_some_and(|e| events >= e && e > 0) || Instant::now() > hard_stop {
                break;
            }
            match tokio::time::timeout(idle, out_rx.recv()).await {
                Ok(Some(batch)) => {
                    first.get_or_insert_with(Instant::now);
                    last = Instant::now();
                    events += batch
                        .items
                        .iter()
                        .filter(|i| matches!(i, Item::Event(_)))
                        .count();
                    let _ = c_tx.send(Committed { seq: batch.seq });
                }
                Ok(None) => break,
                Err(_) => break, // idle
            }
        }
        stop_tx.send_replace(true);
        // Keep reporting while the source drains.
        let drain = tokio::spawn(async move {
            while let Some(b) = out_rx.recv().await {
                let _ = c_tx.send(Committed { seq: b.seq });
            }
        });
        let result = tokio::time::timeout(Duration::from_secs(60), task)
            .await
            .map_err(|_| "source did not stop within 60 s".to_owned())?
            .map_err(|e| e.to_string())?;
        drain.abort();
        result.map_err(|e| e.to_string())?;
        let secs = first.map_or(0.0, |f| last.duration_since(f).as_secs_f64());
        Ok((events, secs))
    }

    /// The parser alone on the same messages (one thread, no Kafka): the ceiling for one source.
    fn parse_only(count: usize, records: usize) {
        let payloads: Vec<Vec<u8>> = (0..count).map(|n| message(n, records)).collect();
        let start = Instant::now();
        let events: usize = payloads.iter().map(|p| events_in(p)).sum();
        let secs = start.elapsed().as_secs_f64();
        println!(
            "parse only (read_bytes, one thread): {events} events in {secs:.2} s = {:.0} records/s",
            events as f64 / secs.max(1e-9)
        );
    }

    /// A plain librdkafka consumer reading every partition from the start and parsing nothing:
    /// what the broker and client deliver without entrawatch (messages, bytes, seconds).
    fn baseline(brokers: &str, topic: &str, expect_messages: usize) -> Result<(), String> {
        use rdkafka::Message;
        let c: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .set("group.id", "entrawatch-e2e-baseline")
            .create()
            .map_err(|e| e.to_string())?;
        let md = c
            .fetch_metadata(Some(topic), Duration::from_secs(10))
            .map_err(|e| e.to_string())?;
        let partitions = md.topics().first().map_or(0, |t| t.partitions().len()) as i32;
        let mut tpl = TopicPartitionList::new();
        for p in 0..partitions {
            tpl.add_partition_offset(topic, p, Offset::Beginning)
                .map_err(|e| e.to_string())?;
        }
        c.assign(&tpl).map_err(|e| e.to_string())?;
        let (mut n, mut bytes, mut first) = (0usize, 0usize, None);
        let deadline = Instant::now() + Duration::from_secs(120);
        while n < expect_messages && Instant::now() < deadline {
            if let Some(Ok(m)) = c.poll(Duration::from_millis(100)) {
                first.get_or_insert_with(Instant::now);
                n += 1;
                bytes += m.payload().map_or(0, <[u8]>::len);
            }
        }
        let secs = first.map_or(0.0, |f: Instant| f.elapsed().as_secs_f64());
        println!(
            "baseline (plain consumer, no parsing): {n} messages, {:.1} MB in {secs:.2} s = {:.0} messages/s",
            bytes as f64 / 1e6,
            n as f64 / secs.max(1e-9)
        );
        Ok(())
    }

    /// Checks the group's committed offsets reached each partition's high watermark.
    fn committed_to_end(brokers: &str, topic: &str, group: &str) -> Result<(), String> {
        let c: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .set("group.id", group)
            .create()
            .map_err(|e| e.to_string())?;
        let md = c
            .fetch_metadata(Some(topic), Duration::from_secs(10))
            .map_err(|e| e.to_string())?;
        let partitions = md.topics().first().map_or(0, |t| t.partitions().len()) as i32;
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_range(topic, 0, partitions - 1);
        let committed = c
            .committed_offsets(tpl, Duration::from_secs(10))
            .map_err(|e| e.to_string())?;
        let mut short = Vec::new();
        for e in committed.elements() {
            let (_, high) = c
                .fetch_watermarks(topic, e.partition(), Duration::from_secs(10))
                .map_err(|e| e.to_string())?;
            let got = match e.offset() {
                Offset::Offset(o) => o,
                _ => 0,
            };
            println!(
                "partition {}: committed {got}, high watermark {high}",
                e.partition()
            );
            if got < high {
                short.push(e.partition());
            }
        }
        if short.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "committed offsets short of the end on partitions {short:?}"
            ))
        }
    }

    pub async fn main() -> Result<(), String> {
        let a = args()?;
        let mock = if a.mock {
            let m = rdkafka::mocking::MockCluster::new(1).map_err(|e| e.to_string())?;
            m.create_topic(&a.topic, 8, 1).map_err(|e| e.to_string())?;
            Some(m)
        } else {
            None
        };
        let brokers = match &mock {
            Some(m) => m.bootstrap_servers(),
            None => a.brokers.clone().expect("checked"),
        };
        if let Some(p) = a.create {
            create(&brokers, &a.topic, p).await?;
        }
        let mut expect = a.expect_events;
        if let Some(n) = a.produce.or(a.mock.then_some(1200)) {
            let b = brokers.clone();
            let (topic, records) = (a.topic.clone(), a.records);
            let events = tokio::task::spawn_blocking(move || produce(&b, &topic, n, records))
                .await
                .map_err(|e| e.to_string())??;
            expect = expect.or(Some(events));
        }
        if a.baseline {
            parse_only(a.produce.unwrap_or(1200), a.records);
            let (b, t, n) = (brokers.clone(), a.topic.clone(), a.produce.unwrap_or(1200));
            tokio::task::spawn_blocking(move || baseline(&b, &t, n))
                .await
                .map_err(|e| e.to_string())??;
        }
        if a.consume || a.mock {
            let idle = Duration::from_secs(a.idle_secs);
            let (events, secs) = consume(&brokers, &a.topic, &a.group, expect, idle).await?;
            let rate = if secs > 0.0 {
                events as f64 / secs
            } else {
                0.0
            };
            println!(
                "consumed {events} events in {secs:.2} s = {rate:.0} records/s ({} build)",
                if cfg!(debug_assertions) {
                    "debug"
                } else {
                    "release"
                }
            );
            let (b, t, g) = (brokers.clone(), a.topic.clone(), a.group.clone());
            tokio::task::spawn_blocking(move || committed_to_end(&b, &t, &g))
                .await
                .map_err(|e| e.to_string())??;
            if let Some(e) = expect
                && e != events
            {
                return Err(format!("expected {e} events, consumed {events}"));
            }
            println!("E2E OK");
        }
        Ok(())
    }
}

#[cfg(feature = "kafka")]
#[tokio::main]
async fn main() {
    if let Err(e) = e2e::main().await {
        eprintln!("kafka_e2e: {e}");
        std::process::exit(1);
    }
}

#[cfg(not(feature = "kafka"))]
fn main() {
    eprintln!("kafka_e2e: build with --features kafka");
    std::process::exit(2);
}
