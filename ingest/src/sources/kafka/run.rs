//! The consumer thread's loop: poll, parse, batch, hand on, take reports, commit.
//!
//! What comes in: messages from librdkafka and the runtime's [`Committed`] reports. What goes
//! out: [`Batch`]es on `ctx.out` (never blocking: when the pipeline is full the assigned
//! partitions are paused and the loop keeps polling, so rebalances and heartbeats are served),
//! dead letters, metrics, and asynchronous commits of the durable watermarks about once a second.
//! On shutdown it stops fetching, drops what was not handed on, waits (bounded) for the reports
//! of what was, commits synchronously and leaves the group. On abort (the task was dropped) it
//! leaves without committing anything more, as a crash would.
//!
//! [`Committed`]: crate::source::Committed
//! [`Batch`]: crate::source::Batch

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Message};
use serde_json::Value;
use tokio::sync::mpsc::error::TrySendError;

use super::config::KafkaConfig;
use super::context::{Core, Shared, status_of};
use super::dead_letter::{DeadLetter, DeadLetters};
use super::tracker::{Tp, Tracker};
use crate::reader::{Item, ReadOptions, Rejected, read_bytes};
use crate::source::{SourceContext, SourceError};

/// How often durable watermarks are committed while running.
const COMMIT_INTERVAL: Duration = Duration::from_secs(1);
/// Longest single poll (bounds how late shutdown, reports and commits are noticed).
const MAX_POLL: Duration = Duration::from_millis(100);
/// Poll while the pipeline is full (waiting for room).
const STALLED_POLL: Duration = Duration::from_millis(10);

/// `d` rounded up to whole milliseconds. librdkafka waits in whole milliseconds and takes a
/// shorter wait as none: a batch due in 0.6 ms was polled for without waiting, again and again,
/// until it was due (a busy loop of up to a millisecond per batch, measured as most of the
/// consumer thread's time with short batch waits).
fn whole_millis(d: Duration) -> Duration {
    Duration::from_millis(u64::try_from(d.as_nanos().div_ceil(1_000_000)).unwrap_or(u64::MAX))
}

/// A validated source, ready to run: settings with secrets already in.
pub struct Prepared {
    pub config: KafkaConfig,
    pub consumer: ClientConfig,
    pub producer: Option<ClientConfig>,
}

impl std::fmt::Debug for Prepared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The client configs hold secrets: never printed.
        f.debug_struct("Prepared")
            .field("name", &self.config.name)
            .field("brokers", &self.config.brokers)
            .field("topics", &self.config.topics)
            .field("group_id", &self.config.group_id)
            .finish_non_exhaustive()
    }
}

/// `{"topic/partition": offset}` of a snapshot, split into the tracker's starting position and
/// the offsets to seek to on first assignment.
fn parse_resume(
    resume: Option<&Value>,
    tracker: &Tracker,
    name: &str,
) -> (BTreeMap<String, i64>, HashMap<Tp, i64>) {
    let mut position = BTreeMap::new();
    let mut seeks = HashMap::new();
    let Some(resume) = resume else {
        return (position, seeks);
    };
    let Some(map) = resume.as_object() else {
        tracing::warn!(
            source = name,
            "resume position is not an object; starting from the group's offsets"
        );
        return (position, seeks);
    };
    for (key, offset) in map {
        let parsed = key
            .rsplit_once('/')
            .and_then(|(t, p)| Some((t, p.parse::<i32>().ok()?)))
            .and_then(|(t, p)| tracker.tp(t, p))
            .zip(offset.as_i64().filter(|o| *o >= 0));
        match parsed {
            Some((tp, offset)) => {
                position.insert(key.clone(), offset);
                seeks.insert(tp, offset);
            }
            None => tracing::warn!(source = name, key = %key,
                "resume position entry ignored (not a partition of this source's topics)"),
        }
    }
    (position, seeks)
}

