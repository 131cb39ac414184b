//! Notifications: what the outbox stores and the delivery workers send.
//!
//! An alert (episode) notifies on three occasions only: when it opens (`first`), when its severity
//! rises (`escalation`), and as a `reminder` every reminder interval of event time while it stays
//! active. Each occasion becomes one [`Notification`] per destination its routes reach, with an id
//! derived from (alert id, destination, seq), so a replay or a restart regenerates the same ids and
//! the outbox's `INSERT OR IGNORE` drops the repeat.

use chrono::{DateTime, Utc};
use entrawatch_detect::Severity;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::record::AlertRecord;

/// Why a notification is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// The alert opened.
    First,
    /// Its severity rose.
    Escalation,
    /// Still active after the reminder interval: a digest of what happened since.
    Reminder,
    /// `send-test` and system alerts about entrawatch itself.
    Test,
    /// entrawatch's own health (a destination broken, dead letters).
    System,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::First => "first",
            Kind::Escalation => "escalation",
            Kind::Reminder => "reminder",
            Kind::Test => "test",
            Kind::System => "system",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        Some(match s {
            "first" => Kind::First,
            "escalation" => Kind::Escalation,
            "reminder" => Kind::Reminder,
            "test" => Kind::Test,
            "system" => Kind::System,
            _ => return None,
        })
    }
}

/// One (alert occasion, destination) pair: one outbox row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    /// `n-` + 16 hex of SHA-256(alert id, destination, seq): the outbox key and `Idempotency-Key`.
    pub id: String,
    pub alert_id: String,
    pub destination: String,
    pub kind: Kind,
    /// 0 for `first`, then one more per later occasion of the same alert.
    pub seq: u32,
    /// Notifications of one destination with the same group key are sent together in one message
    /// (the route's `group_by` labels, joined).
    pub group_key: String,
    /// The route's grouping timers, in seconds.
    pub group_wait_secs: u64,
    pub group_interval_secs: u64,
    /// Destinations to use when this one is broken (the route's fallback receiver).
    pub fallback: Vec<String>,
    pub severity: Severity,
    /// The alert as it stood at this occasion: what the message is rendered from.
    pub alert: AlertRecord,
    /// Event time of the occasion (latency is measured from here and from `created_at`).
    pub event_time: DateTime<Utc>,
    /// Wall-clock time the row was committed to the outbox.
    pub created_at: DateTime<Utc>,
}

/// The deterministic notification id.
pub fn notification_id(alert_id: &str, destination: &str, seq: u32) -> String {
    format!("n-{}", id_hash(&[alert_id, destination, &seq.to_string()]))
}

/// 16 hex digits of SHA-256 over `parts`, each followed by a NUL: the body of every deterministic
/// id (`n-` notifications, `ew-` system alerts), so a repeat after a crash makes the same id.
pub fn id_hash(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for part in parts {
        h.update(part.as_bytes());
        h.update([0u8]);
    }
    h.finalize()
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_deterministic_and_distinct() {
        let a = notification_id("ew-1", "teams", 0);
        assert_eq!(a, notification_id("ew-1", "teams", 0));
        assert_ne!(a, notification_id("ew-1", "teams", 1));
        assert_ne!(a, notification_id("ew-1", "slack", 0));
        assert!(a.starts_with("n-") && a.len() == 18);
    }
}
