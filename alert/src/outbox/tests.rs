use std::collections::BTreeSet;

use chrono::{DateTime, Duration, Utc};
use entrawatch_detect::{Principal, PrincipalKind, Severity};
use serde_json::json;

use super::*;
use crate::notify::{Kind, notification_id};
use crate::record::AlertRecord;

fn t(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_700_000_000 + secs, 0).unwrap()
}

fn alert(id: &str, severity: Severity) -> AlertRecord {
    AlertRecord {
        id: id.into(),
        rule: "impossible_travel".into(),
        severity,
        tenant_id: "t1".into(),
        tenant_name: None,
        principal: Principal {
            kind: PrincipalKind::User,
            id: "u1".into(),
            upn: Some("alice@contoso.com".into()),
            home_tenant_id: None,
        },
        title: format!("{id} impossible travel"),
        summary: "s".into(),
        first_seen: t(0),
        last_seen: t(0),
        count: 1,
        event_ids: vec!["e1".into()],
        evidence: Default::default(),
        mitre: vec![],
    }
}

fn row(alert_id: &str, dest: &str, seq: u32, group: &str, created: i64) -> Notification {
    Notification {
        id: notification_id(alert_id, dest, seq),
        alert_id: alert_id.into(),
        destination: dest.into(),
        kind: if seq == 0 {
            Kind::First
        } else {
            Kind::Escalation
        },
        seq,
        group_key: group.into(),
        group_wait_secs: 30,
        group_interval_secs: 300,
        fallback: vec!["slack".into()],
        severity: Severity::High,
        alert: alert(alert_id, Severity::High),
        event_time: t(created),
        created_at: t(created),
    }
}

fn open() -> (tempfile::TempDir, Outbox) {
    let dir = tempfile::tempdir().unwrap();
    let o = Outbox::open(&dir.path().join("outbox.db")).unwrap();
    (dir, o)
}

fn ids(b: &Batch) -> Vec<String> {
    b.rows.iter().map(|r| r.notification.id.clone()).collect()
}

#[test]
fn commit_is_replay_safe_and_stores_checkpoints_with_the_rows() {
    let (dir, mut o) = open();
    let rows = [
        row("ew-a", "teams", 0, "g", 0),
        row("ew-b", "teams", 0, "g", 0),
    ];
    let cp = [("kafka:p0".to_owned(), json!({"offset": 41}))];
    assert_eq!(o.commit(&rows, &cp).unwrap(), 2);
    let cp2 = [("kafka:p0".to_owned(), json!({"offset": 42}))];
    assert_eq!(o.commit(&rows, &cp2).unwrap(), 0, "same ids are ignored");
    drop(o);
    let o = Outbox::open(&dir.path().join("outbox.db")).unwrap();
    assert_eq!(o.checkpoints().unwrap()["kafka:p0"], json!({"offset": 42}));
    assert_eq!(o.rows(Some("teams")).unwrap().len(), 2);
    assert_eq!(o.meta("schema_version").unwrap().as_deref(), Some("1"));
    let mode: String = o
        .conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    let sync: i64 = o
        .conn
        .query_row("PRAGMA synchronous", [], |r| r.get(0))
        .unwrap();
    assert_eq!(sync, 2, "FULL");
}

#[test]
fn silences_round_trip() {
    let (_dir, mut o) = open();
    o.put_silence("s1", &json!({"matchers": ["rule=x"]}))
        .unwrap();
    o.put_silence("s1", &json!({"matchers": ["rule=y"]}))
        .unwrap();
    o.put_silence("s2", &json!({})).unwrap();
    let all = o.list_silences().unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(all[0].1, json!({"matchers": ["rule=y"]}));
    assert!(o.delete_silence("s1").unwrap());
    assert!(!o.delete_silence("s1").unwrap());
    assert_eq!(o.list_silences().unwrap().len(), 1);
}

