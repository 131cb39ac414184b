//! Sigma v2 correlation rules (fixtures in `tests/fixtures/correlation/`, written for these
//! tests): they fire on event time, stay quiet below the threshold, outside the timespan and for
//! other groups, and keep their windows in the engine's snapshot, so a restarted engine gives the
//! same findings as one that never stopped.

use std::path::PathBuf;
use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use entrawatch_detect::{DetectConfig, Engine, Finding};
use entrawatch_ingest::enums::RiskLevel;
use entrawatch_ingest::model::TargetResource;
use entrawatch_ingest::{Body, Event, Kind, Text};
use entrawatch_sigma::{SigmaConfig, SigmaSet, Status, load, report};

mod common;
use common::first_event;

const BURST: &str = "sigma:6c1b3f0e-2f52-4c1e-9d6a-4b7e0c6a1a01";
const FAILED: &str = "sigma:6c1b3f0e-2f52-4c1e-9d6a-4b7e0c6a1a02";
const ONE_IP: &str = "sigma:6c1b3f0e-2f52-4c1e-9d6a-4b7e0c6a1a03";
const RISKY_ROLE: &str = "sigma:6c1b3f0e-2f52-4c1e-9d6a-4b7e0c6a1a04";
const RISKY: &str = "sigma:6c1b3f0e-2f52-4c1e-9d6a-4b7e0c6a1a05";
const ROLE: &str = "sigma:6c1b3f0e-2f52-4c1e-9d6a-4b7e0c6a1a06";
const THEN_SUCCESS: &str = "sigma:6c1b3f0e-2f52-4c1e-9d6a-4b7e0c6a1a07";
const SUCCESS: &str = "sigma:6c1b3f0e-2f52-4c1e-9d6a-4b7e0c6a1a08";

/// One tenant for every event (correlations never join two tenants' events).
const TENANT: &str = "11111111-2222-3333-4444-555555555555";

