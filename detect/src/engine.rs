//! The engine: owns all detection state and runs the enabled detectors over each event.
//!
//! Per event: (1) if the event-time clock passes whole minutes, `on_tick` hooks run; (2) every enabled
//! detector decides on the event against the state *before* it; (3) allow lists drop what the config
//! exempts; (4) the state and the privileged directory learn from the event. Once per hour of event
//! time, history older than 30 days is evicted.

use std::collections::BTreeMap;

use entrawatch_ingest::Event;

use crate::config::DetectConfig;
use crate::detector::{Context, Detector};
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

/// Runs the detectors over events in event-time order.
#[derive(Debug)]
pub struct Engine {
    config: DetectConfig,
    directory: PrivilegedDirectory,
    state: State,
    detectors: Vec<Box<dyn Detector>>,
    events_seen: u64,
    findings_by_rule: BTreeMap<&'static str, u64>,
    allowed: u64,
    last_tick: Option<i64>,
    last_eviction: Option<i64>,
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
        let detectors = all
            .into_iter()
            .filter(|d| {
                config.enabled_rules.is_empty() || config.enabled_rules.iter().any(|r| r == d.id())
            })
            .collect();
        Ok(Engine {
            config,
            directory: PrivilegedDirectory::default(),
            state: State::default(),
            detectors,
            events_seen: 0,
            findings_by_rule: BTreeMap::new(),
            allowed: 0,
            last_tick: None,
            last_eviction: None,
        })
    }

    /// Decides on one event (detectors see the state before it), then learns from it.
    pub fn process(&mut self, event: &Event, out: &mut Vec<Finding>) {
        self.events_seen += 1;
        let before = out.len();
        let now = event.meta.time.timestamp();
        let minute = now.div_euclid(60) * 60;
        if self.last_tick.is_none_or(|t| minute > t) && now > self.state.clock {
            self.last_tick = Some(minute);
            let ctx = Context {
                config: &self.config,
                directory: &self.directory,
                state: &self.state,
            };
            for detector in &self.detectors {
                detector.on_tick(&ctx, now, out);
            }
        }
        let ctx = Context {
            config: &self.config,
            directory: &self.directory,
            state: &self.state,
        };
        for detector in &self.detectors {
            detector.observe(&ctx, event, out);
        }
        self.filter_allowed(out, before);
        for finding in &out[before..] {
            *self.findings_by_rule.entry(finding.rule).or_default() += 1;
        }
        self.state.update(&self.config, event);
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

    pub fn config(&self) -> &DetectConfig {
        &self.config
    }

    pub fn rule_ids(&self) -> Vec<&'static str> {
        self.detectors.iter().map(|d| d.id()).collect()
    }
}
