//! The `file` source: a drop folder (or one file) of exported logs, read with the same parsers as
//! `replay`, for backfill, for replays into a live service and for the bundled demo.
//!
//! Files are read once each. Files found together form a *generation*: their events are merged in
//! event-time order (ties in the order of the records' identities), exactly as `replay` orders
//! them, and sent in batches.
//! A file is taken only once its size has stopped changing between two scans (or it is older than
//! [`SETTLE_SECS`]), so a file still being copied in is not read half-written.
//!
//! Position (JSON): `{"done": [paths...], "generation": {"files": [paths...], "emitted": n}}`: the
//! files fully behind us, and the generation in progress with how many of its items went out. On a
//! restart the generation is read again and the first `emitted` items are skipped, so nothing is
//! lost and nothing is sent twice past the position.
//!
//! With `follow = false` the source stops once everything present at start has been read and
//! reported durable (tests, one-shot backfills); with `follow = true` (the default) it keeps
//! scanning every `poll_secs`.
//!
//! The folder is walked with [`crate::walk`], so a link loop, a named pipe or a deep tree never
//! stalls it. A file or folder that cannot be read is logged (once per path), counted in
//! `entrawatch_source_errors_total{source,reason}`, and passed over while everything else is read;
//! a `follow = false` source that met one ends with [`SourceError::Incomplete`], so the service
//! can say the input was not all read.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::reader::{self, Item, ReadOptions};
use crate::source::{
    Batch, CommitTracker, LaneMark, MAX_BATCH_ITEMS, Source, SourceContext, SourceError,
    SourceFuture, drain_commits,
};
use crate::walk::{SkippedPath, walk};

/// A file whose size has not changed for this long is taken without waiting for a second scan.
pub const SETTLE_SECS: u64 = 2;
/// Most bytes of files merged into one generation (larger backlogs become several generations).
pub const MAX_GENERATION_BYTES: u64 = 512 * 1024 * 1024;

fn default_poll() -> u64 {
    5
}

fn default_follow() -> bool {
    true
}

/// `[[sources]] type = "file"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub name: String,
    /// A folder (read recursively) or one file.
    pub path: PathBuf,
    /// Seconds between scans for new files.
    #[serde(default = "default_poll")]
    pub poll_secs: u64,
    /// Keep watching for new files (`false`: stop after what is there at start).
    #[serde(default = "default_follow")]
    pub follow: bool,
    /// Tenant GUID for records that carry none.
    #[serde(default)]
    pub tenant: Option<String>,
}

impl FileConfig {
    pub fn validate(&self, path: &str) -> Vec<String> {
        let mut problems = Vec::new();
        if self.poll_secs == 0 {
            problems.push(format!("{path}.poll_secs: must be at least 1"));
        }
        if let Some(t) = &self.tenant
            && !crate::value::is_guid(t)
        {
            problems.push(format!("{path}.tenant: {t:?} is not a tenant GUID"));
        }
        if !self.path.exists() {
            problems.push(format!(
                "{path}.path: {} does not exist",
                self.path.display()
            ));
        }
        problems
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Generation {
    files: Vec<String>,
    emitted: usize,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct FilePosition {
    done: BTreeSet<String>,
    #[serde(default)]
    generation: Option<Generation>,
}

/// The running source.
#[derive(Debug)]
pub struct FileSource {
    config: FileConfig,
}

impl FileSource {
    pub fn new(config: FileConfig) -> FileSource {
        FileSource { config }
    }
}

impl Source for FileSource {
    fn kind(&self) -> &'static str {
        "file"
    }

    fn run(self: Box<Self>, ctx: SourceContext) -> SourceFuture {
        Box::pin(run(self.config, ctx))
    }
}

async fn run(config: FileConfig, mut ctx: SourceContext) -> Result<(), SourceError> {
    let mut position: FilePosition = match &ctx.resume {
        Some(v) => serde_json::from_value(v.clone()).unwrap_or_else(|e| {
            tracing::warn!(source = %ctx.name, error = %e, "file source position unreadable, starting over");
            FilePosition::default()
        }),
        None => FilePosition::default(),
    };
    let mut opts = ctx.read.clone();
    if config.tenant.is_some() {
        opts.tenant.clone_from(&config.tenant);
    }
    let mut tracker = CommitTracker::default();
    let mut sizes: BTreeMap<String, u64> = BTreeMap::new();
    let mut unread = Unread::default();
    let _ = ctx.ready.send(true);
    loop {
        if *ctx.shutdown.borrow() {
            break;
        }
        while let Ok(c) = ctx.committed.try_recv() {
            tracker.on_commit(c);
        }
        let (generation, unsettled) = match position.generation.take() {
            Some(g) => (Some(g), false),
            None => {
                let (generation, unsettled, skipped) =
                    next_generation(&config.path, &position.done, &mut sizes);
                for s in &skipped {
                    unread.skipped(&ctx, s);
                }
                (generation, unsettled)
            }
        };
        let Some(generation) = generation else {
            if !config.follow && !unsettled {
                break;
            }
            let mut shutdown = ctx.shutdown.clone();
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(config.poll_secs)) => {}
                _ = shutdown.changed() => {}
            }
            continue;
        };
        position = emit_generation(
            &config,
            &mut ctx,
            &opts,
            position,
            generation,
            &mut tracker,
            &mut unread,
        )
        .await?;
    }
    drain_commits(
        &mut tracker,
        &mut ctx.committed,
        Duration::from_secs(30),
        |_| {},
    )
    .await;
    // A source that keeps watching reports what it cannot read as it goes (log and metric); one
    // that reads what it was given and ends says so in how it ends.
    match unread.first {
        Some(first) if !config.follow => Err(SourceError::Incomplete {
            source_name: config.name.clone(),
            count: unread.errors,
            first,
        }),
        _ => Ok(()),
    }
}

