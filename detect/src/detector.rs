//! The detector trait: one rule, one required method, defaulted hooks.

use std::cell::Cell;

use entrawatch_ingest::model::SignIn;
use entrawatch_ingest::{Event, Kind};

use crate::config::DetectConfig;
use crate::finding::{Finding, Severity};
use crate::keys::SignInKeys;
use crate::privileged::PrivilegedDirectory;
use crate::state::{PrincipalState, State};

/// What a detector may read: everything the engine knew before this event.
#[derive(Debug, Clone)]
pub struct Context<'a> {
    pub config: &'a DetectConfig,
    pub directory: &'a PrivilegedDirectory,
    pub state: &'a State,
    /// The last privilege decision: which sign-in (by address, during this one event) and the
    /// answer. Most sign-in detectors ask it; it is decided once per event.
    privileged: Cell<Option<((*const SignIn, *const u8), bool)>>,
    /// The last [`Context::sign_in_history`] answer, by event.
    history: Cell<Option<(*const Event, Option<&'a PrincipalState>)>>,
    /// The last [`Context::sign_in_keys`] answer, by event.
    keys: Cell<Option<(*const Event, SignInKeys)>>,
}

impl<'a> Context<'a> {
    pub fn new(
        config: &'a DetectConfig,
        directory: &'a PrivilegedDirectory,
        state: &'a State,
    ) -> Self {
        Context {
            config,
            directory,
            state,
            privileged: Cell::new(None),
            history: Cell::new(None),
            keys: Cell::new(None),
        }
    }

    /// The history of the principal who signs in with `event` (by its tenant and
    /// [`crate::keys::sign_in_key`]), `None` for a principal never seen or an event that is not
    /// a sign-in.
    /// Several detectors ask it of every sign-in; it is looked up once per event.
    pub fn sign_in_history(&self, event: &Event) -> Option<&'a PrincipalState> {
        let state = self.state;
        remembered(&self.history, std::ptr::from_ref(event), || {
            self.sign_in_keys(event)
                .principal
                .and_then(|key| state.principal_by_key(&event.meta.tenant_id, key))
        })
    }

    /// The keys of `event` if it is a sign-in ([`SignInKeys::of_event`]), made once per event for
    /// every detector that asks and for the state's update after them.
    pub fn sign_in_keys(&self, event: &Event) -> SignInKeys {
        remembered(&self.keys, std::ptr::from_ref(event), || {
            SignInKeys::of_event(event)
        })
    }

    /// [`PrivilegedDirectory::sign_in_is_privileged`] for a sign-in of `tenant_id`, remembered for
    /// the event being observed so that the detectors asking it share one lookup.
    pub fn sign_in_is_privileged(&self, tenant_id: &str, sign_in: &SignIn) -> bool {
        let which = (std::ptr::from_ref(sign_in), tenant_id.as_ptr());
        remembered(&self.privileged, which, || {
            self.directory
                .sign_in_is_privileged(self.config, tenant_id, sign_in)
        })
    }
}

/// The answer kept in `cell` when it was computed for `key`, else `compute`'s, kept for next time.
fn remembered<K: Copy + PartialEq, T: Copy>(
    cell: &Cell<Option<(K, T)>>,
    key: K,
    compute: impl FnOnce() -> T,
) -> T {
    if let Some((seen, answer)) = cell.get()
        && seen == key
    {
        return answer;
    }
    let answer = compute();
    cell.set(Some((key, answer)));
    answer
}

/// A rule of the catalogue. Detectors are pure: they decide from the context and the event, never
/// read the clock, and do no I/O.
pub trait Detector: Send + Sync + std::fmt::Debug {
    /// The stable rule id (docs/detectors.md).
    fn id(&self) -> &'static str;

    /// The documented default severity.
    fn default_severity(&self) -> Severity;

    /// The user documentation: what it detects, why it matters, signals, an example, tuning,
    /// references (printed by `entrawatch rules ID`).
    fn doc(&self) -> &'static str;

    /// How to read this rule's settings (`[detect.rules.RULE-ID]`): `Some(&Of::<Settings>(PhantomData))`
    /// for a rule with a `Settings` type ([`crate::settings::RuleSettings`]), `None` (the default)
    /// for a rule without: a table for it is then refused.
    fn settings(&self) -> Option<&'static dyn crate::settings::SettingsKind> {
        None
    }

    /// The kinds of event [`Detector::observe`] decides on (every kind unless it says fewer): the
    /// engine hands each event only to the rules of its kind, so a sign-in does not pass through
    /// the audit rules' code on its way.
    fn kinds(&self) -> &'static [Kind] {
        &Kind::ALL
    }

    /// Decides on one event; findings go to `out`.
    fn observe(&self, ctx: &Context<'_>, event: &Event, out: &mut Vec<Finding>);

    /// Called when the pipeline's event-time clock passes a whole minute, before the event that moved
    /// it is observed; `now` is the new clock in seconds. For rules about absence (silent sources).
    fn on_tick(&self, _ctx: &Context<'_>, _now: i64, _out: &mut Vec<Finding>) {}

    /// Called after every detector has decided on `event` and allow lists have dropped what the
    /// config exempts, with the findings kept for it (`findings`, never empty), before the state
    /// learns from the event. For rules about other rules' findings (`account-takeover-chain`);
    /// what it adds to `out` goes through the allow lists too.
    fn on_findings(
        &self,
        _ctx: &Context<'_>,
        _event: &Event,
        _findings: &[Finding],
        _out: &mut Vec<Finding>,
    ) {
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{key128, sign_in_key};
    use crate::testkit::{audit, sign_in};

    #[test]
    fn sign_in_history_is_the_principal_of_each_event() {
        let config = DetectConfig::default();
        let directory = PrivilegedDirectory::default();
        let mut state = State::default();
        let known = sign_in("s1", "alice@contoso.com", 0).build();
        state.update(&config, &known);
        let again = sign_in("s2", "alice@contoso.com", 5).build();
        let other = sign_in("s3", "bob@contoso.com", 6).build();
        let elsewhere = sign_in("s4", "alice@contoso.com", 7)
            .tenant("9a2bdf5c-0e2c-4d3a-8f43-6a1f2f0c9d11")
            .build();
        let not_a_sign_in = audit("a1", "Update user", 8).build();
        let ctx = Context::new(&config, &directory, &state);
        for _ in 0..2 {
            let got = ctx.sign_in_history(&again).expect("alice is known");
            assert!(std::ptr::eq(
                got,
                state
                    .principal(
                        &again.meta.tenant_id,
                        sign_in_key(again.as_sign_in().unwrap()).unwrap()
                    )
                    .unwrap()
            ));
            assert!(ctx.sign_in_history(&other).is_none());
            assert!(ctx.sign_in_history(&elsewhere).is_none());
            assert!(ctx.sign_in_history(&not_a_sign_in).is_none());
            for event in [&again, &other, &elsewhere] {
                let s = event.as_sign_in().unwrap();
                assert_eq!(
                    ctx.sign_in_keys(event),
                    SignInKeys {
                        principal: Some(key128(sign_in_key(s).unwrap())),
                        ip: Some(key128(s.ip_address.as_deref().unwrap())),
                        session: None,
                    }
                );
            }
            assert_eq!(ctx.sign_in_keys(&not_a_sign_in), SignInKeys::default());
        }
    }
}
