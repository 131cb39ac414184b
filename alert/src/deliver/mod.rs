//! Delivery: outbox rows in, messages at Teams, Slack, webhooks and files out.
//!
//! [`Delivery::start`] runs one worker task per [`ResolvedDestination`], each with its own outbox
//! connection, so a slow, throttled or broken destination never holds up another (docs/alerting.md
//! §5.6). A worker has up to `max_in_flight` requests out at once, so a request that hangs holds
//! up neither its destination's other messages nor another destination. The runtime calls [`Delivery::wake`] after each outbox commit and
//! [`Delivery::shutdown`] on SIGTERM. [`send_once`] sends one message without the outbox
//! (`entrawatch send-test`).
//!
//! The parts, in the order a row meets them: [`clock`] (time, manual in tests), [`backoff`]
//! (token bucket, full-jitter backoff), `worker` (the loop that leases rows, sends each through its
//! destination's [`Sink`](crate::sink::Sink) and marks it by the answer: retry, pause, circuit,
//! fallback, dead letter), [`system`] (alerts about delivery itself), [`fault`] (crash injection
//! for tests).

pub mod backoff;
pub mod clock;
mod db;
pub mod fault;
pub mod system;
mod worker;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

use crate::destination::ResolvedDestination;
use crate::metrics::DeliveryMetrics;
use crate::outbox::{Outbox, OutboxError};
use crate::sink::{self, Message};

pub use crate::sink::classify::{Outcome, RetryAfter, StatusClass, Verdict};
pub use backoff::{Backoff, Jitter, TokenBucket};
pub use clock::{Clock, ManualClock, SystemClock};
pub use fault::{FaultPlan, FaultPoint};

use db::Db;
use worker::{Phase, Shared, Worker};

/// Settings tests and the crash harness change.
#[derive(Debug, Clone, Default)]
pub struct DeliveryOptions {
    pub fault: FaultPlan,
    pub backoff: Backoff,
    /// A fixed jitter seed (reproducible tests); time-seeded when `None`.
    pub jitter_seed: Option<u64>,
}

impl DeliveryOptions {
    /// Production options: default backoff, the fault plan in `ENTRAWATCH_FAULT` (normally none).
    pub fn from_env() -> DeliveryOptions {
        DeliveryOptions {
            fault: FaultPlan::from_env(),
            ..DeliveryOptions::default()
        }
    }
}

/// The running workers.
#[derive(Debug)]
pub struct Delivery {
    wakers: Arc<BTreeMap<String, Arc<Notify>>>,
    control: watch::Sender<Phase>,
    handles: Vec<(String, JoinHandle<()>)>,
    outbox_path: PathBuf,
    max_timeout: Duration,
}

impl Delivery {
    /// Starts one worker per destination on the current tokio runtime. Rows left `inflight` by a
    /// previous run (a crash) go back to `pending` first: one delivery owns an outbox at a time.
    pub fn start(
        outbox_path: PathBuf,
        destinations: Vec<ResolvedDestination>,
        metrics: DeliveryMetrics,
        clock: Arc<dyn Clock>,
    ) -> Result<Delivery, OutboxError> {
        Delivery::start_with(
            outbox_path,
            destinations,
            metrics,
            clock,
            DeliveryOptions::from_env(),
        )
    }

