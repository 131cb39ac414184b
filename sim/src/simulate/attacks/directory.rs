//! Partner and directory stories: technicians reaching new customers or many at once, roles
//! granted outside PIM, partner access groups, accounts created by partners, security info
//! changed, consents.

use super::{Label, Stories, user_label};
use crate::simulate::audits::{self, Consent, UserChange};
use crate::simulate::catalog::{self, CITIES, Method, apps, roles};
use crate::simulate::records::{Actor, Auth, Cat, Rec, Target};
use crate::simulate::rng::{HOUR, MIN, Rng, SEC};
use crate::simulate::world::{AcctId, GroupKind, Kind, World};

impl Stories {
    /// A technician working a few usual customers (with ordinary history from day 0).
    pub(super) fn technician(w: &mut World, rng: &mut Rng, exclude: &[usize], n: usize) -> AcctId {
        let mut usual: Vec<usize> = w
            .customers
            .iter()
            .copied()
            .filter(|c| !exclude.contains(c))
            .collect();
        rng.shuffle(&mut usual);
        usual.truncate(n.max(1));
        w.add_technician(usual, true)
    }

    pub(super) fn partner_new_tenant(&mut self, w: &mut World, rng: &mut Rng, k: u32, t: usize) {
        let tz = CITIES[w.tenants[t].hq].tz;
        let at = self.when(w, rng, &[t], tz, (9, 17), HOUR);
        let tech = if k.is_multiple_of(2) {
            Self::technician(w, rng, &[t], 3)
        } else {
            let rogue = w.add_foreign_partner(k / 2);
            let a = w.add_person(rogue, Kind::Technician, true);
            w.accounts[a].usual = Vec::new();
            a
        };
        let (net, laptop) = (w.accounts[tech].home_net, w.accounts[tech].laptop);
        self.attacks.ips.push(w.nets[net].ip.clone());
        self.emit(w, |g| {
            g.sign_in(
                at,
                t,
                tech,
                Cat::Interactive,
                apps::AZURE_PORTAL,
                net,
                Some(laptop),
                Auth::Passwordless(Method::Fido2),
                0,
                rng,
            );
            g.sign_in(
                at + 12 * MIN,
                t,
                tech,
                Cat::NonInteractive,
                apps::GRAPH_CLI,
                net,
                Some(laptop),
                Auth::Refresh,
                0,
                rng,
            );
        });
        let home = w.accounts[tech].home_tenant;
        let story = if k.is_multiple_of(2) {
            format!(
                "technician who has served 3 other customers since day 0 signs in to {} for the first time",
                w.tenants[t].name
            )
        } else {
            format!(
                "a technician of another partner ({}) signs in to {} as service provider: first ever from that partner tenant",
                w.tenants[home].name, w.tenants[t].name
            )
        };
        let mut l = user_label(
            w,
            "partner-new-tenant",
            k,
            tech,
            t,
            at,
            at + 12 * MIN,
            story,
        );
        l.alt_tenants = vec![home];
        self.label(l);
    }

