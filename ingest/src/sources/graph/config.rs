//! The `graph` source's configuration: one multi-tenant app registration, the customer tenants it
//! reads, which streams, and how often.
//!
//! In: the `[[sources]]` TOML table with `type = "graph"` (deserialised by the binary). Out:
//! [`GraphConfig`] and [`GraphConfig::validate`], which lists every problem with its config path.
//! Credentials are written as where to find them ([`SecretRef`], PEM file paths, a federated token
//! file), never as values; a tenant may override the app id and the secret or certificate of the
//! source.

use std::path::PathBuf;

use serde::Deserialize;

use crate::secret::SecretRef;
use crate::value::is_guid;

/// The streams a `graph` source can read, as written in `streams = [...]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stream {
    /// `/beta/auditLogs/signIns`, every event type selected by `sign_in_event_types`.
    SignIns,
    /// `/beta/auditLogs/directoryAudits` (beta carries the partner technician's home tenant).
    DirectoryAudits,
    /// `/v1.0/identityProtection/riskyUsers`.
    RiskyUsers,
    /// `/v1.0/identityProtection/riskDetections`.
    RiskDetections,
    /// Directory context: active role assignments and role eligibility schedules.
    DirectoryRoles,
}

impl Stream {
    pub const ALL: [Stream; 5] = [
        Stream::SignIns,
        Stream::DirectoryAudits,
        Stream::RiskyUsers,
        Stream::RiskDetections,
        Stream::DirectoryRoles,
    ];
}

/// Sign-in event types (`signInEventTypes`), as Graph spells them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
pub enum SignInType {
    #[serde(rename = "interactiveUser")]
    InteractiveUser,
    #[serde(rename = "nonInteractiveUser")]
    NonInteractiveUser,
    #[serde(rename = "servicePrincipal")]
    ServicePrincipal,
    #[serde(rename = "managedIdentity")]
    ManagedIdentity,
}

impl SignInType {
    pub const ALL: [SignInType; 4] = [
        SignInType::InteractiveUser,
        SignInType::NonInteractiveUser,
        SignInType::ServicePrincipal,
        SignInType::ManagedIdentity,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SignInType::InteractiveUser => "interactiveUser",
            SignInType::NonInteractiveUser => "nonInteractiveUser",
            SignInType::ServicePrincipal => "servicePrincipal",
            SignInType::ManagedIdentity => "managedIdentity",
        }
    }
}

/// How a source finds customer tenants beyond those listed (`discover = "gdap"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Discover {
    /// Every customer with an active GDAP relationship to the partner tenant
    /// (`/v1.0/tenantRelationships/delegatedAdminRelationships`, read with the partner's token).
    Gdap,
}

/// A certificate credential: the certificate registered on the app and its private key (PEM).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CertificateConfig {
    /// PEM certificate (the one uploaded to the app registration).
    pub certificate_file: PathBuf,
    /// PEM private key (PKCS#8 or PKCS#1 RSA); may be the same file as the certificate.
    pub private_key_file: PathBuf,
    /// The client assertion's signature: `RS256` (with `x5t` and `x5t#S256`) or `PS256`.
    #[serde(default = "default_assertion_algorithm")]
    pub algorithm: String,
}

fn default_assertion_algorithm() -> String {
    "RS256".to_owned()
}

/// One customer tenant.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantConfig {
    /// The customer's tenant id (GUID).
    pub id: String,
    /// A display name for logs.
    #[serde(default)]
    pub name: Option<String>,
    /// Overrides the source's `client_id` for this tenant.
    #[serde(default)]
    pub client_id: Option<String>,
    /// Overrides the source's credential for this tenant.
    #[serde(default)]
    pub client_secret: Option<SecretRef>,
    #[serde(default)]
    pub certificate: Option<CertificateConfig>,
}

impl TenantConfig {
    /// The name used in logs: the configured name, else the id.
    pub fn label(&self) -> &str {
        self.name.as_deref().unwrap_or(&self.id)
    }
}

