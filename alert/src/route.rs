//! The route tree: which destinations an alert goes to, grouped how, on which timers.
//!
//! What comes in: the `[route]` section of the config file ([`RouteConfig`]), the names of the
//! configured destinations, and an alert's [`Labels`]. What goes out: a validated [`Router`] (or
//! every problem in the section, each with its config path), and for each alert the list of
//! [`RouteTarget`]s it matched: route path, receivers, fallback receivers, group key and timers.
//!
//! Semantics are Alertmanager's. The root route matches every alert. From a matching route the tree
//! is walked depth-first: children are tried in order and the first child that matches wins, unless
//! it has `continue = true`, in which case the siblings after it are tried too. A matching child
//! that has matching children of its own hands the alert down to them; if no child of a matching
//! route matches, that route itself is the match. A route matches when all its `matchers` match
//! (see [`crate::matcher`]); a child without matchers matches everything that reached it.
//!
//! A child inherits from its parent whatever it leaves unset: `receivers`, `fallback`, `group_by`
//! and the three timers. `matchers` and `continue` are not inherited (a child is only tried when its
//! parent matched, so the parent's matchers hold anyway).
//!
//! - `receivers`: destination names (`[[destinations]] name`). Required on the root; a child that
//!   sets it must name at least one.
//! - `fallback`: destinations that take over while a receiver is broken or unreachable (circuit
//!   open), take the notifications whose payload it refused, and hear about its dead letters.
//!   Default none.
//! - `group_by`: label names; alerts of one route with equal values for these labels are one group,
//!   sent together in one message. Default `["tenant_id", "rule", "principal"]`. `["..."]` groups
//!   by every label (one group per distinct alert labels); `[]` puts all of the route's alerts in
//!   one group.
//! - `group_wait_secs` (default 30): how long a new group waits for more alerts before its first
//!   message; 0 sends at once.
//! - `group_interval_secs` (default 300): the least time between two messages of one group.
//! - `repeat_interval_secs` (default 14400, 4 h): reminder interval while the group stays active.
//!
//! The group key of a target is the route path followed by the `group_by` labels the alert has,
//! sorted by name: `route.routes[0]{principal="203.0.113.7",rule="password-spray",tenant_id="..."}`.
//! A label the alert lacks is left out of the key.
//!
//! When two matching routes name the same destination (through `continue`), each target is
//! reported; [`by_destination`] keeps the first target per destination, which is what one
//! notification per (alert, destination) needs.
//!
//! ```toml
//! # Everything goes to the SOC's Teams channel, Slack when Teams is broken.
//! [route]
//! receivers = ["teams-soc"]
//! fallback = ["slack-soc"]
//! group_by = ["tenant_id", "rule", "principal"]
//! group_wait_secs = 30
//! group_interval_secs = 300
//! repeat_interval_secs = 14400
//!
//! # High and critical alerts page at once as well. A matching route replaces its parent's
//! # receivers, so teams-soc is named again; `continue` lets the routes below see them too.
//! [[route.routes]]
//! matchers = ['severity=~"high|critical"']
//! receivers = ["teams-soc", "pager"]
//! group_wait_secs = 0
//! continue = true
//!
//! # A spray is one card per source IP (its principal), however many tenants it hits.
//! [[route.routes]]
//! matchers = ['rule="password-spray"']
//! group_by = ["rule", "principal"]
//!
//! # Gold-tier customers (a `[[tenants]] labels` value) go to their own channel too;
//! # their break-glass use pages at once.
//! [[route.routes]]
//! matchers = ['tier="gold"']
//! receivers = ["teams-soc", "teams-gold"]
//!
//! [[route.routes.routes]]
//! matchers = ['rule="break-glass-account-used"']
//! receivers = ["pager", "teams-gold"]
//! group_wait_secs = 0
//! ```

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::labels::{Labels, is_valid_label_name};
use crate::matcher::{self, Matcher, quote};

