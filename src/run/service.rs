//! Wiring and life cycle of `entrawatch run` (the module doc of [`super`] tells the story).
//!
//! [`serve`] takes the config down the stack once: first what the binary itself derives from it
//! (paths, the admin server, the restored snapshot, the detection thread's settings), then the
//! alert crate (silences, destinations, routing, the alert stage, delivery), then the detection
//! thread, then the ingest sources; afterwards it only answers signals and admin requests.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use chrono::Utc;
use entrawatch_alert::deliver::{Delivery, SystemClock};
use entrawatch_alert::destination;
use entrawatch_alert::metrics::DeliveryMetrics;
use entrawatch_alert::outbox::Outbox;
use entrawatch_alert::silence::Silences;
use entrawatch_alert::silence_store::SilenceStore;
use entrawatch_alert::stage::{AlertStage, StageState};
use entrawatch_detect::Engine;
use entrawatch_ingest::align::Aligner;
use entrawatch_ingest::metrics::SourceMetrics;
use entrawatch_ingest::reader::ReadOptions;
use entrawatch_ingest::source::{Batch, DurableCheckpoint, Source, SourceContext, SourceError};
use entrawatch_ingest::sources::SourceConfig;
use entrawatch_ingest::sources::graph::{GraphControl, GraphSource};
use prometheus::Registry;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use super::detection::{Input, Reloaded, Snapshots, detection_loop};
use super::metrics::RuntimeMetrics;
use super::pipeline::{Pipeline, read_checkpoint_row};
use super::snapshot;
use crate::cli::{EXIT_INCOMPLETE, RunArgs};
use entrawatch_admin::access::AdminAuth;
use entrawatch_admin::connections::Throttle;
use entrawatch_admin::{self as admin, AdminRequest, AdminState, Phase};
use entrawatch_config::{self as config, FileConfig, NO_DESTINATIONS};

