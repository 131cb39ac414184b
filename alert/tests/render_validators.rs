//! The renderers' output against the real validators (docs/tooling.md §5): a spread of messages (every
//! severity, every rule of the catalogue with its evidence, a group, a truncated group of 200,
//! reminders, hostile text, the minimal forms) is rendered into a temporary folder, then
//! `validate_cards.js` (the Adaptive Cards SDK, adaptivecards 3.0.6) checks the Teams bodies and
//! `check_blocks.py` (slack_sdk 3.48.0) the Slack bodies. Deliberately broken payloads must be
//! rejected, which proves the validators are live.
//!
//! Needs `node` and the validators installed by `scripts/setup-validators.sh` (`scripts/test`, the
//! test command, runs it when they are missing); without them the test fails (it never skips) and
//! says what to run. `ENTRAWATCH_VALIDATOR_PYTHON` may name a python that
//! has slack_sdk instead of the script's virtualenv; `ENTRAWATCH_CARDS_DIR` keeps the rendered
//! payloads in that folder (`teams/`, `slack/`) instead of a temporary one.
//!
//! `sample_alerts.json`: one or two alerts per rule, built from the findings in the detector
//! snapshots (`detect/src/detectors/snapshots/`) with synthetic ids, counts and tenant names.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use chrono::{Duration, TimeZone, Utc};
use entrawatch_alert::sink::{self, Message, Payload};
use entrawatch_alert::{AlertRecord, Kind};
use entrawatch_detect::{PrincipalKind, Severity};
use serde_json::json;

const SETUP: &str = "run the tests with scripts/test, which installs them, or run scripts/setup-validators.sh (needs node >= 18, npm, python3 with venv)";

fn validators() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/validators")
}

/// The node command, after checking that node runs and the SDK is installed.
fn node() -> Command {
    let dir = validators();
    let ok = Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(ok, "node is not installed or does not run: {SETUP}");
    for package in ["adaptivecards", "jsdom"] {
        assert!(
            dir.join("node_modules")
                .join(package)
                .join("package.json")
                .is_file(),
            "{package} is missing from {}: {SETUP}",
            dir.join("node_modules").display()
        );
    }
    let mut c = Command::new("node");
    c.current_dir(&dir);
    c
}

