//! `entrawatch bench --latency`: how long a record takes from its arrival at the source to the
//! webhook POST it causes, with the real service under sustained load, all on loopback.
//!
//! What comes in: [`LatencyArgs`]. What goes out: a table on standard output, or with `--json`
//! one JSON document ([`LatencyReport`]). One run, in order:
//! 1. a Kafka-protocol broker in this process (librdkafka's mock cluster, one topic of
//!    `--partitions` partitions) and a webhook [`receiver`] on 127.0.0.1:0 that notes when each
//!    POST's headers arrived;
//! 2. a config for them ([`service::write_config`]: a `kafka` source, a `webhook` destination whose
//!    rate limit is raised out of the way, a route with `group_wait_secs = 0`) and `entrawatch run`
//!    on it as a child process, started from this executable, until `/readyz` answers;
//! 3. a first probe, to see the whole path work (consumer group joined, receiver reached);
//! 4. warm-up (`--warmup-seconds`, not counted), then the sustained phase (`--seconds`):
//!    background sign-ins at `--rate` records/s in Event Hub envelopes of up to ten, and probes at
//!    `--probes-per-sec`, each a sign-in that makes the service send a webhook of its own
//!    ([`records`]). A probe's arrival is the moment the broker confirmed its delivery to the
//!    producer; its latency ends when the receiver got the POST naming its record id;
//! 5. up to [`DRAIN_WAIT`] for the last probes, a scrape of the service's `/metrics`, its peak
//!    memory and CPU from `/proc`, then SIGTERM and a bounded wait for its exit.
//!
//! The child is killed on every error path ([`service::ServiceChild`] kills it on drop), and every
//! wait is bounded. The mock broker keeps about 5 MB per partition: a consumer that falls that far
//! behind loses records, which shows as missing probes and fewer events processed, never a hang.

mod receiver;
mod records;
mod service;

use std::collections::HashMap;
use std::process::ExitCode;
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
use serde::Serialize;
use serde_json::Value;

use crate::LoadConfig;

use receiver::Receiver;
use service::{Histogram, ServiceChild, Settings};

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
/// The goal of issue 9: p99 from arrival at the source to the webhook POST.
const GOAL_P99_MS: f64 = 250.0;
/// Raised webhook limits, so that the token bucket is not what is measured (both are the
/// destination's maximum).
const WEBHOOK_RATE: f64 = 1000.0;
const WEBHOOK_BURST: u32 = 1000;
/// The service's `shutdown_grace_secs` here, and how much longer its stop may take.
const SHUTDOWN_GRACE_SECS: u64 = 20;
/// How often the service writes a snapshot (and so acknowledges to Kafka): its default.
const SNAPSHOT_INTERVAL_SECS: u64 = 30;
const STOP_MARGIN: Duration = Duration::from_secs(15);

/// Options of `entrawatch bench --latency` (flattened into [`super::BenchArgs`]).
#[derive(Debug, Clone, clap::Args)]
pub struct LatencyArgs {
    /// Measure service-mode latency instead: `entrawatch run` reading a Kafka-protocol broker in
    /// this process, posting to a webhook receiver in this process; p50/p90/p99/max from a
    /// record's arrival at the broker to its webhook POST.
    #[arg(
        long = "latency",
        conflicts_with_all = ["world", "out", "scale", "tenants", "compare_tenants", "principals", "seed", "reps"]
    )]
    pub enabled: bool,
    /// Latency run: seconds of the sustained (measured) phase.
    #[arg(long, default_value_t = 60, requires = "enabled")]
    pub seconds: u64,
    /// Latency run: seconds of load before it, not counted.
    #[arg(long, default_value_t = 5, requires = "enabled")]
    pub warmup_seconds: u64,
    /// Latency run: background sign-ins per second (they raise no alert).
    #[arg(long, default_value_t = 2000, requires = "enabled")]
    pub rate: u64,
    /// Latency run: probes per second (sign-ins that each raise an alert and a webhook POST).
    #[arg(long, default_value_t = 5, requires = "enabled")]
    pub probes_per_sec: u64,
    /// Latency run: partitions of the topic.
    #[arg(long, default_value_t = 4, requires = "enabled")]
    pub partitions: i32,
    /// Latency run: the Kafka source's `batch_wait_ms` (default: the source's own default, 50 ms).
    #[arg(long, requires = "enabled")]
    pub batch_wait_ms: Option<u64>,
    /// Latency run: the consumer's `fetch.wait.max.ms`. The mock broker holds a fetch that finds
    /// nothing for this long even when records arrive meanwhile (a real broker answers at once),
    /// so librdkafka's default of 500 would measure the mock; 10 keeps its share small.
    #[arg(long, default_value_t = 10, requires = "enabled")]
    pub fetch_wait_ms: u64,
}

