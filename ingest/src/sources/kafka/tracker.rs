//! Offset bookkeeping of the Kafka source, free of any Kafka client so it can be tested alone.
//!
//! What comes in: parsed messages (`partition`, `offset`, items), batch reports ([`Committed`]),
//! assignments and revocations. What goes out: [`Batch`]es of at most `batch_max` items with their
//! resume position, and per partition the **contiguous durable watermark**: the offset below which
//! every message went into a batch the runtime reported durable. Only that watermark is ever
//! committed, so a commit never passes an unprocessed message.
//!
//! Messages are taken in offset order per partition and batches are reported in `seq` order, so
//! the end offset a durable batch records for a partition is contiguous with the one before it.
//! Each assignment of a partition gets a new generation: batches of an earlier generation (a
//! revoked partition still in flight) never move the watermark of a later one. A message whose
//! items do not fit in one batch is split; only its last part carries its end offset.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::reader::Item;
use crate::source::{Batch, CommitTracker, Committed, LaneMark};

/// A partition of one of the source's topics (`topic` indexes the configured topic list).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tp {
    pub topic: u16,
    pub partition: i32,
}

/// What the source knows of an assigned partition.
#[derive(Debug, Clone, Default)]
pub struct Part {
    generation: u64,
    /// Every offset below is durable (in this generation).
    pub durable: Option<i64>,
    /// The highest offset a commit was requested for, and when.
    commit_requested: Option<i64>,
    requested_at: Option<Instant>,
    /// The highest offset the group coordinator confirmed.
    pub committed: Option<i64>,
    /// Do not commit at or below this (the group's offset when a resume sought backwards).
    floor: Option<i64>,
    /// The offset after the newest message read (in this generation).
    pub next: Option<i64>,
    /// The partition's high watermark at the broker, as the last statistics told it.
    pub high: Option<i64>,
}

/// A batch being filled, or full and waiting for room in the pipeline.
#[derive(Debug)]
struct Pending {
    items: Vec<(Tp, Item)>,
    /// Per partition, the offset after the last message this batch completes.
    ends: Vec<(Tp, i64)>,
    started: Instant,
}

impl Pending {
    fn new(now: Instant) -> Pending {
        Pending {
            items: Vec::new(),
            ends: Vec::new(),
            started: now,
        }
    }

    fn set_end(&mut self, tp: Tp, end: i64) {
        match self.ends.iter_mut().find(|(t, _)| *t == tp) {
            Some((_, e)) => *e = (*e).max(end),
            None => self.ends.push((tp, end)),
        }
    }

    fn is_empty(&self) -> bool {
        self.items.is_empty() && self.ends.is_empty()
    }

    fn drop_partitions(&mut self, tps: &[Tp]) {
        self.items.retain(|(tp, _)| !tps.contains(tp));
        self.ends.retain(|(tp, _)| !tps.contains(tp));
    }
}

/// A batch handed to the pipeline and not yet reported durable.
#[derive(Debug)]
struct Inflight {
    seq: u64,
    /// (partition, its generation when sent, end offset).
    ends: Vec<(Tp, u64, i64)>,
}

/// The per-source bookkeeping.
#[derive(Debug)]
pub struct Tracker {
    topics: Vec<String>,
    batch_max: usize,
    batch_wait: Duration,
    parts: HashMap<Tp, Part>,
    next_generation: u64,
    building: Option<Pending>,
    sealed: VecDeque<Pending>,
    inflight: VecDeque<Inflight>,
    seqs: CommitTracker,
    /// `topic/partition` → next offset, for every partition seen (and every resumed one).
    position: BTreeMap<String, i64>,
}

impl Tracker {
    pub fn new(
        topics: Vec<String>,
        batch_max: usize,
        batch_wait: Duration,
        position: BTreeMap<String, i64>,
    ) -> Tracker {
        Tracker {
            topics,
            batch_max: batch_max.max(1),
            batch_wait,
            parts: HashMap::new(),
            next_generation: 0,
            building: None,
            sealed: VecDeque::new(),
            inflight: VecDeque::new(),
            seqs: CommitTracker::default(),
            position,
        }
    }

