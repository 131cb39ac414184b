//! The batcher: one task that turns every poller's pages into ordered [`Batch`]es with the
//! checkpoint that covers them.
//!
//! In: [`Msg`]s from the pollers (parsed pages, watermark advances, directory snapshots) and the
//! runtime's [`Committed`] reports. Out: batches on the source's channel, each with the `position`
//! (every tenant's lane checkpoints) that is true once it and every earlier batch are durable; the
//! `events_received` (new records only, by event kind), `records_rejected`, `records_skipped` and
//! `watermark_lag` (per lane, from the durable checkpoint) metrics.
//!
//! Records are de-duplicated here, one at a time, against their lane's remembered ids, and the
//! lane state a batch's position is built from holds exactly the records of that batch and the
//! ones before it. A watermark advance arrives after the pages it covers (one channel, in order),
//! so a position never claims a record that is not in a batch. Directory snapshots carry no
//! watermark: a role record is passed on when it is new or changed since the last snapshot.
//!
//! Tenants come and go while the source runs ([`Msg::AddTenant`], [`Msg::RemoveTenant`], sent by
//! the tenant manager in `mod.rs` on the same channel as the pages, so a tenant's slot exists
//! before its first page and its last pages are batched before it goes). A tenant's index is never
//! reused: a removed tenant's slot stays, empty, and leaves the position. A tenant added while the
//! source runs back-fills behind what the aligner has already released: until each of its lanes
//! first reaches the present, the lane is marked under its own name with `/joining` appended,
//! vouching for everything (its records reach detection as late ones, at once) so its back-fill
//! holds no other tenant back. A removed tenant's lanes are marked complete one last time, so the
//! aligner stops waiting for them.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::health::{Health, TenantHealth};
use super::lanes::Lane;
use super::poller::DirectoryPart;
use super::state::{LaneState, record_hash};
use crate::metrics::SourceMetrics;
use crate::model::TimeSource;
use crate::reader::Item;
use crate::source::{
    AccessChange, Batch, CommitTracker, Committed, LaneMark, MAX_BATCH_ITEMS, Notice, SourceError,
};

/// What pollers tell the batcher.
#[derive(Debug)]
pub enum Msg {
    /// One parsed page of a time-windowed lane.
    Page {
        tenant: usize,
        lane: Lane,
        items: Vec<Item>,
        received_at: Instant,
    },
    /// Every record of the lane before `watermark` has been sent in a `Page` (late ones aside).
    Advance {
        tenant: usize,
        lane: Lane,
        watermark: DateTime<Utc>,
        /// The lane is back-filling: windows before the present remain to be read.
        backlog: bool,
    },
    /// A complete snapshot of one part of a tenant's directory (role assignments, or
    /// eligibilities); a part not read leaves what is known of it as it was.
    Snapshot {
        tenant: usize,
        part: DirectoryPart,
        items: Vec<Item>,
        received_at: Instant,
    },
    /// A tenant starts: its slot gets index `tenant` (the next one). `joining`: it starts while
    /// the source runs (see the module doc).
    AddTenant {
        tenant: usize,
        slot: TenantSlot,
        joining: bool,
    },
    /// A tenant stops; its pollers have ended, so nothing more comes for it.
    RemoveTenant { tenant: usize },
    /// A poller's stream answered, or was refused for a licence, permission or consent (sent on
    /// a change only); a loss of access it had becomes a [`Notice`] ([`super::health`]).
    Health {
        tenant: usize,
        label: String,
        stream: &'static str,
        health: Health,
    },
    /// Every GDAP relationship of the partner, as one discovery read them (each in its customer's
    /// tenant); like a directory snapshot, only the new or changed ones are passed on.
    Gdap {
        items: Vec<Item>,
        received_at: Instant,
    },
}

/// A lane whose watermark a batch's position moved: (tenant index, lane, watermark).
type Moved = (usize, Lane, DateTime<Utc>);

