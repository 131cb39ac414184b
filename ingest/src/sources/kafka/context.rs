//! The consumer's callbacks: rebalances, commit results, statistics (consumer lag) and
//! librdkafka's logs and errors. They run on the consumer thread, inside `poll`.
//!
//! What comes in: librdkafka events. What goes out: assignments in the [`Tracker`] (with the
//! resume offsets of a snapshot applied on a partition's first assignment), synchronous commits of
//! revoked partitions after their in-flight batches are durable (bounded by the drain timeout),
//! and the `entrawatch_kafka_consumer_lag` / `entrawatch_kafka_committed_offset` gauges.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, RebalanceProtocol};
use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::types::{RDKafkaErrorCode, RDKafkaRespErr};
use rdkafka::{ClientContext, Offset, TopicPartitionList, config::RDKafkaLogLevel};
use tokio::sync::{mpsc, watch};

use super::tracker::{Tp, Tracker};
use crate::metrics::SourceMetrics;
use crate::source::Committed;

/// How often a drain looks for new reports.
const DRAIN_POLL: Duration = Duration::from_millis(2);
/// An asynchronous commit librdkafka has not confirmed after this long is sent again.
const COMMIT_RETRY: Duration = Duration::from_secs(10);
/// Client messages of one kind are logged at most this often.
const LOG_EVERY: Duration = Duration::from_secs(10);
/// Bound on reading the topics' metadata (partition counts) after an assignment.
const METADATA_TIMEOUT: Duration = Duration::from_secs(5);
/// Bound on asking the coordinator for the group's offsets.
const COMMITTED_QUERY_TIMEOUT: Duration = Duration::from_secs(10);

/// State the loop and the callbacks share (all on the consumer thread; the lock is for `Sync`).
#[derive(Debug)]
pub struct Core {
    pub tracker: Tracker,
    pub committed: mpsc::UnboundedReceiver<Committed>,
    /// The runtime dropped its end of the reports.
    pub reports_closed: bool,
    /// Snapshot offsets not yet applied (each partition's first assignment uses its own).
    pub resume: HashMap<Tp, i64>,
    /// A new assignment arrived while paused: pause again.
    pub repause: bool,
}

impl Core {
    /// Takes every report waiting.
    pub fn take_reports(&mut self) {
        loop {
            match self.committed.try_recv() {
                Ok(c) => self.tracker.on_committed(c),
                Err(mpsc::error::TryRecvError::Empty) => return,
                Err(mpsc::error::TryRecvError::Disconnected) => {
                    self.reports_closed = true;
                    return;
                }
            }
        }
    }
}

/// The consumer context.
#[derive(Debug)]
pub struct Shared {
    pub name: Arc<str>,
    pub core: Mutex<Core>,
    /// The task was dropped: stop at once, commit nothing more.
    pub abort: Arc<AtomicBool>,
    /// Shutdown already drained: revocations while leaving the group only commit.
    pub closing: AtomicBool,
    pub drain_timeout: Duration,
    pub metrics: SourceMetrics,
    pub ready: watch::Sender<bool>,
    /// Per kind of client message: when one was last logged and how many were held back since.
    pub log_gate: Mutex<HashMap<String, (Instant, u64)>>,
    /// At least one broker connection was up at the last look.
    pub connected: AtomicBool,
}

impl Shared {
    pub fn core(&self) -> MutexGuard<'_, Core> {
        self.core.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn aborted(&self) -> bool {
        self.abort.load(Ordering::SeqCst)
    }

    /// Waits, taking reports, until `done` holds or the drain timeout passes; true when it held.
    pub fn drain(&self, done: impl Fn(&Tracker) -> bool) -> bool {
        let deadline = Instant::now() + self.drain_timeout;
        loop {
            {
                let mut core = self.core();
                core.take_reports();
                if done(&core.tracker) {
                    return true;
                }
                if core.reports_closed {
                    return false;
                }
            }
            if self.aborted() || Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(DRAIN_POLL);
        }
    }

    fn tpl(&self, offsets: &[(Tp, i64)]) -> TopicPartitionList {
        let core = self.core();
        let mut tpl = TopicPartitionList::with_capacity(offsets.len());
        for (tp, offset) in offsets {
            let _ = tpl.add_partition_offset(
                core.tracker.topic(*tp),
                tp.partition,
                Offset::Offset(*offset),
            );
        }
        tpl
    }

