//! Episodes: a repeat of the same rule for the same principal inside the suppression window updates
//! the open alert instead of raising a new one. Time is event time, so a replay groups exactly as the
//! live stream did.

use std::collections::HashMap;

use chrono::Duration;
use entrawatch_detect::{Finding, PrincipalKind};
use serde_json::{Map, Value};

use crate::record::AlertRecord;

/// How many evidence ids an alert keeps (the first ones, which opened it, and then the latest).
pub const MAX_EVENT_IDS: usize = 50;
/// How many items an alert keeps of a growing evidence list (see [`merge_evidence`]).
pub const MAX_EVIDENCE_ITEMS: usize = 50;
/// Default suppression window: repeats closer than this to the last one join the episode.
pub const DEFAULT_WINDOW_HOURS: i64 = 24;

/// What adding a finding did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Update {
    /// A new alert, at this index of [`Episodes::alerts`].
    Opened(usize),
    /// An existing alert moved (`count`, `last_seen`, `event_ids`, growing evidence lists, maybe
    /// `severity`).
    Updated(usize),
}

type EpisodeKey = (String, String, PrincipalKind, String);

/// All alerts raised so far, and the open episode of each (rule, tenant, principal).
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct Episodes {
    /// Not part of a snapshot: it comes from the config in force.
    #[serde(skip, default = "default_window")]
    window: Duration,
    #[serde(with = "pairs")]
    open: HashMap<EpisodeKey, usize>,
    alerts: Vec<AlertRecord>,
}

/// A map with tuple keys as a list of pairs (JSON object keys must be strings).
mod pairs {
    use std::collections::HashMap;
    use std::hash::Hash;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<K: Serialize, V: Serialize, S: Serializer>(
        map: &HashMap<K, V>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.collect_seq(map.iter())
    }

    pub fn deserialize<'de, K, V, D>(d: D) -> Result<HashMap<K, V>, D::Error>
    where
        K: Deserialize<'de> + Eq + Hash,
        V: Deserialize<'de>,
        D: Deserializer<'de>,
    {
        Ok(Vec::<(K, V)>::deserialize(d)?.into_iter().collect())
    }
}

fn default_window() -> Duration {
    Duration::hours(DEFAULT_WINDOW_HOURS)
}

impl Default for Episodes {
    fn default() -> Self {
        Episodes::new(Duration::hours(DEFAULT_WINDOW_HOURS))
    }
}

/// Folds a later finding's growing evidence into its alert's. A growing list is an array `K` that
/// the finding gives together with a number `K_total` (the true count, e.g. `password-spray`'s
/// `targeted_accounts` and `targeted_accounts_total`): the alert's `K` becomes the union, in order
/// of first appearance and capped at [`MAX_EVIDENCE_ITEMS`], and its `K_total` the larger of the
/// two. Every other evidence key stays as the opening finding gave it. The order depends only on
/// the order of the findings, so a replay of the same input writes the same alert.
pub fn merge_evidence(alert: &mut Map<String, Value>, finding: &Map<String, Value>) {
    for (key, items) in finding {
        let Value::Array(items) = items else {
            continue;
        };
        let total_key = format!("{key}_total");
        let Some(total) = finding.get(&total_key).and_then(Value::as_u64) else {
            continue;
        };
        let list = alert
            .entry(key.clone())
            .or_insert_with(|| Value::Array(Vec::new()));
        if let Value::Array(list) = list {
            for item in items {
                if list.len() >= MAX_EVIDENCE_ITEMS {
                    break;
                }
                if !list.contains(item) {
                    list.push(item.clone());
                }
            }
        }
        let kept = alert.get(&total_key).and_then(Value::as_u64).unwrap_or(0);
        alert.insert(total_key, Value::from(kept.max(total)));
    }
}

impl Episodes {
    pub fn new(window: Duration) -> Episodes {
        Episodes {
            window,
            open: HashMap::new(),
            alerts: Vec::new(),
        }
    }

    /// Folds one finding in.
    pub fn add(&mut self, finding: Finding) -> Update {
        let key = (
            finding.rule.to_owned(),
            finding.tenant_id.clone(),
            finding.principal.kind,
            finding.principal.id.clone(),
        );
        if let Some(&index) = self.open.get(&key) {
            let alert = &mut self.alerts[index];
            if finding.time - alert.last_seen <= self.window {
                alert.count += 1;
                alert.last_seen = alert.last_seen.max(finding.time);
                if finding.severity > alert.severity {
                    alert.severity = finding.severity;
                    alert.title = finding.title;
                    alert.summary = finding.summary;
                }
                for id in finding.event_ids {
                    if alert.event_ids.len() < MAX_EVENT_IDS && !alert.event_ids.contains(&id) {
                        alert.event_ids.push(id);
                    }
                }
                merge_evidence(&mut alert.evidence, &finding.evidence);
                return Update::Updated(index);
            }
        }
        let index = self.alerts.len();
        self.alerts.push(AlertRecord::open(finding));
        self.open.insert(key, index);
        Update::Opened(index)
    }

