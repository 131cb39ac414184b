//! All detection state: compact 30-day history per principal, per partner technician, per source IP
//! and per tenant stream. The engine updates it after the detectors have decided on an event, so a
//! detector always sees the history *before* the event it is judging.
//!
//! Times are event times in whole seconds; ids are 128-bit keys (a GUID's value, else a hash), tenant
//! ids are interned, and every list is pruned to its window and capped, so memory per principal stays
//! bounded whatever the input.

use std::collections::HashMap;
use std::net::IpAddr;

use entrawatch_ingest::model::{AuditResult, Body, Event, SignIn};
use serde::{Deserialize, Serialize};

use crate::config::{DetectConfig, Thresholds};
use crate::keys::{KeyHash, SignInKeys, country_code, key128};

/// How long history is kept (event time).
pub const RETENTION_SECS: i64 = 30 * 24 * 3600;
/// Password-check failure codes (DETECTORS.md: spray and brute force).
pub const PASSWORD_FAILURE_CODES: [i64; 4] = [50126, 50053, 50055, 50056];
/// Account disabled.
pub const DISABLED_ACCOUNT_CODE: i64 = 50057;
/// A success from an IP this soon after it last sprayed raises `password-spray` to high.
pub const SPRAY_SUCCESS_SECS: i64 = 3600;

/// Caps on the small lists, so a hostile input cannot grow one key without bound.
const MAX_COUNTRIES: usize = 16;
const MAX_FAILURES: usize = 64;
const MAX_IP_FAILURES: usize = 256;
const MAX_TENANTS: usize = 64;
const MAX_SPRAY_HITS: usize = 16;

/// Usable coordinates: finite, in range, and not the (0, 0) some sources write for "unknown".
pub fn valid_coordinates(lat: f64, lon: f64) -> bool {
    lat.is_finite()
        && lon.is_finite()
        && lat.abs() <= 90.0
        && lon.abs() <= 180.0
        && !(lat == 0.0 && lon == 0.0)
}

/// Interned tenant ids.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct Tenants {
    ids: HashMap<String, u32, KeyHash>,
    names: Vec<String>,
}

impl Tenants {
    pub fn intern(&mut self, tenant: &str) -> u32 {
        if let Some(&i) = self.ids.get(tenant) {
            return i;
        }
        let i = self.names.len() as u32;
        self.ids.insert(tenant.to_owned(), i);
        self.names.push(tenant.to_owned());
        i
    }

    pub fn get(&self, tenant: &str) -> Option<u32> {
        self.ids.get(tenant).copied()
    }

    pub fn name(&self, i: u32) -> &str {
        &self.names[i as usize]
    }
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
    fn set(&mut self, s: &SignIn, event_id: &str, at: i64, (lat, lon): (f64, f64), ip: u128) {
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
    s.ip_address.as_deref().and_then(|a| a.trim().parse().ok())
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
    /// When a successful `Disable account` audit targeted this user; cleared by the first successful
    /// sign-in after it (the one `disabled-account-sign-in` reports).
    pub disabled_at: Option<i64>,
    /// When this principal last had a risky sign-in (medium or high risk, at risk).
    pub risky_sign_in_at: Option<i64>,
}

impl PrincipalState {
    /// Whether the principal has a baseline: `days` of history and `sign_ins` successes.
    pub fn has_baseline(&self, now: i64, days: i64, sign_ins: u32) -> bool {
        now - self.first_seen >= days * 86_400 && self.successes >= sign_ins
    }

    pub fn seen_country_since(&self, country: u16, since: i64) -> bool {
        self.countries
            .iter()
            .any(|(c, at)| *c == country && *at >= since)
    }

    pub fn failures_since(&self, since: i64) -> usize {
        self.failures.iter().filter(|t| **t >= since).count()
    }

    /// Attempts at the disabled account at or after `since`, and their distinct known source IPs,
    /// counting one more attempt from `plus` (an IP key, 0 for none) that is not stored yet.
    pub fn disabled_counts(&self, since: i64, plus: Option<u128>) -> (u32, u32) {
        let mut ips: Vec<u128> = Vec::new();
        let mut attempts = 0;
        let recent = self
            .disabled_attempts
            .iter()
            .filter(|(at, _)| *at >= since)
            .map(|(_, ip)| *ip);
        for ip in recent.chain(plus) {
            attempts += 1;
            if ip != 0 && !ips.contains(&ip) {
                ips.push(ip);
            }
        }
        (attempts, ips.len() as u32)
    }