/// One tenant's checkpoint state.
#[derive(Debug)]
pub struct TenantSlot {
    pub id: String,
    pub lanes: BTreeMap<Lane, LaneState>,
    /// Per directory part: record id -> hash of its content at the part's last snapshot.
    roles: [HashMap<String, u64>; 2],
    /// Lanes of a tenant added while running that have not reached the present yet.
    joining: std::collections::BTreeSet<Lane>,
    /// Removed: no lanes, not in the position.
    retired: bool,
    /// Which streams answer, and whether access was lost ([`super::health`]).
    pub health: TenantHealth,
}

impl TenantSlot {
    pub fn new(id: String, lanes: BTreeMap<Lane, LaneState>) -> TenantSlot {
        TenantSlot {
            id,
            lanes,
            roles: Default::default(),
            joining: Default::default(),
            retired: false,
            health: TenantHealth::default(),
        }
    }
}

/// A snapshot record's key and the hash of its content (`None`: not a record).
fn snapshot_key(item: &Item) -> Option<(String, u64)> {
    Some(match item {
        Item::Event(e) => (
            e.meta.id.to_string(),
            record_hash(&[&serde_json::to_vec(e.as_ref()).unwrap_or_default()]),
        ),
        Item::Rejected(r) => {
            let h = record_hash(&[r.raw.as_deref().unwrap_or(&r.reason).as_bytes()]);
            (format!("rejected:{h:x}"), h)
        }
        _ => return None,
    })
}

/// How often batches go out.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// A non-empty batch waits at most this long for more records.
    pub linger: Duration,
    /// With no records, a moved watermark is still checkpointed this often.
    pub checkpoint_interval: Duration,
    /// On shutdown, how long to wait for the reports of batches sent.
    pub drain: Duration,
}

/// The batcher's state.
#[derive(Debug)]
pub struct Batcher {
    source: Arc<str>,
    metrics: SourceMetrics,
    timing: Timing,
    tenants: Vec<TenantSlot>,
    pending: Vec<Item>,
    /// The lane of each pending item (`None`: a directory snapshot, which has no event time).
    pending_lanes: Vec<(usize, Option<Lane>)>,
    /// Lanes back-filling, and when their poller last said so.
    backlog: HashMap<(usize, Lane), Instant>,
    pending_since: Option<Instant>,
    received_at: Option<Instant>,
    /// Lanes whose watermark moved since the last batch.
    moved: Vec<(usize, Lane)>,
    dirty: bool,
    last_flush: Instant,
    tracker: CommitTracker,
    /// Per batch sent: the watermarks its position holds for the lanes that moved.
    in_flight: VecDeque<(u64, Vec<Moved>)>,
    durable: BTreeMap<(usize, Lane), DateTime<Utc>>,
    lag_updated: Instant,
    /// Lane names of removed tenants, marked complete in the next batch.
    farewell: Vec<String>,
    /// GDAP relationship record key -> hash of its content at the last discovery.
    gdap: HashMap<String, u64>,
    /// Notices for the next batch.
    notices: Vec<Notice>,
}

/// A lane's "back-filling" counts for this long after its poller last said so.
const BACKLOG_FRESH: Duration = Duration::from_secs(600);

/// How often the watermark-lag gauges are set (every lane of every tenant).
const LAG_EVERY: Duration = Duration::from_secs(5);

impl Batcher {
    pub fn new(
        source: Arc<str>,
        metrics: SourceMetrics,
        timing: Timing,
        tenants: Vec<TenantSlot>,
    ) -> Batcher {
        let mut durable = BTreeMap::new();
        for (i, t) in tenants.iter().enumerate() {
            for (lane, s) in &t.lanes {
                durable.insert((i, *lane), s.watermark);
            }
        }
        Batcher {
            source,
            metrics,
            timing,
            tenants,
            pending: Vec::new(),
            pending_lanes: Vec::new(),
            backlog: HashMap::new(),
            pending_since: None,
            received_at: None,
            moved: Vec::new(),
            dirty: false,
            last_flush: Instant::now(),
            tracker: CommitTracker::default(),
            in_flight: VecDeque::new(),
            durable,
            lag_updated: Instant::now(),
            farewell: Vec::new(),
            gdap: HashMap::new(),
            notices: Vec::new(),
        }
    }

