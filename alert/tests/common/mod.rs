//! Test harness for delivery: fake receivers (hyper servers on 127.0.0.1:0 answering from a
//! script and recording every request), alert and notification builders, and bounded loops that
//! drive a manual clock.
//!
//! The fakes follow the documented behaviour of the services (docs/alerting.md §4): Teams Workflows
//! answers 202 with an empty body, Slack 200 `ok` or a plain-text error code, 429 with
//! `Retry-After` and a JSON body.

#![allow(dead_code)]

use std::collections::{BTreeSet, VecDeque};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use entrawatch_alert::deliver::{Clock, Delivery, DeliveryOptions, FaultPlan, ManualClock};
use entrawatch_alert::destination::ResolvedDestination;
use entrawatch_alert::metrics::DeliveryMetrics;
use entrawatch_alert::notify::notification_id;
use entrawatch_alert::outbox::{Outbox, RowInfo, Status};
use entrawatch_alert::sink::Sink;
use entrawatch_alert::{AlertRecord, Kind, Notification};
use entrawatch_detect::{Principal, PrincipalKind, Severity};
use entrawatch_ingest::secret::Secret;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

/// One scripted answer.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub body: String,
    pub headers: Vec<(String, String)>,
    /// Real time to wait before answering (beyond the client's timeout: a hanging receiver).
    pub delay: Duration,
    /// Wait until the test releases this name ([`Fake::release`]) before answering.
    pub hold: Option<String>,
    /// After the hold, close the connection without answering (a request that hung, then failed).
    pub hang_up: bool,
}

impl Reply {
    pub fn new(status: u16, body: &str) -> Reply {
        Reply {
            status,
            body: body.to_owned(),
            headers: Vec::new(),
            delay: Duration::ZERO,
            hold: None,
            hang_up: false,
        }
    }

    /// Hangs until [`Fake::release`]`(name)`, then closes the connection without an answer.
    pub fn hang(name: &str) -> Reply {
        Reply {
            hold: Some(name.to_owned()),
            hang_up: true,
            ..Reply::new(200, "")
        }
    }

    /// Teams Workflows: the run is queued.
    pub fn teams_ok() -> Reply {
        Reply::new(202, "")
    }

    /// Slack incoming webhook success.
    pub fn slack_ok() -> Reply {
        Reply::new(200, "ok")
    }

    /// Slack's rate limit answer (prometheus/alertmanager#2111).
    pub fn slack_429(retry_after: u64) -> Reply {
        Reply::new(
            429,
            &format!("{{\"retry_after\":{retry_after},\"ok\":false,\"error\":\"rate_limited\"}}"),
        )
        .header("Retry-After", &retry_after.to_string())
        .header("Content-Type", "application/json")
    }

