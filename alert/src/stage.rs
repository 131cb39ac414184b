//! The alert stage: events' findings in, alert records and notifications out.
//!
//! [`AlertStage`] is the one place where findings become alerts, for `entrawatch run` and
//! `entrawatch replay` alike:
//!
//! 1. [`AlertStage::first_sight`] drops a record seen before inside the de-duplication window (a
//!    Graph overlap, a Kafka redelivery, an export given twice) and moves the event clock.
//! 2. [`AlertStage::add`] folds a finding into its episode ([`Episodes`]). In the service the
//!    update then notifies only on its occasions ([`Occasions`]: first, escalation, reminder),
//!    unless a silence matches it or an open alert of its tenant inhibits it; what is left is
//!    routed, and each destination it reaches gets one [`Notification`].
//! 3. [`AlertStage::evict_closed`] forgets episodes that closed, once an hour of event time.
//!
//! A replay builds the stage without routing ([`AlertStage::records`]): findings fold into
//! episodes exactly as in the service, and the alert records come out at the end.
//!
//! Every decision uses event time; `now` (wall time) only stamps a notification's creation and
//! asks whether a silence is active, as an operator means it.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};

use chrono::{DateTime, Duration, Utc};
use entrawatch_detect::Finding;
use entrawatch_ingest::Event;
use serde::{Deserialize, Serialize};

use crate::episodes::{Episodes, Update};
use crate::inhibit::{InhibitRule, Inhibitor};
use crate::labels::{Labels, labels};
use crate::notify::{Notification, notification_id};
use crate::occasions::Occasions;
use crate::record::AlertRecord;
use crate::route::{RouteConfig, Router, by_destination};
use crate::silence::Silences;

/// The `[alert]` section of the config file.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertConfig {
    /// A repeat of a rule for a principal within this many hours of the last one joins its alert.
    pub episode_window_hours: i64,
    /// An alert still active this many hours (event time) after its last notice notifies again.
    pub reminder_interval_hours: i64,
}

impl Default for AlertConfig {
    fn default() -> Self {
        AlertConfig {
            episode_window_hours: crate::episodes::DEFAULT_WINDOW_HOURS,
            reminder_interval_hours: crate::occasions::DEFAULT_REMINDER_HOURS,
        }
    }
}

impl AlertConfig {
    /// Every problem, each named `{path}.key`.
    pub fn validate(&self, path: &str) -> Vec<String> {
        let mut problems = Vec::new();
        if self.episode_window_hours <= 0 {
            problems.push(format!(
                "{path}.episode_window_hours: must be greater than zero"
            ));
        }
        if self.reminder_interval_hours <= 0 {
            problems.push(format!(
                "{path}.reminder_interval_hours: must be greater than zero"
            ));
        }
        problems
    }
}

/// Event-time windows of the stage, from `[alert]` and `[service]` of the config.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StageConfig {
    /// A repeat of one rule for one principal inside this window updates the open alert.
    pub episode_window_hours: i64,
    /// An alert that stays active notifies again after this long.
    pub reminder_interval_hours: i64,
    /// A record id seen again inside this window is a repeat (0: no de-duplication).
    pub dedup_window_hours: i64,
}

/// Record ids repeated inside this many hours are dropped, unless configured otherwise.
pub const DEFAULT_DEDUP_WINDOW_HOURS: i64 = 6;

impl Default for StageConfig {
    fn default() -> Self {
        StageConfig {
            episode_window_hours: crate::episodes::DEFAULT_WINDOW_HOURS,
            reminder_interval_hours: crate::occasions::DEFAULT_REMINDER_HOURS,
            dedup_window_hours: DEFAULT_DEDUP_WINDOW_HOURS,
        }
    }
}

/// What routing needs, swapped as a whole on reload.
#[derive(Debug)]
pub struct Routing {
    pub router: Router,
    pub inhibitor: Inhibitor,
    pub tenant_names: BTreeMap<String, String>,
    pub tenant_labels: BTreeMap<String, BTreeMap<String, String>>,
}

