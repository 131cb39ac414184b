//! Config of the Kafka source: [`KafkaConfig`] (`type = "kafka"`, any Kafka-protocol broker) and
//! [`EventHubConfig`] (`type = "eventhub"`, the short form for an Azure Event Hubs namespace),
//! which [`EventHubConfig::expand`]s into a `KafkaConfig` with the recipe of FORMATS.md §6.
//!
//! What comes in: the `[[sources]]` table of the config file. What goes out: validated settings
//! for librdkafka ([`KafkaConfig::consumer_settings`], [`KafkaConfig::producer_settings`]) with the
//! settings entrawatch's commit protocol depends on forced, and every problem listed with its
//! config path. Secret settings (`sasl.password`, ...) are [`SecretRef`]s, never plain strings.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Deserializer};

use crate::secret::{Secret, SecretRef};
use crate::value::is_guid;

/// Default most items per batch.
pub const DEFAULT_BATCH_MAX: usize = 500;
/// Default longest wait before a partly filled batch is sent.
pub const DEFAULT_BATCH_WAIT_MS: u64 = 200;
/// Default bound on waiting for in-flight batches on revoke and shutdown.
pub const DEFAULT_DRAIN_TIMEOUT_SECS: u64 = 10;
/// The Kafka consumer group used on an Event Hub when none is configured.
pub const DEFAULT_CONSUMER_GROUP: &str = "$Default";
/// How often librdkafka reports statistics (the consumer-lag gauges), unless set.
pub const DEFAULT_STATISTICS_INTERVAL_MS: u64 = 5000;
/// librdkafka's own `session.timeout.ms` and `max.poll.interval.ms` defaults.
const LIBRDKAFKA_SESSION_TIMEOUT_MS: u64 = 45_000;
const LIBRDKAFKA_MAX_POLL_INTERVAL_MS: u64 = 300_000;

fn default_batch_max() -> usize {
    DEFAULT_BATCH_MAX
}
fn default_batch_wait_ms() -> u64 {
    DEFAULT_BATCH_WAIT_MS
}
fn default_drain_timeout_secs() -> u64 {
    DEFAULT_DRAIN_TIMEOUT_SECS
}
fn default_consumer_group() -> String {
    DEFAULT_CONSUMER_GROUP.to_owned()
}

/// A Kafka source: topics of any Kafka-protocol broker (`[[sources]] type = "kafka"`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaConfig {
    pub name: String,
    /// `host:port[,host:port...]` (librdkafka `bootstrap.servers`).
    pub brokers: String,
    pub topics: Vec<String>,
    pub group_id: String,
    /// Passed to librdkafka as they are (strings, numbers and booleans accepted), after the
    /// settings entrawatch forces (see [`FORCED_SETTINGS`]) are checked.
    #[serde(default, deserialize_with = "settings_map")]
    pub settings: BTreeMap<String, String>,
    /// librdkafka settings whose values are secrets (`sasl.password`, `ssl.key.password`, ...),
    /// read from the environment or a file at start.
    #[serde(default)]
    pub secret_settings: BTreeMap<String, SecretRef>,
    /// Messages and records that cannot be parsed are appended here as JSON lines.
    #[serde(default)]
    pub dead_letter_file: Option<PathBuf>,
    /// ... and/or produced to this topic (raw value, reason in headers).
    #[serde(default)]
    pub dead_letter_topic: Option<String>,
    /// Most items per batch handed to the pipeline.
    #[serde(default = "default_batch_max")]
    pub batch_max: usize,
    /// Longest wait before a partly filled batch is handed on.
    #[serde(default = "default_batch_wait_ms")]
    pub batch_wait_ms: u64,
    /// How long revoke and shutdown wait for in-flight batches to become durable (must stay below
    /// `session.timeout.ms`).
    #[serde(default = "default_drain_timeout_secs")]
    pub drain_timeout_secs: u64,
    /// The tenant of records that carry none (a GUID).
    #[serde(default)]
    pub tenant: Option<String>,
}