/// Runs the source on the current (dedicated) thread until shutdown, abort or a fatal error.
pub fn run(
    prepared: Prepared,
    ctx: SourceContext,
    abort: Arc<AtomicBool>,
) -> Result<(), SourceError> {
    let SourceContext {
        name,
        out,
        committed,
        resume,
        shutdown,
        ready,
        read,
        metrics,
    } = ctx;
    let cfg = &prepared.config;
    let fatal = |message: String| SourceError::Fatal {
        source_name: name.to_string(),
        message,
    };
    let probe = Tracker::new(cfg.topics.clone(), 1, Duration::ZERO, BTreeMap::new());
    let (position, seeks) = parse_resume(resume.as_ref(), &probe, &name);
    let tracker = Tracker::new(
        cfg.topics.clone(),
        cfg.batch_max,
        Duration::from_millis(cfg.batch_wait_ms),
        position,
    );
    let mut dead = DeadLetters::open(
        name.clone(),
        cfg.dead_letter_file.as_deref(),
        cfg.dead_letter_topic
            .as_deref()
            .zip(prepared.producer.as_ref()),
    )
    .map_err(fatal)?;
    let shared = Shared {
        name: name.clone(),
        core: Mutex::new(Core {
            tracker,
            committed,
            reports_closed: false,
            resume: seeks,
            repause: false,
        }),
        abort,
        closing: AtomicBool::new(false),
        drain_timeout: Duration::from_secs(cfg.drain_timeout_secs),
        metrics: metrics.clone(),
        ready,
        log_gate: Mutex::new(HashMap::new()),
        connected: AtomicBool::new(true),
    };
    let consumer: BaseConsumer<Shared> = prepared
        .consumer
        .create_with_context(shared)
        .map_err(|e| fatal(format!("cannot create the consumer: {e}")))?;
    let topics: Vec<&str> = cfg.topics.iter().map(String::as_str).collect();
    consumer
        .subscribe(&topics)
        .map_err(|e| fatal(format!("cannot subscribe to {topics:?}: {e}")))?;
    tracing::info!(source = %name, brokers = %cfg.brokers, topics = ?cfg.topics,
        group = %cfg.group_id, "kafka source started");

    let mut reader = MessageReader {
        name: name.clone(),
        read: ReadOptions {
            tenant: cfg.tenant.clone().or(read.tenant.clone()),
            ..read
        },
        metrics,
    };
    let mut paused = false;
    let mut last_commit = Instant::now();
    let shared = consumer.context().clone();
    let outcome = loop {
        if shared.aborted() {
            break Ok(false);
        }
        if *shutdown.borrow() {
            break Ok(true);
        }
        let now = Instant::now();
        // Reports in, due batches out.
        let stalled = {
            let mut core = shared.core();
            core.take_reports();
            core.tracker.seal_due(now);
            let mut stalled = false;
            while core.tracker.has_sealed() {
                match out.try_reserve() {
                    Ok(permit) => {
                        dead.sync();
                        let batch = core.tracker.take_sealed(&name).expect("has sealed");
                        permit.send(batch);
                    }
                    Err(TrySendError::Full(())) => {
                        stalled = true;
                        break;
                    }
                    Err(TrySendError::Closed(())) => {
                        drop(core);
                        return Err(SourceError::Closed(name.to_string()));
                    }
                }
            }
            if stalled && (!paused || core.repause) {
                core.repause = false;
                drop(core);
                set_paused(&consumer, true, &name);
                paused = true;
            } else if !stalled && paused {
                drop(core);
                set_paused(&consumer, false, &name);
                paused = false;
            }
            stalled
        };
        if last_commit.elapsed() >= COMMIT_INTERVAL {
            let _ = shared.commit(&consumer, None, CommitMode::Async);
            last_commit = Instant::now();
        }
        let wait = if stalled {
            STALLED_POLL
        } else {
            let due = shared.core().tracker.until_due(now);
            due.map_or(MAX_POLL, |d| whole_millis(d).min(MAX_POLL))
        };
        match consumer.poll(wait) {
            None => {}
            Some(Ok(msg)) => reader.handle(&msg, &shared, &mut dead),
            Some(Err(KafkaError::MessageConsumptionFatal(code))) => {
                break Err(fatal(format!("fatal consumer error: {code}")));
            }
            Some(Err(e)) => {
                let status = status_of(&e);
                reader
                    .metrics
                    .requests
                    .with_label_values(&[&name, status])
                    .inc();
                tracing::warn!(source = %name, error = %e, status, "kafka consume error (retried)");
            }
        }
    };
    match outcome {
        Ok(true) => {
            // Stop fetching; what was not handed on is read again next time.
            set_paused(&consumer, true, &name);
            shared.core().tracker.discard_unsent();
            if !shared.drain(Tracker::all_durable) {
                tracing::warn!(source = %name, timeout_secs = cfg.drain_timeout_secs,
                    "in-flight batches not reported durable in time; they will be read again");
            }
            // A commit refused while the group rebalances (another member leaving) is retried
            // once the group settles; polling serves the rebalance (the partitions stay paused).
            let deadline = Instant::now() + shared.drain_timeout;
            while !shared.commit(&consumer, None, CommitMode::Sync)
                && Instant::now() < deadline
                && !shared.aborted()
            {
                let _ = consumer.poll(Duration::from_millis(100));
            }
            shared
                .closing
                .store(true, std::sync::atomic::Ordering::SeqCst);
            tracing::info!(source = %name, dead_letters = dead.written(), "kafka source stopped");
        }
        Ok(false) => {
            tracing::warn!(source = %name, "kafka source aborted; nothing more committed");
        }
        Err(_) => {}
    }
    shared.ready.send_replace(false);
    drop(consumer); // leaves the group (revocations commit nothing new after the drain)
    outcome.map(|_| ())
}