    /// [`Delivery::start`] with explicit options.
    pub fn start_with(
        outbox_path: PathBuf,
        destinations: Vec<ResolvedDestination>,
        metrics: DeliveryMetrics,
        clock: Arc<dyn Clock>,
        options: DeliveryOptions,
    ) -> Result<Delivery, OutboxError> {
        let mut first = Outbox::open_for_delivery(&outbox_path)?;
        let requeued = first.requeue_inflight(None)?;
        if requeued > 0 {
            tracing::warn!(
                rows = requeued,
                "rows left in flight by the previous run will be sent again"
            );
        }
        let orphans: Vec<String> = first
            .stats()?
            .destinations
            .into_iter()
            .filter(|(d, s)| s.pending > 0 && !destinations.iter().any(|x| &x.name == d))
            .map(|(d, _)| d)
            .collect();
        if !orphans.is_empty() {
            tracing::warn!(destinations = ?orphans, "outbox has pending rows for destinations not configured");
        }
        for d in &destinations {
            metrics.start_destination(&d.name);
        }
        let wakers: Arc<BTreeMap<String, Arc<Notify>>> = Arc::new(
            destinations
                .iter()
                .map(|d| (d.name.clone(), Arc::new(Notify::new())))
                .collect(),
        );
        let (control, control_rx) = watch::channel(Phase::Running);
        let max_timeout = destinations
            .iter()
            .map(|d| d.timeout)
            .max()
            .unwrap_or_default();
        let mut handles = Vec::new();
        let mut first = Some(first);
        for dest in destinations {
            let outbox = match first.take() {
                Some(o) => o,
                None => Outbox::open_for_delivery(&outbox_path)?,
            };
            let shared = Shared {
                metrics: metrics.clone(),
                clock: clock.clone(),
                fault: options.fault.clone(),
                backoff: options.backoff,
                wakers: wakers.clone(),
                control: control_rx.clone(),
            };
            let name = dest.name.clone();
            tracing::info!(destination = %name, kind = dest.kind().as_str(), "delivery worker starting");
            let worker = Worker::new(dest, Db::new(outbox), shared, options.jitter_seed);
            handles.push((name, tokio::spawn(worker.run())));
        }
        Ok(Delivery {
            wakers,
            control,
            handles,
            outbox_path,
            max_timeout,
        })
    }

    /// Tells every worker to look at the outbox now (call after each commit).
    pub fn wake(&self) {
        for n in self.wakers.values() {
            n.notify_one();
        }
    }

    /// The configured destination names.
    pub fn destinations(&self) -> Vec<&str> {
        self.wakers.keys().map(String::as_str).collect()
    }

    /// Keeps delivering what is due for up to `grace`, then stops taking new messages, lets the
    /// ones in flight finish (bounded by the request timeout) and releases leases. Undelivered
    /// rows stay in the outbox for the next start.
    pub async fn shutdown(mut self, grace: Duration) {
        let _ = self.control.send(Phase::Draining);
        let drained = tokio::time::timeout(grace, self.join_all()).await.is_ok();
        if !drained {
            let _ = self.control.send(Phase::Stop);
            let budget = self.max_timeout + Duration::from_secs(5);
            if tokio::time::timeout(budget, self.join_all()).await.is_err() {
                tracing::error!("delivery workers did not stop in time, aborting them");
                for (_, h) in &self.handles {
                    h.abort();
                }
                match Outbox::open(&self.outbox_path).and_then(|mut o| o.requeue_inflight(None)) {
                    Ok(n) => tracing::info!(rows = n, "leases released after abort"),
                    Err(e) => tracing::error!(error = %e, "releasing leases failed"),
                }
            }
        }
        self.handles.clear();
        tracing::info!(drained, "delivery stopped");
    }

    async fn join_all(&mut self) {
        for (name, h) in &mut self.handles {
            if h.is_finished() {
                continue;
            }
            if let Err(e) = h.await
                && e.is_panic()
            {
                tracing::error!(destination = %name, "delivery worker panicked");
            }
        }
    }
}

impl Drop for Delivery {
    /// Dropping without [`Delivery::shutdown`] aborts the workers where they are, as a crash
    /// would: leases stay until the next start requeues them.
    fn drop(&mut self) {
        for (_, h) in &self.handles {
            h.abort();
        }
    }
}

/// Sends `msg` once to `dest` (`entrawatch send-test`): full render, no outbox, no retry.
pub async fn send_once(dest: &ResolvedDestination, msg: &Message<'_>) -> Outcome {
    dest.sink
        .send(&sink::client(dest.timeout), &dest.name, msg, false)
        .await
}
