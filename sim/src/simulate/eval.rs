//! `--eval`: replay the written world through the real pipeline ([`entrawatch_alert::replay::replay_files`])
//! with its own config, then score every detector against the labels: an injected story counts as
//! detected when an alert of its rule names its principal (or an alternative the label lists) in its
//! tenant (or an alternative) and the alert's [first_seen, last_seen] overlaps the story's window
//! with five minutes of slack. Alerts of medium or higher severity on principals that take part in
//! no attack are false positives; lower ones are reported apart.

use std::collections::BTreeSet;
use std::path::Path;

use chrono::{DateTime, Utc};
use entrawatch_alert::AlertRecord;
use entrawatch_detect::Severity;
use entrawatch_ingest::{ReadOptions, reader::DEFAULT_MAX_RECORD_BYTES, walk_all};
use serde_json::{Map, Value, json};

use super::activity::Note;
use super::attacks::{Attacks, Label};
use super::render::iso_secs;
use super::rng::{MIN, SEC, Ticks};
use super::world::World;
use entrawatch_alert::replay::{ReplayConfig, replay_files};

const SLACK: Ticks = 5 * MIN;
/// False-positive examples kept per rule in `eval.json` and printed.
const EXAMPLES: usize = 5;

#[derive(Debug)]
pub struct RuleScore {
    pub rule: &'static str,
    pub injected: usize,
    pub detected: usize,
    pub false_positives: usize,
    pub below_medium: usize,
    pub missed: Vec<Value>,
    pub fp_examples: Vec<Value>,
}

impl RuleScore {
    pub fn recall(&self) -> Option<f64> {
        (self.injected > 0).then(|| self.detected as f64 / self.injected as f64)
    }
}

#[derive(Debug)]
pub struct Evaluation {
    pub rules: Vec<RuleScore>,
    pub replay: Value,
}

fn ticks(t: DateTime<Utc>) -> Ticks {
    t.timestamp() * SEC + i64::from(t.timestamp_subsec_nanos() / 100)
}

fn alert_brief(a: &AlertRecord) -> Value {
    json!({
        "rule": a.rule,
        "severity": a.severity.as_str(),
        "tenant_id": a.tenant_id,
        "principal_kind": serde_json::to_value(a.principal.kind).unwrap_or(Value::Null),
        "principal_id": a.principal.id,
        "upn": a.principal.upn,
        "title": a.title,
        "first_seen": iso_secs(ticks(a.first_seen)),
        "last_seen": iso_secs(ticks(a.last_seen)),
        "count": a.count,
    })
}

fn label_matches(w: &World, l: &Label, a: &AlertRecord) -> bool {
    if a.rule != l.rule {
        return false;
    }
    let id = a.principal.id.to_ascii_lowercase();
    let principal = std::iter::once(&l.principal_id)
        .chain(&l.alt_principal_ids)
        .any(|p| p.to_ascii_lowercase() == id);
    let tenant = std::iter::once(&l.tenant)
        .chain(&l.alt_tenants)
        .any(|&t| w.tenants[t].id.to_string() == a.tenant_id.to_ascii_lowercase());
    principal
        && tenant
        && ticks(a.first_seen) <= l.to + SLACK
        && ticks(a.last_seen) >= l.from - SLACK
}

