//! Harness for the Kafka source tests against librdkafka's in-process mock cluster (loopback).
//!
//! What it gives: a [`Producer`] that remembers where each message landed, a [`Ledger`] of what
//! the in-test runtime received and reported durable (and when), a [`Member`] that runs one
//! `KafkaSource` with a small runtime in front of it (reports `Committed` after an optional delay,
//! or holds them), a [`Checker`] that samples the group's committed offsets while a test runs,
//! and the checks every test ends with: everything processed at least once, and no committed
//! offset past a message that was not durable at that time.

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use entrawatch_ingest::metrics::SourceMetrics;
use entrawatch_ingest::reader::{Item, ReadOptions};
use entrawatch_ingest::source::{Batch, Committed, Source, SourceContext, SourceError};
use entrawatch_ingest::sources::kafka::{KafkaConfig, KafkaSource};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer as _, ProducerContext};
use rdkafka::{ClientConfig, ClientContext, Message, Offset, TopicPartitionList};
use serde_json::{Value, json};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

pub const TENANT_A: &str = "11111111-aaaa-4aaa-8aaa-111111111111";

/// A tiny unique suffix so concurrent tests never share a group or topic name.
pub fn unique(prefix: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}

/// The source config every test starts from: quick heartbeats, short drains, fast statistics.
pub fn source_config(name: &str, bootstrap: &str, topic: &str, group: &str) -> KafkaConfig {
    serde_json::from_value(json!({
        "name": name,
        "brokers": bootstrap,
        "topics": [topic],
        "group_id": group,
        "batch_max": 50,
        "batch_wait_ms": 20,
        "drain_timeout_secs": 3,
        "settings": {
            "session.timeout.ms": 6000,
            "heartbeat.interval.ms": 300,
            "statistics.interval.ms": 500,
            "topic.metadata.refresh.interval.ms": 1000,
            "reconnect.backoff.max.ms": 500,
        }
    }))
    .expect("valid test config")
}

/// A sign-in record (from the project's quirk fixture) whose id is `id`.
pub fn sign_in(id: &str) -> Value {
    static TEMPLATE: std::sync::OnceLock<Value> = std::sync::OnceLock::new();
    let t = TEMPLATE.get_or_init(|| {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/quirks/eh_signin_level_lowercase.jsonl"
        );
        let text = std::fs::read_to_string(path).expect("fixture");
        serde_json::from_str(text.lines().next().expect("a line")).expect("json")
    });
    let mut r = t.clone();
    r["properties"]["id"] = json!(id);
    r
}

/// An envelope of `records` sign-ins with ids `m<n>-r<i>`.
pub fn envelope(n: usize, records: usize) -> Vec<u8> {
    let recs: Vec<Value> = (0..records)
        .map(|i| sign_in(&format!("m{n}-r{i}")))
        .collect();
    serde_json::to_vec(&json!({ "records": recs })).expect("json")
}

/// Delivery reports: message number → (partition, offset).
#[derive(Debug, Default)]
pub struct Deliveries {
    pub at: Mutex<HashMap<usize, (i32, i64)>>,
    pub failed: AtomicUsize,
}

impl ClientContext for Deliveries {}
impl ProducerContext for Deliveries {
    type DeliveryOpaque = usize;
    fn delivery(&self, result: &DeliveryResult<'_>, n: usize) {
        match result {
            Ok(m) => {
                self.at
                    .lock()
                    .unwrap()
                    .insert(n, (m.partition(), m.offset()));
            }
            Err(_) => {
                self.failed.fetch_add(1, Ordering::SeqCst);
            }
        }
    }
}

/// A producer that remembers where each numbered message landed.
pub struct Producer {
    inner: BaseProducer<Deliveries>,
    pub deliveries: Arc<Deliveries>,
}

