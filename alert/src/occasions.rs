//! Occasions: which alert updates notify. An alert notifies when it opens (`first`), when its
//! severity rises (`escalation`), and with a `reminder` once the reminder interval of event time has
//! passed since its last notice while evidence keeps coming. Everything else only updates the alert.
//! Decisions use event time only, so a replay after a restart takes the same decisions and the
//! notifications get the same ids.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use entrawatch_detect::Severity;
use serde::{Deserialize, Serialize};

use crate::notify::Kind;
use crate::record::AlertRecord;

/// Default reminder interval (docs/alerting.md §5.2).
pub const DEFAULT_REMINDER_HOURS: i64 = 4;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Notice {
    seq: u32,
    at: DateTime<Utc>,
    severity: Severity,
}

/// The last notice of every open alert.
#[derive(Debug, Serialize, Deserialize)]
pub struct Occasions {
    /// Not part of a snapshot: it comes from the config in force.
    #[serde(skip, default = "default_reminder")]
    reminder: Duration,
    notices: HashMap<String, Notice>,
}

fn default_reminder() -> Duration {
    Duration::hours(DEFAULT_REMINDER_HOURS)
}

impl Occasions {
    /// Changes the reminder interval (a restored snapshot takes the config's).
    pub fn set_reminder(&mut self, reminder: Duration) {
        self.reminder = reminder;
    }

    pub fn new(reminder: Duration) -> Occasions {
        Occasions {
            reminder,
            notices: HashMap::new(),
        }
    }

    /// Whether this state of `alert` notifies, and with which kind and sequence number.
    pub fn on_update(&mut self, alert: &AlertRecord) -> Option<(Kind, u32)> {
        let Some(last) = self.notices.get_mut(&alert.id) else {
            self.notices.insert(
                alert.id.clone(),
                Notice {
                    seq: 0,
                    at: alert.last_seen,
                    severity: alert.severity,
                },
            );
            return Some((Kind::First, 0));
        };
        let kind = if alert.severity > last.severity {
            Kind::Escalation
        } else if alert.last_seen - last.at >= self.reminder {
            Kind::Reminder
        } else {
            return None;
        };
        last.seq += 1;
        last.at = alert.last_seen;
        last.severity = last.severity.max(alert.severity);
        Some((kind, last.seq))
    }

    /// Forgets alerts whose episodes closed.
    pub fn forget(&mut self, ids: &[String]) {
        for id in ids {
            self.notices.remove(id);
        }
    }

    pub fn len(&self) -> usize {
        self.notices.len()
    }

    pub fn is_empty(&self) -> bool {
        self.notices.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use entrawatch_detect::{Principal, PrincipalKind};

    fn alert(minute: i64, severity: Severity) -> AlertRecord {
        let t0 = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        AlertRecord {
            id: "ew-1".into(),
            rule: "brute-force".into(),
            severity,
            tenant_id: "t".into(),
            tenant_name: None,
            principal: Principal {
                kind: PrincipalKind::User,
                id: "u".into(),
                upn: None,
                home_tenant_id: None,
            },
            title: String::new(),
            summary: String::new(),
            first_seen: t0,
            last_seen: t0 + Duration::minutes(minute),
            count: 1,
            event_ids: Vec::new(),
            evidence: serde_json::Map::new(),
            mitre: Vec::new(),
        }
    }

    #[test]
    fn first_escalation_and_reminders_only() {
        let mut o = Occasions::new(Duration::hours(4));
        assert_eq!(
            o.on_update(&alert(0, Severity::Medium)),
            Some((Kind::First, 0))
        );
        assert_eq!(o.on_update(&alert(10, Severity::Medium)), None);
        assert_eq!(
            o.on_update(&alert(20, Severity::High)),
            Some((Kind::Escalation, 1))
        );
        // Falling back does not notify.
        assert_eq!(o.on_update(&alert(30, Severity::Medium)), None);
        assert_eq!(o.on_update(&alert(20 + 239, Severity::High)), None);
        assert_eq!(
            o.on_update(&alert(20 + 240, Severity::High)),
            Some((Kind::Reminder, 2))
        );
        o.forget(&["ew-1".to_owned()]);
        assert!(o.is_empty());
    }
}
