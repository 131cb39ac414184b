//! Destinations: the `[[destinations]]` config section in, [`ResolvedDestination`]s out.
//!
//! A [`DestinationConfig`] is what the operator writes (TOML, internally tagged by `type`: `teams`,
//! `slack`, `webhook`, `jsonl`, `stdout`), with secrets as [`SecretRef`]s. [`DestinationConfig::
//! validate`] lists every problem it can see without reading a secret; [`DestinationConfig::resolve`]
//! reads the secrets and checks what only the value shows (retired Teams connector URLs, schemes).
//! A [`ResolvedDestination`] is what a delivery worker runs with: its name, its limits and its
//! [`Sink`], which holds the URL and signing secret as [`Secret`](entrawatch_ingest::secret::Secret)s and never shows them in `Debug`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use entrawatch_ingest::secret::SecretRef;
use reqwest::Url;
use serde::Deserialize;

use crate::sink::{Sink, SinkKind};

/// How often a broken destination (open circuit) is tried again.
pub const DEFAULT_PROBE_INTERVAL: Duration = Duration::from_secs(600);

/// Requests an HTTP destination has in flight at once by default: enough that one hanging request
/// does not hold the others past their time, few enough to stay polite to a chat service.
pub const DEFAULT_MAX_IN_FLIGHT: u32 = 4;

/// How long connection failures (refused, DNS) last before a destination's circuit opens.
pub const DEFAULT_CIRCUIT_AFTER: Duration = Duration::from_secs(300);

fn chat_rate() -> f64 {
    1.0
}
fn chat_burst() -> u32 {
    3
}
fn webhook_rate() -> f64 {
    10.0
}
fn webhook_burst() -> u32 {
    10
}
fn default_timeout_secs() -> u64 {
    10
}
fn default_deadline_hours() -> u64 {
    24
}
fn default_max_in_flight() -> u32 {
    DEFAULT_MAX_IN_FLIGHT
}
fn default_circuit_after_secs() -> u64 {
    DEFAULT_CIRCUIT_AFTER.as_secs()
}

/// One `[[destinations]]` entry.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum DestinationConfig {
    /// A Teams Workflows trigger ("Post to a channel when a webhook request is received").
    Teams(ChatConfig),
    /// A Slack incoming webhook.
    Slack(ChatConfig),
    /// A generic webhook receiving the versioned JSON envelope.
    Webhook(WebhookConfig),
    /// Alert records appended to a file, one JSON object per line.
    Jsonl(JsonlConfig),
    /// Alert records printed to standard output, one JSON object per line.
    Stdout(StdoutConfig),
}

/// `type = "teams"` and `type = "slack"`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChatConfig {
    pub name: String,
    /// The webhook URL: a secret (its query string carries the signature).
    pub url: SecretRef,
    #[serde(default = "chat_rate")]
    pub rate_per_sec: f64,
    #[serde(default = "chat_burst")]
    pub burst: u32,
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
    /// Undelivered notifications become dead letters after this long (critical ones are kept and
    /// alarmed instead).
    #[serde(default = "default_deadline_hours")]
    pub deadline_hours: u64,
    /// Requests in flight at once; 1 sends one message at a time.
    #[serde(default = "default_max_in_flight")]
    pub max_in_flight: u32,
    /// Connection failures (refused, DNS) lasting this long open the circuit.
    #[serde(default = "default_circuit_after_secs")]
    pub circuit_after_secs: u64,
}

/// `type = "webhook"`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    pub name: String,
    pub url: SecretRef,
    /// HMAC-SHA256 key for `X-Entrawatch-Signature`.
    #[serde(default)]
    pub secret: Option<SecretRef>,
    /// Extra request headers (not secrets: they may appear in config dumps).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default = "webhook_rate")]
    pub rate_per_sec: f64,
    #[serde(default = "webhook_burst")]
    pub burst: u32,
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
    #[serde(default = "default_deadline_hours")]
    pub deadline_hours: u64,
    #[serde(default = "default_max_in_flight")]
    pub max_in_flight: u32,
    #[serde(default = "default_circuit_after_secs")]
    pub circuit_after_secs: u64,
}

