//! Labelled attack stories: for every detector, `--attacks-per-rule` stories that must fire it, each
//! on principals created for it (marked `attack`, so their alerts never count as false positives).
//! Variants cycle with the story number, so larger counts exercise more of each rule.

mod applications;
mod directory;
mod session_replay;
mod sign_in_flows;
mod sign_ins;
mod takeover;
mod tenant_settings;

use super::activity::{Gen, weekday};
use super::catalog::{self, CITIES};
use super::records::Rec;
use super::render::iso_secs;
use super::rng::{DAY, HOUR, MIN, Rng, Ticks, label};
use super::world::{AcctId, Device, Kind, NetId, World};

/// Every detector id, in catalogue order: the detection registry's, so a rule added there is a
/// rule the simulator must tell a story of (a test checks each has one).
pub fn rules() -> Vec<&'static str> {
    entrawatch_detect::registry::all()
        .iter()
        .map(|d| d.id())
        .collect()
}

/// Rules whose stories are planned after those of the others (see [`inject`]).
const ADDED_LATER: [&str; 11] = [
    "federation-settings-changed",
    "cross-tenant-access-changed",
    "conditional-access-weakened",
    "partner-sensitive-change",
    "mfa-fatigue",
    "device-code-sign-in",
    "app-credential-added",
    "sign-in-after-account-disabled",
    "session-token-replay",
    "account-takeover-chain",
    "gdap-relationship-risky",
];

/// One injected attack: the alert that must come of it.
#[derive(Debug, Clone)]
pub struct Label {
    pub rule: &'static str,
    pub variant: u32,
    pub tenant: usize,
    /// `user`, `ip` or `tenant`, as the alert's `principal.kind`.
    pub principal_kind: &'static str,
    pub principal_id: String,
    /// Other ids an alert for this story may name (the actor where the label names the target,
    /// the source IP of a technician...).
    pub alt_principal_ids: Vec<String>,
    /// Other tenants the alert may be filed under (the partner's home tenant for partner rules,
    /// every sprayed tenant).
    pub alt_tenants: Vec<usize>,
    pub from: Ticks,
    pub to: Ticks,
    pub story: String,
}

/// A stretch with no records of one stream in one tenant.
#[derive(Debug, Clone, Copy)]
pub struct Silence {
    pub tenant: usize,
    pub audits: bool,
    pub from: Ticks,
    pub to: Ticks,
}

#[derive(Debug, Default)]
pub struct Attacks {
    pub recs: Vec<Rec>,
    pub labels: Vec<Label>,
    pub silences: Vec<Silence>,
    /// Source IPs used by attackers (never benign).
    pub ips: Vec<String>,
    /// GDAP relationships of the partner with a customer (the tenant index and the Graph
    /// `delegatedAdminRelationship`), written as the customer's `gdapRelationships.json`.
    pub gdap: Vec<(usize, serde_json::Value)>,
}

/// Plans and writes every story; adds the accounts, devices and networks they need to the world
/// (before the background is generated, so victims have ordinary history too).
pub fn inject(w: &mut World, per_rule: u32) -> Attacks {
    let mut s = Stories {
        attacks: Attacks::default(),
        cursor: 0,
    };
    // Silences first: the other stories keep clear of them.
    for k in 0..per_rule {
        s.log_source_silent(w, k);
    }
    // Stories of rules added after the first catalogue run last (on the next tenant slots), so a
    // seed keeps the world and the stories of the earlier rules as they were and evaluations
    // before and after stay comparable row by row.
    let order = rules()
        .into_iter()
        .filter(|r| !ADDED_LATER.contains(r))
        .chain(ADDED_LATER.iter().copied());
    for (i, rule) in order.enumerate() {
        if rule == "log-source-silent" {
            continue;
        }
        for k in 0..per_rule {
            let mut rng = Rng::derive(w.seed, &[label("attack"), label(rule), u64::from(k)]);
            let tenant = s.tenant_for(w, i, k);
            s.story(w, &mut rng, rule, k, tenant);
        }
    }
    s.attacks
        .labels
        .sort_by(|a, b| (a.rule, a.variant).cmp(&(b.rule, b.variant)));
    s.attacks
}

