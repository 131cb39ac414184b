//! Who is privileged, per tenant: built from directory context (role assignments and eligibility),
//! from role audit events in the stream (assignments, PIM activations and their expiry) and from
//! config. Partner technicians are privileged by nature, decided per sign-in.

use std::collections::{BTreeSet, HashMap, HashSet};

use entrawatch_ingest::model::{Audit, Body, Event, SignIn};

use crate::config::DetectConfig;
use crate::keys::{KeyHash, caseless_hash};

/// The privileged principals known so far, keyed by (tenant, object id).
#[derive(Debug, Default, Clone, serde::Serialize, serde::Deserialize)]
#[serde(from = "Holdings")]
pub struct PrivilegedDirectory {
    /// Roles held now (assigned, or activated through PIM).
    active: HashMap<(String, String), BTreeSet<String>>,
    /// Roles the principal may activate (PIM eligibility): privileged too, and a PIM activation
    /// expiring does not take them away.
    eligible: HashMap<(String, String), BTreeSet<String>>,
    /// [`holder_key`] of every key of `active` and `eligible`: what [`Self::is_privileged`] asks
    /// of every sign-in, answered without building the maps' text keys. Kept with the maps by
    /// [`Self::observe`]; not in a snapshot, rebuilt from the maps when one is read.
    #[serde(skip)]
    holders: HashSet<(u64, u64), KeyHash>,
}

/// The directory as a snapshot holds it.
#[derive(serde::Deserialize)]
struct Holdings {
    active: HashMap<(String, String), BTreeSet<String>>,
    eligible: HashMap<(String, String), BTreeSet<String>>,
}

impl From<Holdings> for PrivilegedDirectory {
    fn from(h: Holdings) -> Self {
        let holders = h
            .active
            .keys()
            .chain(h.eligible.keys())
            .map(|(tenant, principal)| holder_key(tenant, principal))
            .collect();
        PrivilegedDirectory {
            active: h.active,
            eligible: h.eligible,
            holders,
        }
    }
}

/// The index key of (tenant, principal), equal when the maps' keys are (the tenant as given,
/// the principal in any ASCII casing): two 64-bit hashes, seeded once per process. Like the
/// state's 128-bit keys, a hit is not confirmed against the text: two different pairs agreeing
/// on both hashes is not a case worth a heap copy on every sign-in.
fn holder_key(tenant: &str, principal: &str) -> (u64, u64) {
    use std::hash::BuildHasher;
    (
        KeyHash::default().hash_one(tenant),
        caseless_hash(principal),
    )
}

/// The role template id an audit's `Role.TemplateId` (or `Role.ObjectID`) names.
pub fn audit_role_template(a: &Audit) -> Option<String> {
    // Grants carry the role in the new values; removals usually in the old ones.
    let value = |name: &str| {
        a.target_resources
            .iter()
            .flat_map(|t| &t.modified_properties)
            .find(|p| {
                p.display_name
                    .as_deref()
                    .is_some_and(|n| n.eq_ignore_ascii_case(name))
            })
            .and_then(|p| p.new_value.as_deref().or(p.old_value.as_deref()))
    };
    value("Role.TemplateId")
        .or_else(|| value("Role.ObjectID"))
        .or_else(|| {
            a.target_resources
                .iter()
                .find(|t| {
                    t.resource_type
                        .as_deref()
                        .is_some_and(|k| k.eq_ignore_ascii_case("Role"))
                })
                .and_then(|t| t.id.as_deref())
        })
        .map(str::to_ascii_lowercase)
}

/// The principal an audit's role change targets (the first non-role target).
pub fn audit_role_member(a: &Audit) -> Option<&entrawatch_ingest::model::TargetResource> {
    a.target_resources.iter().find(|t| {
        !t.resource_type
            .as_deref()
            .is_some_and(|k| k.eq_ignore_ascii_case("Role"))
            && t.id.is_some()
    })
}

fn grant_in(
    holding: &mut HashMap<(String, String), BTreeSet<String>>,
    tenant: &str,
    principal: &str,
    role: &str,
) {
    holding
        .entry((tenant.to_owned(), principal.to_ascii_lowercase()))
        .or_default()
        .insert(role.to_ascii_lowercase());
}

fn revoke_in(
    holding: &mut HashMap<(String, String), BTreeSet<String>>,
    tenant: &str,
    principal: &str,
    role: &str,
) {
    let key = (tenant.to_owned(), principal.to_ascii_lowercase());
    if let Some(roles) = holding.get_mut(&key) {
        roles.remove(&role.to_ascii_lowercase());
        if roles.is_empty() {
            holding.remove(&key);
        }
    }
}

