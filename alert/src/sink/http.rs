//! One HTTP post of a rendered payload: no redirects, a whole-request timeout, at most 8 KiB of the
//! answer read, and the URL (a credential) kept out of every error text.

use super::classify::{Outcome, RetryAfter, classify, excerpt};
use super::{Payload, SinkKind};

/// The most of a response body read for classification.
const MAX_BODY: usize = 8 * 1024;

/// POSTs `payload` (and the `extra` headers) to `url` and classifies the answer for `kind`.
pub async fn post(
    client: &reqwest::Client,
    kind: SinkKind,
    name: &str,
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
            Err(e) if (200..300).contains(&status) && kind != SinkKind::Slack => {
                tracing::debug!(destination = %name, error = %without_url(e), "response body cut short");
                break;
            }
            Err(e) => return request_error(e),
        }
    }
    classify(kind, status, retry_after, &String::from_utf8_lossy(&body))
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
    // a connect timeout is also a connect error: it counts as a timeout (the host may be slow)
    if e.is_timeout() {
        Outcome::failed(true, format!("timeout: {}", without_url(e)))
    } else if e.is_connect() {
        Outcome::unreachable(format!("connect: {}", without_url(e)))
    } else {
        Outcome::failed(false, format!("request: {}", without_url(e)))
    }
}