/// Request budgets, per tenant unless said otherwise (Microsoft Graph throttling limits).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BudgetConfig {
    /// Reporting APIs (`auditLogs/*`): requests per 10 s per app per tenant (documented: 5).
    #[serde(default = "default_reports_per_10s")]
    pub reports_per_10s: u32,
    /// Reporting APIs across every tenant of the app per 10 s (an older documented limit: 122);
    /// 0 turns the app-wide limit off.
    #[serde(default = "default_app_reports_per_10s")]
    pub app_reports_per_10s: u32,
    /// Identity Protection (`riskyUsers`, `riskDetections`): requests per second per tenant, shared
    /// by every app of the tenant (documented: 1).
    #[serde(default = "default_identity_protection_per_second")]
    pub identity_protection_per_second: u32,
    /// Directory reads (role assignments and eligibility schedules) per 10 s per tenant.
    #[serde(default = "default_directory_per_10s")]
    pub directory_per_10s: u32,
    /// Requests in flight at once across every tenant.
    #[serde(default = "default_max_concurrent_requests")]
    pub max_concurrent_requests: usize,
}

impl Default for BudgetConfig {
    fn default() -> Self {
        BudgetConfig {
            reports_per_10s: default_reports_per_10s(),
            app_reports_per_10s: default_app_reports_per_10s(),
            identity_protection_per_second: default_identity_protection_per_second(),
            directory_per_10s: default_directory_per_10s(),
            max_concurrent_requests: default_max_concurrent_requests(),
        }
    }
}

fn default_reports_per_10s() -> u32 {
    5
}
fn default_app_reports_per_10s() -> u32 {
    122
}
fn default_identity_protection_per_second() -> u32 {
    1
}
fn default_directory_per_10s() -> u32 {
    20
}
fn default_max_concurrent_requests() -> usize {
    32
}

/// `[[sources]] type = "graph"`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GraphConfig {
    pub name: String,
    /// The login host (national clouds: `https://login.microsoftonline.us`, ...).
    #[serde(default = "default_login_url")]
    pub login_url: String,
    /// The Graph host (national clouds: `https://graph.microsoft.us`, ...).
    #[serde(default = "default_graph_url")]
    pub graph_url: String,
    /// The multi-tenant app's application (client) id; a tenant may override it.
    #[serde(default)]
    pub client_id: Option<String>,
    #[serde(default)]
    pub client_secret: Option<SecretRef>,
    #[serde(default)]
    pub certificate: Option<CertificateConfig>,
    /// Workload identity federation: a file holding a JWT another identity provider issued (in
    /// Kubernetes the projected service-account token, `${AZURE_FEDERATED_TOKEN_FILE}`), sent as
    /// the client assertion and read again as it rotates. Tenants without their own credential
    /// use it.
    #[serde(default)]
    pub federated_token_file: Option<PathBuf>,
    /// Listed customer tenants (may be empty when `discover` finds them).
    #[serde(default)]
    pub tenants: Vec<TenantConfig>,
    /// Find customer tenants too (see [`Discover`]); discovered tenants use the source's
    /// `client_id` and credential.
    #[serde(default)]
    pub discover: Option<Discover>,
    /// The partner's own tenant (GUID), whose token lists the GDAP relationships.
    #[serde(default)]
    pub partner_tenant_id: Option<String>,
    /// How often the customers are listed again.
    #[serde(default = "default_discover_interval_minutes")]
    pub discover_interval_minutes: u64,
    /// When not empty, only these discovered customers (tenant ids) are polled.
    #[serde(default)]
    pub discover_include: Vec<String>,
    /// Discovered customers never polled (tenant ids).
    #[serde(default)]
    pub discover_exclude: Vec<String>,
    /// Most tenants polled at once (listed and discovered); past it the discovered ones with the
    /// greatest tenant ids are left out, and a warning says which.
    #[serde(default = "default_max_tenants")]
    pub max_tenants: usize,
    #[serde(default = "default_streams")]
    pub streams: Vec<Stream>,
    /// Which sign-in event types to read (each group is its own query: Graph refuses user and
    /// service-principal types in one filter).
    #[serde(default = "default_sign_in_event_types")]
    pub sign_in_event_types: Vec<SignInType>,
    #[serde(default = "default_poll_interval_secs")]
    pub poll_interval_secs: u64,
    /// How far back each sign-in / audit poll reaches behind the watermark (records arrive late).
    #[serde(default = "default_overlap_minutes")]
    pub overlap_minutes: u64,
    /// The same for risky users and risk detections (risk is computed hours later).
    #[serde(default = "default_risk_overlap_hours")]
    pub risk_overlap_hours: u64,
    /// The watermark never passes `now - safety_lag`.
    #[serde(default = "default_safety_lag_minutes")]
    pub safety_lag_minutes: u64,
    /// First start: how many days to read back (Entra keeps 30 days on P1/P2).
    #[serde(default = "default_backfill_days")]
    pub backfill_days: u32,
    /// First start on a tenant without P1/P2 (seen by the licence 403 on sign-ins): Entra keeps 7.
    #[serde(default = "default_free_backfill_days")]
    pub free_backfill_days: u32,
    /// `$top` on time-windowed streams (Graph allows at most 1000).
    #[serde(default = "default_page_size")]
    pub page_size: u32,
    /// How often the directory context (roles) is read again.
    #[serde(default = "default_directory_refresh_minutes")]
    pub directory_refresh_minutes: u64,
    /// How often a stream that answered 403 (licence or permission) is tried again.
    #[serde(default = "default_unavailable_retry_minutes")]
    pub unavailable_retry_minutes: u64,
    /// Record ids remembered per tenant and stream to drop repeats inside the overlap (and carried
    /// in the checkpoint). Past it the oldest are forgotten: a repeat then reaches the runtime's
    /// own de-duplication instead.
    #[serde(default = "default_max_remembered_ids")]
    pub max_remembered_ids: usize,
    #[serde(default = "default_request_timeout_secs")]
    pub request_timeout_secs: u64,
    #[serde(default)]
    pub budget: BudgetConfig,
}

