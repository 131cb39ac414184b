//! Detection settings (`[detect]` in the TOML config), with the documented defaults, and validation
//! that lists every problem at once.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

use serde::Deserialize;

use crate::keys::{KeyHash, caseless_hash, key128};
use crate::settings::{RuleSettings, RuleTables};

/// Role template ids of the privileged role catalogue (docs/detectors.md, "Privileged principal").
pub const PRIVILEGED_ROLE_TEMPLATES: [(&str, &str); 14] = [
    (
        "62e90394-69f5-4237-9190-012177145e10",
        "Global Administrator",
    ),
    (
        "e8611ab8-c189-46e8-94e1-60213ab1f814",
        "Privileged Role Administrator",
    ),
    (
        "7be44c8a-adaf-4e2a-84d6-ab2649e08a13",
        "Privileged Authentication Administrator",
    ),
    (
        "194ae4cb-b126-40b2-bd5b-6091b380977d",
        "Security Administrator",
    ),
    (
        "b1be1c3e-b65d-4f19-8427-f6fa0d97feb9",
        "Conditional Access Administrator",
    ),
    ("fe930be7-5e62-47db-91af-98c3a49a38b1", "User Administrator"),
    (
        "c4e39bd9-1100-46d3-8c65-fb160da0071f",
        "Authentication Administrator",
    ),
    (
        "729827e3-9c14-49f7-bb1b-9608f156bbb8",
        "Helpdesk Administrator",
    ),
    (
        "29232cdf-9323-42fd-ade2-1d097af3e4de",
        "Exchange Administrator",
    ),
    (
        "f28a1f50-f6e7-4571-818b-6a12f2af6b6c",
        "SharePoint Administrator",
    ),
    (
        "9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3",
        "Application Administrator",
    ),
    (
        "158c047a-c907-4556-b7ef-446551a6b5f7",
        "Cloud Application Administrator",
    ),
    (
        "3a2c62db-5318-420d-8d74-23affee5d9d5",
        "Intune Administrator",
    ),
    (
        "8ac3fc64-6eca-42ea-9e69-59f4c7b60eb2",
        "Hybrid Identity Administrator",
    ),
];

/// A principal named in config: a tenant and an object id or user principal name.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrincipalRef {
    pub tenant_id: String,
    /// Object id or user principal name.
    pub id: String,
}

impl PrincipalRef {
    pub fn matches(&self, tenant_id: &str, id: &str, upn: Option<&str>) -> bool {
        self.tenant_id.eq_ignore_ascii_case(tenant_id)
            && (self.id.eq_ignore_ascii_case(id)
                || upn.is_some_and(|u| self.id.eq_ignore_ascii_case(u)))
    }
}

/// Principals named in config (`detect.break_glass`, `detect.privileged_principals`), looked up on
/// every sign-in: indexed by a case-insensitive hash of the id so a lookup costs the same for
/// one entry or five thousand, and allocates nothing. A hit is confirmed with the same comparison
/// as [`PrincipalRef::matches`]. A key of a length no entry has is not hashed at all (a UPN against
/// a list of object ids, or the reverse), and a caller that has the [`key128`] of the id already
/// (the engine makes the sign-in's principal key once per event) looks it up by that instead
/// ([`PrincipalList::contains_keyed`]).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(from = "Vec<PrincipalRef>")]
pub struct PrincipalList {
    refs: Vec<PrincipalRef>,
    /// Caseless hash of the id to the entries with it (of any tenant).
    index: HashMap<u64, Vec<u32>, KeyHash>,
    /// [`key128`] of the id (the same for every ASCII casing) to the entries with it.
    by_key: HashMap<u128, Vec<u32>, KeyHash>,
    /// The lengths of the entries' ids: bit `len`, ids of 63 bytes or more sharing bit 63.
    lengths: u64,
}

/// The bit of [`PrincipalList::lengths`] for an id of `len` bytes.
fn length_bit(len: usize) -> u64 {
    1 << len.min(63)
}

impl From<Vec<PrincipalRef>> for PrincipalList {
    fn from(refs: Vec<PrincipalRef>) -> Self {
        let mut index: HashMap<u64, Vec<u32>, KeyHash> = HashMap::default();
        let mut by_key: HashMap<u128, Vec<u32>, KeyHash> = HashMap::default();
        let mut lengths = 0;
        for (i, r) in refs.iter().enumerate() {
            index
                .entry(caseless_hash(&r.id))
                .or_default()
                .push(i as u32);
            by_key.entry(key128(&r.id)).or_default().push(i as u32);
            lengths |= length_bit(r.id.len());
        }
        PrincipalList {
            refs,
            index,
            by_key,
            lengths,
        }
    }
}

impl PartialEq for PrincipalList {
    fn eq(&self, other: &Self) -> bool {
        self.refs == other.refs
    }
}

