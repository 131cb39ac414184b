//! A whole set of files in event-time order, for `entrawatch replay`: every file read on every
//! core, the events ordered as the live service's aligner orders them, exact repeats marked, and
//! the events handed out one at a time, in a bounded amount of memory.
//!
//! [`read_ordered`] reads the files in parallel and takes their results in file order, so counts,
//! rejects and input positions are exactly those of a sequential read. Events are put in order of
//! time, then record identity ([`crate::align::order`]), then input position: the order never
//! depends on which file an event came from, and exact repeats keep input order.
//!
//! **Repeats.** An event repeats an earlier one when both have the same event time and the same
//! identity ([`Event::dedup_key`]: tenant, kind, id and version): the same record read twice (two
//! overlapping exports, a page fetched again, Graph and Event Hub copies). In this order such
//! events are next to each other, so finding them needs neither a set of keys nor a second pass,
//! whatever the size of the input. Two records with one id and different times are both kept:
//! they are not the same record. The live service drops the same repeats
//! (`entrawatch_alert::stage::AlertStage::first_sight`, within its de-duplication window).
//!
//! **Memory.** The events read are held while their estimated size stays within
//! [`OrderOptions::memory_budget`]; an input that fits is ordered in memory, as one sort. Past the
//! budget, the events held are sorted and written to disk as a run ([`spill`]), and reading goes
//! on; at the end the runs (and the last events, still in memory) are merged. Either way the
//! events come out in the same order with the same repeats marked (a test compares them).
//!
//! [`Ordered::for_each`] hands each event out in that order. From memory, a chunk at a time whose
//! events are first read through ([`warm`]), each freed on another thread once handed back; from
//! runs, as the merge takes them.

mod spill;

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Condvar, Mutex};

use chrono::{DateTime, Utc};

use crate::model::Event;
use crate::model::{Body, Text};
use crate::reader::{Item, ReadOptions, Rejected, read_file};
use crate::stats::IngestStats;

use spill::{Run, RunReader, SpillDir};

/// The memory a replay's events may take before sorted runs go to disk, unless told otherwise.
pub const DEFAULT_MEMORY_BUDGET: u64 = 1 << 30;

/// How [`read_ordered`] holds the events it orders.
#[derive(Debug, Clone)]
pub struct OrderOptions {
    /// Estimated bytes of events held in memory before they are sorted and written to disk.
    /// The files being read at the time (one per core) come on top of it.
    pub memory_budget: u64,
    /// Where the runs' folder is made (the system's temporary folder when `None`).
    pub spill_dir: Option<PathBuf>,
}

impl Default for OrderOptions {
    fn default() -> Self {
        OrderOptions {
            memory_budget: DEFAULT_MEMORY_BUDGET,
            spill_dir: None,
        }
    }
}

/// A size in bytes: a whole number, optionally followed by K, M or G (powers of 1024; `KB`,
/// `KiB`, ... read the same way).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (number, unit) = t.split_at(digits);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a size (a number, optionally with K, M or G)"))?;
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        other => return Err(format!("{text:?}: unknown unit {other:?} (K, M or G)")),
    };
    let bytes = number
        .checked_mul(1u64 << shift)
        .ok_or_else(|| format!("{text:?} is too large"))?;
    if bytes == 0 {
        return Err(format!("{text:?}: the budget must be above 0"));
    }
    Ok(bytes)
}

