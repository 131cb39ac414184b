//! `disabled-account-sign-in`: see [`DOC`] for what it detects and why.

use std::marker::PhantomData;

use entrawatch_ingest::model::{Event, Kind, SignIn};
use serde_json::{Map, json};

use super::{about_sign_in, app_name, place, plural, time_text, who};
use crate::detector::{Context, Detector};
use crate::finding::{Finding, Severity};
use crate::keys::{key128, sign_in_key};
use crate::settings::{Of, RuleSettings, SettingsKind};
use crate::state::{PrincipalState, push_capped};

pub const ID: &str = "disabled-account-sign-in";

/// User documentation, printed by `entrawatch rules disabled-account-sign-in`.
pub const DOC: &str = r#"## What it detects
Attempts at a disabled account (error code 50057): `min_attempts` (default 3) or more
attempts, or attempts from `min_ips` (default 2) or more IP addresses, within
`window_hours` (default 24). Low; once per run of attempts, again only after a full quiet
window. A *successful* sign-in after the account was disabled is `sign-in-after-account-disabled`.

## Why it matters
Disabled accounts are leavers, suspended staff and accounts an admin shut after a compromise.
Attempts at them come from devices and scripts that still hold the credentials, or from someone
replaying a leaked password list. MITRE ATT&CK T1078.004 (Valid Accounts: Cloud Accounts).

## Signals used
`status.errorCode` (50057), the user (`userId`, else `userPrincipalName`), `ipAddress`,
`location`, app, client app and user agent (to find the device), and the engine's per-user
history: recent 50057 attempts with their source IPs, and the time the account was disabled
(evidence `disabled_at`, when a `Disable account` or `Delete user` audit was seen). Failures with
other codes, interrupts and successes are ignored.

## Example
`jo@contoso.com` left on Friday and was disabled. On Monday her old phone's mail app tries
three times from 198.51.100.40: this fires low, with the user agent to find the phone.

## Known false positives and tuning
Leavers' phones, mail clients and scheduled scripts keep trying for weeks: the findings group
into one episode per account, and fixing or wiping the device stops them. Raise
`min_attempts` to quieten them, or allow-list known service accounts
(`allow.disabled-account-sign-in.principals`).

## References
Microsoft Learn: "Microsoft Entra authentication and authorization error codes" (AADSTS50057,
user account is disabled); "Audit log activities" (`Disable account` in UserManagement);
"Revoke user access in Microsoft Entra ID"; MITRE ATT&CK T1078.004.
"#;

/// `[detect.rules.disabled-account-sign-in]`: this rule's settings, each with its default.
#[derive(Debug, Clone, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// This many attempts at a disabled account... (default 3).
    pub min_attempts: u32,
    /// ...or attempts from this many source addresses... (default 2).
    pub min_ips: u32,
    /// ...within this many hours (default 24).
    pub window_hours: i64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            min_attempts: 3,
            min_ips: 2,
            window_hours: 24,
        }
    }
}

impl RuleSettings for Settings {
    crate::settings_slot!();

    const KEYS: &'static [(&'static str, &'static str)] = &[
        (
            "min_attempts",
            "this many attempts at a disabled account...",
        ),
        (
            "min_ips",
            "...or attempts from this many source addresses...",
        ),
        ("window_hours", "...within this many hours"),
    ];

    fn validate(&self, path: &str) -> Vec<String> {
        crate::settings::greater_than_zero(
            path,
            &[
                ("min_attempts", f64::from(self.min_attempts)),
                ("window_hours", self.window_hours as f64),
            ],
        )
    }
}

#[derive(Debug, Clone, Copy, Default)]
pub struct DisabledAccountSignIn;

/// Account disabled (AADSTS50057).
pub const DISABLED_ACCOUNT_CODE: i64 = 50057;

/// Cap on the attempts a principal keeps (at least the threshold).
const MAX_ATTEMPTS: usize = 64;

/// Learns an attempt at the disabled account `p` from the address with key `ip` (0 for none) at
/// `now`, after the detectors decided on it: the burst it completes, and the attempt (in
/// [`PrincipalState::disabled_attempts`], pruned to the window).
pub(crate) fn learn(p: &mut PrincipalState, t: &Settings, ip: u128, now: i64) {
    let window = t.window_hours * 3600;
    if threshold_met(t, attempts_since(p, now - window + 1, Some(ip))) {
        p.disabled_burst_at = Some(now);
    }
    p.disabled_attempts.retain(|(at, _)| *at > now - window);
    let cap = MAX_ATTEMPTS.max(t.min_attempts as usize);
    push_capped(&mut p.disabled_attempts, (now, ip), cap, |(at, _)| *at);
}

