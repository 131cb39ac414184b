//! Stories told by sign-ins (and the risk records that go with them): one user, admin or
//! account at a time, plus the password spray.

use super::{Label, Stories, user_label};
use crate::simulate::audits;
use crate::simulate::catalog::{self, CITIES, Method, apps, roles};
use crate::simulate::records::{
    Actor, Auth, Cat, Client, Detection, Rec, Risk, RiskyUser, SignIn, Who,
};
use crate::simulate::rng::{HOUR, MIN, Rng, SEC};
use crate::simulate::world::{AcctId, Device, Kind, World};

impl Stories {
    /// A password-only interactive success (a Conditional Access gap), from home or the office.
    pub(super) fn mfa_not_satisfied(&mut self, w: &mut World, rng: &mut Rng, k: u32, t: usize) {
        let rule = "mfa-not-satisfied";
        let tz = CITIES[w.tenants[t].hq].tz;
        let v = Self::victim(w, t);
        let dev = Self::attacker_device(w);
        let at = self.when(w, rng, &[t], tz, (10, 16), 0);
        let (app, net, how) = if k.is_multiple_of(2) {
            (
                apps::AZURE_PORTAL,
                w.accounts[v].home_net,
                "from home on an unregistered computer",
            )
        } else {
            (
                apps::OFFICE_HOME,
                w.tenants[t].office_net,
                "from the office IP on an unregistered computer",
            )
        };
        self.emit(w, |g| {
            g.sign_in(
                at,
                t,
                v,
                Cat::Interactive,
                app,
                net,
                Some(dev),
                Auth::PasswordOnly,
                0,
                rng,
            )
        });
        let story = format!(
            "interactive success with a password only (singleFactorAuthentication) {how}; Conditional Access not applied"
        );
        self.label(user_label(w, rule, k, v, t, at, at, story));
    }

    /// A successful legacy-protocol sign-in from abroad: IMAP4, Authenticated SMTP, or BAV2ROPC over ROPC.
    pub(super) fn legacy_auth_sign_in(&mut self, w: &mut World, rng: &mut Rng, k: u32, t: usize) {
        let rule = "legacy-auth-sign-in";
        let tz = CITIES[w.tenants[t].hq].tz;
        let v = Self::victim(w, t);
        let net = self.attacker_net(w, rng, w.tenants[t].hq);
        let at = self.when(w, rng, &[t], tz, (0, 24), 0);
        let (client, ua, protocol, what) = match k % 3 {
            0 => (Client::Legacy("IMAP4"), None, "none", "IMAP4"),
            1 => (
                Client::Legacy("Authenticated SMTP"),
                None,
                "none",
                "Authenticated SMTP",
            ),
            _ => (
                Client::Legacy("Other clients"),
                Some(catalog::ua::BAV2ROPC),
                "ropc",
                "BAV2ROPC (ROPC)",
            ),
        };
        self.emit(w, |g| {
            let mut s = SignIn::new(
                rng,
                at,
                t,
                Who::User(v),
                Cat::Interactive,
                apps::EXCHANGE_LEGACY,
                net,
                None,
            );
            s.client = client;
            s.user_agent = ua;
            s.protocol = protocol;
            s.auth = Auth::PasswordOnly;
            g.push(s);
        });
        let story = format!(
            "successful {what} sign-in to Exchange Online from {} ({})",
            w.nets[net].ip, CITIES[w.nets[net].city].name
        );
        self.label(user_label(w, rule, k, v, t, at, at, story));
    }

