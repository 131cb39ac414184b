//! The admin HTTP server: `GET /metrics` (Prometheus text), `GET /livez`, `GET /readyz`,
//! `POST /-/reload`, and silences under `/api/silences` (`GET` lists, `POST` adds one as JSON,
//! `DELETE /api/silences/<id>` expires one). Small and dependency-light: hyper's HTTP/1 server,
//! one task per connection. It never touches Teams, Slack or a source: readiness reflects only
//! entrawatch's own state.
//!
//! Reachable by strangers when it listens on `0.0.0.0`, so: the endpoints that change anything
//! need the bearer token of `[service] admin_token` and are off without one ([`access`]); a
//! request head must arrive within [`HEADER_READ_TIMEOUT`] and a body within [`BODY_READ_TIMEOUT`]
//! and [`MAX_BODY_BYTES`]; a connection carries one request and lives at most
//! [`CONNECTION_LIFETIME`]; at most [`MAX_CONNECTIONS`] are open ([`connections`]); an accept
//! error (out of file descriptors) pauses the accept loop instead of spinning it.

pub mod access;
pub mod connections;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, LengthLimitError, Limited};
use hyper::body::{Body as _, Incoming};
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use prometheus::{Encoder as _, Registry, TextEncoder};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot, watch};

use self::access::{Access, AdminAuth, Refusal, WRITES_DISABLED};
use self::connections::{Admission, Connections, SlotGuard, Throttle};

/// Largest request body read (a silence is a few hundred bytes); larger ones get 413.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
/// Time a client has to send a request head once connected.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Time a client has to send a request body once its head has arrived.
pub const BODY_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest a connection lives: its one request's head and body, the answer, and sending it.
pub const CONNECTION_LIFETIME: Duration = Duration::from_secs(60);
/// Connections open at once (see [`connections`] for what happens at the limit).
pub const MAX_CONNECTIONS: usize = 64;
/// Largest request head hyper buffers.
const MAX_HEAD_BYTES: usize = 64 * 1024;
/// Pause after an accept error that is not about one connection (out of file descriptors).
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);
/// Least time between two log lines about the same repeated condition.
pub const LOG_INTERVAL: Duration = Duration::from_secs(10);

/// A per-source gauge's value by source (only that gauge is read, not the whole registry).
fn by_source(gauge: &prometheus::IntGaugeVec) -> std::collections::BTreeMap<String, i64> {
    by_labels(gauge, "source", None)
        .into_iter()
        .map(|((source, _), v)| (source, v))
        .collect()
}

/// A gauge's values by its `source` label and, when named, one more label.
fn by_labels(
    gauge: &prometheus::IntGaugeVec,
    first: &str,
    second: Option<&str>,
) -> std::collections::BTreeMap<(String, String), i64> {
    use prometheus::core::Collector as _;
    let mut out = std::collections::BTreeMap::new();
    for family in gauge.collect() {
        for m in family.get_metric() {
            let label = |name: &str| {
                m.get_label()
                    .iter()
                    .find(|l| l.name() == name)
                    .map(|l| l.value().to_owned())
                    .unwrap_or_default()
            };
            let key = (label(first), second.map(label).unwrap_or_default());
            out.insert(key, m.get_gauge().get_value() as i64);
        }
    }
    out
}

/// One line per Graph source: how many tenants it polls, listed and discovered, and whether its
/// last GDAP discovery failed (informational: a failed discovery keeps the tenants it had).
fn graph_details(sources: &entrawatch_ingest::metrics::SourceMetrics) -> String {
    let tenants = by_labels(&sources.graph_tenants, "source", Some("origin"));
    let discovery = by_source(&sources.graph_discovery_ok);
    let mut per_source: std::collections::BTreeMap<&str, (i64, i64)> = Default::default();
    for ((source, origin), n) in &tenants {
        let e = per_source.entry(source).or_default();
        match origin.as_str() {
            "discovered" => e.1 = *n,
            _ => e.0 = *n,
        }
    }
    let mut out = String::new();
    for (source, (listed, discovered)) in per_source {
        let last = match discovery.get(source) {
            Some(1) => "; last GDAP discovery ok",
            Some(_) => "; last GDAP discovery failed (the tenants it had are kept)",
            None => "",
        };
        out.push_str(&format!(
            "source {source}: polling {} tenants ({listed} listed, {discovered} discovered through GDAP{last})\n",
            listed + discovered
        ));
    }
    out
}

