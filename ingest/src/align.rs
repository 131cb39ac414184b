//! The event-time aligner: the one ordering stage between every live input and detection.
//!
//! What comes in: events from many *lanes* (a Kafka partition, a Graph tenant's stream, a file
//! folder), each lane in its own order, with a [`LaneMark`] per lane and batch saying how far the
//! lane has got. What goes out: the same events in **event-time order** ([`order`]: time, then the
//! record's identity, so the order never depends on which lane or batch an event came by), released
//! only once no lane can still deliver an earlier one. That is the order `entrawatch replay` uses,
//! so a live service and a replay of the same records make the same decisions.
//!
//! **Watermarks.** A lane's watermark is the event time below which it will deliver nothing more:
//! what the lane vouches for itself when it can (`complete_to`: a Graph window that is closed, with
//! the source's safety lag for late records; a file generation emitted in order), else its newest
//! event time less the configured out-of-orderness bound (`out_of_order_secs`: how far behind its
//! newest event a lane, such as a Kafka partition, may still deliver one). The
//! aligner releases every buffered event older than the smallest watermark of the lanes that are
//! not idle.
//!
//! **Idle lanes** (the rule of the stream-processing literature, Flink's `withIdleness`): a lane
//! with nothing waiting to be read (`backlog == false`: a Kafka partition read up to its high
//! watermark, a Graph lane polling at the present) that has delivered nothing for `idle_secs` of
//! wall time stops holding the watermark back, so an empty partition or a silent tenant cannot stall
//! the others. A lane with a backlog is never idle: a partition hours behind holds the others until
//! it catches up, which is what makes the order right. The first batch an idle lane delivers makes
//! it active again. When every lane is idle, everything buffered is released.
//!
//! **Late events.** An event older than the released watermark arrives after later events already
//! went to detection. It is *late*: it is handed to detection at once (never dropped, never
//! silently reordered), handed back as a [`Late`] with its source, lane and lateness so the runtime
//! can log and count it. Each detector's doc says what a late event does to it.
//!
//! **Memory.** At most `max_buffered` events are held. Past that, the oldest are released early
//! (counted in [`Aligner::forced`]): bounded memory wins over a perfect order, and what arrives
//! behind them is counted late. (Pausing the lanes furthest ahead instead is not built.)
//!
//! **Snapshots.** [`Aligner::state`] and [`Aligner::restore`] carry the buffered events, the lanes'
//! marks and the released watermark, so a restart continues exactly where the snapshot was taken.

use std::cmp::{Ordering, Reverse};
use std::collections::{BTreeMap, BinaryHeap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::model::{Event, TimeSource};

/// The aligner's settings (`[service]` in the config file).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AlignConfig {
    /// How far behind its newest event a lane may still deliver one, in seconds of event time.
    pub out_of_order_secs: i64,
    /// Wall-clock seconds without data after which a lane with no backlog stops holding the
    /// watermark back.
    pub idle_secs: u64,
    /// Events held at most; past that the oldest are released early.
    pub max_buffered: usize,
}

impl Default for AlignConfig {
    fn default() -> Self {
        AlignConfig {
            out_of_order_secs: 30,
            idle_secs: 30,
            max_buffered: 100_000,
        }
    }
}

/// What a source says of one of its lanes with a batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LaneMark {
    /// The lane's name, unique within its source (`topic/partition`, `tenant/stream`).
    pub lane: String,
    /// The lane vouches that it will deliver no event older than this (except late data).
    pub complete_to: Option<DateTime<Utc>>,
    /// The lane has more waiting to be read (a Kafka partition behind its high watermark, a Graph
    /// lane back-filling): it is never idle.
    pub backlog: bool,
}

/// The order detection sees events in: event time, then the record's identity (tenant, kind, id
/// and version), so ties do not depend on which lane, batch or file an event arrived by.
pub fn order(a: &Event, b: &Event) -> Ordering {
    a.meta
        .time
        .cmp(&b.meta.time)
        .then_with(|| a.dedup_key_ref().cmp(&b.dedup_key_ref()))
}

/// A buffered event; `arrival` breaks the ties of exact repeats so the heap's order is total.
#[derive(Debug)]
struct Held {
    event: Box<Event>,
    arrival: u64,
}

