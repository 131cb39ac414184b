//! A fake Microsoft Graph and Entra token endpoint on 127.0.0.1, following the documented
//! behaviour: client-credential tokens (secret or certificate assertion, verified) that expire,
//! `$filter` on each collection's time field, `$top` paging newest first with an opaque
//! `$skiptoken` in `@odata.nextLink`, throttling per tenant (reports 5 / 10 s with `Retry-After`,
//! Identity Protection 1 / s without), 503 for windows wider than a set span, 403 licence errors,
//! and injected 429 / 503 / 401 faults. It logs every request for the tests' budget checks.
//!
//! GDAP: a partner tenant ([`FakeGraph::set_partner`]) lists its delegated admin relationships and
//! customers (`/v1.0/tenantRelationships/delegatedAdminRelationships` and
//! `.../delegatedAdminCustomers`, two per page with `@odata.nextLink`, shaped as on Microsoft
//! Learn); only the partner's token may read them (others get 403). Tests add relationships and
//! change their status while a source runs.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response};
use serde_json::{Value, json};
use tokio::time::Instant;

use super::data::{Class, Endpoint, key, record};
use super::odata::{TrustedCert, encode, pairs, parse_filter};

pub type Key = (String, String, String);

/// How the fake behaves.
#[derive(Debug, Clone)]
pub struct Options {
    pub client_id: String,
    pub secret: Option<String>,
    /// Certificates registered on the app (client assertions are checked against them).
    pub certs: Vec<TrustedCert>,
    /// Graph's 10 s reporting window and 1 s Identity Protection window, scaled like the source.
    pub reports_window: Duration,
    pub ip_window: Duration,
    pub reports_limit: usize,
    pub ip_limit: usize,
    /// `expires_in` advertised, and how long a token really works (shorter forces 401s).
    pub expires_in: u64,
    pub token_lifetime: Duration,
    /// A window wider than this gets a 503 (Graph times out on wide time ranges).
    pub max_span: Option<chrono::Duration>,
}

/// One injected answer.
#[derive(Debug, Clone)]
pub enum Fault {
    TooMany(Option<RetryAfter>),
    Unavailable,
    /// 401 as if the token had expired (the token is revoked).
    Revoke,
}

#[derive(Debug, Clone, Copy)]
pub enum RetryAfter {
    Secs(u64),
    Date(u64),
}

/// One request the fake answered.
#[derive(Debug, Clone)]
pub struct Logged {
    pub tenant: String,
    pub endpoint: Endpoint,
    pub at: Instant,
    pub status: u16,
    pub filter: Option<String>,
    pub paged: bool,
}

#[derive(Debug, Clone)]
struct Rec {
    key: Key,
    time: DateTime<Utc>,
    event_type: String,
    body: Value,
    inserted: Instant,
}

#[derive(Debug, Default)]
pub(super) struct TenantData {
    records: BTreeMap<Endpoint, Vec<Rec>>,
    /// Endpoints refused for this tenant: status (403, 404), error code and message.
    forbidden: HashMap<Endpoint, (u16, String, String)>,
    faults: VecDeque<(Option<Endpoint>, Fault)>,
    /// Every token request of the tenant is answered with this (status, error, description).
    pub(super) token_refusal: Option<(u16, String, String)>,
}

#[derive(Debug)]
struct Cursor {
    tenant: String,
    endpoint: Endpoint,
    rest: Vec<Value>,
    top: usize,
    query: String,
    path: String,
}

#[derive(Debug, Default)]
pub struct Counters {
    pub token_ok: usize,
    pub token_refused: Vec<String>,
    pub assertions_ok: usize,
    /// Federated client assertions received, in order (accepted or not).
    pub federated_seen: Vec<String>,
    pub budget_429: usize,
    pub injected: usize,
    pub shrink_503: usize,
    pub expired_401: usize,
    pub bad_request: Vec<String>,
    /// GDAP collection requests answered 200.
    pub gdap_pages: usize,
}