#[test]
fn group_wait_and_group_interval_gate_batches() {
    let (_dir, mut o) = open();
    o.commit(
        &[
            row("ew-a", "teams", 0, "g1", 0),
            row("ew-b", "teams", 0, "g1", 10),
            row("ew-c", "teams", 0, "g2", 5),
        ],
        &[],
    )
    .unwrap();
    assert!(
        o.next_batch("teams", t(29), 100).unwrap().is_none(),
        "group_wait not over"
    );
    assert_eq!(o.next_due("teams").unwrap(), Some(t(30)));
    let b = o.next_batch("teams", t(30), 100).unwrap().unwrap();
    assert_eq!(b.group_key, "g1");
    assert_eq!(
        b.rows.len(),
        2,
        "ew-b joined the group while it waited and rides along"
    );
    let leased = o
        .lease(
            &ids(&b).iter().map(String::as_str).collect::<Vec<_>>(),
            t(100),
        )
        .unwrap();
    assert_eq!(leased.len(), 2);
    let refs: Vec<&str> = leased.iter().map(String::as_str).collect();
    assert_eq!(
        o.mark_delivered("teams", "g1", &refs, t(40), "202")
            .unwrap(),
        2
    );
    // g2 is independent; a new g1 row waits for the group interval
    o.commit(&[row("ew-d", "teams", 0, "g1", 41)], &[]).unwrap();
    assert_eq!(o.next_due("teams").unwrap(), Some(t(35)), "g2");
    let b = o.next_batch("teams", t(100), 100).unwrap().unwrap();
    assert_eq!(b.group_key, "g2");
    o.lease(&[ids(&b)[0].as_str()], t(200)).unwrap();
    o.mark_delivered("teams", "g2", &[ids(&b)[0].as_str()], t(100), "202")
        .unwrap();
    assert!(o.next_batch("teams", t(339), 100).unwrap().is_none());
    assert_eq!(o.next_due("teams").unwrap(), Some(t(340)));
    assert_eq!(
        o.next_batch("teams", t(340), 100)
            .unwrap()
            .unwrap()
            .group_key,
        "g1"
    );
    assert!(o.next_batch("slack", t(1000), 100).unwrap().is_none());
}

#[test]
fn retry_dead_and_requeue_move_only_leased_rows() {
    let (_dir, mut o) = open();
    let r = row("ew-a", "teams", 0, "g", 0);
    o.commit(std::slice::from_ref(&r), &[]).unwrap();
    let retry = Retry {
        next_attempt_at: t(100),
        count_attempt: true,
        minimal: true,
        last_status: "400".into(),
        last_error: "invalid_blocks".into(),
    };
    assert_eq!(o.mark_retry(&[&r.id], &retry).unwrap(), 0, "not leased");
    o.lease(&[&r.id], t(60)).unwrap();
    assert_eq!(o.mark_retry(&[&r.id], &retry).unwrap(), 1);
    let info = o.row(&r.id).unwrap().unwrap();
    assert_eq!(
        (info.status, info.attempts, info.minimal),
        (Status::Pending, 1, true)
    );
    assert!(
        o.next_batch("teams", t(99), 10).unwrap().is_none(),
        "next_attempt_at respected"
    );
    let b = o.next_batch("teams", t(100), 10).unwrap().unwrap();
    assert!(b.rows[0].minimal);
    o.lease(&[&r.id], t(160)).unwrap();
    assert_eq!(o.requeue_inflight(Some("teams")).unwrap(), 1);
    o.lease(&[&r.id], t(160)).unwrap();
    assert_eq!(o.mark_dead(&[&r.id], "400", "still refused").unwrap(), 1);
    assert_eq!(o.dead_letters().unwrap().len(), 1);
    assert_eq!(o.stats().unwrap().dead(), 1);
    assert!(o.ack_dead_letter(&r.id).unwrap());
    assert!(o.dead_letters().unwrap().is_empty());
}

#[test]
fn coalesce_keeps_the_newest_row_of_an_alert() {
    let (_dir, mut o) = open();
    o.commit(
        &[
            row("ew-a", "teams", 0, "g", 0),
            row("ew-a", "teams", 1, "g", 1),
            row("ew-a", "teams", 2, "g", 2),
            row("ew-a", "slack", 0, "g", 0),
        ],
        &[],
    )
    .unwrap();
    let gone = o.coalesce("teams", &[("ew-a".into(), 2)]).unwrap();
    assert_eq!(gone.len(), 2);
    assert!(gone.iter().any(|(_, k)| *k == Kind::First));
    let statuses: Vec<Status> = o
        .rows(Some("teams"))
        .unwrap()
        .iter()
        .map(|r| r.status)
        .collect();
    assert_eq!(
        statuses,
        [Status::Coalesced, Status::Coalesced, Status::Pending]
    );
    assert_eq!(
        o.rows(Some("slack")).unwrap()[0].status,
        Status::Pending,
        "other destinations untouched"
    );
}

