//! A mini runtime for one source: collects its batches, reports each one durable (`Committed`)
//! right away, keeps the last committed position, and counts every event by its dedup key.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use entrawatch_ingest::align::{AlignConfig, Aligner};
use entrawatch_ingest::metrics::SourceMetrics;
use entrawatch_ingest::source::{Batch, Committed, Source, SourceContext, SourceError};
use entrawatch_ingest::sources::graph::GraphSource;
use entrawatch_ingest::{Item, ReadOptions};
use serde_json::Value;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::fake::Key;

pub struct Run {
    batches: mpsc::Receiver<Batch>,
    commits: mpsc::UnboundedSender<Committed>,
    shutdown: watch::Sender<bool>,
    pub ready: watch::Receiver<bool>,
    task: Option<JoinHandle<Result<(), SourceError>>>,
    pub metrics: SourceMetrics,
    /// How many times each event key arrived.
    pub counts: HashMap<Key, usize>,
    /// When each key first arrived.
    pub arrivals: HashMap<Key, Instant>,
    pub rejected: Vec<String>,
    /// The position of the last batch reported durable.
    pub position: Option<Value>,
    pub batches_seen: usize,
    pub empty_batches: usize,
    pub largest_position: usize,
    /// Every batch also goes through an event-time aligner, as in the service.
    pub aligner: Aligner,
    /// (event time, dedup key) of every event the aligner released, in release order.
    pub released: Vec<(chrono::DateTime<chrono::Utc>, Key)>,
    /// Events the aligner found late.
    pub late: usize,
    last_seq: u64,
}

impl Run {
    pub fn start(source: GraphSource, resume: Option<Value>) -> Run {
        let (out, batches) = mpsc::channel(8);
        let (commits, committed) = mpsc::unbounded_channel();
        let (shutdown, shutdown_rx) = watch::channel(false);
        let (ready_tx, ready) = watch::channel(false);
        let metrics = SourceMetrics::unregistered();
        let ctx = SourceContext {
            name: Arc::from(source.config().name.as_str()),
            out,
            committed,
            resume,
            shutdown: shutdown_rx,
            ready: ready_tx,
            read: ReadOptions::default(),
            metrics: metrics.clone(),
        };
        let task = tokio::spawn(Box::new(source).run(ctx));
        Run {
            batches,
            commits,
            shutdown,
            ready,
            task: Some(task),
            metrics,
            counts: HashMap::new(),
            arrivals: HashMap::new(),
            rejected: Vec::new(),
            position: None,
            batches_seen: 0,
            empty_batches: 0,
            largest_position: 0,
            aligner: Aligner::new(AlignConfig {
                out_of_order_secs: 0,
                idle_secs: 3600,
                max_buffered: 1_000_000,
            }),
            released: Vec::new(),
            late: 0,
            last_seq: 0,
        }
    }

    fn take(&mut self, b: Batch) {
        assert_eq!(b.seq, self.last_seq + 1, "batches come in seq order");
        self.last_seq = b.seq;
        self.batches_seen += 1;
        if b.items.is_empty() {
            self.empty_batches += 1;
        }
        let now = Instant::now();
        for item in &b.items {
            match item {
                Item::Event(e) => {
                    let (tenant, kind, id) = e.dedup_key();
                    let key = (tenant, kind.as_str().to_owned(), id);
                    *self.counts.entry(key.clone()).or_default() += 1;
                    self.arrivals.entry(key).or_insert(now);
                }
                Item::Rejected(r) => self.rejected.push(r.to_string()),
                _ => {}
            }
        }
        self.align(&b);
        self.largest_position = self.largest_position.max(b.position.to_string().len());
        self.position = Some(b.position);
        let _ = self.commits.send(Committed { seq: b.seq });
    }

    fn align(&mut self, b: &Batch) {
        let events = b
            .items
            .iter()
            .enumerate()
            .filter_map(|(i, item)| match item {
                Item::Event(e) => Some((i, e.clone())),
                _ => None,
            })
            .collect();
        let mut late = Vec::new();
        let now = std::time::Instant::now();
        self.aligner
            .offer_batch(&b.source, &b.lanes, &b.item_lanes, events, now, &mut late);
        self.late += late
            .iter()
            .filter(|l| l.event.meta.time_source != entrawatch_ingest::TimeSource::Snapshot)
            .count();
        let mut out = Vec::new();
        self.aligner.release(now, &mut out);
        self.note_released(&out);
    }

    fn note_released(&mut self, out: &[Box<entrawatch_ingest::Event>]) {
        for e in out {
            let (tenant, kind, id) = e.dedup_key();
            self.released
                .push((e.meta.time, (tenant, kind.as_str().to_owned(), id)));
        }
    }

    /// Releases what the aligner still holds (as when every source has finished).
    pub fn release_all(&mut self) {
        let mut out = Vec::new();
        self.aligner.release_all(&mut out);
        self.note_released(&out);
    }

    /// Takes batches until `done` holds (true) or `limit` passes (false).
    pub async fn until(&mut self, limit: Duration, mut done: impl FnMut(&Run) -> bool) -> bool {
        let end = Instant::now() + limit;
        loop {
            if done(self) {
                return true;
            }
            if Instant::now() >= end {
                return false;
            }
            // Wake now and then: `done` may watch counters, not only batches.
            let wake = end.min(Instant::now() + Duration::from_millis(50));
            match tokio::time::timeout_at(wake, self.batches.recv()).await {
                Ok(Some(b)) => self.take(b),
                Ok(None) => return done(self),
                Err(_) => {}
            }
        }
    }

    /// Keeps taking batches for `d` (to see that nothing more, e.g. a repeat, arrives).
    pub async fn settle(&mut self, d: Duration) {
        let end = Instant::now() + d;
        while let Ok(Some(b)) = tokio::time::timeout_at(end, self.batches.recv()).await {
            self.take(b);
        }
    }

    /// Whether every expected key arrived.
    pub fn has_all<'a>(&self, expected: impl IntoIterator<Item = &'a Key>) -> bool {
        expected.into_iter().all(|k| self.counts.contains_key(k))
    }

    /// Keys that arrived more than once.
    pub fn repeats(&self) -> Vec<(&Key, usize)> {
        self.counts
            .iter()
            .filter(|(_, n)| **n > 1)
            .map(|(k, n)| (k, *n))
            .collect()
    }

    /// Stops the source, takes its last batches, and waits for it to end (bounded).
    pub async fn stop(mut self) -> Run {
        let _ = self.shutdown.send(true);
        let end = Instant::now() + Duration::from_secs(20);
        while let Ok(Some(b)) = tokio::time::timeout_at(end, self.batches.recv()).await {
            self.take(b);
        }
        let task = self.task.take().expect("running");
        let result = tokio::time::timeout_at(end, task)
            .await
            .expect("the source stops within its drain time")
            .expect("the source task does not panic");
        assert!(result.is_ok(), "{result:?}");
        self
    }

    pub fn gauge(&self, which: &str, tenant: &str, stream: &str) -> i64 {
        let g = match which {
            "available" => &self.metrics.stream_available,
            _ => &self.metrics.watermark_lag,
        };
        g.with_label_values(&["graph", tenant, stream]).get()
    }

    pub fn requests(&self, status: &str) -> u64 {
        self.metrics
            .requests
            .with_label_values(&["graph", status])
            .get()
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}
