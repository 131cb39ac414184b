//! The worker side of the outbox: which rows are due, leases, and every way a row leaves
//! `pending` (delivered, retried later, dead, rerouted to a fallback, coalesced into a newer row).
//!
//! A row is due when its `next_attempt_at` has passed, it has waited `group_wait` since it was
//! committed, and its group was not sent within the last `group_interval`. When a row is due, its
//! whole group goes: rows that joined while it waited ride along in the same message. Every state
//! change checks the state it expects (`WHERE status = 'inflight'`), so a stale worker cannot undo
//! another's work. All functions take the current time from the caller (the delivery clock).

use chrono::{DateTime, Utc};
use entrawatch_detect::Severity;
use rusqlite::{OptionalExtension, Row, TransactionBehavior, params};

use super::{Outbox, OutboxError, from_millis, millis};
use crate::notify::{Kind, Notification};
use crate::record::AlertRecord;

/// Where a row is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    Pending,
    Inflight,
    Delivered,
    Dead,
    Rerouted,
    Coalesced,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Inflight => "inflight",
            Status::Delivered => "delivered",
            Status::Dead => "dead",
            Status::Rerouted => "rerouted",
            Status::Coalesced => "coalesced",
        }
    }

    pub fn parse(s: &str) -> Option<Status> {
        Some(match s {
            "pending" => Status::Pending,
            "inflight" => Status::Inflight,
            "delivered" => Status::Delivered,
            "dead" => Status::Dead,
            "rerouted" => Status::Rerouted,
            "coalesced" => Status::Coalesced,
            _ => return None,
        })
    }
}

/// A row as an operator or a test sees it (no alert body).
#[derive(Debug, Clone, PartialEq)]
pub struct RowInfo {
    pub notification_id: String,
    pub alert_id: String,
    pub destination: String,
    pub kind: Kind,
    pub seq: u32,
    pub group_key: String,
    pub status: Status,
    /// Sends counted against the row (throttled ones are not).
    pub attempts: u32,
    pub last_status: Option<String>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub deadline_at: Option<DateTime<Utc>>,
    pub delivered_at: Option<DateTime<Utc>>,
    /// The next send uses the minimal render (the full one was refused).
    pub minimal: bool,
    /// A critical row past its deadline that was reported to the fallback.
    pub alarmed: bool,
    /// The row this one was copied from when its destination broke.
    pub rerouted_from: Option<String>,
}

/// One row of a batch: the notification and how it went so far.
#[derive(Debug, Clone)]
pub struct BatchRow {
    pub notification: Notification,
    pub attempts: u32,
    pub minimal: bool,
}

/// Due rows of one group of one destination: one message.
#[derive(Debug, Clone)]
pub struct Batch {
    pub group_key: String,
    pub rows: Vec<BatchRow>,
}

/// What [`Outbox::claim`] did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Claim {
    /// Ids now `inflight`, leased to the caller.
    pub leased: Vec<String>,
    /// Older rows of the batch's alerts folded into the newest (id, kind).
    pub coalesced: Vec<(String, Kind)>,
}

/// How a leased batch goes back to `pending`.
#[derive(Debug, Clone)]
pub struct Retry {
    pub next_attempt_at: DateTime<Utc>,
    /// False for throttled sends: they do not use the attempt budget.
    pub count_attempt: bool,
    /// Send the minimal render next time.
    pub minimal: bool,
    pub last_status: String,
    pub last_error: String,
}

const INFO_COLS: &str = "notification_id, alert_id, destination, kind, seq, group_key, status,
    attempts, last_status, last_error, created_at, deadline_at, delivered_at, minimal, alarmed,
    rerouted_from";

pub(super) const ROW_COLS: &str =
    "o.notification_id, o.alert_id, o.destination, o.kind, o.seq, o.group_key,
    o.group_wait_secs, o.group_interval_secs, o.fallback_json, o.severity, o.alert_json,
    o.event_time, o.created_at, o.attempts, o.minimal";

const DUE: &str = "FROM outbox o LEFT JOIN groups g
        ON g.destination = o.destination AND g.group_key = o.group_key
    WHERE o.destination = ?1 AND o.status = 'pending' AND o.next_attempt_at <= ?2
      AND o.created_at + o.group_wait_secs * 1000 <= ?2
      AND (g.last_sent_at IS NULL OR g.last_sent_at + o.group_interval_secs * 1000 <= ?2)";