/// Replays `dir` with `config` and scores the alerts.
pub fn evaluate(
    w: &World,
    attacks: &Attacks,
    notes: &[Note],
    dir: &Path,
    config: &ReplayConfig,
) -> anyhow::Result<Evaluation> {
    let files = walk_all(&[dir.to_path_buf()])?.files;
    let opts = ReadOptions {
        tenant: None,
        max_record_bytes: DEFAULT_MAX_RECORD_BYTES,
    };
    let mut rejects: Vec<String> = Vec::new();
    let replayed = replay_files(
        &files,
        &opts,
        config,
        &mut |_| {},
        &mut |r| {
            if rejects.len() < 10 {
                rejects.push(r.to_string());
            }
        },
        &mut |_| Ok(()),
    )?;
    let alerts = &replayed.alerts;
    let attack_ids: BTreeSet<String> = super::write::attack_principals(w, attacks)
        .into_iter()
        .map(|(_, id)| id.to_ascii_lowercase())
        .collect();
    let mut rules = Vec::new();
    for rule in super::attacks::rules() {
        let labels: Vec<&Label> = attacks.labels.iter().filter(|l| l.rule == rule).collect();
        let mut detected = 0;
        let mut missed = Vec::new();
        for l in &labels {
            if alerts.iter().any(|a| label_matches(w, l, a)) {
                detected += 1;
            } else {
                let near: Vec<Value> = alerts
                    .iter()
                    .filter(|a| {
                        a.rule == rule
                            && (a.principal.id.eq_ignore_ascii_case(&l.principal_id)
                                || l.alt_principal_ids
                                    .iter()
                                    .any(|p| p.eq_ignore_ascii_case(&a.principal.id)))
                    })
                    .map(alert_brief)
                    .collect();
                missed.push(json!({
                    "variant": l.variant,
                    "tenant_id": w.tenants[l.tenant].id.to_string(),
                    "principal_kind": l.principal_kind,
                    "principal_id": l.principal_id,
                    "from": iso_secs(l.from),
                    "to": iso_secs(l.to),
                    "story": l.story,
                    "alerts_of_this_rule_on_the_principal": near,
                }));
            }
        }
        let mut false_positives = 0;
        let mut below_medium = 0;
        let mut fp_examples = Vec::new();
        for a in alerts.iter().filter(|a| {
            a.rule == rule && !attack_ids.contains(&a.principal.id.to_ascii_lowercase())
        }) {
            if a.severity >= Severity::Medium {
                false_positives += 1;
                if fp_examples.len() < EXAMPLES {
                    let mut brief = alert_brief(a);
                    let looks: Vec<&str> = notes
                        .iter()
                        .filter(|n| n.principal.eq_ignore_ascii_case(&a.principal.id))
                        .map(|n| n.text.as_str())
                        .collect();
                    if let Value::Object(m) = &mut brief {
                        m.insert("benign_story".into(), json!(looks));
                        m.insert("summary".into(), json!(a.summary));
                    }
                    fp_examples.push(brief);
                }
            } else {
                below_medium += 1;
            }
        }
        rules.push(RuleScore {
            rule,
            injected: labels.len(),
            detected,
            false_positives,
            below_medium,
            missed,
            fp_examples,
        });
    }
    let s = &replayed.stats;
    let replay = json!({
        "files_read": s.files_read,
        "bytes_read": s.bytes_read,
        "records_read": s.records_read,
        "parse_errors": s.parse_errors,
        "first_errors": rejects,
        "skipped_by_category": s.skipped_by_category,
        "duplicates": replayed.duplicates,
        "events_processed": replayed.events_processed,
        "alerts": alerts.len(),
    });
    Ok(Evaluation { rules, replay })
}

impl Evaluation {
    /// The table printed on standard output.
    pub fn table(&self) -> String {
        let mut out = String::new();
        out += &format!(
            "{:<34} {:>8} {:>8} {:>6} {:>7} {:>10}\n",
            "rule", "injected", "detected", "recall", "fp>=med", "benign<med"
        );
        let (mut inj, mut det, mut fp, mut low) = (0, 0, 0, 0);
        for r in &self.rules {
            let recall = r.recall().map_or("-".to_owned(), |v| format!("{v:.2}"));
            out += &format!(
                "{:<34} {:>8} {:>8} {:>6} {:>7} {:>10}\n",
                r.rule, r.injected, r.detected, recall, r.false_positives, r.below_medium
            );
            inj += r.injected;
            det += r.detected;
            fp += r.false_positives;
            low += r.below_medium;
        }
        let recall = if inj > 0 {
            format!("{:.2}", det as f64 / inj as f64)
        } else {
            "-".to_owned()
        };
        out += &format!(
            "{:<34} {:<5} {:>8} {:>8} {:>6} {:>7} {:>10}\n",
            "total", "", inj, det, recall, fp, low
        );
        for r in &self.rules {
            for m in &r.missed {
                out += &format!(
                    "  missed   {} #{}: {}\n",
                    r.rule,
                    m["variant"],
                    m["story"].as_str().unwrap_or("")
                );
            }
            for e in &r.fp_examples {
                out += &format!(
                    "  false +  {} {} {} {}: {}\n",
                    r.rule,
                    e["severity"].as_str().unwrap_or(""),
                    e["principal_kind"].as_str().unwrap_or(""),
                    e["upn"]
                        .as_str()
                        .or(e["principal_id"].as_str())
                        .unwrap_or(""),
                    e["title"].as_str().unwrap_or("")
                );
            }
        }
        out
    }

    /// `eval.json`.
    pub fn summary(&self, seed: u64) -> Value {
        let rules: Vec<Value> = self
            .rules
            .iter()
            .map(|r| {
                json!({
                    "rule": r.rule,
                    "injected": r.injected,
                    "detected": r.detected,
                    "recall": r.recall(),
                    "false_positives": r.false_positives,
                    "below_medium": r.below_medium,
                    "missed": r.missed,
                    "false_positive_examples": r.fp_examples,
                })
            })
            .collect();
        let sum = |f: fn(&RuleScore) -> usize| self.rules.iter().map(f).sum::<usize>();
        let mut m = Map::new();
        m.insert("seed".into(), json!(seed));
        m.insert("replay".into(), self.replay.clone());
        m.insert("rules".into(), Value::Array(rules));
        m.insert(
            "totals".into(),
            json!({
                "injected": sum(|r| r.injected),
                "detected": sum(|r| r.detected),
                "false_positives": sum(|r| r.false_positives),
                "below_medium": sum(|r| r.below_medium),
            }),
        );
        super::write::tagged("Eval", m)
    }
}
