//! Chain stories: an account taken over, told by one alert of the findings of several rules.

use super::{Stories, user_label};
use crate::simulate::audits;
use crate::simulate::catalog::{self, CITIES, Method, apps, roles};
use crate::simulate::records::{Actor, Auth, Cat, Rec};
use crate::simulate::rng::{HOUR, MIN, Rng, SEC};
use crate::simulate::world::World;

impl Stories {
    /// `account-takeover-chain`: a Privileged Role Administrator with a baseline at the office
    /// signs in from an attacker's country, registers the attacker's Authenticator app on the
    /// account 12 minutes later, then grants the account Global Administrator outside PIM.
    pub(super) fn takeover_chain(&mut self, w: &mut World, rng: &mut Rng, k: u32, t: usize) {
        let rule = "account-takeover-chain";
        let tz = CITIES[w.tenants[t].hq].tz;
        let v = Self::victim_admin(w, t, roles::PRIVILEGED_ROLE_ADMIN);
        let office = w.tenants[t].office_net;
        let laptop = w.accounts[v].laptop;
        let net = self.attacker_net(w, rng, w.tenants[t].hq);
        let dev = Self::attacker_device(w);
        let at = self.when(w, rng, &[t], tz, (7, 19), 2 * HOUR);
        let registered = at + 12 * MIN;
        let granted = at + 41 * MIN;
        self.emit(w, |g| {
            // An admin account signs in less than a person's daily one: make sure the baseline
            // (7 days, 10 successes) is there even in a 10-day world.
            for day in 0..8 {
                for hour in [10, 14] {
                    let when = g.w.local_midnight(day, tz) + hour * HOUR + rng.range(0, HOUR);
                    g.sign_in(
                        when,
                        t,
                        v,
                        Cat::Interactive,
                        apps::M365_ADMIN,
                        office,
                        Some(laptop),
                        Auth::Passwordless(Method::Fido2),
                        0,
                        rng,
                    );
                }
            }
            g.sign_in(
                at,
                t,
                v,
                Cat::Interactive,
                apps::ENTRA_ADMIN,
                net,
                Some(dev),
                Auth::Passwordless(Method::Fido2),
                0,
                rng,
            );
            let attacker = || Actor::User {
                account: v,
                net: Some(net),
            };
            g.out.push(Rec::Audit(audits::security_info(
                g.w,
                rng,
                registered,
                t,
                attacker(),
                v,
                "User registered security info",
                "User registered Authenticator App with Notification and Code",
            )));
            g.out.push(Rec::Audit(audits::mfa_service_update(
                g.w,
                rng,
                registered + 4 * SEC,
                t,
                v,
            )));
            let target = audits::user_target(g.w, v);
            g.out.push(Rec::Audit(audits::role_member(
                g.w,
                rng,
                granted,
                t,
                attacker(),
                target,
                roles::GLOBAL_ADMIN,
                "Add member to role",
            )));
        });
        let story = format!(
            "a Privileged Role Administrator's account is taken over: a sign-in from {} ({}), \
             the attacker's Authenticator app registered 12 minutes later, then {} granted to the \
             account outside PIM",
            CITIES[w.nets[net].city].name,
            CITIES[w.nets[net].city].country,
            catalog::ROLES[roles::GLOBAL_ADMIN].name
        );
        self.label(user_label(w, rule, k, v, t, at, granted, story));
    }
}
