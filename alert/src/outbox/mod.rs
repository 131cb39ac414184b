//! The durable outbox: notifications and source checkpoints in, rows for the delivery workers out.
//!
//! One SQLite file (WAL, `synchronous=FULL`) holds:
//! - `outbox`: one row per [`Notification`] (an alert occasion for one destination), keyed by its
//!   deterministic id, moving `pending` → `inflight` (leased by a worker) → `delivered` | `dead` |
//!   `rerouted` (copied to a fallback destination) | `coalesced` (folded into a newer row of the
//!   same alert);
//! - `groups`: when each (destination, group key) was last sent, for `group_interval`;
//! - `checkpoints`: source positions, written in the same transaction as the rows they produced, so
//!   a source never advances past an alert that is not durable;
//! - `silences` (JSON by id) and `meta` (schema version).
//!
//! [`Outbox::commit`] is the runtime's one write: `INSERT OR IGNORE` (a replay regenerates the same
//! ids and inserts nothing) plus the checkpoints, fsync-durable on return. The worker side (lease,
//! mark, coalesce) is in [`queue`]; rerouting and deadlines are in [`divert`]. One [`Outbox`] is one connection; every worker
//! opens its own. Times are stored as Unix milliseconds.

pub mod divert;
pub mod queue;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use serde_json::Value;

use crate::notify::Notification;

pub use divert::{Expired, ExpiredRow, Rerouted, rerouted_id};
pub use queue::{Batch, BatchRow, Claim, Retry, RowInfo, Status};

/// How long delivered rows are kept for "what did we send".
pub const RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);