    /// Whether attempts (`disabled_counts`) meet the `disabled-account-sign-in` threshold.
    pub fn disabled_threshold_met(t: &Thresholds, (attempts, ips): (u32, u32)) -> bool {
        attempts >= t.disabled_min_attempts || ips >= t.disabled_min_ips
    }
}

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
    /// Service-provider sign-ins from this IP: (tenant, last time).
    pub partner_tenants: Vec<(u32, i64)>,
}

impl IpState {
    /// Distinct users and tenants with failures at or after `since`.
    pub fn spray_counts(&self, since: i64) -> (usize, usize) {
        let recent = |f: &(i64, u128, u32)| f.0 >= since;
        (
            distinct(&self.failures, recent, |f| f.1, None),
            distinct(&self.failures, recent, |f| f.2, None),
        )
    }

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

/// The log streams `log-source-silent` watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Stream {
    SignIns,
    Audits,
}

impl Stream {
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::SignIns => "sign-ins",
            Stream::Audits => "audits",
        }
    }
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct StreamState {
    pub first: i64,
    pub last: i64,
    pub events: u64,
    /// The longest gap between two consecutive events seen so far (seconds): the stream's own
    /// rhythm, so a tenant that is quiet every night is not reported silent every night.
    pub longest_gap: i64,
}

