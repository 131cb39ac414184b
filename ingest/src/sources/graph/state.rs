//! Per tenant, per lane checkpoint state: the watermark and the record ids seen inside the overlap,
//! and the checkpoint (`position`) JSON they are saved as.
//!
//! In: records admitted by the batcher (a 64-bit hash of each record's identity and its time) and
//! watermark advances from the pollers. Out: [`LaneState::admit`] (false for a repeat) and
//! [`LaneState::to_json`] / [`LaneState::from_json`].
//!
//! The watermark `W` means: every record with a time before `W` that Graph showed when we asked has
//! been handed on; later polls start at `W - overlap` to catch records that arrive late. The ids
//! kept are those with a time at or after `W - overlap` (older ones can never come back), so a
//! restart from a checkpoint repeats nothing and skips nothing (a lane with more than
//! [`CHECKPOINT_IDS`] in its overlap checkpoints its newest ones; the rest may repeat). Memory is bounded by
//! `max_ids`: past it the oldest ids are forgotten (a repeat then reaches the runtime's own
//! de-duplication, never a gap). The checkpoint stores ids as sorted 8-byte hashes in base64 with
//! one time (`ids_until`, the newest id's time) instead of one per id, in a short array per lane
//! (the position holds every tenant's lanes and goes with every batch).

use std::collections::HashMap;

use chrono::{DateTime, Duration as TimeDelta, Utc};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// Most ids one lane's checkpoint carries (160 KB of base64); a lane remembering more in memory
/// checkpoints its newest ones.
pub const CHECKPOINT_IDS: usize = 20_000;

/// The 64-bit identity of a record: SHA-256 of `parts` joined by NUL, first 8 bytes.
pub fn record_hash(parts: &[&[u8]]) -> u64 {
    let mut h = Sha256::new();
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            h.update([0u8]);
        }
        h.update(p);
    }
    let d = h.finalize();
    let mut b = [0u8; 8];
    b.copy_from_slice(&d[..8]);
    u64::from_be_bytes(b)
}

/// One lane's watermark and remembered ids.
#[derive(Debug)]
pub struct LaneState {
    pub watermark: DateTime<Utc>,
    overlap: TimeDelta,
    max_ids: usize,
    /// id hash -> record time (microseconds since the epoch).
    seen: HashMap<u64, i64>,
    cached: Option<Value>,
}

impl LaneState {
    pub fn new(watermark: DateTime<Utc>, overlap: TimeDelta, max_ids: usize) -> LaneState {
        LaneState {
            watermark,
            overlap,
            max_ids: max_ids.max(1),
            seen: HashMap::new(),
            cached: None,
        }
    }

    /// Remembers a record; false when it was seen already.
    pub fn admit(&mut self, hash: u64, time: DateTime<Utc>) -> bool {
        let micros = time.timestamp_micros();
        let fresh = match self.seen.get_mut(&hash) {
            Some(t) => {
                *t = (*t).max(micros);
                false
            }
            None => {
                self.seen.insert(hash, micros);
                true
            }
        };
        if fresh {
            self.cached = None;
            if self.seen.len() > self.max_ids {
                self.forget_oldest();
            }
        }
        fresh
    }

    /// Moves the watermark forward (never back) and forgets ids that can no longer return.
    /// Returns whether it moved.
    pub fn advance(&mut self, to: DateTime<Utc>) -> bool {
        if to <= self.watermark {
            return false;
        }
        self.watermark = to;
        let floor = (to - self.overlap).timestamp_micros();
        self.seen.retain(|_, t| *t >= floor);
        self.cached = None;
        true
    }

    pub fn remembered(&self) -> usize {
        self.seen.len()
    }

    /// Keeps the newest 90 % of `max_ids`.
    fn forget_oldest(&mut self) {
        let keep = self.max_ids * 9 / 10;
        let mut times: Vec<i64> = self.seen.values().copied().collect();
        let cut_at = times.len() - keep;
        let (_, cut, _) = times.select_nth_unstable(cut_at);
        let cut = *cut;
        self.seen.retain(|_, t| *t >= cut);
        // Ties at the cut may leave a few more than `keep`; that is fine.
    }