/// Runs could not be written or read back (a full disk, a folder that cannot be made).
#[derive(Debug, thiserror::Error)]
#[error("replay's sorted runs on disk: {0}")]
pub struct SpillError(#[from] pub std::io::Error);

/// A set of files read and put in event-time order.
#[derive(Debug)]
pub struct Ordered {
    held: Held,
    len: usize,
    /// What reading counted.
    pub stats: IngestStats,
    /// Wall seconds spent reading and parsing (on every core), and writing runs.
    pub read_seconds: f64,
    /// Wall seconds spent ordering and finding the repeats (in memory; a merge of runs orders
    /// while it hands events out).
    pub order_seconds: f64,
    /// Runs written to disk (0 when the input fitted the budget), and their bytes.
    pub spilled_runs: usize,
    pub spilled_bytes: u64,
}

#[derive(Debug)]
enum Held {
    /// Every event in memory.
    Memory {
        /// Every event read, in input order; taken out as it is handed out.
        events: Vec<Option<Box<Event>>>,
        /// (event time, index into `events`) in the order events are handed out.
        order: Vec<(DateTime<Utc>, u32)>,
        /// Per position of `order`: the event repeats an earlier one.
        repeated: Vec<bool>,
    },
    /// Sorted runs on disk, and the last events read, sorted, in memory.
    Runs {
        dir: SpillDir,
        runs: Vec<Run>,
        #[allow(clippy::vec_box)]
        last: Vec<(u64, Box<Event>)>,
    },
}

/// Reads `files` (counting, handing rejects to `on_reject` in file order), orders their events
/// and marks the repeats, within `order.memory_budget`. `progress` is given a message now and then.
pub fn read_ordered(
    files: &[PathBuf],
    opts: &ReadOptions,
    order: &OrderOptions,
    progress: &mut dyn FnMut(&dyn Fn() -> String),
    on_reject: &mut dyn FnMut(&Rejected),
) -> Result<Ordered, SpillError> {
    let started = std::time::Instant::now();
    let total_bytes: u64 = (files.iter())
        .filter_map(|f| std::fs::metadata(f).ok())
        .map(|m| m.len())
        .sum();
    let mut stats = IngestStats::default();
    let mut events: Vec<Option<Box<Event>>> = Vec::new();
    // Input position of `events[0]`, and the estimated bytes `events` takes.
    let mut base = 0u64;
    let mut held = 0u64;
    let mut runs_sent = 0usize;
    let mut spiller_gone = false;
    // Estimated bytes of the events handed to the spiller and not yet written and freed.
    let in_flight = AtomicU64::new(0);
    // The spiller has stopped (its runs are done, or it failed).
    let spiller_done = AtomicBool::new(false);
    let spilled = std::thread::scope(|scope| {
        // Runs are sorted, written and freed on their own thread while reading goes on, each
        // event freed once written. The first run is the whole budget; after it, runs are half
        // the budget. Reading waits whenever the events it holds and those not yet written would
        // together go past the budget: while the first run is sorted and at its start, then as
        // the writing frees room.
        let (to_spill, spill_rx) = std::sync::mpsc::sync_channel::<(u64, u64, Events)>(0);
        let (in_flight, spiller_done) = (&in_flight, &spiller_done);
        let spiller = scope.spawn(move || -> std::io::Result<(Option<SpillDir>, Vec<Run>)> {
            struct Done<'a>(&'a AtomicBool);
            impl Drop for Done<'_> {
                fn drop(&mut self) {
                    self.0.store(true, Ordering::Release);
                }
            }
            let _done = Done(spiller_done);
            let mut dir = None;
            let mut runs = Vec::new();
            for (base, estimate, mut events) in spill_rx {
                runs.push(spill(
                    &mut dir,
                    order,
                    base,
                    &mut events,
                    estimate,
                    in_flight,
                )?);
            }
            Ok((dir, runs))
        });
        read_files_in_parallel(files, opts, &mut |i, file| {
            for r in &file.rejects {
                on_reject(r);
            }
            stats.merge(file.stats);
            if !spiller_gone {
                held += file.estimate;
                events.extend(file.events.into_iter().map(Some));
                let threshold = if runs_sent == 0 {
                    order.memory_budget
                } else {
                    order.memory_budget / 2
                };
                if held > threshold {
                    let full = std::mem::take(&mut events);
                    let count = full.len() as u64;
                    in_flight.fetch_add(held, Ordering::AcqRel);
                    // A spiller that stopped (its error is taken below) takes nothing more.
                    spiller_gone = to_spill.send((base, held, full)).is_err();
                    runs_sent += 1;
                    base += count;
                    held = 0;
                }
                while held + in_flight.load(Ordering::Acquire) > order.memory_budget
                    && !spiller_done.load(Ordering::Acquire)
                {
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
            }
            progress(&|| {
                let mut line = format!(
                    "reading {}/{} files · {} records · {} of {} MB",
                    i + 1,
                    files.len(),
                    stats.records_read,
                    stats.bytes_read / 1_000_000,
                    total_bytes / 1_000_000
                );
                let seconds = started.elapsed().as_secs_f64();
                if stats.bytes_read > 0 && total_bytes > stats.bytes_read && seconds > 1.0 {
                    let left = (total_bytes - stats.bytes_read) as f64;
                    let eta = seconds * left / stats.bytes_read as f64;
                    line.push_str(&format!(" · about {eta:.0} s left"));
                }
                if runs_sent > 0 {
                    line.push_str(&format!(" · {runs_sent} sorted runs to disk"));
                }
                line
            });
        });
        drop(to_spill);
        spiller
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    });
    let (dir, mut runs) = spilled.map_err(SpillError)?;
    let read_seconds = started.elapsed().as_secs_f64();
    progress(&|| format!("ordering {} events", base as usize + events.len()));
    let len = base as usize + events.len();
    let held = if let Some(mut dir) = dir {
        merge_down(&mut dir, &mut runs)?;
        let sorted = sorted_positions(&events);
        let last = sorted
            .into_iter()
            .filter_map(|i| Some((base + u64::from(i), events[i as usize].take()?)))
            .collect();
        Held::Runs { dir, runs, last }
    } else {
        let (order, repeated) = order_in_memory(&events);
        Held::Memory {
            events,
            order,
            repeated,
        }
    };
    let (spilled_runs, spilled_bytes) = match &held {
        Held::Runs { dir, .. } => (dir.runs(), dir.bytes),
        Held::Memory { .. } => (0, 0),
    };
    Ok(Ordered {
        held,
        len,
        stats,
        read_seconds,
        order_seconds: started.elapsed().as_secs_f64() - read_seconds,
        spilled_runs,
        spilled_bytes,
    })
}