/// Lines about sources that a reader of `/readyz` should know of, and whether the sources are
/// healthy: a Kafka source that cannot reach its brokers is not (503); one holding fewer
/// partitions than its topics have (another consumer group member took some) is reported.
fn source_details(sources: &entrawatch_ingest::metrics::SourceMetrics) -> (bool, String) {
    let connected = by_source(&sources.kafka_connected);
    let assigned = by_source(&sources.kafka_assigned);
    let total = by_source(&sources.kafka_partitions);
    let mut out = String::new();
    let mut healthy = true;
    for (source, up) in &connected {
        if *up == 0 {
            healthy = false;
            out.push_str(&format!(
                "source {source}: cannot reach its Kafka brokers\n"
            ));
        }
    }
    for (source, n) in &total {
        let held = assigned.get(source).copied().unwrap_or(0);
        if held < *n {
            out.push_str(&format!(
                "source {source}: assigned {held} of {n} partitions (another member of the consumer group holds the rest; run one replica per group)\n"
            ));
        }
    }
    out.push_str(&graph_details(sources));
    (healthy, out)
}

/// Where the service is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Phase {
    Starting = 0,
    Restoring = 1,
    Ready = 2,
    Draining = 3,
}

impl Phase {
    fn from_u8(v: u8) -> Phase {
        match v {
            1 => Phase::Restoring,
            2 => Phase::Ready,
            3 => Phase::Draining,
            _ => Phase::Starting,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Phase::Starting => "starting",
            Phase::Restoring => "restoring",
            Phase::Ready => "ready",
            Phase::Draining => "draining",
        }
    }
}

/// Requests the admin server hands to the service. `peer` is the client's address, for the audit
/// log.
#[derive(Debug)]
pub enum AdminRequest {
    Reload {
        peer: SocketAddr,
        reply: oneshot::Sender<Result<String, String>>,
    },
    ListSilences(oneshot::Sender<serde_json::Value>),
    AddSilence {
        silence: serde_json::Value,
        peer: SocketAddr,
        reply: oneshot::Sender<Result<String, String>>,
    },
    ExpireSilence {
        id: String,
        peer: SocketAddr,
        reply: oneshot::Sender<Result<(), String>>,
    },
}

/// Shared with the server.
#[derive(Debug)]
pub struct AdminState {
    pub registry: Registry,
    /// The sources' gauges `/readyz` reads (broker reachability, partitions held).
    pub sources: entrawatch_ingest::metrics::SourceMetrics,
    pub phase: AtomicU8,
    /// The detection stage's last heartbeat; `/livez` fails when it is stuck.
    pub heartbeat: std::sync::Mutex<Instant>,
    pub requests: mpsc::Sender<AdminRequest>,
    /// The token and what it guards.
    pub auth: AdminAuth,
    /// Refused requests, logged at most once per interval.
    pub refusals: Mutex<Throttle>,
}

impl AdminState {
    pub fn set_phase(&self, phase: Phase) {
        self.phase.store(phase as u8, Ordering::SeqCst);
    }

    pub fn phase(&self) -> Phase {
        Phase::from_u8(self.phase.load(Ordering::SeqCst))
    }

    pub fn beat(&self) {
        *self.heartbeat.lock().expect("heartbeat lock") = Instant::now();
    }
}

/// How long the detection stage may go without a heartbeat before `/livez` fails.
pub const LIVENESS_STALL: Duration = Duration::from_secs(120);

/// Binds the admin address (so a port conflict fails the start loudly); [`serve`] serves it.
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

