//! `consent-grant-risky`: see [`DOC`] for what it detects and why.

use entrawatch_ingest::model::{Audit, Body, Event};
use serde_json::{Map, Value, json};

use super::{actor_ip, actor_name, succeeded};
use crate::detector::{Context, Detector};
use crate::finding::{Finding, Principal, PrincipalKind, Severity};

pub const ID: &str = "consent-grant-risky";

/// Scope prefixes (lower case) that are high-risk whatever follows: `Mail.*`, `Sites.*`, ...
const RISKY_PREFIXES: [&str; 4] = ["mail.", "sites.", "directory.", "rolemanagement."];
/// Exact high-risk scopes (lower case).
const RISKY_SCOPES: [&str; 4] = [
    "mailboxsettings.readwrite",
    "files.readwrite.all",
    "application.readwrite.all",
    "full_access_as_app",
];

/// User documentation, printed by `entrawatch rules consent-grant-risky`.
pub const DOC: &str = r#"## What it detects
A successful `Consent to application` audit that grants an application high-risk permissions:
`Mail.*`, `MailboxSettings.ReadWrite`, `Files.ReadWrite.All`, `Sites.*`, `Directory.*`,
`RoleManagement.*`, `Application.ReadWrite.All` or `full_access_as_app` (medium); high when the
consent is an admin consent (`ConsentContext.IsAdminConsent`), on behalf of all users
(`ConsentContext.OnBehalfOfAll`, or `ConsentType: AllPrincipals`) or for app-only permissions
(`ConsentContext.IsAppOnly`). An admin consent on behalf of all users with no high-risk scope
fires medium.

Scopes are read from `ConsentAction.Permissions`, whose text is `[<grants before>] => [<grants
after>]` with `Scope: <space-separated scopes>` in each grant; only scopes that are new after the
arrow count, so re-consenting to the same permissions does not fire again.

## Why it matters
Illicit consent grants hand an attacker's app a token that reads mail and files, and survives
password resets and MFA, because the app, not the user, holds the access. Tenant-wide or app-only
consent does it for every mailbox at once. MITRE ATT&CK T1528 (Steal Application Access Token).

## Signals used
`activityDisplayName`, `result`, the `ServicePrincipal` target (the app), the modified
properties `ConsentAction.Permissions`, `ConsentContext.IsAdminConsent`,
`ConsentContext.OnBehalfOfAll` and `ConsentContext.IsAppOnly`, `additionalDetails` (`AppId`,
`User-Agent`), and `initiatedBy` with its `ipAddress`.

## Example
`marek.horvath@fabrikam.com` grants "Fabrikam Mail Archiver" `Mail.Read Files.ReadWrite.All
User.Read offline_access` as an admin consent for the whole organisation: this fires high with
the app as the principal and `Mail.Read` and `Files.ReadWrite.All` as the risky scopes.

## Known false positives and tuning
Onboarding of legitimate mail archivers, backup and e-discovery tools. Verify the publisher and
the app's reply URLs in Enterprise applications before trusting it; allow-list a vetted app by
its service principal object id under `[detect.allow.consent-grant-risky]`. Restricting user
consent to verified publishers and low-risk permissions removes most user-consent alerts.

## References
Microsoft Learn: "Detect and remediate illicit consent grants", "Microsoft Graph permissions
reference", "Configure how users consent to applications", and "Audit activity reference"
(ApplicationManagement, `Consent to application`).
"#;

#[derive(Debug, Clone, Copy, Default)]
pub struct ConsentGrantRisky;

/// The scopes in a `ConsentAction.Permissions` half: every `Scope:` list up to its `,` or `]`.
fn scopes_in(text: &str) -> Vec<&str> {
    let mut out: Vec<&str> = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("Scope:") {
        rest = &rest[i + "Scope:".len()..];
        let end = rest.find([',', ']']).unwrap_or(rest.len());
        for scope in rest[..end].split_whitespace() {
            if !out.contains(&scope) {
                out.push(scope);
            }
        }
        rest = &rest[end..];
    }
    out
}

fn is_risky_scope(scope: &str) -> bool {
    let s = scope.to_ascii_lowercase();
    RISKY_PREFIXES.iter().any(|p| s.starts_with(p)) || RISKY_SCOPES.contains(&s.as_str())
}

fn flag(a: &Audit, name: &str) -> bool {
    a.modified_new_value(name)
        .is_some_and(|v| v.trim().trim_matches('"').eq_ignore_ascii_case("true"))
}