pub const DEFAULT_GROUP_WAIT_SECS: u64 = 30;
pub const DEFAULT_GROUP_INTERVAL_SECS: u64 = 300;
pub const DEFAULT_REPEAT_INTERVAL_SECS: u64 = 14_400;
/// The `group_by` entry that means "every label".
pub const GROUP_BY_ALL: &str = "...";

/// `["tenant_id", "rule", "principal"]`: one group per alert subject.
pub fn default_group_by() -> Vec<String> {
    ["tenant_id", "rule", "principal"]
        .map(str::to_owned)
        .to_vec()
}

/// One node of the `[route]` tree, as written in the config file. `None` means "inherit from the
/// parent" (the root inherits the defaults; its `receivers` are required).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RouteConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub receivers: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fallback: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub matchers: Vec<String>,
    /// `continue`: after this route matched, try its later siblings too.
    #[serde(rename = "continue", skip_serializing_if = "is_false")]
    pub continue_matching: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group_by: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group_wait_secs: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group_interval_secs: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repeat_interval_secs: Option<u64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<RouteConfig>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl RouteConfig {
    /// The route used when the config has no `[route]`: every alert to every destination, default
    /// grouping and timers.
    pub fn default_for(destinations: &[&str]) -> RouteConfig {
        RouteConfig {
            receivers: Some(destinations.iter().map(|d| (*d).to_owned()).collect()),
            ..RouteConfig::default()
        }
    }

    /// Every problem of this tree, taken as the root, each prefixed with its config path (`path` is
    /// the root's, normally `route`).
    pub fn validate(&self, path: &str, known_destinations: &[&str]) -> Vec<String> {
        let mut problems = Vec::new();
        build(self, path, None, known_destinations, &mut problems);
        problems
    }
}

/// Where one alert goes through one matching route.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RouteTarget {
    /// The config path of the matching route: `route`, `route.routes[1].routes[0]`.
    pub route_path: String,
    pub receivers: Vec<String>,
    pub fallback: Vec<String>,
    /// Route path plus the alert's `group_by` label values (see the module docs).
    pub group_key: String,
    pub group_wait_secs: u64,
    pub group_interval_secs: u64,
    pub repeat_interval_secs: u64,
}

/// A validated route tree with compiled matchers and every inherited value resolved.
#[derive(Debug, Clone)]
pub struct Router {
    root: Node,
}

#[derive(Debug, Clone)]
enum GroupBy {
    All,
    /// Sorted, without duplicates.
    Labels(Vec<String>),
}

#[derive(Debug, Clone)]
struct Node {
    path: String,
    matchers: Vec<Matcher>,
    continue_matching: bool,
    receivers: Vec<String>,
    fallback: Vec<String>,
    group_by: GroupBy,
    group_wait_secs: u64,
    group_interval_secs: u64,
    repeat_interval_secs: u64,
    children: Vec<Node>,
}

impl Router {
    /// Validates and compiles the tree rooted at `[route]`; `Err` lists every problem.
    pub fn new(config: &RouteConfig, known_destinations: &[&str]) -> Result<Router, Vec<String>> {
        let mut problems = Vec::new();
        let root = build(config, "route", None, known_destinations, &mut problems);
        if problems.is_empty() {
            Ok(Router { root })
        } else {
            Err(problems)
        }
    }

    /// The routes an alert with these labels matches, in tree order; never empty (the root matches
    /// every alert).
    pub fn route(&self, labels: &Labels) -> Vec<RouteTarget> {
        let mut matched = Vec::new();
        walk(&self.root, labels, &mut matched);
        matched.into_iter().map(|n| n.target(labels)).collect()
    }

