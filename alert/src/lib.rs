//! entrawatch alert: findings in, alert records and delivered notifications out.
//!
//! What comes in: [`entrawatch_detect::Finding`]s in event-time order. What goes out:
//! [`AlertRecord`]s exactly as docs/detectors.md defines them, with deterministic ids so a replay or a
//! restart re-derives the same alerts and sinks can de-duplicate, and [`Notification`]s that the
//! outbox keeps until each destination has them.
//!
//! The modules, in the order a finding meets them:
//! - [`stage`]: [`AlertStage`], the one place findings become alerts and notifications, for
//!   `entrawatch run` and `entrawatch replay` alike. It drives the next six.
//! - [`episodes`]: a repeat of one rule for one principal inside the rule's suppression window
//!   updates the open alert (`count`, `last_seen`, `event_ids`) instead of raising a new one.
//! - [`record`]: [`AlertRecord`], the one record every sink renders from.
//! - [`occasions`]: which updates notify (first, escalation, reminder), by event time.
//! - [`labels`] and [`matcher`]: the flat label view of an alert and the Alertmanager-style
//!   matchers that routes, silences and inhibit rules share.
//! - [`silence`] and [`inhibit`]: what mutes an alert, and who muted it; [`silence_store`] keeps
//!   the service's silences (config and admin API) in the outbox.
//! - [`route`]: the route tree, from labels to destinations, group keys and timers.
//! - [`notify`]: [`Notification`], one alert occasion for one destination.
//! - [`outbox`]: the durable SQLite outbox of notifications and source checkpoints; a source
//!   position is committed only after the notifications it implies are here.
//! - [`deliver`]: one worker per destination leases outbox rows, sends them (several at once) and
//!   marks them by the answer (retry, `Retry-After`, circuit, fallback, dead letter, system alerts).
//! - [`destination`]: the `[[destinations]]` config, validated and resolved with its secrets.
//! - [`sink`]: for each kind (Teams, Slack, webhook, jsonl, stdout) its render, its send and what
//!   its answers mean.
//! - [`metrics`]: the delivery metrics, with bounded labels.
//! - [`replay`]: a whole replay in one call (ordered files, detection, the stage without routing).

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
pub mod replay;
pub mod route;
pub mod silence;
pub mod silence_store;
pub mod sink;
pub mod stage;

pub use episodes::{Episodes, Update};
pub use notify::{Kind, Notification};
pub use record::AlertRecord;
pub use stage::AlertStage;
