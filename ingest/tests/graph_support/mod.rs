//! Support for the `graph` source tests: a fake Graph ([`fake`]) and token endpoint ([`token`]),
//! the records it serves ([`data`]), the OData and JWT pieces it reads requests with ([`odata`]), a mini runtime
//! ([`harness`]), shared scenarios ([`scenario`]) and the configs and certificates the tests use
//! (here).

#![allow(dead_code)]

pub mod data;
pub mod fake;
pub mod harness;
pub mod odata;
pub mod scenario;
pub mod token;

use std::path::Path;
use std::time::Duration;

use entrawatch_ingest::secret::SecretRef;
use entrawatch_ingest::sources::graph::{
    CertificateConfig, GraphConfig, GraphSource, GraphTuning, Scale, TenantConfig,
};
use openssl::asn1::Asn1Time;
use openssl::bn::BigNum;
use openssl::hash::MessageDigest;
use openssl::pkey::PKey;
use openssl::rsa::Rsa;
use openssl::x509::{X509, X509NameBuilder};

use fake::{FakeGraph, Options};
use odata::TrustedCert;

pub const CLIENT_ID: &str = "6731de76-14a6-49ae-97bc-6eba6914391e";
pub const SECRET: &str = "s3cr3t-value-never-logged";

/// Time runs this much faster than in service: a 10 s budget window lasts 0.5 s.
pub const SCALE: f64 = 0.05;
/// Unscaled slack the source adds to every budget window. In service 50 ms against a 1 s or 10 s
/// window; here the windows are 20 times shorter while a busy two-core test machine delays a
/// send by as much as in service, so the slack is larger.
pub const SLACK: Duration = Duration::from_millis(250);

/// The n-th test tenant id.
pub fn tenant(n: usize) -> String {
    format!("{n:08x}-aaaa-4aaa-8aaa-{n:012x}")
}

pub fn options(secret: bool, certs: Vec<TrustedCert>) -> Options {
    options_scaled(secret, certs, SCALE)
}

/// The fake's windows for a source running at `scale`.
pub fn options_scaled(secret: bool, certs: Vec<TrustedCert>, scale: f64) -> Options {
    Options {
        client_id: CLIENT_ID.to_owned(),
        secret: secret.then(|| SECRET.to_owned()),
        certs,
        reports_window: Duration::from_secs(10).mul_f64(scale),
        ip_window: Duration::from_secs(1).mul_f64(scale),
        reports_limit: 5,
        ip_limit: 1,
        expires_in: 3600,
        token_lifetime: Duration::from_secs(3600),
        max_span: None,
    }
}

pub fn tuning() -> GraphTuning {
    tuning_scaled(SCALE)
}

pub fn tuning_scaled(scale: f64) -> GraphTuning {
    GraphTuning {
        scale: Scale {
            factor: scale,
            slack: SLACK,
        },
        batch_linger: Duration::from_millis(20),
        checkpoint_interval: Duration::from_millis(200),
        shutdown_drain: Duration::from_secs(5),
        // The scaled wait is 1.5 s, while the sign-in lanes of every tenant start at once.
        licence_wait_floor: Duration::from_secs(10),
    }
}

/// A config pointing at the fake, secret in a file under `dir`; 2 s polls (100 ms scaled).
pub fn config(fake: &FakeGraph, tenants: &[String], dir: &Path) -> GraphConfig {
    let secret_file = dir.join("graph-secret");
    std::fs::write(&secret_file, format!("{SECRET}\n")).unwrap();
    let mut c = GraphConfig::new(
        "graph",
        CLIENT_ID,
        tenants
            .iter()
            .enumerate()
            .map(|(i, id)| TenantConfig {
                id: id.clone(),
                name: Some(format!("customer {i}")),
                client_id: None,
                client_secret: None,
                certificate: None,
            })
            .collect(),
    );
    c.login_url = fake.base.clone();
    c.graph_url = fake.base.clone();
    c.client_secret = Some(SecretRef {
        env: None,
        file: Some(secret_file),
    });
    c.poll_interval_secs = 2;
    c.backfill_days = 3;
    c.free_backfill_days = 2;
    c.page_size = 20;
    c.directory_refresh_minutes = 1;
    c.unavailable_retry_minutes = 1;
    c
}

pub fn source(cfg: GraphConfig) -> GraphSource {
    source_scaled(cfg, SCALE)
}

pub fn source_scaled(cfg: GraphConfig, scale: f64) -> GraphSource {
    GraphSource::new(cfg)
        .unwrap_or_else(|e| panic!("config: {e:#?}"))
        .with_tuning(tuning_scaled(scale))
}

/// A self-signed RSA certificate and key written as PEM under `dir`; returns the config entry and
/// what the fake token endpoint trusts.
pub fn certificate(dir: &Path, name: &str, algorithm: &str) -> (CertificateConfig, TrustedCert) {
    let rsa = Rsa::generate(2048).unwrap();
    let key = PKey::from_rsa(rsa).unwrap();
    let mut subject = X509NameBuilder::new().unwrap();
    subject
        .append_entry_by_text("CN", "entrawatch-test")
        .unwrap();
    let subject = subject.build();
    let mut b = X509::builder().unwrap();
    b.set_version(2).unwrap();
    b.set_serial_number(&BigNum::from_u32(1).unwrap().to_asn1_integer().unwrap())
        .unwrap();
    b.set_subject_name(&subject).unwrap();
    b.set_issuer_name(&subject).unwrap();
    b.set_pubkey(&key).unwrap();
    b.set_not_before(&Asn1Time::days_from_now(0).unwrap())
        .unwrap();
    b.set_not_after(&Asn1Time::days_from_now(30).unwrap())
        .unwrap();
    b.sign(&key, MessageDigest::sha256()).unwrap();
    let cert = b.build();
    let cert_file = dir.join(format!("{name}.crt.pem"));
    let key_file = dir.join(format!("{name}.key.pem"));
    std::fs::write(&cert_file, cert.to_pem().unwrap()).unwrap();
    std::fs::write(&key_file, key.private_key_to_pem_pkcs8().unwrap()).unwrap();
    (
        CertificateConfig {
            certificate_file: cert_file,
            private_key_file: key_file,
            algorithm: algorithm.to_owned(),
        },
        TrustedCert::from_der(&cert.to_der().unwrap()),
    )
}

/// Percentile of durations (sorted in place).
pub fn percentile(v: &mut [Duration], p: f64) -> Duration {
    if v.is_empty() {
        return Duration::ZERO;
    }
    v.sort();
    v[((v.len() - 1) as f64 * p).round() as usize]
}
