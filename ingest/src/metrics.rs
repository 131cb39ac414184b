//! Ingest metrics, registered into the registry the binary passes in. Labels are bounded: source
//! names and tenants come from config, streams and statuses are fixed sets; never a user, IP or
//! record id.

use prometheus::{IntCounterVec, IntGaugeVec, Opts, Registry};

/// Counters every source shares (cheap to clone: the vectors are reference-counted).
#[derive(Debug, Clone)]
pub struct SourceMetrics {
    /// `entrawatch_events_received_total{source,tenant,stream}`
    pub events_received: IntCounterVec,
    /// `entrawatch_records_rejected_total{source}`: records that could not be parsed (kept in the
    /// dead-letter file).
    pub records_rejected: IntCounterVec,
    /// `entrawatch_records_skipped_total{source}`: records of categories entrawatch does not read.
    pub records_skipped: IntCounterVec,
    /// `entrawatch_source_errors_total{source,reason}`: input a source was given and could not
    /// read, once per path (`unreadable`, `too-deep`).
    pub source_errors: IntCounterVec,
    /// `entrawatch_source_paths_skipped_total{source,reason}`: paths a file source's walk passed
    /// over without an error, once per path (`already-walked`, `fifo`, `socket`, `device`).
    pub paths_skipped: IntCounterVec,
    /// `entrawatch_source_requests_total{source,status}`: Graph requests / Kafka fetch errors by
    /// outcome (`ok`, `throttled`, `transient`, `unauthorized`, `invalid_client`, `no_consent`,
    /// `unavailable`, `error`); Graph token failures count under their class.
    pub requests: IntCounterVec,
    /// `entrawatch_source_stream_available{source,tenant,stream}`: 0 when a stream is unavailable
    /// for a tenant (licence), 1 otherwise.
    pub stream_available: IntGaugeVec,
    /// `entrawatch_source_watermark_lag_seconds{source,tenant,stream}`: now minus the Graph
    /// watermark.
    pub watermark_lag: IntGaugeVec,
    /// `entrawatch_kafka_consumer_lag{source,topic,partition}`: high watermark minus the committed
    /// (durable) offset.
    pub kafka_lag: IntGaugeVec,
    /// `entrawatch_kafka_committed_offset{source,topic,partition}`.
    pub kafka_committed: IntGaugeVec,
    /// `entrawatch_kafka_assigned_partitions{source}`: partitions this process holds.
    pub kafka_assigned: IntGaugeVec,
    /// `entrawatch_kafka_partitions{source}`: partitions the source's topics have.
    pub kafka_partitions: IntGaugeVec,
    /// `entrawatch_kafka_connected{source}`: 1 while at least one broker connection is up.
    pub kafka_connected: IntGaugeVec,
    /// `entrawatch_graph_tenants{source,origin}`: customer tenants a Graph source polls now, by
    /// how it knows them (`listed` in config, `discovered` through GDAP).
    pub graph_tenants: IntGaugeVec,
    /// `entrawatch_graph_discovery_ok{source}`: 1 when the last GDAP discovery listed the
    /// customers, 0 when it failed (the tenant set it had stays).
    pub graph_discovery_ok: IntGaugeVec,
}

impl SourceMetrics {
    /// Registers the ingest metrics in `registry`.
    pub fn register(registry: &Registry) -> prometheus::Result<SourceMetrics> {
        let m = SourceMetrics::unregistered();
        registry.register(Box::new(m.events_received.clone()))?;
        registry.register(Box::new(m.records_rejected.clone()))?;
        registry.register(Box::new(m.records_skipped.clone()))?;
        registry.register(Box::new(m.source_errors.clone()))?;
        registry.register(Box::new(m.paths_skipped.clone()))?;
        registry.register(Box::new(m.requests.clone()))?;
        registry.register(Box::new(m.stream_available.clone()))?;
        registry.register(Box::new(m.watermark_lag.clone()))?;
        registry.register(Box::new(m.kafka_lag.clone()))?;
        registry.register(Box::new(m.kafka_committed.clone()))?;
        registry.register(Box::new(m.kafka_assigned.clone()))?;
        registry.register(Box::new(m.kafka_partitions.clone()))?;
        registry.register(Box::new(m.kafka_connected.clone()))?;
        registry.register(Box::new(m.graph_tenants.clone()))?;
        registry.register(Box::new(m.graph_discovery_ok.clone()))?;
        Ok(m)
    }

