//! One destination's worker: takes due rows from the outbox, sends them as one message per group,
//! and moves each row on according to the [`Verdict`].
//!
//! One step: pick the oldest due group → take a rate token → coalesce older rows of the same alerts
//! → lease → render and send → mark. Between steps the worker expires rows past their deadline and
//! updates its gauges. State kept in memory (a throttle pause, an open circuit) only delays sends;
//! everything that must survive a crash is in the outbox.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::{Notify, watch};

use crate::destination::ResolvedDestination;
use crate::metrics::DeliveryMetrics;
use crate::notify::{Kind, Notification};
use crate::outbox::{Batch, ExpiredRow, Retry};
use crate::outbox::{OutboxError, RETENTION};
use crate::record::AlertRecord;
use crate::sink::classify::{Outcome, Verdict};
use crate::sink::{self, Message};

use super::backoff::{Backoff, Jitter, TokenBucket};
use super::clock::Clock;
use super::db::Db;
use super::fault::{FaultPlan, FaultPoint};
use super::system::{self, SystemEvent, system_notifications};

/// Rows in one message at most (the renderer shows the rest as "+N more").
const MAX_BATCH: usize = 500;
/// Longest wait before the worker looks at the outbox again on its own.
const MAX_IDLE: Duration = Duration::from_secs(5);
/// How often deadlines and gauges are checked.
const HOUSEKEEPING_EVERY: Duration = Duration::from_secs(1);
const PURGE_EVERY: Duration = Duration::from_secs(3600);
/// Floor of a throttle pause when the receiver gives no `Retry-After`.
const MIN_THROTTLE: Duration = Duration::from_secs(1);

/// While draining, rows due within this long (grouping waits, retry backoffs) are sent at once.
const FLUSH_HORIZON: Duration = Duration::from_secs(24 * 3600);

/// What the workers are told to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    Running,
    /// Deliver what is due, then exit when idle.
    Draining,
    /// Finish the message in flight, release leases, exit.
    Stop,
}

/// Everything a worker shares with its [`super::Delivery`].
#[derive(Debug, Clone)]
pub(crate) struct Shared {
    pub metrics: DeliveryMetrics,
    pub clock: Arc<dyn Clock>,
    pub fault: FaultPlan,
    pub backoff: Backoff,
    /// Every destination's wake-up, to poke a fallback after rerouting to it.
    pub wakers: Arc<BTreeMap<String, Arc<Notify>>>,
    pub control: watch::Receiver<Phase>,
}

struct Circuit {
    probe_at: DateTime<Utc>,
}

enum Step {
    /// Something happened: look again at once.
    Worked,
    /// Nothing to do before this time.
    Idle(DateTime<Utc>),
    /// The fault plan fired: stop without touching anything.
    Crashed,
}

pub(crate) struct Worker {
    dest: ResolvedDestination,
    db: Db,
    shared: Shared,
    known: BTreeSet<String>,
    client: reqwest::Client,
    bucket: TokenBucket,
    jitter: Jitter,
    throttled_until: Option<DateTime<Utc>>,
    throttle_streak: u32,
    circuit: Option<Circuit>,
    next_housekeeping: Option<DateTime<Utc>>,
    next_purge: Option<DateTime<Utc>>,
    /// Stopping: send what is held for grouping instead of leaving it for the next start.
    flush_held: bool,
}

fn add(t: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    t + chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX / 4)
}

