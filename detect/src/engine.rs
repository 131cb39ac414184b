//! The engine: owns all detection state and runs the enabled detectors over each event.
//!
//! Per event: (1) if the event-time clock passes whole minutes, `on_tick` hooks run; (2) every enabled
//! detector decides on the event against the state *before* it; (3) allow lists drop what the config
//! exempts; (4) when findings are left, `on_findings` hooks see them (rules about other rules'
//! findings), their findings pass the allow lists too, and the state remembers the findings;
//! (5) extra rules (Sigma, [`ExtraRules`]) decide, and their findings pass the allow lists;
//! (6) the state and the privileged directory learn from the event. Once per hour of event
//! time, history older than 30 days is evicted.

use std::collections::BTreeMap;

use entrawatch_ingest::{Event, Kind};
use serde::{Deserialize, Serialize};

use crate::config::DetectConfig;
use crate::detector::{Context, Detector};
use crate::extra::ExtraState;
use crate::finding::Finding;
use crate::privileged::PrivilegedDirectory;
use crate::registry;
use crate::state::State;

/// A config the engine refuses, with every problem listed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid detection config:\n  {}", problems.join("\n  "))]
pub struct ConfigError {
    pub problems: Vec<String>,
}

/// Version of the snapshot layout; a snapshot of another version is refused (and the service starts
/// cold, saying so) rather than misread. Version 3 added the extra (Sigma correlation) rules' state.
pub const SNAPSHOT_VERSION: u32 = 3;

/// The engine's learned state as written into a snapshot (borrowed, so writing copies nothing).
#[derive(Serialize)]
struct SnapshotRef<'a> {
    version: u32,
    state: &'a State,
    directory: &'a PrivilegedDirectory,
    events_seen: u64,
    findings_by_rule: &'a BTreeMap<&'static str, u64>,
    allowed: u64,
    last_tick: Option<i64>,
    last_eviction: Option<i64>,
    extra: &'a ExtraState,
}

/// The same fields after the version, read back (the version is read first, alone, so a snapshot
/// of another layout is named by its version rather than failing to decode).
#[derive(Deserialize)]
struct SnapshotOwned {
    state: State,
    directory: PrivilegedDirectory,
    events_seen: u64,
    findings_by_rule: BTreeMap<String, u64>,
    allowed: u64,
    last_tick: Option<i64>,
    last_eviction: Option<i64>,
    extra: ExtraState,
}

/// A snapshot that cannot be restored.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("snapshot is version {found}, this build reads version {SNAPSHOT_VERSION}")]
    Version { found: u32 },
    #[error("snapshot cannot be decoded: {0}")]
    Decode(String),
    #[error(transparent)]
    Config(#[from] ConfigError),
}

/// For each event kind (`Kind as usize`), the enabled detectors that observe it, in catalogue
/// order. They are instances of their own, beside [`Engine::detectors`]: detectors are pure (unit
/// structs that read everything from the context), so a second instance decides as the first,
/// and the engine hands an event to each straight from this list instead of through a position
/// in `detectors` (a load and a bounds check per rule, for some twenty rules per sign-in).
fn by_kind(enabled: impl Fn(&dyn Detector) -> bool) -> Vec<Vec<Box<dyn Detector>>> {
    let mut by_kind: Vec<Vec<Box<dyn Detector>>> = Kind::ALL.iter().map(|_| Vec::new()).collect();
    for kind in Kind::ALL {
        by_kind[kind as usize] = registry::all()
            .into_iter()
            .filter(|d| enabled(d.as_ref()) && d.kinds().contains(&kind))
            .collect();
    }
    by_kind
}

/// Rules from outside the native catalogue (Sigma rules), run on each event after the native
/// detectors and their `on_findings` hooks, in a fixed order. Their findings pass the allow lists
/// and are counted like native ones, and feed no native rule (the account-takeover chain does not
/// see them).
///
/// Rules that need memory across events (Sigma correlation rules) keep it in the [`ExtraState`]
/// the engine owns and writes in its snapshot: the same events give the same findings whether or
/// not the engine was restarted between them.
pub trait ExtraRules: Send + Sync + std::fmt::Debug {
    /// Decides on one event; pushes findings in a deterministic order. `state` is the engine's,
    /// carried across events and restarts; the rules evict from it by event time.
    fn observe(&self, event: &Event, state: &mut ExtraState, out: &mut Vec<Finding>);