/// Who a privileged sign-in story is about, and where they work from.
struct Privileged {
    account: AcctId,
    tz: i64,
    /// The network of the working day (office, or a technician's home).
    net: NetId,
    home: NetId,
    laptop: usize,
    text: String,
    alt_tenants: Vec<usize>,
}

struct Stories {
    attacks: Attacks,
    cursor: usize,
}

#[allow(clippy::too_many_arguments)]
fn user_label(
    w: &World,
    rule: &'static str,
    k: u32,
    a: AcctId,
    tenant: usize,
    from: Ticks,
    to: Ticks,
    story: String,
) -> Label {
    Label {
        rule,
        variant: k,
        tenant,
        principal_kind: "user",
        principal_id: w.accounts[a].id.to_string(),
        alt_principal_ids: Vec::new(),
        alt_tenants: Vec::new(),
        from,
        to,
        story,
    }
}

impl Stories {
    /// Customers in turn, skipping those silenced by `log-source-silent` stories where possible.
    fn tenant_for(&mut self, w: &World, rule: usize, k: u32) -> usize {
        let n = w.customers.len();
        let silenced: Vec<usize> = self.attacks.silences.iter().map(|s| s.tenant).collect();
        for step in 0..n {
            let t = w.customers[(rule * 5 + k as usize * 3 + step) % n];
            if !silenced.contains(&t) || step + 1 == n {
                return t;
            }
        }
        w.customers[0]
    }

    /// A time on a working day at least 9 days in (baselines are learnt by then), between local
    /// hours `lo` and `hi` in time zone `tz`, clear of every silence in `tenants` for `span`.
    fn when(
        &self,
        w: &World,
        rng: &mut Rng,
        tenants: &[usize],
        tz: i64,
        hours: (i64, i64),
        span: Ticks,
    ) -> Ticks {
        self.when_from(w, rng, tenants, tz, hours, span, 9)
    }

    /// As [`Self::when`], from day `first` on.
    #[allow(clippy::too_many_arguments)]
    fn when_from(
        &self,
        w: &World,
        rng: &mut Rng,
        tenants: &[usize],
        tz: i64,
        (lo, hi): (i64, i64),
        span: Ticks,
        first: i64,
    ) -> Ticks {
        let first = first.min(i64::from(w.days) - 1);
        let last = i64::from(w.days) - 1;
        let mut fallback = None;
        for attempt in 0..200 {
            let day = rng.range(first, last.max(first + 1));
            if attempt < 100 && weekday(w, day) >= 5 {
                continue;
            }
            let at = w.local_midnight(day, tz) + rng.range(lo * HOUR, hi * HOUR);
            if at + span >= w.end - 30 * MIN || at < w.start {
                continue;
            }
            fallback.get_or_insert(at);
            let clash = self.attacks.silences.iter().any(|s| {
                tenants.contains(&s.tenant) && at - 3 * HOUR < s.to && at + span + 3 * HOUR > s.from
            });
            if !clash {
                return at;
            }
        }
        fallback.unwrap_or(w.end - DAY)
    }

    /// Every customer, starting at `t`, those no silence story touches first.
    fn rotation(&self, w: &World, t: usize) -> Vec<usize> {
        let n = w.customers.len();
        let start = w.customers.iter().position(|&c| c == t).unwrap_or(0);
        let silenced = |c: &usize| self.attacks.silences.iter().any(|s| s.tenant == *c);
        let all: Vec<usize> = (0..n).map(|i| w.customers[(start + i) % n]).collect();
        let mut out: Vec<usize> = all.iter().copied().filter(|c| !silenced(c)).collect();
        out.extend(all.iter().copied().filter(|c| silenced(c)));
        out
    }