    /// Runs until shutdown or until every poller is gone, then sends what it holds and waits
    /// (bounded) for the reports of every batch sent.
    pub async fn run(
        mut self,
        mut rx: mpsc::Receiver<Msg>,
        out: mpsc::Sender<Batch>,
        mut committed: mpsc::UnboundedReceiver<Committed>,
        mut shutdown: watch::Receiver<bool>,
        stop_pollers: impl FnOnce(),
    ) -> Result<(), SourceError> {
        let tick_every =
            (self.timing.linger / 2).clamp(Duration::from_millis(5), Duration::from_secs(1));
        let mut tick = tokio::time::interval(tick_every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            if *shutdown.borrow() {
                break;
            }
            tokio::select! {
                msg = rx.recv() => match msg {
                    Some(m) => self.handle(m, &out).await?,
                    None => break,
                },
                Some(c) = committed.recv() => self.on_commit(c),
                _ = tick.tick() => self.on_tick(&out).await?,
                changed = shutdown.changed() => if changed.is_err() {
                    break;
                },
            }
        }
        stop_pollers();
        // Pages already fetched are worth keeping: batch them with their position (bounded: a
        // pipeline that no longer reads gets nothing more, and the records are read again).
        rx.close();
        let drain = self.timing.drain;
        let last = async {
            while let Some(m) = rx.recv().await {
                self.handle(m, &out).await?;
            }
            if !self.pending.is_empty() || self.dirty {
                self.flush(&out).await?;
            }
            Ok::<(), SourceError>(())
        };
        if let Ok(result) = tokio::time::timeout(drain, last).await {
            result?;
        }
        let mut reports = Vec::new();
        let all = crate::source::drain_commits(
            &mut self.tracker,
            &mut committed,
            self.timing.drain,
            |seq| reports.push(seq),
        )
        .await;
        for seq in reports {
            self.apply_durable(seq);
        }
        self.update_lag();
        if !all {
            tracing::warn!(source = %self.source, "stopping before every batch was reported durable; they will be read again");
        }
        Ok(())
    }

    async fn handle(&mut self, msg: Msg, out: &mpsc::Sender<Batch>) -> Result<(), SourceError> {
        match msg {
            Msg::Page {
                tenant,
                lane,
                items,
                received_at,
            } => {
                for item in items {
                    if self.admit(tenant, lane, &item) {
                        self.push(item, (tenant, Some(lane)), received_at, out)
                            .await?;
                    }
                }
            }
            Msg::Advance {
                tenant,
                lane,
                watermark,
                backlog,
            } => {
                if self.tenants[tenant].retired {
                    return Ok(());
                }
                if backlog {
                    self.backlog.insert((tenant, lane), Instant::now());
                } else {
                    self.backlog.remove(&(tenant, lane));
                    self.tenants[tenant].joining.remove(&lane);
                }
                if let Some(s) = self.tenants[tenant].lanes.get_mut(&lane)
                    && s.advance(watermark)
                {
                    self.dirty = true;
                    if !self.moved.contains(&(tenant, lane)) {
                        self.moved.push((tenant, lane));
                    }
                }
            }
            Msg::Snapshot {
                tenant,
                part,
                items,
                received_at,
            } => {
                if self.tenants[tenant].retired {
                    return Ok(());
                }
                let mut next = HashMap::with_capacity(items.len());
                let mut changed = Vec::new();
                for item in items {
                    let Some((key, hash)) = snapshot_key(&item) else {
                        continue;
                    };
                    if self.tenants[tenant].roles[part as usize].get(&key) != Some(&hash) {
                        changed.push(item);
                    }
                    next.insert(key, hash);
                }
                self.tenants[tenant].roles[part as usize] = next;
                for item in changed {
                    self.count(&item);
                    self.push(item, (tenant, None), received_at, out).await?;
                }
            }
            Msg::AddTenant {
                tenant,
                mut slot,
                joining,
            } => {
                debug_assert_eq!(
                    tenant,
                    self.tenants.len(),
                    "tenant indexes are never reused"
                );
                for (lane, s) in &slot.lanes {
                    self.durable.insert((tenant, *lane), s.watermark);
                }
                if joining {
                    slot.joining = slot.lanes.keys().copied().collect();
                }
                self.tenants.push(slot);
                self.dirty = true;
            }
            Msg::RemoveTenant { tenant } => self.remove(tenant),
            Msg::Health {
                tenant,
                label,
                stream,
                health,
            } => self.on_health(tenant, label, stream, health),
            Msg::Gdap { items, received_at } => {
                let mut next = HashMap::with_capacity(items.len());
                let mut changed = Vec::new();
                for item in items {
                    let Some((key, hash)) = snapshot_key(&item) else {
                        continue;
                    };
                    if self.gdap.get(&key) != Some(&hash) {
                        changed.push(item);
                    }
                    next.insert(key, hash);
                }
                self.gdap = next;
                for item in changed {
                    self.count(&item);
                    // Context read outside any tenant's lanes: marked like directory snapshots.
                    self.push(item, (0, None), received_at, out).await?;
                }
            }
        }
        Ok(())
    }