fn name_hash(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

impl Worker {
    pub(crate) fn new(
        dest: ResolvedDestination,
        db: Db,
        shared: Shared,
        seed: Option<u64>,
    ) -> Worker {
        let now = shared.clock.now();
        let bucket = TokenBucket::new(dest.rate_per_sec, dest.burst, now).unwrap_or_else(|_| {
            tracing::warn!(destination = %dest.name, "invalid rate or burst, using 1/s burst 1");
            TokenBucket::new(1.0, 1, now).expect("valid bucket")
        });
        let jitter = match seed {
            Some(s) => Jitter::seeded(s ^ name_hash(&dest.name)),
            None => Jitter::from_time(name_hash(&dest.name)),
        };
        Worker {
            client: sink::client(dest.timeout),
            known: shared.wakers.keys().cloned().collect(),
            dest,
            db,
            shared,
            bucket,
            jitter,
            throttled_until: None,
            throttle_streak: 0,
            circuit: None,
            next_housekeeping: None,
            next_purge: None,
            flush_held: false,
        }
    }

    fn name(&self) -> &str {
        &self.dest.name
    }

    fn now(&self) -> DateTime<Utc> {
        self.shared.clock.now()
    }

    pub(crate) async fn run(mut self) {
        let wake = self
            .shared
            .wakers
            .get(self.name())
            .cloned()
            .unwrap_or_default();
        // every series exists from the start, at 0
        self.set_paused("throttled", false);
        self.set_paused("circuit_open", false);
        loop {
            if self.shared.fault.crashed() {
                return;
            }
            let phase = *self.shared.control.borrow();
            if phase == Phase::Stop {
                break;
            }
            let now = self.now();
            // Stopping: notifications held back only to be grouped go out now rather than wait
            // in the outbox for the next start.
            self.flush_held = phase == Phase::Draining;
            if let Err(e) = self.housekeeping(now).await {
                tracing::error!(destination = %self.dest.name, error = %e, "outbox housekeeping failed");
            }
            let idle_until = match self.step(now).await {
                Ok(Step::Worked) => continue,
                Ok(Step::Crashed) => return,
                Ok(Step::Idle(until)) => until,
                Err(e) => {
                    tracing::error!(destination = %self.dest.name, error = %e, "delivery step failed");
                    add(now, Duration::from_secs(1))
                }
            };
            if phase == Phase::Draining {
                break;
            }
            let until = idle_until.min(add(now, MAX_IDLE));
            let sleep = self.shared.clock.sleep_until(until);
            let mut control = self.shared.control.clone();
            tokio::select! {
                () = sleep => {}
                () = wake.notified() => {}
                _ = control.changed() => {}
            }
        }
        let name = self.dest.name.clone();
        match self.db.run(move |o| o.requeue_inflight(Some(&name))).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(destination = %self.dest.name, rows = n, "leases released"),
            Err(e) => {
                tracing::error!(destination = %self.dest.name, error = %e, "releasing leases failed")
            }
        }
        self.update_gauges().await;
    }

    async fn step(&mut self, now: DateTime<Utc>) -> Result<Step, OutboxError> {
        if let Some(until) = self.throttled_until {
            if now < until {
                return Ok(Step::Idle(until));
            }
            self.throttled_until = None;
            self.set_paused("throttled", false);
        }
        if let Some(circuit) = &self.circuit
            && now < circuit.probe_at
        {
            let probe_at = circuit.probe_at;
            self.reroute(now).await?;
            return Ok(Step::Idle(probe_at));
        }
        let name = self.dest.name.clone();
        let due_by = if self.flush_held {
            add(now, FLUSH_HORIZON)
        } else {
            now
        };
        let batch = self
            .db
            .run(move |o| o.next_batch(&name, due_by, MAX_BATCH))
            .await?;
        let Some(batch) = batch else {
            let name = self.dest.name.clone();
            let (due, deadline) = self
                .db
                .run(move |o| Ok((o.next_due(&name)?, o.next_deadline(&name)?)))
                .await?;
            let next = [due, deadline, self.next_housekeeping]
                .into_iter()
                .flatten()
                .min()
                .unwrap_or_else(|| add(now, MAX_IDLE));
            return Ok(Step::Idle(next.max(now)));
        };
        if let Err(at) = self.bucket.try_take(now) {
            return Ok(Step::Idle(at));
        }
        let Some(batch) = self.coalesce_and_lease(batch, now).await? else {
            return Ok(Step::Worked);
        };
        if self.shared.fault.hit(FaultPoint::AfterLease) {
            return Ok(Step::Crashed);
        }
        let minimal = batch.rows.iter().any(|r| r.minimal);
        let alerts: Vec<AlertRecord> = batch
            .rows
            .iter()
            .map(|r| r.notification.alert.clone())
            .collect();
        let ids: Vec<String> = batch
            .rows
            .iter()
            .map(|r| r.notification.id.clone())
            .collect();
        let head = &batch.rows[0].notification;
        let since_last = if head.kind == Kind::Reminder {
            let (name, alert_id, count) = (
                self.dest.name.clone(),
                head.alert_id.clone(),
                head.alert.count,
            );
            self.db
                .run(move |o| o.last_delivered_count(&name, &alert_id))
                .await?
                .map(|before| count.saturating_sub(before))
        } else {
            None
        };
        let msg = Message {
            notification_id: &head.id,
            kind: head.kind,
            alerts: &alerts,
            now,
            since_last,
            notification_ids: &ids,
        };
        let outcome = self
            .dest
            .sink
            .send(&self.client, &self.dest.name, &msg, minimal)
            .await;
        if self.shared.fault.hit(FaultPoint::AfterSend) {
            return Ok(Step::Crashed);
        }
        self.shared
            .metrics
            .attempts
            .with_label_values(&[self.name(), outcome.class.as_str()])
            .inc();
        self.settle(batch, minimal, outcome).await?;
        Ok(Step::Worked)
    }

    /// Folds older pending rows of the batch's alerts into the newest, leases what is left, and
    /// orders it most severe first.
    async fn coalesce_and_lease(
        &mut self,
        batch: Batch,
        now: DateTime<Utc>,
    ) -> Result<Option<Batch>, OutboxError> {
        let name = self.dest.name.clone();
        let until = add(now, self.dest.timeout + Duration::from_secs(60));
        let (batch, leased, coalesced) = self
            .db
            .run(move |o| {
                let claim = o.claim(&name, &batch, until)?;
                Ok((batch, claim.leased, claim.coalesced))
            })
            .await?;
        for (_, kind) in &coalesced {
            self.count(kind.as_str(), "coalesced", 1);
        }
        let leased: BTreeSet<String> = leased.into_iter().collect();
        let mut rows = batch.rows;
        rows.retain(|r| leased.contains(&r.notification.id));
        if rows.is_empty() {
            return Ok(None);
        }
        rows.sort_by(|a, b| {
            let (a, b) = (&a.notification, &b.notification);
            b.severity
                .cmp(&a.severity)
                .then(a.created_at.cmp(&b.created_at))
                .then(a.id.cmp(&b.id))
        });
        Ok(Some(Batch {
            group_key: batch.group_key,
            rows,
        }))
    }

    /// Moves the leased rows on after a send.
    async fn settle(
        &mut self,
        batch: Batch,
        minimal: bool,
        outcome: Outcome,
    ) -> Result<(), OutboxError> {
        let now = self.now();
        let ids: Vec<String> = batch
            .rows
            .iter()
            .map(|r| r.notification.id.clone())
            .collect();
        let status = outcome.status_text();
        let detail = outcome.detail.clone();
        match outcome.verdict {
            Verdict::Delivered => {
                let (name, group) = (self.dest.name.clone(), batch.group_key.clone());
                self.db
                    .run(move |o| o.mark_delivered(&name, &group, &refs(&ids), now, &status))
                    .await?;
                let latency = self
                    .shared
                    .metrics
                    .latency
                    .with_label_values(&[self.name()]);
                for r in &batch.rows {
                    let secs =
                        (now - r.notification.created_at).num_milliseconds().max(0) as f64 / 1000.0;
                    latency.observe(secs);
                    self.count(r.notification.kind.as_str(), "delivered", 1);
                }
                self.throttle_streak = 0;
                if self.circuit.take().is_some() {
                    tracing::info!(destination = %self.dest.name, "destination recovered, circuit closed");
                    self.set_paused("circuit_open", false);
                }
            }
            Verdict::Throttled => {
                let backoff = self
                    .shared
                    .backoff
                    .delay(self.throttle_streak, &mut self.jitter)
                    .max(MIN_THROTTLE);
                self.throttle_streak = self.throttle_streak.saturating_add(1);
                let mut until = add(now, backoff);
                if let Some(ra) = outcome.retry_after {
                    until = until.max(ra.until(now));
                }
                tracing::warn!(destination = %self.dest.name, status = %status, until = %until, "destination throttled, pausing it");
                self.throttled_until = Some(until);
                self.set_paused("throttled", true);
                let retry = Retry {
                    next_attempt_at: until,
                    count_attempt: false,
                    minimal,
                    last_status: status,
                    last_error: detail,
                };
                self.db
                    .run(move |o| o.mark_retry(&refs(&ids), &retry))
                    .await?;
            }
            Verdict::Transient => {
                let n = batch.rows.iter().map(|r| r.attempts).max().unwrap_or(0);
                let mut next = add(now, self.shared.backoff.delay(n, &mut self.jitter));
                if let Some(ra) = outcome.retry_after {
                    next = next.max(ra.until(now));
                }
                tracing::warn!(destination = %self.dest.name, status = %status, detail = %detail, retry_at = %next, "send failed, will retry");
                let retry = Retry {
                    next_attempt_at: next,
                    count_attempt: true,
                    minimal,
                    last_status: status,
                    last_error: detail,
                };
                self.db
                    .run(move |o| o.mark_retry(&refs(&ids), &retry))
                    .await?;
            }
            Verdict::PayloadBug if !minimal => {
                tracing::warn!(destination = %self.dest.name, status = %status, detail = %detail, "payload refused, retrying once with the minimal render");
                let retry = Retry {
                    next_attempt_at: now,
                    count_attempt: true,
                    minimal: true,
                    last_status: status,
                    last_error: detail,
                };
                self.db
                    .run(move |o| o.mark_retry(&refs(&ids), &retry))
                    .await?;
            }
            Verdict::PayloadBug => {
                tracing::error!(destination = %self.dest.name, status = %status, detail = %detail, "minimal payload refused too, dead-lettering");
                let error = format!("refused even in minimal form: {detail}");
                self.db
                    .run(move |o| o.mark_dead(&refs(&ids), &status, &error))
                    .await?;
                self.shared
                    .metrics
                    .render_errors
                    .with_label_values(&[self.name()])
                    .inc();
                let dead: Vec<ExpiredRow> = batch
                    .rows
                    .iter()
                    .map(|r| ExpiredRow {
                        notification_id: r.notification.id.clone(),
                        alert_id: r.notification.alert_id.clone(),
                        kind: r.notification.kind,
                        fallback: r.notification.fallback.clone(),
                        last_error: Some(outcome.detail.clone()),
                    })
                    .collect();
                self.dead_letters(&dead, "refused as malformed", now)
                    .await?;
            }
            Verdict::Broken => {
                tracing::error!(destination = %self.dest.name, status = %status, detail = %detail, "destination broken, opening its circuit");
                let retry = Retry {
                    next_attempt_at: now,
                    count_attempt: true,
                    minimal,
                    last_status: status.clone(),
                    last_error: detail.clone(),
                };
                self.db
                    .run(move |o| o.mark_retry(&refs(&ids), &retry))
                    .await?;
                let first_opening = self.circuit.is_none();
                self.circuit = Some(Circuit {
                    probe_at: add(now, self.dest.probe_interval),
                });
                self.set_paused("circuit_open", true);
                let to = self.reroute(now).await?;
                if first_opening {
                    self.raise_broken(&to, &status, &detail, now).await?;
                }
            }
        }
        Ok(())
    }

    /// Reroutes pending rows with a fallback; returns the destinations that received rows.
    async fn reroute(&mut self, now: DateTime<Utc>) -> Result<Vec<String>, OutboxError> {
        let (name, known) = (self.dest.name.clone(), self.known.clone());
        let moved = self.db.run(move |o| o.reroute(&name, now, &known)).await?;
        let mut to = BTreeSet::new();
        for r in &moved {
            self.count(r.kind.as_str(), "rerouted", 1);
            to.extend(r.to.iter().cloned());
        }
        if !moved.is_empty() {
            tracing::warn!(destination = %self.dest.name, rows = moved.len(), to = ?to, "rows rerouted to fallback");
        }
        let to: Vec<String> = to.into_iter().collect();
        self.poke(&to);
        Ok(to)
    }

    async fn raise_broken(
        &mut self,
        to: &[String],
        status: &str,
        detail: &str,
        now: DateTime<Utc>,
    ) -> Result<(), OutboxError> {
        if to.is_empty() {
            tracing::error!(destination = %self.dest.name, "destination broken and no fallback to tell");
            return Ok(());
        }
        let event = system::destination_broken(&self.dest, status, detail, to, now);
        self.raise(&event, to, now).await
    }

    async fn dead_letters(
        &mut self,
        rows: &[ExpiredRow],
        why: &str,
        now: DateTime<Utc>,
    ) -> Result<(), OutboxError> {
        if rows.is_empty() {
            return Ok(());
        }
        self.shared
            .metrics
            .dead_letters
            .with_label_values(&[self.name()])
            .inc_by(rows.len() as u64);
        for r in rows {
            self.count(r.kind.as_str(), "dead", 1);
        }
        let to = self.fallbacks(rows);
        tracing::error!(destination = %self.dest.name, rows = rows.len(), reason = why, "notifications dead-lettered");
        let event = system::dead_letters(&self.dest.name, rows, why);
        self.raise(&event, &to, now).await
    }

    fn fallbacks(&self, rows: &[ExpiredRow]) -> Vec<String> {
        rows.iter()
            .flat_map(|r| r.fallback.iter())
            .filter(|f| f.as_str() != self.dest.name && self.known.contains(f.as_str()))
            .cloned()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect()
    }

    async fn raise(
        &mut self,
        event: &SystemEvent,
        to: &[String],
        now: DateTime<Utc>,
    ) -> Result<(), OutboxError> {
        if to.is_empty() {
            return Ok(());
        }
        let rows: Vec<Notification> = system_notifications(event, to, now);
        self.db.run(move |o| o.insert(&rows)).await?;
        self.poke(to);
        Ok(())
    }

    fn poke(&self, to: &[String]) {
        for d in to {
            if let Some(n) = self.shared.wakers.get(d) {
                n.notify_one();
            }
        }
    }

    /// Deadlines, gauges and retention, at most once per [`HOUSEKEEPING_EVERY`] of clock time.
    async fn housekeeping(&mut self, now: DateTime<Utc>) -> Result<(), OutboxError> {
        if self.next_housekeeping.is_some_and(|t| now < t) {
            return Ok(());
        }
        self.next_housekeeping = Some(add(now, HOUSEKEEPING_EVERY));
        let (name, deadline) = (self.dest.name.clone(), self.dest.deadline);
        let expired = self.db.run(move |o| o.expire(&name, now, deadline)).await?;
        self.dead_letters(&expired.dead, "past their deadline", now)
            .await?;
        for r in &expired.alarmed {
            let to = self.fallbacks(std::slice::from_ref(r));
            tracing::error!(destination = %self.dest.name, alert = %r.alert_id, "critical notification past its deadline, still retrying");
            let event = system::deadline_passed(&self.dest, r);
            self.raise(&event, &to, now).await?;
        }
        if self.next_purge.is_none_or(|t| now >= t) {
            self.next_purge = Some(add(now, PURGE_EVERY));
            let purged = self.db.run(move |o| o.purge(now, RETENTION)).await?;
            if purged > 0 {
                tracing::info!(destination = %self.dest.name, rows = purged, "old delivered rows purged");
            }
        }
        self.update_gauges().await;
        Ok(())
    }

    async fn update_gauges(&self) {
        let name = self.dest.name.clone();
        match self.db.run(move |o| o.pending_of(&name)).await {
            Ok((pending, oldest)) => {
                let m = &self.shared.metrics;
                m.pending
                    .with_label_values(&[self.name()])
                    .set(pending as i64);
                let age = oldest.map_or(0, |t| (self.now() - t).num_seconds().max(0));
                m.oldest_pending_age
                    .with_label_values(&[self.name()])
                    .set(age);
            }
            Err(e) => {
                tracing::warn!(destination = %self.dest.name, error = %e, "reading pending rows failed")
            }
        }
    }

    fn set_paused(&self, reason: &str, on: bool) {
        self.shared
            .metrics
            .paused
            .with_label_values(&[self.name(), reason])
            .set(i64::from(on));
    }

    fn count(&self, kind: &str, outcome: &str, n: u64) {
        self.shared
            .metrics
            .notifications
            .with_label_values(&[self.name(), kind, outcome])
            .inc_by(n);
    }
}

fn refs(ids: &[String]) -> Vec<&str> {
    ids.iter().map(String::as_str).collect()
}
