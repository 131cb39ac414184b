//! Tenant-settings stories: a domain made federated to an identity provider the attacker holds,
//! another tenant added to cross-tenant access with its MFA and device claims trusted, and a
//! Conditional Access policy weakened. Record shapes follow Microsoft Learn "Microsoft Entra audit
//! log activity reference" (DirectoryManagement, CrossTenantAccessSettings, and Policy for the
//! Conditional Access service) and "Use audit logs to troubleshoot Conditional Access policy
//! changes".

use super::{Stories, user_label};
use crate::simulate::audits::{self, CaPolicy, q};
use crate::simulate::catalog::{CITIES, ROLES, roles};
use crate::simulate::records::{Actor, Audit, Rec, Target};
use crate::simulate::rng::{DAY, MIN, Rng, Ticks};
use crate::simulate::world::World;

/// A record on one target (a domain or the cross-tenant access policy) with its modified
/// properties, values already JSON text.
#[allow(clippy::too_many_arguments)]
fn setting_record(
    rng: &mut Rng,
    t: Ticks,
    tenant: usize,
    actor: Actor,
    activity: &'static str,
    category: &'static str,
    target: (String, Option<String>, &'static str),
    props: Vec<(String, Option<String>, Option<String>)>,
) -> Audit {
    let mut a = Audit::new(
        rng,
        t,
        tenant,
        actor,
        activity,
        category,
        "Core Directory",
        "Update",
    );
    a.targets = vec![Target {
        id: target.0,
        display: target.1,
        kind: target.2,
        upn: None,
        props,
    }];
    a
}

fn prop(
    name: &str,
    old: Option<&str>,
    new: Option<&str>,
) -> (String, Option<String>, Option<String>) {
    (
        name.to_owned(),
        old.map(str::to_owned),
        new.map(str::to_owned),
    )
}

impl Stories {
    /// `federation-settings-changed`: an admin signing in from an attacker's network federates a
    /// domain. Variant 0 converts an existing domain (`Set domain authentication` then `Set
    /// federation settings on domain`); variant 1 adds a new domain and verifies it as federated.
    pub(super) fn federation(&mut self, w: &mut World, rng: &mut Rng, k: u32, t: usize) {
        let actor = Self::victim_admin(w, t, roles::GLOBAL_ADMIN);
        let tz = CITIES[w.tenants[t].hq].tz;
        let at = self.when(w, rng, &[t], tz, (1, 5), 10 * MIN);
        let net = self.attacker_net(w, rng, w.tenants[t].hq);
        let code = w.tenants[t].code.to_ascii_lowercase();
        let domain = if k.is_multiple_of(2) {
            format!("login.{code}.com")
        } else {
            format!("{code}-sso.net")
        };
        let issuer = format!("http://sts.{code}-idp.net/adfs/services/trust");
        let dom_id = rng.guid().to_string();
        self.emit(w, |g| {
            let me = || Actor::User {
                account: actor,
                net: Some(net),
            };
            let target = || (dom_id.clone(), Some(domain.clone()), "Other");
            let steps: Vec<(&'static str, Vec<_>)> = if k.is_multiple_of(2) {
                vec![
                    (
                        "Set domain authentication",
                        vec![prop(
                            "LiveType",
                            Some("[\"Managed\"]"),
                            Some("[\"Federated\"]"),
                        )],
                    ),
                    (
                        "Set federation settings on domain",
                        vec![prop("IssuerUri", None, Some(&format!("[{}]", q(&issuer))))],
                    ),
                ]
            } else {
                vec![
                    ("Add unverified domain", Vec::new()),
                    (
                        "Verify domain",
                        vec![prop("AuthenticationType", None, Some(&q("Federated")))],
                    ),
                ]
            };
            for (i, (activity, props)) in steps.into_iter().enumerate() {
                g.out.push(Rec::Audit(setting_record(
                    rng,
                    at + i as i64 * 3 * MIN,
                    t,
                    me(),
                    activity,
                    "DirectoryManagement",
                    target(),
                    props,
                )));
            }
        });
        let how = if k.is_multiple_of(2) {
            "converts it from managed to federated and points it at an outside issuer"
        } else {
            "adds it and verifies it as federated"
        };
        let story = format!(
            "a Global Administrator signing in from {} {how}: {domain}",
            w.nets[net].ip
        );
        let l = user_label(
            w,
            "federation-settings-changed",
            k,
            actor,
            t,
            at,
            at + 6 * MIN,
            story,
        );
        self.label(l);
    }

    /// `cross-tenant-access-changed`: the GDAP service principal writes the partner's entry (the
    /// benign look-alike, which must stay quiet), then an admin signing in from an attacker's
    /// network adds an unknown tenant; variant 0 also makes it trust that tenant's MFA and
    /// compliant devices.
    pub(super) fn cross_tenant(&mut self, w: &mut World, rng: &mut Rng, k: u32, t: usize) {
        let actor = Self::victim_admin(w, t, roles::GLOBAL_ADMIN);
        let tz = CITIES[w.tenants[t].hq].tz;
        let at = self.when(w, rng, &[t], tz, (9, 18), 20 * MIN);
        let net = self.attacker_net(w, rng, w.tenants[t].hq);
        let other = rng.guid().to_string();
        let partner = w.partner_tenant().id.to_string();
        let policy = rng.guid().to_string();
        let widen = k.is_multiple_of(2);
        let plumbing = Actor::App {
            name: "Partner Customer Delegated Administration",
            sp: audits::service_sp(w, t, "gdap-pcda"),
        };
        self.emit(w, |g| {
            let me = || Actor::User {
                account: actor,
                net: Some(net),
            };
            let target = || (policy.clone(), None, "Policy");
            g.out.push(Rec::Audit(setting_record(
                rng,
                at - 2 * MIN,
                t,
                plumbing,
                "Add a partner to cross-tenant access setting",
                "CrossTenantAccessSettings",
                target(),
                vec![
                    prop("tenantId", None, Some(&q(&partner))),
                    prop("isServiceProvider", None, Some("true")),
                ],
            )));
            g.out.push(Rec::Audit(setting_record(
                rng,
                at,
                t,
                me(),
                "Add a partner to cross-tenant access setting",
                "CrossTenantAccessSettings",
                target(),
                vec![prop("tenantId", None, Some(&q(&other)))],
            )));
            if widen {
                g.out.push(Rec::Audit(setting_record(
                    rng,
                    at + 5 * MIN,
                    t,
                    me(),
                    "Update a partner cross-tenant access setting",
                    "CrossTenantAccessSettings",
                    target(),
                    vec![
                        prop("tenantId", None, Some(&q(&other))),
                        prop(
                            "inboundTrust",
                            Some("null"),
                            Some("{\"isMfaAccepted\":true,\"isCompliantDeviceAccepted\":true,\"isHybridAzureADJoinedDeviceAccepted\":false}"),
                        ),
                    ],
                )));
            }
        });
        let what = if widen {
            "and makes it trust that tenant's MFA and compliant devices"
        } else {
            "(no trust yet)"
        };
        let story = format!(
            "after the GDAP service principal adds the partner, a Global Administrator signing in from {} \
             adds tenant {other} to cross-tenant access {what}",
            w.nets[net].ip
        );
        let l = user_label(
            w,
            "cross-tenant-access-changed",
            k,
            actor,
            t,
            at,
            at + 5 * MIN,
            story,
        );
        self.label(l);
    }

    /// `conditional-access-weakened`: an admin signing in from an attacker's network weakens the
    /// tenant's Conditional Access. Variant 0 sets "Require MFA for admins" (which targets the
    /// Global and Privileged Role Administrator roles) to report-only; variant 1 excludes the
    /// admin's own account from "Require MFA for all users".
    pub(super) fn conditional_access(&mut self, w: &mut World, rng: &mut Rng, k: u32, t: usize) {
        let actor = Self::victim_admin(w, t, roles::GLOBAL_ADMIN);
        let tz = CITIES[w.tenants[t].hq].tz;
        let at = self.when(w, rng, &[t], tz, (1, 5), 10 * MIN);
        let net = self.attacker_net(w, rng, w.tenants[t].hq);
        let report_only = k.is_multiple_of(2);
        let created = w.start - rng.range(60 * DAY, 400 * DAY);
        let old = if report_only {
            CaPolicy {
                id: rng.guid(),
                name: "Require MFA for admins".into(),
                state: "enabled",
                include_users: Vec::new(),
                include_roles: [roles::GLOBAL_ADMIN, roles::PRIVILEGED_ROLE_ADMIN]
                    .iter()
                    .map(|&r| ROLES[r].template.to_owned())
                    .collect(),
                exclude_users: Vec::new(),
                exclude_groups: vec![rng.guid().to_string()],
                operator: "OR",
                controls: vec!["mfa"],
                created,
                modified: created + DAY,
            }
        } else {
            CaPolicy {
                id: rng.guid(),
                name: "Require MFA for all users".into(),
                state: "enabled",
                include_users: vec!["All".into()],
                include_roles: Vec::new(),
                exclude_users: Vec::new(),
                exclude_groups: vec![rng.guid().to_string()],
                operator: "OR",
                controls: vec!["mfa"],
                created,
                modified: created + DAY,
            }
        };
        let mut new = old.clone();
        new.modified = at;
        if report_only {
            new.state = "enabledForReportingButNotEnforced";
        } else {
            new.exclude_users.push(w.accounts[actor].id.to_string());
        }
        self.emit(w, |g| {
            let me = Actor::User {
                account: actor,
                net: Some(net),
            };
            g.out.push(Rec::Audit(audits::ca_policy(
                rng,
                at,
                t,
                me,
                &old,
                Some(&new),
            )));
        });
        let what = if report_only {
            format!("sets \"{}\" to report-only", old.name)
        } else {
            format!("excludes their own account from \"{}\"", old.name)
        };
        let story = format!(
            "a Global Administrator signing in from {} {what}",
            w.nets[net].ip
        );
        let l = user_label(w, "conditional-access-weakened", k, actor, t, at, at, story);
        self.label(l);
    }
}
