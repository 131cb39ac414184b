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

pub use divert::{Expired, ExpiredRow, Refusal, Refused, Rerouted, rerouted_id};
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
mod tests {
    use std::collections::BTreeSet;

    use chrono::{DateTime, Duration, Utc};
    use entrawatch_detect::{Principal, PrincipalKind, Severity};
    use serde_json::json;

    use super::*;
    use crate::notify::{Kind, notification_id};
    use crate::record::AlertRecord;

    fn t(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + secs, 0).unwrap()
    }

    fn alert(id: &str, severity: Severity) -> AlertRecord {
        AlertRecord {
            id: id.into(),
            rule: "impossible_travel".into(),
            severity,
            tenant_id: "t1".into(),
            tenant_name: None,
            principal: Principal {
                kind: PrincipalKind::User,
                id: "u1".into(),
                upn: Some("alice@contoso.com".into()),
                home_tenant_id: None,
            },
            title: format!("{id} impossible travel"),
            summary: "s".into(),
            first_seen: t(0),
            last_seen: t(0),
            count: 1,
            event_ids: vec!["e1".into()],
            evidence: Default::default(),
            mitre: vec![],
        }
    }

    fn row(alert_id: &str, dest: &str, seq: u32, group: &str, created: i64) -> Notification {
        Notification {
            id: notification_id(alert_id, dest, seq),
            alert_id: alert_id.into(),
            destination: dest.into(),
            kind: if seq == 0 {
                Kind::First
            } else {
                Kind::Escalation
            },
            seq,
            group_key: group.into(),
            group_wait_secs: 30,
            group_interval_secs: 300,
            fallback: vec!["slack".into()],
            severity: Severity::High,
            alert: alert(alert_id, Severity::High),
            event_time: t(created),
            created_at: t(created),
        }
    }

    fn open() -> (tempfile::TempDir, Outbox) {
        let dir = tempfile::tempdir().unwrap();
        let o = Outbox::open(&dir.path().join("outbox.db")).unwrap();
        (dir, o)
    }

    fn ids(b: &Batch) -> Vec<String> {
        b.rows.iter().map(|r| r.notification.id.clone()).collect()
    }

    #[test]
    fn commit_is_replay_safe_and_stores_checkpoints_with_the_rows() {
        let (dir, mut o) = open();
        let rows = [
            row("ew-a", "teams", 0, "g", 0),
            row("ew-b", "teams", 0, "g", 0),
        ];
        let cp = [("kafka:p0".to_owned(), json!({"offset": 41}))];
        assert_eq!(o.commit(&rows, &cp).unwrap(), 2);
        let cp2 = [("kafka:p0".to_owned(), json!({"offset": 42}))];
        assert_eq!(o.commit(&rows, &cp2).unwrap(), 0, "same ids are ignored");
        drop(o);
        let o = Outbox::open(&dir.path().join("outbox.db")).unwrap();
        assert_eq!(o.checkpoints().unwrap()["kafka:p0"], json!({"offset": 42}));
        assert_eq!(o.rows(Some("teams")).unwrap().len(), 2);
        assert_eq!(o.meta("schema_version").unwrap().as_deref(), Some("1"));
        let mode: String = o
            .conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        let sync: i64 = o
            .conn
            .query_row("PRAGMA synchronous", [], |r| r.get(0))
            .unwrap();
        assert_eq!(sync, 2, "FULL");
    }

    #[test]
    fn silences_round_trip() {
        let (_dir, mut o) = open();
        o.put_silence("s1", &json!({"matchers": ["rule=x"]}))
            .unwrap();
        o.put_silence("s1", &json!({"matchers": ["rule=y"]}))
            .unwrap();
        o.put_silence("s2", &json!({})).unwrap();
        let all = o.list_silences().unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].1, json!({"matchers": ["rule=y"]}));
        assert!(o.delete_silence("s1").unwrap());
        assert!(!o.delete_silence("s1").unwrap());
        assert_eq!(o.list_silences().unwrap().len(), 1);
    }

    #[test]
    fn group_wait_and_group_interval_gate_batches() {
        let (_dir, mut o) = open();
        o.commit(
            &[
                row("ew-a", "teams", 0, "g1", 0),
                row("ew-b", "teams", 0, "g1", 10),
                row("ew-c", "teams", 0, "g2", 5),
            ],
            &[],
        )
        .unwrap();
        assert!(
            o.next_batch("teams", t(29), 100).unwrap().is_none(),
            "group_wait not over"
        );
        assert_eq!(o.next_due("teams").unwrap(), Some(t(30)));
        let b = o.next_batch("teams", t(30), 100).unwrap().unwrap();
        assert_eq!(b.group_key, "g1");
        assert_eq!(
            b.rows.len(),
            2,
            "ew-b joined the group while it waited and rides along"
        );
        let leased = o
            .lease(
                &ids(&b).iter().map(String::as_str).collect::<Vec<_>>(),
                t(100),
            )
            .unwrap();
        assert_eq!(leased.len(), 2);
        let refs: Vec<&str> = leased.iter().map(String::as_str).collect();
        assert_eq!(
            o.mark_delivered("teams", "g1", &refs, t(40), "202")
                .unwrap(),
            2
        );
        // g2 is independent; a new g1 row waits for the group interval
        o.commit(&[row("ew-d", "teams", 0, "g1", 41)], &[]).unwrap();
        assert_eq!(o.next_due("teams").unwrap(), Some(t(35)), "g2");
        let b = o.next_batch("teams", t(100), 100).unwrap().unwrap();
        assert_eq!(b.group_key, "g2");
        o.lease(&[ids(&b)[0].as_str()], t(200)).unwrap();
        o.mark_delivered("teams", "g2", &[ids(&b)[0].as_str()], t(100), "202")
            .unwrap();
        assert!(o.next_batch("teams", t(339), 100).unwrap().is_none());
        assert_eq!(o.next_due("teams").unwrap(), Some(t(340)));
        assert_eq!(
            o.next_batch("teams", t(340), 100)
                .unwrap()
                .unwrap()
                .group_key,
            "g1"
        );
        assert!(o.next_batch("slack", t(1000), 100).unwrap().is_none());
    }

    #[test]
    fn retry_dead_and_requeue_move_only_leased_rows() {
        let (_dir, mut o) = open();
        let r = row("ew-a", "teams", 0, "g", 0);
        o.commit(std::slice::from_ref(&r), &[]).unwrap();
        let retry = Retry {
            next_attempt_at: t(100),
            count_attempt: true,
            minimal: true,
            last_status: "400".into(),
            last_error: "invalid_blocks".into(),
        };
        assert_eq!(o.mark_retry(&[&r.id], &retry).unwrap(), 0, "not leased");
        o.lease(&[&r.id], t(60)).unwrap();
        assert_eq!(o.mark_retry(&[&r.id], &retry).unwrap(), 1);
        let info = o.row(&r.id).unwrap().unwrap();
        assert_eq!(
            (info.status, info.attempts, info.minimal),
            (Status::Pending, 1, true)
        );
        assert!(
            o.next_batch("teams", t(99), 10).unwrap().is_none(),
            "next_attempt_at respected"
        );
        let b = o.next_batch("teams", t(100), 10).unwrap().unwrap();
        assert!(b.rows[0].minimal);
        o.lease(&[&r.id], t(160)).unwrap();
        assert_eq!(o.requeue_inflight(Some("teams")).unwrap(), 1);
        o.lease(&[&r.id], t(160)).unwrap();
        assert_eq!(o.mark_dead(&[&r.id], "400", "still refused").unwrap(), 1);
        assert_eq!(o.dead_letters().unwrap().len(), 1);
        assert_eq!(o.stats().unwrap().dead(), 1);
        assert!(o.ack_dead_letter(&r.id).unwrap());
        assert!(o.dead_letters().unwrap().is_empty());
    }

    #[test]
    fn coalesce_keeps_the_newest_row_of_an_alert() {
        let (_dir, mut o) = open();
        o.commit(
            &[
                row("ew-a", "teams", 0, "g", 0),
                row("ew-a", "teams", 1, "g", 1),
                row("ew-a", "teams", 2, "g", 2),
                row("ew-a", "slack", 0, "g", 0),
            ],
            &[],
        )
        .unwrap();
        let gone = o.coalesce("teams", &[("ew-a".into(), 2)]).unwrap();
        assert_eq!(gone.len(), 2);
        assert!(gone.iter().any(|(_, k)| *k == Kind::First));
        let statuses: Vec<Status> = o
            .rows(Some("teams"))
            .unwrap()
            .iter()
            .map(|r| r.status)
            .collect();
        assert_eq!(
            statuses,
            [Status::Coalesced, Status::Coalesced, Status::Pending]
        );
        assert_eq!(
            o.rows(Some("slack")).unwrap()[0].status,
            Status::Pending,
            "other destinations untouched"
        );
    }

    #[test]
    fn reroute_copies_to_known_fallbacks_once() {
        let (_dir, mut o) = open();
        let mut no_fallback = row("ew-b", "teams", 0, "g", 0);
        no_fallback.fallback.clear();
        let mut unknown = row("ew-c", "teams", 0, "g", 0);
        unknown.fallback = vec!["pager".into()];
        o.commit(
            &[row("ew-a", "teams", 0, "g", 0), no_fallback, unknown],
            &[],
        )
        .unwrap();
        let known: BTreeSet<String> = ["teams", "slack"].map(String::from).into();
        let moved = o.reroute("teams", t(5), &known).unwrap();
        assert_eq!(moved.len(), 1);
        assert_eq!(moved[0].to, ["slack"]);
        let copy = o.rows(Some("slack")).unwrap();
        assert_eq!(copy.len(), 1);
        assert_eq!(
            copy[0].notification_id,
            rerouted_id(&moved[0].notification_id, "slack")
        );
        assert_eq!(
            copy[0].rerouted_from.as_deref(),
            Some(moved[0].notification_id.as_str())
        );
        assert_eq!(
            copy[0].created_at,
            t(0),
            "latency still counts from the first commit"
        );
        assert!(o.reroute("teams", t(6), &known).unwrap().is_empty());
        let teams: Vec<Status> = o
            .rows(Some("teams"))
            .unwrap()
            .iter()
            .map(|r| r.status)
            .collect();
        assert_eq!(teams.iter().filter(|s| **s == Status::Rerouted).count(), 1);
        assert_eq!(teams.iter().filter(|s| **s == Status::Pending).count(), 2);
    }

    #[test]
    fn held_groups_and_alerts_are_passed_over() {
        let (_dir, mut o) = open();
        let mut rows = vec![
            row("ew-a", "teams", 0, "g1", 0),
            row("ew-b", "teams", 0, "g1", 1),
            row("ew-c", "teams", 0, "g2", 2),
            row("ew-b", "teams", 1, "g3", 3),
            row("ew-d", "teams", 0, "g3", 4),
        ];
        for r in &mut rows {
            (r.group_wait_secs, r.group_interval_secs) = (0, 0);
        }
        o.commit(&rows, &[]).unwrap();
        let none = |_: &str, _: &str| false;
        let b = o
            .next_batch_where("teams", t(10), 100, &none)
            .unwrap()
            .unwrap();
        assert_eq!(b.group_key, "g1");
        // g1 in flight: the next group is g2
        let g1 = |g: &str, _: &str| g == "g1";
        let b = o
            .next_batch_where("teams", t(10), 100, &g1)
            .unwrap()
            .unwrap();
        assert_eq!(ids(&b), [rows[2].id.clone()]);
        // g1 and g2 in flight with alert ew-b: g3 goes without ew-b's row
        let held = |g: &str, a: &str| g == "g1" || g == "g2" || a == "ew-b";
        let b = o
            .next_batch_where("teams", t(10), 100, &held)
            .unwrap()
            .unwrap();
        assert_eq!(b.group_key, "g3");
        assert_eq!(ids(&b), [rows[4].id.clone()]);
        assert_eq!(o.next_due_where("teams", &held).unwrap(), Some(t(4)));
        let all = |_: &str, _: &str| true;
        assert!(
            o.next_batch_where("teams", t(10), 100, &all)
                .unwrap()
                .is_none()
        );
        assert_eq!(o.next_due_where("teams", &all).unwrap(), None);
        assert_eq!(
            o.next_due_where("teams", &none).unwrap(),
            o.next_due("teams").unwrap()
        );
    }

    #[test]
    fn refused_rows_go_to_their_fallback_or_die_with_their_report() {
        let (_dir, mut o) = open();
        let with = row("ew-a", "teams", 0, "g", 0);
        let mut without = row("ew-b", "teams", 0, "g", 0);
        without.fallback.clear();
        let pending = row("ew-c", "teams", 0, "g", 0);
        o.commit(&[with.clone(), without.clone(), pending.clone()], &[])
            .unwrap();
        o.lease(&[&with.id, &without.id], t(60)).unwrap();
        let known: BTreeSet<String> = ["teams", "slack"].map(String::from).into();
        let refusal = Refusal {
            last_status: "400",
            last_error: "refused even in minimal form: bad",
        };
        let mut report = row("ew-sys", "slack", 0, "system", 1);
        report.kind = Kind::System;
        let ids = [with.id.as_str(), without.id.as_str(), pending.id.as_str()];
        let done = o
            .divert_refused("teams", &ids, t(5), &known, &refusal, |r| {
                assert_eq!((r.rerouted.len(), r.dead.len()), (1, 1));
                vec![report.clone()]
            })
            .unwrap();
        assert_eq!(done.fallbacks(), ["slack"]);
        assert_eq!(done.rerouted[0].notification_id, with.id);
        assert_eq!(done.dead[0].notification_id, without.id);
        let status = |id: &str| o.row(id).unwrap().unwrap();
        assert_eq!(status(&with.id).status, Status::Rerouted);
        assert_eq!(status(&without.id).status, Status::Dead);
        assert_eq!(status(&without.id).last_status.as_deref(), Some("400"));
        assert_eq!(status(&pending.id).status, Status::Pending, "not leased");
        assert_eq!(status(&report.id).status, Status::Pending, "the report");
        assert_eq!(
            status(&rerouted_id(&with.id, "slack")).status,
            Status::Pending
        );
        // nothing left in flight: nothing moves, nothing reported
        let again = o
            .divert_refused("teams", &ids, t(6), &known, &refusal, |_| {
                panic!("reported twice")
            })
            .unwrap();
        assert_eq!(again, Refused::default());
    }

    #[test]
    fn expire_kills_ordinary_rows_and_alarms_critical_ones_once() {
        let (_dir, mut o) = open();
        let mut crit = row("ew-c", "teams", 0, "g", 0);
        crit.severity = Severity::Critical;
        o.commit(
            &[
                row("ew-a", "teams", 0, "g", 0),
                crit,
                row("ew-n", "teams", 0, "g", 100),
            ],
            &[],
        )
        .unwrap();
        let day = std::time::Duration::from_secs(60);
        let e = o.expire("teams", t(59), day).unwrap();
        assert_eq!(e, Expired::default());
        assert_eq!(o.next_deadline("teams").unwrap(), Some(t(60)));
        let e = o.expire("teams", t(60), day).unwrap();
        assert_eq!(e.dead.len(), 1);
        assert_eq!(e.alarmed.len(), 1);
        assert_eq!(e.dead[0].alert_id, "ew-a");
        assert_eq!(e.alarmed[0].alert_id, "ew-c");
        assert_eq!(
            o.expire("teams", t(61), day).unwrap(),
            Expired::default(),
            "alarmed once"
        );
        let crit = o
            .row(&notification_id("ew-c", "teams", 0))
            .unwrap()
            .unwrap();
        assert_eq!((crit.status, crit.alarmed), (Status::Pending, true));
        let stats = o.stats().unwrap();
        assert_eq!(stats.destinations["teams"].pending, 2);
        assert_eq!(stats.destinations["teams"].dead, 1);
        assert_eq!(stats.oldest_pending_age_secs(t(70)), Some(70));
    }

    #[test]
    fn purge_drops_finished_rows_after_retention_only() {
        let (_dir, mut o) = open();
        let r = row("ew-a", "teams", 0, "g", 0);
        let keep = row("ew-b", "teams", 0, "g", 0);
        o.commit(&[r.clone(), keep], &[]).unwrap();
        o.lease(&[&r.id], t(10)).unwrap();
        o.mark_delivered("teams", "g", &[&r.id], t(1), "202")
            .unwrap();
        let week = RETENTION;
        assert_eq!(o.purge(t(1) + Duration::days(6), week).unwrap(), 0);
        assert_eq!(o.purge(t(2) + Duration::days(7), week).unwrap(), 1);
        assert_eq!(o.rows(None).unwrap().len(), 1, "pending row kept");
    }

    #[test]
    fn a_newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("outbox.db");
        let mut o = Outbox::open(&path).unwrap();
        o.set_meta("schema_version", "99").unwrap();
        drop(o);
        assert!(matches!(
            Outbox::open(&path),
            Err(OutboxError::Schema { .. })
        ));
    }
}