    /// Every destination any route of the tree can send to (receivers and fallbacks), sorted.
    pub fn destinations(&self) -> BTreeSet<&str> {
        fn collect<'a>(n: &'a Node, out: &mut BTreeSet<&'a str>) {
            out.extend(n.receivers.iter().map(String::as_str));
            out.extend(n.fallback.iter().map(String::as_str));
            for c in &n.children {
                collect(c, out);
            }
        }
        let mut out = BTreeSet::new();
        collect(&self.root, &mut out);
        out
    }
}

/// Each destination once, with the first target (in tree order) that reaches it.
pub fn by_destination(targets: &[RouteTarget]) -> Vec<(&str, &RouteTarget)> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for t in targets {
        for r in &t.receivers {
            if seen.insert(r.as_str()) {
                out.push((r.as_str(), t));
            }
        }
    }
    out
}

/// Alertmanager's `Route.Match`: the deepest matching routes under `node`, or `node` itself.
fn walk<'a>(node: &'a Node, labels: &Labels, out: &mut Vec<&'a Node>) -> bool {
    if !matcher::matches_all(&node.matchers, labels) {
        return false;
    }
    let before = out.len();
    for child in &node.children {
        if walk(child, labels, out) && !child.continue_matching {
            break;
        }
    }
    if out.len() == before {
        out.push(node);
    }
    true
}

impl Node {
    fn target(&self, labels: &Labels) -> RouteTarget {
        let pairs: Vec<String> = match &self.group_by {
            GroupBy::All => labels
                .iter()
                .map(|(k, v)| format!("{k}={}", quote(v)))
                .collect(),
            GroupBy::Labels(names) => names
                .iter()
                .filter_map(|k| labels.get(k).map(|v| format!("{k}={}", quote(v))))
                .collect(),
        };
        RouteTarget {
            route_path: self.path.clone(),
            receivers: self.receivers.clone(),
            fallback: self.fallback.clone(),
            group_key: format!("{}{{{}}}", self.path, pairs.join(",")),
            group_wait_secs: self.group_wait_secs,
            group_interval_secs: self.group_interval_secs,
            repeat_interval_secs: self.repeat_interval_secs,
        }
    }
}

/// Compiles one node (and its children), resolving inheritance from `parent` (`None` for the root)
/// and pushing every problem found. The node is usable only when no problem was pushed.
fn build(
    cfg: &RouteConfig,
    path: &str,
    parent: Option<&Node>,
    known: &[&str],
    problems: &mut Vec<String>,
) -> Node {
    let is_root = parent.is_none();
    let matchers = matcher::parse_list(&cfg.matchers, &format!("{path}.matchers"), problems);
    if is_root && !cfg.matchers.is_empty() {
        problems.push(format!(
            "{path}.matchers: the root route matches every alert; put matchers on child routes"
        ));
    }
    if is_root && cfg.continue_matching {
        problems.push(format!("{path}.continue: the root route cannot continue"));
    }

    match (&cfg.receivers, parent) {
        (None, None) => problems.push(format!(
            "{path}.receivers: missing; the root route needs at least one destination"
        )),
        (Some(r), None) if r.is_empty() => problems.push(format!(
            "{path}.receivers: empty; the root route needs at least one destination"
        )),
        (Some(r), Some(_)) if r.is_empty() => problems.push(format!(
            "{path}.receivers: empty; name at least one destination or omit it to use the parent's"
        )),
        _ => {}
    }
    if let Some(r) = &cfg.receivers {
        check_destinations(r, &format!("{path}.receivers"), known, problems);
    }
    if let Some(f) = &cfg.fallback {
        check_destinations(f, &format!("{path}.fallback"), known, problems);
    }

    let group_by = match &cfg.group_by {
        Some(g) => check_group_by(g, &format!("{path}.group_by"), problems),
        None => parent.map_or_else(
            || GroupBy::Labels(sorted(default_group_by())),
            |p| p.group_by.clone(),
        ),
    };
    for (field, v) in [
        ("group_interval_secs", cfg.group_interval_secs),
        ("repeat_interval_secs", cfg.repeat_interval_secs),
    ] {
        if v == Some(0) {
            problems.push(format!("{path}.{field}: must be at least 1"));
        }
    }

    let mut node = Node {
        path: path.to_owned(),
        matchers,
        continue_matching: cfg.continue_matching,
        receivers: cfg
            .receivers
            .clone()
            .or_else(|| parent.map(|p| p.receivers.clone()))
            .unwrap_or_default(),
        fallback: cfg
            .fallback
            .clone()
            .or_else(|| parent.map(|p| p.fallback.clone()))
            .unwrap_or_default(),
        group_by,
        group_wait_secs: cfg
            .group_wait_secs
            .or(parent.map(|p| p.group_wait_secs))
            .unwrap_or(DEFAULT_GROUP_WAIT_SECS),
        group_interval_secs: cfg
            .group_interval_secs
            .or(parent.map(|p| p.group_interval_secs))
            .unwrap_or(DEFAULT_GROUP_INTERVAL_SECS),
        repeat_interval_secs: cfg
            .repeat_interval_secs
            .or(parent.map(|p| p.repeat_interval_secs))
            .unwrap_or(DEFAULT_REPEAT_INTERVAL_SECS),
        children: Vec::new(),
    };
    let children = cfg
        .routes
        .iter()
        .enumerate()
        .map(|(i, c)| {
            build(
                c,
                &format!("{path}.routes[{i}]"),
                Some(&node),
                known,
                problems,
            )
        })
        .collect();
    node.children = children;
    node
}