/// Events held in memory, in input order (taken out as they are handed out).
#[allow(clippy::vec_box)]
type Events = Vec<Option<Box<Event>>>;

/// Sorts `events` (input positions from `base`) and writes them as the next run, making the
/// runs' folder first if need be. Each event is freed once written, and `in_flight` told, so that
/// reading can go on in the room it leaves; by the end the run's whole `estimate` is taken off.
fn spill(
    dir: &mut Option<SpillDir>,
    order: &OrderOptions,
    base: u64,
    events: &mut Events,
    estimate: u64,
    in_flight: &AtomicU64,
) -> std::io::Result<Run> {
    // Whatever happens below, the run's estimate leaves `in_flight` (the events go with `events`).
    struct Release<'a> {
        in_flight: &'a AtomicU64,
        left: u64,
    }
    impl Drop for Release<'_> {
        fn drop(&mut self) {
            self.in_flight.fetch_sub(self.left, Ordering::AcqRel);
        }
    }
    let mut release = Release {
        in_flight,
        left: estimate,
    };
    if dir.is_none() {
        *dir = Some(SpillDir::create(order.spill_dir.as_deref())?);
    }
    let dir = dir.as_mut().expect("made above");
    let sorted = sorted_positions(events);
    let count = sorted.len().max(1) as u64;
    let mut w = dir.start_run()?;
    for (k, &i) in sorted.iter().enumerate() {
        if let Some(event) = events[i as usize].take() {
            w.push(base + u64::from(i), &event)?;
        }
        if k % RELEASE_EVERY == RELEASE_EVERY - 1 {
            // The share of the estimate of the events written so far, less what was released.
            let written = (u128::from(estimate) * (k as u128 + 1) / u128::from(count)) as u64;
            let step = written - (estimate - release.left);
            in_flight.fetch_sub(step, Ordering::AcqRel);
            release.left -= step;
        }
    }
    let run = dir.finish_run(w)?;
    drop(release);
    Ok(run)
}

/// Events a run writes (and frees) between two updates of the room left in the budget.
const RELEASE_EVERY: usize = 1024;

/// Indexes of `events` in the replay's order: event time, identity, index.
fn sorted_positions(events: &[Option<Box<Event>>]) -> Vec<u32> {
    let mut sorted: Vec<u32> = (0..events.len() as u32).collect();
    sorted.sort_unstable_by(|&a, &b| {
        let event = |i: u32| events[i as usize].as_deref();
        event(a)
            .zip(event(b))
            .map_or(std::cmp::Ordering::Equal, |(x, y)| {
                crate::align::order(x, y)
            })
            .then(a.cmp(&b))
    });
    sorted
}

/// Whether `b` repeats `a`: the same record (identity and event time). In the replay's order a
/// record's repeats come right after it.
fn same_record(a: &Event, b: &Event) -> bool {
    a.meta.time == b.meta.time && a.dedup_key_ref() == b.dedup_key_ref()
}

/// The order of events held in memory, and which of them repeat the one before.
#[allow(clippy::type_complexity)]
fn order_in_memory(events: &[Option<Box<Event>>]) -> (Vec<(DateTime<Utc>, u32)>, Vec<bool>) {
    // (time, position) is unique, so an unstable sort of it is the stable sort by time.
    let mut order: Vec<(DateTime<Utc>, u32)> = events
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
    let mut repeated = vec![false; order.len()];
    // Ties in time go in the order of the records' identities, as the live service's aligner
    // orders them; exact repeats stay in input order, next to each other.
    let mut at = 0;
    for tie in order.chunk_by_mut(|a, b| a.0 == b.0) {
        if tie.len() > 1 {
            let key = |i: u32| events[i as usize].as_ref().map(|e| e.dedup_key_ref());
            tie.sort_by(|a, b| key(a.1).cmp(&key(b.1)).then(a.1.cmp(&b.1)));
            for k in 1..tie.len() {
                let event = |i: u32| events[i as usize].as_deref();
                repeated[at + k] = event(tie[k - 1].1)
                    .zip(event(tie[k].1))
                    .is_some_and(|(a, b)| same_record(a, b));
            }
        }
        at += tie.len();
    }
    (order, repeated)
}

