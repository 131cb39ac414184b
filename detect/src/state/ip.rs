//! What the state keeps per source IP address ([`IpState`]): when it was last seen, what
//! `password-spray` remembers of it ([`SprayState`], its own type in the rule's file), and the
//! tenants partner technicians reached from it.

use serde::{Deserialize, Serialize};

use crate::detectors::password_spray::SprayState;

/// A source IP.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct IpState {
    pub last_seen: i64,
    /// Password failures and the spray they make (`password-spray`, read by `brute-force`).
    pub spray: SprayState,
    /// Service-provider sign-ins from this IP: (tenant, last time).
    pub partner_tenants: Vec<(u32, i64)>,
}