impl Producer {
    pub fn new(bootstrap: &str) -> Producer {
        let inner: BaseProducer<Deliveries> = ClientConfig::new()
            .set("bootstrap.servers", bootstrap)
            .set("enable.idempotence", "true")
            .set("linger.ms", "2")
            .set("message.timeout.ms", "60000")
            .create_with_context(Deliveries::default())
            .expect("producer");
        let deliveries = inner.context().clone();
        Producer { inner, deliveries }
    }

    /// Queues message `n` (to `partition`, or by key).
    pub fn send(&self, topic: &str, partition: Option<i32>, n: usize, payload: &[u8]) {
        let key = format!("m{n}");
        let mut record = BaseRecord::with_opaque_to(topic, n)
            .key(&key)
            .payload(payload);
        if let Some(p) = partition {
            record = record.partition(p);
        }
        let mut record = record;
        for _ in 0..1000 {
            match self.inner.send(record) {
                Ok(()) => return,
                Err((_, r)) => {
                    record = r;
                    self.inner.poll(Duration::from_millis(10));
                }
            }
        }
        panic!("producer queue stayed full");
    }

    /// Waits for every queued message; panics on a lost one.
    pub fn flush(&self) {
        self.inner
            .flush(Duration::from_secs(60))
            .expect("messages delivered");
        assert_eq!(self.deliveries.failed.load(Ordering::SeqCst), 0);
    }

    pub fn at(&self) -> HashMap<usize, (i32, i64)> {
        self.deliveries.at.lock().unwrap().clone()
    }
}

/// What the in-test runtime saw, across members.
#[derive(Debug, Default)]
pub struct Ledger {
    /// Record copies received, by message number (repeats count).
    pub received: HashMap<usize, usize>,
    /// Message number → records of it reported durable.
    durable_records: HashMap<usize, BTreeSet<usize>>,
    /// Message number → when its last record became durable.
    pub durable_at: HashMap<usize, Instant>,
    pub records_per_message: usize,
    pub events: usize,
    pub batches: usize,
    /// Items that were not events (the source should send only events).
    pub other_items: usize,
    pub tenants: BTreeSet<String>,
    /// (tenant, kind, id) of every event received, repeats included.
    pub keys: Vec<(String, String, String)>,
    /// The newest batch position seen, per member name.
    pub positions: HashMap<String, Value>,
    /// Events received, per member name.
    pub by_member: HashMap<String, usize>,
    /// Batches taken while the out channel was full (the source had to hold back).
    pub taken_when_full: usize,
}

impl Ledger {
    pub fn new(records_per_message: usize) -> Arc<Mutex<Ledger>> {
        Arc::new(Mutex::new(Ledger {
            records_per_message,
            ..Ledger::default()
        }))
    }

    fn message_of(id: &str) -> Option<(usize, usize)> {
        let (m, r) = id.strip_prefix('m')?.split_once("-r")?;
        Some((m.parse().ok()?, r.parse().ok()?))
    }

    fn receive(&mut self, member: &str, batch: &Batch) -> Vec<(usize, usize)> {
        self.batches += 1;
        self.positions
            .insert(member.to_owned(), batch.position.clone());
        let mut ids = Vec::new();
        for item in &batch.items {
            match item {
                Item::Event(e) => {
                    self.events += 1;
                    *self.by_member.entry(member.to_owned()).or_default() += 1;
                    self.tenants.insert(e.meta.tenant_id.to_string());
                    self.keys.push((
                        e.meta.tenant_id.to_string(),
                        e.kind().as_str().to_owned(),
                        e.meta.id.to_string(),
                    ));
                    if let Some((m, r)) = Ledger::message_of(&e.meta.id) {
                        *self.received.entry(m).or_default() += 1;
                        ids.push((m, r));
                    }
                }
                _ => self.other_items += 1,
            }
        }
        ids
    }

    fn durable(&mut self, ids: &[(usize, usize)]) {
        let now = Instant::now();
        for (m, r) in ids {
            let set = self.durable_records.entry(*m).or_default();
            set.insert(*r);
            if set.len() == self.records_per_message {
                self.durable_at.entry(*m).or_insert(now);
            }
        }
    }