impl std::ops::Deref for PrincipalList {
    type Target = [PrincipalRef];
    fn deref(&self) -> &[PrincipalRef] {
        &self.refs
    }
}

impl PrincipalList {
    /// Whether an entry names this principal in this tenant, by object id or by UPN: exactly
    /// `self.iter().any(|p| p.matches(tenant_id, id, upn))`.
    pub fn contains(&self, tenant_id: &str, id: &str, upn: Option<&str>) -> bool {
        self.contains_keyed(tenant_id, id, None, upn)
    }

    /// [`PrincipalList::contains`], given `id_key`, the [`key128`] of `id` when the caller has it
    /// (the sign-in's principal key): `id` is then not hashed.
    pub fn contains_keyed(
        &self,
        tenant_id: &str,
        id: &str,
        id_key: Option<u128>,
        upn: Option<&str>,
    ) -> bool {
        !self.refs.is_empty()
            && (self.names(tenant_id, id, id_key)
                || upn.is_some_and(|u| self.names(tenant_id, u, None)))
    }

    fn names(&self, tenant_id: &str, key: &str, key128: Option<u128>) -> bool {
        // Ids equal in any casing have the same length, caseless hash and key128.
        if self.lengths & length_bit(key.len()) == 0 {
            return false;
        }
        let hits = match key128 {
            Some(k) => self.by_key.get(&k),
            None => self.index.get(&caseless_hash(key)),
        };
        hits.is_some_and(|hits| {
            hits.iter()
                .any(|&i| self.refs[i as usize].matches(tenant_id, key, None))
        })
    }
}

/// Principals and source addresses a rule must not alert on.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AllowList {
    /// Object ids or UPNs (any tenant).
    pub principals: Vec<String>,
    /// IP addresses or CIDR blocks (`203.0.113.0/24`, `2001:db8::/32`).
    pub ips: Vec<String>,
}

/// What the baseline rules share (`[detect.baseline]`): how long they learn before they speak, and
/// which sign-in methods count as phishing-resistant.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Baseline {
    /// Baseline rules wait for this many days of history (default 7; 0: none)...
    pub learning_days: i64,
    /// ...and this many successful sign-ins (default 10).
    pub learning_sign_ins: u32,
    /// Method names (matched case-insensitively as substrings) that count as phishing-resistant
    /// (default FIDO2, passkey, Windows Hello for Business, certificate, X.509, platform
    /// credential).
    pub phishing_resistant_methods: Vec<String>,
}

impl Default for Baseline {
    fn default() -> Self {
        Baseline {
            learning_days: 7,
            learning_sign_ins: 10,
            phishing_resistant_methods: [
                "FIDO2",
                "passkey",
                "Windows Hello for Business",
                "certificate",
                "X.509",
                "platform credential",
            ]
            .map(str::to_owned)
            .to_vec(),
        }
    }
}

impl Baseline {
    fn validate(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.learning_days < 0 {
            problems.push("detect.baseline.learning_days: must not be negative".to_owned());
        }
        for (i, m) in self.phishing_resistant_methods.iter().enumerate() {
            if m.trim().is_empty() {
                problems.push(format!(
                    "detect.baseline.phishing_resistant_methods[{i}]: empty (it would match every method)"
                ));
            }
        }
        problems
    }
}

/// Where each key of the retired `[detect.thresholds]` table lives now: old key, new table, new key.
const MOVED_THRESHOLDS: [(&str, &str, &str); 26] = [
    ("learning_days", "detect.baseline", "learning_days"),
    ("learning_sign_ins", "detect.baseline", "learning_sign_ins"),
    (
        "phishing_resistant_methods",
        "detect.baseline",
        "phishing_resistant_methods",
    ),
    ("travel_min_km", "detect.rules.impossible-travel", "min_km"),
    (
        "travel_min_kmh",
        "detect.rules.impossible-travel",
        "min_kmh",
    ),
    (
        "spray_min_users",
        "detect.rules.password-spray",
        "min_users",
    ),
    (
        "spray_window_minutes",
        "detect.rules.password-spray",
        "window_minutes",
    ),
    (
        "spray_high_tenants",
        "detect.rules.password-spray",
        "high_tenants",
    ),
    (
        "brute_force_min_failures",
        "detect.rules.brute-force",
        "min_failures",
    ),
    (
        "brute_force_window_minutes",
        "detect.rules.brute-force",
        "window_minutes",
    ),
    (
        "brute_force_success_minutes",
        "detect.rules.brute-force",
        "success_minutes",
    ),
    (
        "mfa_fatigue_min_denials",
        "detect.rules.mfa-fatigue",
        "min_denials",
    ),
    (
        "mfa_fatigue_window_minutes",
        "detect.rules.mfa-fatigue",
        "window_minutes",
    ),
    (
        "mfa_fatigue_success_minutes",
        "detect.rules.mfa-fatigue",
        "success_minutes",
    ),
    (
        "session_replay_window_minutes",
        "detect.rules.session-token-replay",
        "window_minutes",
    ),
    (
        "disabled_min_attempts",
        "detect.rules.disabled-account-sign-in",
        "min_attempts",
    ),
    (
        "disabled_min_ips",
        "detect.rules.disabled-account-sign-in",
        "min_ips",
    ),
    (
        "disabled_window_hours",
        "detect.rules.disabled-account-sign-in",
        "window_hours",
    ),
    (
        "fanout_min_tenants",
        "detect.rules.partner-tenant-fanout",
        "min_tenants",
    ),
    (
        "fanout_window_minutes",
        "detect.rules.partner-tenant-fanout",
        "window_minutes",
    ),
    (
        "security_info_risky_hours",
        "detect.rules.security-info-changed-privileged",
        "risky_hours",
    ),
    (
        "chain_window_hours",
        "detect.rules.account-takeover-chain",
        "window_hours",
    ),
    (
        "silent_sign_ins_hours",
        "detect.rules.log-source-silent",
        "sign_ins_hours",
    ),
    (
        "silent_audits_hours",
        "detect.rules.log-source-silent",
        "audits_hours",
    ),
    (
        "silent_probability",
        "detect.rules.log-source-silent",
        "probability",
    ),
    (
        "silent_max_hours",
        "detect.rules.log-source-silent",
        "max_hours",
    ),
];

