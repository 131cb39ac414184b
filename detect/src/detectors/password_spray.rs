//! `password-spray`: see [`DOC`] for what it detects and why.

use std::marker::PhantomData;

use entrawatch_ingest::model::{Event, Kind, SignIn};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::{PASSWORD_FAILURE_CODES, app_name, plural, time_text};
use super::{place, who};
use crate::detector::{Context, Detector};
use crate::finding::{Finding, Principal, PrincipalKind, Severity};
use crate::settings::{Of, RuleSettings, SettingsKind};
use crate::state::{distinct, push_capped};

pub const ID: &str = "password-spray";

/// How many account names one spray finding lists (`targeted_accounts`); the alert's episode
/// keeps as many (alert/src/episodes.rs) and `targeted_accounts_total` has the true count.
pub const MAX_TARGETED_ACCOUNTS: usize = 50;

/// User documentation, printed by `entrawatch rules password-spray`.
pub const DOC: &str = r#"## What it detects
One source IP failing password checks (error codes 50126 invalid username or password, 50053
locked by smart lockout, 50055 expired password, 50056 invalid or missing password) against at
least `min_users` distinct users (default 10) within `window_minutes` (default 20),
across all the tenants entrawatch watches. It reports when the threshold is crossed, naming every
account the window holds; then once for each further account the spray targets (not for repeats
of an account it already tried), and when the number of users in the window doubles or the IP
reaches `high_tenants` tenants (default 3). These findings join one alert per tenant, whose
`targeted_accounts` lists the accounts (at most 50, with the true number in
`targeted_accounts_total`) and whose `event_ids` gain each failure's id; they notify only when the
alert opens, escalates or is due a reminder.
Severity is medium; high once the IP sprays `high_tenants` or more tenants. A successful
sign-in from the IP within an hour of its last spraying is reported high, once per user.

## Why it matters
Password spraying tries one or two common passwords against many accounts to stay under
per-account lockout. It is one of the most common ways into Entra ID tenants without MFA, and a CSP
partner watching many customers sees the same IP sweep tenant after tenant. A success that
follows is probably a guessed password. MITRE ATT&CK T1110.003 (Brute Force: Password
Spraying); the success is T1078.004 (Valid Accounts: Cloud Accounts).

## Signals used
`ipAddress`, `status.errorCode`, the user (`userId`, else `userPrincipalName`) and the tenant of
each failure, kept per IP by the engine for the spray window; successful sign-ins
(`errorCode` 0) from the same IP. Interrupts (50074, 50076, 50140, ...) are normal MFA and
"stay signed in" steps, not failures, and never count. Other failure codes (50034 unknown user,
50057 disabled account) are not password checks.

## Example
Between 02:10 and 02:24, 198.51.100.7 fails 50126 for 12 users of Contoso and Fabrikam: this
fires medium at the 10th user, principal `ip` 198.51.100.7, naming the 10 accounts; the 11th and
12th users join that alert. When it reaches a third customer tenant it fires high. At 02:41 `ann@contoso.com` signs in successfully from 198.51.100.7: this
fires high for that user: reset her password and revoke her sessions.

## Known false positives and tuning
A shared egress (corporate NAT, a school, a CSP's own office) where a misconfigured app or a
password change makes many users fail at once; mail clients retrying an expired password. The
success escalation then fires for ordinary users at the same address. Allow-list those egress
ranges (`allow.password-spray.ips`) or raise `min_users`. Sprays spread over many IPs
(botnets, residential proxies) stay below the per-IP threshold: rely on Entra ID Protection's
password spray risk detection for those.

## References
Microsoft Learn: "Password spray investigation" (incident response playbooks); "Microsoft Entra
authentication and authorization error codes" (AADSTS50126, 50053, 50055, 50056); "Protect user
accounts from attacks with Microsoft Entra smart lockout"; MITRE ATT&CK T1110.003.
"#;

/// `[detect.rules.password-spray]`: this rule's settings, each with its default.
#[derive(Debug, Clone, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// One IP failing passwords against this many accounts... (default 10).
    pub min_users: u32,
    /// ...within this many minutes is a spray (default 20).
    pub window_minutes: i64,
    /// A spray across this many tenants is high (default 3).
    pub high_tenants: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            min_users: 10,
            window_minutes: 20,
            high_tenants: 3,
        }
    }
}

