//! How application audits are read, once for the rules and the state that need them
//! (`consent-grant-risky`, `app-credential-added`): the permissions a grant gives an application,
//! the credentials an update adds to one, and the ids an application goes by.
//!
//! Record shapes follow Microsoft Learn "Microsoft Entra audit log activity reference"
//! (ApplicationManagement): `Consent to application` (`ConsentAction.Permissions`), `Add delegated
//! permission grant` (the resource service principal first, with `DelegatedPermissionGrant.Scope`
//! and `DelegatedPermissionGrant.ConsentType`, then the client), `Add app role assignment to
//! service principal` (the resource first, with `AppRole.Value`, `AppRole.Id` and the client in
//! `ServicePrincipal.ObjectID`, `ServicePrincipal.AppId`, `ServicePrincipal.DisplayName`), and
//! `Update application – Certificates and secrets management`, `Add service principal
//! credentials`, `Update application` / `Update service principal` with the key credentials in
//! `KeyDescription` (`[KeyIdentifier=<guid>,KeyType=Password,KeyUsage=Verify,DisplayName=<name>]`
//! per key).

use entrawatch_ingest::model::{Audit, TargetResource};

use crate::detectors::modified_pair;

/// An activity name as compared here, without allocating (every audit is asked): lower case, any
/// dash (`–`, `—`, `-`) as `-`, runs of whitespace as one space, no space at either end.
fn normalized_chars(name: &str) -> impl Iterator<Item = char> + '_ {
    name.split_whitespace().enumerate().flat_map(|(i, word)| {
        (i > 0)
            .then_some(' ')
            .into_iter()
            .chain(word.chars().flat_map(|c| {
                let c = match c {
                    '\u{2010}'..='\u{2015}' | '\u{2212}' => '-',
                    c => c,
                };
                c.to_lowercase()
            }))
    })
}

/// [`normalized_chars`] as a string.
pub fn normalized_activity(name: &str) -> String {
    normalized_chars(name).collect()
}

/// Calls `f` with [`normalized_activity`] of `name`, made on the stack for the usual name (ASCII,
/// at most 128 bytes): a byte at a time, instead of the char-by-char walk every audit would pay.
pub fn with_activity<R>(name: &str, f: impl FnOnce(&str) -> R) -> R {
    let mut buf = [0u8; 128];
    let (mut len, mut space) = (0, false);
    for &b in name.as_bytes() {
        if !b.is_ascii() {
            return f(&normalized_activity(name));
        }
        // `char::is_whitespace` of an ASCII byte: tab to carriage return, and space.
        if matches!(b, b'\t'..=b'\r' | b' ') {
            space = len > 0;
            continue;
        }
        if len + usize::from(space) >= buf.len() {
            return f(&normalized_activity(name));
        }
        if space {
            buf[len] = b' ';
            len += 1;
            space = false;
        }
        buf[len] = b.to_ascii_lowercase();
        len += 1;
    }
    // ASCII bytes only, so always UTF-8.
    f(std::str::from_utf8(&buf[..len]).unwrap_or_default())
}

/// Whether an activity name is `expected` with any dash, casing and spacing (both sides
/// normalized, so `expected` may be written as Microsoft's reference spells it).
pub fn activity_is(name: &str, expected: &str) -> bool {
    with_activity(name, |n| with_activity(expected, |e| n == e))
}

/// Which grant an audit is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantKind {
    /// `Consent to application`.
    Consent,
    /// `Add delegated permission grant`.
    Delegated,
    /// `Add app role assignment to service principal` (an application permission).
    AppRole,
}

impl GrantKind {
    pub fn of(a: &Audit) -> Option<GrantKind> {
        let name = a.activity_display_name.trim();
        if name.eq_ignore_ascii_case("Consent to application") {
            Some(GrantKind::Consent)
        } else if name.eq_ignore_ascii_case("Add delegated permission grant") {
            Some(GrantKind::Delegated)
        } else if name.eq_ignore_ascii_case("Add app role assignment to service principal") {
            Some(GrantKind::AppRole)
        } else {
            None
        }
    }
}

/// The application a record is about: its ids (object id of the service principal or of the
/// application, app id) and its name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AppRef {
    /// The object id of the service principal or application the record names.
    pub object_id: Option<String>,
    /// The app (client) id.
    pub app_id: Option<String>,
    pub name: Option<String>,
}

impl AppRef {
    /// Every id and the name, for keying the state (at most three).
    pub fn aliases(&self) -> Vec<&str> {
        [&self.object_id, &self.app_id, &self.name]
            .into_iter()
            .flatten()
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
            .collect()
    }

