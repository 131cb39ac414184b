//! Per-event cost of the pinned SigmaHQ set: `cargo test --release -p entrawatch-sigma --test cost
//! -- --ignored --nocapture` prints µs per event over the demo's records, matching only and with
//! the findings built (a figure, not an assertion: docs/sigma.md has the measured values).
//! `SIGMA_COST_EVENTS=DIR` reads the events from another folder (a simulated world).

use std::path::{Path, PathBuf};
use std::time::Instant;

use entrawatch_detect::ExtraRules;
use entrawatch_ingest::{Event, Item, ReadOptions, read_bytes};
use entrawatch_sigma::{SigmaConfig, SigmaSet, load};

fn demo_events() -> Vec<Event> {
    let mut files = Vec::new();
    let root = std::env::var_os("SIGMA_COST_EVENTS").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/demo"),
        PathBuf::from,
    );
    let mut stack = vec![root];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path
                .extension()
                .is_some_and(|x| x == "json" || x == "jsonl" || x == "csv")
            {
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
    let rounds = (1_200_000 / events.len()).max(1);
    let started = Instant::now();
    let mut matches = 0usize;
    for _ in 0..rounds {
        for e in &events {
            matches += set.count_matches(e);
        }
    }
    let n = (rounds * events.len()) as f64;
    eprintln!(
        "matching only: {:.3} µs per event ({} matches per pass)",
        started.elapsed().as_secs_f64() * 1e6 / n,
        matches / rounds
    );
    let mut out = Vec::new();
    let mut state = entrawatch_detect::ExtraState::default();
    let started = Instant::now();
    let mut findings = 0usize;
    for _ in 0..rounds {
        for e in &events {
            set.observe(e, &mut state, &mut out);
            findings += out.len();
            out.clear();
        }
    }
    let total = started.elapsed();
    eprintln!(
        "with findings: {} rules, {} events x {rounds}: {:.3} µs per event ({} findings per pass)",
        set.len(),
        events.len(),
        total.as_secs_f64() * 1e6 / n,
        findings / rounds
    );
    // The same, with the test correlation rules loaded beside the set (their windows in an
    // ExtraState, started empty each pass), over the events in event-time order.
    let fixtures = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let with_correlations = SigmaSet::from_loaded(load(&SigmaConfig {
        paths: vec![fixtures.join("sigmahq"), fixtures.join("correlation")],
        ..SigmaConfig::default()
    }));
    let mut sorted = events.clone();
    sorted.sort_by_key(|e| e.meta.time);
    let started = Instant::now();
    let mut findings = 0usize;
    for _ in 0..rounds {
        let mut state = entrawatch_detect::ExtraState::default();
        for e in &sorted {
            with_correlations.observe(e, &mut state, &mut out);
            findings += out.len();
            out.clear();
        }
    }
    eprintln!(
        "with correlations: {} rules: {:.3} µs per event ({} findings per pass)",
        with_correlations.len(),
        started.elapsed().as_secs_f64() * 1e6 / n,
        findings / rounds
    );
}