    /// The partition of a configured topic (`None` for any other topic).
    pub fn tp(&self, topic: &str, partition: i32) -> Option<Tp> {
        let i = self.topics.iter().position(|t| t == topic)?;
        Some(Tp {
            topic: u16::try_from(i).ok()?,
            partition,
        })
    }

    /// The configured topics.
    pub fn topics(&self) -> &[String] {
        &self.topics
    }

    pub fn topic(&self, tp: Tp) -> &str {
        &self.topics[usize::from(tp.topic)]
    }

    /// `topic/partition`, the key of positions.
    pub fn key(&self, tp: Tp) -> String {
        format!("{}/{}", self.topic(tp), tp.partition)
    }

    /// The offset after the newest message of `tp` read here, else where reading starts (a
    /// snapshot's position or the group's committed offset), when known.
    pub fn read_up_to(&self, tp: Tp) -> Option<i64> {
        let part = self.parts.get(&tp);
        part.and_then(|p| p.next)
            .or_else(|| self.position.get(&self.key(tp)).copied())
            .or_else(|| part.and_then(|p| p.committed))
    }

    pub fn part(&self, tp: Tp) -> Option<&Part> {
        self.parts.get(&tp)
    }

    pub fn assigned(&self) -> Vec<Tp> {
        let mut v: Vec<Tp> = self.parts.keys().copied().collect();
        v.sort();
        v
    }

    /// A new assignment of `tp` (a new generation).
    pub fn assign(&mut self, tp: Tp) {
        self.next_generation += 1;
        self.parts.insert(
            tp,
            Part {
                generation: self.next_generation,
                ..Part::default()
            },
        );
    }

    /// The broker's high watermark of `tp` (from librdkafka's statistics).
    pub fn set_high(&mut self, tp: Tp, high: i64) {
        if let Some(p) = self.parts.get_mut(&tp) {
            p.high = Some(high);
        }
    }

    /// Whether `tp` has messages at the broker beyond what was read here (`false` when unknown).
    /// The high watermark is the one librdkafka's statistics last reported (no request is made).
    pub fn backlog(&self, tp: Tp) -> bool {
        let high = self.parts.get(&tp).and_then(|p| p.high);
        matches!((high, self.read_up_to(tp)), (Some(h), Some(r)) if h > r)
    }

    /// A snapshot's position of `tp` is durable by definition (the state behind it is on disk):
    /// it may be committed before anything new is read.
    pub fn set_durable(&mut self, tp: Tp, offset: i64) {
        if let Some(p) = self.parts.get_mut(&tp) {
            p.durable = Some(p.durable.map_or(offset, |d| d.max(offset)));
        }
    }

    pub fn set_floor(&mut self, tp: Tp, floor: i64) {
        if let Some(p) = self.parts.get_mut(&tp) {
            p.floor = Some(floor);
        }
    }

    /// Forgets messages of `tps` not yet handed to the pipeline (they were never processed here;
    /// whoever reads the partition next starts from its committed offset).
    pub fn drop_unsent(&mut self, tps: &[Tp]) {
        if let Some(b) = &mut self.building {
            b.drop_partitions(tps);
        }
        for b in &mut self.sealed {
            b.drop_partitions(tps);
        }
        self.sealed.retain(|b| !b.is_empty());
        if self.building.as_ref().is_some_and(Pending::is_empty) {
            self.building = None;
        }
    }

    /// Forgets everything not yet handed to the pipeline (shutdown).
    pub fn discard_unsent(&mut self) {
        self.building = None;
        self.sealed.clear();
    }

    /// Ends the assignment of `tps`: their in-flight batches no longer count for anything here.
    pub fn revoke(&mut self, tps: &[Tp]) {
        self.drop_unsent(tps);
        for tp in tps {
            self.parts.remove(tp);
        }
    }