impl StreamState {
    /// Seconds of silence that make this stream silent: the configured hours, or one and a half
    /// times the stream's longest normal gap, whichever is longer.
    pub fn silence_limit(&self, hours: i64) -> i64 {
        (hours * 3600).max(self.longest_gap.saturating_mul(3) / 2)
    }
}

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

    /// Learns from one event, after the detectors decided on it.
    pub fn update(&mut self, config: &DetectConfig, event: &Event) {
        self.update_keyed(config, event, SignInKeys::of_event(event));
    }

    /// [`State::update`] with the event's keys already made ([`SignInKeys::of_event`]).
    pub fn update_keyed(&mut self, config: &DetectConfig, event: &Event, keys: SignInKeys) {
        let now = event.meta.time.timestamp();
        self.clock = self.clock.max(now);
        // Every time this event may store (last seen, a country's or a tenant's time) is `now`.
        self.evict_floor = self.evict_floor.min(now);
        let tenant = self.tenants.intern(&event.meta.tenant_id);
        match &event.body {
            Body::SignIn(s) => {
                let t = &config.thresholds;
                self.touch_stream(
                    tenant,
                    Stream::SignIns,
                    now,
                    t.silent_sign_ins_hours,
                    t.learning_days,
                );
                self.update_sign_in(config, tenant, s, keys, &event.meta.id, now);
            }
            Body::Audit(a) => {
                let t = &config.thresholds;
                self.touch_stream(
                    tenant,
                    Stream::Audits,
                    now,
                    t.silent_audits_hours,
                    t.learning_days,
                );
                let succeeded = a.result.as_ref().is_none_or(|r| *r == AuditResult::Success);
                if succeeded
                    && a.activity_display_name
                        .eq_ignore_ascii_case("Disable account")
                {
                    for target in &a.target_resources {
                        if let Some(id) = &target.id {
                            let p = self.principal_mut(tenant, key128(id), now);
                            p.disabled_at = Some(now);
                        }
                    }
                }
            }
            _ => {}
        }
    }

    /// Counts an event of a stream. During the learning period every gap is learned as the stream's
    /// rhythm; after it, a gap long enough to have been reported silent is an outage and is not.
    fn touch_stream(
        &mut self,
        tenant: u32,
        stream: Stream,
        now: i64,
        silent_hours: i64,
        learning_days: i64,
    ) {
        let s = self.streams.entry((tenant, stream)).or_insert(StreamState {
            first: now,
            last: now,
            ..StreamState::default()
        });
        s.events += 1;
        let gap = now - s.last;
        let learning = now - s.first < learning_days * 86_400;
        if learning || gap < s.silence_limit(silent_hours) {
            s.longest_gap = s.longest_gap.max(gap);
        }
        s.last = s.last.max(now);
        s.first = s.first.min(now);
    }

    fn principal_mut(&mut self, tenant: u32, key: u128, now: i64) -> &mut PrincipalState {
        let p = self
            .principals
            .entry((tenant, key))
            .or_insert(PrincipalState {
                first_seen: now,
                last_seen: now,
                ..PrincipalState::default()
            });
        p.first_seen = p.first_seen.min(now);
        p.last_seen = p.last_seen.max(now);
        p
    }

    fn update_sign_in(
        &mut self,
        config: &DetectConfig,
        tenant: u32,
        s: &SignIn,
        keys: SignInKeys,
        event_id: &str,
        now: i64,
    ) {
        let t = &config.thresholds;
        let (ip, id) = (keys.ip, keys.principal);
        if let Some(id) = id {
            let p = self.principal_mut(tenant, id, now);
            match s.error_code {
                Some(0) => {
                    p.successes = p.successes.saturating_add(1);
                    if p.disabled_at.is_some_and(|d| now >= d) {
                        p.disabled_at = None;
                    }
                    if s.is_interactive() {
                        let country = country_code(s.location.country_or_region.as_deref());
                        if country != 0 {
                            match p.countries.iter_mut().find(|(c, _)| *c == country) {
                                Some(entry) => entry.1 = entry.1.max(now),
                                None => push_capped(
                                    &mut p.countries,
                                    (country, now),
                                    MAX_COUNTRIES,
                                    |(_, at)| *at,
                                ),
                            }
                        }
                    }
                    if let (Some(lat), Some(lon)) = (s.location.latitude, s.location.longitude)
                        && valid_coordinates(lat, lon)
                    {
                        p.last_fix.get_or_insert_with(Fix::default).set(
                            s,
                            event_id,
                            now,
                            (lat, lon),
                            ip.unwrap_or(0),
                        );
                    }
                }
                Some(code) if PASSWORD_FAILURE_CODES.contains(&code) => {
                    let window = t.brute_force_window_minutes * 60;
                    p.failures.retain(|at| *at > now - window);
                    let cap = MAX_FAILURES.max(t.brute_force_min_failures as usize);
                    push_capped(&mut p.failures, now, cap, |at| *at);
                    if p.failures.len() as u32 >= t.brute_force_min_failures {
                        p.brute_force_at = Some(now);
                    }
                }
                Some(DISABLED_ACCOUNT_CODE) => {
                    let window = t.disabled_window_hours * 3600;
                    let counts = p.disabled_counts(now - window + 1, Some(ip.unwrap_or(0)));
                    if PrincipalState::disabled_threshold_met(t, counts) {
                        p.disabled_burst_at = Some(now);
                    }
                    p.disabled_attempts.retain(|(at, _)| *at > now - window);
                    let cap = MAX_FAILURES.max(t.disabled_min_attempts as usize);
                    push_capped(
                        &mut p.disabled_attempts,
                        (now, ip.unwrap_or(0)),
                        cap,
                        |(at, _)| *at,
                    );
                }
                _ => {}
            }
            let risky = [&s.risk_level_during_sign_in, &s.risk_level_aggregated]
                .iter()
                .any(|l| {
                    l.as_ref().is_some_and(|l| {
                        matches!(
                            l,
                            entrawatch_ingest::model::RiskLevel::Medium
                                | entrawatch_ingest::model::RiskLevel::High
                        )
                    })
                })
                && s.risk_state.as_ref().is_some_and(|r| r.is_active());
            if risky {
                p.risky_sign_in_at = Some(now);
            }
        }
        if let Some(ip) = ip {
            let entry = self.ips.entry(ip).or_default();
            entry.last_seen = entry.last_seen.max(now);
            if let (Some(code), Some(user)) = (s.error_code, id)
                && PASSWORD_FAILURE_CODES.contains(&code)
            {
                let window = t.spray_window_minutes * 60;
                let (users, tenants) = entry.spray_counts_with(now, window, user, Some(tenant));
                if let Some(report) = entry.spray_report(t, now, users, tenants) {
                    if report.opens {
                        entry.spray_hits.clear();
                    }
                    entry.spray_reported = (report.users, report.tenants);
                }
                if users >= t.spray_min_users {
                    entry.spray_at = Some(now);
                }
                entry.failures.retain(|(at, _, _)| *at > now - window);
                push_capped(
                    &mut entry.failures,
                    (now, user, tenant),
                    MAX_IP_FAILURES,
                    |(at, _, _)| *at,
                );
            }
            if let Some(user) = id.filter(|_| s.is_success() && s.is_user())
                && entry.spray_hit_is_new(now, user)
            {
                entry.spray_hits.push(user);
            }
        }
        // Only a successful sign-in means the technician reached the tenant: an interrupt (50074)
        // or a failure must not make a later first success look familiar.
        let partner = crate::privileged::PrivilegedDirectory::is_partner_technician(config, s);
        if partner
            && s.is_success()
            && let (Some(home), Some(user)) = (s.home_tenant_id.as_deref(), s.user_id.as_deref())
        {
            let home = self.tenants.intern(home);
            let tech = self
                .technicians
                .entry((home, key128(user)))
                .or_insert(TechnicianState {
                    first_seen: now,
                    last_seen: now,
                    ..TechnicianState::default()
                });
            tech.last_seen = tech.last_seen.max(now);
            tech.sign_ins = tech.sign_ins.saturating_add(1);
            touch_tenant(&mut tech.tenants, tenant, now);
            let partners = self.partners_of.entry(tenant).or_default();
            if !partners.contains(&home) {
                partners.push(home);
            }
            if let Some(ip) = ip {
                let entry = self.ips.entry(ip).or_default();
                touch_tenant(&mut entry.partner_tenants, tenant, now);
            }
        }
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
        self.principals
            .retain(|_, p| kept_since(horizon, p.last_seen, &mut p.countries, &mut floor));
        self.technicians
            .retain(|_, t| kept_since(horizon, t.last_seen, &mut t.tenants, &mut floor));
        self.ips.retain(|_, i| {
            let keep = i.last_seen >= horizon;
            if keep {
                floor = floor.min(i.last_seen);
            }
            keep
        });
        self.evict_floor = floor;
    }

    /// Approximate bytes of the per-principal, per-technician and per-IP state, as the process
    /// holds them: each table's bucket array at its capacity (entries plus a control byte, at
    /// hashbrown's 7/8 load), and every list and string at its capacity plus the allocator's
    /// per-block cost. `entrawatch bench` compares it with the growth of resident memory.
    pub fn approx_bytes(&self) -> usize {
        use std::mem::size_of;
        let principals: usize = self
            .principals
            .values()
            .map(|p| {
                heap(p.countries.capacity() * size_of::<(u16, i64)>())
                    + heap(p.failures.capacity() * size_of::<i64>())
                    + heap(p.disabled_attempts.capacity() * size_of::<(i64, u128)>())
                    + p.last_fix.as_ref().map_or(0, |f| {
                        heap(f.event_id.capacity())
                            + f.city.as_ref().map_or(0, |c| heap(c.capacity()))
                    })
            })
            .sum();
        let technicians: usize = self
            .technicians
            .values()
            .map(|t| heap(t.tenants.capacity() * size_of::<(u32, i64)>()))
            .sum();
        let ips: usize = self
            .ips
            .values()
            .map(|i| {
                heap(i.failures.capacity() * size_of::<(i64, u128, u32)>())
                    + heap(i.partner_tenants.capacity() * size_of::<(u32, i64)>())
                    + heap(i.spray_hits.capacity() * size_of::<u128>())
            })
            .sum();
        principals
            + table(
                self.principals.capacity(),
                size_of::<((u32, u128), PrincipalState)>(),
            )
            + technicians
            + table(
                self.technicians.capacity(),
                size_of::<((u32, u128), TechnicianState)>(),
            )
            + ips
            + table(self.ips.capacity(), size_of::<(u128, IpState)>())
    }
}

