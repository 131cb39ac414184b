//! Who may use which admin endpoint: the bearer token of `[service] admin_token`, compared in
//! constant time.
//!
//! Open to anyone: `/livez` and `/readyz` (probes). Reads (`/metrics`, `GET /api/silences`): open
//! unless `metrics_token_required`. Writes (silence create and expire, `POST /-/reload`): only with
//! `Authorization: Bearer <token>`; with no token configured they are off (403, with how to turn
//! them on), so a server listening on `0.0.0.0` is safe by default.

use entrawatch_ingest::secret::Secret;
use hyper::header::{AUTHORIZATION, HeaderMap};

/// What an endpoint needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Probes: never behind the token.
    Open,
    /// `/metrics`, `GET /api/silences`: behind the token when `metrics_token_required`.
    Read,
    /// Silence create and expire, reload: always behind the token.
    Write,
}

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No token is configured, so the endpoint is off (403).
    Disabled,
    /// No `Authorization: Bearer` header (401).
    Missing,
    /// A token that is not the configured one (401).
    Wrong,
}

/// What the 403 of a write endpoint says when no token is configured.
pub const WRITES_DISABLED: &str = "the admin API's write endpoints (POST /api/silences, \
DELETE /api/silences/<id>, POST /-/reload) are off because no token is configured. To turn them \
on, set [service] admin_token = { env = \"ENTRAWATCH_ADMIN_TOKEN\" } (or { file = \"/path\" }), \
restart, and send `Authorization: Bearer <token>`. Without a token, SIGHUP still reloads the \
config, and [[silences]] in the config file still apply.\n";

/// The token and what it guards.
#[derive(Debug)]
pub struct AdminAuth {
    token: Option<Secret>,
    reads_need_token: bool,
}

impl AdminAuth {
    /// `token`: the resolved `service.admin_token`; `reads_need_token`:
    /// `service.metrics_token_required`.
    pub fn new(token: Option<Secret>, reads_need_token: bool) -> AdminAuth {
        AdminAuth {
            token,
            reads_need_token,
        }
    }

    /// Whether the write endpoints are on.
    pub fn writes_enabled(&self) -> bool {
        self.token.is_some()
    }

    /// Whether a request with `headers` may use an endpoint that needs `access`.
    pub fn check(&self, access: Access, headers: &HeaderMap) -> Result<(), Refusal> {
        match access {
            Access::Open => return Ok(()),
            Access::Read if !self.reads_need_token => return Ok(()),
            Access::Read | Access::Write => {}
        }
        let Some(token) = &self.token else {
            return Err(Refusal::Disabled);
        };
        let Some(given) = bearer(headers) else {
            return Err(Refusal::Missing);
        };
        if constant_time_eq(token.expose().as_bytes(), given) {
            Ok(())
        } else {
            Err(Refusal::Wrong)
        }
    }
}

/// The credentials of an `Authorization: Bearer <credentials>` header (the scheme is
/// case-insensitive, RFC 9110 §11.1), if there is one such header.
pub fn bearer(headers: &HeaderMap) -> Option<&[u8]> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let value = values.next()?;
    if values.next().is_some() {
        return None;
    }
    let raw = value.as_bytes();
    let (scheme, rest) = raw.split_at(raw.iter().position(|b| *b == b' ')?);
    if !scheme.eq_ignore_ascii_case(b"bearer") {
        return None;
    }
    let credentials = rest.trim_ascii();
    (!credentials.is_empty()).then_some(credentials)
}

/// Whether `given` equals `expected`, in a time that depends on the length of `expected` only:
/// every byte of `expected` is compared, whatever `given` holds and wherever they first differ, so
/// the time of an answer says nothing about how much of a guess was right.
pub fn constant_time_eq(expected: &[u8], given: &[u8]) -> bool {
    // Non-zero when the lengths differ; the loop below folds every byte difference into it.
    let mut diff = expected.len() ^ given.len();
    for (i, e) in expected.iter().enumerate() {
        let g = given.get(i).copied().unwrap_or(0);
        diff |= usize::from(std::hint::black_box(e ^ g));
    }
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(AUTHORIZATION, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn constant_time_eq_is_equality() {
        assert!(constant_time_eq(b"s3cret-token", b"s3cret-token"));
        assert!(!constant_time_eq(b"s3cret-token", b"s3cret-tokem"));
        assert!(!constant_time_eq(b"s3cret-token", b"s3cret-toke"));
        assert!(!constant_time_eq(b"s3cret-token", b"s3cret-token!"));
        assert!(!constant_time_eq(b"s3cret-token", b""));
        assert!(!constant_time_eq(b"a", b"a\0"));
        assert!(constant_time_eq(b"", b""));
    }

    #[test]
    fn bearer_takes_one_header_with_the_scheme_in_any_case() {
        assert_eq!(bearer(&headers(&["Bearer abc"])), Some(&b"abc"[..]));
        assert_eq!(bearer(&headers(&["bearer  abc "])), Some(&b"abc"[..]));
        assert_eq!(bearer(&headers(&["BEARER abc"])), Some(&b"abc"[..]));
        assert_eq!(bearer(&headers(&["Basic YWxhZGRpbjpvcGVu"])), None);
        assert_eq!(bearer(&headers(&["Bearer"])), None);
        assert_eq!(bearer(&headers(&["Bearer "])), None);
        assert_eq!(bearer(&headers(&["Bearerabc"])), None);
        assert_eq!(bearer(&headers(&["Bearer a", "Bearer b"])), None);
        assert_eq!(bearer(&headers(&[])), None);
    }

    #[test]
    fn what_each_access_needs() {
        let token = "0123456789abcdef";
        let right = headers(&["Bearer 0123456789abcdef"]);
        let wrong = headers(&["Bearer 0123456789abcdeX"]);
        let none = headers(&[]);

        let off = AdminAuth::new(None, false);
        assert!(!off.writes_enabled());
        assert_eq!(off.check(Access::Open, &none), Ok(()));
        assert_eq!(off.check(Access::Read, &none), Ok(()));
        assert_eq!(off.check(Access::Write, &right), Err(Refusal::Disabled));

        let on = AdminAuth::new(Some(Secret::new(token)), false);
        assert!(on.writes_enabled());
        assert_eq!(on.check(Access::Read, &none), Ok(()));
        assert_eq!(on.check(Access::Write, &none), Err(Refusal::Missing));
        assert_eq!(on.check(Access::Write, &wrong), Err(Refusal::Wrong));
        assert_eq!(on.check(Access::Write, &right), Ok(()));

        let reads = AdminAuth::new(Some(Secret::new(token)), true);
        assert_eq!(reads.check(Access::Open, &none), Ok(()));
        assert_eq!(reads.check(Access::Read, &none), Err(Refusal::Missing));
        assert_eq!(reads.check(Access::Read, &wrong), Err(Refusal::Wrong));
        assert_eq!(reads.check(Access::Read, &right), Ok(()));
    }
}
