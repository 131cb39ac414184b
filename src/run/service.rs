//! Wiring and life cycle of `entrawatch run` (the module doc of [`super`] tells the story).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::AtomicU8;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use chrono::Utc;
use entrawatch_alert::deliver::{Delivery, SystemClock};
use entrawatch_alert::destination::ResolvedDestination;
use entrawatch_alert::metrics::DeliveryMetrics;
use entrawatch_alert::outbox::Outbox;
use entrawatch_alert::silence::{Silence, Silences};
use entrawatch_alert::stage::{AlertStage, Routing, StageConfig, StageState};
use entrawatch_detect::Engine;
use entrawatch_ingest::align::Aligner;
use entrawatch_ingest::metrics::SourceMetrics;
use entrawatch_ingest::reader::ReadOptions;
use entrawatch_ingest::source::{Batch, SourceContext};
use prometheus::Registry;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use super::admin::{self, AdminRequest, AdminState, Phase};
use super::metrics::RuntimeMetrics;
use super::pipeline::Pipeline;
use super::snapshot;
use crate::cli::RunArgs;
use crate::config::{self, FileConfig};

/// What the detection thread is asked to do besides batches.
enum Input {
    Batch(Batch),
    /// Once a second: heartbeat, snapshot when due.
    Tick,
    Reload(Box<Reloaded>, oneshot::Sender<Result<(), String>>),
    /// Write a snapshot now, reply when it is durable.
    Snapshot(oneshot::Sender<anyhow::Result<()>>),
    /// Every source has finished: release what the aligner holds, then snapshot.
    Finished(oneshot::Sender<anyhow::Result<()>>),
    /// Stopping: from now on every tick with batches not yet acknowledged writes a snapshot, so
    /// the sources draining hear about their last batches at once.
    Draining,
}

/// The parts of a new config the detection thread swaps in.
struct Reloaded {
    detect: entrawatch_detect::DetectConfig,
    routing: Routing,
    stage: StageConfig,
}

fn routing_of(config: &FileConfig) -> Result<Routing, Vec<String>> {
    let names: Vec<&str> = config.destinations.iter().map(|d| d.name()).collect();
    Routing::new(
        &config.route_config(),
        &names,
        &config.inhibit_rules,
        config.tenant_names(),
        config.tenant_labels(),
    )
}

/// Resolves every destination's secrets; every problem at once.
pub fn resolve_destinations(config: &FileConfig) -> Result<Vec<ResolvedDestination>, Vec<String>> {
    let mut problems = Vec::new();
    let mut out = Vec::new();
    for (i, d) in config.destinations.iter().enumerate() {
        match d.resolve(&format!("destinations[{i}]")) {
            Ok(r) => out.push(r),
            Err(p) => problems.extend(p),
        }
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(problems)
    }
}