fn set_paused(consumer: &BaseConsumer<Shared>, pause: bool, name: &str) {
    let Ok(assignment) = consumer.assignment() else {
        return;
    };
    let result = if pause {
        consumer.pause(&assignment)
    } else {
        consumer.resume(&assignment)
    };
    if let Err(e) = result {
        tracing::warn!(source = name, error = %e, pause, "cannot pause or resume partitions");
    }
}

/// Parses one message into events, counts, and dead letters.
struct MessageReader {
    name: Arc<str>,
    read: ReadOptions,
    metrics: crate::metrics::SourceMetrics,
}

impl MessageReader {
    fn handle(&mut self, msg: &BorrowedMessage<'_>, shared: &Shared, dead: &mut DeadLetters) {
        let (topic, partition, offset) = (msg.topic(), msg.partition(), msg.offset());
        let tp = {
            let core = shared.core();
            match core.tracker.tp(topic, partition) {
                Some(tp) if core.tracker.part(tp).is_some() => tp,
                _ => return, // not (or no longer) ours
            }
        };
        let payload = msg.payload().unwrap_or_default();
        let mut events = Vec::new();
        let mut rejected: Vec<Rejected> = Vec::new();
        let mut skipped = 0u64;
        let mut empty = false;
        let label = format!("{topic}/{partition}@{offset}");
        read_bytes(
            &label,
            payload,
            self.read.tenant.as_deref(),
            &self.read,
            &mut |item| match item {
                Item::Event(e) => events.push(Item::Event(e)),
                Item::Skipped { .. } => skipped += 1,
                Item::Rejected(r) => rejected.push(r),
                Item::EmptyFile { .. } => empty = true,
            },
        );
        self.count(&events, skipped, rejected.len());
        let whole =
            (events.is_empty() && skipped == 0) || rejected.iter().any(|r| r.at.record.is_none());
        if whole && (empty || !rejected.is_empty()) {
            let reason = match rejected.as_slice() {
                [] => "empty message".to_owned(),
                [one] => one.to_string(),
                [first, ..] => format!("{} records not readable; first: {first}", rejected.len()),
            };
            if rejected.is_empty() {
                self.metrics
                    .records_rejected
                    .with_label_values(&[&self.name])
                    .inc();
            }
            dead.write(&DeadLetter {
                topic,
                partition,
                offset,
                record: None,
                field: None,
                reason: &reason,
                raw: payload,
            });
        } else {
            for r in &rejected {
                dead.write(&DeadLetter {
                    topic,
                    partition,
                    offset,
                    record: r.at.record,
                    field: r.field.as_deref(),
                    reason: &r.reason,
                    raw: r.raw.as_deref().unwrap_or_default().as_bytes(),
                });
            }
        }
        shared
            .core()
            .tracker
            .add(tp, offset, events, Instant::now());
    }

    fn count(&self, events: &[Item], skipped: u64, rejected: usize) {
        let mut by: Vec<(&str, &'static str, u64)> = Vec::new();
        for item in events {
            if let Item::Event(e) = item {
                let key = (e.meta.tenant_id.as_str(), e.kind().as_str());
                match by.iter_mut().find(|(t, k, _)| (*t, *k) == key) {
                    Some((_, _, n)) => *n += 1,
                    None => by.push((key.0, key.1, 1)),
                }
            }
        }
        for (tenant, kind, n) in by {
            self.metrics
                .events_received
                .with_label_values(&[&self.name, tenant, kind])
                .inc_by(n);
        }
        if skipped > 0 {
            self.metrics
                .records_skipped
                .with_label_values(&[&self.name])
                .inc_by(skipped);
        }
        if rejected > 0 {
            self.metrics
                .records_rejected
                .with_label_values(&[&self.name])
                .inc_by(rejected as u64);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wait_shorter_than_a_millisecond_is_not_taken_as_none() {
        let ms = Duration::from_millis;
        assert_eq!(whole_millis(Duration::ZERO), Duration::ZERO);
        assert_eq!(whole_millis(Duration::from_micros(1)), ms(1));
        assert_eq!(whole_millis(Duration::from_micros(600)), ms(1));
        assert_eq!(whole_millis(ms(7)), ms(7));
        assert_eq!(whole_millis(Duration::from_micros(7_001)), ms(8));
        assert_eq!(whole_millis(Duration::from_nanos(999)), ms(1));
    }
}