    /// What the set is, in a few words, for the log and the reload's answer.
    fn describe(&self) -> String {
        "extra rules".to_owned()
    }
}

/// Runs the detectors over events in event-time order.
#[derive(Debug)]
pub struct Engine {
    config: DetectConfig,
    directory: PrivilegedDirectory,
    state: State,
    detectors: Vec<Box<dyn Detector>>,
    /// By event kind (`Kind as usize`): the rules that observe it, in catalogue order
    /// ([`by_kind`]).
    by_kind: Vec<Vec<Box<dyn Detector>>>,
    events_seen: u64,
    findings_by_rule: BTreeMap<&'static str, u64>,
    allowed: u64,
    last_tick: Option<i64>,
    last_eviction: Option<i64>,
    /// Sigma rules (or any other non-native set), run after the native detectors.
    extra: Option<std::sync::Arc<dyn ExtraRules>>,
    /// What the extra rules remember (correlation windows); in the snapshot.
    extra_state: ExtraState,
}

impl Engine {
    /// An engine with the rules the config enables (all when it names none).
    pub fn new(config: DetectConfig) -> Result<Engine, ConfigError> {
        let all = registry::all();
        let known: Vec<&str> = all.iter().map(|d| d.id()).collect();
        let problems = config.validate(&known);
        if !problems.is_empty() {
            return Err(ConfigError { problems });
        }
        let enabled = |d: &dyn Detector| {
            config.enabled_rules.is_empty() || config.enabled_rules.iter().any(|r| r == d.id())
        };
        let by_kind = by_kind(enabled);
        let detectors: Vec<Box<dyn Detector>> =
            all.into_iter().filter(|d| enabled(d.as_ref())).collect();
        Ok(Engine {
            config,
            directory: PrivilegedDirectory::default(),
            state: State::default(),
            detectors,
            by_kind,
            events_seen: 0,
            findings_by_rule: BTreeMap::new(),
            allowed: 0,
            last_tick: None,
            last_eviction: None,
            extra: None,
            extra_state: ExtraState::default(),
        })
    }

    /// Sets (or removes) the rules run after the native detectors; kept across `reconfigure`.
    pub fn set_extra_rules(&mut self, extra: Option<std::sync::Arc<dyn ExtraRules>>) {
        // With no extra rules left, nothing would ever sweep their windows: they go now. (A set
        // that stays sweeps the windows of the correlations it no longer has.)
        if extra.is_none() {
            self.extra_state = ExtraState::default();
        }
        self.extra = extra;
    }

    /// Swaps the detection config (a reload), keeping everything learned. Refused, with every
    /// problem, when the new config is invalid; the engine then keeps the old one.
    pub fn reconfigure(&mut self, config: DetectConfig) -> Result<(), ConfigError> {
        let fresh = Engine::new(config)?;
        self.config = fresh.config;
        self.detectors = fresh.detectors;
        self.by_kind = fresh.by_kind;
        Ok(())
    }

    /// Writes everything the engine has learned (30-day state, directory, counters) to `w`.
    pub fn write_snapshot<W: std::io::Write>(&self, w: W) -> Result<(), SnapshotError> {
        let view = SnapshotRef {
            version: SNAPSHOT_VERSION,
            state: &self.state,
            directory: &self.directory,
            events_seen: self.events_seen,
            findings_by_rule: &self.findings_by_rule,
            allowed: self.allowed,
            last_tick: self.last_tick,
            last_eviction: self.last_eviction,
            extra: &self.extra_state,
        };
        bincode::serialize_into(w, &view).map_err(|e| SnapshotError::Decode(e.to_string()))
    }