/// An Event Hubs namespace read through its Kafka endpoint (`[[sources]] type = "eventhub"`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventHubConfig {
    pub name: String,
    /// `contoso-soc` or `contoso-soc.servicebus.windows.net` (another cloud's host name works too).
    pub namespace: String,
    /// Event hubs to read (Kafka topics), e.g. `insights-logs-signinlogs`.
    pub hubs: Vec<String>,
    /// The Kafka consumer group (one per entrawatch deployment).
    #[serde(default = "default_consumer_group")]
    pub consumer_group: String,
    /// A connection string of a Listen-only shared access policy.
    pub connection_string: SecretRef,
    /// Extra librdkafka settings; they override the recipe except the SASL ones.
    #[serde(default, deserialize_with = "settings_map")]
    pub settings: BTreeMap<String, String>,
    #[serde(default)]
    pub dead_letter_file: Option<PathBuf>,
    #[serde(default)]
    pub dead_letter_topic: Option<String>,
    #[serde(default = "default_batch_max")]
    pub batch_max: usize,
    #[serde(default = "default_batch_wait_ms")]
    pub batch_wait_ms: u64,
    #[serde(default = "default_drain_timeout_secs")]
    pub drain_timeout_secs: u64,
    #[serde(default)]
    pub tenant: Option<String>,
}

/// Settings entrawatch always sets; user settings that contradict them are refused.
pub const FORCED_SETTINGS: [(&str, &str); 4] = [
    ("enable.auto.commit", "false"),
    ("enable.auto.offset.store", "false"),
    ("partition.assignment.strategy", "cooperative-sticky"),
    ("enable.partition.eof", "false"),
];

/// Consumer defaults `settings` may override: librdkafka 2.x waits up to a second
/// (`fetch.queue.backoff.ms`) after its local queue filled, which halves throughput of a consumer
/// doing real work (PERFORMANCE.md §4); the prefetch queue is a memory budget, set explicitly.
pub const CONSUMER_DEFAULTS: [(&str, &str); 2] = [
    ("fetch.queue.backoff.ms", "10"),
    ("queued.max.messages.kbytes", "32768"),
];

/// Secret librdkafka settings: only accepted in `secret_settings`.
pub const SECRET_KEYS: [&str; 6] = [
    "sasl.password",
    "ssl.key.password",
    "ssl.keystore.password",
    "ssl.truststore.password",
    "sasl.oauthbearer.client.secret",
    "ssl.key.pem",
];

/// Consumer-only librdkafka properties (left out of the dead-letter producer's settings).
const CONSUMER_ONLY: [&str; 24] = [
    "group.id",
    "group.instance.id",
    "group.protocol",
    "group.remote.assignor",
    "partition.assignment.strategy",
    "session.timeout.ms",
    "heartbeat.interval.ms",
    "coordinator.query.interval.ms",
    "max.poll.interval.ms",
    "enable.auto.commit",
    "auto.commit.interval.ms",
    "enable.auto.offset.store",
    "queued.min.messages",
    "queued.max.messages.kbytes",
    "fetch.wait.max.ms",
    "fetch.queue.backoff.ms",
    "fetch.message.max.bytes",
    "max.partition.fetch.bytes",
    "fetch.max.bytes",
    "fetch.min.bytes",
    "fetch.error.backoff.ms",
    "isolation.level",
    "enable.partition.eof",
    "auto.offset.reset",
];

/// Producer-only librdkafka properties (left out of the consumer's settings).
const PRODUCER_ONLY: [&str; 14] = [
    "request.timeout.ms",
    "message.timeout.ms",
    "delivery.timeout.ms",
    "acks",
    "request.required.acks",
    "linger.ms",
    "queue.buffering.max.ms",
    "queue.buffering.max.messages",
    "queue.buffering.max.kbytes",
    "compression.type",
    "compression.codec",
    "batch.num.messages",
    "batch.size",
    "enable.idempotence",
];

/// The Event Hubs Kafka-endpoint recipe (FORMATS.md §6); `settings` may override all but the
/// SASL keys.
pub const EVENT_HUB_RECIPE: [(&str, &str); 10] = [
    ("security.protocol", "SASL_SSL"),
    ("sasl.mechanisms", "PLAIN"),
    ("sasl.username", "$ConnectionString"),
    ("session.timeout.ms", "30000"),
    ("request.timeout.ms", "60000"),
    ("metadata.max.age.ms", "180000"),
    ("connections.max.idle.ms", "180000"),
    ("socket.keepalive.enable", "true"),
    ("max.partition.fetch.bytes", "1048576"),
    ("fetch.max.bytes", "52428800"),
];
const EVENT_HUB_FIXED: [&str; 4] = [
    "security.protocol",
    "sasl.mechanisms",
    "sasl.mechanism",
    "sasl.username",
];

