//! One file per detector; [`crate::registry`] lists them.
//!
//! This file holds what several detectors share: for sign-ins, the finding about a sign-in
//! (`about_sign_in`), how titles name its principal, roles, application and place; for audits,
//! who initiated one (`actor_name`, `actor_ip`), whether it succeeded (`succeeded`), and the
//! evidence that its initiator is a partner technician (`partner_initiator`).

pub mod account_takeover_chain;
pub mod admin_agents_membership_changed;
pub mod admin_collaboration_use;
pub mod app_credential_added;
pub mod break_glass_account_used;
pub mod brute_force;
pub mod conditional_access_weakened;
pub mod consent_grant_risky;
pub mod cross_tenant_access_changed;
pub mod device_code_sign_in;
pub mod disabled_account_sign_in;
pub mod federation_settings_changed;
pub mod gdap_relationship_risky;
pub mod impossible_travel;
pub mod legacy_auth_sign_in;
pub mod log_source_silent;
pub mod mfa_fatigue;
pub mod mfa_not_satisfied;
pub mod new_country_sign_in;
pub mod partner_created_account;
pub mod partner_new_tenant;
pub mod partner_sensitive_change;
pub mod partner_tenant_fanout;
pub mod password_spray;
pub mod privileged_role_assigned;
pub mod risky_sign_in;
pub mod risky_user;
pub mod security_info_changed_privileged;
pub mod session_token_replay;
pub mod sign_in_after_account_disabled;
pub mod unmanaged_device_privileged;
pub mod weak_mfa_privileged;

use entrawatch_ingest::Event;
use entrawatch_ingest::model::{Audit, AuditResult, SignIn};

use crate::config::DetectConfig;
use crate::detector::Context;
use crate::finding::{Finding, Principal, PrincipalKind, Severity};

/// Password-check failure codes (`password-spray`, `brute-force`): 50126 invalid username or
/// password, 50053 locked by smart lockout, 50055 expired password, 50056 invalid or missing
/// password.
pub const PASSWORD_FAILURE_CODES: [i64; 4] = [50126, 50053, 50055, 50056];

/// Whether `text` contains `lower` (lower-case ASCII) in any ASCII casing, without copying
/// `text` ([`contains_any_caseless`] of one).
pub(crate) fn contains_caseless(text: &str, lower: &str) -> bool {
    contains_any_caseless(text, &[lower])
}

/// Whether `text` contains any of `lowers` (lower-case ASCII) in any ASCII casing, without
/// copying `text`: the candidates are the places of a first letter in either case, found a
/// vector at a time, one scan per distinct first letter. For fields read on every sign-in (user
/// agents, app names).
pub(crate) fn contains_any_caseless(text: &str, lowers: &[&str]) -> bool {
    let text = text.as_bytes();
    let first = |n: &&str| n.as_bytes().first().copied();
    lowers.iter().enumerate().any(|(i, lower)| {
        let Some(letter) = first(lower) else {
            return true;
        };
        if lowers[..i].iter().any(|n| first(n) == Some(letter)) {
            // Scanned with an earlier needle of the same first letter.
            return false;
        }
        let same = || {
            (lowers[i..].iter())
                .filter(move |n| first(n) == Some(letter))
                .map(|n| n.as_bytes())
        };
        let shortest = same().map(<[u8]>::len).min().unwrap_or(1);
        let Some(last_start) = text.len().checked_sub(shortest) else {
            return false;
        };
        memchr::memchr2_iter(letter, letter.to_ascii_uppercase(), &text[..=last_start]).any(|at| {
            same().any(|n| {
                text.get(at + 1..at + n.len())
                    .is_some_and(|t| t.eq_ignore_ascii_case(&n[1..]))
            })
        })
    })
}

/// Calls `f` with `text` in ASCII lower case, copied into a buffer on the stack when it fits (a
/// heap copy only for longer text): sign-in rules match text in any casing on every sign-in, and
/// a heap copy for each would be an allocation per event.
pub(crate) fn with_ascii_lowercase<R>(text: &str, f: impl FnOnce(&str) -> R) -> R {
    let mut buf = [0u8; 256];
    if let Some(copy) = buf.get_mut(..text.len()) {
        copy.copy_from_slice(text.as_bytes());
        copy.make_ascii_lowercase();
        // Changing the case of ASCII letters keeps UTF-8 valid, so this is always `Ok`.
        if let Ok(lower) = std::str::from_utf8(copy) {
            return f(lower);
        }
    }
    f(&text.to_ascii_lowercase())
}

