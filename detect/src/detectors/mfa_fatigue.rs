//! `mfa-fatigue`: see [`DOC`] for what it detects and why.
//!
//! Record shapes follow Microsoft Learn "Microsoft Entra authentication and authorization error
//! codes" (AADSTS500121 `AuthenticationFailedStrongAuthRequest`: "Authentication failed during
//! strong authentication request") and the `signIn` resource type (`status.errorCode`,
//! `status.failureReason`, `status.additionalDetails`, `authenticationDetails`). The denial texts
//! are those the sign-in logs write in `status.additionalDetails` and in the MFA step's
//! `authenticationStepResultDetail`: `MFA denied; user declined the authentication`, `MFA denied;
//! user did not respond to mobile app notification`, `MFA denied; Phone App Reported Fraud`, and
//! the fraud texts that the Sentinel "MFA Rejected by User" rule matches. 50074 and 50076 (strong
//! authentication required) are prompts, not denials.

use std::marker::PhantomData;

use entrawatch_ingest::model::{Event, Kind, SignIn};
use serde_json::{Map, json};

use super::{
    about_sign_in, app_name, contains_caseless, place, time_text, who, with_ascii_lowercase,
};
use crate::detector::{Context, Detector};
use crate::finding::{Finding, Severity};
use crate::settings::{Of, RuleSettings, SettingsKind};
use crate::state::{PrincipalState, count_since, push_in_window};

pub const ID: &str = "mfa-fatigue";

/// User documentation, printed by `entrawatch rules mfa-fatigue`.
pub const DOC: &str = r#"## What it detects
Repeated MFA prompts a user denied or left unanswered, in a short window: at least
`min_denials` (default 3) sign-ins of one user failing with error 500121
("Authentication failed during strong authentication request", with `status.additionalDetails`
such as `MFA denied; user declined the authentication` or `MFA denied; user did not respond to
mobile app notification`) within `window_minutes` (default 10). It fires medium
once per burst, and high for the first successful interactive sign-in of that user within
`success_minutes` (default 30) of the burst's last denial: the user gave in and
approved. A prompt the user reports as fraud (500121 with `MFA denied; Phone App Reported Fraud`,
`Fraud reported`, or any fraud text in the details or the MFA step) fires high on its own.

One denial followed by a success (a user tapping the wrong button, then approving) stays quiet,
and so do 50074 and 50076 (strong authentication required): they are the prompt, not its answer.

## Why it matters
An attacker who has the password keeps signing in so that the user's phone keeps asking for
approval (MFA bombing, push fatigue), until the user approves to make it stop or by mistake.
Lapsus$, Scattered Spider and APT29 used it against admins and help desks. A burst of denials
means someone else holds the password; an approval after it means they probably got in; a
fraud report is the user telling you so. MITRE ATT&CK T1621 (Multi-Factor Authentication
Request Generation); the success is T1078.004 (Valid Accounts: Cloud Accounts).

## Signals used
`status.errorCode` 500121, `status.failureReason`, `status.additionalDetails`, the MFA step's
`authenticationStepResultDetail`, the user (`userId`, else `userPrincipalName`), `ipAddress`,
`location`, the app, and the engine's per-user list of recent denial times (capped, pruned to
the window) and the time of the last burst. Only interactive successes raise it to high.

## Example
From 08:29 to 08:35, four sign-ins of `ann@contoso.com` from 203.0.113.99 (Bucharest) fail with
500121, `MFA denied; user declined the authentication`: the third fires medium. At 08:41 a sign-in
from the same address succeeds with `MFA successfully completed`: this fires high. Call Ann,
revoke her sessions, reset the password, and require number matching.

## Known false positives and tuning
A user whose phone is off or in a drawer leaves several prompts unanswered while retrying from a
new laptop; an Authenticator app that lost its registration after a phone change. The success
that follows comes from the user's usual address and device: compare with the denied attempts.
Number matching and additional context in Authenticator make the attack much harder; keep
them on. Raise `min_denials` for noisy populations, or allow-list a test account
under `[detect.allow.mfa-fatigue]`.

