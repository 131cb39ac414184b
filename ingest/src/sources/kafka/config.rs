//! Config of the Kafka source: [`KafkaConfig`] (`type = "kafka"`, any Kafka-protocol broker). The
//! Event Hub short form ([`super::EventHubConfig`], `type = "eventhub"`) expands into one.
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
/// Default longest wait before a partly filled batch is sent. Every event waits for the batches
/// of the other partitions to pass its time too (event-time alignment), so the wait counts about
/// twice in the latency: 10 ms keeps p99 from the broker to the webhook POST under 50 ms at
/// 2,000 records/s, for at most 100 batches (and outbox commits) a second
/// (docs/PERFORMANCE-RESULTS.md).
pub const DEFAULT_BATCH_WAIT_MS: u64 = 10;
/// Default bound on waiting for in-flight batches on revoke and shutdown.
pub const DEFAULT_DRAIN_TIMEOUT_SECS: u64 = 10;
/// The Kafka consumer group used on an Event Hub when none is configured.
pub const DEFAULT_CONSUMER_GROUP: &str = "$Default";
/// How often librdkafka reports statistics (the consumer-lag gauges), unless set.
pub const DEFAULT_STATISTICS_INTERVAL_MS: u64 = 5000;
/// librdkafka's own `session.timeout.ms` and `max.poll.interval.ms` defaults.
const LIBRDKAFKA_SESSION_TIMEOUT_MS: u64 = 45_000;
const LIBRDKAFKA_MAX_POLL_INTERVAL_MS: u64 = 300_000;

pub(super) fn default_batch_max() -> usize {
    DEFAULT_BATCH_MAX
}
pub(super) fn default_batch_wait_ms() -> u64 {
    DEFAULT_BATCH_WAIT_MS
}
pub(super) fn default_drain_timeout_secs() -> u64 {
    DEFAULT_DRAIN_TIMEOUT_SECS
}
pub(super) fn default_consumer_group() -> String {
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

/// Settings entrawatch always sets; user settings that contradict them are refused.
pub const FORCED_SETTINGS: [(&str, &str); 4] = [
    ("enable.auto.commit", "false"),
    ("enable.auto.offset.store", "false"),
    ("partition.assignment.strategy", "cooperative-sticky"),
    ("enable.partition.eof", "false"),
];

/// Consumer defaults `settings` may override: librdkafka 2.x waits up to a second
/// (`fetch.queue.backoff.ms`) after its local queue filled, which halves throughput of a consumer
/// doing real work (docs/performance.md §4); the prefetch queue is a memory budget, set explicitly.
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

/// TOML/JSON settings tables: strings, integers, floats and booleans, all kept as text.
pub(super) fn settings_map<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<String, String>, D::Error> {
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

pub(super) fn parse_ms(
    settings: &BTreeMap<String, String>,
    key: &str,
    default: u64,
) -> Option<u64> {
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

    pub(super) fn check_settings(&self, path: &str, out: &mut Vec<String>) {
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
pub(super) fn common_checks(
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::kafka::EventHubConfig;

    fn kafka() -> KafkaConfig {
        serde_json::from_value(serde_json::json!({
            "name": "k", "brokers": "127.0.0.1:9092", "topics": ["signins"], "group_id": "g"
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
}