impl Routing {
    /// Builds the route tree over `destinations` and the inhibit rules; every problem at once.
    pub fn new(
        routes: &RouteConfig,
        destinations: &[&str],
        inhibit_rules: &[InhibitRule],
        tenant_names: BTreeMap<String, String>,
        tenant_labels: BTreeMap<String, BTreeMap<String, String>>,
    ) -> Result<Routing, Vec<String>> {
        let mut problems = Vec::new();
        let router = Router::new(routes, destinations)
            .map_err(|p| problems.extend(p))
            .ok();
        let inhibitor = Inhibitor::new(inhibit_rules)
            .map_err(|p| problems.extend(p))
            .ok();
        match (router, inhibitor) {
            (Some(router), Some(inhibitor)) if problems.is_empty() => Ok(Routing {
                router,
                inhibitor,
                tenant_names,
                tenant_labels,
            }),
            _ => Err(problems),
        }
    }
}

/// Record ids seen recently, to drop repeats.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Dedup {
    window_secs: i64,
    seen: HashMap<u128, i64>,
    last_prune: i64,
}

impl Dedup {
    pub fn new(window_hours: i64) -> Dedup {
        Dedup {
            window_secs: window_hours * 3600,
            seen: HashMap::new(),
            last_prune: 0,
        }
    }

    /// True the first time a key is seen inside the window.
    pub fn first(&mut self, key: u128, time: i64, clock: i64) -> bool {
        if self.window_secs == 0 {
            return true;
        }
        if clock - self.last_prune >= 600 {
            let horizon = clock - self.window_secs;
            self.seen.retain(|_, t| *t >= horizon);
            self.last_prune = clock;
        }
        if time < clock - self.window_secs {
            // Older than the window: cannot be told apart from a repeat already forgotten, so it
            // goes in (detectors ignore history older than their windows anyway).
            return true;
        }
        self.seen.insert(key, time).is_none()
    }
}

/// The stage's state, carried by every snapshot.
#[derive(Debug, Serialize, Deserialize)]
pub struct StageState {
    pub episodes: Episodes,
    pub occasions: Occasions,
    pub dedup: Dedup,
    /// Newest event time seen (seconds), for episode eviction.
    pub clock: i64,
}

impl StageState {
    /// Empty state with the config's windows.
    pub fn new(config: &StageConfig) -> StageState {
        StageState {
            episodes: Episodes::new(Duration::hours(config.episode_window_hours)),
            occasions: Occasions::new(Duration::hours(config.reminder_interval_hours)),
            dedup: Dedup::new(config.dedup_window_hours),
            clock: 0,
        }
    }
}

/// Why an alert update sent nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Suppressed {
    /// Not one of its occasions (first, escalation, reminder).
    Repeat,
    /// A silence matched it.
    Silenced,
    /// An open alert of its tenant inhibits it.
    Inhibited,
}

impl Suppressed {
    /// The `reason` label of `entrawatch_alerts_suppressed_total`.
    pub fn as_str(self) -> &'static str {
        match self {
            Suppressed::Repeat => "dedup",
            Suppressed::Silenced => "silenced",
            Suppressed::Inhibited => "inhibited",
        }
    }
}

/// What one finding did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Added {
    /// A new alert opened (else an open one was updated).
    pub opened: bool,
    /// Set when the update notified nobody, and why (never set without routing).
    pub suppressed: Option<Suppressed>,
}

/// Routing and the silences it consults: the service's alert stage has them, a replay's not.
#[derive(Debug)]
struct Notifying {
    routing: Routing,
    silences: Arc<RwLock<Silences>>,
}

/// Findings in, alert records and notifications out (see the module doc).
#[derive(Debug)]
pub struct AlertStage {
    state: StageState,
    tenant_names: BTreeMap<String, String>,
    notifying: Option<Notifying>,
    last_evict: i64,
}

impl AlertStage {
    /// The service's stage: restored `state`, routed with `routing`, silenced by `silences` (which
    /// the admin API changes while it runs).
    pub fn new(state: StageState, routing: Routing, silences: Arc<RwLock<Silences>>) -> AlertStage {
        AlertStage {
            state,
            tenant_names: routing.tenant_names.clone(),
            notifying: Some(Notifying { routing, silences }),
            last_evict: 0,
        }
    }

    /// A replay's stage: episodes only, no notifications; alerts named with `tenant_names`.
    pub fn records(config: &StageConfig, tenant_names: BTreeMap<String, String>) -> AlertStage {
        AlertStage {
            state: StageState::new(config),
            tenant_names,
            notifying: None,
            last_evict: 0,
        }
    }

