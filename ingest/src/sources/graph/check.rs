//! The online check of a `graph` source (`entrawatch validate --online`): for every tenant, get a
//! token, then make one `$top=1` request per lane (and per directory read) and say what stands in
//! the way before go-live.
//!
//! In: a built [`GraphSource`] (config validated, credentials read). Out: one [`CheckRow`] per
//! tenant and stream with an [`Outcome`]: ok, no consent, bad credential, no licence, no
//! permission, throttled (still, after waiting once for the pause Graph asked), network,
//! unauthorized or another error, and Graph's or Entra's own words as the detail. Requests go through the same token cache, budgets and client as the
//! service; nothing is read past the first record and nothing is written.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;

use std::collections::BTreeSet;

use tokio::sync::{mpsc, watch};

use super::auth::{TenantAuth, TokenCache, TokenFailure};
use super::budget::{Budgets, Scale};
use super::client::{Fetched, GraphClient, TenantHandle};
use super::config::Discover;
use super::lanes::{BACKFILL_SKEW, InStep, Lane, directory_urls};
use super::poller::DirectoryPart;
use super::shared::Shared;
use super::{GraphSource, Limits, discover};
use crate::metrics::SourceMetrics;
use crate::reader::ReadOptions;

/// A 429 asking for a pause up to this long is waited out and the request made once more.
const MAX_THROTTLE_WAIT: Duration = Duration::from_secs(15);

/// What one check found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    /// The app has no admin consent (no service principal) in the tenant.
    NoConsent,
    /// Entra refused the credential (secret, certificate, federated token).
    BadCredential,
    /// 403 that a licence (Entra ID P1/P2) would lift.
    NoLicence,
    /// 403 for a missing application permission.
    NoPermission,
    /// 404: the tenant has no such data (role eligibility without Entra ID P2, for one); the
    /// service goes on without this stream.
    NotFound,
    /// 429: the tenant's budget is used by another app now; try again later.
    Throttled,
    /// The token endpoint or Graph could not be reached, or answered 5xx.
    Network,
    /// Entra or Graph refused for another reason (401 after a fresh token, unknown tenant).
    Unauthorized,
    /// Anything else (an unexpected status).
    Error,
}

impl Outcome {
    /// As printed in the table.
    pub fn label(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::NoConsent => "no consent",
            Outcome::BadCredential => "bad credential",
            Outcome::NoLicence => "no licence",
            Outcome::NoPermission => "no permission",
            Outcome::NotFound => "not found",
            Outcome::Throttled => "throttled",
            Outcome::Network => "network",
            Outcome::Unauthorized => "unauthorized",
            Outcome::Error => "error",
        }
    }

    fn of_token(class: TokenFailure) -> Outcome {
        match class {
            TokenFailure::Network => Outcome::Network,
            TokenFailure::Unauthorized => Outcome::Unauthorized,
            TokenFailure::InvalidClient => Outcome::BadCredential,
            TokenFailure::NoConsent => Outcome::NoConsent,
        }
    }
}

/// One line of the table.
#[derive(Debug, Clone)]
pub struct CheckRow {
    /// The tenant's configured name, else its id.
    pub tenant: String,
    pub tenant_id: String,
    /// A `stream` label as in the metrics: a lane name (`sign_ins_user`, `directory_audits`, ...) or
    /// `directory_roles` / `directory_roles_eligibility` for the two parts of the roles lane.
    pub stream: &'static str,
    pub outcome: Outcome,
    /// Why, in Graph's or Entra's words (empty when ok).
    pub detail: String,
}

