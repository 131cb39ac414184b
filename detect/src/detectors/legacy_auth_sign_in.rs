//! `legacy-auth-sign-in`: see [`DOC`] for what it detects and why.

use entrawatch_ingest::model::{AuthenticationProtocol, Event, Kind, SignIn};
use serde_json::{Map, Value, json};

use super::{about_sign_in, actor, app_name, place, role_names, who};
use crate::detector::{Context, Detector};
use crate::finding::{Finding, Severity};
use crate::privileged::PrivilegedDirectory;

pub const ID: &str = "legacy-auth-sign-in";

/// User documentation, printed by `entrawatch rules legacy-auth-sign-in`.
pub const DOC: &str = r#"## What it detects
A successful user sign-in, interactive or not, made over a legacy (Basic) authentication protocol.
It matches on any one of:
- `clientAppUsed` naming a legacy client: Exchange ActiveSync, IMAP4, POP3, SMTP or Authenticated
  SMTP, MAPI Over HTTP, Exchange Web Services, Offline Address Book, Outlook Anywhere (RPC over
  HTTP), AutoDiscover, or Other clients;
- `userAgent` BAV2ROPC, CBAinPROD or CBAinTAR: agents seen on Basic-auth traffic that a Microsoft
  service relays to Entra for the client (BAV2ROPC is Exchange Online turning a Basic-auth login
  into a password token request), and common in password-spray campaigns against Exchange;
- `authenticationProtocol == ropc` (Resource Owner Password Credentials: the app sends the password
  itself, no interactive prompt).

## Why it matters
A legacy protocol carries only a user name and password, so it cannot answer an MFA challenge: a
success means a password alone opened the account. Password-spray and credential-stuffing tools
favour IMAP, SMTP and ROPC for exactly that reason, and Microsoft recommends blocking legacy
authentication in every tenant, partner and customer alike. MITRE ATT&CK T1078.004 (Valid
Accounts: Cloud Accounts).

## Signals used
`status.errorCode` (0 only: failures belong to `password-spray` and `brute-force`, interrupts are not
successes), the sign-in type (user sign-ins only; service principals and managed identities are
skipped), `clientAppUsed` (matched case-insensitively, `Outlook Anywhere ...` by prefix),
`userAgent` (substring), `authenticationProtocol`. Severity comes from the privileged directory and
`crossTenantAccessType`: high for role holders, configured privileged principals and partner
technicians, medium for everyone else.

## Example
At 02:14 a `BAV2ROPC` sign-in to Office 365 Exchange Online succeeds for megan@contoso.com, a
Global Administrator, from an address in a hosting provider. No MFA step was possible: this fires
high. The same sign-in for an ordinary mailbox user fires medium.

## Known false positives and tuning
Old multifunction printers and line-of-business apps that send mail over Authenticated SMTP, and a
few mobile mail apps that still sync over Exchange ActiveSync, fire on every sync until they move to
modern authentication. Those repeats group into one episode per user. While such a device is being
migrated, its service mailbox or egress address can go in `[detect.allow.legacy-auth-sign-in]`.
`Other clients` is Microsoft's catch-all for older protocols and is treated as legacy.

## References
Microsoft Learn: "Block legacy authentication with Conditional Access", "Deprecation of Basic
authentication in Exchange Online", "Microsoft identity platform and OAuth 2.0 Resource Owner
Password Credentials", and the sign-in log schema (`clientAppUsed`, `authenticationProtocol`).
"#;

/// `clientAppUsed` values of legacy clients, lower case (docs/detectors.md).
const LEGACY_CLIENTS: [&str; 13] = [
    "exchange activesync",
    "imap4",
    "imap",
    "pop3",
    "pop",
    "smtp",
    "authenticated smtp",
    "mapi over http",
    "exchange web services",
    "offline address book",
    "autodiscover",
    "other clients",
    "outlook anywhere",
];

/// `userAgent` markers of Basic auth converted into a password token request, lower case. Each
/// has a `b` ([`AGENT_ANCHOR`]), which is how [`has_legacy_agent`] finds them.
const LEGACY_AGENTS: [&str; 3] = ["bav2ropc", "cbainprod", "cbaintar"];

/// The letter every [`LEGACY_AGENTS`] marker holds (first or second), and one that ordinary user
/// agents rarely hold: once in a browser's `AppleWebKit`, never in most app agents, where `c` (the
/// other first letter) is everywhere (`Chrome`, `compatible`, `Microsoft`).
const AGENT_ANCHOR: u8 = b'b';

