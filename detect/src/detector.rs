//! The detector trait: one rule, one required method, defaulted hooks.

use std::cell::Cell;

use entrawatch_ingest::Event;
use entrawatch_ingest::model::SignIn;

use crate::config::DetectConfig;
use crate::finding::{Finding, Severity};
use crate::privileged::PrivilegedDirectory;
use crate::state::State;

/// What a detector may read: everything the engine knew before this event.
#[derive(Debug, Clone)]
pub struct Context<'a> {
    pub config: &'a DetectConfig,
    pub directory: &'a PrivilegedDirectory,
    pub state: &'a State,
    /// The last privilege decision: which sign-in (by address, during this one event) and the
    /// answer. Most sign-in detectors ask it; it is decided once per event.
    privileged: Cell<Option<(*const SignIn, *const u8, bool)>>,
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
        }
    }

    /// [`PrivilegedDirectory::sign_in_is_privileged`] for a sign-in of `tenant_id`, remembered for
    /// the event being observed so that the detectors asking it share one lookup.
    pub fn sign_in_is_privileged(&self, tenant_id: &str, sign_in: &SignIn) -> bool {
        let (which, tenant) = (std::ptr::from_ref(sign_in), tenant_id.as_ptr());
        if let Some((seen, seen_tenant, answer)) = self.privileged.get()
            && (seen, seen_tenant) == (which, tenant)
        {
            return answer;
        }
        let answer = self
            .directory
            .sign_in_is_privileged(self.config, tenant_id, sign_in);
        self.privileged.set(Some((which, tenant, answer)));
        answer
    }
}

/// A rule of the catalogue. Detectors are pure: they decide from the context and the event, never
/// read the clock, and do no I/O.
pub trait Detector: Send + Sync + std::fmt::Debug {
    /// The stable rule id (DETECTORS.md).
    fn id(&self) -> &'static str;

    /// The documented default severity.
    fn default_severity(&self) -> Severity;

    /// The user documentation: what it detects, why it matters, signals, an example, tuning,
    /// references (printed by `entrawatch rules ID`).
    fn doc(&self) -> &'static str;

    /// Decides on one event; findings go to `out`.
    fn observe(&self, ctx: &Context<'_>, event: &Event, out: &mut Vec<Finding>);

    /// Called when the pipeline's event-time clock passes a whole minute, before the event that moved
    /// it is observed; `now` is the new clock in seconds. For rules about absence (silent sources).
    fn on_tick(&self, _ctx: &Context<'_>, _now: i64, _out: &mut Vec<Finding>) {}
}
