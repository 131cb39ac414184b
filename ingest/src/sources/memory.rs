//! The `memory` source: events handed to it in process, so the whole pipeline runs in tests without
//! files, Graph or Kafka. Its position is the number of events handed out; on a restart with a
//! resume position the first that many events pushed are skipped, as a replayed stream would be.

use std::sync::Arc;
use std::time::Instant;

use serde_json::json;
use tokio::sync::mpsc;

use crate::model::Event;
use crate::reader::Item;
use crate::source::{Batch, CommitTracker, Source, SourceContext, SourceError, SourceFuture};

/// Pushes events into a [`MemorySource`]; dropping every handle ends the source.
#[derive(Debug, Clone)]
pub struct MemoryHandle {
    tx: mpsc::Sender<Vec<Event>>,
}

impl MemoryHandle {
    /// Sends one batch of events (waits while the source is behind).
    pub async fn push(&self, events: Vec<Event>) -> Result<(), SourceError> {
        self.tx
            .send(events)
            .await
            .map_err(|_| SourceError::Closed("memory".into()))
    }
}

/// The source side.
#[derive(Debug)]
pub struct MemorySource {
    rx: mpsc::Receiver<Vec<Event>>,
}

impl MemorySource {
    pub fn new() -> (MemorySource, MemoryHandle) {
        let (tx, rx) = mpsc::channel(16);
        (MemorySource { rx }, MemoryHandle { tx })
    }
}

impl Source for MemorySource {
    fn kind(&self) -> &'static str {
        "memory"
    }

    fn run(mut self: Box<Self>, ctx: SourceContext) -> SourceFuture {
        Box::pin(async move {
            let mut skip = ctx
                .resume
                .as_ref()
                .and_then(|v| v.get("handed_out"))
                .and_then(serde_json::Value::as_u64)
                .unwrap_or(0);
            let mut handed_out = skip;
            let mut tracker = CommitTracker::default();
            let _ = ctx.ready.send(true);
            let mut shutdown = ctx.shutdown.clone();
            loop {
                let events = tokio::select! {
                    e = self.rx.recv() => e,
                    _ = shutdown.changed() => None,
                };
                let Some(events) = events else { break };
                let received_at = Instant::now();
                let take = events
                    .len()
                    .saturating_sub(skip.min(events.len() as u64) as usize);
                let dropped = events.len() - take;
                skip -= dropped as u64;
                let items: Vec<Item> = events
                    .into_iter()
                    .skip(dropped)
                    .map(|e| Item::Event(Box::new(e)))
                    .collect();
                if items.is_empty() {
                    continue;
                }
                handed_out += items.len() as u64;
                ctx.metrics.count_items(&ctx.name, &items);
                let batch = Batch::single(
                    Arc::clone(&ctx.name),
                    tracker.next_batch(),
                    items,
                    json!({ "handed_out": handed_out }),
                    received_at,
                );
                if ctx.out.send(batch).await.is_err() {
                    return Err(SourceError::Closed(ctx.name.to_string()));
                }
            }
            Ok(())
        })
    }
}
