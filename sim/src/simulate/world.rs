//! The simulated CSP world: a partner tenant with technicians, customer tenants of Zipf-ish sizes
//! with their users, admins, break-glass accounts and guests, and the networks and devices they sign
//! in from. Built once from the seed; activity is generated from it afterwards.

use std::net::Ipv6Addr;

use super::catalog::{self, CITIES, Method, roles};
use super::rng::{DAY, Guid, HOUR, Rng, Ticks, label};

pub type AcctId = usize;
pub type NetId = usize;
pub type DevId = usize;

/// How a tenant's logs are exported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    EventHub,
    Graph,
}

#[derive(Debug, Clone)]
pub struct ServicePrincipal {
    pub id: Guid,
    pub app_id: Guid,
    pub name: String,
}

#[derive(Debug, Clone)]
pub struct Tenant {
    pub id: Guid,
    pub name: String,
    pub domain: String,
    /// Short code for device names (`CONT-LT-1234`).
    pub code: String,
    pub hq: usize,
    pub branch: usize,
    pub format: Format,
    /// Logs are written for it (customers and the partner); guests' and other partners' home
    /// tenants are not.
    pub monitored: bool,
    pub office_net: NetId,
    pub branch_net: NetId,
    pub cloud_net: NetId,
    pub members: Vec<AcctId>,
    pub connector: ServicePrincipal,
    /// The Microsoft Graph service principal's object id in this tenant (consent records name it).
    pub graph_sp: Guid,
    pub ca_policies: [Guid; 2],
    /// The config names this tenant's break-glass account by UPN rather than object id.
    pub break_glass_by_upn: bool,
}

/// A network a sign-in comes from; its IP always geolocates to the same place.
#[derive(Debug, Clone)]
pub struct Net {
    pub ip: String,
    pub city: usize,
    pub lat: f64,
    pub lon: f64,
    pub asn: u32,
}

#[derive(Debug, Clone)]
pub struct Device {
    /// None for personal, unregistered devices.
    pub id: Option<Guid>,
    pub name: String,
    pub os: &'static str,
    pub browser: &'static str,
    pub managed: bool,
    pub trust: &'static str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Regular,
    /// A separate admin account of the person whose daily account is `person`.
    Admin {
        person: AcctId,
    },
    BreakGlass,
    Guest,
    Technician,
    /// An account created during an attack: exists, never signs in by itself.
    Backdoor,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Office,
    Hybrid,
    Remote,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grant {
    pub role: usize,
    pub eligible: bool,
}

/// One user object.
#[derive(Debug, Clone)]
pub struct Account {
    pub id: Guid,
    /// The directory the object lives in (a guest's resource tenant).
    pub tenant: usize,
    /// The tenant the person authenticates at (differs for guests).
    pub home_tenant: usize,
    pub kind: Kind,
    pub display: String,
    pub upn: String,
    pub city: usize,
    pub mode: Mode,
    pub home_net: NetId,
    pub mobile_net: Option<NetId>,
    pub laptop: DevId,
    pub phone: Option<DevId>,
    pub personal: Option<DevId>,
    pub method: Method,
    pub roles: Vec<Grant>,
    /// Part of an injected attack: never counted as a false positive.
    pub attack: bool,
    /// Signs in and works by itself (background activity).
    pub active: bool,
    pub admin_account: Option<AcctId>,
    pub commuter: bool,
    /// Disabled at this time (benign leavers and attack victims); activity stops then.
    pub leaver_at: Option<Ticks>,
    pub password_change_day: Option<u32>,
    pub security_info_day: Option<u32>,
    /// Technicians: the customers they usually serve, and one they visit only now and then.
    pub usual: Vec<usize>,
    pub occasional: Option<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupKind {
    Regular,
    AdminAgents,
    HelpdeskAgents,
    SalesAgents,
    /// A GDAP access group named in the config (`partner_access_groups`).
    Gdap,
    RoleAssignable(usize),
}

#[derive(Debug, Clone)]
pub struct Group {
    pub id: Guid,
    pub tenant: usize,
    pub name: String,
    pub kind: GroupKind,
}

/// A planned trip of the benign traveller.
#[derive(Debug, Clone, Copy)]
pub struct Trip {
    pub account: AcctId,
    pub depart: Ticks,
    pub arrive: Ticks,
    pub leave: Ticks,
    pub back: Ticks,
    pub to_city: usize,
    pub hotel_net: NetId,
}

#[derive(Debug)]
pub struct World {
    pub seed: u64,
    pub days: u32,
    pub start: Ticks,
    pub end: Ticks,
    pub tenants: Vec<Tenant>,
    pub accounts: Vec<Account>,
    pub nets: Vec<Net>,
    pub devices: Vec<Device>,
    pub groups: Vec<Group>,
    pub partner: usize,
    /// Another partner serving some customers (not monitored; its home tenant is configured).
    pub second_partner: usize,
    pub customers: Vec<usize>,
    pub guest_orgs: Vec<usize>,
    pub trip: Option<Trip>,
    pub attacker_nets: Vec<NetId>,
    rng: Rng,
    v4_next: [u8; 3],
    v6_next: u32,
}

/// Sizes from the command line.
#[derive(Debug, Clone, Copy)]
pub struct Sizes {
    pub days: u32,
    pub tenants: u32,
    pub users_per_tenant: u32,
    pub technicians: u32,
}

/// 2026-11-01T00:00:00Z: the world ends here, whatever the seed.
pub const END_UNIX_SECONDS: i64 = 1_793_491_200;

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
        let end = END_UNIX_SECONDS * super::rng::SEC;
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

