//! What the state costs in memory ([`State::approx_bytes`]), estimated from the capacities of its
//! tables, lists and strings the way the process holds them.

use super::{AppState, ChainState, IpState, PrincipalState, State, TechnicianState};

/// [`State::approx_bytes`] by part: what each kind of key holds, its table included.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct StateBytes {
    /// Per principal (user or service principal in a tenant).
    pub principals: usize,
    /// Per source address (the spray's failures, partner tenants seen from it).
    pub addresses: usize,
    /// Per application (permissions and managers).
    pub applications: usize,
    /// Per principal with recent findings (`account-takeover-chain`).
    pub chains: usize,
    /// Per partner technician.
    pub technicians: usize,
    /// Per tenant (device-code flows).
    pub tenants: usize,
}

impl StateBytes {
    pub fn total(&self) -> usize {
        self.principals
            + self.addresses
            + self.applications
            + self.chains
            + self.technicians
            + self.tenants
    }
}

impl State {
    /// Approximate bytes of the per-principal, per-technician, per-IP and per-application state,
    /// as the process holds them: each table's bucket array at its capacity (entries plus a
    /// control byte, at hashbrown's 7/8 load), and every list and string at its capacity plus the
    /// allocator's per-block cost. `entrawatch bench` compares it with the growth of resident memory.
    pub fn approx_bytes(&self) -> usize {
        self.approx_bytes_by_part().total()
    }

    /// [`State::approx_bytes`] by part.
    pub fn approx_bytes_by_part(&self) -> StateBytes {
        use std::mem::size_of;
        let principals: usize = self
            .principals
            .values()
            .map(|p| {
                heap(p.countries.capacity() * size_of::<(u16, i64)>())
                    + heap(p.failures.capacity() * size_of::<i64>())
                    + heap(p.disabled_attempts.capacity() * size_of::<(i64, u128)>())
                    + heap(p.mfa_denials.capacity() * size_of::<i64>())
                    + heap(p.sessions.capacity() * size_of::<super::SessionUse>())
                    + p.last_fix.as_ref().map_or(0, |f| {
                        heap(f.event_id.capacity())
                            + f.city.as_ref().map_or(0, |c| heap(c.capacity()))
                    })
            })
            .sum();
        let technicians: usize = self
            .technicians
            .values()
            .map(|t| heap(t.tenants.capacity() * size_of::<(u32, i64)>()))
            .sum();
        let ips: usize = self
            .ips
            .values()
            .map(|i| {
                heap(i.partner_tenants.capacity() * size_of::<(u32, i64)>()) + i.spray.heap_bytes()
            })
            .sum();
        let apps: usize = self
            .apps
            .values()
            .map(|s| {
                heap(s.permissions.capacity() * size_of::<(String, i64)>())
                    + s.permissions
                        .iter()
                        .map(|(p, _)| heap(p.capacity()))
                        .sum::<usize>()
                    + heap(s.managers.capacity() * size_of::<(u128, i64)>())
            })
            .sum();
        let chains: usize = self
            .chains
            .values()
            .map(|c| {
                heap(c.members.capacity() * size_of::<super::ChainMember>())
                    + c.members
                        .iter()
                        .map(|m| {
                            heap(m.rule.capacity())
                                + heap(m.event_id.capacity())
                                + heap(m.title.capacity())
                        })
                        .sum::<usize>()
            })
            .sum();
        StateBytes {
            principals: principals
                + table(
                    self.principals.capacity(),
                    size_of::<((u32, u128), PrincipalState)>(),
                ),
            addresses: ips + table(self.ips.capacity(), size_of::<(u128, IpState)>()),
            applications: apps + table(self.apps.capacity(), size_of::<((u32, u128), AppState)>()),
            chains: chains
                + table(
                    self.chains.capacity(),
                    size_of::<((u32, u128), ChainState)>(),
                ),
            technicians: technicians
                + table(
                    self.technicians.capacity(),
                    size_of::<((u32, u128), TechnicianState)>(),
                ),
            tenants: table(self.device_code_tenants.capacity(), size_of::<(u32, i64)>()),
        }
    }
}

/// Bytes a heap block of `n` bytes takes: a header and rounding to 16, 32 at least (glibc's
/// malloc; other allocators are close). Nothing for an empty list, which allocates nothing.
pub(crate) fn heap(n: usize) -> usize {
    if n == 0 {
        0
    } else {
        (n + 8).next_multiple_of(16).max(32)
    }
}

/// Bytes of a hash table that can hold `capacity` entries of `entry` bytes: a power-of-two bucket
/// array at most 7/8 full, with one control byte per bucket.
fn table(capacity: usize, entry: usize) -> usize {
    if capacity == 0 {
        return 0;
    }
    let buckets = (capacity * 8 / 7).next_power_of_two();
    heap(buckets * (entry + 1) + 16)
}

#[cfg(test)]
mod tests {
    use crate::config::DetectConfig;
    use crate::testkit::sign_in;

    #[test]
    fn the_parts_add_up_to_the_whole_and_fall_where_their_keys_are() {
        let config = DetectConfig::default();
        let mut state = crate::state::State::default();
        assert_eq!(state.approx_bytes_by_part().total(), 0);
        for i in 0..30 {
            let e = sign_in(&format!("s{i}"), &format!("user{i}@contoso.com"), i).build();
            state.update(&config, &e);
        }
        let users = state.approx_bytes_by_part();
        assert!(users.principals > 0, "{users:?}");
        // Failed passwords from one address at many accounts: the spray's state, by address.
        for i in 0..30 {
            let e = sign_in(&format!("f{i}"), &format!("user{i}@contoso.com"), 40 + i)
                .ip("198.51.100.7")
                .fail(50126)
                .build();
            state.update(&config, &e);
        }
        let after = state.approx_bytes_by_part();
        assert!(
            after.addresses > users.addresses,
            "{users:?} then {after:?}"
        );
        assert_eq!(after.total(), state.approx_bytes());
    }
}
