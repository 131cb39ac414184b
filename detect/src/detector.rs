//! The detector trait: one rule, one required method.

use entrawatch_ingest::Event;

use crate::config::DetectConfig;
use crate::finding::{Finding, Severity};
use crate::privileged::PrivilegedDirectory;

/// The state a detector may read: everything the engine knew before this event.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    pub config: &'a DetectConfig,
    pub directory: &'a PrivilegedDirectory,
}

/// A rule of the catalogue. Detectors are pure: they decide from the context and the event, never
/// read the clock, and do no I/O.
pub trait Detector: Send + Sync + std::fmt::Debug {
    /// The stable rule id (DETECTORS.md).
    fn id(&self) -> &'static str;

    /// The documented default severity (the lowest this rule raises).
    fn default_severity(&self) -> Severity;

    /// Decides on one event; findings go to `out`.
    fn observe(&self, ctx: &Context<'_>, event: &Event, out: &mut Vec<Finding>);
}