    /// An engine with `config` that continues from a snapshot written by
    /// [`Engine::write_snapshot`]. Counters of rules this build does not have (a snapshot written
    /// by another version) are dropped.
    pub fn restore<R: std::io::Read>(
        config: DetectConfig,
        mut r: R,
    ) -> Result<Engine, SnapshotError> {
        let decode = |e: bincode::Error| SnapshotError::Decode(e.to_string());
        let version: u32 = bincode::deserialize_from(&mut r).map_err(decode)?;
        if version != SNAPSHOT_VERSION {
            // Leading bytes that are no plausible version: not an engine snapshot at all.
            if version == 0 || version > 1000 {
                return Err(SnapshotError::Decode(format!(
                    "not an engine snapshot (leading number {version})"
                )));
            }
            return Err(SnapshotError::Version { found: version });
        }
        let snap: SnapshotOwned = bincode::deserialize_from(r).map_err(decode)?;
        let mut engine = Engine::new(config)?;
        let ids: Vec<&'static str> = registry::all().iter().map(|d| d.id()).collect();
        engine.state = snap.state;
        engine.directory = snap.directory;
        engine.events_seen = snap.events_seen;
        engine.findings_by_rule = snap
            .findings_by_rule
            .into_iter()
            .filter_map(|(k, v)| ids.iter().find(|id| **id == k).map(|id| (*id, v)))
            .collect();
        engine.allowed = snap.allowed;
        engine.last_tick = snap.last_tick;
        engine.last_eviction = snap.last_eviction;
        engine.extra_state = snap.extra;
        Ok(engine)
    }

    /// Decides on one event (detectors see the state before it), then learns from it.
    pub fn process(&mut self, event: &Event, out: &mut Vec<Finding>) {
        self.events_seen += 1;
        let before = out.len();
        let now = event.meta.time.timestamp();
        let minute = now.div_euclid(60) * 60;
        if self.last_tick.is_none_or(|t| minute > t) && now > self.state.clock {
            self.last_tick = Some(minute);
            let ctx = Context::new(&self.config, &self.directory, &self.state);
            for detector in &self.detectors {
                detector.on_tick(&ctx, now, out);
            }
        }
        let ctx = Context::new(&self.config, &self.directory, &self.state);
        for detector in &self.by_kind[event.kind() as usize] {
            detector.observe(&ctx, event, out);
        }
        let keys = ctx.sign_in_keys(event);
        self.filter_allowed(out, before);
        if out.len() > before {
            let ctx = Context::new(&self.config, &self.directory, &self.state);
            let mut more = Vec::new();
            for detector in &self.detectors {
                detector.on_findings(&ctx, event, &out[before..], &mut more);
            }
            if !more.is_empty() {
                let from = out.len();
                out.append(&mut more);
                self.filter_allowed(out, from);
            }
            if (self.detectors.iter())
                .any(|d| d.id() == crate::detectors::account_takeover_chain::ID)
            {
                self.state.record_findings(&self.config, &out[before..]);
            }
        }
        // Extra (Sigma) rules after the native ones and their hooks: their findings pass the allow
        // lists and are counted, but feed no native rule, so the native alerts are the same with
        // or without them.
        if let Some(extra) = &self.extra {
            let from = out.len();
            extra.observe(event, &mut self.extra_state, out);
            self.filter_allowed(out, from);
        }
        for finding in &out[before..] {
            *self.findings_by_rule.entry(finding.rule).or_default() += 1;
        }
        self.state.update_keyed(&self.config, event, keys);
        self.directory.observe(&self.config, event);
        if self
            .last_eviction
            .is_none_or(|t| self.state.clock - t >= 3600)
        {
            self.state.evict();
            self.last_eviction = Some(self.state.clock);
        }
    }

    fn filter_allowed(&mut self, out: &mut Vec<Finding>, from: usize) {
        let config = &self.config;
        let mut i = from;
        while i < out.len() {
            let f = &out[i];
            if config.is_allowed(
                f.rule,
                &f.principal.id,
                f.principal.upn.as_deref(),
                f.ip.as_deref(),
            ) {
                out.remove(i);
                self.allowed += 1;
            } else {
                i += 1;
            }
        }
    }

    pub fn events_seen(&self) -> u64 {
        self.events_seen
    }

    /// Findings dropped by allow lists.
    pub fn allowed(&self) -> u64 {
        self.allowed
    }

