//! Credentials and token failures of the `graph` source against the fake Graph and token
//! endpoint on 127.0.0.1 (see `graph_support/token.rs`): workload identity federation with a token
//! file that rotates during the run, and token requests that fail on the network, for a bad
//! credential or for missing consent, each counted by its class, the refusals not asked again
//! in a tight loop, and one log line per change of state rather than one per retry.
//!
//! Time runs 20x faster than in service (`graph_support::SCALE`). Every wait is bounded; nothing
//! asserts on wall-clock durations.
//!
//! Run: `cargo test -p entrawatch-ingest --features graph --test graph_auth`.

#![cfg(feature = "graph")]

mod graph_support;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chrono::{Duration as TimeDelta, Utc};
use entrawatch_ingest::sources::graph::Stream;
use entrawatch_ingest::sources::graph::auth::{
    Credential, FederatedCredential, REFUSAL_HOLD, TenantAuth, TokenCache, TokenFailure,
};
use graph_support::data::Endpoint;
use graph_support::fake::{FakeGraph, Fault};
use graph_support::harness::Run;
use graph_support::scenario::*;
use graph_support::*;
use tokio::time::Instant;

/// A bound on each wait, not a timing.
const LIMIT: Duration = Duration::from_secs(120);

/// One test at a time: the fake's budgets count requests as they come.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Log lines the source wrote (every test of this file shares the process-wide subscriber; each
/// looks only at its own tenants).
mod logs {
    use std::collections::BTreeMap;
    use std::sync::Mutex;

    use tracing::field::{Field, Visit};
    use tracing::{Event, Level, Metadata, span};

    #[derive(Debug, Clone)]
    pub struct Line {
        pub level: Level,
        pub message: String,
        pub fields: BTreeMap<String, String>,
    }

    static LINES: Mutex<Vec<Line>> = Mutex::new(Vec::new());

    struct Capture;

    #[derive(Default)]
    struct Fields(BTreeMap<String, String>);

    impl Visit for Fields {
        fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
            self.0.insert(field.name().to_owned(), format!("{value:?}"));
        }
        fn record_str(&mut self, field: &Field, value: &str) {
            self.0.insert(field.name().to_owned(), value.to_owned());
        }
    }

    impl tracing::Subscriber for Capture {
        fn enabled(&self, _: &Metadata<'_>) -> bool {
            true
        }
        fn new_span(&self, _: &span::Attributes<'_>) -> span::Id {
            span::Id::from_u64(1)
        }
        fn record(&self, _: &span::Id, _: &span::Record<'_>) {}
        fn record_follows_from(&self, _: &span::Id, _: &span::Id) {}
        fn event(&self, event: &Event<'_>) {
            let mut f = Fields::default();
            event.record(&mut f);
            let message = f.0.remove("message").unwrap_or_default();
            LINES.lock().unwrap().push(Line {
                level: *event.metadata().level(),
                message,
                fields: f.0,
            });
        }
        fn enter(&self, _: &span::Id) {}
        fn exit(&self, _: &span::Id) {}
    }

    /// Starts capturing (once per process).
    pub fn capture() {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| tracing::subscriber::set_global_default(Capture).unwrap());
    }

    /// Lines at `level` whose message starts with `prefix` and whose `field` is `value`.
    pub fn count(level: Level, prefix: &str, field: &str, value: &str) -> usize {
        LINES
            .lock()
            .unwrap()
            .iter()
            .filter(|l| {
                l.level == level
                    && l.message.starts_with(prefix)
                    && l.fields.get(field).map(String::as_str) == Some(value)
            })
            .count()
    }
}