/// Attempts at the disabled account `p` at or after `since`, and their distinct known source
/// IPs, counting one more attempt from `plus` (an IP key, 0 for none) that is not stored yet.
pub fn attempts_since(p: &PrincipalState, since: i64, plus: Option<u128>) -> (u32, u32) {
    let mut ips: Vec<u128> = Vec::new();
    let mut attempts = 0;
    let recent = (p.disabled_attempts.iter())
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

/// Whether attempts ([`attempts_since`]) meet the threshold.
pub fn threshold_met(t: &Settings, (attempts, ips): (u32, u32)) -> bool {
    attempts >= t.min_attempts || ips >= t.min_ips
}

impl Detector for DisabledAccountSignIn {
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
        Severity::Low
    }

    fn kinds(&self) -> &'static [Kind] {
        &[Kind::SignIn]
    }

    fn observe(&self, ctx: &Context<'_>, event: &Event, out: &mut Vec<Finding>) {
        let Some(s) = event.as_sign_in() else { return };
        if s.error_code != Some(DISABLED_ACCOUNT_CODE) || sign_in_key(s).is_none() {
            return;
        }
        let fresh = PrincipalState::default();
        let history = ctx.sign_in_history(event).unwrap_or(&fresh);
        on_attempt(ctx, event, s, history, out);
    }
}