    /// Adds one message's events. False when the partition is not assigned (the message is
    /// dropped). A message with no events (all skipped or dead-lettered) still advances its
    /// partition through the batch it lands in.
    pub fn add(&mut self, tp: Tp, offset: i64, items: Vec<Item>, now: Instant) -> bool {
        match self.parts.get_mut(&tp) {
            Some(p) => p.next = Some(p.next.map_or(offset + 1, |n| n.max(offset + 1))),
            None => return false,
        }
        let mut items = items.into_iter().peekable();
        loop {
            let batch_max = self.batch_max;
            let b = self.building.get_or_insert_with(|| Pending::new(now));
            while b.items.len() < batch_max {
                match items.next() {
                    Some(item) => b.items.push((tp, item)),
                    None => break,
                }
            }
            let done = items.peek().is_none();
            if done {
                b.set_end(tp, offset + 1);
            }
            if b.items.len() >= batch_max {
                self.seal();
            }
            if done {
                return true;
            }
        }
    }

    fn seal(&mut self) {
        if let Some(b) = self.building.take()
            && !b.is_empty()
        {
            self.sealed.push_back(b);
        }
    }

    /// Seals the batch being filled once it has waited `batch_wait`.
    pub fn seal_due(&mut self, now: Instant) {
        if self
            .building
            .as_ref()
            .is_some_and(|b| now.saturating_duration_since(b.started) >= self.batch_wait)
        {
            self.seal();
        }
    }

    /// How long until the batch being filled is due (`None` when there is none).
    pub fn until_due(&self, now: Instant) -> Option<Duration> {
        self.building
            .as_ref()
            .map(|b| (b.started + self.batch_wait).saturating_duration_since(now))
    }

    /// Whether a full or due batch waits to be handed on.
    pub fn has_sealed(&self) -> bool {
        !self.sealed.is_empty()
    }

    /// Takes the oldest sealed batch for sending: it gets its `seq` and the position after it.
    pub fn take_sealed(&mut self, source: &Arc<str>) -> Option<Batch> {
        let b = self.sealed.pop_front()?;
        let seq = self.seqs.next_batch();
        let mut ends = Vec::with_capacity(b.ends.len());
        for (tp, end) in &b.ends {
            let key = self.key(*tp);
            self.position.insert(key, *end);
            if let Some(p) = self.parts.get(tp) {
                ends.push((*tp, p.generation, *end));
            }
        }
        self.inflight.push_back(Inflight { seq, ends });
        let position = Value::Object(
            self.position
                .iter()
                .map(|(k, v)| (k.clone(), Value::from(*v)))
                .collect(),
        );
        // One lane per assigned partition (so the aligner knows the empty ones too), plus any
        // partition of the batch revoked since. A partition with messages at the broker beyond
        // what was read is behind: never idle, it holds the event-time watermark back.
        let mut tps = self.assigned();
        for (tp, _) in &b.items {
            if !tps.contains(tp) {
                tps.push(*tp);
            }
        }
        let lanes: Vec<LaneMark> = tps
            .iter()
            .map(|tp| LaneMark {
                lane: self.key(*tp),
                complete_to: None,
                backlog: self.backlog(*tp),
            })
            .collect();
        let item_lanes = b
            .items
            .iter()
            .map(|(tp, _)| tps.iter().position(|t| t == tp).unwrap_or(0) as u16)
            .collect();
        Some(Batch {
            source: source.clone(),
            seq,
            items: b.items.into_iter().map(|(_, i)| i).collect(),
            position,
            received_at: b.started,
            lanes,
            item_lanes,
            notices: Vec::new(),
        })
    }

    /// A report from the runtime: every batch up to `c.seq` is durable.
    pub fn on_committed(&mut self, c: Committed) {
        let durable = self.seqs.on_commit(c);
        while self.inflight.front().is_some_and(|b| b.seq <= durable) {
            let b = self.inflight.pop_front().expect("checked");
            for (tp, generation, end) in b.ends {
                if let Some(p) = self.parts.get_mut(&tp)
                    && p.generation == generation
                {
                    p.durable = Some(p.durable.map_or(end, |d| d.max(end)));
                }
            }
        }
    }

    /// The newest seq reported durable.
    pub fn durable_seq(&self) -> u64 {
        self.seqs.durable()
    }

    /// Whether every batch handed on was reported durable.
    pub fn all_durable(&self) -> bool {
        self.inflight.is_empty()
    }

