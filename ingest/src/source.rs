//! Live sources: the contract every source (file, kafka, graph) keeps with the runtime.
//!
//! A source runs as one tokio task ([`Source::run`]). It reads records, turns them into
//! [`reader::Item`]s with the same parsers `replay` uses, and sends them in [`Batch`]es, in order,
//! on a bounded channel: a slow detection stage makes `send` wait, so memory stays bounded.
//!
//! **Checkpoint contract.** Every batch carries the `position` the source would resume from once
//! that batch and every earlier one are durable. The runtime runs detection over the batch, commits
//! the alerts it raised to the outbox *together with that position* (one SQLite transaction), and
//! only then reports the batch's `seq` back on [`SourceContext::committed`]. A source advances its
//! external position (a Kafka offset commit, a Graph watermark) only on that report, and only past
//! batches it has been told about, so a crash can repeat records but never skip one. Positions are
//! opaque JSON owned by the source; on start the runtime hands back the position of the last state
//! snapshot in [`SourceContext::resume`] (which may be behind the last commit: repeated records are
//! de-duplicated by record id and alert ids are deterministic, so no alert is sent twice). A source
//! whose records are costly to read again (Graph's back-fill) may instead resume from the newest
//! position committed to the outbox ([`Source::resume_from`] with a [`DurableCheckpoint`]).
//! A batch may also carry [`Notice`]s (the source's own access to a tenant lost or regained):
//! the runtime commits the system alerts they make with the batch's position, so a source that
//! records in its position which notices it sent neither loses nor repeats one.
//!
//! **Shutdown.** When [`SourceContext::shutdown`] turns true a source stops fetching, waits (bounded)
//! for the reports of batches already sent, commits what they cover, and returns.
//!
//! [`reader::Item`]: crate::reader::Item

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Utc};
use serde_json::Value;
use tokio::sync::{mpsc, watch};

pub use crate::align::LaneMark;
pub use crate::notice::{AccessCause, AccessChange, Notice, StreamAccess};
use crate::reader::{Item, ReadOptions};

/// Most items a source puts in one batch.
pub const MAX_BATCH_ITEMS: usize = 1000;

/// Records read together, in source order, and where to resume after them.
#[derive(Debug)]
pub struct Batch {
    /// The source's configured name.
    pub source: Arc<str>,
    /// Increasing per source, from 1; the runtime reports it back once the batch is durable.
    pub seq: u64,
    pub items: Vec<Item>,
    /// Where the source resumes once this batch (and every earlier one) is durable.
    pub position: Value,
    /// When the first record of the batch reached the source (for latency figures).
    pub received_at: Instant,
    /// What the batch says of the source's lanes (Kafka partitions, Graph tenant streams), for the
    /// event-time aligner ([`crate::align`]). Empty: the whole source is one lane, named after it.
    pub lanes: Vec<LaneMark>,
    /// For each item, the index in `lanes` of the lane it came by; empty: every item came by the
    /// first lane (or the source's only lane).
    pub item_lanes: Vec<u16>,
    /// What the source tells the SOC about its own access to a tenant, recorded in `position`
    /// (so it is committed exactly once, with that position).
    pub notices: Vec<Notice>,
}

/// A batch went through detection and its alerts and position are durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Committed {
    pub seq: u64,
}

/// The newest position the runtime committed to the outbox for a source, with what detection
/// had seen at that moment.
#[derive(Debug, Clone, PartialEq)]
pub struct DurableCheckpoint {
    pub position: Value,
    /// Every event received with a time before this had gone through detection (the aligner's
    /// released watermark); later ones may have been waiting in the aligner's buffer, which dies
    /// with the process. `None`: nothing had been released.
    pub detected_before: Option<DateTime<Utc>>,
}

/// What the runtime gives a source to run with.
#[derive(Debug)]
pub struct SourceContext {
    pub name: Arc<str>,
    /// Where batches go; bounded, so a slow pipeline applies backpressure.
    pub out: mpsc::Sender<Batch>,
    /// Reports of durable batches, in `seq` order.
    pub committed: mpsc::UnboundedReceiver<Committed>,
    /// The position to resume from (the last state snapshot's), or `None` on a first start.
    pub resume: Option<Value>,
    /// Turns true when the service stops.
    pub shutdown: watch::Receiver<bool>,
    /// The source reports here when it is ready (connected, joined, first token) or not.
    pub ready: watch::Sender<bool>,
    /// Parser options (record size limit, tenant hint).
    pub read: ReadOptions,
    pub metrics: crate::metrics::SourceMetrics,
}

/// Why a source stopped for good. Transient trouble (a broker away, a 503) is retried inside the
/// source and never ends it.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("source {source_name}: {message}")]
    Fatal {
        source_name: String,
        message: String,
    },
    #[error("source {0}: the pipeline closed")]
    Closed(String),
    /// The source went through everything it was given but could not read all of it (an
    /// unreadable file or folder, a folder too deep): what it could read went on, and each path
    /// it could not was logged and counted in `entrawatch_source_errors_total`.
    #[error("source {source_name}: {count} input paths could not be read (first: {first})")]
    Incomplete {
        source_name: String,
        count: u64,
        first: String,
    },
}

/// A boxed future a source's task runs.
pub type SourceFuture = Pin<Box<dyn Future<Output = Result<(), SourceError>> + Send>>;

