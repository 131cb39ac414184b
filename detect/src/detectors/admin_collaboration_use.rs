//! `admin-collaboration-use`: see [`DOC`] for what it detects and why.

use entrawatch_ingest::model::{Event, Kind, SignIn};
use serde_json::{Map, Value, json};

use super::{
    about_sign_in, app_name, contains_any_caseless, contains_caseless, place, role_names, who,
};
use crate::detector::{Context, Detector};
use crate::finding::{Finding, Severity};
use crate::privileged::PrivilegedDirectory;

pub const ID: &str = "admin-collaboration-use";

/// User documentation, printed by `entrawatch rules admin-collaboration-use`.
pub const DOC: &str = r#"## What it detects
A privileged principal (a holder of a role from the privileged catalogue, active or eligible, a
principal configured as privileged, or a partner technician acting through GDAP) signing in
successfully and interactively to mail or collaboration:
- the resources Office 365 Exchange Online (`00000002-0000-0ff1-ce00-000000000000`), Office 365
  SharePoint Online (`00000003-0000-0ff1-ce00-000000000000`) or Microsoft Teams Services
  (`cc15fd57-2c6c-4117-a88c-83b1d56b4bbe`), by `resourceId` (or by name where the id is missing);
- or the Outlook and Teams client apps, by well-known app id (Outlook Mobile, new Outlook, Outlook
  on the web, Microsoft Teams, Teams web client, the Exchange Online app) or by an
  `appDisplayName` naming Outlook or Teams.

The admin consoles and shells that talk to the same services (Exchange admin center, Exchange
Online PowerShell, SharePoint Online Management Shell, Teams PowerShell, any app whose name says
admin or PowerShell) are administration, not collaboration, and do not fire.

## Why it matters
An admin account that reads mail, opens shared files or chats is one phishing link, malicious
attachment or consent prompt away from handing over admin rights. Microsoft's guidance is to keep
privileged accounts separate and cloud-only, ideally without mailboxes or licences, and to do daily
work from an ordinary account. A partner technician opening a customer's mailbox or files is
reading customer data through the partner relationship, and the customer should be able to see
why. MITRE ATT&CK T1078.004 (Valid Accounts: Cloud Accounts); T1199 (Trusted Relationship) for
partner technicians.

## Signals used
`status.errorCode` (0), `isInteractive` or the Event Hub category (token refreshes from an already
open Outlook or Teams would repeat the same finding every hour, so non-interactive sign-ins never
fire), `resourceId` / `resourceDisplayName`, `appId` / `appDisplayName`, the privileged directory,
`detect.privileged_principals`, and `crossTenantAccessType` / `homeTenantId`.

## Example
megan@contoso.com holds Global Administrator and opens Outlook on the web with the same account to
read a vendor's invoice: this fires medium, naming the app and the service, so the analyst can ask
her to move daily work to her ordinary account.

## Known false positives and tuning
Admins who genuinely need a mailbox on a privileged account (shared-mailbox administration through
Outlook on the web, a SharePoint admin browsing a site to fix permissions) fire once per episode.
The SharePoint admin center itself signs in to the SharePoint Online resource and fires. Put such
accounts in `[detect.allow.admin-collaboration-use]`, or better, give the person a separate
ordinary account.

## References
Microsoft Learn: "Best practices for Microsoft Entra roles" (separate, cloud-only admin accounts),
"Securing privileged access" (privileged-access accounts), "Partner security requirements", and
"Verify first-party Microsoft applications in sign-in reports" (application ids).
"#;

const EXCHANGE_ONLINE: &str = "00000002-0000-0ff1-ce00-000000000000";
const SHAREPOINT_ONLINE: &str = "00000003-0000-0ff1-ce00-000000000000";
const TEAMS_SERVICES: &str = "cc15fd57-2c6c-4117-a88c-83b1d56b4bbe";

