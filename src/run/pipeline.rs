//! The detection stage of `entrawatch run`: batches in, durable notifications out.
//!
//! Each batch's events go first to the event-time aligner ([`Aligner`]), which releases them in
//! event-time order once no lane (Kafka partition, Graph stream, file folder) can still deliver an
//! earlier one: the order `replay` uses. Each released event that the alert stage
//! ([`AlertStage`]) has not seen before goes to the engine, and its findings to the alert stage,
//! which turns them into notifications; then the notifications *and the batch's source position*
//! are committed to the outbox in one transaction, the position with the aligner's released
//! watermark ([`checkpoint_row`]: how far detection had got, for a source resuming from it).
//! Late events (older than what the aligner has released) are counted, logged and detected at
//! once. Records that could not be parsed are
//! appended to `rejects.jsonl` in the state folder and counted. A batch's notices (a Graph source
//! that lost or regained access to a tenant) become system alerts routed like that tenant's
//! alerts ([`AlertStage::system`]), committed with the position that records them; they never
//! touch detection.
//!
//! **Acknowledgement.** A source hears that a batch is durable only when a snapshot holding the
//! detection state after it (and the aligner's buffer, which may still hold its events) is on
//! disk: a Kafka offset is never committed past state that a crash could lose.
//!
//! Everything here runs on one thread and uses event time only, so a restart from a snapshot makes
//! exactly the decisions the first run made and the outbox drops the repeats by id.

use std::collections::{BTreeMap, HashMap};
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use entrawatch_alert::AlertStage;
use entrawatch_alert::deliver::system::access_alert;
use entrawatch_alert::notify::Notification;
use entrawatch_alert::outbox::Outbox;
use entrawatch_detect::{Engine, Finding};
use entrawatch_ingest::align::Aligner;
use entrawatch_ingest::reader::{Item, Rejected};
use entrawatch_ingest::source::{Batch, CatchUp, Committed, DurableCheckpoint};
use entrawatch_ingest::{Event, Kind, TimeSource};
use serde_json::Value;
use std::time::Instant;
use tokio::sync::mpsc;

use super::metrics::RuntimeMetrics;

/// Late events are logged at most this often per lane (all are counted).
const LATE_LOG_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

/// A catch-up is logged at info when the source was behind this long (or it is its first since
/// the start); shorter ones at debug: a Kafka partition a few messages short of the high watermark
/// the last statistics reported catches up every few seconds under steady traffic.
const CATCH_UP_INFO_AFTER: std::time::Duration = std::time::Duration::from_secs(60);

/// A source's row in the outbox's `checkpoints` table: the batch's position and the aligner's
/// released watermark after the batch (every event received before it had gone through
/// detection), which tells a restart how far the position can be trusted without the aligner's
/// buffer.
pub fn checkpoint_row(position: &Value, detected_before: Option<DateTime<Utc>>) -> Value {
    serde_json::json!({
        "position": position,
        "detected_before": detected_before.map(|t| t.to_rfc3339()),
    })
}

/// A row written by [`checkpoint_row`] (`None` for any other shape).
pub fn read_checkpoint_row(row: &Value) -> Option<DurableCheckpoint> {
    let position = row.get("position")?.clone();
    let detected_before = match row.get("detected_before")? {
        Value::Null => None,
        Value::String(s) => Some(DateTime::parse_from_rfc3339(s).ok()?.with_timezone(&Utc)),
        _ => return None,
    };
    Some(DurableCheckpoint {
        position,
        detected_before,
    })
}

/// The detection stage.
pub struct Pipeline {
    pub engine: Engine,
    pub alerts: AlertStage,
    pub outbox: Outbox,
    /// Durable position of every source (what a snapshot records).
    pub positions: BTreeMap<String, Value>,
    pub acks: HashMap<String, mpsc::UnboundedSender<Committed>>,
    pub metrics: RuntimeMetrics,
    pub rejects_path: PathBuf,
    pub wake_delivery: Arc<tokio::sync::Notify>,
    /// Orders events of every source by event time before detection.
    pub aligner: Aligner,
    /// Per source, the newest batch taken and not yet acknowledged (waits for a snapshot).
    unacked: BTreeMap<String, u64>,
    /// Reused for each release; events stay in the boxes the parsers made (moved, never copied).
    #[allow(clippy::vec_box)]
    released: Vec<Box<Event>>,
    /// Per `source/lane`: when a late event was last logged, and how many were not since.
    late_logged: HashMap<String, (Option<Instant>, u64)>,
    findings: Vec<Finding>,
    /// When each source has caught up with what waited for it (logged).
    catch_up: CatchUp,
    /// Delivery's `entrawatch_outbox_pending` gauge, raised here as soon as rows are committed:
    /// delivery refreshes it once a second, and a scrape between the commit and that refresh
    /// would otherwise see the aligner empty and nothing pending while rows wait to be sent.
    pub outbox_pending: Option<prometheus::IntGaugeVec>,
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline")
            .field("positions", &self.positions)
            .finish_non_exhaustive()
    }
}