    /// The checkpoint of this lane (cached until the state changes): `[watermark]`, or
    /// `[watermark, ids_until, "ids"]`, times in whole seconds since the epoch (the watermark
    /// rounded down, `ids_until` up: both err on reading again, never on skipping).
    pub fn to_json(&mut self) -> Value {
        if let Some(v) = &self.cached {
            return v.clone();
        }
        let watermark = self.watermark.timestamp();
        let v = match self.seen.values().max() {
            None => json!([watermark]),
            Some(until) => {
                let mut hashes: Vec<u64> = if self.seen.len() > CHECKPOINT_IDS {
                    // The newest only: an older repeat after a restart reaches the runtime's own
                    // de-duplication (a repeat, never a gap).
                    let mut by_time: Vec<(i64, u64)> =
                        self.seen.iter().map(|(h, t)| (*t, *h)).collect();
                    let cut = by_time.len() - CHECKPOINT_IDS;
                    by_time.select_nth_unstable(cut);
                    by_time[cut..].iter().map(|(_, h)| *h).collect()
                } else {
                    self.seen.keys().copied().collect()
                };
                hashes.sort_unstable();
                let bytes: Vec<u8> = hashes.iter().flat_map(|h| h.to_be_bytes()).collect();
                let until =
                    until.div_euclid(1_000_000) + i64::from(until.rem_euclid(1_000_000) > 0);
                json!([watermark, until, openssl::base64::encode_block(&bytes)])
            }
        };
        self.cached = Some(v.clone());
        v
    }

    /// A lane's state back from its checkpoint (`None` when unreadable: the lane starts afresh).
    pub fn from_json(v: &Value, overlap: TimeDelta, max_ids: usize) -> Option<LaneState> {
        let parts = v.as_array()?;
        let watermark = DateTime::from_timestamp(parts.first()?.as_i64()?, 0)?;
        let mut s = LaneState::new(watermark, overlap, max_ids);
        if parts.len() == 3 {
            let until = DateTime::from_timestamp(parts[1].as_i64()?, 0)?.timestamp_micros();
            let bytes = openssl::base64::decode_block(parts[2].as_str()?).ok()?;
            if bytes.len() % 8 != 0 {
                return None;
            }
            for chunk in bytes.chunks_exact(8) {
                let mut b = [0u8; 8];
                b.copy_from_slice(chunk);
                s.seen.insert(u64::from_be_bytes(b), until);
            }
        }
        Some(s)
    }
}