    /// The newest in-flight batch holding messages of `tps` in their current generation.
    pub fn inflight_seq_for(&self, tps: &[Tp]) -> Option<u64> {
        self.inflight
            .iter()
            .rev()
            .find(|b| {
                b.ends.iter().any(|(tp, generation, _)| {
                    tps.contains(tp)
                        && self
                            .parts
                            .get(tp)
                            .is_some_and(|p| p.generation == *generation)
                })
            })
            .map(|b| b.seq)
    }

    /// Offsets to commit (of `only` when given): durable watermarks past the floor that the
    /// coordinator has not confirmed, when they passed the last request, the last request is
    /// older than `retry`, or `force` (revoke, shutdown). They count as requested from here on.
    pub fn to_commit(
        &mut self,
        only: Option<&[Tp]>,
        force: bool,
        now: Instant,
        retry: Duration,
    ) -> Vec<(Tp, i64)> {
        let mut out = Vec::new();
        for (tp, p) in &mut self.parts {
            if only.is_some_and(|o| !o.contains(tp)) {
                continue;
            }
            let Some(d) = p.durable else { continue };
            let past = |x: Option<i64>| x.is_none_or(|x| d > x);
            if !past(p.floor) || !past(p.committed) {
                continue;
            }
            let stale = p
                .requested_at
                .is_some_and(|t| now.saturating_duration_since(t) >= retry);
            if force || past(p.commit_requested) || stale {
                p.commit_requested = Some(d);
                p.requested_at = Some(now);
                out.push((*tp, d));
            }
        }
        out.sort();
        out
    }

    /// The coordinator's answer for one partition's commit (asynchronous commits may never be
    /// answered: [`Tracker::confirmed`] and the retry of [`Tracker::to_commit`] cover them).
    pub fn commit_result(&mut self, tp: Tp, offset: i64, ok: bool) {
        if ok {
            self.confirmed(tp, offset);
        } else if let Some(p) = self.parts.get_mut(&tp)
            && p.commit_requested == Some(offset)
        {
            // Ask again next time.
            p.commit_requested = p.committed;
            p.requested_at = None;
        }
    }