pub async fn serve(args: RunArgs, config: FileConfig) -> anyhow::Result<ExitCode> {
    let started = Instant::now();

    // What the binary derives from the config, before anything starts.
    let service = config.service.clone();
    std::fs::create_dir_all(&service.state_dir).with_context(|| {
        format!(
            "service.state_dir: cannot create {}",
            service.state_dir.display()
        )
    })?;
    let outbox_path = service.state_dir.join("outbox.db");
    let rejects_path = service.state_dir.join("rejects.jsonl");
    let snapshot_path = snapshot::path_in(&service.state_dir);
    let snapshot_every = Duration::from_secs(service.snapshot_interval_secs);
    let stage_config = config.stage_config();
    let addr: SocketAddr = service
        .admin_listen
        .parse()
        .context("service.admin_listen")?;
    if config.destinations.is_empty() {
        anyhow::bail!(NO_DESTINATIONS);
    }
    let admin_token = service.resolve_admin_token().map_err(anyhow::Error::msg)?;

    // Metrics and the admin server first, so probes answer "starting" during a long restore.
    let registry = Registry::new_custom(None, None)?;
    let source_metrics = SourceMetrics::register(&registry)?;
    let delivery_metrics = DeliveryMetrics::register(&registry)?;
    let pending_gauge = delivery_metrics.pending.clone();
    let metrics = RuntimeMetrics::register(&registry)?;
    let (admin_tx, mut admin_rx) = mpsc::channel::<AdminRequest>(8);
    let admin_state = Arc::new(AdminState {
        registry,
        sources: source_metrics.clone(),
        phase: AtomicU8::new(Phase::Starting as u8),
        heartbeat: Mutex::new(Instant::now()),
        requests: admin_tx,
        auth: AdminAuth::new(admin_token, service.metrics_token_required),
        refusals: Mutex::new(Throttle::new(admin::LOG_INTERVAL)),
    });
    let listener = admin::bind(addr)
        .await
        .with_context(|| format!("service.admin_listen: cannot listen on {addr}"))?;
    let admin_addr = listener.local_addr()?;
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let admin_task = tokio::spawn(admin::serve(
        listener,
        Arc::clone(&admin_state),
        shutdown_rx.clone(),
    ));
    tracing::info!(
        admin = %admin_addr,
        admin_writes = if admin_state.auth.writes_enabled() { "token required" } else { "off (no service.admin_token)" },
        version = env!("CARGO_PKG_VERSION"),
        "entrawatch starting"
    );

    // Restore.
    admin_state.set_phase(Phase::Restoring);
    let sigma = crate::sigma::rules(config.sigma.as_ref(), &[], true)?;
    let (mut engine, alert_state, positions, aligner) = restore(&snapshot_path, &config)?;
    engine.set_extra_rules(sigma);
    let snapshots = Snapshots::new(snapshot_path);

    // The alert side: routing, destinations, silences, the stage, delivery.
    let routing = config
        .routing()
        .map_err(|p| anyhow::anyhow!("routing is invalid:\n  {}", p.join("\n  ")))?;
    let destinations = destination::resolve_all(&config.destinations)
        .map_err(|p| anyhow::anyhow!("destinations cannot be used:\n  {}", p.join("\n  ")))?;
    let silences = SilenceStore::open(&outbox_path, &config.silences)
        .map_err(|e| anyhow::anyhow!("cannot load silences: {e}"))?;
    let outbox = Outbox::open(&outbox_path)
        .with_context(|| format!("cannot open the outbox {}", outbox_path.display()))?;
    // The newest checkpoint each source committed with its alerts: a source may resume from it
    // when it is newer than the snapshot's (`Source::resume_from`).
    let mut durable: BTreeMap<String, DurableCheckpoint> = match outbox.checkpoints() {
        Ok(rows) => rows
            .into_iter()
            .filter_map(|(name, row)| Some((name, read_checkpoint_row(&row)?)))
            .collect(),
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the outbox checkpoints: sources resume from the snapshot");
            BTreeMap::new()
        }
    };
    let mut alerts = AlertStage::new(alert_state, routing, silences.shared());
    alerts.set_windows(&stage_config);
    let delivery = Arc::new(
        Delivery::start(
            outbox_path.clone(),
            destinations,
            delivery_metrics,
            Arc::new(SystemClock),
        )
        .context("cannot start delivery")?,
    );
    // The detection thread pokes `wake` after each commit that added rows; this task passes it on.
    let wake = Arc::new(tokio::sync::Notify::new());
    let waker_task = {
        let wake = Arc::clone(&wake);
        let delivery = Arc::clone(&delivery);
        tokio::spawn(async move {
            loop {
                wake.notified().await;
                delivery.wake();
            }
        })
    };

    // The detection thread, with an acknowledgement channel per source.
    let mut pipeline = Pipeline::new(
        engine,
        alerts,
        outbox,
        positions.clone(),
        metrics.clone(),
        rejects_path,
        wake,
        aligner,
    );
    pipeline.outbox_pending = Some(pending_gauge);
    let mut committed = BTreeMap::new();
    for source_config in &config.sources {
        let (ack_tx, ack_rx) = mpsc::unbounded_channel();
        pipeline
            .acks
            .insert(source_config.name().to_owned(), ack_tx);
        committed.insert(source_config.name().to_owned(), ack_rx);
    }
    let (input_tx, input_rx) = mpsc::channel::<Input>(1);
    let thread_admin = Arc::clone(&admin_state);
    let detection = std::thread::Builder::new()
        .name("detect".into())
        .spawn(move || detection_loop(pipeline, input_rx, snapshots, snapshot_every, thread_admin))
        .context("cannot start the detection thread")?;

    // Sources, from the snapshot's positions.
    let (batch_tx, mut batch_rx) = mpsc::channel::<Batch>(service.channel_capacity);
    let mut source_tasks: Vec<(String, JoinHandle<()>)> = Vec::new();
    // Set when a source stops with an error or could not read all it was given: the exit status
    // says so once the service ends.
    let source_failed = Arc::new(AtomicBool::new(false));
    // Graph sources take a new tenant set on reload through these.
    let mut graph_controls: BTreeMap<String, GraphControl> = BTreeMap::new();
    for (i, source_config) in config.sources.iter().enumerate() {
        let cannot_start =
            |p: Vec<String>| anyhow::anyhow!("sources[{i}] cannot start:\n  {}", p.join("\n  "));
        let source: Box<dyn Source> = match source_config {
            SourceConfig::Graph(c) => {
                let graph = GraphSource::new((**c).clone()).map_err(cannot_start)?;
                graph_controls.insert(c.name.clone(), graph.control());
                Box::new(graph)
            }
            other => other.build().map_err(cannot_start)?,
        };
        let name: Arc<str> = Arc::from(source_config.name());
        source_metrics.start_source(&name);
        // Readiness of a source (a Kafka member with no partitions is healthy) does not gate
        // `/readyz`; sources report it for their logs and metrics.
        let (ready_tx, _) = watch::channel(false);
        let ctx = SourceContext {
            name: Arc::clone(&name),
            out: batch_tx.clone(),
            committed: committed
                .remove(name.as_ref())
                .expect("one channel per source"),
            resume: source.resume_from(
                positions.get(name.as_ref()).cloned(),
                durable.remove(name.as_ref()),
            ),
            shutdown: shutdown_rx.clone(),
            ready: ready_tx,
            read: ReadOptions::default(),
            metrics: source_metrics.clone(),
        };
        let kind = source.kind();
        tracing::info!(source = %name, kind, resume = ctx.resume.is_some(), "source starting");
        let task_name = name.to_string();
        let failed = Arc::clone(&source_failed);
        let handle = tokio::spawn(async move {
            match source.run(ctx).await {
                Ok(()) => tracing::info!(source = %task_name, "source finished"),
                // The pipeline closing is the service stopping, not the source failing.
                Err(e @ SourceError::Closed(_)) => {
                    tracing::info!(source = %task_name, reason = %e, "source stopped");
                }
                Err(e) => {
                    failed.store(true, Ordering::Relaxed);
                    tracing::error!(source = %task_name, error = %e, "source stopped");
                }
            }
        });
        source_tasks.push((name.to_string(), handle));
    }
    drop(batch_tx);

    // Forward batches and ticks to the detection thread; tell us when every source is done.
    let (sources_done_tx, mut sources_done_rx) = oneshot::channel::<()>();
    let forward_tx = input_tx.clone();
    let forwarder = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        let mut done = Some(sources_done_tx);
        loop {
            tokio::select! {
                b = batch_rx.recv(), if done.is_some() => match b {
                    Some(b) => { if forward_tx.send(Input::Batch(b)).await.is_err() { return; } }
                    None => { if let Some(d) = done.take() { let _ = d.send(()); } }
                },
                _ = tick.tick() => { if forward_tx.send(Input::Tick).await.is_err() { return; } }
            }
        }
    });

    admin_state.set_phase(Phase::Ready);
    metrics.ready.set(1);
    tracing::info!(
        startup_ms = started.elapsed().as_millis() as u64,
        sources = config.sources.len(),
        destinations = config.destinations.len(),
        "entrawatch ready"
    );

    // Wait for a signal, the end of every source, or admin requests.
    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut sighup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
    let mut sources_finished = false;
    let mut idle_check = tokio::time::interval(Duration::from_millis(200));
    loop {
        tokio::select! {
            _ = sigterm.recv() => { tracing::info!("SIGTERM: draining"); break; }
            _ = tokio::signal::ctrl_c() => { tracing::info!("interrupt: draining"); break; }
            _ = sighup.recv() => {
                let result = reload(&args.config, &input_tx, &silences, &metrics, &graph_controls).await;
                log_reload(&result, Origin::Signal);
            }
            r = &mut sources_done_rx, if !sources_finished => {
                let _ = r;
                // The last batches may still be queued for detection: a request behind them
                // returns once they are committed, the aligner has released what it held and a
                // snapshot is written, so the idle check below cannot run early.
                let (tx, rx) = oneshot::channel();
                if input_tx.send(Input::Finished(tx)).await.is_ok() {
                    let _ = rx.await;
                }
                sources_finished = true;
                tracing::info!("every source has finished");
            }
            _ = idle_check.tick(), if sources_finished && args.exit_when_done => {
                if outbox_idle(&outbox_path)? {
                    if source_failed.load(Ordering::Relaxed) {
                        tracing::error!(
                            "everything read was delivered, but a source could not read all it \
                             was given: exiting with an error"
                        );
                    } else {
                        tracing::info!("everything delivered: exiting");
                    }
                    break;
                }
            }
            Some(request) = admin_rx.recv() => {
                handle_admin(request, &args.config, &input_tx, &silences, &metrics, &graph_controls).await;
            }
        }
    }

    // Drain.
    let grace = Duration::from_secs(service.shutdown_grace_secs);
    let deadline = Instant::now() + grace;
    admin_state.set_phase(Phase::Draining);
    metrics.ready.set(0);
    let _ = input_tx.send(Input::Draining).await;
    let _ = shutdown_tx.send(true);
    for (name, task) in source_tasks {
        let left = deadline.saturating_duration_since(Instant::now()) / 2;
        if tokio::time::timeout(left, task).await.is_err() {
            tracing::warn!(source = %name, "source did not stop in time");
        }
    }
    // Let the detection thread take what the sources sent, then snapshot.
    if !sources_finished {
        let _ = tokio::time::timeout(
            deadline.saturating_duration_since(Instant::now()),
            &mut sources_done_rx,
        )
        .await;
    }
    let (tx, rx) = oneshot::channel();
    if input_tx.send(Input::Snapshot(tx)).await.is_ok() {
        match rx.await {
            Ok(Ok(())) => tracing::info!("final snapshot written"),
            Ok(Err(e)) => tracing::error!(error = %e, "final snapshot failed"),
            Err(_) => tracing::error!("detection thread ended before the final snapshot"),
        }
    }
    forwarder.abort();
    drop(input_tx);
    let _ = detection.join();
    waker_task.abort();
    let _ = waker_task.await;
    match Arc::try_unwrap(delivery) {
        Ok(delivery) => {
            delivery
                .shutdown(deadline.saturating_duration_since(Instant::now()))
                .await;
        }
        Err(_) => tracing::error!(
            "delivery still shared at shutdown; undelivered rows stay in the outbox"
        ),
    }
    admin_task.abort();
    tracing::info!(
        uptime_secs = started.elapsed().as_secs(),
        "entrawatch stopped"
    );
    if source_failed.load(Ordering::Relaxed) {
        return Ok(ExitCode::from(EXIT_INCOMPLETE));
    }
    Ok(ExitCode::SUCCESS)
}