    /// Messages (numbers) durable so far.
    pub fn durable_count(&self) -> usize {
        self.durable_at.len()
    }

    /// The messages of `0..total` not yet durable, by partition (`at` from [`Producer::at`]):
    /// how many, whether any of their records arrived, and the first few offsets.
    pub fn missing(&self, at: &HashMap<usize, (i32, i64)>, total: usize) -> String {
        let mut by_partition: BTreeMap<Option<i32>, (usize, usize, Vec<i64>)> = BTreeMap::new();
        for m in (0..total).filter(|m| !self.durable_at.contains_key(m)) {
            let (partition, offset) = at.get(&m).map_or((None, -1), |(p, o)| (Some(*p), *o));
            let entry = by_partition.entry(partition).or_default();
            entry.0 += 1;
            entry.1 += usize::from(self.received.contains_key(&m));
            if entry.2.len() < 5 {
                entry.2.push(offset);
            }
        }
        let parts: Vec<String> = by_partition
            .iter()
            .map(|(p, (n, received, offsets))| match p {
                Some(p) => format!(
                    "partition {p}: {n} missing ({received} partly received), offsets {offsets:?}.."
                ),
                None => format!("{n} never acknowledged by the broker"),
            })
            .collect();
        format!("; missing: {}", parts.join("; "))
    }

    /// Per partition, the offset below which every message was durable at `t`.
    pub fn watermarks_at(&self, at: &HashMap<usize, (i32, i64)>, t: Instant) -> BTreeMap<i32, i64> {
        let mut durable: BTreeMap<i32, BTreeSet<i64>> = BTreeMap::new();
        for (m, when) in &self.durable_at {
            if *when <= t
                && let Some((p, o)) = at.get(m)
            {
                durable.entry(*p).or_default().insert(*o);
            }
        }
        let mut out = BTreeMap::new();
        let partitions: BTreeSet<i32> = at.values().map(|(p, _)| *p).collect();
        for p in partitions {
            let set = durable.remove(&p).unwrap_or_default();
            let mut wm = 0;
            while set.contains(&wm) {
                wm += 1;
            }
            out.insert(p, wm);
        }
        out
    }
}

/// How the in-test runtime reports.
#[derive(Debug, Clone, Default)]
pub struct RuntimeOpts {
    /// Time between receiving a batch and reporting it durable.
    pub delay: Duration,
    /// Out-channel capacity (small values exercise backpressure).
    pub capacity: usize,
    /// Stop reporting after this many batches (a pipeline that never finishes: kill tests).
    pub report_at_most: Option<usize>,
    /// Time the runtime spends before taking each batch (a slow pipeline: the out channel fills
    /// and the source must pause its partitions).
    pub take_delay: Duration,
}

/// One consumer-group member: a `KafkaSource` task and the runtime in front of it.
pub struct Member {
    pub name: String,
    pub task: JoinHandle<Result<(), SourceError>>,
    runtime: JoinHandle<()>,
    shutdown: watch::Sender<bool>,
    pub ready: watch::Receiver<bool>,
    pub metrics: SourceMetrics,
    pub hold: Arc<AtomicBool>,
}

impl Member {
    pub fn start(
        cfg: KafkaConfig,
        ledger: Arc<Mutex<Ledger>>,
        opts: RuntimeOpts,
        resume: Option<Value>,
    ) -> Member {
        let name = cfg.name.clone();
        let source = KafkaSource::new(cfg).expect("source builds");
        let (out_tx, out_rx) = mpsc::channel(opts.capacity.max(1));
        let (c_tx, c_rx) = mpsc::unbounded_channel();
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let (ready_tx, ready_rx) = watch::channel(false);
        let metrics = SourceMetrics::unregistered();
        let ctx = SourceContext {
            name: Arc::from(name.as_str()),
            out: out_tx,
            committed: c_rx,
            resume,
            shutdown: shutdown_rx,
            ready: ready_tx,
            read: ReadOptions::default(),
            metrics: metrics.clone(),
        };
        let task = tokio::spawn(Box::new(source).run(ctx));
        let hold = Arc::new(AtomicBool::new(false));
        let runtime = tokio::spawn(runtime(
            name.clone(),
            out_rx,
            c_tx,
            ledger,
            opts,
            hold.clone(),
        ));
        Member {
            name,
            task,
            runtime,
            shutdown: shutdown_tx,
            ready: ready_rx,
            metrics,
            hold,
        }
    }