    /// A privileged principal passes MFA with a phone method: an active admin, a PIM-eligible
    /// admin before activating (second stories), a GDAP technician in a customer (third).
    pub(super) fn weak_mfa_privileged(&mut self, w: &mut World, rng: &mut Rng, k: u32, t: usize) {
        let rule = "weak-mfa-privileged";
        let who = self.privileged(
            w,
            rng,
            t,
            k,
            roles::EXCHANGE_ADMIN,
            "Exchange Administrator",
        );
        let hours = if k % 3 == 1 { (5, 6) } else { (9, 17) };
        let at = self.when(w, rng, &[t], who.tz, hours, 0);
        let method = if k.is_multiple_of(2) {
            Method::MobileApp
        } else {
            Method::Sms
        };
        self.emit(w, |g| {
            let auth = Auth::Mfa(method);
            g.sign_in(
                at,
                t,
                who.account,
                Cat::Interactive,
                apps::AZURE_PORTAL,
                who.net,
                Some(who.laptop),
                auth,
                0,
                rng,
            )
        });
        let story = format!(
            "{} signs in to the Azure portal with password + {} (not phishing-resistant)",
            who.text,
            method.log_name()
        );
        let mut l = user_label(w, rule, k, who.account, t, at, at, story);
        l.alt_tenants = who.alt_tenants;
        self.label(l);
    }

    /// A privileged principal signs in from a personal computer: an active admin, a PIM-eligible
    /// admin before activating (second stories), a GDAP technician in a customer (third).
    pub(super) fn unmanaged_device_privileged(
        &mut self,
        w: &mut World,
        rng: &mut Rng,
        k: u32,
        t: usize,
    ) {
        let rule = "unmanaged-device-privileged";
        let who = self.privileged(w, rng, t, k, roles::USER_ADMIN, "User Administrator");
        let personal = w.add_device(Device {
            id: None,
            name: String::new(),
            os: "Windows10",
            browser: "Chrome 131.0.0",
            managed: false,
            trust: "",
        });
        let hours = if k % 3 == 1 { (5, 6) } else { (19, 23) };
        let at = self.when(w, rng, &[t], who.tz, hours, 0);
        self.emit(w, |g| {
            let auth = Auth::Passwordless(Method::Fido2);
            g.sign_in(
                at,
                t,
                who.account,
                Cat::Interactive,
                apps::ENTRA_ADMIN,
                who.home,
                Some(personal),
                auth,
                0,
                rng,
            )
        });
        let story = format!(
            "{} signs in to the Entra admin center with FIDO2 from a personal computer at home (no device id)",
            who.text
        );
        let mut l = user_label(w, rule, k, who.account, t, at, at, story);
        l.alt_tenants = who.alt_tenants;
        self.label(l);
    }

    /// A successful sign-in Identity Protection rates medium or high and at risk, with its detection.
    pub(super) fn risky_sign_in_story(&mut self, w: &mut World, rng: &mut Rng, k: u32, t: usize) {
        let rule = "risky-sign-in";
        let tz = CITIES[w.tenants[t].hq].tz;
        let v = Self::victim(w, t);
        let net = self.attacker_net(w, rng, w.tenants[t].hq);
        let dev = Self::attacker_device(w);
        let at = self.when(w, rng, &[t], tz, (0, 24), 0);
        // Third stories: real-time risk low, aggregated (offline) risk high.
        let (level, during) = match k % 3 {
            0 => ("high", "high"),
            1 => ("medium", "medium"),
            _ => ("high", "low"),
        };
        let risk = Risk {
            during,
            aggregated: level,
            state: "atRisk",
            detail: "none",
            types: &["anonymizedIPAddress"],
        };
        self.emit(w, |g| {
            let mut s = SignIn::new(
                rng,
                at,
                t,
                Who::User(v),
                Cat::Interactive,
                apps::OFFICE_HOME,
                net,
                Some(dev),
            );
            s.auth = Auth::Mfa(Method::MobileApp);
            s.risk = Some(risk);
            let (id, corr) = (s.id, s.corr);
            g.push(s);
            g.out.push(Rec::Detection(Detection {
                id: rng.hex(64),
                tenant: t,
                user: v,
                kind: "anonymizedIPAddress",
                level,
                state: "atRisk",
                detail: "none",
                timing: "realtime",
                activity: "signin",
                activity_time: at,
                detected: at + 40 * SEC,
                updated: at + 2 * MIN,
                net: Some(net),
                request: Some((id, corr)),
            }));
        });
        let story = format!(
            "successful sign-in from an anonymizing IP {}, {level} risk at risk, MFA push approved",
            w.nets[net].ip
        );
        self.label(user_label(w, rule, k, v, t, at, at, story));
    }

