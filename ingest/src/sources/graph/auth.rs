//! App-only tokens for every customer tenant: OAuth2 client credentials with a client secret, a
//! certificate (a JWT client assertion we sign), or workload identity federation (a JWT client
//! assertion another identity provider signed, such as a Kubernetes projected service-account
//! token, read from a file that rotates).
//!
//! In: the resolved credentials of each tenant ([`TenantAuth`], built once at start by
//! [`resolve`]). Out: [`TokenCache::get`], one cached token per tenant, fetched again a few minutes
//! before it expires; [`TokenCache::invalidate`] drops a token Graph refused (401). A refused
//! token request is a [`TokenError`] classified as a [`TokenFailure`] (network, unauthorized,
//! invalid client, consent missing): a network failure is retried by the caller with backoff, a
//! refusal by Entra is remembered for the tenant for a while (`with_refusal_hold`) so its lanes do
//! not ask again in a tight loop, and each change of a tenant's token state is logged once.
//! Secrets, keys, assertions and tokens are held in redacting types and never reach a log; a failed
//! token request reports only Entra's error code and description.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use dashmap::DashMap;
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Padding;
use openssl::sign::{RsaPssSaltlen, Signer};
use openssl::x509::X509;
use serde_json::{Value, json};
use tokio::time::Instant;

use super::config::{CertificateConfig, GraphConfig};
use crate::secret::Secret;

/// The `client_assertion_type` of a JWT client assertion (certificate or federated).
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// How an app proves who it is.
pub enum Credential {
    Secret(Secret),
    Certificate(CertificateCredential),
    Federated(FederatedCredential),
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credential::Secret(_) => f.write_str("Secret(<redacted>)"),
            Credential::Certificate(c) => write!(f, "Certificate(x5t#S256={})", c.x5t_s256),
            Credential::Federated(c) => write!(f, "Federated({})", c.file.display()),
        }
    }
}

/// A cached assertion older than this is read again before a token request, even when the file
/// looks unchanged (Kubernetes rotates projected tokens about hourly, well before they expire).
pub const ASSERTION_MAX_AGE: Duration = Duration::from_secs(5 * 60);

/// Workload identity federation: the client assertion is a JWT issued by another identity
/// provider (in Kubernetes, the pod's projected service-account token, whose issuer and subject
/// the app registration trusts through a federated identity credential), read from `file`. The
/// file rotates: it is read again when its modification time or size changes, and before any
/// token request whose assertion was read more than [`ASSERTION_MAX_AGE`] ago.
pub struct FederatedCredential {
    pub file: PathBuf,
    /// [`ASSERTION_MAX_AGE`] (tests shorten it).
    max_age: Duration,
    cached: std::sync::Mutex<Option<CachedAssertion>>,
}

struct CachedAssertion {
    value: Arc<Secret>,
    stamp: FileStamp,
    read_at: std::time::Instant,
}

/// What tells a rewritten file: modification time and size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileStamp {
    modified: Option<SystemTime>,
    len: u64,
}

impl fmt::Debug for FederatedCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FederatedCredential({})", self.file.display())
    }
}

impl FederatedCredential {
    /// Reads the token file once to check it (`path` names the config entry in errors).
    pub fn load(file: &Path, path: &str) -> Result<FederatedCredential, String> {
        let cred = FederatedCredential {
            file: file.to_owned(),
            max_age: ASSERTION_MAX_AGE,
            cached: std::sync::Mutex::new(None),
        };
        cred.assertion()
            .map_err(|e| format!("{path}.federated_token_file: {e}"))?;
        Ok(cred)
    }