/// `type = "jsonl"`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JsonlConfig {
    pub name: String,
    pub path: PathBuf,
    #[serde(default = "default_deadline_hours")]
    pub deadline_hours: u64,
}

/// `type = "stdout"`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StdoutConfig {
    pub name: String,
    #[serde(default = "default_deadline_hours")]
    pub deadline_hours: u64,
}

/// A destination ready for a delivery worker.
#[derive(Debug, Clone)]
pub struct ResolvedDestination {
    /// The configured name: outbox rows and metric labels use it.
    pub name: String,
    pub sink: Sink,
    pub rate_per_sec: f64,
    pub burst: u32,
    /// Per request, connect included.
    pub timeout: Duration,
    /// Age (from outbox commit) at which a non-critical notification becomes a dead letter.
    pub deadline: Duration,
    /// How long a broken destination's circuit stays open before the next try.
    pub probe_interval: Duration,
    /// Requests in flight at once (at least 1). Two messages of one group or one alert are never
    /// in flight together, and the token bucket paces them all.
    pub max_in_flight: usize,
    /// How long connection failures (refused, DNS) may last, with no answer in between, before
    /// the circuit opens.
    pub circuit_after: Duration,
}

impl ResolvedDestination {
    /// A destination with the default limits of its kind.
    pub fn new(name: impl Into<String>, sink: Sink) -> ResolvedDestination {
        let in_flight = DEFAULT_MAX_IN_FLIGHT as usize;
        // a file or the terminal takes one write at a time, in order
        let (rate_per_sec, burst, max_in_flight) = match sink.kind() {
            SinkKind::Teams | SinkKind::Slack => (chat_rate(), chat_burst(), in_flight),
            SinkKind::Webhook => (webhook_rate(), webhook_burst(), in_flight),
            SinkKind::Jsonl | SinkKind::Stdout => (1000.0, 1000, 1),
        };
        ResolvedDestination {
            name: name.into(),
            sink,
            rate_per_sec,
            burst,
            timeout: Duration::from_secs(default_timeout_secs()),
            deadline: Duration::from_secs(default_deadline_hours() * 3600),
            probe_interval: DEFAULT_PROBE_INTERVAL,
            max_in_flight,
            circuit_after: DEFAULT_CIRCUIT_AFTER,
        }
    }

    pub fn kind(&self) -> SinkKind {
        self.sink.kind()
    }
}

const RESERVED_HEADERS: [&str; 7] = [
    "content-type",
    "content-length",
    "host",
    "idempotency-key",
    "x-entrawatch-signature",
    "x-entrawatch-timestamp",
    "transfer-encoding",
];

impl DestinationConfig {
    pub fn name(&self) -> &str {
        match self {
            DestinationConfig::Teams(c) | DestinationConfig::Slack(c) => &c.name,
            DestinationConfig::Webhook(c) => &c.name,
            DestinationConfig::Jsonl(c) => &c.name,
            DestinationConfig::Stdout(c) => &c.name,
        }
    }

    pub fn kind(&self) -> SinkKind {
        match self {
            DestinationConfig::Teams(_) => SinkKind::Teams,
            DestinationConfig::Slack(_) => SinkKind::Slack,
            DestinationConfig::Webhook(_) => SinkKind::Webhook,
            DestinationConfig::Jsonl(_) => SinkKind::Jsonl,
            DestinationConfig::Stdout(_) => SinkKind::Stdout,
        }
    }