pub(super) struct State {
    pub(super) opts: Options,
    pub(super) base: String,
    start: Instant,
    pub(super) tenants: HashMap<String, TenantData>,
    pub(super) tokens: HashMap<String, (String, Instant)>,
    /// Federated assertions the app's federated identity credential accepts now.
    pub(super) federated: Vec<String>,
    cursors: HashMap<String, Cursor>,
    log: Vec<Logged>,
    pub(super) counters: Counters,
    next_id: u64,
    /// The partner tenant and its GDAP relationships (Graph's JSON shape).
    gdap_partner: Option<String>,
    gdap: Vec<Value>,
    gdap_cursors: HashMap<String, (String, Vec<Value>)>,
}

/// The running fake.
#[derive(Clone)]
pub struct FakeGraph {
    pub base: String,
    state: Arc<Mutex<State>>,
}

pub(super) fn hex_token() -> String {
    let mut b = [0u8; 16];
    openssl::rand::rand_bytes(&mut b).unwrap();
    b.iter().map(|x| format!("{x:02x}")).collect()
}

pub(super) fn reply(status: u16, body: Value, headers: &[(&str, String)]) -> Response<Full<Bytes>> {
    let mut r = Response::builder()
        .status(status)
        .header("content-type", "application/json");
    for (k, v) in headers {
        r = r.header(*k, v);
    }
    r.body(Full::new(Bytes::from(body.to_string()))).unwrap()
}

fn graph_error(status: u16, code: &str, message: &str) -> Response<Full<Bytes>> {
    reply(
        status,
        json!({"error": {"code": code, "message": message}}),
        &[],
    )
}

