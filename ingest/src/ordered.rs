//! A whole set of files in event-time order, for `entrawatch replay`: every file read on every
//! core, the events ordered as the live service's aligner orders them, exact repeats marked, and
//! the events handed out one at a time.
//!
//! [`read_ordered`] reads the files in parallel and takes their results in file order, so counts,
//! rejects and the order of equal-time events are exactly those of a sequential read. The reading
//! threads also fingerprint each event's de-duplication key, so finding repeats is a sort of
//! fingerprints rather than a hash-set lookup per event. Events are put in order of time, then
//! record identity ([`crate::align::order`]): the order never depends on which file an event came
//! from; exact repeats keep file order and only the first of them counts.
//!
//! [`Ordered::for_each`] hands each event out in that order, a chunk at a time whose events are
//! first read through ([`warm`]), and frees each on another thread once it is handed back.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use crate::model::Event;
use crate::model::{Body, Text};
use crate::reader::{Item, ReadOptions, Rejected, read_file};
use crate::stats::IngestStats;

/// A set of files read and put in event-time order.
#[derive(Debug)]
pub struct Ordered {
    /// Every event read, in the order read; taken out as it is handed out.
    events: Vec<Option<Box<Event>>>,
    /// (event time, index into `events`) in the order events are handed out.
    order: Vec<(DateTime<Utc>, u32)>,
    /// Per position of `order`: the event repeats an earlier one.
    repeated: Vec<bool>,
    /// What reading counted.
    pub stats: IngestStats,
    /// Wall seconds spent reading, parsing and fingerprinting (on every core).
    pub read_seconds: f64,
    /// Wall seconds spent ordering and finding the repeats.
    pub order_seconds: f64,
}

/// Reads `files` (counting, handing rejects to `on_reject` in file order), orders their events
/// and marks the repeats. `progress` is given a message now and then.
pub fn read_ordered(
    files: &[PathBuf],
    opts: &ReadOptions,
    progress: &mut dyn FnMut(&dyn Fn() -> String),
    on_reject: &mut dyn FnMut(&Rejected),
) -> Ordered {
    let started = std::time::Instant::now();
    let mut stats = IngestStats::default();
    let mut events: Vec<Option<Box<Event>>> = Vec::new();
    let mut keys: Vec<u64> = Vec::new();
    read_files_in_parallel(files, opts, &mut |i, file| {
        for r in &file.rejects {
            on_reject(r);
        }
        events.extend(file.events.into_iter().map(Some));
        keys.extend(file.keys);
        stats.merge(file.stats);
        progress(&|| {
            format!(
                "reading {}/{} files · {} records",
                i + 1,
                files.len(),
                stats.records_read
            )
        });
    });
    let read_seconds = started.elapsed().as_secs_f64();
    progress(&|| format!("ordering {} events", events.len()));
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
    // Ties in time go in the order of the records' identities, as the live service's aligner
    // orders them; exact repeats stay in file order.
    for tie in order.chunk_by_mut(|a, b| a.0 == b.0) {
        if tie.len() > 1 {
            tie.sort_by(|a, b| {
                let event = |i: u32| events[i as usize].as_deref();
                event(a.1)
                    .zip(event(b.1))
                    .map_or(std::cmp::Ordering::Equal, |(x, y)| {
                        crate::align::order(x, y)
                    })
                    .then(a.1.cmp(&b.1))
            });
        }
    }
    // Only events whose fingerprints are equal are compared, by their full keys.
    let repeated = mark_repeats(&order, &keys, |a, b| {
        let key = |i: u32| events[i as usize].as_ref().map(|e| e.dedup_key_ref());
        key(a) == key(b)
    });
    Ordered {
        events,
        order,
        repeated,
        stats,
        read_seconds,
        order_seconds: started.elapsed().as_secs_f64() - read_seconds,
    }
}

impl Ordered {
    /// Events read, repeats included.
    pub fn len(&self) -> usize {
        self.order.len()
    }

    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// Hands every event to `each` in order, with its position and whether it repeats an earlier
    /// one; stops at the first error. Each event is freed on another thread after `each` returns.
    pub fn for_each<E>(
        mut self,
        each: &mut dyn FnMut(usize, &Event, bool) -> Result<(), E>,
    ) -> Result<(), E> {
        let (events, order, repeated) = (&mut self.events, &self.order, &self.repeated);
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

/// A fingerprint of [`Event::dedup_key`]: events with equal keys have equal fingerprints.
fn fingerprint(event: &Event) -> u64 {
    use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
    BuildHasherDefault::<DefaultHasher>::default().hash_one(event.dedup_key_ref())
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

fn read_one(file: &Path, opts: &ReadOptions) -> FileRead {
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
    // A file that cannot be read was handed out as a rejected file, counted above.
    out.stats.bytes_read = bytes.unwrap_or(0);
    out
}

/// Reads `files` on all available cores and hands what each gave to `take`, in file order.
fn read_files_in_parallel(
    files: &[PathBuf],
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

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
        for turn in 0..24 {
            perm.rotate_left(turn % events.len());
            perm.swap(turn % 3, 5 - turn % 4);
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
}