impl RuleSettings for Settings {
    crate::settings_slot!();

    const KEYS: &'static [(&'static str, &'static str)] = &[
        (
            "min_users",
            "one IP failing passwords against this many accounts...",
        ),
        ("window_minutes", "...within this many minutes is a spray"),
        ("high_tenants", "a spray across this many tenants is high"),
    ];

    fn validate(&self, path: &str) -> Vec<String> {
        crate::settings::greater_than_zero(
            path,
            &[
                ("min_users", f64::from(self.min_users)),
                ("window_minutes", self.window_minutes as f64),
                ("high_tenants", f64::from(self.high_tenants)),
            ],
        )
    }
}

/// A success from an IP this soon after it last sprayed raises `password-spray` to high.
pub const SPRAY_SUCCESS_SECS: i64 = 3600;

/// Cap on the users whose success after a spray is remembered, so a hostile input cannot grow one
/// address without bound.
const MAX_SPRAY_HITS: usize = 16;

/// Cap on the named failures an IP keeps for its spray window ([`SprayState::named`]): the
/// accounts and event ids a spray's opening finding names.
pub const MAX_NAMED_FAILURES: usize = 50;

/// Cap on the accounts an open spray remembers as reported ([`SprayState::users`]); past it the
/// spray reports no further accounts one by one (doublings and reaching many tenants still report).
pub const MAX_SPRAY_USERS: usize = 1024;

/// Cap on the failures an IP keeps for its spray window ([`SprayState::failures`]).
const MAX_IP_FAILURES: usize = 256;

/// One password-check failure with what an alert names: when, whose (key and name), which record.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamedFailure {
    pub at: i64,
    pub user: u128,
    pub name: String,
    pub event_id: String,
}

/// What `password-spray` remembers per source IP (kept in [`crate::state::IpState`], evicted with
/// it): recent password failures, the spray the address is in and what of it was reported.
/// `brute-force` reads the failures too (a burst that is part of a spray is the spray's).
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct SprayState {
    /// Recent password-check failures: (time, user key, tenant), in event order.
    pub failures: Vec<(i64, u128, u32)>,
    /// When this IP was last found spraying.
    pub at: Option<i64>,
    /// The distinct users and tenants the current spray was last reported at.
    pub reported: (u32, u32),
    /// Users whose success from this IP after the current spray was reported (capped).
    pub hits: Vec<u128>,
    /// The latest password-check failures in the spray window with the account's name and the
    /// record id, oldest first (capped at [`MAX_NAMED_FAILURES`]).
    pub named: Vec<NamedFailure>,
    /// The accounts reported in the current spray (capped at [`MAX_SPRAY_USERS`]).
    pub users: Vec<u128>,
    /// How many distinct accounts the current spray has targeted (the true count, not capped).
    pub users_total: u32,
}

/// A spray worth reporting: the counts it is reported at, and whether it opens a new spray.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SprayReport {
    pub users: u32,
    pub tenants: u32,
    pub opens: bool,
}

