//! `app-credential-added`: see [`DOC`] for what it detects and why.
//!
//! Record shapes follow Microsoft Learn "Microsoft Entra audit log activity reference"
//! (ApplicationManagement: `Update application – Certificates and secrets management`, `Add
//! service principal credentials`, `Update application`, `Update service principal`, with the key
//! credentials in the `KeyDescription` modified property) and "Investigate application credential
//! changes" (the audit records of `addPassword` / `addKey`).

use entrawatch_ingest::model::{Body, Event, Kind};
use serde_json::{Map, Value, json};

use super::{actor_ip, actor_name, succeeded, time_text};
use crate::apps::{self, CredentialChange};
use crate::detector::{Context, Detector};
use crate::finding::{Finding, Principal, PrincipalKind, Severity};
use crate::state::{RETENTION_SECS, Stream};

pub const ID: &str = "app-credential-added";

/// User documentation, printed by `entrawatch rules app-credential-added`.
pub const DOC: &str = r#"## What it detects
A successful audit that adds a secret (password) or certificate to an application or a service
principal:

- `Update application – Certificates and secrets management` (matched with an en dash, em dash or
  hyphen, in any casing) and `Add service principal credentials`, unless their `KeyDescription`
  shows no new key (a removal is logged under the same name);
- `Update application` and `Update service principal` when `KeyDescription` (the list of key
  credentials, one `[KeyIdentifier=…,KeyType=…,KeyUsage=…,DisplayName=…]` per key) gains a key.

Severity:

- **high** when the application holds high-impact permissions: a grant seen in the last 30 days
  (`Consent to application`, `Add delegated permission grant`, `Add app role assignment to service
  principal`) gave it a permission of `detect.applications.high_impact_permissions` (mail, files,
  directory, role management...; the list `consent-grant-risky` uses), or when the actor never
  managed this application (added a credential, updated it, added an owner) in the last 30 days
  (not judged while the tenant's audit stream is younger than `detect.baseline.learning_days`);
- **medium** otherwise;
- **low** when the actor is a configured rotation identity
  (`detect.applications.rotation_identities`: user object ids or UPNs, service principal object
  ids, app ids or names), whatever the application holds.

The application is found under any of its ids (object id of the application or service principal,
app id from `additionalDetails` or `TargetId.ServicePrincipalNames`, display name), so a secret
added to the application object is matched with grants made to its service principal.

## Why it matters
A credential added to an application that already holds mail or directory permissions is the
quietest persistence in Entra ID: the attacker signs in as the application, with no user, no MFA,
and no password reset that helps, and reads every mailbox the app may read (as in the Midnight
Blizzard and Solorigate intrusions). MITRE ATT&CK T1098.001 (Account Manipulation: Additional
Cloud Credentials).

## Signals used
`activityDisplayName`, `result`, the `Application` or `ServicePrincipal` target (id, name), the
modified property `KeyDescription` (old and new), `additionalDetails` (`AppId`), `initiatedBy`
(user or app) with its `ipAddress`, and the 30-day per-tenant application history: high-impact
permissions granted to the app and the actors who managed it.

## Example
`it-admin@contoso.com`, signing in from an address never seen before, adds a client secret
"backup" to "Contoso Mail Archiver", which an admin consent granted `Mail.ReadWrite` two weeks
earlier: this fires high with the application as the principal, the new key and the permission
in the evidence.

## Known false positives and tuning
Scheduled secret rotation by automation (Key Vault rotation functions, deployment pipelines) and
developers renewing expiring certificates of their own apps. Name the rotating identities in
`detect.applications.rotation_identities` (their additions are reported low), and allow-list an
application by its object id under `[detect.allow.app-credential-added]`. A developer who always
manages an app and adds a secret to an app without high-impact permissions is reported medium.

## References
Microsoft Learn: "Microsoft Entra audit log activity reference" (ApplicationManagement),
"application: addPassword", "servicePrincipal: addKey", "Investigate and remediate risky OAuth
apps / application credential changes", "Securing service principals in Microsoft Entra ID", and
"Microsoft Graph permissions reference".
"#;

#[derive(Debug, Clone, Copy, Default)]
pub struct AppCredentialAdded;

impl Detector for AppCredentialAdded {
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
        &[Kind::Audit]
    }

    fn observe(&self, ctx: &Context<'_>, event: &Event, out: &mut Vec<Finding>) {
        let Body::Audit(a) = &event.body else { return };
        if !succeeded(a) {
            return;
        }
        let Some(change) = apps::credential_added(a) else {
            return;
        };
        let tenant = &event.meta.tenant_id;
        let now = event.meta.time.timestamp();
        let actor_ids = apps::actor_ids(a);
        let rotation = ctx.config.applications.is_rotation_identity(&actor_ids);
        let history = ctx
            .state
            .app_history(tenant, &change.app, crate::state::actor_key(a));
        let permissions: Vec<(String, i64)> = history
            .permissions
            .into_iter()
            .filter(|(_, at)| *at >= now - RETENTION_SECS)
            .collect();
        let learning = ctx
            .state
            .tenants
            .get(tenant)
            .and_then(|t| ctx.state.streams.get(&(t, Stream::Audits)))
            .is_none_or(|s| now - s.first < ctx.config.baseline.learning_days * 86_400);
        let new_actor = !history.managed_by_actor && !learning;
        let severity = if rotation {
            Severity::Low
        } else if !permissions.is_empty() || new_actor {
            Severity::High
        } else {
            Severity::Medium
        };
        out.push(finding(
            event,
            a,
            &change,
            &permissions,
            history.managers,
            new_actor,
            learning,
            rotation,
            severity,
        ));
    }
}