impl FakeGraph {
    /// Starts the fake on its own thread and runtime, so a busy source under test cannot delay
    /// the fake's clock (the budget checks count requests as the fake receives them).
    pub async fn start(opts: Options) -> FakeGraph {
        let (addr_tx, addr_rx) = tokio::sync::oneshot::channel::<SocketAddr>();
        let state = Arc::new(Mutex::new(State {
            opts,
            base: String::new(),
            start: Instant::now(),
            tenants: HashMap::new(),
            tokens: HashMap::new(),
            federated: Vec::new(),
            cursors: HashMap::new(),
            log: Vec::new(),
            counters: Counters::default(),
            next_id: 0,
            gdap_partner: None,
            gdap: Vec::new(),
            gdap_cursors: HashMap::new(),
        }));
        let st = state.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                let _ = addr_tx.send(listener.local_addr().unwrap());
                loop {
                    let Ok((stream, _)) = listener.accept().await else {
                        return;
                    };
                    let st = st.clone();
                    tokio::spawn(async move {
                        let svc = hyper::service::service_fn(move |req| handle(st.clone(), req));
                        let io = hyper_util::rt::TokioIo::new(stream);
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(io, svc)
                            .await;
                    });
                }
            });
        });
        let addr = addr_rx.await.expect("the fake is listening");
        let base = format!("http://{addr}");
        state.lock().unwrap().base = base.clone();
        FakeGraph { base, state }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap()
    }

    pub fn add_tenant(&self, tenant: &str) {
        self.lock().tenants.entry(tenant.to_owned()).or_default();
    }

    /// The tenant whose token may list GDAP relationships and customers.
    pub fn set_partner(&self, tenant: &str) {
        let mut s = self.lock();
        s.tenants.entry(tenant.to_owned()).or_default();
        s.gdap_partner = Some(tenant.to_owned());
    }

    /// Adds a GDAP relationship with `customer` (created, activated and lasting as on Microsoft
    /// Learn's example); returns its id. The customer's tenant exists from now on.
    pub fn relate(
        &self,
        customer: &str,
        name: &str,
        status: &str,
        roles: &[&str],
        auto_extend: &str,
    ) -> String {
        let mut s = self.lock();
        s.tenants.entry(customer.to_owned()).or_default();
        s.next_id += 1;
        let id = format!("{:08x}-1111-4111-8111-{:012x}", s.next_id, s.next_id);
        let now = Utc::now();
        let roles: Vec<Value> = roles
            .iter()
            .map(|r| json!({ "roleDefinitionId": r }))
            .collect();
        let display = format!("{name} relationship {}", s.next_id);
        s.gdap.push(json!({
            "@odata.type": "#microsoft.graph.delegatedAdminRelationship",
            "id": id,
            "displayName": display,
            "duration": "P730D",
            "customer": { "tenantId": customer, "displayName": name },
            "accessDetails": { "unifiedRoles": roles },
            "status": status,
            "autoExtendDuration": auto_extend,
            "createdDateTime": (now - chrono::Duration::days(1)).to_rfc3339(),
            "activatedDateTime": now.to_rfc3339(),
            "lastModifiedDateTime": now.to_rfc3339(),
            "endDateTime": (now + chrono::Duration::days(730)).to_rfc3339(),
        }));
        id
    }

    /// Changes a relationship's status (`expired`, `terminated`, `active`, ...).
    pub fn set_relationship_status(&self, id: &str, status: &str) {
        let mut s = self.lock();
        for r in &mut s.gdap {
            if r["id"] == id {
                r["status"] = json!(status);
                r["lastModifiedDateTime"] = json!(Utc::now().to_rfc3339());
            }
        }
    }

    /// Tenants that asked for at least one page of a log or directory collection.
    pub fn tenants_polled(&self) -> std::collections::BTreeSet<String> {
        self.lock().log.iter().map(|l| l.tenant.clone()).collect()
    }

    /// Requests of `tenant` after the `from`-th request logged, and how many are logged now.
    pub fn requests_since(&self, tenant: &str, from: usize) -> (usize, usize) {
        let s = self.lock();
        let n = s
            .log
            .iter()
            .skip(from)
            .filter(|l| l.tenant == tenant)
            .count();
        (n, s.log.len())
    }

    /// Adds a record (visible from now on) and returns its key.
    pub fn add(
        &self,
        tenant: &str,
        endpoint: Endpoint,
        time: DateTime<Utc>,
        event_type: &str,
    ) -> Key {
        let mut s = self.lock();
        s.next_id += 1;
        let id = format!("{:08x}-0000-4000-8000-{:012x}", s.next_id, s.next_id);
        let body = record(endpoint, tenant, &id, time, event_type);
        let k = key(endpoint, tenant, &id, time);
        let rec = Rec {
            key: k.clone(),
            time,
            event_type: event_type.to_owned(),
            body,
            inserted: Instant::now(),
        };
        let t = s.tenants.entry(tenant.to_owned()).or_default();
        t.records.entry(endpoint).or_default().push(rec);
        k
    }

    /// Answers 403 with this error on `endpoint` for `tenant` (a licence or a permission).
    pub fn forbid(&self, tenant: &str, endpoint: Endpoint, code: &str, message: &str) {
        self.refuse(tenant, endpoint, 403, code, message);
    }

    /// Answers `status` (403, 404) with this Graph error on `endpoint` for `tenant`.
    pub fn refuse(&self, tenant: &str, endpoint: Endpoint, status: u16, code: &str, message: &str) {
        let mut s = self.lock();
        let t = s.tenants.entry(tenant.to_owned()).or_default();
        t.forbidden
            .insert(endpoint, (status, code.to_owned(), message.to_owned()));
    }

    /// Lifts a [`FakeGraph::refuse`] (the licence bought back, the permission granted again).
    pub fn allow(&self, tenant: &str, endpoint: Endpoint) {
        if let Some(t) = self.lock().tenants.get_mut(tenant) {
            t.forbidden.remove(&endpoint);
        }
    }

    pub fn fault(&self, tenant: &str, endpoint: Option<Endpoint>, fault: Fault) {
        let mut s = self.lock();
        s.tenants
            .entry(tenant.to_owned())
            .or_default()
            .faults
            .push_back((endpoint, fault));
    }

    /// The federated assertions accepted from now on (the previous ones are not: as an expired
    /// service-account token).
    pub fn trust_federated(&self, assertions: &[&str]) {
        self.lock().federated = assertions.iter().map(|a| (*a).to_owned()).collect();
    }

    /// Answers every token request for `tenant` with an Entra error (`None` lifts it).
    pub fn refuse_tokens(&self, tenant: &str, refusal: Option<(u16, &str, &str)>) {
        let mut s = self.lock();
        s.tenants
            .entry(tenant.to_owned())
            .or_default()
            .token_refusal = refusal.map(|(status, e, d)| (status, e.to_owned(), d.to_owned()));
    }

    pub fn faults_left(&self) -> usize {
        self.lock().tenants.values().map(|t| t.faults.len()).sum()
    }

    /// Keys of every record the source can read (not on forbidden endpoints), with insert time.
    pub fn expected(&self, endpoints: &[Endpoint]) -> HashMap<Key, Instant> {
        let s = self.lock();
        let mut out = HashMap::new();
        for t in s.tenants.values() {
            for (e, recs) in &t.records {
                if !endpoints.contains(e) || t.forbidden.contains_key(e) {
                    continue;
                }
                for r in recs {
                    out.insert(r.key.clone(), r.inserted);
                }
            }
        }
        out
    }

    pub fn log(&self) -> Vec<Logged> {
        self.lock().log.clone()
    }

    pub fn with_counters<T>(&self, f: impl FnOnce(&Counters) -> T) -> T {
        f(&self.lock().counters)
    }

    /// Most requests one tenant made in one class within any fixed window (the window the fake
    /// throttles on, counted from the fake's start), and the same over sliding windows.
    pub fn peak_per_window(&self, class: Class) -> (usize, usize) {
        let s = self.lock();
        let window = match class {
            Class::IdentityProtection => s.opts.ip_window,
            _ => s.opts.reports_window,
        };
        let mut by_tenant: HashMap<&str, Vec<Instant>> = HashMap::new();
        for l in &s.log {
            if l.endpoint.class() == class {
                by_tenant.entry(&l.tenant).or_default().push(l.at);
            }
        }
        let (mut fixed, mut sliding) = (0, 0);
        for times in by_tenant.values() {
            let mut buckets: HashMap<u128, usize> = HashMap::new();
            for t in times {
                let b = t.duration_since(s.start).as_nanos() / window.as_nanos();
                *buckets.entry(b).or_default() += 1;
            }
            fixed = fixed.max(buckets.values().copied().max().unwrap_or(0));
            for (i, t) in times.iter().enumerate() {
                let n = times[i..]
                    .iter()
                    .take_while(|u| u.duration_since(*t) < window)
                    .count();
                sliding = sliding.max(n);
            }
        }
        (fixed, sliding)
    }
}

