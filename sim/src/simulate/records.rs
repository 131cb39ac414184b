//! The simulator's compact records: what happened, by whom, from where, referring to the world by
//! index. [`super::render`] turns them into Event Hub records or Graph entities.

use super::catalog::{Method, apps};
use super::rng::{Guid, Rng, Ticks};
use super::world::{AcctId, DevId, NetId};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cat {
    Interactive,
    NonInteractive,
    ServicePrincipal,
}

/// What `authenticationDetails` and `authenticationRequirement` say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    /// Password, then this second factor (a passwordless method alone for FIDO2 keys used as
    /// the first factor is `Passwordless`).
    Mfa(Method),
    /// Windows Hello for Business (or a passkey) as the only, multi-factor step.
    Passwordless(Method),
    /// Password, and MFA satisfied by a claim in the token ("Previously satisfied").
    PasswordPrevMfa,
    /// Both factors from the token (cross-tenant trust, technicians and guests).
    ClaimMfa,
    /// A token refresh: first factor from the token, single factor.
    Refresh,
    /// A password only.
    PasswordOnly,
    /// A wrong password.
    PasswordFail,
    /// Password right, then MFA required (the 50074 interrupt).
    MfaRequired,
    /// Password right, then this MFA prompt denied or unanswered (error 500121).
    MfaDenied(Method),
    /// No user authentication (service principals, disabled accounts).
    None,
}