impl PrivilegedDirectory {
    /// Learns from a directory-context record or a role audit; other events are ignored.
    pub fn observe(&mut self, config: &DetectConfig, event: &Event) {
        let tenant = &event.meta.tenant_id;
        match &event.body {
            Body::Role(grant) if config.is_privileged_role(&grant.role_definition_id) => {
                let holding = if grant.eligible {
                    &mut self.eligible
                } else {
                    &mut self.active
                };
                grant_in(
                    holding,
                    tenant,
                    &grant.principal_id,
                    &grant.role_definition_id,
                );
                self.refresh_holder(tenant, &grant.principal_id);
            }
            Body::Audit(a) => {
                let (Some(role), Some(member)) = (audit_role_template(a), audit_role_member(a))
                else {
                    return;
                };
                if !config.is_privileged_role(&role) {
                    return;
                }
                let Some(member_id) = member.id.as_deref() else {
                    return;
                };
                let success = a
                    .result
                    .as_ref()
                    .is_none_or(|r| *r == entrawatch_ingest::model::AuditResult::Success);
                if !success {
                    return;
                }
                let name = a.activity_display_name.to_ascii_lowercase();
                let removed = name.starts_with("remove ")
                    || name.contains("expired")
                    || name.contains("deactivat");
                let added = name.starts_with("add ") && name.contains("role")
                    || name.contains("activation");
                // "Add eligible member to role in PIM ...": an eligibility, not an active role.
                let holding = if name.contains("eligible") {
                    &mut self.eligible
                } else {
                    &mut self.active
                };
                if removed {
                    revoke_in(holding, tenant, member_id, &role);
                } else if added {
                    grant_in(holding, tenant, member_id, &role);
                }
                self.refresh_holder(tenant, member_id);
            }
            _ => {}
        }
    }

    /// Brings the index of holders in line with the maps for one principal, after a change.
    fn refresh_holder(&mut self, tenant: &str, principal: &str) {
        let key = (tenant.to_owned(), principal.to_ascii_lowercase());
        let index = holder_key(tenant, principal);
        if self.active.contains_key(&key) || self.eligible.contains_key(&key) {
            self.holders.insert(index);
        } else {
            self.holders.remove(&index);
        }
    }

    /// The privileged role template ids a principal holds, active or eligible, sorted.
    pub fn roles_of(&self, tenant_id: &str, principal_id: &str) -> Vec<String> {
        let key = (tenant_id.to_owned(), principal_id.to_ascii_lowercase());
        let mut roles: BTreeSet<&String> = BTreeSet::new();
        for holding in [&self.active, &self.eligible] {
            roles.extend(holding.get(&key).into_iter().flatten());
        }
        roles.into_iter().cloned().collect()
    }

    /// Privileged by directory or config.
    pub fn is_privileged(
        &self,
        config: &DetectConfig,
        tenant_id: &str,
        principal_id: &str,
        upn: Option<&str>,
    ) -> bool {
        self.holders.contains(&holder_key(tenant_id, principal_id))
            || config
                .privileged_principals
                .contains(tenant_id, principal_id, upn)
    }

    /// A partner technician: `serviceProvider` access, or a configured partner home tenant acting in
    /// another tenant.
    pub fn is_partner_technician(config: &DetectConfig, sign_in: &SignIn) -> bool {
        sign_in.is_service_provider()
            || match (&sign_in.home_tenant_id, &sign_in.resource_tenant_id) {
                (Some(home), Some(resource)) => home != resource && config.is_partner_tenant(home),
                _ => false,
            }
    }

    /// Privileged for sign-in detectors: by role, by config, or as a partner technician.
    pub fn sign_in_is_privileged(
        &self,
        config: &DetectConfig,
        tenant_id: &str,
        sign_in: &SignIn,
    ) -> bool {
        Self::is_partner_technician(config, sign_in)
            || sign_in.user_id.as_deref().is_some_and(|id| {
                self.is_privileged(
                    config,
                    tenant_id,
                    id,
                    sign_in.user_principal_name.as_deref(),
                )
            })
    }

    /// Principals holding an active role.
    pub fn active_len(&self) -> usize {
        self.active.len()
    }

