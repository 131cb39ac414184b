//! What the state remembers of applications, per tenant, for `app-credential-added`: the
//! high-impact permissions an application was granted and who managed it in the 30-day window.
//!
//! An application goes by several ids in the logs (the service principal's object id in grants,
//! the application's object id in `Update application`, its app id in `additionalDetails`, its
//! name everywhere), so a record is kept under each of them (at most three), and a lookup merges
//! what any of its ids knows. Both lists are capped (the oldest entry gives way) and pruned to the
//! window at eviction.

use serde::{Deserialize, Serialize};

use super::State;
use super::lists::push_capped;
use crate::apps::{self, AppRef};
use crate::config::DetectConfig;
use crate::keys::key128;

/// Cap on the high-impact permissions remembered per application id.
pub const MAX_APP_PERMISSIONS: usize = 16;
/// Cap on the actors remembered per application id.
pub const MAX_APP_MANAGERS: usize = 16;
/// Cap on a remembered permission's name (bytes); longer names are cut.
const MAX_PERMISSION_NAME: usize = 96;

/// One application id in one tenant.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct AppState {
    pub last_seen: i64,
    /// High-impact permissions granted to the app (as configured when the grant was seen), with
    /// the newest time each was granted.
    pub permissions: Vec<(String, i64)>,
    /// Actors who managed the app (added a credential, updated it, added an owner...): the
    /// [`key128`] of their first id ([`apps::actor_ids`]), with the newest time.
    pub managers: Vec<(u128, i64)>,
}

/// What the ids of one application know, merged.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct AppHistory {
    /// High-impact permissions and when last granted, newest first.
    pub permissions: Vec<(String, i64)>,
    /// Whether the actor asked about managed the app in the window.
    pub managed_by_actor: bool,
    /// How many distinct actors managed it.
    pub managers: usize,
}

/// The key an actor is remembered by.
pub fn actor_key(a: &entrawatch_ingest::model::Audit) -> Option<u128> {
    apps::actor_ids(a).first().map(|id| key128(id))
}

impl State {
    /// What the state knows of the application `app` in `tenant`, and whether `actor` managed it.
    pub fn app_history(&self, tenant: &str, app: &AppRef, actor: Option<u128>) -> AppHistory {
        let mut h = AppHistory::default();
        let Some(t) = self.tenants.get(tenant) else {
            return h;
        };
        let mut managers: Vec<u128> = Vec::new();
        for alias in app.aliases() {
            let Some(s) = self.apps.get(&(t, key128(alias))) else {
                continue;
            };
            for (p, at) in &s.permissions {
                match h.permissions.iter_mut().find(|(q, _)| q == p) {
                    Some(e) => e.1 = e.1.max(*at),
                    None => h.permissions.push((p.clone(), *at)),
                }
            }
            for (m, _) in &s.managers {
                if !managers.contains(m) {
                    managers.push(*m);
                }
            }
        }
        h.permissions
            .sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        h.managed_by_actor = actor.is_some_and(|k| managers.contains(&k));
        h.managers = managers.len();
        h
    }

    /// Learns from a successful application audit: a grant's high-impact permissions, or the
    /// actor of a change to an application or service principal.
    pub(super) fn learn_app(
        &mut self,
        config: &DetectConfig,
        tenant: u32,
        a: &entrawatch_ingest::model::Audit,
        now: i64,
    ) {
        if let Some(g) = apps::grant(a) {
            let high: Vec<&String> = g
                .permissions
                .iter()
                .filter(|p| config.applications.is_high_impact(p))
                .collect();
            if high.is_empty() {
                return;
            }
            for alias in g.client.aliases() {
                let s = self.app_mut(tenant, alias, now);
                for p in &high {
                    let name: String = p.chars().take(MAX_PERMISSION_NAME).collect();
                    match s.permissions.iter_mut().find(|(q, _)| *q == name) {
                        Some(e) => e.1 = e.1.max(now),
                        None => push_capped(
                            &mut s.permissions,
                            (name, now),
                            MAX_APP_PERMISSIONS,
                            |(_, at)| *at,
                        ),
                    }
                }
            }
            return;
        }
        let credential = apps::credential_added(a).map(|c| vec![c.app]);
        let management = a
            .category
            .as_deref()
            .is_some_and(|c| c.eq_ignore_ascii_case("ApplicationManagement"));
        let Some(targets) = credential.or_else(|| management.then(|| apps::managed_apps(a))) else {
            return;
        };
        let Some(actor) = actor_key(a) else { return };
        for app in &targets {
            for alias in app.aliases() {
                let s = self.app_mut(tenant, alias, now);
                match s.managers.iter_mut().find(|(m, _)| *m == actor) {
                    Some(e) => e.1 = e.1.max(now),
                    None => push_capped(
                        &mut s.managers,
                        (actor, now),
                        MAX_APP_MANAGERS,
                        |(_, at)| *at,
                    ),
                }
            }
        }
    }

    fn app_mut(&mut self, tenant: u32, alias: &str, now: i64) -> &mut AppState {
        let s = self.apps.entry((tenant, key128(alias))).or_default();
        s.last_seen = s.last_seen.max(now);
        s
    }
}