    /// Even stories: one technician reaches six customers in 38 minutes. Odd stories: three
    /// technician accounts behind one jump host IP reach five customers in 50 minutes, none of
    /// them more than two (only the IP fans out).
    pub(super) fn partner_fanout(&mut self, w: &mut World, rng: &mut Rng, k: u32, t: usize) {
        let n = w.customers.len();
        let by_ip = k % 2 == 1;
        let reach = if by_ip { 5.min(n) } else { 6.min(n) };
        let targets: Vec<usize> = self.rotation(w, t).into_iter().take(reach).collect();
        let techs: Vec<AcctId> = (0..if by_ip { 3 } else { 1 })
            .map(|_| Self::technician(w, rng, &[], 2))
            .collect();
        let tz = CITIES[w.accounts[techs[0]].city].tz;
        let offsets: &[i64] = if by_ip {
            &[0, 9, 22, 37, 50]
        } else {
            &[0, 6, 14, 21, 30, 38]
        };
        let at = self.when(w, rng, &targets, tz, (10, 16), HOUR);
        let net = if by_ip {
            let city = w.accounts[techs[0]].city;
            w.add_net_v4(0, city, 64610)
        } else {
            w.accounts[techs[0]].home_net
        };
        let ip = w.nets[net].ip.clone();
        self.attacks.ips.push(ip.clone());
        let last = at + offsets[reach - 1] * MIN;
        let who: Vec<AcctId> = (0..reach).map(|i| techs[i % techs.len()]).collect();
        self.emit(w, |g| {
            for (i, &c) in targets.iter().enumerate() {
                let laptop = g.w.accounts[who[i]].laptop;
                g.sign_in(
                    at + offsets[i] * MIN,
                    c,
                    who[i],
                    Cat::Interactive,
                    apps::M365_ADMIN,
                    net,
                    Some(laptop),
                    Auth::Passwordless(Method::Fido2),
                    0,
                    rng,
                );
            }
        });
        let minutes = offsets[reach - 1];
        let mut l = if by_ip {
            let story = format!(
                "three technician accounts behind one IP {ip} sign in to {reach} customer tenants in {minutes} minutes (none to more than two)"
            );
            Label {
                rule: "partner-tenant-fanout",
                variant: k,
                tenant: w.partner,
                principal_kind: "ip",
                principal_id: ip,
                // Only an alert on the IP proves this one: no technician reached five.
                alt_principal_ids: Vec::new(),
                alt_tenants: Vec::new(),
                from: at,
                to: last,
                story,
            }
        } else {
            let story = format!(
                "one technician (from {ip}) signs in to {reach} customer tenants in {minutes} minutes"
            );
            let mut l = user_label(
                w,
                "partner-tenant-fanout",
                k,
                techs[0],
                w.partner,
                at,
                last,
                story,
            );
            l.alt_principal_ids = vec![ip];
            l
        };
        l.alt_tenants = targets;
        self.label(l);
    }

    /// A compromised admin grants a privileged role outside PIM: to a new account (Core
    /// Directory by a user; "outside of PIM"; a permanent PIM assignment), or (fourth stories)
    /// to a new application's service principal.
    pub(super) fn privileged_role(&mut self, w: &mut World, rng: &mut Rng, k: u32, t: usize) {
        let actor = Self::victim_admin(w, t, roles::GLOBAL_ADMIN);
        let backdoor = w.add_person(t, Kind::Backdoor, true);
        let domain = w.tenants[t].domain.clone();
        w.accounts[backdoor].upn = format!("svc-sync0{}@{domain}", k + 1);
        w.accounts[backdoor].display = format!("Sync Service 0{}", k + 1);
        let app_sp = rng.guid();
        let tz = CITIES[w.tenants[t].hq].tz;
        let at = self.when(w, rng, &[t], tz, (18, 23), HOUR);
        let net = w.accounts[actor].home_net;
        let laptop = w.accounts[actor].laptop;
        let (role, how) = match k % 4 {
            0 => (
                roles::GLOBAL_ADMIN,
                "Add member to role (Core Directory, by a user, not MS-PIM)",
            ),
            1 => (
                roles::PRIVILEGED_ROLE_ADMIN,
                "Add member to role outside of PIM",
            ),
            2 => (
                roles::SECURITY_ADMIN,
                "Add member to role in PIM completed (permanent)",
            ),
            _ => (
                roles::APPLICATION_ADMIN,
                "Add member to role (Core Directory) for a service principal",
            ),
        };
        let grant_at = at + 6 * MIN;
        self.emit(w, |g| {
            let auth = Auth::Passwordless(Method::Fido2);
            g.sign_in(
                at - 3 * MIN,
                t,
                actor,
                Cat::Interactive,
                apps::ENTRA_ADMIN,
                net,
                Some(laptop),
                auth,
                0,
                rng,
            );
            let me = || Actor::User {
                account: actor,
                net: Some(net),
            };
            let b = &g.w.accounts[backdoor];
            if k % 4 != 3 {
                g.out.push(Rec::Audit(audits::add_user(
                    rng,
                    at,
                    t,
                    me(),
                    b.id,
                    &b.upn,
                    &b.display,
                )));
            }
            let target = if k % 4 == 3 {
                Target {
                    id: app_sp.to_string(),
                    display: Some("Graph Sync Utility".to_owned()),
                    kind: "ServicePrincipal",
                    upn: None,
                    props: Vec::new(),
                }
            } else {
                audits::user_target(g.w, backdoor)
            };
            let rec = match k % 4 {
                1 => audits::pim_record(
                    g.w,
                    rng,
                    grant_at,
                    t,
                    me(),
                    target,
                    role,
                    "Add member to role outside of PIM",
                    "",
                ),
                2 => audits::pim_record(
                    g.w,
                    rng,
                    grant_at,
                    t,
                    me(),
                    target,
                    role,
                    "Add member to role in PIM completed (permanent)",
                    "Permanent assignment",
                ),
                _ => audits::role_member(
                    g.w,
                    rng,
                    grant_at,
                    t,
                    me(),
                    target,
                    role,
                    "Add member to role",
                ),
            };
            g.out.push(Rec::Audit(rec));
        });
        let (principal, kind, whom) = if k % 4 == 3 {
            (
                app_sp.to_string(),
                "servicePrincipal",
                "the service principal of a new app, Graph Sync Utility,".to_owned(),
            )
        } else {
            (
                w.accounts[backdoor].id.to_string(),
                "user",
                format!("a new account {}", w.accounts[backdoor].upn),
            )
        };
        let story = format!(
            "an admin grants {whom} {}: {how}",
            catalog::ROLES[role].name
        );
        self.label(Label {
            rule: "privileged-role-assigned",
            variant: k,
            tenant: t,
            principal_kind: kind,
            principal_id: principal,
            alt_principal_ids: vec![w.accounts[actor].id.to_string()],
            alt_tenants: Vec::new(),
            from: grant_at,
            to: grant_at,
            story,
        });
    }

