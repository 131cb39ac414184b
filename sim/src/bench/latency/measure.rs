//! The latency run itself: the mock broker, the receiver and the service started, the producer
//! and its delivery reports, the first probe, warm-up and the sustained phase at a steady rate, the
//! drain, the service's figures and its stop; then each probe's POST matched to the moment the
//! broker confirmed it. Every wait here is bounded by one of the durations below.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use chrono::Utc;
use entrawatch_ingest::sources::kafka::{DEFAULT_BATCH_MAX, DEFAULT_BATCH_WAIT_MS};
use rdkafka::ClientConfig;
use rdkafka::client::ClientContext;
use rdkafka::config::FromClientConfigAndContext as _;
use rdkafka::error::KafkaError;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::ThreadedProducer;
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer as _, ProducerContext};
use rdkafka::types::RDKafkaErrorCode;
use serde_json::Value;

use super::receiver::Receiver;
use super::report::{
    Goal, HistogramSummary, LatencyReport, Load, Probes, ServiceFigures, quantiles,
};
use super::service::{self, Histogram, ServiceChild, Settings};
use super::{LatencyArgs, records};
use crate::LoadConfig;

/// The topic the service reads.
const TOPIC: &str = "entra-signins";
/// Background records per Kafka message (an Event Hub envelope).
const RECORDS_PER_MESSAGE: u64 = 10;
/// The producer loop's period.
const TICK: Duration = Duration::from_millis(5);
/// How long the service may take to answer `/readyz`, and the first probe to come through.
const READY_WAIT: Duration = Duration::from_secs(60);
/// How long the last probes may take after the sustained phase.
const DRAIN_WAIT: Duration = Duration::from_secs(30);
/// How long the producer may stay blocked on a full queue, and may take to flush.
const PRODUCE_WAIT: Duration = Duration::from_secs(30);
/// The goal for p99 from arrival at the source to the webhook POST, at sustained load (issue 22;
/// issue 9 had asked for 250 ms).
const GOAL_P99_MS: f64 = 50.0;
/// Raised webhook limits, so that the token bucket is not what is measured (both are the
/// destination's maximum).
const WEBHOOK_RATE: f64 = 1000.0;
const WEBHOOK_BURST: u32 = 1000;
/// The service's `shutdown_grace_secs` here, and how much longer its stop may take.
const SHUTDOWN_GRACE_SECS: u64 = 20;
const STOP_MARGIN: Duration = Duration::from_secs(15);
/// How often the service writes a snapshot (and so acknowledges to Kafka): its default.
const SNAPSHOT_INTERVAL_SECS: u64 = 30;

/// What the producer's delivery reports say, filled on librdkafka's polling thread.
#[derive(Debug, Default)]
struct Acks {
    /// Probe index to the moment its delivery was confirmed, or the error.
    probes: Mutex<HashMap<usize, Result<Instant, String>>>,
    background_failed: AtomicU64,
    first_error: Mutex<Option<String>>,
}

/// The producer's context: notes delivery reports. The opaque is 0 for background messages and
/// the probe index plus one for probes.
struct Reports(Arc<Acks>);

impl ClientContext for Reports {}

