//! One file per detector; [`crate::registry`] lists them.

pub mod mfa_not_satisfied;
pub mod risky_user;

use entrawatch_ingest::model::SignIn;

use crate::finding::{Principal, PrincipalKind};

/// The user principal of a sign-in (partner technicians keep their home tenant).
pub(crate) fn sign_in_principal(s: &SignIn) -> Principal {
    Principal {
        kind: PrincipalKind::User,
        id: s
            .user_id
            .clone()
            .or_else(|| s.user_principal_name.clone())
            .unwrap_or_else(|| "(unknown)".to_owned()),
        upn: s.user_principal_name.clone(),
        home_tenant_id: s
            .home_tenant_id
            .clone()
            .filter(|h| Some(h) != s.resource_tenant_id.as_ref()),
    }
}

/// `Azor, IL`, `IL`, or `unknown location`.
pub(crate) fn place(s: &SignIn) -> String {
    match (&s.location.city, &s.location.country_or_region) {
        (Some(city), Some(country)) => format!("{city}, {country}"),
        (None, Some(country)) => country.clone(),
        (Some(city), None) => city.clone(),
        (None, None) => "unknown location".to_owned(),
    }
}

/// Who, for titles: the UPN, else the display name, else the object id.
pub(crate) fn who(s: &SignIn) -> String {
    s.user_principal_name
        .clone()
        .or_else(|| s.user_display_name.clone())
        .or_else(|| s.user_id.clone())
        .unwrap_or_else(|| "an unknown user".to_owned())
}