fn check_destinations(list: &[String], path: &str, known: &[&str], problems: &mut Vec<String>) {
    let mut seen = BTreeSet::new();
    for (i, name) in list.iter().enumerate() {
        if !known.contains(&name.as_str()) {
            let known = if known.is_empty() {
                "none".to_owned()
            } else {
                known.join(", ")
            };
            problems.push(format!(
                "{path}[{i}]: unknown destination {name:?} (known: {known})"
            ));
        } else if !seen.insert(name.as_str()) {
            problems.push(format!("{path}[{i}]: duplicate destination {name:?}"));
        }
    }
}

fn check_group_by(list: &[String], path: &str, problems: &mut Vec<String>) -> GroupBy {
    if list.iter().any(|g| g == GROUP_BY_ALL) {
        if list.len() > 1 {
            problems.push(format!(
                "{path}: {GROUP_BY_ALL:?} (every label) must be the only entry"
            ));
        }
        return GroupBy::All;
    }
    let mut seen = BTreeSet::new();
    for (i, name) in list.iter().enumerate() {
        if !is_valid_label_name(name) {
            problems.push(format!(
                "{path}[{i}]: invalid label name {name:?} (letters, digits and _, not starting with a digit)"
            ));
        } else if !seen.insert(name.as_str()) {
            problems.push(format!("{path}[{i}]: duplicate label {name:?}"));
        }
    }
    GroupBy::Labels(sorted(list.to_vec()))
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v.dedup();
    v
}

#[cfg(test)]
mod tests {
    //! Tests of the route tree: matching with `continue` and nesting, inheritance, group keys and
    //! validation.

    use super::*;
    use crate::labels::Labels;
    use serde::Deserialize;

    const KNOWN: &[&str] = &["teams-soc", "slack-soc", "pager", "teams-gold"];

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct File {
        route: RouteConfig,
    }

    fn parse(toml_text: &str) -> RouteConfig {
        toml::from_str::<File>(toml_text)
            .unwrap_or_else(|e| panic!("{e}"))
            .route
    }

    fn doc_router() -> Router {
        let blocks = crate::matcher::doc_toml(include_str!("route.rs"));
        assert_eq!(blocks.len(), 1, "one toml example in the module docs");
        Router::new(&parse(&blocks[0]), KNOWN).unwrap_or_else(|p| panic!("{p:#?}"))
    }