    /// Waits (bounded) until the member joined the group.
    pub async fn joined(&mut self) {
        tokio::time::timeout(Duration::from_secs(30), self.ready.wait_for(|r| *r))
            .await
            .expect("joined within 30 s")
            .expect("ready sender alive");
    }

    /// Graceful stop: shutdown, drain, commit; returns the source's result.
    pub async fn stop(self) -> Result<(), SourceError> {
        self.shutdown.send_replace(true);
        let r = tokio::time::timeout(Duration::from_secs(30), self.task)
            .await
            .expect("stopped within 30 s")
            .expect("task not panicked");
        self.runtime.abort();
        r
    }

    /// A crash: the task is dropped mid-stream, nothing drained; reports stop too.
    pub async fn kill(self) {
        self.hold.store(true, Ordering::SeqCst);
        self.task.abort();
        self.runtime.abort();
        let _ = self.task.await;
        let _ = self.runtime.await;
    }
}

/// The in-test runtime: records each batch, then reports it durable after `delay`, in order.
async fn runtime(
    member: String,
    mut rx: mpsc::Receiver<Batch>,
    tx: mpsc::UnboundedSender<Committed>,
    ledger: Arc<Mutex<Ledger>>,
    opts: RuntimeOpts,
    hold: Arc<AtomicBool>,
) {
    // (seq, (message, record) ids, when to report)
    type Pending = (u64, Vec<(usize, usize)>, tokio::time::Instant);
    let mut queue: std::collections::VecDeque<Pending> = Default::default();
    let mut reported = 0usize;
    let mut tick = tokio::time::interval(Duration::from_millis(5));
    loop {
        if !opts.take_delay.is_zero() {
            tokio::time::sleep(opts.take_delay).await;
        }
        let full = rx.len() == rx.max_capacity();
        tokio::select! {
            b = rx.recv() => match b {
                Some(b) => {
                    let mut l = ledger.lock().unwrap();
                    l.taken_when_full += usize::from(full);
                    let ids = l.receive(&member, &b);
                    drop(l);
                    queue.push_back((b.seq, ids, tokio::time::Instant::now() + opts.delay));
                }
                None => return,
            },
            _ = tick.tick() => {}
        }
        let now = tokio::time::Instant::now();
        while let Some((_, _, due)) = queue.front() {
            let may =
                !hold.load(Ordering::SeqCst) && opts.report_at_most.is_none_or(|n| reported < n);
            if *due > now || !may {
                break;
            }
            let (seq, ids, _) = queue.pop_front().expect("front");
            ledger.lock().unwrap().durable(&ids);
            reported += 1;
            if tx.send(Committed { seq }).is_err() {
                return;
            }
        }
    }
}

/// The group's committed offsets (`None`: nothing committed), read by a non-member consumer.
pub struct GroupView {
    consumer: BaseConsumer,
    topic: String,
    partitions: i32,
}

impl GroupView {
    pub fn new(bootstrap: &str, group: &str, topic: &str, partitions: i32) -> GroupView {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", bootstrap)
            .set("group.id", group)
            .create()
            .expect("consumer");
        GroupView {
            consumer,
            topic: topic.to_owned(),
            partitions,
        }
    }

