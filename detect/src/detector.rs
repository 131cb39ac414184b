//! The detector trait: one rule, one required method, defaulted hooks.

use entrawatch_ingest::Event;

use crate::config::DetectConfig;
use crate::finding::{Finding, Severity};
use crate::privileged::PrivilegedDirectory;
use crate::state::State;

/// What a detector may read: everything the engine knew before this event.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    pub config: &'a DetectConfig,
    pub directory: &'a PrivilegedDirectory,
    pub state: &'a State,
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
