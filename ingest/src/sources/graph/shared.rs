//! What a tenant's pollers share: the config, the client, the channel to the batcher, the
//! metrics and the shutdown signal; plus the waits, the metric updates and the page parsing every
//! poller uses.
//!
//! In: the running source's parts. Out: [`Shared`] (one per source) and [`Tenant`] (one per
//! customer tenant, with its budget and what is known of its licence).

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::{mpsc, watch};

use super::batcher::Msg;
use super::budget::{Scale, random_unit};
use super::client::{Fetched, GraphClient, TenantHandle};
use super::config::GraphConfig;
use super::lanes::{InStep, Lane};
use crate::Text;
use crate::metrics::SourceMetrics;
use crate::reader::{Item, ReadOptions, read_bytes};

/// Pages larger than this are parsed off the async workers.
const BLOCKING_PARSE_BYTES: usize = 256 * 1024;

/// What every poller shares.
#[derive(Debug)]
pub struct Shared {
    pub cfg: GraphConfig,
    pub client: GraphClient,
    pub tx: mpsc::Sender<Msg>,
    pub metrics: SourceMetrics,
    pub source: Arc<str>,
    pub read: ReadOptions,
    pub scale: Scale,
    /// See `GraphTuning::licence_wait_floor`.
    pub licence_wait_floor: Duration,
    pub ready: watch::Sender<bool>,
    pub shutdown: watch::Receiver<bool>,
    /// Keeps back-filling lanes within a day of each other in event time.
    pub step: InStep,
    /// Where a `backfill_days` back-fill starts, the same for every lane.
    pub backfill_from: DateTime<Utc>,
}

/// A tenant as its pollers see it.
#[derive(Debug)]
pub struct Tenant {
    pub handle: TenantHandle,
    /// Whether the tenant lacks P1/P2 (the licence 403 on sign-ins); `None` until known.
    pub free: watch::Sender<Option<bool>>,
}

impl Shared {
    pub fn stopping(&self) -> bool {
        *self.shutdown.borrow()
    }

    /// Sleeps `d`, or less when the service stops; false when it stops.
    pub async fn sleep(&self, d: Duration) -> bool {
        let mut shutdown = self.shutdown.clone();
        tokio::select! {
            _ = tokio::time::sleep(d) => !self.stopping(),
            _ = shutdown.wait_for(|s| *s) => false,
        }
    }

    /// One GET, abandoned when the service stops.
    pub async fn get(&self, tenant: &TenantHandle, lane: Lane, url: &str) -> Option<Fetched> {
        let mut shutdown = self.shutdown.clone();
        tokio::select! {
            f = self.client.get(tenant, lane, url) => Some(f),
            _ = shutdown.wait_for(|s| *s) => None,
        }
    }

    pub fn available(&self, tenant: &TenantHandle, lane: Lane, yes: bool) {
        self.available_stream(tenant, lane.name(), yes);
    }

    /// The same for a stream that is part of a lane (the directory's eligibility schedules).
    pub fn available_stream(&self, tenant: &TenantHandle, stream: &str, yes: bool) {
        self.metrics
            .stream_available
            .with_label_values(&[&*self.source, tenant.id.as_str(), stream])
            .set(i64::from(yes));
    }

    pub fn poll_interval(&self) -> Duration {
        let base = self
            .scale
            .of(Duration::from_secs(self.cfg.poll_interval_secs));
        // ±10 % so hundreds of tenants do not fall into step.
        base.mul_f64(0.9 + 0.2 * random_unit())
    }

    /// Parses one page into items; the reader is CPU work, so big pages go to a blocking thread.
    pub async fn parse(&self, tenant: &TenantHandle, lane: Lane, body: Vec<u8>) -> Vec<Item> {
        let opts = self.read.clone();
        if body.len() <= BLOCKING_PARSE_BYTES {
            return parse_page(&tenant.id, lane, &body, &opts);
        }
        let tenant_id = tenant.id.clone();
        tokio::task::spawn_blocking(move || parse_page(&tenant_id, lane, &body, &opts))
            .await
            .unwrap_or_default()
    }
}

/// One page through the reader (`graph:<tenant>/<lane>` names it in rejects). Graph's answer is
/// scoped to the tenant asked: a guest's sign-in names another organisation in
/// `resourceTenantId`, but the record belongs to the logs of the tenant polled.
fn parse_page(tenant: &str, lane: Lane, body: &[u8], opts: &ReadOptions) -> Vec<Item> {
    let name = format!("graph:{tenant}/{}", lane.name());
    let mut items = Vec::new();
    read_bytes(&name, body, Some(tenant), opts, &mut |i| {
        if !matches!(i, Item::EmptyFile { .. }) {
            items.push(i);
        }
    });
    for item in &mut items {
        if let Item::Event(e) = item
            && e.meta.tenant_id != tenant
        {
            e.meta.tenant_id = Text::from(tenant);
        }
    }
    items
}