    /// For titles: the name, else an id.
    pub fn label(&self) -> String {
        self.name
            .clone()
            .or_else(|| self.app_id.clone())
            .or_else(|| self.object_id.clone())
            .unwrap_or_else(|| "an application".into())
    }
}

/// What a grant gave an application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub kind: GrantKind,
    /// The client application that receives the permissions.
    pub client: AppRef,
    /// The API it may now call, when the record names it (`Microsoft Graph`).
    pub resource: Option<String>,
    /// Permissions (scopes or app role values) new with this record.
    pub permissions: Vec<String>,
    /// `AllPrincipals` (a tenant-wide delegated grant).
    pub all_principals: bool,
}

fn unquote(v: &str) -> &str {
    v.trim().trim_matches('"').trim()
}

fn detail<'a>(a: &'a Audit, key: &str) -> Option<&'a str> {
    a.additional_details
        .iter()
        .find(|d| d.key.eq_ignore_ascii_case(key))
        .and_then(|d| d.value.as_deref())
        .map(unquote)
        .filter(|v| !v.is_empty())
}

fn is_kind(t: &TargetResource, kind: &str) -> bool {
    t.resource_type
        .as_deref()
        .is_some_and(|k| k.eq_ignore_ascii_case(kind))
}

fn new_value<'a>(a: &'a Audit, name: &str) -> Option<&'a str> {
    modified_pair(a, name)
        .and_then(|(_, new)| new)
        .map(unquote)
        .filter(|v| !v.is_empty())
}

/// The first GUID-looking word of a value (`TargetId.ServicePrincipalNames` lists the app id and
/// URIs).
fn first_guid(v: &str) -> Option<String> {
    v.split(|c: char| !(c.is_ascii_hexdigit() || c == '-'))
        .find(|w| entrawatch_ingest::value::is_guid(w))
        .map(str::to_owned)
}

/// The scopes in a `ConsentAction.Permissions` half: every `Scope:` list up to its `,` or `]`.
pub fn scopes_in(text: &str) -> Vec<&str> {
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

/// The scopes of a `DelegatedPermissionGrant.Scope` value: space-separated, quotes and brackets
/// dropped.
fn scope_words(v: Option<&str>) -> Vec<&str> {
    let mut out: Vec<&str> = Vec::new();
    for w in v
        .unwrap_or("")
        .split(|c: char| c.is_whitespace() || c == '"' || c == '[' || c == ']' || c == ',')
        .filter(|w| !w.is_empty())
    {
        if !out.contains(&w) {
            out.push(w);
        }
    }
    out
}

/// The grant a successful-or-not audit records, if it is one of the three grant activities.
pub fn grant(a: &Audit) -> Option<Grant> {
    let kind = GrantKind::of(a)?;
    let sp_targets: Vec<&TargetResource> = a
        .target_resources
        .iter()
        .filter(|t| is_kind(t, "ServicePrincipal"))
        .collect();
    match kind {
        GrantKind::Consent => {
            let t = sp_targets
                .first()
                .copied()
                .or_else(|| a.target_resources.first());
            let permissions = a
                .modified_new_value("ConsentAction.Permissions")
                .unwrap_or("");
            let (before, after) = permissions.split_once("=>").unwrap_or(("", permissions));
            let previous = scopes_in(before);
            Some(Grant {
                kind,
                client: AppRef {
                    object_id: t.and_then(|t| t.id.as_deref()).map(str::to_owned),
                    app_id: detail(a, "AppId").map(str::to_owned).or_else(|| {
                        new_value(a, "TargetId.ServicePrincipalNames").and_then(first_guid)
                    }),
                    name: t.and_then(|t| t.display_name.as_deref()).map(str::to_owned),
                },
                resource: None,
                permissions: scopes_in(after)
                    .into_iter()
                    .filter(|s| !previous.contains(s))
                    .map(str::to_owned)
                    .collect(),
                all_principals: after.contains("ConsentType: AllPrincipals"),
            })
        }
        GrantKind::Delegated => {
            let (old, new) = modified_pair(a, "DelegatedPermissionGrant.Scope").unwrap_or_default();
            let before = scope_words(old);
            let permissions = scope_words(new)
                .into_iter()
                .filter(|s| !before.contains(s))
                .map(str::to_owned)
                .collect();
            // The resource carries the grant's properties; the client is the other target.
            let carries = |t: &TargetResource| !t.modified_properties.is_empty();
            let resource = sp_targets.iter().find(|t| carries(t)).copied();
            let client = sp_targets
                .iter()
                .find(|t| !carries(t))
                .copied()
                .or(if sp_targets.len() == 1 {
                    sp_targets.first().copied()
                } else {
                    None
                })
                .or_else(|| a.target_resources.get(1));
            Some(Grant {
                kind,
                client: AppRef {
                    object_id: client.and_then(|t| t.id.as_deref()).map(str::to_owned),
                    app_id: None,
                    name: client
                        .and_then(|t| t.display_name.as_deref())
                        .map(str::to_owned),
                },
                resource: resource
                    .filter(|r| client.is_none_or(|c| !std::ptr::eq(*r, c)))
                    .and_then(|r| r.display_name.as_deref().or(r.id.as_deref()))
                    .map(str::to_owned),
                permissions,
                all_principals: new_value(a, "DelegatedPermissionGrant.ConsentType")
                    .is_some_and(|v| v.eq_ignore_ascii_case("AllPrincipals")),
            })
        }
        GrantKind::AppRole => {
            let role = new_value(a, "AppRole.Value").or_else(|| new_value(a, "AppRole.Id"));
            let resource = sp_targets
                .first()
                .copied()
                .or_else(|| a.target_resources.first());
            Some(Grant {
                kind,
                client: AppRef {
                    object_id: new_value(a, "ServicePrincipal.ObjectID").map(str::to_owned),
                    app_id: new_value(a, "ServicePrincipal.AppId").map(str::to_owned),
                    name: new_value(a, "ServicePrincipal.DisplayName").map(str::to_owned),
                },
                resource: resource
                    .and_then(|r| r.display_name.as_deref().or(r.id.as_deref()))
                    .map(str::to_owned),
                permissions: role.map(str::to_owned).into_iter().collect(),
                all_principals: true,
            })
        }
    }
}

/// A credential added to an application or service principal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialChange {
    pub app: AppRef,
    /// `Application` or `ServicePrincipal`.
    pub object_kind: String,
    /// The keys new with this record (`KeyType=Password,DisplayName=...`), empty when the record
    /// lists none.
    pub added: Vec<String>,
    /// Whether the record shows the key list (`KeyDescription`) before and after.
    pub key_list_seen: bool,
}

