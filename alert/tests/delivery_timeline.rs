//! Timelines of delivery on a manual clock (docs/alerting.md §5.9 item 2): group wait and group
//! interval, coalescing under backlog, deadlines and dead letters, local sinks and shutdown.
//! Receivers record the clock's time of each request, so "not before X" is checked on that clock.

mod common;

use std::time::Duration;

use common::*;
use entrawatch_alert::destination::ResolvedDestination;
use entrawatch_alert::metrics::DeliveryMetrics;
use entrawatch_alert::outbox::Status;
use entrawatch_alert::sink::Sink;
use entrawatch_alert::{Kind, Notification};
use entrawatch_detect::Severity;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_wait_and_group_interval_make_one_message_per_group() {
    let mut h = Harness::new();
    let hook_fake = Fake::start(h.clock(), Reply::new(200, "")).await;
    let d = h.start(vec![fast(webhook("hook", &hook_fake, None))]);
    let row = |n: &str, h: &Harness, group: &str| {
        Row::new(n, "hook", h.now()).group(group, 30, 300).build()
    };
    h.commit(&[row("g1", &h, "spray")], Some(&d));
    common::pass(&h.clock, Duration::from_secs(5), 1).await;
    h.commit(&[row("g2", &h, "spray").clone()], Some(&d));
    common::pass(&h.clock, Duration::from_secs(5), 1).await;
    let critical = Row::new("g3", "hook", h.now())
        .group("spray", 30, 300)
        .severity(Severity::Critical)
        .build();
    h.commit(&[critical], Some(&d));
    drive(&h.clock, Duration::from_secs(1), 60, "the group", || {
        hook_fake.count() == 1
    })
    .await;
    let first = &hook_fake.received()[0];
    assert!(
        first.at >= t0() + chrono::Duration::seconds(30),
        "sent at {} before group_wait",
        first.at
    );
    let body: serde_json::Value = serde_json::from_slice(&first.body).unwrap();
    assert_eq!(body["alert_count"], 3, "{body}");
    assert_eq!(
        body["alert_id"], "ew-test-g3",
        "the most severe alert leads"
    );
    assert_eq!(first.alert_ids().len(), 3);
    settle("marked", || h.count("hook", Status::Delivered) == 3).await;

    // a later alert of the same group waits for group_interval; another group only for its wait
    common::pass(&h.clock, Duration::from_secs(10), 1).await;
    let late = row("g4", &h, "spray");
    let other = row("o1", &h, "other");
    let committed = h.now();
    h.commit(&[late.clone(), other.clone()], Some(&d));
    // Move the clock to the end of the other group's wait and hold it there: the other group must
    // go out without more clock time, long before the first group's interval ends. (Driving the
    // clock on while waiting could run it past that interval on a loaded machine, and then either
    // group could go first.)
    common::pass(&h.clock, Duration::from_secs(5), 6).await;
    assert_eq!(h.now(), committed + chrono::Duration::seconds(30));
    settle("the other group, at the end of its wait", || {
        hook_fake.count() >= 2
    })
    .await;
    drive(
        &h.clock,
        Duration::from_secs(5),
        100,
        "the late alert",
        || hook_fake.count() == 3,
    )
    .await;
    let got = hook_fake.received();
    assert_eq!(got[1].alert_ids(), ["ew-test-o1".to_owned()].into());
    assert!(got[1].at >= committed + chrono::Duration::seconds(30));
    assert!(got[1].at < first.at + chrono::Duration::seconds(300));
    assert_eq!(got[2].alert_ids(), ["ew-test-g4".to_owned()].into());
    assert!(
        got[2].at >= first.at + chrono::Duration::seconds(300),
        "group_interval: {}",
        got[2].at
    );
    settle("marked", || {
        h.metrics
            .latency
            .with_label_values(&["hook"])
            .get_sample_count()
            == 5
    })
    .await;
    let latency = h.metrics.latency.with_label_values(&["hook"]);
    assert_eq!(latency.get_sample_count(), 5);
    assert!(
        latency.get_sample_sum() >= 30.0 * 3.0,
        "latency runs from commit to 2xx on the clock"
    );
    d.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backlog_of_one_alert_coalesces_into_its_newest_notification() {
    let mut h = Harness::new();
    let hook_fake = Fake::start(h.clock(), Reply::new(200, "")).await;
    hook_fake.script([Reply::new(429, "").header("Retry-After", "60")]);
    let d = h.start(vec![fast(webhook("hook", &hook_fake, None))]);
    let first = Row::new("x", "hook", h.now()).build();
    h.commit(std::slice::from_ref(&first), Some(&d));
    settle("throttled", || hook_fake.count() == 1).await;
    common::pass(&h.clock, Duration::from_secs(10), 1).await;
    let escalation = Row::new("x", "hook", h.now())
        .seq(1, Kind::Escalation)
        .build();
    let reminder = Row::new("x", "hook", h.now())
        .seq(2, Kind::Reminder)
        .build();
    h.commit(&[escalation.clone(), reminder.clone()], Some(&d));
    drive(
        &h.clock,
        Duration::from_secs(5),
        30,
        "after the pause",
        || hook_fake.count() == 2,
    )
    .await;
    settle("marked", || {
        h.metrics
            .notifications_count("hook", "reminder", "delivered")
            == 1
    })
    .await;
    assert_eq!(h.status(&reminder.id), Status::Delivered);
    assert_eq!(h.status(&first.id), Status::Coalesced);
    assert_eq!(h.status(&escalation.id), Status::Coalesced);
    let got = &hook_fake.received()[1];
    assert_eq!(got.header("idempotency-key"), Some(reminder.id.as_str()));
    let body: serde_json::Value = serde_json::from_slice(&got.body).unwrap();
    assert_eq!(
        (body["kind"].as_str(), body["count"].as_u64()),
        (Some("reminder"), Some(3))
    );
    assert_eq!(
        h.metrics.notifications_count("hook", "first", "coalesced"),
        1
    );
    assert_eq!(
        h.metrics
            .notifications_count("hook", "escalation", "coalesced"),
        1
    );
    assert_eq!(
        h.metrics
            .notifications_count("hook", "reminder", "delivered"),
        1
    );
    d.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_deadline_rows_die_and_critical_ones_are_alarmed() {
    let mut h = Harness::new();
    let hook_fake = Fake::start(h.clock(), Reply::new(500, "down")).await;
    let slack_fake = Fake::start(h.clock(), Reply::slack_ok()).await;
    let mut hook = fast(webhook("hook", &hook_fake, None));
    hook.deadline = Duration::from_secs(60);
    let d = h.start(vec![hook, fast(slack("slack", &slack_fake))]);
    let high = Row::new("hi", "hook", h.now()).fallback(&["slack"]).build();
    let crit = Row::new("cr", "hook", h.now())
        .severity(Severity::Critical)
        .fallback(&["slack"])
        .build();
    h.commit(&[high.clone(), crit.clone()], Some(&d));
    drive(
        &h.clock,
        Duration::from_secs(1),
        120,
        "the deadline",
        || h.status(&high.id) == Status::Dead,
    )
    .await;
    assert!(h.now() >= t0() + chrono::Duration::seconds(60));
    settle("both system alerts", || slack_fake.count() == 2).await;
    let texts: Vec<String> = slack_fake.received().iter().map(|r| r.text()).collect();
    assert!(texts.iter().any(|t| t.contains("given up")), "{texts:?}");
    assert!(texts.iter().any(|t| t.contains("ew-test-cr")), "{texts:?}");
    let crit_row = h.outbox.row(&crit.id).unwrap().unwrap();
    assert!(
        crit_row.alarmed && crit_row.status != Status::Dead,
        "{crit_row:?}"
    );
    assert!(
        hook_fake.count() >= 3,
        "retried with backoff before the deadline"
    );
    assert_eq!(h.metrics.dead_letters.with_label_values(&["hook"]).get(), 1);
    assert_eq!(h.metrics.notifications_count("hook", "first", "dead"), 1);
    assert!(h.metrics.attempts_count("hook", "5xx") >= 3);
    assert_eq!(h.outbox.stats().unwrap().dead(), 1);
    // the critical one is still retried, and alarmed only once
    common::pass(&h.clock, Duration::from_secs(30), 4).await;
    assert_eq!(slack_fake.count(), 2);
    d.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jsonl_appends_records_and_shutdown_keeps_undelivered_rows() {
    let mut h = Harness::new();
    let file = h.path.with_file_name("alerts.jsonl");
    let hook_fake = Fake::start(
        h.clock(),
        Reply::new(200, "").delay(Duration::from_secs(3600)),
    )
    .await;
    let mut hook = webhook("hook", &hook_fake, None);
    hook.timeout = Duration::from_millis(500);
    let jsonl = ResolvedDestination::new("file", Sink::Jsonl { path: file.clone() });
    let registry = prometheus::Registry::new();
    h.metrics = DeliveryMetrics::register(&registry).unwrap();
    let d = h.start(vec![jsonl, hook]);
    let rows: Vec<Notification> = ["j1", "j2"]
        .iter()
        .map(|n| Row::new(n, "file", h.now()).group("same", 0, 0).build())
        .collect();
    h.commit(&rows, Some(&d));
    h.commit(&[Row::new("stuck", "hook", h.now()).build()], Some(&d));
    settle("file", || h.count("file", Status::Delivered) == 2).await;
    let text = std::fs::read_to_string(&file).unwrap();
    let written: Vec<entrawatch_alert::AlertRecord> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        written.iter().map(|a| a.id.as_str()).collect::<Vec<_>>(),
        ["ew-test-j1", "ew-test-j2"]
    );
    assert_eq!(
        h.metrics.attempts_count("file", "2xx"),
        1,
        "one group, one write"
    );
    settle("hook in flight", || hook_fake.count() == 1).await;

    d.shutdown(Duration::from_millis(50)).await;
    let stuck = &h.rows("hook")[0];
    assert_eq!(
        stuck.status,
        Status::Pending,
        "the lease is released on shutdown"
    );
    assert_eq!(stuck.last_status.as_deref(), Some("timeout"));
    let names: Vec<String> = registry
        .gather()
        .iter()
        .map(|f| f.name().to_owned())
        .collect();
    for name in [
        "entrawatch_notifications_total",
        "entrawatch_notification_attempts_total",
        "entrawatch_notification_latency_seconds",
        "entrawatch_outbox_pending",
        "entrawatch_outbox_oldest_pending_age_seconds",
    ] {
        assert!(
            names.iter().any(|n| n == name),
            "{name} missing from {names:?}"
        );
    }
    assert_eq!(h.metrics.pending.with_label_values(&["hook"]).get(), 1);
    assert_eq!(h.metrics.pending.with_label_values(&["file"]).get(), 0);
}