    /// A principal with a baseline signs in from a country never seen; odd stories: an admin account.
    pub(super) fn new_country_sign_in(&mut self, w: &mut World, rng: &mut Rng, k: u32, t: usize) {
        let rule = "new-country-sign-in";
        let tz = CITIES[w.tenants[t].hq].tz;
        let (v, who) = if k.is_multiple_of(2) {
            (Self::victim(w, t), "user")
        } else {
            (
                Self::victim_admin(w, t, roles::HELPDESK_ADMIN),
                "Helpdesk Administrator",
            )
        };
        let net = self.attacker_net(w, rng, w.tenants[t].hq);
        let laptop = w.accounts[v].laptop;
        if !k.is_multiple_of(2) {
            // An admin account signs in less than a person's daily one: make sure the
            // baseline (7 days, 10 successes) is there even in a 10-day world.
            let office = w.tenants[t].office_net;
            self.emit(w, |g| {
                for day in 0..8 {
                    for hour in [10, 14] {
                        let at = g.w.local_midnight(day, tz) + hour * HOUR + rng.range(0, HOUR);
                        let auth = Auth::Passwordless(Method::Fido2);
                        g.sign_in(
                            at,
                            t,
                            v,
                            Cat::Interactive,
                            apps::M365_ADMIN,
                            office,
                            Some(laptop),
                            auth,
                            0,
                            rng,
                        );
                    }
                }
            });
        }
        let at = self.when(w, rng, &[t], tz, (6, 22), 0);
        let auth = Auth::Passwordless(Method::Whfb);
        let app = if who == "user" {
            apps::OFFICE_HOME
        } else {
            apps::M365_ADMIN
        };
        self.emit(w, |g| {
            g.sign_in(
                at,
                t,
                v,
                Cat::Interactive,
                app,
                net,
                Some(laptop),
                auth,
                0,
                rng,
            )
        });
        let story = format!(
            "{who} with a baseline at home signs in from {} ({}) for the first time",
            CITIES[w.nets[net].city].name, CITIES[w.nets[net].city].country
        );
        self.label(user_label(w, rule, k, v, t, at, at, story));
    }

    /// Home, then 35 minutes later a continent away; odd stories replay a stolen refresh token.
    pub(super) fn impossible_travel(&mut self, w: &mut World, rng: &mut Rng, k: u32, t: usize) {
        let rule = "impossible-travel";
        let tz = CITIES[w.tenants[t].hq].tz;
        let v = Self::victim(w, t);
        let net = self.attacker_net(w, rng, w.accounts[v].city);
        let dev = Self::attacker_device(w);
        let at = self.when(w, rng, &[t], tz, (9, 16), HOUR);
        let (home, laptop) = (w.accounts[v].home_net, w.accounts[v].laptop);
        let later = at + 35 * MIN;
        self.emit(w, |g| {
            g.sign_in(
                at,
                t,
                v,
                Cat::Interactive,
                apps::OUTLOOK_WEB,
                home,
                Some(laptop),
                Auth::Mfa(Method::MobileApp),
                0,
                rng,
            );
            // Odd stories: the refresh token is stolen and replayed (non-interactive).
            let (cat, app, auth) = if k.is_multiple_of(2) {
                (
                    Cat::Interactive,
                    apps::OFFICE_HOME,
                    Auth::Mfa(Method::MobileApp),
                )
            } else {
                (Cat::NonInteractive, apps::OFFICE_DESKTOP, Auth::Refresh)
            };
            g.sign_in(later, t, v, cat, app, net, Some(dev), auth, 0, rng);
        });
        let story = format!(
            "signs in at home in {}, then 35 minutes later {} from {} (thousands of km away)",
            CITIES[w.accounts[v].city].name,
            if k.is_multiple_of(2) {
                "interactively"
            } else {
                "a token refresh (stolen refresh token)"
            },
            CITIES[w.nets[net].city].name
        );
        self.label(user_label(w, rule, k, v, t, at, later, story));
    }

