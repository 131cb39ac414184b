//! `entrawatch bench --latency` end to end on a short, light run: the real service reads the
//! in-process Kafka-protocol broker and posts to the in-process receiver; every probe comes back
//! as a webhook POST and nothing else does. Only structure is asserted, never a time.

use std::process::{Command, Stdio};

use serde_json::Value;

#[test]
fn a_short_latency_run_delivers_every_probe_and_stops_the_service_cleanly() {
    let output = Command::new(env!("CARGO_BIN_EXE_entrawatch"))
        .args([
            "bench",
            "--latency",
            "--seconds",
            "5",
            "--warmup-seconds",
            "1",
        ])
        .args([
            "--rate",
            "300",
            "--probes-per-sec",
            "4",
            "--partitions",
            "2",
        ])
        .arg("--json")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();

    let probes = &report["probes"];
    let sent = probes["sent"].as_u64().unwrap();
    assert!(sent >= 10, "{report}");
    assert_eq!(probes["missing"], 0, "{report}");
    assert_eq!(probes["not_produced"], 0, "{report}");
    assert_eq!(probes["delivered"].as_u64(), Some(sent), "{report}");

    let latency = &report["latency_ms"];
    assert_eq!(latency["samples"].as_u64(), Some(sent), "{report}");
    let at = |k: &str| latency[k].as_f64().unwrap();
    assert!(at("p50") <= at("p90") && at("p90") <= at("p99"), "{report}");
    assert!(at("p99") <= at("max"), "{report}");
    assert_eq!(
        report["latency_from_send_ms"]["samples"].as_u64(),
        Some(sent)
    );

    let load = &report["load"];
    assert!(load["records_produced"].as_u64().unwrap() > 0, "{report}");
    assert_eq!(load["delivery_failures"], 0, "{report}");
    let total = load["records_produced_total"].as_u64().unwrap();

    let service = &report["service"];
    assert_eq!(service["exit_code"], 0, "{report}");
    // Every record produced went through detection, and only the probes raised alerts.
    assert_eq!(
        service["events_processed"].as_u64(),
        Some(total),
        "{report}"
    );
    assert_eq!(service["unexpected_alerts"], 0, "{report}");
    assert_eq!(service["unreadable_posts"], 0, "{report}");
    assert_eq!(service["log_errors"], 0, "{report}");
    assert!(report["goal"]["met"].is_boolean());
    assert_eq!(report["settings"]["partitions"], 2);
}

#[test]
fn latency_options_are_refused_without_latency_and_bad_values_are_named() {
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_entrawatch"))
            .arg("bench")
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let out = run(&["--rate", "100"]);
    assert_eq!(out.status.code(), Some(2), "clap refuses it");
    assert!(String::from_utf8_lossy(&out.stderr).contains("--latency"));

    let out = run(&["--latency", "--partitions", "0"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--partitions must be 1 to 64"));

    let out = run(&["--latency", "--world", "somewhere"]);
    assert_eq!(out.status.code(), Some(2), "replay options conflict");
}
