//! Corners of delivery against fake receivers on 127.0.0.1: a request that hangs while the others
//! of its destination go on (several in flight, one alert's updates still in order, one token
//! bucket for all), a payload refused even in minimal form (fallback or dead letter, a system alert
//! either way), and a destination refusing connections until its circuit opens. Time is a manual
//! clock; receivers record the clock's time of each request. Holding and hanging up requests are
//! the test's doing ([`Fake::release`]), so nothing waits for a real timeout.

mod common;

use std::time::Duration;

use common::*;
use entrawatch_alert::deliver::{StatusClass, Verdict, send_once};
use entrawatch_alert::destination::ResolvedDestination;
use entrawatch_alert::outbox::Status;
use entrawatch_alert::sink::{Message, Sink};
use entrawatch_alert::{Kind, Notification};
use entrawatch_detect::Severity;
use entrawatch_ingest::secret::Secret;

/// A port nothing listens on: bound, read, released.
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

fn position(keys: &[String], id: &str) -> usize {
    keys.iter()
        .position(|k| k == id)
        .unwrap_or_else(|| panic!("{id} never reached the receiver: {keys:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_request_holds_neither_the_others_nor_the_order_of_an_alert() {
    let mut h = Harness::new();
    let fake = Fake::start(h.clock(), Reply::new(200, "")).await;
    fake.script([Reply::hang("slow")]);
    let mut hook = fast(webhook("hook", &fake, None));
    // far longer than the test needs: the others must not wait for it
    hook.timeout = Duration::from_secs(30);
    assert!(hook.max_in_flight > 1, "by default requests overlap");
    let d = h.start(vec![hook]);

    let slow = Row::new("slow", "hook", h.now()).build();
    h.commit(std::slice::from_ref(&slow), Some(&d));
    settle("the request that hangs", || fake.count() == 1).await;
    // the first update of alert u: the receiver holds it until told
    fake.script([Reply::new(200, "").held("u0")]);
    let u0 = Row::new("u", "hook", h.now()).build();
    h.commit(std::slice::from_ref(&u0), Some(&d));
    settle("u's first update", || fake.count() == 2).await;
    // u's next update (in a group of its own: only its alert holds it back), then three others
    let u1 = Row::new("u", "hook", h.now())
        .seq(1, Kind::Escalation)
        .group("u-later", 0, 0)
        .build();
    h.commit(std::slice::from_ref(&u1), Some(&d));
    let others: Vec<Notification> = ["a", "b", "c"]
        .iter()
        .map(|n| Row::new(n, "hook", h.now()).build())
        .collect();
    h.commit(&others, Some(&d));
    settle("the others, while the first request hangs", || {
        others.iter().all(|o| h.status(&o.id) == Status::Delivered)
    })
    .await;
    assert_eq!(
        h.status(&slow.id),
        Status::Inflight,
        "the hung request still waits for its answer"
    );
    assert_eq!(h.status(&u0.id), Status::Inflight);
    // u1 was due before the others and there was room: only its alert's message in flight held it
    assert_eq!(h.status(&u1.id), Status::Pending);
    assert!(
        !fake.keys().contains(&u1.id),
        "an update left while the previous one of its alert was in flight"
    );

    fake.release("u0");
    settle("u's next update", || h.status(&u1.id) == Status::Delivered).await;
    assert_eq!(h.status(&u0.id), Status::Delivered);
    let keys = fake.keys();
    assert!(
        position(&keys, &u0.id) < position(&keys, &u1.id),
        "{keys:?}"
    );
    let body: serde_json::Value = serde_json::from_slice(&fake.received()[keys.len() - 1].body)
        .expect("the last request is a webhook envelope");
    assert_eq!(body["kind"], "escalation");

    // the hung request fails (the receiver hangs up) and is tried again after its backoff
    fake.release("slow");
    drive(
        &h.clock,
        Duration::from_millis(500),
        100,
        "the hung notification, retried",
        || h.status(&slow.id) == Status::Delivered,
    )
    .await;
    let keys = fake.keys();
    assert_eq!(
        keys.iter().filter(|k| **k == slow.id).count(),
        2,
        "{keys:?}"
    );
    assert_eq!(
        keys.last(),
        Some(&slow.id),
        "the retry came after the others"
    );
    let row = h.outbox.row(&slow.id).unwrap().unwrap();
    assert_eq!(row.attempts, 2);
    assert_eq!(h.metrics.attempts_count("hook", "network"), 1);
    assert_eq!(h.metrics.attempts_count("hook", "2xx"), 6);
    d.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_token_bucket_paces_every_request_in_flight() {
    let mut h = Harness::new();
    let fake = Fake::start(h.clock(), Reply::new(200, "").held("all")).await;
    let mut hook = webhook("hook", &fake, None);
    hook.rate_per_sec = 1.0;
    hook.burst = 2;
    hook.max_in_flight = 4;
    let d = h.start(vec![hook]);
    let rows: Vec<Notification> = ["p1", "p2", "p3", "p4"]
        .iter()
        .map(|n| Row::new(n, "hook", h.now()).build())
        .collect();
    h.commit(&rows, Some(&d));
    settle("the burst", || fake.count() == 2).await;
    // room for two more in flight, but no token until the clock moves
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(fake.count(), 2, "a request went out without a token");
    h.clock.advance(Duration::from_secs(1));
    settle("one more token", || fake.count() == 3).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(fake.count(), 3, "a request went out without a token");
    h.clock.advance(Duration::from_secs(1));
    settle("the last token", || fake.count() == 4).await;
    let at: Vec<_> = fake.received().iter().map(|r| r.at).collect();
    assert!(at[2] >= t0() + chrono::Duration::seconds(1), "{at:?}");
    assert!(at[3] >= t0() + chrono::Duration::seconds(2), "{at:?}");
    // all four were in flight together
    assert_eq!(h.count("hook", Status::Inflight), 4);
    fake.release("all");
    settle("all delivered", || h.count("hook", Status::Delivered) == 4).await;
    d.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_payload_goes_to_the_fallback_with_a_system_alert() {
    let mut h = Harness::new();
    let refusing = Fake::start(h.clock(), Reply::new(400, "invalid payload: bad field")).await;
    let fallback = Fake::start(h.clock(), Reply::new(200, "")).await;
    let d = h.start(vec![
        fast(webhook("siem", &refusing, Some("k"))),
        fast(webhook("backup", &fallback, None)),
    ]);
    let row = Row::new("r", "siem", h.now()).fallback(&["backup"]).build();
    h.commit(std::slice::from_ref(&row), Some(&d));
    settle("rerouted", || h.status(&row.id) == Status::Rerouted).await;
    let got = refusing.received();
    assert_eq!(got.len(), 2, "one full try, one minimal try");
    let full: serde_json::Value = serde_json::from_slice(&got[0].body).unwrap();
    let minimal: serde_json::Value = serde_json::from_slice(&got[1].body).unwrap();
    assert!(full.get("alerts").is_some() && minimal.get("alerts").is_none());

    settle("the copy and the system alert", || {
        h.count("backup", Status::Delivered) == 2
    })
    .await;
    let bodies: Vec<serde_json::Value> = fallback
        .received()
        .iter()
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect();
    assert!(
        bodies.iter().any(|b| b["alert_id"] == "ew-test-r"),
        "{bodies:?}"
    );
    let system: Vec<_> = bodies
        .iter()
        .filter(|b| b["rule"] == "entrawatch_payload_refused")
        .collect();
    assert_eq!(system.len(), 1, "{bodies:?}");
    assert_eq!(system[0]["kind"], "system");
    assert_eq!(system[0]["evidence"]["status"], "400");
    assert_eq!(system[0]["evidence"]["rerouted_to"][0], "backup");
    let copy = h
        .rows("backup")
        .into_iter()
        .find(|r| r.alert_id == "ew-test-r")
        .unwrap();
    assert_eq!(copy.rerouted_from.as_deref(), Some(row.id.as_str()));
    assert_eq!(
        h.metrics.notifications_count("siem", "first", "rerouted"),
        1
    );
    assert_eq!(
        h.metrics.render_errors.with_label_values(&["siem"]).get(),
        1
    );
    assert_eq!(h.metrics.dead_letters.with_label_values(&["siem"]).get(), 0);
    assert_eq!(
        h.metrics
            .paused
            .with_label_values(&["siem", "circuit_open"])
            .get(),
        0,
        "a refused payload is not a broken destination"
    );
    d.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_fallback_a_refused_payload_is_a_dead_letter_and_still_raises_a_system_alert() {
    let mut h = Harness::new();
    let refusing = Fake::start(h.clock(), Reply::new(400, "invalid payload")).await;
    let d = h.start(vec![fast(webhook("siem", &refusing, None))]);
    let row = Row::new("r", "siem", h.now()).build();
    h.commit(std::slice::from_ref(&row), Some(&d));
    settle("dead letter", || h.status(&row.id) == Status::Dead).await;
    // With no fallback, the system alert goes to the destination itself (a refusal is about one
    // payload). This receiver refuses it too: it becomes a dead letter, and no alert about it.
    settle("the system alert, refused as well", || {
        h.count("siem", Status::Dead) == 2
    })
    .await;
    let system = h
        .rows("siem")
        .into_iter()
        .find(|r| r.kind == Kind::System)
        .expect("a system alert to the destination");
    assert!(system.alert_id.starts_with("ew-"));
    let texts: Vec<String> = refusing.received().iter().map(|r| r.text()).collect();
    assert!(
        texts
            .iter()
            .any(|t| t.contains("entrawatch_payload_refused") && t.contains("ew-test-r")),
        "{texts:?}"
    );
    common::pass(&h.clock, Duration::from_secs(5), 10).await;
    assert_eq!(
        refusing.count(),
        4,
        "two tries of the notification, two of the system alert, nothing more"
    );
    assert_eq!(h.outbox.dead_letters().unwrap().len(), 2);
    assert_eq!(h.metrics.dead_letters.with_label_values(&["siem"]).get(), 2);
    assert_eq!(h.metrics.notifications_count("siem", "first", "dead"), 1);
    assert_eq!(h.metrics.notifications_count("siem", "system", "dead"), 1);
    d.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_failures_that_last_open_the_circuit() {
    let mut h = Harness::new();
    let fallback = Fake::start(h.clock(), Reply::new(200, "")).await;
    let port = closed_port();
    let mut gone = fast(ResolvedDestination::new(
        "gone",
        Sink::Teams {
            url: Secret::new(format!("http://127.0.0.1:{port}/x?sig=secret-signature")),
        },
    ));
    gone.circuit_after = Duration::from_secs(60);
    gone.probe_interval = Duration::from_secs(600);
    let d = h.start(vec![gone, fast(webhook("hook", &fallback, None))]);
    let moved = Row::new("m", "gone", h.now()).fallback(&["hook"]).build();
    let waits = Row::new("w", "gone", h.now()).build();
    h.commit(&[moved.clone(), waits.clone()], Some(&d));
    let open = || {
        h.metrics
            .paused
            .with_label_values(&["gone", "circuit_open"])
            .get()
            == 1
    };
    drive(&h.clock, Duration::from_secs(1), 400, "the circuit", open).await;
    let tries = h.metrics.attempts_count("gone", "network");
    assert!(tries >= 4, "retried until circuit_after: {tries} tries");
    settle("the copy and the system alert", || fallback.count() == 2).await;
    assert_eq!(h.status(&moved.id), Status::Rerouted);
    assert_eq!(
        h.status(&waits.id),
        Status::Pending,
        "no fallback: it waits"
    );
    let bodies: Vec<serde_json::Value> = fallback
        .received()
        .iter()
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect();
    let system: Vec<_> = bodies
        .iter()
        .filter(|b| b["rule"] == "entrawatch_destination_broken")
        .collect();
    assert_eq!(system.len(), 1, "{bodies:?}");
    assert!(
        system[0]["title"].as_str().unwrap().contains("unreachable"),
        "{}",
        system[0]
    );
    // open at the first failure circuit_after after the first one (the clock time of its answer)
    let at = |v: &serde_json::Value| {
        chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap())
            .unwrap()
            .with_timezone(&chrono::Utc)
    };
    let since = at(&system[0]["evidence"]["unreachable_since"]);
    let opened = at(&system[0]["first_seen"]);
    assert!(since >= t0(), "{since}");
    assert!(
        opened >= since + chrono::Duration::seconds(60),
        "opened at {opened}, failing since {since}: before circuit_after"
    );
    let detail = system[0]["evidence"]["detail"].as_str().unwrap();
    assert!(detail.starts_with("connect"), "{detail}");
    assert!(!detail.contains("secret-signature"), "{detail}");

    // open: nothing is tried before the probe
    common::pass(&h.clock, Duration::from_secs(10), 30).await;
    assert_eq!(h.metrics.attempts_count("gone", "network"), tries);
    // the probe fails as well: one try, the circuit stays open, no second system alert
    drive(&h.clock, Duration::from_secs(10), 100, "the probe", || {
        h.metrics.attempts_count("gone", "network") == tries + 1
    })
    .await;
    common::pass(&h.clock, Duration::from_secs(10), 10).await;
    assert_eq!(h.metrics.attempts_count("gone", "network"), tries + 1);
    assert!(open());
    assert_eq!(fallback.count(), 2, "one system alert per opening");
    d.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_failures_are_flagged_and_timeouts_are_not() {
    let clock = Harness::new().clock();
    let hanging = Fake::start(clock, Reply::new(200, "").delay(Duration::from_secs(3600))).await;
    let alerts = [alert("f1", Severity::High)];
    let msg = Message {
        notification_id: "n-0000000000000002",
        kind: Kind::Test,
        alerts: &alerts,
        now: t0(),
        since_last: None,
        notification_ids: &[],
    };
    let port = closed_port();
    let gone = ResolvedDestination::new(
        "gone",
        Sink::Webhook {
            url: Secret::new(format!("http://127.0.0.1:{port}/x")),
            secret: None,
            headers: Vec::new(),
        },
    );
    let o = send_once(&gone, &msg).await;
    assert_eq!(
        (o.verdict, o.class, o.unreachable),
        (Verdict::Transient, StatusClass::Network, true),
        "{o:?}"
    );
    let no_dns = ResolvedDestination::new(
        "nowhere",
        Sink::Webhook {
            url: Secret::new("http://entrawatch-test.invalid/x"),
            secret: None,
            headers: Vec::new(),
        },
    );
    let o = send_once(&no_dns, &msg).await;
    // a resolver that does not answer at all makes a timeout instead: only a failed lookup counts
    if o.class != StatusClass::Timeout {
        assert_eq!(
            (o.verdict, o.unreachable),
            (Verdict::Transient, true),
            "{o:?}"
        );
    }
    let mut slow = webhook("slow", &hanging, None);
    slow.timeout = Duration::from_secs(1);
    let o = send_once(&slow, &msg).await;
    assert_eq!(
        (o.verdict, o.class, o.unreachable),
        (Verdict::Transient, StatusClass::Timeout, false),
        "{o:?}"
    );
}
