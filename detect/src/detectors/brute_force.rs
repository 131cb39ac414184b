//! `brute-force`: see [`DOC`] for what it detects and why.

use std::marker::PhantomData;

use entrawatch_ingest::model::{Event, Kind, SignIn};
use serde_json::{Map, Value, json};

use super::{PASSWORD_FAILURE_CODES, about_sign_in, app_name, place, time_text, who};
use crate::detector::{Context, Detector};
use crate::finding::{Finding, Severity};
use crate::settings::{Of, RuleSettings, SettingsKind};
use crate::state::{PrincipalState, count_since, push_in_window};

pub const ID: &str = "brute-force";

/// User documentation, printed by `entrawatch rules brute-force`.
pub const DOC: &str = r#"## What it detects
At least `min_failures` (default 10) failed password checks for one user within
`window_minutes` (default 10), from any number of IPs: error codes 50126 invalid
username or password, 50053 locked by smart lockout, 50055 expired password, 50056 invalid or
missing password. It fires medium once per burst (again only after a full quiet window), and
high for each successful interactive sign-in of that user within `success_minutes`
(default 60) of the burst's last failure.

## Why it matters
Many wrong passwords for one account in minutes is password guessing or credential stuffing
against that account, often an admin or a known executive. A successful interactive sign-in
right after it may mean the guess worked. MITRE ATT&CK T1110.001 (Brute Force: Password
Guessing); the success is T1078.004 (Valid Accounts: Cloud Accounts).

## Signals used
`status.errorCode`, `status.failureReason`, the user (`userId`, else `userPrincipalName`),
`ipAddress`, `location`, the app and client, and the engine's per-user list of recent failure
times. Only interactive successes raise it to high: a password guess shows up as an interactive
(or ROPC / legacy) sign-in, while the user's own devices keep refreshing tokens
non-interactively during an attack. Interrupts (50074, 50076, 50140, ...) are not failures;
other failure codes (50057 disabled, 50034 unknown user, 53003 blocked by Conditional Access)
are not password checks.

## Example
From 14:02 to 14:09, 10 sign-ins for `cfo@contoso.com` fail with 50126 from 203.0.113.99: this
fires medium. At 14:31 the CFO signs in interactively and successfully from the same address:
this fires high. Ask the CFO whether that was them; if not, revoke sessions and reset the
password.

## Known false positives and tuning
A user who forgot a changed password, or a phone or mail client retrying an old password after
a password change, fails in bursts; the success high then follows when the user finally signs
in correctly. Smart lockout (50053) means Entra already slowed the attack down. Raise
`min_failures` or allow-list service accounts with known-bad clients
(`allow.brute-force.principals`). Attacks against many users from one IP are `password-spray`.

## References
Microsoft Learn: "Protect user accounts from attacks with Microsoft Entra smart lockout";
"Microsoft Entra authentication and authorization error codes" (AADSTS50126, 50053, 50055,
50056); "Password spray investigation" (incident response playbooks); MITRE ATT&CK T1110.001.
"#;

/// `[detect.rules.brute-force]`: this rule's settings, each with its default.
#[derive(Debug, Clone, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// This many failed passwords for one account... (default 10).
    pub min_failures: u32,
    /// ...within this many minutes make a burst (default 10).
    pub window_minutes: i64,
    /// A success this soon after the burst raises it to high (default 60).
    pub success_minutes: i64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            min_failures: 10,
            window_minutes: 10,
            success_minutes: 60,
        }
    }
}

impl RuleSettings for Settings {
    crate::settings_slot!();

    const KEYS: &'static [(&'static str, &'static str)] = &[
        (
            "min_failures",
            "this many failed passwords for one account...",
        ),
        ("window_minutes", "...within this many minutes make a burst"),
        (
            "success_minutes",
            "a success this soon after the burst raises it to high",
        ),
    ];

    fn validate(&self, path: &str) -> Vec<String> {
        crate::settings::greater_than_zero(
            path,
            &[
                ("min_failures", f64::from(self.min_failures)),
                ("window_minutes", self.window_minutes as f64),
                ("success_minutes", self.success_minutes as f64),
            ],
        )
    }
}

