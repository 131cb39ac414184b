//! `entrawatch bench` end to end on a tiny world: every phase reads the same records, the
//! parse-only reference decodes all of them, the replay finds no errors, and the state-at-scale
//! phase tracks exactly the principals it was given. (No timing is asserted: figures are printed.)

use std::process::{Command, Stdio};

use serde_json::Value;

#[test]
fn a_quick_bench_measures_every_phase_on_the_same_records() {
    let dir = tempfile::tempdir().unwrap();
    let world = dir.path().join("world");
    let output = Command::new(env!("CARGO_BIN_EXE_entrawatch"))
        .args(["bench", "--out", world.to_str().unwrap()])
        .args([
            "--tenants",
            "6",
            "--scale",
            "0.01",
            "--compare-tenants",
            "0",
        ])
        .args(["--principals", "20000", "--json"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    let phases = report["phases"].as_array().unwrap();
    let names: Vec<&str> = phases.iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "read-only",
            "parse-only (serde_json typed)",
            "ingest only (read_file)",
            "full replay",
            "parse-only (sonic-rs typed)"
        ]
    );
    let records = report["world"]["records"].as_u64().unwrap();
    assert!(records > 1000, "{report}");
    for p in &phases[1..] {
        assert_eq!(p["events"].as_u64(), Some(records), "{}", p["name"]);
    }
    let bytes = report["world"]["bytes"].as_u64().unwrap();
    assert_eq!(phases[3]["bytes"].as_u64(), Some(bytes));
    let replay = &report["replay"];
    assert_eq!(replay["parse_errors"], 0);
    assert_eq!(replay["reference_failures"], 0);
    assert!(replay["tracked_principals"].as_u64().unwrap() > 6 * 8);
    assert!(replay["alerts"].as_u64().unwrap() > 0);
    let state = &report["state_scale"];
    assert_eq!(state["principals_tracked"], 200);
    assert!(state["approx_bytes_per_principal"].as_f64().unwrap() > 100.0);
    assert!(report["ratio_full_to_parse_cpu"].as_f64().unwrap() > 0.0);
    assert!(report["ratio_full_to_sonic_cpu"].as_f64().unwrap() > 0.0);
    assert_eq!(
        report["replay"]["spilled_runs"], 0,
        "the default budget holds it"
    );
    assert!(report["memory_budget"].as_u64().unwrap() > 0);
    // The replay's stages happen inside the full replay phase of the same round.
    let stage = |k: &str| replay[k].as_f64().unwrap();
    let stages = stage("read_seconds")
        + stage("order_seconds")
        + stage("detect_seconds")
        + stage("finish_seconds");
    assert!(
        stage("read_seconds") > 0.0
            && stage("detect_seconds") > 0.0
            && stage("finish_seconds") > 0.0,
        "{replay}"
    );
    let full_walls: Vec<f64> = report["rounds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r[3]["wall_seconds"].as_f64().unwrap())
        .collect();
    assert!(
        full_walls.iter().any(|w| stages <= *w),
        "stages {stages} s, full replay rounds {full_walls:?}"
    );
    assert!(stage("detect_us_per_event") > 0.0);
    // --out keeps the world for reuse with --world.
    assert!(world.join("entrawatch.toml").is_file());
}
