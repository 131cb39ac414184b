//! Building the world from the seed: the partner, the customers and the guests' organisations,
//! each with its office, branch and cloud networks; the attackers' networks; each customer's
//! population (Zipf-ish sizes, a break-glass account, admins, guests, groups); the partner's
//! technicians and groups; the second partner; the traveller's trip. Network addresses (RFC 5737
//! ranges, then 2001:db8::/32) and groups are handed out here too. Every step draws from the one
//! world stream in a fixed order, which is what makes the same seed and sizes build the same world.

use std::net::Ipv6Addr;

use super::{
    Device, END_UNIX_SECONDS, Format, Grant, Group, GroupKind, Kind, Mode, Net, NetId,
    ServicePrincipal, Sizes, Tenant, Trip, World,
};
use crate::simulate::catalog::{self, CITIES, Method, roles};
use crate::simulate::rng::{DAY, HOUR, Rng, SEC, label};

/// Customers exported as Graph pages (the others as Event Hub records): every third.
fn format_of(customer_index: usize) -> Format {
    if customer_index % 3 == 2 {
        Format::Graph
    } else {
        Format::EventHub
    }
}

fn slug(name: &str) -> String {
    name.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect::<String>()
        .to_ascii_lowercase()
}

impl World {
    pub fn build(seed: u64, sizes: Sizes) -> World {
        let end = END_UNIX_SECONDS * SEC;
        let mut w = World {
            seed,
            days: sizes.days,
            start: end - i64::from(sizes.days) * DAY,
            end,
            tenants: Vec::new(),
            accounts: Vec::new(),
            nets: Vec::new(),
            devices: Vec::new(),
            groups: Vec::new(),
            partner: 0,
            second_partner: 0,
            customers: Vec::new(),
            guest_orgs: Vec::new(),
            trip: None,
            attacker_nets: Vec::new(),
            rng: Rng::derive(seed, &[label("world")]),
            v4_next: [10, 10, 10],
            v6_next: 1,
        };
        w.partner = w.add_tenant(
            catalog::PARTNER_NAME,
            catalog::PARTNER_DOMAIN,
            ("Dublin", "Cork"),
            Format::EventHub,
            true,
        );
        let mut names: Vec<&str> = catalog::TENANT_NAMES.to_vec();
        w.rng.shuffle(&mut names);
        for i in 0..sizes.tenants as usize {
            let base = names[i % names.len()];
            let name = if i < names.len() {
                base.to_owned()
            } else {
                format!("{base} {}", i / names.len() + 1)
            };
            let domain = format!("{}.example", slug(&name));
            let hq = catalog::HQS[i % catalog::HQS.len()];
            let t = w.add_tenant(&name, &domain, hq, format_of(i), true);
            w.customers.push(t);
        }
        for org in catalog::GUEST_ORGS {
            let t = w.add_tenant(
                org,
                &format!("{}.example", slug(org)),
                ("Madrid", "Madrid"),
                Format::EventHub,
                false,
            );
            w.guest_orgs.push(t);
        }
        for city in catalog::ATTACKER_CITIES {
            for _ in 0..3 {
                let net = w.add_net_v4(2, catalog::city(city), 64900);
                w.attacker_nets.push(net);
            }
        }

        // Zipf-ish sizes (weights 1/sqrt(rank)) around the requested mean, shuffled over tenants
        // except that the first (Seattle) tenant is never the smallest: the traveller lives there.
        let n = w.customers.len();
        let weights: Vec<f64> = (0..n).map(|i| 1.0 / ((i + 1) as f64).sqrt()).collect();
        let total: f64 = weights.iter().sum();
        let mut sizes_by_rank: Vec<u32> = weights
            .iter()
            .map(|wt| {
                ((f64::from(sizes.users_per_tenant) * n as f64 * wt / total).round() as u32).max(8)
            })
            .collect();
        let first = sizes_by_rank.remove(0);
        w.rng.shuffle(&mut sizes_by_rank);
        sizes_by_rank.insert(w.rng.index(2.min(sizes_by_rank.len() + 1)), first);
        for (i, &t) in w.customers.clone().iter().enumerate() {
            w.populate_customer(t, sizes_by_rank[i]);
        }
        w.populate_partner(sizes.technicians);
        // A second partner (an MSSP) has served two customers all along, with one technician:
        // its logs are not ours, but its technician's sign-ins are in the customers' logs.
        w.second_partner = w.add_tenant(
            catalog::SECOND_PARTNER_NAME,
            catalog::SECOND_PARTNER_DOMAIN,
            ("London", "Manchester"),
            Format::EventHub,
            false,
        );
        let served: Vec<usize> = w.customers.iter().copied().skip(1).take(2).collect();
        w.add_technician_of(w.second_partner, served, false);
        w.plan_trip();
        // Each customer office's IPv6 address, placed where its IPv4 address is; made without the
        // world stream, so everything else stays as it was.
        for t in w.customers.clone() {
            let v4 = w.tenants[t].office_net;
            let net = Net {
                ip: format!("2001:db8:a1:{:x}::{:x}", w.tenants[t].hq, t + 1),
                ..w.nets[v4].clone()
            };
            w.nets.push(net);
            w.tenants[t].office_v6_net = Some(w.nets.len() - 1);
        }
        // A Teams Rooms device in a meeting room, signed in by device code each morning (a benign
        // look-alike of device code phishing). Its id comes from its own stream, so the world
        // stream is untouched.
        let id = Rng::derive(seed, &[label("room-device")]).guid();
        w.add_device(Device {
            id: Some(id),
            name: "MTR-Boardroom-01".into(),
            os: "Android",
            browser: "",
            managed: true,
            trust: "Azure AD registered",
        });
        w
    }

