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
//! - [`discover`]: GDAP customer discovery (`discover = "gdap"`).
//!
//! **The tenant set changes while running.** A tenant manager task owns every tenant's pollers.
//! It starts the listed tenants and, with `discover = "gdap"`, the customers the first discovery
//! found; then it takes a new set from a reload ([`GraphControl`]: the listed tenants, the
//! include and exclude lists and the cap) and from every later discovery. A new tenant's lanes
//! start from its checkpoint when the start position has one, else from the configured back-fill;
//! a removed tenant's pollers are stopped first and the batcher then drops its lanes (the records
//! already read still go out, in order); the tenants kept go on untouched, watermarks and all.
//!
//! [`Batch`]: crate::source::Batch
//! [`Item`]: crate::reader::Item

pub mod auth;
pub mod batcher;
pub mod budget;
pub mod check;
pub mod client;
pub mod config;
pub mod discover;
pub mod health;
pub mod lanes;
pub mod poller;
pub mod shared;
pub mod state;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinSet;

pub use budget::Scale;
pub use config::{
    BudgetConfig, CertificateConfig, Discover, GraphConfig, SignInType, Stream, TenantConfig,
};
pub use lanes::Lane;

use crate::source::{DurableCheckpoint, Source, SourceContext, SourceError, SourceFuture};
use auth::TenantAuth;
use batcher::{Batcher, Msg, TenantSlot, Timing};
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
    control_tx: mpsc::Sender<Control>,
    control_rx: mpsc::Receiver<Control>,
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
        let (control_tx, control_rx) = mpsc::channel(4);
        Ok(GraphSource {
            cfg,
            auths,
            tuning: GraphTuning::default(),
            control_tx,
            control_rx,
        })
    }

    pub fn with_tuning(mut self, tuning: GraphTuning) -> GraphSource {
        self.tuning = tuning;
        self
    }

    pub fn config(&self) -> &GraphConfig {
        &self.cfg
    }

    /// A handle that changes the tenant set of this source once it runs (a reload).
    pub fn control(&self) -> GraphControl {
        GraphControl {
            name: self.cfg.name.clone(),
            running: self.cfg.settings(),
            tx: self.control_tx.clone(),
        }
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
        let partner = match (&cfg.discover, &cfg.partner_tenant_id) {
            (Some(Discover::Gdap), Some(id)) => Some(
                source_auth(&cfg, id)
                    .map_err(|p| fatal(format!("partner credential: {}", p.join("; "))))?,
            ),
            _ => None,
        };
        let tokens = auth::TokenCache::new(http.clone(), &cfg.login_url, &cfg.graph_url)
            .with_source(&name)
            .with_refusal_hold(self.tuning.scale.of(auth::REFUSAL_HOLD));
        let budgets = budget::Budgets::new(&cfg.budget, self.tuning.scale);
        let lanes = Lane::configured(&cfg);
        // One back-fill start for every lane, so lanes starting together are in step.
        let backfill_from = Utc::now() - chrono::Duration::days(i64::from(cfg.backfill_days));
        tracing::info!(source = %name, listed = cfg.tenants.len(), lanes = lanes.len(),
            discover = partner.is_some(), "graph source starting");
        // A few pages in flight between pollers and the batcher (a page holds up to 1000 records).
        let (tx, rx) = mpsc::channel(32);
        let listed: Vec<(TenantConfig, TenantAuth)> =
            cfg.tenants.iter().cloned().zip(self.auths).collect();
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
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let manager = Manager {
            shared: shared.clone(),
            lanes,
            resume,
            listed,
            limits: Limits::of(&shared.cfg),
            found: None,
            partner_auth: partner.clone(),
            running: BTreeMap::new(),
            next_index: 0,
            left_out: Vec::new(),
            relationships: None,
        };
        let manager = tokio::spawn(manager.run(partner, self.control_rx, stop_rx));
        drop(shared);
        let timing = Timing {
            linger: self.tuning.batch_linger,
            checkpoint_interval: self.tuning.checkpoint_interval,
            drain: self.tuning.shutdown_drain,
        };
        let batcher = Batcher::new(name.clone(), metrics, timing, Vec::new());
        let mut stop_tx = Some(stop_tx);
        let result = batcher
            .run(rx, out, committed, shutdown, || {
                if let Some(s) = stop_tx.take() {
                    let _ = s.send(());
                }
            })
            .await;
        if let Some(s) = stop_tx.take() {
            let _ = s.send(());
        }
        let _ = manager.await;
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

/// The source's own app id and credential, for a tenant it does not list (the partner tenant,
/// a discovered customer).
fn source_auth(cfg: &GraphConfig, tenant_id: &str) -> Result<TenantAuth, Vec<String>> {
    let one = GraphConfig {
        tenants: vec![TenantConfig {
            id: tenant_id.to_owned(),
            name: None,
            client_id: None,
            client_secret: None,
            certificate: None,
        }],
        ..cfg.clone()
    };
    let path = format!("graph source {:?}", cfg.name);
    auth::resolve(&one, &path)?
        .pop()
        .ok_or_else(|| vec![format!("{path}: no client_id or credential")])
}

/// What a reload changed in a graph source's tenants.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TenantChange {
    pub source: String,
    /// Tenant ids started, and stopped.
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub unchanged: usize,
    /// Settings other than the tenants changed too: they wait for a restart.
    pub restart_needed: bool,
}

