//! System notifications: entrawatch telling the fallback destinations about its own delivery
//! problems (a destination broken or unreachable, a payload refused, dead letters, a critical alert
//! past its deadline). They are ordinary outbox rows of kind `system`, with deterministic ids so a
//! repeat after a crash inserts nothing.

use chrono::{DateTime, Utc};
use entrawatch_detect::{Principal, PrincipalKind, Severity};
use entrawatch_ingest::notice::{AccessChange, Notice};
use serde_json::{Map, Value, json};

use crate::destination::ResolvedDestination;
use crate::notify::{Kind, Notification, id_hash, notification_id};
use crate::outbox::ExpiredRow;
use crate::record::AlertRecord;

/// The tenant and principal id system alerts carry.
pub const SYSTEM_TENANT: &str = "entrawatch";

/// What a system alert is about.
#[derive(Debug, Clone)]
pub struct SystemEvent {
    /// `entrawatch_destination_broken`, `entrawatch_payload_refused`, `entrawatch_dead_letters`,
    /// `entrawatch_deadline_passed`.
    pub rule: &'static str,
    pub severity: Severity,
    pub title: String,
    pub summary: String,
    pub evidence: Map<String, Value>,
    /// What makes two events the same alert (hashed into the id).
    pub key: String,
}

/// The alert record of a system event at `now`.
pub fn system_alert(event: &SystemEvent, now: DateTime<Utc>) -> AlertRecord {
    AlertRecord {
        id: format!("ew-{}", id_hash(&[event.rule, event.key.as_str()])),
        rule: event.rule.to_owned(),
        severity: event.severity,
        tenant_id: SYSTEM_TENANT.to_owned(),
        tenant_name: None,
        principal: Principal {
            kind: PrincipalKind::Tenant,
            id: SYSTEM_TENANT.to_owned(),
            upn: None,
            home_tenant_id: None,
        },
        title: event.title.clone(),
        summary: event.summary.clone(),
        first_seen: now,
        last_seen: now,
        count: 1,
        event_ids: Vec::new(),
        evidence: event.evidence.clone(),
        mitre: Vec::new(),
    }
}

/// One notification of `event` for each destination in `to`, sent without group wait.
pub fn system_notifications(
    event: &SystemEvent,
    to: &[String],
    now: DateTime<Utc>,
) -> Vec<Notification> {
    let alert = system_alert(event, now);
    to.iter()
        .map(|d| Notification {
            id: notification_id(&alert.id, d, 0),
            alert_id: alert.id.clone(),
            destination: d.clone(),
            kind: Kind::System,
            seq: 0,
            group_key: format!("system:{}", event.rule),
            group_wait_secs: 0,
            group_interval_secs: 0,
            fallback: Vec::new(),
            severity: event.severity,
            alert: alert.clone(),
            event_time: now,
            created_at: now,
        })
        .collect()
}

/// `dest` answered as broken; its rows now go to `to`. One per circuit opening (`now`).
pub fn destination_broken(
    dest: &ResolvedDestination,
    status: &str,
    detail: &str,
    to: &[String],
    now: DateTime<Utc>,
) -> SystemEvent {
    let mut evidence = Map::new();
    evidence.insert("destination".into(), json!(dest.name));
    evidence.insert("type".into(), json!(dest.kind().as_str()));
    evidence.insert("status".into(), json!(status));
    evidence.insert("detail".into(), json!(detail));
    SystemEvent {
        rule: "entrawatch_destination_broken",
        severity: Severity::High,
        title: format!("Destination {} is broken ({status})", dest.name),
        summary: format!(
            "{} answered {status} {detail}. Its notifications go to {} until it works again \
             (tried every {} s). Check that the webhook still exists and its owner still has \
             access; rotate the URL if needed.",
            dest.name,
            to.join(", "),
            dest.probe_interval.as_secs()
        ),
        evidence,
        key: format!("{}:{}", dest.name, now.timestamp_millis()),
    }
}