#[derive(Debug, Clone, Copy, Default)]
pub struct BruteForce;

/// Learns a password-check failure of principal `p` at `now`, after the detectors decided on it:
/// the failure (in [`PrincipalState::failures`], pruned to the window) and the burst it completes.
pub(crate) fn learn(p: &mut PrincipalState, t: &Settings, now: i64) {
    let window = t.window_minutes * 60;
    if push_in_window(&mut p.failures, now, window, t.min_failures) {
        p.brute_force_at = Some(now);
    }
}

/// The password-check failures of `p` at or after `since`.
pub fn failures_since(p: &PrincipalState, since: i64) -> usize {
    count_since(&p.failures, since)
}

impl Detector for BruteForce {
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
        if !s.is_user() {
            return;
        }
        let Some(key) = ctx.sign_in_keys(event).principal else {
            return;
        };
        let fresh = PrincipalState::default();
        let history = ctx.sign_in_history(event).unwrap_or(&fresh);
        match s.error_code {
            Some(code) if PASSWORD_FAILURE_CODES.contains(&code) => {
                on_failure(ctx, event, s, key, history, out);
            }
            Some(0) if s.is_interactive() => on_success(ctx, event, s, key, history, out),
            _ => {}
        }
    }
}

/// A failed password check: fires when it completes a burst that is not already running.
fn on_failure(
    ctx: &Context<'_>,
    event: &Event,
    s: &SignIn,
    user: u128,
    history: &PrincipalState,
    out: &mut Vec<Finding>,
) {
    let t = ctx.config.rule::<Settings>();
    let now = event.meta.time.timestamp();
    let window = t.window_minutes * 60;
    let count = failures_since(history, now - window + 1) + 1;
    if (count as u32) < t.min_failures {
        return;
    }
    if history.brute_force_at.is_some_and(|at| at > now - window) {
        return; // the burst was reported and is still running
    }
    let first = history
        .failures
        .iter()
        .copied()
        .filter(|at| *at > now - window)
        .min()
        .unwrap_or(now)
        .min(now);
    let ip = s.ip_address.clone();
    let code = s.error_code.unwrap_or_default();
    let title = format!(
        "Brute force against {}: {count} failed passwords within {} minutes",
        who(s),
        t.window_minutes
    );
    let summary = format!(
        "{count} sign-ins for {} failed password checks between {} and {} (latest: {code} from {} \
         ({}) to {}). Someone is guessing this account's password: check the source IPs, confirm \
         with the user, make sure MFA is enforced for the account, and watch for a success (this \
         alert turns high if one follows within {} minutes).",
        who(s),
        time_text(first),
        time_text(now),
        ip.as_deref().unwrap_or("an unknown IP"),
        place(s),
        app_name(s),
        t.success_minutes,
    );
    let mut evidence = Map::new();
    evidence.insert("failures_in_window".into(), json!(count));
    evidence.insert("window_minutes".into(), json!(t.window_minutes));
    evidence.insert("first_failure_at".into(), json!(time_text(first)));
    evidence.insert("ip_address".into(), json!(ip));
    evidence.insert("location".into(), json!(place(s)));
    evidence.insert("latest_error_code".into(), json!(code));
    evidence.insert("latest_failure_reason".into(), json!(s.failure_reason));
    evidence.insert("app".into(), json!(app_name(s)));
    evidence.insert("client_app_used".into(), json!(s.client_app_used));
    evidence.insert("user_agent".into(), json!(s.user_agent));
    // The per-IP history covers the spray window (`password-spray`'s settings); use it only when
    // it covers this window too.
    let spray = ctx.config.rule::<super::password_spray::Settings>();
    if t.window_minutes <= spray.window_minutes
        && let Some(ip_history) = ip.as_deref().and_then(|ip| ctx.state.ip(ip))
    {
        let from_ip = ip_history
            .spray
            .failures
            .iter()
            .filter(|(at, u, _)| *u == user && *at > now - window)
            .count()
            + 1;
        evidence.insert("failures_from_this_ip".into(), json!(from_ip));
    }
    out.push(Finding {
        rule: ID,
        severity: Severity::Medium,
        title,
        summary,
        evidence,
        mitre: &["T1110.001"],
        ..about_sign_in(event, s)
    });
}

