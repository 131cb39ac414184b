//! One send: a [`Message`] and a destination in, an [`Outcome`] out. Teams, Slack and webhook
//! messages are rendered by [`crate::render`] and POSTed; `jsonl` appends the alert records to its
//! file and fsyncs; `stdout` prints them. Nothing here retries or touches the outbox.

use std::io::Write;
use std::time::Duration;

use crate::destination::{ResolvedDestination, Target};
use crate::render::{self, Message, Payload};

use super::classify::{Outcome, RetryAfter, classify, excerpt};

/// The most of a response body read for classification.
const MAX_BODY: usize = 8 * 1024;

/// An HTTP client for one destination: whole-request timeout, no redirects, no cookies.
pub fn client(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(5)))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("entrawatch/", env!("CARGO_PKG_VERSION")))
        .build()
        .unwrap_or_else(|e| {
            tracing::warn!(error = %e, "http client with settings failed, using defaults");
            reqwest::Client::new()
        })
}

/// The bytes `dest` would receive for `msg` (`None` for local sinks, which write records).
pub fn render_for(dest: &ResolvedDestination, msg: &Message<'_>, minimal: bool) -> Option<Payload> {
    Some(match (&dest.target, minimal) {
        (Target::Teams { .. }, false) => render::teams::render(msg),
        (Target::Teams { .. }, true) => render::teams::render_minimal(msg),
        (Target::Slack { .. }, false) => render::slack::render(msg),
        (Target::Slack { .. }, true) => render::slack::render_minimal(msg),
        (Target::Webhook { secret, .. }, false) => {
            render::webhook::render(msg, secret.as_ref().map(|s| s.expose().as_bytes()))
        }
        (Target::Webhook { secret, .. }, true) => {
            render::webhook::render_minimal(msg, secret.as_ref().map(|s| s.expose().as_bytes()))
        }
        (Target::Jsonl { .. } | Target::Stdout, _) => return None,
    })
}

/// Sends `msg` once to `dest` (used by `entrawatch send-test`): full render, no retry.
pub async fn send_once(dest: &ResolvedDestination, msg: &Message<'_>) -> Outcome {
    send(&client(dest.timeout), dest, msg, false).await
}

/// Sends `msg` once with `client` (the worker keeps one per destination).
pub async fn send(
    client: &reqwest::Client,
    dest: &ResolvedDestination,
    msg: &Message<'_>,
    minimal: bool,
) -> Outcome {
    match &dest.target {
        Target::Jsonl { path } => write_jsonl(path.clone(), msg).await,
        Target::Stdout => print_stdout(msg),
        Target::Teams { url } | Target::Slack { url } | Target::Webhook { url, .. } => {
            let payload = render_for(dest, msg, minimal).expect("http sinks render");
            let extra: &[(String, String)] = match &dest.target {
                Target::Webhook { headers, .. } => headers,
                _ => &[],
            };
            post(client, dest, url.expose(), &payload, extra).await
        }
    }
}

async fn post(
    client: &reqwest::Client,
    dest: &ResolvedDestination,
    url: &str,
    payload: &Payload,
    extra: &[(String, String)],
) -> Outcome {
    let mut req = client
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, payload.content_type)
        .body(payload.body.clone());
    for (name, value) in extra.iter().chain(&payload.headers) {
        req = req.header(name.as_str(), value.as_str());
    }
    let mut resp = match req.send().await {
        Ok(r) => r,
        Err(e) => return request_error(e),
    };
    let status = resp.status().as_u16();
    let retry_after = resp
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(RetryAfter::parse);
    let mut body = Vec::new();
    loop {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                let room = MAX_BODY - body.len();
                body.extend_from_slice(&chunk[..chunk.len().min(room)]);
                if body.len() >= MAX_BODY {
                    break;
                }
            }
            Ok(None) => break,
            // the status is known; a body cut short only loses detail (slack needs "ok")
            Err(e)
                if (200..300).contains(&status) && !matches!(dest.target, Target::Slack { .. }) =>
            {
                tracing::debug!(destination = %dest.name, error = %without_url(e), "response body cut short");
                break;
            }
            Err(e) => return request_error(e),
        }
    }
    classify(
        dest.kind(),
        status,
        retry_after,
        &String::from_utf8_lossy(&body),
    )
}

/// A reqwest error and its causes, without the URL (it is a credential).
fn without_url(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut parts = vec![e.to_string()];
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        parts.push(s.to_string());
        source = s.source();
    }
    excerpt(&parts.join(": "))
}

fn request_error(e: reqwest::Error) -> Outcome {
    let timeout = e.is_timeout();
    let kind = if timeout {
        "timeout"
    } else if e.is_connect() {
        "connect"
    } else {
        "request"
    };
    Outcome::failed(timeout, format!("{kind}: {}", without_url(e)))
}

fn lines(msg: &Message<'_>) -> Result<Vec<u8>, serde_json::Error> {
    let mut out = Vec::new();
    for alert in msg.alerts {
        serde_json::to_writer(&mut out, alert)?;
        out.push(b'\n');
    }
    Ok(out)
}

async fn write_jsonl(path: std::path::PathBuf, msg: &Message<'_>) -> Outcome {
    let bytes = match lines(msg) {
        Ok(b) => b,
        Err(e) => return Outcome::failed(false, format!("encode: {e}")),
    };
    let written = tokio::task::spawn_blocking(move || -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)?;
        f.write_all(&bytes)?;
        f.sync_data()
    })
    .await;
    match written {
        Ok(Ok(())) => Outcome::delivered(None),
        Ok(Err(e)) => Outcome::failed(false, format!("write: {e}")),
        Err(e) => Outcome::failed(false, format!("write task: {e}")),
    }
}

fn print_stdout(msg: &Message<'_>) -> Outcome {
    let bytes = match lines(msg) {
        Ok(b) => b,
        Err(e) => return Outcome::failed(false, format!("encode: {e}")),
    };
    let mut out = std::io::stdout().lock();
    match out.write_all(&bytes).and_then(|()| out.flush()) {
        Ok(()) => Outcome::delivered(None),
        Err(e) => Outcome::failed(false, format!("stdout: {e}")),
    }
}
