//! entrawatch detect: normalised events in, findings out.
//!
//! What comes in: [`entrawatch_ingest::Event`]s in event-time order (sign-ins, audits, risky users,
//! risk detections, directory context). What goes out: [`Finding`]s, each naming a rule from the
//! catalogue (DETECTORS.md), a severity, the tenant and principal, the evidence event ids and a title
//! and summary an analyst can act on. Turning findings into alert records (ids, episodes) is the
//! `alert` crate's job.
//!
//! The types, in the order data meets them:
//! - [`Engine`] owns all state: the [`PrivilegedDirectory`] and the 30-day [`State`] (per principal,
//!   per partner technician, per source IP, per tenant stream), and feeds each event to every enabled
//!   detector before the state learns from it.
//! - [`Detector`] is one rule: a pure decision over (state before this event, the event). Detectors
//!   never read the clock and do no I/O. Each lives in its own file under `detectors/`, listed once in
//!   [`registry`].
//! - [`DetectConfig`] holds thresholds, partner tenants, break-glass accounts and extra privileged
//!   principals.

pub mod config;
pub mod detector;
pub mod detectors;
pub mod engine;
pub mod finding;
pub mod keys;
pub mod privileged;
pub mod registry;
pub mod state;
#[cfg(test)]
pub(crate) mod testkit;

pub use config::DetectConfig;
pub use detector::{Context, Detector};
pub use engine::{ConfigError, Engine, SnapshotError};
pub use finding::{Finding, Principal, PrincipalKind, Severity};
pub use privileged::PrivilegedDirectory;
pub use state::State;