    /// The current assertion: the cached one while the file is unchanged and the cache is young,
    /// else the file's contents read again.
    pub fn assertion(&self) -> Result<Arc<Secret>, String> {
        let stamp = std::fs::metadata(&self.file)
            .map(|m| FileStamp {
                modified: m.modified().ok(),
                len: m.len(),
            })
            .map_err(|e| format!("cannot read {}: {e}", self.file.display()))?;
        let mut cached = self.cached.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = cached.as_ref()
            && c.stamp == stamp
            && c.read_at.elapsed() < self.max_age
        {
            return Ok(c.value.clone());
        }
        let text = std::fs::read_to_string(&self.file)
            .map_err(|e| format!("cannot read {}: {e}", self.file.display()))?;
        let jwt = text.trim();
        if jwt.is_empty() {
            return Err(format!("{} is empty", self.file.display()));
        }
        if !looks_like_jwt(jwt) {
            return Err(format!(
                "{} does not hold a JWT (three base64url parts separated by dots)",
                self.file.display()
            ));
        }
        let value = Arc::new(Secret::new(jwt));
        *cached = Some(CachedAssertion {
            value: value.clone(),
            stamp,
            read_at: std::time::Instant::now(),
        });
        Ok(value)
    }
}

/// Three non-empty base64url parts separated by dots (a signed JWT, compact form).
fn looks_like_jwt(s: &str) -> bool {
    let parts: Vec<&str> = s.split('.').collect();
    parts.len() == 3
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// A certificate's private key and thumbprints, loaded once.
pub struct CertificateCredential {
    key: PKey<Private>,
    /// Base64url SHA-1 thumbprint of the certificate's DER.
    pub x5t: String,
    /// Base64url SHA-256 thumbprint of the certificate's DER.
    pub x5t_s256: String,
    pss: bool,
}

impl fmt::Debug for CertificateCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CertificateCredential(x5t#S256={})", self.x5t_s256)
    }
}

impl CertificateCredential {
    /// Loads and checks a certificate and its key (`path` names the config entry in errors).
    pub fn load(cfg: &CertificateConfig, path: &str) -> Result<CertificateCredential, String> {
        let read = |file: &std::path::Path, what: &str| {
            std::fs::read(file)
                .map_err(|e| format!("{path}.{what}: cannot read {}: {e}", file.display()))
        };
        let cert_pem = read(&cfg.certificate_file, "certificate_file")?;
        let key_pem = read(&cfg.private_key_file, "private_key_file")?;
        let cert = X509::from_pem(&cert_pem).map_err(|_| {
            format!(
                "{path}.certificate_file: {} holds no PEM certificate",
                cfg.certificate_file.display()
            )
        })?;
        let key = PKey::private_key_from_pem(&key_pem).map_err(|_| {
            format!(
                "{path}.private_key_file: {} holds no PEM private key (or it is encrypted)",
                cfg.private_key_file.display()
            )
        })?;
        if key.rsa().is_err() {
            return Err(format!(
                "{path}.private_key_file: not an RSA key (Entra signs client assertions with RSA)"
            ));
        }
        let public = cert
            .public_key()
            .map_err(|e| format!("{path}.certificate_file: unreadable public key: {e}"))?;
        if !public.public_eq(&key) {
            return Err(format!(
                "{path}: the private key does not belong to the certificate"
            ));
        }
        let der = cert
            .to_der()
            .map_err(|e| format!("{path}.certificate_file: {e}"))?;
        let sha1 = openssl::hash::hash(MessageDigest::sha1(), &der)
            .map_err(|e| format!("{path}.certificate_file: {e}"))?;
        let sha256 = openssl::hash::hash(MessageDigest::sha256(), &der)
            .map_err(|e| format!("{path}.certificate_file: {e}"))?;
        Ok(CertificateCredential {
            key,
            x5t: base64url(&sha1),
            x5t_s256: base64url(&sha256),
            pss: cfg.algorithm == "PS256",
        })
    }

