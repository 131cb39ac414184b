//! The detection thread of `entrawatch run`: it owns the [`Pipeline`] and takes batches, ticks,
//! reloads and snapshot requests from one bounded channel, so detection state is only ever touched
//! by one thread and a snapshot is a consistent cut.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use entrawatch_alert::stage::{Routing, StageConfig};
use entrawatch_ingest::source::Batch;
use tokio::sync::{mpsc, oneshot};

use super::pipeline::Pipeline;
use super::snapshot;
use entrawatch_admin::AdminState;

/// What the detection thread is asked to do besides batches.
pub enum Input {
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
pub struct Reloaded {
    pub detect: entrawatch_detect::DetectConfig,
    pub routing: Routing,
    pub stage: StageConfig,
    /// The `[sigma]` rules as loaded from the new config (`None`: none). Correlation windows of
    /// rules kept by id carry on.
    pub sigma: Option<std::sync::Arc<dyn entrawatch_detect::ExtraRules>>,
}

/// When the detection thread last took a snapshot, whether state changed since, and the one
/// snapshot being written on its own thread, if any.
pub struct Snapshots {
    path: PathBuf,
    last: Instant,
    dirty: bool,
    writing: Option<Writing>,
    /// The last background write failed: the next tick tries again, whatever the interval.
    retry: bool,
}

/// A snapshot encoded on the detection thread, being written and fsynced on another.
struct Writing {
    started: Instant,
    /// The batches it covers, acknowledged once it is on disk.
    covers: BTreeMap<String, u64>,
    done: std::thread::JoinHandle<anyhow::Result<u64>>,
}

impl Snapshots {
    /// Snapshots written to `path`, the interval counted from now.
    pub fn new(path: PathBuf) -> Snapshots {
        Snapshots {
            path,
            last: Instant::now(),
            dirty: false,
            writing: None,
            retry: false,
        }
    }

    /// Writes the snapshot and waits until it is on disk, then acknowledges to every source the
    /// batches it covers (their state and the aligner's buffer are on disk: they may be
    /// committed). A snapshot still being written in the background is finished first.
    fn write(&mut self, pipeline: &mut Pipeline) -> anyhow::Result<()> {
        self.finish_background(pipeline, true);
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
        self.retry = false;
        observe(pipeline, started, bytes);
        Ok(())
    }

    /// [`Snapshots::write`] where a failure is only logged (the next one tries again).
    fn write_or_log(&mut self, pipeline: &mut Pipeline) {
        if let Err(e) = self.write(pipeline) {
            tracing::error!(error = %format!("{e:#}"), "snapshot failed");
        }
    }

    /// The periodic snapshot: encoded here (the consistent cut), written and fsynced on its own
    /// thread while detection goes on, so a slow disk does not hold up alerts. The batches it
    /// covers are acknowledged only once it is on disk ([`Snapshots::finish_background`], each
    /// tick, before this). One at a time: while one is being written, the next waits for a later
    /// tick.
    fn start_background(&mut self, pipeline: &mut Pipeline) {
        if self.writing.is_some() {
            return;
        }
        let started = Instant::now();
        let bytes = match snapshot::encode(
            &pipeline.engine,
            pipeline.alerts.state(),
            &pipeline.positions,
            &pipeline.aligner.state(),
        ) {
            Ok(bytes) => bytes,
            Err(e) => {
                tracing::error!(error = %format!("{e:#}"), "snapshot failed");
                return;
            }
        };
        let covers = pipeline.take_unacked();
        let path = self.path.clone();
        let spawned = std::thread::Builder::new()
            .name("snapshot".into())
            .spawn(move || snapshot::persist(&path, &bytes));
        match spawned {
            Ok(done) => {
                self.writing = Some(Writing {
                    started,
                    covers,
                    done,
                });
                self.last = Instant::now();
                self.dirty = false;
                self.retry = false;
            }
            Err(e) => {
                pipeline.return_unacked(covers);
                tracing::error!(error = %e, "snapshot failed: cannot start its writer thread");
            }
        }
    }

    /// Takes in the background snapshot once it is written (with `wait`, waits for it): then
    /// acknowledges the batches it covers; if it failed, logs it and leaves them to the next
    /// snapshot.
    fn finish_background(&mut self, pipeline: &mut Pipeline, wait: bool) {
        let Some(writing) = self.writing.take() else {
            return;
        };
        if !wait && !writing.done.is_finished() {
            self.writing = Some(writing);
            return;
        }
        let failure = match writing.done.join() {
            Ok(Ok(bytes)) => {
                pipeline.ack(writing.covers);
                observe(pipeline, writing.started, bytes);
                return;
            }
            Ok(Err(e)) => format!("{e:#}"),
            Err(_) => "its writer thread panicked".to_owned(),
        };
        pipeline.return_unacked(writing.covers);
        self.dirty = true;
        self.retry = true;
        tracing::error!(error = %failure, "snapshot failed");
    }
}

/// The metrics of a snapshot now on disk, `started` when it was encoded.
fn observe(pipeline: &Pipeline, started: Instant, bytes: u64) {
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
}

/// Runs until every sender of `input` is gone; a snapshot is due every `every`.
pub fn detection_loop(
    mut pipeline: Pipeline,
    mut input: mpsc::Receiver<Input>,
    mut snapshots: Snapshots,
    every: Duration,
    admin: Arc<AdminState>,
) {
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
                snapshots.finish_background(&mut pipeline, false);
                if draining && pipeline.has_unacked() {
                    // The sources draining wait for these acknowledgements: at once.
                    snapshots.write_or_log(&mut pipeline);
                } else if snapshots.dirty && (snapshots.retry || snapshots.last.elapsed() >= every)
                {
                    snapshots.start_background(&mut pipeline);
                }
            }
            Input::Reload(new, reply) => {
                let result = pipeline
                    .engine
                    .reconfigure(new.detect)
                    .map_err(|e| e.to_string());
                if result.is_ok() {
                    pipeline.alerts.reconfigure(&new.stage, new.routing);
                    pipeline.engine.set_extra_rules(new.sigma);
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
    // A snapshot still being written is finished before the thread ends.
    snapshots.finish_background(&mut pipeline, true);
}
