//! Whether Graph still lets entrawatch read each stream of a tenant, and the [`Notice`]s that tell
//! the SOC when a tenant it could read stops answering and when it answers again.
//!
//! In: what the pollers found of each stream ([`Health`]: it answered, or it was refused for a
//! licence, a permission or the app's consent). Out: a notice when access is *lost*: a stream that
//! had answered (in this run, or in an earlier one the checkpoint remembers) is refused; and one
//! when every stream lost answers again. A stream refused from its first request (eligibility on a
//! P1 tenant, a tenant never consented) is what `validate --online`, the `stream_available` gauge
//! and the log report: it was never there to lose, so it makes no notice.
//!
//! One loss makes one notice, however many streams follow the first one down (a withdrawn consent
//! refuses every stream, a poll interval apart): the tenant is *lost* from the first refusal until
//! every stream refused since answers again. The state goes into the source's position
//! ([`TenantHealth::to_json`]), so a restart neither repeats a notice nor forgets a loss, and the
//! notice travels in the batch whose position first records it: both are committed together.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use crate::source::{AccessCause, AccessChange, StreamAccess};

/// What a poller found of one stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    /// It answered.
    Up,
    /// It was refused, for `cause`; `detail` is Graph's or Entra's code and message.
    Down { cause: AccessCause, detail: String },
}

/// One stream: whether it ever answered, and why it is refused now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Stream {
    worked: bool,
    down: Option<(AccessCause, String)>,
}

/// The access state of one tenant's streams.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TenantHealth {
    streams: BTreeMap<String, Stream>,
    /// Since when access is lost (wall clock), and the streams that had answered and are refused.
    lost: Option<(DateTime<Utc>, BTreeSet<String>)>,
}

/// What a report changed: the notice to send, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub change: AccessChange,
    pub since: DateTime<Utc>,
    pub streams: Vec<StreamAccess>,
}

impl TenantHealth {
    /// Records what a poller found of `stream` at `now`. Returns whether anything changed (the
    /// position must then be written) and the notice the change makes, if any.
    pub fn report(
        &mut self,
        stream: &str,
        health: Health,
        now: DateTime<Utc>,
    ) -> (bool, Option<Change>) {
        let entry = self.streams.entry(stream.to_owned()).or_default();
        match health {
            Health::Up => {
                let changed = !entry.worked || entry.down.is_some();
                entry.worked = true;
                entry.down = None;
                let Some((since, refused)) = &mut self.lost else {
                    return (changed, None);
                };
                if !refused.remove(stream) || !refused.is_empty() {
                    return (changed, None);
                }
                let since = *since;
                self.lost = None;
                let streams = vec![StreamAccess {
                    stream: stream.to_owned(),
                    cause: None,
                    detail: "every stream refused since the loss answers again".to_owned(),
                }];
                (
                    true,
                    Some(Change {
                        change: AccessChange::Restored,
                        since,
                        streams,
                    }),
                )
            }
            Health::Down { cause, detail } => {
                if entry.down.as_ref().is_some_and(|(c, _)| *c == cause) {
                    return (false, None);
                }
                entry.down = Some((cause, detail.clone()));
                if !entry.worked {
                    return (true, None);
                }
                match &mut self.lost {
                    Some((_, refused)) => {
                        refused.insert(stream.to_owned());
                        (true, None)
                    }
                    None => {
                        self.lost = Some((now, BTreeSet::from([stream.to_owned()])));
                        let streams = vec![StreamAccess {
                            stream: stream.to_owned(),
                            cause: Some(cause),
                            detail,
                        }];
                        (
                            true,
                            Some(Change {
                                change: AccessChange::Lost,
                                since: now,
                                streams,
                            }),
                        )
                    }
                }
            }
        }
    }

    /// Whether access is lost now (for tests and `/readyz` detail).
    pub fn lost_since(&self) -> Option<DateTime<Utc>> {
        self.lost.as_ref().map(|(t, _)| *t)
    }

    /// Whether nothing is known yet (nothing to checkpoint).
    pub fn is_empty(&self) -> bool {
        self.streams.is_empty() && self.lost.is_none()
    }

    /// The checkpoint form: `{"streams": {name: {"worked": bool, "down": [cause, detail]}},
    /// "lost": {"since": rfc3339, "streams": [name...]}}`.
    pub fn to_json(&self) -> Value {
        let streams: Map<String, Value> = self
            .streams
            .iter()
            .map(|(name, s)| {
                let mut v = Map::new();
                v.insert("worked".into(), json!(s.worked));
                if let Some((cause, detail)) = &s.down {
                    v.insert("down".into(), json!([cause.as_str(), detail]));
                }
                (name.clone(), Value::Object(v))
            })
            .collect();
        let mut out = Map::new();
        out.insert("streams".into(), Value::Object(streams));
        if let Some((since, refused)) = &self.lost {
            out.insert(
                "lost".into(),
                json!({ "since": since.to_rfc3339(), "streams": refused }),
            );
        }
        Value::Object(out)
    }

