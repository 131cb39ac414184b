//! Benign activity: what every person, technician, guest, service principal and tenant does on
//! ordinary days, including the look-alikes every detector must stay quiet on (interrupts, typos,
//! token refreshes, PIM activations, travel, personal devices, reader roles, user consents...).
//! Each account and tenant draws from its own random stream.

mod partners;
mod tenant;

pub use tenant::rotation_actor;

use super::audits::{self, UserChange};
use super::catalog::{self, CITIES, Method, apps};
use super::records::{Actor, Auth, Cat, Rec, Risk, SignIn, Who};
use super::rng::{DAY, HOUR, MIN, Rng, SEC, Ticks};
use super::world::{AcctId, Kind, Mode, NetId, World};

/// A benign look-alike worth naming in `benign.jsonl`: what it resembles and why it must not fire.
#[derive(Debug, Clone)]
pub struct Note {
    pub rule: &'static str,
    pub tenant: usize,
    pub principal: String,
    pub from: Ticks,
    pub to: Ticks,
    pub text: String,
}

/// Monday = 0 for day `day` of the world.
pub fn weekday(w: &World, day: i64) -> i64 {
    (w.start.div_euclid(DAY) + day + 3).rem_euclid(7)
}

pub struct Gen<'a> {
    pub w: &'a World,
    pub out: Vec<Rec>,
    pub notes: Vec<Note>,
}

/// Everything benign, unsorted.
pub fn background(w: &World) -> (Vec<Rec>, Vec<Note>) {
    let mut g = Gen {
        w,
        out: Vec::new(),
        notes: Vec::new(),
    };
    for a in 0..w.accounts.len() {
        let acc = &w.accounts[a];
        let monitored = w.tenants[acc.tenant].monitored;
        if !acc.active || !(monitored || acc.kind == Kind::Technician) {
            continue;
        }
        match acc.kind {
            Kind::Regular => g.person(a),
            Kind::Technician => {
                // Another partner's technician: only their visits to our customers are ours.
                if monitored {
                    g.person(a);
                }
                g.technician_visits(a);
            }
            Kind::Guest => g.guest(a),
            Kind::Admin { .. } | Kind::BreakGlass | Kind::Backdoor => {}
        }
    }
    for t in 0..w.tenants.len() {
        if w.tenants[t].monitored {
            g.connector(t);
            g.tenant_audits(t);
            g.ca_upkeep(t);
            g.secret_rotation(t);
            g.tenant_risk(t);
        }
    }
    if let Some(c) = w
        .customers
        .iter()
        .copied()
        .max_by_key(|&t| (w.tenants[t].members.len(), std::cmp::Reverse(t)))
    {
        g.typo_morning(c);
        g.mfa_mis_tap(c);
        g.meeting_room(c);
        g.office_dual_stack(c);
    }
    // While an account is disabled by mistake (until its re-enable), it does not sign in.
    let paused: std::collections::HashMap<AcctId, (Ticks, Ticks)> = (0..w.tenants.len())
        .filter(|&t| w.tenants[t].monitored)
        .filter_map(|t| tenant::mistaken_disable(w, t))
        .map(|(a, from, to)| (a, (from, to)))
        .collect();
    if !paused.is_empty() {
        g.out.retain(|r| {
            !matches!(r, Rec::SignIn(s) if matches!(s.who, Who::User(a)
                if paused.get(&a).is_some_and(|&(from, to)| s.t >= from && s.t < to)))
        });
    }
    // While the traveller is flying or away, only the trip's own sign-ins (hotel Wi-Fi) exist,
    // whichever part of the world generated the others.
    if let Some(tr) = w.trip {
        g.out.retain(|r| {
            !matches!(r, Rec::SignIn(s) if s.who == Who::User(tr.account)
                && s.t >= tr.depart && s.t < tr.back && s.net != tr.hotel_net)
        });
    }
    (g.out, g.notes)
}

/// How an account proves itself interactively, most days.
pub fn usual_auth(rng: &mut Rng, method: Method) -> Auth {
    match method {
        Method::Fido2 if rng.chance(0.5) => Auth::Passwordless(Method::Fido2),
        Method::Whfb => Auth::Passwordless(Method::Whfb),
        m => Auth::Mfa(m),
    }
}

