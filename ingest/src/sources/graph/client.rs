//! One Graph GET: budget, token, send, and what the answer means.
//!
//! In: a tenant ([`TenantHandle`]: its auth and budget), the request's throttling class and a URL
//! (a window's first page, or an `@odata.nextLink` used verbatim). Out: [`Fetched`]: a page body and
//! its next link, or why not: throttled (the tenant's class is paused for `Retry-After` or a
//! backoff), a 503/504 (the caller shrinks its window), a 403 (licence or permission: the stream
//! is unavailable), an auth failure, or another error. A 401 drops the token and retries once
//! with a new one. A token request that failed on the network is a retryable failure; one Entra
//! refused is `Unauthorized`. Every answer is counted in
//! `entrawatch_source_requests_total{source,status}`, token failures by their class
//! (`transient`, `unauthorized`, `invalid_client`, `no_consent`).

use std::time::{Duration, SystemTime};

use serde_json::Value;

use super::auth::{TenantAuth, TokenCache, TokenFailure};
use super::budget::{Budgets, TenantBudget};
use super::lanes::Lane;
use crate::framing::{skip_value, skip_ws};
use crate::metrics::SourceMetrics;

/// What a tenant's lanes share: who it is, its credential and its budget.
#[derive(Debug)]
pub struct TenantHandle {
    pub index: usize,
    pub id: String,
    /// Name for logs (the configured name, else the id).
    pub label: String,
    pub auth: TenantAuth,
    pub budget: TenantBudget,
}

/// The answer to one GET.
#[derive(Debug)]
pub enum Fetched {
    Page {
        body: Vec<u8>,
        next_link: Option<String>,
    },
    /// 429: the class is paused; ask again (the budget waits).
    Throttled { pause: Duration },
    /// 503 or 504: the window was too wide for the service.
    Shrink { status: u16 },
    /// 403: a licence or permission the tenant lacks.
    Unavailable(Denied),
    /// 404: the collection does not exist for this tenant or cloud (Graph's `code` and `message`).
    NotFound { code: String, message: String },
    /// No token (Entra refused the credential) or a 401 after a fresh token; `no_consent`:
    /// Entra says the app has no consent in the tenant.
    Unauthorized { reason: String, no_consent: bool },
    /// Anything else; `retryable` for 5xx and network errors.
    Failed { retryable: bool, reason: String },
}

/// Why Graph refused a lane with 403: a licence the tenant lacks (`licence`: Entra ID P1/P2 for
/// sign-ins and risk) or a permission; Graph's error code and message as they came.
#[derive(Debug, Clone)]
pub struct Denied {
    pub licence: bool,
    pub code: String,
    pub message: String,
}

/// The HTTP client with its token cache and budgets.
#[derive(Debug)]
pub struct GraphClient {
    pub http: reqwest::Client,
    pub tokens: TokenCache,
    pub budgets: Budgets,
    graph_url: String,
    source: String,
    metrics: SourceMetrics,
}

impl GraphClient {
    pub fn new(
        http: reqwest::Client,
        tokens: TokenCache,
        budgets: Budgets,
        graph_url: &str,
        source: &str,
        metrics: SourceMetrics,
    ) -> GraphClient {
        GraphClient {
            http,
            tokens,
            budgets,
            graph_url: graph_url.trim_end_matches('/').to_owned(),
            source: source.to_owned(),
            metrics,
        }
    }

    fn count(&self, status: &str) {
        self.metrics
            .requests
            .with_label_values(&[self.source.as_str(), status])
            .inc();
    }