    fn attacker_net(&mut self, w: &mut World, rng: &mut Rng, far_from: usize) -> NetId {
        let here = CITIES[far_from];
        let far: Vec<&str> = catalog::ATTACKER_CITIES
            .iter()
            .copied()
            .filter(|c| {
                let city = CITIES[catalog::city(c)];
                (city.lat - here.lat).abs() + (city.lon - here.lon).abs() > 20.0
            })
            .collect();
        let city = catalog::city(rng.pick::<&str>(if far.is_empty() {
            catalog::ATTACKER_CITIES
        } else {
            &far
        }));
        let net = w.add_net_v4(2, city, 64900 + self.cursor as u32);
        self.cursor += 1;
        self.attacks.ips.push(w.nets[net].ip.clone());
        net
    }

    fn attacker_device(w: &mut World) -> usize {
        w.add_device(Device {
            id: None,
            name: String::new(),
            os: "Linux",
            browser: "Chrome 131.0.0",
            managed: false,
            trust: "",
        })
    }

    fn victim(w: &mut World, tenant: usize) -> AcctId {
        let a = w.add_person(tenant, Kind::Regular, true);
        let acc = &mut w.accounts[a];
        acc.leaver_at = None;
        acc.password_change_day = None;
        acc.security_info_day = None;
        acc.commuter = false;
        a
    }

    fn victim_admin(w: &mut World, tenant: usize, role: usize) -> AcctId {
        Self::victim_admin_as(w, tenant, role, false)
    }

    /// An admin whose role is active, or eligible (PIM: activated on ordinary working days, the
    /// activation expiring hours later; eligible still counts as privileged).
    fn victim_admin_as(w: &mut World, tenant: usize, role: usize, eligible: bool) -> AcctId {
        let (person, admin) = w.add_admin(tenant, role, eligible, true);
        let p = &mut w.accounts[person];
        p.password_change_day = None;
        p.security_info_day = None;
        p.commuter = false;
        admin
    }

    /// A privileged principal for a sign-in story in customer `t`, by `variant % 3`: an admin
    /// account whose `role` is active, one whose role is PIM-eligible (activated on working days,
    /// the activation expiring hours later), or a GDAP technician who serves `t`.
    fn privileged(
        &mut self,
        w: &mut World,
        rng: &mut Rng,
        t: usize,
        variant: u32,
        role: usize,
        role_name: &str,
    ) -> Privileged {
        let tz = CITIES[w.tenants[t].hq].tz;
        if variant % 3 == 2 {
            let tech = Self::technician(w, rng, &[t], 2);
            w.accounts[tech].usual.push(t);
            let a = &w.accounts[tech];
            self.attacks.ips.push(w.nets[a.home_net].ip.clone());
            return Privileged {
                account: tech,
                tz,
                net: a.home_net,
                home: a.home_net,
                laptop: a.laptop,
                text: format!(
                    "a GDAP technician of {} working in {}",
                    w.partner_tenant().name,
                    w.tenants[t].name
                ),
                alt_tenants: vec![w.partner],
            };
        }
        let eligible = variant % 3 == 1;
        let admin = Self::victim_admin_as(w, t, role, eligible);
        let a = &w.accounts[admin];
        Privileged {
            account: admin,
            tz,
            net: w.tenants[t].office_net,
            home: a.home_net,
            laptop: a.laptop,
            text: if eligible {
                format!("a PIM-eligible {role_name} (not yet activated today)")
            } else {
                format!("an active {role_name}")
            },
            alt_tenants: Vec::new(),
        }
    }

    /// The tenant's first benign admin account (for records a victim's own admin writes).
    fn tenant_admin(w: &World, tenant: usize) -> Option<AcctId> {
        w.members_of(tenant, |a| {
            matches!(a.kind, Kind::Admin { .. }) && !a.attack
        })
        .first()
        .copied()
    }