    /// Another CSP's home tenant (not monitored, not configured as a partner): the `n`th one.
    pub fn add_foreign_partner(&mut self, n: u32) -> usize {
        let name = if n == 0 {
            catalog::ROGUE_PARTNER_NAME.to_owned()
        } else {
            format!("{} {}", catalog::ROGUE_PARTNER_NAME, n + 1)
        };
        let domain = format!("{}.example", slug(&name));
        self.add_tenant(
            &name,
            &domain,
            ("Bucharest", "Bucharest"),
            Format::EventHub,
            false,
        )
    }

    fn add_tenant(
        &mut self,
        name: &str,
        domain: &str,
        (hq, branch): (&str, &str),
        format: Format,
        monitored: bool,
    ) -> usize {
        let id = self.rng.guid();
        let code: String = slug(name)
            .chars()
            .take(4)
            .collect::<String>()
            .to_ascii_uppercase();
        let (hq, branch) = (catalog::city(hq), catalog::city(branch));
        let office_net = self.add_net_v4(1, hq, 64500);
        let branch_net = self.add_net_v4(1, branch, 64500);
        let cloud_net = self.add_net_v6(0xa2, hq, 8075);
        let connector = ServicePrincipal {
            id: self.rng.guid(),
            app_id: self.rng.guid(),
            name: format!("{name} Backup Connector"),
        };
        let graph_sp = self.rng.guid();
        let ca_policies = [self.rng.guid(), self.rng.guid()];
        let index = self.tenants.len();
        self.tenants.push(Tenant {
            id,
            name: name.to_owned(),
            domain: domain.to_owned(),
            code,
            hq,
            branch,
            format,
            monitored,
            office_net,
            branch_net,
            cloud_net,
            office_v6_net: None,
            members: Vec::new(),
            connector,
            graph_sp,
            ca_policies,
            break_glass_by_upn: index.is_multiple_of(3),
        });
        index
    }

    /// An IPv4 address from one of the RFC 5737 ranges: 0 = 192.0.2.0/24 (technicians' homes),
    /// 1 = 198.51.100.0/24 (offices), 2 = 203.0.113.0/24 (attackers); IPv6 once a range is used up.
    pub fn add_net_v4(&mut self, range: usize, city: usize, asn: u32) -> NetId {
        let prefix = ["192.0.2", "198.51.100", "203.0.113"][range];
        if self.v4_next[range] >= 250 {
            return self.add_net_v6(0xb0 + range as u16, city, asn);
        }
        let host = self.v4_next[range];
        self.v4_next[range] += 1;
        self.push_net(format!("{prefix}.{host}"), city, asn)
    }

