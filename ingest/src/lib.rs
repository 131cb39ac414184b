//! entrawatch ingest: Entra logs in, one normalised [`Event`] stream out.
//!
//! What comes in: Microsoft Graph JSON (v1.0 and beta; a single entity, a list page with `value`, or
//! NDJSON), Event Hub diagnostic records (inside `{"records":[...]}` envelopes or bare, whole files or
//! one per line) and Log Analytics / Sentinel exports (CSV and JSON). What goes out: [`Event`]s, each
//! with its tenant, its event time in UTC, the shape it came from, and a kind-specific [`Body`].
//!
//! The modules, in the order data meets them:
//! - [`walk`]: paths given to the files to read: a folder walk that always ends (each file and
//!   folder taken once, however many links lead to it; a depth limit; pipes, sockets and devices
//!   never opened) and names every path it passed over, with why.
//! - [`reader`]: files to [`reader::Item`]s; detects the shape per file and per record, names file,
//!   line and record in every error, and never lets one bad record cost another.
//! - [`framing`]: splits pages and envelopes into records without decoding the whole document.
//! - [`normalize`]: one decoded record to one [`Event`], dispatching on Event Hub `category`, Log
//!   Analytics `Type` or Graph `@odata.context`; resolves the tenant and the event time (a record
//!   with none is rejected: the time a record is read never stands in for when it happened).
//! - [`value`] and [`time`]: tolerant field access and every timestamp form Entra writes.
//! - [`model`]: the event model itself, with its field text in [`text`] ([`Text`]) and its open
//!   enums in [`enums`]; [`stats`]: counts for summaries and metrics.
//! - [`align`]: the event-time order replay sorts by ([`align::order`]), and the aligner that merges
//!   the lanes of live inputs into that order before detection.
//! - [`ordered`]: a whole set of files read on every core and handed out in that order, exact
//!   repeats marked: what `entrawatch replay` detects on.
//! - [`secret`]: secrets in config, written as where to find them, never as the value.
//!
//! With feature `sources`: [`source`] is the contract live sources keep with the runtime (batches,
//! positions, commit reports), [`sources`] holds them (`file` always, `kafka` for Event Hub or
//! Kafka with feature `kafka`, `graph` for Microsoft Graph polling with feature `graph`), and
//! [`metrics`] their Prometheus metrics.

pub mod align;
pub mod enums;
pub mod framing;
pub mod hash;
#[cfg(feature = "sources")]
pub mod metrics;
pub mod model;
pub mod normalize;
pub mod notice;
pub mod ordered;
pub mod reader;
pub mod secret;
#[cfg(feature = "sources")]
pub mod source;
#[cfg(feature = "sources")]
pub mod sources;
pub mod stats;
pub mod text;
pub mod time;
pub mod value;
pub mod walk;

pub use model::{Body, Event, Kind, Meta, Shape, Text, TimeSource};
pub use reader::{Item, Position, ReadOptions, Rejected, read_bytes, read_file};
pub use stats::IngestStats;
pub use walk::{SkipReason, SkippedPath, Walk, walk, walk_all};
