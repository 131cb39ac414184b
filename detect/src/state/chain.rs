//! What the state keeps of the findings of each user for `account-takeover-chain`
//! ([`ChainState`]), keyed by (the finding's tenant, the user id): the recent findings of other
//! rules that may join a chain, and when a chain was last reported.

use serde::{Deserialize, Serialize};

use super::State;
use crate::config::DetectConfig;
use crate::detectors::account_takeover_chain::{self, joins_chain};
use crate::finding::{Finding, PrincipalKind, Severity};
use crate::keys::key128;

/// The findings kept per user.
pub const MAX_CHAIN_MEMBERS: usize = 8;

/// One finding of another rule about the user.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChainMember {
    /// The rule id (a short text: snapshots outlive the order of the registry).
    pub rule: String,
    pub severity: Severity,
    /// The finding's event time (seconds).
    pub at: i64,
    /// The first record of its evidence.
    pub event_id: String,
    pub title: String,
}

/// The recent findings of one user, oldest first.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct ChainState {
    /// At most [`MAX_CHAIN_MEMBERS`], none older than the chain window before the newest.
    pub members: Vec<ChainMember>,
    /// The newest finding of the last chain reported: findings within the window of it belong
    /// to that chain (and move it on) instead of starting another.
    pub reported_at: Option<i64>,
}

impl ChainState {
    /// Whether a finding at `at` still belongs to the chain already reported.
    pub fn reported_chain_covers(&self, at: i64, window_secs: i64) -> bool {
        self.reported_at.is_some_and(|r| at - r <= window_secs)
    }
}

impl State {
    /// The chain record of user `id` in `tenant`.
    pub fn chain(&self, tenant: &str, id: &str) -> Option<&ChainState> {
        let t = self.tenants.get(tenant)?;
        self.chains.get(&(t, key128(id)))
    }

    /// Learns from the findings the engine kept for one event (after allow lists): the findings
    /// that may join a chain are remembered per user, a chain reported marks its user.
    pub fn record_findings(&mut self, config: &DetectConfig, findings: &[Finding]) {
        let window = config
            .rule::<crate::detectors::account_takeover_chain::Settings>()
            .window_hours
            .saturating_mul(3600);
        for f in findings {
            if f.principal.kind != PrincipalKind::User {
                continue;
            }
            let reported = f.rule == account_takeover_chain::ID;
            if !reported && !joins_chain(f.rule, f.severity) {
                continue;
            }
            let at = f.time.timestamp();
            self.evict_floor = self.evict_floor.min(at);
            let tenant = self.tenants.intern(&f.tenant_id);
            let c = self
                .chains
                .entry((tenant, key128(&f.principal.id)))
                .or_default();
            if reported {
                c.members.clear();
                c.reported_at = Some(c.reported_at.map_or(at, |r| r.max(at)));
                continue;
            }
            if c.reported_chain_covers(at, window) {
                c.reported_at = c.reported_at.map(|r| r.max(at));
                continue;
            }
            c.reported_at = None;
            c.members.retain(|m| m.at >= at - window);
            if c.members.len() >= MAX_CHAIN_MEMBERS
                && let Some(oldest) = (0..c.members.len()).min_by_key(|&i| c.members[i].at)
            {
                c.members.remove(oldest);
            }
            c.members.push(ChainMember {
                rule: f.rule.to_owned(),
                severity: f.severity,
                at,
                event_id: f.event_ids.first().cloned().unwrap_or_default(),
                title: f.title.clone(),
            });
        }
    }
}
