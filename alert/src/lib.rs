//! entrawatch alert: findings in, alert records out.
//!
//! What comes in: [`entrawatch_detect::Finding`]s in event-time order. What goes out:
//! [`AlertRecord`]s exactly as DETECTORS.md defines them, with deterministic ids so a replay or a
//! restart re-derives the same alerts and sinks can de-duplicate.
//!
//! The types, in the order data meets them:
//! - [`Episodes`] groups a repeat of one rule for one principal inside the rule's suppression window
//!   into the open alert (`count`, `last_seen`, `event_ids` move) instead of a new alert.
//! - [`AlertRecord`] is the one record every sink renders from.

pub mod deliver;
pub mod destination;
pub mod episodes;
pub mod inhibit;
pub mod labels;
pub mod matcher;
pub mod metrics;
pub mod notify;
pub mod occasions;
pub mod outbox;
pub mod record;
pub mod render;
pub mod replay;
pub mod route;
pub mod silence;
pub mod stage;

pub use episodes::{Episodes, Update};
pub use notify::{Kind, Notification};
pub use record::AlertRecord;
pub use stage::AlertStage;