impl Detector for ConsentGrantRisky {
    fn id(&self) -> &'static str {
        ID
    }

    fn doc(&self) -> &'static str {
        DOC
    }

    fn default_severity(&self) -> Severity {
        Severity::Medium
    }

    fn observe(&self, _ctx: &Context<'_>, event: &Event, out: &mut Vec<Finding>) {
        let Body::Audit(a) = &event.body else { return };
        if !a
            .activity_display_name
            .trim()
            .eq_ignore_ascii_case("Consent to application")
            || !succeeded(a)
        {
            return;
        }
        let permissions = a
            .modified_new_value("ConsentAction.Permissions")
            .unwrap_or("");
        let (before, after) = permissions.split_once("=>").unwrap_or(("", permissions));
        let previous = scopes_in(before);
        let granted: Vec<&str> = scopes_in(after)
            .into_iter()
            .filter(|s| !previous.contains(s))
            .collect();
        let risky: Vec<&str> = granted
            .iter()
            .copied()
            .filter(|s| is_risky_scope(s))
            .collect();
        let admin = flag(a, "ConsentContext.IsAdminConsent");
        let all_users =
            flag(a, "ConsentContext.OnBehalfOfAll") || after.contains("ConsentType: AllPrincipals");
        let app_only = flag(a, "ConsentContext.IsAppOnly");
        let severity = match (risky.is_empty(), admin || all_users || app_only) {
            (false, true) => Severity::High,
            (false, false) => Severity::Medium,
            (true, _) if all_users => Severity::Medium,
            (true, _) => return,
        };
        let app = a
            .target_resources
            .iter()
            .find(|t| {
                t.resource_type
                    .as_deref()
                    .is_some_and(|k| k.eq_ignore_ascii_case("ServicePrincipal"))
            })
            .or_else(|| a.target_resources.first());
        let detail = |key: &str| {
            a.additional_details
                .iter()
                .find(|d| d.key.eq_ignore_ascii_case(key))
                .and_then(|d| d.value.clone())
        };
        let app_id = detail("AppId");
        let sp_id = app.and_then(|t| t.id.clone());
        let app_name = app
            .and_then(|t| t.display_name.clone())
            .or_else(|| app_id.clone())
            .or_else(|| sp_id.clone())
            .unwrap_or_else(|| "an application".into());
        let tenant = &event.meta.tenant_id;
        let actor = actor_name(a);
        let from = actor_ip(a)
            .map(|ip| format!(" from {ip}"))
            .unwrap_or_default();
        let scope_text = if risky.is_empty() {
            granted.join(" ")
        } else {
            risky.join(", ")
        };
        let reach = match (all_users, app_only, admin) {
            (_, true, _) => "as app-only permissions",
            (true, _, _) => "for all users (admin consent)",
            (false, false, true) => "by admin consent",
            _ => "for their own account",
        };
        let title = if risky.is_empty() {
            format!("{actor} consented to {app_name} for all users in tenant {tenant}")
        } else {
            format!("{actor} granted {app_name} {scope_text} {reach}")
        };
        let summary = format!(
            "{actor}{from} consented in tenant {tenant} to the application {app_name} (app id {}) {reach}, \
             granting: {}{}. A consented app keeps this access without the user's password or MFA. Check the \
             app's publisher, reply URLs and owners in Enterprise applications; if it is not a known, \
             vetted app, revoke the grant, disable the service principal, and review what it read through \
             its sign-ins.",
            app_id.as_deref().unwrap_or("unknown"),
            if granted.is_empty() {
                "(no delegated scopes listed)".to_owned()
            } else {
                granted.join(" ")
            },
            if risky.is_empty() {
                String::new()
            } else {
                format!(" (high-risk: {})", risky.join(", "))
            },
        );
        let mut evidence = Map::new();
        evidence.insert("app".into(), json!(app_name));
        evidence.insert("app_id".into(), json!(app_id));
        evidence.insert("service_principal_id".into(), json!(sp_id));
        evidence.insert("scopes_granted".into(), json!(granted));
        evidence.insert("risky_scopes".into(), json!(risky));
        evidence.insert("admin_consent".into(), Value::Bool(admin));
        evidence.insert("on_behalf_of_all".into(), Value::Bool(all_users));
        evidence.insert("app_only".into(), Value::Bool(app_only));
        evidence.insert("actor".into(), json!(actor));
        evidence.insert("ip_address".into(), json!(actor_ip(a)));
        evidence.insert("user_agent".into(), json!(detail("User-Agent")));
        evidence.insert("correlation_id".into(), json!(a.correlation_id));
        out.push(Finding {
            rule: ID,
            severity,
            tenant_id: tenant.to_string(),
            principal: Principal {
                kind: PrincipalKind::ServicePrincipal,
                id: sp_id
                    .or(app_id)
                    .unwrap_or_else(|| app_name.clone())
                    .to_string(),
                upn: None,
                home_tenant_id: None,
            },
            time: event.meta.time,
            event_ids: vec![event.meta.id.to_string()],
            title,
            summary,
            evidence,
            mitre: &["T1528"],
            ip: actor_ip(a),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DetectConfig;
    use crate::testkit::*;
    use entrawatch_ingest::model::KeyValue;

    /// A `Consent to application` record laid out as Graph writes it (see the ingest quirk fixture
    /// `graph_directory_audits_no_tenant.json`), after the JSON-string values are unwrapped.
    fn consent(
        id: &str,
        minute: i64,
        app: &str,
        admin: bool,
        all: bool,
        app_only: bool,
        permissions: &str,
    ) -> AuditB {
        let t = |b: bool| if b { "True" } else { "False" };
        audit(id, "Consent to application", minute)
            .category("ApplicationManagement")
            .by_user("marek.horvath@fabrikam.com")
            .with(|a| {
                a.initiated_by.user.as_mut().unwrap().ip_address =
                    Some("2001:db8:4a2:1100::17".into())
            })
            .target("ServicePrincipal", &format!("sp-{app}"), app)
            .modified("ConsentContext.IsAdminConsent", None, Some(t(admin)))
            .modified("ConsentContext.IsAppOnly", None, Some(t(app_only)))
            .modified("ConsentContext.OnBehalfOfAll", None, Some(t(all)))
            .modified(
                "ConsentContext.Tags",
                None,
                Some("WindowsAzureActiveDirectoryIntegratedApp"),
            )
            .modified("ConsentAction.Permissions", None, Some(permissions))
            .with(|a| {
                a.additional_details = vec![
                    KeyValue {
                        key: "User-Agent".into(),
                        value: Some("Mozilla/5.0 Edg/131.0.0.0".into()),
                    },
                    KeyValue {
                        key: "AppId".into(),
                        value: Some("4f6cff8f-c14e-43e7-a69c-e5655619d312".into()),
                    },
                ]
            })
    }

    fn grant(consent_type: &str, scope: &str) -> String {
        format!(
            "[Id: rcTVtzGMwkCGHvjDxxHSD7, ClientId: b7d5c4ad-8c31-40c2-861e-f8c3c711d20f, PrincipalId: , \
             ResourceId: 68f294bf-0f73-4c13-9e23-e18d31d220af, ConsentType: {consent_type}, Scope:  {scope}, \
             CreatedDateTime: , LastModifiedDateTime ]"
        )
    }

    #[test]
    fn fires_on_risky_scopes_and_on_tenant_wide_consent() {
        let events = vec![
            // The fixture's admin consent for everyone: high.
            consent(
                "c1",
                0,
                "Fabrikam Mail Archiver",
                true,
                true,
                false,
                &format!(
                    "[] => [{}]; ",
                    grant(
                        "AllPrincipals",
                        "Mail.Read Files.ReadWrite.All User.Read offline_access"
                    )
                ),
            )
            .build(),
            // A user consenting for themselves to mail access: medium.
            consent(
                "c2",
                5,
                "PDF Helper",
                false,
                false,
                false,
                &format!(
                    "[] => [{}]; ",
                    grant("Principal", "openid profile Mail.ReadWrite offline_access")
                ),
            )
            .build(),
            // The same user adding Sites.Read.All later: only the new scope counts.
            consent(
                "c3",
                9,
                "PDF Helper",
                false,
                false,
                false,
                &format!(
                    "[{}] => [{}]; ",
                    grant("Principal", "openid profile Mail.ReadWrite offline_access"),
                    grant(
                        "Principal",
                        "openid profile Mail.ReadWrite offline_access Sites.Read.All"
                    )
                ),
            )
            .build(),
            // Tenant-wide consent to harmless scopes: medium.
            consent(
                "c4",
                12,
                "Team Calendar",
                true,
                true,
                false,
                &format!(
                    "[] => [{}]; ",
                    grant("AllPrincipals", "User.Read openid profile")
                ),
            )
            .build(),
        ];
        let found = run(ID, DetectConfig::default(), &events);
        let brief: Vec<(&str, Severity)> = found
            .iter()
            .map(|f| (f.event_ids[0].as_str(), f.severity))
            .collect();
        assert_eq!(
            brief,
            vec![
                ("c1", Severity::High),
                ("c2", Severity::Medium),
                ("c3", Severity::Medium),
                ("c4", Severity::Medium)
            ]
        );
        assert_eq!(
            found[0].evidence["risky_scopes"],
            json!(["Mail.Read", "Files.ReadWrite.All"])
        );
        assert_eq!(found[0].principal.kind, PrincipalKind::ServicePrincipal);
        assert_eq!(found[0].ip.as_deref(), Some("2001:db8:4a2:1100::17"));
        assert_eq!(
            found[2].evidence["scopes_granted"],
            json!(["Sites.Read.All"])
        );
        insta::assert_json_snapshot!("consent_grant_risky_fires", snapshot(&found));
    }

    #[test]
    fn stays_quiet_on_low_risk_user_consent_re_consent_failures_and_other_activities() {
        let low = format!(
            "[] => [{}]; ",
            grant(
                "Principal",
                "openid profile User.Read offline_access MailboxSettings.Read Calendars.Read"
            )
        );
        let again = grant("Principal", "Mail.Read offline_access");
        let events = vec![
            consent("q1", 0, "Zoom", false, false, false, &low).build(),
            // An admin consenting for themselves to harmless scopes.
            consent("q2", 1, "Graph Explorer", true, false, false, &low).build(),
            // Re-consent to the same mail scope.
            consent(
                "q3",
                2,
                "PDF Helper",
                false,
                false,
                false,
                &format!("[{again}] => [{again}]; "),
            )
            .build(),
            consent(
                "q4",
                3,
                "Evil Mail App",
                true,
                true,
                false,
                &format!("[] => [{}]; ", grant("AllPrincipals", "Mail.ReadWrite")),
            )
            .failed()
            .build(),
            audit("q5", "Add delegated permission grant", 4)
                .target("ServicePrincipal", "sp-x", "Evil Mail App")
                .modified(
                    "DelegatedPermissionGrant.Scope",
                    None,
                    Some("Mail.ReadWrite"),
                )
                .build(),
        ];
        let found = run(ID, DetectConfig::default(), &events);
        assert!(found.is_empty(), "{:#?}", snapshot(&found));
    }

    #[test]
    fn app_only_consent_to_risky_permissions_is_high() {
        let events = vec![
            consent(
                "a1",
                0,
                "Exchange Sync",
                false,
                false,
                true,
                &format!("[] => [{}]; ", grant("AllPrincipals", "full_access_as_app")),
            )
            .build(),
        ];
        let found = run(ID, DetectConfig::default(), &events);
        assert_eq!(
            found.iter().map(|f| f.severity).collect::<Vec<_>>(),
            vec![Severity::High]
        );
        assert!(
            is_risky_scope("RoleManagement.ReadWrite.Directory")
                && is_risky_scope("sites.fullcontrol.all")
        );
        assert!(!is_risky_scope("Files.Read") && !is_risky_scope("MailboxSettings.Read"));
    }

    #[test]
    fn reads_the_real_graph_layout() {
        let bytes = include_bytes!(
            "../../../ingest/tests/fixtures/quirks/graph_directory_audits_no_tenant.json"
        );
        let events = fixture_events("graph_directory_audits_no_tenant.json", bytes, TENANT);
        assert_eq!(events.len(), 2);
        let found = run(ID, DetectConfig::default(), &events);
        assert_eq!(found.len(), 1);
        assert_eq!(
            found[0].event_ids,
            vec!["Directory_6c267c05-a5bc-4904-9ccb-adc83d998aa8_M8W2D_402119377"]
        );
        assert_eq!(found[0].severity, Severity::High);
        assert_eq!(
            found[0].evidence["risky_scopes"],
            json!(["Mail.Read", "Files.ReadWrite.All"])
        );
        assert_eq!(
            found[0].evidence["app_id"],
            json!("4f6cff8f-c14e-43e7-a69c-e5655619d312")
        );
        assert_eq!(
            found[0].principal.id,
            "b7d5c4ad-8c31-40c2-861e-f8c3c711d20f"
        );
    }
}