/// What the source passed over, each path logged and counted once.
#[derive(Debug, Default)]
struct Unread {
    reported: BTreeSet<(String, &'static str)>,
    /// Paths that could not be read.
    errors: u64,
    /// The first of them, as `path: reason`.
    first: Option<String>,
}

impl Unread {
    /// A path the walk passed over.
    fn skipped(&mut self, ctx: &SourceContext, s: &SkippedPath) {
        let reason = s.reason.as_str();
        if !self.reported.insert((s.path.display().to_string(), reason)) {
            return;
        }
        if s.reason.is_error() {
            self.error(ctx, reason, s.to_string());
        } else {
            tracing::warn!(
                source = %ctx.name,
                path = %s.path.display(),
                reason,
                detail = %s.reason,
                "path passed over"
            );
            ctx.metrics
                .paths_skipped
                .with_label_values(&[&ctx.name, reason])
                .inc();
        }
    }

    /// A file that could not be read (it is also handed on as a rejected file).
    fn unreadable_file(&mut self, ctx: &SourceContext, path: &Path, e: &std::io::Error) {
        if self
            .reported
            .insert((path.display().to_string(), "unreadable"))
        {
            self.error(
                ctx,
                "unreadable",
                format!("{}: cannot read: {e}", path.display()),
            );
        }
    }

