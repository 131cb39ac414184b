//! Tests of the Kafka and Event Hub config: defaults, forced settings, every problem with its
//! path, the Event Hub recipe and connection-string checks that never print the key.

use super::*;
use crate::sources::kafka::EventHubConfig;

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