    /// Drops a tenant's lanes from the position, the lag gauges and the aligner's concerns.
    fn remove(&mut self, tenant: usize) {
        let slot = &mut self.tenants[tenant];
        if slot.retired {
            return;
        }
        slot.retired = true;
        slot.roles = Default::default();
        let lanes = std::mem::take(&mut slot.lanes);
        let joining = std::mem::take(&mut slot.joining);
        for lane in lanes.keys() {
            self.durable.remove(&(tenant, *lane));
            self.backlog.remove(&(tenant, *lane));
            let _ = self.metrics.watermark_lag.remove_label_values(&[
                &*self.source,
                slot.id.as_str(),
                lane.name(),
            ]);
            let name = format!("{}/{}", slot.id, lane.name());
            if joining.contains(lane) {
                self.farewell.push(format!("{name}/joining"));
            }
            self.farewell.push(name);
        }
        self.moved.retain(|(t, _)| *t != tenant);
        self.dirty = true;
    }

    /// De-duplicates one item of a lane; counts it when it is new.
    fn admit(&mut self, tenant: usize, lane: Lane, item: &Item) -> bool {
        let slot = &mut self.tenants[tenant];
        let Some(state) = slot.lanes.get_mut(&lane) else {
            return false;
        };
        let (hash, time) = match item {
            Item::Event(e) => {
                let (_, kind, id) = e.dedup_key();
                let time = match e.meta.time_source {
                    TimeSource::Record | TimeSource::Envelope | TimeSource::Nested => e.meta.time,
                    _ => Utc::now(),
                };
                (
                    record_hash(&[kind.as_str().as_bytes(), id.as_bytes()]),
                    time,
                )
            }
            Item::Rejected(r) => (
                record_hash(&[
                    b"rejected",
                    r.raw.as_deref().unwrap_or(&r.reason).as_bytes(),
                ]),
                Utc::now(),
            ),
            Item::Skipped { .. } => {
                self.count(item);
                return true;
            }
            Item::EmptyFile { .. } => return false,
        };
        let fresh = state.admit(hash, time);
        if fresh {
            self.count(item);
        }
        fresh
    }

    /// Counts a record passed on, as every source does (`stream` is the event kind).
    fn count(&self, item: &Item) {
        self.metrics
            .count_items(&self.source, std::slice::from_ref(item));
    }

    async fn push(
        &mut self,
        item: Item,
        lane: (usize, Option<Lane>),
        received_at: Instant,
        out: &mpsc::Sender<Batch>,
    ) -> Result<(), SourceError> {
        if self.pending.is_empty() {
            self.pending_since = Some(Instant::now());
        }
        self.received_at = Some(self.received_at.map_or(received_at, |r| r.min(received_at)));
        self.pending.push(item);
        self.pending_lanes.push(lane);
        self.dirty = true;
        if self.pending.len() >= MAX_BATCH_ITEMS {
            self.flush(out).await?;
        }
        Ok(())
    }