const SCHEMA_VERSION: &str = "1";

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS outbox (
    notification_id     TEXT PRIMARY KEY,
    alert_id            TEXT NOT NULL,
    destination         TEXT NOT NULL,
    kind                TEXT NOT NULL,
    seq                 INTEGER NOT NULL,
    group_key           TEXT NOT NULL,
    group_wait_secs     INTEGER NOT NULL,
    group_interval_secs INTEGER NOT NULL,
    fallback_json       TEXT NOT NULL,
    severity            TEXT NOT NULL,
    alert_json          TEXT NOT NULL,
    event_time          INTEGER NOT NULL,
    created_at          INTEGER NOT NULL,
    status              TEXT NOT NULL DEFAULT 'pending',
    attempts            INTEGER NOT NULL DEFAULT 0,
    next_attempt_at     INTEGER NOT NULL DEFAULT 0,
    lease_until         INTEGER,
    last_status         TEXT,
    last_error          TEXT,
    deadline_at         INTEGER,
    delivered_at        INTEGER,
    minimal             INTEGER NOT NULL DEFAULT 0,
    alarmed             INTEGER NOT NULL DEFAULT 0,
    rerouted_from       TEXT
);
CREATE INDEX IF NOT EXISTS outbox_due ON outbox (destination, status, created_at, notification_id);
CREATE INDEX IF NOT EXISTS outbox_alert ON outbox (destination, alert_id, status);
CREATE INDEX IF NOT EXISTS outbox_group ON outbox (destination, group_key, status, created_at, notification_id);
CREATE TABLE IF NOT EXISTS groups (
    destination  TEXT NOT NULL,
    group_key    TEXT NOT NULL,
    last_sent_at INTEGER NOT NULL,
    PRIMARY KEY (destination, group_key)
);
CREATE TABLE IF NOT EXISTS checkpoints (
    source        TEXT PRIMARY KEY,
    position_json TEXT NOT NULL,
    updated_at    INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS silences (
    id         TEXT PRIMARY KEY,
    json       TEXT NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
";

/// What can go wrong with the outbox.
#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    #[error("outbox {path}: {source}")]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("outbox: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("outbox: stored json is invalid: {0}")]
    Json(#[from] serde_json::Error),
    #[error("outbox: schema version {found} is not supported (expected {SCHEMA_VERSION})")]
    Schema { found: String },
    #[error("outbox: stored value {value:?} in column {column} is invalid")]
    Corrupt { column: &'static str, value: String },
    #[error("outbox: background task failed: {0}")]
    Task(String),
}

/// Per-destination counts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DestinationStats {
    /// Rows waiting (`pending`) or being sent (`inflight`).
    pub pending: u64,
    /// Commit time of the oldest of them.
    pub oldest_pending: Option<DateTime<Utc>>,
    pub dead: u64,
    pub delivered: u64,
}

/// What [`Outbox::stats`] reports.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutboxStats {
    pub destinations: BTreeMap<String, DestinationStats>,
}

impl OutboxStats {
    /// Rows waiting across all destinations.
    pub fn pending(&self) -> u64 {
        self.destinations.values().map(|d| d.pending).sum()
    }

    /// Dead letters across all destinations.
    pub fn dead(&self) -> u64 {
        self.destinations.values().map(|d| d.dead).sum()
    }

    /// Age of the oldest waiting row at `now`, in whole seconds.
    pub fn oldest_pending_age_secs(&self, now: DateTime<Utc>) -> Option<i64> {
        self.destinations
            .values()
            .filter_map(|d| d.oldest_pending)
            .min()
            .map(|t| (now - t).num_seconds().max(0))
    }
}

/// One connection to the outbox file.
#[derive(Debug)]
pub struct Outbox {
    pub(crate) conn: Connection,
    path: PathBuf,
}

pub(crate) fn millis(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

pub(crate) fn from_millis(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

impl Outbox {
    /// Opens (creating if needed) the outbox at `path`: WAL, `synchronous=FULL`, a busy timeout
    /// for the other connections' writes, and the schema.
    pub fn open(path: &Path) -> Result<Outbox, OutboxError> {
        let open_err = |source| OutboxError::Open {
            path: path.to_owned(),
            source,
        };
        let conn = Connection::open(path).map_err(open_err)?;
        conn.busy_timeout(Duration::from_secs(10))
            .map_err(open_err)?;
        let mode: String = conn
            .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
            .map_err(open_err)?;
        if !mode.eq_ignore_ascii_case("wal") {
            tracing::warn!(path = %path.display(), mode = %mode, "outbox could not switch to wal");
        }
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(open_err)?;
        let mut outbox = Outbox {
            conn,
            path: path.to_owned(),
        };
        outbox.create_schema()?;
        Ok(outbox)
    }

    /// [`Outbox::open`] for a delivery worker: `synchronous=NORMAL`, so a lease or a mark does not
    /// wait for an fsync. A process crash loses nothing (the WAL is in the OS cache); a power cut
    /// may lose the last marks, which means those rows are sent once more (the duplicate the
    /// outbox allows per crash). The runtime's next [`Outbox::commit`] fsyncs them anyway.
    pub fn open_for_delivery(path: &Path) -> Result<Outbox, OutboxError> {
        let outbox = Outbox::open(path)?;
        outbox
            .conn
            .pragma_update(None, "synchronous", "NORMAL")
            .map_err(|source| OutboxError::Open {
                path: path.to_owned(),
                source,
            })?;
        Ok(outbox)
    }

    /// The file this connection writes.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn create_schema(&mut self) -> Result<(), OutboxError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute_batch(SCHEMA)?;
        let found: Option<String> = tx
            .query_row(
                "SELECT value FROM meta WHERE key = 'schema_version'",
                [],
                |r| r.get(0),
            )
            .optional()?;
        match found {
            None => {
                tx.execute(
                    "INSERT INTO meta (key, value) VALUES ('schema_version', ?1)",
                    [SCHEMA_VERSION],
                )?;
            }
            Some(v) if v == SCHEMA_VERSION => {}
            Some(found) => return Err(OutboxError::Schema { found }),
        }
        tx.commit()?;
        Ok(())
    }

    /// In ONE transaction: inserts every row not already present (same id: ignored) and upserts
    /// the checkpoints. Returns how many rows were new. Durable (fsync'd) when it returns.
    pub fn commit(
        &mut self,
        rows: &[Notification],
        checkpoints: &[(String, Value)],
    ) -> Result<usize, OutboxError> {
        let now = millis(Utc::now());
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let inserted = insert_rows(&tx, rows, None)?;
        {
            let mut upsert = tx.prepare(
                "INSERT INTO checkpoints (source, position_json, updated_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (source) DO UPDATE SET position_json = excluded.position_json,
                                                    updated_at = excluded.updated_at",
            )?;
            for (source, position) in checkpoints {
                upsert.execute(params![source, serde_json::to_string(position)?, now])?;
            }
        }
        tx.commit()?;
        Ok(inserted)
    }

    /// The stored position of every source.
    pub fn checkpoints(&self) -> Result<BTreeMap<String, Value>, OutboxError> {
        let mut stmt = self
            .conn
            .prepare("SELECT source, position_json FROM checkpoints")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
        let mut out = BTreeMap::new();
        for row in rows {
            let (source, json) = row?;
            out.insert(source, serde_json::from_str(&json)?);
        }
        Ok(out)
    }

    /// Stores (or replaces) a silence.
    pub fn put_silence(&mut self, id: &str, silence: &Value) -> Result<(), OutboxError> {
        self.conn.execute(
            "INSERT INTO silences (id, json, updated_at) VALUES (?1, ?2, ?3)
             ON CONFLICT (id) DO UPDATE SET json = excluded.json, updated_at = excluded.updated_at",
            params![id, serde_json::to_string(silence)?, millis(Utc::now())],
        )?;
        Ok(())
    }

    /// Removes a silence; false when there was none with that id.
    pub fn delete_silence(&mut self, id: &str) -> Result<bool, OutboxError> {
        Ok(self
            .conn
            .execute("DELETE FROM silences WHERE id = ?1", [id])?
            > 0)
    }

    /// Every stored silence, by id.
    pub fn list_silences(&self) -> Result<Vec<(String, Value)>, OutboxError> {
        let mut stmt = self
            .conn
            .prepare("SELECT id, json FROM silences ORDER BY id")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
        let mut out = Vec::new();
        for row in rows {
            let (id, json) = row?;
            out.push((id, serde_json::from_str(&json)?));
        }
        Ok(out)
    }

    /// A value from the `meta` table.
    pub fn meta(&self, key: &str) -> Result<Option<String>, OutboxError> {
        Ok(self
            .conn
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()?)
    }

    /// Sets a value in the `meta` table.
    pub fn set_meta(&mut self, key: &str, value: &str) -> Result<(), OutboxError> {
        self.conn.execute(
            "INSERT INTO meta (key, value) VALUES (?1, ?2)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            [key, value],
        )?;
        Ok(())
    }

    /// Pending, dead and delivered counts and the oldest pending commit time, per destination.
    pub fn stats(&self) -> Result<OutboxStats, OutboxError> {
        let mut stmt = self.conn.prepare(
            "SELECT destination,
                    SUM(status IN ('pending', 'inflight')),
                    MIN(CASE WHEN status IN ('pending', 'inflight') THEN created_at END),
                    SUM(status = 'dead'),
                    SUM(status = 'delivered')
             FROM outbox GROUP BY destination",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, Option<i64>>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, i64>(4)?,
            ))
        })?;
        let mut stats = OutboxStats::default();
        for row in rows {
            let (destination, pending, oldest, dead, delivered) = row?;
            stats.destinations.insert(
                destination,
                DestinationStats {
                    pending: pending as u64,
                    oldest_pending: oldest.map(from_millis),
                    dead: dead as u64,
                    delivered: delivered as u64,
                },
            );
        }
        Ok(stats)
    }

    /// Every dead letter, oldest first (kept until acknowledged).
    pub fn dead_letters(&self) -> Result<Vec<RowInfo>, OutboxError> {
        self.rows_where("status = 'dead'", "")
    }

    /// Drops a dead letter once an operator has dealt with it; false when there was none.
    pub fn ack_dead_letter(&mut self, notification_id: &str) -> Result<bool, OutboxError> {
        Ok(self.conn.execute(
            "DELETE FROM outbox WHERE notification_id = ?1 AND status = 'dead'",
            [notification_id],
        )? > 0)
    }

    /// Deletes delivered, coalesced and rerouted rows committed or delivered before `now -
    /// keep` (dead rows stay until acknowledged). Returns how many went.
    pub fn purge(&mut self, now: DateTime<Utc>, keep: Duration) -> Result<usize, OutboxError> {
        let keep = chrono::Duration::from_std(keep).unwrap_or(chrono::Duration::MAX);
        let before = millis(now.checked_sub_signed(keep).unwrap_or_default());
        let n = self.conn.execute(
            "DELETE FROM outbox WHERE status IN ('delivered', 'coalesced', 'rerouted')
             AND COALESCE(delivered_at, created_at) < ?1",
            [before],
        )?;
        self.conn
            .execute("DELETE FROM groups WHERE last_sent_at < ?1", [before])?;
        Ok(n)
    }
}