pub fn default_login_url() -> String {
    "https://login.microsoftonline.com".to_owned()
}
pub fn default_graph_url() -> String {
    "https://graph.microsoft.com".to_owned()
}
fn default_discover_interval_minutes() -> u64 {
    60
}
fn default_max_tenants() -> usize {
    500
}
fn default_streams() -> Vec<Stream> {
    Stream::ALL.to_vec()
}
fn default_sign_in_event_types() -> Vec<SignInType> {
    SignInType::ALL.to_vec()
}
fn default_poll_interval_secs() -> u64 {
    60
}
fn default_overlap_minutes() -> u64 {
    30
}
fn default_risk_overlap_hours() -> u64 {
    48
}
fn default_safety_lag_minutes() -> u64 {
    5
}
fn default_backfill_days() -> u32 {
    30
}
fn default_free_backfill_days() -> u32 {
    7
}
fn default_page_size() -> u32 {
    1000
}
fn default_directory_refresh_minutes() -> u64 {
    60
}
fn default_unavailable_retry_minutes() -> u64 {
    6 * 60
}
fn default_max_remembered_ids() -> usize {
    200_000
}
fn default_request_timeout_secs() -> u64 {
    120
}

/// Minimum overlaps docs/formats.md §5 asks for.
pub const MIN_OVERLAP_MINUTES: u64 = 30;
pub const MIN_RISK_OVERLAP_HOURS: u64 = 48;

impl GraphConfig {
    /// A config with every default and the given tenants (tests and examples).
    pub fn new(name: &str, client_id: &str, tenants: Vec<TenantConfig>) -> GraphConfig {
        GraphConfig {
            name: name.to_owned(),
            login_url: default_login_url(),
            graph_url: default_graph_url(),
            client_id: Some(client_id.to_owned()),
            client_secret: None,
            certificate: None,
            federated_token_file: None,
            tenants,
            discover: None,
            partner_tenant_id: None,
            discover_interval_minutes: default_discover_interval_minutes(),
            discover_include: Vec::new(),
            discover_exclude: Vec::new(),
            max_tenants: default_max_tenants(),
            streams: default_streams(),
            sign_in_event_types: default_sign_in_event_types(),
            poll_interval_secs: default_poll_interval_secs(),
            overlap_minutes: default_overlap_minutes(),
            risk_overlap_hours: default_risk_overlap_hours(),
            safety_lag_minutes: default_safety_lag_minutes(),
            backfill_days: default_backfill_days(),
            free_backfill_days: default_free_backfill_days(),
            page_size: default_page_size(),
            directory_refresh_minutes: default_directory_refresh_minutes(),
            unavailable_retry_minutes: default_unavailable_retry_minutes(),
            max_remembered_ids: default_max_remembered_ids(),
            request_timeout_secs: default_request_timeout_secs(),
            budget: BudgetConfig::default(),
        }
    }