impl SprayState {
    /// Distinct users and tenants failing from this IP in the window ending at `now`, counting one
    /// more failure, by `user` in `tenant` (`None`: a tenant never seen before), not stored yet.
    pub fn counts_with(
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

    /// Whether a failure that brings this IP to (`users`, `tenants`) in the window is news: the
    /// first crossing of `spray_min_users` after a quiet window, then only a doubling of the users
    /// reported, or reaching `spray_high_tenants`.
    pub fn report(&self, t: &Settings, now: i64, users: u32, tenants: u32) -> Option<SprayReport> {
        if users < t.min_users {
            return None;
        }
        let open = self.at.is_some_and(|at| at > now - t.window_minutes * 60);
        let (reported_users, reported_tenants) = self.reported;
        if !open {
            return Some(SprayReport {
                users,
                tenants,
                opens: true,
            });
        }
        let doubled = users >= reported_users.saturating_mul(2);
        let reached_high = tenants >= t.high_tenants && reported_tenants < t.high_tenants;
        (doubled || reached_high).then(|| SprayReport {
            users: users.max(reported_users),
            tenants: tenants.max(reported_tenants),
            opens: false,
        })
    }

    /// Whether a failure by `user` at `now` is a newly targeted account of the spray already open
    /// at this IP (each one is reported, until [`MAX_SPRAY_USERS`]).
    pub fn target_is_new(&self, now: i64, window_secs: i64, user: u128) -> bool {
        self.at.is_some_and(|at| at > now - window_secs)
            && self.users.len() < MAX_SPRAY_USERS
            && !self.users.contains(&user)
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

    /// Whether a successful sign-in by `user` from this IP is news: the IP sprayed within
    /// [`SPRAY_SUCCESS_SECS`] and this user's success was not reported yet.
    pub fn hit_is_new(&self, now: i64, user: u128) -> bool {
        self.at
            .is_some_and(|at| now >= at && now - at <= SPRAY_SUCCESS_SECS)
            && self.hits.len() < MAX_SPRAY_HITS
            && !self.hits.contains(&user)
    }

    /// Learns a password-check failure of sign-in `s` (record `event_id`) by `user` in `tenant`
    /// at `now`, after the detectors decided on it: the spray it opens or grows, what was
    /// reported of it, and the failure with its names.
    pub fn learn_failure(
        &mut self,
        t: &Settings,
        s: &SignIn,
        event_id: &str,
        (user, tenant): (u128, u32),
        now: i64,
    ) {
        let window = t.window_minutes * 60;
        let (users, tenants) = self.counts_with(now, window, user, Some(tenant));
        if self.at.is_none_or(|at| at <= now - window) {
            // No spray open: the accounts of the last one are of no more use.
            self.users = Vec::new();
        }
        let report = self.report(t, now, users, tenants);
        if report.is_some_and(|r| r.opens) {
            // A new spray: the accounts in the window are the ones its opening names.
            self.hits.clear();
            self.users = self.window_users(now, window, user);
            self.users_total = self.users.len() as u32;
            self.users.truncate(MAX_SPRAY_USERS);
        } else if self.target_is_new(now, window, user) {
            self.users.push(user);
            self.users_total = self.users_total.saturating_add(1);
        }
        if let Some(report) = report {
            self.reported = (report.users, report.tenants);
        }
        if users >= t.min_users {
            self.at = Some(now);
        }
        self.failures.retain(|(at, _, _)| *at > now - window);
        push_capped(
            &mut self.failures,
            (now, user, tenant),
            MAX_IP_FAILURES,
            |(at, _, _)| *at,
        );
        // The oldest entry (the list is in event order) makes room when it has left the window
        // or the list is full, and its text buffers are reused: a mistyped password from an
        // address that failed before allocates nothing.
        let named = &mut self.named;
        let recycle = named
            .first()
            .is_some_and(|f| f.at <= now - window || named.len() >= MAX_NAMED_FAILURES);
        let mut slot = if recycle {
            named.remove(0)
        } else {
            NamedFailure::default()
        };
        named.retain(|f| f.at > now - window);
        if named.capacity() == 0 {
            // Most addresses fail once or twice: room for one, not the default four.
            named.reserve_exact(1);
        }
        slot.at = now;
        slot.user = user;
        slot.name.clear();
        slot.name.push_str(super::who_str(s));
        slot.event_id.clear();
        slot.event_id.push_str(event_id);
        named.push(slot);
    }

    /// Learns a successful user sign-in by `user` at `now`: a hit of the spray when it is news.
    pub fn learn_success(&mut self, user: u128, now: i64) {
        if self.hit_is_new(now, user) {
            self.hits.push(user);
        }
    }

    /// Bytes on the heap, as [`crate::state::State::approx_bytes`] counts them.
    pub fn heap_bytes(&self) -> usize {
        use crate::state::heap;
        use std::mem::size_of;
        heap(self.failures.capacity() * size_of::<(i64, u128, u32)>())
            + heap(self.hits.capacity() * size_of::<u128>())
            + heap(self.users.capacity() * size_of::<u128>())
            + heap(self.named.capacity() * size_of::<NamedFailure>())
            + (self.named.iter())
                .map(|f| heap(f.name.capacity()) + heap(f.event_id.capacity()))
                .sum::<usize>()
    }
}

fn ip_principal(ip: &str) -> Principal {
    Principal {
        kind: PrincipalKind::Ip,
        id: ip.to_owned(),
        upn: None,
        home_tenant_id: None,
    }
}

/// A password-check failure: report the crossing, each account newly targeted by the open spray, a
/// doubling, or reaching many tenants.
fn on_failure(
    ctx: &Context<'_>,
    event: &Event,
    s: &SignIn,
    ip: &str,
    history: &SprayState,
    user: u128,
    out: &mut Vec<Finding>,
) {
    let t = ctx.config.rule::<Settings>();
    let now = event.meta.time.timestamp();
    let window = t.window_minutes * 60;
    let tenant = &event.meta.tenant_id;
    let (users, tenants) = history.counts_with(now, window, user, ctx.state.tenants.get(tenant));
    let report = history.report(t, now, users, tenants);
    let opens = report.is_some_and(|r| r.opens);
    let new_target = !opens && history.target_is_new(now, window, user);
    if report.is_none() && !new_target {
        return;
    }
    // The facts of the window, this failure included.
    let recent: Vec<&(i64, u128, u32)> = history
        .failures
        .iter()
        .filter(|(at, _, _)| *at > now - window)
        .collect();
    let first = recent
        .iter()
        .map(|(at, _, _)| *at)
        .min()
        .unwrap_or(now)
        .min(now);
    let mut tenant_ids: Vec<String> = recent
        .iter()
        .map(|(_, _, t)| ctx.state.tenants.name(*t).to_owned())
        .collect();
    tenant_ids.push(tenant.to_string());
    tenant_ids.sort();
    tenant_ids.dedup();

    let reached_high = tenants >= t.high_tenants;
    let severity = if reached_high {
        Severity::High
    } else {
        Severity::Medium
    };
    let (what, headline) = if opens {
        ("started", format!("Password spray from {ip}"))
    } else if report.is_none() {
        (
            "targeted another account",
            format!("Password spray from {ip} continues"),
        )
    } else if reached_high && history.reported.1 < t.high_tenants {
        (
            "reached many tenants",
            format!("Password spray from {ip} spread"),
        )
    } else {
        ("doubled", format!("Password spray from {ip} grew"))
    };
    // The accounts and records this finding adds to the spray: at the crossing, every failure the
    // spray window kept by name (this one first, so the alert id stays the crossing's); later,
    // this account when it is new to the spray.
    let mut event_ids = vec![event.meta.id.to_string()];
    let mut targeted: Vec<String> = Vec::new();
    let targeted_total = if opens {
        for f in history.named.iter().filter(|f| f.at > now - window) {
            if !event_ids.contains(&f.event_id) {
                event_ids.push(f.event_id.clone());
            }
            if !targeted.contains(&f.name) {
                targeted.push(f.name.clone());
            }
        }
        if !targeted.contains(&who(s)) {
            targeted.push(who(s));
        }
        users
    } else {
        if new_target {
            targeted.push(who(s));
        }
        history.users_total + u32::from(new_target)
    };
    targeted.truncate(MAX_TARGETED_ACCOUNTS);
    let title = format!(
        "{headline}: {} in {} failed password checks within {} minutes",
        plural(users, "user", "users"),
        plural(tenants, "tenant", "tenants"),
        t.window_minutes
    );
    let code = s.error_code.unwrap_or_default();
    let summary = format!(
        "{ip} ({}) failed password checks against {} distinct users in {} between {} and {} \
             ({} failures; latest: {code} for {} to {}). Block the address (Conditional Access \
             named location or the edge firewall), review successful sign-ins from it and reset \
             the password of any account that signed in, and make sure MFA covers every targeted \
             account.",
        place(s),
        users,
        plural(tenants, "tenant", "tenants"),
        time_text(first),
        time_text(now),
        recent.len() + 1,
        who(s),
        app_name(s),
    );
    let mut evidence = Map::new();
    evidence.insert("ip_address".into(), json!(ip));
    evidence.insert("location".into(), json!(place(s)));
    evidence.insert("report".into(), json!(what));
    evidence.insert("distinct_users".into(), json!(users));
    evidence.insert("tenants".into(), json!(tenant_ids));
    evidence.insert("targeted_accounts".into(), json!(targeted));
    evidence.insert("targeted_accounts_total".into(), json!(targeted_total));
    evidence.insert("failures_in_window".into(), json!(recent.len() + 1));
    evidence.insert("window_minutes".into(), json!(t.window_minutes));
    evidence.insert("first_failure_at".into(), json!(time_text(first)));
    evidence.insert("latest_user".into(), json!(who(s)));
    evidence.insert("latest_error_code".into(), json!(code));
    evidence.insert("latest_failure_reason".into(), json!(s.failure_reason));
    evidence.insert("app".into(), json!(app_name(s)));
    evidence.insert("client_app_used".into(), json!(s.client_app_used));
    evidence.insert("user_agent".into(), json!(s.user_agent));
    out.push(Finding {
        rule: ID,
        severity,
        tenant_id: tenant.to_string(),
        principal: ip_principal(ip),
        time: event.meta.time,
        event_ids,
        title,
        summary,
        evidence,
        mitre: &["T1110.003"],
        ip: Some(ip.to_owned()),
    });
}

/// A successful sign-in from an IP that sprayed within the hour: high, once per user.
fn on_success(
    event: &Event,
    s: &SignIn,
    ip: &str,
    history: &SprayState,
    user: u128,
    out: &mut Vec<Finding>,
) {
    let now = event.meta.time.timestamp();
    if !history.hit_is_new(now, user) {
        return;
    }
    let Some(sprayed_at) = history.at else {
        return;
    };
    let targeted = history.failures.iter().any(|(_, u, _)| *u == user);
    let (users, tenants) = history.reported;
    let minutes = (now - sprayed_at) / 60;
    let title = format!(
        "{} signed in successfully from password-spraying IP {ip}",
        who(s)
    );
    let summary = format!(
        "{} signed in successfully to {} from {ip} ({}) {minutes} minutes after that address \
             was last seen spraying passwords (reported at {} users in {}){}. Treat the account as \
             compromised: revoke its sessions, reset the password, review its MFA methods and \
             recent activity, and block the address.",
        who(s),
        app_name(s),
        place(s),
        users,
        plural(tenants, "tenant", "tenants"),
        if targeted {
            "; this account was among those it targeted"
        } else {
            ""
        },
    );
    let mut evidence = Map::new();
    evidence.insert("ip_address".into(), json!(ip));
    evidence.insert("location".into(), json!(place(s)));
    evidence.insert("report".into(), json!("success after spray"));
    evidence.insert("user".into(), json!(who(s)));
    evidence.insert("user_id".into(), json!(s.user_id));
    evidence.insert("user_was_targeted".into(), Value::Bool(targeted));
    evidence.insert("last_spray_at".into(), json!(time_text(sprayed_at)));
    evidence.insert("minutes_since_spray".into(), json!(minutes));
    evidence.insert("spray_users".into(), json!(users));
    evidence.insert("spray_tenants".into(), json!(tenants));
    evidence.insert("app".into(), json!(app_name(s)));
    evidence.insert("interactive".into(), Value::Bool(s.is_interactive()));
    evidence.insert("client_app_used".into(), json!(s.client_app_used));
    evidence.insert("user_agent".into(), json!(s.user_agent));
    out.push(Finding {
        rule: ID,
        severity: Severity::High,
        tenant_id: event.meta.tenant_id.to_string(),
        principal: ip_principal(ip),
        time: event.meta.time,
        event_ids: vec![event.meta.id.to_string()],
        title,
        summary,
        evidence,
        mitre: &["T1110.003", "T1078.004"],
        ip: Some(ip.to_owned()),
    });
}

#[derive(Debug, Clone, Copy, Default)]
pub struct PasswordSpray;

impl Detector for PasswordSpray {
    fn id(&self) -> &'static str {
        ID
    }

    fn settings(&self) -> Option<&'static dyn SettingsKind> {
        Some(&Of::<Settings>(PhantomData))
    }