/// Whether the outbox has nothing pending.
fn outbox_idle(path: &Path) -> anyhow::Result<bool> {
    let outbox = Outbox::open(path)?;
    Ok(outbox.stats()?.pending() == 0)
}

/// The snapshot's state, or a cold start when there is none (or it cannot be read: it is moved
/// aside and the service says so loudly).
fn restore(
    path: &Path,
    config: &FileConfig,
) -> anyhow::Result<(
    Engine,
    StageState,
    BTreeMap<String, serde_json::Value>,
    Aligner,
)> {
    let align = config.service.align();
    let cold = |config: &FileConfig| -> anyhow::Result<_> {
        Ok((
            Engine::new(config.detect.clone())?,
            StageState::new(&config.stage_config()),
            BTreeMap::new(),
            Aligner::new(align),
        ))
    };
    if !path.exists() {
        tracing::info!("no snapshot: starting with empty state");
        return cold(config);
    }
    let started = Instant::now();
    match snapshot::read(path, config.detect.clone()) {
        Ok(r) => {
            tracing::info!(
                taken_at = %r.taken_at,
                principals = r.engine.state().principals.len(),
                open_alerts = r.alerts.episodes.alerts().len(),
                buffered = r.aligner.buffered.len(),
                released_to = ?r.aligner.released.map(|t| t.to_rfc3339()),
                ms = started.elapsed().as_millis() as u64,
                "state restored from snapshot"
            );
            let aligner = Aligner::restore(align, r.aligner, Instant::now());
            Ok((r.engine, r.alerts, r.positions, aligner))
        }
        Err(e) => {
            let aside: PathBuf =
                path.with_extension(format!("bad-{}", Utc::now().format("%Y%m%dT%H%M%S")));
            tracing::error!(error = %format!("{e:#}"), moved_to = %aside.display(), "snapshot unreadable: starting with empty state");
            std::fs::rename(path, &aside)
                .with_context(|| format!("cannot move {} aside", path.display()))?;
            cold(config)
        }
    }
}

