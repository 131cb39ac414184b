//! entrawatch detect: normalised events in, findings out.
//!
//! What comes in: [`entrawatch_ingest::Event`]s in event-time order (sign-ins, audits, risky users,
//! risk detections, directory context). What goes out: [`Finding`]s, each naming a rule from the
//! catalogue (docs/detectors.md), a severity, the tenant and principal, the evidence event ids and a title
//! and summary an analyst can act on. Turning findings into alert records (ids, episodes) is the
//! `alert` crate's job.
//!
//! The modules, in the order data meets them:
//! - [`engine`]: the [`Engine`] owns all state, feeds each event to every enabled detector before
//!   the state learns from it, and writes and restores snapshots.
//! - [`extra`]: the [`ExtraState`] the engine keeps for extra (Sigma) rules: correlation windows.
//! - [`privileged`]: the [`PrivilegedDirectory`], who holds a privileged role per tenant.
//! - [`state`]: the 30-day [`State`] (per principal, per partner technician, per source IP, per
//!   tenant stream), which learns from each event after the detectors have decided on it.
//! - [`keys`]: how ids, addresses and countries become the fixed-size keys the state and the
//!   directory are indexed by, and the hasher of their maps.
//! - [`detector`]: the [`Detector`] trait, one rule: a pure decision over (state before this event,
//!   the event) through a [`Context`]. Detectors never read the clock and do no I/O.
//! - [`detectors`]: one file per detector, with the helpers several of them share; [`registry`]
//!   lists them once.
//! - [`finding`]: the [`Finding`] a detector emits, with its [`Severity`] and [`Principal`].
//! - [`config`]: the [`DetectConfig`]: partner tenants, break-glass accounts, extra privileged
//!   principals, the baseline, enabled rules, allow lists, and the rule tables.
//! - [`settings`]: how each rule's own settings (`[detect.rules.RULE-ID]`, a `Settings` type in
//!   the detector's file) are read, checked and looked up.

pub mod apps;
pub mod config;
pub mod detector;
pub mod detectors;
pub mod engine;
pub mod extra;
pub mod finding;
pub mod keys;
pub mod privileged;
pub mod registry;
pub mod settings;
pub mod state;
#[cfg(test)]
pub(crate) mod testkit;

pub use config::DetectConfig;
pub use detector::{Context, Detector};
pub use engine::{ConfigError, Engine, ExtraRules, SnapshotError};
pub use extra::ExtraState;
pub use finding::{Finding, Principal, PrincipalKind, Severity};
pub use privileged::PrivilegedDirectory;
pub use state::State;