## References
Microsoft Learn: "Microsoft Entra authentication and authorization error codes"
(AADSTS500121), "signIn resource type" (`status`), "How number matching works in multifactor
authentication push notifications", "Configure Microsoft Entra multifactor authentication
settings" (report suspicious activity); Microsoft Sentinel "MFA Rejected by User"; MITRE
ATT&CK T1621.
"#;

/// `[detect.rules.mfa-fatigue]`: this rule's settings, each with its default.
#[derive(Debug, Clone, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// This many MFA denials or unanswered prompts (500121) for one user... (default 3).
    pub min_denials: u32,
    /// ...within this many minutes make a burst (default 10).
    pub window_minutes: i64,
    /// An interactive success this soon after its last denial raises it to high (default 30).
    pub success_minutes: i64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            min_denials: 3,
            window_minutes: 10,
            success_minutes: 30,
        }
    }
}

impl RuleSettings for Settings {
    crate::settings_slot!();

    const KEYS: &'static [(&'static str, &'static str)] = &[
        (
            "min_denials",
            "this many MFA denials or unanswered prompts (500121) for one user...",
        ),
        ("window_minutes", "...within this many minutes make a burst"),
        (
            "success_minutes",
            "an interactive success this soon after its last denial raises it to high",
        ),
    ];

    fn validate(&self, path: &str) -> Vec<String> {
        crate::settings::greater_than_zero(
            path,
            &[
                ("min_denials", f64::from(self.min_denials)),
                ("window_minutes", self.window_minutes as f64),
                ("success_minutes", self.success_minutes as f64),
            ],
        )
    }
}

#[derive(Debug, Clone, Copy, Default)]
pub struct MfaFatigue;

/// Whether a text of the sign-in says the user reported the prompt as fraud.
fn reported_fraud(s: &SignIn) -> bool {
    let says_fraud = |t: &str| contains_caseless(t, "fraud");
    [&s.additional_details, &s.failure_reason]
        .into_iter()
        .flatten()
        .any(|t| says_fraud(t))
        || s.authentication_details
            .iter()
            .filter_map(|step| step.result_detail.as_deref())
            .any(says_fraud)
}

/// What the user did with the prompt, from the details: `reported fraud`, `denied`, `did not
/// respond`, or `did not complete`.
fn outcome(s: &SignIn) -> &'static str {
    if reported_fraud(s) {
        return "reported fraud";
    }
    let texts = (s.additional_details.iter()).chain(
        s.authentication_details
            .iter()
            .filter_map(|st| st.result_detail.as_ref()),
    );
    for t in texts {
        let found = with_ascii_lowercase(t, |t| {
            if t.contains("declined") || t.contains("denied the") {
                Some("denied")
            } else if t.contains("did not respond")
                || t.contains("no response")
                || t.contains("timeout")
                || t.contains("timed out")
            {
                Some("did not respond")
            } else {
                None
            }
        });
        if let Some(found) = found {
            return found;
        }
    }
    "did not complete"
}

/// Authentication failed during strong authentication request: an MFA prompt denied, left
/// unanswered, or reported as fraud.
pub const MFA_DENIED_CODE: i64 = 500121;

/// Learns an MFA denial (500121) of user `p` at `now`, after the detectors decided on it: the
/// denial (in [`PrincipalState::mfa_denials`], pruned to the window) and the burst it completes.
pub(crate) fn learn_denial(p: &mut PrincipalState, t: &Settings, now: i64) {
    let window = t.window_minutes * 60;
    if push_in_window(&mut p.mfa_denials, now, window, t.min_denials) {
        p.mfa_fatigue_at = Some(now);
    }
}

/// Learns a successful sign-in of `p`: the first interactive one after a burst is the approval
/// the rule reports, so the burst is closed.
pub(crate) fn learn_success(p: &mut PrincipalState, s: &SignIn) {
    if s.is_interactive() {
        p.mfa_fatigue_at = None;
    }
}

/// The MFA denials of `p` at or after `since`.
pub fn denials_since(p: &PrincipalState, since: i64) -> usize {
    count_since(&p.mfa_denials, since)
}