    fn doc(&self) -> &'static str {
        DOC
    }

    fn default_severity(&self) -> Severity {
        Severity::Medium
    }

    fn kinds(&self) -> &'static [Kind] {
        &[Kind::SignIn]
    }

    fn observe(&self, ctx: &Context<'_>, event: &Event, out: &mut Vec<Finding>) {
        let Some(s) = event.as_sign_in() else { return };
        let keys = ctx.sign_in_keys(event);
        let (Some(ip), Some(ip_key), Some(user)) =
            (s.ip_address.as_deref(), keys.ip, keys.principal)
        else {
            return;
        };
        let fresh = SprayState::default();
        let history = ctx.state.ip_by_key(ip_key).map_or(&fresh, |i| &i.spray);
        match s.error_code {
            Some(code) if PASSWORD_FAILURE_CODES.contains(&code) => {
                on_failure(ctx, event, s, ip, history, user, out)
            }
            Some(0) if s.is_user() => on_success(event, s, ip, history, user, out),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DetectConfig;
    use crate::testkit::*;

    const SPRAYER: &str = "198.51.100.7";
    const TENANT_C: &str = "44444444-dddd-4ddd-8ddd-444444444444";

    fn failure(id: &str, user: usize, minute: i64, ip: &str, code: i64) -> Event {
        sign_in(id, &format!("user{user}@contoso.com"), minute)
            .ip(ip)
            .place("NL", "Amsterdam", 52.3676, 4.9041)
            .single_factor()
            .fail(code)
            .build()
    }

    fn from_sprayer(id: &str, upn: &str, minute: i64) -> SignInB {
        sign_in(id, upn, minute)
            .ip(SPRAYER)
            .place("NL", "Amsterdam", 52.3676, 4.9041)
    }

    fn brief(found: &[Finding]) -> Vec<(&str, Severity, &str)> {
        found
            .iter()
            .map(|f| {
                (
                    f.event_ids[0].as_str(),
                    f.severity,
                    f.evidence["report"].as_str().unwrap(),
                )
            })
            .collect()
    }

    #[test]
    fn fires_at_the_crossing_when_it_doubles_spreads_or_succeeds() {
        let mut events = Vec::new();
        // One IP, one tenant: 20 users in 19 minutes, one failure a minute.
        for u in 1..=20 {
            events.push(failure(&format!("f{u}"), u, u as i64 - 1, SPRAYER, 50126));
        }
        events.extend([
            from_sprayer("ok3", "user3@contoso.com", 30).build(),
            // The same user again, then a token refresh: already reported.
            from_sprayer("ok3b", "user3@contoso.com", 31).build(),
            from_sprayer("ok3c", "user3@contoso.com", 32)
                .non_interactive()
                .build(),
            // A user who was not among the targets, still from the spraying IP.
            from_sprayer("ok99", "user99@contoso.com", 40).build(),
            // More than an hour after the last spraying: ordinary.
            from_sprayer("late", "user5@contoso.com", 19 + 61).build(),
        ]);
        // Another IP: 10 users in one tenant, then one each in two more tenants.
        for u in 1..=10 {
            events.push(
                sign_in(
                    &format!("g{u}"),
                    &format!("guest{u}@contoso.com"),
                    200 + u as i64,
                )
                .ip("192.0.2.66")
                .fail(50053)
                .build(),
            );
        }
        events.push(
            sign_in("g11", "guest11@fabrikam.com", 212)
                .tenant(TENANT_B)
                .ip("192.0.2.66")
                .fail(50126)
                .build(),
        );
        events.push(
            sign_in("g12", "guest12@adatum.com", 213)
                .tenant(TENANT_C)
                .ip("192.0.2.66")
                .fail(50055)
                .build(),
        );
        events.push(
            sign_in("g13", "guest13@adatum.com", 214)
                .tenant(TENANT_C)
                .ip("192.0.2.66")
                .fail(50056)
                .build(),
        );

        let found = run(ID, DetectConfig::default(), &events);
        let mut expected = vec![("f10", Severity::Medium, "started")];
        let more: Vec<String> = (11..=19).map(|u| format!("f{u}")).collect();
        for id in &more {
            expected.push((id.as_str(), Severity::Medium, "targeted another account"));
        }
        expected.extend([
            ("f20", Severity::Medium, "doubled"),
            ("ok3", Severity::High, "success after spray"),
            ("ok99", Severity::High, "success after spray"),
            ("g10", Severity::Medium, "started"),
            ("g11", Severity::Medium, "targeted another account"),
            ("g12", Severity::High, "reached many tenants"),
            ("g13", Severity::High, "targeted another account"),
        ]);
        assert_eq!(brief(&found), expected);
        assert!(found.iter().all(|f| f.principal.kind == PrincipalKind::Ip));
        assert_eq!(found[0].principal.id, SPRAYER);
        assert_eq!(found[0].evidence["distinct_users"], json!(10));
        let f10 = &found[0];
        assert_eq!(
            f10.evidence["targeted_accounts"],
            json!(
                (1..=10)
                    .map(|u| format!("user{u}@contoso.com"))
                    .collect::<Vec<_>>()
            )
        );
        assert_eq!(f10.evidence["targeted_accounts_total"], json!(10));
        let f20 = &found[10];
        assert_eq!(
            f20.evidence["targeted_accounts"],
            json!(["user20@contoso.com"])
        );
        assert_eq!(f20.evidence["targeted_accounts_total"], json!(20));
        assert_eq!(found[11].evidence["user_was_targeted"], json!(true));
        assert_eq!(found[12].evidence["user_was_targeted"], json!(false));
        let g12 = &found[15];
        assert_eq!(g12.evidence["tenants"], json!([TENANT, TENANT_B, TENANT_C]));
        assert_eq!(g12.tenant_id, TENANT_C);
        assert_eq!(found[14].tenant_id, TENANT_B);
        // The snapshot: every finding but the plain "another account" ones after the first.
        let shown: Vec<Finding> = found
            .iter()
            .enumerate()
            .filter(|(i, f)| *i == 1 || f.evidence["report"] != json!("targeted another account"))
            .map(|(_, f)| f.clone())
            .collect();
        insta::assert_json_snapshot!("password_spray_fires", snapshot(&shown));
    }

    /// What an alert of the findings of one tenant holds once its episode folded them in
    /// (alert/src/episodes.rs: event ids and `targeted_accounts` as unions in order, the largest
    /// `targeted_accounts_total`, one more `count` per finding).
    fn folded(found: &[Finding]) -> (usize, Vec<String>, Vec<Value>, u64) {
        let mut ids: Vec<String> = Vec::new();
        let mut names: Vec<Value> = Vec::new();
        let mut total = 0;
        for f in found {
            for id in &f.event_ids {
                if !ids.contains(id) {
                    ids.push(id.clone());
                }
            }
            for n in f.evidence["targeted_accounts"].as_array().unwrap() {
                if !names.contains(n) {
                    names.push(n.clone());
                }
            }
            total = total.max(f.evidence["targeted_accounts_total"].as_u64().unwrap());
        }
        (found.len(), ids, names, total)
    }

    #[test]
    fn a_spray_of_12_users_names_all_12_and_keeps_every_event_id() {
        // Two failures for user 3 before the crossing, one repeat for user 5 after it.
        let mut events: Vec<Event> = (1..=12)
            .map(|u| failure(&format!("f{u}"), u, u as i64, SPRAYER, 50126))
            .collect();
        events.insert(3, failure("f3b", 3, 4, SPRAYER, 50053));
        events.push(failure("f5b", 5, 13, SPRAYER, 50126));
        let found = run(ID, DetectConfig::default(), &events);
        assert_eq!(
            brief(&found),
            vec![
                ("f10", Severity::Medium, "started"),
                ("f11", Severity::Medium, "targeted another account"),
                ("f12", Severity::Medium, "targeted another account"),
            ]
        );
        let (count, ids, names, total) = folded(&found);
        assert_eq!(count, 3);
        assert_eq!(total, 12);
        assert_eq!(
            names,
            (1..=12)
                .map(|u| json!(format!("user{u}@contoso.com")))
                .collect::<Vec<_>>()
        );
        // The crossing's own record first (the alert id is derived from it), then the window's.
        let mut want = vec![
            "f10", "f1", "f2", "f3", "f3b", "f4", "f5", "f6", "f7", "f8", "f9",
        ];
        want.extend(["f11", "f12"]);
        assert_eq!(ids, want);
        assert_eq!(found[2].evidence["targeted_accounts_total"], json!(12));
        assert_eq!(found[2].evidence["distinct_users"], json!(12));
    }

    #[test]
    fn a_spray_of_exactly_the_threshold_is_one_finding_opened_as_before() {
        let events: Vec<Event> = (1..=10)
            .map(|u| failure(&format!("f{u}"), u, u as i64, SPRAYER, 50126))
            .collect();
        let found = run(ID, DetectConfig::default(), &events);
        assert_eq!(brief(&found), vec![("f10", Severity::Medium, "started")]);
        // What the alert id is derived from (alert/src/record.rs) is what it was: the rule, the
        // tenant, the principal, the finding's time and its first event id.
        let f = &found[0];
        assert_eq!(
            (
                f.rule,
                f.tenant_id.as_str(),
                f.principal.kind,
                f.principal.id.as_str()
            ),
            (ID, TENANT, PrincipalKind::Ip, SPRAYER)
        );
        assert_eq!(f.time, events[9].meta.time);
        assert_eq!(f.event_ids[0], "f10");
        assert_eq!(f.event_ids.len(), 10);
        assert_eq!(f.evidence["targeted_accounts_total"], json!(10));
    }

    #[test]
    fn a_slow_steady_spray_opens_once_then_names_each_new_account() {
        // A new user every two minutes for two hours keeps exactly 10 users in the window.
        let events: Vec<Event> = (0..60)
            .map(|u| failure(&format!("s{u}"), u, 2 * u as i64, SPRAYER, 50126))
            .collect();
        let found = run(ID, DetectConfig::default(), &events);
        let more: Vec<String> = (10..60).map(|u| format!("s{u}")).collect();
        let mut expected = vec![("s9", Severity::Medium, "started")];
        for id in &more {
            expected.push((id.as_str(), Severity::Medium, "targeted another account"));
        }
        assert_eq!(brief(&found), expected);
        let (_, ids, names, total) = folded(&found);
        assert_eq!((ids.len(), names.len(), total), (60, 60, 60));
    }

    #[test]
    fn stays_quiet_below_the_threshold_and_on_interrupts_repeats_and_other_codes() {
        let mut events = Vec::new();
        // Nine users: one short.
        for u in 1..=9 {
            events.push(failure(&format!("a{u}"), u, u as i64, "192.0.2.1", 50126));
        }
        // Thirty failures for the same three users: brute force, not a spray.
        for k in 0..30 {
            events.push(failure(
                &format!("b{k}"),
                k % 3,
                k as i64 / 2,
                "192.0.2.2",
                50126,
            ));
        }
        // MFA prompts and "stay signed in?" interrupts for 15 users behind an office NAT.
        for u in 1..=15 {
            events.push(failure(
                &format!("c{u}"),
                u,
                u as i64,
                "192.0.2.3",
                if u % 2 == 0 { 50074 } else { 50140 },
            ));
        }
        // Unknown users and disabled accounts are not password checks.
        for u in 1..=15 {
            events.push(failure(
                &format!("d{u}"),
                u,
                u as i64,
                "192.0.2.4",
                if u % 2 == 0 { 50034 } else { 50057 },
            ));
        }
        // Fifteen users, but 25 minutes apart.
        for u in 1..=15 {
            events.push(failure(
                &format!("e{u}"),
                u,
                25 * u as i64,
                "192.0.2.5",
                50126,
            ));
        }
        // Successes from addresses that never sprayed.
        events.push(
            sign_in("ok1", "user1@contoso.com", 30)
                .ip("192.0.2.1")
                .build(),
        );
        events.push(
            sign_in("ok2", "user2@contoso.com", 30)
                .ip("192.0.2.3")
                .build(),
        );
        let found = run(ID, DetectConfig::default(), &events);
        assert!(found.is_empty(), "{:#?}", brief(&found));
    }

    #[test]
    fn thresholds_follow_the_config() {
        let mut config = DetectConfig::default();
        config.rule_mut::<Settings>().min_users = 3;
        config.rule_mut::<Settings>().window_minutes = 5;
        let events: Vec<Event> = (1..=4)
            .map(|u| failure(&format!("t{u}"), u, 2 * u as i64, SPRAYER, 50126))
            .collect();
        // At t3 the window (5 minutes) holds t1..t3; t4 drops t1, no doubling, but a new account.
        assert_eq!(
            brief(&run(ID, config, &events)),
            vec![
                ("t3", Severity::Medium, "started"),
                ("t4", Severity::Medium, "targeted another account"),
            ]
        );
    }
}