    /// One GET of `url` for `tenant`, within the budget of `lane`'s class (its lanes take turns).
    pub async fn get(&self, tenant: &TenantHandle, lane: Lane, url: &str) -> Fetched {
        let class = lane.class();
        // A next link is used verbatim, but the bearer token only ever goes to the Graph host.
        let inside = url
            .strip_prefix(&self.graph_url)
            .is_some_and(|rest| rest.starts_with('/'));
        if !inside {
            self.count("error");
            return Fetched::Failed {
                retryable: false,
                reason: format!("refusing a link outside graph_url: {url}"),
            };
        }
        let mut refreshed = false;
        loop {
            let token = match self.tokens.get(&tenant.auth).await {
                Ok(t) => t,
                Err(e) => {
                    self.count(e.class.status());
                    return if e.class == TokenFailure::Network {
                        Fetched::Failed {
                            retryable: true,
                            reason: e.to_string(),
                        }
                    } else {
                        Fetched::Unauthorized {
                            reason: e.to_string(),
                            no_consent: e.class == TokenFailure::NoConsent,
                        }
                    };
                }
            };
            let _slot = self.budgets.acquire(&tenant.budget, lane).await;
            let sent = self
                .http
                .get(url)
                .bearer_auth(token.value.expose())
                .header("Accept", "application/json")
                .send()
                .await;
            let resp = match sent {
                Ok(r) => r,
                Err(e) => {
                    self.count("transient");
                    return Fetched::Failed {
                        retryable: true,
                        reason: e.without_url().to_string(),
                    };
                }
            };
            let status = resp.status().as_u16();
            let retry_after_header = resp
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let body: Vec<u8> = match resp.bytes().await {
                Ok(b) => b.into(),
                Err(e) => {
                    self.count("transient");
                    return Fetched::Failed {
                        retryable: true,
                        reason: format!("HTTP {status}: body cut off: {}", e.without_url()),
                    };
                }
            };
            match status {
                200 => {
                    if body.get(skip_ws(&body, 0)) != Some(&b'{') {
                        self.count("transient");
                        return Fetched::Failed {
                            retryable: true,
                            reason: "HTTP 200 with a body that is not a JSON object".to_owned(),
                        };
                    }
                    self.count("ok");
                    self.budgets.succeeded(&tenant.budget, lane);
                    let next_link = next_link(&body);
                    return Fetched::Page { body, next_link };
                }
                401 if !refreshed => {
                    self.count("unauthorized");
                    self.tokens.invalidate(&tenant.id, &token).await;
                    refreshed = true;
                }
                401 => {
                    self.count("unauthorized");
                    let (code, message) = graph_error(&body);
                    return Fetched::Unauthorized {
                        reason: format!("HTTP 401 after a fresh token: {code}: {message}"),
                        no_consent: false,
                    };
                }
                429 => {
                    self.count("throttled");
                    let scale = self.budgets.scale();
                    let after = retry_after_header
                        .as_deref()
                        .and_then(|v| retry_after(v, SystemTime::now()))
                        .map(|d| scale.of(d));
                    let pause = self.budgets.throttled(&tenant.budget, class, after);
                    return Fetched::Throttled { pause };
                }
                503 | 504 => {
                    self.count("transient");
                    return Fetched::Shrink { status };
                }
                403 => {
                    self.count("unavailable");
                    let (code, message) = graph_error(&body);
                    return Fetched::Unavailable(Denied {
                        licence: is_licence_error(&code, &message),
                        code,
                        message,
                    });
                }
                404 => {
                    self.count("error");
                    let (code, message) = graph_error(&body);
                    return Fetched::NotFound { code, message };
                }
                _ => {
                    let retryable = status >= 500;
                    self.count(if retryable { "transient" } else { "error" });
                    let (code, message) = graph_error(&body);
                    return Fetched::Failed {
                        retryable,
                        reason: format!("HTTP {status}: {code}: {message}"),
                    };
                }
            }
        }
    }
}

/// `Retry-After`: seconds (Graph sends decimals such as `2.128`) or an HTTP date.
pub fn retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0)
            .then(|| Duration::from_secs_f64(secs.min(3600.0)));
    }
    let at = httpdate::parse_http_date(v).ok()?;
    Some(
        at.duration_since(now)
            .unwrap_or(Duration::ZERO)
            .min(Duration::from_secs(3600)),
    )
}