    fn alert(severity: &str, rule: &str, principal: &str, extra: &[(&str, &str)]) -> Labels {
        let mut l: Labels = [
            ("severity", severity),
            ("rule", rule),
            ("tenant_id", "t1"),
            ("principal_kind", "user"),
            ("principal", principal),
        ]
        .into_iter()
        .chain(extra.iter().copied())
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        if principal.contains('.') {
            l.insert("principal_kind".into(), "ip".into());
        }
        l
    }

    /// (route path, receivers, fallback, group key, wait, interval, repeat) of each target.
    type Row = (String, Vec<String>, Vec<String>, String, u64, u64, u64);

    fn rows(targets: &[RouteTarget]) -> Vec<Row> {
        targets
            .iter()
            .map(|t| {
                (
                    t.route_path.clone(),
                    t.receivers.clone(),
                    t.fallback.clone(),
                    t.group_key.clone(),
                    t.group_wait_secs,
                    t.group_interval_secs,
                    t.repeat_interval_secs,
                )
            })
            .collect()
    }

    fn row(path: &str, rec: &[&str], fb: &[&str], key: &str, w: u64, i: u64, r: u64) -> Row {
        let v = |s: &[&str]| s.iter().map(|x| (*x).to_owned()).collect();
        (path.into(), v(rec), v(fb), key.into(), w, i, r)
    }

    #[test]
    fn documented_tree_routes_alerts() {
        let router = doc_router();
        let cases: Vec<(&str, Labels, Vec<Row>)> = vec![
            (
                "low alert, no child matches: the root",
                alert("low", "new-country-sign-in", "u1", &[]),
                vec![row(
                    "route",
                    &["teams-soc"],
                    &["slack-soc"],
                    r#"route{principal="u1",rule="new-country-sign-in",tenant_id="t1"}"#,
                    30,
                    300,
                    14400,
                )],
            ),
            (
                "high alert: the severity route only (its continue finds nothing more)",
                alert("high", "brute-force", "u1", &[]),
                vec![row(
                    "route.routes[0]",
                    &["teams-soc", "pager"],
                    &["slack-soc"],
                    r#"route.routes[0]{principal="u1",rule="brute-force",tenant_id="t1"}"#,
                    0,
                    300,
                    14400,
                )],
            ),
            (
                "high spray: severity route continues into the spray route",
                alert("high", "password-spray", "203.0.113.7", &[]),
                vec![
                    row(
                        "route.routes[0]",
                        &["teams-soc", "pager"],
                        &["slack-soc"],
                        r#"route.routes[0]{principal="203.0.113.7",rule="password-spray",tenant_id="t1"}"#,
                        0,
                        300,
                        14400,
                    ),
                    // Inherits from the root, not from its sibling: wait 30, receivers teams-soc.
                    row(
                        "route.routes[1]",
                        &["teams-soc"],
                        &["slack-soc"],
                        r#"route.routes[1]{principal="203.0.113.7",rule="password-spray"}"#,
                        30,
                        300,
                        14400,
                    ),
                ],
            ),
            (
                "medium spray in a gold tenant: the spray route wins, no continue, gold not tried",
                alert(
                    "medium",
                    "password-spray",
                    "203.0.113.7",
                    &[("tier", "gold")],
                ),
                vec![row(
                    "route.routes[1]",
                    &["teams-soc"],
                    &["slack-soc"],
                    r#"route.routes[1]{principal="203.0.113.7",rule="password-spray"}"#,
                    30,
                    300,
                    14400,
                )],
            ),
            (
                "medium gold alert: the gold route itself (its child does not match)",
                alert("medium", "risky-sign-in", "u2", &[("tier", "gold")]),
                vec![row(
                    "route.routes[2]",
                    &["teams-soc", "teams-gold"],
                    &["slack-soc"],
                    r#"route.routes[2]{principal="u2",rule="risky-sign-in",tenant_id="t1"}"#,
                    30,
                    300,
                    14400,
                )],
            ),
            (
                "critical break-glass in gold: severity route, then down into the gold child",
                alert(
                    "critical",
                    "break-glass-account-used",
                    "u3",
                    &[("tier", "gold")],
                ),
                vec![
                    row(
                        "route.routes[0]",
                        &["teams-soc", "pager"],
                        &["slack-soc"],
                        r#"route.routes[0]{principal="u3",rule="break-glass-account-used",tenant_id="t1"}"#,
                        0,
                        300,
                        14400,
                    ),
                    row(
                        "route.routes[2].routes[0]",
                        &["pager", "teams-gold"],
                        &["slack-soc"],
                        r#"route.routes[2].routes[0]{principal="u3",rule="break-glass-account-used",tenant_id="t1"}"#,
                        0,
                        300,
                        14400,
                    ),
                ],
            ),
        ];
        for (what, labels, want) in cases {
            assert_eq!(rows(&router.route(&labels)), want, "{what}");
        }
    }

