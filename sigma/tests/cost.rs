//! Per-event cost of the pinned SigmaHQ set: `cargo test --release -p entrawatch-sigma --test cost
//! -- --ignored --nocapture` prints µs per event over the demo's records (a figure, not an
//! assertion: docs/sigma.md has the measured value).

use std::path::{Path, PathBuf};
use std::time::Instant;

use entrawatch_detect::ExtraRules;
use entrawatch_ingest::{Event, Item, ReadOptions, read_bytes};
use entrawatch_sigma::{SigmaConfig, SigmaSet, load};

fn demo_events() -> Vec<Event> {
    let mut files = Vec::new();
    let mut stack = vec![Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/demo")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files.sort();
    let mut events = Vec::new();
    for file in files {
        let bytes = std::fs::read(&file).unwrap();
        let name = file.display().to_string();
        read_bytes(&name, &bytes, None, &ReadOptions::default(), &mut |item| {
            if let Item::Event(e) = item {
                events.push(*e);
            }
        });
    }
    events
}

#[test]
#[ignore = "a measurement: run in release with --ignored --nocapture"]
fn per_event_cost_of_the_pinned_set() {
    let loaded = load(&SigmaConfig {
        paths: vec![PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sigmahq")],
        ..SigmaConfig::default()
    });
    let set = SigmaSet::new(loaded.rules);
    let events = demo_events();
    assert!(events.len() > 500);
    let mut out = Vec::new();
    let rounds = 2_000;
    let started = Instant::now();
    let mut findings = 0usize;
    for _ in 0..rounds {
        for e in &events {
            set.observe(e, &mut out);
            findings += out.len();
            out.clear();
        }
    }
    let total = started.elapsed();
    let n = (rounds * events.len()) as f64;
    eprintln!(
        "{} rules, {} demo events x {rounds}: {:.3} µs per event ({} findings per round)",
        set.len(),
        events.len(),
        total.as_secs_f64() * 1e6 / n,
        findings / rounds
    );
}