    pub fn committed(&self) -> Option<BTreeMap<i32, Option<i64>>> {
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_range(&self.topic, 0, self.partitions - 1);
        let got = self
            .consumer
            .committed_offsets(tpl, Duration::from_secs(5))
            .ok()?;
        Some(
            got.elements()
                .iter()
                .map(|e| {
                    let o = match e.offset() {
                        Offset::Offset(o) => Some(o),
                        _ => None,
                    };
                    (e.partition(), o)
                })
                .collect(),
        )
    }

    /// High watermarks; asserts nothing was deleted (the mock keeps at most 5 MB per partition:
    /// a test writing more would lose its oldest messages before they are read).
    pub fn high_watermarks(&self) -> BTreeMap<i32, i64> {
        (0..self.partitions)
            .map(|p| {
                let (low, high) = self
                    .consumer
                    .fetch_watermarks(&self.topic, p, Duration::from_secs(10))
                    .expect("watermarks");
                assert_eq!(
                    low, 0,
                    "partition {p}: the mock cluster deleted old messages"
                );
                (p, high)
            })
            .collect()
    }
}

/// When the group's committed offsets were read, and what they were.
type Sample = (Instant, BTreeMap<i32, Option<i64>>);

/// Samples the group's committed offsets on its own thread while a test runs.
pub struct Checker {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<Vec<Sample>>,
}

