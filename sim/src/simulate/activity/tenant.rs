//! What a tenant does as a whole: its backup connector's hourly sign-ins, devices and directory
//! sync writing audits day and night, leavers, reader roles, PIM eligibility, invitations,
//! consents, the break-glass password rotation, and Identity Protection noise that must not
//! alert.

use super::{Gen, usual_auth, weekday};
use crate::simulate::audits::{self, CaPolicy, Consent, UserChange};
use crate::simulate::catalog::{self, CITIES, ROLES, apps, roles};
use crate::simulate::records::{
    Actor, Auth, Cat, Client, Detection, Rec, Risk, RiskyUser, SignIn, Who,
};
use crate::simulate::rng::{DAY, HOUR, MIN, Rng, SEC, Ticks};
use crate::simulate::world::{AcctId, Kind, Mode, World};

impl Gen<'_> {
    /// The tenant's backup connector: a service principal signing in about hourly, day and night.
    pub(super) fn connector(&mut self, t: usize) {
        let w = self.w;
        let mut rng = w.stream("connector", w.tenants[t].id.0);
        let mut at = w.start + rng.range(0, 30 * MIN);
        while at < w.end {
            let mut s = SignIn::new(
                &mut rng,
                at,
                t,
                Who::Connector(t),
                Cat::ServicePrincipal,
                apps::OFFICE_DESKTOP,
                w.tenants[t].cloud_net,
                None,
            );
            s.client = Client::MobileDesktop;
            s.user_agent = Some(catalog::ua::PYTHON);
            self.out.push(Rec::SignIn(s));
            at += rng.range(80 * MIN, 120 * MIN);
        }
    }

    /// Tenant-wide audits: devices checking in every few hours (so the audit stream never sleeps
    /// a day), leavers disabled, a reader role granted, invitations, user consents to low-risk
    /// scopes.
    pub(super) fn tenant_audits(&mut self, t: usize) {
        let w = self.w;
        let mut rng = w.stream("tenant-audits", w.tenants[t].id.0);
        let devices: Vec<usize> = w.tenants[t]
            .members
            .iter()
            .filter(|&&a| !w.accounts[a].attack)
            .flat_map(|&a| [Some(w.accounts[a].laptop), w.accounts[a].phone])
            .flatten()
            .collect();
        let mut at = w.start + rng.range(0, 3 * HOUR);
        while at < w.end && !devices.is_empty() {
            let d = *rng.pick(&devices);
            self.out
                .push(Rec::Audit(audits::update_device(w, &mut rng, at, t, d)));
            at += rng.range(2 * HOUR, 5 * HOUR);
        }
        let admins = w.members_of(t, |a| matches!(a.kind, Kind::Admin { .. }) && !a.attack);
        let Some(&admin) = admins.first() else { return };
        let tz = CITIES[w.tenants[t].hq].tz;
        let admin_net = w.tenants[t].office_net;
        // Nightly directory sync touches a few objects, admin accounts included: updates of
        // privileged users that change no authentication information.
        let synced = w.members_of(t, |a| {
            matches!(a.kind, Kind::Regular | Kind::Admin { .. }) && !a.attack
        });
        let sync = Actor::App {
            name: "Microsoft Entra Connect Sync",
            sp: audits::service_sp(w, t, "entra-connect"),
        };
        // The break-glass password is rotated once a month: an audit, never a sign-in.
        for bg in w.members_of(t, |a| a.kind == Kind::BreakGlass && !a.attack) {
            let day = rng.range(1, i64::from(w.days) - 1);
            let at = w.local_midnight(day, tz) + rng.range(10 * HOUR, 16 * HOUR);
            let actor = Actor::User {
                account: admin,
                net: Some(admin_net),
            };
            self.out.push(Rec::Audit(audits::reset_password(
                w, &mut rng, at, t, actor, bg,
            )));
            self.note(
                "break-glass-account-used",
                t,
                w.accounts[bg].id.to_string(),
                at,
                at,
                "an admin rotates the break-glass account's password (an audit; the account never signs in)".into(),
            );
        }
        for day in 0..i64::from(w.days) {
            let at = w.local_midnight(day, tz) + rng.range(22 * HOUR, 23 * HOUR);
            let target = if rng.chance(0.3) {
                admin
            } else {
                *rng.pick(&synced)
            };
            let rec = audits::update_user(
                w,
                &mut rng,
                at,
                t,
                sync.clone(),
                target,
                UserChange::LastDirSync,
            );
            self.out.push(Rec::Audit(rec));
        }
        for a in w.tenants[t].members.clone() {
            let acc = &w.accounts[a];
            let Some(left) = acc.leaver_at else { continue };
            if acc.attack || left >= w.end {
                continue;
            }
            let actor = Actor::User {
                account: admin,
                net: Some(admin_net),
            };
            self.out.push(Rec::Audit(audits::disable_account(
                w, &mut rng, left, t, actor, a,
            )));
            if let (Some(phone), Some(mobile)) = (acc.phone, acc.mobile_net) {
                let n = rng.range(1, 3);
                let mut when = left + rng.range(HOUR, 6 * HOUR);
                for _ in 0..n {
                    if when < w.end {
                        self.sign_in(
                            when,
                            t,
                            a,
                            Cat::NonInteractive,
                            apps::OUTLOOK_MOBILE,
                            mobile,
                            Some(phone),
                            Auth::None,
                            50057,
                            &mut rng,
                        );
                    }
                    when += rng.range(30 * MIN, 3 * HOUR);
                }
                self.note("disabled-account-sign-in", t, acc.id.to_string(), left, when, format!(
                    "leaver's phone tries the disabled account {n} time(s) from one IP (under 3 attempts and 2 IPs)"));
            }
        }
        if let Some((a, from, to)) = mistaken_disable(w, t) {
            let actor = || Actor::User {
                account: admin,
                net: Some(admin_net),
            };
            let mut rng = w.stream("mistaken-disable-audits", w.tenants[t].id.0);
            self.out.push(Rec::Audit(audits::disable_account(
                w,
                &mut rng,
                from,
                t,
                actor(),
                a,
            )));
            self.out.push(Rec::Audit(audits::enable_account(
                w,
                &mut rng,
                to,
                t,
                actor(),
                a,
            )));
            self.note(
                "sign-in-after-account-disabled",
                t,
                w.accounts[a].id.to_string(),
                from,
                to + 8 * HOUR,
                "an ordinary user disabled by mistake and enabled again within two hours, then signing in as usual".into(),
            );
        }
        let regular = w.members_of(t, |a| {
            a.kind == Kind::Regular && !a.attack && a.leaver_at.is_none()
        });
        if regular.is_empty() {
            return;
        }
        let days = i64::from(w.days);
        // An admin made eligible for one more role through PIM (time-bound): not outside PIM.
        let day = rng.range(1, days - 1);
        let when = w.local_midnight(day, tz) + rng.range(10 * HOUR, 16 * HOUR);
        let target = *rng.pick(&admins);
        let actor = Actor::User {
            account: admin,
            net: Some(admin_net),
        };
        self.out.push(Rec::Audit(audits::pim_record(
            w,
            &mut rng,
            when,
            t,
            actor,
            audits::user_target(w, target),
            roles::SECURITY_ADMIN,
            "Add eligible member to role in PIM completed (timebound)",
            "Eligible for 180 days",
        )));
        self.note(
            "privileged-role-assigned",
            t,
            w.accounts[target].id.to_string(),
            when,
            when,
            "an admin account made eligible for Security Administrator through PIM (time-bound)"
                .into(),
        );
        // A reader role (not in the privileged catalogue) granted outside PIM.
        let day = rng.range(1, days - 1);
        let when = w.local_midnight(day, tz) + rng.range(10 * HOUR, 16 * HOUR);
        let who = *rng.pick(&regular);
        let role = *rng.pick(&[
            roles::REPORTS_READER,
            roles::MESSAGE_CENTER_READER,
            roles::DIRECTORY_READERS,
        ]);
        let actor = Actor::User {
            account: admin,
            net: Some(admin_net),
        };
        self.out.push(Rec::Audit(audits::role_member(
            w,
            &mut rng,
            when,
            t,
            actor,
            audits::user_target(w, who),
            role,
            "Add member to role",
        )));
        self.note(
            "privileged-role-assigned",
            t,
            w.accounts[who].id.to_string(),
            when,
            when,
            format!(
                "{} (not a privileged role) granted outside PIM",
                ROLES[role].name
            ),
        );
        // Guests invited by ordinary users, and consents to low-risk scopes.
        for week in 0..days / 7 + 1 {
            let day = week * 7 + rng.range(0, 5);
            if day >= days {
                break;
            }
            let when = w.local_midnight(day, tz) + rng.range(9 * HOUR, 17 * HOUR);
            let who = *rng.pick(&regular);
            let actor = Actor::User {
                account: who,
                net: Some(w.accounts[who].home_net),
            };
            if rng.chance(0.5) {
                let first = rng.pick(catalog::FIRST_NAMES).to_ascii_lowercase();
                let org = rng
                    .pick(catalog::GUEST_ORGS)
                    .to_ascii_lowercase()
                    .replace(' ', "");
                let email = format!("{first}@{org}.example");
                let domain = format!("{}.onmicrosoft.com", w.tenants[t].code.to_ascii_lowercase());
                let id = rng.guid();
                self.out.push(Rec::Audit(audits::invite(
                    &mut rng, when, t, actor, id, &email, &domain,
                )));
                self.note(
                    "partner-created-account",
                    t,
                    w.accounts[who].id.to_string(),
                    when,
                    when,
                    "an ordinary user invites a guest (not a partner identity)".into(),
                );
            } else if rng.chance(0.5) {
                let app =
                    *rng.pick(&["Acme Scheduler", "Timesheet Buddy", "Contoso Survey Add-in"]);
                let c = Consent {
                    app,
                    scopes: "User.Read openid profile offline_access Calendars.Read",
                    admin: false,
                    all_principals: false,
                    app_only: false,
                };
                let sp = rng.guid();
                for a in audits::consent(w, &mut rng, when, t, actor, sp, c) {
                    self.out.push(Rec::Audit(a));
                }
                self.note(
                    "consent-grant-risky",
                    t,
                    w.accounts[who].id.to_string(),
                    when,
                    when,
                    format!("user consents {app} to User.Read Calendars.Read for themselves only"),
                );
            }
        }
    }

    /// The tenant's admin keeping Conditional Access in order from the office, on its own random
    /// stream: a policy renamed (nothing else changed), and the report-only legacy-authentication
    /// block enforced with a leftover exclusion removed (tightening). `conditional-access-weakened` must stay below medium on both.
    pub(super) fn ca_upkeep(&mut self, t: usize) {
        let w = self.w;
        let admins = w.members_of(t, |a| matches!(a.kind, Kind::Admin { .. }) && !a.attack);
        let Some(&admin) = admins.first() else { return };
        let mut rng = w.stream("ca-upkeep", w.tenants[t].id.0);
        let tz = CITIES[w.tenants[t].hq].tz;
        let days = i64::from(w.days);
        let actor = || Actor::User {
            account: admin,
            net: Some(w.tenants[t].office_net),
        };
        let created = w.start - rng.range(60 * DAY, 400 * DAY);
        let mfa = CaPolicy {
            id: rng.guid(),
            name: "MFA all users".into(),
            state: "enabled",
            include_users: vec!["All".into()],
            include_roles: Vec::new(),
            exclude_users: Vec::new(),
            exclude_groups: vec![rng.guid().to_string()],
            operator: "OR",
            controls: vec!["mfa"],
            created,
            modified: created + DAY,
        };
        let day = rng.range(1, days - 1);
        let when = w.local_midnight(day, tz) + rng.range(10 * HOUR, 16 * HOUR);
        let mut renamed = mfa.clone();
        renamed.name = "CA001 - Require MFA for all users".into();
        renamed.modified = when;
        self.out.push(Rec::Audit(audits::ca_policy(
            &mut rng,
            when,
            t,
            actor(),
            &mfa,
            Some(&renamed),
        )));
        self.note(
            "conditional-access-weakened",
            t,
            w.accounts[admin].id.to_string(),
            when,
            when,
            "the tenant's admin renames a Conditional Access policy (nothing else changes)".into(),
        );
        let legacy = CaPolicy {
            id: rng.guid(),
            name: "Block legacy authentication".into(),
            state: "enabledForReportingButNotEnforced",
            include_users: vec!["All".into()],
            include_roles: Vec::new(),
            exclude_users: vec![w.accounts[admin].id.to_string()],
            exclude_groups: Vec::new(),
            operator: "OR",
            controls: vec!["block"],
            created,
            modified: created + DAY,
        };
        let day = rng.range(1, days - 1);
        let when = w.local_midnight(day, tz) + rng.range(10 * HOUR, 16 * HOUR);
        let mut enforced = legacy.clone();
        enforced.state = "enabled";
        enforced.exclude_users.clear();
        enforced.modified = when;
        self.out.push(Rec::Audit(audits::ca_policy(
            &mut rng,
            when,
            t,
            actor(),
            &legacy,
            Some(&enforced),
        )));
        self.note(
            "conditional-access-weakened",
            t,
            w.accounts[admin].id.to_string(),
            when,
            when,
            "the tenant's admin enforces a report-only policy and removes an exclusion (tightening)"
                .into(),
        );
    }

    /// Identity Protection noise that must not alert: low risk still at risk, medium risk the user
    /// remediated with MFA, a dismissed user, and a high-risk sign-in Conditional Access blocked.
    pub(super) fn tenant_risk(&mut self, t: usize) {
        let w = self.w;
        let mut rng = w.stream("tenant-risk", w.tenants[t].id.0);
        let regular = w.members_of(t, |a| {
            a.kind == Kind::Regular
                && !a.attack
                && a.leaver_at.is_none()
                && a.admin_account.is_none()
        });
        if regular.is_empty() || w.days < 3 {
            return;
        }
        let tz = CITIES[w.tenants[t].hq].tz;
        let days = i64::from(w.days);
        let at = |rng: &mut Rng| {
            w.local_midnight(rng.range(1, days - 1), tz) + rng.range(9 * HOUR, 17 * HOUR)
        };
        if rng.chance(0.6) {
            let who = *rng.pick(&regular);
            let when = at(&mut rng);
            let risk = Risk {
                during: "low",
                aggregated: "low",
                state: "atRisk",
                detail: "none",
                types: &["unfamiliarFeatures"],
            };
            self.risky_sign_in(&mut rng, t, who, when, risk, "low", "atRisk", "none");
            self.out.push(Rec::RiskyUser(RiskyUser {
                t: when + 3 * MIN,
                tenant: t,
                user: who,
                level: "low",
                state: "atRisk",
                detail: "none",
            }));
            self.note(
                "risky-sign-in",
                t,
                w.accounts[who].id.to_string(),
                when,
                when + 3 * MIN,
                "low-risk sign-in still at risk (only medium and high count)".into(),
            );
        }
        if rng.chance(0.5) {
            let who = *rng.pick(&regular);
            let when = at(&mut rng);
            let risk = Risk {
                during: "medium",
                aggregated: "medium",
                state: "remediated",
                detail: "userPassedMFADrivenByRiskBasedPolicy",
                types: &["unfamiliarFeatures"],
            };
            self.risky_sign_in(
                &mut rng,
                t,
                who,
                when,
                risk,
                "medium",
                "remediated",
                "userPassedMFADrivenByRiskBasedPolicy",
            );
            self.out.push(Rec::RiskyUser(RiskyUser {
                t: when + 2 * MIN,
                tenant: t,
                user: who,
                level: "none",
                state: "remediated",
                detail: "userPassedMFADrivenByRiskBasedPolicy",
            }));
            self.note(
                "risky-user",
                t,
                w.accounts[who].id.to_string(),
                when,
                when + 2 * MIN,
                "medium sign-in risk the user remediated with MFA".into(),
            );
        }
        if rng.chance(0.3) {
            let who = *rng.pick(&regular);
            let when = at(&mut rng);
            self.out.push(Rec::RiskyUser(RiskyUser {
                t: when,
                tenant: t,
                user: who,
                level: "none",
                state: "dismissed",
                detail: "adminDismissedAllRiskForUser",
            }));
            self.note(
                "risky-user",
                t,
                w.accounts[who].id.to_string(),
                when,
                when,
                "risk dismissed by an admin".into(),
            );
        }
        if rng.chance(0.4) {
            let who = *rng.pick(&regular);
            let when = at(&mut rng);
            let net = *rng.pick(&w.attacker_nets);
            let mut s = SignIn::new(
                &mut rng,
                when,
                t,
                Who::User(who),
                Cat::Interactive,
                apps::OFFICE_HOME,
                net,
                None,
            );
            s.auth = Auth::MfaRequired;
            s.err = 53003;
            s.risk = Some(Risk {
                during: "high",
                aggregated: "high",
                state: "atRisk",
                detail: "none",
                types: &["anonymizedIPAddress"],
            });
            self.push(s);
            self.note(
                "risky-sign-in",
                t,
                w.accounts[who].id.to_string(),
                when,
                when,
                "high-risk sign-in blocked by Conditional Access (53003, not a success)".into(),
            );
        }
        if rng.chance(0.5) {
            // An old mail client trying IMAP, blocked by Conditional Access.
            let who = *rng.pick(&regular);
            let when = at(&mut rng);
            let mut s = SignIn::new(
                &mut rng,
                when,
                t,
                Who::User(who),
                Cat::Interactive,
                apps::EXCHANGE_LEGACY,
                w.accounts[who].home_net,
                None,
            );
            s.client = Client::Legacy("IMAP4");
            s.auth = Auth::PasswordOnly;
            s.err = 53003;
            self.push(s);
            self.note(
                "legacy-auth-sign-in",
                t,
                w.accounts[who].id.to_string(),
                when,
                when,
                "IMAP4 attempt blocked by Conditional Access (not a success)".into(),
            );
        }
        if rng.chance(0.5) {
            // A scanner tries user names the tenant does not have (50034, not a password
            // failure), from one IP, within ten minutes.
            let net = *rng.pick(&w.attacker_nets);
            let when = at(&mut rng);
            let n = rng.range(12, 16) as usize;
            for i in 0..n {
                let mut s = SignIn::new(
                    &mut rng,
                    when + i as i64 * 40 * SEC,
                    t,
                    Who::Unknown(i % crate::simulate::records::UNKNOWN_NAMES.len()),
                    Cat::Interactive,
                    apps::OFFICE_HOME,
                    net,
                    None,
                );
                s.auth = Auth::None;
                s.err = 50034;
                self.push(s);
            }
            self.note(
                "password-spray",
                t,
                w.nets[net].ip.clone(),
                when,
                when + n as i64 * 40 * SEC,
                format!(
                    "one IP tries {n} user names that do not exist (50034, not a password failure)"
                ),
            );
        }
        if rng.chance(0.4) {
            // Caps lock: four wrong passwords in three minutes, then the right one.
            let who = *rng.pick(&regular);
            let acc = &w.accounts[who];
            let when = at(&mut rng);
            for i in 0..4 {
                self.sign_in(
                    when + i * 40 * SEC,
                    t,
                    who,
                    Cat::Interactive,
                    apps::OFFICE_HOME,
                    acc.home_net,
                    Some(acc.laptop),
                    Auth::PasswordFail,
                    50126,
                    &mut rng,
                );
            }
            let auth = usual_auth(&mut rng, acc.method);
            self.sign_in(
                when + 3 * MIN,
                t,
                who,
                Cat::Interactive,
                apps::OFFICE_HOME,
                acc.home_net,
                Some(acc.laptop),
                auth,
                0,
                &mut rng,
            );
            self.note(
                "brute-force",
                t,
                acc.id.to_string(),
                when,
                when + 3 * MIN,
                "four mistyped passwords in three minutes, then a success (threshold 10 in 10 minutes)".into(),
            );
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub fn risky_sign_in(
        &mut self,
        rng: &mut Rng,
        t: usize,
        who: AcctId,
        when: Ticks,
        risk: Risk,
        level: &'static str,
        state: &'static str,
        detail: &'static str,
    ) {
        let w = self.w;
        let acc = &w.accounts[who];
        let mut s = SignIn::new(
            rng,
            when,
            t,
            Who::User(who),
            Cat::Interactive,
            apps::OFFICE_HOME,
            acc.home_net,
            Some(acc.laptop),
        );
        s.auth = Auth::Mfa(acc.method);
        s.risk = Some(risk);
        let (id, corr) = (s.id, s.corr);
        self.push(s);
        self.out.push(Rec::Detection(Detection {
            id: rng.hex(64),
            tenant: t,
            user: who,
            kind: risk.types.first().copied().unwrap_or("unfamiliarFeatures"),
            level,
            state,
            detail,
            timing: "realtime",
            activity: "signin",
            activity_time: when,
            detected: when + rng.range(20, 120) * SEC,
            updated: when + rng.range(2 * MIN, 4 * MIN),
            net: Some(acc.home_net),
            request: Some((id, corr)),
        }));
    }

    /// Monday-morning typos in the biggest tenant: four people mistype their password from the
    /// office within 15 minutes, then sign in (one IP, 4 users: far under a spray).
    pub(super) fn typo_morning(&mut self, t: usize) {
        let w = self.w;
        let mut rng = w.stream("typo-morning", w.tenants[t].id.0);
        let office = w.members_of(t, |a| {
            a.kind == Kind::Regular && !a.attack && a.leaver_at.is_none() && a.mode == Mode::Office
        });
        if office.len() < 4 {
            return;
        }
        let Some(day) = (3..i64::from(w.days)).find(|&d| weekday(w, d) == 0) else {
            return;
        };
        let start = w.local_midnight(day, CITIES[w.tenants[t].hq].tz) + 8 * HOUR + 50 * MIN;
        let net = w.tenants[t].office_net;
        for (i, &a) in office.iter().take(4).enumerate() {
            let at = start + i as i64 * 4 * MIN + rng.range(0, 120) * SEC;
            let acc = &w.accounts[a];
            self.sign_in(
                at,
                t,
                a,
                Cat::Interactive,
                apps::OFFICE_HOME,
                net,
                Some(acc.laptop),
                Auth::PasswordFail,
                50126,
                &mut rng,
            );
            let auth = usual_auth(&mut rng, acc.method);
            self.sign_in(
                at + rng.range(30, 90) * SEC,
                t,
                a,
                Cat::Interactive,
                apps::OFFICE_HOME,
                net,
                Some(acc.laptop),
                auth,
                0,
                &mut rng,
            );
        }
        self.note(
            "password-spray",
            t,
            w.nets[net].ip.clone(),
            start,
            start + 15 * MIN,
            "four users mistype their password from the office IP within 15 minutes, then succeed"
                .into(),
        );
    }

    /// One user denies an MFA prompt by mistake (a mis-tap on "No, it's not me"), then signs in
    /// with an approved push a minute later: not MFA fatigue.
    pub(super) fn mfa_mis_tap(&mut self, t: usize) {
        let w = self.w;
        let mut rng = w.stream("mfa-mis-tap", w.tenants[t].id.0);
        let office = w.members_of(t, |a| {
            a.kind == Kind::Regular && !a.attack && a.leaver_at.is_none() && a.mode == Mode::Office
        });
        let Some(&a) = office.get(4).or(office.first()) else {
            return;
        };
        let Some(day) = (4..i64::from(w.days)).find(|&d| weekday(w, d) == 1) else {
            return;
        };
        let at =
            w.local_midnight(day, CITIES[w.tenants[t].hq].tz) + 10 * HOUR + rng.range(0, 30) * MIN;
        let net = w.tenants[t].office_net;
        let acc = &w.accounts[a];
        self.sign_in(
            at,
            t,
            a,
            Cat::Interactive,
            apps::OFFICE_HOME,
            net,
            Some(acc.laptop),
            Auth::MfaDenied(catalog::Method::MobileApp),
            500121,
            &mut rng,
        );
        let back = at + rng.range(40, 90) * SEC;
        self.sign_in(
            back,
            t,
            a,
            Cat::Interactive,
            apps::OFFICE_HOME,
            net,
            Some(acc.laptop),
            Auth::Mfa(catalog::Method::MobileApp),
            0,
            &mut rng,
        );
        self.note(
            "mfa-fatigue",
            t,
            acc.id.to_string(),
            at,
            back,
            "a user denies one MFA push by mistake, then approves the next a minute later".into(),
        );
    }

    /// A meeting room's Teams Rooms device signing in by device code each working morning with
    /// a user's account: a shared device, low at most.
    pub(super) fn meeting_room(&mut self, t: usize) {
        let w = self.w;
        let mut rng = w.stream("meeting-room", w.tenants[t].id.0);
        let Some(room) = w.devices.iter().position(|d| d.name.starts_with("MTR-")) else {
            return;
        };
        let office = w.members_of(t, |a| {
            a.kind == Kind::Regular && !a.attack && a.leaver_at.is_none() && a.mode == Mode::Office
        });
        let Some(&a) = office.get(5).or(office.last()) else {
            return;
        };
        let tz = CITIES[w.tenants[t].hq].tz;
        let net = w.tenants[t].office_net;
        let (mut first, mut last) = (None, 0);
        for day in 0..i64::from(w.days) {
            if weekday(w, day) >= 5 {
                continue;
            }
            let at = w.local_midnight(day, tz) + 8 * HOUR + rng.range(30, 55) * MIN;
            let mut s = SignIn::new(
                &mut rng,
                at,
                t,
                Who::User(a),
                Cat::Interactive,
                apps::TEAMS_DESKTOP,
                net,
                Some(room),
            );
            s.auth = Auth::Mfa(catalog::Method::MobileApp);
            s.protocol = "deviceCode";
            self.push(s);
            first.get_or_insert(at);
            last = at;
        }
        if let Some(first) = first {
            self.note(
                "device-code-sign-in",
                t,
                w.accounts[a].id.to_string(),
                first,
                last,
                "a meeting room's Teams Rooms device (MTR-Boardroom-01) signs in by device code every working morning (low at most)".into(),
            );
        }
    }
}

/// The automation that rotates application secrets in a tenant (`app-credential-added`'s
/// rotation identity in the world's config).
pub fn rotation_actor(w: &crate::simulate::world::World, t: usize) -> Actor {
    Actor::App {
        name: "Secret Rotation Runbook",
        sp: audits::service_sp(w, t, "secret-rotation"),
    }
}

impl Gen<'_> {
    /// The weekly secret rotation of the tenant's payroll connector by an automation identity:
    /// a new secret added, the old one removed an hour later. A benign look-alike of
    /// `app-credential-added` that must stay below medium (the automation is a configured
    /// rotation identity).
    pub(super) fn secret_rotation(&mut self, t: usize) {
        let w = self.w;
        let mut rng = w.stream("payroll-connector-rotation", w.tenants[t].id.0);
        let app_object = rng.guid();
        let app_id = rng.guid();
        let app = (app_object, app_id, "Payroll Connector");
        let tz = CITIES[w.tenants[t].hq].tz;
        let mut keys = vec![audits::secret_key(&mut rng, "rotation-0")];
        let mut day = rng.range(0, 7);
        let mut n = 1;
        while day < i64::from(w.days) {
            let at = w.local_midnight(day, tz) + rng.range(2 * HOUR, 4 * HOUR);
            if at + HOUR >= w.end {
                break;
            }
            let old = keys.clone();
            keys.push(audits::secret_key(&mut rng, &format!("rotation-{n}")));
            self.out.push(Rec::Audit(audits::app_credentials(
                &mut rng,
                at,
                t,
                rotation_actor(w, t),
                "Update application – Certificates and secrets management",
                app,
                &old,
                &keys,
            )));
            let added = keys.clone();
            keys.remove(0);
            self.out.push(Rec::Audit(audits::app_credentials(
                &mut rng,
                at + HOUR,
                t,
                rotation_actor(w, t),
                "Update application – Certificates and secrets management",
                app,
                &added,
                &keys,
            )));
            self.note(
                "app-credential-added",
                t,
                app_object.to_string(),
                at,
                at + HOUR,
                "the rotation automation adds the weekly secret of the payroll connector and removes the old one"
                    .into(),
            );
            day += 7;
            n += 1;
        }
    }

    /// One session over the office's IPv4 and IPv6 addresses: a user signs in at the office over
    /// IPv4 and the desktop apps refresh over IPv6 minutes later (same country, same city), on a
    /// few working mornings: `session-token-replay` stays quiet.
    pub(super) fn office_dual_stack(&mut self, t: usize) {
        let w = self.w;
        let Some(v6) = w.tenants[t].office_v6_net else {
            return;
        };
        let mut rng = w.stream("office-dual-stack", w.tenants[t].id.0);
        let office = w.members_of(t, |a| {
            a.kind == Kind::Regular && !a.attack && a.leaver_at.is_none() && a.mode == Mode::Office
        });
        let Some(&a) = office.get(3).or(office.last()) else {
            return;
        };
        let acc = &w.accounts[a];
        let tz = CITIES[w.tenants[t].hq].tz;
        let v4 = w.tenants[t].office_net;
        let (mut first, mut last) = (None, 0);
        for day in (1..i64::from(w.days)).step_by(3) {
            if weekday(w, day) >= 5 {
                continue;
            }
            let at = w.local_midnight(day, tz) + 7 * HOUR + rng.range(30, 55) * MIN;
            let auth = usual_auth(&mut rng, acc.method);
            self.sign_in(
                at,
                t,
                a,
                Cat::Interactive,
                apps::OFFICE_HOME,
                v4,
                Some(acc.laptop),
                auth,
                0,
                &mut rng,
            );
            let refresh = at + rng.range(3, 20) * MIN;
            self.sign_in(
                refresh,
                t,
                a,
                Cat::NonInteractive,
                apps::OFFICE_DESKTOP,
                v6,
                Some(acc.laptop),
                Auth::Refresh,
                0,
                &mut rng,
            );
            first.get_or_insert(at);
            last = refresh;
        }
        if let Some(first) = first {
            self.note(
                "session-token-replay",
                t,
                acc.id.to_string(),
                first,
                last,
                format!(
                    "one session over the office's IPv4 ({}) and IPv6 ({}) addresses minutes apart",
                    w.nets[v4].ip, w.nets[v6].ip
                ),
            );
        }
    }
}