impl fmt::Display for TenantChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list = |v: &[String]| {
            if v.is_empty() {
                "none".to_owned()
            } else {
                v.join(", ")
            }
        };
        write!(
            f,
            "graph source {:?}: tenants added: {}; removed: {}; unchanged: {}",
            self.source,
            list(&self.added),
            list(&self.removed),
            self.unchanged
        )?;
        if self.restart_needed {
            f.write_str(" (its other setting changes need a restart)")?;
        }
        Ok(())
    }
}

/// A new tenant set, checked and with its credentials read, ready to hand to the running source.
#[derive(Debug)]
pub struct Retarget {
    listed: Vec<(TenantConfig, TenantAuth)>,
    limits: Limits,
    restart_needed: bool,
}

enum Control {
    Retarget(Retarget, oneshot::Sender<TenantChange>),
}

impl fmt::Debug for Control {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Control")
    }
}

/// Changes the tenant set of a running graph source (see the module doc).
#[derive(Debug, Clone)]
pub struct GraphControl {
    name: String,
    /// The settings the source runs with (see [`GraphConfig::settings`]).
    running: GraphConfig,
    tx: mpsc::Sender<Control>,
}

impl GraphControl {
    /// Checks `cfg` (the source's new entry) and reads its credentials; every problem is listed.
    /// Nothing changes yet.
    pub fn prepare(&self, cfg: &GraphConfig) -> Result<Retarget, Vec<String>> {
        let path = format!("graph source {:?}", cfg.name);
        let problems = cfg.validate(&path);
        if !problems.is_empty() {
            return Err(problems);
        }
        let auths = auth::resolve(cfg, &path)?;
        Ok(Retarget {
            listed: cfg.tenants.iter().cloned().zip(auths).collect(),
            limits: Limits::of(cfg),
            restart_needed: cfg.settings() != self.running,
        })
    }

    /// Hands a prepared set to the running source; returns what changed once the new tenants'
    /// pollers have started and the removed ones' have stopped.
    pub async fn apply(&self, retarget: Retarget) -> Result<TenantChange, String> {
        let (reply, rx) = oneshot::channel();
        let gone = || format!("graph source {:?} is not running", self.name);
        self.tx
            .send(Control::Retarget(retarget, reply))
            .await
            .map_err(|_| gone())?;
        rx.await.map_err(|_| gone())
    }
}

/// The parts of the config that decide the tenant set and may change while running.
#[derive(Debug, Clone)]
struct Limits {
    include: BTreeSet<String>,
    exclude: BTreeSet<String>,
    max_tenants: usize,
}

impl Limits {
    fn of(cfg: &GraphConfig) -> Limits {
        let lower = |v: &[String]| v.iter().map(|s| s.to_ascii_lowercase()).collect();
        Limits {
            include: lower(&cfg.discover_include),
            exclude: lower(&cfg.discover_exclude),
            max_tenants: cfg.max_tenants,
        }
    }
}