async fn reload(
    path: &Path,
    input: &mpsc::Sender<Input>,
    silences: &SilenceStore,
    metrics: &RuntimeMetrics,
    graphs: &BTreeMap<String, GraphControl>,
) -> Result<String, String> {
    let result = reload_inner(path, input, silences, graphs).await;
    metrics.reload_success.set(i64::from(result.is_ok()));
    result
}

async fn reload_inner(
    path: &Path,
    input: &mpsc::Sender<Input>,
    silences: &SilenceStore,
    graphs: &BTreeMap<String, GraphControl>,
) -> Result<String, String> {
    let config = config::load(path).map_err(|e| format!("{e:#}"))?;
    let routing = config.routing().map_err(|p| p.join("\n"))?;
    let file_silences = Silences::from_config(&config.silences).map_err(|p| p.join("\n"))?;
    // Graph sources' new tenant sets, checked and their credentials read before anything
    // changes, so a bad one refuses the whole reload with every problem listed.
    let mut retargets = Vec::new();
    let mut problems = Vec::new();
    for source in &config.sources {
        if let SourceConfig::Graph(c) = source
            && let Some(control) = graphs.get(&c.name)
        {
            match control.prepare(c) {
                Ok(r) => retargets.push((control, r)),
                Err(p) => problems.extend(p),
            }
        }
    }
    // The Sigma rules, read again from their folders: a folder that cannot be read refuses the
    // reload like any other problem.
    let sigma = match crate::sigma::rules(config.sigma.as_ref(), &[], true) {
        Ok(sigma) => sigma,
        Err(e) => {
            problems.push(format!("{e:#}"));
            None
        }
    };
    if !problems.is_empty() {
        return Err(problems.join("\n"));
    }
    let sigma_note = match &sigma {
        Some(rules) => format!("{}; ", rules.describe()),
        None => String::new(),
    };
    let (tx, rx) = oneshot::channel();
    let reloaded = Reloaded {
        detect: config.detect.clone(),
        routing,
        stage: config.stage_config(),
        sigma,
    };
    input
        .send(Input::Reload(Box::new(reloaded), tx))
        .await
        .map_err(|_| "shutting down".to_owned())?;
    rx.await.map_err(|_| "shutting down".to_owned())??;
    silences.add_from_config(&file_silences);
    if retargets.is_empty() {
        return Ok(format!(
            "config reloaded ({sigma_note}sources, destinations and [service] changes need a restart)"
        ));
    }
    let mut changes = Vec::new();
    for (control, r) in retargets {
        changes.push(control.apply(r).await?.to_string());
    }
    Ok(format!(
        "config reloaded; {} ({sigma_note}other source, destination and [service] changes need a restart)",
        changes.join("; ")
    ))
}