    async fn on_tick(&mut self, out: &mpsc::Sender<Batch>) -> Result<(), SourceError> {
        let now = Instant::now();
        let linger_over = self
            .pending_since
            .is_some_and(|s| now.duration_since(s) >= self.timing.linger)
            || !self.notices.is_empty();
        let checkpoint_due = self.pending.is_empty()
            && self.dirty
            && now.duration_since(self.last_flush) >= self.timing.checkpoint_interval;
        if linger_over || checkpoint_due {
            self.flush(out).await?;
        }
        if now.duration_since(self.lag_updated) >= LAG_EVERY {
            self.lag_updated = now;
            self.update_lag();
        }
        Ok(())
    }

    /// The checkpoint of every tenant's lanes, as it stands now.
    pub fn position(&mut self) -> Value {
        let mut tenants = Map::new();
        for t in self.tenants.iter_mut().filter(|t| !t.retired) {
            let lanes: Map<String, Value> = t
                .lanes
                .iter_mut()
                .map(|(lane, s)| (lane.name().to_owned(), s.to_json()))
                .collect();
            tenants.insert(t.id.clone(), Value::Object(lanes));
        }
        let health: Map<String, Value> = self
            .tenants
            .iter()
            .filter(|t| !t.retired && !t.health.is_empty())
            .map(|t| (t.id.clone(), t.health.to_json()))
            .collect();
        if health.is_empty() {
            json!({ "v": 1, "tenants": tenants })
        } else {
            json!({ "v": 1, "tenants": tenants, "health": health })
        }
    }

    /// Records a stream's health; a lost (or regained) access becomes a notice in the next batch,
    /// which carries the position that records it.
    fn on_health(&mut self, tenant: usize, label: String, stream: &'static str, health: Health) {
        let Some(slot) = self.tenants.get_mut(tenant).filter(|t| !t.retired) else {
            return;
        };
        let (changed, change) = slot.health.report(stream, health, Utc::now());
        if changed {
            self.dirty = true;
        }
        if let Some(c) = change {
            match c.change {
                AccessChange::Lost => {
                    tracing::warn!(source = %self.source, tenant = %label, tenant_id = %slot.id,
                        stream, "graph access to this tenant lost: a stream that answered is refused; the SOC is told");
                }
                AccessChange::Restored => {
                    tracing::info!(source = %self.source, tenant = %label, tenant_id = %slot.id,
                        "graph access to this tenant restored");
                }
            }
            self.notices.push(Notice {
                tenant_id: slot.id.clone(),
                tenant_label: label,
                change: c.change,
                since: c.since,
                streams: c.streams,
            });
        }
    }

    async fn flush(&mut self, out: &mpsc::Sender<Batch>) -> Result<(), SourceError> {
        let seq = self.tracker.next_batch();
        let moved: Vec<_> = self
            .moved
            .drain(..)
            .filter_map(|(t, l)| Some((t, l, self.tenants[t].lanes.get(&l)?.watermark)))
            .collect();
        self.in_flight.push_back((seq, moved));
        let (lanes, item_lanes) = self.lane_marks();
        let batch = Batch {
            source: self.source.clone(),
            seq,
            lanes,
            item_lanes,
            notices: std::mem::take(&mut self.notices),
            items: std::mem::take(&mut self.pending),
            position: self.position(),
            received_at: self
                .received_at
                .take()
                .unwrap_or_else(Instant::now)
                .into_std(),
        };
        self.pending_since = None;
        self.dirty = false;
        self.last_flush = Instant::now();
        out.send(batch)
            .await
            .map_err(|_| SourceError::Closed(self.source.to_string()))
    }

