//! What normalising a record is given and what it gives back: the [`RecordContext`] the reader
//! knows beyond the record's own fields, the [`Outcome`] (an event, or a category skipped), and the
//! [`RecordError`] naming the field at fault.

use crate::model::{Event, Kind};

/// How the reason of a record rejected for carrying no event time begins (counted apart in
/// [`crate::stats::IngestStats::no_event_time`]).
pub const NO_EVENT_TIME: &str = "no event time";

/// What a record turned into.
#[derive(Debug)]
pub enum Outcome {
    Event(Box<Event>),
    /// A record of a category entrawatch does not read (counted, not an error).
    Skipped {
        category: String,
    },
}

/// Why a record could not be used: the field at fault and what was wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("field `{field}`: {reason}")]
pub struct RecordError {
    pub field: String,
    pub reason: String,
}

impl RecordError {
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        RecordError {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

/// What the reader knows about a record beyond its own fields.
#[derive(Debug, Clone)]
pub struct RecordContext<'a> {
    /// `--tenant`, else the nearest parent folder named by a tenant GUID.
    pub tenant_hint: Option<&'a str>,
    /// The entity type a Graph list's `@odata.context` names.
    pub graph_hint: Option<Kind>,
    /// Set by the CSV reader; JSON rows are recognised by their columns.
    pub csv: bool,
}