/// Where a change came from, for the audit log.
#[derive(Debug, Clone, Copy)]
enum Origin {
    /// SIGHUP.
    Signal,
    /// The admin API, from this address.
    Api(SocketAddr),
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::Signal => f.write_str("SIGHUP"),
            Origin::Api(peer) => write!(f, "{peer}"),
        }
    }
}

fn log_reload(result: &Result<String, String>, origin: Origin) {
    match result {
        Ok(msg) => tracing::info!(audit = "config.reload", origin = %origin, "{msg}"),
        Err(problems) => tracing::error!(
            audit = "config.reload",
            origin = %origin,
            %problems,
            "config reload refused; the running config stays"
        ),
    }
}

/// Answers one admin request; every change (or refused attempt) is logged for the audit trail with
/// the peer address and the silence's author and matchers (API input is logged `Debug`-quoted, so
/// it cannot forge log lines).
async fn handle_admin(
    request: AdminRequest,
    config_path: &Path,
    input: &mpsc::Sender<Input>,
    silences: &SilenceStore,
    metrics: &RuntimeMetrics,
    graphs: &BTreeMap<String, GraphControl>,
) {
    match request {
        AdminRequest::Reload { peer, reply } => {
            let result = reload(config_path, input, silences, metrics, graphs).await;
            log_reload(&result, Origin::Api(peer));
            let _ = reply.send(result);
        }
        AdminRequest::ListSilences(reply) => {
            let _ = reply.send(silences.list());
        }
        AdminRequest::AddSilence {
            silence,
            peer,
            reply,
        } => {
            let result = silences.add(silence);
            match &result {
                Ok(s) => tracing::info!(
                    audit = "silence.create",
                    silence = %s.id,
                    author = ?s.author,
                    peer = %peer,
                    matchers = ?s.matchers,
                    starts_at = %s.starts_at.to_rfc3339(),
                    ends_at = %s.ends_at.to_rfc3339(),
                    comment = ?s.comment,
                    "silence created"
                ),
                Err(problems) => tracing::info!(
                    audit = "silence.create",
                    peer = %peer,
                    problems = ?problems,
                    "silence refused"
                ),
            }
            let _ = reply.send(result.map(|s| s.id));
        }
        AdminRequest::ExpireSilence { id, peer, reply } => {
            let result = silences.expire(&id);
            match &result {
                Ok(s) => tracing::info!(
                    audit = "silence.expire",
                    silence = %s.id,
                    author = ?s.author,
                    peer = %peer,
                    matchers = ?s.matchers,
                    "silence expired"
                ),
                Err(problem) => tracing::info!(
                    audit = "silence.expire",
                    silence = ?id,
                    peer = %peer,
                    problem = %problem,
                    "silence not expired"
                ),
            }
            let _ = reply.send(result.map(|_| ()));
        }
    }
}