/// A live source.
pub trait Source: Send + fmt::Debug {
    /// The source type as written in config (`file`, `kafka`, `eventhub`, `graph`).
    fn kind(&self) -> &'static str;
    /// The position to start from, given the last snapshot's and the newest one committed to the
    /// outbox (newer, or the same). Default: the snapshot's, whose detection state agrees with it;
    /// the records after it are read again (cheap for a file or a Kafka topic).
    fn resume_from(
        &self,
        snapshot: Option<Value>,
        _durable: Option<DurableCheckpoint>,
    ) -> Option<Value> {
        snapshot
    }
    /// Runs until shutdown (or, for finite sources, until the input is exhausted and committed).
    fn run(self: Box<Self>, ctx: SourceContext) -> SourceFuture;
}

/// Tracks batches sent and reports received, for sources that must know the newest durable one.
#[derive(Debug, Default)]
pub struct CommitTracker {
    next_seq: u64,
    durable: u64,
}

impl CommitTracker {
    /// The seq for the next batch.
    pub fn next_batch(&mut self) -> u64 {
        self.next_seq += 1;
        self.next_seq
    }

    /// Records a report; returns the newest durable seq.
    pub fn on_commit(&mut self, c: Committed) -> u64 {
        self.durable = self.durable.max(c.seq);
        self.durable
    }

    pub fn durable(&self) -> u64 {
        self.durable
    }

    /// Whether every batch sent has been reported durable.
    pub fn all_durable(&self) -> bool {
        self.durable >= self.next_seq
    }
}

/// Waits (at most `timeout`) until every batch sent is reported durable; true when they all are.
pub async fn drain_commits(
    tracker: &mut CommitTracker,
    committed: &mut mpsc::UnboundedReceiver<Committed>,
    timeout: std::time::Duration,
    mut on_commit: impl FnMut(u64),
) -> bool {
    let deadline = tokio::time::Instant::now() + timeout;
    while !tracker.all_durable() {
        match tokio::time::timeout_at(deadline, committed.recv()).await {
            Ok(Some(c)) => on_commit(tracker.on_commit(c)),
            Ok(None) | Err(_) => return false,
        }
    }
    true
}

/// Tells when each source has caught up with what was waiting for it, from the lanes of its
/// batches: a source is behind while a lane of its latest batch has a backlog (a Kafka partition
/// short of its high watermark, a Graph lane back-filling, a file generation partly sent) and
/// catches up with the first batch after that whose lanes have none. Every source starts behind:
/// its first catch-up is the end of what waited for it at start.
#[derive(Debug, Default)]
pub struct CatchUp {
    sources: std::collections::HashMap<Arc<str>, Progress>,
}

#[derive(Debug)]
struct Progress {
    /// Records sent since the source fell behind.
    records: u64,
    /// When it fell behind; `None` while caught up.
    behind_since: Option<Instant>,
    caught_up_before: bool,
}

/// A source caught up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CaughtUp {
    /// Records (events, rejects and skips) the source sent while it was behind, the last batch
    /// included.
    pub records: u64,
    /// How long it was behind (from its first batch, for the first catch-up).
    pub behind_for: std::time::Duration,
    /// The first catch-up since the service started.
    pub first: bool,
}

impl CatchUp {
    /// Takes note of a batch of `records` records from `source` with these lanes; says when the
    /// batch is the one that caught up.
    pub fn observe(
        &mut self,
        source: &Arc<str>,
        records: usize,
        lanes: &[LaneMark],
        now: Instant,
    ) -> Option<CaughtUp> {
        let p = self
            .sources
            .entry(Arc::clone(source))
            .or_insert_with(|| Progress {
                records: 0,
                behind_since: Some(now),
                caught_up_before: false,
            });
        let records = records as u64;
        let backlog = lanes.iter().any(|l| l.backlog);
        match (p.behind_since, backlog) {
            (None, false) => None,
            (None, true) => {
                p.behind_since = Some(now);
                p.records = records;
                None
            }
            (Some(_), true) => {
                p.records += records;
                None
            }
            (Some(since), false) => {
                p.behind_since = None;
                let first = !p.caught_up_before;
                p.caught_up_before = true;
                Some(CaughtUp {
                    records: std::mem::take(&mut p.records) + records,
                    behind_for: now.saturating_duration_since(since),
                    first,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn lane(backlog: bool) -> LaneMark {
        LaneMark {
            lane: "p0".to_owned(),
            complete_to: None,
            backlog,
        }
    }

    #[test]
    fn a_source_catches_up_once_per_backlog() {
        let mut c = CatchUp::default();
        let hub: Arc<str> = Arc::from("hub");
        let files: Arc<str> = Arc::from("files");
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        // The start: behind until a batch without backlog.
        assert_eq!(
            c.observe(&hub, 1000, &[lane(true), lane(false)], at(0)),
            None
        );
        assert_eq!(c.observe(&hub, 1000, &[lane(true)], at(1)), None);
        assert_eq!(
            c.observe(&hub, 10, &[lane(false), lane(false)], at(3)),
            Some(CaughtUp {
                records: 2010,
                behind_for: Duration::from_secs(3),
                first: true
            })
        );
        // Caught up: live batches say nothing.
        assert_eq!(c.observe(&hub, 5, &[lane(false)], at(4)), None);
        assert_eq!(c.observe(&hub, 5, &[], at(5)), None);
        // Behind again, then caught up: the records of that backlog.
        assert_eq!(c.observe(&hub, 700, &[lane(true)], at(100)), None);
        assert_eq!(
            c.observe(&hub, 300, &[lane(false)], at(190)),
            Some(CaughtUp {
                records: 1000,
                behind_for: Duration::from_secs(90),
                first: false
            })
        );
        // Each source on its own; a first batch without backlog is the first catch-up.
        assert_eq!(
            c.observe(&files, 12, &[lane(false)], at(200)),
            Some(CaughtUp {
                records: 12,
                behind_for: Duration::ZERO,
                first: true
            })
        );
    }
}