    /// The state a snapshot writes.
    pub fn state(&self) -> &StageState {
        &self.state
    }

    /// Swaps routing and the windows of a reloaded config; the open alerts stay.
    pub fn reconfigure(&mut self, config: &StageConfig, routing: Routing) {
        self.set_windows(config);
        self.tenant_names = routing.tenant_names.clone();
        if let Some(n) = &mut self.notifying {
            n.routing = routing;
        }
    }

    /// Takes the config's windows (a restored snapshot carries the ones it was written with).
    pub fn set_windows(&mut self, config: &StageConfig) {
        self.state
            .episodes
            .set_window(Duration::hours(config.episode_window_hours));
        self.state
            .occasions
            .set_reminder(Duration::hours(config.reminder_interval_hours));
    }

    /// Moves the event clock to `event` and says whether its record is seen for the first time
    /// inside the de-duplication window (`false`: a repeat, to be dropped before detection).
    ///
    /// A repeat is the same record: the same identity (tenant, kind, id and version) at the same
    /// event time, as `replay` finds repeats (`entrawatch_ingest::ordered`), so the service and a
    /// replay drop the same records. One id at two times is two records.
    pub fn first_sight(&mut self, event: &Event) -> bool {
        let t = event.meta.time.timestamp();
        self.state.clock = self.state.clock.max(t);
        let (tenant, kind, id) = event.dedup_key_ref();
        let key = entrawatch_detect::keys::key128(&format!(
            "{tenant}\u{1f}{}\u{1f}{id}\u{1f}{}",
            kind.as_str(),
            event.meta.time.timestamp_micros()
        ));
        self.state.dedup.first(key, t, self.state.clock)
    }

    /// Folds `finding` into its alert and appends the notifications it causes to `out`.
    pub fn add(
        &mut self,
        finding: Finding,
        now: DateTime<Utc>,
        out: &mut Vec<Notification>,
    ) -> Added {
        let update = self.state.episodes.add(finding);
        let opened = matches!(update, Update::Opened(_));
        let (Update::Opened(index) | Update::Updated(index)) = update;
        let Some(notifying) = &self.notifying else {
            return Added {
                opened,
                suppressed: None,
            };
        };
        let mut alert = self.state.episodes.alerts()[index].clone();
        alert.tenant_name = self.tenant_names.get(&alert.tenant_id).cloned();
        let suppressed = |why| Added {
            opened,
            suppressed: Some(why),
        };
        let Some((kind, seq)) = self.state.occasions.on_update(&alert) else {
            return suppressed(Suppressed::Repeat);
        };
        let routing = &notifying.routing;
        let labels_of = |a: &AlertRecord| labels(a, routing.tenant_labels.get(&a.tenant_id));
        let alert_labels = labels_of(&alert);
        if let Some(s) = notifying
            .silences
            .read()
            .expect("silences lock")
            .is_silenced(&alert_labels, now)
        {
            tracing::info!(alert = %alert.id, silence = %s.id, "alert silenced");
            return suppressed(Suppressed::Silenced);
        }
        // Without inhibit rules nothing can be inhibited: skip labelling every open alert.
        let inhibited = !routing.inhibitor.is_empty() && {
            let active: Vec<Labels> = self
                .state
                .episodes
                .alerts()
                .iter()
                .filter(|a| a.id != alert.id && a.tenant_id == alert.tenant_id)
                .map(labels_of)
                .collect();
            routing.inhibitor.inhibited(&alert_labels, &active)
        };
        if inhibited {
            return suppressed(Suppressed::Inhibited);
        }
        let targets = routing.router.route(&alert_labels);
        for (destination, target) in by_destination(&targets) {
            out.push(Notification {
                id: notification_id(&alert.id, destination, seq),
                alert_id: alert.id.clone(),
                destination: destination.to_owned(),
                kind,
                seq,
                group_key: target.group_key.clone(),
                group_wait_secs: target.group_wait_secs,
                group_interval_secs: target.group_interval_secs,
                fallback: target.fallback.clone(),
                severity: alert.severity,
                alert: alert.clone(),
                event_time: alert.last_seen,
                created_at: now,
            });
        }
        Added {
            opened,
            suppressed: None,
        }
    }

