//! `entrawatch replay`: read exported logs, order them by event time, drop repeats, detect, and
//! write alert records; a summary on standard error and, on request, as JSON.

use std::collections::{BTreeMap, HashSet};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context as _, bail};
use chrono::Utc;
use entrawatch_alert::{AlertRecord, Episodes};
use entrawatch_detect::{Engine, Severity};
use entrawatch_ingest::{
    Event, IngestStats, Item, ReadOptions, Rejected, collect_files, read_file, value::is_guid,
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
}

/// The replay pipeline: read every file (counting, handing rejects to `on_reject`), put events in
/// event-time order across all inputs (stable: ties keep file order), drop exact repeats, hand each
/// event to `on_event`, detect, and fold findings into alerts named with the config's tenant names.
pub fn replay_files(
    files: &[std::path::PathBuf],
    opts: &ReadOptions,
    config: &FileConfig,
    progress: &mut Progress,
    on_reject: &mut dyn FnMut(&Rejected),
    on_event: &mut dyn FnMut(&Event) -> std::io::Result<()>,
) -> anyhow::Result<Replayed> {
    let mut stats = IngestStats::default();
    let mut events: Vec<Event> = Vec::new();
    // Files are parsed on every core; their items are taken in file order, so counts, rejects and
    // the order of equal-time events are exactly those of a sequential read.
    read_files_in_parallel(files, opts, &mut |i, items, bytes| {
        for item in items {
            stats.count(&item);
            match item {
                Item::Event(e) => events.push(*e),
                Item::Rejected(r) => on_reject(&r),
                Item::Skipped { .. } | Item::EmptyFile { .. } => {}
            }
        }
        stats.files_read += 1;
        stats.bytes_read += bytes;
        progress.update(|| {
            format!(
                "reading {}/{} files · {} records",
                i + 1,
                files.len(),
                stats.records_read
            )
        });
    });

    progress.update(|| format!("ordering {} events", events.len()));
    events.sort_by_key(|e| e.meta.time);
    let mut seen = HashSet::with_capacity(events.len());
    let mut duplicates = 0u64;
    let mut engine = Engine::new(config.detect.clone())?;
    let mut episodes = Episodes::new(chrono::Duration::hours(config.alert.episode_window_hours));
    let mut findings = Vec::new();
    let total = events.len();
    for (i, event) in events.iter().enumerate() {
        if !seen.insert(event.dedup_key()) {
            duplicates += 1;
            continue;
        }
        on_event(event).context("cannot write the events file")?;
        engine.process(event, &mut findings);
        for f in findings.drain(..) {
            episodes.add(f);
        }
        if i % 4096 == 0 {
            progress.update(|| format!("detecting {}%", i * 100 / total.max(1)));
        }
    }
    progress.finish();
    let names = config.tenant_names();
    let mut alerts = episodes.into_alerts();
    for alert in &mut alerts {
        alert.tenant_name = names.get(&alert.tenant_id).cloned();
    }
    let state = engine.state();
    Ok(Replayed {
        stats,
        duplicates,
        events_processed: engine.events_seen(),
        alerts,
        tracked_principals: state.principals.len(),
        state_bytes: state.approx_bytes(),
    })
}

/// Reads `files` on all available cores and hands each file's items to `take`, in file order.
fn read_files_in_parallel(
    files: &[std::path::PathBuf],
    opts: &ReadOptions,
    take: &mut dyn FnMut(usize, Vec<Item>, u64),
) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(files.len())
        .max(1);
    let next = AtomicUsize::new(0);
    let (tx, rx) = std::sync::mpsc::channel::<(usize, Vec<Item>, u64)>();
    std::thread::scope(|scope| {
        for _ in 0..workers {
            let tx = tx.clone();
            let next = &next;
            scope.spawn(move || {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(file) = files.get(i) else { break };
                    let mut items = Vec::new();
                    let bytes = read_file(file, opts, &mut |item| items.push(item));
                    if tx.send((i, items, bytes)).is_err() {
                        break;
                    }
                }
            });
        }
        drop(tx);
        let mut pending = std::collections::BTreeMap::new();
        let mut expected = 0;
        for (i, items, bytes) in rx {
            pending.insert(i, (items, bytes));
            while let Some((items, bytes)) = pending.remove(&expected) {
                take(expected, items, bytes);
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