    /// A signed client assertion for `client_id` addressed to `audience` (the token endpoint),
    /// valid for ten minutes.
    pub fn assertion(&self, client_id: &str, audience: &str) -> Result<String, String> {
        let now = chrono::Utc::now().timestamp();
        let header = json!({
            "alg": if self.pss { "PS256" } else { "RS256" },
            "typ": "JWT",
            "x5t": self.x5t,
            "x5t#S256": self.x5t_s256,
        });
        let claims = json!({
            "aud": audience,
            "iss": client_id,
            "sub": client_id,
            "jti": random_guid(),
            "nbf": now,
            "iat": now,
            "exp": now + 600,
        });
        let input = format!(
            "{}.{}",
            base64url(header.to_string().as_bytes()),
            base64url(claims.to_string().as_bytes())
        );
        let sign = || -> Result<Vec<u8>, openssl::error::ErrorStack> {
            let mut signer = Signer::new(MessageDigest::sha256(), &self.key)?;
            if self.pss {
                signer.set_rsa_padding(Padding::PKCS1_PSS)?;
                signer.set_rsa_pss_saltlen(RsaPssSaltlen::DIGEST_LENGTH)?;
                signer.set_rsa_mgf1_md(MessageDigest::sha256())?;
            }
            signer.sign_oneshot_to_vec(input.as_bytes())
        };
        let sig = sign().map_err(|e| format!("cannot sign the client assertion: {e}"))?;
        Ok(format!("{input}.{}", base64url(&sig)))
    }
}

/// Base64url without padding (JWT).
pub fn base64url(bytes: &[u8]) -> String {
    openssl::base64::encode_block(bytes)
        .trim_end_matches('=')
        .replace('+', "-")
        .replace('/', "_")
}