impl PartialEq for Held {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Held {}
impl PartialOrd for Held {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Held {
    fn cmp(&self, other: &Self) -> Ordering {
        order(&self.event, &other.event).then(self.arrival.cmp(&other.arrival))
    }
}

/// One lane as the aligner knows it.
#[derive(Debug, Clone)]
struct Lane {
    newest: Option<DateTime<Utc>>,
    complete_to: Option<DateTime<Utc>>,
    backlog: bool,
    /// When the lane last delivered an event or said it has a backlog.
    active_at: Instant,
}

impl Lane {
    /// Nothing waiting to be read and nothing delivered for `idle`: it no longer holds the others.
    fn is_idle(&self, now: Instant, idle: Duration) -> bool {
        !self.backlog && now.saturating_duration_since(self.active_at) >= idle
    }
}

/// An event handed to detection behind the released watermark.
#[derive(Debug)]
pub struct Late {
    pub event: Box<Event>,
    pub source: Arc<str>,
    /// The lane it came by.
    pub lane: String,
    /// How far behind the released watermark it was.
    pub behind: chrono::Duration,
}

/// The aligner (see the module doc).
#[derive(Debug)]
pub struct Aligner {
    config: AlignConfig,
    /// Keyed by (source, lane).
    lanes: BTreeMap<(Arc<str>, String), Lane>,
    heap: BinaryHeap<Reverse<Held>>,
    arrivals: u64,
    /// Every event older than this has been released.
    released: Option<DateTime<Utc>>,
    forced: u64,
}

/// A lane's marks as a snapshot keeps them.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LaneState {
    pub source: String,
    pub lane: String,
    pub newest: Option<DateTime<Utc>>,
    pub complete_to: Option<DateTime<Utc>>,
}

/// What a snapshot keeps of the aligner.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AlignerState {
    pub lanes: Vec<LaneState>,
    pub released: Option<DateTime<Utc>>,
    /// Buffered events, in release order.
    pub buffered: Vec<Event>,
}

impl Aligner {
    pub fn new(config: AlignConfig) -> Aligner {
        Aligner {
            config,
            lanes: BTreeMap::new(),
            heap: BinaryHeap::new(),
            arrivals: 0,
            released: None,
            forced: 0,
        }
    }

    /// The aligner as a snapshot left it; every lane counts as just active.
    pub fn restore(config: AlignConfig, state: AlignerState, now: Instant) -> Aligner {
        let mut a = Aligner::new(config);
        a.released = state.released;
        for l in state.lanes {
            a.lanes.insert(
                (Arc::from(l.source.as_str()), l.lane),
                Lane {
                    newest: l.newest,
                    complete_to: l.complete_to,
                    backlog: false,
                    active_at: now,
                },
            );
        }
        for e in state.buffered {
            a.push(Box::new(e));
        }
        a
    }

    /// What a snapshot keeps.
    pub fn state(&self) -> AlignerState {
        let mut buffered: Vec<&Held> = self.heap.iter().map(|r| &r.0).collect();
        buffered.sort();
        AlignerState {
            lanes: self
                .lanes
                .iter()
                .map(|((s, l), lane)| LaneState {
                    source: s.to_string(),
                    lane: l.clone(),
                    newest: lane.newest,
                    complete_to: lane.complete_to,
                })
                .collect(),
            released: self.released,
            buffered: buffered.into_iter().map(|h| (*h.event).clone()).collect(),
        }
    }

    fn push(&mut self, event: Box<Event>) {
        self.arrivals += 1;
        self.heap.push(Reverse(Held {
            event,
            arrival: self.arrivals,
        }));
    }

    /// Takes one lane's events and its mark. Events older than the released watermark come back
    /// as [`Late`] for detection to take at once; the rest wait for [`Aligner::release`].
    pub fn offer(
        &mut self,
        source: &Arc<str>,
        mark: &LaneMark,
        events: Vec<Box<Event>>,
        now: Instant,
        late: &mut Vec<Late>,
    ) {
        let key = (Arc::clone(source), mark.lane.clone());
        let lane = self.lanes.entry(key).or_insert(Lane {
            newest: None,
            complete_to: None,
            backlog: false,
            active_at: now,
        });
        if !events.is_empty() || mark.backlog {
            lane.active_at = now;
        }
        lane.backlog = mark.backlog;
        if let Some(c) = mark.complete_to {
            lane.complete_to = Some(lane.complete_to.map_or(c, |x| x.max(c)));
        }
        // A time the record did not carry (a directory snapshot's "from the start") says nothing
        // of how far the lane has got.
        let carried = events
            .iter()
            .filter(|e| {
                matches!(
                    e.meta.time_source,
                    TimeSource::Record | TimeSource::Envelope | TimeSource::Nested
                )
            })
            .map(|e| e.meta.time)
            .max();
        if let Some(t) = carried {
            lane.newest = Some(lane.newest.map_or(t, |n| n.max(t)));
        }
        for event in events {
            let t = event.meta.time;
            match self.released {
                Some(r) if t < r => late.push(Late {
                    event,
                    source: Arc::clone(source),
                    lane: mark.lane.clone(),
                    behind: r - t,
                }),
                _ => self.push(event),
            }
        }
    }

