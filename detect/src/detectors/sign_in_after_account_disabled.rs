//! `sign-in-after-account-disabled`: see [`DOC`] for what it detects and why.

use entrawatch_ingest::model::{Event, Kind};
use serde_json::{Map, Value, json};

use super::{about_sign_in, app_name, place, time_text, who};
use crate::detector::{Context, Detector};
use crate::finding::{Finding, Severity};
use crate::keys::sign_in_key;
use crate::state::DISABLE_GRACE_SECS;

pub const ID: &str = "sign-in-after-account-disabled";

/// User documentation, printed by `entrawatch rules sign-in-after-account-disabled`.
pub const DOC: &str = r#"## What it detects
A successful user sign-in, interactive or not (token refreshes included), after the account was
closed in the same tenant and before it was opened again. Closed: a successful `Disable account`,
`Delete user` or `Hard Delete user` audit targeting the user, or an `Update user` whose
`AccountEnabled` became false. Opened again: `Enable account`, `Restore user`, or an `Update user`
whose `AccountEnabled` became true; sign-ins after that are quiet.

High. A sign-in within 5 minutes of the close is medium: the disable may not have reached every
replica yet, and a token issued just before it can still be redeemed. Each level fires once per
close (a medium grace finding does not hide a later high one); further sign-ins of the same
close are the same story and stay quiet.

## Why it matters
Disabling or deleting an account is how leavers are offboarded and compromised accounts are shut.
Once it is done, Entra ID refuses new sign-ins with error 50057; a success afterwards means a
session or refresh token outlived the close (it was not revoked, or continuous access evaluation
did not apply), or the disable did not take effect. Non-interactive sign-ins are where a stolen
refresh token shows: an attacker who took one before the close keeps reading mail and files until
it expires. MITRE ATT&CK T1078.004 (Valid Accounts: Cloud Accounts) and T1550.001 (Use Alternate
Authentication Material: Application Access Token).

