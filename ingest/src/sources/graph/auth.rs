//! App-only tokens for every customer tenant: OAuth2 client credentials with a client secret or a
//! certificate (a signed JWT client assertion).
//!
//! In: the resolved credentials of each tenant ([`TenantAuth`], built once at start by
//! [`resolve`]). Out: [`TokenCache::get`], one cached token per tenant, fetched again a few minutes
//! before it expires; [`TokenCache::invalidate`] drops a token Graph refused (401). Secrets, keys
//! and tokens are held in redacting types and never reach a log; a failed token request reports
//! only Entra's error code and description.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

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

/// How an app proves who it is.
pub enum Credential {
    Secret(Secret),
    Certificate(CertificateCredential),
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credential::Secret(_) => f.write_str("Secret(<redacted>)"),
            Credential::Certificate(c) => write!(f, "Certificate(x5t#S256={})", c.x5t_s256),
        }
    }
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

/// Reads every secret and certificate the config names; every problem is listed.
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
    let source_cred = load(
        cfg.client_secret.as_ref(),
        cfg.certificate.as_ref(),
        path,
        &mut problems,
    );
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

/// Why no token could be had. Carries Entra's error code and description, never a secret.
#[derive(Debug, Clone, thiserror::Error)]
#[error("token request for tenant {tenant} failed: {code}: {description}")]
pub struct TokenError {
    pub tenant: String,
    /// `invalid_client`, `unauthorized_client`, `network`, ...
    pub code: String,
    pub description: String,
}

/// One token per tenant, shared by the tenant's lanes.
#[derive(Debug)]
pub struct TokenCache {
    http: reqwest::Client,
    login_url: String,
    scope: String,
    tokens: DashMap<String, Arc<tokio::sync::Mutex<Option<Token>>>>,
    /// Token requests made (tests and logs).
    pub fetched: std::sync::atomic::AtomicU64,
}

impl TokenCache {
    pub fn new(http: reqwest::Client, login_url: &str, graph_url: &str) -> TokenCache {
        TokenCache {
            http,
            login_url: login_url.trim_end_matches('/').to_owned(),
            scope: format!("{}/.default", graph_url.trim_end_matches('/')),
            tokens: DashMap::new(),
            fetched: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// The token endpoint of a tenant (also the client assertion's audience).
    pub fn token_url(&self, tenant: &str) -> String {
        format!("{}/{tenant}/oauth2/v2.0/token", self.login_url)
    }

    fn slot(&self, tenant: &str) -> Arc<tokio::sync::Mutex<Option<Token>>> {
        self.tokens.entry(tenant.to_owned()).or_default().clone()
    }

    /// A valid token for the tenant: the cached one, or a new one when it is near expiry.
    pub async fn get(&self, auth: &TenantAuth) -> Result<Token, TokenError> {
        let slot = self.slot(&auth.tenant_id);
        let mut cached = slot.lock().await;
        if let Some(t) = cached.as_ref()
            && Instant::now() < t.refresh_at
        {
            return Ok(t.clone());
        }
        let token = self.fetch(auth).await?;
        *cached = Some(token.clone());
        Ok(token)
    }

    /// Drops `token` if it is still the cached one (Graph answered 401 to it).
    pub async fn invalidate(&self, tenant: &str, token: &Token) {
        let slot = self.slot(tenant);
        let mut cached = slot.lock().await;
        if cached
            .as_ref()
            .is_some_and(|t| Arc::ptr_eq(&t.value, &token.value))
        {
            *cached = None;
        }
    }

    async fn fetch(&self, auth: &TenantAuth) -> Result<Token, TokenError> {
        self.fetched
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let url = self.token_url(&auth.tenant_id);
        let fail = |code: &str, description: String| TokenError {
            tenant: auth.tenant_id.clone(),
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
                    .map_err(|e| fail("assertion", e))?;
                form.push((
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".to_owned(),
                ));
                form.push(("client_assertion", jwt));
            }
        }
        let started = Instant::now();
        let resp = self
            .http
            .post(&url)
            .form(&form)
            .send()
            .await
            .map_err(|e| fail("network", e.without_url().to_string()))?;
        let status = resp.status();
        let body: Value = resp
            .json()
            .await
            .map_err(|e| fail("response", format!("HTTP {status}: unreadable body: {e}")))?;
        if !status.is_success() {
            let code = body["error"].as_str().unwrap_or("error");
            let description = body["error_description"]
                .as_str()
                .unwrap_or("")
                .lines()
                .next()
                .unwrap_or("")
                .to_owned();
            return Err(fail(code, format!("HTTP {status}: {description}")));
        }
        let Some(access) = body["access_token"].as_str().filter(|s| !s.is_empty()) else {
            return Err(fail("response", "no access_token in the answer".to_owned()));
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
}
