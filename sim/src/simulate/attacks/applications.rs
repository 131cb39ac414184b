//! Application stories: a client secret added by an attacker-controlled admin to an application
//! that holds mail permissions. Record shapes follow Microsoft Learn "Microsoft Entra audit log
//! activity reference" (ApplicationManagement).

use super::{Stories, user_label};
use crate::simulate::audits::{self, Consent};
use crate::simulate::catalog::{CITIES, roles};
use crate::simulate::records::{Actor, Rec};
use crate::simulate::rng::{DAY, HOUR, MIN, Rng, SEC};
use crate::simulate::world::World;

impl Stories {
    /// `app-credential-added`: days earlier an admin consent granted an archiving app
    /// `Mail.ReadWrite` for the whole organisation; then an admin signing in from an attacker's
    /// network adds a client secret to it. Variant 0 adds it to the application object (`Update
    /// application – Certificates and secrets management`), variant 1 to its service principal
    /// (`Add service principal credentials`).
    pub(super) fn app_credential(&mut self, w: &mut World, rng: &mut Rng, k: u32, t: usize) {
        let actor = Self::victim_admin(w, t, roles::GLOBAL_ADMIN);
        let tz = CITIES[w.tenants[t].hq].tz;
        let at = self.when(w, rng, &[t], tz, (9, 18), 10 * MIN);
        let net = self.attacker_net(w, rng, w.tenants[t].hq);
        let granted = (at - rng.range(3, 6) * DAY - rng.range(0, 4) * HOUR).max(w.start + HOUR);
        let app = if k.is_multiple_of(2) {
            "Mailbox Archive Connector"
        } else {
            "Journal Export Service"
        };
        let sp = rng.guid();
        let app_object = rng.guid();
        let on_sp = !k.is_multiple_of(2);
        let office = w.accounts[actor].home_net;
        self.emit(w, |g| {
            let consent = audits::consent(
                g.w,
                rng,
                granted,
                t,
                Actor::User {
                    account: actor,
                    net: Some(office),
                },
                sp,
                Consent {
                    app,
                    scopes: "Mail.ReadWrite User.Read offline_access",
                    admin: true,
                    all_principals: true,
                    app_only: false,
                },
            );
            // The consent names the app by an app id of its own making: use one id throughout.
            let app_id = rng.guid();
            let mut consent = consent;
            consent[0].details.retain(|(k, _)| *k != "AppId");
            consent[0].details.push(("AppId", app_id.to_string()));
            for p in consent[0]
                .targets
                .iter_mut()
                .flat_map(|t| t.props.iter_mut())
            {
                if p.0 == "TargetId.ServicePrincipalNames" {
                    p.2 = Some(audits::q(&app_id.to_string()));
                }
            }
            for a in consent {
                g.out.push(Rec::Audit(a));
            }
            let old = vec![audits::secret_key(rng, "prod-2026")];
            let mut new = old.clone();
            new.push(audits::secret_key(rng, "backup"));
            let (activity, object) = if on_sp {
                ("Add service principal credentials", sp)
            } else {
                (
                    "Update application – Certificates and secrets management",
                    app_object,
                )
            };
            g.out.push(Rec::Audit(audits::app_credentials(
                rng,
                at,
                t,
                Actor::User {
                    account: actor,
                    net: Some(net),
                },
                activity,
                (object, app_id, app),
                &old,
                &new,
            )));
        });
        let story = format!(
            "a Global Administrator signing in from {} adds a client secret to {app}, which an admin \
             consent granted Mail.ReadWrite {} days earlier",
            w.nets[net].ip,
            (at - granted) / DAY
        );
        let mut l = user_label(w, "app-credential-added", k, actor, t, at, at + SEC, story);
        l.alt_principal_ids = vec![app_object.to_string(), sp.to_string()];
        self.label(l);
    }
}