/// Whether `agent` holds a [`LEGACY_AGENTS`] marker in any ASCII casing: exactly
/// `contains_any_caseless(agent, &LEGACY_AGENTS)`, in one scan for the rare anchor letter instead
/// of one per first letter. Every successful user sign-in asks it, and most agents hold no `b` or
/// one, so the scan is nearly all the cost.
fn has_legacy_agent(agent: &str) -> bool {
    let text = agent.as_bytes();
    let upper = AGENT_ANCHOR.to_ascii_uppercase();
    memchr::memchr2_iter(AGENT_ANCHOR, upper, text).any(|at| {
        LEGACY_AGENTS.iter().any(|marker| {
            let marker = marker.as_bytes();
            let lead = marker.iter().position(|&c| c == AGENT_ANCHOR);
            lead.and_then(|lead| at.checked_sub(lead))
                .and_then(|start| text.get(start..start + marker.len()))
                .is_some_and(|t| t.eq_ignore_ascii_case(marker))
        })
    })
}

#[derive(Debug, Clone, Copy, Default)]
pub struct LegacyAuthSignIn;

/// Why a sign-in counts as legacy: each matching signal as (field, the value that showed it);
/// empty for a modern sign-in. Matching allocates nothing: it runs on every successful user sign-in.
fn legacy_signals(s: &SignIn) -> Vec<(&'static str, String)> {
    let mut signals = Vec::new();
    if let Some(client) = s.client_app_used.as_deref() {
        let c = crate::keys::trimmed(client);
        let outlook_anywhere = "outlook anywhere";
        if LEGACY_CLIENTS.iter().any(|l| c.eq_ignore_ascii_case(l))
            || c.get(..outlook_anywhere.len())
                .is_some_and(|p| p.eq_ignore_ascii_case(outlook_anywhere))
        {
            signals.push(("clientAppUsed", client.to_owned()));
        }
    }
    if let Some(agent) = s.user_agent.as_deref()
        && has_legacy_agent(agent)
    {
        signals.push(("userAgent", agent.to_owned()));
    }
    if let Some(p @ AuthenticationProtocol::Ropc) = &s.authentication_protocol {
        signals.push(("authenticationProtocol", p.as_str().to_owned()));
    }
    signals
}