/// A JWT-shaped service-account token (the fake compares it whole, as a federated identity
/// credential matches issuer and subject).
fn sa_token(generation: u32) -> String {
    use entrawatch_ingest::sources::graph::auth::base64url;
    let header = base64url(br#"{"alg":"RS256","kid":"k8s"}"#);
    let claims = base64url(
        format!(
            r#"{{"aud":["api://AzureADTokenExchange"],"iss":"https://oidc.example/","sub":"system:serviceaccount:entrawatch:entrawatch","gen":{generation}}}"#
        )
        .as_bytes(),
    );
    format!("{header}.{claims}.c2lnbmF0dXJl{generation}")
}

/// Writes the token file as the kubelet does: a new file renamed over the old one.
fn rotate(file: &Path, token: &str) {
    let next = file.with_extension("next");
    std::fs::write(&next, format!("{token}\n")).unwrap();
    std::fs::rename(&next, file).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_federated_token_file_is_the_client_assertion_and_is_followed_as_it_rotates() {
    let _serial = SERIAL.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeGraph::start(options(false, vec![])).await;
    let tenants: Vec<String> = (1..=2).map(tenant).collect();
    for t in &tenants {
        seed(&fake, t, 6, 1);
    }
    let file = dir.path().join("azure-identity-token");
    let first = sa_token(1);
    rotate(&file, &first);
    fake.trust_federated(&[&first]);
    let mut cfg = config(&fake, &tenants, dir.path());
    cfg.client_secret = None;
    cfg.federated_token_file = Some(file.clone());
    cfg.streams = vec![Stream::DirectoryAudits];
    let mut run = Run::start(source(cfg), None);
    let before = fake.expected(&[Endpoint::DirectoryAudits]);
    assert!(run.until(LIMIT, |r| r.has_all(before.keys())).await);
    fake.with_counters(|c| {
        assert!(c.federated_seen.len() >= 2, "{:?}", c.federated_seen.len());
        assert!(c.federated_seen.iter().all(|a| *a == first));
        assert!(c.token_refused.is_empty(), "{:?}", c.token_refused);
    });

    // The kubelet rotates the token; the old one is no longer accepted. Graph revokes each
    // tenant's access token, so the next request needs a new one.
    let second = sa_token(2);
    rotate(&file, &second);
    fake.trust_federated(&[&second]);
    let now = Utc::now();
    let mut fresh = Vec::new();
    for t in &tenants {
        fake.fault(t, Some(Endpoint::DirectoryAudits), Fault::Revoke);
        fresh.push(fake.add(
            t,
            Endpoint::DirectoryAudits,
            now - TimeDelta::minutes(1),
            "",
        ));
    }
    assert!(run.until(LIMIT, |r| r.has_all(fresh.iter())).await);
    let run = run.stop().await;
    assert_eq!(fake.faults_left(), 0);
    fake.with_counters(|c| {
        let firsts = c.federated_seen.iter().filter(|a| **a == first).count();
        let seconds = c.federated_seen.iter().filter(|a| **a == second).count();
        assert!(seconds >= 2, "the rotated token was sent {seconds} times");
        assert_eq!(
            firsts + seconds,
            c.federated_seen.len(),
            "only the file's contents are sent"
        );
        // Every request after the rotation sent the new token: none was refused.
        assert!(c.token_refused.is_empty(), "{:?}", c.token_refused);
        assert!(c.assertions_ok == 0 && c.token_ok >= 4, "{}", c.token_ok);
    });
    assert_eq!(run.requests("invalid_client"), 0);
    assert!(run.repeats().is_empty(), "{:?}", run.repeats());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_failures_are_counted_by_class_and_refusals_are_held() {
    let _serial = SERIAL.lock().await;
    logs::capture();
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeGraph::start(options(true, vec![])).await;
    let tenants: Vec<String> = (1..=4).map(tenant).collect();
    for t in &tenants {
        seed(&fake, t, 5, 1);
    }
    let consent =
        "AADSTS65001: The user or administrator has not consented to use the application.";
    let bad_secret = "AADSTS7000215: Invalid client secret provided.";
    fake.refuse_tokens(&tenants[1], Some((400, "invalid_grant", consent)));
    fake.refuse_tokens(&tenants[2], Some((401, "invalid_client", bad_secret)));
    let busy = "AADSTS90033: A transient error has occurred. Please try again.";
    fake.refuse_tokens(&tenants[3], Some((503, "temporarily_unavailable", busy)));
    let mut cfg = config(&fake, &tenants, dir.path());
    // Every lane of a tenant shares its token and so its refusal.
    cfg.streams = vec![Stream::DirectoryAudits, Stream::SignIns];
    let all = fake.expected(&[Endpoint::DirectoryAudits, Endpoint::SignIns]);
    let of = |n: usize| {
        let t = tenants[n].clone();
        all.keys()
            .filter(move |k| k.0 == t)
            .cloned()
            .collect::<Vec<_>>()
    };
    let started = Instant::now();
    let mut run = Run::start(source(cfg), None);
    let ok_tenant = of(0);
    assert!(
        run.until(LIMIT, |r| r.has_all(ok_tenant.iter())
            && r.requests("no_consent") >= 1
            && r.requests("invalid_client") >= 1
            && r.requests("transient") >= 2)
            .await
    );
    // Let the refused tenants' lanes come round a few times (poll interval 0.1 s scaled).
    run.settle(Duration::from_secs(3)).await;
    let elapsed = started.elapsed();
    let asked =
        |why: &str| fake.with_counters(|c| c.token_refused.iter().filter(|w| *w == why).count());
    // A refusal is held for REFUSAL_HOLD (scaled): its four lanes ask Entra once per hold, not
    // once per lane and poll.
    let hold = REFUSAL_HOLD.mul_f64(SCALE);
    let bound = 1 + (elapsed.as_secs_f64() / hold.as_secs_f64()).ceil() as usize;
    for why in [consent, bad_secret] {
        let n = asked(why);
        assert!(
            (1..=bound).contains(&n),
            "{why}: asked {n} times in {elapsed:?}, bound {bound}"
        );
    }
    assert_eq!(run.requests("unauthorized"), 0);
    // One line per change of a tenant's token state, and per lane one warning for the reason,
    // however many times the lanes came round.
    use tracing::Level;
    for (n, class) in [(1, "no_consent"), (2, "invalid_client"), (3, "transient")] {
        let id = tenants[n].as_str();
        let token_lines = logs::count(Level::WARN, "graph token request failed", "tenant_id", id);
        assert_eq!(token_lines, 1, "tenant {n} ({class})");
        let label = format!("customer {n}");
        let warned = logs::count(Level::WARN, "graph poll failed", "tenant", &label);
        let again = logs::count(Level::DEBUG, "graph poll failed again", "tenant", &label);
        assert!((1..=4).contains(&warned), "tenant {n}: {warned} warnings");
        println!(
            "tenant {n} ({class}): 1 token line, {warned} lane warnings, {again} repeats at debug"
        );
    }
    // A network failure is retried with backoff: once the endpoint answers again, the tenant is read.
    assert!(asked(busy) >= 2, "{}", asked(busy));
    fake.refuse_tokens(&tenants[3], None);
    let network_tenant = of(3);
    assert!(run.until(LIMIT, |r| r.has_all(network_tenant.iter())).await);
    // Consent granted: read once the hold has passed.
    fake.refuse_tokens(&tenants[1], None);
    let consent_tenant = of(1);
    assert!(run.until(LIMIT, |r| r.has_all(consent_tenant.iter())).await);
    let recovered = |n: usize| {
        logs::count(
            tracing::Level::INFO,
            "graph token obtained again",
            "tenant_id",
            &tenants[n],
        )
    };
    assert_eq!((recovered(1), recovered(2), recovered(3)), (1, 0, 1));
    let run = run.stop().await;
    assert!(run.counts.keys().all(|k| k.0 != tenants[2]));
}

#[tokio::test]
async fn an_unreachable_token_endpoint_is_a_network_failure_and_is_not_held() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let cache = TokenCache::new(http, &url, &url);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("token");
    rotate(&file, &sa_token(1));
    let auth = TenantAuth {
        // A tenant of no other test (log lines are counted per tenant).
        tenant_id: tenant(9),
        client_id: CLIENT_ID.to_owned(),
        credential: Arc::new(Credential::Federated(
            FederatedCredential::load(&file, "s").unwrap(),
        )),
    };
    for attempt in 1..=2u64 {
        let e = cache.get(&auth).await.unwrap_err();
        assert_eq!(e.class, TokenFailure::Network, "{e}");
        assert!(!e.to_string().contains(&sa_token(1)), "{e}");
        // Not answered from memory: every call tried the endpoint.
        assert_eq!(
            cache.fetched.load(std::sync::atomic::Ordering::Relaxed),
            attempt
        );
    }
}
