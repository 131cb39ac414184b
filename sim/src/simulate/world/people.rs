//! Accounts, one at a time: a person with a name unique in the tenant, a work mode (office, hybrid
//! or remote, a remote worker sometimes in another city of the country), home and mobile networks,
//! a managed laptop, usually a phone, sometimes a personal computer, an MFA method and the days of
//! their benign changes; then the accounts built from a person: a separate admin account, a guest
//! from another organisation, a partner's technician.

use super::{Account, AcctId, DevId, Device, Grant, Kind, Mode, World};
use crate::simulate::catalog::{self, CITIES, Method};
use crate::simulate::rng::{DAY, HOUR};

impl World {
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

    pub(super) fn add_guest(&mut self, t: usize) -> AcctId {
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

    /// A technician of the partner serving `usual` customers; with four or more, the last is one
    /// they visit only every other week.
    pub fn add_technician(&mut self, usual: Vec<usize>, attack: bool) -> AcctId {
        self.add_technician_of(self.partner, usual, attack)
    }

    pub(super) fn add_technician_of(
        &mut self,
        partner: usize,
        mut usual: Vec<usize>,
        attack: bool,
    ) -> AcctId {
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
}