/// Bytes a heap block of `n` bytes takes: a header and rounding to 16, 32 at least (glibc's
/// malloc; other allocators are close). Nothing for an empty list, which allocates nothing.
fn heap(n: usize) -> usize {
    if n == 0 {
        0
    } else {
        (n + 8).next_multiple_of(16).max(32)
    }
}

/// Bytes of a hash table that can hold `capacity` entries of `entry` bytes: a power-of-two bucket
/// array at most 7/8 full, with one control byte per bucket.
fn table(capacity: usize, entry: usize) -> usize {
    if capacity == 0 {
        return 0;
    }
    let buckets = (capacity * 8 / 7).next_power_of_two();
    heap(buckets * (entry + 1) + 16)
}

fn touch_tenant(list: &mut Vec<(u32, i64)>, tenant: u32, now: i64) {
    match list.iter_mut().find(|(t, _)| *t == tenant) {
        Some(entry) => entry.1 = entry.1.max(now),
        None => push_capped(list, (tenant, now), MAX_TENANTS, |(_, at)| *at),
    }
}

/// Eviction of one entry last seen at `last_seen`, with a list of dated items: drops the items
/// older than `horizon`, and says whether the entry is kept. For a kept entry, lowers `floor` to
/// its oldest time.
fn kept_since<T>(horizon: i64, last_seen: i64, items: &mut Vec<(T, i64)>, floor: &mut i64) -> bool {
    items.retain(|(_, at)| *at >= horizon);
    let keep = last_seen >= horizon;
    if keep {
        *floor = items
            .iter()
            .fold((*floor).min(last_seen), |f, (_, at)| f.min(*at));
    }
    keep
}

