//! The simulated CSP world: a partner tenant with technicians, customer tenants of Zipf-ish sizes
//! with their users, admins, break-glass accounts and guests, and the networks and devices they sign
//! in from. Built once from the seed; activity is generated from it afterwards.
//!
//! This file holds the types, and the questions activity and the stories ask of a built world
//! (who a technician shows as in a customer's logs, a tenant's accounts and groups, a random stream
//! per purpose). The building, in the order it runs:
//! - [`build`]: the tenants with their networks, each customer's population, the partner's
//!   technicians, the second partner and the traveller's trip.
//! - [`people`]: one account at a time: name, home, devices, MFA method, and the admin, guest and
//!   technician variants.

mod build;
mod people;

use super::catalog::Method;
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
    /// The office's IPv6 address (a customer's; the same place as `office_net`).
    pub office_v6_net: Option<NetId>,
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

impl World {
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
    /// The session id of account `a`'s sign-ins in tenant `tenant` on the UTC day of `t` from
    /// network `net`: one session per user and day over every benign network (office, home,
    /// phone, an office's IPv4 and IPv6 addresses), and a separate one from each attacker network,
    /// where an attacker signing in with the password starts a session of their own. Derived, so
    /// it draws nothing from the activity's streams.
    pub fn session_of(&self, tenant: usize, a: AcctId, t: Ticks, net: NetId) -> Guid {
        let id = self.accounts[a].id.0;
        let from = if self.attacker_nets.contains(&net) {
            net as u64 + 1
        } else {
            0
        };
        Rng::derive(
            self.seed,
            &[
                label("session"),
                tenant as u64,
                id as u64,
                (id >> 64) as u64,
                t.div_euclid(DAY) as u64,
                from,
            ],
        )
        .guid()
    }

    pub fn stream(&self, purpose: &str, id: u128) -> Rng {
        Rng::derive(self.seed, &[label(purpose), id as u64, (id >> 64) as u64])
    }
}
