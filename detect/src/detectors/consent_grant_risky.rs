//! `consent-grant-risky`: see [`DOC`] for what it detects and why.

use entrawatch_ingest::model::{Audit, Body, Event, Kind};
use serde_json::{Map, Value, json};

use super::{actor_ip, actor_name, succeeded};
use crate::apps::{self, Grant, GrantKind, scopes_in};
use crate::detector::{Context, Detector};
use crate::finding::{Finding, Principal, PrincipalKind, Severity};

pub const ID: &str = "consent-grant-risky";

/// User documentation, printed by `entrawatch rules consent-grant-risky`.
pub const DOC: &str = r#"## What it detects
A successful audit that gives an application high-impact permissions (the list
`detect.applications.high_impact_permissions`, shared with `app-credential-added`; by default
`Mail.*`, `MailboxSettings.ReadWrite`, `Files.ReadWrite.All`, `Sites.*`, `Directory.*`,
`RoleManagement.*`, `AppRoleAssignment.ReadWrite.All`, `Application.ReadWrite.All` and
`full_access_as_app`):

- `Consent to application` granting a high-impact scope: medium; high when the consent is an
  admin consent (`ConsentContext.IsAdminConsent`), on behalf of all users
  (`ConsentContext.OnBehalfOfAll`, or `ConsentType: AllPrincipals`) or for app-only permissions
  (`ConsentContext.IsAppOnly`). An admin consent on behalf of all users with no high-impact scope
  fires medium.
- `Add delegated permission grant` whose `DelegatedPermissionGrant.Scope` gains a high-impact
  scope: medium; high when the grant is for all users
  (`DelegatedPermissionGrant.ConsentType: AllPrincipals`) or an application, not a person, made it.
- `Add app role assignment to service principal` of a high-impact application permission
  (`AppRole.Value`, else `AppRole.Id`: list app role ids too if your records lack the value):
  high; critical when the application granted the role to itself.

Scopes of a consent are read from `ConsentAction.Permissions`, whose text is `[<grants before>] =>
[<grants after>]` with `Scope: <space-separated scopes>` in each grant; only scopes that are new
after the arrow count, so re-consenting to the same permissions does not fire again; likewise only
scopes new in `DelegatedPermissionGrant.Scope` count. A consent writes its delegated grant (and,
for application permissions, its app role assignment) as records of its own: they raise the same
rule on the same application, which the alert stage joins into one episode.

## Why it matters
Illicit consent grants hand an attacker's app a token that reads mail and files, and survives
password resets and MFA, because the app, not the user, holds the access. Tenant-wide or app-only
permissions do it for every mailbox at once, and an app that holds `AppRoleAssignment.ReadWrite.All`
can grant itself anything without an admin consent. MITRE ATT&CK T1528 (Steal Application Access
Token) and T1098.003 (Additional Cloud Roles).

## Signals used
`activityDisplayName`, `result`, the `ServicePrincipal` targets (the app; for grants and role
assignments the resource API first, then the client), the modified properties
`ConsentAction.Permissions`, `ConsentContext.IsAdminConsent`, `ConsentContext.OnBehalfOfAll`,
`ConsentContext.IsAppOnly`, `DelegatedPermissionGrant.Scope`, `DelegatedPermissionGrant.ConsentType`,
`AppRole.Value`, `AppRole.Id`, `ServicePrincipal.ObjectID`, `ServicePrincipal.AppId`,
`ServicePrincipal.DisplayName`, `additionalDetails` (`AppId`, `User-Agent`), and `initiatedBy`
(user or app) with its `ipAddress`.

## Example
`marek.horvath@fabrikam.com` grants "Fabrikam Mail Archiver" `Mail.Read Files.ReadWrite.All
User.Read offline_access` as an admin consent for the whole organisation: this fires high with
the app as the principal and `Mail.Read` and `Files.ReadWrite.All` as the risky scopes. An app
"LegacyTestOAuthApp" assigning itself `full_access_as_app` on Office 365 Exchange Online fires
critical.

