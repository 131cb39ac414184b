//! Stories told by how a sign-in is completed: MFA prompts pushed until the user gives in
//! (`mfa-fatigue`), and a device code phished from a user (`device-code-sign-in`).

use super::{Stories, user_label};
use crate::simulate::catalog::{CITIES, Method, apps};
use crate::simulate::records::{Auth, Cat, SignIn, Who};
use crate::simulate::rng::{HOUR, Rng, SEC};
use crate::simulate::world::World;

impl Stories {
    /// MFA bombing: the attacker has the password and pushes prompts from a far-away network;
    /// the user denies or ignores four or five, then approves one.
    pub(super) fn mfa_fatigue(&mut self, w: &mut World, rng: &mut Rng, k: u32, t: usize) {
        let rule = "mfa-fatigue";
        let tz = CITIES[w.tenants[t].hq].tz;
        let v = Self::victim(w, t);
        let net = self.attacker_net(w, rng, w.tenants[t].hq);
        let dev = Self::attacker_device(w);
        // In the evening, when a tired user is likelier to tap "Approve".
        let at = self.when(w, rng, &[t], tz, (19, 22), HOUR);
        let denials = if k.is_multiple_of(2) { 4 } else { 5 };
        let mut last = at;
        self.emit(w, |g| {
            for i in 0..denials {
                last = at + i * 100 * SEC + rng.range(0, 20) * SEC;
                g.sign_in(
                    last,
                    t,
                    v,
                    Cat::Interactive,
                    apps::OFFICE_HOME,
                    net,
                    Some(dev),
                    Auth::MfaDenied(Method::MobileApp),
                    500121,
                    rng,
                );
            }
            last += rng.range(90, 240) * SEC;
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
        });
        let story = format!(
            "{denials} MFA pushes denied (500121) from {} within about {} minutes, then the user \
             approves one",
            w.nets[net].ip,
            denials * 100 / 60 + 1
        );
        self.label(user_label(w, rule, k, v, t, at, last, story));
    }

    /// Device code phishing: the user enters a code an attacker sent, and the sign-in (the
    /// attacker's session, from the attacker's network abroad) completes with the user's MFA.
    pub(super) fn device_code(&mut self, w: &mut World, rng: &mut Rng, k: u32, t: usize) {
        let rule = "device-code-sign-in";
        let tz = CITIES[w.tenants[t].hq].tz;
        let v = Self::victim(w, t);
        let net = self.attacker_net(w, rng, w.tenants[t].hq);
        let dev = Self::attacker_device(w);
        let at = self.when(w, rng, &[t], tz, (9, 17), HOUR);
        let app = if k.is_multiple_of(2) {
            apps::OFFICE_HOME
        } else {
            apps::TEAMS_WEB
        };
        self.emit(w, |g| {
            let mut s = SignIn::new(
                rng,
                at,
                t,
                Who::User(v),
                Cat::Interactive,
                app,
                net,
                Some(dev),
            );
            s.auth = Auth::Mfa(Method::MobileApp);
            s.protocol = "deviceCode";
            g.push(s);
        });
        let story = format!(
            "the user enters a phished device code; the sign-in completes from {} ({}), a country \
             the user never signs in from",
            w.nets[net].ip, CITIES[w.nets[net].city].name
        );
        self.label(user_label(w, rule, k, v, t, at, at, story));
    }
}