    #[test]
    fn by_destination_keeps_the_first_target_per_destination() {
        let router = doc_router();
        let targets = router.route(&alert(
            "critical",
            "break-glass-account-used",
            "u3",
            &[("tier", "gold")],
        ));
        let got: Vec<(&str, &str)> = by_destination(&targets)
            .into_iter()
            .map(|(d, t)| (d, t.route_path.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("teams-soc", "route.routes[0]"),
                ("pager", "route.routes[0]"),
                ("teams-gold", "route.routes[2].routes[0]"),
            ]
        );
        let all: Vec<&str> = router.destinations().into_iter().collect();
        assert_eq!(all, vec!["pager", "slack-soc", "teams-gold", "teams-soc"]);
    }

    #[test]
    fn first_match_continue_and_nesting() {
        let cfg = parse(
            r#"
        [route]
        receivers = ["teams-soc"]

        [[route.routes]]                 # 0: continues
        matchers = ['severity="high"']
        receivers = ["pager"]
        continue = true

        [[route.routes.routes]]          # 0.0: never matches for rule=b
        matchers = ['rule="a"']
        receivers = ["teams-gold"]

        [[route.routes]]                 # 1: first match without continue: stops the walk
        matchers = ['rule=~"b|c"']
        receivers = ["slack-soc"]

        [[route.routes.routes]]          # 1.0: continue
        matchers = ['tenant_id="t1"']
        receivers = ["teams-gold"]
        continue = true

        [[route.routes.routes]]          # 1.1: catch-all (no matchers)
        receivers = ["pager"]

        [[route.routes]]                 # 2: shadowed by 1 for rule b and c
        matchers = ['rule="b"']
        receivers = ["teams-gold"]
        "#,
        );
        let router = Router::new(&cfg, KNOWN).unwrap();
        let paths = |labels: Labels| -> Vec<String> {
            router
                .route(&labels)
                .into_iter()
                .map(|t| t.route_path)
                .collect()
        };
        let l = |pairs: &[(&str, &str)]| -> Labels {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        };
        // high + a: 0 -> 0.0 (continue on 0), then 1 does not match rule a, 2 neither.
        assert_eq!(
            paths(l(&[("severity", "high"), ("rule", "a")])),
            ["route.routes[0].routes[0]"]
        );
        // high + b in t1: 0 (no child matches: itself), continue; 1 -> 1.0 (continue) and 1.1; 1 has
        // no continue: 2 is not tried.
        assert_eq!(
            paths(l(&[
                ("severity", "high"),
                ("rule", "b"),
                ("tenant_id", "t1")
            ])),
            [
                "route.routes[0]",
                "route.routes[1].routes[0]",
                "route.routes[1].routes[1]"
            ]
        );
        // low + b in t2: 1 -> 1.1 (the catch-all).
        assert_eq!(
            paths(l(&[
                ("severity", "low"),
                ("rule", "b"),
                ("tenant_id", "t2")
            ])),
            ["route.routes[1].routes[1]"]
        );
        // Nothing matches: the root.
        assert_eq!(paths(l(&[("rule", "z")])), ["route"]);
        assert_eq!(paths(Labels::new()), ["route"]);
    }

