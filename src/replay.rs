//! `entrawatch replay`: read exported logs, order them by event time, drop repeats, detect, and
//! write alert records; a summary on standard error and, on request, as JSON.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context as _, bail};
use chrono::Utc;
use entrawatch_alert::{AlertRecord, Episodes};
use entrawatch_detect::keys::KeyHash;
use entrawatch_detect::{Engine, Severity};
use entrawatch_ingest::stats::FIRST_ERRORS_KEPT;
use entrawatch_ingest::{
    Body, Event, IngestStats, Item, ReadOptions, Rejected, collect_files, read_file, text::Text,
    value::is_guid,
};
use serde::Serialize;

use crate::cli::{EXIT_PARSE_ERRORS, ReplayArgs};
use crate::config::FileConfig;
use crate::progress::Progress;

/// The run summary (`--summary-json`).
#[derive(Debug, Serialize)]
pub struct Summary {
    pub files_read: u64,
    pub bytes_read: u64,
    pub records_read: u64,
    pub records_by_kind: BTreeMap<String, u64>,
    pub records_by_shape: BTreeMap<String, u64>,
    pub skipped_by_category: BTreeMap<String, u64>,
    pub parse_errors: u64,
    pub first_errors: Vec<String>,
    pub duplicates: u64,
    pub ingest_time_fallbacks: u64,
    pub events_processed: u64,
    pub alerts: u64,
    pub alerts_by_rule: BTreeMap<String, u64>,
    pub alerts_by_severity: BTreeMap<String, u64>,
    pub ignored_files: Vec<String>,
    pub empty_files: Vec<String>,
    pub elapsed_seconds: f64,
    pub records_per_second: f64,
    pub megabytes_per_second: f64,
    pub tracked_principals: u64,
    pub state_bytes: u64,
    pub state_bytes_per_principal: u64,
}

pub fn run(args: ReplayArgs) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let tenant = match &args.tenant {
        Some(t) if !is_guid(t) => {
            bail!("--tenant {t:?} is not a tenant GUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)")
        }
        Some(t) => Some(t.to_ascii_lowercase()),
        None => None,
    };
    let config = match &args.config {
        Some(path) => crate::config::load(path)?,
        None => crate::config::FileConfig::default(),
    };
    let (files, ignored) = collect_files(&args.paths).context("cannot list the input paths")?;
    if files.is_empty() {
        bail!(
            "no log files (.json, .jsonl, .ndjson, .csv, .log) under {}",
            display_paths(&args.paths)
        );
    }
    let mut alerts_out = open_output(args.alerts.as_deref())?;
    let mut events_out = match &args.events {
        Some(p) => Some(BufWriter::new(
            File::create(p).with_context(|| format!("cannot create {}", p.display()))?,
        )),
        None => None,
    };
    let mut rejects_out = match &args.rejects {
        Some(p) => Some(BufWriter::new(
            File::create(p).with_context(|| format!("cannot create {}", p.display()))?,
        )),
        None => None,
    };

    let opts = ReadOptions {
        tenant,
        max_record_bytes: args.max_record_bytes,
        ingest_time: Utc::now(),
    };
    let mut progress = Progress::new(args.quiet);
    let mut reject_error: Option<std::io::Error> = None;
    let mut on_reject = |r: &Rejected| {
        if let Some(out) = rejects_out.as_mut()
            && let Err(e) = serde_json::to_writer(&mut *out, r)
                .map_err(std::io::Error::from)
                .and_then(|()| out.write_all(b"\n"))
        {
            reject_error.get_or_insert(e);
        }
    };
    let mut on_event = |e: &Event| -> std::io::Result<()> {
        if let Some(out) = events_out.as_mut() {
            serde_json::to_writer(&mut *out, e)?;
            out.write_all(b"\n")?;
        }
        Ok(())
    };
    let replayed = replay_files(
        &files,
        &opts,
        &config,
        &mut progress,
        &mut on_reject,
        &mut on_event,
    )?;
    if let Some(e) = reject_error {
        return Err(e).context("cannot write the rejects file");
    }
    if let Some(mut out) = rejects_out {
        out.flush().context("cannot write the rejects file")?;
    }
    if let Some(mut out) = events_out {
        out.flush().context("cannot write the events file")?;
    }
    let Replayed {
        stats,
        duplicates,
        events_processed,
        alerts,
        tracked_principals,
        state_bytes,
        stages: _,
    } = replayed;
    write_alerts(&mut alerts_out, &alerts).context("cannot write alerts")?;

    let elapsed = started.elapsed().as_secs_f64();
    let mut summary = summarize(
        stats,
        duplicates,
        events_processed,
        &alerts,
        ignored,
        elapsed,
    );
    summary.tracked_principals = tracked_principals as u64;
    summary.state_bytes = state_bytes as u64;
    summary.state_bytes_per_principal =
        state_bytes.checked_div(tracked_principals).unwrap_or(0) as u64;
    if let Some(path) = &args.summary_json {
        let text = serde_json::to_string_pretty(&summary)?;
        std::fs::write(path, text + "\n")
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    if !args.quiet {
        eprint!("{}", render_summary(&summary));
    }
    if args.strict && summary.parse_errors > 0 {
        return Ok(ExitCode::from(EXIT_PARSE_ERRORS));
    }
    Ok(ExitCode::SUCCESS)
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
    /// Wall time of each stage, for `entrawatch bench`.
    pub stages: StageSeconds,
}