    /// Principals holding an eligibility.
    pub fn eligible_len(&self) -> usize {
        self.eligible.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::*;

    #[test]
    fn directory_learns_from_context_audits_and_pim_and_forgets_on_removal() {
        let config = DetectConfig::default();
        let mut dir = PrivilegedDirectory::default();
        let upn = "lee@contoso.com";
        dir.observe(
            &config,
            &role_grant(TENANT, "ann@contoso.com", GLOBAL_ADMIN),
        );
        assert!(dir.is_privileged(&config, TENANT, &uid("ann@contoso.com"), None));
        assert!(!dir.is_privileged(&config, TENANT_B, &uid("ann@contoso.com"), None));
        // Directory Readers is not in the catalogue.
        dir.observe(
            &config,
            &role_grant(
                TENANT,
                "dee@contoso.com",
                "88d8e3e3-8f55-4a1e-953a-9b9898b8876b",
            ),
        );
        assert!(!dir.is_privileged(&config, TENANT, &uid("dee@contoso.com"), None));

        let activation = audit("a1", "Add member to role completed (PIM activation)", 0)
            .category("RoleManagement")
            .by_app("MS-PIM")
            .target_user(upn)
            .modified(
                "Role.TemplateId",
                None,
                Some("194ae4cb-b126-40b2-bd5b-6091b380977d"),
            )
            .build();
        dir.observe(&config, &activation);
        assert_eq!(
            dir.roles_of(TENANT, &uid(upn)),
            vec!["194ae4cb-b126-40b2-bd5b-6091b380977d".to_owned()]
        );
        let failed = audit("a2", "Remove member from role", 1)
            .target_user(upn)
            .modified(
                "Role.TemplateId",
                Some("194ae4cb-b126-40b2-bd5b-6091b380977d"),
                None,
            )
            .failed()
            .build();
        dir.observe(&config, &failed);
        assert!(dir.is_privileged(&config, TENANT, &uid(upn), None));
        let removal = audit("a3", "Remove member from role", 2)
            .target_user(upn)
            .modified(
                "Role.TemplateId",
                Some("194ae4cb-b126-40b2-bd5b-6091b380977d"),
                None,
            )
            .build();
        dir.observe(&config, &removal);
        assert!(!dir.is_privileged(&config, TENANT, &uid(upn), None));
    }

    /// The index that answers `is_privileged` is not in a snapshot: a directory read back from
    /// one is rebuilt from its maps and answers as the one written did, in any casing of the id.
    #[test]
    fn a_directory_read_back_from_a_snapshot_knows_the_same_holders() {
        let config = DetectConfig::default();
        let mut dir = PrivilegedDirectory::default();
        dir.observe(
            &config,
            &role_grant(TENANT, "ann@contoso.com", GLOBAL_ADMIN),
        );
        let mut eligibility = role_grant(TENANT_B, "eli@contoso.com", GLOBAL_ADMIN);
        if let Body::Role(g) = &mut eligibility.body {
            g.eligible = true;
        }
        dir.observe(&config, &eligibility);
        let bytes = bincode::serialize(&dir).unwrap();
        let back: PrivilegedDirectory = bincode::deserialize(&bytes).unwrap();
        for d in [&dir, &back] {
            let ann = uid("ann@contoso.com");
            assert!(d.is_privileged(&config, TENANT, &ann, None));
            assert!(d.is_privileged(&config, TENANT, &ann.to_ascii_uppercase(), None));
            assert!(!d.is_privileged(&config, TENANT_B, &ann, None));
            assert!(d.is_privileged(&config, TENANT_B, &uid("eli@contoso.com"), None));
            assert!(!d.is_privileged(&config, TENANT, &uid("eli@contoso.com"), None));
        }
        assert_eq!(back.holders, dir.holders);
        assert_eq!(bincode::serialize(&back).unwrap(), bytes);
    }

    #[test]
    fn an_expiring_pim_activation_leaves_the_eligibility() {
        let config = DetectConfig::default();
        let mut dir = PrivilegedDirectory::default();
        let upn = "eli@contoso.com";
        let mut eligibility = role_grant(TENANT, upn, "29232cdf-9323-42fd-ade2-1d097af3e4de");
        if let Body::Role(g) = &mut eligibility.body {
            g.eligible = true;
        }
        dir.observe(&config, &eligibility);
        assert!(dir.is_privileged(&config, TENANT, &uid(upn), None));
        let role = |id: &str, name: &str, minute: i64| {
            audit(id, name, minute)
                .by_app("MS-PIM")
                .target_user(upn)
                .modified(
                    "Role.TemplateId",
                    Some("29232cdf-9323-42fd-ade2-1d097af3e4de"),
                    Some("29232cdf-9323-42fd-ade2-1d097af3e4de"),
                )
                .build()
        };
        dir.observe(
            &config,
            &role("p1", "Add member to role completed (PIM activation)", 0),
        );
        dir.observe(
            &config,
            &role("p2", "Remove member from role (PIM activation expired)", 60),
        );
        assert!(
            dir.is_privileged(&config, TENANT, &uid(upn), None),
            "still eligible"
        );
        assert_eq!(
            dir.roles_of(TENANT, &uid(upn)),
            vec!["29232cdf-9323-42fd-ade2-1d097af3e4de".to_owned()]
        );
        // Removing the eligibility itself ends it.
        dir.observe(
            &config,
            &role(
                "p3",
                "Remove eligible member from role in PIM completed (permanent)",
                90,
            ),
        );
        assert!(!dir.is_privileged(&config, TENANT, &uid(upn), None));
        assert_eq!((dir.active_len(), dir.eligible_len()), (0, 0));
    }

    #[test]
    fn technicians_are_privileged_by_access_type_or_configured_partner() {
        let mut config = DetectConfig::default();
        let dir = PrivilegedDirectory::default();
        let tech = sign_in("s1", "user_5f0c@northwind.example", 0)
            .partner(PARTNER)
            .build();
        assert!(dir.sign_in_is_privileged(&config, TENANT, tech.as_sign_in().unwrap()));
        let guest_of_partner = sign_in("s2", "bob@northwind.example", 0)
            .guest(PARTNER)
            .build();
        assert!(!dir.sign_in_is_privileged(
            &config,
            TENANT,
            guest_of_partner.as_sign_in().unwrap()
        ));
        config.partner_tenants.push(PARTNER.into());
        assert!(dir.sign_in_is_privileged(&config, TENANT, guest_of_partner.as_sign_in().unwrap()));
    }
}
