//! What a receiver's answer means (docs/alerting.md §4.4): an HTTP status, a `Retry-After` header and
//! a body in, an [`Outcome`] out. Pure, so the table is tested case by case.
//!
//! | verdict | Teams Workflows | Slack | generic webhook |
//! |---|---|---|---|
//! | delivered | any 2xx | 200 `ok` | 2xx |
//! | throttled | 429 | 429 | 429, 503 + `Retry-After` |
//! | transient | 408, 409, 5xx, timeout, network | 408, 409, 5xx, timeout, network | 408, 409, 5xx, timeout, network |
//! | payload bug | 400, 413, other 4xx | 400 (`invalid_blocks`, `invalid_payload`, `no_text`), other 4xx | 400, 413, 422, other 4xx |
//! | destination broken | 401, 403, 404, 410, 3xx | 403, 404, 410 (`invalid_token`, `channel_not_found`, `no_service`, `channel_is_archived`, ...), 3xx, 2xx without `ok` | 401, 403, 404, 410, 3xx |
//!
//! What the delivery worker does with each: a payload bug is sent once more in the minimal render,
//! and refused again it goes to the route's fallback receivers (a dead letter when there are none),
//! with a system alert either way. A broken destination opens its circuit. A transient failure is
//! retried with backoff; when it is a connection failure (refused, DNS: `Outcome.unreachable`)
//! and those last `circuit_after_secs` without an answer in between, the circuit opens as for a
//! broken destination. A timeout stays transient: the receiver may be slow, not gone.
//!
//! 409 is transient because a receiver that honours `Idempotency-Key` answers 409 while a request
//! with the same key (an earlier try that timed out on our side) is still being processed.
//!
//! Redirects are not followed: a webhook URL that redirects has moved, which is "broken".

use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};

use super::SinkKind;

/// What to do after a send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Delivered,
    /// Pause the whole destination until `Retry-After` (or a backoff); no attempt is counted.
    Throttled,
    /// Retry this message later with backoff, until its deadline.
    Transient,
    /// The receiver refused the payload: retry once with the minimal render, then send to the
    /// fallback receivers (dead-letter when there are none).
    PayloadBug,
    /// The URL is dead or unauthorised: open the circuit and reroute to the fallback.
    Broken,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Delivered => "delivered",
            Verdict::Throttled => "throttled",
            Verdict::Transient => "transient",
            Verdict::PayloadBug => "payload_bug",
            Verdict::Broken => "broken",
        }
    }
}

/// The `status_class` label of `entrawatch_notification_attempts_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusClass {
    Ok2xx,
    TooMany429,
    Client4xx,
    Server5xx,
    Timeout,
    Network,
}

impl StatusClass {
    pub fn of(status: u16) -> StatusClass {
        match status {
            200..=299 => StatusClass::Ok2xx,
            429 => StatusClass::TooMany429,
            500..=599 => StatusClass::Server5xx,
            // 1xx/3xx are not 2xx and not the server's fault; they count with the 4xx
            _ => StatusClass::Client4xx,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            StatusClass::Ok2xx => "2xx",
            StatusClass::TooMany429 => "429",
            StatusClass::Client4xx => "4xx",
            StatusClass::Server5xx => "5xx",
            StatusClass::Timeout => "timeout",
            StatusClass::Network => "network",
        }
    }
}

/// A `Retry-After` value: delay-seconds or an HTTP-date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryAfter {
    Delay(Duration),
    At(SystemTime),
}

impl RetryAfter {
    /// Parses `120` or `Wed, 21 Oct 2015 07:28:00 GMT`.
    pub fn parse(value: &str) -> Option<RetryAfter> {
        let v = value.trim();
        if let Ok(secs) = v.parse::<u64>() {
            return Some(RetryAfter::Delay(Duration::from_secs(secs)));
        }
        httpdate::parse_http_date(v).ok().map(RetryAfter::At)
    }