    /// Reads [`TenantHealth::to_json`]'s form; what cannot be read is left out (a stream then
    /// counts as never seen: at worst a loss goes without a notice, never a notice repeated).
    pub fn from_json(v: &Value) -> TenantHealth {
        let mut health = TenantHealth::default();
        if let Some(streams) = v.get("streams").and_then(Value::as_object) {
            for (name, s) in streams {
                let worked = s.get("worked").and_then(Value::as_bool).unwrap_or(false);
                let down = s.get("down").and_then(Value::as_array).and_then(|d| {
                    let cause = AccessCause::parse(d.first()?.as_str()?)?;
                    Some((cause, d.get(1)?.as_str()?.to_owned()))
                });
                health.streams.insert(name.clone(), Stream { worked, down });
            }
        }
        if let Some(lost) = v.get("lost") {
            let since = lost
                .get("since")
                .and_then(Value::as_str)
                .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
                .map(|t| t.with_timezone(&Utc));
            let refused: BTreeSet<String> = lost
                .get("streams")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default();
            if let Some(since) = since
                && !refused.is_empty()
            {
                health.lost = Some((since, refused));
            }
        }
        health
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(h: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + h * 3600, 0).unwrap()
    }

    fn down(cause: AccessCause) -> Health {
        Health::Down {
            cause,
            detail: "Authorization_RequestDenied: denied".into(),
        }
    }

    #[test]
    fn a_stream_refused_from_the_start_makes_no_notice() {
        let mut h = TenantHealth::default();
        let (changed, notice) = h.report(
            "directory_roles_eligibility",
            down(AccessCause::Licence),
            t(0),
        );
        assert!(changed);
        assert_eq!(notice, None);
        // The same refusal again changes nothing.
        assert_eq!(
            h.report(
                "directory_roles_eligibility",
                down(AccessCause::Licence),
                t(1)
            ),
            (false, None)
        );
        assert_eq!(h.lost_since(), None);
    }

    #[test]
    fn one_loss_makes_one_notice_and_the_last_stream_back_restores() {
        let mut h = TenantHealth::default();
        for s in ["signIns", "directoryAudits", "riskDetections"] {
            assert_eq!(h.report(s, Health::Up, t(0)), (true, None));
        }
        // Answering again and again is no change.
        assert_eq!(h.report("signIns", Health::Up, t(0)), (false, None));
        let (_, first) = h.report("signIns", down(AccessCause::Licence), t(1));
        let first = first.expect("a notice");
        assert_eq!(first.change, AccessChange::Lost);
        assert_eq!(first.since, t(1));
        assert_eq!(first.streams[0].stream, "signIns");
        assert_eq!(first.streams[0].cause, Some(AccessCause::Licence));
        // The others follow a poll later: the same loss, no new notice.
        assert_eq!(
            h.report("riskDetections", down(AccessCause::Licence), t(2)),
            (true, None)
        );
        // A new cause for a stream already down is recorded, still without a notice.
        assert_eq!(
            h.report("signIns", down(AccessCause::Consent), t(2)),
            (true, None)
        );
        assert_eq!(h.lost_since(), Some(t(1)));
        // One back is not all back.
        assert_eq!(h.report("signIns", Health::Up, t(3)), (true, None));
        let (_, back) = h.report("riskDetections", Health::Up, t(4));
        let back = back.expect("restored");
        assert_eq!(back.change, AccessChange::Restored);
        assert_eq!(back.since, t(1), "the restoration names the loss it ends");
        assert_eq!(h.lost_since(), None);
        // A second loss later is a new one.
        let (_, again) = h.report("directoryAudits", down(AccessCause::Consent), t(9));
        assert_eq!(again.expect("a second loss").since, t(9));
    }

    #[test]
    fn the_checkpoint_keeps_what_a_restart_needs() {
        let mut h = TenantHealth::default();
        h.report("signIns", Health::Up, t(0));
        h.report("directoryAudits", Health::Up, t(0));
        h.report("eligibility", down(AccessCause::Licence), t(0));
        h.report("signIns", down(AccessCause::Permission), t(1));
        let back = TenantHealth::from_json(&h.to_json());
        assert_eq!(back, h);
        // After a restart the loss is not announced again...
        let mut restarted = back.clone();
        assert_eq!(
            restarted.report("signIns", down(AccessCause::Permission), t(5)),
            (false, None)
        );
        // ...and a stream that had answered before the restart can still be lost.
        let mut other = TenantHealth::from_json(&TenantHealth::default().to_json());
        assert!(other.is_empty());
        let mut before = TenantHealth::default();
        before.report("directoryAudits", Health::Up, t(0));
        other = TenantHealth::from_json(&before.to_json());
        let (_, n) = other.report("directoryAudits", down(AccessCause::Consent), t(6));
        assert_eq!(n.expect("lost after a restart").since, t(6));
        // Unreadable parts are left out.
        let odd = TenantHealth::from_json(&json!({"streams": {"x": {"down": ["nope", 1]}},
            "lost": {"since": "not a time", "streams": ["x"]}}));
        assert_eq!(odd.lost_since(), None);
        assert_eq!(odd.streams["x"], Stream::default());
    }
}