fn random_guid() -> String {
    let mut b = [0u8; 16];
    if openssl::rand::rand_bytes(&mut b).is_err() {
        for (i, x) in b.iter_mut().enumerate() {
            *x = (super::budget::random_unit() * 256.0) as u8 ^ i as u8;
        }
    }
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// One tenant's app id and credential.
#[derive(Debug, Clone)]
pub struct TenantAuth {
    pub tenant_id: String,
    pub client_id: String,
    pub credential: Arc<Credential>,
}

/// Reads every secret, certificate and federated token file the config names; every problem is
/// listed.
pub fn resolve(cfg: &GraphConfig, path: &str) -> Result<Vec<TenantAuth>, Vec<String>> {
    resolve_with(cfg, path, &|name| std::env::var(name).ok())
}

/// [`resolve`] with the environment passed in (tests).
pub fn resolve_with(
    cfg: &GraphConfig,
    path: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<TenantAuth>, Vec<String>> {
    let mut problems = Vec::new();
    let mut certs: HashMap<(std::path::PathBuf, std::path::PathBuf, String), Arc<Credential>> =
        HashMap::new();
    let mut load = |secret: Option<&crate::secret::SecretRef>,
                    cert: Option<&CertificateConfig>,
                    at: &str,
                    problems: &mut Vec<String>|
     -> Option<Arc<Credential>> {
        if let Some(s) = secret {
            return match s.resolve_with(&format!("{at}.client_secret"), env) {
                Ok(v) => Some(Arc::new(Credential::Secret(v))),
                Err(e) => {
                    problems.push(e);
                    None
                }
            };
        }
        let c = cert?;
        let key = (
            c.certificate_file.clone(),
            c.private_key_file.clone(),
            c.algorithm.clone(),
        );
        if let Some(found) = certs.get(&key) {
            return Some(found.clone());
        }
        match CertificateCredential::load(c, &format!("{at}.certificate")) {
            Ok(loaded) => {
                let cred = Arc::new(Credential::Certificate(loaded));
                certs.insert(key, cred.clone());
                Some(cred)
            }
            Err(e) => {
                problems.push(e);
                None
            }
        }
    };
    let source_cred = match &cfg.federated_token_file {
        Some(file) => match FederatedCredential::load(file, path) {
            Ok(f) => Some(Arc::new(Credential::Federated(f))),
            Err(e) => {
                problems.push(e);
                None
            }
        },
        None => load(
            cfg.client_secret.as_ref(),
            cfg.certificate.as_ref(),
            path,
            &mut problems,
        ),
    };
    let mut out = Vec::new();
    for (i, t) in cfg.tenants.iter().enumerate() {
        let at = format!("{path}.tenants[{i}]");
        let own = load(
            t.client_secret.as_ref(),
            t.certificate.as_ref(),
            &at,
            &mut problems,
        );
        let has_own = t.client_secret.is_some() || t.certificate.is_some();
        let credential = if has_own { own } else { source_cred.clone() };
        let client_id = t.client_id.clone().or_else(|| cfg.client_id.clone());
        if let (Some(credential), Some(client_id)) = (credential, client_id) {
            out.push(TenantAuth {
                tenant_id: t.id.to_ascii_lowercase(),
                client_id,
                credential,
            });
        }
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(problems)
    }
}

/// A bearer token for one tenant.
#[derive(Clone)]
pub struct Token {
    pub value: Arc<Secret>,
    refresh_at: Instant,
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

/// What kind of failure a token request met, as an operator acts on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TokenFailure {
    /// The token endpoint could not be reached, timed out, answered 5xx or 429, or its answer
    /// was cut off: retried with backoff.
    Network,
    /// Entra refused for another reason (unknown tenant, bad request, unauthorized client).
    Unauthorized,
    /// The credential itself is refused: a wrong or expired client secret (AADSTS7000215,
    /// AADSTS7000222), an assertion whose certificate or signature is not accepted
    /// (AADSTS700027), an expired assertion (AADSTS700024), no federated identity credential
    /// matching the assertion (AADSTS700213), or a token file that cannot be read.
    InvalidClient,
    /// The app is not in the customer tenant: no admin consent (AADSTS65001), no service
    /// principal (AADSTS7000229), or the app is not found in the directory (AADSTS700016, which
    /// Entra documents as "not installed by the administrator of the tenant or consented to").
    NoConsent,
}

impl TokenFailure {
    /// The `status` label of `entrawatch_source_requests_total` for this failure.
    pub fn status(self) -> &'static str {
        match self {
            TokenFailure::Network => "transient",
            TokenFailure::Unauthorized => "unauthorized",
            TokenFailure::InvalidClient => "invalid_client",
            TokenFailure::NoConsent => "no_consent",
        }
    }

    /// What an operator should look at, for the log line and `validate --online`.
    pub fn advice(self) -> &'static str {
        match self {
            TokenFailure::Network => {
                "the token endpoint is unreachable or failing; retrying with backoff"
            }
            TokenFailure::Unauthorized => "Entra refused the token request",
            TokenFailure::InvalidClient => {
                "the credential is refused: check the client secret, certificate or federated identity credential"
            }
            TokenFailure::NoConsent => {
                "the app has no admin consent (no service principal) in this tenant"
            }
        }
    }

    /// Classifies an answer of the token endpoint: its HTTP status, OAuth `error`, the AADSTS
    /// codes of `error_codes` and those named in `error_description`.
    pub fn classify(status: u16, error: &str, codes: &[u64], description: &str) -> TokenFailure {
        if status >= 500 || status == 429 {
            return TokenFailure::Network;
        }
        let named = aadsts_codes(description);
        let has = |c: u64| codes.contains(&c) || named.contains(&c);
        if [65001, 7000229, 700016].into_iter().any(has) {
            return TokenFailure::NoConsent;
        }
        if [7000215, 7000222, 700027, 700024, 700213, 700211, 7000218]
            .into_iter()
            .any(has)
            || error == "invalid_client"
        {
            return TokenFailure::InvalidClient;
        }
        TokenFailure::Unauthorized
    }
}

/// An error and its causes, `: `-separated ("error sending request: connection refused").
fn with_causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let more = c.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        cause = c.source();
    }
    text
}