    pub(super) fn admin_agents(&mut self, w: &mut World, rng: &mut Rng, k: u32) {
        let p = w.partner;
        let actor = Self::victim_admin(w, p, roles::GLOBAL_ADMIN);
        let member = w.add_person(p, Kind::Backdoor, true);
        let tz = CITIES[w.tenants[p].hq].tz;
        let at = self.when(w, rng, &[p], tz, (20, 23), HOUR);
        let (kind, add) = match k % 3 {
            0 => (GroupKind::AdminAgents, true),
            1 => (GroupKind::Gdap, true),
            _ => (GroupKind::SalesAgents, false),
        };
        let Some(group) = w.group_of(p, kind) else {
            return;
        };
        let net = self.attacker_net(w, rng, w.tenants[p].hq);
        let change = at + 4 * MIN;
        self.emit(w, |g| {
            let me = || Actor::User {
                account: actor,
                net: Some(net),
            };
            let m = &g.w.accounts[member];
            if add {
                g.out.push(Rec::Audit(audits::add_user(
                    rng,
                    at,
                    p,
                    me(),
                    m.id,
                    &m.upn,
                    &m.display,
                )));
            }
            let target = audits::user_target(g.w, member);
            g.out.push(Rec::Audit(audits::group_member(
                g.w,
                rng,
                change,
                p,
                me(),
                target,
                group,
                add,
            )));
        });
        let verb = if add { "added to" } else { "removed from" };
        let story = format!(
            "{} {verb} the partner's {} group by a partner admin signing in from {}",
            w.accounts[member].upn, w.groups[group].name, w.nets[net].ip
        );
        let mut l = user_label(
            w,
            "admin-agents-membership-changed",
            k,
            member,
            p,
            change,
            change,
            story,
        );
        l.alt_principal_ids = vec![w.accounts[actor].id.to_string()];
        self.label(l);
    }