    /// Commits durable watermarks (of `only`, when given). `Sync` waits for the coordinator and
    /// commits everything not confirmed yet (revoke, shutdown); `Async` only what moved on, or
    /// what stayed unconfirmed for [`COMMIT_RETRY`].
    /// False when the commit failed (it is retried later).
    pub fn commit(
        &self,
        consumer: &BaseConsumer<Shared>,
        only: Option<&[Tp]>,
        mode: CommitMode,
    ) -> bool {
        let force = matches!(mode, CommitMode::Sync);
        let offsets = self
            .core()
            .tracker
            .to_commit(only, force, Instant::now(), COMMIT_RETRY);
        if offsets.is_empty() {
            return true;
        }
        let tpl = self.tpl(&offsets);
        match consumer.commit(&tpl, mode) {
            Ok(()) => {
                if matches!(mode, CommitMode::Sync) {
                    self.commit_done(&offsets, true);
                }
                true
            }
            Err(e) => {
                tracing::warn!(source = %self.name, error = %e, partitions = offsets.len(),
                    "offset commit failed; retried with the next commit");
                self.metrics
                    .requests
                    .with_label_values(&[&self.name, "error"])
                    .inc();
                self.commit_done(&offsets, false);
                false
            }
        }
    }

    fn commit_done(&self, offsets: &[(Tp, i64)], ok: bool) {
        let mut core = self.core();
        for (tp, offset) in offsets {
            core.tracker.commit_result(*tp, *offset, ok);
            if ok {
                let topic = core.tracker.topic(*tp).to_owned();
                self.metrics
                    .kafka_committed
                    .with_label_values(&[&*self.name, &topic, &tp.partition.to_string()])
                    .set(*offset);
            }
        }
    }

    fn tps_of(&self, tpl: &TopicPartitionList) -> Vec<Tp> {
        let core = self.core();
        tpl.elements()
            .iter()
            .filter_map(|e| core.tracker.tp(e.topic(), e.partition()))
            .collect()
    }

    fn on_assign(&self, consumer: &BaseConsumer<Shared>, tpl: &mut TopicPartitionList) {
        let tps = self.tps_of(tpl);
        let mut seeks = Vec::new();
        {
            let mut core = self.core();
            for tp in &tps {
                core.tracker.assign(*tp);
                if let Some(offset) = core.resume.remove(tp) {
                    core.tracker.set_durable(*tp, offset);
                    seeks.push((*tp, core.tracker.topic(*tp).to_owned(), offset));
                }
            }
            core.repause = true;
        }
        let mut floors = TopicPartitionList::new();
        for (tp, topic, offset) in &seeks {
            // Start where the snapshot stands (possibly behind the group's offset: replayed
            // records are de-duplicated by the runtime).
            let _ = tpl.set_partition_offset(topic, tp.partition, Offset::Offset(*offset));
            floors.add_partition(topic, tp.partition);
        }
        if !seeks.is_empty() {
            // Never move the group's offset backwards while replaying.
            match consumer.committed_offsets(floors, COMMITTED_QUERY_TIMEOUT) {
                Ok(group) => {
                    let mut core = self.core();
                    for e in group.elements() {
                        if let (Some(tp), Offset::Offset(o)) =
                            (core.tracker.tp(e.topic(), e.partition()), e.offset())
                        {
                            core.tracker.set_floor(tp, o);
                            // The coordinator just told the group's offset: it is confirmed
                            // (librdkafka's statistics do not report it for a partition that
                            // was assigned at an explicit offset).
                            core.tracker.confirmed(tp, o);
                        }
                    }
                }
                Err(e) => tracing::warn!(source = %self.name, error = %e,
                    "cannot read the group's offsets; commits may move back while replaying"),
            }
        }
        tracing::info!(source = %self.name, partitions = tps.len(), resumed = seeks.len(),
            "partitions assigned");
        self.check_membership(consumer);
        self.ready.send_replace(true);
    }

