//! The `graph` source: polls Microsoft Graph for the sign-in, audit and risk logs and the directory
//! roles of many customer tenants through one multi-tenant app registration.
//!
//! In: a [`GraphConfig`] (tenants, credentials, streams, intervals) and the runtime's
//! [`SourceContext`] (where to send batches, commit reports, the checkpoint to resume from). Out:
//! [`Batch`]es of [`Item`]s parsed by the same reader `replay` uses, each carrying a `position`
//! with every tenant's per-lane watermark and the record ids inside its overlap.
//!
//! The parts, in the order a record meets them:
//! - [`config`]: the TOML section and its validation; [`lanes`]: the queries (sign-ins are split
//!   by event type), their paths, time fields and throttling classes.
//! - [`auth`]: client-credential tokens per tenant (secret, certificate assertion, or a federated
//!   assertion from a rotating token file), cached; token failures classified.
//! - [`budget`]: per-tenant sliding-window budgets (5 reporting requests / 10 s, 1 Identity
//!   Protection request / s), an app-wide reporting window and a fair, bounded worker pool.
//! - [`client`]: one GET and what its status means (429, 503/504, 401, 403 licence).
//! - [`poller`]: one task per tenant and lane walking time windows and pages; [`shared`]: what
//!   they share.
//! - [`batcher`]: de-duplication, batches, checkpoints and commit tracking.
//! - [`state`]: a lane's watermark, remembered ids and their checkpoint form.
//! - [`check`]: `validate --online`: a token and one `$top=1` request per tenant and stream.
//!
//! [`Batch`]: crate::source::Batch
//! [`Item`]: crate::reader::Item

pub mod auth;
pub mod batcher;
pub mod budget;
pub mod check;
pub mod client;
pub mod config;
pub mod lanes;
pub mod poller;
pub mod shared;
pub mod state;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;
use tokio::sync::{mpsc, watch};

pub use budget::Scale;
pub use config::{BudgetConfig, CertificateConfig, GraphConfig, SignInType, Stream, TenantConfig};
pub use lanes::Lane;

use crate::source::{DurableCheckpoint, Source, SourceContext, SourceError, SourceFuture};
use auth::TenantAuth;
use batcher::{Batcher, TenantSlot, Timing};
use client::{GraphClient, TenantHandle};
use poller::Start;
use shared::{Shared, Tenant};
use state::LaneState;

/// Knobs that are not configuration: time scale (tests run a 10 s window in milliseconds) and
/// how batches are paced.
#[derive(Debug, Clone, Copy)]
pub struct GraphTuning {
    pub scale: Scale,
    /// A non-empty batch waits at most this long for more records (unscaled).
    pub batch_linger: Duration,
    /// A moved watermark with no records is still checkpointed this often (unscaled).
    pub checkpoint_interval: Duration,
    /// On shutdown, how long to wait for the reports of batches sent (unscaled).
    pub shutdown_drain: Duration,
    /// Directory audits wait at least this long (unscaled) for the user sign-in lane's first
    /// answer, which tells a Free tenant; the scaled wait applies when it is longer. Zero in
    /// service; tests, whose scaled wait is 1.5 s, give a busy machine more.
    pub licence_wait_floor: Duration,
}

impl Default for GraphTuning {
    fn default() -> Self {
        GraphTuning {
            scale: Scale::default(),
            batch_linger: Duration::from_secs(1),
            checkpoint_interval: Duration::from_secs(30),
            shutdown_drain: Duration::from_secs(10),
            licence_wait_floor: Duration::ZERO,
        }
    }
}

/// The running `graph` source.
#[derive(Debug)]
pub struct GraphSource {
    cfg: GraphConfig,
    auths: Vec<TenantAuth>,
    tuning: GraphTuning,
}

impl GraphSource {
    /// Validates the config and reads every secret and certificate it names.
    pub fn new(cfg: GraphConfig) -> Result<GraphSource, Vec<String>> {
        let path = format!("graph source {:?}", cfg.name);
        let problems = cfg.validate(&path);
        if !problems.is_empty() {
            return Err(problems);
        }
        let auths = auth::resolve(&cfg, &path)?;
        Ok(GraphSource {
            cfg,
            auths,
            tuning: GraphTuning::default(),
        })
    }

    pub fn with_tuning(mut self, tuning: GraphTuning) -> GraphSource {
        self.tuning = tuning;
        self
    }

    pub fn config(&self) -> &GraphConfig {
        &self.cfg
    }