impl Detector for MfaFatigue {
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
        match s.error_code {
            Some(MFA_DENIED_CODE) => {}
            Some(0) if s.is_interactive() => {}
            _ => return,
        }
        if ctx.sign_in_keys(event).principal.is_none() {
            return;
        }
        let fresh = PrincipalState::default();
        let history = ctx.sign_in_history(event).unwrap_or(&fresh);
        if s.error_code == Some(0) {
            on_success(ctx, event, s, history, out);
        } else if reported_fraud(s) {
            on_fraud(event, s, out);
        } else {
            on_denial(ctx, event, s, history, out);
        }
    }
}

fn base_evidence(s: &SignIn) -> Map<String, serde_json::Value> {
    let mut evidence = Map::new();
    evidence.insert("ip_address".into(), json!(s.ip_address));
    evidence.insert("location".into(), json!(place(s)));
    evidence.insert("app".into(), json!(app_name(s)));
    evidence.insert("client_app_used".into(), json!(s.client_app_used));
    evidence.insert("user_agent".into(), json!(s.user_agent));
    evidence
}

/// A denial or unanswered prompt: fires when it completes a burst not already reported.
fn on_denial(
    ctx: &Context<'_>,
    event: &Event,
    s: &SignIn,
    history: &PrincipalState,
    out: &mut Vec<Finding>,
) {
    let t = ctx.config.rule::<Settings>();
    let now = event.meta.time.timestamp();
    let window = t.window_minutes * 60;
    let count = denials_since(history, now - window + 1) + 1;
    if (count as u32) < t.min_denials {
        return;
    }
    if history.mfa_fatigue_at.is_some_and(|at| at > now - window) {
        return; // the burst was reported and is still running
    }
    let first = (history.mfa_denials.iter().copied())
        .filter(|at| *at > now - window)
        .min()
        .unwrap_or(now)
        .min(now);
    let title = format!(
        "MFA fatigue against {}: {count} MFA prompts denied or unanswered within {} minutes",
        who(s),
        t.window_minutes
    );
    let summary = format!(
        "{count} sign-ins of {} failed at the MFA prompt (500121) between {} and {} (latest: {} \
         from {} ({}) to {}). Someone who has the password is pushing MFA prompts at the user, \
         hoping for an approval. Call the user (not by a channel the attacker may control), reset \
         the password, and watch for an approval: this alert turns high if an interactive \
         sign-in succeeds within {} minutes.",
        who(s),
        time_text(first),
        time_text(now),
        outcome(s),
        s.ip_address.as_deref().unwrap_or("an unknown IP"),
        place(s),
        app_name(s),
        t.success_minutes,
    );
    let mut evidence = base_evidence(s);
    evidence.insert("denials_in_window".into(), json!(count));
    evidence.insert("window_minutes".into(), json!(t.window_minutes));
    evidence.insert("first_denial_at".into(), json!(time_text(first)));
    evidence.insert("latest_outcome".into(), json!(outcome(s)));
    evidence.insert("latest_failure_reason".into(), json!(s.failure_reason));
    evidence.insert(
        "latest_additional_details".into(),
        json!(s.additional_details),
    );
    out.push(Finding {
        rule: ID,
        severity: Severity::Medium,
        title,
        summary,
        evidence,
        mitre: &["T1621"],
        ..about_sign_in(event, s)
    });
}

/// A prompt the user reported as fraud: high on its own.
fn on_fraud(event: &Event, s: &SignIn, out: &mut Vec<Finding>) {
    let title = format!("{} reported an MFA prompt as fraud", who(s));
    let summary = format!(
        "{} answered an MFA prompt for a sign-in from {} ({}) to {} by reporting it as fraud \
         (500121: {}). The user says they did not start this sign-in, so someone else has the \
         password: reset it, revoke sessions, check the account's MFA methods and recent sign-ins, \
         and look for other prompts pushed at this user.",
        who(s),
        s.ip_address.as_deref().unwrap_or("an unknown IP"),
        place(s),
        app_name(s),
        s.additional_details
            .as_deref()
            .or(s.failure_reason.as_deref())
            .unwrap_or("fraud reported"),
    );
    let mut evidence = base_evidence(s);
    evidence.insert("latest_outcome".into(), json!("reported fraud"));
    evidence.insert("failure_reason".into(), json!(s.failure_reason));
    evidence.insert("additional_details".into(), json!(s.additional_details));
    out.push(Finding {
        rule: ID,
        severity: Severity::High,
        title,
        summary,
        evidence,
        mitre: &["T1621"],
        ..about_sign_in(event, s)
    });
}

