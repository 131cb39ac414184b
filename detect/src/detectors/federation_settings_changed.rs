//! `federation-settings-changed`: see [`DOC`] for what it detects and why.
//!
//! Record shapes follow Microsoft Learn "Microsoft Entra audit log activity reference"
//! (category DirectoryManagement: `Set domain authentication`, `Set federation settings on domain`,
//! `Verify domain`) and "Monitor changes to federation configuration in Microsoft Entra ID",
//! which names `Set domain authentication` and `Set federation settings on domain` as the audit
//! events of a federation change. The domain's authentication type is the `LiveType` modified
//! property (`Managed` / `Federated`), or `AuthenticationType` as Graph's `domain` resource names it.

use entrawatch_ingest::model::{Audit, Body, Event, Kind};
use serde_json::{Map, json};

use super::{actor_ip, actor_name, actor_principal, modified_list, modified_pair, succeeded};
use crate::detector::{Context, Detector};
use crate::finding::{Finding, Severity};

pub const ID: &str = "federation-settings-changed";

/// The modified properties that carry a domain's authentication type, in the order they are read.
const AUTH_PROPERTIES: [&str; 2] = ["LiveType", "AuthenticationType"];

/// User documentation, printed by `entrawatch rules federation-settings-changed`.
pub const DOC: &str = r#"## What it detects
A successful directory audit that makes a domain federated or changes how a federated domain
trusts its identity provider:
- `Set domain authentication` to federated (the authentication type, `LiveType` or
  `AuthenticationType` in the modified properties, is new `Federated`; a record without the
  property fires too, because the activity exists to switch a domain's authentication);
- `Set federation settings on domain` (issuer URI, sign-in URLs, signing certificate of the
  external identity provider);
- `Verify domain` whose modified properties show the domain verified as `Federated` (a newly
  added domain brought in straight as federated).

All fire critical. Converting a domain back to managed (`Set domain authentication` with new
`Managed`), adding an unverified domain, and verifying a domain as managed do not fire.

## Why it matters
A federated domain sends its users' sign-ins to an identity provider the tenant trusts. Whoever
controls that provider, or its token-signing certificate, can mint tokens for any user of the
domain, Global Administrators included, with any MFA claim, and no password or sign-in log in
Entra records the forgery as a failure. Attackers (Solorigate, Octo Tempest) add their own
federated domain or a second signing certificate to keep access that survives password resets.
MITRE ATT&CK T1484.002 (Domain or Tenant Policy Modification: Trust Modification).

## Signals used
`activityDisplayName`, `result`, the domain target's `displayName`, the modified properties
(`LiveType` / `AuthenticationType` old and new, and every other property as evidence:
issuer URI, sign-in URLs, certificates cut to 256 characters), `initiatedBy` and its
`ipAddress`, `correlationId`.

## Example
At 02:10 `svc-sync@contoso.com`, signing in from an unfamiliar address, runs `Set domain
authentication` on `contoso-login.com` from `Managed` to `Federated`, then `Set federation
settings on domain` with an issuer URI on an unknown host: both fire critical with the actor as
the principal, the domain and the old and new values in the evidence.

## Known false positives and tuning
A planned AD FS or third-party IdP rollout, a certificate rollover on an AD FS farm (`Set
federation settings on domain` with a new `NextSigningCertificate`), and Microsoft Entra Connect
configuring federation. Confirm against the change ticket and the IdP owner. Allow-list the
hybrid identity service account that performs rollovers by object id or UPN under
`[detect.allow.federation-settings-changed]` only if its rollovers are expected and monitored
elsewhere.

## References
Microsoft Learn: "Microsoft Entra audit log activity reference" (DirectoryManagement), "Monitor
changes to federation configuration in your Microsoft Entra ID", "domain resource type"
(`authenticationType`), "Set-MsolDomainAuthentication", and the Microsoft incident response
guidance on Solorigate (forged SAML tokens).
"#;

#[derive(Debug, Clone, Copy, Default)]
pub struct FederationSettingsChanged;

/// The old and new authentication type, from the first property of [`AUTH_PROPERTIES`] present.
fn authentication(a: &Audit) -> Option<(Option<&str>, Option<&str>)> {
    AUTH_PROPERTIES.iter().find_map(|p| modified_pair(a, p))
}

/// Whether an authentication type value says federated (values come as `Federated` or as list
/// text `["Federated"]`).
fn is_federated(value: &str) -> bool {
    value.to_ascii_lowercase().contains("federated")
}

/// The domain the audit is about: the first target with a name, else the `Name` / `DomainName`
/// modified property.
fn domain(a: &Audit) -> String {
    a.target_resources
        .iter()
        .find_map(|t| t.display_name.as_deref().filter(|n| !n.trim().is_empty()))
        .or_else(|| {
            ["DomainName", "Name"]
                .iter()
                .find_map(|p| modified_pair(a, p).and_then(|(_, new)| new))
        })
        .unwrap_or("an unnamed domain")
        .to_owned()
}

/// A value for titles: list text such as `["Federated"]` as `Federated`.
fn plain(value: &str) -> &str {
    value.trim_matches(|c: char| c == '[' || c == ']' || c == '"' || c.is_whitespace())
}

impl Detector for FederationSettingsChanged {
    fn id(&self) -> &'static str {
        ID
    }

    fn doc(&self) -> &'static str {
        DOC
    }

    fn default_severity(&self) -> Severity {
        Severity::Critical
    }

    fn kinds(&self) -> &'static [Kind] {
        &[Kind::Audit]
    }

    fn observe(&self, _ctx: &Context<'_>, event: &Event, out: &mut Vec<Finding>) {
        let Body::Audit(a) = &event.body else { return };
        let activity = a.activity_display_name.trim();
        let is = |name: &str| activity.eq_ignore_ascii_case(name);
        let auth = authentication(a);
        let new_auth = auth.and_then(|(_, new)| new);
        let old_auth = auth.and_then(|(old, _)| old);
        let what = if is("Set domain authentication") {
            // A domain converted to managed takes trust away from an external IdP.
            if new_auth.is_some_and(|v| !is_federated(v)) {
                return;
            }
            "set the authentication of"
        } else if is("Set federation settings on domain") {
            "changed the federation settings of"
        } else if is("Verify domain") {
            if !new_auth.is_some_and(is_federated) {
                return;
            }
            "verified as federated"
        } else {
            return;
        };
        if !succeeded(a) {
            return;
        }
        let domain = domain(a);
        let tenant = &event.meta.tenant_id;
        let actor = actor_name(a);
        let from = actor_ip(a)
            .map(|ip| format!(" from {ip}"))
            .unwrap_or_default();
        let change = match (old_auth.map(plain), new_auth.map(plain)) {
            (Some(old), Some(new)) => format!(" ({old} to {new})"),
            (None, Some(new)) => format!(" (now {new})"),
            _ => String::new(),
        };
        let title = if what == "verified as federated" {
            format!("Domain {domain} verified as federated by {actor}")
        } else {
            format!("{actor} {what} domain {domain}{change}")
        };
        let summary = format!(
            "{actor}{from} ran {activity} on domain {domain}{change} in tenant {tenant}. Users of a federated \
             domain sign in at the identity provider it names; whoever holds that provider or its signing \
             certificate can issue tokens for any of them, admins included, with any MFA claim. Confirm the \
             change with the identity team's ticket; if it is not expected, convert the domain back to \
             managed, remove the federation configuration, revoke sessions of the domain's privileged users, \
             and review {actor}'s account and recent changes."
        );
        let mut evidence = Map::new();
        evidence.insert("activity".into(), json!(activity));
        evidence.insert("domain".into(), json!(domain));
        evidence.insert("authentication_old".into(), json!(old_auth));
        evidence.insert("authentication_new".into(), json!(new_auth));
        evidence.insert("modified_properties".into(), json!(modified_list(a)));
        evidence.insert("actor".into(), json!(actor));
        evidence.insert("ip_address".into(), json!(actor_ip(a)));
        evidence.insert("correlation_id".into(), json!(a.correlation_id));
        out.push(Finding {
            rule: ID,
            severity: Severity::Critical,
            tenant_id: tenant.to_string(),
            principal: actor_principal(a),
            time: event.meta.time,
            event_ids: vec![event.meta.id.to_string()],
            title,
            summary,
            evidence,
            mitre: &["T1484.002"],
            ip: actor_ip(a),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DetectConfig;
    use crate::finding::PrincipalKind;
    use crate::testkit::*;

    /// A DirectoryManagement record on a domain target, as the Core Directory writes it (list
    /// text values for `LiveType`).
    fn domain_audit(id: &str, activity: &str, minute: i64, domain: &str) -> AuditB {
        audit(id, activity, minute)
            .category("DirectoryManagement")
            .by_user("svc-sync@contoso.com")
            .with(|a| {
                a.initiated_by.user.as_mut().unwrap().ip_address = Some("198.51.100.77".into());
                a.correlation_id = Some("6f1d0c1e-7a0b-4c57-9a3e-1c2d3e4f5a6b".into());
            })
            .target("Other", &format!("dom-{domain}"), domain)
    }

    #[test]
    fn fires_on_federating_a_domain_and_changing_its_federation() {
        let events = vec![
            domain_audit("f1", "Set domain authentication", 0, "contoso-login.com")
                .modified("LiveType", Some("[\"Managed\"]"), Some("[\"Federated\"]"))
                .build(),
            domain_audit(
                "f2",
                "Set federation settings on domain",
                1,
                "contoso-login.com",
            )
            .modified(
                "IssuerUri",
                None,
                Some("[\"http://sts.contoso-login.com/adfs/services/trust\"]"),
            )
            .modified(
                "PassiveLogOnUri",
                None,
                Some("[\"https://sts.contoso-login.com/adfs/ls/\"]"),
            )
            .build(),
            // A new domain verified straight as federated, by an app.
            domain_audit("f3", "Verify domain", 2, "fabrikam-sso.net")
                .by_app("Contoso Provisioning")
                .modified("AuthenticationType", None, Some("Federated"))
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
                ("f1", Severity::Critical),
                ("f2", Severity::Critical),
                ("f3", Severity::Critical)
            ]
        );
        assert_eq!(found[0].evidence["domain"], json!("contoso-login.com"));
        assert_eq!(
            found[0].evidence["authentication_old"],
            json!("[\"Managed\"]")
        );
        assert_eq!(found[0].principal.id, uid("svc-sync@contoso.com"));
        assert_eq!(found[0].ip.as_deref(), Some("198.51.100.77"));
        assert_eq!(found[2].principal.kind, PrincipalKind::ServicePrincipal);
        assert_eq!(found[0].mitre, &["T1484.002"]);
        insta::assert_json_snapshot!("federation_settings_changed_fires", snapshot(&found));
    }

    #[test]
    fn stays_quiet_on_managed_domains_failures_and_other_domain_activities() {
        let events = vec![
            // Converting back to managed.
            domain_audit("q1", "Set domain authentication", 0, "contoso.com")
                .modified("LiveType", Some("[\"Federated\"]"), Some("[\"Managed\"]"))
                .build(),
            // The benign look-alike: a new domain added, then verified as managed.
            domain_audit("q2", "Add unverified domain", 1, "contoso.co.uk").build(),
            domain_audit("q3", "Verify domain", 2, "contoso.co.uk")
                .modified("AuthenticationType", None, Some("Managed"))
                .build(),
            domain_audit("q4", "Verify domain", 3, "contoso.de").build(),
            domain_audit("q5", "Set federation settings on domain", 4, "contoso.com")
                .failed()
                .build(),
            domain_audit("q6", "Update domain", 5, "contoso.com")
                .modified("IsDefault", Some("false"), Some("true"))
                .build(),
        ];
        let found = run(ID, DetectConfig::default(), &events);
        assert!(found.is_empty(), "{:#?}", snapshot(&found));
    }
}
