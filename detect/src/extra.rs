//! State kept by the engine for the extra (Sigma) rules: the windows of correlation rules.
//!
//! The engine owns it, hands it to [`crate::ExtraRules::observe`] with each event, and writes it in
//! its snapshot, so a restarted service resumes every open window where it stopped. Its content is
//! the rule set's business (the Sigma crate fills and evicts it by event time); the engine only
//! keeps, persists and measures it.

use std::collections::{BTreeMap, VecDeque};

use serde::{Deserialize, Serialize};

/// The open windows of every correlation rule.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ExtraState {
    /// By rule id (`sigma:<correlation id>`), then by group key: the window of that group.
    pub windows: BTreeMap<String, BTreeMap<String, Window>>,
    /// Events not recorded because a bound was reached (groups per rule, events per window).
    pub dropped: u64,
    /// Event time (unix seconds) of the last sweep of expired windows.
    pub last_sweep: Option<i64>,
}

/// The events of one group still inside the rule's timespan, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Window {
    pub members: VecDeque<Member>,
}

/// One event a referenced rule matched.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Member {
    /// Event time, unix seconds.
    pub time: i64,
    /// Which referenced rules matched it: bit `i` is the correlation's `i`-th rule.
    pub rules: u64,
    pub event_id: String,
    /// The counted field's value (value_count).
    pub value: Option<String>,
}

impl ExtraState {
    /// Open groups over all rules.
    pub fn groups(&self) -> usize {
        self.windows.values().map(BTreeMap::len).sum()
    }

    /// An estimate of the heap the state holds (keys, members and their text).
    pub fn approx_bytes(&self) -> usize {
        let mut n = 0;
        for (id, groups) in &self.windows {
            n += id.capacity() + 64;
            for (key, w) in groups {
                n += key.capacity() + 64 + w.members.capacity() * size_of::<Member>();
                for m in &w.members {
                    n += m.event_id.capacity() + m.value.as_ref().map_or(0, String::capacity);
                }
            }
        }
        n
    }
}