    /// Stops sending the partitions' messages, waits for their in-flight batches, commits them
    /// synchronously and forgets them. A lost assignment (or an abort) commits nothing.
    fn on_revoke(&self, consumer: &BaseConsumer<Shared>, tpl: &TopicPartitionList, lost: bool) {
        let tps = self.tps_of(tpl);
        let target = {
            let mut core = self.core();
            core.tracker.drop_unsent(&tps);
            core.take_reports();
            core.tracker.inflight_seq_for(&tps)
        };
        if !lost && !self.aborted() {
            if let Some(target) = target
                && !self.closing.load(Ordering::SeqCst)
                && !self.drain(|t| t.durable_seq() >= target)
            {
                tracing::warn!(source = %self.name, partitions = tps.len(),
                    timeout_secs = self.drain_timeout.as_secs(),
                    "revoked partitions not drained in time; their newest batches will be read again by the next owner");
            }
            if !self.aborted() && !self.commit(consumer, Some(&tps), CommitMode::Sync) {
                tracing::warn!(source = %self.name, partitions = tps.len(),
                    "revoked partitions not committed; the next owner reads their newest messages again");
            }
        } else if lost {
            tracing::warn!(source = %self.name, partitions = tps.len(),
                "partition assignment lost; nothing committed for it");
        }
        let mut core = self.core();
        for tp in &tps {
            let labels = [
                &*self.name,
                core.tracker.topic(*tp),
                &tp.partition.to_string(),
            ];
            let _ = self.metrics.kafka_lag.remove_label_values(&labels);
            let _ = self.metrics.kafka_committed.remove_label_values(&labels);
        }
        core.tracker.revoke(&tps);
        let held = core.tracker.assigned().len();
        drop(core);
        self.metrics
            .kafka_assigned
            .with_label_values(&[&*self.name])
            .set(held as i64);
        tracing::info!(source = %self.name, partitions = tps.len(), "partitions revoked");
    }

    /// Whether a log line of `kind` may be written now: at most one per [`LOG_EVERY`] per kind, so
    /// a broker that is down does not flood the log; the next line says how many were held back.
    fn gate(&self, kind: &str) -> bool {
        let mut gate = self.log_gate.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let Some(entry) = gate.get_mut(kind) else {
            gate.insert(kind.to_owned(), (now, 0));
            return true;
        };
        if now.duration_since(entry.0) >= LOG_EVERY {
            if entry.1 > 0 {
                tracing::warn!(source = %self.name, kind, held_back = entry.1,
                    "similar kafka client messages were not logged in the last interval");
            }
            *entry = (now, 0);
            true
        } else {
            entry.1 += 1;
            false
        }
    }

    /// Whether the source can reach its brokers (metric; `/readyz` reads it).
    fn set_connected(&self, up: bool) {
        let was = self.connected.swap(up, Ordering::SeqCst);
        self.metrics
            .kafka_connected
            .with_label_values(&[&*self.name])
            .set(i64::from(up));
        if was != up {
            if up {
                tracing::info!(source = %self.name, "kafka brokers reachable");
            } else {
                tracing::error!(source = %self.name, "kafka brokers unreachable: nothing is read until they come back");
            }
        }
    }

    /// Counts the partitions held against those the topics have (metadata, bounded wait) and says
    /// so when another member of the group holds some: detection state cannot be split between
    /// processes, so a deployment must be the group's only member.
    fn check_membership(&self, consumer: &BaseConsumer<Shared>) {
        // Every configured topic counts, also one of which another member holds all partitions.
        let (held, topics) = {
            let core = self.core();
            (
                core.tracker.assigned().len(),
                core.tracker.topics().to_vec(),
            )
        };
        self.metrics
            .kafka_assigned
            .with_label_values(&[&*self.name])
            .set(held as i64);
        let mut total = 0usize;
        for topic in &topics {
            match consumer.fetch_metadata(Some(topic), METADATA_TIMEOUT) {
                Ok(m) => {
                    total += m
                        .topics()
                        .iter()
                        .map(|t| t.partitions().len())
                        .sum::<usize>()
                }
                Err(e) => {
                    tracing::debug!(source = %self.name, topic = %topic, error = %e, "cannot read topic metadata");
                    return;
                }
            }
        }
        if total == 0 {
            return;
        }
        self.metrics
            .kafka_partitions
            .with_label_values(&[&*self.name])
            .set(total as i64);
        if held < total {
            tracing::warn!(source = %self.name, assigned = held, partitions = total,
                "another member of the consumer group holds partitions of this source: detection needs every partition in one process (one replica per group); its alerts are incomplete until the other member leaves");
        }
    }

    /// Consumer lag from librdkafka statistics: high watermark minus the committed offset.
    fn update_lag(&self, json: &[u8]) {
        let Ok(stats) = serde_json::from_slice::<serde_json::Value>(json) else {
            return;
        };
        let mut core = self.core();
        for tp in core.tracker.assigned() {
            let topic = core.tracker.topic(tp).to_owned();
            let topic = topic.as_str();
            let p = &stats["topics"][topic]["partitions"][tp.partition.to_string()];
            let high = p["hi_offset"].as_i64().filter(|h| *h >= 0);
            if let Some(h) = high {
                core.tracker.set_high(tp, h);
            }
            if let Some(c) = p["committed_offset"].as_i64().filter(|c| *c >= 0) {
                core.tracker.confirmed(tp, c);
            }
            let committed = core.tracker.part(tp).and_then(|p| p.committed);
            let labels = [&*self.name, topic, &tp.partition.to_string()];
            if let Some(c) = committed {
                self.metrics
                    .kafka_committed
                    .with_label_values(&labels)
                    .set(c);
            }
            // Nothing committed yet: everything the broker still holds is lag.
            let base = committed.or(p["lo_offset"].as_i64().filter(|l| *l >= 0));
            if let (Some(high), Some(base)) = (high, base) {
                self.metrics
                    .kafka_lag
                    .with_label_values(&labels)
                    .set((high - base).max(0));
            }
        }
    }
}