async fn handle(
    state: Arc<Mutex<State>>,
    req: Request<hyper::body::Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = req.uri().path().to_owned();
    let query = req.uri().query().unwrap_or("").to_owned();
    let auth = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let is_post = req.method() == hyper::Method::POST;
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let mut s = state.lock().unwrap();
    if is_post && path.ends_with("/oauth2/v2.0/token") {
        return Ok(s.token(&path, &body));
    }
    Ok(s.graph(&path, &query, auth.as_deref()))
}

impl State {
    fn graph(&mut self, path: &str, query: &str, auth: Option<&str>) -> Response<Full<Bytes>> {
        if path
            .to_ascii_lowercase()
            .starts_with("/v1.0/tenantrelationships/")
        {
            return self.gdap(path, query, auth);
        }
        let Some(endpoint) = Endpoint::from_path(path) else {
            return graph_error(404, "Request_ResourceNotFound", "no such collection");
        };
        let token = auth.and_then(|a| a.strip_prefix("Bearer ")).unwrap_or("");
        let tenant = match self.tokens.get(token) {
            Some((t, exp)) if *exp > Instant::now() => t.clone(),
            _ => {
                self.counters.expired_401 += 1;
                return graph_error(
                    401,
                    "InvalidAuthenticationToken",
                    "Access token has expired or is not yet valid.",
                );
            }
        };
        let params: HashMap<String, String> = pairs(query, false).into_iter().collect();
        let filter = params.get("$filter").cloned();
        let paged = params.contains_key("$skiptoken");
        let status = self.answer_status(&tenant, endpoint, token);
        self.log.push(Logged {
            tenant: tenant.clone(),
            endpoint,
            at: Instant::now(),
            status: status.as_ref().map_or(200, |r| r.status().as_u16()),
            filter: filter.clone(),
            paged,
        });
        if let Some(r) = status {
            return r;
        }
        if let Some(tok) = params.get("$skiptoken") {
            return self.next_page(tok, &tenant);
        }
        let f = match filter
            .as_deref()
            .map(|f| parse_filter(f, endpoint))
            .transpose()
        {
            Ok(f) => f.unwrap_or_default(),
            Err(e) => {
                self.counters.bad_request.push(e.clone());
                return graph_error(400, "BadRequest", &format!("Invalid filter clause: {e}"));
            }
        };
        if let (Some(max), Some(ge)) = (self.opts.max_span, f.ge)
            && f.le.unwrap_or_else(Utc::now) - ge > max
        {
            self.counters.shrink_503 += 1;
            return graph_error(
                503,
                "UnknownError",
                "The service is unavailable (window too wide)",
            );
        }
        let top: usize = params
            .get("$top")
            .and_then(|t| t.parse().ok())
            .unwrap_or(1000);
        if top == 0 || top > 1000 {
            return graph_error(400, "BadRequest", "$top must be 1..=1000");
        }
        let types = f
            .event_types
            .clone()
            .unwrap_or_else(|| vec!["interactiveUser".into()]);
        let mut recs: Vec<&Rec> = self.tenants[&tenant]
            .records
            .get(&endpoint)
            .map(|v| v.iter().collect())
            .unwrap_or_default();
        recs.retain(|r| {
            f.ge.is_none_or(|g| r.time >= g)
                && f.le.is_none_or(|l| r.time <= l)
                && (endpoint != Endpoint::SignIns || types.contains(&r.event_type))
        });
        // Newest first.
        recs.sort_by(|a, b| b.time.cmp(&a.time).then_with(|| b.key.2.cmp(&a.key.2)));
        let all: Vec<Value> = recs.iter().map(|r| r.body.clone()).collect();
        let query = match &filter {
            Some(f) => format!("$filter={}", encode(f)),
            None => String::new(),
        };
        let cursor = Cursor {
            tenant,
            endpoint,
            rest: all,
            top,
            query,
            path: path.to_owned(),
        };
        self.page(cursor)
    }