/// Collaboration resources: (resource id, resource display name, what it is).
const RESOURCES: [(&str, &str, &str); 3] = [
    (EXCHANGE_ONLINE, "Office 365 Exchange Online", "mail"),
    (SHAREPOINT_ONLINE, "Office 365 SharePoint Online", "files"),
    (TEAMS_SERVICES, "Microsoft Teams Services", "chat"),
];

/// Outlook and Teams client apps: (app id, what it is).
const CLIENT_APPS: [(&str, &str); 6] = [
    ("27922004-5251-4030-b22d-91ecd9a37ea4", "mail"), // Outlook Mobile
    ("5d661950-3475-41cd-a2c3-d671a3162bc1", "mail"), // Microsoft Outlook (new Outlook)
    ("9199bf20-a13f-4107-85dc-02114787ef48", "mail"), // One Outlook Web
    (EXCHANGE_ONLINE, "mail"), // Office 365 Exchange Online (Outlook on the web)
    ("1fec8e78-bce4-4aaf-ab1b-5451cc387264", "chat"), // Microsoft Teams
    ("5e3ce6c0-2b1f-4285-8d4b-75ee78787346", "chat"), // Microsoft Teams Web Client
];

/// Admin consoles and shells that reach the same resources: administration, not collaboration.
const ADMIN_TOOLS: [&str; 5] = [
    "497effe9-df71-4043-a8bb-14cf78c4b63b", // Exchange Admin Center
    "fb78d390-0c51-40cd-8e17-fdbfab77341b", // Microsoft Exchange REST API Based Powershell
    "a0c73c16-a7e3-4564-9a95-2bdf47383716", // Microsoft Exchange Online Remote PowerShell
    "9bc3ab49-b65d-410a-85ad-de819febfddc", // Microsoft SharePoint Online Management Shell
    "12128f48-ec9e-42f0-b203-ea49fb6af367", // Microsoft Teams PowerShell
];

#[derive(Debug, Clone, Copy, Default)]
pub struct AdminCollaborationUse;

/// What kind of collaboration a sign-in reaches (`mail`, `files`, `chat`), or `None`.
fn collaboration(s: &SignIn) -> Option<&'static str> {
    let app_id = s.app_id.as_deref().unwrap_or("");
    let app_name = s.app_display_name.as_deref().unwrap_or("");
    let admin_tool = ADMIN_TOOLS.iter().any(|t| t.eq_ignore_ascii_case(app_id))
        || contains_any_caseless(app_name, &["admin", "powershell", "management shell"]);
    if admin_tool {
        return None;
    }
    let by_resource = RESOURCES.iter().find(|(id, name, _)| match &s.resource_id {
        Some(r) => r.eq_ignore_ascii_case(id),
        None => s
            .resource_display_name
            .as_deref()
            .is_some_and(|n| n.eq_ignore_ascii_case(name)),
    });
    if let Some((_, _, what)) = by_resource {
        return Some(what);
    }
    if let Some((_, what)) = CLIENT_APPS
        .iter()
        .find(|(id, _)| id.eq_ignore_ascii_case(app_id))
    {
        return Some(what);
    }
    if contains_caseless(app_name, "outlook") {
        Some("mail")
    } else if contains_caseless(app_name, "teams") {
        Some("chat")
    } else {
        None
    }
}

