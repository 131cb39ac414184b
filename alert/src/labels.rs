//! Alert labels: the flat name/value view of an alert that routes, silences and inhibit rules match on.
//!
//! What comes in: an [`AlertRecord`] and, when the tenant is configured, its `labels` table from
//! `[[tenants]]`. What goes out: [`Labels`], a sorted map with the built-in labels below plus the
//! tenant's own labels. A tenant label never overrides a built-in one (a tenant that sets
//! `labels = { rule = "x" }` keeps the alert's real `rule`).
//!
//! | label | value |
//! | --- | --- |
//! | `severity` | `info`, `low`, `medium`, `high` or `critical` |
//! | `rule` | the rule id, e.g. `brute-force` |
//! | `tenant_id` | the tenant GUID |
//! | `tenant` | the tenant's configured name (absent when unknown) |
//! | `principal_kind` | `user`, `servicePrincipal`, `ip` or `tenant` |
//! | `principal` | the object id; the IP for IP-keyed rules; the tenant id for tenant-level rules |
//! | `upn` | the user principal name (absent when unknown) |
//! | `home_tenant_id` | the principal's home tenant (absent when unknown) |
//!
//! A matcher on an absent label sees the empty string, as in Alertmanager.

use std::collections::BTreeMap;

use entrawatch_detect::PrincipalKind;

use crate::record::AlertRecord;

/// Label name to value, sorted by name.
pub type Labels = BTreeMap<String, String>;

/// The labels [`labels`] sets itself; tenant labels with these names are ignored.
pub const BUILTIN_LABELS: [&str; 8] = [
    "severity",
    "rule",
    "tenant_id",
    "tenant",
    "principal_kind",
    "principal",
    "upn",
    "home_tenant_id",
];

/// The label value of a principal kind (the alert record's JSON spelling).
pub fn principal_kind_str(kind: PrincipalKind) -> &'static str {
    match kind {
        PrincipalKind::User => "user",
        PrincipalKind::ServicePrincipal => "servicePrincipal",
        PrincipalKind::Ip => "ip",
        PrincipalKind::Tenant => "tenant",
    }
}

/// Whether `name` is a valid label name: `[A-Za-z_][A-Za-z0-9_]*` (Prometheus' rule).
pub fn is_valid_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() || c == '_' => {}
        _ => return false,
    }
    chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The labels of an alert: the built-ins, then the tenant's configured labels where they do not
/// collide with a built-in name.
pub fn labels(alert: &AlertRecord, tenant_labels: Option<&BTreeMap<String, String>>) -> Labels {
    let mut out = Labels::new();
    let mut set = |k: &str, v: &str| {
        out.insert(k.to_owned(), v.to_owned());
    };
    set("severity", alert.severity.as_str());
    set("rule", &alert.rule);
    set("tenant_id", &alert.tenant_id);
    if let Some(name) = &alert.tenant_name {
        set("tenant", name);
    }
    set("principal_kind", principal_kind_str(alert.principal.kind));
    set("principal", &alert.principal.id);
    if let Some(upn) = &alert.principal.upn {
        set("upn", upn);
    }
    if let Some(home) = &alert.principal.home_tenant_id {
        set("home_tenant_id", home);
    }
    for (k, v) in tenant_labels.into_iter().flatten() {
        if !BUILTIN_LABELS.contains(&k.as_str()) {
            out.insert(k.clone(), v.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};
    use entrawatch_detect::{Principal, Severity};
    use serde_json::Map;

    fn alert(kind: PrincipalKind, upn: Option<&str>, tenant_name: Option<&str>) -> AlertRecord {
        let t = Utc.with_ymd_and_hms(2026, 8, 1, 12, 0, 0).unwrap();
        AlertRecord {
            id: "ew-0000000000000001".into(),
            rule: "brute-force".into(),
            severity: Severity::High,
            tenant_id: "11111111-1111-1111-1111-111111111111".into(),
            tenant_name: tenant_name.map(str::to_owned),
            principal: Principal {
                kind,
                id: "aaaaaaaa-0000-0000-0000-000000000001".into(),
                upn: upn.map(str::to_owned),
                home_tenant_id: None,
            },
            title: "t".into(),
            summary: "s".into(),
            first_seen: t,
            last_seen: t,
            count: 1,
            event_ids: vec![],
            evidence: Map::new(),
            mitre: vec![],
        }
    }

    #[test]
    fn builtins_and_optional_labels() {
        let a = alert(
            PrincipalKind::User,
            Some("ada@contoso.com"),
            Some("contoso"),
        );
        let l = labels(&a, None);
        let got: Vec<(&str, &str)> = l.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(
            got,
            vec![
                ("principal", "aaaaaaaa-0000-0000-0000-000000000001"),
                ("principal_kind", "user"),
                ("rule", "brute-force"),
                ("severity", "high"),
                ("tenant", "contoso"),
                ("tenant_id", "11111111-1111-1111-1111-111111111111"),
                ("upn", "ada@contoso.com"),
            ]
        );

        let a = alert(PrincipalKind::ServicePrincipal, None, None);
        let l = labels(&a, None);
        assert_eq!(l["principal_kind"], "servicePrincipal");
        assert!(!l.contains_key("upn") && !l.contains_key("tenant"));
        assert!(!l.contains_key("home_tenant_id"));
    }

    #[test]
    fn tenant_labels_never_override_builtins() {
        let a = alert(PrincipalKind::Ip, None, Some("contoso"));
        let tl: BTreeMap<String, String> = [("tier", "gold"), ("rule", "spoofed"), ("tenant", "x")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        let l = labels(&a, Some(&tl));
        assert_eq!(l["tier"], "gold");
        assert_eq!(l["rule"], "brute-force");
        assert_eq!(l["tenant"], "contoso");
        assert_eq!(l["principal_kind"], "ip");
    }

    #[test]
    fn builtin_tenant_label_ignored_even_when_alert_lacks_it() {
        // `tenant` is built-in: an unnamed tenant does not get it from its labels table either.
        let a = alert(PrincipalKind::User, None, None);
        let tl: BTreeMap<String, String> = [("tenant".to_owned(), "x".to_owned())].into();
        assert!(!labels(&a, Some(&tl)).contains_key("tenant"));
    }

    #[test]
    fn label_names() {
        for ok in ["a", "_x", "tenant_id", "A9"] {
            assert!(is_valid_label_name(ok), "{ok}");
        }
        for bad in ["", "9a", "a-b", "a.b", "é", " a"] {
            assert!(!is_valid_label_name(bad), "{bad}");
        }
    }
}
