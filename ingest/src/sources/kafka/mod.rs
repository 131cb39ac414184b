//! The Kafka / Event Hub source: reads Entra diagnostic logs from Kafka topics (or Event Hubs
//! through their Kafka endpoint) with at-least-once delivery and contiguous offset commits.
//!
//! What comes in: a [`KafkaConfig`] (or an [`EventHubConfig`], expanded to one), then messages
//! whose values are Event Hub envelopes `{"records":[...]}` or bare records, parsed with the same
//! [`read_bytes`](crate::reader::read_bytes) as `replay`. What goes out: [`Batch`]es of events
//! whose `position` is `{"<topic>/<partition>": next_offset, ...}`, dead letters for what cannot be
//! parsed, offset commits, and the consumer-lag gauges.
//!
//! **Commit protocol** (docs/alerting.md §5.5). Per partition the source keeps a contiguous durable
//! watermark ([`tracker`]): an offset is committed only once it and every earlier offset of its
//! partition went into batches the runtime reported [`Committed`]. `enable.auto.commit` is off;
//! commits are explicit `TopicPartitionList`s, asynchronous about once a second and synchronous on
//! revoke and shutdown. Rebalancing is cooperative-sticky: on revoke the partition's unsent
//! messages are dropped, its in-flight batches are awaited (bounded by `drain_timeout_secs`, below
//! `session.timeout.ms`), its watermark is committed, and only then is the partition released;
//! reports that arrive later for it no longer count. A snapshot's position handed back in
//! `ctx.resume` is applied as the start offset of each partition's first assignment, even behind
//! the group's offset (replay; the runtime de-duplicates by record id).
//!
//! **Why a `BaseConsumer` on a dedicated thread** rather than a `StreamConsumer` in the task: the
//! revoke callback must *block* until in-flight batches are reported durable, and librdkafka runs
//! it inside `poll`. In an async task that would stall a runtime worker (or deadlock a
//! current-thread runtime, where the pipeline that sends the reports could never run). On its own
//! thread the callback can wait, and the loop polls without ever blocking on the pipeline: when
//! `ctx.out` is full it pauses the assigned partitions and keeps polling, so heartbeats,
//! rebalances and statistics are still served. The task only waits for the thread; dropping the
//! task (a kill) makes the thread leave at once without committing anything more.
//!
//! [`Batch`]: crate::source::Batch
//! [`Committed`]: crate::source::Committed

mod config;
mod context;
mod dead_letter;
mod event_hub;
mod run;
pub mod tracker;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use rdkafka::ClientConfig;
use rdkafka::config::RDKafkaLogLevel;

pub use config::{
    CONSUMER_DEFAULTS, DEFAULT_BATCH_MAX, DEFAULT_BATCH_WAIT_MS, DEFAULT_CONSUMER_GROUP,
    DEFAULT_DRAIN_TIMEOUT_SECS, FORCED_SETTINGS, KafkaConfig, SECRET_KEYS,
};
pub use dead_letter::MAX_RAW_BYTES;
pub use event_hub::{EVENT_HUB_RECIPE, EventHubConfig};

use crate::source::{Source, SourceContext, SourceError, SourceFuture};

/// Why a Kafka source cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum KafkaSourceError {
    /// Config problems, each with its path.
    #[error("{}", .0.join("\n"))]
    Invalid(Vec<String>),
    /// librdkafka refused a setting.
    #[error("source {name}: {message}")]
    Client { name: String, message: String },
}

impl KafkaSourceError {
    /// The problems one per line (for config reports that list every problem).
    pub fn problems(&self) -> Vec<String> {
        match self {
            KafkaSourceError::Invalid(p) => p.clone(),
            other => vec![other.to_string()],
        }
    }
}

/// A Kafka (or Event Hub) source, validated and with its secrets resolved; not connected until
/// [`Source::run`].
pub struct KafkaSource {
    kind: &'static str,
    prepared: run::Prepared,
}

impl std::fmt::Debug for KafkaSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaSource")
            .field("kind", &self.kind)
            .field("prepared", &self.prepared)
            .finish()
    }
}

impl KafkaSource {
    /// A `type = "kafka"` source; secrets come from the process environment or files.
    pub fn new(cfg: KafkaConfig) -> Result<KafkaSource, KafkaSourceError> {
        KafkaSource::with_env(cfg, &|n| std::env::var(n).ok())
    }

