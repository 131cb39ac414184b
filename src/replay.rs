//! `entrawatch replay`: read exported logs, order them by event time, drop repeats, detect, and
//! write alert records; a summary on standard error and, on request, as JSON.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context as _, bail};
use entrawatch_alert::AlertRecord;
use entrawatch_alert::replay::{Replayed, replay_files};
use entrawatch_detect::Severity;
use entrawatch_ingest::{Event, IngestStats, ReadOptions, Rejected, value::is_guid, walk};
use serde::Serialize;

use crate::cli::{EXIT_INCOMPLETE, ReplayArgs};
use crate::progress::Progress;

/// The run summary (`--summary-json`): what reading counted, then what detection made of it.
#[derive(Debug, Serialize)]
pub struct Summary {
    #[serde(flatten)]
    pub read: IngestStats,
    pub duplicates: u64,
    pub events_processed: u64,
    pub alerts: u64,
    pub alerts_by_rule: BTreeMap<String, u64>,
    pub alerts_by_severity: BTreeMap<String, u64>,
    pub ignored_files: Vec<String>,
    pub elapsed_seconds: f64,
    pub records_per_second: f64,
    pub megabytes_per_second: f64,
    pub tracked_principals: u64,
    pub state_bytes: u64,
    pub state_bytes_per_principal: u64,
    /// Sorted runs written to disk because the input did not fit `--memory-budget` (0: it fitted),
    /// and their bytes.
    pub spilled_runs: u64,
    pub spilled_bytes: u64,
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
        Some(path) => entrawatch_config::load(path)?,
        None => entrawatch_config::FileConfig::default(),
    };
    // A path given that does not exist is a mistake in the command, not input to go on without.
    for path in &args.paths {
        if path.as_os_str() != "-"
            && let Err(e) = std::fs::symlink_metadata(path)
            && e.kind() == std::io::ErrorKind::NotFound
        {
            bail!("{}: {e}", path.display());
        }
    }
    let walked = walk(&args.paths);
    if walked.files.is_empty() {
        let errors: Vec<String> = walked.errors().map(ToString::to_string).collect();
        bail!(
            "no log files (.json, .jsonl, .ndjson, .csv, .log) under {}{}",
            display_paths(&args.paths),
            if errors.is_empty() {
                String::new()
            } else {
                format!(":\n  {}", errors.join("\n  "))
            }
        );
    }
    let files = &walked.files;
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
    let mut replay_config = config.replay_config();
    replay_config.order = entrawatch_ingest::ordered::OrderOptions {
        memory_budget: args.memory_budget,
        spill_dir: args.spill_dir.clone(),
    };
    replay_config.extra_rules =
        crate::sigma::rules(config.sigma.as_ref(), &args.sigma, args.quiet)?;
    let replayed = replay_files(
        files,
        &opts,
        &replay_config,
        &mut |message| progress.update(message),
        &mut on_reject,
        &mut on_event,
    );
    progress.finish();
    let replayed = replayed?;
    if let Some(e) = reject_error {
        return Err(e).context("cannot write the rejects file");
    }
    if let Some(mut out) = rejects_out {
        out.flush().context("cannot write the rejects file")?;
    }
    if let Some(mut out) = events_out {
        out.flush().context("cannot write the events file")?;
    }
    write_alerts(&mut alerts_out, &replayed.alerts).context("cannot write alerts")?;
    let mut summary = summarize(replayed, &walked.ignored, started.elapsed().as_secs_f64());
    summary.read.count_walk(&walked);
    if let Some(path) = &args.summary_json {
        let text = serde_json::to_string_pretty(&summary)?;
        std::fs::write(path, text + "\n")
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    if !args.quiet {
        eprint!("{}", render_summary(&summary));
    }
    if args.strict && (summary.read.parse_errors > 0 || summary.read.path_errors > 0) {
        return Ok(ExitCode::from(EXIT_INCOMPLETE));
    }
    Ok(ExitCode::SUCCESS)
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

fn summarize(replayed: Replayed, ignored: &[std::path::PathBuf], elapsed: f64) -> Summary {
    let mut alerts_by_rule = BTreeMap::new();
    let mut alerts_by_severity = BTreeMap::new();
    for a in &replayed.alerts {
        *alerts_by_rule.entry(a.rule.to_owned()).or_insert(0) += 1;
        *alerts_by_severity
            .entry(a.severity.as_str().to_owned())
            .or_insert(0) += 1;
    }
    let secs = elapsed.max(1e-9);
    let read = replayed.stats;
    Summary {
        records_per_second: read.records_read as f64 / secs,
        megabytes_per_second: read.bytes_read as f64 / 1e6 / secs,
        read,
        duplicates: replayed.duplicates,
        events_processed: replayed.events_processed,
        alerts: replayed.alerts.len() as u64,
        alerts_by_rule,
        alerts_by_severity,
        ignored_files: ignored.iter().map(|p| p.display().to_string()).collect(),
        elapsed_seconds: elapsed,
        tracked_principals: replayed.tracked_principals as u64,
        state_bytes: replayed.state_bytes as u64,
        state_bytes_per_principal: replayed
            .state_bytes
            .checked_div(replayed.tracked_principals)
            .unwrap_or(0) as u64,
        spilled_runs: replayed.spilled_runs as u64,
        spilled_bytes: replayed.spilled_bytes,
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
    out += &format!(
        "entrawatch replay: {} records from {} files ({:.1} MB) in {:.2} s · {:.0} records/s · {:.1} MB/s\n",
        s.read.records_read,
        s.read.files_read,
        s.read.bytes_read as f64 / 1e6,
        s.elapsed_seconds,
        s.records_per_second,
        s.megabytes_per_second
    );
    out += &format!("  by kind:    {}\n", join_counts(&s.read.records_by_kind));
    out += &format!("  by shape:   {}\n", join_counts(&s.read.records_by_shape));
    if !s.read.skipped_by_category.is_empty() {
        out += &format!(
            "  skipped:    {} (categories entrawatch does not read)\n",
            join_counts(&s.read.skipped_by_category)
        );
    }
    out += &format!("  duplicates: {} dropped\n", s.duplicates);
    if s.spilled_runs > 0 {
        out += &format!(
            "  ordering:   past the memory budget, {} sorted runs ({:.1} MB) written to disk and merged\n",
            s.spilled_runs,
            s.spilled_bytes as f64 / 1e6
        );
    }
    out += &format!("  parse errors: {}\n", s.read.parse_errors);
    if s.read.no_event_time > 0 {
        out += &format!(
            "    {} of them with no event time (records, or CSV files with no time column)\n",
            s.read.no_event_time
        );
    }
    for e in &s.read.first_errors {
        out += &format!("    {e}\n");
    }
    if s.read.parse_errors > s.read.first_errors.len() as u64 {
        out += &format!(
            "    ... and {} more (use --rejects FILE to keep them all)\n",
            s.read.parse_errors - s.read.first_errors.len() as u64
        );
    }
    if !s.read.paths_skipped.is_empty() {
        out += &format!(
            "  paths passed over: {}\n",
            join_counts(&s.read.paths_skipped)
        );
    }
    if s.read.path_errors > 0 {
        out += &format!("  paths that could not be read: {}\n", s.read.path_errors);
        for e in &s.read.first_path_errors {
            out += &format!("    {e}\n");
        }
        if s.read.path_errors > s.read.first_path_errors.len() as u64 {
            out += &format!(
                "    ... and {} more\n",
                s.read.path_errors - s.read.first_path_errors.len() as u64
            );
        }
    }
    if !s.ignored_files.is_empty() {
        out += &format!(
            "  ignored {} files without a log extension (first: {})\n",
            s.ignored_files.len(),
            s.ignored_files[0]
        );
    }
    if !s.read.empty_files.is_empty() {
        out += &format!(
            "  {} empty files (first: {})\n",
            s.read.empty_files.len(),
            s.read.empty_files[0]
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
    // Sigma rule ids (`sigma:` and a GUID) are longer than native ones: the column fits the longest.
    let width = (s.alerts_by_rule.keys().map(String::len).max())
        .unwrap_or(0)
        .max(34);
    for (rule, n) in &s.alerts_by_rule {
        out += &format!("    {rule:<width$} {n}\n");
    }
    out += &format!(
        "  state: {} principals tracked, {:.1} KB ({} bytes per principal)\n",
        s.tracked_principals,
        s.state_bytes as f64 / 1e3,
        s.state_bytes_per_principal
    );
    out
}
