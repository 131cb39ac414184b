//! `session-token-replay`: see [`DOC`] for what it detects and why.
//!
//! Record shapes follow Microsoft Learn "signIn resource type" (beta: `sessionId`, the session a
//! sign-in belongs to, shared by the sign-ins its cookies and refresh tokens make;
//! `authenticationDetails[].authenticationStepResultDetail` `MFA requirement satisfied by claim in
//! the token`) and the Azure Monitor `SigninLogs` / `AADNonInteractiveUserSignInLogs` table
//! reference (`SessionId` column; Event Hub `properties.sessionId`).

use std::marker::PhantomData;

use entrawatch_ingest::model::{Event, Kind};
use serde_json::{Map, json};

use super::hostile_network;
use super::{about_sign_in, app_name, place, sign_in_principal, time_text, who};
use crate::detector::{Context, Detector};
use crate::finding::{Finding, Severity};
use crate::keys::{country_code, country_text};
use crate::settings::{Of, RuleSettings, SettingsKind};
use crate::state::SessionUse;

pub const ID: &str = "session-token-replay";

/// User documentation, printed by `entrawatch rules session-token-replay`.
pub const DOC: &str = r#"## What it detects
A successful user sign-in (interactive or not) whose session id (`sessionId`) the user's session
began with somewhere else, from a network one person cannot plausibly use at the same time: a
different country, or a network ID Protection flags as anonymising or malicious
(`riskEventTypes` `anonymizedIPAddress`, `maliciousIPAddress`) when the session did not begin on
one, within `window_minutes` (default 60) of the session's last use from where it
began. High when that sign-in's MFA was "satisfied by claim in the token" (the stolen cookie or
token carried it); medium otherwise. The same session over an office's IPv4 and IPv6 addresses
(same country and city) stays quiet, and so does a session used in another country hours after
its last use at home (travel).

## Why it matters
Adversary-in-the-middle phishing kits (Evilginx, Tycoon 2FA, EvilProxy) relay the real sign-in
page: the user enters their password and answers MFA, and the proxy keeps the session cookie.
The attacker replays it from their own infrastructure minutes later and is signed in as the user,
MFA satisfied by the claim in the stolen token, without a prompt. Entra ID logs both sign-ins
with the same session id. MITRE ATT&CK T1539 (Steal Web Session Cookie) and T1550.004 (Use
Alternate Authentication Material: Web Session Cookie).

## Signals used
`sessionId` (Log Analytics `SessionId`), `status.errorCode` (0), the user, `ipAddress`,
`location.countryOrRegion` / `city`, `riskEventTypes`, `authenticationDetails` (the step result
`MFA requirement satisfied by claim in the token`), `authenticationRequirement`, the app, and
the engine's per-user list of the last few sessions (at most 4: the session id hashed to 128
bits, where it began, when it was last used from there; forgotten after 30 days). Sign-ins
without a session id, failures and interrupts, and service principals are not used.

## Example
`ann@contoso.com` signs in to OfficeHome from the Seattle office (203.0.113.10, US) at 09:02,
answering an Authenticator prompt on a look-alike page. At 09:09 a sign-in with the same session
id succeeds from 198.51.100.23 in Amsterdam, NL, MFA "satisfied by claim in the token": high.
Revoke her sessions (`revokeSignInSessions`), reset her password, look for inbox rules and new
MFA methods the attacker added, and find the phishing mail.

## Known false positives and tuning
A VPN or secure web gateway that egresses in another country, switched on or off in the middle
of a session, looks the same; add its egress ranges under
`[detect.allow.session-token-replay]` (`ips`, either end of the pair) or allow-list the user.
Shorten `window_minutes` to ignore slower moves. Repeats for one user group into
one episode.

## References
Microsoft Learn: "signIn resource type" (beta, `sessionId`), "SigninLogs" table reference
(`SessionId`), "Token protection in Conditional Access"; Microsoft Threat Intelligence, "From
cookie theft to BEC: Attackers use AiTM phishing sites as entry point to further financial
fraud"; MITRE ATT&CK T1539, T1550.004.
"#;

/// `[detect.rules.session-token-replay]`: this rule's settings, each with its default.
#[derive(Debug, Clone, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// One session used from another country (or an anonymising network) within this many minutes of its last use from where it began (default 60).
    pub window_minutes: i64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings { window_minutes: 60 }
    }
}

