//! When rows cannot go where they were meant to: a broken destination's rows are copied to its
//! fallback destinations ([`Outbox::reroute`]), so are rows whose payload the destination refused
//! (or they become dead letters when they have no fallback: [`Outbox::divert_refused`]), and rows
//! past their deadline become dead letters or, when critical, are flagged for an alarm and kept
//! ([`Outbox::expire`]).

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use entrawatch_detect::Severity;
use rusqlite::{TransactionBehavior, params};

use super::queue::{ROW_COLS, RawRow, batch_row, parse_kind, raw_row};
use super::{Outbox, OutboxError, insert_rows, millis};
use crate::notify::{Kind, Notification};

/// A row copied to fallback destinations.
#[derive(Debug, Clone, PartialEq)]
pub struct Rerouted {
    pub notification_id: String,
    pub alert_id: String,
    pub kind: Kind,
    pub to: Vec<String>,
}

/// A row past its deadline.
#[derive(Debug, Clone, PartialEq)]
pub struct ExpiredRow {
    pub notification_id: String,
    pub alert_id: String,
    pub kind: Kind,
    pub fallback: Vec<String>,
    pub last_error: Option<String>,
}

/// How [`Outbox::divert_refused`] marks the rows: their last answer.
#[derive(Debug, Clone, Copy)]
pub struct Refusal<'a> {
    pub last_status: &'a str,
    pub last_error: &'a str,
}

/// What [`Outbox::divert_refused`] did with each refused row.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Refused {
    /// Copied to fallback destinations.
    pub rerouted: Vec<Rerouted>,
    /// Without a usable fallback: dead letters.
    pub dead: Vec<ExpiredRow>,
}

/// What [`Outbox::expire`] did: `dead` rows gave up; `alarmed` rows are critical and kept.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Expired {
    pub dead: Vec<ExpiredRow>,
    pub alarmed: Vec<ExpiredRow>,
}

/// The id of the copy of `original` sent to `fallback`: deterministic, so rerouting twice (after
/// a crash) inserts nothing new.
pub fn rerouted_id(original: &str, fallback: &str) -> String {
    format!(
        "n-{}",
        crate::notify::id_hash(&["reroute", original, fallback])
    )
}