/// When a pending row becomes due: its retry time, group wait and group interval.
const DUE_AT: &str = "MAX(o.next_attempt_at, o.created_at + o.group_wait_secs * 1000,
    COALESCE(g.last_sent_at + o.group_interval_secs * 1000, 0))";

const PENDING: &str = "FROM outbox o LEFT JOIN groups g
        ON g.destination = o.destination AND g.group_key = o.group_key
    WHERE o.destination = ?1 AND o.status = 'pending'";

fn corrupt(column: &'static str, value: &str) -> OutboxError {
    OutboxError::Corrupt {
        column,
        value: value.to_owned(),
    }
}

pub(super) fn parse_kind(s: &str) -> Result<Kind, OutboxError> {
    Kind::parse(s).ok_or_else(|| corrupt("kind", s))
}

type RawInfo = (
    (String, String, String, String, u32, String, String),
    (u32, Option<String>, Option<String>, i64, Option<i64>),
    (Option<i64>, bool, bool, Option<String>),
);

fn raw_info(r: &Row<'_>) -> rusqlite::Result<RawInfo> {
    Ok((
        (
            r.get(0)?,
            r.get(1)?,
            r.get(2)?,
            r.get(3)?,
            r.get(4)?,
            r.get(5)?,
            r.get(6)?,
        ),
        (r.get(7)?, r.get(8)?, r.get(9)?, r.get(10)?, r.get(11)?),
        (r.get(12)?, r.get(13)?, r.get(14)?, r.get(15)?),
    ))
}

fn info(raw: RawInfo) -> Result<RowInfo, OutboxError> {
    let ((id, alert_id, destination, kind, seq, group_key, status), b, c) = raw;
    let (attempts, last_status, last_error, created_at, deadline_at) = b;
    let (delivered_at, minimal, alarmed, rerouted_from) = c;
    Ok(RowInfo {
        notification_id: id,
        alert_id,
        destination,
        kind: parse_kind(&kind)?,
        seq,
        group_key,
        status: Status::parse(&status).ok_or_else(|| corrupt("status", &status))?,
        attempts,
        last_status,
        last_error,
        created_at: from_millis(created_at),
        deadline_at: deadline_at.map(from_millis),
        delivered_at: delivered_at.map(from_millis),
        minimal,
        alarmed,
        rerouted_from,
    })
}

pub(super) type RawRow = (
    (String, String, String, String, u32, String, i64, i64),
    (String, String, String, i64, i64, u32, bool),
);

pub(super) fn raw_row(r: &Row<'_>) -> rusqlite::Result<RawRow> {
    Ok((
        (
            r.get(0)?,
            r.get(1)?,
            r.get(2)?,
            r.get(3)?,
            r.get(4)?,
            r.get(5)?,
            r.get(6)?,
            r.get(7)?,
        ),
        (
            r.get(8)?,
            r.get(9)?,
            r.get(10)?,
            r.get(11)?,
            r.get(12)?,
            r.get(13)?,
            r.get(14)?,
        ),
    ))
}

pub(super) fn batch_row(raw: RawRow) -> Result<BatchRow, OutboxError> {
    let ((id, alert_id, destination, kind, seq, group_key, wait, interval), rest) = raw;
    let (fallback, severity, alert, event_time, created_at, attempts, minimal) = rest;
    let severity: Severity = serde_json::from_value(serde_json::Value::String(severity.clone()))
        .map_err(|_| corrupt("severity", &severity))?;
    let alert: AlertRecord = serde_json::from_str(&alert)?;
    Ok(BatchRow {
        notification: Notification {
            id,
            alert_id,
            destination,
            kind: parse_kind(&kind)?,
            seq,
            group_key,
            group_wait_secs: wait.max(0) as u64,
            group_interval_secs: interval.max(0) as u64,
            fallback: serde_json::from_str(&fallback)?,
            severity,
            alert,
            event_time: from_millis(event_time),
            created_at: from_millis(created_at),
        },
        attempts,
        minimal,
    })
}

impl Outbox {
    /// Every row of `destination` (all destinations when `None`), oldest first.
    pub fn rows(&self, destination: Option<&str>) -> Result<Vec<RowInfo>, OutboxError> {
        match destination {
            Some(d) => self.rows_where("destination = ?1", d),
            None => self.rows_where("?1 = ?1", ""),
        }
    }