/// How many distinct keys there are among `extra` and the items that `keep` accepts, counted
/// without storing them: an item counts when neither `extra` nor an earlier kept item has its key.
/// Asked on every password failure; the scan stops at the first earlier match, so repeats of a
/// few keys cost little and all-distinct keys cost what a list of seen keys would.
fn distinct<T, K: PartialEq>(
    items: &[T],
    keep: impl Fn(&T) -> bool,
    key: impl Fn(&T) -> K,
    extra: Option<K>,
) -> usize {
    let mut count = usize::from(extra.is_some());
    for (j, item) in items.iter().enumerate() {
        if !keep(item) {
            continue;
        }
        let k = key(item);
        let seen = extra.as_ref() == Some(&k)
            || items[..j]
                .iter()
                .any(|earlier| keep(earlier) && key(earlier) == k);
        if !seen {
            count += 1;
        }
    }
    count
}

/// Pushes, dropping the oldest entry (by `time_of`) when the list is full.
fn push_capped<T>(list: &mut Vec<T>, item: T, cap: usize, time_of: impl Fn(&T) -> i64) {
    if list.len() >= cap
        && let Some((oldest, _)) = list.iter().enumerate().min_by_key(|(_, x)| time_of(x))
    {
        list.swap_remove(oldest);
    }
    list.push(item);
}

#[cfg(test)]
mod tests {
    use super::*;

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

    /// `distinct` counts what a set of the kept keys (and the extra one) holds.
    #[test]
    fn distinct_counts_what_a_set_holds() {
        let mut seed = 7u64;
        let mut next = |n: u64| {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            (seed >> 33) % n
        };
        for round in 0..500 {
            let len = next(40) as usize;
            let spread = 1 + next(12);
            let items: Vec<(i64, u64)> =
                (0..len).map(|_| (next(10) as i64, next(spread))).collect();
            let extra = (round % 3 != 0).then(|| next(spread));
            let keep = |x: &(i64, u64)| x.0 >= 4;
            let want: std::collections::HashSet<u64> = items
                .iter()
                .filter(|x| keep(x))
                .map(|x| x.1)
                .chain(extra)
                .collect();
            assert_eq!(
                distinct(&items, keep, |x| x.1, extra),
                want.len(),
                "{items:?} with {extra:?}"
            );
        }
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

    #[test]
    fn capped_lists_drop_the_oldest() {
        let mut v = vec![5, 1, 9];
        push_capped(&mut v, 10, 3, |x| *x);
        v.sort();
        assert_eq!(v, vec![5, 9, 10]);
    }
}