    /// Twelve wrong passwords then a success (high); odd stories: fifteen, then smart lockout.
    pub(super) fn brute_force(&mut self, w: &mut World, rng: &mut Rng, k: u32, t: usize) {
        let rule = "brute-force";
        let tz = CITIES[w.tenants[t].hq].tz;
        let v = Self::victim(w, t);
        let net = self.attacker_net(w, rng, w.tenants[t].hq);
        let dev = Self::attacker_device(w);
        let at = self.when(w, rng, &[t], tz, (0, 24), HOUR);
        let failures = if k.is_multiple_of(2) { 12 } else { 15 };
        let mut last = at;
        self.emit(w, |g| {
            for i in 0..failures {
                last = at + i * 35 * SEC + rng.range(0, 5) * SEC;
                g.sign_in(
                    last,
                    t,
                    v,
                    Cat::Interactive,
                    apps::OFFICE_HOME,
                    net,
                    Some(dev),
                    Auth::PasswordFail,
                    50126,
                    rng,
                );
            }
            if k.is_multiple_of(2) {
                last += 3 * MIN;
                g.sign_in(
                    last,
                    t,
                    v,
                    Cat::Interactive,
                    apps::OFFICE_HOME,
                    net,
                    Some(dev),
                    Auth::Mfa(Method::MobileApp),
                    0,
                    rng,
                );
            } else {
                for _ in 0..3 {
                    last += 40 * SEC;
                    g.sign_in(
                        last,
                        t,
                        v,
                        Cat::Interactive,
                        apps::OFFICE_HOME,
                        net,
                        Some(dev),
                        Auth::PasswordFail,
                        50053,
                        rng,
                    );
                }
            }
        });
        let end = if k.is_multiple_of(2) {
            "then a success with an approved push 3 minutes later"
        } else {
            "then smart lockout (50053)"
        };
        let story = format!(
            "{failures} wrong passwords (50126) from {} in about {} minutes, {end}",
            w.nets[net].ip,
            failures * 35 / 60 + 1
        );
        self.label(user_label(w, rule, k, v, t, at, last, story));
    }

    /// A disabled account tried from two IPs, signed in to after disabling, or tried three times from one IP.
    pub(super) fn disabled_account_sign_in(
        &mut self,
        w: &mut World,
        rng: &mut Rng,
        k: u32,
        t: usize,
    ) {
        let rule = "disabled-account-sign-in";
        let tz = CITIES[w.tenants[t].hq].tz;
        let v = Self::victim(w, t);
        let net = self.attacker_net(w, rng, w.tenants[t].hq);
        let dev = Self::attacker_device(w);
        let at = self.when(w, rng, &[t], tz, (15, 18), 8 * HOUR);
        w.accounts[v].leaver_at = Some(at);
        let Some(admin) = Self::tenant_admin(w, t) else {
            return;
        };
        let home = w.accounts[v].home_net;
        let mut last = at;
        self.emit(w, |g| {
            let actor = Actor::User {
                account: admin,
                net: Some(g.w.tenants[t].office_net),
            };
            g.out.push(Rec::Audit(audits::disable_account(
                g.w, rng, at, t, actor, v,
            )));
            // Four attempts from two IPs; two from two IPs (second stories); or (third) three
            // from one IP. A success after the disable is `sign-in-after-account-disabled`'s.
            let nets = match k % 3 {
                0 => vec![net, home, net, net],
                1 => vec![home, net],
                _ => vec![net; 3],
            };
            for (i, n) in nets.into_iter().enumerate() {
                last = at + 2 * HOUR + i as i64 * 40 * MIN;
                g.sign_in(
                    last,
                    t,
                    v,
                    Cat::Interactive,
                    apps::OFFICE_HOME,
                    n,
                    Some(dev),
                    Auth::PasswordOnly,
                    50057,
                    rng,
                );
            }
        });
        let story = match k % 3 {
            0 => "leaver's account disabled; 4 attempts (50057) from 2 IPs in the next 4 hours",
            1 => {
                "account disabled; 2 attempts (50057), from home and from an unknown network, 2 hours later"
            }
            _ => "leaver's account disabled; 3 attempts (50057) from one IP within 2 hours",
        };
        self.label(user_label(w, rule, k, v, t, at, last, story.to_owned()));
    }