/// The problems of a retired table (`[detect.thresholds]`, `[detect.gdap_relationship]`,
/// `[detect.cross_tenant_access]`): each key
/// is refused with the exact TOML to write in its new place.
fn retired(
    old: &str,
    table: Option<&serde_json::Value>,
    new_place: impl Fn(&str) -> Option<(&'static str, &'static str)>,
) -> Vec<String> {
    let Some(table) = table else {
        return Vec::new();
    };
    let Some(keys) = table.as_object() else {
        return vec![format!(
            "{old}: retired (and not a table); see docs/detectors.md, \"Settings\""
        )];
    };
    keys.iter()
        .map(|(key, value)| match new_place(key) {
            Some((table, new_key)) => format!(
                "{old}.{key}: [{old}] is retired; write it as `{new_key} = {}` under [{table}]",
                crate::settings::toml_value(value)
            ),
            None => format!(
                "{old}.{key}: unknown key, and [{old}] is retired: each rule's settings are in \
                 [detect.rules.RULE-ID] (`entrawatch rules RULE-ID` shows them)"
            ),
        })
        .collect()
}

/// Detection config (`[detect]` in the TOML file).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DetectConfig {
    /// Home tenants of the CSP partners serving these customers.
    pub partner_tenants: Vec<String>,
    /// Accounts that must never sign in outside an emergency.
    pub break_glass: PrincipalList,
    /// Principals to treat as privileged whatever the directory says.
    pub privileged_principals: PrincipalList,
    /// Role template ids that make a principal privileged.
    pub privileged_roles: Vec<String>,
    /// Groups whose membership is partner access (AdminAgents and GDAP access groups), by object id
    /// or display name; AdminAgents, HelpdeskAgents and SalesAgents are always watched.
    pub partner_access_groups: Vec<String>,
    /// Rule ids to run; empty means all.
    pub enabled_rules: Vec<String>,
    /// What the baseline rules share (`[detect.baseline]`).
    pub baseline: Baseline,
    /// Each rule's own settings (`[detect.rules.RULE-ID]`), read by the rule's registry entry.
    pub rules: RuleTables,
    /// The retired `[detect.thresholds]` table: refused, each key with its new place.
    pub thresholds: Option<serde_json::Value>,
    /// The retired `[detect.cross_tenant_access]` table (now
    /// `[detect.rules.cross-tenant-access-changed]`): refused, each key with its new place.
    pub cross_tenant_access: Option<serde_json::Value>,
    /// Application settings (`[detect.applications]`): the high-impact permissions shared by
    /// `consent-grant-risky` and `app-credential-added`, and the credential rotation identities.
    pub applications: Applications,
    /// The retired `[detect.gdap_relationship]` table (now `[detect.rules.gdap-relationship-risky]`):
    /// refused, each key with its new place.
    pub gdap_relationship: Option<serde_json::Value>,
    /// Per-rule allow lists, keyed by rule id.
    pub allow: BTreeMap<String, AllowList>,
}

impl Default for DetectConfig {
    fn default() -> Self {
        DetectConfig {
            partner_tenants: Vec::new(),
            break_glass: PrincipalList::default(),
            privileged_principals: PrincipalList::default(),
            privileged_roles: PRIVILEGED_ROLE_TEMPLATES
                .iter()
                .map(|(id, _)| (*id).to_owned())
                .collect(),
            partner_access_groups: Vec::new(),
            enabled_rules: Vec::new(),
            baseline: Baseline::default(),
            rules: RuleTables::default(),
            thresholds: None,
            cross_tenant_access: None,
            applications: Applications::default(),
            gdap_relationship: None,
            allow: BTreeMap::new(),
        }
    }
}