/// Wall seconds of the replay's stages.
#[derive(Debug, Clone, Copy, Default)]
pub struct StageSeconds {
    /// Reading, parsing and normalising every file, and fingerprinting each event's key (on all
    /// cores).
    pub read: f64,
    /// Putting the events in event-time order and finding the repeats (by sorting fingerprints).
    pub order: f64,
    /// Every detector and the alert records, one event at a time on one thread (events are freed
    /// on another meanwhile; the last of them after this stage).
    pub detect: f64,
    /// After detection: freeing the last events and the detection state, naming the alerts.
    pub finish: f64,
}

/// The replay pipeline: read every file (counting, handing rejects to `on_reject`), put events in
/// event-time order across all inputs (ties in the order of the records' identities, exact
/// repeats in file order), drop exact repeats, hand each
/// event to `on_event`, detect, and fold findings into alerts named with the config's tenant names.
///
/// Files are parsed and counted on every core; their results are taken in file order, so counts,
/// rejects and the order of equal-time events are exactly those of a sequential read. The reading
/// threads also fingerprint each event's de-duplication key, so finding repeats is a sort of
/// fingerprints rather than a hash-set lookup per event on the detection thread. Detection runs on
/// this thread in event-time order, a chunk at a time whose events are first read through
/// ([`warm`]); each event is freed on another thread once detected.
pub fn replay_files(
    files: &[std::path::PathBuf],
    opts: &ReadOptions,
    config: &FileConfig,
    progress: &mut Progress,
    on_reject: &mut dyn FnMut(&Rejected),
    on_event: &mut dyn FnMut(&Event) -> std::io::Result<()>,
) -> anyhow::Result<Replayed> {
    let mut stats = IngestStats::default();
    let mut stages = StageSeconds::default();
    let started = std::time::Instant::now();
    let mut events: Vec<Option<Box<Event>>> = Vec::new();
    let mut keys: Vec<u64> = Vec::new();
    read_files_in_parallel(files, opts, &mut |i, file| {
        for r in &file.rejects {
            on_reject(r);
        }
        events.extend(file.events.into_iter().map(Some));
        keys.extend(file.keys);
        merge_stats(&mut stats, file.stats);
        progress.update(|| {
            format!(
                "reading {}/{} files · {} records",
                i + 1,
                files.len(),
                stats.records_read
            )
        });
    });

    stages.read = started.elapsed().as_secs_f64();
    progress.update(|| format!("ordering {} events", events.len()));
    // (time, position) is unique, so an unstable sort of it is the stable sort by time.
    let mut order: Vec<(chrono::DateTime<Utc>, u32)> = events
        .iter()
        .enumerate()
        .map(|(i, e)| {
            (
                e.as_ref().map_or_else(Default::default, |e| e.meta.time),
                i as u32,
            )
        })
        .collect();
    order.sort_unstable();
    // Ties in time are put in the order of the records' identities, as the live service's aligner
    // orders them (`entrawatch_ingest::align::order`): the order never depends on which file or
    // partition an event came from. Exact repeats stay in file order.
    let mut start = 0;
    while start < order.len() {
        let time = order[start].0;
        let end = start
            + order[start..]
                .iter()
                .take_while(|(t, _)| *t == time)
                .count();
        if end - start > 1 {
            order[start..end].sort_by(|a, b| {
                let event = |i: u32| events[i as usize].as_deref();
                event(a.1)
                    .zip(event(b.1))
                    .map_or(std::cmp::Ordering::Equal, |(x, y)| {
                        entrawatch_ingest::align::order(x, y)
                    })
                    .then(a.1.cmp(&b.1))
            });
        }
        start = end;
    }
    // Repeats are found before detection, from the fingerprints the reading threads took: only
    // events whose fingerprints are equal are compared, by their full keys.
    let repeated = mark_repeats(&order, &keys, |a, b| {
        let key = |i: u32| events[i as usize].as_ref().map(|e| e.dedup_key_ref());
        key(a) == key(b)
    });
    drop(keys);
    let mut duplicates = 0u64;
    let mut engine = Engine::new(config.detect.clone())?;
    let mut episodes = Episodes::new(chrono::Duration::hours(config.alert.episode_window_hours));
    let mut findings = Vec::new();
    let total = events.len();
    stages.order = started.elapsed().as_secs_f64() - stages.read;
    std::thread::scope(|scope| -> anyhow::Result<()> {
        // Freeing an event costs about as much as detecting it (dozens of small strings, allocated
        // by the reading threads): another core does it while this one detects.
        let (free, freed) = std::sync::mpsc::sync_channel::<Vec<Box<Event>>>(64);
        // The emptied batches come back to be filled again. A fresh batch for each would be a
        // large allocation on this thread, and glibc answers one by first consolidating the
        // small chunks that the freeing thread left: measured, 11 % of the detection thread.
        let (empty, emptied) = std::sync::mpsc::channel::<Vec<Box<Event>>>();
        scope.spawn(move || {
            for mut batch in freed {
                batch.clear();
                if empty.send(batch).is_err() {
                    break;
                }
            }
        });
        let mut done: Vec<Box<Event>> = Vec::with_capacity(FREE_BATCH);
        for (c, chunk) in order.chunks(WARM_CHUNK).enumerate() {
            let warmed = chunk
                .iter()
                .filter_map(|&(_, i)| events[i as usize].as_deref())
                .fold(0usize, |sum, event| sum.wrapping_add(warm(event)));
            std::hint::black_box(warmed);
            for (k, &(_, i)) in chunk.iter().enumerate() {
                let n = c * WARM_CHUNK + k;
                let Some(event) = events[i as usize].take() else {
                    continue;
                };
                if !repeated[n] {
                    on_event(&event).context("cannot write the events file")?;
                    engine.process(&event, &mut findings);
                    for f in findings.drain(..) {
                        episodes.add(f);
                    }
                } else {
                    duplicates += 1;
                }
                done.push(event);
                if done.len() == FREE_BATCH {
                    let next = emptied
                        .try_recv()
                        .unwrap_or_else(|_| Vec::with_capacity(FREE_BATCH));
                    let batch = std::mem::replace(&mut done, next);
                    // Should the freeing thread be gone, the batch comes back in the error and is
                    // freed here; detection goes on either way.
                    if let Err(unsent) = free.send(batch) {
                        drop(unsent);
                    }
                }
                if n.is_multiple_of(4096) {
                    progress.update(|| format!("detecting {}%", n * 100 / total.max(1)));
                }
            }
        }
        stages.detect = started.elapsed().as_secs_f64() - stages.read - stages.order;
        drop(done);
        Ok(())
    })?;
    progress.finish();
    let names = config.tenant_names();
    let mut alerts = episodes.into_alerts();
    for alert in &mut alerts {
        alert.tenant_name = names.get(&alert.tenant_id).cloned();
    }
    let state = engine.state();
    let (tracked_principals, state_bytes) = (state.principals.len(), state.approx_bytes());
    let events_processed = engine.events_seen();
    drop((engine, events, order, repeated));
    stages.finish = started.elapsed().as_secs_f64() - stages.read - stages.order - stages.detect;
    Ok(Replayed {
        stats,
        duplicates,
        events_processed,
        alerts,
        tracked_principals,
        state_bytes,
        stages,
    })
}