    /// Changes the suppression window (a restored snapshot takes the config's).
    pub fn set_window(&mut self, window: Duration) {
        self.window = window;
    }

    pub fn alerts(&self) -> &[AlertRecord] {
        &self.alerts
    }

    pub fn into_alerts(self) -> Vec<AlertRecord> {
        self.alerts
    }

    /// Forgets alerts whose episode closed before `now` (no repeat within the window since their
    /// last evidence), so a long-running service keeps only open episodes; returns their ids.
    /// Indices from earlier [`Update`]s are invalid afterwards.
    pub fn evict_closed(&mut self, now: chrono::DateTime<chrono::Utc>) -> Vec<String> {
        let mut new_index = vec![None; self.alerts.len()];
        let mut keep = Vec::new();
        let mut gone = Vec::new();
        for (old, alert) in std::mem::take(&mut self.alerts).into_iter().enumerate() {
            if now - alert.last_seen <= self.window {
                new_index[old] = Some(keep.len());
                keep.push(alert);
            } else {
                gone.push(alert.id);
            }
        }
        self.open
            .retain(|_, index| match new_index.get(*index).copied().flatten() {
                Some(i) => {
                    *index = i;
                    true
                }
                None => false,
            });
        self.alerts = keep;
        gone
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};
    use entrawatch_detect::{Principal, Severity};
    use serde_json::json;

    fn finding(user: &str, minute: i64, severity: Severity, event: &str) -> Finding {
        Finding {
            rule: "mfa-not-satisfied",
            severity,
            tenant_id: "t".into(),
            principal: Principal {
                kind: PrincipalKind::User,
                id: user.into(),
                upn: None,
                home_tenant_id: None,
            },
            time: Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap() + Duration::minutes(minute),
            event_ids: vec![event.into()],
            title: format!("{severity:?}"),
            summary: String::new(),
            evidence: Map::new(),
            mitre: &["T1078.004"],
            ip: None,
        }
    }

    #[test]
    fn repeats_inside_the_window_update_one_alert() {
        let mut e = Episodes::default();
        assert_eq!(
            e.add(finding("a", 0, Severity::Medium, "e1")),
            Update::Opened(0)
        );
        assert_eq!(
            e.add(finding("a", 60, Severity::High, "e2")),
            Update::Updated(0)
        );
        assert_eq!(
            e.add(finding("b", 61, Severity::Medium, "e3")),
            Update::Opened(1)
        );
        // 25 hours after the last repeat: a new episode with a new id.
        assert_eq!(
            e.add(finding("a", 60 + 25 * 60, Severity::Medium, "e4")),
            Update::Opened(2)
        );
        let a = &e.alerts()[0];
        assert_eq!(a.count, 2);
        assert_eq!(a.severity, Severity::High);
        assert_eq!(a.event_ids, vec!["e1", "e2"]);
        assert_eq!(a.last_seen - a.first_seen, Duration::minutes(60));
        assert_ne!(e.alerts()[0].id, e.alerts()[2].id);
    }

    #[test]
    fn closed_episodes_are_forgotten_and_open_ones_keep_growing() {
        let mut e = Episodes::default();
        e.add(finding("a", 0, Severity::Medium, "e1"));
        e.add(finding("b", 600, Severity::Medium, "e2"));
        let t0 = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let gone = e.evict_closed(t0 + Duration::hours(24) + Duration::minutes(1));
        assert_eq!(gone.len(), 1);
        assert_eq!(e.alerts().len(), 1);
        assert_eq!(
            e.add(finding("b", 700, Severity::Medium, "e3")),
            Update::Updated(0)
        );
        assert_eq!(e.alerts()[0].count, 2);
        assert_eq!(
            e.add(finding("a", 1500, Severity::Medium, "e4")),
            Update::Opened(1)
        );
    }