    async fn run_inner(self, ctx: SourceContext) -> Result<(), SourceError> {
        let SourceContext {
            name,
            out,
            committed,
            resume,
            shutdown,
            ready,
            read,
            metrics,
        } = ctx;
        let cfg = self.cfg;
        let fatal = |message: String| SourceError::Fatal {
            source_name: name.to_string(),
            message,
        };
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(cfg.request_timeout_secs))
            .connect_timeout(Duration::from_secs(30))
            .user_agent(concat!("entrawatch/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| fatal(format!("cannot build the HTTP client: {e}")))?;
        let tokens = auth::TokenCache::new(http.clone(), &cfg.login_url, &cfg.graph_url)
            .with_source(&name)
            .with_refusal_hold(self.tuning.scale.of(auth::REFUSAL_HOLD));
        let budgets = budget::Budgets::new(&cfg.budget, self.tuning.scale);
        let lanes = Lane::configured(&cfg);
        // One back-fill start for every lane, so lanes starting together are in step.
        let backfill_from = Utc::now() - chrono::Duration::days(i64::from(cfg.backfill_days));
        let (slots, starts) = initial_state(&cfg, &lanes, resume.as_ref(), backfill_from);
        let resumed = starts
            .iter()
            .flatten()
            .filter(|(_, s)| matches!(s, Start::Resume(_)))
            .count();
        tracing::info!(source = %name, tenants = cfg.tenants.len(), lanes = lanes.len(), resumed,
            "graph source starting");

        let tenants: Vec<Arc<Tenant>> = self
            .auths
            .into_iter()
            .enumerate()
            .map(|(index, auth)| {
                let label = cfg.tenants[index].label().to_owned();
                Arc::new(Tenant {
                    handle: TenantHandle {
                        index,
                        id: auth.tenant_id.clone(),
                        label,
                        budget: budgets.tenant(),
                        auth,
                    },
                    free: watch::channel(None).0,
                })
            })
            .collect();
        // A few pages in flight between pollers and the batcher (a page holds up to 1000 records).
        let (tx, rx) = mpsc::channel(32);
        let shared = Arc::new(Shared {
            client: GraphClient::new(
                http,
                tokens,
                budgets,
                &cfg.graph_url,
                &name,
                metrics.clone(),
            ),
            cfg,
            tx,
            metrics: metrics.clone(),
            source: name.clone(),
            read,
            scale: self.tuning.scale,
            licence_wait_floor: self.tuning.licence_wait_floor,
            ready,
            shutdown: shutdown.clone(),
            step: lanes::InStep::new(lanes::BACKFILL_SKEW),
            backfill_from,
        });
        // Every windowed lane holds the others from the start, so a lane that starts first cannot
        // run ahead of one not yet started.
        for (tenant, lane_starts) in tenants.iter().zip(&starts) {
            for (lane, start) in lane_starts {
                let mark = match start {
                    Start::Resume(w) => *w - lane.overlap(&shared.cfg),
                    Start::Backfill => backfill_from,
                };
                if *lane != Lane::DirectoryRoles {
                    shared.step.set((tenant.handle.index, *lane), Some(mark));
                }
            }
        }
        let mut pollers = tokio::task::JoinSet::new();
        for (tenant, lane_starts) in tenants.iter().zip(starts) {
            for (lane, start) in lane_starts {
                pollers.spawn(poller::run_lane(
                    shared.clone(),
                    tenant.clone(),
                    lane,
                    start,
                ));
            }
        }
        drop(shared);
        let timing = Timing {
            linger: self.tuning.batch_linger,
            checkpoint_interval: self.tuning.checkpoint_interval,
            drain: self.tuning.shutdown_drain,
        };
        let batcher = Batcher::new(name.clone(), metrics, timing, slots);
        let result = batcher
            .run(rx, out, committed, shutdown, || pollers.abort_all())
            .await;
        pollers.abort_all();
        while pollers.join_next().await.is_some() {}
        tracing::info!(source = %name, "graph source stopped");
        result
    }
}

impl Source for GraphSource {
    fn kind(&self) -> &'static str {
        "graph"
    }

    /// Per lane, the further of the snapshot's checkpoint and the outbox's (held at what detection
    /// had seen): a crash in the middle of a 30-day back-fill does not read it all again.
    fn resume_from(
        &self,
        snapshot: Option<Value>,
        durable: Option<DurableCheckpoint>,
    ) -> Option<Value> {
        let Some(d) = durable else {
            return snapshot;
        };
        let (position, taken) =
            state::resume_position(snapshot.as_ref(), &d.position, d.detected_before);
        if taken > 0 {
            tracing::info!(source = %self.cfg.name, lanes = taken,
                detected_before = ?d.detected_before.map(|t| t.to_rfc3339()),
                "graph lanes resume from the outbox checkpoint, newer than the snapshot's");
        }
        position
    }

    fn run(self: Box<Self>, ctx: SourceContext) -> SourceFuture {
        Box::pin(self.run_inner(ctx))
    }
}

/// Each tenant's lane states and where each lane starts, from the checkpoint when it has the
/// lane (an unknown or unreadable lane starts with a back-fill; tenants no longer configured are
/// dropped).
fn initial_state(
    cfg: &GraphConfig,
    lanes: &[Lane],
    resume: Option<&Value>,
    backfill_from: DateTime<Utc>,
) -> (Vec<TenantSlot>, Vec<Vec<(Lane, Start)>>) {
    let saved = resume.and_then(|v| v.get("tenants"));
    let mut slots = Vec::new();
    let mut starts = Vec::new();
    for t in &cfg.tenants {
        let id = t.id.to_ascii_lowercase();
        let mut states = BTreeMap::new();
        let mut lane_starts = Vec::new();
        for &lane in lanes {
            if lane == Lane::DirectoryRoles {
                // A snapshot with no watermark: read afresh on every start.
                lane_starts.push((lane, Start::Backfill));
                continue;
            }
            let overlap = lane.overlap(cfg);
            let restored = saved
                .and_then(|s| s.get(&id))
                .and_then(|l| l.get(lane.name()))
                .and_then(|v| LaneState::from_json(v, overlap, cfg.max_remembered_ids));
            let (state, start) = match restored {
                Some(s) => {
                    let w: DateTime<Utc> = s.watermark;
                    (s, Start::Resume(w))
                }
                None => (
                    LaneState::new(backfill_from, overlap, cfg.max_remembered_ids),
                    Start::Backfill,
                ),
            };
            states.insert(lane, state);
            lane_starts.push((lane, start));
        }
        slots.push(TenantSlot::new(id, states));
        starts.push(lane_starts);
    }
    (slots, starts)
}