/// An interactive success soon after a burst: high.
fn on_success(
    ctx: &Context<'_>,
    event: &Event,
    s: &SignIn,
    user: u128,
    history: &PrincipalState,
    out: &mut Vec<Finding>,
) {
    let t = ctx.config.rule::<Settings>();
    let now = event.meta.time.timestamp();
    let Some(burst_at) = history.brute_force_at else {
        return;
    };
    if now < burst_at || now - burst_at > t.success_minutes * 60 {
        return;
    }
    let ip = s.ip_address.clone();
    let from_failing_ip = ip
        .as_deref()
        .and_then(|ip| ctx.state.ip(ip))
        .is_some_and(|h| h.spray.failures.iter().any(|(_, u, _)| *u == user));
    let minutes = (now - burst_at) / 60;
    let title = format!(
        "{} signed in successfully {minutes} minutes after a brute-force burst",
        who(s)
    );
    let summary = format!(
        "{} signed in successfully and interactively to {} from {} ({}) {minutes} minutes after a \
         burst of failed passwords against the account ended at {}{}. The password may have been \
         guessed: confirm with the user at once; if it was not them, revoke sessions, reset the \
         password and review MFA methods and recent activity.",
        who(s),
        app_name(s),
        ip.as_deref().unwrap_or("an unknown IP"),
        place(s),
        time_text(burst_at),
        if from_failing_ip {
            ", from an address that was failing for it"
        } else {
            ""
        },
    );
    let mut evidence = Map::new();
    evidence.insert("burst_last_failure_at".into(), json!(time_text(burst_at)));
    evidence.insert("minutes_since_burst".into(), json!(minutes));
    evidence.insert(
        "failures_in_last_window".into(),
        json!(history.failures.len()),
    );
    evidence.insert("ip_address".into(), json!(ip));
    evidence.insert(
        "ip_was_failing_for_user".into(),
        Value::Bool(from_failing_ip),
    );
    evidence.insert("location".into(), json!(place(s)));
    evidence.insert("app".into(), json!(app_name(s)));
    evidence.insert("client_app_used".into(), json!(s.client_app_used));
    evidence.insert("user_agent".into(), json!(s.user_agent));
    evidence.insert(
        "authentication_requirement".into(),
        json!(s.authentication_requirement),
    );
    out.push(Finding {
        rule: ID,
        severity: Severity::High,
        title,
        summary,
        evidence,
        mitre: &["T1110.001", "T1078.004"],
        ..about_sign_in(event, s)
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DetectConfig;
    use crate::testkit::*;

    const ATTACKER: &str = "203.0.113.99";

    fn failure(id: &str, upn: &str, minute: i64, code: i64) -> Event {
        sign_in(id, upn, minute)
            .ip(ATTACKER)
            .place("RO", "Bucharest", 44.4268, 26.1025)
            .single_factor()
            .fail(code)
            .build()
    }

    fn brief(found: &[Finding]) -> Vec<(&str, Severity)> {
        found
            .iter()
            .map(|f| (f.event_ids[0].as_str(), f.severity))
            .collect()
    }

    #[test]
    fn fires_once_per_burst_and_high_on_an_interactive_success_after_it() {
        let mut events = Vec::new();
        for k in 1..=12 {
            events.push(failure(
                &format!("b{k}"),
                "cfo@contoso.com",
                k - 1,
                if k % 4 == 0 { 50053 } else { 50126 },
            ));
        }
        events.extend([
            // The CFO's phone refreshing a token during the attack proves nothing.
            sign_in("refresh", "cfo@contoso.com", 20)
                .non_interactive()
                .build(),
            sign_in("hit", "cfo@contoso.com", 30)
                .ip(ATTACKER)
                .place("RO", "Bucharest", 44.4268, 26.1025)
                .build(),
            // More than brute_force_success_minutes after the burst's last failure (minute 11).
            sign_in("late", "cfo@contoso.com", 11 + 61).build(),
        ]);
        // A second burst the next day fires again.
        for k in 1..=10 {
            events.push(failure(
                &format!("n{k}"),
                "cfo@contoso.com",
                1440 + k,
                50126,
            ));
        }
        let found = run(ID, DetectConfig::default(), &events);
        assert_eq!(
            brief(&found),
            vec![
                ("b10", Severity::Medium),
                ("hit", Severity::High),
                ("n10", Severity::Medium)
            ]
        );
        assert_eq!(found[0].evidence["failures_in_window"], json!(10));
        assert_eq!(found[0].evidence["failures_from_this_ip"], json!(10));
        assert_eq!(found[1].evidence["ip_was_failing_for_user"], json!(true));
        assert_eq!(found[1].ip.as_deref(), Some(ATTACKER));
        insta::assert_json_snapshot!("brute_force_fires", snapshot(&found));
    }

    #[test]
    fn stays_quiet_below_the_threshold_and_on_slow_failures_interrupts_other_codes_and_sprays() {
        let mut events = Vec::new();
        // Nine failures in ten minutes.
        for k in 0..9 {
            events.push(failure(&format!("a{k}"), "bob@contoso.com", k, 50126));
        }
        // Ten failures, but three minutes apart.
        for k in 0..10 {
            events.push(failure(&format!("c{k}"), "cal@contoso.com", 3 * k, 50126));
        }
        // MFA prompts and other interrupts.
        for k in 0..15 {
            events.push(failure(
                &format!("d{k}"),
                "dee@contoso.com",
                k / 2,
                [50074, 50076, 50140][k as usize % 3],
            ));
        }
        // Not password checks: disabled, unknown user, blocked by Conditional Access.
        for k in 0..15 {
            events.push(failure(
                &format!("e{k}"),
                "eve@contoso.com",
                k / 2,
                [50057, 50034, 53003][k as usize % 3],
            ));
        }
        // One failure each for fifteen users: a spray, not a brute force.
        for k in 0..15 {
            events.push(failure(
                &format!("s{k}"),
                &format!("user{k}@contoso.com"),
                k / 2,
                50126,
            ));
        }
        // Successes with no burst before them.
        events.push(sign_in("ok1", "bob@contoso.com", 12).build());
        events.push(sign_in("ok2", "fay@contoso.com", 12).build());
        let found = run(ID, DetectConfig::default(), &events);
        assert!(found.is_empty(), "{:#?}", brief(&found));
    }

    #[test]
    fn thresholds_follow_the_config() {
        let mut config = DetectConfig::default();
        config.rule_mut::<Settings>().min_failures = 3;
        config.rule_mut::<Settings>().window_minutes = 3;
        config.rule_mut::<Settings>().success_minutes = 5;
        let events = vec![
            failure("x1", "gus@contoso.com", 0, 50126),
            failure("x2", "gus@contoso.com", 1, 50126),
            failure("x3", "gus@contoso.com", 3, 50126),
            failure("x4", "gus@contoso.com", 4, 50126),
            failure("x5", "gus@contoso.com", 5, 50126),
            sign_in("y1", "gus@contoso.com", 9).build(),
            sign_in("y2", "gus@contoso.com", 11).build(),
        ];
        // x3's three-minute window holds only x2; x5 completes x3..x5. y2 is six minutes after it.
        assert_eq!(
            brief(&run(ID, config, &events)),
            vec![("x5", Severity::Medium), ("y1", Severity::High)]
        );
    }
}