    /// An IPv6 address under 2001:db8::/32, one /64 per net.
    pub fn add_net_v6(&mut self, kind: u16, city: usize, asn: u32) -> NetId {
        let n = self.v6_next;
        self.v6_next += 1;
        let host = self.rng.next_u64();
        let ip = Ipv6Addr::new(
            0x2001,
            0xdb8,
            kind,
            city as u16,
            (n >> 16) as u16 | 0x100,
            n as u16,
            (host >> 16) as u16,
            host as u16 | 1,
        );
        self.push_net(ip.to_string(), city, asn)
    }

    fn push_net(&mut self, ip: String, city: usize, asn: u32) -> NetId {
        let c = CITIES[city];
        // A few kilometres around the city centre: geolocation of one network never moves.
        let lat = c.lat + (self.rng.f64() - 0.5) * 0.06;
        let lon = c.lon + (self.rng.f64() - 0.5) * 0.06;
        let round = |v: f64| (v * 10_000.0).round() / 10_000.0;
        self.nets.push(Net {
            ip,
            city,
            lat: round(lat),
            lon: round(lon),
            asn,
        });
        self.nets.len() - 1
    }

    fn add_group(&mut self, tenant: usize, name: &str, kind: GroupKind) -> usize {
        let id = self.rng.guid();
        self.groups.push(Group {
            id,
            tenant,
            name: name.to_owned(),
            kind,
        });
        self.groups.len() - 1
    }

    fn populate_customer(&mut self, t: usize, size: u32) {
        let size = size as usize;
        let admins = 1 + usize::from(size >= 20) + usize::from(size >= 50);
        let guests = (size / 12).max(1);
        let regular = size.saturating_sub(1 + 2 * admins + guests).max(3);
        let bg = self.add_person(t, Kind::BreakGlass, false);
        let domain = self.tenants[t].domain.clone();
        let n = self.rng.range(1, 3);
        let b = &mut self.accounts[bg];
        b.display = "Emergency Access 0".to_owned() + &n.to_string();
        b.upn = format!("breakglass0{n}@{domain}");
        b.method = Method::Fido2;
        b.leaver_at = None;
        b.password_change_day = None;
        b.security_info_day = None;
        b.roles.push(Grant {
            role: roles::GLOBAL_ADMIN,
            eligible: false,
        });
        for i in 0..admins {
            let (role, eligible) = if i == 0 {
                (roles::GLOBAL_ADMIN, false)
            } else {
                let r = *self.rng.pick(&[
                    roles::USER_ADMIN,
                    roles::EXCHANGE_ADMIN,
                    roles::HELPDESK_ADMIN,
                    roles::SHAREPOINT_ADMIN,
                    roles::SECURITY_ADMIN,
                    roles::INTUNE_ADMIN,
                ]);
                (r, self.rng.chance(0.6))
            };
            self.add_admin(t, role, eligible, false);
        }
        for i in 0..regular {
            let a = self.add_person(t, Kind::Regular, false);
            if i == 0 {
                // A reader role: a directory role that is not privileged.
                let readers: Vec<usize> = (0..catalog::ROLES.len())
                    .filter(|&r| !catalog::ROLES[r].privileged && r != roles::DIRECTORY_READERS)
                    .collect();
                let role = *self.rng.pick(&readers);
                self.accounts[a].roles.push(Grant {
                    role,
                    eligible: false,
                });
            }
        }
        for _ in 0..guests {
            self.add_guest(t);
        }
        for name in [
            "All Staff",
            "Sales Team",
            "Finance",
            "IT Admins",
            "Helpdesk",
            "Project Falcon",
        ] {
            self.add_group(t, name, GroupKind::Regular);
        }
        if self.rng.chance(0.4) {
            self.add_group(
                t,
                "SG-Helpdesk-Admins",
                GroupKind::RoleAssignable(roles::HELPDESK_ADMIN),
            );
        }
    }