impl Limits {
    /// The discovered customers (`found`: id -> name) to poll besides the `listed` tenants: those
    /// the include and exclude lists allow, up to the cap (the listed ones count), by tenant id so
    /// the same ones are left out each time; as (id, label), and the ids the cap left out.
    fn select(
        &self,
        found: &BTreeMap<String, String>,
        listed: &BTreeSet<String>,
    ) -> (Vec<(String, String)>, Vec<String>) {
        let mut chosen = Vec::new();
        let mut left_out = Vec::new();
        for (id, name) in found {
            if listed.contains(id)
                || self.exclude.contains(id)
                || (!self.include.is_empty() && !self.include.contains(id))
            {
                continue;
            }
            if listed.len() + chosen.len() >= self.max_tenants {
                left_out.push(id.clone());
                continue;
            }
            let label = if name.is_empty() { id } else { name };
            chosen.push((id.clone(), label.clone()));
        }
        (chosen, left_out)
    }
}

/// How the source knows a tenant (the `origin` label of `entrawatch_graph_tenants`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    Listed,
    Discovered,
}

impl Origin {
    fn label(self) -> &'static str {
        match self {
            Origin::Listed => "listed",
            Origin::Discovered => "discovered",
        }
    }
}

/// A tenant whose lanes run.
struct Running {
    index: usize,
    origin: Origin,
    label: String,
    pollers: JoinSet<()>,
}

/// A tenant the source should poll.
struct Wanted {
    id: String,
    label: String,
    auth: TenantAuth,
    origin: Origin,
}

/// Owns every tenant's pollers and changes the set (see the module doc).
struct Manager {
    shared: Arc<Shared>,
    lanes: Vec<Lane>,
    resume: Option<Value>,
    listed: Vec<(TenantConfig, TenantAuth)>,
    limits: Limits,
    /// The last discovery's active customers (`None`: no discovery, or none succeeded yet).
    found: Option<BTreeMap<String, String>>,
    /// The source's credential, which discovered tenants use.
    partner_auth: Option<TenantAuth>,
    running: BTreeMap<String, Running>,
    next_index: usize,
    /// Discovered customers the cap left out at the last change (logged when it changes).
    left_out: Vec<String>,
    /// The last discovery's relationships, to pass on once the tenant set is applied.
    relationships: Option<(Vec<crate::reader::Item>, tokio::time::Instant)>,
}

impl Manager {
    async fn run(
        mut self,
        partner: Option<TenantAuth>,
        mut control: mpsc::Receiver<Control>,
        mut stop: oneshot::Receiver<()>,
    ) {
        let (found_tx, mut found_rx) = mpsc::channel(1);
        let mut discovery = JoinSet::new();
        if let Some(auth) = partner {
            let handle = TenantHandle {
                index: usize::MAX,
                id: auth.tenant_id.clone(),
                label: format!("partner {}", auth.tenant_id),
                budget: self.shared.client.budgets.tenant(),
                auth,
            };
            discovery.spawn(discover::run(self.shared.clone(), handle, found_tx));
            // The first discovery decides the starting set, so its tenants start together with
            // the listed ones (and resume from the checkpoint like them).
            tokio::select! {
                found = found_rx.recv() => if let Some(found) = found {
                    self.on_found(found);
                },
                _ = &mut stop => {
                    self.stop_all().await;
                    return;
                }
            }
        } else {
            drop(found_tx);
        }
        if self.apply(false).await.is_none() || !self.pass_relationships().await {
            self.stop_all().await;
            return;
        }
        loop {
            tokio::select! {
                _ = &mut stop => break,
                Some(found) = found_rx.recv() => {
                    self.on_found(found);
                    match self.apply(true).await {
                        Some(change) if !change.added.is_empty() || !change.removed.is_empty() => {
                            tracing::info!(source = %self.shared.source, added = ?change.added,
                                removed = ?change.removed, unchanged = change.unchanged,
                                "graph tenants changed by GDAP discovery");
                        }
                        Some(_) => {}
                        None => break,
                    }
                    if !self.pass_relationships().await {
                        break;
                    }
                }
                Some(Control::Retarget(r, reply)) = control.recv() => {
                    // A kept tenant whose entry changed (name, app id, credential) keeps running
                    // as it was: that change waits for a restart too.
                    let entry_changed = r.listed.iter().any(|(new, _)| {
                        self.listed.iter().any(|(old, _)| {
                            old.id.eq_ignore_ascii_case(&new.id) && old != new
                        })
                    });
                    self.listed = r.listed;
                    self.limits = r.limits;
                    match self.apply(true).await {
                        Some(mut change) => {
                            change.restart_needed = r.restart_needed || entry_changed;
                            let _ = reply.send(change);
                        }
                        None => break,
                    }
                }
            }
        }
        discovery.abort_all();
        self.stop_all().await;
    }

