//! The readers against hostile input: arbitrary bytes, real records cut short or with bytes
//! flipped, deep nesting and oversized records. Every shape goes through `read_bytes`, the entry
//! point of files, folders and stdin. What must hold for every input: no panic, no hang, every
//! record accounted for (an event, a skipped category, a rejection or an empty file), memory
//! bounded.
//!
//! The inputs come from a seeded generator, so a failure names the seed and case that reproduce
//! it; `ENTRAWATCH_ROBUSTNESS_CASES` raises the number of random cases for a longer run.

use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use entrawatch_ingest::reader::{Item, ReadOptions, read_bytes};

/// Random cases per generator in a normal test run.
const DEFAULT_CASES: usize = 400;
/// A run that has not finished by then is a hang, not a slow machine: the whole suite reads a
/// few megabytes.
const HANG_AFTER: Duration = Duration::from_secs(300);
/// Nesting depth of the deep documents: far beyond any real record.
const DEEP: usize = 100_000;

/// SplitMix64: small, seeded, the same sequence everywhere.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn cases() -> usize {
    std::env::var("ENTRAWATCH_ROBUSTNESS_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_CASES)
}

/// Every real and derived fixture, as (name, bytes).
fn fixtures() -> Vec<(String, Vec<u8>)> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for p in entries {
            if p.is_dir() {
                walk(&p, out);
            } else if matches!(
                p.extension().and_then(|e| e.to_str()),
                Some("json" | "jsonl" | "csv")
            ) {
                out.push(p);
            }
        }
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut files = Vec::new();
    walk(&root, &mut files);
    assert!(
        files.len() >= 20,
        "fixtures missing under {}",
        root.display()
    );
    files
        .into_iter()
        .map(|p| {
            let name = p.strip_prefix(&root).unwrap().display().to_string();
            (name, std::fs::read(&p).unwrap())
        })
        .collect()
}

/// What one read handed out.
#[derive(Debug, Default)]
struct Tally {
    events: usize,
    skipped: usize,
    rejected: usize,
    empty: usize,
}

/// Reads `bytes` as file `name`; a panic fails with the case that caused it.
fn read(case: &str, bytes: &[u8]) -> Tally {
    let opts = ReadOptions::default();
    let mut tally = Tally::default();
    let result = std::panic::catch_unwind(AssertUnwindSafe(|| {
        read_bytes(case, bytes, None, &opts, &mut |item| match item {
            Item::Event(_) => tally.events += 1,
            Item::Skipped { .. } => tally.skipped += 1,
            Item::Rejected(r) => {
                // A rejection says where and why, and keeps a bounded excerpt.
                assert!(!r.reason.is_empty(), "{case}: a rejection without a reason");
                assert!(
                    r.raw.as_ref().is_none_or(|raw| raw.len() <= 64 * 1024 + 16),
                    "{case}: a rejection keeps {} bytes",
                    r.raw.as_ref().map_or(0, String::len)
                );
                tally.rejected += 1;
            }
            Item::EmptyFile { .. } => tally.empty += 1,
        });
    }));
    if result.is_err() {
        panic!(
            "{case}: the reader panicked ({} bytes of input)",
            bytes.len()
        );
    }
    tally
}

/// Runs `body` on its own thread and fails if it has not finished after [`HANG_AFTER`].
fn without_hang(name: &str, body: impl FnOnce() + Send + 'static) {
    let (tx, rx) = mpsc::channel();
    let handle = std::thread::Builder::new()
        .name(name.to_owned())
        // Deep documents must not need a deep stack: the reader's default thread size is the test's.
        .spawn(move || {
            body();
            let _ = tx.send(());
        })
        .unwrap();
    match rx.recv_timeout(HANG_AFTER) {
        Ok(()) => handle.join().unwrap(),
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            // The body panicked: join to surface its message.
            if let Err(e) = handle.join() {
                std::panic::resume_unwind(e);
            }
        }
        Err(mpsc::RecvTimeoutError::Timeout) => {
            panic!("{name}: still reading after {HANG_AFTER:?}")
        }
    }
}

/// Resident memory of this process in KiB (Linux).
fn rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

#[test]
fn arbitrary_bytes_are_rejected_or_read_never_panic() {
    without_hang("arbitrary", || {
        let mut rng = Rng(0x5eed_0001);
        for case in 0..cases() {
            let len = rng.below(4096);
            // Half the cases draw from the bytes JSON and CSV are made of, so the parsers get past
            // their first character.
            let alphabet: &[u8] = b"{}[]\",:0123456789.eE+-truefalsn \n\r\tabc\\/u";
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    if case % 2 == 0 {
                        rng.next() as u8
                    } else {
                        alphabet[rng.below(alphabet.len())]
                    }
                })
                .collect();
            let name = format!("arbitrary seed 0x5eed0001 case {case}");
            let t = read(&name, &bytes);
            // Nothing is produced out of thin air: at most one item per line or record start.
            let items = t.events + t.skipped + t.rejected + t.empty;
            assert!(items <= bytes.len() + 1, "{name}: {t:?} from {len} bytes");
        }
    });
}