    /// One row by notification id.
    pub fn row(&self, notification_id: &str) -> Result<Option<RowInfo>, OutboxError> {
        Ok(self
            .rows_where("notification_id = ?1", notification_id)?
            .pop())
    }

    pub(crate) fn rows_where(&self, cond: &str, arg: &str) -> Result<Vec<RowInfo>, OutboxError> {
        let sql = format!(
            "SELECT {INFO_COLS} FROM outbox WHERE {cond} ORDER BY created_at, notification_id"
        );
        let mut stmt = self.conn.prepare(&sql)?;
        let raws: Vec<RawInfo> = if sql.contains("?1") {
            stmt.query_map([arg], raw_info)?.collect::<Result<_, _>>()?
        } else {
            stmt.query_map([], raw_info)?.collect::<Result<_, _>>()?
        };
        raws.into_iter().map(info).collect()
    }

    /// Puts `inflight` rows back to `pending` (of one destination, or all): the lease holder is
    /// gone (crash, shutdown). Each such row may be sent once more: at most one duplicate per crash.
    pub fn requeue_inflight(&mut self, destination: Option<&str>) -> Result<usize, OutboxError> {
        let n = match destination {
            Some(d) => self.conn.execute(
                "UPDATE outbox SET status = 'pending', lease_until = NULL
                 WHERE status = 'inflight' AND destination = ?1",
                [d],
            )?,
            None => self.conn.execute(
                "UPDATE outbox SET status = 'pending', lease_until = NULL WHERE status = 'inflight'",
                [],
            )?,
        };
        Ok(n)
    }