    /// Takes a batch's events, each with its index among the batch's items, by the lanes the batch
    /// names (`item_lanes[index]` indexes `lanes`; no lanes: the whole source is one lane).
    pub fn offer_batch(
        &mut self,
        source: &Arc<str>,
        lanes: &[LaneMark],
        item_lanes: &[u16],
        events: Vec<(usize, Box<Event>)>,
        now: Instant,
        late: &mut Vec<Late>,
    ) {
        let whole = [LaneMark {
            lane: "all".to_owned(),
            complete_to: None,
            backlog: false,
        }];
        let marks = if lanes.is_empty() { &whole[..] } else { lanes };
        let mut by_lane: Vec<Vec<Box<Event>>> = marks.iter().map(|_| Vec::new()).collect();
        for (i, event) in events {
            let lane = item_lanes.get(i).map_or(0, |l| usize::from(*l));
            by_lane[lane.min(marks.len() - 1)].push(event);
        }
        for (mark, events) in marks.iter().zip(by_lane) {
            self.offer(source, mark, events, now, late);
        }
    }

    /// The smallest watermark of the lanes that are not idle; `None` when every lane is idle
    /// (nothing holds the buffer back).
    pub fn watermark(&self, now: Instant) -> Option<Option<DateTime<Utc>>> {
        let idle = Duration::from_secs(self.config.idle_secs);
        let bound = chrono::Duration::seconds(self.config.out_of_order_secs);
        let mut min: Option<Option<DateTime<Utc>>> = None;
        for lane in self.lanes.values() {
            if lane.is_idle(now, idle) {
                continue;
            }
            // A lane that vouches for itself is taken at its word; otherwise its newest event
            // less the bound.
            let wm = lane.complete_to.or(lane.newest.map(|n| n - bound));
            min = Some(match min {
                None => wm,
                Some(m) => match (m, wm) {
                    (Some(x), Some(y)) => Some(x.min(y)),
                    _ => None,
                },
            });
        }
        min
    }

    /// Hands `out` every buffered event no lane can still precede, in order.
    pub fn release(&mut self, now: Instant, out: &mut Vec<Box<Event>>) {
        match self.watermark(now) {
            // A lane that has told nothing yet holds everything.
            Some(None) => {}
            Some(Some(w)) => {
                while self.heap.peek().is_some_and(|h| h.0.event.meta.time < w) {
                    out.extend(self.pop_oldest());
                }
                self.released = Some(self.released.map_or(w, |r| r.max(w)));
            }
            None => self.release_all(out),
        }
        // Over the limit: the oldest go early (bounded memory wins over a perfect order).
        while self.heap.len() > self.config.max_buffered {
            self.forced += 1;
            out.extend(self.pop_oldest());
        }
    }

    /// Releases everything buffered (every source has finished).
    pub fn release_all(&mut self, out: &mut Vec<Box<Event>>) {
        while let Some(e) = self.pop_oldest() {
            out.push(e);
        }
    }

    /// Takes the oldest buffered event; the released watermark moves up to it.
    fn pop_oldest(&mut self) -> Option<Box<Event>> {
        let e = self.heap.pop()?.0.event;
        let t = e.meta.time;
        self.released = Some(self.released.map_or(t, |r| r.max(t)));
        Some(e)
    }

    /// Every event older than this has gone to detection.
    pub fn released(&self) -> Option<DateTime<Utc>> {
        self.released
    }

    pub fn buffered(&self) -> usize {
        self.heap.len()
    }

    /// Events released early because the buffer was over its limit.
    pub fn forced(&self) -> u64 {
        self.forced
    }