    /// A closed account whose refresh token keeps working: `Disable account` (or, second stories,
    /// `Delete user`) by the tenant's admin, then an hour later successful non-interactive
    /// sign-ins (token refreshes for Outlook on the web) from an attacker's network, every 20 to
    /// 40 minutes for a few hours.
    pub(super) fn sign_in_after_account_disabled(
        &mut self,
        w: &mut World,
        rng: &mut Rng,
        k: u32,
        t: usize,
    ) {
        let rule = "sign-in-after-account-disabled";
        let tz = CITIES[w.tenants[t].hq].tz;
        let v = Self::victim(w, t);
        let net = self.attacker_net(w, rng, w.tenants[t].hq);
        let dev = Self::attacker_device(w);
        let at = self.when(w, rng, &[t], tz, (9, 16), 6 * HOUR);
        w.accounts[v].leaver_at = Some(at);
        let Some(admin) = Self::tenant_admin(w, t) else {
            return;
        };
        let deleted = k % 2 == 1;
        let mut last = at;
        self.emit(w, |g| {
            let actor = Actor::User {
                account: admin,
                net: Some(g.w.tenants[t].office_net),
            };
            let close = if deleted {
                audits::delete_user(g.w, rng, at, t, actor, v)
            } else {
                audits::disable_account(g.w, rng, at, t, actor, v)
            };
            g.out.push(Rec::Audit(close));
            let mut when = at + HOUR + rng.range(0, 10 * MIN);
            for _ in 0..rng.range(3, 7) {
                last = when;
                g.sign_in(
                    when,
                    t,
                    v,
                    Cat::NonInteractive,
                    apps::OUTLOOK_WEB,
                    net,
                    Some(dev),
                    Auth::None,
                    0,
                    rng,
                );
                when += rng.range(20 * MIN, 40 * MIN);
            }
        });
        let story = format!(
            "account {} by an admin; an hour later its refresh token keeps working: successful \
             non-interactive sign-ins to Outlook on the web from an attacker's network",
            if deleted {
                "deleted (Delete user)"
            } else {
                "disabled (Disable account)"
            }
        );
        self.label(user_label(w, rule, k, v, t, at, last, story));
    }

    /// A privileged principal reads mail or chats: an active admin in Outlook on the web, a
    /// PIM-eligible admin before activating in Teams (second stories), an admin in the Teams client
    /// asking for Microsoft Graph (third), a GDAP technician in a customer's Outlook (fourth).
    pub(super) fn admin_collaboration_use(
        &mut self,
        w: &mut World,
        rng: &mut Rng,
        k: u32,
        t: usize,
    ) {
        let rule = "admin-collaboration-use";
        let who = if k % 4 == 3 {
            self.privileged(
                w,
                rng,
                t,
                2,
                roles::SHAREPOINT_ADMIN,
                "SharePoint Administrator",
            )
        } else {
            self.privileged(
                w,
                rng,
                t,
                k % 2,
                roles::SHAREPOINT_ADMIN,
                "SharePoint Administrator",
            )
        };
        let hours = if k % 4 == 1 { (5, 6) } else { (9, 17) };
        let at = self.when(w, rng, &[t], who.tz, hours, 0);
        let app = match k % 4 {
            0 | 3 => apps::OUTLOOK_WEB,
            1 => apps::TEAMS_WEB,
            _ => apps::TEAMS_GRAPH,
        };
        self.emit(w, |g| {
            let auth = Auth::Passwordless(Method::Fido2);
            g.sign_in(
                at,
                t,
                who.account,
                Cat::Interactive,
                app,
                who.net,
                Some(who.laptop),
                auth,
                0,
                rng,
            )
        });
        let story = format!(
            "{} reads mail / chats in {}",
            who.text,
            catalog::APPS[app].name
        );
        let mut l = user_label(w, rule, k, who.account, t, at, at, story);
        l.alt_tenants = who.alt_tenants;
        self.label(l);
    }