/// Every `AADSTS<digits>` named in a text.
fn aadsts_codes(text: &str) -> Vec<u64> {
    text.match_indices("AADSTS")
        .filter_map(|(i, _)| {
            let digits: String = text[i + 6..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            digits.parse().ok()
        })
        .collect()
}

/// Why no token could be had. Carries Entra's error code and description, never a secret.
#[derive(Debug, Clone, thiserror::Error)]
#[error("token request for tenant {tenant} failed ({}): {code}: {description}", class.status())]
pub struct TokenError {
    pub tenant: String,
    pub class: TokenFailure,
    /// `invalid_client`, `unauthorized_client`, `network`, ...
    pub code: String,
    pub description: String,
}

/// How long a tenant whose token request Entra refused (anything but a network failure) is
/// answered from memory before Entra is asked again.
pub const REFUSAL_HOLD: Duration = Duration::from_secs(5 * 60);

/// One tenant's token, the refusal remembered, and the state last logged.
#[derive(Debug, Default)]
struct Slot {
    token: Option<Token>,
    refused: Option<(TokenError, Instant)>,
    /// `Some` while the tenant's last token request failed (logged once per change).
    failing: Option<TokenFailure>,
}

/// One token per tenant, shared by the tenant's lanes.
#[derive(Debug)]
pub struct TokenCache {
    http: reqwest::Client,
    login_url: String,
    scope: String,
    source: String,
    refusal_hold: Duration,
    tokens: DashMap<String, Arc<tokio::sync::Mutex<Slot>>>,
    /// Token requests made (tests and logs).
    pub fetched: std::sync::atomic::AtomicU64,
}

impl TokenCache {
    pub fn new(http: reqwest::Client, login_url: &str, graph_url: &str) -> TokenCache {
        TokenCache {
            http,
            login_url: login_url.trim_end_matches('/').to_owned(),
            scope: format!("{}/.default", graph_url.trim_end_matches('/')),
            source: String::new(),
            refusal_hold: REFUSAL_HOLD,
            tokens: DashMap::new(),
            fetched: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// Names the source in log lines.
    pub fn with_source(mut self, source: &str) -> TokenCache {
        self.source = source.to_owned();
        self
    }

    /// How long a refusal is remembered ([`REFUSAL_HOLD`] in service; scaled in tests).
    pub fn with_refusal_hold(mut self, hold: Duration) -> TokenCache {
        self.refusal_hold = hold;
        self
    }

    /// The token endpoint of a tenant (also the client assertion's audience).
    pub fn token_url(&self, tenant: &str) -> String {
        format!("{}/{tenant}/oauth2/v2.0/token", self.login_url)
    }

    fn slot(&self, tenant: &str) -> Arc<tokio::sync::Mutex<Slot>> {
        self.tokens.entry(tenant.to_owned()).or_default().clone()
    }

    /// A valid token for the tenant: the cached one, or a new one when it is near expiry. A
    /// refusal by Entra is answered again from memory for the refusal hold.
    pub async fn get(&self, auth: &TenantAuth) -> Result<Token, TokenError> {
        let slot = self.slot(&auth.tenant_id);
        let mut slot = slot.lock().await;
        if let Some(t) = slot.token.as_ref()
            && Instant::now() < t.refresh_at
        {
            return Ok(t.clone());
        }
        if let Some((e, until)) = slot.refused.as_ref()
            && Instant::now() < *until
        {
            return Err(e.clone());
        }
        slot.refused = None;
        match self.fetch(auth).await {
            Ok(token) => {
                if let Some(was) = slot.failing.take() {
                    tracing::info!(source = %self.source, tenant_id = %auth.tenant_id,
                        was = was.status(), "graph token obtained again");
                }
                slot.token = Some(token.clone());
                Ok(token)
            }
            Err((e, from_entra)) => {
                if slot.failing != Some(e.class) {
                    slot.failing = Some(e.class);
                    tracing::warn!(source = %self.source, tenant_id = %auth.tenant_id,
                        class = e.class.status(), code = %e.code, description = %e.description,
                        "graph token request failed: {}", e.class.advice());
                }
                if from_entra && e.class != TokenFailure::Network {
                    slot.refused = Some((e.clone(), Instant::now() + self.refusal_hold));
                }
                Err(e)
            }
        }
    }

    /// Drops `token` if it is still the cached one (Graph answered 401 to it).
    pub async fn invalidate(&self, tenant: &str, token: &Token) {
        let slot = self.slot(tenant);
        let mut slot = slot.lock().await;
        if slot
            .token
            .as_ref()
            .is_some_and(|t| Arc::ptr_eq(&t.value, &token.value))
        {
            slot.token = None;
        }
    }

    /// One token request. The error says whether Entra answered it (a refusal worth
    /// remembering) or it failed here or on the way.
    async fn fetch(&self, auth: &TenantAuth) -> Result<Token, (TokenError, bool)> {
        self.fetched
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let url = self.token_url(&auth.tenant_id);
        let fail = |class: TokenFailure, code: &str, description: String| TokenError {
            tenant: auth.tenant_id.clone(),
            class,
            code: code.to_owned(),
            description,
        };
        let mut form: Vec<(&str, String)> = vec![
            ("client_id", auth.client_id.clone()),
            ("scope", self.scope.clone()),
            ("grant_type", "client_credentials".to_owned()),
        ];
        match auth.credential.as_ref() {
            Credential::Secret(s) => form.push(("client_secret", s.expose().to_owned())),
            Credential::Certificate(c) => {
                let jwt = c
                    .assertion(&auth.client_id, &url)
                    .map_err(|e| (fail(TokenFailure::InvalidClient, "assertion", e), false))?;
                form.push(("client_assertion_type", JWT_BEARER.to_owned()));
                form.push(("client_assertion", jwt));
            }
            Credential::Federated(f) => {
                let jwt = f
                    .assertion()
                    .map_err(|e| (fail(TokenFailure::InvalidClient, "assertion", e), false))?;
                form.push(("client_assertion_type", JWT_BEARER.to_owned()));
                form.push(("client_assertion", jwt.expose().to_owned()));
            }
        }
        let started = Instant::now();
        let resp = self.http.post(&url).form(&form).send().await.map_err(|e| {
            let e = fail(
                TokenFailure::Network,
                "network",
                with_causes(&e.without_url()),
            );
            (e, false)
        })?;
        let status = resp.status();
        let body: Value = match resp.json().await {
            Ok(v) => v,
            Err(e) => {
                let class = if status.is_server_error() || status.is_success() {
                    TokenFailure::Network
                } else {
                    TokenFailure::classify(status.as_u16(), "", &[], "")
                };
                let why = format!("HTTP {status}: unreadable body: {}", e.without_url());
                return Err((fail(class, "response", why), true));
            }
        };
        if !status.is_success() {
            let code = body["error"].as_str().unwrap_or("error");
            let description = body["error_description"]
                .as_str()
                .unwrap_or("")
                .lines()
                .next()
                .unwrap_or("")
                .to_owned();
            let codes: Vec<u64> = body["error_codes"]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_u64).collect())
                .unwrap_or_default();
            let class = TokenFailure::classify(status.as_u16(), code, &codes, &description);
            return Err((
                fail(class, code, format!("HTTP {status}: {description}")),
                true,
            ));
        }
        let Some(access) = body["access_token"].as_str().filter(|s| !s.is_empty()) else {
            let e = fail(
                TokenFailure::Network,
                "response",
                "no access_token in the answer".to_owned(),
            );
            return Err((e, true));
        };
        let expires_in = match &body["expires_in"] {
            Value::Number(n) => n.as_u64(),
            Value::String(s) => s.parse().ok(),
            _ => None,
        }
        .unwrap_or(3599);
        let lifetime = Duration::from_secs(expires_in);
        // Refresh five minutes early, or a quarter early for short-lived tokens.
        let margin = Duration::from_secs(300).min(lifetime / 4);
        Ok(Token {
            value: Arc::new(Secret::new(access)),
            refresh_at: started + lifetime - margin,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64url_has_no_padding_or_plus() {
        assert_eq!(base64url(&[0xfb, 0xff]), "-_8");
        assert_eq!(base64url(b"ab"), "YWI");
        let g = random_guid();
        assert!(crate::value::is_guid(&g), "{g}");
    }

    #[test]
    fn debug_never_shows_a_secret() {
        let c = Credential::Secret(Secret::new("hunter2"));
        let t = Token {
            value: Arc::new(Secret::new("eyJ0b2tlbg")),
            refresh_at: Instant::now(),
        };
        let shown = format!("{c:?} {t:?}");
        assert!(
            !shown.contains("hunter2") && !shown.contains("eyJ0b2tlbg"),
            "{shown}"
        );
    }

    #[test]
    fn token_failures_are_classified_by_status_and_aadsts_code() {
        use TokenFailure::*;
        let cases: [(u16, &str, &[u64], &str, TokenFailure); 12] = [
            (
                503,
                "temporarily_unavailable",
                &[],
                "AADSTS90033: busy",
                Network,
            ),
            (500, "server_error", &[], "", Network),
            (429, "", &[], "", Network),
            (
                401,
                "invalid_client",
                &[7000215],
                "AADSTS7000215: Invalid client secret provided.",
                InvalidClient,
            ),
            (
                401,
                "invalid_client",
                &[],
                "AADSTS7000222: The provided client secret keys are expired.",
                InvalidClient,
            ),
            (
                401,
                "invalid_client",
                &[700027],
                "AADSTS700027: Client assertion failed signature validation.",
                InvalidClient,
            ),
            (
                400,
                "invalid_request",
                &[700213],
                "AADSTS700213: No matching federated identity record found",
                InvalidClient,
            ),
            (
                400,
                "unauthorized_client",
                &[700016],
                "AADSTS700016: Application with identifier 'x' was not found in the directory 'y'.",
                NoConsent,
            ),
            (
                400,
                "invalid_grant",
                &[],
                "AADSTS65001: The user or administrator has not consented",
                NoConsent,
            ),
            (
                401,
                "invalid_client",
                &[7000229],
                "AADSTS7000229: The client application is missing service principal in the tenant",
                NoConsent,
            ),
            (
                400,
                "invalid_request",
                &[90002],
                "AADSTS90002: Tenant 'x' not found.",
                Unauthorized,
            ),
            (
                400,
                "unsupported_grant_type",
                &[],
                "AADSTS70003",
                Unauthorized,
            ),
        ];
        for (status, error, codes, description, want) in cases {
            assert_eq!(
                TokenFailure::classify(status, error, codes, description),
                want,
                "{status} {error} {description}"
            );
        }
        assert_eq!(
            aadsts_codes("AADSTS7000215: x AADSTS50011."),
            vec![7000215, 50011]
        );
    }

    #[test]
    fn a_federated_assertion_is_read_again_when_the_file_changes() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("token");
        std::fs::write(&file, "aGVhZA.Ym9keQ.c2ln\n").unwrap();
        let cred = FederatedCredential::load(&file, "s").unwrap();
        assert_eq!(cred.assertion().unwrap().expose(), "aGVhZA.Ym9keQ.c2ln");
        // The kubelet swaps the file whole; the new token is longer here, so the size changes
        // even on a file system whose modification times are coarse.
        let next = dir.path().join("token.next");
        std::fs::write(&next, "aGVhZA.Ym9keTI.c2lnMg").unwrap();
        std::fs::rename(&next, &file).unwrap();
        assert_eq!(cred.assertion().unwrap().expose(), "aGVhZA.Ym9keTI.c2lnMg");
        // Rewritten in place with the same size and modification time: the copy is kept until it
        // is older than the maximum age.
        let modified = std::fs::metadata(&file).unwrap().modified().unwrap();
        std::fs::write(&file, "aGVhZA.Ym9keTM.c2lnMw").unwrap();
        let f = std::fs::File::options().write(true).open(&file).unwrap();
        f.set_modified(modified).unwrap();
        drop(f);
        assert_eq!(cred.assertion().unwrap().expose(), "aGVhZA.Ym9keTI.c2lnMg");
        let cred = FederatedCredential {
            max_age: Duration::ZERO,
            ..cred
        };
        assert_eq!(cred.assertion().unwrap().expose(), "aGVhZA.Ym9keTM.c2lnMw");
        std::fs::write(&file, "not a jwt").unwrap();
        let err = cred.assertion().unwrap_err();
        assert!(err.contains("does not hold a JWT"), "{err}");
        std::fs::remove_file(&file).unwrap();
        let err = FederatedCredential::load(&file, "sources[0]").unwrap_err();
        assert!(
            err.starts_with("sources[0].federated_token_file: cannot read"),
            "{err}"
        );
        assert!(!looks_like_jwt("a.b") && !looks_like_jwt("a..c") && looks_like_jwt("a.b.c"));
    }
}