#[allow(clippy::too_many_arguments)]
fn finding(
    event: &Event,
    a: &entrawatch_ingest::model::Audit,
    change: &CredentialChange,
    permissions: &[(String, i64)],
    managers: usize,
    new_actor: bool,
    learning: bool,
    rotation: bool,
    severity: Severity,
) -> Finding {
    let tenant = &event.meta.tenant_id;
    let app = change.app.label();
    let actor = actor_name(a);
    let from = actor_ip(a)
        .map(|ip| format!(" from {ip}"))
        .unwrap_or_default();
    let what = match change.added.as_slice() {
        [] => "a credential".to_owned(),
        [one] if one.contains("KeyType=Password") => "a client secret".to_owned(),
        [one] if one.contains("AsymmetricX509Cert") => "a certificate".to_owned(),
        [_] => "a key credential".to_owned(),
        many => format!("{} key credentials", many.len()),
    };
    let kind = if change.object_kind == "ServicePrincipal" {
        "service principal"
    } else {
        "application"
    };
    let names: Vec<&str> = permissions.iter().map(|(p, _)| p.as_str()).collect();
    let title = format!("{actor} added {what} to the {kind} {app}");
    let mut why: Vec<String> = Vec::new();
    if !permissions.is_empty() {
        why.push(format!(
            "the app holds high-impact permissions granted in the last 30 days ({}; last granted {})",
            names.join(", "),
            time_text(permissions[0].1)
        ));
    }
    if new_actor {
        why.push(format!(
            "{actor} never managed this app in the last 30 days ({} other manager{} seen)",
            managers,
            if managers == 1 { "" } else { "s" }
        ));
    }
    if rotation {
        why.push(format!(
            "{actor} is a configured rotation identity (detect.applications.rotation_identities)"
        ));
    }
    let why = if why.is_empty() {
        "the actor managed this app before and it holds no high-impact permission seen in the last \
         30 days"
            .to_owned()
    } else {
        why.join("; ")
    };
    let summary = format!(
        "{actor}{from} added {what} to the {kind} {app} (object id {}, app id {}) in tenant {tenant}: {why}. \
         Whoever holds the new credential can sign in as the application, without any user or MFA. \
         Confirm the change with the app's owner; if nobody expected it, remove the credential \
         (Certificates & secrets), review the app's sign-ins since, and check its permissions.",
        change.app.object_id.as_deref().unwrap_or("unknown"),
        change.app.app_id.as_deref().unwrap_or("unknown"),
    );
    let mut evidence = Map::new();
    evidence.insert("activity".into(), json!(a.activity_display_name.as_ref()));
    evidence.insert("app".into(), json!(app));
    evidence.insert("object_kind".into(), json!(change.object_kind));
    evidence.insert("object_id".into(), json!(change.app.object_id));
    evidence.insert("app_id".into(), json!(change.app.app_id));
    evidence.insert("keys_added".into(), json!(change.added));
    evidence.insert("high_impact_permissions".into(), json!(names));
    evidence.insert("actor".into(), json!(actor));
    evidence.insert("actor_new_to_app".into(), Value::Bool(new_actor));
    evidence.insert("learning".into(), Value::Bool(learning));
    evidence.insert("rotation_identity".into(), Value::Bool(rotation));
    evidence.insert("ip_address".into(), json!(actor_ip(a)));
    evidence.insert("correlation_id".into(), json!(a.correlation_id));
    Finding {
        rule: ID,
        severity,
        tenant_id: tenant.to_string(),
        principal: Principal {
            kind: PrincipalKind::ServicePrincipal,
            id: change
                .app
                .object_id
                .clone()
                .or_else(|| change.app.app_id.clone())
                .unwrap_or_else(|| app.clone()),
            upn: None,
            home_tenant_id: None,
        },
        time: event.meta.time,
        event_ids: vec![event.meta.id.to_string()],
        title,
        summary,
        evidence,
        mitre: &["T1098.001"],
        ip: actor_ip(a),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DetectConfig;
    use crate::testkit::*;
    use entrawatch_ingest::model::{AuditApp, KeyValue};

    const APP_OBJECT: &str = "3f1b6a0e-2c4d-4e8f-9a1b-5c6d7e8f9a0b";
    const SP_OBJECT: &str = "b7d5c4ad-8c31-40c2-861e-f8c3c711d20f";
    const APP_ID: &str = "4f6cff8f-c14e-43e7-a69c-e5655619d312";
    const SECRET_OLD: &str = "[KeyIdentifier=0c9e1a52-7f3b-4d1e-8a64-2b5f9d3c7e10,KeyType=Password,KeyUsage=Verify,DisplayName=rotation-2026-09]";
    const SECRET_NEW: &str = "[KeyIdentifier=9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d,KeyType=Password,KeyUsage=Verify,DisplayName=backup]";

    fn keys(list: &[&str]) -> String {
        let quoted: Vec<String> = list.iter().map(|k| format!("\"{k}\"")).collect();
        format!("[{}]", quoted.join(","))
    }

    /// `Update application – Certificates and secrets management` as Entra writes it: the
    /// application object, `KeyDescription` old and new, `Included Updated Properties`, and the
    /// app id in `additionalDetails`.
    fn secret_added(id: &str, minute: i64, activity: &str, old: &[&str], new: &[&str]) -> AuditB {
        audit(id, activity, minute)
            .category("ApplicationManagement")
            .by_user("it-admin@contoso.com")
            .with(|a| {
                a.initiated_by.user.as_mut().unwrap().ip_address = Some("198.51.100.23".into());
                a.additional_details = vec![
                    KeyValue {
                        key: "User-Agent".into(),
                        value: Some("Mozilla/5.0 Edg/131.0.0.0".into()),
                    },
                    KeyValue {
                        key: "AppId".into(),
                        value: Some(APP_ID.into()),
                    },
                ];
                a.correlation_id = Some("5d2c9f3e-1a4b-4c6d-8e7f-9a0b1c2d3e4f".into());
            })
            .target("Application", APP_OBJECT, "Contoso Mail Archiver")
            .modified("KeyDescription", Some(&keys(old)), Some(&keys(new)))
            .modified("Included Updated Properties", None, Some("KeyDescription"))
    }

    const CERTS: &str = "Update application – Certificates and secrets management";

    /// An admin consent that granted the app's service principal `Mail.ReadWrite`.
    fn mail_consent(minute: i64) -> Event {
        audit("grant", "Consent to application", minute)
            .category("ApplicationManagement")
            .by_user("marek.horvath@contoso.com")
            .target("ServicePrincipal", SP_OBJECT, "Contoso Mail Archiver")
            .modified("ConsentContext.IsAdminConsent", None, Some("True"))
            .modified("ConsentContext.OnBehalfOfAll", None, Some("True"))
            .modified(
                "ConsentAction.Permissions",
                None,
                Some(
                    "[] => [[Id: rcTV, ClientId: b7d5c4ad-8c31-40c2-861e-f8c3c711d20f, PrincipalId: , \
                     ResourceId: 68f294bf-0f73-4c13-9e23-e18d31d220af, ConsentType: AllPrincipals, \
                     Scope:  Mail.ReadWrite User.Read, CreatedDateTime: , LastModifiedDateTime ]]; ",
                ),
            )
            .with(|a| {
                a.additional_details = vec![KeyValue {
                    key: "AppId".into(),
                    value: Some(APP_ID.into()),
                }]
            })
            .build()
    }

    /// Audits every few hours from minute 0, so the tenant's audit stream is past learning.
    fn background(until_minute: i64) -> Vec<Event> {
        (0..until_minute / 600)
            .map(|i| {
                audit(&format!("bg{i}"), "Update device", i * 600)
                    .category("Device")
                    .build()
            })
            .collect()
    }

    fn severities(found: &[Finding]) -> Vec<(&str, Severity)> {
        found
            .iter()
            .map(|f| (f.event_ids[0].as_str(), f.severity))
            .collect()
    }

    #[test]
    fn fires_high_on_a_secret_added_to_an_app_holding_mail_permissions() {
        let day = 1440;
        let mut events = background(12 * day);
        events.push(mail_consent(2 * day));
        // The same admin managed the app before (a certificate, via the hyphen spelling).
        events.push(
            secret_added(
                "k0",
                3 * day,
                "Update application - Certificates and secrets management",
                &[],
                &[SECRET_OLD],
            )
            .build(),
        );
        events.push(
            secret_added(
                "k1",
                12 * day,
                CERTS,
                &[SECRET_OLD],
                &[SECRET_OLD, SECRET_NEW],
            )
            .build(),
        );
        events.sort_by_key(|e| e.meta.time);
        let found = run(ID, DetectConfig::default(), &events);
        // k0 comes during learning (the actor is not judged), k1 from a known manager: both high,
        // because the app holds Mail.ReadWrite.
        assert_eq!(
            severities(&found),
            vec![("k0", Severity::High), ("k1", Severity::High)]
        );
        let f = &found[1];
        assert_eq!(f.principal.kind, PrincipalKind::ServicePrincipal);
        assert_eq!(f.principal.id, APP_OBJECT);
        assert_eq!(
            f.evidence["high_impact_permissions"],
            json!(["Mail.ReadWrite"])
        );
        assert_eq!(f.evidence["actor_new_to_app"], json!(false));
        assert_eq!(
            f.evidence["keys_added"],
            json!(["KeyType=Password,KeyUsage=Verify,DisplayName=backup"])
        );
        assert_eq!(f.ip.as_deref(), Some("198.51.100.23"));
        insta::assert_json_snapshot!("app_credential_added_fires", snapshot(&found[1..]));
    }

    #[test]
    fn severity_follows_the_actor_and_rotation_identities() {
        let day = 1440;
        let mut events = background(20 * day);
        let sp_key = |id: &str, minute: i64, by: &str| {
            audit(id, "Add service principal credentials", minute)
                .category("ApplicationManagement")
                .by_user(by)
                .target("ServicePrincipal", "sp-payroll", "Payroll Connector")
                .modified(
                    "KeyDescription",
                    Some("[]"),
                    Some("[\"[KeyIdentifier=1,KeyType=AsymmetricX509Cert,KeyUsage=Verify,DisplayName=CN=payroll]\"]"),
                )
        };
        // During learning: no judgement of the actor, no permissions: medium.
        events.push(sp_key("s0", day, "dev@contoso.com").build());
        // After learning, the same developer again: medium.
        events.push(sp_key("s1", 10 * day, "dev@contoso.com").build());
        // Someone who never managed it: high.
        events.push(sp_key("s2", 11 * day, "intruder@contoso.com").build());
        // The rotation automation, new to the app or not: low.
        events.push(
            sp_key("s3", 12 * day, "x")
                .with(|a| {
                    a.initiated_by.user = None;
                    a.initiated_by.app = Some(AuditApp {
                        display_name: Some("Secret Rotation Runbook".into()),
                        service_principal_id: Some("7e6d5c4b-3a29-4180-9f8e-7d6c5b4a3928".into()),
                        ..AuditApp::default()
                    });
                })
                .build(),
        );
        // An `Update service principal` whose key list grows, in any casing.
        events.push(
            sp_key("s4", 13 * day, "dev@contoso.com")
                .with(|a| a.activity_display_name = "update service principal".into())
                .build(),
        );
        events.sort_by_key(|e| e.meta.time);
        let mut config = DetectConfig::default();
        config.applications.rotation_identities =
            vec!["7E6D5C4B-3A29-4180-9F8E-7D6C5B4A3928".into()];
        let found = run(ID, config, &events);
        assert_eq!(
            severities(&found),
            vec![
                ("s0", Severity::Medium),
                ("s1", Severity::Medium),
                ("s2", Severity::High),
                ("s3", Severity::Low),
                ("s4", Severity::Medium),
            ]
        );
        assert_eq!(found[2].evidence["actor_new_to_app"], json!(true));
        assert!(
            found[2].title.contains("a certificate"),
            "{}",
            found[2].title
        );
        assert_eq!(found[3].evidence["rotation_identity"], json!(true));
    }

    #[test]
    fn stays_quiet_on_removals_other_updates_and_failures() {
        let events = vec![
            // A secret removed: logged under the same name, the key list shrinks.
            secret_added("q1", 0, CERTS, &[SECRET_OLD, SECRET_NEW], &[SECRET_OLD]).build(),
            // `Update application` changing something else.
            audit("q2", "Update application", 1)
                .category("ApplicationManagement")
                .target("Application", APP_OBJECT, "Contoso Mail Archiver")
                .modified(
                    "AppAddress",
                    Some("[]"),
                    Some("[{\"Address\":\"https://x\"}]"),
                )
                .build(),
            // `Update application` with the same keys.
            secret_added("q3", 2, "Update application", &[SECRET_OLD], &[SECRET_OLD]).build(),
            secret_added("q4", 3, CERTS, &[], &[SECRET_NEW])
                .failed()
                .build(),
            audit("q5", "Remove service principal credentials", 4)
                .category("ApplicationManagement")
                .target("ServicePrincipal", SP_OBJECT, "Contoso Mail Archiver")
                .modified("KeyDescription", Some(&keys(&[SECRET_OLD])), Some("[]"))
                .build(),
        ];
        let found = run(ID, DetectConfig::default(), &events);
        assert!(found.is_empty(), "{:#?}", snapshot(&found));
    }

    #[test]
    fn application_state_is_bounded_evicted_and_counted() {
        let config = DetectConfig::default();
        let mut state = crate::state::State::default();
        let before = state.approx_bytes();
        for i in 0..40 {
            let e = secret_added(&format!("m{i}"), i, CERTS, &[], &[SECRET_NEW])
                .by_user(&format!("admin{i}@contoso.com"))
                .build();
            state.update(&config, &e);
        }
        state.update(&config, &mail_consent(50));
        let t = state.tenants.get(TENANT).unwrap();
        let s = state
            .apps
            .get(&(t, crate::keys::key128(APP_OBJECT)))
            .unwrap();
        assert_eq!(s.managers.len(), crate::state::MAX_APP_MANAGERS);
        assert!(state.approx_bytes() > before);
        // The name links the application object with the grant to its service principal.
        let h = state.app_history(
            TENANT,
            &apps::AppRef {
                object_id: Some(APP_OBJECT.into()),
                app_id: None,
                name: None,
            },
            None,
        );
        assert!(h.permissions.is_empty());
        let h = state.app_history(
            TENANT,
            &apps::AppRef {
                object_id: Some(APP_OBJECT.into()),
                app_id: Some(APP_ID.into()),
                name: None,
            },
            crate::keys::key128(&uid("admin39@contoso.com")).into(),
        );
        assert_eq!(h.permissions.len(), 1);
        assert!(h.managed_by_actor);
        // 31 days later everything is gone.
        state.update(
            &config,
            &audit("late", "Update device", 31 * 1440 + 60).build(),
        );
        state.evict();
        assert!(state.apps.is_empty());
    }
}
