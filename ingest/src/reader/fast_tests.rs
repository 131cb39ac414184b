//! The fast path against the tolerant reader: every fixture file, and thousands of mutated records
//! (fields removed, nulled, emptied, retyped, given as JSON text, re-cased, repeated; values JSON
//! itself refuses), read both ways, must give the same items: same events, same rejects, same
//! messages. Also checks the fast path is actually taken for the ordinary shapes.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use super::{Item, ReadOptions, read_bytes_with};
use crate::normalize::{RecordContext, normalize_fast};

const TENANT: &str = "4d3bac44-0230-4732-9e70-cc00736f0a97";

fn opts() -> ReadOptions {
    ReadOptions {
        ingest_time: DateTime::<Utc>::UNIX_EPOCH,
        ..ReadOptions::default()
    }
}

fn items(bytes: &[u8], hint: Option<&str>, fast: bool) -> Vec<String> {
    let mut out = Vec::new();
    read_bytes_with(
        "t.json",
        bytes,
        hint,
        &opts(),
        &mut |i: Item| out.push(format!("{i:?}")),
        fast,
    );
    out
}

fn assert_same(bytes: &[u8], hint: Option<&str>) {
    let slow = items(bytes, hint, false);
    let fast = items(bytes, hint, true);
    assert_eq!(
        fast,
        slow,
        "fast and tolerant readers differ on:\n{}",
        String::from_utf8_lossy(bytes)
    );
}

fn fixture_files() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for p in entries {
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|e| {
                ["json", "jsonl", "ndjson", "csv", "log"].contains(&e.to_str().unwrap_or(""))
            }) {
                out.push(p);
            }
        }
    }
    let mut out = Vec::new();
    walk(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures"),
        &mut out,
    );
    out
}

#[test]
fn every_fixture_reads_the_same_and_most_records_take_the_fast_path() {
    let files = fixture_files();
    assert!(files.len() >= 20, "fixtures: {}", files.len());
    let mut fast_events = 0;
    for file in &files {
        let bytes = std::fs::read(file).unwrap();
        assert_same(&bytes, None);
        assert_same(&bytes, Some(TENANT));
        super::for_each_json_record(&bytes, &mut |raw| {
            let ctx = RecordContext {
                tenant_hint: Some(TENANT),
                graph_hint: None,
                ingest_time: DateTime::<Utc>::UNIX_EPOCH,
                csv: false,
            };
            if std::str::from_utf8(raw).is_ok_and(|t| normalize_fast(t, &ctx).is_some()) {
                fast_events += 1;
            }
        });
    }
    // The others are other kinds, Log Analytics rows, odd casing or a repeated key (a Graph sample
    // gives `homeTenantId` twice).
    assert!(fast_events >= 25, "fast path taken {fast_events} times");
}

/// Deterministic pseudo-random numbers (SplitMix64).
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
        (self.next() % n as u64) as usize
    }
}

/// Values a field may hold in some export or other, and a few no producer writes.
fn odd_values() -> Vec<Value> {
    vec![
        Value::Null,
        json!(""),
        json!("   "),
        json!("0"),
        json!("50126"),
        json!(" 50074 "),
        json!(50126),
        json!(-1),
        json!(1.5),
        json!(u64::MAX),
        json!(true),
        json!(false),
        json!("TRUE"),
        json!("yes"),
        json!({}),
        json!([]),
        json!(["a", null, 1, {"x": 1}]),
        json!("{\"city\":\"Lagos\",\"countryOrRegion\":\"NG\"}"),
        json!("[\"unlikelyTravel\"]"),
        json!("  [1,2]"),
        json!("{not json"),
        json!(" padded "),
        json!("2021-01-01T00:00:00Z"),
        json!("not a time"),
        json!("4D3BAC44-0230-4732-9E70-CC00736F0A97"),
        json!("/tenants/4D3BAC44-0230-4732-9E70-CC00736F0A97/providers/x"),
        json!("SignInLogs"),
        json!("AuditLogs"),
        json!("ProvisioningLogs"),
        json!({"errorCode": "50126", "failureReason": " bad "}),
        json!([{"authenticationMethod": "Password", "succeeded": "true"}, null]),
        json!("\"quoted\""),
        json!("S\u{e3}o Paulo \u{1F600}"),
    ]
}

/// Every (object, key) in the record, by path of object keys and array indexes.
fn object_slots(v: &Value, path: &mut Vec<Value>, out: &mut Vec<(Vec<Value>, String)>) {
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                out.push((path.clone(), k.clone()));
                path.push(json!(k));
                object_slots(child, path, out);
                path.pop();
            }
        }
        Value::Array(a) => {
            for (i, child) in a.iter().enumerate() {
                path.push(json!(i));
                object_slots(child, path, out);
                path.pop();
            }
        }
        _ => {}
    }
}