impl DetectConfig {
    /// The settings of the rule whose settings type is `S` (`[detect.rules.RULE-ID]`).
    pub fn rule<S: RuleSettings>(&self) -> &S {
        self.rules.get::<S>()
    }

    /// [`DetectConfig::rule`], to change (tests and tools that build a config in code).
    pub fn rule_mut<S: RuleSettings>(&mut self) -> &mut S {
        self.rules.get_mut::<S>()
    }

    /// The display name of a privileged role template, if it is one.
    pub fn role_name(template_id: &str) -> Option<&'static str> {
        PRIVILEGED_ROLE_TEMPLATES
            .iter()
            .find(|(id, _)| id.eq_ignore_ascii_case(template_id))
            .map(|(_, name)| *name)
    }

    pub fn is_privileged_role(&self, template_id: &str) -> bool {
        self.privileged_roles
            .iter()
            .any(|r| r.eq_ignore_ascii_case(template_id))
    }

    pub fn is_partner_tenant(&self, tenant: &str) -> bool {
        self.partner_tenants
            .iter()
            .any(|p| p.eq_ignore_ascii_case(tenant))
    }

    pub fn is_break_glass(&self, tenant_id: &str, id: &str, upn: Option<&str>) -> bool {
        self.break_glass.contains(tenant_id, id, upn)
    }

    /// Whether a method name is phishing-resistant by the configured list.
    pub fn is_phishing_resistant(&self, method: &str) -> bool {
        let m = method.to_ascii_lowercase();
        self.baseline
            .phishing_resistant_methods
            .iter()
            .any(|p| m.contains(&p.to_ascii_lowercase()))
    }

    /// Whether the rule's allow list covers this principal or source address.
    pub fn is_allowed(
        &self,
        rule: &str,
        principal_id: &str,
        upn: Option<&str>,
        ip: Option<&str>,
    ) -> bool {
        let Some(allow) = self.allow.get(rule) else {
            return false;
        };
        let by_principal = allow.principals.iter().any(|p| {
            p.eq_ignore_ascii_case(principal_id) || upn.is_some_and(|u| p.eq_ignore_ascii_case(u))
        });
        let by_ip = ip
            .and_then(|ip| ip.parse::<IpAddr>().ok())
            .is_some_and(|ip| {
                allow
                    .ips
                    .iter()
                    .filter_map(|c| Cidr::parse(c).ok())
                    .any(|c| c.contains(ip))
            });
        by_principal || by_ip
    }

    /// Every problem with the settings, each with its path (`detect.partner_tenants[1]: ...`).
    pub fn validate(&self, known_rules: &[&str]) -> Vec<String> {
        let mut problems = Vec::new();
        let guid = entrawatch_ingest::value::is_guid;
        for (i, t) in self.partner_tenants.iter().enumerate() {
            if !guid(t) {
                problems.push(format!(
                    "detect.partner_tenants[{i}]: {t:?} is not a tenant GUID"
                ));
            }
        }
        for (name, list) in [
            ("break_glass", &self.break_glass),
            ("privileged_principals", &self.privileged_principals),
        ] {
            for (i, p) in list.iter().enumerate() {
                if !guid(&p.tenant_id) {
                    problems.push(format!(
                        "detect.{name}[{i}].tenant_id: {:?} is not a tenant GUID",
                        p.tenant_id
                    ));
                }
                if p.id.trim().is_empty() {
                    problems.push(format!("detect.{name}[{i}].id: empty"));
                }
            }
        }
        for (i, r) in self.privileged_roles.iter().enumerate() {
            if !guid(r) {
                problems.push(format!(
                    "detect.privileged_roles[{i}]: {r:?} is not a role template GUID"
                ));
            }
        }
        let known = known_rules.join(", ");
        for (i, r) in self.enabled_rules.iter().enumerate() {
            if !known_rules.contains(&r.as_str()) {
                problems.push(format!(
                    "detect.enabled_rules[{i}]: unknown rule {r:?}; known rules: {known}"
                ));
            }
        }
        for (rule, list) in &self.allow {
            // `sigma:<id>`: a Sigma rule, checked against the loaded rules when they load.
            if !known_rules.contains(&rule.as_str()) && !rule.starts_with("sigma:") {
                problems.push(format!(
                    "detect.allow.{rule}: unknown rule; known rules: {known}"
                ));
            }
            for (i, c) in list.ips.iter().enumerate() {
                if let Err(e) = Cidr::parse(c) {
                    problems.push(format!("detect.allow.{rule}.ips[{i}]: {e}"));
                }
            }
        }
        problems.extend(self.applications.validate());
        problems.extend(self.baseline.validate());
        problems.extend(self.rules.validate());
        problems.extend(retired(
            "detect.thresholds",
            self.thresholds.as_ref(),
            |key| {
                MOVED_THRESHOLDS
                    .iter()
                    .find(|(old, _, _)| *old == key)
                    .map(|(_, table, new_key)| (*table, *new_key))
            },
        ));
        problems.extend(retired(
            "detect.cross_tenant_access",
            self.cross_tenant_access.as_ref(),
            |key| {
                (key == "plumbing_apps")
                    .then_some(("detect.rules.cross-tenant-access-changed", "plumbing_apps"))
            },
        ));
        problems.extend(retired(
            "detect.gdap_relationship",
            self.gdap_relationship.as_ref(),
            |key| {
                ["max_auto_extend_days", "max_duration_days"]
                    .into_iter()
                    .find(|k| *k == key)
                    .map(|k| ("detect.rules.gdap-relationship-risky", k))
            },
        ));
        problems
    }
}