impl Ordered {
    /// Events read, repeats included.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Hands every event to `each` in order, with its position and whether it repeats an earlier
    /// one; stops at the first error (of `each`, or of reading a run back).
    pub fn for_each<E: From<SpillError>>(
        self,
        each: &mut dyn FnMut(usize, &Event, bool) -> Result<(), E>,
    ) -> Result<(), E> {
        match self.held {
            Held::Memory {
                mut events,
                order,
                repeated,
            } => for_each_in_memory(&mut events, &order, &repeated, each),
            Held::Runs { dir, runs, last } => {
                let merged = merge(&runs, last, each);
                drop(dir);
                merged
            }
        }
    }
}

/// A run's next event, in the merge's heap: the smallest in the replay's order comes out first.
struct Head {
    event: Box<Event>,
    position: u64,
    /// Which source it came from, to take the next from.
    source: usize,
}

impl PartialEq for Head {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == std::cmp::Ordering::Equal
    }
}
impl Eq for Head {}
impl PartialOrd for Head {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Head {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        crate::align::order(&self.event, &other.event).then(self.position.cmp(&other.position))
    }
}

/// Where the merge takes events from: a run on disk, or the events still in memory.
enum Source {
    Disk(RunReader),
    Memory(std::vec::IntoIter<(u64, Box<Event>)>),
}

impl Source {
    fn next(&mut self) -> Result<Option<(u64, Box<Event>)>, SpillError> {
        match self {
            Source::Disk(r) => Ok(r.next_event()?),
            Source::Memory(m) => Ok(m.next()),
        }
    }
}

/// Runs open at once in a merge. Past it, the earliest runs are first merged into one (a run of
/// runs), so a small budget over a large input needs neither thousands of open files nor their
/// read buffers.
pub(crate) const MAX_FAN_IN: usize = 64;

/// Several sorted sources merged into one order.
struct Merger {
    sources: Vec<Source>,
    heap: BinaryHeap<Reverse<Head>>,
}

impl Merger {
    fn new(mut sources: Vec<Source>) -> Result<Merger, SpillError> {
        let mut heap = BinaryHeap::with_capacity(sources.len());
        for (source, s) in sources.iter_mut().enumerate() {
            if let Some((position, event)) = s.next()? {
                heap.push(Reverse(Head {
                    event,
                    position,
                    source,
                }));
            }
        }
        Ok(Merger { sources, heap })
    }

    /// The next event in order, with its input position.
    fn next(&mut self) -> Result<Option<(u64, Box<Event>)>, SpillError> {
        let Some(Reverse(head)) = self.heap.pop() else {
            return Ok(None);
        };
        if let Some((position, event)) = self.sources[head.source].next()? {
            self.heap.push(Reverse(Head {
                event,
                position,
                source: head.source,
            }));
        }
        Ok(Some((head.position, head.event)))
    }
}

/// Merges runs, [`MAX_FAN_IN`] at a time and earliest first, until at most [`MAX_FAN_IN`] are left
/// (one place kept for the events still in memory).
fn merge_down(dir: &mut SpillDir, runs: &mut Vec<Run>) -> Result<(), SpillError> {
    while runs.len() >= MAX_FAN_IN {
        let batch: Vec<Run> = runs.drain(..MAX_FAN_IN).collect();
        let sources = (batch.iter())
            .map(|r| r.open().map(Source::Disk))
            .collect::<Result<Vec<_>, _>>()?;
        let mut merger = Merger::new(sources)?;
        let mut w = dir.start_run()?;
        while let Some((position, event)) = merger.next()? {
            w.push(position, &event)?;
        }
        drop(merger);
        runs.push(dir.finish_run(w)?);
        for run in batch {
            run.remove()?;
        }
    }
    Ok(())
}

/// Events the merge hands to detection at a time.
const MERGE_BATCH: usize = 256;

/// A batch of merged events, each with whether it repeats the one before it.
#[allow(clippy::vec_box)]
type Merged = Vec<(Box<Event>, bool)>;