    /// Every problem, each prefixed with its config path (`path` names this source).
    pub fn validate(&self, path: &str) -> Vec<String> {
        let mut p = Vec::new();
        if self.name.trim().is_empty() {
            p.push(format!("{path}.name: empty"));
        }
        check_base_url(&self.login_url, &format!("{path}.login_url"), &mut p);
        check_base_url(&self.graph_url, &format!("{path}.graph_url"), &mut p);
        if let Some(id) = &self.client_id
            && !is_guid(id)
        {
            p.push(format!(
                "{path}.client_id: {id:?} is not an application (client) id GUID"
            ));
        }
        check_credentials(
            self.client_secret.as_ref(),
            self.certificate.as_ref(),
            self.federated_token_file.as_deref(),
            path,
            &mut p,
        );
        if self.tenants.is_empty() && self.discover.is_none() {
            p.push(format!(
                "{path}.tenants: give at least one tenant (or discover = \"gdap\")"
            ));
        }
        self.validate_discovery(path, &mut p);
        let mut seen = std::collections::HashSet::new();
        for (i, t) in self.tenants.iter().enumerate() {
            let tp = format!("{path}.tenants[{i}]");
            if !is_guid(&t.id) {
                p.push(format!("{tp}.id: {:?} is not a tenant id GUID", t.id));
            } else if !seen.insert(t.id.to_ascii_lowercase()) {
                p.push(format!("{tp}.id: tenant {} is listed twice", t.id));
            }
            match (&t.client_id, &self.client_id) {
                (Some(id), _) if !is_guid(id) => p.push(format!(
                    "{tp}.client_id: {id:?} is not an application (client) id GUID"
                )),
                (None, None) => p.push(format!(
                    "{tp}.client_id: no client_id here nor at {path}.client_id"
                )),
                _ => {}
            }
            check_credentials(
                t.client_secret.as_ref(),
                t.certificate.as_ref(),
                None,
                &tp,
                &mut p,
            );
            let has_own = t.client_secret.is_some() || t.certificate.is_some();
            let has_source = self.client_secret.is_some()
                || self.certificate.is_some()
                || self.federated_token_file.is_some();
            if !has_own && !has_source {
                p.push(format!(
                    "{tp}: no credential: give client_secret or certificate here, or \
                     client_secret, certificate or federated_token_file at {path}"
                ));
            }
        }
        if self.streams.is_empty() {
            p.push(format!(
                "{path}.streams: empty (omit it to read every stream)"
            ));
        }
        if self.streams.contains(&Stream::SignIns) && self.sign_in_event_types.is_empty() {
            p.push(format!("{path}.sign_in_event_types: empty"));
        }
        if self.poll_interval_secs == 0 || self.poll_interval_secs > 3600 {
            p.push(format!(
                "{path}.poll_interval_secs: {} is outside 1..=3600",
                self.poll_interval_secs
            ));
        }
        if self.overlap_minutes < MIN_OVERLAP_MINUTES {
            p.push(format!(
                "{path}.overlap_minutes: {} is under {MIN_OVERLAP_MINUTES} (sign-ins and audits \
                 arrive up to that late)",
                self.overlap_minutes
            ));
        }
        if self.risk_overlap_hours < MIN_RISK_OVERLAP_HOURS {
            p.push(format!(
                "{path}.risk_overlap_hours: {} is under {MIN_RISK_OVERLAP_HOURS} (risk detections \
                 are updated up to that late)",
                self.risk_overlap_hours
            ));
        }
        if self.safety_lag_minutes > 60 {
            p.push(format!(
                "{path}.safety_lag_minutes: {} is over 60",
                self.safety_lag_minutes
            ));
        }
        if self.backfill_days > 30 {
            p.push(format!(
                "{path}.backfill_days: {} is over 30 (Entra keeps sign-ins and audits 30 days)",
                self.backfill_days
            ));
        }
        if self.free_backfill_days > self.backfill_days.max(7) {
            p.push(format!(
                "{path}.free_backfill_days: {} is over 7 and over backfill_days",
                self.free_backfill_days
            ));
        }
        if !(1..=1000).contains(&self.page_size) {
            p.push(format!(
                "{path}.page_size: {} is outside 1..=1000",
                self.page_size
            ));
        }
        if self.directory_refresh_minutes == 0 || self.directory_refresh_minutes > 60 {
            p.push(format!(
                "{path}.directory_refresh_minutes: {} is outside 1..=60",
                self.directory_refresh_minutes
            ));
        }
        if self.unavailable_retry_minutes == 0 {
            p.push(format!("{path}.unavailable_retry_minutes: 0"));
        }
        if self.max_remembered_ids < 1000 {
            p.push(format!(
                "{path}.max_remembered_ids: {} is under 1000",
                self.max_remembered_ids
            ));
        }
        if self.request_timeout_secs == 0 {
            p.push(format!("{path}.request_timeout_secs: 0"));
        }
        let b = &self.budget;
        if b.reports_per_10s == 0 {
            p.push(format!("{path}.budget.reports_per_10s: 0"));
        }
        if b.app_reports_per_10s != 0 && b.app_reports_per_10s < b.reports_per_10s {
            p.push(format!(
                "{path}.budget.app_reports_per_10s: {} is under reports_per_10s",
                b.app_reports_per_10s
            ));
        }
        if b.identity_protection_per_second == 0 {
            p.push(format!("{path}.budget.identity_protection_per_second: 0"));
        }
        if b.directory_per_10s == 0 {
            p.push(format!("{path}.budget.directory_per_10s: 0"));
        }
        if b.max_concurrent_requests == 0 {
            p.push(format!("{path}.budget.max_concurrent_requests: 0"));
        }
        p
    }
}

