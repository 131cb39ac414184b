//! Who is privileged, per tenant: built from directory context (role assignments and eligibility)
//! and config. Partner technicians are privileged by nature, decided per sign-in.

use std::collections::{BTreeSet, HashMap};

use entrawatch_ingest::model::{Body, Event, SignIn};

use crate::config::DetectConfig;

/// The privileged principals known so far, keyed by (tenant, object id).
#[derive(Debug, Default, Clone)]
pub struct PrivilegedDirectory {
    roles: HashMap<(String, String), BTreeSet<String>>,
}

impl PrivilegedDirectory {
    /// Learns from a directory-context record; other events are ignored.
    pub fn observe(&mut self, config: &DetectConfig, event: &Event) {
        if let Body::Role(grant) = &event.body
            && config.is_privileged_role(&grant.role_definition_id)
        {
            self.roles
                .entry((
                    event.meta.tenant_id.clone(),
                    grant.principal_id.to_ascii_lowercase(),
                ))
                .or_default()
                .insert(grant.role_definition_id.clone());
        }
    }

    /// The privileged role template ids a principal holds (active or eligible).
    pub fn roles_of(&self, tenant_id: &str, principal_id: &str) -> Option<&BTreeSet<String>> {
        self.roles
            .get(&(tenant_id.to_owned(), principal_id.to_ascii_lowercase()))
    }

    /// Privileged by directory or config.
    pub fn is_privileged(
        &self,
        config: &DetectConfig,
        tenant_id: &str,
        principal_id: &str,
        upn: Option<&str>,
    ) -> bool {
        self.roles_of(tenant_id, principal_id)
            .is_some_and(|r| !r.is_empty())
            || config.privileged_principals.iter().any(|p| {
                p.tenant_id.eq_ignore_ascii_case(tenant_id)
                    && (p.id.eq_ignore_ascii_case(principal_id)
                        || upn.is_some_and(|u| p.id.eq_ignore_ascii_case(u)))
            })
    }

    /// A partner technician: `serviceProvider` access, or a configured partner home tenant acting in
    /// another tenant.
    pub fn is_partner_technician(config: &DetectConfig, sign_in: &SignIn) -> bool {
        sign_in.is_service_provider()
            || match (&sign_in.home_tenant_id, &sign_in.resource_tenant_id) {
                (Some(home), Some(resource)) => {
                    home != resource
                        && config
                            .partner_tenants
                            .iter()
                            .any(|p| p.eq_ignore_ascii_case(home))
                }
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

    pub fn len(&self) -> usize {
        self.roles.len()
    }

    pub fn is_empty(&self) -> bool {
        self.roles.is_empty()
    }
}