/// The keys of a `KeyDescription` value: one `[KeyIdentifier=...,KeyType=...,...]` per key.
fn keys_in(v: Option<&str>) -> Vec<&str> {
    let Some(v) = v else { return Vec::new() };
    let mut out = Vec::new();
    let mut rest = v;
    while let Some(i) = rest.find("KeyIdentifier=") {
        rest = &rest[i..];
        let end = rest.find(']').unwrap_or(rest.len());
        out.push(rest[..end].trim_end_matches(['"', '\\']));
        rest = &rest[end..];
    }
    out
}

fn key_id(key: &str) -> &str {
    key.trim_start_matches("KeyIdentifier=")
        .split(',')
        .next()
        .unwrap_or("")
        .trim()
}

/// The credential an audit adds, if it adds one: `Update application – Certificates and secrets
/// management` and `Add service principal credentials` (unless their `KeyDescription` shows no
/// new key: a removal is logged under the same name), `Update application` and `Update service
/// principal` only when `KeyDescription` gains a key.
pub fn credential_added(a: &Audit) -> Option<CredentialChange> {
    // The names as normalized (lower case, one `-` for any dash).
    let (explicit, on_sp) = with_activity(&a.activity_display_name, |name| match name {
        "update application - certificates and secrets management" => Some((true, false)),
        "add service principal credentials" => Some((true, true)),
        "update application" => Some((false, false)),
        "update service principal" => Some((false, true)),
        _ => None,
    })?;
    let pair = modified_pair(a, "KeyDescription");
    let (old, new) = pair.unwrap_or_default();
    let before: Vec<&str> = keys_in(old).into_iter().map(key_id).collect();
    let added: Vec<String> = keys_in(new)
        .into_iter()
        .filter(|k| !before.contains(&key_id(k)))
        .map(|k| {
            // The identifier is noise to a reader; type and name say what was added.
            k.split(',')
                .map(str::trim)
                .filter(|p| !p.starts_with("KeyIdentifier="))
                .collect::<Vec<_>>()
                .join(",")
        })
        .collect();
    let key_list_seen = pair.is_some_and(|(_, new)| new.is_some());
    // Fires when a key is new, or on an explicit credential activity whose key list is not recorded.
    if added.is_empty() && (key_list_seen || !explicit) {
        return None;
    }
    let kind = if on_sp {
        "ServicePrincipal"
    } else {
        "Application"
    };
    let t = a
        .target_resources
        .iter()
        .find(|t| is_kind(t, kind))
        .or_else(|| a.target_resources.first());
    Some(CredentialChange {
        app: AppRef {
            object_id: t.and_then(|t| t.id.as_deref()).map(str::to_owned),
            app_id: detail(a, "AppId").map(str::to_owned).or_else(|| {
                new_value(a, "TargetId.ServicePrincipalNames")
                    .or_else(|| new_value(a, "AppId"))
                    .and_then(first_guid)
            }),
            name: t.and_then(|t| t.display_name.as_deref()).map(str::to_owned),
        },
        object_kind: kind.to_owned(),
        added,
        key_list_seen,
    })
}

