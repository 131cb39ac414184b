//! All detection state: compact 30-day history per principal, per partner technician, per source IP
//! and per tenant stream. The engine updates it after the detectors have decided on an event, so a
//! detector always sees the history *before* the event it is judging.
//!
//! Times are event times in whole seconds; ids are 128-bit keys (a GUID's value, else a hash), tenant
//! ids are interned, and every list is pruned to its window and capped, so memory per principal stays
//! bounded whatever the input.
//!
//! [`State`] holds one record per key, each in its own file: [`PrincipalState`] (with its [`Fix`]),
//! [`TechnicianState`], [`IpState`], [`StreamState`] and [`ChainState`] (the recent findings of a
//! user, for `account-takeover-chain`, learnt from findings rather than events), with tenants
//! interned by [`Tenants`].
//! A rule that alone reads a part of a record owns it in its own file (the spray of an address is
//! `password-spray`'s [`SprayState`](crate::detectors::password_spray::SprayState)) and learns it
//! there; `update` is how an event changes the state and calls those learners, `lists` how the
//! records' lists stay bounded, and `size` what the state costs in memory. This file holds [`State`] itself: its lookups and
//! eviction.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::keys::{KeyHash, key128};

mod account;
mod apps;
mod chain;
mod ip;
mod lists;
mod principal;
mod size;
pub use size::StateBytes;
mod stream;
mod technician;
mod tenants;
mod update;

pub use account::{AccountChange, account_change, account_ids};
pub use apps::{AppHistory, AppState, MAX_APP_MANAGERS, MAX_APP_PERMISSIONS, actor_key};
pub use chain::{ChainMember, ChainState, MAX_CHAIN_MEMBERS};
pub use ip::IpState;
pub use principal::{
    AfterDisable, DISABLE_GRACE_SECS, Fix, MAX_SESSIONS, PrincipalState, SessionUse, city_key,
    valid_coordinates,
};
pub use stream::{SilencePolicy, Stream, StreamState};
pub use technician::TechnicianState;
pub use tenants::Tenants;

use lists::kept_since;
pub(crate) use lists::{count_since, distinct, push_capped, push_in_window};
pub(crate) use size::heap;

/// How long history is kept (event time).
pub const RETENTION_SECS: i64 = 30 * 24 * 3600;

/// Everything the detectors may read.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct State {
    /// The pipeline's event-time clock: the newest event time seen (seconds).
    pub clock: i64,
    pub tenants: Tenants,
    pub principals: HashMap<(u32, u128), PrincipalState, KeyHash>,
    pub technicians: HashMap<(u32, u128), TechnicianState, KeyHash>,
    pub ips: HashMap<u128, IpState, KeyHash>,
    pub streams: HashMap<(u32, Stream), StreamState, KeyHash>,
    /// Partner home tenants seen acting in each customer tenant.
    pub partners_of: HashMap<u32, Vec<u32>, KeyHash>,
    /// When each tenant last had a successful device-code sign-in (`device-code-sign-in`),
    /// forgotten after the retention.
    pub device_code_tenants: HashMap<u32, i64, KeyHash>,
    /// Applications per tenant, under each of their ids (`app-credential-added`).
    pub apps: HashMap<(u32, u128), AppState, KeyHash>,
    /// Recent findings per user, by (the finding's tenant, user id) (`account-takeover-chain`).
    pub chains: HashMap<(u32, u128), ChainState, KeyHash>,
    /// No time that [`State::evict`] compares is older than this (a lower bound), so an eviction
    /// with its horizon at or below it has nothing to remove and skips the tables. Lowered by
    /// every update, raised by each eviction that scans; the tables change only through those
    /// two. Not in a snapshot: a restored state starts unknown (`i64::MIN`) and its first
    /// eviction scans.
    #[serde(skip, default = "unknown_floor")]
    evict_floor: i64,
}

fn unknown_floor() -> i64 {
    i64::MIN
}

impl State {
    pub fn principal(&self, tenant: &str, id: &str) -> Option<&PrincipalState> {
        self.principal_by_key(tenant, key128(id))
    }

    /// [`State::principal`] by the id's [`key128`].
    pub fn principal_by_key(&self, tenant: &str, key: u128) -> Option<&PrincipalState> {
        let t = self.tenants.get(tenant)?;
        self.principals.get(&(t, key))
    }

    /// When tenant `tenant` last had a successful device-code sign-in, if it had one kept.
    pub fn tenant_device_code_at(&self, tenant: &str) -> Option<i64> {
        let t = self.tenants.get(tenant)?;
        self.device_code_tenants.get(&t).copied()
    }

    pub fn technician(&self, home_tenant: &str, user_id: &str) -> Option<&TechnicianState> {
        let t = self.tenants.get(home_tenant)?;
        self.technicians.get(&(t, key128(user_id)))
    }

    pub fn ip(&self, ip: &str) -> Option<&IpState> {
        self.ip_by_key(key128(ip))
    }

    /// [`State::ip`] by the address's [`key128`].
    pub fn ip_by_key(&self, key: u128) -> Option<&IpState> {
        self.ips.get(&key)
    }

    /// Whether the partner home tenant has acted in the customer tenant before.
    pub fn partner_known_in(&self, customer: &str, home: &str) -> bool {
        match (self.tenants.get(customer), self.tenants.get(home)) {
            (Some(c), Some(h)) => self.partners_of.get(&c).is_some_and(|v| v.contains(&h)),
            _ => false,
        }
    }