impl Auth {
    pub fn multi_factor(self) -> bool {
        matches!(
            self,
            Auth::Mfa(_) | Auth::Passwordless(_) | Auth::PasswordPrevMfa | Auth::ClaimMfa
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Client {
    Browser,
    MobileDesktop,
    Legacy(&'static str),
}

/// Risk fields of a sign-in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Risk {
    pub during: &'static str,
    pub aggregated: &'static str,
    pub state: &'static str,
    pub detail: &'static str,
    pub types: &'static [&'static str],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Who {
    User(AcctId),
    /// A tenant's backup connector service principal.
    Connector(usize),
    /// A user name that does not exist in the tenant (index into [`UNKNOWN_NAMES`]).
    Unknown(usize),
}

/// Names scanners try that no tenant has.
pub const UNKNOWN_NAMES: &[&str] = &[
    "admin",
    "administrator",
    "test",
    "info",
    "scanner",
    "backup",
    "helpdesk",
    "support",
    "root",
    "sales",
    "hr",
    "it",
    "office",
    "reception",
    "finance",
    "postmaster",
    "webmaster",
    "noreply",
];

#[derive(Debug, Clone)]
pub struct SignIn {
    pub t: Ticks,
    /// The tenant whose logs hold it (the resource tenant).
    pub tenant: usize,
    pub who: Who,
    pub cat: Cat,
    pub app: usize,
    pub client: Client,
    pub net: NetId,
    pub device: Option<DevId>,
    pub err: u32,
    pub auth: Auth,
    pub risk: Option<Risk>,
    pub protocol: &'static str,
    pub user_agent: Option<&'static str>,
    pub id: Guid,
    pub corr: Guid,
    /// Milliseconds of processing (cosmetic).
    pub ms: u32,
    /// The `sessionId` to render; `None` for the user's session of the day
    /// ([`crate::simulate::world::World::session_of`]).
    pub session: Option<Guid>,
}

impl SignIn {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        rng: &mut Rng,
        t: Ticks,
        tenant: usize,
        who: Who,
        cat: Cat,
        app: usize,
        net: NetId,
        device: Option<DevId>,
    ) -> SignIn {
        let client = match (cat, app) {
            (Cat::Interactive, a) if a != apps::TEAMS_DESKTOP && a != apps::OFFICE_DESKTOP => {
                Client::Browser
            }
            _ => Client::MobileDesktop,
        };
        SignIn {
            t,
            tenant,
            who,
            cat,
            app,
            client,
            net,
            device,
            err: 0,
            auth: if cat == Cat::ServicePrincipal {
                Auth::None
            } else {
                Auth::Refresh
            },
            risk: None,
            protocol: "none",
            user_agent: None,
            id: rng.guid(),
            corr: rng.guid(),
            ms: rng.range(20, 400) as u32,
            session: None,
        }
    }
}

/// Who did an audited change.
#[derive(Debug, Clone)]
pub enum Actor {
    User {
        account: AcctId,
        net: Option<NetId>,
    },
    /// A user named by object id only: no UPN, no display name, no home tenant (as some v1.0
    /// audit records show partner actions).
    IdOnly {
        account: AcctId,
        net: Option<NetId>,
    },
    App {
        name: &'static str,
        sp: Guid,
    },
}

/// A `targetResources[]` item.
#[derive(Debug, Clone)]
pub struct Target {
    pub id: String,
    pub display: Option<String>,
    pub kind: &'static str,
    pub upn: Option<String>,
    /// (displayName, oldValue, newValue), values already in their wire form (JSON text).
    pub props: Vec<(String, Option<String>, Option<String>)>,
}

#[derive(Debug, Clone)]
pub struct Audit {
    pub t: Ticks,
    pub tenant: usize,
    pub corr: Guid,
    pub actor: Actor,
    pub activity: &'static str,
    pub category: &'static str,
    pub service: &'static str,
    pub op: &'static str,
    pub targets: Vec<Target>,
    pub reason: &'static str,
    pub details: Vec<(&'static str, String)>,
    /// `Directory_<corr>_<this>`.
    pub id_tail: String,
}

impl Audit {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        rng: &mut Rng,
        t: Ticks,
        tenant: usize,
        actor: Actor,
        activity: &'static str,
        category: &'static str,
        service: &'static str,
        op: &'static str,
    ) -> Audit {
        let id_tail = format!(
            "{}_{}",
            rng.text(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", 5),
            rng.range(100_000_000, 999_999_999)
        );
        Audit {
            t,
            tenant,
            corr: rng.guid(),
            actor,
            activity,
            category,
            service,
            op,
            targets: Vec::new(),
            reason: "",
            details: Vec::new(),
            id_tail,
        }
    }
}

/// A risky-user state change (Event Hub `RiskyUsers`; Graph `riskyUsers` keeps the latest).
#[derive(Debug, Clone)]
pub struct RiskyUser {
    pub t: Ticks,
    pub tenant: usize,
    pub user: AcctId,
    pub level: &'static str,
    pub state: &'static str,
    pub detail: &'static str,
}

/// A risk detection (Event Hub `UserRiskEvents`; Graph `riskDetections`).
#[derive(Debug, Clone)]
pub struct Detection {
    pub id: String,
    pub tenant: usize,
    pub user: AcctId,
    pub kind: &'static str,
    pub level: &'static str,
    pub state: &'static str,
    pub detail: &'static str,
    pub timing: &'static str,
    pub activity: &'static str,
    pub activity_time: Ticks,
    pub detected: Ticks,
    pub updated: Ticks,
    pub net: Option<NetId>,
    pub request: Option<(Guid, Guid)>,
}

#[derive(Debug, Clone)]
pub enum Rec {
    SignIn(SignIn),
    Audit(Audit),
    RiskyUser(RiskyUser),
    Detection(Detection),
}

impl Rec {
    /// Event time, as the ingest normaliser will read it.
    pub fn time(&self) -> Ticks {
        match self {
            Rec::SignIn(s) => s.t,
            Rec::Audit(a) => a.t,
            Rec::RiskyUser(r) => r.t,
            Rec::Detection(d) => d.updated,
        }
    }

    pub fn tenant(&self) -> usize {
        match self {
            Rec::SignIn(s) => s.tenant,
            Rec::Audit(a) => a.tenant,
            Rec::RiskyUser(r) => r.tenant,
            Rec::Detection(d) => d.tenant,
        }
    }
}