/// What a finding about the sign-in `s` of `event` takes from them: the event's tenant, time and
/// id, the signing-in principal and the source IP. The rest is for the detector to fill in with
/// struct update syntax: `Finding { rule, severity, title, .., ..about_sign_in(event, s) }`.
pub(crate) fn about_sign_in(event: &Event, s: &SignIn) -> Finding {
    Finding {
        rule: "",
        severity: Severity::Info,
        tenant_id: event.meta.tenant_id.to_string(),
        principal: sign_in_principal(s),
        time: event.meta.time,
        event_ids: vec![event.meta.id.to_string()],
        title: String::new(),
        summary: String::new(),
        evidence: serde_json::Map::new(),
        mitre: &[],
        ip: s.ip_address.as_deref().map(str::to_owned),
    }
}

/// The user principal of a sign-in (partner technicians keep their home tenant).
pub(crate) fn sign_in_principal(s: &SignIn) -> Principal {
    Principal {
        kind: PrincipalKind::User,
        id: s
            .user_id
            .as_deref()
            .or(s.user_principal_name.as_deref())
            .unwrap_or("(unknown)")
            .to_owned(),
        upn: s.user_principal_name.as_deref().map(str::to_owned),
        home_tenant_id: s
            .home_tenant_id
            .as_deref()
            .filter(|h| Some(*h) != s.resource_tenant_id.as_deref())
            .map(str::to_owned),
    }
}

/// The privileged roles the signing-in user holds in this tenant, by name.
pub(crate) fn role_names(ctx: &Context<'_>, tenant: &str, s: &SignIn) -> Vec<String> {
    s.user_id
        .as_deref()
        .map(|id| names_of_roles(&ctx.directory.roles_of(tenant, id)))
        .unwrap_or_default()
}

/// Role template ids to display names (unknown ids as they are).
pub(crate) fn names_of_roles(template_ids: &[String]) -> Vec<String> {
    template_ids
        .iter()
        .map(|r| DetectConfig::role_name(r).map_or_else(|| r.clone(), str::to_owned))
        .collect()
}

/// The application of a sign-in: its name, else its id.
pub(crate) fn app_name(s: &SignIn) -> String {
    s.app_display_name
        .as_deref()
        .or(s.app_id.as_deref())
        .unwrap_or("an application")
        .to_owned()
}