impl Gen<'_> {
    fn note(
        &mut self,
        rule: &'static str,
        tenant: usize,
        principal: String,
        from: Ticks,
        to: Ticks,
        text: String,
    ) {
        self.notes.push(Note {
            rule,
            tenant,
            principal,
            from,
            to,
            text,
        });
    }

    #[allow(clippy::too_many_arguments)]
    pub fn sign_in(
        &mut self,
        t: Ticks,
        tenant: usize,
        a: AcctId,
        cat: Cat,
        app: usize,
        net: NetId,
        device: Option<usize>,
        auth: Auth,
        err: u32,
        rng: &mut Rng,
    ) {
        let mut s = SignIn::new(rng, t, tenant, Who::User(a), cat, app, net, device);
        s.auth = auth;
        s.err = err;
        self.push(s);
    }

    pub fn push(&mut self, mut s: SignIn) {
        // Tenants without Entra ID P2 show sign-in risk as `hidden` (with riskState none).
        if s.risk.is_none() && s.tenant % 4 == 1 && s.cat != Cat::ServicePrincipal {
            s.risk = Some(Risk {
                during: "hidden",
                aggregated: "hidden",
                state: "none",
                detail: "hidden",
                types: &[],
            });
        }
        self.out.push(Rec::SignIn(s));
    }

    /// A token refresh (non-interactive, single factor by design).
    #[allow(clippy::too_many_arguments)]
    fn refresh(
        &mut self,
        t: Ticks,
        tenant: usize,
        a: AcctId,
        app: usize,
        net: NetId,
        device: Option<usize>,
        rng: &mut Rng,
    ) {
        self.sign_in(
            t,
            tenant,
            a,
            Cat::NonInteractive,
            app,
            net,
            device,
            Auth::Refresh,
            0,
            rng,
        );
    }

    /// An interactive sign-in as the logs show it: now and then a mistyped password, the MFA
    /// interrupt (50074) and the 'Keep me signed in' interrupt (50140) before the success at `t`.
    #[allow(clippy::too_many_arguments)]
    pub fn interactive(
        &mut self,
        t: Ticks,
        tenant: usize,
        a: AcctId,
        app: usize,
        net: NetId,
        device: Option<usize>,
        auth: Auth,
        rng: &mut Rng,
    ) {
        if rng.chance(0.035) {
            self.sign_in(
                t - rng.range(60, 150) * SEC,
                tenant,
                a,
                Cat::Interactive,
                app,
                net,
                device,
                Auth::PasswordFail,
                50126,
                rng,
            );
        }
        if matches!(auth, Auth::Mfa(_) | Auth::PasswordPrevMfa) && rng.chance(0.35) {
            self.sign_in(
                t - rng.range(15, 45) * SEC,
                tenant,
                a,
                Cat::Interactive,
                app,
                net,
                device,
                Auth::MfaRequired,
                50074,
                rng,
            );
        }
        if rng.chance(0.2) {
            self.sign_in(
                t - rng.range(3, 10) * SEC,
                tenant,
                a,
                Cat::Interactive,
                app,
                net,
                device,
                auth,
                50140,
                rng,
            );
        }
        self.sign_in(
            t,
            tenant,
            a,
            Cat::Interactive,
            app,
            net,
            device,
            auth,
            0,
            rng,
        );
    }

    /// A person's days: phone refreshes around the clock, work-hours sign-ins from the office or
    /// home, desktop token refreshes, the admin account's sessions, now and then a personal device.
    fn person(&mut self, a: AcctId) {
        let w = self.w;
        let acc = &w.accounts[a];
        let mut rng = w.stream("person", acc.id.0);
        let tz = CITIES[acc.city].tz;
        let tenant = acc.tenant;
        let t = &w.tenants[tenant];
        let first = self.out.len();
        for day in 0..i64::from(w.days) {
            let mid = w.local_midnight(day, tz);
            let wd = weekday(w, day);
            if let (Some(phone), Some(mobile)) = (acc.phone, acc.mobile_net) {
                let mut at = mid + rng.range(0, 4 * HOUR);
                while at < mid + DAY {
                    let app = *rng.pick(catalog::USER_MOBILE_APPS);
                    self.refresh(at, tenant, a, app, mobile, Some(phone), &mut rng);
                    at += rng.range(4 * HOUR, 7 * HOUR);
                }
            }
            if wd < 5 && rng.chance(0.93) {
                let start = mid
                    + rng.around(
                        8 * HOUR + 15 * MIN,
                        35 * MIN,
                        6 * HOUR + 30 * MIN,
                        10 * HOUR + 30 * MIN,
                    );
                let end = start + rng.around(8 * HOUR + 45 * MIN, 40 * MIN, 7 * HOUR, 10 * HOUR);
                let net = if acc.commuter && wd == 3 {
                    t.branch_net
                } else {
                    match acc.mode {
                        Mode::Office => t.office_net,
                        Mode::Hybrid if rng.chance(0.5) => t.office_net,
                        _ => acc.home_net,
                    }
                };
                if acc.commuter && wd == 3 && day < 8 {
                    self.note("impossible-travel", tenant, acc.id.to_string(), start, end, format!(
                        "commuter works from the {} branch on Thursdays (under 500 km from home)", CITIES[t.branch].name));
                }
                let laptop = Some(acc.laptop);
                let auth = usual_auth(&mut rng, acc.method);
                self.interactive(
                    start,
                    tenant,
                    a,
                    *rng.pick(catalog::USER_WEB_APPS),
                    net,
                    laptop,
                    auth,
                    &mut rng,
                );
                for p in [0.6, 0.2] {
                    if rng.chance(p) {
                        let at =
                            start + rng.range(2 * HOUR, (end - start - HOUR).max(2 * HOUR + 1));
                        // Later in the day the MFA claim from the morning often still counts.
                        let auth = if rng.chance(0.5) {
                            Auth::PasswordPrevMfa
                        } else {
                            usual_auth(&mut rng, acc.method)
                        };
                        self.interactive(
                            at,
                            tenant,
                            a,
                            *rng.pick(catalog::USER_WEB_APPS),
                            net,
                            laptop,
                            auth,
                            &mut rng,
                        );
                    }
                }
                let mut at = start + rng.range(10 * MIN, 40 * MIN);
                while at < end {
                    let app = *rng.pick(catalog::USER_DESKTOP_APPS);
                    self.refresh(at, tenant, a, app, net, laptop, &mut rng);
                    at += rng.range(90 * MIN, 180 * MIN);
                }
                if let Some(admin) = acc.admin_account {
                    self.admin_sessions(&mut rng, admin, start, end, net);
                }
                if let Some(personal) = acc.personal
                    && rng.chance(0.08)
                {
                    let at = mid + rng.around(20 * HOUR, HOUR, 18 * HOUR, 23 * HOUR);
                    let auth = usual_auth(&mut rng, acc.method);
                    self.interactive(
                        at,
                        tenant,
                        a,
                        *rng.pick(catalog::USER_WEB_APPS),
                        acc.home_net,
                        Some(personal),
                        auth,
                        &mut rng,
                    );
                }
            } else if wd >= 5 && rng.chance(0.12) {
                let at = mid + rng.range(11 * HOUR, 18 * HOUR);
                let device = acc.personal.unwrap_or(acc.laptop);
                let auth = usual_auth(&mut rng, acc.method);
                self.interactive(
                    at,
                    tenant,
                    a,
                    *rng.pick(catalog::USER_WEB_APPS),
                    acc.home_net,
                    Some(device),
                    auth,
                    &mut rng,
                );
                self.refresh(
                    at + rng.range(20 * MIN, 90 * MIN),
                    tenant,
                    a,
                    apps::OFFICE_DESKTOP,
                    acc.home_net,
                    Some(device),
                    &mut rng,
                );
            }
        }
        if let Some(day) = acc.password_change_day {
            self.password_change(&mut rng, a, i64::from(day));
        }
        if let Some(day) = acc.security_info_day {
            let at = w.local_midnight(i64::from(day), tz) + rng.range(9 * HOUR, 17 * HOUR);
            let me = Actor::User {
                account: a,
                net: Some(acc.home_net),
            };
            self.out.push(Rec::SignIn({
                let mut s = SignIn::new(
                    &mut rng,
                    at - 2 * MIN,
                    tenant,
                    Who::User(a),
                    Cat::Interactive,
                    apps::MY_SIGNINS,
                    acc.home_net,
                    Some(acc.laptop),
                );
                s.auth = Auth::Mfa(acc.method);
                s
            }));
            self.out.push(Rec::Audit(audits::security_info(
                w,
                &mut rng,
                at,
                tenant,
                me,
                a,
                "User registered security info",
                "User registered Authenticator App with Notification and Code",
            )));
            self.out.push(Rec::Audit(audits::mfa_service_update(
                w,
                &mut rng,
                at + 3 * SEC,
                tenant,
                a,
            )));
            if day < 6 || acc.admin_account.is_some() {
                self.note(
                    "security-info-changed-privileged",
                    tenant,
                    acc.id.to_string(),
                    at,
                    at,
                    "a non-privileged user registers a new authenticator (self-service)".into(),
                );
            }
        }
        // Nothing after the end, before the start, after leaving, or while flying.
        let trip = w.trip.filter(|tr| tr.account == a);
        let leaver = acc.leaver_at.unwrap_or(Ticks::MAX);
        let tail = self.out.split_off(first);
        self.out.extend(tail.into_iter().filter(|r| {
            let at = r.time();
            at >= w.start
                && at < w.end
                && at < leaver
                && !trip.is_some_and(|tr| at >= tr.depart && at < tr.back)
        }));
        if trip.is_some() {
            self.trip(&mut rng, a);
        }
    }

    /// The admin account's sessions inside its person's working day: a PIM activation first when
    /// the role is eligible, a phishing-resistant sign-in to an admin portal on the managed
    /// laptop, tool token refreshes, a second portal on the existing session, admin changes.
    fn admin_sessions(
        &mut self,
        rng: &mut Rng,
        admin: AcctId,
        start: Ticks,
        end: Ticks,
        net: NetId,
    ) {
        let w = self.w;
        let acc = &w.accounts[admin];
        if !rng.chance(0.7) {
            return;
        }
        let tenant = acc.tenant;
        let sessions = 1 + i64::from(rng.chance(0.3));
        for _ in 0..sessions {
            let t0 = start + rng.range(30 * MIN, (end - start - 90 * MIN).max(31 * MIN));
            if let Some(g) = acc.roles.iter().find(|g| g.eligible) {
                let mut list = Vec::new();
                let (at, hours) = (t0 - rng.range(2 * MIN, 6 * MIN), rng.range(4, 9));
                audits::pim_activation(w, rng, at, admin, g.role, hours, &mut list);
                self.out.extend(list.into_iter().map(Rec::Audit));
            }
            let auth = usual_auth(rng, acc.method);
            self.interactive(
                t0,
                tenant,
                admin,
                *rng.pick(catalog::ADMIN_APPS),
                net,
                Some(acc.laptop),
                auth,
                rng,
            );
            let mut at = t0;
            for _ in 0..rng.range(1, 4) {
                at += rng.range(8 * MIN, 40 * MIN);
                self.refresh(
                    at,
                    tenant,
                    admin,
                    *rng.pick(catalog::ADMIN_TOOL_APPS),
                    net,
                    Some(acc.laptop),
                    rng,
                );
            }
            if rng.chance(0.35) {
                at += rng.range(5 * MIN, 30 * MIN);
                self.sign_in(
                    at,
                    tenant,
                    admin,
                    Cat::Interactive,
                    *rng.pick(catalog::ADMIN_APPS),
                    net,
                    Some(acc.laptop),
                    Auth::PasswordPrevMfa,
                    0,
                    rng,
                );
            }
            for _ in 0..rng.range(0, 4) {
                at += rng.range(2 * MIN, 20 * MIN);
                self.admin_action(rng, at, admin, net);
            }
        }
    }

    /// One routine change by an admin (or a technician) on the tenant's ordinary users and groups.
    pub fn admin_action(&mut self, rng: &mut Rng, at: Ticks, admin: AcctId, net: NetId) {
        let w = self.w;
        let tenant = w.accounts[admin].tenant;
        self.action_in(rng, at, tenant, admin, net);
    }

    fn action_in(
        &mut self,
        rng: &mut Rng,
        at: Ticks,
        tenant: usize,
        actor_acct: AcctId,
        net: NetId,
    ) {
        let w = self.w;
        let regular = w.members_of(tenant, |a| {
            a.kind == Kind::Regular && !a.attack && a.leaver_at.is_none_or(|l| l > at + DAY)
        });
        if regular.is_empty() {
            return;
        }
        let target = *rng.pick(&regular);
        let actor = Actor::User {
            account: actor_acct,
            net: Some(net),
        };
        let technician = w.accounts[actor_acct].kind == Kind::Technician;
        let roll = rng.f64();
        let audit = if roll < 0.3 {
            let change = if rng.chance(0.5) {
                UserChange::JobTitle
            } else {
                UserChange::Department
            };
            audits::update_user(w, rng, at, tenant, actor, target, change)
        } else if roll < 0.55 {
            let groups = w.regular_groups(tenant);
            let g = *rng.pick(&groups);
            let add = rng.chance(0.8);
            audits::group_member(
                w,
                rng,
                at,
                tenant,
                actor,
                audits::user_target(w, target),
                g,
                add,
            )
        } else if roll < 0.8 {
            audits::reset_password(w, rng, at, tenant, actor, target)
        } else if roll < 0.9 && !technician {
            // An admin account's department changes: an update of a privileged user that touches
            // no authentication information.
            let admins = w.members_of(tenant, |a| {
                matches!(a.kind, Kind::Admin { .. }) && !a.attack
            });
            let Some(&adm) = admins.first() else { return };
            self.note(
                "security-info-changed-privileged",
                tenant,
                w.accounts[adm].id.to_string(),
                at,
                at,
                "Update user of an admin account touching Department only".into(),
            );
            audits::update_user(w, rng, at, tenant, actor, adm, UserChange::Department)
        } else if !technician {
            let id = rng.guid();
            let first = *rng.pick(catalog::FIRST_NAMES);
            let last = *rng.pick(catalog::LAST_NAMES);
            let upn = format!(
                "{}.{}@{}",
                first.to_ascii_lowercase(),
                last.to_ascii_lowercase(),
                w.tenants[tenant].domain
            );
            self.note(
                "partner-created-account",
                tenant,
                w.accounts[actor_acct].id.to_string(),
                at,
                at,
                "the tenant's own admin creates an account for a new hire".into(),
            );
            audits::add_user(rng, at, tenant, actor, id, &upn, &format!("{first} {last}"))
        } else {
            audits::update_user(w, rng, at, tenant, actor, target, UserChange::JobTitle)
        };
        self.out.push(Rec::Audit(audit));
    }

    /// A self-service password change, then the phone mail app retrying the old password a few
    /// times, a quarter of an hour apart, until the user updates it.
    fn password_change(&mut self, rng: &mut Rng, a: AcctId, day: i64) {
        let w = self.w;
        let acc = &w.accounts[a];
        let tenant = acc.tenant;
        let at = w.local_midnight(day, CITIES[acc.city].tz) + rng.range(9 * HOUR, 16 * HOUR);
        self.out.push(Rec::Audit(audits::change_password_self(
            w,
            rng,
            at,
            tenant,
            a,
            Some(acc.home_net),
        )));
        let (Some(phone), Some(mobile)) = (acc.phone, acc.mobile_net) else {
            return;
        };
        let mut t = at + rng.range(15 * MIN, 30 * MIN);
        let n = rng.range(2, 5);
        for _ in 0..n {
            self.sign_in(
                t,
                tenant,
                a,
                Cat::NonInteractive,
                apps::OUTLOOK_MOBILE,
                mobile,
                Some(phone),
                Auth::PasswordFail,
                50126,
                rng,
            );
            t += rng.range(15 * MIN, 25 * MIN);
        }
        self.refresh(t, tenant, a, apps::OUTLOOK_MOBILE, mobile, Some(phone), rng);
        self.note("brute-force", tenant, acc.id.to_string(), at, t, format!("phone retries the old password {n} times, 15-25 minutes apart, after a password change"));
    }

    /// The traveller's stay in London: hotel Wi-Fi, the phone and the laptop, local daytime.
    fn trip(&mut self, rng: &mut Rng, a: AcctId) {
        let w = self.w;
        let Some(tr) = w.trip else { return };
        let acc = &w.accounts[a];
        let tenant = acc.tenant;
        let mut at = tr.arrive + rng.range(40 * MIN, 90 * MIN);
        while at < tr.leave - HOUR {
            if let Some(phone) = acc.phone {
                self.refresh(
                    at,
                    tenant,
                    a,
                    *rng.pick(catalog::USER_MOBILE_APPS),
                    tr.hotel_net,
                    Some(phone),
                    rng,
                );
            }
            let local_hour =
                (at + i64::from(CITIES[tr.to_city].tz as i32) * HOUR).rem_euclid(DAY) / HOUR;
            if (8..18).contains(&local_hour) && rng.chance(0.3) {
                let auth = usual_auth(rng, acc.method);
                self.interactive(
                    at + 5 * MIN,
                    tenant,
                    a,
                    apps::OUTLOOK_WEB,
                    tr.hotel_net,
                    Some(acc.laptop),
                    auth,
                    rng,
                );
            }
            at += rng.range(2 * HOUR, 4 * HOUR);
        }
        let from = CITIES[acc.city].name;
        self.note("impossible-travel", tenant, acc.id.to_string(), tr.depart, tr.back, format!(
            "flies {from} to London (about 7,700 km) with 11 hours between sign-ins, and back: about 700 km/h"));
        self.note(
            "new-country-sign-in",
            tenant,
            acc.id.to_string(),
            tr.arrive,
            tr.leave,
            "a non-privileged traveller signs in from GB for the first time (low at most)".into(),
        );
    }
}
