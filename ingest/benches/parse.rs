//! Criterion benches of parsing, per wire shape: what [`entrawatch_ingest::read_bytes`] costs from
//! the bytes of a file to normalised events (framing, JSON decoding, normalising).
//!
//! What comes in: the real sample records of `tests/fixtures` (compacted and repeated into files of
//! a realistic size). What goes out: records per second per shape, printed by criterion
//! (`cargo bench -p entrawatch-ingest --bench parse`). Shapes: a Graph sign-in page, an Event Hub
//! envelope of sign-ins, a Graph directory-audit page, an Event Hub envelope of audits and a Log
//! Analytics CSV export. Beside each, `value` decodes the same records into `serde_json::Value`
//! only: the naive lower bound of the cost before this crate does anything with them.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use entrawatch_ingest::reader::for_each_json_record;
use entrawatch_ingest::{Item, ReadOptions, read_bytes};
use serde_json::Value;

const TENANT: &str = "4d3bac44-0230-4732-9e70-cc00736f0a97";
/// Records per generated file: a Graph page holds up to 1,000, an Event Hub capture thousands.
const RECORDS: usize = 500;

const GRAPH_SIGN_IN: &[u8] =
    include_bytes!("../tests/fixtures/real/msgraph-docs/beta_signin_get.json");
const EH_SIGN_IN: &[u8] =
    include_bytes!("../tests/fixtures/real/entra-docs/eventhub_signinlogs_record.json");
const GRAPH_AUDIT: &[u8] = include_bytes!(
    "../tests/fixtures/real/msgraph-docs/beta_directoryaudit_get_mfa_method_update.json"
);
const EH_AUDITS: &[u8] =
    include_bytes!("../tests/fixtures/derived/eventhub_envelope_auditlogs.json");
const LA_CSV: &[u8] =
    include_bytes!("../tests/fixtures/real/azure-sentinel-training-lab/sign-in_adelete.csv");

fn compact(json: &[u8]) -> String {
    serde_json::from_slice::<Value>(json)
        .expect("fixture is JSON")
        .to_string()
}

/// A Graph list page of `RECORDS` copies of one entity.
fn graph_page(entity: &[u8], context: &str) -> Vec<u8> {
    let one = compact(entity);
    let items = vec![one; RECORDS].join(",");
    format!(
        "{{\"@odata.context\":\"https://graph.microsoft.com/beta/$metadata#{context}\",\"value\":[{items}]}}"
    )
    .into_bytes()
}

/// An Event Hub envelope of `RECORDS` records, cycling through the given ones.
fn envelope(records: &[String]) -> Vec<u8> {
    let items: Vec<&str> = records
        .iter()
        .cycle()
        .take(RECORDS)
        .map(String::as_str)
        .collect();
    format!("{{\"records\":[{}]}}", items.join(",")).into_bytes()
}

fn eh_audit_records() -> Vec<String> {
    match serde_json::from_slice::<Value>(EH_AUDITS).expect("fixture is JSON") {
        Value::Object(mut m) => match m.remove("records") {
            Some(Value::Array(items)) => items.iter().map(Value::to_string).collect(),
            _ => panic!("fixture has records"),
        },
        _ => panic!("fixture is an envelope"),
    }
}

fn inputs() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        (
            "graph-sign-in",
            graph_page(GRAPH_SIGN_IN, "auditLogs/signIns"),
        ),
        ("event-hub-sign-in", envelope(&[compact(EH_SIGN_IN)])),
        (
            "graph-audit",
            graph_page(GRAPH_AUDIT, "auditLogs/directoryAudits"),
        ),
        ("event-hub-audit", envelope(&eh_audit_records())),
        ("log-analytics-csv", LA_CSV.to_vec()),
    ]
}

/// Parses a whole file; returns the events read (every record of these inputs is one).
fn parse(bytes: &[u8], opts: &ReadOptions) -> usize {
    let mut events = 0;
    read_bytes("bench", bytes, Some(TENANT), opts, &mut |item| {
        if matches!(item, Item::Event(_)) {
            events += 1;
        }
        black_box(item);
    });
    events
}

fn shapes(c: &mut Criterion) {
    let opts = ReadOptions::default();
    for (name, bytes) in inputs() {
        let events = parse(&bytes, &opts);
        assert!(events > 0, "{name}: no events");
        let mut group = c.benchmark_group(format!("parse/{name}"));
        group.throughput(Throughput::Elements(events as u64));
        group.bench_function("read_bytes", |b| b.iter(|| parse(black_box(&bytes), &opts)));
        if name != "log-analytics-csv" {
            group.bench_function("value", |b| {
                b.iter(|| {
                    let mut n = 0usize;
                    for_each_json_record(black_box(&bytes), &mut |raw| {
                        let v: Value = serde_json::from_slice(raw).expect("record is JSON");
                        n += usize::from(v.is_object());
                        black_box(v);
                    });
                    n
                })
            });
        }
        group.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = shapes
}
criterion_main!(benches);