/// The first interactive success after a burst, within the grace: high.
fn on_success(
    ctx: &Context<'_>,
    event: &Event,
    s: &SignIn,
    history: &PrincipalState,
    out: &mut Vec<Finding>,
) {
    let t = ctx.config.rule::<Settings>();
    let now = event.meta.time.timestamp();
    let Some(burst_at) = history.mfa_fatigue_at else {
        return;
    };
    if now < burst_at || now - burst_at > t.success_minutes * 60 {
        return;
    }
    let minutes = (now - burst_at) / 60;
    let denials = denials_since(history, burst_at - t.window_minutes * 60 + 1);
    let title = format!(
        "{} approved a sign-in {minutes} minutes after a burst of denied MFA prompts",
        who(s)
    );
    let summary = format!(
        "{} signed in successfully and interactively to {} from {} ({}) {minutes} minutes after \
         {denials} MFA prompts were denied or left unanswered (the last at {}). The user may have \
         given in to the prompts: confirm with them at once; if it was not them, revoke sessions, \
         reset the password, and review MFA methods and what the session did.",
        who(s),
        app_name(s),
        s.ip_address.as_deref().unwrap_or("an unknown IP"),
        place(s),
        time_text(burst_at),
    );
    let mut evidence = base_evidence(s);
    evidence.insert("burst_last_denial_at".into(), json!(time_text(burst_at)));
    evidence.insert("minutes_since_burst".into(), json!(minutes));
    evidence.insert("denials_in_burst".into(), json!(denials));
    evidence.insert(
        "second_factor_completed".into(),
        json!(s.has_successful_second_factor()),
    );
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
        mitre: &["T1621", "T1078.004"],
        ..about_sign_in(event, s)
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DetectConfig;
    use crate::testkit::*;
    use entrawatch_ingest::model::AuthenticationStep;

    const ATTACKER: &str = "203.0.113.99";
    const DECLINED: &str = "MFA denied; user declined the authentication";
    const NO_ANSWER: &str = "MFA denied; user did not respond to mobile app notification";

    /// A 500121 sign-in as Graph beta shows it: correct password, then a failed push.
    fn denial(id: &str, upn: &str, minute: i64, details: &str) -> Event {
        sign_in(id, upn, minute)
            .ip(ATTACKER)
            .place("RO", "Bucharest", 44.4268, 26.1025)
            .unmanaged()
            .fail(500121)
            .with(|s| {
                s.failure_reason =
                    Some("Authentication failed during strong authentication request.".into());
                s.additional_details = Some(details.into());
                s.authentication_details[1] = AuthenticationStep {
                    method: Some("Mobile app notification".into()),
                    succeeded: Some(false),
                    result_detail: Some(details.into()),
                    requirement: Some("Multi-factor authentication".into()),
                    ..AuthenticationStep::default()
                };
            })
            .build()
    }

    fn brief(found: &[Finding]) -> Vec<(&str, Severity)> {
        found
            .iter()
            .map(|f| (f.event_ids[0].as_str(), f.severity))
            .collect()
    }

    #[test]
    fn fires_on_a_burst_on_the_approval_after_it_and_on_a_fraud_report() {
        let mut events = vec![
            denial("d1", "ann@contoso.com", 0, DECLINED),
            denial("d2", "ann@contoso.com", 2, NO_ANSWER),
            denial("d3", "ann@contoso.com", 4, DECLINED),
            // The burst goes on: reported once.
            denial("d4", "ann@contoso.com", 6, NO_ANSWER),
            // Ann's phone refreshing a token proves nothing.
            sign_in("refresh", "ann@contoso.com", 8)
                .non_interactive()
                .build(),
            // She gives in.
            sign_in("approved", "ann@contoso.com", 12)
                .ip(ATTACKER)
                .place("RO", "Bucharest", 44.4268, 26.1025)
                .unmanaged()
                .build(),
            // Later successes are hers, and the burst was reported.
            sign_in("later", "ann@contoso.com", 20).build(),
        ];
        // Bob reports the first prompt as fraud.
        events.push(denial(
            "fraud",
            "bob@contoso.com",
            30,
            "MFA denied; Phone App Reported Fraud",
        ));
        let found = run(ID, DetectConfig::default(), &events);
        assert_eq!(
            brief(&found),
            vec![
                ("d3", Severity::Medium),
                ("approved", Severity::High),
                ("fraud", Severity::High)
            ]
        );
        assert_eq!(found[0].evidence["denials_in_window"], json!(3));
        assert_eq!(found[0].evidence["latest_outcome"], json!("denied"));
        assert_eq!(found[1].evidence["minutes_since_burst"], json!(6));
        assert_eq!(found[1].evidence["denials_in_burst"], json!(4));
        assert_eq!(found[1].mitre, &["T1621", "T1078.004"]);
        assert_eq!(found[2].evidence["latest_outcome"], json!("reported fraud"));
        assert_eq!(found[0].principal.id, uid("ann@contoso.com"));
        assert_eq!(found[1].ip.as_deref(), Some(ATTACKER));
        insta::assert_json_snapshot!("mfa_fatigue_fires", snapshot(&found));
    }

    #[test]
    fn stays_quiet_on_a_mis_tap_slow_denials_prompts_and_late_successes() {
        let mut events = vec![
            // One denial, then the user approves: a mis-tap.
            denial("m1", "cal@contoso.com", 0, DECLINED),
            sign_in("m2", "cal@contoso.com", 1).build(),
            // Two denials in the window, then a success.
            denial("t1", "dee@contoso.com", 0, NO_ANSWER),
            denial("t2", "dee@contoso.com", 5, NO_ANSWER),
            sign_in("t3", "dee@contoso.com", 7).build(),
            // Three denials, but six minutes apart.
            denial("s1", "eve@contoso.com", 0, NO_ANSWER),
            denial("s2", "eve@contoso.com", 6, NO_ANSWER),
            denial("s3", "eve@contoso.com", 12, NO_ANSWER),
        ];
        // MFA required (50074, 50076) is the prompt, not its answer: many of them stay quiet.
        for k in 0..8 {
            events.push(
                sign_in(&format!("p{k}"), "fay@contoso.com", k)
                    .fail([50074, 50076][k as usize % 2])
                    .build(),
            );
        }
        // A burst, but the success comes more than 30 minutes after its last denial.
        for k in 0..3 {
            events.push(denial(
                &format!("g{k}"),
                "gus@contoso.com",
                100 + k,
                DECLINED,
            ));
        }
        events.push(sign_in("g-late", "gus@contoso.com", 102 + 31).build());
        let found = run(ID, DetectConfig::default(), &events);
        // Gus's burst itself is medium; nothing else fires.
        assert_eq!(brief(&found), vec![("g2", Severity::Medium)]);
    }

    #[test]
    fn thresholds_follow_the_config() {
        let mut config = DetectConfig::default();
        config.rule_mut::<Settings>().min_denials = 2;
        config.rule_mut::<Settings>().window_minutes = 3;
        config.rule_mut::<Settings>().success_minutes = 5;
        let events = vec![
            denial("x1", "hal@contoso.com", 0, DECLINED),
            denial("x2", "hal@contoso.com", 3, DECLINED),
            denial("x3", "hal@contoso.com", 4, DECLINED),
            sign_in("y1", "hal@contoso.com", 10).build(),
            denial("x4", "hal@contoso.com", 20, DECLINED),
            denial("x5", "hal@contoso.com", 21, DECLINED),
            sign_in("y2", "hal@contoso.com", 24).build(),
        ];
        // x2's window holds only itself; x3 completes x2..x3. y1 is six minutes after it; x5
        // opens a new burst, and y2 approves within five minutes.
        assert_eq!(
            brief(&run(ID, config, &events)),
            vec![
                ("x3", Severity::Medium),
                ("x5", Severity::Medium),
                ("y2", Severity::High)
            ]
        );
    }
}