    fn emit(&mut self, w: &World, f: impl FnOnce(&mut Gen<'_>)) {
        let mut g = Gen {
            w,
            out: Vec::new(),
            notes: Vec::new(),
        };
        f(&mut g);
        self.attacks.recs.extend(g.out);
    }

    fn label(&mut self, l: Label) {
        self.attacks.labels.push(l);
    }

    fn story(&mut self, w: &mut World, rng: &mut Rng, rule: &'static str, k: u32, t: usize) {
        match rule {
            "mfa-not-satisfied" => self.mfa_not_satisfied(w, rng, k, t),
            "legacy-auth-sign-in" => self.legacy_auth_sign_in(w, rng, k, t),
            "weak-mfa-privileged" => self.weak_mfa_privileged(w, rng, k, t),
            "unmanaged-device-privileged" => self.unmanaged_device_privileged(w, rng, k, t),
            "risky-sign-in" => self.risky_sign_in_story(w, rng, k, t),
            "new-country-sign-in" => self.new_country_sign_in(w, rng, k, t),
            "impossible-travel" => self.impossible_travel(w, rng, k, t),
            "password-spray" => self.password_spray(w, rng, k, t),
            "brute-force" => self.brute_force(w, rng, k, t),
            "mfa-fatigue" => self.mfa_fatigue(w, rng, k, t),
            "device-code-sign-in" => self.device_code(w, rng, k, t),
            "session-token-replay" => self.session_replay(w, rng, k, t),
            "disabled-account-sign-in" => self.disabled_account_sign_in(w, rng, k, t),
            "sign-in-after-account-disabled" => self.sign_in_after_account_disabled(w, rng, k, t),
            "admin-collaboration-use" => self.admin_collaboration_use(w, rng, k, t),
            "partner-new-tenant" => self.partner_new_tenant(w, rng, k, t),
            "partner-tenant-fanout" => self.partner_fanout(w, rng, k, t),
            "break-glass-account-used" => self.break_glass_account_used(w, rng, k, t),
            "privileged-role-assigned" => self.privileged_role(w, rng, k, t),
            "admin-agents-membership-changed" => self.admin_agents(w, rng, k),
            "partner-created-account" => self.partner_created(w, rng, k, t),
            "partner-sensitive-change" => self.partner_sensitive(w, rng, k, t),
            "security-info-changed-privileged" => self.security_info(w, rng, k, t),
            "consent-grant-risky" => self.consent(w, rng, k, t),
            "app-credential-added" => self.app_credential(w, rng, k, t),
            "federation-settings-changed" => self.federation(w, rng, k, t),
            "cross-tenant-access-changed" => self.cross_tenant(w, rng, k, t),
            "conditional-access-weakened" => self.conditional_access(w, rng, k, t),
            "risky-user" => self.risky_user_story(w, rng, k, t),
            "account-takeover-chain" => self.takeover_chain(w, rng, k, t),
            "gdap-relationship-risky" => self.gdap_relationship(w, rng, k, t),
            // A rule without a story tells none; the test below names it.
            _ => {}
        }
    }

    /// `gdap-relationship-risky`: the partner's GDAP relationship with the customer, modified on
    /// a working day, grants Global Administrator for two years (variant 0), Security
    /// Administrator (1), or Helpdesk Administrator renewed by 180 days (2); a least-privilege,
    /// 90-day relationship with the same customer stays quiet beside it.
    fn gdap_relationship(&mut self, w: &mut World, rng: &mut Rng, k: u32, t: usize) {
        const GLOBAL_ADMIN: &str = "62e90394-69f5-4237-9190-012177145e10";
        const SECURITY_ADMIN: &str = "194ae4cb-b126-40b2-bd5b-6091b380977d";
        const HELPDESK_ADMIN: &str = "729827e3-9c14-49f7-bb1b-9608f156bbb8";
        const USER_ADMIN: &str = "fe930be7-5e62-47db-91af-98c3a49a38b1";
        let tz = CITIES[w.tenants[t].hq].tz;
        let at = self.when(w, rng, &[t], tz, (9, 17), HOUR);
        let customer = &w.tenants[t];
        let partner = &w.tenants[w.partner];
        let (roles, days, extend, what): (&[&str], u32, &str, &str) = match k % 3 {
            0 => (
                &[GLOBAL_ADMIN, USER_ADMIN],
                730,
                "PT0S",
                "grants Global Administrator for two years",
            ),
            1 => (
                &[SECURITY_ADMIN, HELPDESK_ADMIN],
                90,
                "PT0S",
                "grants Security Administrator (tier 0)",
            ),
            _ => (&[HELPDESK_ADMIN], 180, "P180D", "renews itself by 180 days"),
        };
        let relationship = |id: String, name: String, roles: &[&str], days: u32, extend: &str| {
            serde_json::json!({
                "@odata.type": "#microsoft.graph.delegatedAdminRelationship",
                "id": id,
                "displayName": name,
                "duration": format!("P{days}D"),
                "customer": {"tenantId": customer.id.to_string(), "displayName": customer.name},
                "accessDetails": {"unifiedRoles": roles.iter().map(|r| serde_json::json!({"roleDefinitionId": r})).collect::<Vec<_>>()},
                "status": "active",
                "autoExtendDuration": extend,
                "createdDateTime": iso_secs(at - HOUR),
                "activatedDateTime": iso_secs(at),
                "lastModifiedDateTime": iso_secs(at),
                "endDateTime": iso_secs(at + i64::from(days) * DAY),
            })
        };
        let risky = relationship(
            format!("{}-{}", rng.guid(), rng.guid()),
            format!("{} admin {k}", partner.name),
            roles,
            days,
            extend,
        );
        let quiet = relationship(
            format!("{}-{}", rng.guid(), rng.guid()),
            format!("{} helpdesk {k}", partner.name),
            &[HELPDESK_ADMIN],
            90,
            "PT0S",
        );
        self.attacks.gdap.push((t, risky));
        self.attacks.gdap.push((t, quiet));
        self.label(Label {
            rule: "gdap-relationship-risky",
            variant: k,
            tenant: t,
            principal_kind: "tenant",
            principal_id: customer.id.to_string(),
            alt_principal_ids: Vec::new(),
            alt_tenants: Vec::new(),
            from: at - MIN,
            to: at + HOUR,
            story: format!(
                "{}: the GDAP relationship of partner {} {what}",
                customer.name, partner.name
            ),
        });
    }

    fn log_source_silent(&mut self, w: &mut World, k: u32) {
        let n = w.customers.len();
        let t = w.customers[(n - 1 - (k as usize % n)) % n];
        let tz = CITIES[w.tenants[t].hq].tz;
        let mut rng = Rng::derive(
            w.seed,
            &[label("attack"), label("log-source-silent"), u64::from(k)],
        );
        let audits = k % 2 == 1;
        let span = if audits { 30 * HOUR } else { 8 * HOUR };
        // Day 8 on: after the 7-day learning of the stream, and (in the smallest worlds) a day
        // before the other stories.
        let from = self.when_from(w, &mut rng, &[], tz, (8, 9), span, 8);
        let to = from + span;
        self.attacks.silences.push(Silence {
            tenant: t,
            audits,
            from,
            to,
        });
        let what = if audits {
            "audit log stops for 30 hours, working hours included"
        } else {
            "sign-in stream (all categories) stops for 8 hours of the working day while the other tenants continue"
        };
        self.label(Label {
            rule: "log-source-silent",
            variant: k,
            tenant: t,
            principal_kind: "tenant",
            principal_id: w.tenants[t].id.to_string(),
            alt_principal_ids: Vec::new(),
            alt_tenants: Vec::new(),
            from,
            to,
            story: format!("{}: {what}", w.tenants[t].name),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simulate::world::Sizes;

    #[test]
    fn every_rule_of_the_registry_has_a_story() {
        let mut w = World::build(
            5,
            Sizes {
                days: 10,
                tenants: 6,
                users_per_tenant: 8,
                technicians: 2,
            },
        );
        let attacks = inject(&mut w, 1);
        let without: Vec<&str> = rules()
            .into_iter()
            .filter(|r| !attacks.labels.iter().any(|l| l.rule == *r))
            .collect();
        assert!(without.is_empty(), "rules without a story: {without:?}");
        for later in ADDED_LATER {
            assert!(rules().contains(&later), "{later} is not a registered rule");
        }
    }
}