    pub fn header(mut self, name: &str, value: &str) -> Reply {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    pub fn delay(mut self, d: Duration) -> Reply {
        self.delay = d;
        self
    }

    /// Answers only once the test calls [`Fake::release`]`(name)`.
    pub fn held(mut self, name: &str) -> Reply {
        self.hold = Some(name.to_owned());
        self
    }
}

/// One request as the fake saw it.
#[derive(Debug, Clone)]
pub struct Received {
    /// The clock's time when the request arrived.
    pub at: DateTime<Utc>,
    /// Lower-cased header names.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Test alert ids (`ew-test-…`) mentioned anywhere in the body.
    pub fn alert_ids(&self) -> BTreeSet<String> {
        test_ids(&self.text())
    }
}

/// Every `ew-test-<alnum>` in `text`.
pub fn test_ids(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = text;
    while let Some(i) = rest.find("ew-test-") {
        let tail = &rest[i + 8..];
        let n = tail
            .find(|c: char| !c.is_ascii_alphanumeric())
            .unwrap_or(tail.len());
        if n > 0 {
            out.insert(format!("ew-test-{}", &tail[..n]));
        }
        rest = &tail[n..];
    }
    out
}

#[derive(Debug)]
struct State {
    script: VecDeque<Reply>,
    default: Reply,
    received: Vec<Received>,
    /// Names of held replies the test has released.
    released: tokio::sync::watch::Sender<BTreeSet<String>>,
}

/// A scripted HTTP receiver on 127.0.0.1.
#[derive(Debug)]
pub struct Fake {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

impl Fake {
    /// Answers `default` to every request not covered by [`Fake::script`].
    pub async fn start(clock: Arc<dyn Clock>, default: Reply) -> Fake {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State {
            script: VecDeque::new(),
            default,
            received: Vec::new(),
            released: tokio::sync::watch::Sender::new(BTreeSet::new()),
        }));
        let shared = state.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (state, clock) = (shared.clone(), clock.clone());
                tokio::spawn(async move {
                    let service = service_fn(move |req| answer(req, state.clone(), clock.clone()));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Fake { addr, state, task }
    }

    pub fn url(&self) -> String {
        format!("http://{}/hook?sig=secret-signature", self.addr)
    }

    /// Answers for the next requests, in order.
    pub fn script(&self, replies: impl IntoIterator<Item = Reply>) {
        self.state.lock().unwrap().script.extend(replies);
    }

    pub fn set_default(&self, reply: Reply) {
        self.state.lock().unwrap().default = reply;
    }

    pub fn received(&self) -> Vec<Received> {
        self.state.lock().unwrap().received.clone()
    }

    pub fn count(&self) -> usize {
        self.state.lock().unwrap().received.len()
    }

    /// Lets the requests held under `name` answer (or hang up).
    pub fn release(&self, name: &str) {
        self.state.lock().unwrap().released.send_modify(|r| {
            r.insert(name.to_owned());
        });
    }

    /// The requests in arrival order, by their `Idempotency-Key` (webhooks).
    pub fn keys(&self) -> Vec<String> {
        self.received()
            .iter()
            .filter_map(|r| r.header("idempotency-key").map(str::to_owned))
            .collect()
    }
}

impl Drop for Fake {
    fn drop(&mut self) {
        self.task.abort();
    }
}

type ServiceError = Box<dyn std::error::Error + Send + Sync>;

async fn answer(
    req: Request<hyper::body::Incoming>,
    state: Arc<Mutex<State>>,
    clock: Arc<dyn Clock>,
) -> Result<Response<Full<Bytes>>, ServiceError> {
    let at = clock.now();
    let headers = req
        .headers()
        .iter()
        .map(|(n, v)| {
            (
                n.as_str().to_owned(),
                v.to_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let body = req.into_body().collect().await?.to_bytes().to_vec();
    let (reply, mut released) = {
        let mut s = state.lock().unwrap();
        s.received.push(Received { at, headers, body });
        let reply = s.script.pop_front().unwrap_or_else(|| s.default.clone());
        (reply, s.released.subscribe())
    };
    if let Some(name) = &reply.hold {
        // the sender lives as long as the fake
        let _ = released.wait_for(|r| r.contains(name)).await;
        if reply.hang_up {
            // an error from the service makes hyper close the connection without a response
            return Err(format!("{name}: hung up").into());
        }
    }
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    let mut resp = Response::builder().status(reply.status);
    for (n, v) in &reply.headers {
        resp = resp.header(n.as_str(), v.as_str());
    }
    Ok(resp.body(Full::new(Bytes::from(reply.body))).unwrap())
}

/// A fixed start for manual clocks.
pub fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-08-03T09:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

/// An alert whose id and title carry `ew-test-<n>`, so any renderer's body names it.
pub fn alert(n: &str, severity: Severity) -> AlertRecord {
    let id = format!("ew-test-{n}");
    AlertRecord {
        id: id.clone(),
        rule: "impossible_travel".into(),
        severity,
        tenant_id: "11111111-2222-3333-4444-555555555555".into(),
        tenant_name: Some("contoso".into()),
        principal: Principal {
            kind: PrincipalKind::User,
            id: "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee".into(),
            upn: Some("alice@contoso.com".into()),
            home_tenant_id: None,
        },
        title: format!("Impossible travel {id}"),
        summary: format!("alice signed in from two countries ({id})"),
        first_seen: t0(),
        last_seen: t0(),
        count: 1,
        event_ids: vec!["e-1".into()],
        evidence: Default::default(),
        mitre: vec!["T1078".into()],
    }
}

/// Builds notifications the way the runtime does, with grouping off unless changed.
#[derive(Debug, Clone)]
pub struct Row {
    pub n: Notification,
}

impl Row {
    pub fn new(alert_n: &str, destination: &str, created_at: DateTime<Utc>) -> Row {
        let alert = alert(alert_n, Severity::High);
        Row {
            n: Notification {
                id: notification_id(&alert.id, destination, 0),
                alert_id: alert.id.clone(),
                destination: destination.to_owned(),
                kind: Kind::First,
                seq: 0,
                group_key: format!("g-{}", alert.id),
                group_wait_secs: 0,
                group_interval_secs: 0,
                fallback: Vec::new(),
                severity: Severity::High,
                alert,
                event_time: created_at,
                created_at,
            },
        }
    }

    pub fn seq(mut self, seq: u32, kind: Kind) -> Row {
        self.n.seq = seq;
        self.n.kind = kind;
        self.n.alert.count = u64::from(seq) + 1;
        self.n.id = notification_id(&self.n.alert_id, &self.n.destination, seq);
        self
    }

    pub fn severity(mut self, s: Severity) -> Row {
        self.n.severity = s;
        self.n.alert.severity = s;
        self
    }

    pub fn group(mut self, key: &str, wait_secs: u64, interval_secs: u64) -> Row {
        self.n.group_key = key.to_owned();
        self.n.group_wait_secs = wait_secs;
        self.n.group_interval_secs = interval_secs;
        self
    }

    pub fn fallback(mut self, to: &[&str]) -> Row {
        self.n.fallback = to.iter().map(|s| (*s).to_owned()).collect();
        self
    }

    pub fn build(self) -> Notification {
        self.n
    }
}

/// Waits (real time, 5 ms steps, at most ~10 s) until `cond` holds, without moving the clock.
pub async fn settle(what: &str, mut cond: impl FnMut() -> bool) {
    for _ in 0..2000 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("timed out waiting for {what}");
}

/// Waits (real time) until `cond` holds, looking every `every`, for at most `limit`: `settle` for
/// a wait that needs another bound or a slower look (a check that opens the outbox).
pub async fn wait_until(
    what: &str,
    limit: Duration,
    every: Duration,
    mut cond: impl FnMut() -> bool,
) {
    let deadline = std::time::Instant::now() + limit;
    loop {
        if cond() {
            return;
        }
        if std::time::Instant::now() >= deadline {
            panic!("timed out after {limit:?} waiting for {what}");
        }
        tokio::time::sleep(every).await;
    }
}

/// Moves `clock` forward by `step` at a time (with a few ms of real time between steps so the
/// workers react) until `cond` holds; at most `max_steps` steps.
pub async fn drive(
    clock: &entrawatch_alert::deliver::ManualClock,
    step: Duration,
    max_steps: usize,
    what: &str,
    mut cond: impl FnMut() -> bool,
) {
    for _ in 0..max_steps {
        if cond() {
            return;
        }
        for _ in 0..3 {
            tokio::time::sleep(Duration::from_millis(2)).await;
            if cond() {
                return;
            }
        }
        clock.advance(step);
    }
    // one last look after the final step
    settle(what, cond).await;
}

/// Moves `clock` forward `steps` times by `step`, letting the workers react in between.
pub async fn pass(clock: &entrawatch_alert::deliver::ManualClock, step: Duration, steps: usize) {
    for _ in 0..steps {
        clock.advance(step);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// An outbox, a manual clock and metrics: the runtime's side of a test.
pub struct Harness {
    _dir: tempfile::TempDir,
    pub path: PathBuf,
    pub clock: ManualClock,
    pub metrics: DeliveryMetrics,
    pub outbox: Outbox,
}

impl Harness {
    pub fn new() -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("outbox.db");
        Harness {
            outbox: Outbox::open(&path).unwrap(),
            _dir: dir,
            path,
            clock: ManualClock::new(t0()),
            metrics: DeliveryMetrics::unregistered(),
        }
    }

    pub fn start(&self, destinations: Vec<ResolvedDestination>) -> Delivery {
        self.start_with(destinations, FaultPlan::none())
    }

    pub fn start_with(&self, destinations: Vec<ResolvedDestination>, fault: FaultPlan) -> Delivery {
        let options = DeliveryOptions {
            fault,
            jitter_seed: Some(7),
            ..DeliveryOptions::default()
        };
        Delivery::start_with(
            self.path.clone(),
            destinations,
            self.metrics.clone(),
            Arc::new(self.clock.clone()),
            options,
        )
        .unwrap()
    }

    pub fn commit(&mut self, rows: &[Notification], delivery: Option<&Delivery>) {
        self.outbox.commit(rows, &[]).unwrap();
        if let Some(d) = delivery {
            d.wake();
        }
    }

    pub fn rows(&self, destination: &str) -> Vec<RowInfo> {
        self.outbox.rows(Some(destination)).unwrap()
    }

    pub fn status(&self, id: &str) -> Status {
        self.outbox.row(id).unwrap().unwrap().status
    }

    pub fn count(&self, destination: &str, status: Status) -> usize {
        self.rows(destination)
            .iter()
            .filter(|r| r.status == status)
            .count()
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    pub fn clock(&self) -> Arc<dyn Clock> {
        Arc::new(self.clock.clone())
    }
}

pub fn fast(mut d: ResolvedDestination) -> ResolvedDestination {
    d.rate_per_sec = 1000.0;
    d.burst = 1000;
    d
}

pub fn teams(name: &str, fake: &Fake) -> ResolvedDestination {
    ResolvedDestination::new(
        name,
        Sink::Teams {
            url: Secret::new(fake.url()),
        },
    )
}

pub fn slack(name: &str, fake: &Fake) -> ResolvedDestination {
    ResolvedDestination::new(
        name,
        Sink::Slack {
            url: Secret::new(fake.url()),
        },
    )
}

pub fn webhook(name: &str, fake: &Fake, secret: Option<&str>) -> ResolvedDestination {
    ResolvedDestination::new(
        name,
        Sink::Webhook {
            url: Secret::new(fake.url()),
            secret: secret.map(Secret::new),
            headers: vec![("X-Tenant".into(), "contoso".into())],
        },
    )
}
