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
//! de-duplicated by record id and alert ids are deterministic, so no alert is sent twice).
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

use serde_json::Value;
use tokio::sync::{mpsc, watch};

pub use crate::align::LaneMark;
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
}

/// A batch went through detection and its alerts and position are durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Committed {
    pub seq: u64,
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