/// TOML/JSON settings tables: strings, integers, floats and booleans, all kept as text.
fn settings_map<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Setting {
        Text(String),
        Int(i64),
        Float(f64),
        Bool(bool),
    }
    let raw = BTreeMap::<String, Setting>::deserialize(d)?;
    Ok(raw
        .into_iter()
        .map(|(k, v)| {
            let v = match v {
                Setting::Text(s) => s,
                Setting::Int(i) => i.to_string(),
                Setting::Float(f) => f.to_string(),
                Setting::Bool(b) => b.to_string(),
            };
            (k, v)
        })
        .collect())
}

/// A Kafka topic name (Event Hub names follow the same rule): 1-249 of `[A-Za-z0-9._-]`.
fn topic_problem(name: &str) -> Option<&'static str> {
    if name.is_empty() || name.len() > 249 {
        return Some("a topic name has 1 to 249 characters");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        return Some("a topic name has only letters, digits, `.`, `_` and `-`");
    }
    None
}

fn parse_ms(settings: &BTreeMap<String, String>, key: &str, default: u64) -> Option<u64> {
    match settings.get(key) {
        Some(v) => v.trim().parse().ok(),
        None => Some(default),
    }
}

impl KafkaConfig {
    /// Every problem, each prefixed with its config path (`path` names this table).
    pub fn validate(&self, path: &str) -> Vec<String> {
        let mut out = Vec::new();
        if self.name.trim().is_empty() {
            out.push(format!("{path}.name: must not be empty"));
        }
        let brokers: Vec<&str> = self.brokers.split(',').map(str::trim).collect();
        if brokers.iter().all(|b| b.is_empty()) {
            out.push(format!("{path}.brokers: give at least one host:port"));
        } else if let Some(bad) = brokers
            .iter()
            .find(|b| b.is_empty() || b.contains("://") || !b.contains(':'))
        {
            out.push(format!(
                "{path}.brokers: `{bad}` is not host:port (comma-separated, no scheme)"
            ));
        }
        common_checks(
            path,
            "topics",
            &self.topics,
            &self.group_id,
            "group_id",
            &self.dead_letter_topic,
            self.batch_max,
            self.batch_wait_ms,
            self.tenant.as_deref(),
            &mut out,
        );
        self.check_settings(path, &mut out);
        for (key, secret) in &self.secret_settings {
            out.extend(secret.check(&format!("{path}.secret_settings.{key}")));
            if self.settings.contains_key(key) {
                out.push(format!(
                    "{path}.secret_settings.{key}: also given in settings; give it once"
                ));
            }
        }
        out
    }

