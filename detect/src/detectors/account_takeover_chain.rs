//! `account-takeover-chain`: see [`DOC`] for what it detects and why.
//!
//! A rule about the other rules' findings (the engine's `on_findings` hook), not about a record
//! shape: its members follow the shapes their own rules cite. The story it tells follows
//! Microsoft Learn "Compromised and malicious applications investigation" and "Identity
//! Protection risk detections" (a risky sign-in, then persistence through new authentication
//! methods, then privilege escalation) and the "Microsoft Entra audit log activity reference"
//! (`User registered security info`, `Add member to role`).

use std::marker::PhantomData;

use std::collections::BTreeSet;

use entrawatch_ingest::Event;
use serde_json::{Map, Value, json};

use super::time_text;
use crate::detector::{Context, Detector};
use crate::finding::{Finding, PrincipalKind, Severity};
use crate::settings::{Of, RuleSettings, SettingsKind};

pub const ID: &str = "account-takeover-chain";

/// Risky or unfamiliar sign-ins: the first step of the sequence.
pub const SIGN_IN_RULES: [&str; 6] = [
    "risky-sign-in",
    "new-country-sign-in",
    "impossible-travel",
    "session-token-replay",
    "mfa-fatigue",
    "device-code-sign-in",
];
/// Security-info changes: the second step.
pub const SECURITY_INFO_RULES: [&str; 1] = ["security-info-changed-privileged"];
/// Role grants: the third step.
pub const ROLE_RULES: [&str; 1] = ["privileged-role-assigned"];

/// Rules about how an account signs in (its posture) rather than about something that happened to
/// it: they fire on every such sign-in of an administrator, so they never join a chain.
pub const POSTURE_RULES: [&str; 5] = [
    "mfa-not-satisfied",
    "legacy-auth-sign-in",
    "weak-mfa-privileged",
    "unmanaged-device-privileged",
    "admin-collaboration-use",
];

/// User documentation, printed by `entrawatch rules account-takeover-chain`.
pub const DOC: &str = r#"## What it detects
One user (same tenant, same user object id) who is the principal of findings that, within
`window_hours` (default 6), tell the story of an account taken over:
- findings of at least three different other rules, each of medium or higher severity (for
  example a new-country sign-in, a security-info change and a privileged role grant); or
- the sequence, at any severity: a risky or unfamiliar sign-in (`risky-sign-in`,
  `new-country-sign-in`, `impossible-travel`, `session-token-replay`, `mfa-fatigue`,
  `device-code-sign-in`), then a security-info change (`security-info-changed-privileged`),
  then a role grant (`privileged-role-assigned`).

It fires critical, once per chain, on the event whose finding completes it; findings that come
within the window of the last one reported belong to the same chain and do not fire again. A new
chain starts only after a whole window with nothing new. Findings of IP-, tenant- and
service-principal-level rules never join, nor do those of the rules about how an account signs
in rather than about something that happened to it (`mfa-not-satisfied`, `legacy-auth-sign-in`,
`weak-mfa-privileged`, `unmanaged-device-privileged`, `admin-collaboration-use`: they fire on
every such sign-in of an administrator); findings dropped by allow lists never join.

## Why it matters
Each step alone is often explained away: people travel, re-register their phone, get a role for
a project. Together, for one account within hours, they are the shape of a takeover: an attacker
signs in with a stolen password or token, registers their own authentication method to keep
access past a password reset, then grants the account a privileged role (or has it granted).
One alert that names every step saves the analyst from joining three alerts by hand, and says
that the account, not a single event, needs the response (revoke sessions, remove the new
methods and the role, reset credentials). MITRE ATT&CK T1078.004 (Valid Accounts: Cloud
Accounts) and T1098 (Account Manipulation).

## Signals used
The findings the other rules raise for the current event (after allow lists), and a small
per-user record of the recent findings that may join a chain (rule, severity, time, first event
id, title): those of medium or higher severity and those of the sequence's rules at any
severity; at most 8 per user, none older than the window, all forgotten after 30 days.