/// A 50057 attempt: fires when it completes a run of attempts that is not already reported.
fn on_attempt(
    ctx: &Context<'_>,
    event: &Event,
    s: &SignIn,
    history: &PrincipalState,
    out: &mut Vec<Finding>,
) {
    let t = ctx.config.rule::<Settings>();
    let now = event.meta.time.timestamp();
    let window = t.window_hours * 3600;
    let ip_key = s.ip_address.as_deref().map_or(0, key128);
    let counts = attempts_since(history, now - window + 1, Some(ip_key));
    if !threshold_met(t, counts) {
        return;
    }
    if history
        .disabled_burst_at
        .is_some_and(|at| at > now - window)
    {
        return; // this run of attempts was reported and is still going
    }
    let (attempts, ips) = counts;
    let first = history
        .disabled_attempts
        .iter()
        .map(|(at, _)| *at)
        .filter(|at| *at > now - window)
        .min()
        .unwrap_or(now)
        .min(now);
    let ip = s.ip_address.clone();
    let client = s
        .user_agent
        .clone()
        .or_else(|| s.client_app_used.clone())
        .unwrap_or_else(|| "an unknown client".into());
    let title = format!(
        "{} sign-in attempts at disabled account {} from {} within {} hours",
        attempts,
        who(s),
        plural(ips, "IP", "IPs"),
        t.window_hours
    );
    let summary = format!(
        "{} is disabled, yet {attempts} sign-ins were attempted between {} and {} from {} \
         (latest from {} ({}) to {} with {client}). A forgotten device or script may still hold \
         the credentials, or someone is trying a leaked password: find the device from the user \
         agent and addresses; if they are unknown, treat the password as leaked, keep the account \
         disabled and revoke its sessions.",
        who(s),
        time_text(first),
        time_text(now),
        plural(ips, "IP address", "IP addresses"),
        ip.as_deref().unwrap_or("an unknown IP"),
        place(s),
        app_name(s),
    );
    let mut evidence = Map::new();
    evidence.insert("attempts_in_window".into(), json!(attempts));
    evidence.insert("distinct_ips".into(), json!(ips));
    evidence.insert("window_hours".into(), json!(t.window_hours));
    evidence.insert("first_attempt_at".into(), json!(time_text(first)));
    evidence.insert("ip_address".into(), json!(ip));
    evidence.insert("location".into(), json!(place(s)));
    evidence.insert("app".into(), json!(app_name(s)));
    evidence.insert("client_app_used".into(), json!(s.client_app_used));
    evidence.insert("user_agent".into(), json!(s.user_agent));
    evidence.insert("operating_system".into(), json!(s.device.operating_system));
    evidence.insert(
        "disabled_at".into(),
        json!(history.disabled_at.map(time_text)),
    );
    out.push(Finding {
        rule: ID,
        severity: Severity::Low,
        title,
        summary,
        evidence,
        mitre: &["T1078.004"],
        ..about_sign_in(event, s)
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DetectConfig;
    use crate::testkit::*;

    fn attempt(id: &str, upn: &str, minute: i64, ip: &str) -> Event {
        sign_in(id, upn, minute)
            .ip(ip)
            .app("Microsoft Office", "d3590ed6-52b3-4102-aeff-aad2292ab01c")
            .client_app("Mobile Apps and Desktop clients")
            .user_agent("Outlook-iOS/2.0")
            .with(|s| s.device.operating_system = Some("Ios 17.4".into()))
            .single_factor()
            .fail(DISABLED_ACCOUNT_CODE)
            .build()
    }

    fn brief(found: &[Finding]) -> Vec<(&str, Severity)> {
        found
            .iter()
            .map(|f| (f.event_ids[0].as_str(), f.severity))
            .collect()
    }

    #[test]
    fn fires_on_repeated_attempts_and_many_ips_but_not_on_a_success_after_disable() {
        let events = vec![
            attempt("o1", "old@contoso.com", 0, "198.51.100.40"),
            attempt("o2", "old@contoso.com", 60, "198.51.100.40"),
            attempt("o3", "old@contoso.com", 120, "198.51.100.40"),
            // The same run of attempts: no second finding.
            attempt("o4", "old@contoso.com", 180, "198.51.100.40"),
            attempt("g1", "gone@contoso.com", 0, "198.51.100.41"),
            attempt("g2", "gone@contoso.com", 10, "203.0.113.77"),
            audit("dis", "Disable account", 300)
                .target_user("leaver@contoso.com")
                .build(),
            attempt("l1", "leaver@contoso.com", 310, "198.51.100.42"),
            sign_in("back", "leaver@contoso.com", 400)
                .ip("203.0.113.66")
                .build(),
            // Successes after the disable are `sign-in-after-account-disabled`'s, not this rule's.
            sign_in("back2", "leaver@contoso.com", 410)
                .ip("203.0.113.66")
                .build(),
            sign_in("back3", "leaver@contoso.com", 420)
                .ip("203.0.113.66")
                .non_interactive()
                .build(),
        ];
        let found = run(ID, DetectConfig::default(), &events);
        assert_eq!(
            brief(&found),
            vec![("o3", Severity::Low), ("g2", Severity::Low)]
        );
        assert_eq!(found[0].evidence["attempts_in_window"], json!(3));
        assert_eq!(found[1].evidence["distinct_ips"], json!(2));
        insta::assert_json_snapshot!("disabled_account_sign_in_fires", snapshot(&found));
    }

    #[test]
    fn a_stale_device_reports_once_per_run_of_attempts() {
        // Every eight hours for five days from one phone, then silence, then it wakes up again.
        let mut events: Vec<Event> = (0..15)
            .map(|k| attempt(&format!("p{k}"), "jo@contoso.com", k * 480, "198.51.100.40"))
            .collect();
        events.extend((0..3).map(|k| {
            attempt(
                &format!("r{k}"),
                "jo@contoso.com",
                20 * 1440 + k * 60,
                "198.51.100.40",
            )
        }));
        assert_eq!(
            brief(&run(ID, DetectConfig::default(), &events)),
            vec![("p2", Severity::Low), ("r2", Severity::Low)]
        );
    }

    #[test]
    fn stays_quiet_on_few_attempts_other_failures_and_successes_without_a_disable() {
        let events = vec![
            attempt("a1", "ann@contoso.com", 0, "198.51.100.40"),
            attempt("b1", "bob@contoso.com", 0, "198.51.100.40"),
            attempt("b2", "bob@contoso.com", 30, "198.51.100.40"),
            // Outside the 24-hour window of b1 and b2.
            attempt("b3", "bob@contoso.com", 30 * 60, "198.51.100.40"),
            // Wrong passwords, unknown users and MFA interrupts are not disabled-account attempts.
            sign_in("c1", "cal@contoso.com", 0).fail(50126).build(),
            sign_in("c2", "cal@contoso.com", 1).fail(50034).build(),
            sign_in("c3", "cal@contoso.com", 2).fail(50074).build(),
            sign_in("c4", "cal@contoso.com", 3)
                .ip("198.51.100.9")
                .fail(50126)
                .build(),
            // A failed disable, a disable of someone else, and an unrelated user change.
            audit("x1", "Disable account", 10)
                .target_user("dee@contoso.com")
                .failed()
                .build(),
            audit("x2", "Disable account", 11)
                .target_user("someone@contoso.com")
                .build(),
            audit("x3", "Update user", 12)
                .target_user("eve@contoso.com")
                .build(),
            sign_in("d1", "dee@contoso.com", 20).build(),
            sign_in("e1", "eve@contoso.com", 20).build(),
            sign_in("f1", "fay@contoso.com", 20).build(),
            // After a disable, failures and interrupts are not successes.
            audit("x4", "Disable account", 30)
                .target_user("gus@contoso.com")
                .build(),
            sign_in("g1", "gus@contoso.com", 40).fail(50126).build(),
            sign_in("g2", "gus@contoso.com", 41).fail(50074).build(),
        ];
        let found = run(ID, DetectConfig::default(), &events);
        assert!(found.is_empty(), "{:#?}", brief(&found));
    }

    #[test]
    fn thresholds_follow_the_config() {
        let mut config = DetectConfig::default();
        config.rule_mut::<Settings>().min_attempts = 4;
        config.rule_mut::<Settings>().min_ips = 3;
        config.rule_mut::<Settings>().window_hours = 1;
        let events = vec![
            attempt("h1", "hal@contoso.com", 0, "198.51.100.1"),
            attempt("h2", "hal@contoso.com", 10, "198.51.100.2"),
            attempt("h3", "hal@contoso.com", 20, "198.51.100.2"),
            // h1 is more than an hour old: three attempts from one IP, then four.
            attempt("h4", "hal@contoso.com", 65, "198.51.100.2"),
            attempt("h5", "hal@contoso.com", 66, "198.51.100.2"),
            attempt("i1", "ivy@contoso.com", 0, "198.51.100.1"),
            attempt("i2", "ivy@contoso.com", 1, "198.51.100.2"),
            attempt("i3", "ivy@contoso.com", 2, "198.51.100.3"),
        ];
        assert_eq!(
            brief(&run(ID, config, &events)),
            vec![("h5", Severity::Low), ("i3", Severity::Low)]
        );
    }
}