    fn check_settings(&self, path: &str, out: &mut Vec<String>) {
        let at = |key: &str| format!("{path}.settings.\"{key}\"");
        for (key, value) in &self.settings {
            let v = value.trim().to_ascii_lowercase();
            match key.as_str() {
                "bootstrap.servers" | "metadata.broker.list" => {
                    out.push(format!("{}: give the brokers in `brokers`", at(key)))
                }
                "group.id" => out.push(format!("{}: give the group in `group_id`", at(key))),
                "enable.auto.commit" if v != "false" => out.push(format!(
                    "{}: entrawatch commits offsets itself, only once the records are durable; \
                     auto-commit would commit records not yet processed",
                    at(key)
                )),
                "enable.auto.offset.store" if v != "false" => out.push(format!(
                    "{}: storing offsets automatically would commit records not yet processed; \
                     entrawatch stores and commits offsets itself",
                    at(key)
                )),
                "partition.assignment.strategy" if v != "cooperative-sticky" => out.push(format!(
                    "{}: only cooperative-sticky is supported (revoked partitions are drained \
                         and committed one by one)",
                    at(key)
                )),
                "group.protocol" if v != "classic" => out.push(format!(
                    "{}: only the classic group protocol is supported",
                    at(key)
                )),
                "auto.offset.reset"
                    if !matches!(
                        v.as_str(),
                        "earliest" | "smallest" | "beginning" | "latest" | "largest" | "end"
                    ) =>
                {
                    out.push(format!(
                        "{}: use earliest (catch up, the default) or latest",
                        at(key)
                    ))
                }
                "statistics.interval.ms" => match v.parse::<u64>() {
                    Ok(ms) if (100..=300_000).contains(&ms) => {}
                    _ => out.push(format!(
                        "{}: give 100 to 300000 (the consumer-lag gauges need statistics)",
                        at(key)
                    )),
                },
                "enable.partition.eof" if v != "false" => out.push(format!(
                    "{}: end-of-partition events are not used; leave it unset",
                    at(key)
                )),
                k if SECRET_KEYS.contains(&k) => out.push(format!(
                    "{}: a secret; give it in secret_settings as {{ env = \"VAR\" }} or \
                     {{ file = \"/path\" }}",
                    at(key)
                )),
                _ => {}
            }
        }
        let session = parse_ms(
            &self.settings,
            "session.timeout.ms",
            LIBRDKAFKA_SESSION_TIMEOUT_MS,
        );
        let poll = parse_ms(
            &self.settings,
            "max.poll.interval.ms",
            LIBRDKAFKA_MAX_POLL_INTERVAL_MS,
        );
        let drain_ms = self.drain_timeout_secs.saturating_mul(1000);
        if self.drain_timeout_secs == 0 {
            out.push(format!("{path}.drain_timeout_secs: must be at least 1"));
        }
        match session {
            None => out.push(format!("{}: not a number of milliseconds", at("session.timeout.ms"))),
            Some(s) if drain_ms >= s => out.push(format!(
                "{path}.drain_timeout_secs: {}s must stay below session.timeout.ms ({s} ms), or the \
                 group evicts this member while it drains",
                self.drain_timeout_secs
            )),
            Some(_) => {}
        }
        match poll {
            None => out.push(format!(
                "{}: not a number of milliseconds",
                at("max.poll.interval.ms")
            )),
            Some(p) if drain_ms >= p => out.push(format!(
                "{path}.drain_timeout_secs: {}s must stay below max.poll.interval.ms ({p} ms)",
                self.drain_timeout_secs
            )),
            Some(_) => {}
        }
    }