impl ProducerContext for Reports {
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, opaque: usize) {
        let at = Instant::now();
        let outcome = match result {
            Ok(_) => Ok(at),
            Err((e, _)) => {
                let mut first = self.0.first_error.lock().expect("acks lock");
                first.get_or_insert_with(|| e.to_string());
                Err(e.to_string())
            }
        };
        match opaque.checked_sub(1) {
            None => {
                if outcome.is_err() {
                    self.0.background_failed.fetch_add(1, Ordering::Relaxed);
                }
            }
            Some(probe) => {
                self.0
                    .probes
                    .lock()
                    .expect("acks lock")
                    .insert(probe, outcome);
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    First,
    Warmup,
    Sustained,
}

#[derive(Debug)]
struct Probe {
    stage: Stage,
    sent_at: Instant,
    posted_at: Option<Instant>,
}

/// The load generator and what it has seen.
struct Run {
    producer: ThreadedProducer<Reports>,
    acks: Arc<Acks>,
    generator: records::Generator,
    partitions: i32,
    messages: u64,
    records: u64,
    record_bytes: u64,
    queue_full_waits: u64,
    probes: Vec<Probe>,
    probe_ids: HashMap<String, usize>,
    seen_posts: usize,
    repeated_posts: u64,
    unexpected_alerts: u64,
    unreadable_posts: u64,
}

impl Run {
    /// Produces one message; waits (bounded) while the producer's queue is full.
    fn send(&mut self, payload: &str, opaque: usize) -> anyhow::Result<()> {
        let partition = (self.messages % self.partitions as u64) as i32;
        let started = Instant::now();
        loop {
            let record = BaseRecord::<str, str, usize>::with_opaque_to(TOPIC, opaque)
                .partition(partition)
                .payload(payload);
            match self.producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                    if started.elapsed() > PRODUCE_WAIT {
                        bail!("the producer's queue stayed full for {PRODUCE_WAIT:?}");
                    }
                    self.queue_full_waits += 1;
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err((e, _)) => bail!("cannot produce to the mock broker: {e}"),
            }
        }
        self.messages += 1;
        self.record_bytes += payload.len() as u64;
        Ok(())
    }

    /// Produces `n` background records in one envelope.
    fn background(&mut self, n: u64, buf: &mut String) -> anyhow::Result<()> {
        buf.clear();
        buf.push_str(r#"{"records":["#);
        for i in 0..n {
            if i > 0 {
                buf.push(',');
            }
            self.generator.background(Utc::now(), buf);
        }
        buf.push_str("]}");
        let payload = std::mem::take(buf);
        let sent = self.send(&payload, 0);
        *buf = payload;
        self.records += n;
        sent
    }

    /// Produces the next probe, alone in its envelope.
    fn probe(&mut self, stage: Stage, buf: &mut String) -> anyhow::Result<()> {
        let k = self.probes.len();
        buf.clear();
        buf.push_str(r#"{"records":["#);
        let id = self.generator.probe(k as u64, Utc::now(), buf);
        buf.push_str("]}");
        let payload = std::mem::take(buf);
        let sent_at = Instant::now();
        let sent = self.send(&payload, k + 1);
        *buf = payload;
        sent?;
        self.records += 1;
        self.probe_ids.insert(id, k);
        self.probes.push(Probe {
            stage,
            sent_at,
            posted_at: None,
        });
        Ok(())
    }

    /// Matches the POSTs received since the last call to their probes.
    fn collect(&mut self, receiver: &Receiver) {
        let posts = receiver.since(self.seen_posts);
        self.seen_posts += posts.len();
        for post in posts {
            let Ok(body) = serde_json::from_slice::<Value>(&post.body) else {
                self.unreadable_posts += 1;
                continue;
            };
            let Some(alerts) = body["alerts"].as_array() else {
                self.unreadable_posts += 1;
                continue;
            };
            for alert in alerts {
                let probe = alert["event_ids"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .find_map(|id| self.probe_ids.get(id).copied());
                match probe {
                    Some(k) => match &mut self.probes[k].posted_at {
                        Some(_) => self.repeated_posts += 1,
                        slot @ None => *slot = Some(post.at),
                    },
                    None => self.unexpected_alerts += 1,
                }
            }
        }
    }

    /// Whether every probe of `stage` the broker accepted has been posted.
    fn all_posted(&self, stage: Stage) -> bool {
        let acks = self.acks.probes.lock().expect("acks lock");
        self.probes.iter().enumerate().all(|(k, p)| {
            p.stage != stage || p.posted_at.is_some() || matches!(acks.get(&k), Some(Err(_)))
        })
    }
}

pub(super) fn measure(
    args: &LatencyArgs,
    dir: &std::path::Path,
    load: &LoadConfig,
) -> anyhow::Result<LatencyReport> {
    let mock = MockCluster::new(1).context("cannot start the mock Kafka broker")?;
    mock.create_topic(TOPIC, args.partitions, 1)
        .with_context(|| format!("cannot create the topic {TOPIC} on the mock broker"))?;
    let bootstrap = mock.bootstrap_servers();
    let receiver = Receiver::start()?;
    let batch_wait_ms = args.batch_wait_ms.unwrap_or(DEFAULT_BATCH_WAIT_MS);
    let settings = Settings {
        topic: TOPIC.to_owned(),
        partitions: args.partitions,
        batch_max: DEFAULT_BATCH_MAX,
        batch_wait_ms,
        batch_wait_is_default: batch_wait_ms == DEFAULT_BATCH_WAIT_MS,
        fetch_wait_max_ms: args.fetch_wait_ms,
        group_wait_secs: 0,
        webhook_rate_per_sec: WEBHOOK_RATE,
        webhook_burst: WEBHOOK_BURST,
        snapshot_interval_secs: SNAPSHOT_INTERVAL_SECS,
        shutdown_grace_secs: SHUTDOWN_GRACE_SECS,
        // The pipeline's own latency: the probes' records are in time order in each partition,
        // so no ordering slack is needed (a deployment's bound adds to what is measured here).
        out_of_order_secs: 0,
    };
    let admin = service::free_loopback()?;
    let config = service::write_config(dir, &bootstrap, admin, &settings, load)?;
    let acks = Arc::new(Acks::default());
    let producer = ThreadedProducer::from_config_and_context(
        ClientConfig::new()
            .set("bootstrap.servers", &bootstrap)
            .set("linger.ms", "1")
            .set("message.max.bytes", "10000000"),
        Reports(Arc::clone(&acks)),
    )
    .context("cannot create the Kafka producer")?;

    eprintln!(
        "entrawatch bench --latency: broker {bootstrap}, receiver {}, service admin {admin}",
        receiver.addr
    );
    let mut child = ServiceChild::spawn(&config, admin, &dir.join("service.log"), &receiver.url())?;
    child.wait_ready(READY_WAIT)?;

    let run_id = Utc::now().timestamp_nanos_opt().unwrap_or_default() as u64
        ^ u64::from(std::process::id()).rotate_left(32);
    let mut run = Run {
        producer,
        acks: Arc::clone(&acks),
        generator: records::Generator::new(run_id),
        partitions: args.partitions,
        messages: 0,
        records: 0,
        record_bytes: 0,
        queue_full_waits: 0,
        probes: Vec::new(),
        probe_ids: HashMap::new(),
        seen_posts: 0,
        repeated_posts: 0,
        unexpected_alerts: 0,
        unreadable_posts: 0,
    };
    let mut buf = String::with_capacity(64 * 1024);

    // The whole path works before load starts: the consumer has joined its group and the
    // receiver is reached.
    eprintln!("entrawatch bench --latency: first probe");
    run.probe(Stage::First, &mut buf)?;
    let deadline = Instant::now() + READY_WAIT;
    while !run.all_posted(Stage::First) {
        if Instant::now() > deadline {
            bail!(
                "the first probe was not posted within {READY_WAIT:?}; the service log ends:\n{}",
                child.log_tail()
            );
        }
        child.check_alive()?;
        std::thread::sleep(Duration::from_millis(20));
        run.collect(&receiver);
    }
    if let Some(Err(e)) = acks.probes.lock().expect("acks lock").get(&0) {
        bail!("the mock broker refused the first probe: {e}");
    }

    eprintln!(
        "entrawatch bench --latency: warm-up {} s, then {} s at {} records/s and {} probes/s",
        args.warmup_seconds, args.seconds, args.rate, args.probes_per_sec
    );
    let rate = args.rate as f64;
    let pps = args.probes_per_sec as f64;
    let start = Instant::now();
    let warm_end = start + Duration::from_secs(args.warmup_seconds);
    let end = warm_end + Duration::from_secs(args.seconds);
    let mut background = 0u64;
    let mut sustained_records_at_start = None;
    let mut metrics_start = None;
    let (mut warm_probes, mut sustained_probes) = (0u64, 0u64);
    let mut next_check = Instant::now();
    loop {
        let now = Instant::now();
        if now >= end {
            break;
        }
        if now >= warm_end && metrics_start.is_none() {
            sustained_records_at_start = Some(background);
            metrics_start = Some(child.metrics()?);
        }
        let target = (rate * now.duration_since(start).as_secs_f64()) as u64;
        while background < target {
            let n = (target - background).min(RECORDS_PER_MESSAGE);
            run.background(n, &mut buf)?;
            background += n;
        }
        // Probes evenly spaced in each phase, the first half an interval after its start.
        let due = |since: Instant| (now.duration_since(since).as_secs_f64() * pps + 0.5) as u64;
        if now < warm_end {
            while warm_probes < due(start) {
                run.probe(Stage::Warmup, &mut buf)?;
                warm_probes += 1;
            }
        } else {
            while sustained_probes < due(warm_end) {
                run.probe(Stage::Sustained, &mut buf)?;
                sustained_probes += 1;
            }
        }
        if now >= next_check {
            run.collect(&receiver);
            child.check_alive()?;
            next_check = now + Duration::from_millis(200);
        }
        let next = (now + TICK).min(end);
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
    }
    let sustained_seconds = end.duration_since(warm_end).as_secs_f64();
    let metrics_start = match metrics_start {
        Some(m) => m,
        None => child.metrics()?,
    };
    let sustained_records = background - sustained_records_at_start.unwrap_or(0);

    eprintln!("entrawatch bench --latency: waiting for the last probes");
    run.producer
        .flush(PRODUCE_WAIT)
        .context("the producer could not flush its messages to the mock broker")?;
    let deadline = Instant::now() + DRAIN_WAIT;
    loop {
        run.collect(&receiver);
        if (run.all_posted(Stage::Sustained) && run.all_posted(Stage::Warmup))
            || Instant::now() > deadline
        {
            break;
        }
        child.check_alive()?;
        std::thread::sleep(Duration::from_millis(20));
    }
    // Then every record processed (or the same deadline): the scrape covers the whole load.
    let metrics_end = loop {
        let text = child.metrics()?;
        let processed = service::metric_sum(&text, "entrawatch_events_processed_total", &[]);
        if processed >= run.records as f64 || Instant::now() > deadline {
            break text;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let (peak_rss_mb, cpu_seconds) = service::proc_figures(child.pid());
    eprintln!("entrawatch bench --latency: stopping the service (SIGTERM)");
    let (status, stop_seconds) =
        child.terminate(Duration::from_secs(SHUTDOWN_GRACE_SECS) + STOP_MARGIN)?;
    run.collect(&receiver);
    let (log_errors, log_warnings) = child.log_levels();

    let histogram = |name: &str, labels: &[&str]| {
        let end = Histogram::parse(&metrics_end, name, labels);
        HistogramSummary::of(&end.since(&Histogram::parse(&metrics_start, name, labels)))
    };
    let destination = format!("destination=\"{}\"", service::DESTINATION);
    let service = ServiceFigures {
        pipeline: histogram("entrawatch_pipeline_latency_seconds", &[]),
        notification: histogram(
            "entrawatch_notification_latency_seconds",
            &[destination.as_str()],
        ),
        events_processed: service::metric_sum(
            &metrics_end,
            "entrawatch_events_processed_total",
            &[],
        ) as u64,
        unexpected_alerts: run.unexpected_alerts,
        unreadable_posts: run.unreadable_posts,
        outbox_pending_end: service::metric_sum(&metrics_end, "entrawatch_outbox_pending", &[]),
        peak_rss_mb,
        cpu_seconds,
        log_errors,
        log_warnings,
        exit_code: status.and_then(|s| s.code()),
        stop_seconds,
    };
    let acked = acks.probes.lock().expect("acks lock");
    let count = |stage: Stage, pred: &dyn Fn(usize, &Probe) -> bool| {
        run.probes
            .iter()
            .enumerate()
            .filter(|(k, p)| p.stage == stage && pred(*k, p))
            .count() as u64
    };
    let not_produced = |k: usize| !matches!(acked.get(&k), Some(Ok(_)));
    let probes = Probes {
        sent: count(Stage::Sustained, &|_, _| true),
        delivered: count(Stage::Sustained, &|_, p| p.posted_at.is_some()),
        missing: count(Stage::Sustained, &|k, p| {
            p.posted_at.is_none() && !not_produced(k)
        }),
        not_produced: count(Stage::Sustained, &|k, _| not_produced(k)),
        repeated_posts: run.repeated_posts,
        warmup_sent: count(Stage::Warmup, &|_, _| true),
        warmup_delivered: count(Stage::Warmup, &|_, p| p.posted_at.is_some()),
    };
    let ms = |from: Instant, to: Instant| match to.checked_duration_since(from) {
        Some(d) => d.as_secs_f64() * 1000.0,
        None => -(from.duration_since(to).as_secs_f64() * 1000.0),
    };
    let mut from_ack = Vec::new();
    let mut from_send = Vec::new();
    for (k, p) in run.probes.iter().enumerate() {
        if p.stage != Stage::Sustained {
            continue;
        }
        if let (Some(Ok(ack)), Some(post)) = (acked.get(&k), p.posted_at) {
            from_ack.push(ms(*ack, post));
            from_send.push(ms(p.sent_at, post));
        }
    }
    drop(acked);
    let latency_ms = quantiles(from_ack);
    let goal = Goal {
        p99_below_ms: GOAL_P99_MS,
        met: probes.missing == 0
            && probes.not_produced == 0
            && latency_ms.as_ref().is_some_and(|q| q.p99 < GOAL_P99_MS),
    };
    Ok(LatencyReport {
        version: env!("CARGO_PKG_VERSION"),
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        settings,
        warmup_seconds: args.warmup_seconds as f64,
        sustained_seconds,
        load: Load {
            rate_asked: args.rate,
            records_produced: sustained_records,
            records_per_second: sustained_records as f64 / sustained_seconds,
            records_produced_total: run.records,
            messages_produced: run.messages,
            average_record_bytes: run.record_bytes / run.records.max(1),
            delivery_failures: acks.background_failed.load(Ordering::Relaxed),
            queue_full_waits: run.queue_full_waits,
        },
        probes,
        latency_ms,
        latency_from_send_ms: quantiles(from_send),
        goal,
        service,
    })
}