    /// Routes a system alert about one tenant (`alert`, from
    /// [`crate::deliver::system::access_alert`]) like the tenant's own alerts: silences and
    /// routes apply, episodes and inhibition do not (it is no finding, and its time is the wall
    /// clock: it must not move the event-time state a replay rebuilds). One notification of kind
    /// `system` per destination, seq 0, so a repeat makes the same rows. Returns whether a silence
    /// held it back.
    pub fn system(
        &self,
        mut alert: AlertRecord,
        now: DateTime<Utc>,
        out: &mut Vec<Notification>,
    ) -> bool {
        let Some(notifying) = &self.notifying else {
            return false;
        };
        alert.tenant_name = self.tenant_names.get(&alert.tenant_id).cloned();
        let routing = &notifying.routing;
        let alert_labels = labels(&alert, routing.tenant_labels.get(&alert.tenant_id));
        if let Some(s) = notifying
            .silences
            .read()
            .expect("silences lock")
            .is_silenced(&alert_labels, now)
        {
            tracing::info!(alert = %alert.id, silence = %s.id, "system alert silenced");
            return true;
        }
        for (destination, target) in by_destination(&routing.router.route(&alert_labels)) {
            out.push(Notification {
                id: notification_id(&alert.id, destination, 0),
                alert_id: alert.id.clone(),
                destination: destination.to_owned(),
                kind: crate::notify::Kind::System,
                seq: 0,
                group_key: format!("system:{}:{}", alert.rule, alert.tenant_id),
                group_wait_secs: 0,
                group_interval_secs: target.group_interval_secs,
                fallback: target.fallback.clone(),
                severity: alert.severity,
                alert: alert.clone(),
                event_time: now,
                created_at: now,
            });
        }
        false
    }

    /// Forgets the alerts whose episodes closed, at most once an hour of event time, so a
    /// long-running service keeps only open ones.
    pub fn evict_closed(&mut self) {
        let clock = self.state.clock;
        if clock - self.last_evict < 3600 {
            return;
        }
        self.last_evict = clock;
        if let Some(now) = DateTime::<Utc>::from_timestamp(clock, 0) {
            let gone = self.state.episodes.evict_closed(now);
            self.state.occasions.forget(&gone);
        }
    }

    /// Every alert, in the order they opened, named with the tenant names.
    pub fn into_alerts(self) -> Vec<AlertRecord> {
        let mut alerts = self.state.episodes.into_alerts();
        for alert in &mut alerts {
            alert.tenant_name = self.tenant_names.get(&alert.tenant_id).cloned();
        }
        alerts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The sign-in `read_bytes` makes of `id` at `time` in `tenant`.
    fn sign_in(tenant: &str, id: &str, time: &str) -> Box<Event> {
        let record = serde_json::json!({"id": id, "createdDateTime": time, "userId": "u",
            "resourceTenantId": tenant});
        let mut out = None;
        entrawatch_ingest::read_bytes(
            "t.json",
            format!("{record}\n").as_bytes(),
            None,
            &entrawatch_ingest::ReadOptions::default(),
            &mut |i| {
                if let entrawatch_ingest::Item::Event(e) = i {
                    out = Some(e);
                }
            },
        );
        out.expect("a sign-in")
    }

    /// The service drops what replay drops: the same record (identity and event time) again
    /// within the window; one id at another time, or in another tenant, is another record.
    #[test]
    fn a_repeat_is_the_same_identity_at_the_same_time() {
        let (a, b) = (
            "4d3bac44-0230-4732-9e70-cc00736f0a97",
            "5d3bac44-0230-4732-9e70-cc00736f0a97",
        );
        let mut stage = AlertStage::records(&StageConfig::default(), BTreeMap::new());
        let seen = [
            sign_in(a, "s1", "2021-01-01T00:00:00Z"),
            sign_in(a, "s1", "2021-01-01T00:00:00Z"),
            sign_in(a, "s1", "2021-01-01T00:05:00Z"),
            sign_in(b, "s1", "2021-01-01T00:00:00Z"),
            sign_in(a, "s2", "2021-01-01T00:05:00Z"),
            sign_in(a, "s1", "2021-01-01T00:05:00Z"),
        ]
        .iter()
        .map(|e| stage.first_sight(e))
        .collect::<Vec<_>>();
        assert_eq!(seen, [true, false, true, true, true, false]);
    }
}