    /// Creates the rejected-records counter of a configured source at 0: a counter that first
    /// appears with the first rejects shows Prometheus no increase, and they would go unalerted.
    pub fn start_source(&self, source: &str) {
        self.records_rejected.with_label_values(&[source]);
    }

    /// Counts a batch's items: events by tenant and stream (the event kind), rejects, skips.
    pub fn count_items(&self, source: &str, items: &[crate::reader::Item]) {
        use crate::reader::Item;
        for item in items {
            match item {
                Item::Event(e) => self
                    .events_received
                    .with_label_values(&[source, &e.meta.tenant_id, e.kind().as_str()])
                    .inc(),
                Item::Rejected(_) => self.records_rejected.with_label_values(&[source]).inc(),
                Item::Skipped { .. } => self.records_skipped.with_label_values(&[source]).inc(),
                Item::EmptyFile { .. } => {}
            }
        }
    }

    /// The same metrics, not registered anywhere (tests).
    pub fn unregistered() -> SourceMetrics {
        let counter = |name: &str, help: &str, labels: &[&str]| {
            IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric")
        };
        let gauge = |name: &str, help: &str, labels: &[&str]| {
            IntGaugeVec::new(Opts::new(name, help), labels).expect("valid metric")
        };
        SourceMetrics {
            events_received: counter(
                "entrawatch_events_received_total",
                "Events parsed from a source, by tenant and stream",
                &["source", "tenant", "stream"],
            ),
            records_rejected: counter(
                "entrawatch_records_rejected_total",
                "Records that could not be parsed (kept for inspection)",
                &["source"],
            ),
            records_skipped: counter(
                "entrawatch_records_skipped_total",
                "Records of log categories entrawatch does not read",
                &["source"],
            ),
            source_errors: counter(
                "entrawatch_source_errors_total",
                "Input a source was given and could not read (each path once), by reason",
                &["source", "reason"],
            ),
            paths_skipped: counter(
                "entrawatch_source_paths_skipped_total",
                "Paths a file source passed over without an error (each path once), by reason",
                &["source", "reason"],
            ),
            requests: counter(
                "entrawatch_source_requests_total",
                "Requests a source made, by outcome",
                &["source", "status"],
            ),
            stream_available: gauge(
                "entrawatch_source_stream_available",
                "Whether a stream can be read for a tenant (0 when its licence does not allow it)",
                &["source", "tenant", "stream"],
            ),
            watermark_lag: gauge(
                "entrawatch_source_watermark_lag_seconds",
                "Seconds between now and the durable watermark of a polled stream",
                &["source", "tenant", "stream"],
            ),
            kafka_lag: gauge(
                "entrawatch_kafka_consumer_lag",
                "Messages between a partition's high watermark and the durable committed offset",
                &["source", "topic", "partition"],
            ),
            kafka_committed: gauge(
                "entrawatch_kafka_committed_offset",
                "The offset committed for a partition (every earlier message is durable)",
                &["source", "topic", "partition"],
            ),
            kafka_assigned: gauge(
                "entrawatch_kafka_assigned_partitions",
                "Partitions of a Kafka source this process holds (a deployment is one consumer group member: fewer than entrawatch_kafka_partitions means another member took some)",
                &["source"],
            ),
            kafka_connected: gauge(
                "entrawatch_kafka_connected",
                "1 while a Kafka source has at least one broker connection up (from librdkafka's statistics; 0 when every broker is down)",
                &["source"],
            ),
            kafka_partitions: gauge(
                "entrawatch_kafka_partitions",
                "Partitions the topics of a Kafka source have",
                &["source"],
            ),
            graph_tenants: gauge(
                "entrawatch_graph_tenants",
                "Customer tenants a Graph source polls, by origin (listed in config, discovered through GDAP)",
                &["source", "origin"],
            ),
            graph_discovery_ok: gauge(
                "entrawatch_graph_discovery_ok",
                "1 when a Graph source's last GDAP customer discovery succeeded, 0 when it failed",
                &["source"],
            ),
        }
    }
}