/// Where to resume: per tenant and lane, the snapshot's checkpoint or the outbox's, whichever is
/// further on. The outbox's is taken as far as detection had got (`detected_before`, the aligner's
/// released watermark when it was committed): its watermark is held at that time, and its
/// remembered ids are kept only when all are older (newer records may have waited in the
/// aligner's buffer, lost with the process, and must be read again rather than dropped as
/// repeats). Returns the position and how many lanes come from the outbox.
pub fn resume_position(
    snapshot: Option<&Value>,
    durable: &Value,
    detected_before: Option<DateTime<Utc>>,
) -> (Option<Value>, usize) {
    // Access health (`health.rs`) is committed with the notices it caused: the outbox's is the
    // true one whatever the lanes' watermarks.
    let with_health = |mut position: Value| {
        let health = durable
            .get("health")
            .or_else(|| snapshot.and_then(|s| s.get("health")));
        if let (Some(h), Some(p)) = (health, position.as_object_mut()) {
            p.insert("health".into(), h.clone());
        }
        position
    };
    let snapshot_only = || match (snapshot, durable.get("health")) {
        (Some(s), _) => Some(with_health(s.clone())),
        (None, Some(_)) => Some(with_health(json!({ "v": 1, "tenants": {} }))),
        (None, None) => None,
    };
    let Some(cap) = detected_before.map(|t| t.timestamp()) else {
        return (snapshot_only(), 0);
    };
    let Some(durable_tenants) = durable.get("tenants").and_then(Value::as_object) else {
        return (snapshot_only(), 0);
    };
    let mut merged = snapshot
        .and_then(|s| s.get("tenants"))
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let mut taken = 0;
    for (tenant, lanes) in durable_tenants {
        let Some(lanes) = lanes.as_object() else {
            continue;
        };
        let entry = merged.entry(tenant.clone()).or_insert_with(|| json!({}));
        let Some(into) = entry.as_object_mut() else {
            continue;
        };
        for (lane, v) in lanes {
            let Some(parts) = v.as_array() else { continue };
            let Some(w) = parts.first().and_then(Value::as_i64) else {
                continue;
            };
            let held = w.min(cap);
            let ids_older = parts.len() == 3 && parts[1].as_i64().is_some_and(|u| u < cap);
            let candidate = if ids_older {
                json!([held, parts[1], parts[2]])
            } else {
                json!([held])
            };
            let current = into
                .get(lane)
                .and_then(|c| c.get(0))
                .and_then(Value::as_i64);
            if current.is_none_or(|c| held > c) {
                into.insert(lane.clone(), candidate);
                taken += 1;
            }
        }
    }
    (
        Some(with_health(json!({ "v": 1, "tenants": merged }))),
        taken,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(m: i64) -> DateTime<Utc> {
        DateTime::<Utc>::from_timestamp(1_700_000_000 + m * 60, 0).unwrap()
    }

    #[test]
    fn repeats_are_dropped_inside_the_overlap_and_forgotten_after() {
        let mut s = LaneState::new(t(0), TimeDelta::minutes(30), 1000);
        assert!(s.admit(1, t(5)));
        assert!(!s.admit(1, t(5)));
        assert!(s.admit(2, t(40)));
        // W = 60: floor 30, id 1 (time 5) is gone, id 2 (time 40) stays.
        assert!(s.advance(t(60)));
        assert!(!s.advance(t(50)));
        assert_eq!(s.remembered(), 1);
        assert!(!s.admit(2, t(40)));
    }

    #[test]
    fn the_checkpoint_round_trips_and_keeps_ids_until_they_cannot_return() {
        let mut s = LaneState::new(t(0), TimeDelta::minutes(30), 1000);
        for i in 0..50u64 {
            s.admit(
                record_hash(&[b"signIn", i.to_string().as_bytes()]),
                t(i as i64),
            );
        }
        s.advance(t(40));
        let v = s.to_json();
        let mut back = LaneState::from_json(&v, TimeDelta::minutes(30), 1000).unwrap();
        assert_eq!(back.watermark, t(40));
        assert_eq!(back.remembered(), 40, "ids from minute 10 on");
        assert!(!back.admit(record_hash(&[b"signIn", b"45"]), t(45)));
        assert!(back.admit(record_hash(&[b"signIn", b"5"]), t(5)));
        // Restored ids all carry the newest time: they go once W - overlap passes it.
        back.advance(t(49 + 30));
        assert_eq!(back.remembered(), 40);
        back.advance(t(49 + 31));
        assert_eq!(back.remembered(), 0);
        assert!(LaneState::from_json(&json!(["x"]), TimeDelta::zero(), 10).is_none());
        assert!(LaneState::from_json(&json!([1, 2, "AAA"]), TimeDelta::zero(), 10).is_none());
        let empty = LaneState::new(t(0), TimeDelta::zero(), 10).to_json();
        assert_eq!(empty, json!([t(0).timestamp()]));
    }

    #[test]
    fn the_checkpoint_keeps_the_newest_ids_when_there_are_many() {
        let mut s = LaneState::new(t(0), TimeDelta::days(100), 1_000_000);
        let n = CHECKPOINT_IDS as u64 + 500;
        for i in 0..n {
            s.admit(i, t(i as i64));
        }
        let mut back = LaneState::from_json(&s.to_json(), TimeDelta::days(100), 1_000_000).unwrap();
        assert_eq!(back.remembered(), CHECKPOINT_IDS);
        assert!(!back.admit(n - 1, t(0)), "the newest were kept");
        assert!(back.admit(0, t(0)), "the oldest were left out");
    }

    #[test]
    fn memory_is_bounded_by_forgetting_the_oldest() {
        let mut s = LaneState::new(t(0), TimeDelta::days(2), 1000);
        for i in 0..5000u64 {
            s.admit(i, t(i as i64));
        }
        assert!(s.remembered() <= 1000, "{}", s.remembered());
        assert!(!s.admit(4999, t(4999)), "the newest stay");
        assert!(s.admit(0, t(0)), "the oldest went");
    }

    #[test]
    fn resume_takes_the_further_checkpoint_held_at_what_detection_had_seen() {
        let snapshot = json!({"v": 1, "tenants": {
            "a": {"sign_ins_user": [100], "directory_audits": [500, 510, "AAAAAAAAAAE="]},
            "gone": {"sign_ins_user": [50]},
        }});
        let durable = json!({"v": 1, "tenants": {
            "a": {
                // Further on, ids all older than what detection had seen: taken whole.
                "sign_ins_user": [300, 290, "AAAAAAAAAAI="],
                // Behind the snapshot: the snapshot's stays.
                "directory_audits": [400],
            },
            // Further on than detection had got, ids newer: held there, ids dropped.
            "b": {"risky_users": [900, 905, "AAAAAAAAAAM="]},
        }});
        let at = |s: i64| DateTime::from_timestamp(s, 0);
        let (merged, taken) = resume_position(Some(&snapshot), &durable, at(800));
        let merged = merged.unwrap();
        assert_eq!(taken, 2);
        assert_eq!(
            merged["tenants"]["a"]["sign_ins_user"],
            json!([300, 290, "AAAAAAAAAAI="])
        );
        assert_eq!(
            merged["tenants"]["a"]["directory_audits"],
            json!([500, 510, "AAAAAAAAAAE="])
        );
        assert_eq!(merged["tenants"]["b"]["risky_users"], json!([800]));
        assert_eq!(merged["tenants"]["gone"]["sign_ins_user"], json!([50]));
        // Ids as new as what detection had seen may include a record it had not: dropped.
        let (merged, _) = resume_position(None, &durable, at(290));
        assert_eq!(
            merged.unwrap()["tenants"]["a"]["sign_ins_user"],
            json!([290])
        );
        // Nothing released yet: the outbox says nothing detection had seen.
        let (kept, taken) = resume_position(Some(&snapshot), &durable, None);
        assert_eq!((kept.as_ref(), taken), (Some(&snapshot), 0));
        // A first start with nothing in the snapshot.
        let (merged, taken) = resume_position(None, &durable, at(10_000));
        assert_eq!(taken, 3);
        assert_eq!(
            merged.unwrap()["tenants"]["b"]["risky_users"][0],
            json!(900)
        );
    }

    #[test]
    fn access_health_comes_from_the_outbox_checkpoint() {
        let lost = json!({"a": {"streams": {"sign_ins_user": {"worked": true,
            "down": ["licence", "x"]}}, "lost": {"since": "2026-12-01T00:00:00+00:00",
            "streams": ["sign_ins_user"]}}});
        let snapshot = json!({"v": 1, "tenants": {"a": {"sign_ins_user": [500]}},
            "health": {"a": {"streams": {"sign_ins_user": {"worked": true}}}}});
        let durable = json!({"v": 1, "tenants": {"a": {"sign_ins_user": [400]}},
            "health": lost});
        let at = |s: i64| DateTime::from_timestamp(s, 0);
        // Whether or not a lane is taken from the outbox, its health is: the notice that
        // recorded the loss was committed with it.
        for detected in [at(450), None] {
            let (merged, _) = resume_position(Some(&snapshot), &durable, detected);
            let merged = merged.unwrap();
            assert_eq!(merged["health"], lost);
            assert_eq!(merged["tenants"]["a"]["sign_ins_user"], json!([500]));
        }
        let (merged, _) = resume_position(None, &durable, None);
        assert_eq!(merged.unwrap()["health"], lost);
        // An outbox checkpoint without health keeps the snapshot's.
        let plain = json!({"v": 1, "tenants": {}});
        let (merged, _) = resume_position(Some(&snapshot), &plain, at(450));
        assert_eq!(merged.unwrap()["health"], snapshot["health"]);
        assert_eq!(resume_position(None, &plain, None).0, None);
    }
}