    /// How many lanes are known, and how many of them are idle now.
    pub fn lanes(&self, now: Instant) -> (usize, usize) {
        let idle = Duration::from_secs(self.config.idle_secs);
        let n = self.lanes.values().filter(|l| l.is_idle(now, idle)).count();
        (self.lanes.len(), n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reader::{Item, ReadOptions, read_bytes};

    /// A sign-in with this id at `minute` past midnight.
    fn event(id: &str, minute: i64) -> Box<Event> {
        let time = DateTime::<Utc>::from_timestamp(1_780_000_000 + minute * 60, 0).unwrap();
        let record = serde_json::json!({
            "id": id, "createdDateTime": time.to_rfc3339(),
            "userId": "00000000-0000-4000-8000-000000000001",
            "userPrincipalName": "ada@contoso.com",
            "status": { "errorCode": 0 }
        });
        let opts = ReadOptions::default();
        let mut out = None;
        read_bytes(
            "t",
            record.to_string().as_bytes(),
            Some("11111111-1111-4111-8111-111111111111"),
            &opts,
            &mut |i| {
                if let Item::Event(e) = i {
                    out = Some(e);
                }
            },
        );
        out.expect("a sign-in")
    }

    fn mark(lane: &str, backlog: bool) -> LaneMark {
        LaneMark {
            lane: lane.into(),
            complete_to: None,
            backlog,
        }
    }

    fn config(bound_minutes: i64) -> AlignConfig {
        AlignConfig {
            out_of_order_secs: bound_minutes * 60,
            idle_secs: 30,
            max_buffered: 1000,
        }
    }

    fn ids(events: &[Box<Event>]) -> Vec<String> {
        events.iter().map(|e| e.meta.id.to_string()).collect()
    }

    #[test]
    fn a_lane_behind_holds_the_others_and_the_output_is_in_event_time_order() {
        let src: Arc<str> = Arc::from("k");
        let now = Instant::now();
        let mut a = Aligner::new(config(0));
        let mut late = Vec::new();
        let mut out = Vec::new();
        // Partition 0 is hours ahead; partition 1 is read later.
        a.offer(
            &src,
            &mark("p0", false),
            vec![event("a", 600), event("b", 601)],
            now,
            &mut late,
        );
        a.offer(
            &src,
            &mark("p1", true),
            vec![event("c", 10)],
            now,
            &mut late,
        );
        a.release(now, &mut out);
        assert!(out.is_empty(), "{:?}", ids(&out));
        a.offer(
            &src,
            &mark("p1", false),
            vec![event("d", 20), event("e", 700)],
            now,
            &mut late,
        );
        a.release(now, &mut out);
        // Partition 0 vouches for nothing past its newest event (601): "b" waits at it.
        assert_eq!(ids(&out), ["c", "d", "a"]);
        assert!(late.is_empty());
        // A late one is handed back at once and counted.
        a.offer(
            &src,
            &mark("p1", false),
            vec![event("f", 5)],
            now,
            &mut late,
        );
        assert_eq!(late.len(), 1);
        assert_eq!((&*late[0].source, late[0].lane.as_str()), ("k", "p1"));
        assert_eq!(late[0].behind, chrono::Duration::minutes(596));
    }

    #[test]
    fn ties_are_ordered_by_identity_whatever_the_lane_or_arrival() {
        let src: Arc<str> = Arc::from("k");
        let now = Instant::now();
        let run = |first: &str, second: &str| {
            let mut a = Aligner::new(config(0));
            let mut late = Vec::new();
            a.offer(
                &src,
                &mark(first, false),
                vec![event(first, 1)],
                now,
                &mut late,
            );
            a.offer(
                &src,
                &mark(second, false),
                vec![event(second, 1)],
                now,
                &mut late,
            );
            let mut out = Vec::new();
            a.release_all(&mut out);
            ids(&out)
        };
        assert_eq!(run("x", "y"), run("y", "x"));
    }

    #[test]
    fn an_idle_lane_without_backlog_stops_holding_but_a_backlogged_one_never_does() {
        let src: Arc<str> = Arc::from("k");
        let t0 = Instant::now();
        let mut a = Aligner::new(config(0));
        let mut late = Vec::new();
        let mut out = Vec::new();
        a.offer(&src, &mark("empty", false), vec![], t0, &mut late);
        a.offer(&src, &mark("behind", true), vec![], t0, &mut late);
        a.offer(
            &src,
            &mark("busy", false),
            vec![event("a", 1), event("b", 9)],
            t0,
            &mut late,
        );
        let later = t0 + Duration::from_secs(31);
        a.release(later, &mut out);
        assert!(out.is_empty(), "the backlogged lane must hold");
        a.offer(
            &src,
            &mark("behind", false),
            vec![event("c", 5)],
            later,
            &mut late,
        );
        // "empty" is idle, "behind" says 5, "busy" says 9: released below 5.
        a.release(later, &mut out);
        assert_eq!(ids(&out), ["a"]);
        let much_later = later + Duration::from_secs(31);
        a.release(much_later, &mut out);
        assert_eq!(ids(&out), ["a", "c", "b"], "all idle: everything goes");
        assert_eq!(a.lanes(much_later), (3, 3));
    }

    #[test]
    fn the_bound_and_complete_to_set_a_lanes_watermark() {
        let src: Arc<str> = Arc::from("g");
        let now = Instant::now();
        let mut a = Aligner::new(config(10));
        let mut late = Vec::new();
        let mut out = Vec::new();
        a.offer(
            &src,
            &mark("sig", false),
            vec![event("a", 0), event("b", 30)],
            now,
            &mut late,
        );
        a.release(now, &mut out);
        assert_eq!(ids(&out), ["a"], "30 - 10 minutes");
        let mut m = mark("sig", false);
        m.complete_to = Some(event("x", 31).meta.time);
        a.offer(&src, &m, vec![], now, &mut late);
        a.release(now, &mut out);
        assert_eq!(ids(&out), ["a", "b"]);
    }

    #[test]
    fn over_the_limit_the_oldest_go_early_and_are_counted() {
        let src: Arc<str> = Arc::from("k");
        let now = Instant::now();
        let mut a = Aligner::new(AlignConfig {
            out_of_order_secs: 0,
            idle_secs: 30,
            max_buffered: 2,
        });
        let mut late = Vec::new();
        let mut out = Vec::new();
        a.offer(
            &src,
            &mark("slow", true),
            vec![event("s", 1)],
            now,
            &mut late,
        );
        a.offer(
            &src,
            &mark("fast", false),
            vec![event("a", 100), event("b", 101), event("c", 102)],
            now,
            &mut late,
        );
        a.release(now, &mut out);
        assert_eq!(
            ids(&out),
            ["s", "a"],
            "four held, limit two: the two oldest go"
        );
        assert_eq!(a.forced(), 2);
        assert_eq!(a.buffered(), 2);
        a.offer(
            &src,
            &mark("slow", true),
            vec![event("t", 2)],
            now,
            &mut late,
        );
        assert_eq!(
            late.len(),
            1,
            "what arrives behind a forced release is late"
        );
    }

    #[test]
    fn a_time_the_record_did_not_carry_does_not_move_its_lane() {
        let src: Arc<str> = Arc::from("k");
        let now = Instant::now();
        let mut a = Aligner::new(config(0));
        let mut late = Vec::new();
        let mut out = Vec::new();
        let mut not_carried = event("x", 10_000);
        not_carried.meta.time_source = TimeSource::Snapshot;
        a.offer(
            &src,
            &mark("p0", false),
            vec![event("a", 1), not_carried],
            now,
            &mut late,
        );
        a.offer(
            &src,
            &mark("p1", false),
            vec![event("b", 5)],
            now,
            &mut late,
        );
        a.release(now, &mut out);
        // p0 has got to minute 1, not 10 000: "b" waits.
        assert_eq!(ids(&out), Vec::<String>::new());
        a.offer(
            &src,
            &mark("p0", false),
            vec![event("c", 9)],
            now,
            &mut late,
        );
        a.release(now, &mut out);
        assert_eq!(ids(&out), ["a"], "released below 5, p1's newest");
        assert!(late.is_empty());
    }

    #[test]
    fn a_restored_aligner_continues_where_the_snapshot_was_taken() {
        let src: Arc<str> = Arc::from("k");
        let now = Instant::now();
        let mut a = Aligner::new(config(0));
        let mut late = Vec::new();
        let mut out = Vec::new();
        a.offer(
            &src,
            &mark("p0", false),
            vec![event("a", 1), event("b", 50)],
            now,
            &mut late,
        );
        a.offer(&src, &mark("p1", true), vec![event("c", 2)], now, &mut late);
        a.release(now, &mut out);
        assert_eq!(ids(&out), ["a"]);
        let json = serde_json::to_string(&a.state()).unwrap();
        let state: AlignerState = serde_json::from_str(&json).unwrap();
        let mut b = Aligner::restore(config(0), state, now);
        assert_eq!(b.released(), a.released());
        assert_eq!(b.buffered(), 2);
        b.offer(
            &src,
            &mark("p1", false),
            vec![event("d", 60)],
            now,
            &mut late,
        );
        let mut rest = Vec::new();
        b.release(now, &mut rest);
        assert_eq!(ids(&rest), ["c"]);
        b.release_all(&mut rest);
        assert_eq!(ids(&rest), ["c", "b", "d"]);
        // The restored events are the same events.
        assert_eq!(
            serde_json::to_string(&rest[1]).unwrap(),
            serde_json::to_string(&event("b", 50)).unwrap()
        );
    }
}