    /// The group of the oldest due row of `destination`: every pending row of it whose retry time
    /// has come, oldest first, at most `limit`.
    pub fn next_batch(
        &self,
        destination: &str,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Option<Batch>, OutboxError> {
        self.next_batch_where(destination, now, limit, &|_, _| false)
    }

    /// [`Outbox::next_batch`] passing over rows for which `held(group_key, alert_id)` is true: the
    /// group of the oldest due row not held, without its held rows. A worker holds the groups and
    /// alerts it has in flight, so two messages of one group or one alert never overlap.
    pub fn next_batch_where(
        &self,
        destination: &str,
        now: DateTime<Utc>,
        limit: usize,
        held: &dyn Fn(&str, &str) -> bool,
    ) -> Result<Option<Batch>, OutboxError> {
        let now = millis(now);
        let mut head = None;
        {
            let mut stmt = self.conn.prepare(&format!(
                "SELECT o.group_key, o.alert_id {DUE} ORDER BY o.created_at, o.notification_id"
            ))?;
            // read lazily: rows are held only while their group or alert is in flight (a few)
            let mut due = stmt.query(params![destination, now])?;
            while let Some(r) = due.next()? {
                let (group, alert): (String, String) = (r.get(0)?, r.get(1)?);
                if !held(&group, &alert) {
                    head = Some(group);
                    break;
                }
            }
        }
        let Some(group_key) = head else {
            return Ok(None);
        };
        // the group flushes: rows that joined it while it waited ride along, whatever their own
        // group_wait (Alertmanager's semantics)
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {ROW_COLS} FROM outbox o
             WHERE o.destination = ?1 AND o.status = 'pending' AND o.next_attempt_at <= ?2
               AND o.group_key = ?3
             ORDER BY o.created_at, o.notification_id LIMIT ?4"
        ))?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let raws: Vec<RawRow> = stmt
            .query_map(params![destination, now, group_key, limit], raw_row)?
            .collect::<Result<_, _>>()?;
        let rows: Vec<BatchRow> = raws
            .into_iter()
            .map(batch_row)
            .filter(|r| !matches!(r, Ok(r) if held(&group_key, &r.notification.alert_id)))
            .collect::<Result<_, _>>()?;
        if rows.is_empty() {
            return Ok(None);
        }
        Ok(Some(Batch { group_key, rows }))
    }

    /// When the next pending row of `destination` becomes due (its retry time, group wait and
    /// group interval), if any row is pending.
    pub fn next_due(&self, destination: &str) -> Result<Option<DateTime<Utc>>, OutboxError> {
        let ms: Option<i64> = self.conn.query_row(
            &format!("SELECT MIN({DUE_AT}) {PENDING}"),
            [destination],
            |r| r.get(0),
        )?;
        Ok(ms.map(from_millis))
    }

    /// [`Outbox::next_due`] of the rows not `held` (see [`Outbox::next_batch_where`]).
    pub fn next_due_where(
        &self,
        destination: &str,
        held: &dyn Fn(&str, &str) -> bool,
    ) -> Result<Option<DateTime<Utc>>, OutboxError> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT o.group_key, o.alert_id, {DUE_AT} AS due {PENDING} ORDER BY due"
        ))?;
        let mut rows = stmt.query([destination])?;
        while let Some(r) = rows.next()? {
            let (group, alert, due): (String, String, i64) = (r.get(0)?, r.get(1)?, r.get(2)?);
            if !held(&group, &alert) {
                return Ok(Some(from_millis(due)));
            }
        }
        Ok(None)
    }

    /// The earliest deadline of a row of `destination` still to be expired or alarmed.
    pub fn next_deadline(&self, destination: &str) -> Result<Option<DateTime<Utc>>, OutboxError> {
        let ms: Option<i64> = self.conn.query_row(
            "SELECT MIN(deadline_at) FROM outbox
             WHERE destination = ?1 AND status = 'pending' AND alarmed = 0",
            [destination],
            |r| r.get(0),
        )?;
        Ok(ms.map(from_millis))
    }

    /// Marks pending rows of `destination` older (lower seq) than each `(alert_id, seq)` as
    /// `coalesced`: the newer row carries the alert's current state. Returns them.
    pub fn coalesce(
        &mut self,
        destination: &str,
        newest: &[(String, u32)],
    ) -> Result<Vec<(String, Kind)>, OutboxError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let out = coalesce_in(&tx, destination, newest)?;
        tx.commit()?;
        Ok(out)
    }

    /// Leases pending rows until `until`; returns the ids actually leased.
    pub fn lease(
        &mut self,
        ids: &[&str],
        until: DateTime<Utc>,
    ) -> Result<Vec<String>, OutboxError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let leased = lease_in(&tx, ids, until)?;
        tx.commit()?;
        Ok(leased)
    }

    /// [`Outbox::coalesce`] then [`Outbox::lease`] of the rows of `batch` that are left, in one
    /// transaction.
    pub fn claim(
        &mut self,
        destination: &str,
        batch: &Batch,
        until: DateTime<Utc>,
    ) -> Result<Claim, OutboxError> {
        let mut newest: std::collections::BTreeMap<&str, u32> = Default::default();
        for r in &batch.rows {
            let seq = newest.entry(&r.notification.alert_id).or_default();
            *seq = (*seq).max(r.notification.seq);
        }
        let newest: Vec<(String, u32)> =
            newest.into_iter().map(|(a, s)| (a.to_owned(), s)).collect();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let coalesced = coalesce_in(&tx, destination, &newest)?;
        let ids: Vec<&str> = batch
            .rows
            .iter()
            .map(|r| r.notification.id.as_str())
            .filter(|id| !coalesced.iter().any(|(c, _)| c == id))
            .collect();
        let leased = lease_in(&tx, &ids, until)?;
        tx.commit()?;
        Ok(Claim { leased, coalesced })
    }

    /// Marks leased rows delivered and records the group as sent at `now`.
    pub fn mark_delivered(
        &mut self,
        destination: &str,
        group_key: &str,
        ids: &[&str],
        now: DateTime<Utc>,
        last_status: &str,
    ) -> Result<usize, OutboxError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut n = 0;
        {
            let mut update = tx.prepare(
                "UPDATE outbox SET status = 'delivered', delivered_at = ?2, attempts = attempts + 1,
                     last_status = ?3, last_error = NULL, lease_until = NULL
                 WHERE notification_id = ?1 AND status = 'inflight'",
            )?;
            for id in ids {
                n += update.execute(params![id, millis(now), last_status])?;
            }
            tx.execute(
                "INSERT INTO groups (destination, group_key, last_sent_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (destination, group_key) DO UPDATE SET last_sent_at = excluded.last_sent_at",
                params![destination, group_key, millis(now)],
            )?;
        }
        tx.commit()?;
        Ok(n)
    }

    /// Puts leased rows back to `pending` for a later try.
    pub fn mark_retry(&mut self, ids: &[&str], retry: &Retry) -> Result<usize, OutboxError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut n = 0;
        {
            let mut update = tx.prepare(
                "UPDATE outbox SET status = 'pending', lease_until = NULL, next_attempt_at = ?2,
                     attempts = attempts + ?3, minimal = MAX(minimal, ?4),
                     last_status = ?5, last_error = ?6
                 WHERE notification_id = ?1 AND status = 'inflight'",
            )?;
            for id in ids {
                n += update.execute(params![
                    id,
                    millis(retry.next_attempt_at),
                    i64::from(retry.count_attempt),
                    retry.minimal,
                    retry.last_status,
                    retry.last_error,
                ])?;
            }
        }
        tx.commit()?;
        Ok(n)
    }

    /// Marks leased rows dead (kept until acknowledged).
    pub fn mark_dead(
        &mut self,
        ids: &[&str],
        last_status: &str,
        last_error: &str,
    ) -> Result<usize, OutboxError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut n = 0;
        {
            let mut update = tx.prepare(
                "UPDATE outbox SET status = 'dead', lease_until = NULL, attempts = attempts + 1,
                     last_status = ?2, last_error = ?3
                 WHERE notification_id = ?1 AND status = 'inflight'",
            )?;
            for id in ids {
                n += update.execute(params![id, last_status, last_error])?;
            }
        }
        tx.commit()?;
        Ok(n)
    }

    /// Waiting rows (pending or in flight) of `destination` and the commit time of the oldest.
    pub fn pending_of(
        &self,
        destination: &str,
    ) -> Result<(u64, Option<DateTime<Utc>>), OutboxError> {
        let (n, oldest): (i64, Option<i64>) = self.conn.query_row(
            "SELECT COUNT(*), MIN(created_at) FROM outbox
             WHERE destination = ?1 AND status IN ('pending', 'inflight')",
            [destination],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        Ok((n as u64, oldest.map(from_millis)))
    }

    /// The alert's `count` in the last notification of it delivered to `destination` (for a
    /// reminder's "+N since last"), if that row is still kept.
    pub fn last_delivered_count(
        &self,
        destination: &str,
        alert_id: &str,
    ) -> Result<Option<u64>, OutboxError> {
        let json: Option<String> = self
            .conn
            .query_row(
                "SELECT alert_json FROM outbox
                 WHERE destination = ?1 AND alert_id = ?2 AND status = 'delivered'
                 ORDER BY seq DESC LIMIT 1",
                [destination, alert_id],
                |r| r.get(0),
            )
            .optional()?;
        Ok(json.and_then(|j| {
            serde_json::from_str::<serde_json::Value>(&j)
                .ok()?
                .get("count")?
                .as_u64()
        }))
    }

    /// Inserts notifications the delivery path raises itself (system alerts); ids are
    /// deterministic, so a repeat inserts nothing.
    pub fn insert(&mut self, rows: &[Notification]) -> Result<usize, OutboxError> {
        self.commit(rows, &[])
    }
}

