//! What a latency run reports: the figures ([`LatencyReport`] and its parts, serialised as the
//! `--json` document), nearest-rank quantiles of the probes' latencies, summaries of the service's
//! own histograms, and the table printed without `--json`.

use serde::Serialize;

use super::service::{Histogram, Settings};

/// Everything measured.
#[derive(Debug, Serialize)]
pub struct LatencyReport {
    pub version: &'static str,
    pub cores: usize,
    pub settings: Settings,
    pub warmup_seconds: f64,
    /// Wall time of the sustained phase as it ran.
    pub sustained_seconds: f64,
    pub load: Load,
    pub probes: Probes,
    /// Broker-confirmed arrival to the POST's arrival at the receiver, sustained-phase probes.
    pub latency_ms: Option<Quantiles>,
    /// The same from the producer's `send` call (adds the producer's own queueing).
    pub latency_from_send_ms: Option<Quantiles>,
    pub goal: Goal,
    pub service: ServiceFigures,
}

#[derive(Debug, Serialize)]
pub struct Load {
    pub rate_asked: u64,
    /// Background records produced in the sustained phase, and per second of it.
    pub records_produced: u64,
    pub records_per_second: f64,
    /// Every record produced (warm-up, sustained, probes included) and the Kafka messages.
    pub records_produced_total: u64,
    pub messages_produced: u64,
    pub average_record_bytes: u64,
    /// Background messages the broker did not accept.
    pub delivery_failures: u64,
    /// Times the producer's queue was full and the loop waited.
    pub queue_full_waits: u64,
}