/// Everything measured.
#[derive(Debug, Serialize)]
pub struct LatencyReport {
    pub version: &'static str,
    pub cores: usize,
    pub settings: Settings,
    pub warmup_seconds: f64,
    /// Wall time of the sustained phase as it ran.
    pub sustained_seconds: f64,
    pub load: Load,
    pub probes: Probes,
    /// Broker-confirmed arrival to the POST's arrival at the receiver, sustained-phase probes.
    pub latency_ms: Option<Quantiles>,
    /// The same from the producer's `send` call (adds the producer's own queueing).
    pub latency_from_send_ms: Option<Quantiles>,
    pub goal: Goal,
    pub service: ServiceFigures,
}

#[derive(Debug, Serialize)]
pub struct Load {
    pub rate_asked: u64,
    /// Background records produced in the sustained phase, and per second of it.
    pub records_produced: u64,
    pub records_per_second: f64,
    /// Every record produced (warm-up, sustained, probes included) and the Kafka messages.
    pub records_produced_total: u64,
    pub messages_produced: u64,
    pub average_record_bytes: u64,
    /// Background messages the broker did not accept.
    pub delivery_failures: u64,
    /// Times the producer's queue was full and the loop waited.
    pub queue_full_waits: u64,
}

#[derive(Debug, Serialize)]
pub struct Probes {
    /// Sustained phase.
    pub sent: u64,
    pub delivered: u64,
    /// Accepted by the broker, no POST within the drain wait.
    pub missing: u64,
    /// Not accepted by the broker.
    pub not_produced: u64,
    /// Further POSTs naming an already delivered probe.
    pub repeated_posts: u64,
    pub warmup_sent: u64,
    pub warmup_delivered: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Quantiles {
    pub samples: usize,
    pub mean: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

#[derive(Debug, Serialize)]
pub struct Goal {
    pub p99_below_ms: f64,
    /// p99 below the goal with no probe missing.
    pub met: bool,
}

#[derive(Debug, Default, Serialize)]
pub struct ServiceFigures {
    /// `entrawatch_pipeline_latency_seconds` over the sustained phase and drain: a batch's first
    /// record at the source to its outbox commit.
    pub pipeline: Option<HistogramSummary>,
    /// `entrawatch_notification_latency_seconds{destination}` over the same time: outbox commit
    /// to the receiver's 2xx.
    pub notification: Option<HistogramSummary>,
    /// Events through detection (`entrawatch_events_processed_total`) at the end: every record
    /// produced when nothing was lost.
    pub events_processed: u64,
    /// Alerts in webhook POSTs that are no probe's (background records should raise none).
    pub unexpected_alerts: u64,
    /// POSTs whose body was not a webhook envelope.
    pub unreadable_posts: u64,
    pub outbox_pending_end: f64,
    pub peak_rss_mb: Option<f64>,
    pub cpu_seconds: Option<f64>,
    pub log_errors: u64,
    pub log_warnings: u64,
    /// The exit code after SIGTERM (`None`: killed after the stop timeout, or by a signal).
    pub exit_code: Option<i32>,
    pub stop_seconds: f64,
}

/// A service histogram over the measured time.
#[derive(Debug, Clone, Serialize)]
pub struct HistogramSummary {
    pub observations: u64,
    pub mean_ms: f64,
    /// Estimates from the buckets, as Prometheus' `histogram_quantile` would give.
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    /// Share of observations at or below 250 ms (a bucket bound of both histograms).
    pub share_within_250ms: Option<f64>,
}

impl HistogramSummary {
    fn of(h: &Histogram) -> Option<HistogramSummary> {
        (h.count > 0.0).then(|| HistogramSummary {
            observations: h.count as u64,
            mean_ms: h.sum / h.count * 1000.0,
            p50_ms: h.quantile(0.5).map(|s| s * 1000.0),
            p99_ms: h.quantile(0.99).map(|s| s * 1000.0),
            share_within_250ms: h.share_at_most(0.25),
        })
    }
}

pub fn run(args: &LatencyArgs, json: bool, load: &LoadConfig) -> anyhow::Result<ExitCode> {
    check(args)?;
    let dir = std::env::temp_dir().join(format!(
        "entrawatch-bench-latency-{}-{}",
        std::process::id(),
        Utc::now().timestamp_micros()
    ));
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let report = match measure(args, &dir, load) {
        Ok(r) => r,
        Err(e) => {
            return Err(e.context(format!(
                "latency run failed (its config and the service log are kept in {})",
                dir.display()
            )));
        }
    };
    let _ = std::fs::remove_dir_all(&dir);
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", render(&report));
    }
    if report.service.exit_code != Some(0) {
        anyhow::bail!(
            "the service did not exit 0 after SIGTERM (exit code {:?})",
            report.service.exit_code
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn check(a: &LatencyArgs) -> anyhow::Result<()> {
    if !(1..=3600).contains(&a.seconds) {
        bail!("--seconds must be 1 to 3600");
    }
    if a.warmup_seconds > 600 {
        bail!("--warmup-seconds must be at most 600");
    }
    if !(1..=100_000).contains(&a.rate) {
        bail!("--rate must be 1 to 100000 records/s");
    }
    if !(1..=100).contains(&a.probes_per_sec) {
        bail!("--probes-per-sec must be 1 to 100 (each probe is a webhook POST)");
    }
    if !(1..=64).contains(&a.partitions) {
        bail!("--partitions must be 1 to 64");
    }
    if let Some(w) = a.batch_wait_ms
        && !(1..=60_000).contains(&w)
    {
        bail!("--batch-wait-ms must be 1 to 60000");
    }
    if !(1..=5000).contains(&a.fetch_wait_ms) {
        bail!("--fetch-wait-ms must be 1 to 5000");
    }
    Ok(())
}

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

fn measure(
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

/// Nearest-rank quantiles of `values`; `None` when empty.
fn quantiles(mut values: Vec<f64>) -> Option<Quantiles> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let n = values.len();
    let at = |q: f64| values[((q * n as f64).ceil() as usize).clamp(1, n) - 1];
    Some(Quantiles {
        samples: n,
        mean: values.iter().sum::<f64>() / n as f64,
        p50: at(0.5),
        p90: at(0.9),
        p99: at(0.99),
        max: values[n - 1],
    })
}

fn render(r: &LatencyReport) -> String {
    let s = &r.settings;
    let mut out = format!(
        "entrawatch bench --latency {} · {} cores · entrawatch run (child) ← Kafka mock broker \
         (in process, topic {} × {} partitions) → webhook receiver (in process), all on loopback\n",
        r.version, r.cores, s.topic, s.partitions
    );
    out += &format!(
        "settings: kafka batch_wait_ms {}{} · batch_max {} · fetch.wait.max.ms {} · route \
         group_wait_secs {} · webhook {}/s burst {} · snapshot every {} s · out_of_order_secs {}\n",
        s.batch_wait_ms,
        if s.batch_wait_is_default {
            " (the source's default)"
        } else {
            " (not the default)"
        },
        s.batch_max,
        s.fetch_wait_max_ms,
        s.group_wait_secs,
        s.webhook_rate_per_sec,
        s.webhook_burst,
        s.snapshot_interval_secs,
        s.out_of_order_secs,
    );
    let l = &r.load;
    out += &format!(
        "load: warm-up {:.0} s (not counted), sustained {:.1} s: {} records at {:.0}/s ({} asked), \
         {} records and {} messages in all, {} B per record, {} delivery failures, {} waits on a full queue\n",
        r.warmup_seconds,
        r.sustained_seconds,
        l.records_produced,
        l.records_per_second,
        l.rate_asked,
        l.records_produced_total,
        l.messages_produced,
        l.average_record_bytes,
        l.delivery_failures,
        l.queue_full_waits,
    );
    let p = &r.probes;
    out += &format!(
        "probes (sustained): {} sent · {} delivered · {} missing · {} not produced · {} repeated \
         POSTs · warm-up {} sent, {} delivered (not counted)\n",
        p.sent,
        p.delivered,
        p.missing,
        p.not_produced,
        p.repeated_posts,
        p.warmup_sent,
        p.warmup_delivered
    );
    let line = |name: &str, q: &Option<Quantiles>| match q {
        Some(q) => format!(
            "{name:<44} p50 {:>7.1} · p90 {:>7.1} · p99 {:>7.1} · max {:>7.1} · mean {:>7.1} (n = {})\n",
            q.p50, q.p90, q.p99, q.max, q.mean, q.samples
        ),
        None => format!("{name:<44} no samples\n"),
    };
    out += "\nlatency, ms\n";
    out += &line("broker-confirmed arrival → webhook POST", &r.latency_ms);
    out += &line("producer send → webhook POST", &r.latency_from_send_ms);
    out += &format!(
        "\ngoal: p99 < {:.0} ms from arrival at the source to the webhook POST, at sustained load: {}\n",
        r.goal.p99_below_ms,
        if r.goal.met { "met" } else { "NOT met" }
    );
    let sv = &r.service;
    out += "\nthe service's own histograms (sustained phase and drain; estimates from buckets)\n";
    let hist = |name: &str, h: &Option<HistogramSummary>| match h {
        Some(h) => format!(
            "{name:<44} {} observations · mean {:.1} ms · p50 ≈ {} · p99 ≈ {} · ≤ 250 ms: {}\n",
            h.observations,
            h.mean_ms,
            opt_ms(h.p50_ms),
            opt_ms(h.p99_ms),
            h.share_within_250ms
                .map_or("-".to_owned(), |x| format!("{:.1} %", x * 100.0)),
        ),
        None => format!("{name:<44} no observations\n"),
    };
    out += &hist("pipeline (batch's first record → commit)", &sv.pipeline);
    out += &hist("notification (commit → receiver's 2xx)", &sv.notification);
    out += &format!(
        "service: {} of {} records processed · {} unexpected alerts · {} unreadable POSTs · outbox \
         pending at end {} · peak RSS {} · CPU {} · log {} errors, {} warnings · exit {} after \
         SIGTERM in {:.1} s\n",
        sv.events_processed,
        r.load.records_produced_total,
        sv.unexpected_alerts,
        sv.unreadable_posts,
        sv.outbox_pending_end,
        sv.peak_rss_mb
            .map_or("-".to_owned(), |m| format!("{m:.0} MB")),
        sv.cpu_seconds.map_or("-".to_owned(), |c| format!(
            "{c:.1} s ({:.0} µs per record)",
            c * 1e6 / r.load.records_produced_total.max(1) as f64
        )),
        sv.log_errors,
        sv.log_warnings,
        sv.exit_code
            .map_or("none (killed)".to_owned(), |c| c.to_string()),
        sv.stop_seconds,
    );
    out
}

fn opt_ms(v: Option<f64>) -> String {
    v.map_or("-".to_owned(), |x| format!("{x:.1} ms"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_nearest_rank() {
        let q = quantiles((1..=100).map(f64::from).collect()).unwrap();
        assert_eq!((q.p50, q.p90, q.p99, q.max), (50.0, 90.0, 99.0, 100.0));
        assert_eq!(q.samples, 100);
        let one = quantiles(vec![7.0]).unwrap();
        assert_eq!((one.p50, one.p99, one.max), (7.0, 7.0, 7.0));
        assert!(quantiles(Vec::new()).is_none());
    }
}