/// Merges the runs and the last events into one order, marking each event that has the time and
/// identity of the one before it as a repeat.
///
/// Reading a run back costs about what detecting costs, so a merging thread decodes the runs and
/// picks the next events while this one hands them to `each` (detection). The batches detection is
/// done with go back to the merging thread, which frees their events: the thread that allocated
/// them, so the allocator's locks are not fought over (freeing them on a third thread was measured
/// to spend a tenth of the replay waiting on those locks).
#[allow(clippy::vec_box)]
fn merge<E: From<SpillError>>(
    runs: &[Run],
    last: Vec<(u64, Box<Event>)>,
    each: &mut dyn FnMut(usize, &Event, bool) -> Result<(), E>,
) -> Result<(), E> {
    let mut sources = Vec::with_capacity(runs.len() + 1);
    for run in runs {
        sources.push(Source::Disk(run.open().map_err(SpillError)?));
    }
    sources.push(Source::Memory(last.into_iter()));
    std::thread::scope(|scope| {
        let (merged, batches) = std::sync::mpsc::sync_channel::<Result<Merged, SpillError>>(16);
        let (done, finished) = std::sync::mpsc::channel::<Merged>();
        scope.spawn(move || {
            if let Err(e) = merge_batches(sources, &merged, &finished) {
                let _ = merged.send(Err(e));
            }
            // Detection ends when this sender is gone; then free its last batches.
            drop(merged);
            for old in finished {
                drop(old);
            }
        });
        let mut n = 0;
        for batch in batches {
            let batch = batch?;
            for (event, repeated) in &batch {
                each(n, event, *repeated)?;
                n += 1;
            }
            // Should the merging thread be gone, the batch is freed here.
            if let Err(unsent) = done.send(batch) {
                drop(unsent);
            }
        }
        Ok(())
    })
}

/// The merging thread of [`merge`]: sends the merged events in batches to `merged`, freeing the
/// batches detection hands back on `finished` as it goes.
fn merge_batches(
    sources: Vec<Source>,
    merged: &std::sync::mpsc::SyncSender<Result<Merged, SpillError>>,
    finished: &std::sync::mpsc::Receiver<Merged>,
) -> Result<(), SpillError> {
    let mut merger = Merger::new(sources)?;
    // The last event of the batch sent before, for the first of the next.
    let mut before: Option<(DateTime<Utc>, (String, crate::Kind, String))> = None;
    let mut batch: Merged = Vec::with_capacity(MERGE_BATCH);
    while let Some((_, event)) = merger.next()? {
        let repeated = match batch.last() {
            Some((p, _)) => same_record(p, &event),
            None => before
                .as_ref()
                .is_some_and(|(time, key)| *time == event.meta.time && *key == event.dedup_key()),
        };
        batch.push((event, repeated));
        if batch.len() == MERGE_BATCH {
            let (p, _) = batch.last().expect("a full batch");
            before = Some((p.meta.time, p.dedup_key()));
            // Free what detection has finished with, and fill its batch again.
            let mut next = None;
            for mut old in finished.try_iter() {
                old.clear();
                next = Some(old);
            }
            let next = next.unwrap_or_else(|| Vec::with_capacity(MERGE_BATCH));
            if merged
                .send(Ok(std::mem::replace(&mut batch, next)))
                .is_err()
            {
                // Detection stopped: nothing more to merge.
                return Ok(());
            }
        }
    }
    if !batch.is_empty() {
        let _ = merged.send(Ok(batch));
    }
    Ok(())
}