/// `INSERT OR IGNORE` of `rows` as pending; `rerouted_from` names the row they replace.
pub(crate) fn insert_rows(
    tx: &rusqlite::Transaction<'_>,
    rows: &[Notification],
    rerouted_from: Option<&str>,
) -> Result<usize, OutboxError> {
    let mut insert = tx.prepare(
        "INSERT OR IGNORE INTO outbox (notification_id, alert_id, destination, kind, seq,
             group_key, group_wait_secs, group_interval_secs, fallback_json, severity, alert_json,
             event_time, created_at, status, attempts, next_attempt_at, rerouted_from)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, 'pending', 0, 0, ?14)",
    )?;
    let mut inserted = 0;
    for n in rows {
        inserted += insert.execute(params![
            n.id,
            n.alert_id,
            n.destination,
            n.kind.as_str(),
            n.seq,
            n.group_key,
            i64::try_from(n.group_wait_secs).unwrap_or(i64::MAX / 2000),
            i64::try_from(n.group_interval_secs).unwrap_or(i64::MAX / 2000),
            serde_json::to_string(&n.fallback)?,
            n.severity.as_str(),
            serde_json::to_string(&n.alert)?,
            millis(n.event_time),
            millis(n.created_at),
            rerouted_from,
        ])?;
    }
    Ok(inserted)
}

#[cfg(test)]
mod tests;