    fn on_found(&mut self, found: Result<discover::Found, String>) {
        let source = &*self.shared.source;
        match found {
            Ok(found) => {
                self.shared
                    .metrics
                    .graph_discovery_ok
                    .with_label_values(&[source])
                    .set(1);
                tracing::debug!(
                    source,
                    customers = found.customers.len(),
                    relationships = found.relationships,
                    "GDAP discovery done"
                );
                self.found = Some(found.customers);
                self.relationships = Some((
                    found.items,
                    found.received_at.unwrap_or_else(tokio::time::Instant::now),
                ));
            }
            Err(reason) => {
                self.shared
                    .metrics
                    .graph_discovery_ok
                    .with_label_values(&[source])
                    .set(0);
                tracing::warn!(source, %reason, retry_minutes = self.shared.cfg.discover_interval_minutes,
                    "GDAP discovery failed; the tenants polled stay as they are");
            }
        }
    }

    /// The tenants to poll: the listed ones, then the discovered ones the lists allow, up to the
    /// cap (by tenant id, so the same ones are left out each time).
    fn wanted(&mut self) -> Vec<Wanted> {
        let mut out: Vec<Wanted> = self
            .listed
            .iter()
            .map(|(t, auth)| Wanted {
                id: t.id.to_ascii_lowercase(),
                label: t.label().to_owned(),
                auth: auth.clone(),
                origin: Origin::Listed,
            })
            .collect();
        let mut left_out = Vec::new();
        if let (Some(found), Some(template)) = (&self.found, &self.partner_auth) {
            let listed: BTreeSet<String> = out.iter().map(|w| w.id.clone()).collect();
            let (chosen, out_of_cap) = self.limits.select(found, &listed);
            left_out = out_of_cap;
            out.extend(chosen.into_iter().map(|(id, label)| Wanted {
                auth: TenantAuth {
                    tenant_id: id.clone(),
                    ..template.clone()
                },
                id,
                label,
                origin: Origin::Discovered,
            }));
        }
        if left_out != self.left_out {
            if !left_out.is_empty() {
                tracing::warn!(source = %self.shared.source, cap = self.limits.max_tenants,
                    left_out = left_out.len(), first = %left_out[0],
                    "more GDAP customers than max_tenants: those with the greatest tenant ids are not polled");
            }
            self.left_out = left_out;
        }
        out
    }