impl GraphSource {
    /// Checks every tenant and stream of this source; each request waits at most `timeout`.
    /// Rows come tenant by tenant in config order.
    pub async fn check_online(&self, timeout: Duration) -> Vec<CheckRow> {
        let cfg = &self.cfg;
        let http = match reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .user_agent(concat!("entrawatch/", env!("CARGO_PKG_VERSION")))
            .build()
        {
            Ok(h) => h,
            Err(e) => {
                return self
                    .auths
                    .iter()
                    .zip(&cfg.tenants)
                    .map(|(a, t)| CheckRow {
                        tenant: t.label().to_owned(),
                        tenant_id: a.tenant_id.clone(),
                        stream: "-",
                        outcome: Outcome::Error,
                        detail: format!("cannot build the HTTP client: {e}"),
                    })
                    .collect();
            }
        };
        // The listed tenants, then (with `discover = "gdap"`) the customers the service would
        // poll besides them, found as it would find them.
        let mut tenants: Vec<(String, TenantAuth)> = cfg
            .tenants
            .iter()
            .zip(&self.auths)
            .map(|(t, a)| (t.label().to_owned(), a.clone()))
            .collect();
        let mut rows = Vec::new();
        if let (Some(Discover::Gdap), Some(partner)) = (&cfg.discover, &cfg.partner_tenant_id) {
            let (row, found) = self.discovered(&http, partner).await;
            rows.push(row);
            tenants.extend(found);
        }
        let tokens =
            TokenCache::new(http.clone(), &cfg.login_url, &cfg.graph_url).with_source(&cfg.name);
        let budgets = Budgets::new(&cfg.budget, Scale::default());
        let client = Arc::new(GraphClient::new(
            http,
            tokens,
            budgets,
            &cfg.graph_url,
            &cfg.name,
            SourceMetrics::unregistered(),
        ));
        let lanes = Lane::configured(cfg);
        let since = Utc::now() - chrono::Duration::hours(1);
        let mut checks = tokio::task::JoinSet::new();
        for (index, (label, auth)) in tenants.into_iter().enumerate() {
            let handle = TenantHandle {
                index,
                id: auth.tenant_id.clone(),
                label,
                auth,
                budget: client.budgets.tenant(),
            };
            let mut targets: Vec<(&'static str, Lane, String)> = Vec::new();
            for &lane in &lanes {
                if lane == Lane::DirectoryRoles {
                    let [assignments, eligibility] = directory_urls(&cfg.graph_url);
                    targets.push((
                        DirectoryPart::Assignments.name(),
                        lane,
                        format!("{assignments}&$top=1"),
                    ));
                    targets.push((
                        DirectoryPart::Eligibility.name(),
                        lane,
                        format!("{eligibility}?$top=1"),
                    ));
                } else {
                    let url =
                        lane.window_url(&cfg.graph_url, since, None, &cfg.sign_in_event_types, 1);
                    targets.push((lane.name(), lane, url));
                }
            }
            let client = client.clone();
            checks.spawn(async move { (index, check_tenant(&client, handle, targets).await) });
        }
        // Tenants are checked side by side; the budgets pace each tenant as in service.
        let mut by_tenant = Vec::new();
        while let Some(done) = checks.join_next().await {
            match done {
                Ok(rows) => by_tenant.push(rows),
                Err(e) => tracing::error!(error = %e, "a tenant's online check stopped"),
            }
        }
        by_tenant.sort_by_key(|(index, _)| *index);
        rows.extend(by_tenant.into_iter().flat_map(|(_, rows)| rows));
        rows
    }

    /// `discover = "gdap"`: one discovery as the service makes it, with the partner's
    /// credential. Returns the partner's row (stream `gdap_discovery`: how many relationships
    /// and customers, how many would be polled) and the customers the service would poll besides
    /// the listed tenants (include and exclude lists and the cap applied), each with its label and
    /// the source's credential.
    async fn discovered(
        &self,
        http: &reqwest::Client,
        partner: &str,
    ) -> (CheckRow, Vec<(String, TenantAuth)>) {
        let cfg = &self.cfg;
        let row = |outcome, detail| CheckRow {
            tenant: "partner (GDAP discovery)".to_owned(),
            tenant_id: partner.to_owned(),
            stream: "gdap_discovery",
            outcome,
            detail,
        };
        let auth = match super::source_auth(cfg, partner) {
            Ok(a) => a,
            Err(p) => return (row(Outcome::BadCredential, p.join("; ")), Vec::new()),
        };
        let tokens =
            TokenCache::new(http.clone(), &cfg.login_url, &cfg.graph_url).with_source(&cfg.name);
        if let Err(e) = tokens.get(&auth).await {
            let detail = format!("token: {}: {}", e.code, e.description);
            return (row(Outcome::of_token(e.class), detail), Vec::new());
        }
        // What the discovery needs of a running source, without one: nothing is sent, nothing
        // stops it but its own bounded retries.
        let (tx, _rx) = mpsc::channel(1);
        let (_running, shutdown) = watch::channel(false);
        let client = GraphClient::new(
            http.clone(),
            tokens,
            Budgets::new(&cfg.budget, Scale::default()),
            &cfg.graph_url,
            &cfg.name,
            SourceMetrics::unregistered(),
        );
        let budget = client.budgets.tenant();
        let shared = Shared {
            client,
            cfg: cfg.clone(),
            tx,
            metrics: SourceMetrics::unregistered(),
            source: cfg.name.as_str().into(),
            read: ReadOptions::default(),
            scale: Scale::default(),
            licence_wait_floor: Duration::ZERO,
            ready: watch::channel(false).0,
            shutdown,
            step: InStep::new(BACKFILL_SKEW),
            backfill_from: Utc::now(),
        };
        let handle = TenantHandle {
            index: 0,
            id: partner.to_owned(),
            label: "partner".to_owned(),
            auth: auth.clone(),
            budget,
        };
        let found = match discover::discover(&shared, &handle).await {
            Some(Ok(found)) => found,
            Some(Err(reason)) => {
                let outcome = if reason.contains("HTTP 403") {
                    Outcome::NoPermission
                } else {
                    Outcome::Error
                };
                return (row(outcome, reason), Vec::new());
            }
            None => return (row(Outcome::Error, "stopped".to_owned()), Vec::new()),
        };
        let listed: BTreeSet<String> = cfg
            .tenants
            .iter()
            .map(|t| t.id.to_ascii_lowercase())
            .collect();
        let (chosen, left_out) = Limits::of(cfg).select(&found.customers, &listed);
        let mut detail = format!(
            "{} relationship(s), {} customer(s) with an active one, {} polled besides the listed \
             tenants",
            found.relationships,
            found.customers.len(),
            chosen.len()
        );
        if !left_out.is_empty() {
            detail.push_str(&format!(
                ", {} left out by max_tenants ({})",
                left_out.len(),
                cfg.max_tenants
            ));
        }
        let tenants = chosen
            .into_iter()
            .map(|(id, label)| {
                let auth = TenantAuth {
                    tenant_id: id,
                    ..auth.clone()
                };
                (label, auth)
            })
            .collect();
        (row(Outcome::Ok, detail), tenants)
    }
}

/// One tenant: the token first (a refusal answers every stream), then each request in turn.
async fn check_tenant(
    client: &GraphClient,
    handle: TenantHandle,
    targets: Vec<(&'static str, Lane, String)>,
) -> Vec<CheckRow> {
    let row = |stream, outcome, detail| CheckRow {
        tenant: handle.label.clone(),
        tenant_id: handle.id.clone(),
        stream,
        outcome,
        detail,
    };
    if let Err(e) = client.tokens.get(&handle.auth).await {
        let outcome = Outcome::of_token(e.class);
        let detail = format!("token: {}: {}", e.code, e.description);
        return targets
            .iter()
            .map(|(stream, _, _)| row(*stream, outcome, detail.clone()))
            .collect();
    }
    let mut rows = Vec::new();
    for (stream, lane, url) in &targets {
        let mut fetched = client.get(&handle, *lane, url).await;
        if let Fetched::Throttled { pause } = fetched
            && pause <= MAX_THROTTLE_WAIT
        {
            // Once more after the pause Graph asked for (the budget waits it out): another app, or
            // entrawatch itself running, may be using the tenant's budget at this moment.
            let again = client.get(&handle, *lane, url);
            fetched = tokio::time::timeout(MAX_THROTTLE_WAIT * 2, again)
                .await
                .unwrap_or(Fetched::Throttled { pause });
        }
        let (outcome, detail) = match fetched {
            Fetched::Page { .. } => (Outcome::Ok, String::new()),
            Fetched::Throttled { pause } => (
                Outcome::Throttled,
                format!("HTTP 429 (paused {:.1} s)", pause.as_secs_f64()),
            ),
            Fetched::Shrink { status } => (Outcome::Network, format!("HTTP {status}")),
            Fetched::Unavailable(d) => (
                if d.licence {
                    Outcome::NoLicence
                } else {
                    Outcome::NoPermission
                },
                format!("HTTP 403: {}: {}", d.code, d.message),
            ),
            Fetched::NotFound { code, message } => {
                (Outcome::NotFound, format!("HTTP 404: {code}: {message}"))
            }
            Fetched::Unauthorized { reason, .. } => (Outcome::Unauthorized, reason),
            Fetched::Failed {
                retryable: true,
                reason,
            } => (Outcome::Network, reason),
            Fetched::Failed {
                retryable: false,
                reason,
            } => (Outcome::Error, reason),
        };
        rows.push(row(*stream, outcome, detail));
    }
    rows
}