/// `dest` could not be connected to (refused, DNS) since `since`; its rows now go to `to`. One per
/// circuit opening (`now`).
pub fn destination_unreachable(
    dest: &ResolvedDestination,
    detail: &str,
    since: DateTime<Utc>,
    to: &[String],
    now: DateTime<Utc>,
) -> SystemEvent {
    let mut evidence = Map::new();
    evidence.insert("destination".into(), json!(dest.name));
    evidence.insert("type".into(), json!(dest.kind().as_str()));
    evidence.insert("status".into(), json!("network"));
    evidence.insert("detail".into(), json!(detail));
    evidence.insert("unreachable_since".into(), json!(since.to_rfc3339()));
    let secs = (now - since).num_seconds().max(0);
    SystemEvent {
        rule: "entrawatch_destination_broken",
        severity: Severity::High,
        title: format!("Destination {} is unreachable", dest.name),
        summary: format!(
            "No connection to {} for {secs} s ({detail}). Its notifications go to {} until it \
             answers again (tried every {} s). Check its DNS name, that the receiver is up and \
             that the network lets entrawatch reach it.",
            dest.name,
            to.join(", "),
            dest.probe_interval.as_secs()
        ),
        evidence,
        key: format!("{}:{}", dest.name, now.timestamp_millis()),
    }
}

/// `dest` refused the payload of `rows` even in minimal form (`status`, `detail`); those with a
/// fallback went to `to`, the others are dead letters.
pub fn payload_refused(
    dest: &ResolvedDestination,
    status: &str,
    detail: &str,
    rows: &[(String, String)],
    to: &[String],
    dead: usize,
) -> SystemEvent {
    let mut evidence = Map::new();
    evidence.insert("destination".into(), json!(dest.name));
    evidence.insert("type".into(), json!(dest.kind().as_str()));
    evidence.insert("status".into(), json!(status));
    evidence.insert("detail".into(), json!(detail));
    evidence.insert("count".into(), json!(rows.len()));
    evidence.insert("rerouted_to".into(), json!(to));
    evidence.insert("dead_letters".into(), json!(dead));
    let alerts: Vec<Value> = rows.iter().take(20).map(|(_, a)| json!(a)).collect();
    evidence.insert("alerts".into(), Value::Array(alerts));
    let went = match (to.is_empty(), dead) {
        (false, 0) => format!("They went to {} instead.", to.join(", ")),
        (false, d) => format!(
            "Those with a fallback went to {}; {d} without one are kept as dead letters in the \
             outbox.",
            to.join(", ")
        ),
        (true, _) => "They have no fallback and are kept as dead letters in the outbox.".to_owned(),
    };
    SystemEvent {
        rule: "entrawatch_payload_refused",
        severity: Severity::High,
        title: format!(
            "{} notification(s) refused by {} ({status})",
            rows.len(),
            dest.name
        ),
        summary: format!(
            "{} refused the message even in its minimal form: {status} {detail}. {went} The \
             destination still takes other messages; check what it accepts (a changed Workflows \
             trigger schema, a payload limit).",
            dest.name
        ),
        evidence,
        key: format!(
            "{}:{}",
            dest.name,
            rows.first().map_or("", |(id, _)| id.as_str())
        ),
    }
}

/// `rows` of `destination` were given up (`why`).
pub fn dead_letters(destination: &str, rows: &[ExpiredRow], why: &str) -> SystemEvent {
    let mut evidence = Map::new();
    evidence.insert("destination".into(), json!(destination));
    evidence.insert("count".into(), json!(rows.len()));
    evidence.insert("reason".into(), json!(why));
    let alerts: Vec<Value> = rows.iter().take(20).map(|r| json!(r.alert_id)).collect();
    evidence.insert("alerts".into(), Value::Array(alerts));
    SystemEvent {
        rule: "entrawatch_dead_letters",
        severity: Severity::High,
        title: format!(
            "{} notification(s) to {destination} were given up",
            rows.len()
        ),
        summary: format!(
            "Notifications to {destination} were {why} and are kept as dead letters in the outbox."
        ),
        evidence,
        key: format!(
            "{destination}:{}",
            rows.first().map_or("", |r| r.notification_id.as_str())
        ),
    }
}

