//! Generic webhook payloads: a [`Message`] in, a versioned JSON envelope with idempotency and
//! signature headers out (docs/alerting.md §5.6). Receivers verify with [`verify_signature`].
//!
//! The envelope (`version` "1"; fields are only ever added within a version):
//!
//! | field | meaning |
//! |---|---|
//! | `version` | `"1"` |
//! | `notification_id` | the headline notification's id; also the `Idempotency-Key` header |
//! | `kind` | `first`, `escalation`, `reminder`, `test`, `system` |
//! | `since_last` | reminders only, when known: occurrences since the previous notification |
//! | `sent_at` | when the body was rendered (RFC 3339, UTC); the timestamp header in seconds |
//! | `alert_id`, `rule`, `severity`, `tenant_id`, `tenant_name`, `principal`, `title`, `summary`, `first_seen`, `last_seen`, `count`, `evidence`, `mitre`, `event_ids` | the headline alert (the group's most severe), as in the alert record (docs/detectors.md) |
//! | `alert_count` | how many alerts the message groups |
//! | `notification_ids` | the notification id of every grouped alert (same order as the group), to de-duplicate per alert occasion |
//! | `alerts` | the full records of the grouped alerts, headline first |
//! | `truncated` | grouped alerts after the headline whose records were left out of `alerts` |
//!
//! Headers: `Idempotency-Key: <notification_id>`, `X-Entrawatch-Timestamp: <unix seconds>` and, with a
//! secret configured, `X-Entrawatch-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>`.
//! A receiver recomputes the HMAC over the raw body bytes, compares in constant time, and rejects
//! timestamps far from its clock to stop replays.
//!
//! Bodies stay under [`BODY_MAX`] by leaving trailing records out of `alerts`. [`render_minimal`]
//! drops `evidence` and `alerts` (and keeps `alert_count` and `truncated`).

use chrono::{DateTime, Utc};
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Map, Value, json};
use sha2::Sha256;

use super::text::rfc3339;
use super::view;
use super::{Message, Payload};
use crate::record::AlertRecord;

/// Largest body sent; generic receivers commonly refuse bodies above 1 MiB.
pub const BODY_MAX: usize = 1024 * 1024;

/// Envelope version.
pub const VERSION: &str = "1";

/// The versioned JSON envelope, signed with `secret` when one is configured.
pub fn render(msg: &Message<'_>, secret: Option<&[u8]>) -> Payload {
    let n = msg.alerts.len();
    let build = |included: usize| to_body(&envelope(msg, Some(&msg.alerts[..included])));
    // How many records fit, from their sizes (each serialized once, `truncated` counted at its
    // widest so the estimate only errs low); then the real body is checked.
    let mut size = build(0).len() + n.to_string().len();
    let mut k = 0;
    for a in msg.alerts {
        size += serde_json::to_vec(a).map_or(BODY_MAX, |b| b.len()) + usize::from(k > 0);
        if size > BODY_MAX {
            break;
        }
        k += 1;
    }
    let body = build(k);
    if body.len() <= BODY_MAX {
        return sign(msg, body, secret, n.saturating_sub(k.max(1)));
    }
    match view::largest_fitting(k, |k| build(k).len() <= BODY_MAX) {
        Some(k) => sign(msg, build(k), secret, n.saturating_sub(k.max(1))),
        None => render_minimal(msg, secret),
    }
}

/// The smallest valid envelope: the headline without `evidence`, and no `alerts`.
pub fn render_minimal(msg: &Message<'_>, secret: Option<&[u8]>) -> Payload {
    let body = to_body(&envelope(msg, None));
    sign(msg, body, secret, msg.alerts.len().saturating_sub(1))
}