## Example
At 09:02 `megan@contoso.com`, a User Administrator, signs in from Lagos, a country she never
used (`new-country-sign-in`, medium); at 09:15 a Microsoft Authenticator app is registered on her
account (`security-info-changed-privileged`, high); at 09:40 she is made Global Administrator
outside PIM (`privileged-role-assigned`, critical). The grant completes the chain: one critical
alert for Megan whose evidence lists the three findings in order (rule, severity, time, event id,
title), with the three event ids.

## Known false positives and tuning
An administrator travelling who re-registers their phone abroad and is granted a role the same
day by a colleague. Confirm the steps with the user and the approver of the grant. Shorten
`window_hours` to demand a tighter sequence; allow lists of the member rules keep their
findings out of chains, and `[detect.allow.account-takeover-chain]` exempts a principal from the
chain alert alone.

## References
Microsoft Learn: "What are risk detections?" (Identity Protection), "Microsoft Entra audit log
activity reference" (UserManagement `User registered security info`, RoleManagement `Add member
to role`), "Investigate risk", and MITRE ATT&CK T1078.004 and T1098.
"#;

/// `[detect.rules.account-takeover-chain]`: this rule's settings, each with its default.
#[derive(Debug, Clone, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// The findings of one user within this many hours make a chain (default 6).
    pub window_hours: i64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings { window_hours: 6 }
    }
}

impl RuleSettings for Settings {
    crate::settings_slot!();

    const KEYS: &'static [(&'static str, &'static str)] = &[(
        "window_hours",
        "the findings of one user within this many hours make a chain",
    )];

    fn validate(&self, path: &str) -> Vec<String> {
        crate::settings::greater_than_zero(path, &[("window_hours", self.window_hours as f64)])
    }
}

#[derive(Debug, Clone, Copy, Default)]
pub struct AccountTakeoverChain;

/// Whether a finding of `rule` at `severity` may join a chain (and is remembered for one).
pub fn joins_chain(rule: &str, severity: Severity) -> bool {
    rule != ID
        && !POSTURE_RULES.contains(&rule)
        && (severity >= Severity::Medium
            || SIGN_IN_RULES.contains(&rule)
            || SECURITY_INFO_RULES.contains(&rule)
            || ROLE_RULES.contains(&rule))
}

fn is_member(f: &Finding) -> bool {
    f.principal.kind == PrincipalKind::User && joins_chain(f.rule, f.severity)
}

fn same_principal(a: &Finding, b: &Finding) -> bool {
    a.tenant_id == b.tenant_id && a.principal.id.eq_ignore_ascii_case(&b.principal.id)
}

/// A member of a candidate chain, past (from the state) or of this event.
struct Step<'a> {
    rule: &'a str,
    severity: Severity,
    at: i64,
    event_id: &'a str,
    title: &'a str,
}

/// Whether the steps (in time order) hold a risky sign-in, then a security-info change, then a
/// role grant.
fn in_sequence(steps: &[Step<'_>]) -> bool {
    let want: [&[&str]; 3] = [&SIGN_IN_RULES, &SECURITY_INFO_RULES, &ROLE_RULES];
    let mut next = 0;
    for s in steps {
        if next < 3 && want[next].contains(&s.rule) {
            next += 1;
        }
    }
    next == 3
}

impl Detector for AccountTakeoverChain {
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
        Severity::Critical
    }

    fn observe(&self, _ctx: &Context<'_>, _event: &Event, _out: &mut Vec<Finding>) {}

    fn on_findings(
        &self,
        ctx: &Context<'_>,
        _event: &Event,
        findings: &[Finding],
        out: &mut Vec<Finding>,
    ) {
        let window = ctx
            .config
            .rule::<Settings>()
            .window_hours
            .saturating_mul(3600);
        for (i, f) in findings.iter().enumerate() {
            if !is_member(f)
                || findings[..i]
                    .iter()
                    .any(|g| is_member(g) && same_principal(f, g))
            {
                continue;
            }
            let current: Vec<&Finding> = findings[i..]
                .iter()
                .filter(|g| is_member(g) && same_principal(f, g))
                .collect();
            let now = current
                .iter()
                .map(|g| g.time.timestamp())
                .max()
                .unwrap_or(0);
            let past = ctx.state.chain(&f.tenant_id, &f.principal.id);
            if past.is_some_and(|c| c.reported_chain_covers(now, window)) {
                continue;
            }
            let mut steps: Vec<Step<'_>> = past
                .map(|c| c.members.as_slice())
                .unwrap_or_default()
                .iter()
                .filter(|m| m.at >= now - window && m.at <= now)
                .map(|m| Step {
                    rule: &m.rule,
                    severity: m.severity,
                    at: m.at,
                    event_id: &m.event_id,
                    title: &m.title,
                })
                .collect();
            steps.extend(current.iter().map(|g| Step {
                rule: g.rule,
                severity: g.severity,
                at: g.time.timestamp(),
                event_id: g.event_ids.first().map_or("", String::as_str),
                title: &g.title,
            }));
            steps.sort_by_key(|s| s.at);
            let strong: BTreeSet<&str> = steps
                .iter()
                .filter(|s| s.severity >= Severity::Medium)
                .map(|s| s.rule)
                .collect();
            let matched = if strong.len() >= 3 {
                "three_rules"
            } else if in_sequence(&steps) {
                "sequence"
            } else {
                continue;
            };
            out.push(chain_finding(f, &current, &steps, matched, window));
        }
    }
}

fn chain_finding(
    f: &Finding,
    current: &[&Finding],
    steps: &[Step<'_>],
    matched: &str,
    window: i64,
) -> Finding {
    let who = current
        .iter()
        .find_map(|g| g.principal.upn.as_deref())
        .unwrap_or(&f.principal.id);
    let mut rules: Vec<&str> = Vec::new();
    for s in steps {
        if !rules.contains(&s.rule) {
            rules.push(s.rule);
        }
    }
    let mut event_ids: Vec<String> = Vec::new();
    for s in steps {
        if !s.event_id.is_empty() && !event_ids.iter().any(|e| e == s.event_id) {
            event_ids.push(s.event_id.to_owned());
        }
    }
    let first = steps.first().map_or(0, |s| s.at);
    let last = steps.last().map_or(0, |s| s.at);
    let minutes = (last - first) / 60;
    let members: Vec<Value> = steps
        .iter()
        .map(|s| {
            json!({
                "rule": s.rule,
                "severity": s.severity.as_str(),
                "time": time_text(s.at),
                "event_id": s.event_id,
                "title": s.title,
            })
        })
        .collect();
    let mut evidence = Map::new();
    evidence.insert("matched".into(), json!(matched));
    evidence.insert("rules".into(), json!(rules));
    evidence.insert("members".into(), Value::Array(members));
    evidence.insert("first_at".into(), json!(time_text(first)));
    evidence.insert("last_at".into(), json!(time_text(last)));
    evidence.insert("minutes".into(), json!(minutes));
    evidence.insert("window_hours".into(), json!(window / 3600));
    let mut principal = f.principal.clone();
    if principal.upn.is_none() {
        principal.upn = current.iter().find_map(|g| g.principal.upn.clone());
    }
    Finding {
        rule: ID,
        severity: Severity::Critical,
        tenant_id: f.tenant_id.clone(),
        principal,
        time: current.iter().map(|g| g.time).max().unwrap_or(f.time),
        event_ids,
        title: format!("Account takeover chain for {who}: {}", rules.join(" → ")),
        summary: format!(
            "{who} was the subject of {} findings of {} rules within {minutes} minutes ({}), the shape of an account taken over: {}.",
            steps.len(),
            rules.len(),
            if matched == "sequence" {
                "a risky sign-in, then a security-info change, then a role grant"
            } else {
                "three or more different rules of medium or higher severity"
            },
            steps
                .iter()
                .map(|s| format!("{} at {}", s.rule, time_text(s.at)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        evidence,
        mitre: &["T1078.004", "T1098"],
        ip: current.iter().find_map(|g| g.ip.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DetectConfig;
    use crate::engine::Engine;
    use crate::finding::Principal;
    use crate::privileged::PrivilegedDirectory;
    use crate::state::State;
    use crate::testkit::*;

    const MEGAN: &str = "megan@contoso.com";
    const USER_ADMIN: &str = "fe930be7-5e62-47db-91af-98c3a49a38b1";

    /// Every rule enabled; the chain findings only.
    fn chains(events: &[Event]) -> Vec<Finding> {
        chains_with(DetectConfig::default(), events)
    }

    fn chains_with(config: DetectConfig, events: &[Event]) -> Vec<Finding> {
        let mut engine = Engine::new(config).unwrap();
        let mut out = Vec::new();
        for e in events {
            engine.process(e, &mut out);
        }
        out.retain(|f| f.rule == ID);
        out
    }

    /// Megan, a User Administrator with a baseline from Seattle, signs in from Lagos, registers an
    /// authenticator app and is made Global Administrator outside PIM.
    fn takeover() -> Vec<Event> {
        let mut events = vec![role_grant(TENANT, MEGAN, USER_ADMIN)];
        events.extend(baseline(MEGAN, 8, 2, 0));
        events.push(
            sign_in("s1", MEGAN, 62)
                .place("NG", "Lagos", 6.5244, 3.3792)
                .ip("102.89.34.17")
                .build(),
        );
        events.push(
            audit("m1", "User registered security info", 75)
                .category("UserManagement")
                .with(|a| {
                    a.logged_by_service = Some("Authentication Methods".into());
                    a.result_reason =
                        Some("User registered Authenticator App with Notification and Code".into());
                })
                .by_user(MEGAN)
                .target_user(MEGAN)
                .build(),
        );
        events.push(
            audit("r1", "Add member to role", 100)
                .category("RoleManagement")
                .by_user("helpdesk@contoso.com")
                .target_user(MEGAN)
                .modified("Role.DisplayName", None, Some("Global Administrator"))
                .modified("Role.TemplateId", None, Some(GLOBAL_ADMIN))
                .target("Role", "14d63ece-c0ef-45b8-9381-526fa9e82e75", "")
                .build(),
        );
        events
    }

    #[test]
    fn fires_once_on_three_rules_of_one_user_within_the_window() {
        let mut events = takeover();
        // Another grant an hour later belongs to the same chain.
        events.push(
            audit("r2", "Add member to role", 160)
                .category("RoleManagement")
                .by_user("helpdesk@contoso.com")
                .target_user(MEGAN)
                .modified("Role.DisplayName", None, Some("Exchange Administrator"))
                .modified(
                    "Role.TemplateId",
                    None,
                    Some("29232cdf-9323-42fd-ade2-1d097af3e4de"),
                )
                .target("Role", "24d63ece-c0ef-45b8-9381-526fa9e82e75", "")
                .build(),
        );
        let found = chains(&events);
        assert_eq!(found.len(), 1, "{found:#?}");
        let f = &found[0];
        assert_eq!(f.severity, Severity::Critical);
        assert_eq!(f.principal.id, uid(MEGAN));
        assert_eq!(f.event_ids, vec!["s1", "m1", "r1"]);
        assert_eq!(f.evidence["matched"], "three_rules");
        insta::assert_json_snapshot!(snapshot(&found));
    }

    /// A finding as another rule would raise it, about `upn` in `tenant`.
    fn finding(
        rule: &'static str,
        severity: Severity,
        minute: i64,
        upn: &str,
        id: &str,
    ) -> Finding {
        Finding {
            rule,
            severity,
            tenant_id: TENANT.into(),
            principal: Principal {
                kind: PrincipalKind::User,
                id: uid(upn),
                upn: Some(upn.into()),
                home_tenant_id: None,
            },
            time: at(minute),
            event_ids: vec![id.into()],
            title: format!("{rule} for {upn}"),
            summary: String::new(),
            evidence: Map::new(),
            mitre: &[],
            ip: None,
        }
    }

    /// Runs the hook as the engine does: one batch of findings per event, the state learning
    /// from each batch and the chain findings it raised.
    fn chain_over(batches: Vec<Vec<Finding>>) -> Vec<Finding> {
        let config = DetectConfig::default();
        let directory = PrivilegedDirectory::default();
        let mut state = State::default();
        let mut raised = Vec::new();
        let event = sign_in("e", MEGAN, 0).build();
        for mut batch in batches {
            let mut out = Vec::new();
            let ctx = Context::new(&config, &directory, &state);
            AccountTakeoverChain.on_findings(&ctx, &event, &batch, &mut out);
            raised.extend(out.iter().cloned());
            batch.append(&mut out);
            state.record_findings(&config, &batch);
        }
        raised
    }

    #[test]
    fn fires_on_the_sequence_with_low_and_medium_members() {
        let found = chain_over(vec![
            vec![finding(
                "new-country-sign-in",
                Severity::Low,
                0,
                "ann@contoso.com",
                "s1",
            )],
            vec![finding(
                "mfa-fatigue",
                Severity::Low,
                5,
                "ann@contoso.com",
                "s2",
            )],
            // Posture rules never join.
            vec![finding(
                "weak-mfa-privileged",
                Severity::High,
                6,
                "ann@contoso.com",
                "w1",
            )],
            vec![finding(
                "unmanaged-device-privileged",
                Severity::High,
                7,
                "ann@contoso.com",
                "u1",
            )],
            vec![finding(
                "security-info-changed-privileged",
                Severity::Medium,
                30,
                "ann@contoso.com",
                "m1",
            )],
            vec![finding(
                "privileged-role-assigned",
                Severity::Low,
                200,
                "ann@contoso.com",
                "r1",
            )],
        ]);
        assert_eq!(found.len(), 1, "{found:#?}");
        assert_eq!(found[0].evidence["matched"], "sequence");
        assert_eq!(found[0].event_ids, vec!["s1", "s2", "m1", "r1"]);
        // Out of order (the grant before the security-info change) it stays quiet.
        let found = chain_over(vec![
            vec![finding(
                "risky-sign-in",
                Severity::Low,
                0,
                "ann@contoso.com",
                "s1",
            )],
            vec![finding(
                "privileged-role-assigned",
                Severity::Low,
                10,
                "ann@contoso.com",
                "r1",
            )],
            vec![finding(
                "security-info-changed-privileged",
                Severity::Low,
                30,
                "ann@contoso.com",
                "m1",
            )],
        ]);
        assert!(found.is_empty(), "{found:#?}");
    }

    #[test]
    fn fires_again_only_after_a_quiet_window() {
        let three = |start: i64, tag: &str| {
            ["risky-sign-in", "brute-force", "consent-grant-risky"]
                .iter()
                .enumerate()
                .map(|(k, r)| {
                    vec![finding(
                        r,
                        Severity::High,
                        start + 30 * k as i64,
                        MEGAN,
                        &format!("{tag}{k}"),
                    )]
                })
                .collect::<Vec<_>>()
        };
        let mut batches = three(0, "a");
        // Five hours later, within the window of the last: the same chain.
        batches.extend(three(360, "b"));
        // More than six hours after the last: a new chain.
        batches.extend(three(360 + 60 + 6 * 60 + 1, "c"));
        let found = chain_over(batches);
        let ids: Vec<&str> = found.iter().map(|f| f.event_ids[0].as_str()).collect();
        assert_eq!(ids, vec!["a0", "c0"]);
    }

    #[test]
    fn stays_quiet_on_two_rules_spread_chains_and_other_principals() {
        // Two rules only, however many findings.
        let found = chain_over(vec![
            vec![finding("risky-sign-in", Severity::High, 0, MEGAN, "s1")],
            vec![finding("risky-sign-in", Severity::High, 10, MEGAN, "s2")],
            vec![finding(
                "privileged-role-assigned",
                Severity::Critical,
                20,
                MEGAN,
                "r1",
            )],
        ]);
        assert!(found.is_empty(), "{found:#?}");
        // Three rules spread over more than the window (6 hours).
        let found = chain_over(vec![
            vec![finding(
                "new-country-sign-in",
                Severity::Medium,
                0,
                MEGAN,
                "s1",
            )],
            vec![finding(
                "security-info-changed-privileged",
                Severity::High,
                200,
                MEGAN,
                "m1",
            )],
            vec![finding(
                "privileged-role-assigned",
                Severity::Critical,
                361,
                MEGAN,
                "r1",
            )],
        ]);
        assert!(found.is_empty(), "{found:#?}");
        // Three rules, three users; and the same user in another tenant.
        let mut elsewhere = finding(
            "privileged-role-assigned",
            Severity::Critical,
            20,
            MEGAN,
            "r1",
        );
        elsewhere.tenant_id = TENANT_B.into();
        let mut tenant_level = finding("log-source-silent", Severity::High, 25, MEGAN, "t1");
        tenant_level.principal.kind = PrincipalKind::Tenant;
        let found = chain_over(vec![
            vec![finding(
                "new-country-sign-in",
                Severity::Medium,
                0,
                MEGAN,
                "s1",
            )],
            vec![finding(
                "security-info-changed-privileged",
                Severity::High,
                10,
                "bob@contoso.com",
                "m1",
            )],
            vec![elsewhere],
            vec![tenant_level],
            vec![finding(
                "consent-grant-risky",
                Severity::High,
                30,
                "cy@contoso.com",
                "c1",
            )],
        ]);
        assert!(found.is_empty(), "{found:#?}");
        // A member dropped by its allow list does not join.
        let mut config = DetectConfig::default();
        config.allow.insert(
            "new-country-sign-in".into(),
            crate::config::AllowList {
                principals: vec![MEGAN.into()],
                ips: Vec::new(),
            },
        );
        assert!(chains_with(config, &takeover()).is_empty());
        // Without the other rules' findings (only this rule enabled) nothing happens.
        assert!(run(ID, DetectConfig::default(), &takeover()).is_empty());
    }

    #[test]
    fn the_record_is_capped_and_evicted() {
        let config = DetectConfig::default();
        let mut state = State::default();
        for k in 0..20 {
            state.record_findings(
                &config,
                &[finding(
                    "brute-force",
                    Severity::Medium,
                    k,
                    MEGAN,
                    &format!("b{k}"),
                )],
            );
        }
        let c = state.chain(TENANT, &uid(MEGAN)).unwrap();
        assert_eq!(c.members.len(), crate::state::MAX_CHAIN_MEMBERS);
        assert_eq!(c.members[0].event_id, "b12");
        assert!(state.approx_bytes() > 0);
        // A low finding of a rule outside the sequence is not kept.
        state.record_findings(
            &config,
            &[finding(
                "legacy-auth-sign-in",
                Severity::Low,
                30,
                "bob@contoso.com",
                "l1",
            )],
        );
        assert!(state.chain(TENANT, &uid("bob@contoso.com")).is_none());
        state.clock = at(0).timestamp() + 31 * 24 * 60 * 60;
        state.evict();
        assert!(state.chains.is_empty());
    }
}
