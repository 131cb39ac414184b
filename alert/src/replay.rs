//! A whole replay in one call: files in event-time order ([`entrawatch_ingest::ordered`]), the
//! detection engine, and the alert stage without routing ([`AlertStage::records`]); alert records
//! out. `entrawatch replay`, the simulator's evaluation and the benchmark all run this.

use std::collections::BTreeMap;
use std::path::PathBuf;

use entrawatch_detect::{DetectConfig, Engine};
use entrawatch_ingest::ordered::{OrderOptions, SpillError, read_ordered};
use entrawatch_ingest::{Event, IngestStats, ReadOptions, Rejected};

use crate::record::AlertRecord;
use crate::stage::{AlertStage, StageConfig};

/// What a replay needs of the config.
#[derive(Debug, Clone, Default)]
pub struct ReplayConfig {
    pub detect: DetectConfig,
    pub stage: StageConfig,
    /// Tenant id → name, for the alert records.
    pub tenant_names: BTreeMap<String, String>,
    /// Rules run after the native detectors (the `[sigma]` rules), if any.
    pub extra_rules: Option<std::sync::Arc<dyn entrawatch_detect::ExtraRules>>,
    /// The memory budget of the ordering, and where runs go past it.
    pub order: OrderOptions,
}

/// What a replay of files produced.
#[derive(Debug)]
pub struct Replayed {
    pub stats: IngestStats,
    pub duplicates: u64,
    pub events_processed: u64,
    pub alerts: Vec<AlertRecord>,
    /// Detection state at the end: tracked principals and approximate bytes they take.
    pub tracked_principals: usize,
    pub state_bytes: usize,
    /// The detection state's part of `state_bytes` (the rest is the extra rules' windows), by
    /// kind of key.
    pub state_parts: entrawatch_detect::state::StateBytes,
    /// Sorted runs written to disk because the input did not fit the memory budget, and their
    /// bytes (0 and 0 when it fitted).
    pub spilled_runs: usize,
    pub spilled_bytes: u64,
    /// Wall time of each stage, for `entrawatch bench`.
    pub stages: StageSeconds,
}

/// Wall seconds of the replay's stages.
#[derive(Debug, Clone, Copy, Default)]
pub struct StageSeconds {
    /// Reading, parsing and normalising every file (on all cores), and writing sorted runs when
    /// the input is larger than the memory budget.
    pub read: f64,
    /// Putting the events held in memory in event-time order and finding the repeats (a merge of
    /// runs does this during detection).
    pub order: f64,
    /// Every detector and the alert records, one event at a time on one thread (events are freed
    /// on another meanwhile).
    pub detect: f64,
    /// After detection: freeing the detection state, naming the alerts.
    pub finish: f64,
}

/// Replays `files`: reads them (rejects to `on_reject`), hands each event that is not a repeat to
/// `on_event` and to detection in event-time order, and folds the findings into alert records.
/// `progress` is given a message now and then.
pub fn replay_files(
    files: &[PathBuf],
    opts: &ReadOptions,
    config: &ReplayConfig,
    progress: &mut dyn FnMut(&dyn Fn() -> String),
    on_reject: &mut dyn FnMut(&Rejected),
    on_event: &mut dyn FnMut(&Event) -> std::io::Result<()>,
) -> Result<Replayed, ReplayError> {
    let started = std::time::Instant::now();
    let ordered = read_ordered(files, opts, &config.order, progress, on_reject)?;
    let (spilled_runs, spilled_bytes) = (ordered.spilled_runs, ordered.spilled_bytes);
    let mut stages = StageSeconds {
        read: ordered.read_seconds,
        order: ordered.order_seconds,
        ..StageSeconds::default()
    };
    let stats = ordered.stats.clone();
    let mut engine = Engine::new(config.detect.clone()).map_err(ReplayError::Config)?;
    engine.set_extra_rules(config.extra_rules.clone());
    let mut stage = AlertStage::records(&config.stage, config.tenant_names.clone());
    let mut findings = Vec::new();
    let mut duplicates = 0u64;
    let total = ordered.len();
    let now = chrono::Utc::now();
    let mut rows = Vec::new();
    let detected_from = started.elapsed().as_secs_f64();
    ordered.for_each(&mut |n, event, repeated| {
        if repeated {
            duplicates += 1;
        } else {
            on_event(event).map_err(ReplayError::Events)?;
            engine.process(event, &mut findings);
            for f in findings.drain(..) {
                stage.add(f, now, &mut rows);
            }
        }
        if n.is_multiple_of(4096) {
            progress(&|| format!("detecting {}%", n * 100 / total.max(1)));
        }
        Ok::<(), ReplayError>(())
    })?;
    stages.detect = started.elapsed().as_secs_f64() - detected_from;
    let state = engine.state();
    let state_parts = state.approx_bytes_by_part();
    let (tracked_principals, state_bytes) = (
        state.principals.len(),
        state_parts.total() + engine.extra_state().approx_bytes(),
    );
    let events_processed = engine.events_seen();
    drop(engine);
    let alerts = stage.into_alerts();
    stages.finish = started.elapsed().as_secs_f64() - detected_from - stages.detect;
    Ok(Replayed {
        stats,
        duplicates,
        events_processed,
        alerts,
        tracked_principals,
        state_bytes,
        state_parts,
        spilled_runs,
        spilled_bytes,
        stages,
    })
}