/// The envelope with `alerts` set to `included` (and the headline's evidence), or without both.
fn envelope(msg: &Message<'_>, included: Option<&[AlertRecord]>) -> Value {
    let n = msg.alerts.len();
    let mut v = Map::new();
    v.insert("version".into(), json!(VERSION));
    v.insert("notification_id".into(), json!(msg.notification_id));
    v.insert("kind".into(), json!(msg.kind));
    if let Some(since) = msg.since_last {
        v.insert("since_last".into(), json!(since));
    }
    v.insert("sent_at".into(), json!(rfc3339(msg.now)));
    if let Some(a) = msg.alerts.first() {
        v.insert("alert_id".into(), json!(a.id));
        v.insert("rule".into(), json!(a.rule));
        v.insert("severity".into(), json!(a.severity));
        v.insert("tenant_id".into(), json!(a.tenant_id));
        v.insert("tenant_name".into(), json!(a.tenant_name));
        v.insert("principal".into(), json!(a.principal));
        v.insert("title".into(), json!(a.title));
        v.insert("summary".into(), json!(a.summary));
        v.insert("first_seen".into(), json!(rfc3339(a.first_seen)));
        v.insert("last_seen".into(), json!(rfc3339(a.last_seen)));
        v.insert("count".into(), json!(a.count));
        if included.is_some() {
            v.insert("evidence".into(), Value::Object(a.evidence.clone()));
        }
        v.insert("mitre".into(), json!(a.mitre));
        v.insert("event_ids".into(), json!(a.event_ids));
    }
    v.insert("alert_count".into(), json!(n));
    if !msg.notification_ids.is_empty() {
        v.insert("notification_ids".into(), json!(msg.notification_ids));
    }
    let left_out = match included {
        Some(alerts) => {
            v.insert("alerts".into(), json!(alerts));
            n.saturating_sub(alerts.len().max(1))
        }
        None => n.saturating_sub(1),
    };
    v.insert("truncated".into(), json!(left_out));
    Value::Object(v)
}

fn sign(msg: &Message<'_>, body: Vec<u8>, secret: Option<&[u8]>, truncated: usize) -> Payload {
    let timestamp = timestamp(msg.now);
    let mut p = Payload::json(body, truncated);
    p.headers
        .push(("Idempotency-Key".to_owned(), msg.notification_id.to_owned()));
    p.headers
        .push(("X-Entrawatch-Timestamp".to_owned(), timestamp.clone()));
    if let Some(secret) = secret {
        p.headers.push((
            "X-Entrawatch-Signature".to_owned(),
            signature(secret, &timestamp, &p.body),
        ));
    }
    p
}

/// The `X-Entrawatch-Timestamp` value: unix seconds.
pub fn timestamp(t: DateTime<Utc>) -> String {
    t.timestamp().to_string()
}

/// `sha256=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>`.
pub fn signature(secret: &[u8], timestamp: &str, body: &[u8]) -> String {
    let tag = mac(secret, timestamp, body).finalize().into_bytes();
    let mut out = String::with_capacity(7 + 64);
    out.push_str("sha256=");
    for b in tag {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// Whether `header` (an `X-Entrawatch-Signature` value) signs `timestamp` and `body` with `secret`.
/// Compares in constant time. Freshness of `timestamp` is the receiver's to check.
pub fn verify_signature(secret: &[u8], timestamp: &str, body: &[u8], header: &str) -> bool {
    let Some(hex) = header.trim().strip_prefix("sha256=") else {
        return false;
    };
    let Some(tag) = decode_hex(hex) else {
        return false;
    };
    mac(secret, timestamp, body).verify_slice(&tag).is_ok()
}

fn mac(secret: &[u8], timestamp: &str, body: &[u8]) -> Hmac<Sha256> {
    let mut m =
        <Hmac<Sha256> as KeyInit>::new_from_slice(secret).expect("hmac accepts keys of any length");
    m.update(timestamp.as_bytes());
    m.update(b".");
    m.update(body);
    m
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if s.len() != 64 {
        return None;
    }
    let digit = |b: u8| match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    };
    s.as_bytes()
        .chunks(2)
        .map(|p| Some(digit(p[0])? << 4 | digit(p[1])?))
        .collect()
}

fn to_body(v: &Value) -> Vec<u8> {
    serde_json::to_vec(v).unwrap_or_default()
}