    #[test]
    fn inheritance_through_levels_and_group_by_forms() {
        let cfg = parse(
            r#"
        [route]
        receivers = ["teams-soc"]
        fallback = ["slack-soc"]
        group_by = ["tenant_id"]
        group_wait_secs = 10
        group_interval_secs = 60
        repeat_interval_secs = 3600

        [[route.routes]]
        matchers = ['rule="a"']
        group_by = ["..."]
        group_interval_secs = 120

        [[route.routes.routes]]
        matchers = ['severity="high"']
        receivers = ["pager"]
        fallback = []

        [[route.routes]]
        matchers = ['rule="b"']
        group_by = []
        repeat_interval_secs = 7200
        "#,
        );
        let router = Router::new(&cfg, KNOWN).unwrap();
        let l = |sev: &str, rule: &str| -> Labels {
            [("severity", sev), ("rule", rule), ("tenant_id", "t1")]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect()
        };
        assert_eq!(
            rows(&router.route(&l("low", "a"))),
            [row(
                "route.routes[0]",
                &["teams-soc"],
                &["slack-soc"],
                r#"route.routes[0]{rule="a",severity="low",tenant_id="t1"}"#,
                10,
                120,
                3600
            )]
        );
        // Two levels down: group_by "..." and the interval come from the parent, the wait and repeat
        // from the root; receivers and an explicit empty fallback are its own.
        assert_eq!(
            rows(&router.route(&l("high", "a"))),
            [row(
                "route.routes[0].routes[0]",
                &["pager"],
                &[],
                r#"route.routes[0].routes[0]{rule="a",severity="high",tenant_id="t1"}"#,
                10,
                120,
                3600
            )]
        );
        assert_eq!(
            rows(&router.route(&l("low", "b"))),
            [row(
                "route.routes[1]",
                &["teams-soc"],
                &["slack-soc"],
                "route.routes[1]{}",
                10,
                60,
                7200
            )]
        );
        assert_eq!(
            rows(&router.route(&l("low", "c"))),
            [row(
                "route",
                &["teams-soc"],
                &["slack-soc"],
                r#"route{tenant_id="t1"}"#,
                10,
                60,
                3600
            )]
        );
    }