/// Who initiated an audit, as the ids a configured name may match: the user's object id and UPN,
/// else the app's service principal id, app id and name.
pub fn actor_ids(a: &Audit) -> Vec<&str> {
    let mut out = Vec::new();
    if let Some(u) = a.initiated_by.user.as_ref() {
        out.extend(u.id.as_deref());
        out.extend(u.user_principal_name.as_deref());
    }
    if out.is_empty()
        && let Some(p) = a.initiated_by.app.as_ref()
    {
        out.extend(p.service_principal_id.as_deref());
        out.extend(p.app_id.as_deref());
        out.extend(p.display_name.as_deref());
    }
    out.retain(|s| !s.trim().is_empty());
    out
}

/// An application audit's targets of kind `Application` or `ServicePrincipal`, as app references
/// (for "who manages this app").
pub fn managed_apps(a: &Audit) -> Vec<AppRef> {
    let app_id = detail(a, "AppId").map(str::to_owned);
    a.target_resources
        .iter()
        .filter(|t| is_kind(t, "Application") || is_kind(t, "ServicePrincipal"))
        .map(|t| AppRef {
            object_id: t.id.as_deref().map(str::to_owned),
            app_id: app_id.clone(),
            name: t.display_name.as_deref().map(str::to_owned),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn activity_names_match_with_any_dash_and_spacing() {
        for n in [
            "Update application – Certificates and secrets management",
            "Update application - Certificates and secrets management",
            "update application —  certificates and secrets management ",
            "\tUpdate\u{b}application -\r\nCertificates and secrets management",
        ] {
            assert_eq!(
                normalized_activity(n),
                "update application - certificates and secrets management"
            );
            assert!(activity_is(
                n,
                "update application - certificates and secrets management"
            ));
        }
    }

    /// The stack-made normalization is [`normalized_activity`] for every kind of name: ASCII
    /// whitespace of each kind at each place, dashes, non-ASCII letters and spaces, and names
    /// around the 128-byte buffer.
    #[test]
    fn activities_normalized_on_the_stack_are_the_normalized_names() {
        let parts = [
            "Add", "MEMBER", "to", "rôle", "-", "–", "\u{a0}", " ", "  ", "\t", "\u{b}", "\u{c}",
            "\r\n", "",
        ];
        let mut names: Vec<String> = Vec::new();
        for a in parts {
            for b in parts {
                for c in parts {
                    names.push(format!("{a}{b} {c}"));
                    names.push(format!("{b}{a}{c}"));
                }
            }
        }
        for len in 120..136 {
            names.push("x".repeat(len));
            names.push(format!(" {} y ", "x".repeat(len - 4)));
        }
        for name in &names {
            with_activity(name, |n| {
                assert_eq!(n, normalized_activity(name), "{name:?}")
            });
        }
    }

    #[test]
    fn key_lists() {
        let old = r#"["[KeyIdentifier=a1,KeyType=Password,KeyUsage=Verify,DisplayName=old]"]"#;
        let new = r#"["[KeyIdentifier=a1,KeyType=Password,KeyUsage=Verify,DisplayName=old]","[KeyIdentifier=b2,KeyType=Password,KeyUsage=Verify,DisplayName=new]"]"#;
        assert_eq!(keys_in(Some(old)).len(), 1);
        let k = keys_in(Some(new));
        assert_eq!(k.len(), 2);
        assert_eq!(key_id(k[1]), "b2");
        assert_eq!(
            scope_words(Some(" Mail.Read  User.Read")),
            ["Mail.Read", "User.Read"]
        );
    }
}