## Signals used
`status.errorCode` (0), the user (`userId`, else `userPrincipalName`), the sign-in's category
(interactive or not), `ipAddress`, `location`, app, resource, client app and user agent, and the
engine's per-user history: the time of the close and whether the account was opened again since
(the audits' target `id`, and its `userPrincipalName` for sign-ins that carry no user id).
Failures, interrupts, service principal and managed identity sign-ins, failed audits and
sign-ins before the close are ignored. Attempts refused with 50057 are
`disabled-account-sign-in`.

## Example
At 09:00 the helpdesk disables `jo@contoso.com`, whose laptop was stolen. At 10:05 and every
hour after, non-interactive sign-ins for Jo to Office 365 Exchange Online succeed from
203.0.113.66: this fires high on the first, with the app and address. Revoke Jo's sessions
(`Revoke-MgUserSignInSession`), check that the account is still disabled, and look at what the
token reached from that address. A sign-in of Jo at 09:02 from her usual office would fire medium.

## Known false positives and tuning
An account disabled by mistake and enabled again stays quiet once the `Enable account` audit is
seen; if the audit stream lags the sign-ins, the first sign-ins after the re-enable can fire.
Audits missed by entrawatch (a gap in the audit stream) can leave an account looking closed.
Short-lived access tokens issued before the close are not sign-ins and never fire. Allow-list
accounts that are disabled and enabled by an automated process under
`[detect.allow.sign-in-after-account-disabled]`.

## References
Microsoft Learn: "Audit log activities" (`Disable account`, `Enable account`, `Delete user`,
`Hard Delete user`, `Restore user`, `Update user` in UserManagement); "Revoke user access in
Microsoft Entra ID"; "Continuous access evaluation"; "Refresh tokens in the Microsoft identity
platform" (revocation on disable); MITRE ATT&CK T1078.004, T1550.001.
"#;

#[derive(Debug, Clone, Copy, Default)]
pub struct SignInAfterAccountDisabled;

impl Detector for SignInAfterAccountDisabled {
    fn id(&self) -> &'static str {
        ID
    }

    fn doc(&self) -> &'static str {
        DOC
    }

    fn default_severity(&self) -> Severity {
        Severity::High
    }

    fn kinds(&self) -> &'static [Kind] {
        &[Kind::SignIn]
    }

    fn observe(&self, ctx: &Context<'_>, event: &Event, out: &mut Vec<Finding>) {
        let Some(s) = event.as_sign_in() else { return };
        if !s.is_success() || !s.is_user() || sign_in_key(s).is_none() {
            return;
        }
        let Some(history) = ctx.sign_in_history(event) else {
            return;
        };
        let now = event.meta.time.timestamp();
        let Some(after) = history.after_disable(now) else {
            return;
        };
        let minutes = (now - after.disabled_at) / 60;
        let interactive = s.is_interactive();
        let (severity, how) = if after.in_grace {
            (Severity::Medium, "within the 5-minute grace after")
        } else {
            (Severity::High, "after")
        };
        let ip = s.ip_address.clone();
        let title = format!(
            "{} signed in successfully{} {how} the account was disabled",
            who(s),
            if interactive {
                ""
            } else {
                " (non-interactive, token refresh)"
            },
        );
        let advice = if after.in_grace {
            "The disable may not have reached every replica yet, or a token issued just before it \
             was redeemed: check that later sign-ins fail and revoke the user's sessions."
        } else if interactive {
            "Either the account was enabled again without an audit entrawatch saw, or the disable \
             did not take effect: check the account, disable it again if needed, revoke its \
             sessions and reset its password."
        } else {
            "A refresh token or session outlived the close: revoke the user's sessions, check the \
             account is still disabled, and review what the token reached from this address."
        };
        let summary = format!(
            "{} signed in successfully ({}) to {} from {} ({}) {minutes} minutes after the account \
             was disabled or deleted at {}, with no re-enable seen since. {advice}",
            who(s),
            if interactive {
                "interactive"
            } else {
                "non-interactive"
            },
            app_name(s),
            ip.as_deref().unwrap_or("an unknown IP"),
            place(s),
            time_text(after.disabled_at),
        );
        let mut evidence = Map::new();
        evidence.insert("disabled_at".into(), json!(time_text(after.disabled_at)));
        evidence.insert("minutes_since_disable".into(), json!(minutes));
        evidence.insert("in_grace".into(), Value::Bool(after.in_grace));
        evidence.insert("grace_minutes".into(), json!(DISABLE_GRACE_SECS / 60));
        evidence.insert("interactive".into(), Value::Bool(interactive));
        evidence.insert("ip_address".into(), json!(ip));
        evidence.insert("location".into(), json!(place(s)));
        evidence.insert("app".into(), json!(app_name(s)));
        evidence.insert("resource".into(), json!(s.resource_display_name));
        evidence.insert("client_app_used".into(), json!(s.client_app_used));
        evidence.insert("user_agent".into(), json!(s.user_agent));
        out.push(Finding {
            rule: ID,
            severity,
            title,
            summary,
            evidence,
            mitre: &["T1078.004", "T1550.001"],
            ..about_sign_in(event, s)
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DetectConfig;
    use crate::detectors::disabled_account_sign_in::DISABLED_ACCOUNT_CODE;
    use crate::testkit::*;

    const EXO: &str = "00000002-0000-0ff1-ce00-000000000000";

    /// A `Disable account` as Entra writes it: Core Directory, AccountEnabled true → false.
    fn disable(id: &str, upn: &str, minute: i64) -> Event {
        audit(id, "Disable account", minute)
            .target_user(upn)
            .modified("AccountEnabled", Some("[true]"), Some("[false]"))
            .modified("Included Updated Properties", None, Some("AccountEnabled"))
            .build()
    }

    fn enable(id: &str, upn: &str, minute: i64) -> Event {
        audit(id, "Enable account", minute)
            .target_user(upn)
            .modified("AccountEnabled", Some("[false]"), Some("[true]"))
            .modified("Included Updated Properties", None, Some("AccountEnabled"))
            .build()
    }

    /// A token refresh by Outlook for the user, from `ip`: the non-interactive shape.
    fn refresh(id: &str, upn: &str, minute: i64, ip: &str) -> Event {
        sign_in(id, upn, minute)
            .non_interactive()
            .ip(ip)
            .place("NL", "Amsterdam", 52.37, 4.9)
            .app("Microsoft Office", "d3590ed6-52b3-4102-aeff-aad2292ab01c")
            .resource("Office 365 Exchange Online", EXO)
            .client_app("Mobile Apps and Desktop clients")
            .user_agent("Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.17928)")
            .single_factor()
            .build()
    }

    fn brief(found: &[Finding]) -> Vec<(&str, Severity)> {
        found
            .iter()
            .map(|f| (f.event_ids[0].as_str(), f.severity))
            .collect()
    }

    #[test]
    fn fires_on_refreshes_and_sign_ins_after_a_disable_or_delete() {
        let events = vec![
            sign_in("before", "jo@contoso.com", 0).build(),
            disable("dis", "jo@contoso.com", 60),
            // The refused attempt is the other rule's; an hour later the refresh token still works.
            sign_in("refused", "jo@contoso.com", 70)
                .fail(DISABLED_ACCOUNT_CODE)
                .build(),
            refresh("r1", "jo@contoso.com", 125, "203.0.113.66"),
            // The same close: one finding.
            refresh("r2", "jo@contoso.com", 185, "203.0.113.66"),
            sign_in("i1", "jo@contoso.com", 190)
                .ip("203.0.113.66")
                .build(),
            // Deleted, then an interactive sign-in two hours later: high.
            audit("del", "Delete user", 0)
                .target_user("max@contoso.com")
                .modified("Is Hard Deleted", None, Some("False"))
                .build(),
            sign_in("m1", "max@contoso.com", 120).build(),
            // Two minutes after the disable (replication): medium; an hour later: high again.
            disable("dis2", "sam@contoso.com", 300),
            refresh("s1", "sam@contoso.com", 302, "198.51.100.20"),
            refresh("s2", "sam@contoso.com", 304, "198.51.100.20"),
            refresh("s3", "sam@contoso.com", 360, "203.0.113.66"),
        ];
        let found = run(ID, DetectConfig::default(), &events);
        assert_eq!(
            brief(&found),
            vec![
                ("r1", Severity::High),
                ("m1", Severity::High),
                ("s1", Severity::Medium),
                ("s3", Severity::High),
            ]
        );
        assert_eq!(
            found[0].evidence["disabled_at"],
            json!("2026-10-01T01:00:00Z")
        );
        assert_eq!(found[0].evidence["minutes_since_disable"], json!(65));
        assert_eq!(found[0].evidence["interactive"], json!(false));
        assert_eq!(found[0].ip.as_deref(), Some("203.0.113.66"));
        assert_eq!(found[0].principal.id, uid("jo@contoso.com"));
        assert_eq!(found[1].evidence["interactive"], json!(true));
        assert_eq!(found[2].evidence["in_grace"], json!(true));
        insta::assert_json_snapshot!("sign_in_after_account_disabled_fires", snapshot(&found));
    }

    #[test]
    fn fires_after_the_real_delete_user_record() {
        // The Event Hub record of a `Delete user` (datadog-integrations-core), then a token
        // refresh for the deleted user's object id in that tenant a day later.
        let bytes = include_bytes!(
            "../../../ingest/tests/fixtures/real/datadog-integrations-core/azure_activedirectory_eventhub_records.jsonl"
        );
        let mut events: Vec<Event> = fixture_events(
            "azure_activedirectory_eventhub_records.jsonl",
            bytes,
            TENANT,
        )
        .into_iter()
        .filter(|e| e.as_sign_in().is_none())
        .collect();
        let delete = events
            .iter()
            .find(|e| matches!(&e.body, entrawatch_ingest::Body::Audit(a) if a.activity_display_name == "Delete user"))
            .expect("the fixture holds a Delete user")
            .clone();
        let mut later = refresh(
            "after-delete",
            "deleted_user@datadoghq.com",
            0,
            "203.0.113.66",
        );
        later.meta.tenant_id = delete.meta.tenant_id.clone();
        later.meta.time = delete.meta.time + chrono::Duration::days(1);
        if let entrawatch_ingest::Body::SignIn(s) = &mut later.body {
            s.user_id = Some("1606d62c-71bc-42ff-a03c-87809c6b0e68".into());
        }
        events.push(later);
        let found = run(ID, DetectConfig::default(), &events);
        assert_eq!(brief(&found), vec![("after-delete", Severity::High)]);
        assert_eq!(found[0].evidence["minutes_since_disable"], json!(1440));
    }

    #[test]
    fn stays_quiet_without_a_close_after_a_reopen_and_on_failures() {
        let events = vec![
            // No close seen.
            sign_in("a1", "ann@contoso.com", 0).build(),
            refresh("a2", "ann@contoso.com", 1, "203.0.113.66"),
            // Disabled by mistake and enabled again the same day, then signing in.
            disable("d1", "bob@contoso.com", 10),
            enable("e1", "bob@contoso.com", 40),
            sign_in("b1", "bob@contoso.com", 60).build(),
            refresh("b2", "bob@contoso.com", 61, "198.51.100.7"),
            // Re-enabled through Update user (AccountEnabled true), and a deleted user restored.
            disable("d2", "cal@contoso.com", 10),
            audit("u2", "Update user", 20)
                .target_user("cal@contoso.com")
                .modified("AccountEnabled", Some("[false]"), Some("[true]"))
                .build(),
            sign_in("c1", "cal@contoso.com", 30).build(),
            audit("del", "Delete user", 10)
                .target_user("dee@contoso.com")
                .build(),
            audit("res", "Restore user", 50)
                .target_user("dee@contoso.com")
                .build(),
            refresh("d3", "dee@contoso.com", 60, "198.51.100.7"),
            // Failed disables, disables of someone else, and other user changes.
            audit("x1", "Disable account", 10)
                .target_user("eve@contoso.com")
                .failed()
                .build(),
            audit("x2", "Update user", 10)
                .target_user("eve@contoso.com")
                .modified("DisplayName", Some("Eve"), Some("Eve A."))
                .build(),
            disable("x3", "someone@contoso.com", 10),
            sign_in("e2", "eve@contoso.com", 20).build(),
            // Closed in another tenant.
            audit("x4", "Disable account", 10)
                .tenant(TENANT_B)
                .target_user("fay@contoso.com")
                .build(),
            sign_in("f1", "fay@contoso.com", 20).build(),
            // After a disable: refusals, wrong passwords and interrupts are not successes, and a
            // sign-in logged before the disable (a late record) is not after it.
            disable("d4", "gus@contoso.com", 100),
            sign_in("g1", "gus@contoso.com", 90).build(),
            sign_in("g2", "gus@contoso.com", 110)
                .fail(DISABLED_ACCOUNT_CODE)
                .build(),
            sign_in("g3", "gus@contoso.com", 111).fail(50126).build(),
            sign_in("g4", "gus@contoso.com", 112).fail(50074).build(),
        ];
        let found = run(ID, DetectConfig::default(), &events);
        assert!(found.is_empty(), "{:#?}", brief(&found));
    }

    #[test]
    fn a_second_close_after_a_reopen_fires_again() {
        let events = vec![
            disable("d1", "hal@contoso.com", 0),
            refresh("h1", "hal@contoso.com", 60, "203.0.113.66"),
            enable("e1", "hal@contoso.com", 120),
            refresh("h2", "hal@contoso.com", 130, "203.0.113.66"),
            disable("d2", "hal@contoso.com", 200),
            refresh("h3", "hal@contoso.com", 260, "203.0.113.66"),
        ];
        assert_eq!(
            brief(&run(ID, DetectConfig::default(), &events)),
            vec![("h1", Severity::High), ("h3", Severity::High)]
        );
    }
}
