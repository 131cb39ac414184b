//! The typed fast path of the JSON reader against the tolerant one, end to end: a simulated world
//! replayed both ways (`ENTRAWATCH_JSON_FAST_PATH=0` turns the fast path off) gives byte-identical
//! events, alerts and rejects, and the same summary.

use std::path::Path;
use std::process::{Command, Stdio};

fn entrawatch(args: &[&str], fast: bool) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_entrawatch"));
    cmd.args(args).stdin(Stdio::null());
    if !fast {
        cmd.env("ENTRAWATCH_JSON_FAST_PATH", "0");
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "entrawatch {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn replay(world: &Path, out: &Path, fast: bool) -> Vec<Vec<u8>> {
    std::fs::create_dir_all(out).unwrap();
    let p = |name: &str| out.join(name).to_str().unwrap().to_owned();
    let config = world.join("entrawatch.toml");
    entrawatch(
        &[
            "replay",
            world.to_str().unwrap(),
            "--config",
            config.to_str().unwrap(),
            "--alerts",
            &p("alerts.jsonl"),
            "--events",
            &p("events.jsonl"),
            "--rejects",
            &p("rejects.jsonl"),
            "--summary-json",
            &p("summary.json"),
            "--quiet",
        ],
        fast,
    );
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
    let mut summary = summary.as_object().unwrap().clone();
    for timing in [
        "elapsed_seconds",
        "records_per_second",
        "megabytes_per_second",
    ] {
        summary.remove(timing);
    }
    ["alerts.jsonl", "events.jsonl", "rejects.jsonl"]
        .iter()
        .map(|f| std::fs::read(out.join(f)).unwrap())
        .chain([serde_json::to_vec(&summary).unwrap()])
        .collect()
}

#[test]
fn a_world_replays_identically_with_and_without_the_fast_path() {
    let dir = tempfile::tempdir().unwrap();
    let world = dir.path().join("world");
    entrawatch(
        &[
            "simulate",
            "--out",
            world.to_str().unwrap(),
            "--seed",
            "7",
            "--days",
            "10",
            "--tenants",
            "6",
            "--users-per-tenant",
            "10",
        ],
        true,
    );
    let fast = replay(&world, &dir.path().join("fast"), true);
    let slow = replay(&world, &dir.path().join("slow"), false);
    let names = ["alerts", "events", "rejects", "summary"];
    for ((name, f), s) in names.iter().zip(&fast).zip(&slow) {
        assert!(
            f == s,
            "{name} differ between the fast and the tolerant reader"
        );
    }
    let events = fast[1].iter().filter(|b| **b == b'\n').count();
    assert!(events > 1000, "{events} events");
    assert!(!fast[0].is_empty(), "no alerts");
}