    #[test]
    fn a_json_round_trip_keeps_open_episodes_open() {
        let mut e = Episodes::default();
        e.add(finding("a", 0, Severity::Medium, "e1"));
        e.add(finding("b", 5, Severity::Medium, "e2"));
        let text = serde_json::to_string(&e).unwrap();
        let mut back: Episodes = serde_json::from_str(&text).unwrap();
        assert_eq!(back.alerts(), e.alerts());
        assert_eq!(
            back.add(finding("a", 10, Severity::High, "e3")),
            Update::Updated(0)
        );
    }

    /// A `password-spray`-shaped finding: its accounts, with the spray's true count.
    fn spray(minute: i64, event: &str, accounts: &[&str], total: u64) -> Finding {
        let mut f = finding("203.0.113.9", minute, Severity::Medium, event);
        f.rule = "password-spray";
        f.principal.kind = PrincipalKind::Ip;
        f.evidence.insert("report".into(), json!(event));
        f.evidence
            .insert("targeted_accounts".into(), json!(accounts));
        f.evidence
            .insert("targeted_accounts_total".into(), json!(total));
        f
    }

    #[test]
    fn a_growing_spray_keeps_its_id_and_notifies_once() {
        let opening = spray(0, "e10", &["u1", "u2"], 10);
        let id = AlertRecord::open(opening.clone()).id;
        let mut e = Episodes::default();
        let mut o = crate::occasions::Occasions::new(Duration::hours(4));
        let mut notices = Vec::new();
        let mut add = |e: &mut Episodes, f: Finding| {
            let (Update::Opened(i) | Update::Updated(i)) = e.add(f);
            notices.extend(o.on_update(&e.alerts()[i]));
        };
        add(&mut e, opening);
        for k in 11..=40 {
            add(
                &mut e,
                spray(k, &format!("e{k}"), &[&format!("u{k}")], k as u64),
            );
        }
        assert_eq!(notices, vec![(crate::notify::Kind::First, 0)]);
        let a = &e.alerts()[0];
        assert_eq!((e.alerts().len(), a.id.as_str()), (1, id.as_str()));
        assert_eq!(a.count, 31);
        assert_eq!(a.evidence["targeted_accounts_total"], json!(40));
        assert_eq!(
            a.evidence["targeted_accounts"].as_array().unwrap().len(),
            32
        );
    }

    #[test]
    fn growing_evidence_lists_merge_capped_and_in_order() {
        let mut e = Episodes::default();
        e.add(spray(0, "e1", &["a", "b"], 2));
        e.add(spray(1, "e2", &["c"], 3));
        // A repeat of a known account, with an older total (out of order): nothing moves back.
        e.add(spray(2, "e3", &["b"], 2));
        for k in 0..60u64 {
            e.add(spray(
                3 + k as i64,
                &format!("x{k}"),
                &[&format!("u{k}")],
                4 + k,
            ));
        }
        let a = &e.alerts()[0];
        assert_eq!(e.alerts().len(), 1);
        assert_eq!(a.count, 63);
        let names = a.evidence["targeted_accounts"].as_array().unwrap();
        assert_eq!(names.len(), MAX_EVIDENCE_ITEMS);
        assert_eq!(
            names[..4],
            [json!("a"), json!("b"), json!("c"), json!("u0")]
        );
        assert_eq!(a.evidence["targeted_accounts_total"], json!(63));
        // Other evidence stays the opening finding's.
        assert_eq!(a.evidence["report"], json!("e1"));
        assert_eq!(a.event_ids.len(), MAX_EVENT_IDS);
        assert_eq!(a.event_ids[..3], ["e1", "e2", "e3"]);
    }

    #[test]
    fn evidence_without_a_total_is_not_merged() {
        let mut one = finding("a", 0, Severity::Medium, "e1");
        one.evidence.insert("countries".into(), json!(["NL"]));
        let mut two = finding("a", 1, Severity::Medium, "e2");
        two.evidence.insert("countries".into(), json!(["DE"]));
        let mut e = Episodes::default();
        e.add(one);
        e.add(two);
        assert_eq!(e.alerts()[0].evidence["countries"], json!(["NL"]));
    }

    #[test]
    fn ids_are_deterministic() {
        let one = AlertRecord::open(finding("a", 0, Severity::Medium, "e1"));
        let two = AlertRecord::open(finding("a", 0, Severity::Medium, "e1"));
        let other = AlertRecord::open(finding("a", 0, Severity::Medium, "e9"));
        assert_eq!(one.id, two.id);
        assert_ne!(one.id, other.id);
        assert!(
            one.id.starts_with("ew-") && one.id.len() == 19,
            "{}",
            one.id
        );
    }
}