/// Seconds since the epoch as `2026-10-01T10:00:00Z`.
pub(crate) fn time_text(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

/// `1 user`, `3 users`.
pub(crate) fn plural(n: u32, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// `Azor, IL`, `IL`, or `unknown location`.
pub(crate) fn place(s: &SignIn) -> String {
    match (&s.location.city, &s.location.country_or_region) {
        (Some(city), Some(country)) => format!("{city}, {country}"),
        (None, Some(country)) => country.to_string(),
        (Some(city), None) => city.to_string(),
        (None, None) => "unknown location".to_owned(),
    }
}

/// How titles name the actor: `Partner technician <name>`, `Privileged account <name>`, or the
/// name alone.
pub(crate) fn actor(name: String, partner: bool, privileged: bool) -> String {
    if partner {
        format!("Partner technician {name}")
    } else if privileged {
        format!("Privileged account {name}")
    } else {
        name
    }
}

/// The span of history a novelty rule speaks for: "30 days" once the history covers the retention
/// window, else the days it does cover ("the 9 days watched"), so an alert never claims more
/// history than entrawatch has.
pub(crate) fn history_span(now: i64, first_seen: i64) -> String {
    let days = (now - first_seen).max(0) / 86_400;
    if days >= crate::state::RETENTION_SECS / 86_400 {
        "30 days".to_owned()
    } else {
        format!("the {} watched", plural(days as u32, "day", "days"))
    }
}

/// Whether ID Protection flagged the sign-in's network as anonymising (Tor, anonymous proxies) or
/// malicious: the flag's name when it did (`device-code-sign-in`, `session-token-replay`).
pub(crate) fn hostile_network(s: &SignIn) -> Option<&str> {
    s.risk_event_types
        .iter()
        .map(|t| t.as_str())
        .find(|t| contains_caseless(t, "anonymi") || contains_caseless(t, "maliciousip"))
}

/// Who, for titles: the UPN, else the display name, else the object id.
pub(crate) fn who(s: &SignIn) -> String {
    who_str(s).to_owned()
}

/// [`who`], borrowed.
pub(crate) fn who_str(s: &SignIn) -> &str {
    s.user_principal_name
        .as_deref()
        .or(s.user_display_name.as_deref())
        .or(s.user_id.as_deref())
        .unwrap_or("an unknown user")
}

/// Why an audit's initiator looks like a partner technician acting in a customer tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PartnerActor {
    /// The partner's home tenant, when the audit or the sign-in history names it.
    pub home_tenant_id: Option<String>,
    /// Its name, when the audit carries `homeTenantName`.
    pub home_tenant_name: Option<String>,
    pub reasons: Vec<&'static str>,
}

/// The partner evidence on an audit's initiating user acting in `tenant`, if there is any.
pub(crate) fn partner_initiator(
    ctx: &Context<'_>,
    tenant: &str,
    a: &Audit,
) -> Option<PartnerActor> {
    let user = a.initiated_by.user.as_ref()?;
    let mut reasons = Vec::new();
    let mut home = None;
    if let Some(h) = user
        .home_tenant_id
        .as_deref()
        .filter(|h| !h.eq_ignore_ascii_case(tenant))
    {
        reasons.push("home tenant is another tenant");
        home = Some(h.to_owned());
    }
    if user
        .user_principal_name
        .as_deref()
        .is_some_and(is_technician_upn)
    {
        reasons.push("GDAP technician user name (user_<hex>@)");
    }
    if let Some(h) = user
        .id
        .as_deref()
        .and_then(|id| ctx.state.technician_home_in(tenant, id))
    {
        reasons.push("signed in to this tenant as a service provider");
        home.get_or_insert_with(|| h.to_owned());
    }
    let home_tenant_name = user.home_tenant_name.clone().filter(|_| home.is_some());
    (!reasons.is_empty()).then_some(PartnerActor {
        home_tenant_id: home,
        home_tenant_name: home_tenant_name.as_deref().map(str::to_owned),
        reasons,
    })
}

/// `user_` followed by 32 hex digits and `@`: the name GDAP gives a technician in customer logs.
pub(crate) fn is_technician_upn(upn: &str) -> bool {
    let Some((local, _)) = upn.split_once('@') else {
        return false;
    };
    local.len() == 37
        && local
            .get(..5)
            .is_some_and(|p| p.eq_ignore_ascii_case("user_"))
        && local[5..].bytes().all(|b| b.is_ascii_hexdigit())
}

/// Who initiated an audit: the user's UPN, display name or id, else the app's name or id.
pub(crate) fn actor_name(a: &Audit) -> String {
    let user = a.initiated_by.user.as_ref().and_then(|u| {
        u.user_principal_name
            .clone()
            .or_else(|| u.display_name.clone())
            .or_else(|| u.id.clone())
    });
    let app = || {
        a.initiated_by.app.as_ref().and_then(|p| {
            p.display_name
                .clone()
                .or_else(|| p.service_principal_name.clone())
                .or_else(|| p.app_id.clone())
        })
    };
    user.or_else(app)
        .unwrap_or_else(|| "an unknown actor".into())
        .to_string()
}

/// The initiating user's source address.
pub(crate) fn actor_ip(a: &Audit) -> Option<String> {
    a.initiated_by
        .user
        .as_ref()
        .and_then(|u| u.ip_address.as_deref().map(str::to_owned))
}

/// The initiator of an audit as a finding's principal: the user (object id, else UPN), else the
/// app (service principal object id, else app id, else name). Tenant-setting rules name the actor
/// because the changed object (a domain, a policy) is not a principal.
pub(crate) fn actor_principal(a: &Audit) -> Principal {
    if let Some(u) = a.initiated_by.user.as_ref()
        && let Some(id) = u.id.as_deref().or(u.user_principal_name.as_deref())
    {
        return Principal {
            kind: PrincipalKind::User,
            id: id.to_owned(),
            upn: u.user_principal_name.as_deref().map(str::to_owned),
            home_tenant_id: u.home_tenant_id.as_deref().map(str::to_owned),
        };
    }
    let id = a
        .initiated_by
        .app
        .as_ref()
        .and_then(|p| {
            p.service_principal_id
                .as_deref()
                .or(p.app_id.as_deref())
                .or(p.display_name.as_deref())
        })
        .unwrap_or("(unknown)");
    Principal {
        kind: PrincipalKind::ServicePrincipal,
        id: id.to_owned(),
        upn: None,
        home_tenant_id: None,
    }
}

/// Every modified property of an audit as `{property, old, new}` (values longer than 256
/// characters cut, as signing certificates are), for evidence.
pub(crate) fn modified_list(a: &Audit) -> Vec<serde_json::Value> {
    let cut = |v: Option<&str>| {
        v.map(|v| match v.char_indices().nth(256) {
            Some((i, _)) => format!("{}…", &v[..i]),
            None => v.to_owned(),
        })
    };
    a.target_resources
        .iter()
        .flat_map(|t| &t.modified_properties)
        .map(|p| {
            serde_json::json!({
                "property": p.display_name.as_deref(),
                "old": cut(p.old_value.as_deref()),
                "new": cut(p.new_value.as_deref()),
            })
        })
        .collect()
}

/// The old and new value of a modified property on any target (name matched in any casing).
pub(crate) fn modified_pair<'a>(
    a: &'a Audit,
    name: &str,
) -> Option<(Option<&'a str>, Option<&'a str>)> {
    a.target_resources
        .iter()
        .flat_map(|t| &t.modified_properties)
        .find(|p| {
            p.display_name
                .as_deref()
                .is_some_and(|n| n.eq_ignore_ascii_case(name))
        })
        .map(|p| (p.old_value.as_deref(), p.new_value.as_deref()))
}