impl GraphConfig {
    /// The discovery options: a partner tenant and the source's own app id and credential when
    /// `discover` is set; the other options only with it.
    fn validate_discovery(&self, path: &str, p: &mut Vec<String>) {
        if self.discover.is_none() {
            let given = [
                ("partner_tenant_id", self.partner_tenant_id.is_some()),
                ("discover_include", !self.discover_include.is_empty()),
                ("discover_exclude", !self.discover_exclude.is_empty()),
            ];
            for (name, set) in given {
                if set {
                    p.push(format!("{path}.{name}: only used with discover = \"gdap\""));
                }
            }
        } else {
            match &self.partner_tenant_id {
                None => p.push(format!(
                    "{path}.partner_tenant_id: discover = \"gdap\" needs the partner's own \
                     tenant id"
                )),
                Some(id) if !is_guid(id) => p.push(format!(
                    "{path}.partner_tenant_id: {id:?} is not a tenant id GUID"
                )),
                Some(_) => {}
            }
            if self.client_id.is_none() {
                p.push(format!(
                    "{path}.client_id: discover = \"gdap\" needs the source's client_id \
                     (discovered tenants use it)"
                ));
            }
            if self.client_secret.is_none() && self.certificate.is_none() {
                p.push(format!(
                    "{path}: discover = \"gdap\" needs client_secret or certificate here \
                     (discovered tenants use it)"
                ));
            }
        }
        for (name, list) in [
            ("discover_include", &self.discover_include),
            ("discover_exclude", &self.discover_exclude),
        ] {
            for (i, id) in list.iter().enumerate() {
                if !is_guid(id) {
                    p.push(format!(
                        "{path}.{name}[{i}]: {id:?} is not a tenant id GUID"
                    ));
                }
            }
        }
        if self.discover_interval_minutes == 0 || self.discover_interval_minutes > 24 * 60 {
            p.push(format!(
                "{path}.discover_interval_minutes: {} is outside 1..=1440",
                self.discover_interval_minutes
            ));
        }
        if self.max_tenants == 0 {
            p.push(format!("{path}.max_tenants: 0"));
        } else if self.tenants.len() > self.max_tenants {
            p.push(format!(
                "{path}.max_tenants: {} tenants are listed, over the cap of {}",
                self.tenants.len(),
                self.max_tenants
            ));
        }
    }

