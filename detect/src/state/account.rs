//! Whether an audit closed or reopened user accounts ([`account_change`]): what the state learns the
//! disable time from (`disabled-account-sign-in` and `sign-in-after-account-disabled` read it).
//!
//! Names from Microsoft's audit activity reference (Core Directory, UserManagement): `Disable
//! account`, `Delete user` and `Hard Delete user` close an account; `Enable account` and `Restore
//! user` reopen it; `Update user` does either when its `AccountEnabled` becomes false or true.

use entrawatch_ingest::model::{Audit, TargetResource};

use crate::detectors::{modified_pair, succeeded};

/// What a successful audit did to its target accounts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountChange {
    /// Disabled or deleted: sign-ins must stop.
    Closed,
    /// Enabled again or restored: sign-ins are expected again.
    Reopened,
}

const CLOSING: [&str; 3] = ["Disable account", "Delete user", "Hard Delete user"];
const REOPENING: [&str; 2] = ["Enable account", "Restore user"];

/// What a successful audit did to the accounts it targets, if it closed or reopened them.
pub fn account_change(a: &Audit) -> Option<AccountChange> {
    let activity = a.activity_display_name.trim();
    let named = |names: &[&str]| names.iter().any(|n| activity.eq_ignore_ascii_case(n));
    let change = if named(&CLOSING) {
        AccountChange::Closed
    } else if named(&REOPENING) {
        AccountChange::Reopened
    } else if activity.eq_ignore_ascii_case("Update user") {
        // `[true]`, `true` or `"True"`: the value as the record writes it, after decoding.
        let (_, new) = modified_pair(a, "AccountEnabled")?;
        let new =
            new?.trim_matches(|c: char| c == '[' || c == ']' || c == '"' || c.is_whitespace());
        if new.eq_ignore_ascii_case("false") {
            AccountChange::Closed
        } else if new.eq_ignore_ascii_case("true") {
            AccountChange::Reopened
        } else {
            return None;
        }
    } else {
        return None;
    };
    succeeded(a).then_some(change)
}

/// The ids a target account is known by in sign-ins: its object id, and its UPN (a sign-in without
/// a user id is keyed by it).
pub fn account_ids(t: &TargetResource) -> impl Iterator<Item = &str> {
    let user = t
        .resource_type
        .as_deref()
        .is_none_or(|k| k.eq_ignore_ascii_case("User"));
    let upn = t
        .user_principal_name
        .as_deref()
        .filter(|u| t.id.as_deref().is_none_or(|id| !id.eq_ignore_ascii_case(u)));
    t.id.as_deref().into_iter().chain(upn).filter(move |_| user)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::audit;
    use entrawatch_ingest::model::Body;

    fn change(e: entrawatch_ingest::Event) -> Option<AccountChange> {
        let Body::Audit(a) = &e.body else {
            unreachable!()
        };
        account_change(a)
    }

    #[test]
    fn closing_and_reopening_activities() {
        use AccountChange::*;
        let u = "jo@contoso.com";
        assert_eq!(
            change(audit("1", "Disable account", 0).target_user(u).build()),
            Some(Closed)
        );
        assert_eq!(
            change(audit("2", "Delete user", 0).target_user(u).build()),
            Some(Closed)
        );
        assert_eq!(
            change(audit("3", "Hard Delete user", 0).target_user(u).build()),
            Some(Closed)
        );
        assert_eq!(
            change(audit("4", "enable account", 0).target_user(u).build()),
            Some(Reopened)
        );
        assert_eq!(
            change(audit("5", "Restore user", 0).target_user(u).build()),
            Some(Reopened)
        );
        let update = |new: &str| {
            audit("6", "Update user", 0)
                .target_user(u)
                .modified("AccountEnabled", Some("[false]"), Some(new))
                .build()
        };
        assert_eq!(change(update("[true]")), Some(Reopened));
        assert_eq!(change(update("\"True\"")), Some(Reopened));
        assert_eq!(change(update("[false]")), Some(Closed));
        assert_eq!(change(update("[]")), None);
        assert_eq!(
            change(audit("7", "Update user", 0).target_user(u).build()),
            None
        );
        assert_eq!(
            change(
                audit("8", "Disable account", 0)
                    .target_user(u)
                    .failed()
                    .build()
            ),
            None
        );
        assert_eq!(
            change(audit("9", "Reset user password", 0).target_user(u).build()),
            None
        );
    }
}
