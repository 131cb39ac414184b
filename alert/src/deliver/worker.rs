//! One destination's worker: takes due rows from the outbox, sends them as one message per group,
//! and moves each row on according to the [`Verdict`].
//!
//! One send: pick the oldest due group that has nothing in flight → take a rate token → coalesce
//! older rows of the same alerts → lease → render and send → mark. Up to
//! [`ResolvedDestination::max_in_flight`] sends run at once, each its own task, so one request that
//! hangs does not hold the others; the worker alone leases and marks, in the order the answers
//! come. A group or an alert with a message in flight is passed over until that message is marked,
//! so one alert's updates go out in order. Between sends the worker expires rows past their
//! deadline and updates its gauges. State kept in memory (a throttle pause, an open circuit, how
//! long connections have failed) only delays sends; everything that must survive a crash is in the
//! outbox: a crash leaves the rows in flight leased, and the next start sends them again.
//!
//! This file holds the loop (lease, send, housekeeping); [`settle`] holds what an answer does to
//! the rows, the circuit and the fallbacks.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::{Notify, watch};
use tokio::task::{Id, JoinError, JoinSet};

use crate::destination::ResolvedDestination;
use crate::metrics::DeliveryMetrics;
use crate::notify::{Kind, Notification};
use crate::outbox::{Batch, ExpiredRow, Refusal, Refused, Retry};
use crate::outbox::{OutboxError, RETENTION};
use crate::record::AlertRecord;
use crate::sink::classify::{Outcome, Verdict};
use crate::sink::{self, Message};

use super::backoff::{Backoff, Jitter, TokenBucket};
use super::clock::Clock;
use super::db::Db;
use super::fault::{FaultPlan, FaultPoint};
use super::system::{self, SystemEvent, system_notifications};

mod settle;

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
    /// Finish the messages in flight, release leases, exit.
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
    /// The number of the last send started before the circuit opened: such a send succeeding says
    /// nothing about the destination now, only a later one (the probe) closes the circuit.
    opened_after: u64,
}

/// Why a circuit opens.
#[derive(Debug, Clone, Copy)]
enum Opening {
    /// The receiver answered as a dead or unauthorised URL.
    Broken,
    /// No connection could be made since then.
    Unreachable { since: DateTime<Utc> },
}

/// A message being sent: its leased rows, how it was rendered, which send it is.
struct InFlight {
    batch: Batch,
    minimal: bool,
    number: u64,
}

enum Step {
    /// Something happened: look again at once.
    Worked,
    /// Nothing to start before this time (or before a send in flight finishes).
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
    /// When the current run of connection failures began (cleared by any answer).
    unreachable_since: Option<DateTime<Utc>>,
    /// The sends in flight; each task returns the receiver's answer.
    sends: JoinSet<Outcome>,
    in_flight: BTreeMap<Id, InFlight>,
    /// How many sends were started (numbers them).
    started: u64,
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
            unreachable_since: None,
            sends: JoinSet::new(),
            in_flight: BTreeMap::new(),
            started: 0,
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
            // marked as seen, so the `changed()` below waits for the next change
            let phase = *self.shared.control.borrow_and_update();
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
            if phase == Phase::Draining && self.sends.is_empty() {
                break;
            }
            let until = idle_until.min(add(now, MAX_IDLE));
            let sleep = self.shared.clock.sleep_until(until);
            let mut control = self.shared.control.clone();
            let done = tokio::select! {
                () = sleep => None,
                () = wake.notified() => None,
                _ = control.changed() => None,
                Some(done) = self.sends.join_next_with_id() => Some(done),
            };
            if let Some(done) = done
                && !self.finish(done).await
            {
                return;
            }
        }
        // Stopping: what is in flight finishes (within its request timeout) and is marked.
        while let Some(done) = self.sends.join_next_with_id().await {
            if !self.finish(done).await {
                return;
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

    /// Starts the next send if one may start now.
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
        // an open circuit is probed with one message at a time
        let room = match self.circuit {
            Some(_) => 1,
            None => self.dest.max_in_flight.max(1),
        };
        if self.in_flight.len() >= room {
            // the next answer wakes the worker
            return Ok(Step::Idle(add(now, MAX_IDLE)));
        }
        let name = self.dest.name.clone();
        let due_by = if self.flush_held {
            add(now, FLUSH_HORIZON)
        } else {
            now
        };
        let (groups, alerts) = self.held();
        let held = move |g: &str, a: &str| groups.contains(g) || alerts.contains(a);
        let batch = self
            .db
            .run(move |o| o.next_batch_where(&name, due_by, MAX_BATCH, &held))
            .await?;
        let Some(batch) = batch else {
            let name = self.dest.name.clone();
            let (groups, alerts) = self.held();
            let held = move |g: &str, a: &str| groups.contains(g) || alerts.contains(a);
            let (due, deadline) = self
                .db
                .run(move |o| Ok((o.next_due_where(&name, &held)?, o.next_deadline(&name)?)))
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
        self.start(batch, now).await?;
        Ok(Step::Worked)
    }

    /// The groups and alerts with a message in flight: nothing else of theirs starts until it is
    /// marked.
    fn held(&self) -> (BTreeSet<String>, BTreeSet<String>) {
        let mut groups = BTreeSet::new();
        let mut alerts = BTreeSet::new();
        for f in self.in_flight.values() {
            groups.insert(f.batch.group_key.clone());
            alerts.extend(f.batch.rows.iter().map(|r| r.notification.alert_id.clone()));
        }
        (groups, alerts)
    }

    /// Renders and sends a leased batch in a task of its own.
    async fn start(&mut self, batch: Batch, now: DateTime<Utc>) -> Result<(), OutboxError> {
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
        let (head_id, kind) = (head.id.clone(), head.kind);
        let (sink, client, name) = (
            self.dest.sink.clone(),
            self.client.clone(),
            self.dest.name.clone(),
        );
        let task = self.sends.spawn(async move {
            let msg = Message {
                notification_id: &head_id,
                kind,
                alerts: &alerts,
                now,
                since_last,
                notification_ids: &ids,
            };
            sink.send(&client, &name, &msg, minimal).await
        });
        self.started += 1;
        self.in_flight.insert(
            task.id(),
            InFlight {
                batch,
                minimal,
                number: self.started,
            },
        );
        Ok(())
    }

    /// Marks the rows of a finished send by its answer; false when the fault plan says to stop.
    async fn finish(&mut self, done: Result<(Id, Outcome), JoinError>) -> bool {
        let (id, outcome) = match done {
            Ok(done) => done,
            Err(e) => {
                tracing::error!(destination = %self.dest.name, error = %e, "a send task failed");
                (e.id(), Outcome::failed(false, "the send task failed"))
            }
        };
        let Some(sent) = self.in_flight.remove(&id) else {
            return true;
        };
        if self.shared.fault.hit(FaultPoint::AfterSend) {
            return false;
        }
        self.shared
            .metrics
            .attempts
            .with_label_values(&[self.name(), outcome.class.as_str()])
            .inc();
        if let Err(e) = self.settle(sent, outcome).await {
            tracing::error!(destination = %self.dest.name, error = %e, "marking a sent message failed");
        }
        true
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