/// The fallbacks of a row of `destination` that can take it: known, not itself, each once.
fn usable_fallbacks(
    fallback: &[String],
    destination: &str,
    known: &BTreeSet<String>,
) -> Vec<String> {
    fallback
        .iter()
        .filter(|f| f.as_str() != destination && known.contains(f.as_str()))
        .cloned()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

/// The copies of `n` for each of `to`, as new pending rows without fallback of their own.
fn copies(n: &Notification, to: &[String]) -> Vec<Notification> {
    to.iter()
        .map(|f| Notification {
            id: rerouted_id(&n.id, f),
            destination: f.clone(),
            fallback: Vec::new(),
            ..n.clone()
        })
        .collect()
}

impl Refused {
    /// The refused rows, rerouted then dead: (notification id, alert id, kind).
    pub fn rows(&self) -> impl Iterator<Item = (&str, &str, Kind)> {
        let rerouted = self
            .rerouted
            .iter()
            .map(|r| (r.notification_id.as_str(), r.alert_id.as_str(), r.kind));
        let dead = self
            .dead
            .iter()
            .map(|r| (r.notification_id.as_str(), r.alert_id.as_str(), r.kind));
        rerouted.chain(dead)
    }

    /// The destinations the rerouted rows went to, each once.
    pub fn fallbacks(&self) -> Vec<String> {
        self.rerouted
            .iter()
            .flat_map(|r| r.to.iter().cloned())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect()
    }
}

impl Outbox {
    /// Copies every pending row of `destination` that has fallback destinations (among `known`,
    /// other than itself) to each of them as a new pending row, and marks the original
    /// `rerouted`. Rows without a usable fallback stay pending.
    pub fn reroute(
        &mut self,
        destination: &str,
        now: DateTime<Utc>,
        known: &BTreeSet<String>,
    ) -> Result<Vec<Rerouted>, OutboxError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut out = Vec::new();
        {
            let raws: Vec<RawRow> = tx
                .prepare(&format!(
                    "SELECT {ROW_COLS} FROM outbox o
                     WHERE o.destination = ?1 AND o.status = 'pending' AND o.fallback_json != '[]'
                     ORDER BY o.created_at, o.notification_id"
                ))?
                .query_map([destination], raw_row)?
                .collect::<Result<_, _>>()?;
            let mut mark = tx.prepare(
                "UPDATE outbox SET status = 'rerouted', delivered_at = ?2, last_error = ?3
                 WHERE notification_id = ?1 AND status = 'pending'",
            )?;
            for raw in raws {
                let row = batch_row(raw)?;
                let n = row.notification;
                let to = usable_fallbacks(&n.fallback, destination, known);
                if to.is_empty() {
                    continue;
                }
                insert_rows(&tx, &copies(&n, &to), Some(&n.id))?;
                mark.execute(params![
                    n.id,
                    millis(now),
                    format!("rerouted to {}", to.join(","))
                ])?;
                out.push(Rerouted {
                    notification_id: n.id,
                    alert_id: n.alert_id,
                    kind: n.kind,
                    to,
                });
            }
        }
        tx.commit()?;
        Ok(out)
    }

    /// Moves leased rows of `destination` whose payload was refused: each with fallback
    /// destinations (among `known`, other than itself) is copied to them and marked `rerouted`,
    /// each without becomes `dead`; the notifications `report` makes of what happened (a system
    /// alert) are inserted with them. One transaction, so a crash cannot divert the rows and lose
    /// the report; rows no longer `inflight` are left alone.
    pub fn divert_refused(
        &mut self,
        destination: &str,
        ids: &[&str],
        now: DateTime<Utc>,
        known: &BTreeSet<String>,
        refusal: &Refusal<'_>,
        report: impl FnOnce(&Refused) -> Vec<Notification>,
    ) -> Result<Refused, OutboxError> {
        let (last_status, last_error) = (refusal.last_status, refusal.last_error);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut out = Refused::default();
        {
            let mut select = tx.prepare(&format!(
                "SELECT {ROW_COLS} FROM outbox o
                 WHERE o.notification_id = ?1 AND o.destination = ?2 AND o.status = 'inflight'"
            ))?;
            let mut reroute = tx.prepare(
                "UPDATE outbox SET status = 'rerouted', delivered_at = ?2, lease_until = NULL,
                     attempts = attempts + 1, last_status = ?3, last_error = ?4
                 WHERE notification_id = ?1 AND status = 'inflight'",
            )?;
            let mut kill = tx.prepare(
                "UPDATE outbox SET status = 'dead', lease_until = NULL, attempts = attempts + 1,
                     last_status = ?2, last_error = ?3
                 WHERE notification_id = ?1 AND status = 'inflight'",
            )?;
            for id in ids {
                let raws: Vec<RawRow> = select
                    .query_map(params![id, destination], raw_row)?
                    .collect::<Result<_, _>>()?;
                let Some(raw) = raws.into_iter().next() else {
                    continue;
                };
                let n = batch_row(raw)?.notification;
                let to = usable_fallbacks(&n.fallback, destination, known);
                if to.is_empty() {
                    kill.execute(params![n.id, last_status, last_error])?;
                    out.dead.push(ExpiredRow {
                        notification_id: n.id,
                        alert_id: n.alert_id,
                        kind: n.kind,
                        fallback: n.fallback,
                        last_error: Some(last_error.to_owned()),
                    });
                    continue;
                }
                insert_rows(&tx, &copies(&n, &to), Some(&n.id))?;
                reroute.execute(params![
                    n.id,
                    millis(now),
                    last_status,
                    format!("{last_error}; rerouted to {}", to.join(","))
                ])?;
                out.rerouted.push(Rerouted {
                    notification_id: n.id,
                    alert_id: n.alert_id,
                    kind: n.kind,
                    to,
                });
            }
        }
        if !out.rerouted.is_empty() || !out.dead.is_empty() {
            insert_rows(&tx, &report(&out), None)?;
        }
        tx.commit()?;
        Ok(out)
    }

    /// Gives each pending row of `destination` its deadline (commit time + `deadline`) if it has
    /// none, then: non-critical rows past it become `dead`; critical ones past it are flagged
    /// `alarmed` once and stay pending.
    pub fn expire(
        &mut self,
        destination: &str,
        now: DateTime<Utc>,
        deadline: std::time::Duration,
    ) -> Result<Expired, OutboxError> {
        let deadline_ms = i64::try_from(deadline.as_millis()).unwrap_or(i64::MAX / 4);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute(
            "UPDATE outbox SET deadline_at = created_at + ?2
             WHERE destination = ?1 AND deadline_at IS NULL AND status = 'pending'",
            params![destination, deadline_ms],
        )?;
        let found: Vec<(String, String, String, String, String, Option<String>)> = tx
            .prepare(
                "SELECT notification_id, alert_id, kind, severity, fallback_json, last_error
                 FROM outbox WHERE destination = ?1 AND status = 'pending' AND alarmed = 0
                   AND deadline_at <= ?2
                 ORDER BY created_at, notification_id",
            )?
            .query_map(params![destination, millis(now)], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                ))
            })?
            .collect::<Result<_, _>>()?;
        let mut out = Expired::default();
        for (id, alert_id, kind, severity, fallback, last_error) in found {
            let row = ExpiredRow {
                notification_id: id,
                alert_id,
                kind: parse_kind(&kind)?,
                fallback: serde_json::from_str(&fallback)?,
                last_error,
            };
            if severity == Severity::Critical.as_str() {
                tx.execute(
                    "UPDATE outbox SET alarmed = 1 WHERE notification_id = ?1",
                    [&row.notification_id],
                )?;
                out.alarmed.push(row);
            } else {
                tx.execute(
                    "UPDATE outbox SET status = 'dead',
                         last_error = COALESCE(last_error || '; ', '') || 'deadline passed'
                     WHERE notification_id = ?1",
                    [&row.notification_id],
                )?;
                out.dead.push(row);
            }
        }
        tx.commit()?;
        Ok(out)
    }
}
