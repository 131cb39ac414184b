//! Criterion benches of rendering, per sink: one alert, and a group of twenty, to the exact bytes
//! Teams, Slack and a signed webhook receive.
//!
//! What comes in: alert records built here, shaped like the detectors' (title, summary, evidence,
//! MITRE ids). What goes out: messages per second per sink and size, printed by criterion
//! (`cargo bench -p entrawatch-alert --bench render`).

use std::hint::black_box;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use entrawatch_alert::sink::{Message, slack, teams, webhook};
use entrawatch_alert::{AlertRecord, Kind};
use entrawatch_detect::{Principal, PrincipalKind, Severity};
use serde_json::{Value, json};

const SECRET: &[u8] = b"whsec-bench-secret";

fn at(minute: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 10, 27, 3, 0, 0).unwrap() + chrono::Duration::minutes(minute)
}

fn alert(i: u64) -> AlertRecord {
    let upn = format!("user{i}@contoso.com");
    let evidence = match json!({
        "from": {"ip_address": "203.0.113.7", "location": "Amsterdam, NL"},
        "ip_address": "198.51.100.20", "location": "São Paulo, BR", "distance_km": 9780,
        "minutes_apart": 42, "speed_kmh": 13971.4, "app": "Azure Portal",
        "user_agent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Edg/120.0",
    }) {
        Value::Object(m) => m,
        _ => unreachable!("evidence is an object"),
    };
    AlertRecord {
        id: format!("ew-{i:016x}"),
        rule: "impossible-travel".into(),
        severity: Severity::High,
        tenant_id: "11111111-aaaa-4aaa-8aaa-111111111111".into(),
        tenant_name: Some("Contoso".into()),
        principal: Principal {
            kind: PrincipalKind::User,
            id: format!("7d9e0a1b-2c3d-4e5f-8a9b-{i:012x}"),
            upn: Some(upn.clone()),
            home_tenant_id: None,
        },
        title: format!("{upn} signed in from Amsterdam, NL and São Paulo, BR 42 minutes apart"),
        summary: format!(
            "{upn} signed in from Amsterdam, NL and then from São Paulo, BR 42 minutes later \
             (9,780 km, 13,971 km/h). Confirm with the user; if one sign-in was not theirs, revoke \
             sessions and reset the password."
        ),
        first_seen: at(0),
        last_seen: at(42),
        count: 2,
        event_ids: vec![
            format!("0000{i:04}-aaaa-4aaa-8aaa-000000000001"),
            format!("0000{i:04}-aaaa-4aaa-8aaa-000000000002"),
        ],
        evidence,
        mitre: vec!["T1078.004".into()],
    }
}

fn sinks(c: &mut Criterion) {
    for size in [1u64, 20] {
        let alerts: Vec<AlertRecord> = (0..size).map(alert).collect();
        let msg = Message {
            notification_id: "ew-0123456789abcdef-first",
            kind: Kind::First,
            alerts: &alerts,
            now: at(45),
            since_last: None,
            notification_ids: &[],
        };
        let mut group = c.benchmark_group(format!("render/{size}-alerts"));
        group.throughput(Throughput::Elements(1));
        group.bench_function("teams", |b| b.iter(|| teams::render(black_box(&msg))));
        group.bench_function("slack", |b| b.iter(|| slack::render(black_box(&msg))));
        group.bench_function("webhook", |b| {
            b.iter(|| webhook::render(black_box(&msg), Some(SECRET)))
        });
        group.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2));
    targets = sinks
}
criterion_main!(benches);