/// Events handed to the freeing thread at a time.
const FREE_BATCH: usize = 1024;

/// Events warmed at a time, ahead of their detection.
const WARM_CHUNK: usize = 32;

/// Reads the fields that detection reads of nearly every event, and returns a sum of what it read
/// so that the reads are not optimised away.
///
/// The reading threads allocated the events in file order; in event-time order each event, its
/// body and its text are cold in the cache, and detection meets those misses one after another,
/// each behind the work that needed the last. Read here for a chunk of events at once, the misses
/// are independent of each other and the processor fetches many of them at the same time; the
/// chunk is then still in the cache when it is detected. Measured on the simulated 1 M-record
/// world: detection about 9 % faster (docs/PERFORMANCE-RESULTS.md, fifth round).
fn warm(event: &Event) -> usize {
    fn text(t: Option<&Text>) -> usize {
        t.map_or(0, |t| {
            usize::from(t.as_bytes().first().copied().unwrap_or_default()) + t.len()
        })
    }
    let meta = &event.meta;
    // Wrapping sums throughout: the values read are whatever the record held.
    let mut sum = text(Some(&meta.id))
        .wrapping_add(text(Some(&meta.tenant_id)))
        .wrapping_add(meta.time.timestamp() as usize);
    match &event.body {
        Body::SignIn(s) => {
            for t in [
                &s.user_id,
                &s.user_principal_name,
                &s.ip_address,
                &s.home_tenant_id,
                &s.resource_tenant_id,
                &s.app_id,
                &s.app_display_name,
                &s.client_app_used,
                &s.user_agent,
                &s.location.country_or_region,
                &s.location.city,
                &s.device.device_id,
                &s.device.trust_type,
            ] {
                sum = sum.wrapping_add(text(t.as_ref()));
            }
            sum = sum
                .wrapping_add(s.error_code.unwrap_or_default() as usize)
                .wrapping_add(s.authentication_details.len())
                .wrapping_add(s.authentication_methods_used.len());
        }
        Body::Audit(a) => {
            sum = sum
                .wrapping_add(text(Some(&a.activity_display_name)))
                .wrapping_add(
                    a.target_resources
                        .first()
                        .map_or(0, |t| text(t.id.as_ref())),
                )
                .wrapping_add(
                    a.initiated_by
                        .user
                        .as_ref()
                        .map_or(0, |u| text(u.id.as_ref())),
                );
        }
        _ => {}
    }
    sum
}