/// An address block: `203.0.113.0/24`, `2001:db8::/32`, or a single address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    net: IpAddr,
    prefix: u8,
}

impl Cidr {
    pub fn parse(s: &str) -> Result<Cidr, String> {
        let (addr, prefix) = match s.trim().split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s.trim(), None),
        };
        let net: IpAddr = addr
            .parse()
            .map_err(|_| format!("{s:?} is not an IP address or CIDR block"))?;
        let max = if net.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("{s:?}: prefix must be 0 to {max}"))?,
            None => max,
        };
        Ok(Cidr { net, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.net, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = if self.prefix == 0 {
                    0
                } else {
                    u32::MAX << (32 - u32::from(self.prefix))
                };
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = if self.prefix == 0 {
                    0
                } else {
                    u128::MAX << (128 - u32::from(self.prefix))
                };
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

/// Application settings (`[detect.applications]`), for `consent-grant-risky` and
/// `app-credential-added`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Applications {
    /// Delegated scopes and application roles (by value, or by app role id) that let an app read
    /// mail and files or take over the directory. Matched in any casing; an entry ending in `*`
    /// matches every permission starting with what precedes it (`Mail.*`).
    pub high_impact_permissions: Vec<String>,
    /// Identities that rotate application credentials as their job (automation accounts, pipeline
    /// service principals), by user object id or UPN, or by service principal object id, app id
    /// or name: a credential they add is reported low.
    pub rotation_identities: Vec<String>,
}

impl Default for Applications {
    fn default() -> Self {
        Applications {
            high_impact_permissions: [
                "Mail.*",
                "MailboxSettings.ReadWrite",
                "Files.ReadWrite.All",
                "Sites.*",
                "Directory.*",
                "RoleManagement.*",
                "AppRoleAssignment.ReadWrite.All",
                "Application.ReadWrite.All",
                "full_access_as_app",
            ]
            .map(str::to_owned)
            .to_vec(),
            rotation_identities: Vec::new(),
        }
    }
}

impl Applications {
    /// Whether a scope or app role is in [`Applications::high_impact_permissions`].
    pub fn is_high_impact(&self, permission: &str) -> bool {
        let p = permission.trim();
        !p.is_empty()
            && self.high_impact_permissions.iter().any(|e| {
                let e = e.trim();
                match e.strip_suffix('*') {
                    Some(prefix) => p
                        .get(..prefix.len())
                        .is_some_and(|head| head.eq_ignore_ascii_case(prefix)),
                    None => e.eq_ignore_ascii_case(p),
                }
            })
    }

    /// Whether any of an actor's ids is a configured rotation identity.
    pub fn is_rotation_identity(&self, ids: &[&str]) -> bool {
        self.rotation_identities.iter().any(|r| {
            let r = r.trim();
            ids.iter().any(|id| id.trim().eq_ignore_ascii_case(r))
        })
    }

    fn validate(&self) -> Vec<String> {
        let mut problems = Vec::new();
        for (i, p) in self.high_impact_permissions.iter().enumerate() {
            let p = p.trim();
            if p.is_empty() || p == "*" {
                problems.push(format!(
                    "detect.applications.high_impact_permissions[{i}]: {p:?} names no permission"
                ));
            } else if p.trim_end_matches('*').contains('*') || p.ends_with("**") {
                problems.push(format!(
                    "detect.applications.high_impact_permissions[{i}]: {p:?}: `*` only at the end"
                ));
            }
        }
        for (i, r) in self.rotation_identities.iter().enumerate() {
            if r.trim().is_empty() {
                problems.push(format!(
                    "detect.applications.rotation_identities[{i}]: empty"
                ));
            }
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn application_settings_match_and_validate() {
        let a = Applications::default();
        for p in [
            "Mail.ReadWrite",
            "mail.read",
            "Mail.Send",
            "Files.ReadWrite.All",
            "Sites.ReadWrite.All",
            "Directory.ReadWrite.All",
            "RoleManagement.ReadWrite.Directory",
            "AppRoleAssignment.ReadWrite.All",
            "Application.ReadWrite.All",
            "full_access_as_app",
        ] {
            assert!(a.is_high_impact(p), "{p}");
        }
        for p in [
            "User.Read",
            "Files.Read",
            "MailboxSettings.Read",
            "Mail",
            "",
        ] {
            assert!(!a.is_high_impact(p), "{p}");
        }
        let c: DetectConfig = serde_json::from_value(serde_json::json!({
            "applications": {
                "high_impact_permissions": ["Calendars.ReadWrite", "Notes.*", "", "Ma*il"],
                "rotation_identities": ["automation@contoso.com", " "]
            }
        }))
        .unwrap();
        assert!(c.applications.is_high_impact("notes.read.all"));
        assert!(!c.applications.is_high_impact("Mail.Read"));
        assert!(
            c.applications
                .is_rotation_identity(&["uid-1", "Automation@Contoso.com"])
        );
        let problems = c.validate(&[]);
        assert_eq!(problems.len(), 3, "{problems:#?}");
        assert!(problems[0].starts_with("detect.applications.high_impact_permissions[2]"));
        assert!(problems[1].starts_with("detect.applications.high_impact_permissions[3]"));
        assert!(problems[2].starts_with("detect.applications.rotation_identities[1]"));
    }

    #[test]
    fn a_principal_list_finds_exactly_what_a_scan_of_its_entries_finds() {
        let tenants = [
            "11111111-2222-3333-4444-555555555555",
            "AAAAAAAA-2222-3333-4444-555555555555",
        ];
        let mut refs = Vec::new();
        for (i, t) in tenants.iter().enumerate() {
            for n in 0..50 {
                let id = if n % 2 == 0 {
                    format!("{n:08x}-0000-4000-8000-00000000000{i}")
                } else {
                    format!("Admin{n}@Contoso{i}.onmicrosoft.com")
                };
                refs.push(PrincipalRef {
                    tenant_id: (*t).into(),
                    id,
                });
            }
        }
        // The same entry twice, and one differing only in case: both stay findable.
        refs.push(refs[0].clone());
        refs.push(PrincipalRef {
            tenant_id: tenants[0].to_lowercase(),
            id: refs[1].id.to_uppercase(),
        });
        // Ids that trim to a listed one share its key128, not its match; a long one shares its
        // length bit with every other of 63 bytes or more.
        refs.push(PrincipalRef {
            tenant_id: tenants[0].into(),
            id: format!(" {} ", refs[3].id),
        });
        refs.push(PrincipalRef {
            tenant_id: tenants[1].into(),
            id: format!("{}@{}.onmicrosoft.com", "a".repeat(60), "b".repeat(10)),
        });
        let list = PrincipalList::from(refs.clone());
        assert_eq!(list.len(), refs.len());
        let mut probes: Vec<(String, String, Option<String>)> = Vec::new();
        let t_of = |r: &PrincipalRef| r.tenant_id.clone();
        for r in &refs {
            for t in [
                r.tenant_id.clone(),
                r.tenant_id.to_uppercase(),
                r.tenant_id.to_lowercase(),
            ] {
                probes.push((t.clone(), r.id.to_uppercase(), None));
                probes.push((t.clone(), "not-listed".into(), Some(r.id.to_lowercase())));
                probes.push((t.clone(), r.id.clone() + "x", Some(r.id[1..].to_owned())));
            }
            probes.push((t_of(r), r.id.trim().to_owned(), Some(format!(" {}", r.id))));
            probes.push((t_of(r), format!("{}{}", r.id, "c".repeat(70)), None));
            probes.push((tenants[1].into(), r.id.clone(), None));
            probes.push(("other".into(), r.id.clone(), Some(r.id.clone())));
        }
        let mut hits = 0;
        for (t, id, upn) in &probes {
            let scan = refs.iter().any(|r| r.matches(t, id, upn.as_deref()));
            assert_eq!(
                list.contains(t, id, upn.as_deref()),
                scan,
                "{t} {id} {upn:?}"
            );
            assert_eq!(
                list.contains_keyed(t, id, Some(key128(id)), upn.as_deref()),
                scan,
                "keyed: {t} {id} {upn:?}"
            );
            hits += usize::from(scan);
        }
        assert!(hits > refs.len() * 3, "{hits}");
        assert!(!PrincipalList::default().contains(tenants[0], "x", Some("y")));
    }

    #[test]
    fn cidrs() {
        let c = Cidr::parse("203.0.113.0/24").unwrap();
        assert!(c.contains("203.0.113.77".parse().unwrap()));
        assert!(!c.contains("203.0.114.1".parse().unwrap()));
        assert!(
            Cidr::parse("2001:db8::/32")
                .unwrap()
                .contains("2001:db8:1::5".parse().unwrap())
        );
        assert!(
            Cidr::parse("198.51.100.4")
                .unwrap()
                .contains("198.51.100.4".parse().unwrap())
        );
        assert!(Cidr::parse("10.0.0.0/33").is_err());
        assert!(Cidr::parse("nope").is_err());
    }

    #[test]
    fn validation_lists_every_problem_with_its_path() {
        let mut c = DetectConfig {
            partner_tenants: vec!["northwind".into()],
            enabled_rules: vec!["no-such-rule".into()],
            ..DetectConfig::default()
        };
        c.allow.insert(
            "mfa-not-satisfied".into(),
            AllowList {
                principals: vec![],
                ips: vec!["1.2.3.4/40".into()],
            },
        );
        c.rule_mut::<crate::detectors::password_spray::Settings>()
            .min_users = 0;
        let problems = c.validate(&["mfa-not-satisfied"]);
        assert_eq!(problems.len(), 4, "{problems:#?}");
        assert!(problems[0].starts_with("detect.partner_tenants[0]"));
        assert!(
            problems
                .iter()
                .any(|p| p.starts_with("detect.enabled_rules[0]: unknown rule \"no-such-rule\""))
        );
        assert!(
            problems
                .iter()
                .any(|p| p.starts_with("detect.allow.mfa-not-satisfied.ips[0]"))
        );
        assert!(
            problems
                .iter()
                .any(|p| p == "detect.rules.password-spray.min_users: must be greater than zero")
        );
    }

    /// The defaults of the retired `[detect.thresholds]` table, as the last build that read it had
    /// them: each must be the default of the key it moved to.
    fn old_threshold_defaults() -> serde_json::Value {
        serde_json::json!({
            "learning_days": 7, "learning_sign_ins": 10,
            "phishing_resistant_methods": ["FIDO2", "passkey", "Windows Hello for Business",
                "certificate", "X.509", "platform credential"],
            "travel_min_km": 500.0, "travel_min_kmh": 900.0,
            "spray_min_users": 10, "spray_window_minutes": 20, "spray_high_tenants": 3,
            "brute_force_min_failures": 10, "brute_force_window_minutes": 10,
            "brute_force_success_minutes": 60,
            "mfa_fatigue_min_denials": 3, "mfa_fatigue_window_minutes": 10,
            "mfa_fatigue_success_minutes": 30,
            "session_replay_window_minutes": 60,
            "disabled_min_attempts": 3, "disabled_min_ips": 2, "disabled_window_hours": 24,
            "fanout_min_tenants": 5, "fanout_window_minutes": 60,
            "security_info_risky_hours": 6, "chain_window_hours": 6,
            "silent_sign_ins_hours": 1, "silent_audits_hours": 1,
            "silent_probability": 0.000001, "silent_max_hours": 168
        })
    }

    /// The value at `table.key` (`detect.rules.brute-force`, `min_failures`) of a config's
    /// settings, as JSON.
    fn current(c: &DetectConfig, table: &str, key: &str) -> serde_json::Value {
        if table == "detect.baseline" {
            let b = &c.baseline;
            return match key {
                "learning_days" => serde_json::json!(b.learning_days),
                "learning_sign_ins" => serde_json::json!(b.learning_sign_ins),
                _ => serde_json::json!(b.phishing_resistant_methods),
            };
        }
        let rule = table.strip_prefix("detect.rules.").unwrap();
        let (_, settings) = c.rules.iter().find(|(id, _)| *id == rule).unwrap();
        settings.to_json()[key].clone()
    }

    #[test]
    fn every_retired_threshold_moved_with_its_default_and_is_refused_with_its_new_toml() {
        let old = old_threshold_defaults();
        let old = old.as_object().unwrap();
        assert_eq!(old.len(), MOVED_THRESHOLDS.len());
        let defaults = DetectConfig::default();
        for (key, value) in old {
            let (_, table, new_key) = MOVED_THRESHOLDS
                .iter()
                .find(|(o, _, _)| o == key)
                .unwrap_or_else(|| panic!("{key} has no new place"));
            assert_eq!(&current(&defaults, table, new_key), value, "{key}");
        }
        // A config that still has the old table: every key refused with what to write instead,
        // and the new TOML read back gives the values the old table meant.
        let c: DetectConfig = serde_json::from_value(serde_json::json!({
            "thresholds": {"spray_min_users": 12, "learning_days": 3, "silent_probability": 0.001,
                           "phishing_resistant_methods": ["FIDO2"], "nonsense": 1},
            "gdap_relationship": {"max_duration_days": 730},
            "cross_tenant_access": {"plumbing_apps": ["automation@contoso.com"]}
        }))
        .unwrap();
        let problems = c.validate(&[]);
        assert_eq!(
            problems,
            [
                "detect.thresholds.learning_days: [detect.thresholds] is retired; write it as \
                 `learning_days = 3` under [detect.baseline]",
                "detect.thresholds.nonsense: unknown key, and [detect.thresholds] is retired: \
                 each rule's settings are in [detect.rules.RULE-ID] (`entrawatch rules RULE-ID` \
                 shows them)",
                "detect.thresholds.phishing_resistant_methods: [detect.thresholds] is retired; \
                 write it as `phishing_resistant_methods = [\"FIDO2\"]` under [detect.baseline]",
                "detect.thresholds.silent_probability: [detect.thresholds] is retired; write it as \
                 `probability = 0.001` under [detect.rules.log-source-silent]",
                "detect.thresholds.spray_min_users: [detect.thresholds] is retired; write it as \
                 `min_users = 12` under [detect.rules.password-spray]",
                "detect.cross_tenant_access.plumbing_apps: [detect.cross_tenant_access] is \
                 retired; write it as `plumbing_apps = [\"automation@contoso.com\"]` under \
                 [detect.rules.cross-tenant-access-changed]",
                "detect.gdap_relationship.max_duration_days: [detect.gdap_relationship] is \
                 retired; write it as `max_duration_days = 730` under \
                 [detect.rules.gdap-relationship-risky]",
            ]
        );
        let moved: DetectConfig = serde_json::from_value(serde_json::json!({
            "baseline": {"learning_days": 3, "phishing_resistant_methods": ["FIDO2"]},
            "rules": {
                "password-spray": {"min_users": 12},
                "log-source-silent": {"probability": 0.001},
                "gdap-relationship-risky": {"max_duration_days": 730}
            }
        }))
        .unwrap();
        assert_eq!(moved.validate(&[]), Vec::<String>::new());
        assert_eq!(moved.baseline.learning_days, 3);
        assert_eq!(
            moved
                .rule::<crate::detectors::password_spray::Settings>()
                .min_users,
            12
        );
        assert_eq!(
            moved
                .rule::<crate::detectors::log_source_silent::Settings>()
                .probability,
            0.001
        );
        assert_eq!(
            moved
                .rule::<crate::detectors::gdap_relationship_risky::Settings>()
                .max_duration_days,
            730
        );
        // The rest at their defaults.
        assert_eq!(
            moved
                .rule::<crate::detectors::password_spray::Settings>()
                .window_minutes,
            20
        );
    }

    #[test]
    fn rule_tables_refuse_unknown_rules_and_keys_and_bad_values_all_at_once() {
        let c: DetectConfig = serde_json::from_value(serde_json::json!({
            "baseline": {"learning_days": -1},
            "rules": {
                "no-such-rule": {"x": 1},
                "mfa-not-satisfied": {},
                "brute-force": {"min_failure": 3},
                "mfa-fatigue": {"window_minutes": "ten"},
                "log-source-silent": {"probability": 0.7, "max_hours": 1000},
                "account-takeover-chain": {"window_hours": 0}
            }
        }))
        .unwrap();
        let problems = c.validate(&["mfa-not-satisfied", "brute-force"]);
        let paths: Vec<&str> = problems
            .iter()
            .map(|p| p.split(": ").next().unwrap())
            .collect();
        assert_eq!(
            paths,
            [
                "detect.baseline.learning_days",
                "detect.rules.brute-force.min_failure",
                "detect.rules.mfa-fatigue.window_minutes",
                "detect.rules.mfa-not-satisfied",
                "detect.rules.no-such-rule",
                "detect.rules.log-source-silent.probability",
                "detect.rules.log-source-silent.max_hours",
                "detect.rules.account-takeover-chain.window_hours",
            ],
            "{problems:#?}"
        );
        assert!(
            problems[1].contains("unknown field `min_failure`"),
            "{}",
            problems[1]
        );
        assert!(problems[2].contains("invalid type"), "{}", problems[2]);
        assert!(
            problems[3].contains("this rule has no settings"),
            "{}",
            problems[3]
        );
        assert!(problems[4].contains("unknown rule"), "{}", problems[4]);
        // A table that did not read leaves the rule at its defaults (the config is refused anyway).
        assert_eq!(
            c.rule::<crate::detectors::mfa_fatigue::Settings>(),
            &crate::detectors::mfa_fatigue::Settings::default()
        );
    }

    #[test]
    fn allow_lists_match_principals_and_cidrs() {
        let mut c = DetectConfig::default();
        c.allow.insert(
            "r".into(),
            AllowList {
                principals: vec!["ann@contoso.com".into()],
                ips: vec!["192.0.2.0/24".into()],
            },
        );
        assert!(c.is_allowed("r", "id", Some("Ann@Contoso.com"), None));
        assert!(c.is_allowed("r", "id", None, Some("192.0.2.8")));
        assert!(!c.is_allowed("r", "id", None, Some("198.51.100.8")));
        assert!(!c.is_allowed("other", "id", Some("ann@contoso.com"), None));
    }
}
