//! What the state keeps per source IP address ([`IpState`]): recent password failures, the spray
//! it is in and what of it was reported, and the tenants partner technicians reached from it.

use serde::{Deserialize, Serialize};

use super::lists::distinct;
use crate::config::Thresholds;

/// A success from an IP this soon after it last sprayed raises `password-spray` to high.
pub const SPRAY_SUCCESS_SECS: i64 = 3600;

/// Cap on the users whose success after a spray is remembered, so a hostile input cannot grow one
/// address without bound.
const MAX_SPRAY_HITS: usize = 16;

/// Cap on the named failures an IP keeps for its spray window ([`IpState::named_failures`]): the
/// accounts and event ids a spray's opening finding names.
pub const MAX_NAMED_FAILURES: usize = 50;

/// Cap on the accounts an open spray remembers as reported ([`IpState::spray_users`]); past it the
/// spray reports no further accounts one by one (doublings and reaching many tenants still report).
pub const MAX_SPRAY_USERS: usize = 1024;

/// One password-check failure with what an alert names: when, whose (key and name), which record.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamedFailure {
    pub at: i64,
    pub user: u128,
    pub name: String,
    pub event_id: String,
}

/// A source IP.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct IpState {
    pub last_seen: i64,
    /// Recent password-check failures: (time, user key, tenant).
    pub failures: Vec<(i64, u128, u32)>,
    /// When this IP was last found spraying.
    pub spray_at: Option<i64>,
    /// The distinct users and tenants the current spray was last reported at (`password-spray`).
    pub spray_reported: (u32, u32),
    /// Users whose success from this IP after the current spray was reported (capped).
    pub spray_hits: Vec<u128>,
    /// The latest password-check failures in the spray window with the account's name and the
    /// record id, oldest first (capped at [`MAX_NAMED_FAILURES`]).
    pub named_failures: Vec<NamedFailure>,
    /// The accounts reported in the current spray (capped at [`MAX_SPRAY_USERS`]).
    pub spray_users: Vec<u128>,
    /// How many distinct accounts the current spray has targeted (the true count, not capped).
    pub spray_users_total: u32,
    /// Service-provider sign-ins from this IP: (tenant, last time).
    pub partner_tenants: Vec<(u32, i64)>,
}

impl IpState {
    /// Distinct users and tenants failing from this IP in the window ending at `now`, counting one
    /// more failure, by `user` in `tenant` (`None`: a tenant never seen before), not stored yet.
    pub fn spray_counts_with(
        &self,
        now: i64,
        window_secs: i64,
        user: u128,
        tenant: Option<u32>,
    ) -> (u32, u32) {
        let recent = |f: &(i64, u128, u32)| f.0 > now - window_secs;
        (
            distinct(&self.failures, recent, |f| f.1, Some(user)) as u32,
            distinct(&self.failures, recent, |f| Some(f.2), Some(tenant)) as u32,
        )
    }

    /// Whether a failure that brings this IP to (`users`, `tenants`) in the window is news for
    /// `password-spray`: the first crossing of `spray_min_users` after a quiet window, then only a
    /// doubling of the users reported, or reaching `spray_high_tenants`.
    pub fn spray_report(
        &self,
        t: &Thresholds,
        now: i64,
        users: u32,
        tenants: u32,
    ) -> Option<SprayReport> {
        if users < t.spray_min_users {
            return None;
        }
        let open = self
            .spray_at
            .is_some_and(|at| at > now - t.spray_window_minutes * 60);
        let (reported_users, reported_tenants) = self.spray_reported;
        if !open {
            return Some(SprayReport {
                users,
                tenants,
                opens: true,
            });
        }
        let doubled = users >= reported_users.saturating_mul(2);
        let reached_high =
            tenants >= t.spray_high_tenants && reported_tenants < t.spray_high_tenants;
        (doubled || reached_high).then(|| SprayReport {
            users: users.max(reported_users),
            tenants: tenants.max(reported_tenants),
            opens: false,
        })
    }

    /// Whether a failure by `user` at `now` is a newly targeted account of the spray already open
    /// at this IP (`password-spray` reports each one, until [`MAX_SPRAY_USERS`]).
    pub fn spray_target_is_new(&self, now: i64, window_secs: i64, user: u128) -> bool {
        self.spray_at.is_some_and(|at| at > now - window_secs)
            && self.spray_users.len() < MAX_SPRAY_USERS
            && !self.spray_users.contains(&user)
    }

    /// The distinct users failing in the window ending at `now` (keys), in order of first failure,
    /// `user` last when it is not among them.
    pub fn window_users(&self, now: i64, window_secs: i64, user: u128) -> Vec<u128> {
        let mut users: Vec<u128> = Vec::new();
        for (_, u, _) in self.failures.iter().filter(|f| f.0 > now - window_secs) {
            if !users.contains(u) {
                users.push(*u);
            }
        }
        if !users.contains(&user) {
            users.push(user);
        }
        users
    }

    /// Whether a successful sign-in by `user` from this IP is news for `password-spray`: the IP
    /// sprayed within [`SPRAY_SUCCESS_SECS`] and this user's success was not reported yet.
    pub fn spray_hit_is_new(&self, now: i64, user: u128) -> bool {
        self.spray_at
            .is_some_and(|at| now >= at && now - at <= SPRAY_SUCCESS_SECS)
            && self.spray_hits.len() < MAX_SPRAY_HITS
            && !self.spray_hits.contains(&user)
    }
}

/// A spray worth reporting: the counts it is reported at, and whether it opens a new spray.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SprayReport {
    pub users: u32,
    pub tenants: u32,
    pub opens: bool,
}