fn fixtures() -> SigmaConfig {
    SigmaConfig {
        paths: vec![PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/correlation")],
        ..SigmaConfig::default()
    }
}

fn sigma() -> Arc<SigmaSet> {
    Arc::new(SigmaSet::from_loaded(load(&fixtures())))
}

fn at(minute: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap() + chrono::Duration::seconds(minute * 60)
}

/// A real-shaped sign-in (the ingest fixture), for `upn` from `ip` at `minute`, with an error
/// code (0: success).
fn sign_in(id: &str, minute: i64, upn: &str, ip: &str, error: i64) -> Event {
    let mut e = first_event("derived/eventhub_envelope_signinlogs.json", Kind::SignIn);
    e.meta.id = Text::from(id);
    e.meta.time = at(minute);
    e.meta.tenant_id = Text::from(TENANT);
    let Body::SignIn(s) = &mut e.body else {
        unreachable!()
    };
    s.user_principal_name = Some(Text::from(upn));
    s.user_id = Some(Text::from(format!("id-{upn}").as_str()));
    s.ip_address = Some(Text::from(ip));
    s.error_code = Some(error);
    s.risk_level_during_sign_in = Some(RiskLevel::None);
    e
}

fn risky(id: &str, minute: i64, upn: &str) -> Event {
    let mut e = sign_in(id, minute, upn, "203.0.113.9", 0);
    let Body::SignIn(s) = &mut e.body else {
        unreachable!()
    };
    s.risk_level_during_sign_in = Some(RiskLevel::High);
    e
}

/// A real-shaped audit (the ingest fixture): `Add member to role`, the target `upn`.
fn role_added(id: &str, minute: i64, upn: &str) -> Event {
    let mut e = first_event("derived/eventhub_envelope_auditlogs.json", Kind::Audit);
    e.meta.id = Text::from(id);
    e.meta.time = at(minute);
    e.meta.tenant_id = Text::from(TENANT);
    let Body::Audit(a) = &mut e.body else {
        unreachable!()
    };
    a.activity_display_name = Text::from("Add member to role");
    a.target_resources = vec![
        TargetResource {
            id: Some(Text::from(format!("id-{upn}").as_str())),
            resource_type: Some(Text::from("User")),
            user_principal_name: Some(Text::from(upn)),
            ..TargetResource::default()
        },
        TargetResource {
            display_name: Some(Text::from("Global Administrator")),
            resource_type: Some(Text::from("Role")),
            ..TargetResource::default()
        },
    ];
    e
}

fn run(set: &Arc<SigmaSet>, events: &[Event]) -> Vec<Finding> {
    let mut engine = Engine::new(DetectConfig::default()).unwrap();
    engine.set_extra_rules(Some(set.clone()));
    let mut out = Vec::new();
    for e in events {
        engine.process(e, &mut out);
    }
    out
}

fn sigma_only(findings: &[Finding]) -> Vec<&Finding> {
    findings
        .iter()
        .filter(|f| f.rule.starts_with("sigma:"))
        .collect()
}

fn count(findings: &[Finding], rule: &str) -> usize {
    findings.iter().filter(|f| f.rule == rule).count()
}

fn failures(upn: &str, minutes: &[i64]) -> Vec<Event> {
    (minutes.iter().enumerate())
        .map(|(i, m)| sign_in(&format!("{upn}-f{i}"), *m, upn, "198.51.100.7", 50126))
        .collect()
}

#[test]
fn the_fixtures_load_and_sigma_check_says_the_correlations_run() {
    let loaded = load(&fixtures());
    let text = report(&loaded);
    let corr: Vec<&str> = (loaded.entries.iter())
        .filter(|e| e.status == Status::Correlation)
        .map(|e| e.id.as_str())
        .collect();
    assert_eq!(corr.len(), 4, "{text}");
    assert!(loaded.entries.iter().all(|e| e.status.runs()), "{text}");
    assert!(
        text.contains("8 rules: 8 run (4 native, 0 aliased, 4 correlation)"),
        "{text}"
    );
    // Several documents in one file are reported one by one.
    assert!(text.contains("failed_sign_in_burst.yml#2"), "{text}");
    assert_eq!(SigmaSet::from_loaded(loaded).len(), 8);
}

#[test]
fn references_that_do_not_run_make_the_correlation_not_run() {
    let dir = tempfile::tempdir().unwrap();
    let corr = |id: &str, rule: &str, group: &str| {
        format!(
            "title: c {id}\nid: {id}\ncorrelation:\n    type: event_count\n    rules:\n        - {rule}\n    group-by:\n        - {group}\n    timespan: 5m\n    condition:\n        gte: 2\n"
        )
    };
    let base = "title: base\nid: base\nname: base_rule\nlogsource:\n    product: azure\n    service: signinlogs\ndetection:\n    selection:\n        ResultType: 50126\n    condition: selection\n";
    std::fs::write(dir.path().join("base.yml"), base).unwrap();
    std::fs::write(
        dir.path().join("missing.yml"),
        corr("c1", "nope", "userPrincipalName"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("unknown.yml"),
        corr("c2", "base_rule", "NoSuchField"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("chained.yml"),
        corr("c3", "c2", "userPrincipalName"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("runs.yml"),
        corr("c4", "base_rule", "userPrincipalName"),
    )
    .unwrap();
    let loaded = load(&SigmaConfig {
        paths: vec![dir.path().to_path_buf()],
        ..SigmaConfig::default()
    });
    let status = |id: &str| {
        &loaded
            .entries
            .iter()
            .find(|e| e.id == id)
            .unwrap_or_else(|| panic!("{id}"))
            .status
    };
    assert!(matches!(status("c1"), Status::ParseError(e) if e.contains("not loaded")));
    assert!(matches!(status("c2"), Status::UnknownField(v) if v[0].contains("NoSuchField")));
    assert!(matches!(status("c3"), Status::Unsupported(e) if e.contains("chained")));
    assert_eq!(status("c4"), &Status::Correlation);
    assert_eq!(loaded.correlations.len(), 1);
    // Excluding the base rule stops the correlation too, and says why.
    let loaded = load(&SigmaConfig {
        paths: vec![dir.path().to_path_buf()],
        exclude_ids: vec!["base".into()],
        ..SigmaConfig::default()
    });
    let c4 = loaded.entries.iter().find(|e| e.id == "c4").unwrap();
    assert!(
        matches!(&c4.status, Status::Unsupported(e) if e.contains("does not run (excluded)")),
        "{:?}",
        c4.status
    );
}

#[test]
fn event_count_fires_once_at_the_threshold_and_stays_quiet_otherwise() {
    let set = sigma();
    // Five failures in ten minutes: fires on the fifth, once.
    let out = run(&set, &failures("adele@contoso.com", &[0, 2, 4, 6, 8, 9]));
    assert_eq!(count(&out, BURST), 1, "{:#?}", sigma_only(&out));
    let f = out.iter().find(|f| f.rule == BURST).unwrap();
    assert_eq!(f.time, at(8));
    assert_eq!(f.evidence["count"], 5);
    assert_eq!(f.evidence["correlation"], "event_count");
    assert_eq!(
        f.evidence["group"]["userPrincipalName"],
        "adele@contoso.com"
    );
    assert_eq!(f.event_ids.len(), 5);
    assert_eq!(f.event_ids[4], "adele@contoso.com-f4");
    assert_eq!(f.principal.upn.as_deref(), Some("adele@contoso.com"));
    assert_eq!(f.severity, entrawatch_detect::Severity::Medium);
    assert_eq!(f.mitre, ["T1110.001"]);
    // The base rule is only a building block: no alerts of its own (no `generate: true`).
    assert_eq!(count(&out, FAILED), 0);

    // Four: below the threshold.
    let out = run(&set, &failures("adele@contoso.com", &[0, 2, 4, 6]));
    assert_eq!(count(&out, BURST), 0);
    // Five, but never five within ten minutes (event time, not arrival).
    let out = run(&set, &failures("adele@contoso.com", &[0, 4, 8, 12, 16, 20]));
    assert_eq!(count(&out, BURST), 0);
    // Five in ten minutes, but for two users.
    let mut events = failures("adele@contoso.com", &[0, 2, 4]);
    events.extend(failures("bob@contoso.com", &[5, 6]));
    events.sort_by_key(|e| e.meta.time);
    let out = run(&set, &events);
    assert_eq!(count(&out, BURST), 0);
    // Five in ten minutes for one user name, but two in another tenant: tenants never join.
    let mut events = failures("adele@contoso.com", &[0, 2, 4, 6, 8]);
    for e in &mut events[3..] {
        e.meta.tenant_id = Text::from("99999999-2222-3333-4444-555555555555");
    }
    let out = run(&set, &events);
    assert_eq!(count(&out, BURST), 0);
    // Ten in ten minutes: two firings (the window starts again after each).
    let out = run(
        &set,
        &failures("adele@contoso.com", &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]),
    );
    assert_eq!(count(&out, BURST), 2);
}

#[test]
fn value_count_counts_distinct_users_per_address() {
    let set = sigma();
    let ip = "198.51.100.7";
    let events = vec![
        sign_in("a1", 0, "adele@contoso.com", ip, 50126),
        sign_in("a2", 10, "adele@contoso.com", ip, 50126),
        sign_in("b1", 20, "bob@contoso.com", ip, 50053),
        sign_in("c1", 30, "carol@contoso.com", "192.0.2.1", 50126),
        sign_in("d1", 40, "dan@contoso.com", ip, 50126),
    ];
    let out = run(&set, &events);
    assert_eq!(count(&out, ONE_IP), 1, "{:#?}", sigma_only(&out));
    let f = out.iter().find(|f| f.rule == ONE_IP).unwrap();
    assert_eq!(f.time, at(40));
    assert_eq!(f.evidence["count"], 3);
    assert_eq!(f.evidence["group"]["ipAddress"], ip);
    assert_eq!(
        f.evidence["values"],
        serde_json::json!(["adele@contoso.com", "bob@contoso.com", "dan@contoso.com"])
    );
    // The latest event of each value is kept: a2, not a1.
    assert_eq!(f.event_ids, ["a2", "b1", "d1"]);
    // The same three users, but the first more than an hour before the third.
    let late = vec![
        sign_in("a1", 0, "adele@contoso.com", ip, 50126),
        sign_in("b1", 30, "bob@contoso.com", ip, 50126),
        sign_in("d1", 61, "dan@contoso.com", ip, 50126),
    ];
    assert_eq!(count(&run(&set, &late), ONE_IP), 0);
}

#[test]
fn temporal_joins_two_logs_through_aliases_in_either_order() {
    let set = sigma();
    let out = run(
        &set,
        &[
            risky("r1", 0, "adele@contoso.com"),
            role_added("g1", 30, "bob@contoso.com"),
            role_added("g2", 45, "adele@contoso.com"),
        ],
    );
    assert_eq!(count(&out, RISKY_ROLE), 1, "{:#?}", sigma_only(&out));
    let f = out.iter().find(|f| f.rule == RISKY_ROLE).unwrap();
    assert_eq!(f.event_ids, ["r1", "g2"]);
    assert_eq!(f.evidence["group"]["user"], "adele@contoso.com");
    assert_eq!(f.severity, entrawatch_detect::Severity::Critical);
    // `generate: true`: the referenced rules keep their own alerts.
    assert_eq!(count(&out, RISKY), 1);
    assert_eq!(count(&out, ROLE), 2);
    // The other order fires too; more than an hour apart does not.
    let out = run(
        &set,
        &[
            role_added("g1", 0, "adele@contoso.com"),
            risky("r1", 59, "adele@contoso.com"),
        ],
    );
    assert_eq!(count(&out, RISKY_ROLE), 1);
    let out = run(
        &set,
        &[
            role_added("g1", 0, "adele@contoso.com"),
            risky("r1", 61, "adele@contoso.com"),
        ],
    );
    assert_eq!(count(&out, RISKY_ROLE), 0);
}

#[test]
fn temporal_ordered_wants_the_order_written() {
    let set = sigma();
    let upn = "adele@contoso.com";
    let ip = "198.51.100.7";
    let out = run(
        &set,
        &[
            sign_in("s0", 0, upn, ip, 0),
            sign_in("f1", 5, upn, ip, 50126),
            sign_in("s1", 10, upn, ip, 0),
        ],
    );
    assert_eq!(count(&out, THEN_SUCCESS), 1, "{:#?}", sigma_only(&out));
    let f = out.iter().find(|f| f.rule == THEN_SUCCESS).unwrap();
    // The evidence is the group's window: the earlier success too.
    assert_eq!(f.event_ids, ["s0", "f1", "s1"]);
    assert_eq!(count(&out, SUCCESS), 0);
    // Success first, then a failure: the wrong order.
    let out = run(
        &set,
        &[
            sign_in("s0", 0, upn, ip, 0),
            sign_in("f1", 5, upn, ip, 50126),
        ],
    );
    assert_eq!(count(&out, THEN_SUCCESS), 0);
}

/// Everything above in one stream of event time, several tenants' worth of users.
fn stream() -> Vec<Event> {
    let mut events = Vec::new();
    events.extend(failures(
        "adele@contoso.com",
        &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 30],
    ));
    events.extend(failures("bob@contoso.com", &[3, 50, 52, 54, 56, 58]));
    events.push(sign_in("x1", 31, "adele@contoso.com", "198.51.100.7", 0));
    events.push(sign_in(
        "x2",
        33,
        "carol@contoso.com",
        "198.51.100.7",
        50053,
    ));
    events.push(risky("r1", 35, "carol@contoso.com"));
    events.push(role_added("g1", 80, "carol@contoso.com"));
    events.push(role_added("g2", 200, "carol@contoso.com"));
    events.push(risky("r2", 230, "carol@contoso.com"));
    events.extend(failures("dan@contoso.com", &[225, 226, 227, 228, 229]));
    events.sort_by_key(|e| (e.meta.time, e.meta.id.to_string()));
    events
}

/// The property that matters: stop anywhere, write the engine snapshot, restore it into a new
/// engine, go on, and the findings are those of one run that never stopped.
#[test]
fn a_restart_through_the_snapshot_gives_the_same_findings() {
    let set = sigma();
    let events = stream();
    let whole = run(&set, &events);
    for rule in [BURST, ONE_IP, RISKY_ROLE, THEN_SUCCESS] {
        assert!(count(&whole, rule) > 0, "{rule}: {:#?}", sigma_only(&whole));
    }
    for split in 1..events.len() {
        let mut first = Engine::new(DetectConfig::default()).unwrap();
        first.set_extra_rules(Some(set.clone()));
        let mut out = Vec::new();
        for e in &events[..split] {
            first.process(e, &mut out);
        }
        let mut bytes = Vec::new();
        first.write_snapshot(&mut bytes).unwrap();
        drop(first);
        let mut second = Engine::restore(DetectConfig::default(), bytes.as_slice()).unwrap();
        second.set_extra_rules(Some(set.clone()));
        for e in &events[split..] {
            second.process(e, &mut out);
        }
        assert_eq!(out, whole, "split at {split}");
    }
    // Without the windows in the snapshot, a split inside a burst would lose the correlation:
    // the snapshot holds them.
    let mut engine = Engine::new(DetectConfig::default()).unwrap();
    engine.set_extra_rules(Some(set.clone()));
    let mut out = Vec::new();
    for e in &events[..3] {
        engine.process(e, &mut out);
    }
    assert!(engine.extra_state().groups() > 0);
    assert!(engine.extra_state().approx_bytes() > 0);
}

/// The same events, however they arrive, give the same findings once put in replay order (event
/// time), run after run.
#[test]
fn the_same_events_in_replay_order_give_the_same_findings() {
    let set = sigma();
    let events = stream();
    let whole = run(&set, &events);
    let mut shuffled = events.clone();
    shuffled.reverse();
    shuffled.swap(0, 7);
    shuffled.sort_by_key(|e| (e.meta.time, e.meta.id.to_string()));
    assert_eq!(run(&set, &shuffled), whole);
    assert_eq!(run(&set, &events), whole);
}

/// Windows older than their timespan are dropped as event time passes: the state does not grow
/// with groups that went quiet.
#[test]
fn quiet_groups_are_evicted_by_event_time() {
    let set = sigma();
    let mut engine = Engine::new(DetectConfig::default()).unwrap();
    engine.set_extra_rules(Some(set));
    let mut out = Vec::new();
    for i in 0..50 {
        let e = sign_in(
            &format!("u{i}"),
            i,
            &format!("user{i}@contoso.com"),
            &format!("192.0.2.{i}"),
            50126,
        );
        engine.process(&e, &mut out);
    }
    assert!(engine.extra_state().groups() >= 50);
    // Two hours later, one more event: everything older than its correlation's timespan goes.
    engine.process(
        &sign_in("late", 50 + 180, "zed@contoso.com", "192.0.2.200", 50126),
        &mut out,
    );
    assert!(
        engine.extra_state().groups() <= 3,
        "{}",
        engine.extra_state().groups()
    );
}