    /// [`KafkaSource::new`] with the environment passed in.
    pub fn with_env(
        cfg: KafkaConfig,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<KafkaSource, KafkaSourceError> {
        KafkaSource::build(cfg, "kafka", env)
    }

    /// A `type = "eventhub"` source: checks the connection string against the namespace and
    /// hubs, then builds the expanded Kafka source.
    pub fn from_event_hub(cfg: EventHubConfig) -> Result<KafkaSource, KafkaSourceError> {
        KafkaSource::from_event_hub_with_env(cfg, &|n| std::env::var(n).ok())
    }

    /// [`KafkaSource::from_event_hub`] with the environment passed in.
    pub fn from_event_hub_with_env(
        cfg: EventHubConfig,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<KafkaSource, KafkaSourceError> {
        let path = format!("source {}", cfg.name);
        let problems = cfg.validate(&path);
        if !problems.is_empty() {
            return Err(KafkaSourceError::Invalid(problems));
        }
        let secret = cfg
            .connection_string
            .resolve_with(&format!("{path}.connection_string"), env)
            .map_err(|e| KafkaSourceError::Invalid(vec![e]))?;
        let problems = cfg.check_connection_string(&secret, &path);
        if !problems.is_empty() {
            return Err(KafkaSourceError::Invalid(problems));
        }
        KafkaSource::build(cfg.expand(), "eventhub", env)
    }

    fn build(
        cfg: KafkaConfig,
        kind: &'static str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<KafkaSource, KafkaSourceError> {
        let path = format!("source {}", cfg.name);
        let problems = cfg.validate(&path);
        if !problems.is_empty() {
            return Err(KafkaSourceError::Invalid(problems));
        }
        let secrets = cfg
            .resolve_secrets(&path, env)
            .map_err(KafkaSourceError::Invalid)?;
        let client_error = |message: String| KafkaSourceError::Client {
            name: cfg.name.clone(),
            message,
        };
        let make = |settings: std::collections::BTreeMap<String, String>, what: &str| {
            let mut config = ClientConfig::new();
            config.set_log_level(RDKafkaLogLevel::Warning);
            for (k, v) in &settings {
                config.set(k, v);
            }
            // Plain settings first, so their errors can be shown as they are.
            config.create_native_config().map_err(|e| {
                client_error(format!("librdkafka refused the {what} settings: {e}"))
            })?;
            for (k, v) in &secrets {
                config.set(k, v.expose());
            }
            config.create_native_config().map_err(|_| {
                client_error(format!(
                    "librdkafka refused one of the secret settings {:?} of the {what} (value not shown)",
                    secrets.keys().collect::<Vec<_>>()
                ))
            })?;
            Ok::<_, KafkaSourceError>(config)
        };
        let consumer = make(cfg.consumer_settings(), "consumer")?;
        let producer = match cfg.dead_letter_topic {
            Some(_) => Some(make(cfg.producer_settings(), "dead-letter producer")?),
            None => None,
        };
        // Nothing is created here (`validate` builds sources too): the file and its folder are
        // made when the source starts. A path that can never be a file is refused now.
        if let Some(file) = &cfg.dead_letter_file
            && file.is_dir()
        {
            return Err(KafkaSourceError::Invalid(vec![format!(
                "{path}.dead_letter_file: {} is a folder, not a file",
                file.display()
            )]));
        }
        Ok(KafkaSource {
            kind,
            prepared: run::Prepared {
                config: cfg,
                consumer,
                producer,
            },
        })
    }

    /// The (expanded) config this source runs with.
    pub fn config(&self) -> &KafkaConfig {
        &self.prepared.config
    }

    /// `validate --online`: connects with the source's own settings and secrets and checks that
    /// the brokers answer, that every topic exists (with its partition count) and that the
    /// consumer group's offsets can be read. One line per check, `Err` for a failed one. Reads
    /// only: nothing is created or committed, and no group is joined.
    pub fn check_online(&self, timeout: std::time::Duration) -> Vec<Result<String, String>> {
        use rdkafka::consumer::{BaseConsumer, Consumer};
        let cfg = &self.prepared.config;
        let mut out = Vec::new();
        let consumer: BaseConsumer = match self.prepared.consumer.create() {
            Ok(c) => c,
            Err(e) => return vec![Err(format!("cannot create a client: {e}"))],
        };
        let metadata = match consumer.fetch_metadata(None, timeout) {
            Ok(m) => m,
            Err(e) => {
                return vec![Err(format!(
                    "brokers {}: cannot reach them in {} s ({e})",
                    cfg.brokers,
                    timeout.as_secs()
                ))];
            }
        };
        out.push(Ok(format!(
            "brokers {}: reachable ({} broker(s))",
            cfg.brokers,
            metadata.brokers().len()
        )));
        let mut partitions = rdkafka::TopicPartitionList::new();
        for topic in &cfg.topics {
            match metadata.topics().iter().find(|t| t.name() == topic) {
                Some(t) if t.error().is_none() && !t.partitions().is_empty() => {
                    for p in t.partitions() {
                        partitions.add_partition(topic, p.id());
                    }
                    out.push(Ok(format!(
                        "topic {topic}: {} partition(s)",
                        t.partitions().len()
                    )));
                }
                Some(t) => out.push(Err(format!(
                    "topic {topic}: {}",
                    t.error()
                        .map(|e| rdkafka::types::RDKafkaErrorCode::from(e).to_string())
                        .unwrap_or_else(|| "no partitions".to_owned())
                ))),
                None => out.push(Err(format!(
                    "topic {topic}: not found (an Event Hub creates insights-logs-* hubs only when the first record of that category arrives)"
                ))),
            }
        }
        if partitions.count() > 0 {
            match consumer.committed_offsets(partitions, timeout) {
                Ok(offsets) => {
                    let committed = offsets
                        .elements()
                        .iter()
                        .filter(|e| matches!(e.offset(), rdkafka::Offset::Offset(_)))
                        .count();
                    out.push(Ok(format!(
                        "group {}: offsets readable ({committed} of {} partition(s) committed)",
                        cfg.group_id,
                        offsets.count()
                    )));
                }
                Err(e) => out.push(Err(format!(
                    "group {}: cannot read its offsets ({e})",
                    cfg.group_id
                ))),
            }
        }
        out
    }
}

/// Tells the consumer thread to stop when the task's future is dropped.
struct AbortOnDrop(Arc<AtomicBool>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

impl Source for KafkaSource {
    fn kind(&self) -> &'static str {
        self.kind
    }

    fn run(self: Box<Self>, ctx: SourceContext) -> SourceFuture {
        Box::pin(async move {
            let name = ctx.name.to_string();
            let abort = Arc::new(AtomicBool::new(false));
            let guard = AbortOnDrop(abort.clone());
            let (tx, rx) = tokio::sync::oneshot::channel();
            let prepared = self.prepared;
            std::thread::Builder::new()
                .name(format!("kafka-{name}"))
                .spawn(move || {
                    let _ = tx.send(run::run(prepared, ctx, abort));
                })
                .map_err(|e| SourceError::Fatal {
                    source_name: name.clone(),
                    message: format!("cannot start the consumer thread: {e}"),
                })?;
            let result = rx.await.unwrap_or_else(|_| {
                Err(SourceError::Fatal {
                    source_name: name,
                    message: "the consumer thread stopped unexpectedly".into(),
                })
            });
            drop(guard);
            result
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_hub_source_builds_with_ssl_and_never_shows_the_secret() {
        let cfg: EventHubConfig = serde_json::from_value(serde_json::json!({
            "name": "eh", "namespace": "contoso-soc", "hubs": ["insights-logs-signinlogs"],
            "connection_string": { "env": "EH_CONN" }
        }))
        .unwrap();
        let conn = "Endpoint=sb://contoso-soc.servicebus.windows.net/;SharedAccessKeyName=listen;SharedAccessKey=c2VjcmV0a2V5";
        let env = |n: &str| (n == "EH_CONN").then(|| conn.to_owned());
        let src = KafkaSource::from_event_hub_with_env(cfg.clone(), &env).unwrap();
        assert_eq!(src.kind(), "eventhub");
        assert_eq!(
            src.config().brokers,
            "contoso-soc.servicebus.windows.net:9093"
        );
        assert!(!format!("{src:?}").contains("c2VjcmV0a2V5"));
        let err = KafkaSource::from_event_hub_with_env(cfg, &|_| None).unwrap_err();
        assert!(err.to_string().contains("EH_CONN"), "{err}");
    }

    #[test]
    fn librdkafka_refusals_are_reported() {
        let mut cfg: KafkaConfig = serde_json::from_value(serde_json::json!({
            "name": "k", "brokers": "127.0.0.1:9092", "topics": ["t"], "group_id": "g"
        }))
        .unwrap();
        cfg.settings.insert("no.such.property".into(), "1".into());
        let err = KafkaSource::new(cfg).unwrap_err();
        assert!(
            matches!(&err, KafkaSourceError::Client { message, .. } if message.contains("no.such.property")),
            "{err}"
        );
    }
}
