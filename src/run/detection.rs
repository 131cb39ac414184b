//! The detection thread of `entrawatch run`: it owns the [`Pipeline`] and takes batches, ticks,
//! reloads and snapshot requests from one bounded channel, so detection state is only ever touched
//! by one thread and a snapshot is a consistent cut.

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

/// When the detection thread last wrote a snapshot and whether state changed since.
pub struct Snapshots {
    path: PathBuf,
    last: Instant,
    dirty: bool,
}

impl Snapshots {
    /// Snapshots written to `path`, the interval counted from now.
    pub fn new(path: PathBuf) -> Snapshots {
        Snapshots {
            path,
            last: Instant::now(),
            dirty: false,
        }
    }

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
}