    /// One lane mark per tenant stream (`tenant/stream`: complete up to its watermark, with a
    /// backlog while back-filling), then one for directory snapshots, which have no event time and
    /// never hold the aligner back; and the lane of each pending item.
    fn lane_marks(&mut self) -> (Vec<LaneMark>, Vec<u16>) {
        let mut marks = Vec::new();
        let mut index: HashMap<(usize, Lane), u16> = HashMap::new();
        for (t, slot) in self.tenants.iter().enumerate() {
            for (lane, state) in &slot.lanes {
                index.insert((t, *lane), marks.len() as u16);
                if slot.joining.contains(lane) {
                    marks.push(LaneMark {
                        lane: format!("{}/{}/joining", slot.id, lane.name()),
                        complete_to: Some(DateTime::<Utc>::MAX_UTC),
                        backlog: false,
                    });
                    continue;
                }
                marks.push(LaneMark {
                    lane: format!("{}/{}", slot.id, lane.name()),
                    complete_to: Some(state.watermark),
                    // A lane stopped mid-back-fill (a licence 403, a revoked consent) stops
                    // claiming a backlog after a while, so the aligner can count it idle.
                    backlog: self
                        .backlog
                        .get(&(t, *lane))
                        .is_some_and(|at| at.elapsed() < BACKLOG_FRESH),
                });
            }
        }
        for lane in self.farewell.drain(..) {
            marks.push(LaneMark {
                lane,
                complete_to: Some(DateTime::<Utc>::MAX_UTC),
                backlog: false,
            });
        }
        let directory = marks.len() as u16;
        marks.push(LaneMark {
            lane: "directory".to_owned(),
            complete_to: Some(DateTime::<Utc>::MAX_UTC),
            backlog: false,
        });
        let item_lanes = self
            .pending_lanes
            .drain(..)
            .map(|(t, l)| {
                l.and_then(|l| index.get(&(t, l)).copied())
                    .unwrap_or(directory)
            })
            .collect();
        (marks, item_lanes)
    }

    fn on_commit(&mut self, c: Committed) {
        let durable = self.tracker.on_commit(c);
        self.apply_durable(durable);
    }

    fn apply_durable(&mut self, durable: u64) {
        while self
            .in_flight
            .front()
            .is_some_and(|(seq, _)| *seq <= durable)
        {
            let (_, moved) = self.in_flight.pop_front().expect("checked");
            for (t, l, w) in moved {
                if !self.tenants[t].retired {
                    self.durable.insert((t, l), w);
                }
            }
        }
    }