    /// The same settings with no tenants and no discovery lists: what must not change while
    /// the source runs (a reload changes only the tenants).
    pub fn settings(&self) -> GraphConfig {
        GraphConfig {
            tenants: Vec::new(),
            discover_include: Vec::new(),
            discover_exclude: Vec::new(),
            max_tenants: 0,
            ..self.clone()
        }
    }
}

fn check_credentials(
    secret: Option<&SecretRef>,
    cert: Option<&CertificateConfig>,
    federated: Option<&std::path::Path>,
    path: &str,
    p: &mut Vec<String>,
) {
    let given = [
        secret.map(|_| "client_secret"),
        cert.map(|_| "certificate"),
        federated.map(|_| "federated_token_file"),
    ];
    let given: Vec<&str> = given.into_iter().flatten().collect();
    if given.len() > 1 {
        p.push(format!(
            "{path}: give one credential, not {} (a tenant may override the source's)",
            given.join(" and ")
        ));
    }
    if let Some(f) = federated
        && f.as_os_str().is_empty()
    {
        p.push(format!(
            "{path}.federated_token_file: empty (is AZURE_FEDERATED_TOKEN_FILE set?)"
        ));
    }
    if let Some(s) = secret {
        p.extend(s.check(&format!("{path}.client_secret")));
    }
    if let Some(c) = cert
        && !matches!(c.algorithm.as_str(), "RS256" | "PS256")
    {
        p.push(format!(
            "{path}.certificate.algorithm: {:?} is neither RS256 nor PS256",
            c.algorithm
        ));
    }
}