/// Why a replay stopped.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("the detection config cannot be used: {0}")]
    Config(entrawatch_detect::ConfigError),
    #[error("cannot write the events file: {0}")]
    Events(std::io::Error),
    #[error(transparent)]
    Spill(#[from] SpillError),
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    /// Detection takes the events a chunk at a time: over several chunks, with repeats in other
    /// files and equal times across files, every event is detected once, in event-time order
    /// (ties by record identity), and the first of each repeat is the one kept.
    #[test]
    fn events_reach_detection_in_time_order_across_chunks_with_repeats_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let tenant = "4d3bac44-0230-4732-9e70-cc00736f0a97";
        let start = chrono::DateTime::parse_from_rfc3339("2021-01-01T00:00:00Z").unwrap();
        // (file, time, id) of every record, in the order the files are given.
        let mut written = Vec::new();
        let mut files = Vec::new();
        for f in 0..3u32 {
            let mut text = String::new();
            for k in 0..70u32 {
                // Every ninth record of the last file is a copy of one of the first file's (same
                // id, same time): a repeat, wherever it comes in the input.
                let (id, minute) = if f == 2 && k % 9 == 0 {
                    (format!("0-{}", k / 2), i64::from((k / 2) * 7 % 50))
                } else {
                    (format!("{f}-{k}"), i64::from((k * 7 + f * 13) % 50))
                };
                let time = (start + chrono::Duration::minutes(minute)).to_utc();
                let record = serde_json::json!({"id": id, "createdDateTime": time.to_rfc3339(),
                    "userId": "u", "resourceTenantId": tenant});
                text.push_str(&format!("{record}\n"));
                written.push((time, id));
            }
            let path = dir.path().join(format!("{f}.json"));
            std::fs::write(&path, text).unwrap();
            files.push(path);
        }
        let mut want: Vec<_> = written.clone();
        // Event time, ties by identity (one tenant and kind here: the id).
        want.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(&b.1)));
        let mut seen = HashSet::new();
        want.retain(|(_, id)| seen.insert(id.clone()));
        assert!(want.len() > 3 * 32, "several chunks");
        assert!(written.len() - want.len() >= 7, "repeats to drop");

        let mut got = Vec::new();
        let replayed = replay_files(
            &files,
            &ReadOptions::default(),
            &ReplayConfig::default(),
            &mut |_| {},
            &mut |r| panic!("rejected: {r:?}"),
            &mut |e| {
                got.push((e.meta.time, e.meta.id.to_string()));
                Ok(())
            },
        )
        .unwrap();
        assert_eq!(got, want);
        assert_eq!(replayed.events_processed, want.len() as u64);
        assert_eq!(replayed.duplicates, (written.len() - want.len()) as u64);
    }
}