#[test]
fn reroute_copies_to_known_fallbacks_once() {
    let (_dir, mut o) = open();
    let mut no_fallback = row("ew-b", "teams", 0, "g", 0);
    no_fallback.fallback.clear();
    let mut unknown = row("ew-c", "teams", 0, "g", 0);
    unknown.fallback = vec!["pager".into()];
    o.commit(
        &[row("ew-a", "teams", 0, "g", 0), no_fallback, unknown],
        &[],
    )
    .unwrap();
    let known: BTreeSet<String> = ["teams", "slack"].map(String::from).into();
    let moved = o.reroute("teams", t(5), &known).unwrap();
    assert_eq!(moved.len(), 1);
    assert_eq!(moved[0].to, ["slack"]);
    let copy = o.rows(Some("slack")).unwrap();
    assert_eq!(copy.len(), 1);
    assert_eq!(
        copy[0].notification_id,
        rerouted_id(&moved[0].notification_id, "slack")
    );
    assert_eq!(
        copy[0].rerouted_from.as_deref(),
        Some(moved[0].notification_id.as_str())
    );
    assert_eq!(
        copy[0].created_at,
        t(0),
        "latency still counts from the first commit"
    );
    assert!(o.reroute("teams", t(6), &known).unwrap().is_empty());
    let teams: Vec<Status> = o
        .rows(Some("teams"))
        .unwrap()
        .iter()
        .map(|r| r.status)
        .collect();
    assert_eq!(teams.iter().filter(|s| **s == Status::Rerouted).count(), 1);
    assert_eq!(teams.iter().filter(|s| **s == Status::Pending).count(), 2);
}

#[test]
fn expire_kills_ordinary_rows_and_alarms_critical_ones_once() {
    let (_dir, mut o) = open();
    let mut crit = row("ew-c", "teams", 0, "g", 0);
    crit.severity = Severity::Critical;
    o.commit(
        &[
            row("ew-a", "teams", 0, "g", 0),
            crit,
            row("ew-n", "teams", 0, "g", 100),
        ],
        &[],
    )
    .unwrap();
    let day = std::time::Duration::from_secs(60);
    let e = o.expire("teams", t(59), day).unwrap();
    assert_eq!(e, Expired::default());
    assert_eq!(o.next_deadline("teams").unwrap(), Some(t(60)));
    let e = o.expire("teams", t(60), day).unwrap();
    assert_eq!(e.dead.len(), 1);
    assert_eq!(e.alarmed.len(), 1);
    assert_eq!(e.dead[0].alert_id, "ew-a");
    assert_eq!(e.alarmed[0].alert_id, "ew-c");
    assert_eq!(
        o.expire("teams", t(61), day).unwrap(),
        Expired::default(),
        "alarmed once"
    );
    let crit = o
        .row(&notification_id("ew-c", "teams", 0))
        .unwrap()
        .unwrap();
    assert_eq!((crit.status, crit.alarmed), (Status::Pending, true));
    let stats = o.stats().unwrap();
    assert_eq!(stats.destinations["teams"].pending, 2);
    assert_eq!(stats.destinations["teams"].dead, 1);
    assert_eq!(stats.oldest_pending_age_secs(t(70)), Some(70));
}

#[test]
fn purge_drops_finished_rows_after_retention_only() {
    let (_dir, mut o) = open();
    let r = row("ew-a", "teams", 0, "g", 0);
    let keep = row("ew-b", "teams", 0, "g", 0);
    o.commit(&[r.clone(), keep], &[]).unwrap();
    o.lease(&[&r.id], t(10)).unwrap();
    o.mark_delivered("teams", "g", &[&r.id], t(1), "202")
        .unwrap();
    let week = RETENTION;
    assert_eq!(o.purge(t(1) + Duration::days(6), week).unwrap(), 0);
    assert_eq!(o.purge(t(2) + Duration::days(7), week).unwrap(), 1);
    assert_eq!(o.rows(None).unwrap().len(), 1, "pending row kept");
}

#[test]
fn a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("outbox.db");
    let mut o = Outbox::open(&path).unwrap();
    o.set_meta("schema_version", "99").unwrap();
    drop(o);
    assert!(matches!(
        Outbox::open(&path),
        Err(OutboxError::Schema { .. })
    ));
}