    /// The group's committed offset as librdkafka last saw it.
    pub fn confirmed(&mut self, tp: Tp, offset: i64) {
        if let Some(p) = self.parts.get_mut(&tp) {
            p.committed = Some(p.committed.map_or(offset, |c| c.max(offset)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reader::Position;

    fn item(n: usize) -> Item {
        Item::Skipped {
            category: format!("c{n}"),
            at: Position {
                file: String::new(),
                line: 0,
                record: None,
            },
        }
    }

    fn items(n: usize) -> Vec<Item> {
        (0..n).map(item).collect()
    }

    fn commit(t: &mut Tracker, now: Instant) -> Vec<(Tp, i64)> {
        t.to_commit(None, false, now, Duration::from_secs(5))
    }

    fn tracker(max: usize) -> (Tracker, Tp, Tp) {
        let mut t = Tracker::new(
            vec!["a".into(), "b".into()],
            max,
            Duration::from_millis(10),
            BTreeMap::new(),
        );
        let p0 = t.tp("a", 0).unwrap();
        let p1 = t.tp("b", 3).unwrap();
        t.assign(p0);
        t.assign(p1);
        (t, p0, p1)
    }

    #[test]
    fn watermark_is_contiguous_and_follows_reports_only() {
        let (mut t, p0, p1) = tracker(4);
        let src: Arc<str> = Arc::from("s");
        let now = Instant::now();
        assert!(t.add(p0, 10, items(2), now));
        assert!(t.add(p1, 5, items(2), now)); // full: sealed
        assert!(t.add(p0, 11, items(1), now));
        t.seal_due(now + Duration::from_millis(20));
        let b1 = t.take_sealed(&src).unwrap();
        let b2 = t.take_sealed(&src).unwrap();
        assert_eq!((b1.seq, b1.items.len(), b2.items.len()), (1, 4, 1));
        assert_eq!(b1.position, serde_json::json!({"a/0": 11, "b/3": 6}));
        assert_eq!(b2.position, serde_json::json!({"a/0": 12, "b/3": 6}));
        let retry = Duration::from_secs(5);
        assert!(commit(&mut t, now).is_empty(), "nothing is durable yet");
        t.on_committed(Committed { seq: 1 });
        assert_eq!(commit(&mut t, now), vec![(p0, 11), (p1, 6)]);
        assert!(commit(&mut t, now).is_empty(), "already requested");
        t.commit_result(p0, 11, false);
        t.on_committed(Committed { seq: 2 });
        assert_eq!(commit(&mut t, now), vec![(p0, 12)]);
        t.commit_result(p0, 12, true);
        assert_eq!(t.part(p0).unwrap().committed, Some(12));
        assert!(t.all_durable());
        // p1's request was never answered: asked again once stale, or when forced.
        assert!(commit(&mut t, now + Duration::from_secs(1)).is_empty());
        assert_eq!(t.to_commit(None, true, now, retry), vec![(p1, 6)]);
        assert_eq!(commit(&mut t, now + retry * 2), vec![(p1, 6)]);
        t.confirmed(p1, 6);
        assert!(
            t.to_commit(None, true, now + retry * 4, retry).is_empty(),
            "confirmed"
        );
    }

    #[test]
    fn a_large_message_is_split_and_only_its_last_part_ends_it() {
        let (mut t, p0, _) = tracker(3);
        let src: Arc<str> = Arc::from("s");
        let now = Instant::now();
        t.add(p0, 7, items(7), now);
        t.seal_due(now + Duration::from_secs(1));
        let sizes: Vec<_> = std::iter::from_fn(|| t.take_sealed(&src))
            .map(|b| (b.items.len(), b.position.get("a/0").cloned()))
            .collect();
        assert_eq!(
            sizes,
            vec![(3, None), (3, None), (1, Some(serde_json::json!(8)))]
        );
        t.on_committed(Committed { seq: 2 });
        assert!(
            commit(&mut t, now).is_empty(),
            "the message is not whole yet"
        );
        t.on_committed(Committed { seq: 3 });
        assert_eq!(commit(&mut t, now), vec![(p0, 8)]);
    }

    #[test]
    fn revoked_partitions_lose_unsent_messages_and_late_reports() {
        let (mut t, p0, p1) = tracker(100);
        let src: Arc<str> = Arc::from("s");
        let now = Instant::now();
        t.add(p0, 0, items(1), now);
        t.seal_due(now + Duration::from_secs(1));
        t.take_sealed(&src).unwrap(); // seq 1 holds p0@0, in flight
        t.add(p0, 1, items(1), now);
        t.add(p1, 0, items(1), now);
        assert_eq!(t.inflight_seq_for(&[p0]), Some(1));
        assert_eq!(t.inflight_seq_for(&[p1]), None);
        t.revoke(&[p0]);
        t.seal_due(now + Duration::from_secs(1));
        let b = t.take_sealed(&src).unwrap();
        assert_eq!(b.items.len(), 1, "p0@1 was never sent and is dropped");
        assert_eq!(b.position, serde_json::json!({"a/0": 1, "b/3": 1}));
        t.assign(p0); // assigned again: a new generation
        t.on_committed(Committed { seq: 2 });
        assert_eq!(
            commit(&mut t, now),
            vec![(p1, 1)],
            "p0's old batch must not move the new generation"
        );
        assert!(
            !t.add(t.tp("b", 9).unwrap(), 0, items(1), now),
            "not assigned"
        );
    }

    #[test]
    fn a_floor_keeps_commits_from_moving_backwards() {
        let (mut t, p0, _) = tracker(10);
        let src: Arc<str> = Arc::from("s");
        let now = Instant::now();
        t.set_floor(p0, 50);
        t.add(p0, 40, Vec::new(), now);
        t.seal_due(now + Duration::from_secs(1));
        let b = t.take_sealed(&src).unwrap();
        assert!(
            b.items.is_empty(),
            "a message with no events still moves its partition"
        );
        t.on_committed(Committed { seq: 1 });
        assert!(commit(&mut t, now).is_empty());
        t.add(p0, 50, Vec::new(), now);
        t.seal_due(now + Duration::from_secs(1));
        t.take_sealed(&src).unwrap();
        t.on_committed(Committed { seq: 2 });
        assert_eq!(
            t.to_commit(Some(&[p0]), false, now, Duration::from_secs(5)),
            vec![(p0, 51)]
        );
    }
}