/// The python command, after checking that it imports slack_sdk.
fn python() -> Command {
    let program = std::env::var_os("ENTRAWATCH_VALIDATOR_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| validators().join(".venv/bin/python"));
    let ok = Command::new(&program)
        .args(["-c", "import slack_sdk"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(ok, "{} cannot import slack_sdk: {SETUP}", program.display());
    let mut c = Command::new(program);
    c.current_dir(validators());
    c
}

fn validate_cards(dir: &Path) -> Output {
    node()
        .arg("validate_cards.js")
        .arg(dir)
        .output()
        .expect("run validate_cards.js")
}

fn check_blocks(dir: &Path) -> Output {
    python()
        .arg("check_blocks.py")
        .arg(dir)
        .output()
        .expect("run check_blocks.py")
}

fn report(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn samples() -> Vec<AlertRecord> {
    let raw = std::fs::read_to_string(validators().join("sample_alerts.json")).unwrap();
    serde_json::from_str(&raw).expect("sample_alerts.json holds alert records")
}

/// One message to render: a name, its alerts (most severe first), why it is sent.
struct Case {
    name: String,
    alerts: Vec<AlertRecord>,
    kind: Kind,
    since_last: Option<u64>,
}

fn case(name: impl Into<String>, alerts: Vec<AlertRecord>, kind: Kind) -> Case {
    Case {
        name: name.into(),
        alerts,
        kind,
        since_last: None,
    }
}

fn cases() -> Vec<Case> {
    let samples = samples();
    let rules: BTreeSet<&str> = samples.iter().map(|a| a.rule.as_str()).collect();
    for d in entrawatch_detect::registry::all() {
        assert!(
            rules.contains(d.id()),
            "sample_alerts.json has no alert of rule {}",
            d.id()
        );
    }
    let mut out: Vec<Case> = samples
        .iter()
        .enumerate()
        .map(|(i, a)| case(format!("{i:02}-{}", a.rule), vec![a.clone()], Kind::First))
        .collect();
    // One per severity, a user alert of that severity where the catalogue has one (these are the
    // cards render_png.sh pictures).
    for severity in Severity::ALL {
        let is_user = |a: &&AlertRecord| a.principal.kind == PrincipalKind::User;
        let mut a = samples
            .iter()
            .filter(is_user)
            .find(|a| a.severity == severity)
            .or_else(|| {
                samples
                    .iter()
                    .filter(is_user)
                    .find(|a| a.rule == "new-country-sign-in")
            })
            .unwrap()
            .clone();
        a.severity = severity;
        out.push(case(
            format!("severity-{}", severity.as_str()),
            vec![a],
            Kind::First,
        ));
    }
    let mut sorted = samples.clone();
    sorted.sort_by_key(|a| std::cmp::Reverse(a.severity));
    out.push(case("group-3", sorted[..3].to_vec(), Kind::First));
    out.push(case("group-all", sorted.clone(), Kind::First));
    let big: Vec<AlertRecord> = (0..200)
        .map(|i| {
            let mut a = sorted[i % sorted.len()].clone();
            a.id = format!("ew-{i:016x}");
            for k in 0..50 {
                a.evidence
                    .insert(format!("extra_{k:02}"), json!("evidence ".repeat(60)));
            }
            a
        })
        .collect();
    out.push(case("truncated-200", big, Kind::First));
    let mut reminder = case("reminder", vec![sorted[0].clone()], Kind::Reminder);
    reminder.since_last = Some(17);
    out.push(reminder);
    let mut hostile = samples[0].clone();
    hostile.title =
        "**URGENT** [login](https://evil.example) <!channel> & _x_ `y` \u{202E}fdp.exe 日本語 👩‍💻"
            .into();
    hostile.summary =
        "- one\n1. two\r\n# three > four {{DATE(2017-02-14T06:00:00Z, SHORT)}} ${x}".into();
    hostile.tenant_name = Some("<script>alert(1)</script> & Co".into());
    hostile
        .evidence
        .insert("app".into(), json!("[App](https://evil.example) *bold*"));
    out.push(case("hostile", vec![hostile], Kind::First));
    out
}

fn message(c: &Case) -> Message<'_> {
    Message {
        notification_id: "n-0123456789abcdef",
        kind: c.kind,
        alerts: &c.alerts,
        now: Utc.with_ymd_and_hms(2026, 10, 27, 3, 0, 0).unwrap() + Duration::minutes(5),
        since_last: c.since_last,
        notification_ids: &[],
    }
}

fn write(dir: &Path, name: &str, p: &Payload) {
    std::fs::write(dir.join(format!("{name}.json")), &p.body).unwrap();
}

#[test]
fn rendered_payloads_pass_the_real_validators() {
    // ENTRAWATCH_CARDS_DIR keeps the rendered payloads there (render_png.sh pictures them).
    let tmp = tempfile::tempdir().unwrap();
    let root = std::env::var_os("ENTRAWATCH_CARDS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| tmp.path().to_owned());
    let (teams, slack) = (root.join("teams"), root.join("slack"));
    std::fs::create_dir_all(&teams).unwrap();
    std::fs::create_dir_all(&slack).unwrap();
    let cases = cases();
    for c in &cases {
        let m = message(c);
        let (t, s) = (sink::teams::render(&m), sink::slack::render(&m));
        if c.name == "truncated-200" {
            assert!(t.truncated > 0 && s.truncated > 0, "the big group is cut");
        }
        write(&teams, &c.name, &t);
        write(&slack, &c.name, &s);
        write(
            &teams,
            &format!("{}-minimal", c.name),
            &sink::teams::render_minimal(&m),
        );
        write(
            &slack,
            &format!("{}-minimal", c.name),
            &sink::slack::render_minimal(&m),
        );
    }
    let o = validate_cards(&teams);
    assert!(o.status.success(), "teams cards rejected: {}", report(&o));
    let expected = format!("{0} of {0} cards valid", cases.len() * 2);
    assert!(
        String::from_utf8_lossy(&o.stdout).contains(&expected),
        "{}",
        report(&o)
    );
    let o = check_blocks(&slack);
    assert!(
        o.status.success(),
        "slack messages rejected: {}",
        report(&o)
    );
    let expected = format!("{0} of {0} messages valid", cases.len() * 2);
    assert!(
        String::from_utf8_lossy(&o.stdout).contains(&expected),
        "{}",
        report(&o)
    );
}

/// The validators fail on broken payloads, through the SDKs' own checks: a validator that passes
/// everything would make the test above worthless.
#[test]
fn broken_payloads_are_rejected() {
    let samples = samples();
    let c = case("x", samples[..2].to_vec(), Kind::First);
    let m = message(&c);
    let tmp = tempfile::tempdir().unwrap();
    let good = String::from_utf8(sink::teams::render(&m).body).unwrap();
    assert!(good.contains("\"type\":\"TextBlock\""));
    std::fs::write(tmp.path().join("good.json"), &good).unwrap();
    std::fs::write(
        tmp.path().join("broken.json"),
        good.replacen("\"type\":\"TextBlock\"", "\"type\":\"TextBlok\"", 1),
    )
    .unwrap();
    let o = validate_cards(tmp.path());
    assert_eq!(o.status.code(), Some(1), "{}", report(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("broken.json: parse: UnknownElementType: Unknown element type \"TextBlok\""),
        "{}",
        report(&o)
    );
    assert!(!out.contains("good.json:"), "{}", report(&o));
    assert!(out.contains("1 of 2 cards valid"), "{}", report(&o));

    let tmp = tempfile::tempdir().unwrap();
    let good = String::from_utf8(sink::slack::render(&m).body).unwrap();
    assert!(good.contains("\"type\":\"section\""));
    std::fs::write(tmp.path().join("good.json"), &good).unwrap();
    std::fs::write(
        tmp.path().join("broken.json"),
        good.replacen("\"type\":\"section\"", "\"type\":\"sektion\"", 1),
    )
    .unwrap();
    let mut long: serde_json::Value = serde_json::from_str(&good).unwrap();
    long["blocks"][0]["text"]["text"] = json!("x".repeat(151));
    std::fs::write(tmp.path().join("long.json"), long.to_string()).unwrap();
    let o = check_blocks(tmp.path());
    assert_eq!(o.status.code(), Some(1), "{}", report(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("broken.json: blocks[1]: unknown block type 'sektion'"),
        "{}",
        report(&o)
    );
    assert!(
        out.contains("long.json: blocks[0] (header): text attribute cannot exceed 150 characters"),
        "{}",
        report(&o)
    );
    assert!(out.contains("1 of 3 messages valid"), "{}", report(&o));
}