impl Detector for AdminCollaborationUse {
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
        if !(s.is_user() && s.is_interactive() && s.is_success()) {
            return;
        }
        // Privilege first: most sign-ins are not privileged, the answer is shared with the other
        // sign-in rules that ask it, and `collaboration` scans the app name.
        let tenant = &event.meta.tenant_id;
        if !ctx.sign_in_is_privileged(tenant, s) {
            return;
        }
        let Some(what) = collaboration(s) else { return };
        let partner = PrivilegedDirectory::is_partner_technician(ctx.config, s);
        let roles = role_names(ctx, tenant, s);
        let app = app_name(s);
        let service = s
            .resource_display_name
            .clone()
            .or_else(|| s.resource_id.clone())
            .unwrap_or_else(|| app.clone().into());
        let ip = s
            .ip_address
            .clone()
            .unwrap_or_else(|| "an unknown IP".into());
        let (actor, title, advice) = if partner {
            let actor = format!("Partner technician {}", who(s));
            let title = format!("{actor} signed in to customer {what} with {app}");
            let advice = format!(
                "A technician in a customer's {what} is past administration and into customer \
                 data. Ask the partner which customer request needed it; if none did, remove the \
                 technician's GDAP access and review what was opened."
            );
            (actor, title, advice)
        } else {
            let actor = format!("Privileged account {}", who(s));
            let title = format!("{actor} signed in to {what} with {app}");
            let advice = format!(
                "An admin account used for {what} meets phishing links, malicious files and \
                 consent prompts with admin rights attached. Confirm it was the person and why; \
                 move daily mail, files and chat to their ordinary account and remove the mailbox \
                 or licence from the admin account."
            );
            (actor, title, advice)
        };
        let summary = format!(
            "{actor}{} signed in interactively to {app} ({service}) in tenant {tenant} from {ip} \
             ({}). {advice}",
            if roles.is_empty() {
                String::new()
            } else {
                format!(" ({})", roles.join(", "))
            },
            place(s),
        );
        let mut evidence = Map::new();
        evidence.insert("collaboration".into(), json!(what));
        evidence.insert("app".into(), json!(app));
        evidence.insert("app_id".into(), json!(s.app_id));
        evidence.insert("resource".into(), json!(s.resource_display_name));
        evidence.insert("resource_id".into(), json!(s.resource_id));
        evidence.insert("client_app_used".into(), json!(s.client_app_used));
        evidence.insert("ip_address".into(), json!(s.ip_address));
        evidence.insert("location".into(), json!(place(s)));
        evidence.insert("partner_technician".into(), Value::Bool(partner));
        evidence.insert("roles".into(), json!(roles));
        out.push(Finding {
            rule: ID,
            severity: Severity::Medium,
            title,
            summary,
            evidence,
            mitre: if partner {
                &["T1078.004", "T1199"]
            } else {
                &["T1078.004"]
            },
            ..about_sign_in(event, s)
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DetectConfig;
    use crate::config::PrincipalRef;
    use crate::testkit::*;

    const GRAPH: &str = "00000003-0000-0000-c000-000000000000";

    fn config() -> DetectConfig {
        DetectConfig {
            privileged_principals: vec![PrincipalRef {
                tenant_id: TENANT.into(),
                id: "secops@contoso.com".into(),
            }]
            .into(),
            ..DetectConfig::default()
        }
    }

    #[test]
    fn fires_on_admins_and_partners_in_mail_files_and_chat() {
        let events = vec![
            role_grant(TENANT, "megan@contoso.com", GLOBAL_ADMIN),
            sign_in("c1", "megan@contoso.com", 0)
                .app("One Outlook Web", "9199bf20-a13f-4107-85dc-02114787ef48")
                .resource("Office 365 Exchange Online", EXCHANGE_ONLINE)
                .ip("203.0.113.55")
                .build(),
            sign_in("c2", "secops@contoso.com", 10)
                .app("Microsoft Teams", "1fec8e78-bce4-4aaf-ab1b-5451cc387264")
                .resource("Microsoft Teams Services", TEAMS_SERVICES)
                .build(),
            sign_in("c3", "user_5f0c@northwind.example", 20)
                .partner(PARTNER)
                .app("Microsoft Office", "d3590ed6-52b3-4102-aeff-aad2292ab01c")
                .resource("Office 365 SharePoint Online", SHAREPOINT_ONLINE)
                .build(),
            // Outlook Mobile asking for a Graph token: matched by the app, not the resource.
            sign_in("c4", "megan@contoso.com", 30)
                .app("Outlook Mobile", "27922004-5251-4030-b22d-91ecd9a37ea4")
                .resource("Microsoft Graph", GRAPH)
                .build(),
            // A Log Analytics row with no resource id: matched by the resource name.
            sign_in("c5", "megan@contoso.com", 40)
                .app("Microsoft Office", "d3590ed6-52b3-4102-aeff-aad2292ab01c")
                .with(|s| {
                    s.resource_id = None;
                    s.resource_display_name = Some("Office 365 Exchange Online".into());
                })
                .build(),
        ];
        let found = run(ID, config(), &events);
        let brief: Vec<(&str, &str, Severity)> = found
            .iter()
            .map(|f| (f.rule, f.event_ids[0].as_str(), f.severity))
            .collect();
        assert_eq!(
            brief,
            vec![
                (ID, "c1", Severity::Medium),
                (ID, "c2", Severity::Medium),
                (ID, "c3", Severity::Medium),
                (ID, "c4", Severity::Medium),
                (ID, "c5", Severity::Medium),
            ]
        );
        let kinds: Vec<&Value> = found.iter().map(|f| &f.evidence["collaboration"]).collect();
        assert_eq!(
            kinds,
            [
                &json!("mail"),
                &json!("chat"),
                &json!("files"),
                &json!("mail"),
                &json!("mail")
            ]
        );
        assert_eq!(found[0].ip.as_deref(), Some("203.0.113.55"));
        assert_eq!(found[2].mitre, &["T1078.004", "T1199"]);
        assert_eq!(found[2].principal.home_tenant_id.as_deref(), Some(PARTNER));
        insta::assert_json_snapshot!("admin_collaboration_use_fires", snapshot(&found));
    }

    #[test]
    fn stays_quiet_on_admin_consoles_ordinary_users_refreshes_and_failures() {
        let outlook = |id: &str, upn: &str, minute: i64| {
            sign_in(id, upn, minute)
                .app("One Outlook Web", "9199bf20-a13f-4107-85dc-02114787ef48")
                .resource("Office 365 Exchange Online", EXCHANGE_ONLINE)
        };
        let events = vec![
            role_grant(TENANT, "megan@contoso.com", GLOBAL_ADMIN),
            // Administration: the Azure portal, the Exchange admin center, Exchange and Teams shells.
            sign_in("q1", "megan@contoso.com", 0).build(),
            sign_in("q2", "megan@contoso.com", 1)
                .app(
                    "Exchange Admin Center",
                    "497effe9-df71-4043-a8bb-14cf78c4b63b",
                )
                .resource("Office 365 Exchange Online", EXCHANGE_ONLINE)
                .build(),
            sign_in("q3", "megan@contoso.com", 2)
                .app(
                    "Microsoft Exchange REST API Based Powershell",
                    "fb78d390-0c51-40cd-8e17-fdbfab77341b",
                )
                .resource("Office 365 Exchange Online", EXCHANGE_ONLINE)
                .build(),
            sign_in("q4", "megan@contoso.com", 3)
                .app(
                    "Microsoft Teams Admin Portal Service",
                    "2ddfbe71-ed12-4123-b99b-d5fc8a062a79",
                )
                .resource(
                    "Skype and Teams Tenant Admin API",
                    "48ac35b8-9aa8-4d74-927d-1f4a14a0b239",
                )
                .build(),
            // Ordinary users reading mail, and a guest in Teams.
            outlook("q5", "ann@contoso.com", 4).build(),
            sign_in("q6", "guest@fabrikam.com", 5)
                .guest(TENANT_B)
                .app("Microsoft Teams", "1fec8e78-bce4-4aaf-ab1b-5451cc387264")
                .build(),
            // The admin's Outlook refreshing its token, a wrong password, an MFA interrupt.
            outlook("q7", "megan@contoso.com", 6)
                .non_interactive()
                .build(),
            outlook("q8", "megan@contoso.com", 7).fail(50126).build(),
            outlook("q9", "megan@contoso.com", 8).fail(50074).build(),
        ];
        assert!(run(ID, config(), &events).is_empty());
    }
}