impl Detector for LegacyAuthSignIn {
    fn id(&self) -> &'static str {
        ID
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
        if !(s.is_user() && s.is_success()) {
            return;
        }
        let signals = legacy_signals(s);
        if signals.is_empty() {
            return;
        }
        let tenant = &event.meta.tenant_id;
        let partner = PrivilegedDirectory::is_partner_technician(ctx.config, s);
        let privileged = ctx.sign_in_is_privileged(tenant, s);
        let roles = role_names(ctx, tenant, s);
        let severity = if privileged {
            Severity::High
        } else {
            Severity::Medium
        };
        let protocol = signals
            .iter()
            .map(|(_, v)| v.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        let detail = signals
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect::<Vec<_>>();
        let app = app_name(s);
        let ip = s
            .ip_address
            .clone()
            .unwrap_or_else(|| "an unknown IP".into());
        let actor = actor(who(s), partner, privileged);
        let title = format!("{actor} signed in with legacy authentication ({protocol}) from {ip}");
        let summary = format!(
            "{actor}{} signed in successfully{} to {app} in tenant {tenant} from {ip} ({}) over \
             legacy authentication ({}), which cannot do MFA: the password alone was enough. \
             Confirm with the user which client this is; if they do not recognise it, reset the \
             password and revoke sessions. Either way, block legacy authentication for this \
             account with Conditional Access.",
            if roles.is_empty() {
                String::new()
            } else {
                format!(" ({})", roles.join(", "))
            },
            if s.is_interactive() {
                ""
            } else {
                " (non-interactive)"
            },
            place(s),
            detail.join("; "),
        );
        let mut evidence = Map::new();
        evidence.insert("legacy_signals".into(), json!(detail));
        evidence.insert("client_app_used".into(), json!(s.client_app_used));
        evidence.insert("user_agent".into(), json!(s.user_agent));
        evidence.insert(
            "authentication_protocol".into(),
            json!(s.authentication_protocol),
        );
        evidence.insert("app".into(), json!(app));
        evidence.insert("resource".into(), json!(s.resource_display_name));
        evidence.insert("ip_address".into(), json!(s.ip_address));
        evidence.insert("location".into(), json!(place(s)));
        evidence.insert("interactive".into(), Value::Bool(s.is_interactive()));
        evidence.insert("privileged".into(), Value::Bool(privileged));
        evidence.insert("partner_technician".into(), Value::Bool(partner));
        evidence.insert("roles".into(), json!(roles));
        out.push(Finding {
            rule: ID,
            severity,
            title,
            summary,
            evidence,
            mitre: &["T1078.004"],
            ..about_sign_in(event, s)
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DetectConfig;
    use crate::testkit::*;
    use entrawatch_ingest::model::SignInEventType;

    const EXO: &str = "00000002-0000-0ff1-ce00-000000000000";

    #[test]
    fn fires_on_legacy_clients_agents_and_ropc_and_escalates_for_admins_and_partners() {
        let events = vec![
            role_grant(TENANT, "megan@contoso.com", GLOBAL_ADMIN),
            // A mailbox synced over IMAP from a hosting range, as a non-interactive sign-in.
            sign_in("l1", "adele@contoso.com", 0)
                .non_interactive()
                .client_app("IMAP4")
                .app("Office 365 Exchange Online", EXO)
                .resource("Office 365 Exchange Online", EXO)
                .single_factor()
                .ip("198.51.100.23")
                .place("NL", "Amsterdam", 52.37, 4.9)
                .build(),
            // A Global Administrator through Exchange's Basic-to-ROPC conversion.
            sign_in("l2", "megan@contoso.com", 14)
                .client_app("Other clients")
                .user_agent("BAV2ROPC")
                .app("Office 365 Exchange Online", EXO)
                .resource("Office 365 Exchange Online", EXO)
                .single_factor()
                .ip("198.51.100.23")
                .build(),
            // A script using the password grant directly against Microsoft Graph.
            sign_in("l3", "bob@contoso.com", 20)
                .client_app("Mobile Apps and Desktop clients")
                .protocol(AuthenticationProtocol::Ropc)
                .app("Azure PowerShell", "1950a258-227b-4e31-a9cf-717495945fc2")
                .single_factor()
                .build(),
            // A partner technician's account sending mail over Authenticated SMTP.
            sign_in("l4", "user_5f0c@northwind.example", 30)
                .partner(PARTNER)
                .non_interactive()
                .client_app("Authenticated SMTP")
                .app("Office 365 Exchange Online", EXO)
                .resource("Office 365 Exchange Online", EXO)
                .single_factor()
                .build(),
            sign_in("l5", "carol@contoso.com", 40)
                .client_app("Outlook Anywhere (RPC over HTTP)")
                .app("Microsoft Office", "d3590ed6-52b3-4102-aeff-aad2292ab01c")
                .resource("Office 365 Exchange Online", EXO)
                .single_factor()
                .build(),
        ];
        let found = run(ID, DetectConfig::default(), &events);
        let brief: Vec<(&str, &str, Severity)> = found
            .iter()
            .map(|f| (f.rule, f.event_ids[0].as_str(), f.severity))
            .collect();
        assert_eq!(
            brief,
            vec![
                (ID, "l1", Severity::Medium),
                (ID, "l2", Severity::High),
                (ID, "l3", Severity::Medium),
                (ID, "l4", Severity::High),
                (ID, "l5", Severity::Medium),
            ]
        );
        assert!(found.iter().all(|f| f.event_ids.len() == 1));
        assert_eq!(found[0].ip.as_deref(), Some("198.51.100.23"));
        assert_eq!(
            found[1].evidence["legacy_signals"],
            json!(["clientAppUsed Other clients", "userAgent BAV2ROPC"])
        );
        assert_eq!(found[1].evidence["roles"], json!(["Global Administrator"]));
        assert_eq!(found[3].principal.home_tenant_id.as_deref(), Some(PARTNER));
        insta::assert_json_snapshot!("legacy_auth_sign_in_fires", snapshot(&found));
    }

    #[test]
    fn stays_quiet_on_modern_clients_failures_interrupts_and_service_principals() {
        let events = vec![
            role_grant(TENANT, "megan@contoso.com", GLOBAL_ADMIN),
            // Modern clients: a browser and Outlook desktop with OAuth, including token refreshes.
            sign_in("q1", "megan@contoso.com", 0).build(),
            sign_in("q2", "ann@contoso.com", 1)
                .client_app("Mobile Apps and Desktop clients")
                .app("Microsoft Office", "d3590ed6-52b3-4102-aeff-aad2292ab01c")
                .resource("Office 365 Exchange Online", EXO)
                .build(),
            sign_in("q3", "ann@contoso.com", 2)
                .non_interactive()
                .client_app("Mobile Apps and Desktop clients")
                .single_factor()
                .build(),
            // A password spray over IMAP and ROPC: failures are other rules' business.
            sign_in("q4", "ann@contoso.com", 3)
                .client_app("IMAP4")
                .user_agent("BAV2ROPC")
                .fail(50126)
                .build(),
            sign_in("q5", "megan@contoso.com", 4)
                .protocol(AuthenticationProtocol::Ropc)
                .fail(50053)
                .build(),
            // An interrupt is not a success.
            sign_in("q6", "ann@contoso.com", 5)
                .client_app("Exchange ActiveSync")
                .fail(50074)
                .build(),
            // A daemon app's client-credentials sign-in labelled "Other clients".
            sign_in("q7", "svc@contoso.com", 6)
                .client_app("Other clients")
                .with(|s| s.event_type = Some(SignInEventType::ServicePrincipal))
                .build(),
            // Protocols that merely resemble legacy names.
            sign_in("q8", "ann@contoso.com", 7)
                .protocol(AuthenticationProtocol::DeviceCode)
                .user_agent(
                    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Outlook-iOS/2.0",
                )
                .build(),
        ];
        assert!(run(ID, DetectConfig::default(), &events).is_empty());
    }

    /// The anchored scan decides as the general one over the markers, on real agents and on
    /// random text made of the markers' letters in both cases (markers overlapping, cut short,
    /// at either end).
    #[test]
    fn the_anchored_agent_scan_decides_as_the_general_one() {
        use crate::detectors::contains_any_caseless;
        assert!(
            LEGACY_AGENTS
                .iter()
                .all(|m| m.as_bytes().contains(&AGENT_ANCHOR))
        );
        let real = [
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
            "Microsoft Teams/1416/1.0.0.2024112701 (iOS 18.1)",
            "BAV2ROPC",
            "CBAinPROD",
            "CBAinTAR",
            "Microsoft Office/16.0 (bav2ropc; Pro)",
            "xcbaintaR",
            "cbainta",
            "bav2rop",
            "",
            "b",
            "B",
            "cB",
        ];
        for agent in real {
            assert_eq!(
                has_legacy_agent(agent),
                contains_any_caseless(agent, &LEGACY_AGENTS),
                "{agent:?}"
            );
        }
        let letters = b"bBcCaAvV2rRoOpPiInNdDtT x";
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        let mut found = 0;
        for _ in 0..20_000 {
            let mut agent = String::new();
            for _ in 0..next(24) {
                if next(6) == 0 {
                    let marker = LEGACY_AGENTS[next(3) as usize];
                    let cut = marker.len() - next(3) as usize;
                    for c in marker[..cut].chars() {
                        agent.push(if next(2) == 0 {
                            c.to_ascii_uppercase()
                        } else {
                            c
                        });
                    }
                } else {
                    agent.push(char::from(letters[next(letters.len() as u64) as usize]));
                }
            }
            let want = contains_any_caseless(&agent, &LEGACY_AGENTS);
            found += usize::from(want);
            assert_eq!(has_legacy_agent(&agent), want, "{agent:?}");
        }
        assert!(found > 1000, "agents with a marker: {found}");
    }

    #[test]
    fn signals_match_case_insensitively() {
        let s = sign_in("x", "ann@contoso.com", 0)
            .client_app("exchange ActiveSync")
            .user_agent("CBAinTAR")
            .build();
        let signals = legacy_signals(s.as_sign_in().unwrap());
        assert_eq!(
            signals,
            vec![
                ("clientAppUsed", "exchange ActiveSync".to_owned()),
                ("userAgent", "CBAinTAR".to_owned())
            ]
        );
        let prefixed = sign_in("z", "ann@contoso.com", 0)
            .client_app("  OUTLOOK Anywhere (RPC over HTTP)")
            .user_agent("Microsoft Office/16.0 (bav2ropc; Pro)")
            .build();
        assert_eq!(
            legacy_signals(prefixed.as_sign_in().unwrap())
                .iter()
                .map(|(k, _)| *k)
                .collect::<Vec<_>>(),
            ["clientAppUsed", "userAgent"]
        );
        let modern = sign_in("y", "ann@contoso.com", 0)
            .client_app("Browser")
            .user_agent("BAV2")
            .build();
        assert!(legacy_signals(modern.as_sign_in().unwrap()).is_empty());
        let short = sign_in("w", "ann@contoso.com", 0)
            .client_app("Outlook")
            .user_agent("")
            .build();
        assert!(legacy_signals(short.as_sign_in().unwrap()).is_empty());
    }
}