    fn populate_partner(&mut self, technicians: u32) {
        let p = self.partner;
        let bg = self.add_person(p, Kind::BreakGlass, false);
        let b = &mut self.accounts[bg];
        b.display = "Emergency Access 01".to_owned();
        b.upn = format!("breakglass01@{}", catalog::PARTNER_DOMAIN);
        b.leaver_at = None;
        b.roles.push(Grant {
            role: roles::GLOBAL_ADMIN,
            eligible: false,
        });
        self.add_admin(p, roles::GLOBAL_ADMIN, false, false);
        self.add_admin(p, roles::PRIVILEGED_ROLE_ADMIN, true, false);
        for _ in 0..6 {
            self.add_person(p, Kind::Regular, false);
        }
        self.add_group(p, "AdminAgents", GroupKind::AdminAgents);
        self.add_group(p, "HelpdeskAgents", GroupKind::HelpdeskAgents);
        self.add_group(p, "SalesAgents", GroupKind::SalesAgents);
        self.add_group(p, "GDAP-Tier1-Helpdesk", GroupKind::Gdap);
        self.add_group(p, "GDAP-Tier2-Admins", GroupKind::Gdap);
        self.add_group(p, "Partner Sales Team", GroupKind::Regular);
        self.add_group(p, "All Northwind", GroupKind::Regular);
        let n = self.customers.len();
        let t = technicians as usize;
        let per = (2 * n).checked_div(t).map_or(0, |p| p.clamp(3, 6).min(n));
        for i in 0..t {
            let mut usual: Vec<usize> = (0..n)
                .filter(|j| j % t == i)
                .map(|j| self.customers[j])
                .collect();
            let mut others: Vec<usize> = self
                .customers
                .iter()
                .copied()
                .filter(|c| !usual.contains(c))
                .collect();
            self.rng.shuffle(&mut others);
            while usual.len() < per && !others.is_empty() {
                usual.push(others.remove(0));
            }
            self.add_technician(usual, false);
        }
    }

    /// The benign traveller: a Seattle user flies to London (over 10 hours), stays four days and
    /// flies back, about mid-way through the world.
    fn plan_trip(&mut self) {
        let Some(&t) = self.customers.first() else {
            return;
        };
        let candidate = self.tenants[t].members.iter().copied().find(|&a| {
            let acc = &self.accounts[a];
            acc.kind == Kind::Regular
                && acc.mode != Mode::Remote
                && acc.leaver_at.is_none()
                && !acc.commuter
                && acc.admin_account.is_none()
        });
        let Some(account) = candidate else { return };
        if self.days < 12 {
            return;
        }
        let london = catalog::city("London");
        let hotel_net = self.add_net_v4(1, london, 64550);
        let tz = CITIES[self.accounts[account].city].tz;
        let day = i64::from(self.days) / 2 - 3;
        // Leaves the office at 16:00 local, lands 11 hours later; comes back 4 days on.
        let depart = self.start + day * DAY + (16 - tz) * HOUR;
        let arrive = depart + 11 * HOUR;
        let leave = arrive + 4 * DAY;
        let back = leave + 11 * HOUR;
        self.trip = Some(Trip {
            account,
            depart,
            arrive,
            leave,
            back,
            to_city: london,
            hotel_net,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn world() -> World {
        World::build(
            5,
            Sizes {
                days: 20,
                tenants: 6,
                users_per_tenant: 12,
                technicians: 3,
            },
        )
    }

    #[test]
    fn every_customer_has_a_break_glass_account_an_admin_and_a_technician() {
        let w = world();
        for &t in &w.customers {
            let kinds: Vec<Kind> = w.tenants[t]
                .members
                .iter()
                .map(|&a| w.accounts[a].kind)
                .collect();
            assert!(kinds.contains(&Kind::BreakGlass));
            assert!(kinds.iter().any(|k| matches!(k, Kind::Admin { .. })));
            let served = w.accounts.iter().any(|a| {
                a.kind == Kind::Technician && (a.usual.contains(&t) || a.occasional == Some(t))
            });
            assert!(served, "customer {t} has no technician");
        }
    }

    #[test]
    fn the_same_seed_builds_the_same_world() {
        let (a, b) = (world(), world());
        let ids = |w: &World| {
            w.accounts
                .iter()
                .map(|a| (a.id, a.upn.clone()))
                .collect::<Vec<_>>()
        };
        assert_eq!(ids(&a), ids(&b));
        assert_ne!(
            ids(&a),
            ids(&World::build(
                6,
                Sizes {
                    days: 20,
                    tenants: 6,
                    users_per_tenant: 12,
                    technicians: 3
                }
            ))
        );
    }

    #[test]
    fn nets_never_repeat_an_address() {
        let w = world();
        let mut ips: Vec<&str> = w.nets.iter().map(|n| n.ip.as_str()).collect();
        ips.sort();
        let before = ips.len();
        ips.dedup();
        assert_eq!(before, ips.len());
    }
}