/// A fingerprint of [`Event::dedup_key`]: events with equal keys have equal fingerprints.
fn fingerprint(event: &Event) -> u64 {
    use std::hash::BuildHasher;
    KeyHash::default().hash_one(event.dedup_key_ref())
}

/// Which events of `order` (event-time order) repeat an earlier one: `true` at position `n` when
/// an event before it in `order` has the same key. `keys[i]` is the fingerprint of event `i`;
/// `same(i, j)` compares the full keys of events `i` and `j`, and is asked only when their
/// fingerprints are equal, so a fingerprint collision never drops an event.
fn mark_repeats(
    order: &[(chrono::DateTime<Utc>, u32)],
    keys: &[u64],
    same: impl Fn(u32, u32) -> bool,
) -> Vec<bool> {
    // (fingerprint, position in `order`), sorted: equal fingerprints side by side, earliest first.
    let mut by_key: Vec<(u64, u32)> = order
        .iter()
        .enumerate()
        .map(|(n, &(_, i))| (keys[i as usize], n as u32))
        .collect();
    by_key.sort_unstable();
    let mut repeated = vec![false; order.len()];
    let mut kept: Vec<u32> = Vec::new();
    for group in by_key.chunk_by(|a, b| a.0 == b.0) {
        if group.len() == 1 {
            continue;
        }
        // Within a group, an event repeats one kept before it, or is kept itself.
        kept.clear();
        for &(_, n) in group {
            let event = order[n as usize].1;
            if kept.iter().any(|&k| same(order[k as usize].1, event)) {
                repeated[n as usize] = true;
            } else {
                kept.push(n);
            }
        }
    }
    repeated
}