/// Accept errors about one connection only (the next accept may well succeed at once).
fn per_connection(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(e.kind(), ConnectionAborted | ConnectionReset | Interrupted)
}

/// Accepts and serves connections until `shutdown` turns true.
pub async fn serve(
    listener: TcpListener,
    state: Arc<AdminState>,
    mut shutdown: watch::Receiver<bool>,
) {
    let connections = Connections::new(MAX_CONNECTIONS);
    let mut accept_errors = Throttle::new(LOG_INTERVAL);
    let mut crowded = Throttle::new(LOG_INTERVAL);
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            changed = shutdown.changed() => {
                if changed.is_err() || *shutdown.borrow() { return; }
                continue;
            }
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) if per_connection(&e) => continue,
            Err(e) => {
                // Out of file descriptors (EMFILE, ENFILE) or memory: the pending connection stays
                // queued and accept would fail again at once, so wait a little before retrying.
                if let Some(unlogged) = accept_errors.hit(Instant::now()) {
                    tracing::warn!(error = %e, unlogged, pause_ms = ACCEPT_ERROR_PAUSE.as_millis() as u64, "admin server cannot accept connections; retrying");
                }
                tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                continue;
            }
        };
        let admission = connections.admit(|id| {
            let state = Arc::clone(&state);
            let guard = SlotGuard {
                connections: Arc::clone(&connections),
                id,
            };
            tokio::spawn(connection(stream, peer, state, guard)).abort_handle()
        });
        match admission {
            Admission::Admitted => {}
            Admission::Replaced => {
                if let Some(unlogged) = crowded.hit(Instant::now()) {
                    tracing::warn!(
                        peer = %peer,
                        limit = MAX_CONNECTIONS,
                        unlogged,
                        "admin connection limit reached: closed the oldest connection still waiting for its request"
                    );
                }
            }
            Admission::Full => {
                if let Some(unlogged) = crowded.hit(Instant::now()) {
                    tracing::warn!(
                        peer = %peer,
                        limit = MAX_CONNECTIONS,
                        unlogged,
                        "admin connection limit reached: every connection is busy, new ones are closed"
                    );
                }
            }
        }
    }
}

/// Serves one connection: one request, then close.
async fn connection(
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    state: Arc<AdminState>,
    guard: SlotGuard,
) {
    let connections = Arc::clone(&guard.connections);
    let id = guard.id;
    let service = service_fn(move |req| {
        let state = Arc::clone(&state);
        let connections = Arc::clone(&connections);
        async move {
            if !connections.mark_busy(id) {
                // Its place went to a newer connection while the head arrived: do nothing.
                return Ok(text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "too many connections\n",
                ));
            }
            handle(state, peer, req).await
        }
    });
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .keep_alive(false)
        .max_buf_size(MAX_HEAD_BYTES);
    let serving = http.serve_connection(TokioIo::new(stream), service);
    let _ = tokio::time::timeout(CONNECTION_LIFETIME, serving).await;
    drop(guard);
}

fn text(status: StatusCode, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", "text/plain; charset=utf-8")
        .body(Full::new(body.into()))
        .expect("static response")
}

fn json(status: StatusCode, body: &serde_json::Value) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .expect("static response")
}

