//! The Event Hub short form of the Kafka source (`[[sources]] type = "eventhub"`): namespace, hubs,
//! consumer group and a connection string from a secret, expanded into a [`KafkaConfig`] with the
//! Kafka-endpoint recipe of docs/formats.md §6 (SASL_SSL, PLAIN, `$ConnectionString`, the recommended
//! timeouts).
//!
//! What comes in: the config table, later the resolved connection string. What goes out: the
//! expanded `KafkaConfig`, and every problem with its config path; checks of the connection string
//! name fields and hosts, never the key.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

use super::config::{
    KafkaConfig, common_checks, default_batch_max, default_batch_wait_ms, default_consumer_group,
    default_drain_timeout_secs, parse_ms, settings_map,
};
use crate::secret::{Secret, SecretRef};

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

/// The Event Hubs Kafka-endpoint recipe (docs/formats.md §6); `settings` may override all but the
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

    /// The equivalent plain Kafka config: the docs/formats.md §6 recipe, then `settings` on top, the
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

    fn hub() -> EventHubConfig {
        serde_json::from_value(serde_json::json!({
            "name": "eh", "namespace": "contoso-soc", "hubs": ["insights-logs-signinlogs"],
            "connection_string": { "env": "EH_CONN" }
        }))
        .unwrap()
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