    pub fn findings_by_rule(&self) -> &BTreeMap<&'static str, u64> {
        &self.findings_by_rule
    }

    pub fn directory(&self) -> &PrivilegedDirectory {
        &self.directory
    }

    pub fn state(&self) -> &State {
        &self.state
    }

    /// What the extra (Sigma) rules remember: correlation windows.
    pub fn extra_state(&self) -> &ExtraState {
        &self.extra_state
    }

    pub fn config(&self) -> &DetectConfig {
        &self.config
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::*;

    /// A baseline, then a new country: split anywhere, snapshot and restore at the split, and the
    /// restored engine decides exactly as one that never stopped.
    #[test]
    fn a_restored_engine_continues_as_if_it_never_stopped() {
        let mut events = baseline("adele@contoso.com", 8, 2, 0);
        events.push(
            sign_in("n1", "adele@contoso.com", 10)
                .place("NG", "Lagos", 6.5244, 3.3792)
                .build(),
        );
        events.push(
            sign_in("n2", "adele@contoso.com", 20)
                .place("NG", "Lagos", 6.5244, 3.3792)
                .build(),
        );
        let whole = {
            let mut engine = Engine::new(DetectConfig::default()).unwrap();
            let mut out = Vec::new();
            for e in &events {
                engine.process(e, &mut out);
            }
            out
        };
        assert!(!whole.is_empty());
        for split in [1, events.len() / 2, events.len() - 2, events.len() - 1] {
            let mut first = Engine::new(DetectConfig::default()).unwrap();
            let mut out = Vec::new();
            for e in &events[..split] {
                first.process(e, &mut out);
            }
            let mut bytes = Vec::new();
            first.write_snapshot(&mut bytes).unwrap();
            drop(first);
            let mut second = Engine::restore(DetectConfig::default(), bytes.as_slice()).unwrap();
            for e in &events[split..] {
                second.process(e, &mut out);
            }
            assert_eq!(out, whole, "split at {split}");
            assert_eq!(second.events_seen(), events.len() as u64);
        }
    }

    #[test]
    fn a_snapshot_of_another_version_or_garbage_is_refused() {
        let err = Engine::restore(DetectConfig::default(), &b"not a snapshot"[..]).unwrap_err();
        assert!(matches!(err, SnapshotError::Decode(_)), "{err}");
        let mut bytes = Vec::new();
        Engine::new(DetectConfig::default())
            .unwrap()
            .write_snapshot(&mut bytes)
            .unwrap();
        bytes[0] = 99;
        let err = Engine::restore(DetectConfig::default(), bytes.as_slice()).unwrap_err();
        assert!(matches!(err, SnapshotError::Version { found: 99 }), "{err}");
        // A snapshot of the previous layout (before the extra rules' state) is named by its
        // version, not misread.
        bytes[0] = 2;
        bytes.truncate(bytes.len() - 16);
        let err = Engine::restore(DetectConfig::default(), bytes.as_slice()).unwrap_err();
        assert!(matches!(err, SnapshotError::Version { found: 2 }), "{err}");
    }
}

/// Restart cost at scale: `cargo test --release -p entrawatch-detect --lib -- --ignored
/// --nocapture snapshot_of_a_million_principals` prints how long writing and restoring the
/// snapshot of 1M tracked principals takes and how big it is (a figure, not an assertion).
#[cfg(test)]
mod scale {
    use super::*;
    use crate::testkit::*;

    #[test]
    #[ignore = "a measurement: run in release with --ignored --nocapture"]
    fn snapshot_of_a_million_principals() {
        let mut engine = Engine::new(DetectConfig::default()).unwrap();
        let mut out = Vec::new();
        let started = std::time::Instant::now();
        for i in 0..1_000_000u32 {
            let upn = format!("user{i}@tenant{}.example", i % 500);
            let event = sign_in(&format!("e{i}"), &upn, i64::from(i / 1000)).build();
            engine.process(&event, &mut out);
            out.clear();
        }
        let principals = engine.state().principals.len();
        let fill = started.elapsed();
        let started = std::time::Instant::now();
        let mut bytes = Vec::new();
        engine.write_snapshot(&mut bytes).unwrap();
        let write = started.elapsed();
        drop(engine);
        let started = std::time::Instant::now();
        let restored = Engine::restore(DetectConfig::default(), bytes.as_slice()).unwrap();
        let read = started.elapsed();
        assert_eq!(restored.state().principals.len(), principals);
        eprintln!(
            "{principals} principals (filled in {fill:.1?}): snapshot {} MB, written in {write:.2?}, restored in {read:.2?}, {} bytes of state per principal (approx_bytes)",
            bytes.len() / 1_000_000,
            restored.state().approx_bytes() / principals.max(1)
        );
    }
}