    pub(super) fn partner_created(&mut self, w: &mut World, rng: &mut Rng, k: u32, t: usize) {
        let tech = Self::technician(w, rng, &[t], 2);
        w.accounts[tech].usual.push(t);
        let tz = CITIES[w.tenants[t].hq].tz;
        let at = self.when(w, rng, &[t], tz, (10, 17), HOUR);
        let (net, laptop) = (w.accounts[tech].home_net, w.accounts[tech].laptop);
        self.attacks.ips.push(w.nets[net].ip.clone());
        let created = rng.guid();
        let domain = w.tenants[t].domain.clone();
        let upn = format!("helpdesk.support{}@{domain}", k + 1);
        let email = format!("ops{}@outlook-mail.example", k + 1);
        self.emit(w, |g| {
            g.sign_in(
                at,
                t,
                tech,
                Cat::Interactive,
                apps::M365_ADMIN,
                net,
                Some(laptop),
                Auth::Passwordless(Method::Fido2),
                0,
                rng,
            );
            // Third stories: the audit names the technician by object id only, so only
            // the service-provider sign-in just before tells who it is.
            let actor = if k % 3 == 2 {
                Actor::IdOnly {
                    account: tech,
                    net: Some(net),
                }
            } else {
                Actor::User {
                    account: tech,
                    net: Some(net),
                }
            };
            let rec = if k % 3 != 1 {
                audits::add_user(
                    rng,
                    at + 5 * MIN,
                    t,
                    actor,
                    created,
                    &upn,
                    "Helpdesk Support",
                )
            } else {
                audits::invite(
                    rng,
                    at + 5 * MIN,
                    t,
                    actor,
                    created,
                    &email,
                    &format!(
                        "{}.onmicrosoft.com",
                        g.w.tenants[t].code.to_ascii_lowercase()
                    ),
                )
            };
            g.out.push(Rec::Audit(rec));
        });
        let story = if k % 3 == 2 {
            format!(
                "GDAP technician, named by object id only in the audit, creates {upn} in {} minutes after signing in as service provider",
                w.tenants[t].name
            )
        } else if k.is_multiple_of(3) {
            format!("GDAP technician creates {upn} in {}", w.tenants[t].name)
        } else {
            format!(
                "GDAP technician invites external {email} into {}",
                w.tenants[t].name
            )
        };
        let mut l = user_label(
            w,
            "partner-created-account",
            k,
            tech,
            t,
            at + 5 * MIN,
            at + 5 * MIN,
            story,
        );
        l.alt_principal_ids = vec![created.to_string()];
        l.alt_tenants = vec![w.partner];
        self.label(l);
    }

    /// `partner-sensitive-change`: a GDAP technician, signed in to a customer as a service
    /// provider, resets the password of one of the customer's User Administrators (even
    /// variants) or makes one of them a Global Administrator (odd variants: critical).
    pub(super) fn partner_sensitive(&mut self, w: &mut World, rng: &mut Rng, k: u32, t: usize) {
        let tech = Self::technician(w, rng, &[t], 2);
        w.accounts[tech].usual.push(t);
        let victim = Self::victim_admin(w, t, roles::USER_ADMIN);
        let tz = CITIES[w.tenants[t].hq].tz;
        let at = self.when(w, rng, &[t], tz, (10, 17), HOUR);
        let (net, laptop) = (w.accounts[tech].home_net, w.accounts[tech].laptop);
        self.attacks.ips.push(w.nets[net].ip.clone());
        let grant = k % 2 == 1;
        self.emit(w, |g| {
            g.sign_in(
                at,
                t,
                tech,
                Cat::Interactive,
                apps::ENTRA_ADMIN,
                net,
                Some(laptop),
                Auth::Passwordless(Method::Fido2),
                0,
                rng,
            );
            let actor = Actor::User {
                account: tech,
                net: Some(net),
            };
            let rec = if grant {
                audits::role_member(
                    g.w,
                    rng,
                    at + 7 * MIN,
                    t,
                    actor,
                    audits::user_target(g.w, victim),
                    roles::GLOBAL_ADMIN,
                    "Add member to role",
                )
            } else {
                audits::reset_password(g.w, rng, at + 7 * MIN, t, actor, victim)
            };
            g.out.push(Rec::Audit(rec));
        });
        let victim_upn = w.accounts[victim].upn.clone();
        let story = if grant {
            format!(
                "GDAP technician makes {victim_upn} a Global Administrator of {}",
                w.tenants[t].name
            )
        } else {
            format!(
                "GDAP technician resets the password of User Administrator {victim_upn} in {}",
                w.tenants[t].name
            )
        };
        let mut l = user_label(
            w,
            "partner-sensitive-change",
            k,
            tech,
            t,
            at + 7 * MIN,
            at + 7 * MIN,
            story,
        );
        l.alt_tenants = vec![w.partner];
        self.label(l);
    }