/// What one batch did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct BatchOutcome {
    pub events: usize,
    pub duplicates: usize,
    pub rejected: usize,
    pub notifications: usize,
    pub inserted: usize,
}

impl Pipeline {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        engine: Engine,
        alerts: AlertStage,
        outbox: Outbox,
        positions: BTreeMap<String, Value>,
        metrics: RuntimeMetrics,
        rejects_path: PathBuf,
        wake_delivery: Arc<tokio::sync::Notify>,
        aligner: Aligner,
    ) -> Pipeline {
        Pipeline {
            engine,
            alerts,
            outbox,
            positions,
            acks: HashMap::new(),
            metrics,
            rejects_path,
            wake_delivery,
            aligner,
            unacked: BTreeMap::new(),
            released: Vec::new(),
            late_logged: HashMap::new(),
            findings: Vec::new(),
            catch_up: CatchUp::default(),
            outbox_pending: None,
        }
    }

    /// Takes one batch: its events go to the aligner (late ones straight to detection), whatever
    /// the aligner can release goes through detection in event-time order, and the notifications
    /// and the batch's position are committed to the outbox in one transaction. The batch is
    /// acknowledged to its source only by the next snapshot ([`Pipeline::ack_durable`]).
    pub fn process(&mut self, batch: Batch) -> anyhow::Result<BatchOutcome> {
        let mut outcome = BatchOutcome::default();
        let mut rows: Vec<Notification> = Vec::new();
        let mut rejects: Vec<Rejected> = Vec::new();
        let now = Utc::now();
        let wall = Instant::now();
        self.log_catch_up(&batch, wall);
        let mut events = Vec::with_capacity(batch.items.len());
        for (i, item) in batch.items.into_iter().enumerate() {
            match item {
                Item::Event(event) => events.push((i, event)),
                Item::Rejected(r) => {
                    outcome.rejected += 1;
                    rejects.push(r);
                }
                Item::Skipped { .. } | Item::EmptyFile { .. } => {}
            }
        }
        // Rejects are kept first: nothing after this point needs them.
        if !rejects.is_empty() {
            self.keep_rejects(&batch.source, &rejects)?;
        }
        let mut late = Vec::new();
        self.aligner.offer_batch(
            &batch.source,
            &batch.lanes,
            &batch.item_lanes,
            events,
            wall,
            &mut late,
        );
        for l in late {
            self.on_late(&l);
            self.detect(&l.event, now, &mut rows, &mut outcome);
        }
        self.release(Some(wall), now, &mut rows, &mut outcome);
        for notice in &batch.notices {
            let alert = access_alert(&batch.source, notice, now);
            tracing::info!(source = %batch.source, tenant = %notice.tenant_label,
                alert = %alert.id, rule = %alert.rule, "system alert raised");
            self.alerts.system(alert, now, &mut rows);
        }
        let checkpoint = [(
            batch.source.to_string(),
            checkpoint_row(&batch.position, self.aligner.released()),
        )];
        self.commit(&rows, &checkpoint, &mut outcome)?;
        self.positions
            .insert(batch.source.to_string(), batch.position);
        self.unacked.insert(batch.source.to_string(), batch.seq);
        self.metrics
            .pipeline_latency
            .observe(batch.received_at.elapsed().as_secs_f64());
        Ok(outcome)
    }

    /// Logs a source that has caught up: "read N records, caught up", once per catch-up.
    fn log_catch_up(&mut self, batch: &Batch, now: Instant) {
        let Some(c) = self
            .catch_up
            .observe(&batch.source, batch.items.len(), &batch.lanes, now)
        else {
            return;
        };
        let behind_secs = c.behind_for.as_secs();
        if c.first || c.behind_for >= CATCH_UP_INFO_AFTER {
            tracing::info!(source = %batch.source, records = c.records, behind_secs,
                "read {} records, caught up", c.records);
        } else {
            tracing::debug!(source = %batch.source, records = c.records, behind_secs,
                "read {} records, caught up", c.records);
        }
    }

    /// Releases what lanes gone idle no longer hold back (called once a second).
    pub fn tick(&mut self) -> anyhow::Result<BatchOutcome> {
        let mut outcome = BatchOutcome::default();
        let mut rows = Vec::new();
        self.release(Some(Instant::now()), Utc::now(), &mut rows, &mut outcome);
        self.commit(&rows, &[], &mut outcome)?;
        Ok(outcome)
    }

    /// Every source has finished: nothing can precede what is buffered any more, so all of it
    /// goes through detection now.
    pub fn flush(&mut self) -> anyhow::Result<BatchOutcome> {
        let mut outcome = BatchOutcome::default();
        let mut rows = Vec::new();
        self.release(None, Utc::now(), &mut rows, &mut outcome);
        self.commit(&rows, &[], &mut outcome)?;
        Ok(outcome)
    }

    /// Commits the notifications (and a batch's position, when given) in one outbox transaction,
    /// wakes delivery when rows were new, and sets the state and aligner gauges. Nothing to write
    /// (no event detected, no row, no position) writes nothing.
    fn commit(
        &mut self,
        rows: &[Notification],
        checkpoint: &[(String, Value)],
        outcome: &mut BatchOutcome,
    ) -> anyhow::Result<()> {
        outcome.notifications = rows.len();
        if outcome.events > 0 || !rows.is_empty() || !checkpoint.is_empty() {
            outcome.inserted = self.outbox.commit(rows, checkpoint)?;
            if outcome.inserted > 0 {
                self.raise_pending(rows);
                self.wake_delivery.notify_one();
            }
            self.alerts.evict_closed();
            self.metrics.observe_state(&self.engine);
        }
        self.metrics
            .aligner_buffered
            .set(self.aligner.buffered() as i64);
        if let Some(w) = self.aligner.released() {
            self.metrics.watermark.set(w.timestamp() as f64);
        }
        let forced = self.aligner.forced();
        self.metrics
            .aligner_forced
            .inc_by(forced.saturating_sub(self.metrics.aligner_forced.get()));
        Ok(())
    }

    /// Sets the pending gauge of every destination `rows` go to from the outbox, before the
    /// aligner gauge says the events behind them have left it.
    fn raise_pending(&self, rows: &[Notification]) {
        let Some(gauge) = &self.outbox_pending else {
            return;
        };
        let destinations: std::collections::BTreeSet<&str> =
            rows.iter().map(|r| r.destination.as_str()).collect();
        for d in destinations {
            match self.outbox.pending_of(d) {
                Ok((n, _)) => gauge.with_label_values(&[d]).set(n as i64),
                Err(e) => {
                    tracing::warn!(destination = d, error = %e, "reading pending rows failed")
                }
            }
        }
    }

    /// Tells every source that its batches up to the newest one taken are durable: called once a
    /// snapshot holding their state (and the aligner's buffer) is on disk.
    pub fn ack_durable(&mut self) {
        let unacked = self.take_unacked();
        self.ack(unacked);
    }

    /// The newest batch taken per source and not yet acknowledged, handed over to whoever makes
    /// them durable (a snapshot written on another thread), which then calls [`Pipeline::ack`], or
    /// [`Pipeline::return_unacked`] if it failed.
    pub fn take_unacked(&mut self) -> BTreeMap<String, u64> {
        std::mem::take(&mut self.unacked)
    }

    /// Tells each source that its batches up to `seq` are durable.
    pub fn ack(&self, durable: BTreeMap<String, u64>) {
        for (source, seq) in durable {
            if let Some(ack) = self.acks.get(source.as_str()) {
                let _ = ack.send(Committed { seq });
            }
        }
    }

    /// Puts back batches whose snapshot failed: the next snapshot acknowledges them (with any
    /// newer batch of the same source taken meanwhile).
    pub fn return_unacked(&mut self, failed: BTreeMap<String, u64>) {
        for (source, seq) in failed {
            let newest = self.unacked.entry(source).or_insert(seq);
            *newest = (*newest).max(seq);
        }
    }

    /// Whether batches wait for a snapshot to be acknowledged.
    pub fn has_unacked(&self) -> bool {
        !self.unacked.is_empty()
    }

    /// Detects what the aligner releases: what no lane can still precede as of `wall`, or with
    /// `None` everything it holds.
    fn release(
        &mut self,
        wall: Option<Instant>,
        now: DateTime<Utc>,
        rows: &mut Vec<Notification>,
        outcome: &mut BatchOutcome,
    ) {
        let mut out = std::mem::take(&mut self.released);
        match wall {
            Some(wall) => self.aligner.release(wall, &mut out),
            None => self.aligner.release_all(&mut out),
        }
        for event in out.drain(..) {
            self.detect(&event, now, rows, outcome);
        }
        self.released = out;
    }

    fn on_late(&mut self, late: &entrawatch_ingest::align::Late) {
        // Directory snapshots have no event time: they are context, not late.
        if late.event.meta.time_source == TimeSource::Snapshot {
            return;
        }
        let behind = late.behind.num_seconds();
        self.metrics
            .events_late
            .with_label_values(&[&*late.source, late.lane.as_str()])
            .inc();
        self.metrics
            .events_late_seconds
            .with_label_values(&[&*late.source])
            .observe(behind as f64);
        // One line per lane every LATE_LOG_EVERY at most, with how many came since the last one.
        let now = Instant::now();
        let key = format!("{}/{}", late.source, late.lane);
        let (last, held) = self.late_logged.entry(key).or_insert((None, 0));
        if last.is_some_and(|t| now.duration_since(t) < LATE_LOG_EVERY) {
            *held += 1;
            return;
        }
        tracing::warn!(source = %late.source, lane = %late.lane, record = %late.event.meta.id,
            event_time = %late.event.meta.time.to_rfc3339(), behind_secs = behind, more_since_last_line = *held,
            "late event: older than what detection has already seen; processed now, out of order");
        *last = Some(now);
        *held = 0;
    }

    fn detect(
        &mut self,
        event: &Event,
        now: DateTime<Utc>,
        rows: &mut Vec<Notification>,
        outcome: &mut BatchOutcome,
    ) {
        if !self.alerts.first_sight(event) {
            outcome.duplicates += 1;
            self.metrics.events_duplicate.inc();
            return;
        }
        outcome.events += 1;
        self.metrics.events_processed.inc();
        let kind = event.kind();
        let t = event.meta.time.timestamp();
        // Directory context (role assignments) is a snapshot, not a log stream.
        if !matches!(kind, Kind::RoleAssignment | Kind::RoleEligibility) && t > 0 {
            self.metrics
                .stream_last_event
                .with_label_values(&[&event.meta.tenant_id, kind.as_str()])
                .set(t as f64);
        }
        self.engine.process(event, &mut self.findings);
        for finding in self.findings.drain(..) {
            let (rule, severity) = (finding.rule, finding.severity);
            self.metrics.findings.with_label_values(&[rule]).inc();
            let added = self.alerts.add(finding, now, rows);
            if added.opened {
                self.metrics
                    .alerts
                    .with_label_values(&[rule, severity.as_str()])
                    .inc();
            }
            if let Some(why) = added.suppressed {
                self.metrics
                    .suppressed
                    .with_label_values(&[why.as_str()])
                    .inc();
            }
        }
    }

    fn keep_rejects(&mut self, source: &str, rejects: &[Rejected]) -> anyhow::Result<()> {
        use anyhow::Context as _;
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.rejects_path)
            .with_context(|| format!("cannot open {}", self.rejects_path.display()))?;
        let mut out = Vec::new();
        for r in rejects {
            tracing::warn!(source, at = %r.at, field = r.field.as_deref().unwrap_or(""), reason = %r.reason, "record rejected");
            let mut line = serde_json::to_value(r).unwrap_or(Value::Null);
            if let Value::Object(m) = &mut line {
                m.insert("source".into(), Value::String(source.to_owned()));
            }
            serde_json::to_writer(&mut out, &line)?;
            out.push(b'\n');
        }
        file.write_all(&out)
            .with_context(|| format!("cannot write {}", self.rejects_path.display()))?;
        Ok(())
    }
}
