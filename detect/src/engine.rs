//! The engine: owns all detection state and runs the enabled detectors over each event.

use std::collections::BTreeMap;

use entrawatch_ingest::Event;

use crate::config::DetectConfig;
use crate::detector::{Context, Detector};
use crate::finding::Finding;
use crate::privileged::PrivilegedDirectory;
use crate::registry;

/// A config naming rules that do not exist.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown rule ids {unknown:?}; known rules: {known}")]
pub struct UnknownRules {
    pub unknown: Vec<String>,
    pub known: String,
}

/// Runs the detectors over events in event-time order.
#[derive(Debug)]
pub struct Engine {
    config: DetectConfig,
    directory: PrivilegedDirectory,
    detectors: Vec<Box<dyn Detector>>,
    events_seen: u64,
    findings_by_rule: BTreeMap<&'static str, u64>,
}

impl Engine {
    /// An engine with the rules the config enables (all when it names none).
    pub fn new(config: DetectConfig) -> Result<Engine, UnknownRules> {
        let all = registry::all();
        let unknown: Vec<String> = config
            .enabled_rules
            .iter()
            .filter(|r| !all.iter().any(|d| d.id() == r.as_str()))
            .cloned()
            .collect();
        if !unknown.is_empty() {
            let known = all.iter().map(|d| d.id()).collect::<Vec<_>>().join(", ");
            return Err(UnknownRules { unknown, known });
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
            detectors,
            events_seen: 0,
            findings_by_rule: BTreeMap::new(),
        })
    }

    /// Decides on one event (detectors see the state before it), then learns from it.
    pub fn process(&mut self, event: &Event, out: &mut Vec<Finding>) {
        self.events_seen += 1;
        let before = out.len();
        let ctx = Context {
            config: &self.config,
            directory: &self.directory,
        };
        for detector in &self.detectors {
            detector.observe(&ctx, event, out);
        }
        for finding in &out[before..] {
            *self.findings_by_rule.entry(finding.rule).or_default() += 1;
        }
        self.directory.observe(&self.config, event);
    }

    pub fn events_seen(&self) -> u64 {
        self.events_seen
    }

    pub fn findings_by_rule(&self) -> &BTreeMap<&'static str, u64> {
        &self.findings_by_rule
    }

    pub fn directory(&self) -> &PrivilegedDirectory {
        &self.directory
    }

    pub fn rule_ids(&self) -> Vec<&'static str> {
        self.detectors.iter().map(|d| d.id()).collect()
    }
}