    /// A fault, the throttle, or a 403, when one applies.
    fn answer_status(
        &mut self,
        tenant: &str,
        endpoint: Endpoint,
        token: &str,
    ) -> Option<Response<Full<Bytes>>> {
        let now = Instant::now();
        let t = self.tenants.get_mut(tenant)?;
        if let Some(i) = t
            .faults
            .iter()
            .position(|(e, _)| e.is_none_or(|e| e == endpoint))
        {
            let (_, fault) = t.faults.remove(i).unwrap();
            self.counters.injected += 1;
            return Some(match fault {
                Fault::TooMany(after) => {
                    let headers: Vec<(&str, String)> = match after {
                        Some(RetryAfter::Secs(s)) => vec![("retry-after", s.to_string())],
                        Some(RetryAfter::Date(s)) => vec![(
                            "retry-after",
                            httpdate::fmt_http_date(
                                std::time::SystemTime::now() + Duration::from_secs(s),
                            ),
                        )],
                        None => vec![],
                    };
                    reply(
                        429,
                        json!({"error": {"code": "TooManyRequests", "message": "Please retry again later."}}),
                        &headers,
                    )
                }
                Fault::Unavailable => {
                    graph_error(503, "UnknownError", "The service is unavailable")
                }
                Fault::Revoke => {
                    self.tokens.remove(token);
                    graph_error(
                        401,
                        "InvalidAuthenticationToken",
                        "Access token has expired or is not yet valid.",
                    )
                }
            });
        }
        let class = endpoint.class();
        let (window, limit) = match class {
            Class::IdentityProtection => (self.opts.ip_window, self.opts.ip_limit),
            Class::Reports => (self.opts.reports_window, self.opts.reports_limit),
            Class::Directory => return self.forbidden(tenant, endpoint),
        };
        let recent = self
            .log
            .iter()
            .rev()
            .take_while(|l| now.duration_since(l.at) < window)
            .filter(|l| l.tenant == tenant && l.endpoint.class() == class)
            .count();
        if recent + 1 > limit {
            self.counters.budget_429 += 1;
            let headers: Vec<(&str, String)> = match class {
                // Identity Protection documents no Retry-After.
                Class::IdentityProtection => vec![],
                _ => vec![("retry-after", "1".to_owned())],
            };
            return Some(reply(
                429,
                json!({"error": {"code": "TooManyRequests", "message": "throttled"}}),
                &headers,
            ));
        }
        self.forbidden(tenant, endpoint)
    }