    fn update_lag(&self) {
        let now = Utc::now();
        for ((t, lane), w) in &self.durable {
            self.metrics
                .watermark_lag
                .with_label_values(&[&*self.source, self.tenants[*t].id.as_str(), lane.name()])
                .set((now - *w).num_seconds().max(0));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::AccessCause;
    use chrono::Duration as TimeDelta;

    fn slot(id: &str, watermark: DateTime<Utc>) -> TenantSlot {
        let state = LaneState::new(watermark, TimeDelta::minutes(30), 1000);
        TenantSlot::new(
            id.to_owned(),
            BTreeMap::from([(Lane::DirectoryAudits, state)]),
        )
    }

    fn marks(b: &mut Batcher) -> Vec<(String, Option<DateTime<Utc>>)> {
        b.lane_marks()
            .0
            .into_iter()
            .filter(|m| m.lane != "directory")
            .map(|m| (m.lane, m.complete_to))
            .collect()
    }

    /// A loss of access goes out as a notice in the next batch, with the position that records
    /// it: the next batch (and a restart from that position) knows it and raises nothing more.
    #[tokio::test]
    async fn a_lost_access_goes_out_once_with_the_position_that_records_it() {
        let (out, mut rx) = mpsc::channel(8);
        let timing = Timing {
            linger: Duration::from_secs(1),
            checkpoint_interval: Duration::from_secs(1),
            drain: Duration::from_secs(1),
        };
        let mut b = Batcher::new(
            "g".into(),
            SourceMetrics::unregistered(),
            timing,
            vec![slot("a", Utc::now())],
        );
        let health = |stream, health| Msg::Health {
            tenant: 0,
            label: "customer a".into(),
            stream,
            health,
        };
        let consent = Health::Down {
            cause: AccessCause::Consent,
            detail: "AADSTS7000229: no service principal".into(),
        };
        b.handle(health("directory_audits", Health::Up), &out)
            .await
            .unwrap();
        assert!(b.notices.is_empty());
        b.handle(health("directory_audits", consent.clone()), &out)
            .await
            .unwrap();
        b.on_tick(&out).await.unwrap();
        let batch = rx.try_recv().expect("a batch for the notice");
        assert!(batch.items.is_empty());
        assert_eq!(batch.notices.len(), 1);
        let n = &batch.notices[0];
        assert_eq!(
            (n.tenant_id.as_str(), n.tenant_label.as_str(), n.change),
            ("a", "customer a", AccessChange::Lost)
        );
        assert_eq!(n.streams[0].cause, Some(AccessCause::Consent));
        let recorded = TenantHealth::from_json(&batch.position["health"]["a"]);
        assert_eq!(recorded.lost_since(), Some(n.since));
        // The same refusal again: nothing to tell.
        b.handle(health("directory_audits", consent.clone()), &out)
            .await
            .unwrap();
        assert!(b.notices.is_empty());
        // A restart from that position: the tenant comes back with its health, still lost.
        let mut restarted = slot("a", Utc::now());
        restarted.health = recorded;
        let mut b = Batcher::new(
            "g".into(),
            SourceMetrics::unregistered(),
            timing,
            vec![restarted],
        );
        b.handle(health("directory_audits", consent), &out)
            .await
            .unwrap();
        assert!(b.notices.is_empty(), "a restart does not repeat the notice");
        b.handle(health("directory_audits", Health::Up), &out)
            .await
            .unwrap();
        assert_eq!(b.notices.len(), 1);
        assert_eq!(b.notices[0].change, AccessChange::Restored);
        assert_eq!(
            Some(b.notices[0].since),
            batch.notices.first().map(|n| n.since)
        );
    }

    #[tokio::test]
    async fn a_tenant_joining_while_running_holds_no_one_back_and_a_removed_one_is_let_go() {
        let (out, _rx) = mpsc::channel(8);
        let timing = Timing {
            linger: Duration::from_secs(1),
            checkpoint_interval: Duration::from_secs(1),
            drain: Duration::from_secs(1),
        };
        let mut b = Batcher::new(
            "g".into(),
            SourceMetrics::unregistered(),
            timing,
            Vec::new(),
        );
        let back = Utc::now() - TimeDelta::days(3);
        let max = Some(DateTime::<Utc>::MAX_UTC);
        for (tenant, id, joining) in [(0, "a", false), (1, "b", true)] {
            let msg = Msg::AddTenant {
                tenant,
                slot: slot(id, back),
                joining,
            };
            b.handle(msg, &out).await.unwrap();
        }
        assert_eq!(
            marks(&mut b),
            [
                ("a/directory_audits".to_owned(), Some(back)),
                ("b/directory_audits/joining".to_owned(), max),
            ],
            "a tenant of the start holds the aligner to its watermark; one added later does not"
        );
        // b's lane reaches the present: from now on it is marked like any other.
        let now = Utc::now();
        let advance = Msg::Advance {
            tenant: 1,
            lane: Lane::DirectoryAudits,
            watermark: now,
            backlog: false,
        };
        b.handle(advance, &out).await.unwrap();
        assert_eq!(
            marks(&mut b)[1],
            ("b/directory_audits".to_owned(), Some(now))
        );

        // a goes: its lane is marked complete once, then no more, and leaves the position.
        b.handle(Msg::RemoveTenant { tenant: 0 }, &out)
            .await
            .unwrap();
        assert_eq!(
            marks(&mut b),
            [
                ("b/directory_audits".to_owned(), Some(now)),
                ("a/directory_audits".to_owned(), max),
            ]
        );
        assert_eq!(
            marks(&mut b),
            [("b/directory_audits".to_owned(), Some(now))]
        );
        let position = b.position();
        assert!(position["tenants"].get("a").is_none(), "{position}");
        assert!(position["tenants"].get("b").is_some(), "{position}");
        // What a's pollers might still have sent is dropped, not a panic.
        let late = Msg::Advance {
            tenant: 0,
            lane: Lane::DirectoryAudits,
            watermark: now,
            backlog: false,
        };
        b.handle(late, &out).await.unwrap();
        assert!(b.position()["tenants"].get("a").is_none());
    }
}