#[derive(Debug, Serialize)]
pub struct Probes {
    /// Sustained phase.
    pub sent: u64,
    pub delivered: u64,
    /// Accepted by the broker, no POST within the drain wait.
    pub missing: u64,
    /// Not accepted by the broker.
    pub not_produced: u64,
    /// Further POSTs naming an already delivered probe.
    pub repeated_posts: u64,
    pub warmup_sent: u64,
    pub warmup_delivered: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Quantiles {
    pub samples: usize,
    pub mean: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

#[derive(Debug, Serialize)]
pub struct Goal {
    pub p99_below_ms: f64,
    /// p99 below the goal with no probe missing.
    pub met: bool,
}

#[derive(Debug, Default, Serialize)]
pub struct ServiceFigures {
    /// `entrawatch_pipeline_latency_seconds` over the sustained phase and drain: a batch's first
    /// record at the source to its outbox commit.
    pub pipeline: Option<HistogramSummary>,
    /// `entrawatch_notification_latency_seconds{destination}` over the same time: outbox commit
    /// to the receiver's 2xx.
    pub notification: Option<HistogramSummary>,
    /// Events through detection (`entrawatch_events_processed_total`) at the end: every record
    /// produced when nothing was lost.
    pub events_processed: u64,
    /// Alerts in webhook POSTs that are no probe's (background records should raise none).
    pub unexpected_alerts: u64,
    /// POSTs whose body was not a webhook envelope.
    pub unreadable_posts: u64,
    pub outbox_pending_end: f64,
    pub peak_rss_mb: Option<f64>,
    pub cpu_seconds: Option<f64>,
    pub log_errors: u64,
    pub log_warnings: u64,
    /// The exit code after SIGTERM (`None`: killed after the stop timeout, or by a signal).
    pub exit_code: Option<i32>,
    pub stop_seconds: f64,
}

/// A service histogram over the measured time.
#[derive(Debug, Clone, Serialize)]
pub struct HistogramSummary {
    pub observations: u64,
    pub mean_ms: f64,
    /// Estimates from the buckets, as Prometheus' `histogram_quantile` would give.
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    /// Share of observations at or below 250 ms (a bucket bound of both histograms).
    pub share_within_250ms: Option<f64>,
}

impl HistogramSummary {
    pub(super) fn of(h: &Histogram) -> Option<HistogramSummary> {
        (h.count > 0.0).then(|| HistogramSummary {
            observations: h.count as u64,
            mean_ms: h.sum / h.count * 1000.0,
            p50_ms: h.quantile(0.5).map(|s| s * 1000.0),
            p99_ms: h.quantile(0.99).map(|s| s * 1000.0),
            share_within_250ms: h.share_at_most(0.25),
        })
    }
}

/// Nearest-rank quantiles of `values`; `None` when empty.
pub(super) fn quantiles(mut values: Vec<f64>) -> Option<Quantiles> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let n = values.len();
    let at = |q: f64| values[((q * n as f64).ceil() as usize).clamp(1, n) - 1];
    Some(Quantiles {
        samples: n,
        mean: values.iter().sum::<f64>() / n as f64,
        p50: at(0.5),
        p90: at(0.9),
        p99: at(0.99),
        max: values[n - 1],
    })
}

pub(super) fn render(r: &LatencyReport) -> String {
    let s = &r.settings;
    let mut out = format!(
        "entrawatch bench --latency {} · {} cores · entrawatch run (child) ← Kafka mock broker \
         (in process, topic {} × {} partitions) → webhook receiver (in process), all on loopback\n",
        r.version, r.cores, s.topic, s.partitions
    );
    out += &format!(
        "settings: kafka batch_wait_ms {}{} · batch_max {} · fetch.wait.max.ms {} · route \
         group_wait_secs {} · webhook {}/s burst {} · snapshot every {} s · out_of_order_secs {}\n",
        s.batch_wait_ms,
        if s.batch_wait_is_default {
            " (the source's default)"
        } else {
            " (not the default)"
        },
        s.batch_max,
        s.fetch_wait_max_ms,
        s.group_wait_secs,
        s.webhook_rate_per_sec,
        s.webhook_burst,
        s.snapshot_interval_secs,
        s.out_of_order_secs,
    );
    let l = &r.load;
    out += &format!(
        "load: warm-up {:.0} s (not counted), sustained {:.1} s: {} records at {:.0}/s ({} asked), \
         {} records and {} messages in all, {} B per record, {} delivery failures, {} waits on a full queue\n",
        r.warmup_seconds,
        r.sustained_seconds,
        l.records_produced,
        l.records_per_second,
        l.rate_asked,
        l.records_produced_total,
        l.messages_produced,
        l.average_record_bytes,
        l.delivery_failures,
        l.queue_full_waits,
    );
    let p = &r.probes;
    out += &format!(
        "probes (sustained): {} sent · {} delivered · {} missing · {} not produced · {} repeated \
         POSTs · warm-up {} sent, {} delivered (not counted)\n",
        p.sent,
        p.delivered,
        p.missing,
        p.not_produced,
        p.repeated_posts,
        p.warmup_sent,
        p.warmup_delivered
    );
    let line = |name: &str, q: &Option<Quantiles>| match q {
        Some(q) => format!(
            "{name:<44} p50 {:>7.1} · p90 {:>7.1} · p99 {:>7.1} · max {:>7.1} · mean {:>7.1} (n = {})\n",
            q.p50, q.p90, q.p99, q.max, q.mean, q.samples
        ),
        None => format!("{name:<44} no samples\n"),
    };
    out += "\nlatency, ms\n";
    out += &line("broker-confirmed arrival → webhook POST", &r.latency_ms);
    out += &line("producer send → webhook POST", &r.latency_from_send_ms);
    out += &format!(
        "\ngoal: p99 < {:.0} ms from arrival at the source to the webhook POST, at sustained load: {}\n",
        r.goal.p99_below_ms,
        if r.goal.met { "met" } else { "NOT met" }
    );
    let sv = &r.service;
    out += "\nthe service's own histograms (sustained phase and drain; estimates from buckets)\n";
    let hist = |name: &str, h: &Option<HistogramSummary>| match h {
        Some(h) => format!(
            "{name:<44} {} observations · mean {:.1} ms · p50 ≈ {} · p99 ≈ {} · ≤ 250 ms: {}\n",
            h.observations,
            h.mean_ms,
            opt_ms(h.p50_ms),
            opt_ms(h.p99_ms),
            h.share_within_250ms
                .map_or("-".to_owned(), |x| format!("{:.1} %", x * 100.0)),
        ),
        None => format!("{name:<44} no observations\n"),
    };
    out += &hist("pipeline (batch's first record → commit)", &sv.pipeline);
    out += &hist("notification (commit → receiver's 2xx)", &sv.notification);
    out += &format!(
        "service: {} of {} records processed · {} unexpected alerts · {} unreadable POSTs · outbox \
         pending at end {} · peak RSS {} · CPU {} · log {} errors, {} warnings · exit {} after \
         SIGTERM in {:.1} s\n",
        sv.events_processed,
        r.load.records_produced_total,
        sv.unexpected_alerts,
        sv.unreadable_posts,
        sv.outbox_pending_end,
        sv.peak_rss_mb
            .map_or("-".to_owned(), |m| format!("{m:.0} MB")),
        sv.cpu_seconds.map_or("-".to_owned(), |c| format!(
            "{c:.1} s ({:.0} µs per record)",
            c * 1e6 / r.load.records_produced_total.max(1) as f64
        )),
        sv.log_errors,
        sv.log_warnings,
        sv.exit_code
            .map_or("none (killed)".to_owned(), |c| c.to_string()),
        sv.stop_seconds,
    );
    out
}

fn opt_ms(v: Option<f64>) -> String {
    v.map_or("-".to_owned(), |x| format!("{x:.1} ms"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_nearest_rank() {
        let q = quantiles((1..=100).map(f64::from).collect()).unwrap();
        assert_eq!((q.p50, q.p90, q.p99, q.max), (50.0, 90.0, 99.0, 100.0));
        assert_eq!(q.samples, 100);
        let one = quantiles(vec![7.0]).unwrap();
        assert_eq!((one.p50, one.p99, one.max), (7.0, 7.0, 7.0));
        assert!(quantiles(Vec::new()).is_none());
    }
}
