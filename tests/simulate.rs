//! `entrawatch simulate` end to end: the same arguments write the same bytes, the world parses
//! cleanly with the config it comes with, and detection finds every labelled attack of every
//! detector without a medium-or-higher alert on anyone benign.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

/// A small world: enough tenants for the fan-out story, enough days for baselines.
const SMALL: &[&str] = &[
    "--days",
    "10",
    "--tenants",
    "6",
    "--users-per-tenant",
    "8",
    "--technicians",
    "2",
];

fn entrawatch() -> Command {
    Command::new(env!("CARGO_BIN_EXE_entrawatch"))
}

fn run(args: &[&str]) -> Output {
    let output = entrawatch()
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "entrawatch {}: {}\n{}",
        args.join(" "),
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn simulate(out: &Path, seed: &str, extra: &[&str]) -> Output {
    let out = out.to_str().unwrap();
    let mut args = vec!["simulate", "--out", out, "--seed", seed];
    args.extend_from_slice(SMALL);
    args.extend_from_slice(extra);
    run(&args)
}

/// Every file under `dir`, by path relative to it.
fn files(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                out.insert(
                    path.strip_prefix(root).unwrap().to_owned(),
                    std::fs::read(&path).unwrap(),
                );
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

fn json_lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn the_same_arguments_write_the_same_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b, c) = (
        tmp.path().join("a"),
        tmp.path().join("b"),
        tmp.path().join("c"),
    );
    simulate(&a, "7", &[]);
    simulate(&b, "7", &[]);
    let (fa, fb) = (files(&a), files(&b));
    assert!(fa.len() > 20, "only {} files", fa.len());
    assert_eq!(
        fa.keys().collect::<Vec<_>>(),
        fb.keys().collect::<Vec<_>>(),
        "different file lists"
    );
    for (path, bytes) in &fa {
        assert!(
            bytes == &fb[path],
            "{} differs between two runs with the same arguments",
            path.display()
        );
    }
    simulate(&c, "8", &[]);
    assert_ne!(
        fa.get(Path::new("labels.jsonl")),
        files(&c).get(Path::new("labels.jsonl")),
        "another seed, another world"
    );
}

#[test]
fn the_world_parses_cleanly_with_its_own_config() {
    let tmp = tempfile::tempdir().unwrap();
    let world = tmp.path().join("world");
    simulate(&world, "3", &[]);
    for name in [
        "entrawatch.toml",
        "labels.jsonl",
        "benign.jsonl",
        "world.json",
    ] {
        assert!(world.join(name).is_file(), "{name} missing");
    }
    let summary = tmp.path().join("summary.json");
    let alerts = tmp.path().join("alerts.jsonl");
    let config = world.join("entrawatch.toml");
    run(&[
        "replay",
        "--quiet",
        "--config",
        config.to_str().unwrap(),
        world.to_str().unwrap(),
        "--summary-json",
        summary.to_str().unwrap(),
        "--alerts",
        alerts.to_str().unwrap(),
    ]);
    let s: Value = serde_json::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap();
    assert_eq!(s["parse_errors"], 0, "{:#}", s["first_errors"]);
    assert!(s["records_read"].as_u64().unwrap() > 5000, "{s:#}");
    for shape in ["event-hub", "graph"] {
        assert!(
            s["records_by_shape"][shape].as_u64().unwrap_or(0) > 0,
            "no {shape} records: {s:#}"
        );
    }
    for kind in [
        "signIn",
        "audit",
        "riskyUser",
        "riskDetection",
        "roleAssignment",
        "roleEligibility",
    ] {
        assert!(
            s["records_by_kind"][kind].as_u64().unwrap_or(0) > 0,
            "no {kind} records: {s:#}"
        );
    }
    // The metadata files are a category replay does not read, not errors.
    let skipped = &s["skipped_by_category"];
    assert_eq!(skipped["EntrawatchSimulationLabel"], rule_count(), "{s:#}");
    assert_eq!(skipped["EntrawatchSimulationWorld"], 1, "{s:#}");
    assert!(
        s["duplicates"].as_u64().unwrap() > 0,
        "Event Hub redeliveries are dropped as repeats"
    );

    let labels = json_lines(&world.join("labels.jsonl"));
    assert_eq!(labels.len(), rule_count());
    for l in &labels {
        for key in [
            "rule",
            "tenant_id",
            "principal_kind",
            "principal_id",
            "from",
            "to",
            "story",
        ] {
            assert!(l[key].is_string(), "label without {key}: {l}");
        }
    }
    let w: Value =
        serde_json::from_str(&std::fs::read_to_string(world.join("world.json")).unwrap()).unwrap();
    assert_eq!(
        w["tenants"].as_array().unwrap().len(),
        7,
        "6 customers and the partner"
    );
    assert!(
        w["tenants"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["format"] == "graph")
    );
}

/// Runs `--eval` and checks recall and false positives of every detector.
fn evaluate(seed: &str, extra: &[&str]) {
    let tmp = tempfile::tempdir().unwrap();
    let world = tmp.path().join("world");
    let output = simulate(&world, seed, &[&["--eval"], extra].concat());
    println!("{}", String::from_utf8_lossy(&output.stdout));
    let eval: Value =
        serde_json::from_str(&std::fs::read_to_string(world.join("eval.json")).unwrap()).unwrap();
    assert_eq!(eval["replay"]["parse_errors"], 0, "{:#}", eval["replay"]);
    let mut problems = Vec::new();
    let rules = eval["rules"].as_array().unwrap();
    assert_eq!(rules.len(), rule_count());
    for r in rules {
        let rule = r["rule"].as_str().unwrap();
        assert!(
            r["injected"].as_u64().unwrap() >= 1,
            "{rule}: no story injected"
        );
        if r["recall"].as_f64() != Some(1.0) {
            problems.push(format!(
                "{rule}: recall {} — missed {:#}",
                r["recall"], r["missed"]
            ));
        }
        if r["false_positives"] != 0 {
            problems.push(format!(
                "{rule}: {} medium+ alerts on benign principals, e.g. {:#}",
                r["false_positives"], r["false_positive_examples"]
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Two stories per rule: the second of each exercises another side of the rule (a PIM-eligible
/// admin before activation, a stolen refresh token, one IP behind several technicians, a
/// user consenting to mail access for themselves, audits going silent...).
#[test]
fn eval_finds_every_attack_of_every_detector_and_nothing_benign() {
    evaluate("11", &["--attacks-per-rule", "2"]);
}

/// How many detectors the registry has: one story (and label) each.
fn rule_count() -> usize {
    entrawatch_detect::registry::all().len()
}
