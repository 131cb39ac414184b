//! Inhibition: an active alert of one kind mutes alerts of another kind about the same thing
//! (Alertmanager semantics).
//!
//! What comes in: `[[inhibit_rules]]` from the config file ([`InhibitRule`]), the [`Labels`] of an
//! alert about to notify, and the labels of the alerts active at that moment. What goes out: a
//! validated [`Inhibitor`] (or every problem, each with its config path) and a yes/no per alert
//! ([`Inhibitor::inhibited`], or [`Inhibitor::inhibited_by`] to say which rule and which alert).
//!
//! An alert that matches a rule's `target_matchers` is inhibited when some active alert matches the
//! rule's `source_matchers` and has the same value as the target for every label in `equal` (a
//! label both lack counts as equal, as in Alertmanager, so list labels both sides have). An alert
//! never inhibits itself, and when the target also matches the source matchers, active alerts that
//! match both sides are ignored, so two alerts that fit both sides of one rule cannot mute each
//! other. An inhibited alert is still recorded and counted
//! (`entrawatch_alerts_suppressed_total{reason="inhibited"}`); only its notifications are held back.
//!
//! Rules a rule must meet: at least one source and one target matcher, all of them valid, and
//! `equal` made of valid, distinct label names. With an empty `equal`, any active source alert
//! inhibits every target alert in every tenant: that is allowed but rarely meant.
//!
//! ```toml
//! # A brute-force burst that succeeded (high) makes the new-country and impossible-travel alerts
//! # for the same principal in the same tenant noise: the brute-force card says it all.
//! [[inhibit_rules]]
//! source_matchers = ['rule="brute-force"', 'severity=~"high|critical"']
//! target_matchers = ['rule=~"new-country-sign-in|impossible-travel"']
//! equal = ["tenant_id", "principal"]
//!
//! # A confirmed-compromised user (risky-user, critical) mutes their risky sign-ins.
//! [[inhibit_rules]]
//! source_matchers = ['rule="risky-user"', 'severity="critical"']
//! target_matchers = ['rule="risky-sign-in"']
//! equal = ["tenant_id", "principal"]
//! ```

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::labels::{Labels, is_valid_label_name};
use crate::matcher::{self, Matcher};

/// One `[[inhibit_rules]]` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InhibitRule {
    pub source_matchers: Vec<String>,
    pub target_matchers: Vec<String>,
    #[serde(default)]
    pub equal: Vec<String>,
}

impl InhibitRule {
    /// Every problem, each prefixed with `path` (e.g. `inhibit_rules[0]`).
    pub fn validate(&self, path: &str) -> Vec<String> {
        let mut problems = Vec::new();
        compile(self, path, &mut problems);
        problems
    }
}

#[derive(Debug, Clone)]
struct Compiled {
    source: Vec<Matcher>,
    target: Vec<Matcher>,
    equal: Vec<String>,
}

fn compile(rule: &InhibitRule, path: &str, problems: &mut Vec<String>) -> Compiled {
    for (field, list) in [
        ("source_matchers", &rule.source_matchers),
        ("target_matchers", &rule.target_matchers),
    ] {
        if list.is_empty() {
            problems.push(format!("{path}.{field}: empty; name at least one matcher"));
        }
    }
    let source = matcher::parse_list(
        &rule.source_matchers,
        &format!("{path}.source_matchers"),
        problems,
    );
    let target = matcher::parse_list(
        &rule.target_matchers,
        &format!("{path}.target_matchers"),
        problems,
    );
    let mut seen = BTreeSet::new();
    for (i, name) in rule.equal.iter().enumerate() {
        if !is_valid_label_name(name) {
            problems.push(format!(
                "{path}.equal[{i}]: invalid label name {name:?} (letters, digits and _, not starting with a digit)"
            ));
        } else if !seen.insert(name.as_str()) {
            problems.push(format!("{path}.equal[{i}]: duplicate label {name:?}"));
        }
    }
    Compiled {
        source,
        target,
        equal: rule.equal.clone(),
    }
}

/// The validated rules, in config order.
#[derive(Debug, Clone, Default)]
pub struct Inhibitor {
    rules: Vec<Compiled>,
}