    /// Makes the running set the wanted one; `None` when the batcher has gone (stopping).
    async fn apply(&mut self, joining: bool) -> Option<TenantChange> {
        let wanted = self.wanted();
        let ids: BTreeSet<&str> = wanted.iter().map(|w| w.id.as_str()).collect();
        let mut change = TenantChange {
            source: self.shared.source.to_string(),
            ..TenantChange::default()
        };
        let gone: Vec<String> = self
            .running
            .keys()
            .filter(|id| !ids.contains(id.as_str()))
            .cloned()
            .collect();
        for id in gone {
            let mut r = self.running.remove(&id).expect("listed above");
            r.pollers.abort_all();
            while r.pollers.join_next().await.is_some() {}
            // A stopped lane holds no other lane's back-fill.
            for &lane in &self.lanes {
                self.shared.step.set((r.index, lane), None);
            }
            self.shared
                .tx
                .send(Msg::RemoveTenant { tenant: r.index })
                .await
                .ok()?;
            tracing::info!(source = %self.shared.source, tenant = %r.label, tenant_id = %id,
                "graph tenant stopped");
            change.removed.push(id);
        }
        // The source's one back-fill start for the tenants it starts with; a tenant joining later
        // back-fills from its own (the poller decides, see `poller::run_lane`).
        let backfill_from = if joining {
            Utc::now() - chrono::Duration::days(i64::from(self.shared.cfg.backfill_days))
        } else {
            self.shared.backfill_from
        };
        let saved = self.resume.as_ref().and_then(|v| v.get("tenants"));
        let saved_health = self.resume.as_ref().and_then(|v| v.get("health"));
        for w in wanted {
            if let Some(r) = self.running.get_mut(&w.id) {
                r.origin = w.origin;
                change.unchanged += 1;
                continue;
            }
            let index = self.next_index;
            self.next_index += 1;
            let (mut slot, starts) = tenant_state(
                &self.shared.cfg,
                &self.lanes,
                saved.and_then(|s| s.get(&w.id)),
                &w.id,
                backfill_from,
            );
            if let Some(h) = saved_health.and_then(|h| h.get(&w.id)) {
                slot.health = health::TenantHealth::from_json(h);
            }
            self.shared
                .tx
                .send(Msg::AddTenant {
                    tenant: index,
                    slot,
                    joining,
                })
                .await
                .ok()?;
            let tenant = Arc::new(Tenant {
                handle: TenantHandle {
                    index,
                    id: w.id.clone(),
                    label: w.label.clone(),
                    budget: self.shared.client.budgets.tenant(),
                    auth: w.auth,
                },
                free: watch::channel(None).0,
            });
            // Every windowed lane holds the others from the start, so a lane that starts first
            // cannot run ahead of one not yet started.
            for (lane, start) in &starts {
                let mark = match start {
                    Start::Resume(w) => *w - lane.overlap(&self.shared.cfg),
                    Start::Backfill => backfill_from,
                };
                if *lane != Lane::DirectoryRoles {
                    self.shared.step.set((index, *lane), Some(mark));
                }
            }
            let mut pollers = JoinSet::new();
            let resumed = starts
                .iter()
                .filter(|(_, s)| matches!(s, Start::Resume(_)))
                .count();
            for (lane, start) in starts {
                pollers.spawn(poller::run_lane(
                    self.shared.clone(),
                    tenant.clone(),
                    lane,
                    start,
                ));
            }
            if joining {
                tracing::info!(source = %self.shared.source, tenant = %w.label, tenant_id = %w.id,
                    origin = w.origin.label(), resumed, "graph tenant started");
            }
            self.running.insert(
                w.id.clone(),
                Running {
                    index,
                    origin: w.origin,
                    label: w.label,
                    pollers,
                },
            );
            change.added.push(w.id);
        }
        for origin in [Origin::Listed, Origin::Discovered] {
            let n = self.running.values().filter(|r| r.origin == origin).count();
            self.shared
                .metrics
                .graph_tenants
                .with_label_values(&[&*self.shared.source, origin.label()])
                .set(n as i64);
        }
        Some(change)
    }

    /// Hands the last discovery's relationships of the tenants polled (and any record the reader
    /// rejected) to the batcher; false when it has gone.
    async fn pass_relationships(&mut self) -> bool {
        let Some((items, received_at)) = self.relationships.take() else {
            return true;
        };
        let items = items
            .into_iter()
            .filter(|i| match i {
                crate::reader::Item::Event(e) => self.running.contains_key(&*e.meta.tenant_id),
                _ => true,
            })
            .collect();
        self.shared
            .tx
            .send(Msg::Gdap { items, received_at })
            .await
            .is_ok()
    }

    async fn stop_all(&mut self) {
        for r in self.running.values_mut() {
            r.pollers.abort_all();
        }
        for r in self.running.values_mut() {
            while r.pollers.join_next().await.is_some() {}
        }
    }
}

/// One tenant's lane states and where each lane starts: from `saved` (its part of the start
/// checkpoint) when it has the lane, else with a back-fill from `backfill_from`.
fn tenant_state(
    cfg: &GraphConfig,
    lanes: &[Lane],
    saved: Option<&Value>,
    id: &str,
    backfill_from: DateTime<Utc>,
) -> (TenantSlot, Vec<(Lane, Start)>) {
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
    (TenantSlot::new(id.to_owned(), states), lane_starts)
}