/// The `status` label of `entrawatch_source_requests_total` for a consumer error.
pub fn status_of(e: &KafkaError) -> &'static str {
    use RDKafkaErrorCode as C;
    match e.rdkafka_error_code() {
        Some(
            C::SaslAuthenticationFailed
            | C::Authentication
            | C::TopicAuthorizationFailed
            | C::GroupAuthorizationFailed
            | C::ClusterAuthorizationFailed,
        ) => "unauthorized",
        Some(C::AllBrokersDown | C::BrokerTransportFailure | C::NetworkException) => "unavailable",
        _ => "transient",
    }
}

impl ClientContext for Shared {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        use RDKafkaLogLevel as L;
        if !matches!(level, L::Debug) && !self.gate(&format!("log/{fac}")) {
            return;
        }
        match level {
            L::Emerg | L::Alert | L::Critical | L::Error => {
                tracing::error!(source = %self.name, facility = fac, "librdkafka: {message}")
            }
            L::Warning => {
                tracing::warn!(source = %self.name, facility = fac, "librdkafka: {message}")
            }
            L::Notice | L::Info => {
                tracing::info!(source = %self.name, facility = fac, "librdkafka: {message}")
            }
            L::Debug => {
                tracing::debug!(source = %self.name, facility = fac, "librdkafka: {message}")
            }
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        let status = status_of(&error);
        self.metrics
            .requests
            .with_label_values(&[&self.name, status])
            .inc();
        if matches!(
            error.rdkafka_error_code(),
            Some(RDKafkaErrorCode::AllBrokersDown)
        ) {
            self.set_connected(false);
        }
        if self.gate(&format!("error/{status}")) {
            tracing::warn!(source = %self.name, error = %error, status, "kafka client error: {reason}");
        }
    }

    fn stats_raw(&self, statistics: &[u8]) {
        self.update_lag(statistics);
        if let Ok(stats) = serde_json::from_slice::<serde_json::Value>(statistics)
            && let Some(brokers) = stats["brokers"].as_object()
        {
            let up = brokers.values().any(|b| {
                b["state"].as_str() == Some("UP") && b["nodeid"].as_i64().unwrap_or(-1) >= 0
            });
            self.set_connected(up);
        }
    }
}

impl ConsumerContext for Shared {
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        let cooperative = matches!(
            consumer.rebalance_protocol(),
            RebalanceProtocol::Cooperative
        );
        let result = match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                self.on_assign(consumer, tpl);
                if cooperative {
                    consumer.incremental_assign(tpl)
                } else {
                    consumer.assign(tpl)
                }
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                self.on_revoke(consumer, tpl, consumer.assignment_lost());
                if cooperative {
                    consumer.incremental_unassign(tpl)
                } else {
                    consumer.unassign()
                }
            }
            other => {
                let code: RDKafkaErrorCode = other.into();
                tracing::error!(source = %self.name, error = %code, "rebalance failed; dropping the assignment");
                self.on_revoke(consumer, tpl, true);
                if cooperative {
                    consumer.incremental_unassign(tpl)
                } else {
                    consumer.unassign()
                }
            }
        };
        if let Err(e) = result {
            tracing::warn!(source = %self.name, error = %e, "cannot apply the new assignment");
        }
    }

    fn commit_callback(&self, result: KafkaResult<()>, offsets: &TopicPartitionList) {
        let mut done = Vec::new();
        let mut failed = Vec::new();
        {
            let core = self.core();
            for e in offsets.elements() {
                let (Some(tp), Offset::Offset(o)) =
                    (core.tracker.tp(e.topic(), e.partition()), e.offset())
                else {
                    continue;
                };
                if result.is_ok() && e.error().is_ok() {
                    done.push((tp, o));
                } else {
                    failed.push((tp, o));
                }
            }
        }
        if let Err(e) = &result
            && !failed.is_empty()
        {
            tracing::warn!(source = %self.name, error = %e, partitions = failed.len(),
                "offset commit failed; retried with the next commit");
            self.metrics
                .requests
                .with_label_values(&[&self.name, "error"])
                .inc();
        }
        self.commit_done(&done, true);
        self.commit_done(&failed, false);
    }
}