    /// A configured break-glass account signs in; odd stories: someone fails its password twice.
    pub(super) fn break_glass_account_used(
        &mut self,
        w: &mut World,
        rng: &mut Rng,
        k: u32,
        t: usize,
    ) {
        let rule = "break-glass-account-used";
        // A tenant whose break-glass account no earlier story used.
        let found = self.rotation(w, t).into_iter().find_map(|c| {
            w.members_of(c, |a| a.kind == Kind::BreakGlass && !a.attack)
                .first()
                .map(|&bg| (c, bg))
        });
        let Some((t, bg)) = found else {
            return;
        };
        w.accounts[bg].attack = true;
        let tz = CITIES[w.tenants[t].hq].tz;
        let at = self.when(w, rng, &[t], tz, (1, 5), 0);
        let (office, laptop) = (w.tenants[t].office_net, w.accounts[bg].laptop);
        let attacker = self.attacker_net(w, rng, w.tenants[t].hq);
        let mut last = at;
        self.emit(w, |g| {
            if k.is_multiple_of(2) {
                let auth = Auth::Passwordless(Method::Fido2);
                g.sign_in(
                    at,
                    t,
                    bg,
                    Cat::Interactive,
                    apps::AZURE_PORTAL,
                    office,
                    Some(laptop),
                    auth,
                    0,
                    rng,
                );
            } else {
                // Odd stories: someone tries its password, and fails.
                for i in 0..2 {
                    last = at + i * 50 * SEC;
                    g.sign_in(
                        last,
                        t,
                        bg,
                        Cat::Interactive,
                        apps::AZURE_PORTAL,
                        attacker,
                        None,
                        Auth::PasswordFail,
                        50126,
                        rng,
                    );
                }
            }
        });
        let by = if w.tenants[t].break_glass_by_upn {
            "UPN"
        } else {
            "object id"
        };
        let story = if k.is_multiple_of(2) {
            format!(
                "break-glass account (configured by {by}) signs in to the Azure portal at night"
            )
        } else {
            format!(
                "two failed password attempts at the break-glass account (configured by {by}) from {}",
                w.nets[attacker].ip
            )
        };
        self.label(user_label(w, rule, k, bg, t, at, last, story));
    }

    /// An offline detection puts a user at high risk; or confirmed compromised; or `hidden` (no P2).
    pub(super) fn risky_user_story(&mut self, w: &mut World, rng: &mut Rng, k: u32, t: usize) {
        let rule = "risky-user";
        let tz = CITIES[w.tenants[t].hq].tz;
        let v = Self::victim(w, t);
        let at = self.when(w, rng, &[t], tz, (0, 24), 0);
        // The third variant: a tenant without P2 sees the level as `hidden` (= medium).
        let (state, detail, kind, level) = match k % 3 {
            0 => ("atRisk", "none", "leakedCredentials", "high"),
            1 => (
                "confirmedCompromised",
                "adminConfirmedUserCompromised",
                "investigationsThreatIntelligence",
                "high",
            ),
            _ => ("atRisk", "hidden", "generic", "hidden"),
        };
        self.emit(w, |g| {
            g.out.push(Rec::Detection(Detection {
                id: rng.hex(64),
                tenant: t,
                user: v,
                kind,
                level,
                state,
                detail,
                timing: "offline",
                activity: "user",
                activity_time: at - 30 * HOUR,
                detected: at - 5 * MIN,
                updated: at,
                net: None,
                request: None,
            }));
            g.out.push(Rec::RiskyUser(RiskyUser {
                t: at + 20 * SEC,
                tenant: t,
                user: v,
                level,
                state,
                detail,
            }));
        });
        let story = format!(
            "offline {kind} detection lands 30 hours after the activity: user {state} at {level} risk"
        );
        self.label(user_label(w, rule, k, v, t, at, at + 20 * SEC, story));
    }