fn object_at<'v>(v: &'v mut Value, path: &[Value]) -> &'v mut Map<String, Value> {
    let mut cur = v;
    for step in path {
        cur = match step {
            Value::String(k) => cur.get_mut(k.as_str()).unwrap(),
            Value::Number(i) => cur.get_mut(i.as_u64().unwrap() as usize).unwrap(),
            _ => unreachable!("paths hold keys and indexes"),
        };
    }
    cur.as_object_mut().unwrap()
}

/// One mutation of `record`, as JSON text.
fn mutate(record: &Value, rng: &mut Rng, odd: &[Value]) -> String {
    let mut v = record.clone();
    let mut slots = Vec::new();
    object_slots(&v, &mut Vec::new(), &mut slots);
    let edits = 1 + rng.below(3);
    for _ in 0..edits {
        if slots.is_empty() {
            break;
        }
        let (path, key) = slots[rng.below(slots.len())].clone();
        let obj = object_at(&mut v, &path);
        if !obj.contains_key(&key) {
            continue;
        }
        match rng.below(6) {
            0 => {
                obj.remove(&key);
            }
            1 => {
                let value = obj.remove(&key).unwrap_or(Value::Null);
                let mut chars = key.chars();
                let recased = match chars.next() {
                    Some(c) if c.is_ascii_lowercase() => {
                        c.to_ascii_uppercase().to_string() + chars.as_str()
                    }
                    _ => key.to_ascii_lowercase(),
                };
                obj.insert(recased, value);
            }
            _ => {
                obj.insert(key, odd[rng.below(odd.len())].clone());
            }
        }
        slots.clear();
        object_slots(&v, &mut Vec::new(), &mut slots);
    }
    let text = v.to_string();
    // Mutations a `Value` cannot hold: a repeated key, numbers and escapes JSON refuses.
    match rng.below(12) {
        0 if text.starts_with("{\"") => {
            let first_key_end = text[2..].find('"').map(|i| i + 2).unwrap_or(1);
            let key = &text[1..=first_key_end];
            format!("{{{key}:\"again\",{}", &text[1..])
        }
        1 => format!("{{\"zz\":1e400,{}", &text[1..]),
        2 => format!("{{\"zz\":\"\\ud800\",{}", &text[1..]),
        3 => format!("{{\"zz\":[1,2,],{}", &text[1..]),
        _ => text,
    }
}

fn records_of(path: &str) -> Vec<Value> {
    let bytes = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join(path)).unwrap();
    let mut out = Vec::new();
    super::for_each_json_record(&bytes, &mut |raw| {
        if let Ok(v) = serde_json::from_slice::<Value>(raw) {
            out.push(v);
        }
    });
    out
}

#[test]
fn mutated_records_read_the_same_both_ways() {
    let odd = odd_values();
    let mut rng = Rng(7);
    let sources = [
        "tests/fixtures/real/entra-docs/eventhub_signinlogs_record.json",
        "tests/fixtures/real/datadog-integrations-core/azure_activedirectory_eventhub_records.jsonl",
        "tests/fixtures/real/msgraph-docs/beta_signin_get.json",
        "tests/fixtures/real/msgraph-docs/beta_signins_list_ex1_failed_password.json",
        "tests/fixtures/real/msgraph-docs/beta_directoryaudit_get_mfa_method_update.json",
        "tests/fixtures/real/msgraph-docs/v1_directoryaudits_list.json",
        "tests/fixtures/derived/eventhub_envelope_auditlogs.json",
        "tests/fixtures/quirks/eh_audit_roles_string.json",
        "tests/fixtures/quirks/graph_signin_casing.json",
    ];
    let mut checked = 0;
    for source in sources {
        let records = records_of(source);
        assert!(!records.is_empty(), "{source}");
        for record in &records {
            for _ in 0..150 {
                let text = mutate(record, &mut rng, &odd);
                for hint in [None, Some(TENANT)] {
                    assert_same(text.as_bytes(), hint);
                }
                checked += 1;
            }
        }
    }
    assert!(checked >= 2000, "checked {checked}");
}

#[test]
fn graph_pages_keep_their_hint_both_ways() {
    for context in [
        "auditLogs/signIns",
        "auditLogs/directoryAudits",
        "identityProtection/riskDetections",
    ] {
        let page = format!(
            "{{\"@odata.context\":\"https://graph.microsoft.com/beta/$metadata#{context}\",\"value\":[{},{}]}}",
            json!({"id": "a", "createdDateTime": "2021-01-01T00:00:00Z", "userId": "u", "activityDisplayName": "x"}),
            json!({"id": "b", "activityDateTime": "2021-01-01T00:00:00Z", "status": {"errorCode": 0}})
        );
        assert_same(page.as_bytes(), Some(TENANT));
    }
}
