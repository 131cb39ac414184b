//! What the state keeps per user or service principal in one tenant ([`PrincipalState`]): when it
//! was seen, its successes and countries, its last located sign-in ([`Fix`]), recent password and
//! disabled-account failures, and the times of the bursts and risks the rules ask about.

use std::net::IpAddr;

use entrawatch_ingest::model::SignIn;
use serde::{Deserialize, Serialize};

use crate::keys::country_code;

/// Usable coordinates: finite, in range, and not the (0, 0) some sources write for "unknown".
pub fn valid_coordinates(lat: f64, lon: f64) -> bool {
    lat.is_finite()
        && lon.is_finite()
        && lat.abs() <= 90.0
        && lon.abs() <= 180.0
        && !(lat == 0.0 && lon == 0.0)
}

/// The last successful sign-in with coordinates of a principal, for travel.
///
/// Rewritten in place by every such sign-in: the texts keep their buffers (a record id is the
/// same length each time), and the address is parsed again only when it changed.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fix {
    pub at: i64,
    pub lat: f32,
    pub lon: f32,
    pub country: u16,
    pub ip: u128,
    /// The sign-in's record id, source address and city, so a travel alert can name both ends.
    pub event_id: String,
    pub addr: Option<IpAddr>,
    pub city: Option<String>,
}

impl Fix {
    /// Makes this the fix of sign-in `s` (whose address has the key `ip`, 0 when none).
    pub(super) fn set(
        &mut self,
        s: &SignIn,
        event_id: &str,
        at: i64,
        (lat, lon): (f64, f64),
        ip: u128,
    ) {
        self.at = at;
        (self.lat, self.lon) = (lat as f32, lon as f32);
        self.country = country_code(s.location.country_or_region.as_deref());
        if ip != self.ip || ip == 0 {
            self.addr = parse_addr(s);
        }
        self.ip = ip;
        event_id.clone_into(&mut self.event_id);
        match (s.location.city.as_deref(), &mut self.city) {
            (Some(new), Some(city)) => new.clone_into(city),
            (new, city) => *city = new.map(str::to_owned),
        }
    }
}

fn parse_addr(s: &SignIn) -> Option<IpAddr> {
    s.ip_address.as_deref().and_then(crate::keys::parse_ip)
}

/// Cap on the sessions a principal keeps for `session-token-replay` (the oldest makes room).
pub const MAX_SESSIONS: usize = 4;

/// A recent sign-in session of a principal (`sessionId`), for `session-token-replay`: where it
/// began (the first successful sign-in seen with it) and when it was last used from there.
/// Plain values only: a session seen again is updated in place, a new one reuses the oldest slot.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionUse {
    /// The low 64 bits of [`crate::keys::key128`] of the session id (one principal keeps a few
    /// sessions: 64 bits tell them apart).
    pub session: u64,
    /// The last use from the place the session began.
    pub at: i64,
    /// The low 64 bits of the city's key (0 when none) and of the source address's key (0 when
    /// none); the address itself, for the alert.
    pub city: u64,
    pub ip: u64,
    pub addr: Option<IpAddr>,
    pub country: u16,
    /// ID Protection flagged the origin's network as anonymising or malicious.
    pub hostile: bool,
}

impl SessionUse {
    /// Whether `s` is from the place this session began: the same country and city (an office's
    /// IPv4 and IPv6 addresses), or the same address (`ip`, its [`crate::keys::key128`]).
    pub fn same_place(&self, s: &SignIn, ip: u128) -> bool {
        (ip != 0 && ip as u64 == self.ip)
            || (country_code(s.location.country_or_region.as_deref()) == self.country
                && city_key(s) as u64 == self.city)
    }
}

/// [`crate::keys::key128`] of a sign-in's city, 0 when none.
pub fn city_key(s: &SignIn) -> u128 {
    s.location
        .city
        .as_deref()
        .filter(|c| !crate::keys::trimmed(c).is_empty())
        .map_or(0, crate::keys::key128)
}

/// One user or service principal in one tenant.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct PrincipalState {
    pub first_seen: i64,
    pub last_seen: i64,
    /// Successful sign-ins seen (the learning period counts them).
    pub successes: u32,
    /// Countries of successful interactive sign-ins, with the last time each was seen.
    pub countries: Vec<(u16, i64)>,
    pub last_fix: Option<Fix>,
    /// Times of recent password-check failures (pruned to the brute-force window).
    pub failures: Vec<i64>,
    /// When a brute-force burst against this principal was last detected.
    pub brute_force_at: Option<i64>,
    /// Recent attempts at the disabled account: (time, source IP key).
    pub disabled_attempts: Vec<(i64, u128)>,
    /// When attempts at the disabled account last met the `disabled-account-sign-in` threshold.
    pub disabled_burst_at: Option<i64>,
    /// When the account was closed: the first successful `Disable account`, `Delete user` or `Hard
    /// Delete user` audit (or `Update user` turning `AccountEnabled` off) since it was last open.
    /// Cleared when an audit reopens it ([`super::account_change`]).
    pub disabled_at: Option<i64>,
    /// The [`AfterDisable`] level of the sign-ins after `disabled_at` that
    /// `sign-in-after-account-disabled` has reported (0 none), so each level fires once per close.
    #[serde(default)]
    pub disabled_reported: u8,
    /// When this principal last had a risky sign-in (medium or high risk, at risk).
    pub risky_sign_in_at: Option<i64>,
    /// Times of recent MFA denials and unanswered prompts (500121), pruned to the `mfa-fatigue`
    /// window and capped.
    pub mfa_denials: Vec<i64>,
    /// The last denial of an `mfa-fatigue` burst (the threshold met); cleared by the first
    /// interactive success after it.
    pub mfa_fatigue_at: Option<i64>,
    /// When this principal last signed in successfully through the device-code flow.
    pub device_code_at: Option<i64>,
    /// Recent sessions of successful user sign-ins ([`SessionUse`]), at most [`MAX_SESSIONS`],
    /// forgotten 30 days after their last use from where they began.
    #[serde(default)]
    pub sessions: Vec<SessionUse>,
}