/// A critical notification to `dest` passed its deadline and is still retried.
pub fn deadline_passed(dest: &ResolvedDestination, row: &ExpiredRow) -> SystemEvent {
    let mut evidence = Map::new();
    evidence.insert("destination".into(), json!(dest.name));
    evidence.insert("alert".into(), json!(row.alert_id));
    evidence.insert("last_error".into(), json!(row.last_error));
    SystemEvent {
        rule: "entrawatch_deadline_passed",
        severity: Severity::Critical,
        title: format!(
            "Critical alert {} not delivered to {}",
            row.alert_id, dest.name
        ),
        summary: format!(
            "A critical notification to {} is past its {} h deadline; entrawatch keeps retrying it.",
            dest.name,
            dest.deadline.as_secs() / 3600
        ),
        evidence,
        key: row.notification_id.clone(),
    }
}

/// The system alert a source's [`Notice`] makes: about a customer tenant, so it carries that
/// tenant (routes, silences and tenant labels apply as to the tenant's own alerts). Its id hashes
/// the source, the tenant and when the loss began, so the notice and its repeats make one alert,
/// and its restoration another.
pub fn access_alert(source: &str, notice: &Notice, now: DateTime<Utc>) -> AlertRecord {
    let lost = notice.change == AccessChange::Lost;
    let (rule, severity) = if lost {
        ("entrawatch_source_access_lost", Severity::High)
    } else {
        ("entrawatch_source_access_restored", Severity::Info)
    };
    let mut evidence = Map::new();
    evidence.insert("source".into(), json!(source));
    evidence.insert("tenant".into(), json!(notice.tenant_label));
    evidence.insert("lost_since".into(), json!(notice.since.to_rfc3339()));
    let streams: Vec<Value> = notice
        .streams
        .iter()
        .map(|s| {
            json!({
                "stream": s.stream,
                "cause": s.cause.map(|c| c.as_str()),
                "detail": s.detail,
            })
        })
        .collect();
    evidence.insert("streams".into(), Value::Array(streams));
    let first = notice.streams.first();
    let (title, summary) = if lost {
        let cause = first.and_then(|s| s.cause);
        evidence.insert("cause".into(), json!(cause.map(|c| c.as_str())));
        (
            format!(
                "Graph access to tenant {} lost ({})",
                notice.tenant_label,
                cause.map_or("refused", |c| c.as_str())
            ),
            format!(
                "Source {source} can no longer read the {} logs of tenant {} ({}): {}. Nothing \
                 from this stream reaches detection until it answers again; other streams and \
                 tenants go on. Graph said: {}",
                first.map_or("", |s| s.stream.as_str()),
                notice.tenant_label,
                notice.tenant_id,
                cause.map_or("it was refused", |c| c.advice()),
                first.map_or("", |s| s.detail.as_str()),
            ),
        )
    } else {
        (
            format!("Graph access to tenant {} restored", notice.tenant_label),
            format!(
                "Source {source} reads every stream of tenant {} ({}) again, lost since {}. \
                 Records from the gap are read as the back-fill overlap allows.",
                notice.tenant_label,
                notice.tenant_id,
                notice.since.to_rfc3339()
            ),
        )
    };
    let since = notice.since.timestamp_millis().to_string();
    let hex = id_hash(&[rule, source, notice.tenant_id.as_str(), &since]);
    AlertRecord {
        id: format!("ew-{hex}"),
        rule: rule.to_owned(),
        severity,
        tenant_id: notice.tenant_id.clone(),
        tenant_name: None,
        principal: Principal {
            kind: PrincipalKind::Tenant,
            id: notice.tenant_id.clone(),
            upn: None,
            home_tenant_id: None,
        },
        title,
        summary,
        first_seen: now,
        last_seen: now,
        count: 1,
        event_ids: Vec::new(),
        evidence,
        mitre: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_event_same_ids() {
        let e = SystemEvent {
            rule: "entrawatch_destination_broken",
            severity: Severity::High,
            title: "t".into(),
            summary: "s".into(),
            evidence: Map::new(),
            key: "teams:1".into(),
        };
        let now = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let a = system_notifications(&e, &["slack".into(), "hook".into()], now);
        let b = system_notifications(&e, &["slack".into(), "hook".into()], now);
        assert_eq!(a, b);
        assert_ne!(a[0].id, a[1].id);
        assert_eq!(a[0].kind, Kind::System);
        assert!(a[0].alert.id.starts_with("ew-"));
    }

    #[test]
    fn a_refusal_says_where_the_rows_went() {
        let dest = ResolvedDestination::new("siem", crate::sink::Sink::Stdout);
        let rows = [("n-1".to_owned(), "ew-a".to_owned())];
        let moved = payload_refused(&dest, "400", "bad field", &rows, &["slack".into()], 0);
        assert_eq!(moved.rule, "entrawatch_payload_refused");
        assert!(moved.summary.contains("went to slack"), "{}", moved.summary);
        let dead = payload_refused(&dest, "400", "bad field", &rows, &[], 1);
        assert!(dead.summary.contains("dead letters"), "{}", dead.summary);
        assert_eq!(moved.key, dead.key, "one refusal, one alert");
        let now = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let since = now - chrono::Duration::seconds(300);
        let e = destination_unreachable(&dest, "connect: refused", since, &["slack".into()], now);
        assert_eq!(e.rule, "entrawatch_destination_broken");
        assert!(e.title.contains("unreachable") && e.summary.contains("300 s"));
    }

    #[test]
    fn an_access_alert_is_about_the_customer_tenant_and_one_per_loss() {
        use entrawatch_ingest::notice::{AccessCause, StreamAccess};
        let since = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let notice = Notice {
            tenant_id: "t1".into(),
            tenant_label: "Contoso".into(),
            change: AccessChange::Lost,
            since,
            streams: vec![StreamAccess {
                stream: "sign_ins_user".into(),
                cause: Some(AccessCause::Licence),
                detail: "HTTP 403: Authentication_RequestFromNonPremiumTenantOrB2CTenant: x".into(),
            }],
        };
        let now = since + chrono::Duration::minutes(3);
        let a = access_alert("graph", &notice, now);
        assert_eq!(a.rule, "entrawatch_source_access_lost");
        assert_eq!((a.tenant_id.as_str(), a.severity), ("t1", Severity::High));
        assert_eq!(a.evidence["cause"], json!("licence"));
        assert!(a.title.contains("Contoso") && a.summary.contains("P1/P2"));
        // One sentence after another, as a SOC reads it (the wrapped literals join with a space).
        assert!(!a.summary.contains("  "), "{}", a.summary);
        // The same notice later (a repeat after a crash) is the same alert; another loss, another
        // source or the restoration is not.
        let later = access_alert("graph", &notice, now + chrono::Duration::hours(1));
        assert_eq!(later.id, a.id);
        let mut again = notice.clone();
        again.since = now;
        assert_ne!(access_alert("graph", &again, now).id, a.id);
        assert_ne!(access_alert("graph-eu", &notice, now).id, a.id);
        let mut back = notice.clone();
        back.change = AccessChange::Restored;
        let r = access_alert("graph", &back, now);
        assert_eq!(
            (r.rule.as_str(), r.severity),
            ("entrawatch_source_access_restored", Severity::Info)
        );
        assert!(!r.summary.contains("  "), "{}", r.summary);
        assert_ne!(r.id, a.id);
    }
}