impl Checker {
    pub fn start(bootstrap: &str, group: &str, topic: &str, partitions: i32) -> Checker {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let view = GroupView::new(bootstrap, group, topic, partitions);
        let thread = std::thread::spawn(move || {
            let mut samples = Vec::new();
            let deadline = Instant::now() + Duration::from_secs(120);
            while !flag.load(Ordering::SeqCst) && Instant::now() < deadline {
                if let Some(c) = view.committed() {
                    samples.push((Instant::now(), c));
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            samples
        });
        Checker { stop, thread }
    }

    /// Stops sampling and checks every sample: no committed offset past a message that was not
    /// durable when the sample was read. Returns how many samples had something committed.
    pub fn finish(self, ledger: &Ledger, at: &HashMap<usize, (i32, i64)>) -> usize {
        self.stop.store(true, Ordering::SeqCst);
        let samples = self.thread.join().expect("checker thread");
        assert!(!samples.is_empty(), "the checker read no committed offsets");
        let mut nontrivial = 0;
        for (t, committed) in &samples {
            let wm = ledger.watermarks_at(at, *t);
            let mut any = false;
            for (p, c) in committed {
                if let Some(c) = c {
                    any |= *c > 0;
                    let w = wm.get(p).copied().unwrap_or(0);
                    assert!(
                        *c <= w,
                        "partition {p}: committed {c} while only offsets below {w} were durable"
                    );
                }
            }
            nontrivial += usize::from(any);
        }
        nontrivial
    }
}

/// The end-of-test checks: every message processed at least once, and the group's final
/// committed offsets neither pass the durable watermark nor stop short of the end (after a
/// graceful stop everything durable is committed).
pub fn check_final(
    ledger: &Ledger,
    at: &HashMap<usize, (i32, i64)>,
    view: &GroupView,
    expect_messages: usize,
) {
    assert_eq!(
        at.len(),
        expect_messages,
        "every message was delivered to the broker"
    );
    let missing: Vec<_> = at
        .keys()
        .filter(|m| !ledger.durable_at.contains_key(m))
        .collect();
    assert!(missing.is_empty(), "messages never processed: {missing:?}");
    let wm = ledger.watermarks_at(at, Instant::now());
    let high = view.high_watermarks();
    let committed = view.committed().expect("committed offsets");
    for (p, h) in &high {
        assert_eq!(
            wm.get(p).copied().unwrap_or(0),
            *h,
            "partition {p}: all durable"
        );
        let c = committed.get(p).copied().flatten();
        if *h > 0 {
            assert_eq!(c, Some(*h), "partition {p}: committed up to the end");
        } else {
            assert!(
                c.is_none_or(|c| c == 0),
                "partition {p}: empty, committed {c:?}"
            );
        }
    }
}

/// A gauge vector's values by its `partition` label.
pub fn by_partition(g: &prometheus::IntGaugeVec) -> BTreeMap<String, i64> {
    use prometheus::core::Collector;
    g.collect()
        .iter()
        .flat_map(|f| f.get_metric())
        .filter_map(|m| {
            let p = m.get_label().iter().find(|l| l.name() == "partition")?;
            Some((p.value().to_owned(), m.get_gauge().get_value() as i64))
        })
        .collect()
}

/// Waits (bounded) until the running group has committed every partition to its high watermark:
/// the asynchronous commits, retried after whatever errors the test injected, catch up without a
/// stop. Called once every message is durable, while the members still run, so that a
/// [`Checker`] samples commits made while running however slowly the machine got there (a CI run
/// under load once stopped the member before any retried commit had landed).
pub async fn wait_committed_to_end(view: &GroupView, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        let (high, committed) =
            tokio::task::block_in_place(|| (view.high_watermarks(), view.committed()));
        let behind: Vec<String> = high
            .iter()
            .filter(|(p, h)| {
                let c = committed.as_ref().and_then(|c| c.get(p).copied().flatten());
                **h > 0 && c != Some(**h)
            })
            .map(|(p, h)| {
                let c = committed.as_ref().and_then(|c| c.get(p).copied().flatten());
                format!("partition {p}: committed {c:?} of {h}")
            })
            .collect();
        if behind.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the running group did not commit to the end within {timeout:?}: {}",
            behind.join(", ")
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits (bounded) until `cond` holds on the ledger.
pub async fn wait_until(
    ledger: &Arc<Mutex<Ledger>>,
    timeout: Duration,
    what: &str,
    cond: impl Fn(&Ledger) -> bool,
) {
    wait_explained(ledger, timeout, timeout, what, cond, |_| String::new()).await
}

/// The most a drain of every message may take in all; how long it may go without any progress is
/// the caller's `stall`.
const DRAIN_CAP: Duration = Duration::from_secs(300);

/// Waits until messages `0..total` of `producer` are all durable, giving up when no event or
/// message has moved for `stall` (or after `DRAIN_CAP` in all): a slow machine drains a backlog
/// slowly but steadily, a stuck partition does not move. On giving up the panic names the missing
/// messages by partition and offset.
pub async fn wait_for_every_message(
    ledger: &Arc<Mutex<Ledger>>,
    producer: &Producer,
    total: usize,
    stall: Duration,
) {
    let what = format!("every message (0..{total})");
    wait_explained(
        ledger,
        DRAIN_CAP,
        stall,
        &what,
        |l| l.durable_count() >= total,
        |l| l.missing(&producer.at(), total),
    )
    .await
}

/// Waits until `cond` holds; panics after `cap` in all or `stall` without progress.
async fn wait_explained(
    ledger: &Arc<Mutex<Ledger>>,
    cap: Duration,
    stall: Duration,
    what: &str,
    cond: impl Fn(&Ledger) -> bool,
    explain: impl Fn(&Ledger) -> String,
) {
    let deadline = Instant::now() + cap;
    let mut seen = (0, 0);
    let mut progress_at = Instant::now();
    loop {
        {
            let l = ledger.lock().unwrap();
            if cond(&l) {
                return;
            }
            if (l.events, l.durable_count()) != seen {
                seen = (l.events, l.durable_count());
                progress_at = Instant::now();
            }
            if Instant::now() >= deadline || progress_at.elapsed() >= stall {
                panic!(
                    "timed out waiting for {what}: {} events, {} batches, {} messages durable; \
                     events by member {:?}; last progress {:.1} s ago{}",
                    l.events,
                    l.batches,
                    l.durable_count(),
                    l.by_member,
                    progress_at.elapsed().as_secs_f64(),
                    explain(&l)
                );
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
