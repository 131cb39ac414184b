//! Runtime metrics: detection, pipeline latency, state size, snapshots, readiness and reloads.
//! Registered next to the ingest ([`entrawatch_ingest::metrics`]) and delivery
//! ([`entrawatch_alert::metrics`]) metrics in one registry that `/metrics` serves.

use entrawatch_detect::Engine;
use prometheus::{
    Gauge, GaugeVec, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry,
};

#[derive(Debug, Clone)]
pub struct RuntimeMetrics {
    pub events_processed: IntCounter,
    pub events_duplicate: IntCounter,
    pub findings: IntCounterVec,
    pub alerts: IntCounterVec,
    pub suppressed: IntCounterVec,
    pub pipeline_latency: Histogram,
    pub stream_last_event: GaugeVec,
    pub state_principals: IntGauge,
    pub state_bytes: IntGauge,
    pub snapshot_age: Gauge,
    pub snapshot_duration: Gauge,
    pub snapshot_bytes: IntGauge,
    pub reload_success: IntGauge,
    pub ready: IntGauge,
    pub build_info: IntGaugeVec,
    pub events_late: IntCounterVec,
    pub events_late_seconds: HistogramVec,
    pub aligner_buffered: IntGauge,
    pub aligner_forced: IntCounter,
    pub watermark: Gauge,
}

impl RuntimeMetrics {
    pub fn register(registry: &Registry) -> prometheus::Result<RuntimeMetrics> {
        let counter = |name: &str, help: &str| IntCounter::new(name, help);
        let counter_vec = |name: &str, help: &str, labels: &[&str]| {
            IntCounterVec::new(Opts::new(name, help), labels)
        };
        let m = RuntimeMetrics {
            events_processed: counter(
                "entrawatch_events_processed_total",
                "Events that went through detection",
            )?,
            events_duplicate: counter(
                "entrawatch_events_duplicate_total",
                "Events dropped as repeats of a record already processed",
            )?,
            findings: counter_vec(
                "entrawatch_findings_total",
                "Detector findings, by rule",
                &["rule"],
            )?,
            alerts: counter_vec(
                "entrawatch_alerts_total",
                "Alerts opened, by rule and severity",
                &["rule", "severity"],
            )?,
            suppressed: counter_vec(
                "entrawatch_alerts_suppressed_total",
                "Alert updates that did not notify, by reason",
                &["reason"],
            )?,
            pipeline_latency: Histogram::with_opts(
                HistogramOpts::new(
                    "entrawatch_pipeline_latency_seconds",
                    "Seconds from a batch's arrival at its source to its durable outbox commit",
                )
                .buckets(vec![
                    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
                ]),
            )?,
            stream_last_event: GaugeVec::new(
                Opts::new(
                    "entrawatch_stream_last_event_timestamp_seconds",
                    "Event time of the newest event seen, per tenant and stream",
                ),
                &["tenant", "stream"],
            )?,
            state_principals: IntGauge::new(
                "entrawatch_state_principals",
                "Principals with 30-day detection state",
            )?,
            state_bytes: IntGauge::new(
                "entrawatch_state_bytes",
                "Approximate bytes of detection state",
            )?,
            snapshot_age: Gauge::new(
                "entrawatch_snapshot_age_seconds",
                "Seconds since the last state snapshot was written",
            )?,
            snapshot_duration: Gauge::new(
                "entrawatch_snapshot_duration_seconds",
                "Seconds the last state snapshot took to write",
            )?,
            snapshot_bytes: IntGauge::new(
                "entrawatch_snapshot_bytes",
                "Size of the last state snapshot",
            )?,
            reload_success: IntGauge::new(
                "entrawatch_config_last_reload_success",
                "1 when the last configuration reload succeeded",
            )?,
            ready: IntGauge::new("entrawatch_ready", "1 when the service is ready")?,
            build_info: IntGaugeVec::new(
                Opts::new("entrawatch_build_info", "Build information"),
                &["version"],
            )?,
            events_late: counter_vec(
                "entrawatch_events_late_total",
                "Events that arrived older than the event-time watermark already released to detection (processed at once, out of order), by source and lane",
                &["source", "lane"],
            )?,
            events_late_seconds: HistogramVec::new(
                HistogramOpts::new(
                    "entrawatch_events_late_seconds",
                    "How far behind the released watermark late events were, in seconds of event time",
                )
                .buckets(vec![1.0, 10.0, 60.0, 300.0, 900.0, 3600.0, 4.0 * 3600.0, 24.0 * 3600.0]),
                &["source"],
            )?,
            aligner_buffered: IntGauge::new(
                "entrawatch_aligner_buffered_events",
                "Events held by the event-time aligner until no input can precede them",
            )?,
            aligner_forced: counter(
                "entrawatch_aligner_forced_releases_total",
                "Events released before their turn because the aligner's buffer was over its limit (align_buffer_events)",
            )?,
            watermark: Gauge::new(
                "entrawatch_event_time_watermark_seconds",
                "Event time below which every event has been released to detection",
            )?,
        };
        registry.register(Box::new(m.events_processed.clone()))?;
        registry.register(Box::new(m.events_duplicate.clone()))?;
        registry.register(Box::new(m.findings.clone()))?;
        registry.register(Box::new(m.alerts.clone()))?;
        registry.register(Box::new(m.suppressed.clone()))?;
        registry.register(Box::new(m.pipeline_latency.clone()))?;
        registry.register(Box::new(m.stream_last_event.clone()))?;
        registry.register(Box::new(m.state_principals.clone()))?;
        registry.register(Box::new(m.state_bytes.clone()))?;
        registry.register(Box::new(m.snapshot_age.clone()))?;
        registry.register(Box::new(m.snapshot_duration.clone()))?;
        registry.register(Box::new(m.snapshot_bytes.clone()))?;
        registry.register(Box::new(m.reload_success.clone()))?;
        registry.register(Box::new(m.ready.clone()))?;
        registry.register(Box::new(m.build_info.clone()))?;
        registry.register(Box::new(m.events_late.clone()))?;
        registry.register(Box::new(m.events_late_seconds.clone()))?;
        registry.register(Box::new(m.aligner_buffered.clone()))?;
        registry.register(Box::new(m.aligner_forced.clone()))?;
        registry.register(Box::new(m.watermark.clone()))?;
        m.build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION")])
            .set(1);
        m.reload_success.set(1);
        Ok(m)
    }

    /// State size gauges (cheap: counts, and an estimate computed from them).
    pub fn observe_state(&self, engine: &Engine) {
        let state = engine.state();
        self.state_principals.set(state.principals.len() as i64);
    }

    /// The full state-size estimate (walks the state; call at snapshot time).
    pub fn observe_state_bytes(&self, engine: &Engine) {
        self.state_bytes
            .set((engine.state().approx_bytes() + engine.extra_state().approx_bytes()) as i64);
    }
}
