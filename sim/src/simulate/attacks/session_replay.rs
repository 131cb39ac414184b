//! A session cookie stolen by an adversary-in-the-middle phishing proxy and replayed from abroad
//! (`session-token-replay`).

use super::{Stories, user_label};
use crate::simulate::catalog::{CITIES, Method, apps};
use crate::simulate::records::{Auth, Cat, SignIn, Who};
use crate::simulate::rng::{MIN, Rng, SEC};
use crate::simulate::world::World;

impl Stories {
    /// The user signs in from their office through a look-alike page (password and an
    /// Authenticator prompt, relayed by the proxy); minutes later the proxy's operator replays the
    /// session cookie from an attacker network abroad: the same session id, MFA satisfied by the
    /// claim in the token.
    pub(super) fn session_replay(&mut self, w: &mut World, rng: &mut Rng, k: u32, t: usize) {
        let rule = "session-token-replay";
        let tz = CITIES[w.tenants[t].hq].tz;
        let v = Self::victim(w, t);
        let net = self.attacker_net(w, rng, w.tenants[t].hq);
        let dev = Self::attacker_device(w);
        let office = w.tenants[t].office_net;
        let laptop = w.accounts[v].laptop;
        let at = self.when(w, rng, &[t], tz, (9, 16), MIN * 30);
        let replay = at + rng.range(3, 15) * MIN + rng.range(0, 59) * SEC;
        let session = rng.guid();
        self.emit(w, |g| {
            let mut s = SignIn::new(
                rng,
                at,
                t,
                Who::User(v),
                Cat::Interactive,
                apps::OFFICE_HOME,
                office,
                Some(laptop),
            );
            s.auth = Auth::Mfa(Method::MobileApp);
            s.session = Some(session);
            g.push(s);
            let app = if k.is_multiple_of(2) {
                apps::OFFICE_HOME
            } else {
                apps::OUTLOOK_WEB
            };
            let mut s = SignIn::new(
                rng,
                replay,
                t,
                Who::User(v),
                Cat::Interactive,
                app,
                net,
                Some(dev),
            );
            s.auth = Auth::ClaimMfa;
            s.session = Some(session);
            g.push(s);
        });
        let story = format!(
            "the user signs in at the office through an AiTM phishing page; {} minutes later the \
             session cookie is replayed from {} ({}), MFA satisfied by the claim in the token",
            (replay - at) / MIN,
            w.nets[net].ip,
            CITIES[w.nets[net].city].name
        );
        self.label(user_label(w, rule, k, v, t, at, replay, story));
    }
}
