//! Delivery metrics, registered into the registry the binary passes in. Labels are bounded:
//! destination names come from config, kinds, outcomes, status classes and pause reasons are fixed
//! sets; never an alert, notification, user or URL.

use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry};

/// Latency buckets in seconds: sub-second for a healthy receiver up to the backoff cap and beyond.
const LATENCY_BUCKETS: [f64; 16] = [
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0, 3600.0,
];

/// Everything the delivery workers count (cheap to clone: the vectors are reference-counted).
#[derive(Debug, Clone)]
pub struct DeliveryMetrics {
    /// `entrawatch_notifications_total{destination,kind,outcome}`; outcome is `delivered`, `dead`,
    /// `rerouted`, `coalesced` (here) or `silenced` (counted by the runtime).
    pub notifications: IntCounterVec,
    /// `entrawatch_notification_attempts_total{destination,status_class}`; status_class is `2xx`,
    /// `429`, `4xx`, `5xx`, `timeout` or `network` (local sinks: `2xx` or `network` for an I/O error).
    pub attempts: IntCounterVec,
    /// `entrawatch_notification_latency_seconds{destination}`: outbox commit to receiver 2xx.
    pub latency: HistogramVec,
    /// `entrawatch_outbox_pending{destination}`: rows waiting or in flight.
    pub pending: IntGaugeVec,
    /// `entrawatch_outbox_oldest_pending_age_seconds{destination}`.
    pub oldest_pending_age: IntGaugeVec,
    /// `entrawatch_destination_paused{destination,reason}`; reason is `throttled` or `circuit_open`.
    pub paused: IntGaugeVec,
    /// `entrawatch_dead_letters_total{destination}`.
    pub dead_letters: IntCounterVec,
    /// `entrawatch_render_errors_total{destination}`: messages refused even in their minimal form.
    pub render_errors: IntCounterVec,
}

impl DeliveryMetrics {
    /// Registers the delivery metrics in `registry`.
    pub fn register(registry: &Registry) -> prometheus::Result<DeliveryMetrics> {
        let m = DeliveryMetrics::unregistered();
        registry.register(Box::new(m.notifications.clone()))?;
        registry.register(Box::new(m.attempts.clone()))?;
        registry.register(Box::new(m.latency.clone()))?;
        registry.register(Box::new(m.pending.clone()))?;
        registry.register(Box::new(m.oldest_pending_age.clone()))?;
        registry.register(Box::new(m.paused.clone()))?;
        registry.register(Box::new(m.dead_letters.clone()))?;
        registry.register(Box::new(m.render_errors.clone()))?;
        Ok(m)
    }

    /// Creates the error counters of a configured destination at 0 (render errors, dead letters):
    /// a counter that first appears at 1 shows Prometheus no increase, and the first error after a
    /// start would go unalerted.
    pub fn start_destination(&self, destination: &str) {
        self.render_errors.with_label_values(&[destination]);
        self.dead_letters.with_label_values(&[destination]);
    }

    /// The same metrics, not registered anywhere (tests).
    pub fn unregistered() -> DeliveryMetrics {
        let counter = |name: &str, help: &str, labels: &[&str]| {
            IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric")
        };
        let gauge = |name: &str, help: &str, labels: &[&str]| {
            IntGaugeVec::new(Opts::new(name, help), labels).expect("valid metric")
        };
        DeliveryMetrics {
            notifications: counter(
                "entrawatch_notifications_total",
                "Notifications by destination, kind and final outcome",
                &["destination", "kind", "outcome"],
            ),
            attempts: counter(
                "entrawatch_notification_attempts_total",
                "Send attempts (one per message) by destination and response class",
                &["destination", "status_class"],
            ),
            latency: HistogramVec::new(
                HistogramOpts::new(
                    "entrawatch_notification_latency_seconds",
                    "Seconds from outbox commit to the receiver's 2xx",
                )
                .buckets(LATENCY_BUCKETS.to_vec()),
                &["destination"],
            )
            .expect("valid metric"),
            pending: gauge(
                "entrawatch_outbox_pending",
                "Outbox rows waiting or in flight for a destination",
                &["destination"],
            ),
            oldest_pending_age: gauge(
                "entrawatch_outbox_oldest_pending_age_seconds",
                "Age of the oldest undelivered outbox row of a destination",
                &["destination"],
            ),
            paused: gauge(
                "entrawatch_destination_paused",
                "1 while a destination is paused (throttled by the receiver or circuit open)",
                &["destination", "reason"],
            ),
            dead_letters: counter(
                "entrawatch_dead_letters_total",
                "Notifications given up on (deadline passed or refused in minimal form)",
                &["destination"],
            ),
            render_errors: counter(
                "entrawatch_render_errors_total",
                "Messages the receiver refused as malformed even in their minimal form",
                &["destination"],
            ),
        }
    }

    /// The current value of `entrawatch_notifications_total` for one label set (tests, reports).
    pub fn notifications_count(&self, destination: &str, kind: &str, outcome: &str) -> u64 {
        self.notifications
            .with_label_values(&[destination, kind, outcome])
            .get()
    }

    /// The current value of `entrawatch_notification_attempts_total` for one label set.
    pub fn attempts_count(&self, destination: &str, status_class: &str) -> u64 {
        self.attempts
            .with_label_values(&[destination, status_class])
            .get()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registers_every_name_once() {
        let registry = Registry::new();
        let m = DeliveryMetrics::register(&registry).unwrap();
        m.notifications
            .with_label_values(&["teams", "first", "delivered"])
            .inc();
        m.attempts.with_label_values(&["teams", "2xx"]).inc();
        m.latency.with_label_values(&["teams"]).observe(0.2);
        m.pending.with_label_values(&["teams"]).set(0);
        m.oldest_pending_age.with_label_values(&["teams"]).set(0);
        m.paused.with_label_values(&["teams", "throttled"]).set(0);
        m.dead_letters.with_label_values(&["teams"]).inc();
        m.render_errors.with_label_values(&["teams"]).inc();
        let names: Vec<String> = registry
            .gather()
            .iter()
            .map(|f| f.name().to_owned())
            .collect();
        assert_eq!(names.len(), 8, "{names:?}");
        assert!(names.iter().all(|n| n.starts_with("entrawatch_")));
        assert!(DeliveryMetrics::register(&registry).is_err());
        assert_eq!(m.notifications_count("teams", "first", "delivered"), 1);
    }

    #[test]
    fn error_counters_of_a_destination_are_born_at_zero() {
        let registry = Registry::new();
        let m = DeliveryMetrics::register(&registry).unwrap();
        m.start_destination("slack-soc");
        let zero = |name: &str| {
            registry
                .gather()
                .iter()
                .find(|f| f.name() == name)
                .map(|f| {
                    let metric = &f.get_metric()[0];
                    (
                        metric.get_label()[0].value().to_owned(),
                        metric.get_counter().get_value(),
                    )
                })
        };
        assert_eq!(
            zero("entrawatch_render_errors_total"),
            Some(("slack-soc".to_owned(), 0.0))
        );
        assert_eq!(
            zero("entrawatch_dead_letters_total"),
            Some(("slack-soc".to_owned(), 0.0))
        );
    }
}
