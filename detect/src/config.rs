//! Detection settings, with the documented defaults.

use serde::Deserialize;

/// Role template ids of the privileged role catalogue (DETECTORS.md, "Privileged principal").
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

/// A principal named in config: a tenant and an object id (or a UPN).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrincipalRef {
    pub tenant_id: String,
    /// Object id or user principal name.
    pub id: String,
}

/// Detection config (`[detect]` in the TOML file).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DetectConfig {
    /// Home tenants of the CSP partners serving these customers.
    pub partner_tenants: Vec<String>,
    /// Accounts that must never sign in outside an emergency.
    pub break_glass: Vec<PrincipalRef>,
    /// Principals to treat as privileged whatever the directory says.
    pub privileged_principals: Vec<PrincipalRef>,
    /// Role template ids that make a principal privileged.
    pub privileged_roles: Vec<String>,
    /// Rule ids to run; empty means all.
    pub enabled_rules: Vec<String>,
}

impl Default for DetectConfig {
    fn default() -> Self {
        DetectConfig {
            partner_tenants: Vec::new(),
            break_glass: Vec::new(),
            privileged_principals: Vec::new(),
            privileged_roles: PRIVILEGED_ROLE_TEMPLATES
                .iter()
                .map(|(id, _)| (*id).to_owned())
                .collect(),
            enabled_rules: Vec::new(),
        }
    }
}

impl DetectConfig {
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
}