impl Inhibitor {
    /// Validates and compiles `[[inhibit_rules]]`; `Err` lists every problem
    /// (`inhibit_rules[i]...`).
    pub fn new(rules: &[InhibitRule]) -> Result<Inhibitor, Vec<String>> {
        let mut problems = Vec::new();
        let rules = rules
            .iter()
            .enumerate()
            .map(|(i, r)| compile(r, &format!("inhibit_rules[{i}]"), &mut problems))
            .collect();
        if problems.is_empty() {
            Ok(Inhibitor { rules })
        } else {
            Err(problems)
        }
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Whether `target` is inhibited by one of `active_sources` (the labels of the alerts active
    /// now; the target's own labels among them are ignored).
    pub fn inhibited(&self, target: &Labels, active_sources: &[Labels]) -> bool {
        self.inhibited_by(target, active_sources).is_some()
    }

    /// The first (rule index, index into `active_sources`) that inhibits `target`, if any.
    pub fn inhibited_by(
        &self,
        target: &Labels,
        active_sources: &[Labels],
    ) -> Option<(usize, usize)> {
        self.rules.iter().enumerate().find_map(|(ri, rule)| {
            if !matcher::matches_all(&rule.target, target) {
                return None;
            }
            let two_sided = matcher::matches_all(&rule.source, target);
            active_sources
                .iter()
                .position(|s| {
                    s != target
                        && matcher::matches_all(&rule.source, s)
                        && !(two_sided && matcher::matches_all(&rule.target, s))
                        && rule.equal.iter().all(|k| s.get(k) == target.get(k))
                })
                .map(|si| (ri, si))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct File {
        inhibit_rules: Vec<InhibitRule>,
    }

    fn alert(severity: &str, rule: &str, tenant: &str, principal: &str) -> Labels {
        [
            ("severity", severity),
            ("rule", rule),
            ("tenant_id", tenant),
            ("principal", principal),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    }

    fn doc_inhibitor() -> Inhibitor {
        let blocks = crate::matcher::doc_toml(include_str!("inhibit.rs"));
        assert_eq!(blocks.len(), 1);
        let file: File = toml::from_str(&blocks[0]).unwrap_or_else(|e| panic!("{e}"));
        Inhibitor::new(&file.inhibit_rules).unwrap_or_else(|p| panic!("{p:?}"))
    }

    #[test]
    fn documented_rules_with_equal_labels() {
        let inh = doc_inhibitor();
        let bf_high = alert("high", "brute-force", "t1", "u1");
        let bf_medium = alert("medium", "brute-force", "t1", "u1");
        let risky_user = alert("critical", "risky-user", "t1", "u1");
        let new_country = alert("low", "new-country-sign-in", "t1", "u1");
        // (what, target, active sources, inhibited by (rule, source))
        type Case = (&'static str, Labels, Vec<Labels>, Option<(usize, usize)>);
        let cases: Vec<Case> = vec![
            ("no active alerts", new_country.clone(), vec![], None),
            (
                "same tenant and principal",
                new_country.clone(),
                vec![bf_high.clone()],
                Some((0, 0)),
            ),
            (
                "source severity too low",
                new_country.clone(),
                vec![bf_medium.clone()],
                None,
            ),
            (
                "other principal",
                new_country.clone(),
                vec![alert("high", "brute-force", "t1", "u2")],
                None,
            ),
            (
                "other tenant",
                new_country.clone(),
                vec![alert("high", "brute-force", "t2", "u1")],
                None,
            ),
            (
                "the matching source is found among others",
                alert("medium", "impossible-travel", "t1", "u1"),
                vec![bf_medium.clone(), risky_user.clone(), bf_high.clone()],
                Some((0, 2)),
            ),
            (
                "target not covered by any rule",
                alert("high", "password-spray", "t1", "u1"),
                vec![bf_high.clone(), risky_user.clone()],
                None,
            ),
            (
                "second rule",
                alert("high", "risky-sign-in", "t1", "u1"),
                vec![bf_high.clone(), risky_user.clone()],
                Some((1, 1)),
            ),
            (
                "a source alert is not a target of its rule",
                bf_high.clone(),
                vec![bf_high.clone(), new_country.clone()],
                None,
            ),
        ];
        for (what, target, sources, want) in cases {
            assert_eq!(inh.inhibited_by(&target, &sources), want, "{what}");
            assert_eq!(inh.inhibited(&target, &sources), want.is_some(), "{what}");
        }
    }

    #[test]
    fn never_inhibits_itself_and_two_sided_matches_do_not_mute_each_other() {
        // Every high alert inhibits every alert of the same principal, highs included.
        let inh = Inhibitor::new(&[InhibitRule {
            source_matchers: vec![r#"severity="high""#.into()],
            target_matchers: vec![r#"severity=~"low|medium|high""#.into()],
            equal: vec!["principal".into()],
        }])
        .unwrap();
        let a = alert("high", "brute-force", "t1", "u1");
        let b = alert("high", "risky-sign-in", "t1", "u1");
        let low = alert("low", "new-country-sign-in", "t1", "u1");
        // Itself among the active alerts: ignored.
        assert!(!inh.inhibited(&a, std::slice::from_ref(&a)));
        // Two alerts that fit both sides: neither mutes the other.
        assert!(!inh.inhibited(&a, &[a.clone(), b.clone()]));
        assert!(!inh.inhibited(&b, &[a.clone(), b.clone()]));
        // A one-sided target still is muted.
        assert!(inh.inhibited(&low, &[a.clone(), b.clone(), low.clone()]));
    }

    #[test]
    fn equal_on_absent_labels_counts_as_equal() {
        let inh = Inhibitor::new(&[InhibitRule {
            source_matchers: vec![r#"rule="a""#.into()],
            target_matchers: vec![r#"rule="b""#.into()],
            equal: vec!["upn".into()],
        }])
        .unwrap();
        let mut src = alert("high", "a", "t1", "u1");
        let mut tgt = alert("low", "b", "t1", "u2");
        assert!(
            inh.inhibited(&tgt, std::slice::from_ref(&src)),
            "both lack upn"
        );
        tgt.insert("upn".into(), "x@c".into());
        assert!(
            !inh.inhibited(&tgt, std::slice::from_ref(&src)),
            "only one has it"
        );
        src.insert("upn".into(), "x@c".into());
        assert!(
            inh.inhibited(&tgt, std::slice::from_ref(&src)),
            "same value"
        );
        // No equal labels: any source inhibits every target.
        let any = Inhibitor::new(&[InhibitRule {
            source_matchers: vec![r#"rule="a""#.into()],
            target_matchers: vec![r#"rule="b""#.into()],
            equal: vec![],
        }])
        .unwrap();
        assert!(any.inhibited(&alert("low", "b", "t9", "u9"), &[src]));
        assert!(Inhibitor::new(&[]).unwrap().is_empty());
    }

    #[test]
    fn validation_lists_every_problem() {
        let rules = [
            InhibitRule {
                source_matchers: vec![],
                target_matchers: vec!["bad".into()],
                equal: vec!["tenant_id".into(), "a-b".into(), "tenant_id".into()],
            },
            InhibitRule {
                source_matchers: vec![r#"rule=~"(""#.into()],
                target_matchers: vec![],
                equal: vec![],
            },
        ];
        let want = [
            r#"inhibit_rules[0].source_matchers: empty; name at least one matcher"#,
            r#"inhibit_rules[0].target_matchers[0]: "bad": expected =, !=, =~ or !~ after the label name"#,
            r#"inhibit_rules[0].equal[1]: invalid label name "a-b" (letters, digits and _, not starting with a digit)"#,
            r#"inhibit_rules[0].equal[2]: duplicate label "tenant_id""#,
            r#"inhibit_rules[1].target_matchers: empty; name at least one matcher"#,
            r#"inhibit_rules[1].source_matchers[0]: "rule=~\"(\"": invalid regex "(": unclosed group"#,
        ];
        assert_eq!(Inhibitor::new(&rules).unwrap_err(), want);
        assert_eq!(rules[0].validate("inhibit_rules[0]"), want[..4]);
        let err = toml::from_str::<File>(
            "[[inhibit_rules]]\nsource_matchers = ['rule=\"a\"']\ntarget_matchers = ['rule=\"b\"']\nequals = [\"x\"]",
        )
        .err()
        .expect("unknown field")
        .to_string();
        assert!(err.contains("unknown field `equals`"), "{err}");
    }
}