impl RuleSettings for Settings {
    crate::settings_slot!();

    const KEYS: &'static [(&'static str, &'static str)] = &[(
        "window_minutes",
        "one session used from another country (or an anonymising network) within this many minutes of its last use from where it began",
    )];

    fn validate(&self, path: &str) -> Vec<String> {
        crate::settings::greater_than_zero(path, &[("window_minutes", self.window_minutes as f64)])
    }
}

#[derive(Debug, Clone, Copy, Default)]
pub struct SessionTokenReplay;

/// `40 min`, `2 s`.
fn gap_text(secs: i64) -> String {
    if secs < 60 {
        format!("{secs} s")
    } else {
        format!("{} min", secs / 60)
    }
}

fn origin_place(u: &SessionUse) -> String {
    if u.country == 0 {
        "an unknown country".to_owned()
    } else {
        country_text(u.country)
    }
}

impl Detector for SessionTokenReplay {
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
        if !(s.is_success() && s.is_user()) {
            return;
        }
        let Some(session) = s
            .session_id
            .as_deref()
            .filter(|x| !crate::keys::trimmed(x).is_empty())
        else {
            return;
        };
        let Some(history) = ctx.sign_in_history(event) else {
            return;
        };
        if history.sessions.is_empty() {
            return;
        }
        let keys = ctx.sign_in_keys(event);
        let Some(origin) = keys.session.and_then(|k| history.session(k)) else {
            return;
        };
        let ip = keys.ip.unwrap_or(0);
        if origin.same_place(s, ip) {
            return;
        }
        let now = event.meta.time.timestamp();
        let gap = (now - origin.at).abs();
        if gap > ctx.config.rule::<Settings>().window_minutes * 60 {
            return;
        }
        let country = country_code(s.location.country_or_region.as_deref());
        let other_country = country != 0 && origin.country != 0 && country != origin.country;
        let hostile = hostile_network(s).filter(|_| !origin.hostile);
        if !other_country && hostile.is_none() {
            return;
        }
        let origin_ip = origin.addr.map(|a| a.to_string());
        // An allow-listed network where the session began explains the pair as well as one at
        // this end (which the engine checks).
        let principal = sign_in_principal(s);
        if origin_ip.as_deref().is_some_and(|ip| {
            ctx.config
                .is_allowed(ID, &principal.id, principal.upn.as_deref(), Some(ip))
        }) {
            return;
        }
        let by_claim = s.mfa_by_claim();
        let severity = if by_claim {
            Severity::High
        } else {
            Severity::Medium
        };
        let from = origin_place(origin);
        let to = place(s);
        let ip_text = s.ip_address.as_deref().unwrap_or("an unknown IP");
        let origin_ip_text = origin_ip.as_deref().unwrap_or("an unknown IP");
        let mut why = Vec::new();
        if other_country {
            why.push(format!("from {to}, another country than {from}"));
        }
        if let Some(t) = hostile {
            why.push(format!("from a network ID Protection flags ({t})"));
        }
        let title = format!(
            "{}: session used from {} {} after its use in {}{}",
            who(s),
            to,
            gap_text(gap),
            from,
            if by_claim {
                ", MFA satisfied by the token"
            } else {
                ""
            }
        );
        let summary = format!(
            "{} signed in successfully to {} from {ip_text} ({to}) with session {session}, {}, \
             {} after the same session was used from {origin_ip_text} ({from}) at {}. {}One person \
             does not use one session from both places at once: this is how a session cookie \
             stolen by an adversary-in-the-middle phishing proxy is replayed. Ask the user which \
             sign-in was theirs; if not both, revoke their sessions, reset the password, and look \
             for new MFA methods and inbox rules. A VPN switched on mid-session explains some cases.",
            who(s),
            app_name(s),
            why.join(" and "),
            gap_text(gap),
            time_text(origin.at),
            if by_claim {
                "MFA was satisfied by the claim in the token, not by a prompt. "
            } else {
                ""
            },
        );
        let mut evidence = Map::new();
        evidence.insert("session_id".into(), json!(session));
        evidence.insert(
            "session_origin".into(),
            json!({
                "last_used_at": time_text(origin.at),
                "ip_address": origin_ip,
                "country": from,
                "risky_network": origin.hostile,
            }),
        );
        evidence.insert("ip_address".into(), json!(s.ip_address));
        evidence.insert("location".into(), json!(to));
        evidence.insert("minutes_apart".into(), json!(gap / 60));
        evidence.insert("other_country".into(), json!(other_country));
        evidence.insert("risky_network".into(), json!(hostile));
        evidence.insert("mfa_by_claim".into(), json!(by_claim));
        evidence.insert(
            "authentication_requirement".into(),
            json!(s.authentication_requirement),
        );
        evidence.insert("interactive".into(), json!(s.is_interactive()));
        evidence.insert("app".into(), json!(app_name(s)));
        evidence.insert("user_agent".into(), json!(s.user_agent));
        out.push(Finding {
            rule: ID,
            severity,
            title,
            summary,
            evidence,
            mitre: &["T1539", "T1550.004"],
            ..about_sign_in(event, s)
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DetectConfig;
    use crate::keys::key128;
    use crate::testkit::*;
    use entrawatch_ingest::model::AuthenticationStep;

    const SESSION: &str = "0f9e8d7c-6b5a-4c3d-9e2f-1a0b9c8d7e6f";

    /// A sign-in of `upn` in session `session` from the Seattle office (the testkit's default
    /// place and address), MFA answered by an Authenticator prompt.
    fn in_session(id: &str, upn: &str, minute: i64, session: &str) -> SignInB {
        sign_in(id, upn, minute)
            .app("OfficeHome", "4765445b-32c6-49b0-83e6-1d93765276ca")
            .with(|s| s.session_id = Some(session.into()))
    }

    /// The replayed cookie as Entra ID logs it: password and MFA both satisfied by claims in the
    /// token the proxy captured.
    fn by_claim(b: SignInB) -> SignInB {
        b.with(|s| {
            s.authentication_details = vec![
                AuthenticationStep {
                    method: Some("Previously satisfied".into()),
                    succeeded: Some(true),
                    result_detail: Some(
                        "First factor requirement satisfied by claim in the token".into(),
                    ),
                    requirement: Some("Primary authentication".into()),
                    ..AuthenticationStep::default()
                },
                AuthenticationStep {
                    method: Some("Previously satisfied".into()),
                    succeeded: Some(true),
                    result_detail: Some("MFA requirement satisfied by claim in the token".into()),
                    requirement: Some("Multi-factor authentication".into()),
                    ..AuthenticationStep::default()
                },
            ]
        })
    }

    fn brief(found: &[Finding]) -> Vec<(&str, Severity)> {
        found
            .iter()
            .map(|f| (f.event_ids[0].as_str(), f.severity))
            .collect()
    }

    #[test]
    fn fires_on_a_session_replayed_from_another_country_or_an_anonymising_network() {
        let mut events = baseline("ann@contoso.com", 5, 2, 0);
        let day = 5 * 1440 + 540;
        events.extend([
            // Ann signs in at the office through the phishing proxy; seven minutes later the
            // proxy's operator replays her cookie from Amsterdam, MFA by claim: high.
            in_session("office", "ann@contoso.com", day, SESSION).build(),
            by_claim(in_session("replay", "ann@contoso.com", day + 7, SESSION))
                .ip("198.51.100.23")
                .place("NL", "Amsterdam", 52.37, 4.89)
                .build(),
            // Bob's session, then a refresh of it from Lagos without the MFA claim: medium.
            in_session("bob-office", "bob@contoso.com", day + 10, "bob-session-1").build(),
            in_session("bob-lagos", "bob@contoso.com", day + 40, "bob-session-1")
                .non_interactive()
                .single_factor()
                .ip("192.0.2.200")
                .place("NG", "Lagos", 6.45, 3.39)
                .build(),
            // Cal's session reused from a US Tor exit: another city, same country, flagged.
            in_session("cal-office", "cal@contoso.com", day + 20, "cal-session-1").build(),
            by_claim(in_session(
                "cal-tor",
                "cal@contoso.com",
                day + 25,
                "cal-session-1",
            ))
            .ip("192.0.2.66")
            .place("US", "Ashburn", 39.04, -77.49)
            .with(|s| s.risk_event_types = vec!["anonymizedIPAddress".into()])
            .build(),
        ]);
        let found = run(ID, DetectConfig::default(), &events);
        assert_eq!(
            brief(&found),
            vec![
                ("replay", Severity::High),
                ("bob-lagos", Severity::Medium),
                ("cal-tor", Severity::High)
            ]
        );
        assert_eq!(found[0].evidence["other_country"], json!(true));
        assert_eq!(found[0].evidence["minutes_apart"], json!(7));
        assert_eq!(
            found[0].evidence["session_origin"]["ip_address"],
            json!("203.0.113.10")
        );
        assert_eq!(found[1].evidence["mfa_by_claim"], json!(false));
        assert_eq!(
            found[2].evidence["risky_network"],
            json!("anonymizedIPAddress")
        );
        assert_eq!(found[0].mitre, &["T1539", "T1550.004"]);
        insta::assert_json_snapshot!("session_token_replay_fires", snapshot(&found[..1]));
    }

    #[test]
    fn stays_quiet_on_one_office_over_ipv4_and_ipv6_travel_and_new_sessions() {
        let day = 540;
        let events = vec![
            // One session over the office's IPv4 and IPv6 addresses: same country, same city.
            in_session("v4", "dee@contoso.com", day, "dee-1").build(),
            by_claim(in_session("v6", "dee@contoso.com", day + 3, "dee-1"))
                .ip("2001:db8:10::25")
                .build(),
            // A trip: the session's last use at home, then London nine hours later.
            in_session("home", "eve@contoso.com", day, "eve-1").build(),
            by_claim(in_session("london", "eve@contoso.com", day + 540, "eve-1"))
                .ip("198.51.100.80")
                .place("GB", "London", 51.5, -0.12)
                .build(),
            // A new session abroad (a fresh sign-in), and a failed replay: nothing to compare.
            in_session("fay-home", "fay@contoso.com", day, "fay-1").build(),
            in_session("fay-abroad", "fay@contoso.com", day + 5, "fay-2")
                .ip("198.51.100.81")
                .place("FR", "Paris", 48.85, 2.35)
                .build(),
            by_claim(in_session(
                "fay-failed",
                "fay@contoso.com",
                day + 6,
                "fay-1",
            ))
            .ip("198.51.100.81")
            .place("FR", "Paris", 48.85, 2.35)
            .fail(53003)
            .build(),
            // No session id at all.
            sign_in("gus-home", "gus@contoso.com", day).build(),
            sign_in("gus-abroad", "gus@contoso.com", day + 5)
                .ip("198.51.100.82")
                .place("FR", "Paris", 48.85, 2.35)
                .build(),
        ];
        let found = run(ID, DetectConfig::default(), &events);
        assert_eq!(brief(&found), vec![]);
    }

    /// A session keeps its origin when seen elsewhere, is touched when seen from its origin again,
    /// and at most four are kept: the least recently used one makes room.
    #[test]
    fn the_session_list_is_bounded_and_keeps_origins() {
        let config = DetectConfig::default();
        let mut state = crate::state::State::default();
        for (i, minute) in [0, 1, 2, 3].into_iter().enumerate() {
            let e = in_session(
                &format!("s{i}"),
                "ann@contoso.com",
                minute,
                &format!("s-{i}"),
            );
            state.update(&config, &e.build());
        }
        let abroad = in_session("away", "ann@contoso.com", 5, "s-0")
            .ip("198.51.100.23")
            .place("NL", "Amsterdam", 52.37, 4.89);
        state.update(&config, &abroad.build());
        let again = in_session("back", "ann@contoso.com", 6, "s-1");
        state.update(&config, &again.build());
        let p = state.principals.values().next().unwrap();
        assert_eq!(p.sessions.len(), 4);
        let s0 = p.session(key128("s-0")).unwrap();
        assert_eq!(s0.country, country_code(Some("US")));
        assert_eq!(s0.at, at(0).timestamp());
        assert_eq!(p.session(key128("s-1")).unwrap().at, at(6).timestamp());
        state.update(
            &config,
            &in_session("new", "ann@contoso.com", 7, "s-4").build(),
        );
        let p = state.principals.values().next().unwrap();
        assert_eq!(p.sessions.len(), 4);
        assert!(p.session(key128("s-0")).is_none(), "the oldest made room");
        assert!(p.session(key128("s-4")).is_some());
        assert_eq!(p.sessions.capacity(), crate::state::MAX_SESSIONS);
    }
}