    /// Every problem visible without reading secrets, each prefixed with `path`
    /// (e.g. `destinations[2]`).
    pub fn validate(&self, path: &str) -> Vec<String> {
        let mut out = Vec::new();
        check_name(self.name(), path, &mut out);
        match self {
            DestinationConfig::Teams(c) | DestinationConfig::Slack(c) => {
                out.extend(c.url.check(&format!("{path}.url")));
                check_limits(path, c.rate_per_sec, c.burst, c.timeout_secs, &mut out);
                check_concurrency(path, c.max_in_flight, c.circuit_after_secs, &mut out);
                check_deadline(path, c.deadline_hours, &mut out);
            }
            DestinationConfig::Webhook(c) => {
                out.extend(c.url.check(&format!("{path}.url")));
                if let Some(s) = &c.secret {
                    out.extend(s.check(&format!("{path}.secret")));
                }
                for (name, value) in &c.headers {
                    check_header(path, name, value, &mut out);
                }
                check_limits(path, c.rate_per_sec, c.burst, c.timeout_secs, &mut out);
                check_concurrency(path, c.max_in_flight, c.circuit_after_secs, &mut out);
                check_deadline(path, c.deadline_hours, &mut out);
            }
            DestinationConfig::Jsonl(c) => {
                if c.path.as_os_str().is_empty() {
                    out.push(format!("{path}.path: must not be empty"));
                }
                check_deadline(path, c.deadline_hours, &mut out);
            }
            DestinationConfig::Stdout(c) => check_deadline(path, c.deadline_hours, &mut out),
        }
        out
    }

    /// The entry whose `type` is `tag`, from the rest of its table; `None` for an unknown type.
    /// The same result as deserialising the whole table, but the variant's fields are read
    /// straight from `rest`: serde reads an internally tagged enum through a buffer, which hides
    /// from a path-tracking deserializer which key an error is at, and the config file's errors
    /// name their key.
    pub fn from_tagged<'de, D: serde::Deserializer<'de>>(
        tag: &str,
        rest: D,
    ) -> Option<Result<DestinationConfig, D::Error>> {
        Some(match tag {
            "teams" => Deserialize::deserialize(rest).map(DestinationConfig::Teams),
            "slack" => Deserialize::deserialize(rest).map(DestinationConfig::Slack),
            "webhook" => Deserialize::deserialize(rest).map(DestinationConfig::Webhook),
            "jsonl" => Deserialize::deserialize(rest).map(DestinationConfig::Jsonl),
            "stdout" => Deserialize::deserialize(rest).map(DestinationConfig::Stdout),
            _ => return None,
        })
    }

    /// Reads the secrets and checks what only their values show. Errors never contain a secret.
    pub fn resolve(&self, path: &str) -> Result<ResolvedDestination, Vec<String>> {
        self.resolve_with(path, &|name| std::env::var(name).ok())
    }