    pub fn add_device(&mut self, device: Device) -> DevId {
        self.devices.push(device);
        self.devices.len() - 1
    }

    fn unique_name(&mut self, tenant: usize) -> (String, String) {
        for attempt in 0..200 {
            let first = *self.rng.pick(catalog::FIRST_NAMES);
            let last = *self.rng.pick(catalog::LAST_NAMES);
            let display = if attempt < 100 {
                format!("{first} {last}")
            } else {
                format!("{first} {last} {attempt}")
            };
            let upn = format!(
                "{}@{}",
                display.replace(' ', ".").to_ascii_lowercase(),
                self.tenants[tenant].domain
            );
            if !self.tenants[tenant]
                .members
                .iter()
                .any(|&a| self.accounts[a].upn == upn)
            {
                return (display, upn);
            }
        }
        unreachable!("200 attempts always find a free name")
    }

    /// A person with a managed laptop, usually a phone, sometimes a personal computer.
    pub fn add_person(&mut self, tenant: usize, kind: Kind, attack: bool) -> AcctId {
        let (display, upn) = self.unique_name(tenant);
        let t = &self.tenants[tenant];
        let (hq, branch, code) = (t.hq, t.branch, t.code.clone());
        let roll = self.rng.f64();
        let mut mode = if roll < 0.35 {
            Mode::Office
        } else if roll < 0.8 {
            Mode::Hybrid
        } else {
            Mode::Remote
        };
        let mut city = hq;
        if mode == Mode::Remote {
            let country = CITIES[hq].country;
            let others: Vec<usize> = (0..CITIES.len())
                .filter(|&c| CITIES[c].country == country && c != hq && c != branch)
                .filter(|&c| !catalog::ATTACKER_CITIES.contains(&CITIES[c].name))
                .collect();
            if !others.is_empty() && self.rng.chance(0.5) {
                city = *self.rng.pick(&others);
            }
        }
        if kind == Kind::Technician {
            mode = Mode::Remote;
        }
        let home_net = if kind == Kind::Technician {
            self.add_net_v4(0, city, 64600)
        } else {
            self.add_net_v6(0x10, city, 64600)
        };
        let mobile_net = self
            .rng
            .chance(0.85)
            .then(|| self.add_net_v6(0x20, city, 64700));
        let mac = self.rng.chance(0.1);
        let laptop = Device {
            id: Some(self.rng.guid()),
            name: format!("{code}-LT-{:04}", self.rng.range(1000, 9999)),
            os: if mac { "MacOs" } else { "Windows10" },
            browser: if mac {
                "Chrome 131.0.0"
            } else {
                "Edge 131.0.0"
            },
            managed: true,
            trust: if mac {
                "Azure AD registered"
            } else if self.rng.chance(0.3) {
                "Hybrid Azure AD joined"
            } else {
                "Azure AD joined"
            },
        };
        let laptop = self.add_device(laptop);
        let first = display.split(' ').next().unwrap_or("User").to_owned();
        let phone = mobile_net.map(|_| {
            let ios = self.rng.chance(0.6);
            let managed = self.rng.chance(0.6);
            let phone = Device {
                id: Some(self.rng.guid()),
                name: if ios {
                    format!("{first}'s iPhone")
                } else {
                    format!("{first}'s Pixel")
                },
                os: if ios { "Ios 18.1" } else { "Android 15" },
                browser: "",
                managed,
                trust: "Azure AD registered",
            };
            self.add_device(phone)
        });
        let personal = self.rng.chance(0.12).then(|| {
            let mac = self.rng.chance(0.5);
            self.add_device(Device {
                id: None,
                name: String::new(),
                os: if mac { "MacOs" } else { "Windows10" },
                browser: "Chrome 131.0.0",
                managed: false,
                trust: "",
            })
        });
        let m = self.rng.f64();
        let method = if m < 0.75 {
            Method::MobileApp
        } else if m < 0.85 {
            Method::Sms
        } else if m < 0.9 {
            Method::Oath
        } else if m < 0.93 {
            Method::PhoneCall
        } else if m < 0.97 {
            Method::Fido2
        } else {
            Method::Whfb
        };
        let days = i64::from(self.days);
        let id = self.rng.guid();
        let commuter =
            kind == Kind::Regular && mode != Mode::Remote && branch != hq && self.rng.chance(0.05);
        let leaver_at = (kind == Kind::Regular && self.rng.chance(0.02) && days > 6).then(|| {
            let day = self.rng.range(3, days - 2);
            self.start + day * DAY + (17 - CITIES[city].tz) * HOUR
        });
        let password_change_day = self
            .rng
            .chance(0.12)
            .then(|| self.rng.range(1, days - 1) as u32);
        let security_info_day = self
            .rng
            .chance(0.08)
            .then(|| self.rng.range(1, days - 1) as u32);
        let account = Account {
            id,
            tenant,
            home_tenant: tenant,
            kind,
            display,
            upn,
            city,
            mode,
            home_net,
            mobile_net,
            laptop,
            phone,
            personal,
            method,
            roles: Vec::new(),
            attack,
            active: !matches!(kind, Kind::BreakGlass | Kind::Backdoor),
            admin_account: None,
            commuter,
            leaver_at,
            password_change_day,
            security_info_day,
            usual: Vec::new(),
            occasional: None,
        };
        self.accounts.push(account);
        let a = self.accounts.len() - 1;
        self.tenants[tenant].members.push(a);
        a
    }