#[test]
fn real_records_cut_short_or_damaged_never_panic() {
    let files = fixtures();
    without_hang("damaged", move || {
        let mut rng = Rng(0x5eed_0002);
        for (name, bytes) in &files {
            // Every file is read whole first: it reports something (some samples are refused
            // whole without a tenant hint, with a reason), and so must every damaged copy.
            let whole = read(name, bytes);
            let reported = whole.events + whole.skipped + whole.rejected + whole.empty;
            assert!(
                reported > 0,
                "{name}: the fixture reports nothing: {whole:?}"
            );
            for case in 0..cases() / 10 {
                let mut damaged = bytes.clone();
                match case % 3 {
                    // Cut at a random point.
                    0 => damaged.truncate(rng.below(bytes.len())),
                    // Flip a few bytes.
                    1 => {
                        for _ in 0..1 + rng.below(8) {
                            let at = rng.below(damaged.len());
                            damaged[at] = rng.next() as u8;
                        }
                    }
                    // Remove a slice from the middle.
                    _ => {
                        let from = rng.below(damaged.len());
                        let to = (from + rng.below(256)).min(damaged.len());
                        damaged.drain(from..to);
                    }
                }
                let case_name = format!("{name} seed 0x5eed0002 case {case}");
                let t = read(&case_name, &damaged);
                let reported = t.events + t.skipped + t.rejected + t.empty;
                assert!(
                    reported > 0 || damaged.iter().all(u8::is_ascii_whitespace),
                    "{case_name}: {} bytes and nothing reported",
                    damaged.len()
                );
            }
        }
    });
}

/// Documents nested [`DEEP`] levels, alone, inside a records array, as a JSON line, inside an
/// Event Hub envelope and as a CSV cell.
fn deep_documents() -> Vec<(String, Vec<u8>)> {
    let arrays = format!("{}{}", "[".repeat(DEEP), "]".repeat(DEEP));
    let objects = format!("{}1{}", "{\"a\":".repeat(DEEP), "}".repeat(DEEP));
    let unclosed = "[{\"a\":".repeat(DEEP);
    let sign_in = |inner: &str| {
        format!(
            "{{\"id\":\"66ea54eb-6301-4ee5-be62-ff5a759b0100\",\"createdDateTime\":\"2026-11-01T00:00:00Z\",\
             \"userId\":\"d5b8b1a4-1f3c-4bd5-a1f3-0f4a2a5b6c7d\",\"status\":{{\"errorCode\":0}},\
             \"deviceDetail\":{inner}}}"
        )
    };
    vec![
        ("deep arrays.json".into(), arrays.clone().into_bytes()),
        ("deep objects.json".into(), objects.clone().into_bytes()),
        ("deep unclosed.json".into(), unclosed.clone().into_bytes()),
        (
            "deep in records.json".into(),
            format!("{{\"records\":[{objects}]}}").into_bytes(),
        ),
        (
            "deep in a field.jsonl".into(),
            format!("{}\n{}\n", sign_in(&objects), sign_in(&arrays)).into_bytes(),
        ),
        (
            "deep in a graph page.json".into(),
            format!("{{\"value\":[{}]}}", sign_in(&objects)).into_bytes(),
        ),
        (
            "deep in a csv cell.csv".into(),
            format!(
                "TimeGenerated [UTC],OperationName,DeviceDetail\n2026-11-01T00:00:00Z,Sign-in activity,\"{}\"\n",
                objects.replace('"', "\"\"")
            )
            .into_bytes(),
        ),
    ]
}

#[test]
fn deep_nesting_neither_overflows_the_stack_nor_hangs() {
    without_hang("deep", || {
        for (name, bytes) in deep_documents() {
            let t = read(&name, &bytes);
            let items = t.events + t.skipped + t.rejected + t.empty;
            assert!(items >= 1, "{name}: nothing reported at all: {t:?}");
        }
    });
}

#[test]
fn an_oversized_record_is_rejected_and_memory_stays_bounded() {
    without_hang("oversized", || {
        let before = rss_kib();
        // One 64 MiB JSON line, then a normal-looking one: the first is refused by size, the
        // second is still read.
        let big = format!(
            "{{\"id\":\"x\",\"pad\":\"{}\"}}\n{{\"id\":\"y\"}}\n",
            "a".repeat(64 << 20)
        );
        let t = read("oversized.jsonl", big.as_bytes());
        assert!(
            t.rejected >= 1,
            "the oversized record was not rejected: {t:?}"
        );
        drop(big);
        if let (Some(before), Some(after)) = (before, rss_kib()) {
            // The input itself (64 MiB) is the caller's; the reader may not hold copies of it.
            let grown_mib = after.saturating_sub(before) / 1024;
            assert!(
                grown_mib < 256,
                "reading a 64 MiB record grew the process by {grown_mib} MiB"
            );
        }
    });
}