pub async fn serve(args: RunArgs, config: FileConfig) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let service = config.service.clone();
    std::fs::create_dir_all(&service.state_dir).with_context(|| {
        format!(
            "service.state_dir: cannot create {}",
            service.state_dir.display()
        )
    })?;

    // Metrics and the admin server first, so probes answer "starting" during a long restore.
    let registry = Registry::new_custom(None, None)?;
    let source_metrics = SourceMetrics::register(&registry)?;
    let delivery_metrics = DeliveryMetrics::register(&registry)?;
    let metrics = RuntimeMetrics::register(&registry)?;
    let (admin_tx, mut admin_rx) = mpsc::channel::<AdminRequest>(8);
    let admin_state = Arc::new(AdminState {
        registry,
        sources: source_metrics.clone(),
        phase: AtomicU8::new(Phase::Starting as u8),
        heartbeat: Mutex::new(Instant::now()),
        requests: admin_tx,
    });
    let addr: SocketAddr = service
        .admin_listen
        .parse()
        .context("service.admin_listen")?;
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
    tracing::info!(admin = %admin_addr, version = env!("CARGO_PKG_VERSION"), "entrawatch starting");

    if config.destinations.is_empty() {
        anyhow::bail!(
            "destinations: none configured; `run` needs at least one ([[destinations]] type = \"stdout\" prints alerts)"
        );
    }
    let destinations = resolve_destinations(&config)
        .map_err(|p| anyhow::anyhow!("destinations cannot be used:\n  {}", p.join("\n  ")))?;
    let routing = routing_of(&config)
        .map_err(|p| anyhow::anyhow!("routing is invalid:\n  {}", p.join("\n  ")))?;

    // Restore.
    admin_state.set_phase(Phase::Restoring);
    let outbox_path = service.state_dir.join("outbox.db");
    let outbox = Outbox::open(&outbox_path)
        .with_context(|| format!("cannot open the outbox {}", outbox_path.display()))?;
    let silences = Arc::new(RwLock::new(load_silences(&outbox, &config)?));
    let snapshot_path = snapshot::path_in(&service.state_dir);
    let (engine, alerts, positions, aligner) = restore(&snapshot_path, &config)?;
    let mut alerts = AlertStage::new(alerts, routing, Arc::clone(&silences));
    alerts.set_windows(&config.stage_config());

    // Delivery.
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

    // Detection thread.
    let mut pipeline = Pipeline::new(
        engine,
        alerts,
        outbox,
        positions.clone(),
        metrics.clone(),
        service.state_dir.join("rejects.jsonl"),
        wake,
        aligner,
    );

    // Sources.
    let (batch_tx, mut batch_rx) = mpsc::channel::<Batch>(service.channel_capacity);
    let mut source_tasks: Vec<(String, JoinHandle<()>)> = Vec::new();
    for (i, source_config) in config.sources.iter().enumerate() {
        let source = source_config
            .build()
            .map_err(|p| anyhow::anyhow!("sources[{i}] cannot start:\n  {}", p.join("\n  ")))?;
        let name: Arc<str> = Arc::from(source_config.name());
        let (ack_tx, ack_rx) = mpsc::unbounded_channel();
        pipeline.acks.insert(name.to_string(), ack_tx);
        // Readiness of a source (a Kafka member with no partitions is healthy) does not gate
        // `/readyz`; sources report it for their logs and metrics.
        let (ready_tx, _) = watch::channel(false);
        let ctx = SourceContext {
            name: Arc::clone(&name),
            out: batch_tx.clone(),
            committed: ack_rx,
            resume: positions.get(name.as_ref()).cloned(),
            shutdown: shutdown_rx.clone(),
            ready: ready_tx,
            read: ReadOptions::default(),
            metrics: source_metrics.clone(),
        };
        let kind = source.kind();
        tracing::info!(source = %name, kind, resume = ctx.resume.is_some(), "source starting");
        let task_name = name.to_string();
        let handle = tokio::spawn(async move {
            match source.run(ctx).await {
                Ok(()) => tracing::info!(source = %task_name, "source finished"),
                Err(e) => tracing::error!(source = %task_name, error = %e, "source stopped"),
            }
        });
        source_tasks.push((name.to_string(), handle));
    }
    drop(batch_tx);

    let (input_tx, input_rx) = mpsc::channel::<Input>(1);
    let snapshot_every = Duration::from_secs(service.snapshot_interval_secs);
    let thread_admin = Arc::clone(&admin_state);
    let detection = std::thread::Builder::new()
        .name("detect".into())
        .spawn(move || {
            detection_loop(
                pipeline,
                input_rx,
                snapshot_path,
                snapshot_every,
                thread_admin,
            )
        })
        .context("cannot start the detection thread")?;

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
                let result = reload(&args.config, &input_tx, &silences, &metrics).await;
                log_reload(&result);
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
                    tracing::info!("everything delivered: exiting");
                    break;
                }
            }
            Some(request) = admin_rx.recv() => {
                handle_admin(request, &args.config, &input_tx, &silences, &metrics, &outbox_path).await;
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

fn load_silences(outbox: &Outbox, config: &FileConfig) -> anyhow::Result<Silences> {
    let mut silences = Silences::from_config(&config.silences)
        .map_err(|p| anyhow::anyhow!("silences:\n  {}", p.join("\n  ")))?;
    let stored = outbox.list_silences()?;
    let (from_api, problems) = Silences::from_values(stored);
    for p in problems {
        tracing::warn!(problem = %p, "stored silence ignored");
    }
    for s in from_api.iter() {
        let _ = silences.add(s.clone());
    }
    Ok(silences)
}

/// When the detection thread last wrote a snapshot and whether state changed since.
struct Snapshots {
    path: PathBuf,
    last: Instant,
    dirty: bool,
}

impl Snapshots {
    /// Writes the snapshot, then acknowledges to every source the batches it covers (their state
    /// and the aligner's buffer are on disk: they may be committed).
    fn write(&mut self, pipeline: &mut Pipeline) -> anyhow::Result<()> {
        let started = Instant::now();
        let bytes = snapshot::write(
            &self.path,
            &pipeline.engine,
            pipeline.alerts.state(),
            &pipeline.positions,
            &pipeline.aligner.state(),
        )?;
        pipeline.ack_durable();
        self.last = Instant::now();
        self.dirty = false;
        pipeline
            .metrics
            .snapshot_duration
            .set(started.elapsed().as_secs_f64());
        pipeline.metrics.snapshot_bytes.set(bytes as i64);
        pipeline.metrics.observe_state_bytes(&pipeline.engine);
        tracing::debug!(
            bytes,
            ms = started.elapsed().as_millis() as u64,
            "snapshot written"
        );
        Ok(())
    }

    /// [`Snapshots::write`] where a failure is only logged (the next one tries again).
    fn write_or_log(&mut self, pipeline: &mut Pipeline) {
        if let Err(e) = self.write(pipeline) {
            tracing::error!(error = %format!("{e:#}"), "snapshot failed");
        }
    }
}

fn detection_loop(
    mut pipeline: Pipeline,
    mut input: mpsc::Receiver<Input>,
    snapshot_path: PathBuf,
    every: Duration,
    admin: Arc<AdminState>,
) {
    let mut snapshots = Snapshots {
        path: snapshot_path,
        last: Instant::now(),
        dirty: false,
    };
    let mut last_size: Option<Instant> = None;
    let mut draining = false;
    while let Some(item) = input.blocking_recv() {
        admin.beat();
        match item {
            Input::Batch(batch) => {
                let source = batch.source.clone();
                match pipeline.process(batch) {
                    Ok(_) => snapshots.dirty = true,
                    Err(e) => {
                        // The outbox could not commit: the batch is not acknowledged, so the
                        // source will deliver it again after a restart. Stop rather than skip.
                        tracing::error!(source = %source, error = %format!("{e:#}"), "batch could not be made durable: stopping");
                        std::process::exit(1);
                    }
                }
            }
            Input::Tick => {
                match pipeline.tick() {
                    Ok(o) if o.events > 0 => snapshots.dirty = true,
                    Ok(_) => {}
                    Err(e) => {
                        tracing::error!(error = %format!("{e:#}"), "released events could not be made durable: stopping");
                        std::process::exit(1);
                    }
                }
                if last_size.is_none_or(|t| t.elapsed() >= Duration::from_secs(60)) {
                    pipeline.metrics.observe_state_bytes(&pipeline.engine);
                    last_size = Some(Instant::now());
                }
                pipeline
                    .metrics
                    .snapshot_age
                    .set(snapshots.last.elapsed().as_secs_f64());
                let due = snapshots.last.elapsed() >= every || (draining && pipeline.has_unacked());
                if snapshots.dirty && due {
                    snapshots.write_or_log(&mut pipeline);
                }
            }
            Input::Reload(new, reply) => {
                let result = pipeline
                    .engine
                    .reconfigure(new.detect)
                    .map_err(|e| e.to_string());
                if result.is_ok() {
                    pipeline.alerts.reconfigure(&new.stage, new.routing);
                }
                let _ = reply.send(result);
            }
            Input::Snapshot(reply) => {
                let _ = reply.send(snapshots.write(&mut pipeline));
            }
            Input::Finished(reply) => {
                let result = pipeline
                    .flush()
                    .and_then(|_| snapshots.write(&mut pipeline));
                let _ = reply.send(result);
            }
            Input::Draining => {
                draining = true;
                if pipeline.has_unacked() {
                    snapshots.write_or_log(&mut pipeline);
                }
            }
        }
    }
}

async fn reload(
    path: &Path,
    input: &mpsc::Sender<Input>,
    silences: &Arc<RwLock<Silences>>,
    metrics: &RuntimeMetrics,
) -> Result<String, String> {
    let result = reload_inner(path, input, silences).await;
    metrics.reload_success.set(i64::from(result.is_ok()));
    result
}

async fn reload_inner(
    path: &Path,
    input: &mpsc::Sender<Input>,
    silences: &Arc<RwLock<Silences>>,
) -> Result<String, String> {
    let config = config::load(path).map_err(|e| format!("{e:#}"))?;
    let routing = routing_of(&config).map_err(|p| p.join("\n"))?;
    let file_silences = Silences::from_config(&config.silences).map_err(|p| p.join("\n"))?;
    let (tx, rx) = oneshot::channel();
    let reloaded = Reloaded {
        detect: config.detect.clone(),
        routing,
        stage: config.stage_config(),
    };
    input
        .send(Input::Reload(Box::new(reloaded), tx))
        .await
        .map_err(|_| "shutting down".to_owned())?;
    rx.await.map_err(|_| "shutting down".to_owned())??;
    {
        let mut all = silences.write().expect("silences lock");
        for s in file_silences.iter() {
            let _ = all.add(s.clone());
        }
    }
    Ok("config reloaded (sources, destinations and [service] changes need a restart)".to_owned())
}

fn log_reload(result: &Result<String, String>) {
    match result {
        Ok(msg) => tracing::info!("{msg}"),
        Err(problems) => {
            tracing::error!(%problems, "config reload refused; the running config stays")
        }
    }
}

async fn handle_admin(
    request: AdminRequest,
    config_path: &Path,
    input: &mpsc::Sender<Input>,
    silences: &Arc<RwLock<Silences>>,
    metrics: &RuntimeMetrics,
    outbox_path: &Path,
) {
    match request {
        AdminRequest::Reload(reply) => {
            let result = reload(config_path, input, silences, metrics).await;
            log_reload(&result);
            let _ = reply.send(result);
        }
        AdminRequest::ListSilences(reply) => {
            let list: Vec<serde_json::Value> = silences
                .read()
                .expect("silences lock")
                .to_values()
                .into_iter()
                .map(|(_, v)| v)
                .collect();
            let _ = reply.send(serde_json::Value::Array(list));
        }
        AdminRequest::AddSilence(value, reply) => {
            let _ = reply.send(add_silence(value, silences, outbox_path));
        }
        AdminRequest::ExpireSilence(id, reply) => {
            let _ = reply.send(expire_silence(&id, silences, outbox_path));
        }
    }
}

fn add_silence(
    value: serde_json::Value,
    silences: &Arc<RwLock<Silences>>,
    outbox_path: &Path,
) -> Result<String, String> {
    let silence: Silence =
        serde_json::from_value(value).map_err(|e| format!("not a silence: {e}"))?;
    let problems = silence.validate("silence");
    if !problems.is_empty() {
        return Err(problems.join("\n"));
    }
    let id = silence.id.clone();
    let stored = serde_json::to_value(&silence).map_err(|e| e.to_string())?;
    let mut outbox = Outbox::open(outbox_path).map_err(|e| e.to_string())?;
    outbox
        .put_silence(&id, &stored)
        .map_err(|e| e.to_string())?;
    silences
        .write()
        .expect("silences lock")
        .add(silence)
        .map_err(|p| p.join("\n"))?;
    tracing::info!(silence = %id, "silence added");
    Ok(id)
}

fn expire_silence(
    id: &str,
    silences: &Arc<RwLock<Silences>>,
    outbox_path: &Path,
) -> Result<(), String> {
    let mut all = silences.write().expect("silences lock");
    let expired = all
        .expire(id, Utc::now())
        .map_err(|e| e.to_string())?
        .clone();
    let stored = serde_json::to_value(&expired).map_err(|e| e.to_string())?;
    let mut outbox = Outbox::open(outbox_path).map_err(|e| e.to_string())?;
    outbox.put_silence(id, &stored).map_err(|e| e.to_string())?;
    tracing::info!(silence = %id, "silence expired");
    Ok(())
}

/// Problems `validate` reports beyond the file itself: secrets that cannot be read, routing.
pub fn deep_check(config: &FileConfig) -> Vec<String> {
    let mut problems = Vec::new();
    if config.destinations.is_empty() {
        problems.push(
            "destinations: none configured; `run` needs at least one ([[destinations]] type = \"stdout\" prints alerts)"
                .to_owned(),
        );
        return problems;
    }
    if let Err(p) = resolve_destinations(config) {
        problems.extend(p);
    }
    for (i, s) in config.sources.iter().enumerate() {
        if let Err(p) = s.build() {
            problems.extend(p.into_iter().map(|m| format!("sources[{i}]: {m}")));
        }
    }
    if let Err(p) = routing_of(config) {
        problems.extend(p);
    }
    problems
}