    /// A person's daily account plus a separate admin account holding `role`.
    pub fn add_admin(
        &mut self,
        tenant: usize,
        role: usize,
        eligible: bool,
        attack: bool,
    ) -> (AcctId, AcctId) {
        let person = self.add_person(tenant, Kind::Regular, attack);
        self.accounts[person].leaver_at = None;
        let p = self.accounts[person].clone();
        let domain = self.tenants[tenant].domain.clone();
        let local = p.upn.split('@').next().unwrap_or("admin");
        let admin = Account {
            id: self.rng.guid(),
            kind: Kind::Admin { person },
            display: format!("{} (Admin)", p.display),
            upn: format!("adm-{local}@{domain}"),
            mobile_net: None,
            phone: None,
            personal: None,
            method: if self.rng.chance(0.6) {
                Method::Fido2
            } else {
                Method::Whfb
            },
            roles: vec![Grant { role, eligible }],
            admin_account: None,
            commuter: false,
            password_change_day: None,
            security_info_day: None,
            ..p
        };
        self.accounts.push(admin);
        let a = self.accounts.len() - 1;
        self.tenants[tenant].members.push(a);
        self.accounts[person].admin_account = Some(a);
        (person, a)
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

    fn add_guest(&mut self, t: usize) -> AcctId {
        let org = *self.rng.pick(&self.guest_orgs.clone());
        let a = self.add_person(t, Kind::Guest, false);
        let city = catalog::city(self.rng.pick::<&str>(catalog::GUEST_CITIES));
        let home_net = self.add_net_v6(0x30, city, 64800);
        let org_domain = self.tenants[org].domain.clone();
        let g = &mut self.accounts[a];
        let local = g.upn.split('@').next().unwrap_or("guest").to_owned();
        g.upn = format!("{local}@{org_domain}");
        g.home_tenant = org;
        g.city = city;
        g.home_net = home_net;
        g.mode = Mode::Remote;
        g.mobile_net = None;
        g.phone = None;
        g.commuter = false;
        g.leaver_at = None;
        g.password_change_day = None;
        g.security_info_day = None;
        a
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

    /// A technician of the partner serving `usual` customers; with four or more, the last is one
    /// they visit only every other week.
    pub fn add_technician(&mut self, usual: Vec<usize>, attack: bool) -> AcctId {
        self.add_technician_of(self.partner, usual, attack)
    }

    fn add_technician_of(&mut self, partner: usize, mut usual: Vec<usize>, attack: bool) -> AcctId {
        let a = self.add_person(partner, Kind::Technician, attack);
        let occasional = if usual.len() >= 4 { usual.pop() } else { None };
        let acct = &mut self.accounts[a];
        acct.method = if acct.id.0.is_multiple_of(3) {
            Method::Whfb
        } else {
            Method::Fido2
        };
        acct.usual = usual;
        acct.occasional = occasional;
        acct.leaver_at = None;
        acct.personal = None;
        a
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

    pub fn partner_tenant(&self) -> &Tenant {
        &self.tenants[self.partner]
    }

    /// The UPN a technician shows in customer logs (`user_<object id hex>@partner`).
    pub fn technician_upn(&self, a: AcctId) -> String {
        format!(
            "user_{}@{}",
            self.accounts[a].id.simple(),
            self.tenants[self.accounts[a].home_tenant].domain
        )
    }

    pub fn technician_display(&self, a: AcctId) -> String {
        format!(
            "{} Technician",
            self.tenants[self.accounts[a].home_tenant].name
        )
    }

    /// Accounts of a tenant of one kind that do their own work (for picking actors and targets).
    pub fn members_of(&self, tenant: usize, pred: impl Fn(&Account) -> bool) -> Vec<AcctId> {
        self.tenants[tenant]
            .members
            .iter()
            .copied()
            .filter(|&a| pred(&self.accounts[a]))
            .collect()
    }

    pub fn group_of(&self, tenant: usize, kind: GroupKind) -> Option<usize> {
        self.groups
            .iter()
            .position(|g| g.tenant == tenant && g.kind == kind)
    }

    pub fn regular_groups(&self, tenant: usize) -> Vec<usize> {
        (0..self.groups.len())
            .filter(|&g| {
                self.groups[g].tenant == tenant && self.groups[g].kind == GroupKind::Regular
            })
            .collect()
    }

    /// Local midnight of day `day` of the world in a time zone, as event time.
    pub fn local_midnight(&self, day: i64, tz: i64) -> Ticks {
        self.start + day * DAY - tz * HOUR
    }

    /// A stream of random numbers for one purpose and one object.
    pub fn stream(&self, purpose: &str, id: u128) -> Rng {
        Rng::derive(self.seed, &[label(purpose), id as u64, (id >> 64) as u64])
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