fn coalesce_in(
    tx: &rusqlite::Transaction<'_>,
    destination: &str,
    newest: &[(String, u32)],
) -> Result<Vec<(String, Kind)>, OutboxError> {
    let mut out = Vec::new();
    let mut select = tx.prepare(
        "SELECT notification_id, kind FROM outbox
         WHERE destination = ?1 AND alert_id = ?2 AND seq < ?3 AND status = 'pending'",
    )?;
    let mut update = tx.prepare(
        "UPDATE outbox SET status = 'coalesced', last_error = ?2
         WHERE notification_id = ?1 AND status = 'pending'",
    )?;
    for (alert_id, seq) in newest {
        let found: Vec<(String, String)> = select
            .query_map(params![destination, alert_id, seq], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?
            .collect::<Result<_, _>>()?;
        for (id, kind) in found {
            update.execute(params![id, format!("coalesced into seq {seq}")])?;
            out.push((id, parse_kind(&kind)?));
        }
    }
    Ok(out)
}

fn lease_in(
    tx: &rusqlite::Transaction<'_>,
    ids: &[&str],
    until: DateTime<Utc>,
) -> Result<Vec<String>, OutboxError> {
    let mut leased = Vec::new();
    let mut update = tx.prepare(
        "UPDATE outbox SET status = 'inflight', lease_until = ?2
         WHERE notification_id = ?1 AND status = 'pending'",
    )?;
    for id in ids {
        if update.execute(params![id, millis(until)])? == 1 {
            leased.push((*id).to_owned());
        }
    }
    Ok(leased)
}
