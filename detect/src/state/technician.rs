//! What the state keeps per partner technician ([`TechnicianState`]), keyed by (home tenant,
//! user id): when the technician was seen, how often it signed in, and the customer tenants it
//! reached.

use serde::{Deserialize, Serialize};

/// A partner technician, keyed by (home tenant, user id).
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct TechnicianState {
    pub first_seen: i64,
    pub last_seen: i64,
    pub sign_ins: u32,
    /// Customer tenants reached, with the last time each was.
    pub tenants: Vec<(u32, i64)>,
}

impl TechnicianState {
    pub fn reached_since(&self, tenant: u32, since: i64) -> bool {
        self.tenants
            .iter()
            .any(|(t, at)| *t == tenant && *at >= since)
    }

    /// Distinct tenants reached at or after `since`.
    pub fn tenants_since(&self, since: i64) -> impl Iterator<Item = u32> + '_ {
        self.tenants
            .iter()
            .filter(move |(_, at)| *at >= since)
            .map(|(t, _)| *t)
    }
}