/// An `https` base URL (plain `http` only to this machine, for tests), no path, query or fragment.
fn check_base_url(url: &str, path: &str, p: &mut Vec<String>) {
    let Ok(parsed) = reqwest::Url::parse(url) else {
        p.push(format!("{path}: {url:?} is not a URL"));
        return;
    };
    let loopback = matches!(parsed.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
    match parsed.scheme() {
        "https" => {}
        "http" if loopback => {}
        _ => p.push(format!(
            "{path}: {url:?} must be https (plain http only to 127.0.0.1)"
        )),
    }
    if !parsed.path().trim_end_matches('/').is_empty() || parsed.query().is_some() {
        p.push(format!(
            "{path}: {url:?} must be the host alone (no path or query)"
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid() -> GraphConfig {
        let mut c = GraphConfig::new(
            "graph",
            "6731de76-14a6-49ae-97bc-6eba6914391e",
            vec![TenantConfig {
                id: "4d3bac44-0230-4732-9e70-cc00736f0a97".into(),
                name: Some("Contoso".into()),
                client_id: None,
                client_secret: None,
                certificate: None,
            }],
        );
        c.client_secret = Some(SecretRef {
            env: Some("GRAPH_SECRET".into()),
            file: None,
        });
        c
    }

    #[test]
    fn a_valid_config_has_no_problems() {
        assert_eq!(valid().validate("sources[0]"), Vec::<String>::new());
    }

    #[test]
    fn every_problem_is_listed_with_its_path() {
        let mut c = valid();
        c.login_url = "http://login.example.com".into();
        c.graph_url = "https://graph.microsoft.com/v1.0".into();
        c.client_id = Some("app".into());
        c.certificate = Some(CertificateConfig {
            certificate_file: "c.pem".into(),
            private_key_file: "k.pem".into(),
            algorithm: "HS256".into(),
        });
        c.tenants.push(c.tenants[0].clone());
        c.tenants.push(TenantConfig {
            id: "nope".into(),
            name: None,
            client_id: None,
            client_secret: Some(SecretRef {
                env: None,
                file: None,
            }),
            certificate: None,
        });
        c.overlap_minutes = 10;
        c.risk_overlap_hours = 1;
        c.page_size = 5000;
        c.poll_interval_secs = 0;
        c.backfill_days = 90;
        c.directory_refresh_minutes = 120;
        c.budget.reports_per_10s = 0;
        let p = c.validate("sources[2]");
        let expect = [
            "sources[2].login_url: ",
            "sources[2].graph_url: ",
            "sources[2].client_id: ",
            "sources[2]: give one credential, not client_secret and certificate",
            "sources[2].certificate.algorithm: ",
            "sources[2].tenants[1].id: tenant 4d3bac44-0230-4732-9e70-cc00736f0a97 is listed twice",
            "sources[2].tenants[2].id: ",
            "sources[2].tenants[2].client_secret: ",
            "sources[2].overlap_minutes: ",
            "sources[2].risk_overlap_hours: ",
            "sources[2].page_size: ",
            "sources[2].poll_interval_secs: ",
            "sources[2].backfill_days: ",
            "sources[2].directory_refresh_minutes: ",
            "sources[2].budget.reports_per_10s: ",
        ];
        for e in expect {
            assert!(
                p.iter().any(|x| x.starts_with(e)),
                "missing {e:?} in {p:#?}"
            );
        }
        assert_eq!(p.len(), expect.len(), "{p:#?}");
    }

    #[test]
    fn a_tenant_needs_an_app_id_and_a_credential_somewhere() {
        let mut c = valid();
        c.client_id = None;
        c.client_secret = None;
        let p = c.validate("s");
        assert!(
            p.iter().any(|x| x.starts_with("s.tenants[0].client_id: ")),
            "{p:?}"
        );
        assert!(
            p.iter()
                .any(|x| x.starts_with("s.tenants[0]: no credential")),
            "{p:?}"
        );
        c.tenants[0].client_id = Some("6731de76-14a6-49ae-97bc-6eba6914391e".into());
        c.tenants[0].certificate = Some(CertificateConfig {
            certificate_file: "c.pem".into(),
            private_key_file: "c.pem".into(),
            algorithm: default_assertion_algorithm(),
        });
        assert_eq!(c.validate("s"), Vec::<String>::new());
    }

    #[test]
    fn a_federated_token_file_is_a_credential_of_its_own() {
        let mut c = valid();
        c.client_secret = None;
        c.federated_token_file = Some("/var/run/secrets/azure/tokens/azure-identity-token".into());
        assert_eq!(c.validate("s"), Vec::<String>::new());
        c.client_secret = valid().client_secret;
        c.certificate = Some(CertificateConfig {
            certificate_file: "c.pem".into(),
            private_key_file: "c.pem".into(),
            algorithm: default_assertion_algorithm(),
        });
        c.tenants[0].client_secret = valid().client_secret;
        c.tenants[0].certificate = c.certificate.clone();
        let p = c.validate("s");
        assert_eq!(
            p,
            vec![
                "s: give one credential, not client_secret and certificate and \
                 federated_token_file (a tenant may override the source's)",
                "s.tenants[0]: give one credential, not client_secret and certificate (a tenant \
                 may override the source's)",
            ]
        );
        c.client_secret = None;
        c.certificate = None;
        c.tenants[0].client_secret = None;
        c.tenants[0].certificate = None;
        c.federated_token_file = Some("".into());
        let p = c.validate("s");
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(p[0].starts_with("s.federated_token_file: empty"), "{p:?}");
    }

    #[test]
    fn gdap_discovery_needs_a_partner_tenant_and_the_sources_own_credential() {
        let mut c = valid();
        c.tenants.clear();
        let p = c.validate("s");
        assert!(
            p.iter()
                .any(|x| x.starts_with("s.tenants: give at least one")),
            "{p:?}"
        );
        c.discover = Some(Discover::Gdap);
        c.partner_tenant_id = Some("4d3bac44-0230-4732-9e70-cc00736f0a97".into());
        assert_eq!(
            c.validate("s"),
            Vec::<String>::new(),
            "no tenants listed is fine"
        );
        c.partner_tenant_id = Some("partner".into());
        c.client_id = None;
        c.client_secret = None;
        c.discover_include = vec!["x".into()];
        c.discover_interval_minutes = 0;
        c.max_tenants = 0;
        let p = c.validate("s");
        let expect = [
            "s.partner_tenant_id: \"partner\" is not",
            "s.client_id: discover",
            "s: discover = \"gdap\" needs client_secret",
            "s.discover_include[0]: ",
            "s.discover_interval_minutes: ",
            "s.max_tenants: 0",
        ];
        for e in expect {
            assert!(
                p.iter().any(|x| x.starts_with(e)),
                "missing {e:?} in {p:#?}"
            );
        }
        assert_eq!(p.len(), expect.len(), "{p:#?}");
    }

    #[test]
    fn discovery_options_without_discovery_and_too_many_listed_tenants_are_refused() {
        let mut c = valid();
        c.partner_tenant_id = Some("4d3bac44-0230-4732-9e70-cc00736f0a97".into());
        c.discover_exclude = vec!["4d3bac44-0230-4732-9e70-cc00736f0a97".into()];
        c.max_tenants = 1;
        c.tenants.push(TenantConfig {
            id: "0b0c1a3e-53f6-4d3c-9b5b-3f6a5c0b7e21".into(),
            ..c.tenants[0].clone()
        });
        let p = c.validate("s");
        let expect = [
            "s.partner_tenant_id: only used with",
            "s.discover_exclude: only used with",
            "s.max_tenants: 2 tenants are listed",
        ];
        for e in expect {
            assert!(
                p.iter().any(|x| x.starts_with(e)),
                "missing {e:?} in {p:#?}"
            );
        }
        assert_eq!(p.len(), expect.len(), "{p:#?}");
    }

    #[test]
    fn settings_leave_out_what_a_reload_may_change() {
        let mut a = valid();
        let mut b = valid();
        b.tenants.clear();
        b.discover_exclude = vec!["4d3bac44-0230-4732-9e70-cc00736f0a97".into()];
        b.max_tenants = 7;
        assert_eq!(a.settings(), b.settings());
        a.poll_interval_secs = 30;
        assert_ne!(a.settings(), b.settings());
    }

    #[test]
    fn plain_http_is_accepted_only_to_this_machine() {
        let mut c = valid();
        c.login_url = "http://127.0.0.1:8080".into();
        c.graph_url = "http://127.0.0.1:8080/".into();
        assert_eq!(c.validate("s"), Vec::<String>::new());
    }

    #[test]
    fn the_documented_example_is_valid() {
        let doc = include_str!("../../../../docs/graph.md");
        let start = doc
            .find("```toml\n[[sources]]\ntype = \"graph\"")
            .expect("example")
            + 8;
        let end = start + doc[start..].find("```").expect("end of example");
        let file: toml::Table = toml::from_str(&doc[start..end]).unwrap();
        let source = file["sources"].as_array().unwrap()[0].clone();
        let mut table = source.as_table().unwrap().clone();
        assert_eq!(table.remove("type").unwrap().as_str(), Some("graph"));
        let cfg: GraphConfig = toml::Value::Table(table).try_into().unwrap();
        assert_eq!(cfg.validate("sources[0]"), Vec::<String>::new());
        assert_eq!(cfg.tenants.len(), 2);
        assert!(cfg.tenants[1].client_secret.is_some() && cfg.certificate.is_some());
        assert_eq!(cfg.poll_interval_secs, 60);
        assert_eq!(cfg.budget, BudgetConfig::default());
        assert_eq!(cfg.streams, Stream::ALL.to_vec());
    }

    #[test]
    fn the_documented_discovery_example_is_valid() {
        let doc = include_str!("../../../../docs/graph.md");
        let section = &doc[doc.find("## 5a.").expect("section 5a")..];
        let start = section.find("```toml\n").expect("example") + 8;
        let end = start + section[start..].find("```").expect("end of example");
        let file: toml::Table = toml::from_str(&section[start..end]).unwrap();
        let mut table = file["sources"].as_array().unwrap()[0]
            .as_table()
            .unwrap()
            .clone();
        table.remove("type");
        let cfg: GraphConfig = toml::Value::Table(table).try_into().unwrap();
        assert_eq!(cfg.validate("sources[0]"), Vec::<String>::new());
        assert_eq!(cfg.discover, Some(Discover::Gdap));
        assert!(cfg.tenants.is_empty());
        assert_eq!(cfg.discover_exclude.len(), 1);
    }

    #[test]
    fn unknown_fields_are_refused() {
        let err = serde_json::from_value::<GraphConfig>(serde_json::json!({
            "name": "g", "tenants": [], "client_secret_value": "x"
        }))
        .unwrap_err();
        assert!(err.to_string().contains("client_secret_value"), "{err}");
        let err = serde_json::from_value::<GraphConfig>(serde_json::json!({
            "name": "g", "tenants": [], "streams": ["sign_ins", "provisioning"]
        }))
        .unwrap_err();
        assert!(err.to_string().contains("provisioning"), "{err}");
    }
}