/// What one file gave: its events, its rejects (in file order) and its counts.
#[derive(Debug, Default)]
struct FileRead {
    /// Kept in the boxes the reader hands out: moving a box is cheaper than moving an event.
    #[allow(clippy::vec_box)]
    events: Vec<Box<Event>>,
    /// [`fingerprint`] of each event, taken here while the event is fresh in this core's cache.
    keys: Vec<u64>,
    rejects: Vec<Rejected>,
    stats: IngestStats,
}

fn read_one(file: &std::path::Path, opts: &ReadOptions) -> FileRead {
    let mut out = FileRead::default();
    let bytes = read_file(file, opts, &mut |item| {
        out.stats.count(&item);
        match item {
            Item::Event(e) => {
                out.keys.push(fingerprint(&e));
                out.events.push(e);
            }
            Item::Rejected(r) => out.rejects.push(r),
            Item::Skipped { .. } | Item::EmptyFile { .. } => {}
        }
    });
    out.stats.files_read = 1;
    out.stats.bytes_read = bytes;
    out
}

/// Adds the counts of one file to the totals; `first_errors` keeps the earliest, in file order.
fn merge_stats(into: &mut IngestStats, from: IngestStats) {
    // Destructured, so a new field cannot be forgotten here.
    let IngestStats {
        files_read,
        bytes_read,
        records_read,
        records_by_kind,
        records_by_shape,
        skipped_by_category,
        parse_errors,
        first_errors,
        ingest_time_fallbacks,
        empty_files,
    } = from;
    into.files_read += files_read;
    into.bytes_read += bytes_read;
    into.records_read += records_read;
    for (map, add) in [
        (&mut into.records_by_kind, records_by_kind),
        (&mut into.records_by_shape, records_by_shape),
        (&mut into.skipped_by_category, skipped_by_category),
    ] {
        for (k, v) in add {
            *map.entry(k).or_default() += v;
        }
    }
    into.parse_errors += parse_errors;
    let room = FIRST_ERRORS_KEPT.saturating_sub(into.first_errors.len());
    into.first_errors
        .extend(first_errors.into_iter().take(room));
    into.ingest_time_fallbacks += ingest_time_fallbacks;
    into.empty_files.extend(empty_files);
}

/// Reads `files` on all available cores and hands what each gave to `take`, in file order.
fn read_files_in_parallel(
    files: &[std::path::PathBuf],
    opts: &ReadOptions,
    take: &mut dyn FnMut(usize, FileRead),
) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(files.len())
        .max(1);
    let next = AtomicUsize::new(0);
    let (tx, rx) = std::sync::mpsc::channel::<(usize, FileRead)>();
    std::thread::scope(|scope| {
        for _ in 0..workers {
            let tx = tx.clone();
            let next = &next;
            scope.spawn(move || {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(file) = files.get(i) else { break };
                    if tx.send((i, read_one(file, opts))).is_err() {
                        break;
                    }
                }
            });
        }
        drop(tx);
        let mut pending = std::collections::BTreeMap::new();
        let mut expected = 0;
        for (i, read) in rx {
            pending.insert(i, read);
            while let Some(read) = pending.remove(&expected) {
                take(expected, read);
                expected += 1;
            }
        }
    });
}