    fn forbidden(&self, tenant: &str, endpoint: Endpoint) -> Option<Response<Full<Bytes>>> {
        let (status, code, message) = self.tenants.get(tenant)?.forbidden.get(&endpoint)?;
        Some(graph_error(*status, code, message))
    }

    fn page(&mut self, mut c: Cursor) -> Response<Full<Bytes>> {
        let take = c.top.min(c.rest.len());
        let value: Vec<Value> = c.rest.drain(..take).collect();
        let mut body = serde_json::Map::new();
        body.insert(
            "@odata.context".into(),
            json!(format!("{}/{}", self.base, c.endpoint.context())),
        );
        if !c.rest.is_empty() {
            let tok = hex_token();
            let sep = if c.query.is_empty() { "" } else { "&" };
            let link = format!(
                "{}{}?{}{sep}$top={}&$skiptoken={tok}",
                self.base, c.path, c.query, c.top
            );
            body.insert("@odata.nextLink".into(), json!(link));
            self.cursors.insert(tok, c);
        }
        body.insert("value".into(), Value::Array(value));
        reply(200, Value::Object(body), &[])
    }

    /// The GDAP collections, for the partner's token only.
    fn gdap(&mut self, path: &str, query: &str, auth: Option<&str>) -> Response<Full<Bytes>> {
        let token = auth.and_then(|a| a.strip_prefix("Bearer ")).unwrap_or("");
        let tenant = match self.tokens.get(token) {
            Some((t, exp)) if *exp > Instant::now() => t.clone(),
            _ => {
                self.counters.expired_401 += 1;
                return graph_error(
                    401,
                    "InvalidAuthenticationToken",
                    "Access token has expired or is not yet valid.",
                );
            }
        };
        if self.gdap_partner.as_deref() != Some(tenant.as_str()) {
            return graph_error(
                403,
                "Authorization_RequestDenied",
                "Insufficient privileges to complete the operation.",
            );
        }
        let lower = path.to_ascii_lowercase();
        let params: HashMap<String, String> = pairs(query, false).into_iter().collect();
        let rest = match params.get("$skiptoken") {
            Some(tok) => match self.gdap_cursors.remove(tok) {
                Some((p, rest)) if p == lower => rest,
                _ => return graph_error(400, "BadRequest", "invalid or expired $skiptoken"),
            },
            None if lower.ends_with("/delegatedadminrelationships") => self.gdap.clone(),
            None if lower.ends_with("/delegatedadmincustomers") => {
                let mut seen = std::collections::BTreeSet::new();
                self.gdap
                    .iter()
                    .filter(|r| seen.insert(r["customer"]["tenantId"].to_string()))
                    .map(|r| {
                        json!({
                            "@odata.type": "#microsoft.graph.delegatedAdminCustomer",
                            "id": r["customer"]["tenantId"],
                            "tenantId": r["customer"]["tenantId"],
                            "displayName": r["customer"]["displayName"],
                        })
                    })
                    .collect()
            }
            None => return graph_error(404, "Request_ResourceNotFound", "no such collection"),
        };
        self.counters.gdap_pages += 1;
        let mut rest = rest;
        let value: Vec<Value> = rest.drain(..rest.len().min(2)).collect();
        let collection = lower.rsplit('/').next().unwrap_or_default().to_owned();
        let mut body = serde_json::Map::new();
        body.insert(
            "@odata.context".into(),
            json!(format!(
                "{}/v1.0/$metadata#tenantRelationships/{collection}",
                self.base
            )),
        );
        if !rest.is_empty() {
            let tok = hex_token();
            body.insert(
                "@odata.nextLink".into(),
                json!(format!("{}{path}?$skiptoken={tok}", self.base)),
            );
            self.gdap_cursors.insert(tok, (lower, rest));
        }
        body.insert("value".into(), Value::Array(value));
        reply(200, Value::Object(body), &[])
    }

    fn next_page(&mut self, tok: &str, tenant: &str) -> Response<Full<Bytes>> {
        match self.cursors.remove(tok) {
            Some(c) if c.tenant == tenant => self.page(c),
            _ => graph_error(400, "BadRequest", "invalid or expired $skiptoken"),
        }
    }
}
