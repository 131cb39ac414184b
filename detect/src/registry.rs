//! The single list of detectors, in catalogue order (docs/detectors.md). Adding a detector: a file in
//! `detectors/`, a `pub mod` line in `detectors/mod.rs`, a line here.

use crate::detector::Detector;
use crate::detectors::*;

/// Every detector, in catalogue order.
pub fn all() -> Vec<Box<dyn Detector>> {
    vec![
        Box::new(mfa_not_satisfied::MfaNotSatisfied),
        Box::new(legacy_auth_sign_in::LegacyAuthSignIn),
        Box::new(weak_mfa_privileged::WeakMfaPrivileged),
        Box::new(unmanaged_device_privileged::UnmanagedDevicePrivileged),
        Box::new(risky_sign_in::RiskySignIn),
        Box::new(new_country_sign_in::NewCountrySignIn),
        Box::new(impossible_travel::ImpossibleTravel),
        Box::new(session_token_replay::SessionTokenReplay),
        Box::new(password_spray::PasswordSpray),
        Box::new(brute_force::BruteForce),
        Box::new(mfa_fatigue::MfaFatigue),
        Box::new(device_code_sign_in::DeviceCodeSignIn),
        Box::new(disabled_account_sign_in::DisabledAccountSignIn),
        Box::new(sign_in_after_account_disabled::SignInAfterAccountDisabled),
        Box::new(admin_collaboration_use::AdminCollaborationUse),
        Box::new(partner_new_tenant::PartnerNewTenant),
        Box::new(partner_tenant_fanout::PartnerTenantFanout),
        Box::new(break_glass_account_used::BreakGlassAccountUsed),
        Box::new(privileged_role_assigned::PrivilegedRoleAssigned),
        Box::new(admin_agents_membership_changed::AdminAgentsMembershipChanged),
        Box::new(partner_created_account::PartnerCreatedAccount),
        Box::new(partner_sensitive_change::PartnerSensitiveChange),
        Box::new(security_info_changed_privileged::SecurityInfoChangedPrivileged),
        Box::new(consent_grant_risky::ConsentGrantRisky),
        Box::new(app_credential_added::AppCredentialAdded),
        Box::new(federation_settings_changed::FederationSettingsChanged),
        Box::new(cross_tenant_access_changed::CrossTenantAccessChanged),
        Box::new(conditional_access_weakened::ConditionalAccessWeakened),
        Box::new(risky_user::RiskyUser),
        Box::new(log_source_silent::LogSourceSilent),
        Box::new(account_takeover_chain::AccountTakeoverChain),
        Box::new(gdap_relationship_risky::GdapRelationshipRisky),
    ]
}