    pub(super) fn password_spray(&mut self, w: &mut World, rng: &mut Rng, k: u32, t: usize) {
        let victim = (k % 3 == 1).then(|| Self::victim(w, t));
        let mut tenants: Vec<usize> = if k % 3 == 2 {
            self.rotation(w, t).into_iter().take(3).collect()
        } else {
            let mut by_size = self.rotation(w, t);
            by_size[1..].sort_by_key(|&c| {
                let silenced = self.attacks.silences.iter().any(|s| s.tenant == c);
                (silenced, std::cmp::Reverse(w.tenants[c].members.len()), c)
            });
            by_size
        };
        let eligible = |w: &World, c: usize| {
            w.members_of(c, |a| {
                matches!(a.kind, Kind::Regular | Kind::Admin { .. }) && !a.attack
            })
        };
        // Thirteen users at least: from the chosen tenant, topped up from the largest ones.
        let mut targets: Vec<(usize, AcctId)> = Vec::new();
        let per = if k % 3 == 2 { 5 } else { 13 };
        let mut used = Vec::new();
        for &c in &tenants {
            let mut list = eligible(w, c);
            rng.shuffle(&mut list);
            let take = if k % 3 == 2 {
                per
            } else {
                13usize.saturating_sub(targets.len())
            };
            targets.extend(list.into_iter().take(take).map(|a| (c, a)));
            used.push(c);
            if (k % 3 != 2 && targets.len() >= 13) || (k % 3 == 2 && used.len() == 3) {
                break;
            }
        }
        tenants = used;
        if let Some(v) = victim {
            targets.push((t, v));
        }
        let net = self.attacker_net(w, rng, w.tenants[t].hq);
        let dev = Self::attacker_device(w);
        let at = self.when(w, rng, &tenants, CITIES[w.tenants[t].hq].tz, (1, 5), HOUR);
        let mut last = at;
        let count = targets.len();
        self.emit(w, |g| {
            for (i, &(c, a)) in targets.iter().enumerate() {
                last = at + i as i64 * 65 * SEC + rng.range(0, 20) * SEC;
                g.sign_in(
                    last,
                    c,
                    a,
                    Cat::Interactive,
                    apps::OFFICE_HOME,
                    net,
                    Some(dev),
                    Auth::PasswordFail,
                    50126,
                    rng,
                );
            }
            if let Some(v) = victim {
                last += 4 * MIN;
                g.sign_in(
                    last,
                    t,
                    v,
                    Cat::Interactive,
                    apps::OFFICE_HOME,
                    net,
                    Some(dev),
                    Auth::PasswordOnly,
                    0,
                    rng,
                );
            }
        });
        let ip = w.nets[net].ip.clone();
        let story = match k % 3 {
            0 => format!(
                "{ip} fails one password (50126) against each of {count} users in {} minutes",
                count * 65 / 60 + 1
            ),
            1 => format!(
                "{ip} fails against {count} users, then one password works 4 minutes later (high)"
            ),
            _ => format!(
                "{ip} sprays {count} users across 3 tenants in {} minutes (high)",
                count * 65 / 60 + 1
            ),
        };
        self.label(Label {
            rule: "password-spray",
            variant: k,
            tenant: t,
            principal_kind: "ip",
            principal_id: ip,
            alt_principal_ids: Vec::new(),
            alt_tenants: tenants.into_iter().filter(|&c| c != t).collect(),
            from: at,
            to: last,
            story,
        });
    }
}