fn display_paths(paths: &[std::path::PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

fn open_output(path: Option<&Path>) -> anyhow::Result<Box<dyn Write>> {
    Ok(match path {
        Some(p) => Box::new(BufWriter::new(
            File::create(p).with_context(|| format!("cannot create {}", p.display()))?,
        )),
        None => Box::new(BufWriter::new(std::io::stdout().lock())),
    })
}

fn write_alerts(out: &mut Box<dyn Write>, alerts: &[AlertRecord]) -> std::io::Result<()> {
    for alert in alerts {
        serde_json::to_writer(&mut *out, alert)?;
        out.write_all(b"\n")?;
    }
    out.flush()
}

fn summarize(
    stats: IngestStats,
    duplicates: u64,
    events_processed: u64,
    alerts: &[AlertRecord],
    ignored: Vec<std::path::PathBuf>,
    elapsed: f64,
) -> Summary {
    let mut alerts_by_rule = BTreeMap::new();
    let mut alerts_by_severity = BTreeMap::new();
    for a in alerts {
        *alerts_by_rule.entry(a.rule.to_owned()).or_insert(0) += 1;
        *alerts_by_severity
            .entry(a.severity.as_str().to_owned())
            .or_insert(0) += 1;
    }
    let secs = elapsed.max(1e-9);
    Summary {
        files_read: stats.files_read,
        bytes_read: stats.bytes_read,
        records_read: stats.records_read,
        records_by_kind: stats.kinds_with_zeros(),
        records_by_shape: stats.records_by_shape,
        skipped_by_category: stats.skipped_by_category,
        parse_errors: stats.parse_errors,
        first_errors: stats.first_errors,
        duplicates,
        ingest_time_fallbacks: stats.ingest_time_fallbacks,
        events_processed,
        alerts: alerts.len() as u64,
        alerts_by_rule,
        alerts_by_severity,
        ignored_files: ignored.iter().map(|p| p.display().to_string()).collect(),
        empty_files: stats.empty_files,
        elapsed_seconds: elapsed,
        records_per_second: stats.records_read as f64 / secs,
        megabytes_per_second: stats.bytes_read as f64 / 1e6 / secs,
        tracked_principals: 0,
        state_bytes: 0,
        state_bytes_per_principal: 0,
    }
}

fn join_counts(map: &BTreeMap<String, u64>) -> String {
    if map.is_empty() {
        return "none".to_owned();
    }
    map.iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect::<Vec<_>>()
        .join(" · ")
}

fn render_summary(s: &Summary) -> String {
    let mut out = String::new();
    let nonzero: BTreeMap<String, u64> = s
        .records_by_kind
        .iter()
        .filter(|(_, v)| **v > 0)
        .map(|(k, v)| (k.clone(), *v))
        .collect();
    out += &format!(
        "entrawatch replay: {} records from {} files ({:.1} MB) in {:.2} s · {:.0} records/s · {:.1} MB/s\n",
        s.records_read,
        s.files_read,
        s.bytes_read as f64 / 1e6,
        s.elapsed_seconds,
        s.records_per_second,
        s.megabytes_per_second
    );
    out += &format!("  by kind:    {}\n", join_counts(&nonzero));
    out += &format!("  by shape:   {}\n", join_counts(&s.records_by_shape));
    if !s.skipped_by_category.is_empty() {
        out += &format!(
            "  skipped:    {} (categories entrawatch does not read)\n",
            join_counts(&s.skipped_by_category)
        );
    }
    out += &format!("  duplicates: {} dropped\n", s.duplicates);
    if s.ingest_time_fallbacks > 0 {
        out += &format!(
            "  no usable time in {} records: stamped with the time they were read\n",
            s.ingest_time_fallbacks
        );
    }
    out += &format!("  parse errors: {}\n", s.parse_errors);
    for e in &s.first_errors {
        out += &format!("    {e}\n");
    }
    if s.parse_errors > s.first_errors.len() as u64 {
        out += &format!(
            "    ... and {} more (use --rejects FILE to keep them all)\n",
            s.parse_errors - s.first_errors.len() as u64
        );
    }
    if !s.ignored_files.is_empty() {
        out += &format!(
            "  ignored {} files without a log extension (first: {})\n",
            s.ignored_files.len(),
            s.ignored_files[0]
        );
    }
    if !s.empty_files.is_empty() {
        out += &format!(
            "  {} empty files (first: {})\n",
            s.empty_files.len(),
            s.empty_files[0]
        );
    }
    let by_severity: Vec<String> = Severity::ALL
        .iter()
        .rev()
        .filter_map(|sev| {
            s.alerts_by_severity
                .get(sev.as_str())
                .map(|n| format!("{} {n}", sev.as_str()))
        })
        .collect();
    out += &format!(
        "  alerts: {}{}\n",
        s.alerts,
        if by_severity.is_empty() {
            String::new()
        } else {
            format!(" ({})", by_severity.join(", "))
        }
    );
    for (rule, n) in &s.alerts_by_rule {
        out += &format!("    {rule:<34} {n}\n");
    }
    out += &format!(
        "  state: {} principals tracked, {:.1} KB ({} bytes per principal)\n",
        s.tracked_principals,
        s.state_bytes as f64 / 1e3,
        s.state_bytes_per_principal
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    /// The event that `read_bytes` makes of one record.
    fn event_of(record: &serde_json::Value) -> Box<Event> {
        let text = format!("{record}\n");
        let mut out = Vec::new();
        entrawatch_ingest::read_bytes(
            "t.json",
            text.as_bytes(),
            None,
            &ReadOptions::default(),
            &mut |i| {
                if let Item::Event(e) = i {
                    out.push(e);
                }
            },
        );
        out.pop().expect("an event")
    }

    #[test]
    fn repeats_are_found_exactly_as_by_dedup_key() {
        let event = |tenant: &str, id: &str| {
            event_of(
                &serde_json::json!({"id": id, "createdDateTime": "2021-01-01T00:00:00Z",
                "userId": "u", "resourceTenantId": tenant}),
            )
        };
        let t = "4d3bac44-0230-4732-9e70-cc00736f0a97";
        let events = [
            event(t, "4d3bac44-0230-4732-9e70-cc00736f0a97"),
            event(t, "4D3BAC44-0230-4732-9E70-CC00736F0A97"),
            event(t, "4d3bac44-0230-4732-9e70-cc00736f0a97"),
            event(t, "x@1"),
            event("5d3bac44-0230-4732-9e70-cc00736f0a97", "x@1"),
            event(t, "x@1"),
        ];
        let exact_repeats = |order: &[(chrono::DateTime<Utc>, u32)]| -> Vec<bool> {
            let mut seen = HashSet::new();
            order
                .iter()
                .map(|&(_, i)| !seen.insert(events[i as usize].dedup_key()))
                .collect()
        };
        let same = |a: u32, b: u32| {
            events[a as usize].dedup_key_ref() == events[b as usize].dedup_key_ref()
        };
        let time = chrono::DateTime::<Utc>::default();
        let keys: Vec<u64> = events.iter().map(|e| fingerprint(e)).collect();
        // Twenty-four orders of the six events (rotations and swaps), so "earliest is kept" is
        // checked in many orders, not only the one they were written in.
        let mut perm: Vec<u32> = (0..events.len() as u32).collect();
        for round in 0..24 {
            perm.rotate_left(round % events.len());
            perm.swap(round % 3, 5 - round % 4);
            let order: Vec<_> = perm.iter().map(|&i| (time, i)).collect();
            let want = exact_repeats(&order);
            assert_eq!(mark_repeats(&order, &keys, same), want, "{perm:?}");
            // Fingerprints that all collide: the full keys still decide.
            assert_eq!(mark_repeats(&order, &[7; 6], same), want, "{perm:?}");
            assert_eq!(want.iter().filter(|r| !**r).count(), 4);
        }
    }

    /// The warming pass reads whatever a record holds: a negative error code or a time before
    /// 1970 must not overflow its sum (a panic in a debug build).
    #[test]
    fn warming_reads_any_record() {
        let event = event_of(
            &serde_json::json!({"id": "4d3bac44-0230-4732-9e70-cc00736f0a97",
            "createdDateTime": "1901-01-01T00:00:00Z", "userId": "u",
            "userPrincipalName": "adele@contoso.com", "ipAddress": "203.0.113.9",
            "resourceTenantId": "5d3bac44-0230-4732-9e70-cc00736f0a97",
            "status": {"errorCode": -1}}),
        );
        let s = event.as_sign_in().expect("a sign-in");
        assert_eq!(s.error_code, Some(-1));
        assert!(event.meta.time.timestamp() < 0);
        assert_eq!(warm(&event), warm(&event));
    }

    /// Detection takes the events a chunk at a time (`WARM_CHUNK`): over several chunks, with
    /// repeats in other files and equal times across files, every event is detected once, in
    /// event-time order (ties by record identity), and the first of each repeat is the one kept.
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
                let minute = i64::from((k * 7 + f * 13) % 50);
                let id = if f == 2 && k % 9 == 0 {
                    format!("0-{}", k / 2)
                } else {
                    format!("{f}-{k}")
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
        assert!(want.len() > 3 * WARM_CHUNK, "several chunks");
        assert!(written.len() - want.len() >= 7, "repeats to drop");

        let mut got = Vec::new();
        let replayed = replay_files(
            &files,
            &ReadOptions::default(),
            &FileConfig::default(),
            &mut Progress::new(true),
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