    #[test]
    fn group_keys_are_stable_sorted_and_escaped() {
        let mut cfg = RouteConfig::default_for(&["teams-soc"]);
        // Config order does not matter: the key lists labels by name.
        cfg.group_by = Some(vec!["upn".into(), "tenant".into(), "rule".into()]);
        let router = Router::new(&cfg, KNOWN).unwrap();
        let labels: Labels = [
            ("rule", "brute-force"),
            ("tenant", r#"Contoso "EU" \ Ltd"#),
            ("severity", "high"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let key = router.route(&labels)[0].group_key.clone();
        // `upn` is absent: left out; quotes and backslashes escaped.
        assert_eq!(
            key,
            r#"route{rule="brute-force",tenant="Contoso \"EU\" \\ Ltd"}"#
        );
        // A different severity does not change the group; a different rule does.
        let mut other = labels.clone();
        other.insert("severity".into(), "low".into());
        assert_eq!(router.route(&other)[0].group_key, key);
        other.insert("rule".into(), "password-spray".into());
        assert_ne!(router.route(&other)[0].group_key, key);
    }

    #[test]
    fn default_route_sends_everything_everywhere() {
        let cfg = RouteConfig::default_for(&["a", "b"]);
        let router = Router::new(&cfg, &["a", "b"]).unwrap();
        let t = router.route(&alert("info", "log-source-silent", "t1", &[]));
        assert_eq!(
            rows(&t),
            [row(
                "route",
                &["a", "b"],
                &[],
                r#"route{principal="t1",rule="log-source-silent",tenant_id="t1"}"#,
                DEFAULT_GROUP_WAIT_SECS,
                DEFAULT_GROUP_INTERVAL_SECS,
                DEFAULT_REPEAT_INTERVAL_SECS
            )]
        );
        assert_eq!(
            Router::new(&RouteConfig::default_for(&[]), &[]).unwrap_err(),
            ["route.receivers: empty; the root route needs at least one destination"]
        );
    }

    #[test]
    fn validation_lists_every_problem_with_its_path() {
        let cfg = parse(
            r#"
        [route]
        matchers = ['rule="x"']
        continue = true
        group_interval_secs = 0

        [[route.routes]]
        receivers = []
        matchers = ['bad', 'rule="ok"']

        [[route.routes]]
        receivers = ["x", "teams-soc", "teams-soc"]
        fallback = ["nope"]
        group_by = ["...", "rule"]
        repeat_interval_secs = 0

        [[route.routes.routes]]
        group_by = ["a-b", "rule", "rule"]
        matchers = ['rule=~"("']
        group_wait_secs = 0
        "#,
        );
        let known = ["teams-soc", "pager"];
        let problems = Router::new(&cfg, &known).unwrap_err();
        let want = [
            r#"route.matchers: the root route matches every alert; put matchers on child routes"#,
            r#"route.continue: the root route cannot continue"#,
            r#"route.receivers: missing; the root route needs at least one destination"#,
            r#"route.group_interval_secs: must be at least 1"#,
            r#"route.routes[0].matchers[0]: "bad": expected =, !=, =~ or !~ after the label name"#,
            r#"route.routes[0].receivers: empty; name at least one destination or omit it to use the parent's"#,
            r#"route.routes[1].receivers[0]: unknown destination "x" (known: teams-soc, pager)"#,
            r#"route.routes[1].receivers[2]: duplicate destination "teams-soc""#,
            r#"route.routes[1].fallback[0]: unknown destination "nope" (known: teams-soc, pager)"#,
            r#"route.routes[1].group_by: "..." (every label) must be the only entry"#,
            r#"route.routes[1].repeat_interval_secs: must be at least 1"#,
            r#"route.routes[1].routes[0].matchers[0]: "rule=~\"(\"": invalid regex "(": unclosed group"#,
            r#"route.routes[1].routes[0].group_by[0]: invalid label name "a-b" (letters, digits and _, not starting with a digit)"#,
            r#"route.routes[1].routes[0].group_by[2]: duplicate label "rule""#,
        ];
        assert_eq!(problems, want);
        // `validate` reports the same, under the path it is given.
        let again = cfg.validate("route", &known);
        assert_eq!(again, want);
        assert!(cfg.validate("x.route", &known)[0].starts_with("x.route.matchers: "));
    }

    #[test]
    fn unknown_fields_are_rejected() {
        let err = toml::from_str::<File>(
            r#"
        [route]
        receivers = ["a"]
        [[route.routes]]
        receiver = ["a"]
        "#,
        )
        .err()
        .expect("unknown field")
        .to_string();
        assert!(err.contains("unknown field `receiver`"), "{err}");
    }

    #[test]
    fn serializes_back_with_continue_renamed() {
        let cfg = parse(
            r#"
        [route]
        receivers = ["teams-soc"]
        [[route.routes]]
        matchers = ['severity="high"']
        continue = true
        "#,
        );
        let json = serde_json::to_value(&cfg).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "receivers": ["teams-soc"],
                "routes": [{"matchers": ["severity=\"high\""], "continue": true}]
            })
        );
        let back: RouteConfig = serde_json::from_value(json).unwrap();
        assert_eq!(back, cfg);
    }
}
