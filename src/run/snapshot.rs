//! State snapshots: the detection state, the open alerts and the source positions they reflect,
//! written together so that a restart continues exactly where the snapshot was taken.
//!
//! Layout of `snapshot.bin`: the magic line `EWSNAP 2\n`, then five length-prefixed sections (u64
//! little-endian length, then bytes): meta (JSON: time taken, source positions), alert state (JSON:
//! episodes, occasions, event clock), record-id dedup (bincode), engine (bincode, versioned by the
//! engine), aligner (JSON: lanes' marks, the released watermark and the buffered events, which
//! the positions already cover). A version 1 file (four sections) is read with an empty aligner. Written to `snapshot.bin.tmp`, fsynced, renamed over `snapshot.bin`, and the folder
//! fsynced: a crash leaves either the old snapshot or the new one, never a torn one. The bytes are
//! encoded on the detection thread ([`encode`]: a consistent cut) and may be written on another
//! ([`persist`]), so the disk's fsyncs do not stall detection.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use chrono::{DateTime, Utc};
use entrawatch_detect::{DetectConfig, Engine};
use entrawatch_ingest::align::AlignerState;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use entrawatch_alert::stage::{Dedup, StageState};

const MAGIC: &[u8] = b"EWSNAP 2\n";
/// Snapshots of the first layout (no aligner section) are still read: their aligner starts empty.
const MAGIC_V1: &[u8] = b"EWSNAP 1\n";

/// The file a state folder keeps its snapshot in.
pub fn path_in(state_dir: &Path) -> PathBuf {
    state_dir.join("snapshot.bin")
}

#[derive(Debug, Serialize, Deserialize)]
struct Meta {
    taken_at: DateTime<Utc>,
    positions: BTreeMap<String, Value>,
}

#[derive(Serialize)]
struct AlertsRef<'a> {
    episodes: &'a entrawatch_alert::Episodes,
    occasions: &'a entrawatch_alert::occasions::Occasions,
    clock: i64,
}

#[derive(Deserialize)]
struct AlertsOwned {
    episodes: entrawatch_alert::Episodes,
    occasions: entrawatch_alert::occasions::Occasions,
    clock: i64,
}

/// What a restore gives back.
#[derive(Debug)]
pub struct Restored {
    pub engine: Engine,
    pub alerts: StageState,
    pub positions: BTreeMap<String, Value>,
    pub taken_at: DateTime<Utc>,
    pub aligner: AlignerState,
}

/// Writes a snapshot atomically; returns its size in bytes.
pub fn write(
    path: &Path,
    engine: &Engine,
    alerts: &StageState,
    positions: &BTreeMap<String, Value>,
    aligner: &AlignerState,
) -> anyhow::Result<u64> {
    persist(path, &encode(engine, alerts, positions, aligner)?)
}

/// The snapshot's bytes, as [`persist`] writes them: the consistent cut, taken on the thread that
/// owns the state. Encoding is quick; the write and its fsyncs are what take time.
pub fn encode(
    engine: &Engine,
    alerts: &StageState,
    positions: &BTreeMap<String, Value>,
    aligner: &AlignerState,
) -> anyhow::Result<Vec<u8>> {
    let mut w = Vec::with_capacity(1 << 20);
    w.write_all(MAGIC)?;
    let meta = serde_json::to_vec(&Meta {
        taken_at: Utc::now(),
        positions: positions.clone(),
    })?;
    section(&mut w, &meta)?;
    let alert_json = serde_json::to_vec(&AlertsRef {
        episodes: &alerts.episodes,
        occasions: &alerts.occasions,
        clock: alerts.clock,
    })?;
    section(&mut w, &alert_json)?;
    let dedup = bincode::serialize(&alerts.dedup)?;
    section(&mut w, &dedup)?;
    let mut engine_bytes = Vec::new();
    engine.write_snapshot(&mut engine_bytes)?;
    section(&mut w, &engine_bytes)?;
    section(&mut w, &serde_json::to_vec(aligner)?)?;
    Ok(w)
}

/// Writes encoded snapshot `bytes` to `path` atomically (a temporary file, fsynced, renamed over
/// it, the folder fsynced); returns their size. Two writes to one path must not overlap.
pub fn persist(path: &Path, bytes: &[u8]) -> anyhow::Result<u64> {
    let tmp = path.with_extension("bin.tmp");
    let mut file =
        File::create(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
    file.write_all(bytes)
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    file.sync_all()
        .with_context(|| format!("cannot sync {}", tmp.display()))?;
    drop(file);
    std::fs::rename(&tmp, path)
        .with_context(|| format!("cannot rename {} to {}", tmp.display(), path.display()))?;
    if let Some(dir) = path.parent() {
        File::open(dir)?.sync_all()?;
    }
    Ok(bytes.len() as u64)
}

fn section(w: &mut impl Write, bytes: &[u8]) -> std::io::Result<()> {
    w.write_all(&(bytes.len() as u64).to_le_bytes())?;
    w.write_all(bytes)
}

fn read_section(r: &mut impl Read, what: &str) -> anyhow::Result<Vec<u8>> {
    let mut len = [0u8; 8];
    r.read_exact(&mut len)
        .with_context(|| format!("snapshot ends before its {what} section"))?;
    let len = u64::from_le_bytes(len);
    if len > 64 * 1024 * 1024 * 1024 {
        bail!("snapshot {what} section claims {len} bytes");
    }
    let mut buf = vec![0u8; len as usize];
    r.read_exact(&mut buf)
        .with_context(|| format!("snapshot {what} section is truncated"))?;
    Ok(buf)
}

/// Reads a snapshot back, building the engine with `config`.
pub fn read(path: &Path, config: DetectConfig) -> anyhow::Result<Restored> {
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut r = BufReader::with_capacity(1 << 20, file);
    let mut magic = [0u8; MAGIC.len()];
    r.read_exact(&mut magic)
        .context("snapshot is shorter than its header")?;
    if magic != MAGIC && magic != MAGIC_V1 {
        bail!(
            "{} is not an entrawatch snapshot (bad header)",
            path.display()
        );
    }
    let meta: Meta =
        serde_json::from_slice(&read_section(&mut r, "meta")?).context("snapshot meta section")?;
    let alerts: AlertsOwned = serde_json::from_slice(&read_section(&mut r, "alerts")?)
        .context("snapshot alerts section")?;
    let dedup: Dedup =
        bincode::deserialize(&read_section(&mut r, "dedup")?).context("snapshot dedup section")?;
    let engine_bytes = read_section(&mut r, "engine")?;
    let engine = Engine::restore(config, engine_bytes.as_slice())?;
    let aligner = if magic == MAGIC {
        serde_json::from_slice(&read_section(&mut r, "aligner")?)
            .context("snapshot aligner section")?
    } else {
        AlignerState::default()
    };
    Ok(Restored {
        aligner,
        engine,
        alerts: StageState {
            episodes: alerts.episodes,
            occasions: alerts.occasions,
            dedup,
            clock: alerts.clock,
        },
        positions: meta.positions,
        taken_at: meta.taken_at,
    })
}
