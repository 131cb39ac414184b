//! The admin HTTP server: `GET /metrics` (Prometheus text), `GET /livez`, `GET /readyz`,
//! `POST /-/reload`, and silences under `/api/silences` (`GET` lists, `POST` adds one as JSON,
//! `DELETE /api/silences/<id>` expires one). Small and dependency-light: hyper's HTTP/1 server,
//! one task per connection. It never touches Teams, Slack or a source: readiness reflects only
//! entrawatch's own state.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use prometheus::{Encoder as _, Registry, TextEncoder};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot, watch};

/// A per-source gauge's value by source (only that gauge is read, not the whole registry).
fn by_source(gauge: &prometheus::IntGaugeVec) -> std::collections::BTreeMap<String, i64> {
    use prometheus::core::Collector as _;
    let mut out = std::collections::BTreeMap::new();
    for family in gauge.collect() {
        for m in family.get_metric() {
            let source = m
                .get_label()
                .iter()
                .find(|l| l.name() == "source")
                .map(|l| l.value().to_owned())
                .unwrap_or_default();
            out.insert(source, m.get_gauge().get_value() as i64);
        }
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

/// Requests the admin server hands to the service.
#[derive(Debug)]
pub enum AdminRequest {
    Reload(oneshot::Sender<Result<String, String>>),
    ListSilences(oneshot::Sender<serde_json::Value>),
    AddSilence(serde_json::Value, oneshot::Sender<Result<String, String>>),
    ExpireSilence(String, oneshot::Sender<Result<(), String>>),
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

/// Binds the admin address (so a port conflict fails the start loudly) and serves until shutdown.
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

pub async fn serve(
    listener: TcpListener,
    state: Arc<AdminState>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = shutdown.changed() => {
                if *shutdown.borrow() { return; }
                continue;
            }
        };
        let Ok((stream, _)) = accepted else { continue };
        let state = Arc::clone(&state);
        tokio::spawn(async move {
            let service = service_fn(move |req| handle(Arc::clone(&state), req));
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
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

async fn handle(
    state: Arc<AdminState>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = req.uri().path().to_owned();
    let response = match (req.method().clone(), path.as_str()) {
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
            let (tx, rx) = oneshot::channel();
            match ask(&state, AdminRequest::Reload(tx), rx).await {
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
            let body = match req.into_body().collect().await {
                Ok(b) => b.to_bytes(),
                Err(e) => return Ok(text(StatusCode::BAD_REQUEST, e.to_string())),
            };
            match serde_json::from_slice::<serde_json::Value>(&body) {
                Err(e) => text(StatusCode::BAD_REQUEST, format!("body is not JSON: {e}\n")),
                Ok(v) => {
                    let (tx, rx) = oneshot::channel();
                    match ask(&state, AdminRequest::AddSilence(v, tx), rx).await {
                        Some(Ok(id)) => json(StatusCode::OK, &serde_json::json!({ "id": id })),
                        Some(Err(p)) => text(StatusCode::BAD_REQUEST, format!("{p}\n")),
                        None => text(StatusCode::SERVICE_UNAVAILABLE, "shutting down\n"),
                    }
                }
            }
        }
        (Method::DELETE, p) if p.starts_with("/api/silences/") => {
            let id = p.trim_start_matches("/api/silences/").to_owned();
            let (tx, rx) = oneshot::channel();
            match ask(&state, AdminRequest::ExpireSilence(id, tx), rx).await {
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