/// `error.code` and `error.message` of a Graph error body (empty when unreadable).
pub fn graph_error(body: &[u8]) -> (String, String) {
    let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let e = &v["error"];
    let text = |x: &Value| x.as_str().unwrap_or("").to_owned();
    let mut message = text(&e["message"]);
    message.truncate(500);
    (text(&e["code"]), message)
}

/// A 403 that a licence (P1/P2) would lift, as opposed to a missing permission or consent.
pub fn is_licence_error(code: &str, message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    code.eq_ignore_ascii_case("Authentication_RequestFromNonPremiumTenantOrB2CTenant")
        // Privileged Identity Management (role eligibility) on a tenant without P2.
        || code.eq_ignore_ascii_case("AadPremiumLicenseRequired")
        || m.contains("not licensed")
        || m.contains("premium license")
        || m.contains("license is required")
}

/// The page's `@odata.nextLink`, found among the top-level keys without decoding the records.
pub fn next_link(body: &[u8]) -> Option<String> {
    let mut i = skip_ws(body, 0);
    if body.get(i) != Some(&b'{') {
        return None;
    }
    i += 1;
    loop {
        i = skip_ws(body, i);
        match body.get(i)? {
            b'}' => return None,
            b',' => {
                i += 1;
                continue;
            }
            b'"' => {}
            _ => return None,
        }
        let key_end = skip_value(body, i).ok()?;
        let key: String = serde_json::from_slice(&body[i..key_end]).ok()?;
        i = skip_ws(body, key_end);
        if body.get(i) != Some(&b':') {
            return None;
        }
        i = skip_ws(body, i + 1);
        let value_end = skip_value(body, i).ok()?;
        if key == "@odata.nextLink" {
            return serde_json::from_slice::<String>(&body[i..value_end]).ok();
        }
        i = value_end;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_seconds_decimals_and_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(retry_after("7", now), Some(Duration::from_secs(7)));
        assert_eq!(
            retry_after(" 2.128 ", now),
            Some(Duration::from_millis(2128))
        );
        let date = httpdate::fmt_http_date(now + Duration::from_secs(30));
        assert_eq!(retry_after(&date, now), Some(Duration::from_secs(30)));
        let past = httpdate::fmt_http_date(now - Duration::from_secs(30));
        assert_eq!(retry_after(&past, now), Some(Duration::ZERO));
        assert_eq!(retry_after("soon", now), None);
        assert_eq!(retry_after("-1", now), None);
    }

    #[test]
    fn next_link_is_found_before_or_after_the_records() {
        let real = include_bytes!(
            "../../../tests/fixtures/real/msgraph-docs/beta_signins_list_ex2_nextlink.json"
        );
        let link = next_link(real).unwrap();
        assert!(
            link.ends_with(
                "$skiptoken=3cff228c89605cc89b0dc753668deef4153e8644caa6d83ed1bb5f711b21cba4"
            ),
            "{link}"
        );
        let after = br#"{"value":[{"id":"a","x":"}\"{"}],"@odata.nextLink":"https://g/x?$skiptoken=a%2Fb"}"#;
        assert_eq!(
            next_link(after).as_deref(),
            Some("https://g/x?$skiptoken=a%2Fb")
        );
        assert_eq!(next_link(br#"{"value":[]}"#), None);
        assert_eq!(next_link(b"[1]"), None);
    }

    #[test]
    fn licence_errors_are_told_from_permission_errors() {
        let body = br#"{"error":{"code":"Authentication_RequestFromNonPremiumTenantOrB2CTenant","message":"Neither tenant is B2C or tenant doesn't have premium license"}}"#;
        let (code, message) = graph_error(body);
        assert!(is_licence_error(&code, &message));
        assert!(is_licence_error(
            "Forbidden",
            "Your tenant is not licensed for this feature."
        ));
        assert!(!is_licence_error(
            "Authorization_RequestDenied",
            "Insufficient privileges to complete the operation."
        ));
    }
}