/// A successful audit (records without a result are taken as successful, as the state does).
pub(crate) fn succeeded(a: &Audit) -> bool {
    a.result.as_ref().is_none_or(|r| *r == AuditResult::Success)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `contains_caseless` answers as lower-casing both and `str::contains` does, for needles at
    /// every place of texts in every casing, texts shorter than the needle, non-ASCII text.
    #[test]
    fn caseless_contains_is_contains_of_the_lower_cased_text() {
        let texts = [
            "",
            "b",
            "BAV2ROPC",
            "Mozilla/5.0 BAV2ROPC",
            "xbav2ropC",
            "bav2rop",
            "éBaV2RoPcé",
            "CBAInPROD",
            "cbaintar!",
            "Microsoft Teams",
            "Outlook Mobile",
            "Exchange PowerShell",
            "bbbbav2ropc",
            "anonymizedIPAddress",
            "İbav2ropc",
        ];
        let needles = [
            "bav2ropc",
            "cbainprod",
            "cbaintar",
            "teams",
            "powershell",
            "anonymi",
            "b",
            "",
        ];
        for text in texts {
            for needle in needles {
                assert_eq!(
                    contains_caseless(text, needle),
                    text.to_ascii_lowercase().contains(needle),
                    "{text:?} {needle:?}"
                );
            }
            for (i, a) in needles.iter().enumerate() {
                for b in &needles[i..] {
                    let any = [*a, *b, "cbaintar"];
                    assert_eq!(
                        contains_any_caseless(text, &any),
                        any.iter().any(|n| text.to_ascii_lowercase().contains(n)),
                        "{text:?} {any:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn technician_names() {
        assert!(is_technician_upn(
            "user_5f0c2a9e8b7d4c3a9e1f2b3c4d5e6f70@northwindcsp.onmicrosoft.com"
        ));
        assert!(!is_technician_upn("user_5f0c@northwind.example"));
        assert!(!is_technician_upn(
            "user_5f0c2a9e8b7d4c3a9e1f2b3c4d5e6fzz@x.com"
        ));
        assert!(!is_technician_upn("user_5f0c2a9e8b7d4c3a9e1f2b3c4d5e6f70"));
    }
}
