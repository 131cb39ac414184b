//! How the state learns from one event ([`State::update`]), after the detectors have decided on
//! it: a sign-in updates its principal, its source address, its stream and, for a partner
//! technician, the technician; an audit closing or reopening accounts marks its targets.
//!
//! What a rule alone remembers is learnt by that rule's own file, called from here with the
//! record it lives in: `password-spray` ([`SprayState`] of the address), `brute-force`,
//! `mfa-fatigue` and `disabled-account-sign-in` (their lists of the principal).
//!
//! [`SprayState`]: crate::detectors::password_spray::SprayState

use entrawatch_ingest::model::{AuditResult, Body, Event, SignIn};

use super::lists::{push_capped, touch_tenant};
use super::{
    AccountChange, Fix, PrincipalState, State, Stream, StreamState, TechnicianState,
    account_change, account_ids, valid_coordinates,
};
use crate::config::DetectConfig;
use crate::detectors::disabled_account_sign_in::{self, DISABLED_ACCOUNT_CODE};
use crate::detectors::mfa_fatigue::{self, MFA_DENIED_CODE};
use crate::detectors::{PASSWORD_FAILURE_CODES, brute_force};
use crate::keys::{SignInKeys, country_code, key128};

/// Cap on the countries a principal keeps, so a hostile input cannot grow one key without bound.
const MAX_COUNTRIES: usize = 16;

impl State {
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
                self.touch_stream(config, tenant, Stream::SignIns, now);
                self.update_sign_in(config, tenant, s, keys, &event.meta.id, now);
            }
            Body::Audit(a) => {
                self.touch_stream(config, tenant, Stream::Audits, now);
                let succeeded = a.result.as_ref().is_none_or(|r| *r == AuditResult::Success);
                if succeeded {
                    self.learn_app(config, tenant, a, now);
                }
                if let Some(change) = account_change(a) {
                    for id in a.target_resources.iter().flat_map(account_ids) {
                        let key = key128(id);
                        match change {
                            AccountChange::Closed => {
                                let p = self.principal_mut(tenant, key, now);
                                // Closed again while closed: the account has been shut since the first.
                                if p.disabled_at.is_none_or(|at| at > now) {
                                    p.disabled_at = Some(now);
                                    p.disabled_reported = 0;
                                }
                            }
                            AccountChange::Reopened => {
                                if let Some(p) = self.principals.get_mut(&(tenant, key)) {
                                    p.disabled_at = None;
                                    p.disabled_reported = 0;
                                }
                            }
                        }
                    }
                }
            }
            _ => {}
        }
    }

    /// Counts an event of a stream ([`StreamState::touch`]).
    fn touch_stream(&mut self, config: &DetectConfig, tenant: u32, stream: Stream, now: i64) {
        self.streams
            .entry((tenant, stream))
            .or_insert_with(|| StreamState::new(now))
            .touch(
                now,
                &config
                    .rule::<crate::detectors::log_source_silent::Settings>()
                    .silence(stream),
            );
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
        let (ip, id) = (keys.ip, keys.principal);
        if let Some(id) = id {
            let p = self.principal_mut(tenant, id, now);
            match s.error_code {
                Some(0) => {
                    p.successes = p.successes.saturating_add(1);
                    mfa_fatigue::learn_success(p, s);
                    if s.is_device_code() && s.is_user() {
                        p.device_code_at = Some(p.device_code_at.map_or(now, |at| at.max(now)));
                    }
                    if s.is_user()
                        && let Some(session) = keys.session
                    {
                        p.learn_session(s, session, ip.unwrap_or(0), now);
                    }
                    if s.is_user()
                        && let Some(after) = p.after_disable(now)
                    {
                        p.disabled_reported = after.level();
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
                    brute_force::learn(p, config.rule(), now);
                }
                Some(MFA_DENIED_CODE) if s.is_user() => {
                    mfa_fatigue::learn_denial(p, config.rule(), now)
                }
                Some(DISABLED_ACCOUNT_CODE) => {
                    disabled_account_sign_in::learn(p, config.rule(), ip.unwrap_or(0), now);
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
        if s.is_success() && s.is_user() && s.is_device_code() {
            let at = self.device_code_tenants.entry(tenant).or_insert(now);
            *at = (*at).max(now);
        }
        if let Some(ip) = ip {
            let entry = self.ips.entry(ip).or_default();
            entry.last_seen = entry.last_seen.max(now);
            if let (Some(code), Some(user)) = (s.error_code, id)
                && PASSWORD_FAILURE_CODES.contains(&code)
            {
                entry
                    .spray
                    .learn_failure(config.rule(), s, event_id, (user, tenant), now);
            }
            if let Some(user) = id.filter(|_| s.is_success() && s.is_user()) {
                entry.spray.learn_success(user, now);
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
}