    /// The home tenant of a partner technician with this user id who signed in successfully to the
    /// customer tenant within the 30-day window (`partner-created-account`). A scan of the
    /// technicians, which are few; audit detectors call it only for rare activities.
    pub fn technician_home_in(&self, customer: &str, user_id: &str) -> Option<&str> {
        let customer = self.tenants.get(customer)?;
        let user = key128(user_id);
        let since = self.clock - RETENTION_SECS;
        self.technicians
            .iter()
            .filter(|((_, u), t)| *u == user && t.reached_since(customer, since))
            .map(|((home, _), _)| *home)
            .min()
            .map(|home| self.tenants.name(home))
    }

    /// Forgets everything last seen more than 30 days before the clock.
    ///
    /// The engine asks every hour of event time. Until the clock is 30 days past the oldest time
    /// kept (a replay of less than 30 days never gets there), nothing can be old enough and the
    /// tables are not scanned; a scan notes the oldest time it keeps.
    pub fn evict(&mut self) {
        let horizon = self.clock - RETENTION_SECS;
        if horizon <= self.evict_floor {
            return;
        }
        let mut floor = i64::MAX;
        self.principals.retain(|_, p| {
            p.mfa_denials.retain(|at| *at >= horizon);
            if p.device_code_at.is_some_and(|at| at < horizon) {
                p.device_code_at = None;
            }
            p.sessions.retain(|u| u.at >= horizon);
            let keep = kept_since(horizon, p.last_seen, &mut p.countries, &mut floor);
            if keep {
                floor = (p.mfa_denials.iter().copied())
                    .chain(p.device_code_at)
                    .chain(p.sessions.iter().map(|u| u.at))
                    .fold(floor, i64::min);
            }
            keep
        });
        self.device_code_tenants.retain(|_, at| {
            let keep = *at >= horizon;
            if keep {
                floor = floor.min(*at);
            }
            keep
        });
        self.technicians
            .retain(|_, t| kept_since(horizon, t.last_seen, &mut t.tenants, &mut floor));
        self.apps.retain(|_, s| {
            s.managers.retain(|(_, at)| *at >= horizon);
            let keep = kept_since(horizon, s.last_seen, &mut s.permissions, &mut floor);
            if keep {
                floor = s.managers.iter().fold(floor, |f, (_, at)| f.min(*at));
            }
            keep
        });
        self.chains.retain(|_, c| {
            c.members.retain(|m| m.at >= horizon);
            if c.reported_at.is_some_and(|at| at < horizon) {
                c.reported_at = None;
            }
            floor = (c.members.iter().map(|m| m.at))
                .chain(c.reported_at)
                .fold(floor, i64::min);
            !c.members.is_empty() || c.reported_at.is_some()
        });
        self.ips.retain(|_, i| {
            let keep = i.last_seen >= horizon;
            if keep {
                floor = floor.min(i.last_seen);
            }
            keep
        });
        self.evict_floor = floor;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DetectConfig;

    /// What eviction keeps, in a canonical order: principals with their countries, technicians
    /// with their tenants, and IPs, each with its last-seen time.
    type Kept = (
        Vec<((u32, u128), i64, Vec<(u16, i64)>)>,
        Vec<((u32, u128), i64, Vec<(u32, i64)>)>,
        Vec<(u128, i64)>,
    );

    fn kept(state: &State) -> Kept {
        let mut principals: Vec<_> = (state.principals.iter())
            .map(|(k, p)| {
                let mut c = p.countries.clone();
                c.sort_unstable();
                (*k, p.last_seen, c)
            })
            .collect();
        let mut technicians: Vec<_> = (state.technicians.iter())
            .map(|(k, t)| {
                let mut c = t.tenants.clone();
                c.sort_unstable();
                (*k, t.last_seen, c)
            })
            .collect();
        let mut ips: Vec<_> = state.ips.iter().map(|(k, i)| (*k, i.last_seen)).collect();
        principals.sort_unstable();
        technicians.sort_unstable();
        ips.sort_unstable();
        (principals, technicians, ips)
    }

    /// An eviction that skips the tables (nothing old enough) keeps exactly what a scan keeps:
    /// 75 days of sign-ins, some of them arriving up to 40 days late, evicted after every event,
    /// against the same events evicted by a scan every time.
    #[test]
    fn skipped_evictions_keep_exactly_what_a_scan_keeps() {
        use crate::testkit::sign_in;
        let config = DetectConfig::default();
        let (mut skipping, mut scanning) = (State::default(), State::default());
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        let (mut minute, mut skipped, mut removed) = (0i64, 0, 0);
        for i in 0..1500 {
            minute += next(150) as i64;
            let late = if next(20) == 0 {
                next(40 * 1440) as i64
            } else {
                0
            };
            let user = format!("user{}@contoso.com", next(40));
            let ip = format!("203.0.113.{}", next(30));
            let country = ["US", "FR", "JP", "BR"][next(4) as usize];
            let mut b = sign_in(&format!("e-{i}"), &user, minute - late)
                .ip(&ip)
                .place(country, "City", 10.0, 20.0);
            if next(5) == 0 {
                b = b.partner(&format!("{}a3bac44-0230-4732-9e70-cc00736f0a97", next(3)));
            }
            let event = b.build();
            skipping.update(&config, &event);
            scanning.update(&config, &event);
            let horizon = skipping.clock - RETENTION_SECS;
            skipped += usize::from(horizon <= skipping.evict_floor);
            let before = kept(&scanning);
            skipping.evict();
            scanning.evict_floor = i64::MIN;
            scanning.evict();
            let after = kept(&scanning);
            removed += usize::from(after != before);
            assert_eq!(kept(&skipping), after, "after event {i}");
        }
        assert!(skipped > 500, "evictions skipped: {skipped}");
        assert!(removed > 50, "evictions that removed something: {removed}");
        assert!(!skipping.technicians.is_empty());
    }
}