/// The benign trap of `sign-in-after-account-disabled` in tenant `t`: an ordinary user disabled by
/// mistake on a working day around midday and enabled again 20 minutes to 2 hours later
/// (`Disable account`, then `Enable account`). The user signs in as usual before and after, never
/// in between ([`super::background`] drops those sign-ins). Drawn from its own stream, so the rest
/// of the world is as it was without it.
pub(super) fn mistaken_disable(w: &World, t: usize) -> Option<(AcctId, Ticks, Ticks)> {
    let mut rng = w.stream("mistaken-disable", w.tenants[t].id.0);
    let users = w.members_of(t, |a| {
        a.kind == Kind::Regular && !a.attack && a.leaver_at.is_none()
    });
    if users.is_empty() || w.days < 3 {
        return None;
    }
    let a = *rng.pick(&users);
    let tz = CITIES[w.tenants[t].hq].tz;
    let mut day = rng.range(1, i64::from(w.days) - 1);
    while weekday(w, day) >= 5 && day > 1 {
        day -= 1;
    }
    let from = w.local_midnight(day, tz) + rng.range(10 * HOUR, 13 * HOUR);
    let to = from + rng.range(20 * MIN, 2 * HOUR);
    (from > w.start && to < w.end).then_some((a, from, to))
}