    /// [`DestinationConfig::resolve`] with the environment passed in (tests).
    pub fn resolve_with(
        &self,
        path: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<ResolvedDestination, Vec<String>> {
        let mut errors = self.validate(path);
        let url_path = format!("{path}.url");
        let secret = |r: &SecretRef, p: &str, errors: &mut Vec<String>| match r.resolve_with(p, env)
        {
            Ok(s) => Some(s),
            Err(e) => {
                errors.push(e);
                None
            }
        };
        let (sink, hours, limits) = match self {
            DestinationConfig::Teams(c) | DestinationConfig::Slack(c) => {
                let url = secret(&c.url, &url_path, &mut errors);
                if let Some(u) = &url {
                    errors.extend(check_url(self.kind(), u.expose(), &url_path));
                }
                let sink = url.map(|url| match self.kind() {
                    SinkKind::Teams => Sink::Teams { url },
                    _ => Sink::Slack { url },
                });
                let limits = Limits {
                    rate_per_sec: c.rate_per_sec,
                    burst: c.burst,
                    timeout_secs: c.timeout_secs,
                    max_in_flight: c.max_in_flight,
                    circuit_after_secs: c.circuit_after_secs,
                };
                (sink, c.deadline_hours, Some(limits))
            }
            DestinationConfig::Webhook(c) => {
                let url = secret(&c.url, &url_path, &mut errors);
                if let Some(u) = &url {
                    errors.extend(check_url(SinkKind::Webhook, u.expose(), &url_path));
                }
                let key = c
                    .secret
                    .as_ref()
                    .map(|s| secret(s, &format!("{path}.secret"), &mut errors));
                let sink = match (url, key) {
                    (Some(url), None) => Some((url, None)),
                    (Some(url), Some(Some(k))) => Some((url, Some(k))),
                    _ => None,
                }
                .map(|(url, secret)| Sink::Webhook {
                    url,
                    secret,
                    headers: c
                        .headers
                        .iter()
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect(),
                });
                let limits = Limits {
                    rate_per_sec: c.rate_per_sec,
                    burst: c.burst,
                    timeout_secs: c.timeout_secs,
                    max_in_flight: c.max_in_flight,
                    circuit_after_secs: c.circuit_after_secs,
                };
                (sink, c.deadline_hours, Some(limits))
            }
            DestinationConfig::Jsonl(c) => {
                if let Some(parent) = c.path.parent()
                    && !parent.as_os_str().is_empty()
                    && !parent.is_dir()
                {
                    errors.push(format!(
                        "{path}.path: directory {} does not exist",
                        parent.display()
                    ));
                }
                let sink = Sink::Jsonl {
                    path: c.path.clone(),
                };
                (Some(sink), c.deadline_hours, None)
            }
            DestinationConfig::Stdout(c) => (Some(Sink::Stdout), c.deadline_hours, None),
        };
        match sink {
            Some(sink) if errors.is_empty() => {
                let mut d = ResolvedDestination::new(self.name(), sink);
                if let Some(l) = limits {
                    d.rate_per_sec = l.rate_per_sec;
                    d.burst = l.burst;
                    d.timeout = Duration::from_secs(l.timeout_secs);
                    d.max_in_flight = l.max_in_flight as usize;
                    d.circuit_after = Duration::from_secs(l.circuit_after_secs);
                }
                d.deadline = Duration::from_secs(hours * 3600);
                Ok(d)
            }
            _ => Err(errors),
        }
    }
}

/// The sending limits of an HTTP destination, as configured.
struct Limits {
    rate_per_sec: f64,
    burst: u32,
    timeout_secs: u64,
    max_in_flight: u32,
    circuit_after_secs: u64,
}

/// [`DestinationConfig::validate`] for every entry plus duplicate names; `path` is the section
/// (`destinations`).
pub fn validate_all(destinations: &[DestinationConfig], path: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, d) in destinations.iter().enumerate() {
        let p = format!("{path}[{i}]");
        out.extend(d.validate(&p));
        if let Some(first) = seen.insert(d.name(), i) {
            out.push(format!(
                "{p}.name: {:?} is already used by {path}[{first}]",
                d.name()
            ));
        }
    }
    out
}

fn check_name(name: &str, path: &str, out: &mut Vec<String>) {
    let ok_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.');
    if name.is_empty() || name.len() > 64 || !name.chars().all(ok_char) {
        out.push(format!(
            "{path}.name: {name:?} must be 1 to 64 characters of letters, digits, '_', '-' or '.'"
        ));
    }
}

fn check_limits(path: &str, rate: f64, burst: u32, timeout_secs: u64, out: &mut Vec<String>) {
    if !(rate.is_finite() && rate > 0.0 && rate <= 1000.0) {
        out.push(format!(
            "{path}.rate_per_sec: {rate} must be above 0 and at most 1000"
        ));
    }
    if !(1..=1000).contains(&burst) {
        out.push(format!("{path}.burst: {burst} must be 1 to 1000"));
    }
    if !(1..=300).contains(&timeout_secs) {
        out.push(format!(
            "{path}.timeout_secs: {timeout_secs} must be 1 to 300"
        ));
    }
}

fn check_concurrency(
    path: &str,
    max_in_flight: u32,
    circuit_after_secs: u64,
    out: &mut Vec<String>,
) {
    if !(1..=64).contains(&max_in_flight) {
        out.push(format!(
            "{path}.max_in_flight: {max_in_flight} must be 1 to 64"
        ));
    }
    if !(1..=86_400).contains(&circuit_after_secs) {
        out.push(format!(
            "{path}.circuit_after_secs: {circuit_after_secs} must be 1 to 86400"
        ));
    }
}

