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