/// How long after an account was closed a successful sign-in may still be the disable reaching
/// every replica, or a token issued just before it: 5 minutes.
pub const DISABLE_GRACE_SECS: i64 = 300;

/// A successful sign-in after the account was closed (`sign-in-after-account-disabled`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AfterDisable {
    pub disabled_at: i64,
    /// Within [`DISABLE_GRACE_SECS`] of the close.
    pub in_grace: bool,
}

impl AfterDisable {
    /// 1 within the grace, 2 after it: each level is reported once per close.
    pub fn level(self) -> u8 {
        if self.in_grace { 1 } else { 2 }
    }
}

impl PrincipalState {
    /// A successful sign-in at `now` after the account was closed and not reopened, unless one of
    /// its level was already reported for this close.
    pub fn after_disable(&self, now: i64) -> Option<AfterDisable> {
        let disabled_at = self.disabled_at.filter(|at| now >= *at)?;
        let found = AfterDisable {
            disabled_at,
            in_grace: now - disabled_at <= DISABLE_GRACE_SECS,
        };
        (found.level() > self.disabled_reported).then_some(found)
    }

    /// Whether the principal has a baseline: `days` of history and `sign_ins` successes.
    pub fn has_baseline(&self, now: i64, days: i64, sign_ins: u32) -> bool {
        now - self.first_seen >= days * 86_400 && self.successes >= sign_ins
    }

    /// The session `key` ([`crate::keys::key128`] of a `sessionId`), when kept.
    pub fn session(&self, key: u128) -> Option<&SessionUse> {
        self.sessions.iter().find(|u| u.session == key as u64)
    }

    /// Learns a successful user sign-in `s` of session `key` from address key `ip` at `now`: a
    /// session seen from where it began is touched; a session seen elsewhere keeps its origin; a
    /// new session takes a free slot, else the least recently used one. Allocates only when the
    /// list grows (a principal's first session).
    pub fn learn_session(&mut self, s: &SignIn, key: u128, ip: u128, now: i64) {
        if let Some(u) = self.sessions.iter_mut().find(|u| u.session == key as u64) {
            if u.same_place(s, ip) {
                u.at = u.at.max(now);
            }
            return;
        }
        let new = SessionUse {
            session: key as u64,
            at: now,
            country: country_code(s.location.country_or_region.as_deref()),
            city: city_key(s) as u64,
            ip: ip as u64,
            addr: parse_addr(s),
            hostile: crate::detectors::hostile_network(s).is_some(),
        };
        if self.sessions.len() < MAX_SESSIONS {
            if self.sessions.capacity() == 0 {
                self.sessions.reserve_exact(MAX_SESSIONS);
            }
            self.sessions.push(new);
        } else if let Some(oldest) = self.sessions.iter_mut().min_by_key(|u| u.at) {
            *oldest = new;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DetectConfig;
    use crate::state::State;

    /// The fix is rewritten in place by each successful sign-in with coordinates, and always
    /// names the newest one: its id, address (parsed again only when it changed) and city.
    #[test]
    fn the_last_fix_follows_each_located_sign_in() {
        use crate::testkit::sign_in;
        let config = DetectConfig::default();
        let mut state = State::default();
        let fix_of = |state: &State| {
            let p = state.principals.values().next().unwrap();
            let f = p.last_fix.clone().unwrap();
            (
                f.event_id,
                f.addr.map(|a| a.to_string()),
                f.city,
                f.country,
                f.at,
            )
        };
        let steps = [
            ("e-1", "203.0.113.10", Some(("US", "Seattle"))),
            ("e-2", "203.0.113.10", Some(("FR", "Paris"))),
            ("e-3", " 2001:DB8::1 ", Some(("JP", "Tokyo"))),
            ("e-4", "198.51.100.7", None),
        ];
        for (minute, (id, ip, place)) in steps.iter().enumerate() {
            let mut b = sign_in(id, "ann@contoso.com", minute as i64).ip(ip);
            b = match place {
                Some((country, city)) => b.place(country, city, 10.0 + minute as f64, 20.0),
                None => b.with(|s| s.location.city = None),
            };
            state.update(&config, &b.build());
            let (event_id, addr, city, country, at) = fix_of(&state);
            assert_eq!(event_id, *id);
            let want_addr = ip.trim().parse::<IpAddr>().unwrap().to_string();
            assert_eq!(addr.as_deref(), Some(want_addr.as_str()), "{id}");
            match place {
                Some((c, town)) => {
                    assert_eq!(city.as_deref(), Some(*town));
                    assert_eq!(country, country_code(Some(c)));
                }
                // The testkit's default place keeps its coordinates; only the city is gone.
                None => assert_eq!(city, None),
            }
            assert_eq!(at, crate::testkit::at(minute as i64).timestamp());
        }
        // A sign-in without coordinates leaves the fix alone.
        let b = sign_in("e-5", "ann@contoso.com", 9)
            .ip("192.0.2.1")
            .with(|s| {
                s.location.latitude = None;
            });
        state.update(&config, &b.build());
        assert_eq!(fix_of(&state).0, "e-4");
    }
}