    /// The moment the receiver allows the next request, measured from `now`.
    pub fn until(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        match self {
            RetryAfter::Delay(d) => {
                now + chrono::Duration::from_std(*d).unwrap_or(chrono::Duration::MAX / 2)
            }
            RetryAfter::At(t) => DateTime::<Utc>::from(*t).max(now),
        }
    }
}

/// One send's result.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub verdict: Verdict,
    /// The HTTP status, when there was a response.
    pub status: Option<u16>,
    pub class: StatusClass,
    pub retry_after: Option<RetryAfter>,
    /// A short, single-line reason (Slack's error code, a body excerpt, the error kind). Never
    /// contains the URL.
    pub detail: String,
    /// No connection could be made (refused, DNS failure, TLS handshake): the receiver never saw
    /// the request. Transient, but when it lasts the worker opens the destination's circuit.
    pub unreachable: bool,
}

impl Outcome {
    pub fn delivered(status: Option<u16>) -> Outcome {
        Outcome {
            verdict: Verdict::Delivered,
            status,
            class: StatusClass::Ok2xx,
            retry_after: None,
            detail: String::new(),
            unreachable: false,
        }
    }

    /// A failure before any response: timeout or network (connect, TLS, reset, local I/O).
    pub fn failed(timeout: bool, detail: impl Into<String>) -> Outcome {
        Outcome {
            verdict: Verdict::Transient,
            status: None,
            class: if timeout {
                StatusClass::Timeout
            } else {
                StatusClass::Network
            },
            retry_after: None,
            detail: detail.into(),
            unreachable: false,
        }
    }

    /// No connection to the receiver (refused, DNS failure): transient, with `unreachable` set.
    pub fn unreachable(detail: impl Into<String>) -> Outcome {
        Outcome {
            unreachable: true,
            ..Outcome::failed(false, detail)
        }
    }

    /// `last_status` as stored in the outbox: the status code or the class.
    pub fn status_text(&self) -> String {
        match self.status {
            Some(s) => s.to_string(),
            None => self.class.as_str().to_owned(),
        }
    }
}

/// Keeps the first line of `body`, at most 200 characters, printable only.
pub fn excerpt(body: &str) -> String {
    body.trim()
        .lines()
        .next()
        .unwrap_or("")
        .chars()
        .filter(|c| !c.is_control())
        .take(200)
        .collect()
}