    pub(super) fn security_info(&mut self, w: &mut World, rng: &mut Rng, k: u32, t: usize) {
        let target = Self::victim_admin(w, t, roles::SECURITY_ADMIN);
        let other = (!k.is_multiple_of(3)).then(|| Self::victim_admin(w, t, roles::USER_ADMIN));
        let net = self.attacker_net(w, rng, w.tenants[t].hq);
        let tz = CITIES[w.tenants[t].hq].tz;
        let at = self.when(w, rng, &[t], tz, (0, 24), 0);
        self.emit(w, |g| {
            let rec = match (k % 3, other) {
                (0, _) | (_, None) => {
                    let me = Actor::User {
                        account: target,
                        net: Some(net),
                    };
                    g.out.push(Rec::Audit(audits::mfa_service_update(
                        g.w,
                        rng,
                        at + 4 * SEC,
                        t,
                        target,
                    )));
                    audits::security_info(
                        g.w,
                        rng,
                        at,
                        t,
                        me,
                        target,
                        "User registered security info",
                        "User registered Authenticator App with Notification and Code",
                    )
                }
                (1, Some(o)) => {
                    let actor = Actor::User {
                        account: o,
                        net: Some(net),
                    };
                    audits::security_info(
                        g.w,
                        rng,
                        at,
                        t,
                        actor,
                        target,
                        "Admin registered security info",
                        "Admin registered temporary access pass method for user",
                    )
                }
                (_, Some(o)) => {
                    let actor = Actor::User {
                        account: o,
                        net: Some(net),
                    };
                    audits::update_user(
                        g.w,
                        rng,
                        at,
                        t,
                        actor,
                        target,
                        UserChange::StrongAuthenticationPhoneAppDetail,
                    )
                }
            };
            g.out.push(Rec::Audit(rec));
        });
        let story = match k % 3 {
            0 => format!("Security Administrator's admin account registers a new Authenticator app from {}", w.nets[net].ip),
            1 => "another admin creates a Temporary Access Pass for the Security Administrator".to_owned(),
            _ => "another admin changes the Security Administrator's StrongAuthenticationPhoneAppDetail".to_owned(),
        };
        let mut l = user_label(
            w,
            "security-info-changed-privileged",
            k,
            target,
            t,
            at,
            at + 4 * SEC,
            story,
        );
        if let Some(o) = other {
            l.alt_principal_ids = vec![w.accounts[o].id.to_string()];
        }
        self.label(l);
    }

    pub(super) fn consent(&mut self, w: &mut World, rng: &mut Rng, k: u32, t: usize) {
        let actor = if k % 3 == 1 {
            Self::victim(w, t)
        } else {
            Self::victim_admin(w, t, roles::GLOBAL_ADMIN)
        };
        let tz = CITIES[w.tenants[t].hq].tz;
        let at = self.when(w, rng, &[t], tz, (9, 18), 0);
        let c = match k % 3 {
            0 => Consent {
                app: "Mail Archiver Pro",
                scopes: "Mail.Read Files.ReadWrite.All User.Read offline_access",
                admin: true,
                all_principals: true,
                app_only: false,
            },
            1 => Consent {
                app: "PDF Converter Online",
                scopes: "Mail.ReadWrite User.Read offline_access",
                admin: false,
                all_principals: false,
                app_only: false,
            },
            _ => Consent {
                app: "Exchange Migration Tool",
                scopes: "full_access_as_app",
                admin: true,
                all_principals: true,
                app_only: true,
            },
        };
        let sp = rng.guid();
        let net = w.accounts[actor].home_net;
        self.emit(w, |g| {
            for a in audits::consent(
                g.w,
                rng,
                at,
                t,
                Actor::User {
                    account: actor,
                    net: Some(net),
                },
                sp,
                c,
            ) {
                g.out.push(Rec::Audit(a));
            }
        });
        let who = if c.admin {
            "an admin grants tenant-wide (admin) consent"
        } else {
            "a user consents for themselves"
        };
        let story = format!("{who} to {}: {}", c.app, c.scopes);
        let mut l = user_label(w, "consent-grant-risky", k, actor, t, at, at + SEC, story);
        l.alt_principal_ids = vec![sp.to_string()];
        self.label(l);
    }
}
