//! What the state costs in memory ([`State::approx_bytes`]), estimated from the capacities of its
//! tables, lists and strings the way the process holds them.

use super::{AppState, ChainState, IpState, PrincipalState, State, TechnicianState};

impl State {
    /// Approximate bytes of the per-principal, per-technician, per-IP and per-application state,
    /// as the process holds them: each table's bucket array at its capacity (entries plus a
    /// control byte, at hashbrown's 7/8 load), and every list and string at its capacity plus the
    /// allocator's per-block cost. `entrawatch bench` compares it with the growth of resident memory.
    pub fn approx_bytes(&self) -> usize {
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
        principals
            + chains
            + table(
                self.chains.capacity(),
                size_of::<((u32, u128), ChainState)>(),
            )
            + apps
            + table(self.apps.capacity(), size_of::<((u32, u128), AppState)>())
            + table(
                self.principals.capacity(),
                size_of::<((u32, u128), PrincipalState)>(),
            )
            + technicians
            + table(
                self.technicians.capacity(),
                size_of::<((u32, u128), TechnicianState)>(),
            )
            + ips
            + table(self.ips.capacity(), size_of::<(u128, IpState)>())
            + table(self.device_code_tenants.capacity(), size_of::<(u32, i64)>())
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