fn check_deadline(path: &str, hours: u64, out: &mut Vec<String>) {
    if !(1..=8760).contains(&hours) {
        out.push(format!("{path}.deadline_hours: {hours} must be 1 to 8760"));
    }
}

fn check_header(path: &str, name: &str, value: &str, out: &mut Vec<String>) {
    let token = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
    if name.is_empty() || !name.chars().all(token) {
        out.push(format!(
            "{path}.headers: {name:?} is not a valid header name"
        ));
    } else if RESERVED_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
        out.push(format!(
            "{path}.headers: {name} is set by entrawatch and cannot be overridden"
        ));
    }
    if value.chars().any(|c| c.is_control() && c != '\t') {
        out.push(format!(
            "{path}.headers.{name}: value must not contain control characters"
        ));
    }
}

/// Problems with a resolved URL; never quotes it (its query string is a credential).
fn check_url(kind: SinkKind, raw: &str, path: &str) -> Vec<String> {
    let url = match Url::parse(raw) {
        Ok(u) => u,
        Err(e) => return vec![format!("{path}: the secret is not a valid URL ({e})")],
    };
    let mut out = Vec::new();
    if !matches!(url.scheme(), "http" | "https") {
        out.push(format!(
            "{path}: scheme {:?} is not supported, use https",
            url.scheme()
        ));
        return out;
    }
    let Some(host) = url.host_str().map(str::to_ascii_lowercase) else {
        return vec![format!("{path}: the URL has no host")];
    };
    let loopback = host == "localhost" || host == "127.0.0.1" || host == "[::1]";
    if matches!(kind, SinkKind::Teams | SinkKind::Slack) && url.scheme() != "https" && !loopback {
        out.push(format!("{path}: {} webhooks need https", kind.as_str()));
    }
    if kind == SinkKind::Teams && is_retired_connector(&host, url.path()) {
        out.push(format!(
            "{path}: this is a retired Office 365 connector URL (webhook.office.com), which no \
             longer delivers; in Teams, create a flow from the Workflows template \"Post to a \
             channel when a webhook request is received\" and use its trigger URL instead"
        ));
    }
    out
}

fn is_retired_connector(host: &str, path: &str) -> bool {
    host.ends_with(".webhook.office.com")
        || host == "webhook.office.com"
        || (host == "outlook.office.com" && path.starts_with("/webhook"))
}