/// Classifies a response.
pub fn classify(
    kind: SinkKind,
    status: u16,
    retry_after: Option<RetryAfter>,
    body: &str,
) -> Outcome {
    let text = excerpt(body);
    // slack's 429 body carries the delay as json when the header is missing
    let retry_after = retry_after.or_else(|| {
        (status == 429)
            .then(|| serde_json::from_str::<serde_json::Value>(body).ok())
            .flatten()
            .and_then(|v| v.get("retry_after").and_then(serde_json::Value::as_u64))
            .map(|s| RetryAfter::Delay(Duration::from_secs(s)))
    });
    let verdict = match status {
        200..=299 if kind == SinkKind::Slack && text != "ok" => Verdict::Broken,
        200..=299 => Verdict::Delivered,
        429 => Verdict::Throttled,
        503 if kind == SinkKind::Webhook && retry_after.is_some() => Verdict::Throttled,
        408 | 409 | 500..=599 => Verdict::Transient,
        401 | 403 | 404 | 410 => Verdict::Broken,
        400..=499 => Verdict::PayloadBug,
        _ => Verdict::Broken,
    };
    let detail = match verdict {
        Verdict::Broken if (200..300).contains(&status) => {
            format!("answered {status} without \"ok\": not a slack incoming webhook ({text})")
        }
        Verdict::Broken if (300..400).contains(&status) || status < 200 => {
            format!("answered {status}: the webhook url moved or is not a webhook")
        }
        _ => text,
    };
    Outcome {
        verdict,
        status: Some(status),
        class: StatusClass::of(status),
        retry_after,
        detail,
        unreachable: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use SinkKind::{Slack, Teams, Webhook};
    use Verdict::{Broken, Delivered, PayloadBug, Throttled, Transient};

    #[test]
    fn the_table_of_alerting_4_4() {
        let ra = Some(RetryAfter::Delay(Duration::from_secs(2)));
        let cases: &[(SinkKind, u16, Option<RetryAfter>, &str, Verdict)] = &[
            (Teams, 202, None, "", Delivered),
            (Teams, 200, None, "", Delivered),
            (Teams, 429, ra, "", Throttled),
            (Teams, 408, None, "", Transient),
            (Teams, 502, None, "", Transient),
            (Teams, 503, ra, "", Transient),
            (Teams, 400, None, "bad", PayloadBug),
            (Teams, 413, None, "Request Entity too large", PayloadBug),
            (Teams, 401, None, "", Broken),
            (Teams, 403, None, "", Broken),
            (Teams, 404, None, "", Broken),
            (Teams, 410, None, "", Broken),
            (Slack, 200, None, "ok", Delivered),
            (Slack, 200, None, "<html>portal</html>", Broken),
            (
                Slack,
                429,
                ra,
                "{\"retry_after\":1,\"ok\":false,\"error\":\"rate_limited\"}",
                Throttled,
            ),
            (Slack, 500, None, "rollup_error", Transient),
            (Slack, 400, None, "invalid_blocks", PayloadBug),
            (Slack, 400, None, "invalid_payload", PayloadBug),
            (Slack, 400, None, "no_text", PayloadBug),
            (Slack, 403, None, "invalid_token", Broken),
            (Slack, 403, None, "action_prohibited", Broken),
            (Slack, 404, None, "channel_not_found", Broken),
            (Slack, 404, None, "no_service", Broken),
            (Slack, 410, None, "channel_is_archived", Broken),
            (Webhook, 204, None, "", Delivered),
            (Webhook, 429, None, "", Throttled),
            (Webhook, 503, ra, "", Throttled),
            (Webhook, 503, None, "", Transient),
            (Webhook, 408, None, "", Transient),
            (Webhook, 409, None, "", Transient),
            (Teams, 409, None, "", Transient),
            (Webhook, 422, None, "", PayloadBug),
            (Webhook, 413, None, "", PayloadBug),
            (Webhook, 401, None, "", Broken),
            (Webhook, 301, None, "", Broken),
        ];
        for (kind, status, ra, body, want) in cases {
            let got = classify(*kind, *status, *ra, body);
            assert_eq!(got.verdict, *want, "{kind:?} {status} {body:?}");
            assert_eq!(got.status, Some(*status));
        }
    }

    #[test]
    fn slack_codes_and_retry_after_reach_the_outcome() {
        let o = classify(Slack, 410, None, "channel_is_archived\n");
        assert_eq!(o.detail, "channel_is_archived");
        assert_eq!(o.class.as_str(), "4xx");
        let o = classify(Slack, 429, None, "{\"retry_after\":7,\"ok\":false}");
        assert_eq!(
            o.retry_after,
            Some(RetryAfter::Delay(Duration::from_secs(7)))
        );
        assert_eq!(o.class.as_str(), "429");
        assert_eq!(classify(Webhook, 502, None, "").class.as_str(), "5xx");
    }

    #[test]
    fn retry_after_in_seconds_or_http_date() {
        let now = DateTime::from_timestamp(1_445_412_480, 0).unwrap(); // 2015-10-21 07:28:00Z
        assert_eq!(
            RetryAfter::parse(" 120 ").unwrap().until(now),
            now + chrono::Duration::seconds(120)
        );
        let at = RetryAfter::parse("Wed, 21 Oct 2015 07:28:30 GMT").unwrap();
        assert_eq!(at.until(now), now + chrono::Duration::seconds(30));
        // a date in the past means now
        assert_eq!(
            at.until(now + chrono::Duration::seconds(60)),
            now + chrono::Duration::seconds(60)
        );
        assert_eq!(RetryAfter::parse("soon"), None);
        assert_eq!(RetryAfter::parse("-1"), None);
    }
}