/// The answer to a request that `access` refused.
fn refused(refusal: Refusal) -> Response<Full<Bytes>> {
    let (status, challenge, body) = match refusal {
        Refusal::Disabled => (StatusCode::FORBIDDEN, None, WRITES_DISABLED),
        Refusal::Missing => (
            StatusCode::UNAUTHORIZED,
            Some(r#"Bearer realm="entrawatch""#),
            "unauthorized: send `Authorization: Bearer <token>` with the token of service.admin_token\n",
        ),
        Refusal::Wrong => (
            StatusCode::UNAUTHORIZED,
            Some(r#"Bearer realm="entrawatch", error="invalid_token""#),
            "unauthorized: the bearer token is not service.admin_token\n",
        ),
    };
    let mut response = Response::builder()
        .status(status)
        .header("content-type", "text/plain; charset=utf-8");
    if let Some(challenge) = challenge {
        response = response.header("www-authenticate", challenge);
    }
    response
        .body(Full::new(Bytes::from_static(body.as_bytes())))
        .expect("static response")
}

/// What a request needs, by method and path.
fn access_for(method: &Method, path: &str) -> Access {
    match (method, path) {
        (&Method::GET, "/livez" | "/readyz") => Access::Open,
        (&Method::GET, "/metrics" | "/api/silences") => Access::Read,
        (&Method::POST, "/-/reload" | "/api/silences") => Access::Write,
        (&Method::DELETE, p) if p.starts_with("/api/silences/") => Access::Write,
        // Unknown routes answer 404 to anyone.
        _ => Access::Open,
    }
}

/// A request body of at most [`MAX_BODY_BYTES`], read within [`BODY_READ_TIMEOUT`]; the error is
/// the answer to give instead.
async fn read_body(body: Incoming) -> Result<Bytes, Response<Full<Bytes>>> {
    let too_large = || {
        text(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("request body larger than {MAX_BODY_BYTES} bytes\n"),
        )
    };
    // A Content-Length beyond the limit is refused before a byte of the body is read; a chunked
    // body is counted as it arrives.
    if body.size_hint().lower() > MAX_BODY_BYTES as u64 {
        return Err(too_large());
    }
    match tokio::time::timeout(
        BODY_READ_TIMEOUT,
        Limited::new(body, MAX_BODY_BYTES).collect(),
    )
    .await
    {
        Err(_) => Err(text(
            StatusCode::REQUEST_TIMEOUT,
            format!(
                "request body not received within {} s\n",
                BODY_READ_TIMEOUT.as_secs()
            ),
        )),
        Ok(Err(e)) if e.is::<LengthLimitError>() => Err(too_large()),
        Ok(Err(e)) => Err(text(StatusCode::BAD_REQUEST, format!("{e}\n"))),
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
    }
}

async fn handle(
    state: Arc<AdminState>,
    peer: SocketAddr,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = req.uri().path().to_owned();
    let method = req.method().clone();
    if let Err(refusal) = state.auth.check(access_for(&method, &path), req.headers()) {
        let unlogged = state
            .refusals
            .lock()
            .expect("refusals lock")
            .hit(Instant::now());
        if let Some(unlogged) = unlogged {
            tracing::warn!(peer = %peer, method = %method, path = ?path, reason = ?refusal, unlogged, "admin request refused");
        }
        // The body, if any, is never read.
        return Ok(refused(refusal));
    }
    let response = match (method, path.as_str()) {
        (Method::GET, "/metrics") => {
            let mut out = Vec::new();
            match TextEncoder::new().encode(&state.registry.gather(), &mut out) {
                Ok(()) => Response::builder()
                    .header("content-type", "text/plain; version=0.0.4; charset=utf-8")
                    .body(Full::new(Bytes::from(out)))
                    .expect("static response"),
                Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
            }
        }
        (Method::GET, "/livez") => {
            let since = state.heartbeat.lock().expect("heartbeat lock").elapsed();
            if since > LIVENESS_STALL {
                text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("detection stalled for {}s\n", since.as_secs()),
                )
            } else {
                text(StatusCode::OK, "ok\n")
            }
        }
        (Method::GET, "/readyz") => match state.phase() {
            Phase::Ready => {
                let (healthy, details) = source_details(&state.sources);
                if healthy {
                    text(StatusCode::OK, format!("ready\n{details}"))
                } else {
                    text(
                        StatusCode::SERVICE_UNAVAILABLE,
                        format!("source unavailable\n{details}"),
                    )
                }
            }
            other => text(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("{}\n", other.as_str()),
            ),
        },
        (Method::POST, "/-/reload") => {
            let (reply, rx) = oneshot::channel();
            match ask(&state, AdminRequest::Reload { peer, reply }, rx).await {
                Some(Ok(msg)) => text(StatusCode::OK, format!("{msg}\n")),
                Some(Err(problems)) => text(StatusCode::BAD_REQUEST, format!("{problems}\n")),
                None => text(StatusCode::SERVICE_UNAVAILABLE, "shutting down\n"),
            }
        }
        (Method::GET, "/api/silences") => {
            let (tx, rx) = oneshot::channel();
            match ask(&state, AdminRequest::ListSilences(tx), rx).await {
                Some(list) => json(StatusCode::OK, &list),
                None => text(StatusCode::SERVICE_UNAVAILABLE, "shutting down\n"),
            }
        }
        (Method::POST, "/api/silences") => {
            let body = match read_body(req.into_body()).await {
                Ok(b) => b,
                Err(response) => return Ok(response),
            };
            match serde_json::from_slice::<serde_json::Value>(&body) {
                Err(e) => text(StatusCode::BAD_REQUEST, format!("body is not JSON: {e}\n")),
                Ok(silence) => {
                    let (reply, rx) = oneshot::channel();
                    let request = AdminRequest::AddSilence {
                        silence,
                        peer,
                        reply,
                    };
                    match ask(&state, request, rx).await {
                        Some(Ok(id)) => json(StatusCode::OK, &serde_json::json!({ "id": id })),
                        Some(Err(p)) => text(StatusCode::BAD_REQUEST, format!("{p}\n")),
                        None => text(StatusCode::SERVICE_UNAVAILABLE, "shutting down\n"),
                    }
                }
            }
        }
        (Method::DELETE, p) if p.starts_with("/api/silences/") => {
            let id = p.trim_start_matches("/api/silences/").to_owned();
            let (reply, rx) = oneshot::channel();
            match ask(&state, AdminRequest::ExpireSilence { id, peer, reply }, rx).await {
                Some(Ok(())) => text(StatusCode::OK, "expired\n"),
                Some(Err(p)) => text(StatusCode::NOT_FOUND, format!("{p}\n")),
                None => text(StatusCode::SERVICE_UNAVAILABLE, "shutting down\n"),
            }
        }
        _ => text(StatusCode::NOT_FOUND, "not found\n"),
    };
    Ok(response)
}

async fn ask<T>(state: &AdminState, request: AdminRequest, rx: oneshot::Receiver<T>) -> Option<T> {
    state.requests.send(request).await.ok()?;
    tokio::time::timeout(Duration::from_secs(30), rx)
        .await
        .ok()?
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_that_changes_something_needs_the_token() {
        for (method, path) in [
            (Method::POST, "/api/silences"),
            (Method::DELETE, "/api/silences/s-0123456789abcdef"),
            (Method::DELETE, "/api/silences/"),
            (Method::POST, "/-/reload"),
        ] {
            assert_eq!(access_for(&method, path), Access::Write, "{method} {path}");
        }
        for (method, path) in [(Method::GET, "/metrics"), (Method::GET, "/api/silences")] {
            assert_eq!(access_for(&method, path), Access::Read, "{method} {path}");
        }
        for (method, path) in [
            (Method::GET, "/livez"),
            (Method::GET, "/readyz"),
            (Method::GET, "/nope"),
            (Method::PUT, "/api/silences"),
        ] {
            assert_eq!(access_for(&method, path), Access::Open, "{method} {path}");
        }
    }

    #[test]
    fn refusals_say_what_to_do() {
        let r = refused(Refusal::Disabled);
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        assert!(r.headers().get("www-authenticate").is_none());
        assert!(WRITES_DISABLED.contains("service") && WRITES_DISABLED.contains("admin_token"));
        assert!(WRITES_DISABLED.contains("SIGHUP"));
        for refusal in [Refusal::Missing, Refusal::Wrong] {
            let r = refused(refusal);
            assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
            let challenge = r.headers()["www-authenticate"].to_str().unwrap();
            assert!(challenge.starts_with("Bearer "), "{challenge}");
        }
    }
}