    /// The consumer's librdkafka settings, without secrets: user settings, then the brokers,
    /// group and the forced settings on top.
    pub fn consumer_settings(&self) -> BTreeMap<String, String> {
        let mut s: BTreeMap<String, String> = self
            .settings
            .iter()
            .filter(|(k, _)| !PRODUCER_ONLY.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        s.entry("auto.offset.reset".into())
            .or_insert_with(|| "earliest".into());
        s.entry("statistics.interval.ms".into())
            .or_insert_with(|| DEFAULT_STATISTICS_INTERVAL_MS.to_string());
        s.entry("client.id".into())
            .or_insert_with(|| format!("entrawatch-{}", self.name));
        for (k, v) in CONSUMER_DEFAULTS {
            s.entry(k.into()).or_insert_with(|| v.into());
        }
        s.insert("bootstrap.servers".into(), self.brokers.clone());
        s.insert("group.id".into(), self.group_id.clone());
        for (k, v) in FORCED_SETTINGS {
            s.insert(k.into(), v.into());
        }
        s
    }

    /// The dead-letter producer's librdkafka settings, without secrets.
    pub fn producer_settings(&self) -> BTreeMap<String, String> {
        let mut s: BTreeMap<String, String> = self
            .settings
            .iter()
            .filter(|(k, _)| !CONSUMER_ONLY.contains(&k.as_str()))
            .filter(|(k, _)| k.as_str() != "statistics.interval.ms")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        s.entry("client.id".into())
            .or_insert_with(|| format!("entrawatch-{}-dead-letters", self.name));
        s.insert("bootstrap.servers".into(), self.brokers.clone());
        s
    }

    /// Reads the secret settings (errors name the setting, never a value).
    pub fn resolve_secrets(
        &self,
        path: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<BTreeMap<String, Secret>, Vec<String>> {
        let mut out = BTreeMap::new();
        let mut problems = Vec::new();
        for (key, r) in &self.secret_settings {
            match r.resolve_with(&format!("{path}.secret_settings.{key}"), env) {
                Ok(s) => {
                    out.insert(key.clone(), s);
                }
                Err(e) => problems.push(e),
            }
        }
        if problems.is_empty() {
            Ok(out)
        } else {
            Err(problems)
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn common_checks(
    path: &str,
    topics_field: &str,
    topics: &[String],
    group: &str,
    group_field: &str,
    dead_letter_topic: &Option<String>,
    batch_max: usize,
    batch_wait_ms: u64,
    tenant: Option<&str>,
    out: &mut Vec<String>,
) {
    if topics.is_empty() {
        out.push(format!("{path}.{topics_field}: give at least one"));
    }
    for (i, t) in topics.iter().enumerate() {
        if let Some(p) = topic_problem(t) {
            out.push(format!("{path}.{topics_field}[{i}]: `{t}`: {p}"));
        }
        if topics[..i].contains(t) {
            out.push(format!("{path}.{topics_field}[{i}]: `{t}` is listed twice"));
        }
    }
    if group.trim().is_empty() {
        out.push(format!("{path}.{group_field}: must not be empty"));
    }
    if let Some(t) = dead_letter_topic {
        if let Some(p) = topic_problem(t) {
            out.push(format!("{path}.dead_letter_topic: `{t}`: {p}"));
        }
        if topics.contains(t) {
            out.push(format!(
                "{path}.dead_letter_topic: `{t}` is also read by this source (a loop)"
            ));
        }
    }
    let max = crate::source::MAX_BATCH_ITEMS;
    if batch_max == 0 || batch_max > max {
        out.push(format!("{path}.batch_max: give 1 to {max}"));
    }
    if batch_wait_ms == 0 || batch_wait_ms > 60_000 {
        out.push(format!("{path}.batch_wait_ms: give 1 to 60000"));
    }
    if let Some(t) = tenant
        && !is_guid(t)
    {
        out.push(format!("{path}.tenant: `{t}` is not a tenant GUID"));
    }
}

impl EventHubConfig {
    /// Every problem, each prefixed with its config path.
    pub fn validate(&self, path: &str) -> Vec<String> {
        let mut out = Vec::new();
        if self.name.trim().is_empty() {
            out.push(format!("{path}.name: must not be empty"));
        }
        if let Some(p) = namespace_problem(&self.namespace) {
            out.push(format!("{path}.namespace: {p}"));
        }
        common_checks(
            path,
            "hubs",
            &self.hubs,
            &self.consumer_group,
            "consumer_group",
            &self.dead_letter_topic,
            self.batch_max,
            self.batch_wait_ms,
            self.tenant.as_deref(),
            &mut out,
        );
        out.extend(
            self.connection_string
                .check(&format!("{path}.connection_string")),
        );
        for key in self.settings.keys() {
            if EVENT_HUB_FIXED.contains(&key.as_str()) {
                out.push(format!(
                    "{path}.settings.\"{key}\": set by the Event Hub recipe (SASL_SSL, PLAIN, \
                     $ConnectionString); use type = \"kafka\" for another setup"
                ));
            }
        }
        let session = parse_ms(&self.settings, "session.timeout.ms", 30_000);
        if let Some(s) = session
            && !(6_000..=300_000).contains(&s)
        {
            out.push(format!(
                "{path}.settings.\"session.timeout.ms\": Event Hubs allows 6000 to 300000"
            ));
        }
        // The settings rules are the Kafka ones, applied to the recipe with `settings` on top.
        self.expand().check_settings(path, &mut out);
        out
    }

    /// `<namespace>.servicebus.windows.net:9093` (or the host given, with port 9093 added).
    pub fn bootstrap(&self) -> String {
        let ns = self.namespace.trim().trim_end_matches('.');
        let host = if ns.contains('.') {
            ns.to_ascii_lowercase()
        } else {
            format!("{}.servicebus.windows.net", ns.to_ascii_lowercase())
        };
        if host.contains(':') {
            host
        } else {
            format!("{host}:9093")
        }
    }

    /// The equivalent plain Kafka config: the FORMATS.md §6 recipe, then `settings` on top, the
    /// connection string as the SASL password.
    pub fn expand(&self) -> KafkaConfig {
        let mut settings: BTreeMap<String, String> = EVENT_HUB_RECIPE
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        for (k, v) in &self.settings {
            if !EVENT_HUB_FIXED.contains(&k.as_str()) {
                settings.insert(k.clone(), v.clone());
            }
        }
        KafkaConfig {
            name: self.name.clone(),
            brokers: self.bootstrap(),
            topics: self.hubs.clone(),
            group_id: self.consumer_group.clone(),
            settings,
            secret_settings: BTreeMap::from([(
                "sasl.password".to_owned(),
                self.connection_string.clone(),
            )]),
            dead_letter_file: self.dead_letter_file.clone(),
            dead_letter_topic: self.dead_letter_topic.clone(),
            batch_max: self.batch_max,
            batch_wait_ms: self.batch_wait_ms,
            drain_timeout_secs: self.drain_timeout_secs,
            tenant: self.tenant.clone(),
        }
    }

    /// Checks a resolved connection string against this config without ever printing it: the
    /// fields Event Hubs needs, the namespace, and an `EntityPath` that must match the only hub.
    pub fn check_connection_string(&self, secret: &Secret, path: &str) -> Vec<String> {
        let path = format!("{path}.connection_string");
        let mut fields: BTreeMap<String, &str> = BTreeMap::new();
        for part in secret.expose().split(';') {
            if let Some((k, v)) = part.split_once('=') {
                fields.insert(k.trim().to_ascii_lowercase(), v.trim());
            }
        }
        let mut out = Vec::new();
        let sas = secret
            .expose()
            .trim_start()
            .starts_with("SharedAccessSignature ");
        if sas || fields.contains_key("sharedaccesssignature") {
            out.push(format!(
                "{path}: a SAS token; the Kafka endpoint needs a policy connection string \
                 (Endpoint=...;SharedAccessKeyName=...;SharedAccessKey=...)"
            ));
            return out;
        }
        for key in ["endpoint", "sharedaccesskeyname", "sharedaccesskey"] {
            if !fields.contains_key(key) {
                out.push(format!(
                    "{path}: no {key} field; expected Endpoint=sb://<namespace>.servicebus.windows.net/;SharedAccessKeyName=...;SharedAccessKey=..."
                ));
            }
        }
        if let Some(endpoint) = fields.get("endpoint") {
            let host = endpoint
                .trim_start_matches("sb://")
                .trim_end_matches('/')
                .to_ascii_lowercase();
            let want = self.bootstrap();
            let want_host = want.rsplit_once(':').map_or(want.as_str(), |(h, _)| h);
            if !endpoint.starts_with("sb://") {
                out.push(format!("{path}: Endpoint does not start with sb://"));
            } else if host != want_host {
                out.push(format!(
                    "{path}: the connection string is for namespace {host}, this source reads {want_host}"
                ));
            }
        }
        if let Some(entity) = fields.get("entitypath")
            && (self.hubs.len() != 1 || !self.hubs[0].eq_ignore_ascii_case(entity))
        {
            out.push(format!(
                "{path}: the connection string is scoped to event hub `{entity}` (EntityPath) \
                 but hubs lists {:?}; use a namespace-level policy to read several hubs",
                self.hubs
            ));
        }
        out
    }
}

fn namespace_problem(ns: &str) -> Option<String> {
    let ns = ns.trim();
    if ns.is_empty() {
        return Some("must not be empty".into());
    }
    if ns.contains("://") || ns.contains('/') {
        return Some(format!(
            "`{ns}`: give the namespace name (contoso-soc) or host name, not a URL"
        ));
    }
    let host = ns.split(':').next().unwrap_or(ns);
    if let Some(port) = ns.split(':').nth(1)
        && port.parse::<u16>().is_err()
    {
        return Some(format!("`{ns}`: the port is not a number"));
    }
    let ok = |label: &str| {
        !label.is_empty()
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    if !host.split('.').all(ok) {
        return Some(format!("`{ns}`: not a namespace or host name"));
    }
    if !host.contains('.') && !(6..=50).contains(&host.len()) {
        return Some(format!(
            "`{ns}`: an Event Hubs namespace name has 6 to 50 characters"
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kafka() -> KafkaConfig {
        serde_json::from_value(serde_json::json!({
            "name": "k", "brokers": "127.0.0.1:9092", "topics": ["signins"], "group_id": "g"
        }))
        .unwrap()
    }

    fn hub() -> EventHubConfig {
        serde_json::from_value(serde_json::json!({
            "name": "eh", "namespace": "contoso-soc", "hubs": ["insights-logs-signinlogs"],
            "connection_string": { "env": "EH_CONN" }
        }))
        .unwrap()
    }

    #[test]
    fn defaults_and_forced_settings() {
        let k = kafka();
        assert_eq!(k.batch_max, DEFAULT_BATCH_MAX);
        assert_eq!(k.batch_wait_ms, DEFAULT_BATCH_WAIT_MS);
        assert_eq!(k.drain_timeout_secs, DEFAULT_DRAIN_TIMEOUT_SECS);
        assert!(k.validate("sources[0]").is_empty(), "{:?}", k.validate("x"));
        let s = k.consumer_settings();
        assert_eq!(s["enable.auto.commit"], "false");
        assert_eq!(s["enable.auto.offset.store"], "false");
        assert_eq!(s["partition.assignment.strategy"], "cooperative-sticky");
        assert_eq!(s["auto.offset.reset"], "earliest");
        assert_eq!(s["group.id"], "g");
        assert_eq!(s["bootstrap.servers"], "127.0.0.1:9092");
    }

    #[test]
    fn settings_accept_numbers_and_booleans_and_refuse_unknown_fields() {
        let k: KafkaConfig = serde_json::from_value(serde_json::json!({
            "name": "k", "brokers": "b:1", "topics": ["t"], "group_id": "g",
            "settings": { "session.timeout.ms": 30000, "socket.keepalive.enable": true }
        }))
        .unwrap();
        assert_eq!(k.settings["session.timeout.ms"], "30000");
        assert_eq!(k.settings["socket.keepalive.enable"], "true");
        let err = serde_json::from_value::<KafkaConfig>(serde_json::json!({
            "name": "k", "brokers": "b:1", "topics": ["t"], "group_id": "g", "topic": "x"
        }))
        .unwrap_err();
        assert!(err.to_string().contains("unknown field"), "{err}");
    }

    #[test]
    fn internally_tagged_enum_keeps_deny_unknown_fields() {
        #[derive(Debug, Deserialize)]
        #[serde(tag = "type", rename_all = "lowercase")]
        #[allow(dead_code)]
        enum Src {
            Kafka(KafkaConfig),
            Eventhub(EventHubConfig),
        }
        let ok: Src = serde_json::from_value(serde_json::json!({
            "type": "eventhub", "name": "eh", "namespace": "contoso-soc",
            "hubs": ["h"], "connection_string": { "file": "/run/secrets/eh" }
        }))
        .unwrap();
        assert!(matches!(ok, Src::Eventhub(ref e) if e.consumer_group == "$Default"));
        let bad = serde_json::from_value::<Src>(serde_json::json!({
            "type": "kafka", "name": "k", "brokers": "b:1", "topics": ["t"], "group_id": "g",
            "batch_size": 3
        }));
        assert!(bad.is_err());
    }

    #[test]
    fn every_problem_is_listed_with_its_path() {
        let mut k = kafka();
        k.name = String::new();
        k.brokers = "http://x".into();
        k.topics = vec!["ok".into(), "bad topic".into(), "ok".into()];
        k.group_id = " ".into();
        k.batch_max = 0;
        k.batch_wait_ms = 0;
        k.drain_timeout_secs = 50;
        k.tenant = Some("nope".into());
        k.dead_letter_topic = Some("ok".into());
        for (key, v) in [
            ("enable.auto.offset.store", "true"),
            ("enable.auto.commit", "true"),
            ("partition.assignment.strategy", "range"),
            ("sasl.password", "hunter2"),
            ("group.id", "x"),
            ("statistics.interval.ms", "0"),
        ] {
            k.settings.insert(key.into(), v.into());
        }
        let problems = k.validate("sources[3]");
        let expect = [
            "sources[3].name:",
            "sources[3].brokers:",
            "sources[3].topics[1]:",
            "sources[3].topics[2]: `ok` is listed twice",
            "sources[3].group_id:",
            "sources[3].batch_max:",
            "sources[3].batch_wait_ms:",
            "sources[3].drain_timeout_secs: 50s must stay below session.timeout.ms",
            "sources[3].tenant:",
            "sources[3].dead_letter_topic: `ok` is also read",
            "sources[3].settings.\"enable.auto.offset.store\":",
            "sources[3].settings.\"enable.auto.commit\":",
            "sources[3].settings.\"partition.assignment.strategy\":",
            "sources[3].settings.\"sasl.password\": a secret",
            "sources[3].settings.\"group.id\":",
            "sources[3].settings.\"statistics.interval.ms\":",
        ];
        for e in expect {
            assert!(
                problems.iter().any(|p| p.starts_with(e)),
                "missing {e} in {problems:#?}"
            );
        }
        assert!(
            !problems.iter().any(|p| p.contains("hunter2")),
            "a secret value reached a message"
        );
    }

    #[test]
    fn event_hub_expands_to_the_recipe() {
        let h = hub();
        assert!(h.validate("sources[1]").is_empty(), "{:?}", h.validate("s"));
        let k = h.expand();
        assert_eq!(k.brokers, "contoso-soc.servicebus.windows.net:9093");
        assert_eq!(k.group_id, "$Default");
        assert_eq!(k.topics, vec!["insights-logs-signinlogs".to_owned()]);
        let s = k.consumer_settings();
        for (key, v) in [
            ("security.protocol", "SASL_SSL"),
            ("sasl.mechanisms", "PLAIN"),
            ("sasl.username", "$ConnectionString"),
            ("session.timeout.ms", "30000"),
            ("metadata.max.age.ms", "180000"),
            ("connections.max.idle.ms", "180000"),
            ("enable.auto.commit", "false"),
            ("partition.assignment.strategy", "cooperative-sticky"),
            ("auto.offset.reset", "earliest"),
        ] {
            assert_eq!(s.get(key).map(String::as_str), Some(v), "{key}");
        }
        assert!(!s.contains_key("request.timeout.ms"), "a producer property");
        let p = k.producer_settings();
        assert_eq!(p["request.timeout.ms"], "60000");
        assert!(!p.contains_key("group.id") && !p.contains_key("session.timeout.ms"));
        assert_eq!(
            k.secret_settings["sasl.password"],
            SecretRef {
                env: Some("EH_CONN".into()),
                file: None
            }
        );
        let mut fq = hub();
        fq.namespace = "contoso-soc.servicebus.usgovcloudapi.net".into();
        assert_eq!(
            fq.bootstrap(),
            "contoso-soc.servicebus.usgovcloudapi.net:9093"
        );
    }

    #[test]
    fn event_hub_problems() {
        let mut h = hub();
        h.namespace = "sb://contoso-soc.servicebus.windows.net/".into();
        h.hubs.clear();
        h.connection_string = SecretRef {
            env: None,
            file: None,
        };
        h.settings.insert("sasl.username".into(), "me".into());
        h.settings
            .insert("session.timeout.ms".into(), "5000".into());
        let p = h.validate("sources[2]");
        for e in [
            "sources[2].namespace:",
            "sources[2].hubs:",
            "sources[2].connection_string:",
            "sources[2].settings.\"sasl.username\":",
            "sources[2].settings.\"session.timeout.ms\": Event Hubs allows",
        ] {
            assert!(p.iter().any(|x| x.starts_with(e)), "missing {e} in {p:#?}");
        }
    }

    #[test]
    fn connection_string_checks_never_print_the_key() {
        let h = hub();
        let good = Secret::new(
            "Endpoint=sb://contoso-soc.servicebus.windows.net/;SharedAccessKeyName=listen;SharedAccessKey=c2VjcmV0a2V5",
        );
        assert!(h.check_connection_string(&good, "s").is_empty());
        let scoped = Secret::new(
            "Endpoint=sb://contoso-soc.servicebus.windows.net/;SharedAccessKeyName=listen;SharedAccessKey=c2VjcmV0a2V5;EntityPath=insights-logs-auditlogs",
        );
        let p = h.check_connection_string(&scoped, "s");
        assert!(p.len() == 1 && p[0].contains("EntityPath"), "{p:?}");
        let other = Secret::new(
            "Endpoint=sb://fabrikam.servicebus.windows.net/;SharedAccessKeyName=l;SharedAccessKey=c2VjcmV0a2V5",
        );
        let p = h.check_connection_string(&other, "s");
        assert!(p.len() == 1 && p[0].contains("fabrikam"), "{p:?}");
        let sas = Secret::new("SharedAccessSignature sr=x&sig=c2VjcmV0a2V5&se=1&skn=l");
        let p = h.check_connection_string(&sas, "s");
        assert!(p.len() == 1 && p[0].contains("SAS token"), "{p:?}");
        for p in [good, scoped, other, sas]
            .iter()
            .flat_map(|s| h.check_connection_string(s, "s"))
        {
            assert!(!p.contains("c2VjcmV0a2V5"), "{p}");
        }
    }
}
