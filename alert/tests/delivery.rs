//! Delivery against fake receivers (docs/alerting.md §5.9 item 3): classification of every scripted
//! answer, signatures, destination-wide pauses, payload-bug retry, circuit and fallback,
//! isolation, and the metrics they move. Time is a manual clock; receivers
//! record the clock's time of each request, so "nothing before X" is checked on that clock.
//! Timelines (grouping, coalescing, deadlines) are in `delivery_timeline.rs`, crash recovery and
//! latency figures in `delivery_crash.rs`.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use entrawatch_alert::deliver::{ManualClock, RetryAfter, StatusClass, Verdict, send_once};
use entrawatch_alert::destination::ResolvedDestination;
use entrawatch_alert::outbox::Status;
use entrawatch_alert::sink::{self, Message, Sink};
use entrawatch_alert::{Kind, Notification};
use entrawatch_detect::Severity;
use entrawatch_ingest::secret::Secret;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_scripted_answer_is_classified() {
    let clock: Arc<dyn entrawatch_alert::deliver::Clock> = Arc::new(ManualClock::new(t0()));
    let alerts = [alert("c1", Severity::High)];
    let msg = Message {
        notification_id: "n-0000000000000001",
        kind: Kind::Test,
        alerts: &alerts,
        now: t0(),
        since_last: None,
        notification_ids: &[],
    };
    let teams_fake = Fake::start(clock.clone(), Reply::teams_ok()).await;
    let slack_fake = Fake::start(clock.clone(), Reply::slack_ok()).await;
    let hook_fake = Fake::start(clock.clone(), Reply::new(200, "")).await;
    slack_fake.script([
        Reply::new(400, "invalid_blocks"),
        Reply::new(404, "no_service"),
        Reply::new(410, "channel_is_archived"),
        Reply::slack_429(2),
        Reply::new(403, "invalid_token"),
        Reply::new(500, "rollup_error"),
    ]);
    hook_fake.script([
        Reply::new(500, "boom"),
        // hangs far past the client's timeout: only this answer times out
        Reply::new(200, "").delay(Duration::from_secs(3600)),
        Reply::new(503, "").header("Retry-After", "30"),
        Reply::new(422, "bad"),
    ]);
    let (t, s) = (teams("t", &teams_fake), slack("s", &slack_fake));
    let mut h = webhook("h", &hook_fake, Some("k"));
    // The timeout covers every request to `h`: long enough that a prompt answer on a loaded machine
    // never reaches it, short enough that the hanging answer costs the test only that long.
    h.timeout = Duration::from_secs(3);

    let o = send_once(&t, &msg).await;
    assert_eq!(
        (o.verdict, o.status, o.class),
        (Verdict::Delivered, Some(202), StatusClass::Ok2xx)
    );
    let expect = [
        (Verdict::PayloadBug, 400, "invalid_blocks"),
        (Verdict::Broken, 404, "no_service"),
        (Verdict::Broken, 410, "channel_is_archived"),
        (Verdict::Throttled, 429, ""),
        (Verdict::Broken, 403, "invalid_token"),
        (Verdict::Transient, 500, "rollup_error"),
        (Verdict::Delivered, 200, "ok"),
    ];
    for (verdict, status, detail) in expect {
        let o = send_once(&s, &msg).await;
        assert_eq!(
            (o.verdict, o.status),
            (verdict, Some(status)),
            "slack {status} {detail}"
        );
        if status == 429 {
            assert_eq!(
                o.retry_after,
                Some(RetryAfter::Delay(Duration::from_secs(2)))
            );
            assert_eq!(o.class, StatusClass::TooMany429);
        } else {
            assert_eq!(o.detail, detail);
        }
    }
    let o = send_once(&h, &msg).await;
    assert_eq!(
        (o.verdict, o.class),
        (Verdict::Transient, StatusClass::Server5xx)
    );
    let o = send_once(&h, &msg).await;
    assert_eq!(
        (o.verdict, o.class, o.status),
        (Verdict::Transient, StatusClass::Timeout, None)
    );
    let o = send_once(&h, &msg).await;
    assert_eq!(
        o.verdict,
        Verdict::Throttled,
        "503 with Retry-After throttles a webhook"
    );
    assert_eq!(
        o.retry_after,
        Some(RetryAfter::Delay(Duration::from_secs(30)))
    );
    let o = send_once(&h, &msg).await;
    assert_eq!(o.verdict, Verdict::PayloadBug);
    assert_eq!(send_once(&h, &msg).await.verdict, Verdict::Delivered);

    // nothing listens on a port just released: a network failure, and the url stays out of it
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let gone = ResolvedDestination::new(
        "gone",
        Sink::Teams {
            url: Secret::new(format!("http://127.0.0.1:{port}/x?sig=secret-signature")),
        },
    );
    let o = send_once(&gone, &msg).await;
    assert_eq!(
        (o.verdict, o.class),
        (Verdict::Transient, StatusClass::Network)
    );
    assert!(!o.detail.contains("secret-signature"), "{}", o.detail);

    // what the receivers saw: json, the signature verifies, the idempotency key is the id
    let got = teams_fake.received();
    assert_eq!(got[0].header("content-type"), Some("application/json"));
    assert!(
        got[0].alert_ids().contains("ew-test-c1"),
        "{}",
        got[0].text()
    );
    let got = hook_fake.received();
    let r = &got[got.len() - 1];
    assert_eq!(r.header("idempotency-key"), Some(msg.notification_id));
    assert_eq!(r.header("x-tenant"), Some("contoso"));
    let ts = r.header("x-entrawatch-timestamp").unwrap();
    let sig = r.header("x-entrawatch-signature").unwrap();
    assert!(sink::webhook::verify_signature(b"k", ts, &r.body, sig));
    assert!(!sink::webhook::verify_signature(b"other", ts, &r.body, sig));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_pauses_the_whole_destination_until_retry_after() {
    let mut h = Harness::new();
    let slack_fake = Fake::start(h.clock(), Reply::slack_ok()).await;
    let teams_fake = Fake::start(h.clock(), Reply::teams_ok()).await;
    slack_fake.script([Reply::slack_429(2)]);
    // One message at a time, so the 429 comes back before any other request leaves: with more in
    // flight, requests sent before the answer would reach the receiver during the pause.
    let mut s = slack("slack", &slack_fake);
    s.max_in_flight = 1;
    let d = h.start(vec![s, teams("teams", &teams_fake)]);
    let rows: Vec<Notification> = ["a", "b", "c"]
        .iter()
        .map(|n| Row::new(n, "slack", h.now()).build())
        .collect();
    h.commit(&rows, Some(&d));
    settle("the 429", || slack_fake.count() == 1).await;
    let throttled_at = slack_fake.received()[0].at;
    settle("the pause", || {
        h.metrics
            .paused
            .with_label_values(&["slack", "throttled"])
            .get()
            == 1
    })
    .await;

    // another destination keeps delivering during the pause
    h.clock.advance(Duration::from_millis(500));
    h.commit(&[Row::new("t", "teams", h.now()).build()], Some(&d));
    settle("teams during the pause", || teams_fake.count() == 1).await;
    assert!(teams_fake.received()[0].at < throttled_at + chrono::Duration::seconds(2));

    drive(
        &h.clock,
        Duration::from_millis(250),
        100,
        "slack after the pause",
        || slack_fake.count() == 4,
    )
    .await;
    settle("rows marked and counted", || {
        h.count("slack", Status::Delivered) == 3
            && h.metrics.notifications_count("slack", "first", "delivered") == 3
    })
    .await;
    let got = slack_fake.received();
    for r in &got[1..] {
        assert!(
            r.at >= throttled_at + chrono::Duration::seconds(2),
            "request at {} before Retry-After",
            r.at
        );
    }
    let ids: std::collections::BTreeSet<String> =
        got[1..].iter().flat_map(|r| r.alert_ids()).collect();
    assert_eq!(ids.len(), 3, "every row went after the pause: {ids:?}");
    for r in h.rows("slack") {
        assert_eq!(
            r.attempts, 1,
            "a throttled send does not use the attempt budget"
        );
    }
    assert_eq!(h.metrics.attempts_count("slack", "429"), 1);
    assert_eq!(h.metrics.attempts_count("slack", "2xx"), 3);
    assert_eq!(
        h.metrics.notifications_count("slack", "first", "delivered"),
        3
    );
    assert_eq!(
        h.metrics
            .paused
            .with_label_values(&["slack", "throttled"])
            .get(),
        0
    );
    d.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payload_bug_retries_once_with_the_minimal_render_then_goes_to_the_fallback() {
    let mut h = Harness::new();
    let slack_fake = Fake::start(h.clock(), Reply::slack_ok()).await;
    let hook_fake = Fake::start(h.clock(), Reply::new(200, "")).await;
    slack_fake.script([
        Reply::new(400, "invalid_blocks"),
        Reply::new(400, "invalid_blocks"),
        Reply::new(400, "no_text"),
    ]);
    let d = h.start(vec![
        fast(slack("slack", &slack_fake)),
        fast(webhook("hook", &hook_fake, None)),
    ]);
    let bad = Row::new("bad", "slack", h.now())
        .fallback(&["hook"])
        .build();
    h.commit(std::slice::from_ref(&bad), Some(&d));
    settle("rerouted", || {
        h.status(&bad.id) == Status::Rerouted
            && h.metrics.notifications_count("slack", "first", "rerouted") == 1
    })
    .await;
    let got = slack_fake.received();
    assert_eq!(got.len(), 2, "one full try, one minimal try");
    let alerts = [bad.alert.clone()];
    let msg = Message {
        notification_id: &bad.id,
        kind: Kind::First,
        alerts: &alerts,
        now: h.now(),
        since_last: None,
        notification_ids: &[],
    };
    assert_eq!(got[0].body, sink::slack::render(&msg).body);
    assert_eq!(got[1].body, sink::slack::render_minimal(&msg).body);
    assert_eq!(
        h.metrics.render_errors.with_label_values(&["slack"]).get(),
        1
    );
    assert_eq!(
        h.metrics.dead_letters.with_label_values(&["slack"]).get(),
        0
    );
    assert!(h.outbox.dead_letters().unwrap().is_empty());
    // the fallback gets the alert and hears why
    settle("the copy and the system alert", || hook_fake.count() == 2).await;
    let texts: Vec<String> = hook_fake.received().iter().map(|r| r.text()).collect();
    assert!(
        texts
            .iter()
            .any(|t| t.contains("entrawatch_payload_refused") && t.contains("invalid_blocks")),
        "{texts:?}"
    );
    assert!(
        texts
            .iter()
            .any(|t| t.contains("\"alert_id\":\"ew-test-bad\"")),
        "{texts:?}"
    );

    // refused once, accepted in minimal form
    let ok = Row::new("ok", "slack", h.now()).build();
    h.commit(std::slice::from_ref(&ok), Some(&d));
    settle("delivered minimal", || {
        h.status(&ok.id) == Status::Delivered
    })
    .await;
    let row = h.outbox.row(&ok.id).unwrap().unwrap();
    assert!(row.minimal);
    assert_eq!(row.attempts, 2);
    assert_eq!(slack_fake.count(), 4);
    d.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_destination_opens_its_circuit_and_reroutes_to_the_fallback() {
    let mut h = Harness::new();
    let slack_fake = Fake::start(h.clock(), Reply::new(404, "no_service")).await;
    let hook_fake = Fake::start(h.clock(), Reply::new(200, "")).await;
    let mut s = slack("slack", &slack_fake);
    s.probe_interval = Duration::from_secs(60);
    // one message at a time, so exactly one failed send opens the circuit
    s.max_in_flight = 1;
    let d = h.start(vec![s, fast(webhook("hook", &hook_fake, None))]);
    let rows: Vec<Notification> = ["a", "b", "c"]
        .iter()
        .map(|n| Row::new(n, "slack", h.now()).fallback(&["hook"]).build())
        .collect();
    h.commit(&rows, Some(&d));
    settle("rerouted rows and the system alert", || {
        hook_fake.count() == 4
    })
    .await;
    assert_eq!(slack_fake.count(), 1, "one failed send opens the circuit");
    let got = hook_fake.received();
    let system: Vec<_> = got
        .iter()
        .filter(|r| r.text().contains("entrawatch_destination_broken"))
        .collect();
    assert_eq!(system.len(), 1);
    assert!(system[0].text().contains("no_service"));
    let ids: std::collections::BTreeSet<String> = got.iter().flat_map(|r| r.alert_ids()).collect();
    assert_eq!(ids.len(), 3);
    assert_eq!(h.count("slack", Status::Rerouted), 3);
    settle("copies delivered", || {
        h.metrics.notifications_count("hook", "system", "delivered") == 1
            && h.metrics.notifications_count("hook", "first", "delivered") == 3
    })
    .await;
    assert_eq!(h.count("hook", Status::Delivered), 4);
    assert_eq!(
        h.metrics.notifications_count("slack", "first", "rerouted"),
        3
    );
    assert_eq!(
        h.metrics.notifications_count("hook", "system", "delivered"),
        1
    );
    assert_eq!(
        h.metrics
            .paused
            .with_label_values(&["slack", "circuit_open"])
            .get(),
        1
    );

    // while open: new rows with a fallback go there at once; rows without one wait for the probe
    h.commit(
        &[Row::new("d", "slack", h.now()).fallback(&["hook"]).build()],
        Some(&d),
    );
    settle("rerouted while open", || hook_fake.count() == 5).await;
    slack_fake.set_default(Reply::slack_ok());
    let waits = Row::new("e", "slack", h.now()).build();
    h.commit(std::slice::from_ref(&waits), Some(&d));
    common::pass(&h.clock, Duration::from_secs(5), 11).await;
    assert_eq!(
        slack_fake.count(),
        1,
        "nothing sent to an open circuit before the probe"
    );
    drive(&h.clock, Duration::from_secs(5), 20, "the probe", || {
        h.status(&waits.id) == Status::Delivered
    })
    .await;
    assert!(slack_fake.received()[1].at >= t0() + chrono::Duration::seconds(60));
    // The worker records the delivery, then closes the circuit and its gauge.
    settle("the circuit gauge closes after the probe", || {
        h.metrics
            .paused
            .with_label_values(&["slack", "circuit_open"])
            .get()
            == 0
    })
    .await;
    assert_eq!(hook_fake.count(), 5, "one system alert per opening");
    d.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_destination_does_not_stall_another() {
    let mut h = Harness::new();
    let hook_fake = Fake::start(
        h.clock(),
        Reply::new(200, "").delay(Duration::from_secs(3600)),
    )
    .await;
    let teams_fake = Fake::start(h.clock(), Reply::teams_ok()).await;
    let mut hook = webhook("hook", &hook_fake, None);
    hook.timeout = Duration::from_secs(60);
    // one message at a time: the first request holds the whole destination
    hook.max_in_flight = 1;
    let d = h.start(vec![hook, teams("teams", &teams_fake)]);
    let mut rows = Vec::new();
    for i in 0..10 {
        rows.push(Row::new(&format!("h{i}"), "hook", h.now()).build());
        rows.push(Row::new(&format!("t{i}"), "teams", h.now()).build());
    }
    h.commit(&rows, Some(&d));
    // teams paces at 1/s with a burst of 3: about 7 s of clock for 10 messages
    drive(&h.clock, Duration::from_millis(200), 100, "teams", || {
        h.count("teams", Status::Delivered) == 10
    })
    .await;
    assert_eq!(teams_fake.count(), 10);
    // The webhook's worker runs on its own: on a loaded machine its first request may arrive after
    // teams is done. Wait for it (without moving the clock), then check it is the only one.
    settle("the webhook's first request", || hook_fake.count() >= 1).await;
    assert_eq!(
        hook_fake.count(),
        1,
        "the webhook is still stuck in its first request"
    );
    assert_eq!(h.count("hook", Status::Delivered), 0);
    assert_eq!(h.count("hook", Status::Inflight), 1);
    let at: Vec<_> = teams_fake.received().iter().map(|r| r.at).collect();
    // three at once (the burst), then one a second
    assert!(
        at[3] >= t0() + chrono::Duration::seconds(1),
        "the token bucket paces teams: {at:?}"
    );
    assert!(
        at[9] >= t0() + chrono::Duration::seconds(7),
        "the token bucket paces teams: {at:?}"
    );
    drop(d); // a crash: the lease stays until the next start
    let d = h.start(vec![]);
    assert_eq!(
        h.count("hook", Status::Inflight),
        0,
        "start requeues what the last run had in flight"
    );
    drop(d);
}

/// A notification held for grouping (group wait 300 s) is sent when delivery stops, not left in
/// the outbox until the next start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_sends_what_is_held_for_grouping() {
    let mut h = Harness::new();
    let hook_fake = Fake::start(h.clock(), Reply::new(200, "")).await;
    let d = h.start(vec![fast(webhook("hook", &hook_fake, None))]);
    let held = Row::new("held", "hook", h.now())
        .group("g", 300, 300)
        .build();
    h.commit(std::slice::from_ref(&held), Some(&d));
    // Running: the group wait holds it.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(hook_fake.count(), 0, "sent before its group wait");
    d.shutdown(Duration::from_secs(5)).await;
    assert_eq!(hook_fake.count(), 1, "not sent at shutdown");
    assert_eq!(h.status(&held.id), Status::Delivered);
}