## Known false positives and tuning
Onboarding of legitimate mail archivers, backup and e-discovery tools, and deployment pipelines
that assign app roles to the apps they create. Verify the publisher and the app's reply URLs in
Enterprise applications before trusting it; allow-list a vetted app by its service principal
object id under `[detect.allow.consent-grant-risky]`. Tune what counts as high impact with
`detect.applications.high_impact_permissions` (an entry ending in `*` is a prefix). Restricting
user consent to verified publishers and low-risk permissions removes most user-consent alerts.

## References
Microsoft Learn: "Detect and remediate illicit consent grants", "Microsoft Graph permissions
reference", "Configure how users consent to applications", "oAuth2PermissionGrant resource type",
"appRoleAssignment resource type" and "Audit activity reference" (ApplicationManagement:
`Consent to application`, `Add delegated permission grant`, `Add app role assignment to service
principal`).
"#;

#[derive(Debug, Clone, Copy, Default)]
pub struct ConsentGrantRisky;

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

    fn kinds(&self) -> &'static [Kind] {
        &[Kind::Audit]
    }

    fn observe(&self, ctx: &Context<'_>, event: &Event, out: &mut Vec<Finding>) {
        let Body::Audit(a) = &event.body else { return };
        let Some(kind) = GrantKind::of(a) else { return };
        if !succeeded(a) {
            return;
        }
        if kind != GrantKind::Consent {
            if let Some(g) = apps::grant(a) {
                observe_grant(ctx, event, a, &g, out);
            }
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
            .filter(|s| ctx.config.applications.is_high_impact(s))
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

/// A delegated permission grant or an app role assignment giving an application high-impact
/// permissions. Delegated: medium, high for all users or when an application made it. App role
/// (application permission, tenant-wide by nature): high, critical when the app granted it to
/// itself.
fn observe_grant(ctx: &Context<'_>, event: &Event, a: &Audit, g: &Grant, out: &mut Vec<Finding>) {
    let apps_config = &ctx.config.applications;
    let risky: Vec<&str> = g
        .permissions
        .iter()
        .map(String::as_str)
        .filter(|p| apps_config.is_high_impact(p))
        .collect();
    if risky.is_empty() {
        return;
    }
    let by_user = a
        .initiated_by
        .user
        .as_ref()
        .is_some_and(|u| u.id.is_some() || u.user_principal_name.is_some());
    let initiator = a.initiated_by.app.as_ref().filter(|_| !by_user);
    let same = |x: Option<&str>, y: Option<&str>| matches!((x, y), (Some(x), Some(y)) if x.trim().eq_ignore_ascii_case(y.trim()));
    let self_grant = initiator.is_some_and(|p| {
        same(
            p.service_principal_id.as_deref(),
            g.client.object_id.as_deref(),
        ) || same(p.app_id.as_deref(), g.client.app_id.as_deref())
    });
    let (severity, what, reach) = match g.kind {
        GrantKind::AppRole => (
            if self_grant {
                Severity::Critical
            } else {
                Severity::High
            },
            "app role assignment",
            "as an application permission (no signed-in user needed, every mailbox or site)",
        ),
        _ => (
            if g.all_principals || initiator.is_some() {
                Severity::High
            } else {
                Severity::Medium
            },
            "delegated permission grant",
            if g.all_principals {
                "for all users"
            } else {
                "for one user"
            },
        ),
    };
    let app_name = g.client.label();
    let tenant = &event.meta.tenant_id;
    let actor = actor_name(a);
    let from = actor_ip(a)
        .map(|ip| format!(" from {ip}"))
        .unwrap_or_default();
    let by_app = if self_grant {
        " (the application granted itself)"
    } else if initiator.is_some() {
        " (made by an application, not a person)"
    } else {
        ""
    };
    let title = format!("{actor} granted {app_name} {} {reach}", risky.join(", "));
    let summary = format!(
        "{actor}{from} made a {what} in tenant {tenant}{by_app}: the application {app_name} may now use \
         {} on {} (high-impact: {}). An application holding these keeps the access without any user's password or MFA. \
         Check who owns the app and why it needs them; if it is not a known, vetted app, remove the \
         grant, disable the service principal, and review its sign-ins and credentials.",
        g.permissions.join(" "),
        g.resource.as_deref().unwrap_or("its API"),
        risky.join(", "),
    );
    let mut evidence = Map::new();
    evidence.insert("activity".into(), json!(a.activity_display_name.as_ref()));
    evidence.insert("app".into(), json!(app_name));
    evidence.insert("app_id".into(), json!(g.client.app_id));
    evidence.insert("service_principal_id".into(), json!(g.client.object_id));
    evidence.insert("resource".into(), json!(g.resource));
    evidence.insert("permissions_granted".into(), json!(g.permissions));
    evidence.insert("risky_scopes".into(), json!(risky));
    evidence.insert("on_behalf_of_all".into(), Value::Bool(g.all_principals));
    evidence.insert("app_only".into(), Value::Bool(g.kind == GrantKind::AppRole));
    evidence.insert("initiated_by_app".into(), Value::Bool(initiator.is_some()));
    evidence.insert("self_grant".into(), Value::Bool(self_grant));
    evidence.insert("actor".into(), json!(actor));
    evidence.insert("ip_address".into(), json!(actor_ip(a)));
    evidence.insert("correlation_id".into(), json!(a.correlation_id));
    out.push(Finding {
        rule: ID,
        severity,
        tenant_id: tenant.to_string(),
        principal: Principal {
            kind: PrincipalKind::ServicePrincipal,
            id: g
                .client
                .object_id
                .clone()
                .or_else(|| g.client.app_id.clone())
                .unwrap_or_else(|| app_name.clone()),
            upn: None,
            home_tenant_id: None,
        },
        time: event.meta.time,
        event_ids: vec![event.meta.id.to_string()],
        title,
        summary,
        evidence,
        mitre: &["T1528", "T1098.003"],
        ip: actor_ip(a),
    });
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
            // A delegated grant of harmless scopes (the consent's own record stays quiet too).
            audit("q5", "Add delegated permission grant", 4)
                .target("ServicePrincipal", "sp-x", "Team Calendar")
                .modified(
                    "DelegatedPermissionGrant.Scope",
                    None,
                    Some(" User.Read Calendars.Read"),
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
        let apps = DetectConfig::default().applications;
        assert!(
            apps.is_high_impact("RoleManagement.ReadWrite.Directory")
                && apps.is_high_impact("sites.fullcontrol.all")
        );
        assert!(!apps.is_high_impact("Files.Read") && !apps.is_high_impact("MailboxSettings.Read"));
    }

    /// `Add delegated permission grant` as Entra writes it: the resource (Microsoft Graph) with the
    /// grant's properties, then the client.
    fn delegated(
        id: &str,
        minute: i64,
        client: &str,
        old: Option<&str>,
        new: &str,
        all: bool,
    ) -> AuditB {
        audit(id, "Add delegated permission grant", minute)
            .category("ApplicationManagement")
            .by_user("marek.horvath@fabrikam.com")
            .target(
                "ServicePrincipal",
                "6c1a0f2e-93b1-4f0b-8f4e-0d2b6a1c9e11",
                "Microsoft Graph",
            )
            .modified("DelegatedPermissionGrant.Scope", old, Some(new))
            .modified(
                "DelegatedPermissionGrant.ConsentType",
                None,
                Some(if all { "AllPrincipals" } else { "Principal" }),
            )
            .target("ServicePrincipal", &format!("sp-{client}"), "")
            .with(|a| a.target_resources[1].display_name = None)
    }

    /// `Add app role assignment to service principal` as in the public Splunk attack data sample
    /// (an app assigning itself `full_access_as_app`): the resource first, the client in its
    /// modified properties.
    fn app_role(id: &str, minute: i64, client_sp: &str, role: &str) -> AuditB {
        audit(id, "Add app role assignment to service principal", minute)
            .category("ApplicationManagement")
            .target(
                "ServicePrincipal",
                "8429eb5c-faeb-4ade-8eac-acc003790769",
                "Office 365 Exchange Online",
            )
            .modified(
                "AppRole.Id",
                None,
                Some("dc890d15-9560-4a4c-9b7f-a736ec74ec40"),
            )
            .modified("AppRole.Value", None, Some(role))
            .modified(
                "AppRole.DisplayName",
                None,
                Some("Use Exchange Web Services with full access to all mailboxes"),
            )
            .modified("ServicePrincipal.ObjectID", None, Some(client_sp))
            .modified(
                "ServicePrincipal.DisplayName",
                None,
                Some("LegacyTestOAuthApp"),
            )
            .modified(
                "ServicePrincipal.AppId",
                None,
                Some("0d4c2f1e-7a51-4b8e-9a5d-3c1f6e2b8a40"),
            )
    }

    #[test]
    fn fires_on_delegated_grants_and_app_role_assignments_of_high_impact_permissions() {
        let events = vec![
            delegated(
                "d1",
                0,
                "pdf",
                None,
                " openid Mail.ReadWrite offline_access",
                false,
            )
            .build(),
            delegated(
                "d2",
                1,
                "arch",
                Some(" User.Read"),
                " User.Read Files.ReadWrite.All",
                true,
            )
            .build(),
            app_role(
                "r1",
                2,
                "fc8c8125-bc0c-499d-8344-e53c6e3caa81",
                "full_access_as_app",
            )
            .by_user("marek.horvath@fabrikam.com")
            .build(),
            app_role(
                "r2",
                3,
                "fc8c8125-bc0c-499d-8344-e53c6e3caa81",
                "full_access_as_app",
            )
            .with(|a| {
                a.initiated_by.user = None;
                a.initiated_by.app = Some(entrawatch_ingest::model::AuditApp {
                    display_name: Some("LegacyTestOAuthApp".into()),
                    service_principal_id: Some("fc8c8125-bc0c-499d-8344-e53c6e3caa81".into()),
                    ..Default::default()
                })
            })
            .build(),
        ];
        let found = run(ID, DetectConfig::default(), &events);
        let brief: Vec<(&str, Severity, &str)> = found
            .iter()
            .map(|f| (f.event_ids[0].as_str(), f.severity, f.principal.id.as_str()))
            .collect();
        assert_eq!(
            brief,
            vec![
                ("d1", Severity::Medium, "sp-pdf"),
                ("d2", Severity::High, "sp-arch"),
                ("r1", Severity::High, "fc8c8125-bc0c-499d-8344-e53c6e3caa81"),
                (
                    "r2",
                    Severity::Critical,
                    "fc8c8125-bc0c-499d-8344-e53c6e3caa81"
                ),
            ]
        );
        assert_eq!(
            found[1].evidence["risky_scopes"],
            json!(["Files.ReadWrite.All"])
        );
        assert_eq!(found[1].evidence["resource"], json!("Microsoft Graph"));
        assert_eq!(found[3].evidence["self_grant"], json!(true));
        assert!(
            found[3].title.contains("full_access_as_app"),
            "{}",
            found[3].title
        );
    }

    #[test]
    fn stays_quiet_on_harmless_or_repeated_grants_and_failures() {
        let mut custom = DetectConfig::default();
        custom.applications.high_impact_permissions = vec!["Calendars.ReadWrite".into()];
        let events = vec![
            delegated("e1", 0, "cal", None, " User.Read Calendars.Read", true).build(),
            // Mail.Read was already granted: nothing new.
            delegated(
                "e2",
                1,
                "pdf",
                Some(" Mail.Read"),
                " Mail.Read User.Read",
                false,
            )
            .build(),
            app_role("e3", 2, "sp-sync", "User.Read.All").build(),
            app_role("e4", 3, "sp-sync", "full_access_as_app")
                .failed()
                .build(),
            app_role("e5", 4, "sp-sync", "full_access_as_app")
                .with(|a| {
                    a.activity_display_name =
                        "Remove app role assignment from service principal".into()
                })
                .build(),
        ];
        let found = run(ID, DetectConfig::default(), &events);
        assert!(found.is_empty(), "{:#?}", snapshot(&found));
        // The shared list decides: without Mail.* nothing fires on mail.
        let events = vec![
            delegated("f1", 0, "pdf", None, " Mail.ReadWrite", true).build(),
            delegated("f2", 1, "cal", None, " Calendars.ReadWrite", false).build(),
        ];
        let found = run(ID, custom, &events);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].event_ids, vec!["f2"]);
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