/// Resolves every destination's secrets (`destinations[i]` paths); every problem at once.
pub fn resolve_all(
    destinations: &[DestinationConfig],
) -> Result<Vec<ResolvedDestination>, Vec<String>> {
    let mut problems = Vec::new();
    let mut out = Vec::new();
    for (i, d) in destinations.iter().enumerate() {
        match d.resolve(&format!("destinations[{i}]")) {
            Ok(r) => out.push(r),
            Err(p) => problems.extend(p),
        }
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: serde_json::Value) -> Result<DestinationConfig, serde_json::Error> {
        serde_json::from_value(json)
    }

    fn env(name: &str) -> Option<String> {
        match name {
        "TEAMS_OK" => Some("https://x.environment.api.powerplatform.com:443/powerautomate/automations/direct/workflows/abc/triggers/manual/paths/invoke?api-version=1&sig=SECRETSIG".into()),
        "TEAMS_OLD" => Some("https://contoso.webhook.office.com/webhookb2/abc@def/IncomingWebhook/x/y".into()),
        "TEAMS_OUTLOOK" => Some("https://outlook.office.com/webhook/abc/IncomingWebhook/SECRETSIG".into()),
        "FTP" => Some("ftp://example.com/SECRETSIG".into()),
        "SLACK_HTTP" => Some("http://hooks.slack.com/services/T/B/SECRETSIG".into()),
        "LOCAL" => Some("http://127.0.0.1:8080/hook".into()),
        "KEY" => Some("hmac-key-SECRETSIG".into()),
        _ => None,
    }
    }

    #[test]
    fn from_tagged_reads_what_the_tagged_table_reads() {
        for entry in [
            serde_json::json!({"type": "teams", "name": "t", "url": {"env": "TEAMS_OK"}}),
            serde_json::json!({"type": "slack", "name": "s", "url": {"env": "SLACK_HTTP"}}),
            serde_json::json!({"type": "webhook", "name": "w", "url": {"env": "LOCAL"}, "secret": {"env": "KEY"}}),
            serde_json::json!({"type": "jsonl", "name": "j", "path": "alerts.jsonl"}),
            serde_json::json!({"type": "stdout", "name": "o"}),
        ] {
            let whole = parse(entry.clone()).unwrap();
            let mut rest = entry.as_object().unwrap().clone();
            let tag = rest.remove("type").unwrap();
            let tagged = DestinationConfig::from_tagged(
                tag.as_str().unwrap(),
                serde_json::Value::Object(rest),
            )
            .unwrap()
            .unwrap();
            assert_eq!(tagged, whole);
        }
        assert!(DestinationConfig::from_tagged("pager", serde_json::json!({})).is_none());
    }

    #[test]
    fn defaults_follow_the_kind() {
        let d =
            parse(serde_json::json!({"type": "teams", "name": "soc", "url": {"env": "TEAMS_OK"}}))
                .unwrap();
        let DestinationConfig::Teams(c) = &d else {
            panic!("{d:?}")
        };
        assert_eq!(
            (c.rate_per_sec, c.burst, c.timeout_secs, c.deadline_hours),
            (1.0, 3, 10, 24)
        );
        let w = parse(serde_json::json!({"type": "webhook", "name": "h", "url": {"env": "LOCAL"}}))
            .unwrap();
        let DestinationConfig::Webhook(c) = &w else {
            panic!("{w:?}")
        };
        assert_eq!((c.rate_per_sec, c.burst), (10.0, 10));
        assert!(d.validate("destinations[0]").is_empty());
        let r = d.resolve_with("destinations[0]", &env).unwrap();
        assert_eq!(r.kind(), SinkKind::Teams);
        assert_eq!(r.timeout, Duration::from_secs(10));
        assert_eq!(r.deadline, Duration::from_secs(24 * 3600));
        assert_eq!(
            (r.max_in_flight, r.circuit_after),
            (4, Duration::from_secs(300))
        );
        assert!(!format!("{r:?}").contains("SECRETSIG"));
        let f = ResolvedDestination::new("f", Sink::Jsonl { path: "a".into() });
        assert_eq!(f.max_in_flight, 1, "a file takes one write at a time");
    }

    #[test]
    fn in_flight_and_circuit_after_are_configurable() {
        let d = parse(serde_json::json!({
            "type": "webhook", "name": "h", "url": {"env": "LOCAL"},
            "max_in_flight": 1, "circuit_after_secs": 60
        }))
        .unwrap();
        let r = d.resolve_with("destinations[0]", &env).unwrap();
        assert_eq!(
            (r.max_in_flight, r.circuit_after),
            (1, Duration::from_secs(60))
        );
        let d = parse(serde_json::json!({
            "type": "slack", "name": "s", "url": {"env": "LOCAL"},
            "max_in_flight": 0, "circuit_after_secs": 0
        }))
        .unwrap();
        let problems = d.validate("destinations[1]");
        assert!(
            problems
                .iter()
                .any(|p| p.starts_with("destinations[1].max_in_flight:")),
            "{problems:?}"
        );
        assert!(
            problems
                .iter()
                .any(|p| p.starts_with("destinations[1].circuit_after_secs:")),
            "{problems:?}"
        );
        assert!(
            parse(serde_json::json!({"type": "stdout", "name": "o", "max_in_flight": 2})).is_err(),
            "local sinks write one at a time"
        );
    }

    #[test]
    fn unknown_fields_and_types_are_refused() {
        assert!(
            parse(
                serde_json::json!({"type": "teams", "name": "a", "url": {"env": "X"}, "colour": 1})
            )
            .is_err()
        );
        let err = parse(serde_json::json!({"type": "pager", "name": "a"})).unwrap_err();
        assert!(err.to_string().contains("teams"), "{err}");
    }

    #[test]
    fn validate_lists_every_problem_with_its_path() {
        let d = parse(serde_json::json!({
            "type": "webhook", "name": "bad name", "url": {},
            "secret": {"env": "A", "file": "/b"},
            "headers": {"Content-Type": "x", "X-Ok": "a\nb"},
            "rate_per_sec": 0.0, "burst": 0, "timeout_secs": 0, "deadline_hours": 0
        }))
        .unwrap();
        let problems = d.validate("destinations[3]");
        for needle in [
            ".name:",
            ".url:",
            ".secret:",
            "Content-Type is set by entrawatch",
            "headers.X-Ok",
            ".rate_per_sec:",
            ".burst:",
            ".timeout_secs:",
            ".deadline_hours:",
        ] {
            assert!(
                problems.iter().any(|p| p.contains(needle)),
                "{needle} missing in {problems:#?}"
            );
        }
        assert!(problems.iter().all(|p| p.starts_with("destinations[3].")));
    }

    #[test]
    fn duplicate_names_are_reported() {
        let a = parse(serde_json::json!({"type": "stdout", "name": "out"})).unwrap();
        let problems = validate_all(&[a.clone(), a], "destinations");
        assert_eq!(problems.len(), 1);
        assert!(
            problems[0].starts_with("destinations[1].name"),
            "{problems:?}"
        );
    }

    #[test]
    fn resolve_refuses_retired_connectors_and_bad_schemes_without_leaking() {
        let cases = [
            (
                "teams",
                "TEAMS_OLD",
                "Post to a channel when a webhook request is received",
            ),
            ("teams", "TEAMS_OUTLOOK", "retired Office 365 connector"),
            ("webhook", "FTP", "scheme \"ftp\""),
            ("slack", "SLACK_HTTP", "need https"),
            ("slack", "MISSING", "MISSING is not set"),
        ];
        for (kind, var, needle) in cases {
            let d =
                parse(serde_json::json!({"type": kind, "name": "d", "url": {"env": var}})).unwrap();
            let errors = d.resolve_with("destinations[0]", &env).unwrap_err();
            assert!(
                errors.iter().any(|e| e.contains(needle)),
                "{kind} {var}: {errors:?}"
            );
            assert!(
                errors
                    .iter()
                    .all(|e| !e.contains("SECRETSIG") && e.starts_with("destinations[0].url"))
            );
        }
        let local =
            parse(serde_json::json!({"type": "slack", "name": "d", "url": {"env": "LOCAL"}}))
                .unwrap();
        assert!(local.resolve_with("d", &env).is_ok());
    }

    #[test]
    fn webhook_resolves_its_key_and_hides_it() {
        let d = parse(serde_json::json!({
            "type": "webhook", "name": "siem", "url": {"env": "LOCAL"}, "secret": {"env": "KEY"},
            "headers": {"X-Tenant": "contoso"}, "timeout_secs": 3
        }))
        .unwrap();
        let r = d.resolve_with("destinations[1]", &env).unwrap();
        let Sink::Webhook {
            secret, headers, ..
        } = &r.sink
        else {
            panic!("{r:?}")
        };
        assert_eq!(secret.as_ref().unwrap().expose(), "hmac-key-SECRETSIG");
        assert_eq!(
            headers,
            &vec![("X-Tenant".to_owned(), "contoso".to_owned())]
        );
        assert_eq!(r.timeout, Duration::from_secs(3));
        let shown = format!("{r:?}");
        assert!(
            !shown.contains("SECRETSIG")
                && !shown.contains("127.0.0.1")
                && shown.contains("X-Tenant")
        );
    }

    #[test]
    fn jsonl_needs_an_existing_directory() {
        let d = parse(
        serde_json::json!({"type": "jsonl", "name": "f", "path": "/nonexistent-dir-ew/a.jsonl"}),
    )
    .unwrap();
        let errors = d.resolve_with("destinations[0]", &env).unwrap_err();
        assert!(errors[0].contains("does not exist"), "{errors:?}");
    }
}