    fn error(&mut self, ctx: &SourceContext, reason: &'static str, message: String) {
        tracing::error!(source = %ctx.name, reason, error = %message, "input could not be read");
        ctx.metrics
            .source_errors
            .with_label_values(&[&ctx.name, reason])
            .inc();
        self.errors += 1;
        self.first.get_or_insert(message);
    }
}

/// Files not read yet whose size has settled, up to [`MAX_GENERATION_BYTES`], whether files not
/// read yet are still settling, and the paths the walk passed over.
fn next_generation(
    root: &Path,
    done: &BTreeSet<String>,
    sizes: &mut BTreeMap<String, u64>,
) -> (Option<Generation>, bool, Vec<SkippedPath>) {
    let walked = walk(&[root.to_path_buf()]);
    let files = walked.files;
    let mut unsettled = false;
    let mut picked = Vec::new();
    let mut bytes = 0u64;
    for file in files {
        let name = file.display().to_string();
        if done.contains(&name) {
            continue;
        }
        let Ok(meta) = std::fs::metadata(&file) else {
            continue;
        };
        let len = meta.len();
        let old = meta
            .modified()
            .ok()
            .and_then(|m| SystemTime::now().duration_since(m).ok())
            .is_some_and(|age| age.as_secs() >= SETTLE_SECS);
        let settled = old || sizes.get(&name) == Some(&len);
        sizes.insert(name.clone(), len);
        if !settled {
            unsettled = true;
            continue;
        }
        if !picked.is_empty() && bytes + len > MAX_GENERATION_BYTES {
            break;
        }
        bytes += len;
        picked.push(name);
    }
    let generation = (!picked.is_empty()).then_some(Generation {
        files: picked,
        emitted: 0,
    });
    (generation, unsettled, walked.skipped)
}

/// Reads a generation, orders it like `replay` does and sends what is past `emitted`.
async fn emit_generation(
    config: &FileConfig,
    ctx: &mut SourceContext,
    opts: &ReadOptions,
    mut position: FilePosition,
    mut generation: Generation,
    tracker: &mut CommitTracker,
    unread: &mut Unread,
) -> Result<FilePosition, SourceError> {
    let started = Instant::now();
    let files: Vec<PathBuf> = generation.files.iter().map(PathBuf::from).collect();
    let read_opts = opts.clone();
    let (items, failures) = tokio::task::spawn_blocking(move || read_in_order(&files, &read_opts))
        .await
        .map_err(|e| SourceError::Fatal {
            source_name: config.name.clone(),
            message: format!("reading files failed: {e}"),
        })?;
    for (path, e) in &failures {
        unread.unreadable_file(ctx, path, e);
    }
    let total = items.len();
    tracing::info!(
        source = %ctx.name,
        files = generation.files.len(),
        items = total,
        resume_at = generation.emitted,
        "reading files"
    );
    let mut rest = items.into_iter().skip(generation.emitted).peekable();
    while rest.peek().is_some() {
        if *ctx.shutdown.borrow() {
            position.generation = Some(generation);
            return Ok(position);
        }
        let chunk: Vec<Item> = rest.by_ref().take(MAX_BATCH_ITEMS).collect();
        generation.emitted += chunk.len();
        let finished = generation.emitted >= total;
        let mut next = position.clone();
        if finished {
            next.done.extend(generation.files.iter().cloned());
            next.generation = None;
        } else {
            next.generation = Some(generation.clone());
        }
        ctx.metrics.count_items(&ctx.name, &chunk);
        // A generation goes out in event-time order: nothing older than this chunk's newest
        // event will come from it (a later generation may still bring older, late, events).
        let newest = chunk
            .iter()
            .filter_map(|i| match i {
                Item::Event(e) => Some(e.meta.time),
                _ => None,
            })
            .max();
        let batch = Batch {
            source: Arc::clone(&ctx.name),
            seq: tracker.next_batch(),
            items: chunk,
            position: serde_json::to_value(&next).unwrap_or(Value::Null),
            received_at: started,
            lanes: vec![LaneMark {
                lane: "files".to_owned(),
                complete_to: newest,
                backlog: !finished,
            }],
            item_lanes: Vec::new(),
            notices: Vec::new(),
        };
        if ctx.out.send(batch).await.is_err() {
            return Err(SourceError::Closed(ctx.name.to_string()));
        }
        while let Ok(c) = ctx.committed.try_recv() {
            tracker.on_commit(c);
        }
        if finished {
            return Ok(next);
        }
    }
    position.done.extend(generation.files);
    position.generation = None;
    Ok(position)
}

/// A file that could not be read, and why.
type ReadFailure = (PathBuf, std::io::Error);

/// Every item of `files`: rejects and skips first (in file order), then events in event-time
/// order ([`crate::align::order`]). Deterministic, so a restart skips exactly what was sent. Also
/// the files that could not be read (each is among the rejects too).
fn read_in_order(files: &[PathBuf], opts: &ReadOptions) -> (Vec<Item>, Vec<ReadFailure>) {
    // Files are parsed on every core, then taken in file order: the result is the same as a
    // sequential read.
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(files.len().max(1));
    let per_file: Vec<(Vec<Item>, Option<ReadFailure>)> = std::thread::scope(|scope| {
        let chunks: Vec<&[PathBuf]> = files.chunks(files.len().div_ceil(threads).max(1)).collect();
        let handles: Vec<_> = chunks
            .into_iter()
            .map(|chunk| {
                scope.spawn(move || {
                    chunk
                        .iter()
                        .map(|file| {
                            let mut items = Vec::new();
                            let read = reader::read_file(file, opts, &mut |item| items.push(item));
                            (items, read.err().map(|e| (file.clone(), e)))
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect()
    });
    let mut other = Vec::new();
    let mut events = Vec::new();
    let mut failures = Vec::new();
    for (items, failure) in per_file {
        failures.extend(failure);
        for item in items {
            match item {
                Item::Event(e) => events.push(e),
                other_item => other.push(other_item),
            }
        }
    }
    // Stable: exact repeats keep file order.
    events.sort_by(|a, b| crate::align::order(a, b));
    other.extend(events.into_iter().map(Item::Event));
    (other, failures)
}