/// [`Ordered::for_each`] for events held in memory.
fn for_each_in_memory<E>(
    events: &mut [Option<Box<Event>>],
    order: &[(DateTime<Utc>, u32)],
    repeated: &[bool],
    each: &mut dyn FnMut(usize, &Event, bool) -> Result<(), E>,
) -> Result<(), E> {
    std::thread::scope(|scope| {
        // Freeing an event costs about as much as detecting it (dozens of small strings,
        // allocated by the reading threads): another core does it meanwhile.
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
                each(n, &event, repeated[n])?;
                done.push(event);
                if done.len() == FREE_BATCH {
                    let next = emptied
                        .try_recv()
                        .unwrap_or_else(|_| Vec::with_capacity(FREE_BATCH));
                    let batch = std::mem::replace(&mut done, next);
                    // Should the freeing thread be gone, the batch comes back in the error and
                    // is freed here; the events go on either way.
                    if let Err(unsent) = free.send(batch) {
                        drop(unsent);
                    }
                }
            }
        }
        Ok(())
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
/// world: detection about 9 % faster (docs/PERFORMANCE-RESULTS.md).
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
                &s.session_id,
                &s.original_transfer_method,
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

/// What one file gave: its events, its rejects (in file order) and its counts.
#[derive(Debug, Default)]
struct FileRead {
    /// Kept in the boxes the reader hands out: moving a box is cheaper than moving an event.
    #[allow(clippy::vec_box)]
    events: Vec<Box<Event>>,
    /// Estimated bytes the events take in memory ([`estimate`]).
    estimate: u64,
    rejects: Vec<Rejected>,
    stats: IngestStats,
}

/// Events whose size is measured per file; the others are taken to be of their average.
const ESTIMATE_SAMPLE: usize = 64;

/// Bytes counted against the budget per byte an event holds ([`Event::held_bytes`]), and on top
/// of it per event (its slot in the order and in the list of a file's events). Counting more than
/// the events hold leaves room in the budget for what else the replay holds (the files being read,
/// the detection state, write buffers, the allocator's free lists): a 1 M-record world replayed
/// with the default 1 GiB budget peaked at 0.91 GB resident (docs/PERFORMANCE-RESULTS.md).
const MEMORY_PER_HELD_BYTE: f64 = 1.3;
const MEMORY_PER_EVENT: u64 = 48;

/// The estimated bytes `events` take in memory, from the size of a sample of them.
fn estimate(events: &[Box<Event>]) -> u64 {
    if events.is_empty() {
        return 0;
    }
    let step = events.len().div_ceil(ESTIMATE_SAMPLE);
    let (sum, count) = (events.iter().step_by(step)).fold((0u64, 0u64), |(sum, count), e| {
        (sum + e.held_bytes() as u64, count + 1)
    });
    let held = sum as f64 / count as f64 * events.len() as f64;
    (held * MEMORY_PER_HELD_BYTE) as u64 + MEMORY_PER_EVENT * events.len() as u64
}

fn read_one(file: &Path, opts: &ReadOptions) -> FileRead {
    let mut out = FileRead::default();
    let bytes = read_file(file, opts, &mut |item| {
        out.stats.count(&item);
        match item {
            Item::Event(e) => out.events.push(e),
            Item::Rejected(r) => out.rejects.push(r),
            Item::Skipped { .. } | Item::EmptyFile { .. } => {}
        }
    });
    out.estimate = estimate(&out.events);
    out.stats.files_read = 1;
    // A file that cannot be read was handed out as a rejected file, counted above.
    out.stats.bytes_read = bytes.unwrap_or(0);
    out
}

/// Reads `files` on all available cores and hands what each gave to `take`, in file order.
///
/// A reader does not start a file more than two per core ahead of the one `take` waits for, so
/// what waits to be taken stays bounded however slow one file, or `take`, is.
fn read_files_in_parallel(
    files: &[PathBuf],
    opts: &ReadOptions,
    take: &mut dyn FnMut(usize, FileRead),
) {
    use std::sync::atomic::AtomicUsize;
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(files.len())
        .max(1);
    let ahead = 2 * workers;
    let next = AtomicUsize::new(0);
    // The index of the file `take` waits for; readers wait on it to move.
    let taken = (Mutex::new(0usize), Condvar::new());
    let (tx, rx) = std::sync::mpsc::channel::<(usize, FileRead)>();
    std::thread::scope(|scope| {
        for _ in 0..workers {
            let tx = tx.clone();
            let (next, taken) = (&next, &taken);
            scope.spawn(move || {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(file) = files.get(i) else { break };
                    let mut expected = taken.0.lock().unwrap_or_else(|e| e.into_inner());
                    while i >= *expected + ahead {
                        expected = taken.1.wait(expected).unwrap_or_else(|e| e.into_inner());
                    }
                    drop(expected);
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
                *taken.0.lock().unwrap_or_else(|e| e.into_inner()) = expected;
                taken.1.notify_all();
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The event that `read_bytes` makes of one record.
    fn event_of(record: &serde_json::Value) -> Box<Event> {
        let text = format!("{record}\n");
        let mut out = Vec::new();
        crate::reader::read_bytes(
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

    /// Sign-ins of a few ids at a few times over several files: exact repeats (same id, same time)
    /// within and across files, one id at two times, equal times across ids.
    fn files(dir: &Path, count: u32) -> Vec<PathBuf> {
        let tenant = "4d3bac44-0230-4732-9e70-cc00736f0a97";
        let mut files = Vec::new();
        for f in 0..count {
            let mut text = String::new();
            for k in 0..40u32 {
                let minute = (k * 7 + f * 11) % 23;
                // Ids repeat across files; most of a repeated id's copies share its time.
                let id = format!("id-{}", (k * 3 + f) % 29);
                let minute = if k % 13 == 5 {
                    minute
                } else {
                    (k * 3 + f) % 29 % 23
                };
                text.push_str(&format!(
                    "{}\n",
                    serde_json::json!({"id": id, "createdDateTime":
                        format!("2021-01-01T00:{minute:02}:00Z"), "userId": "u",
                        "ipAddress": format!("203.0.113.{f}"), "resourceTenantId": tenant})
                ));
            }
            let path = dir.join(format!("{f}.json"));
            std::fs::write(&path, text).unwrap();
            files.push(path);
        }
        files
    }

    /// (time, id, ip, repeated) of every event handed out.
    fn handed_out(
        files: &[PathBuf],
        budget: u64,
        spill_dir: &Path,
    ) -> (Vec<(i64, String, String, bool)>, usize) {
        let order = OrderOptions {
            memory_budget: budget,
            spill_dir: Some(spill_dir.to_path_buf()),
        };
        let ordered = read_ordered(
            files,
            &ReadOptions::default(),
            &order,
            &mut |_| {},
            &mut |r| panic!("rejected: {r:?}"),
        )
        .unwrap();
        let runs = ordered.spilled_runs;
        let mut out = Vec::new();
        ordered
            .for_each(&mut |n, e, repeated| {
                assert_eq!(n, out.len());
                let ip = e.as_sign_in().and_then(|s| s.ip_address.clone());
                out.push((
                    e.meta.time.timestamp(),
                    e.meta.id.to_string(),
                    ip.map(|t| t.to_string()).unwrap_or_default(),
                    repeated,
                ));
                Ok::<(), SpillError>(())
            })
            .unwrap();
        (out, runs)
    }

    /// In memory and through runs on disk (a budget of a few events), the events come out in the
    /// same order with the same repeats marked: event time, then identity, then input position;
    /// a repeat is an event with the time and identity of the one before it.
    #[test]
    fn runs_on_disk_give_the_order_and_repeats_of_memory() {
        let dir = tempfile::tempdir().unwrap();
        let spill = tempfile::tempdir().unwrap();
        let files = files(dir.path(), 5);
        let (memory, runs) = handed_out(&files, u64::MAX, spill.path());
        assert_eq!(runs, 0);
        assert_eq!(memory.len(), 200);
        // What the order must be, from the records alone.
        let mut want = memory.clone();
        want.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
        let keys: Vec<_> = want.iter().map(|w| (w.0, w.1.clone())).collect();
        for (k, w) in want.iter_mut().enumerate() {
            w.3 = k > 0 && keys[k - 1] == keys[k];
        }
        assert_eq!(memory, want);
        let repeats = memory.iter().filter(|e| e.3).count();
        assert!(repeats > 20, "{repeats} repeats");
        let ids: std::collections::HashSet<_> =
            memory.iter().filter(|e| !e.3).map(|e| &e.1).collect();
        assert!(
            memory.iter().filter(|e| !e.3).count() > ids.len(),
            "an id at two times is kept twice"
        );
        for budget in [1, 2_000, 20_000] {
            let (spilled, runs) = handed_out(&files, budget, spill.path());
            assert!(runs >= 2, "budget {budget}: {runs} runs");
            assert_eq!(spilled, memory, "budget {budget}");
        }
        assert_eq!(
            std::fs::read_dir(spill.path()).unwrap().count(),
            0,
            "the runs' folders are removed"
        );
    }

    /// More runs than a merge opens at once are first merged into runs of runs: the same order.
    #[test]
    fn runs_past_the_fan_in_are_merged_in_stages() {
        let dir = tempfile::tempdir().unwrap();
        let spill = tempfile::tempdir().unwrap();
        let files = files(dir.path(), MAX_FAN_IN as u32 * 2 + 5);
        let (memory, _) = handed_out(&files, u64::MAX, spill.path());
        let (spilled, runs) = handed_out(&files, 1, spill.path());
        assert!(
            runs > 2 * MAX_FAN_IN,
            "{runs} runs written, merged ones included"
        );
        assert_eq!(spilled, memory);
        assert_eq!(std::fs::read_dir(spill.path()).unwrap().count(), 0);
    }

    /// A run frees each event once written and takes exactly its estimate off the room in use,
    /// when it is written and when it cannot be.
    #[test]
    fn a_run_frees_its_events_and_its_room_in_the_budget() {
        let dir = tempfile::tempdir().unwrap();
        let mut events: Events = (0..3000u32)
            .map(|k| {
                Some(event_of(&serde_json::json!({
                    "id": format!("4d3bac44-0230-4732-9e70-{k:012}"),
                    "createdDateTime": format!("2024-05-01T10:{:02}:00Z", k % 60),
                    "userId": "u", "userPrincipalName": "adele@contoso.com",
                    "ipAddress": "203.0.113.9", "status": {"errorCode": 0},
                    "resourceTenantId": "5d3bac44-0230-4732-9e70-cc00736f0a97"})))
            })
            .collect();
        let order = OrderOptions {
            memory_budget: 1,
            spill_dir: Some(dir.path().to_path_buf()),
        };
        // Another run's events still being written: what this one takes off stays.
        let in_flight = AtomicU64::new(3_000_000 + 777);
        let mut runs_dir = None;
        let run = spill(&mut runs_dir, &order, 0, &mut events, 3_000_000, &in_flight).unwrap();
        let mut back = run.open().unwrap();
        let mut count = 0;
        while back.next_event().unwrap().is_some() {
            count += 1;
        }
        assert_eq!(count, 3000);
        assert_eq!(
            in_flight.load(Ordering::Acquire),
            777,
            "the whole estimate, no more"
        );
        assert!(
            events.iter().all(Option::is_none),
            "each event freed once written"
        );

        // A run that cannot be written gives its room back too.
        let mut events: Events = vec![Some(event_of(&serde_json::json!({
            "id": "x", "createdDateTime": "2024-05-01T10:00:00Z", "userId": "u",
            "userPrincipalName": "adele@contoso.com", "ipAddress": "203.0.113.9",
            "resourceTenantId": "5d3bac44-0230-4732-9e70-cc00736f0a97"})))];
        let order = OrderOptions {
            memory_budget: 1,
            spill_dir: Some(dir.path().join("no-such-folder")),
        };
        let in_flight = AtomicU64::new(500);
        assert!(spill(&mut None, &order, 0, &mut events, 500, &in_flight).is_err());
        assert_eq!(in_flight.load(Ordering::Acquire), 0);
    }

    /// Detection that stops (an error of its own) stops the merge with it; a folder for the runs
    /// that cannot be made stops the replay with the folder named (reading, which waits for room
    /// in the budget, does not wait for ever).
    #[test]
    fn errors_stop_the_merge_and_name_the_runs_folder() {
        #[derive(Debug)]
        enum Stop {
            At(usize),
            Spill,
        }
        impl From<SpillError> for Stop {
            fn from(_: SpillError) -> Stop {
                Stop::Spill
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let spill = tempfile::tempdir().unwrap();
        let files = files(dir.path(), 40);
        let order = OrderOptions {
            memory_budget: 1,
            spill_dir: Some(spill.path().to_path_buf()),
        };
        let ordered = read_ordered(
            &files,
            &ReadOptions::default(),
            &order,
            &mut |_| {},
            &mut |_| {},
        )
        .unwrap();
        assert!(ordered.len() > 3 * MERGE_BATCH);
        let stopped = ordered.for_each(&mut |n, _, _| {
            if n == MERGE_BATCH + 7 {
                return Err(Stop::At(n));
            }
            Ok(())
        });
        assert!(
            matches!(stopped, Err(Stop::At(n)) if n == MERGE_BATCH + 7),
            "{stopped:?}"
        );
        assert_eq!(std::fs::read_dir(spill.path()).unwrap().count(), 0);

        let missing = spill.path().join("not-here");
        let order = OrderOptions {
            memory_budget: 1,
            spill_dir: Some(missing.clone()),
        };
        let err = read_ordered(
            &files,
            &ReadOptions::default(),
            &order,
            &mut |_| {},
            &mut |_| {},
        )
        .unwrap_err();
        assert!(
            err.to_string().contains(&missing.display().to_string()),
            "{err}"
        );
    }

    /// Whatever the order of the files, detection sees the same records in the same order (of
    /// exact repeats, a copy from another file may be the one kept: the same record).
    #[test]
    fn the_order_of_the_files_does_not_matter() {
        let dir = tempfile::tempdir().unwrap();
        let spill = tempfile::tempdir().unwrap();
        let mut files = files(dir.path(), 5);
        let strip = |v: Vec<(i64, String, String, bool)>| -> Vec<(i64, String)> {
            v.into_iter().filter(|e| !e.3).map(|e| (e.0, e.1)).collect()
        };
        let want = strip(handed_out(&files, u64::MAX, spill.path()).0);
        for turn in 0..4 {
            files.rotate_left(1);
            files.swap(turn % 2, 4);
            for budget in [u64::MAX, 3_000] {
                assert_eq!(strip(handed_out(&files, budget, spill.path()).0), want);
            }
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
}
