//! `entrawatch run` and `validate` end to end: the real binary, real files, a real HTTP receiver
//! on loopback, and Prometheus's own tools where metrics are checked.

mod common;

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use common::*;

/// The admin token the demo config reads from `EW_TEST_ADMIN_TOKEN`.
const ADMIN_TOKEN: &str = "run-test-admin-token-0123456789";

/// A config running the bundled demo through a file source into a webhook whose URL and secret
/// come from the environment (`EW_TEST_WEBHOOK_URL`, `EW_TEST_WEBHOOK_SECRET`), with the admin
/// token in `EW_TEST_ADMIN_TOKEN`.
fn demo_config(dir: &Path, follow: bool) -> std::path::PathBuf {
    file_config(dir, &root().join("examples/demo"), follow)
}

/// [`demo_config`] with the file source reading `input`.
fn file_config(dir: &Path, input: &Path, follow: bool) -> std::path::PathBuf {
    let text = format!(
        r#"
[service]
state_dir = {state}
log_format = "json"
snapshot_interval_secs = 1
admin_token = {{ env = "EW_TEST_ADMIN_TOKEN" }}
{DEMO_TENANTS}
[[sources]]
type = "file"
name = "demo"
path = {demo}
follow = {follow}
poll_secs = 1

[[destinations]]
type = "webhook"
name = "soc"
url = {{ env = "EW_TEST_WEBHOOK_URL" }}
secret = {{ env = "EW_TEST_WEBHOOK_SECRET" }}

[route]
receivers = ["soc"]
group_wait_secs = 1
group_interval_secs = 1
"#,
        state = toml_path(&dir.join("state")),
        demo = toml_path(input),
    );
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join("entrawatch.toml");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn run_delivers_exactly_the_alerts_replay_finds_and_exits_when_done() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::ok();
    let config = demo_config(dir.path(), false);
    let logs = run_until_done(&config, &receiver, Duration::from_secs(120));
    assert!(!logs.contains("s3cret"), "a secret reached the logs");
    assert!(
        !logs.contains(ADMIN_TOKEN),
        "the admin token reached the logs"
    );
    assert!(
        !logs.contains(&receiver.url()),
        "a destination URL reached the logs"
    );
    let requests = receiver.requests();
    let delivered = delivered_alert_ids(&requests);
    let expected = replay_alert_ids(
        &root().join("examples/entrawatch.toml"),
        &root().join("examples/demo"),
    );
    assert_eq!(expected.len(), 8);
    assert_eq!(delivered, expected, "run and replay disagree");
    // Every request is signed, and the signature verifies.
    for r in &requests {
        let ts = r.header("x-entrawatch-timestamp").unwrap();
        let sig = r.header("x-entrawatch-signature").unwrap();
        assert!(entrawatch_alert::sink::webhook::verify_signature(
            b"s3cret", ts, &r.body, sig
        ));
        assert!(r.header("idempotency-key").unwrap().starts_with("n-"));
    }
}

/// Runs the service with `[sigma]` over `rules` on the demo until it is done, checks that it
/// delivered exactly the alert ids `replay --sigma rules` raises, and returns replay's alerts.
fn run_with_sigma_equals_replay(rules: &Path) -> Vec<serde_json::Value> {
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::ok();
    let config = demo_config(dir.path(), false);
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(&format!("\n[sigma]\npaths = [{}]\n", toml_path(rules)));
    std::fs::write(&config, text).unwrap();
    run_until_done(&config, &receiver, Duration::from_secs(180));
    let delivered = delivered_alert_ids(&receiver.requests());
    let replayed = replay_alerts(
        &root().join("examples/entrawatch.toml"),
        &root().join("examples/demo"),
        &["--sigma".as_ref(), rules.as_os_str()],
    );
    let expected: std::collections::BTreeSet<String> = replayed
        .iter()
        .map(|a| a["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(delivered, expected, "run and replay disagree");
    replayed
}

/// Replay is the oracle for Sigma alerts too: the service with `[sigma]` over the demo delivers
/// exactly the alert ids `replay --sigma` finds (the pinned SigmaHQ rules), native and Sigma alike.
#[test]
fn run_with_sigma_rules_delivers_exactly_the_alerts_replay_finds() {
    let replayed = run_with_sigma_equals_replay(&root().join("sigma/tests/fixtures/sigmahq"));
    let sigma = replayed
        .iter()
        .filter(|a| a["rule"].as_str().is_some_and(|r| r.starts_with("sigma:")))
        .count();
    assert!(sigma > 0, "the replay raised no Sigma alert");
}

/// Sigma correlation rules in the service: their windows live in the engine's state, and the
/// service delivers exactly the alerts replay raises with them (the demo makes the test
/// correlations fire: one address failing for many users, a failure then a success).
#[test]
fn run_with_sigma_correlation_rules_delivers_exactly_the_alerts_replay_finds() {
    let replayed = run_with_sigma_equals_replay(&root().join("sigma/tests/fixtures/correlation"));
    let correlations = replayed
        .iter()
        .filter(|a| a["evidence"]["correlation"].is_string())
        .count();
    assert!(correlations > 0, "the replay raised no correlation alert");
}

/// Starts `entrawatch run ARGS` on `config` with its log in `log`, delivering to `receiver` (the
/// config's webhook), with the admin token set.
fn start_service(config: &Path, log: &Path, args: &[&str], receiver: &Receiver) -> Service {
    Service::start_env(
        config,
        free_port(),
        log,
        args,
        &[
            ("EW_TEST_WEBHOOK_URL", receiver.url().as_str()),
            ("EW_TEST_WEBHOOK_SECRET", "s3cret"),
            ("EW_TEST_ADMIN_TOKEN", ADMIN_TOKEN),
        ],
    )
}

/// Runs `entrawatch run --exit-when-done` on `config`, delivering to `receiver` (the config's
/// webhook), and returns its log once it has exited successfully (bounded by `timeout`).
fn run_until_done(config: &Path, receiver: &Receiver, timeout: Duration) -> String {
    let port = free_port();
    let mut child = entrawatch()
        .args(["run", "--exit-when-done", "--config"])
        .arg(config)
        .env(
            "ENTRAWATCH_SERVICE__ADMIN_LISTEN",
            format!("127.0.0.1:{port}"),
        )
        .env("EW_TEST_WEBHOOK_URL", receiver.url())
        .env("EW_TEST_WEBHOOK_SECRET", "s3cret")
        .env("EW_TEST_ADMIN_TOKEN", ADMIN_TOKEN)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let status = wait_child(&mut child, timeout);
    let mut logs = String::new();
    use std::io::Read as _;
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut logs)
        .unwrap();
    assert!(status.success(), "exit {status}:\n{logs}");
    logs
}

fn wait_child(child: &mut std::process::Child, timeout: Duration) -> std::process::ExitStatus {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("entrawatch did not finish in {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn health_metrics_and_a_clean_promtool_lint_while_running() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::ok();
    let config = demo_config(dir.path(), true);
    let log = dir.path().join("log.jsonl");
    let mut service = start_service(&config, &log, &[], &receiver);
    service.wait_ready(Duration::from_secs(60));
    assert_eq!(http("GET", &service.admin, "/livez", "").unwrap().0, 200);
    assert!(
        receiver.wait_for(Duration::from_secs(60), |r| delivered_alert_ids(r).len()
            >= 8)
    );
    // The receiver sees a message before the service counts it as delivered (the counter moves
    // after the 2xx), so scrape until the counter's series is there, then check that scrape.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let metrics = loop {
        let (status, metrics) = http("GET", &service.admin, "/metrics", "").unwrap();
        assert_eq!(status, 200);
        if metrics.contains("entrawatch_notifications_total") {
            break metrics;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "entrawatch_notifications_total missing from /metrics after 30 s:\n{metrics}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    for name in [
        "entrawatch_events_received_total",
        "entrawatch_events_processed_total",
        "entrawatch_alerts_total",
        "entrawatch_notifications_total",
        "entrawatch_ready 1",
        "entrawatch_state_principals",
    ] {
        assert!(
            metrics.contains(name),
            "{name} missing from /metrics:\n{metrics}"
        );
    }
    let mut lint = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool is needed (Debian package prometheus; scripts/test installs it)");
    use std::io::Write as _;
    lint.stdin
        .take()
        .unwrap()
        .write_all(metrics.as_bytes())
        .unwrap();
    let out = lint.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // An unknown path is a 404, reload of the same file succeeds (with the admin token; without it,
    // 401).
    assert_eq!(http("GET", &service.admin, "/nope", "").unwrap().0, 404);
    assert_eq!(
        http("POST", &service.admin, "/-/reload", "").unwrap().0,
        401
    );
    let (status, body) = http_auth("POST", &service.admin, "/-/reload", ADMIN_TOKEN, "").unwrap();
    assert_eq!(status, 200, "{body}");
    let status = service.terminate(Duration::from_secs(30));
    assert!(status.success(), "{}", service.logs());
    assert!(service.logs().contains("final snapshot written"));
    assert!(
        !service.logs().contains(ADMIN_TOKEN),
        "the admin token reached the logs"
    );
}

/// The rules an alert envelope carries, over every request a receiver got.
fn delivered_rules(requests: &[Received]) -> std::collections::BTreeSet<String> {
    (requests.iter())
        .flat_map(|r| r.json()["alerts"].as_array().cloned().unwrap_or_default())
        .filter_map(|a| a["rule"].as_str().map(str::to_owned))
        .collect()
}

/// `[sigma]` is read again on reload: a folder that cannot be read refuses the reload with the
/// folder named (the running rules stay), and a new rule runs on the records that come after it.
#[test]
fn a_reload_runs_new_sigma_rules_and_refuses_a_folder_it_cannot_read() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    std::fs::create_dir_all(&input).unwrap();
    let receiver = Receiver::ok();
    let config = file_config(dir.path(), &input, true);
    // Every lane idle after a second: the one record dropped below is released at once.
    let base = std::fs::read_to_string(&config)
        .unwrap()
        .replace("[service]\n", "[service]\nidle_source_secs = 1\n");
    std::fs::write(&config, &base).unwrap();
    let log = dir.path().join("log.jsonl");
    let mut service = start_service(&config, &log, &[], &receiver);
    service.wait_ready(Duration::from_secs(60));
    let reload = || http_auth("POST", &service.admin, "/-/reload", ADMIN_TOKEN, "").unwrap();

    let missing = dir.path().join("no-such-rules");
    let with_sigma = |path: &Path| format!("{base}\n[sigma]\npaths = [{}]\n", toml_path(path));
    std::fs::write(&config, with_sigma(&missing)).unwrap();
    let (status, body) = reload();
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("no-such-rules"), "{body}");

    let rules = dir.path().join("rules");
    std::fs::create_dir_all(&rules).unwrap();
    let id = "6a1c2f5e-3b4d-4e5f-8a9b-0c1d2e3f4a5b";
    std::fs::write(
        rules.join("reload_probe.yml"),
        format!(
            "title: Reload probe sign-in\nid: {id}\nstatus: test\n\
             description: The reload test's rule, one user's sign-in.\n\
             logsource:\n  product: azure\n  service: signinlogs\n\
             detection:\n  selection:\n    properties.userPrincipalName: reload.probe@contoso.com\n\
             \x20 condition: selection\nlevel: high\n"
        ),
    )
    .unwrap();
    std::fs::write(&config, with_sigma(&rules)).unwrap();
    let (status, body) = reload();
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("sigma: 1 rules run"), "{body}");

    let tenant = "11111111-aaaa-4aaa-8aaa-111111111111";
    let record = serde_json::json!({"records": [{
        "time": "2026-11-21T10:00:00Z", "category": "SignInLogs", "tenantId": tenant,
        "operationName": "Sign-in activity", "resultType": "0",
        "properties": {"id": "0f6c1d2e-3a4b-4c5d-8e9f-a0b1c2d3e4f5",
            "createdDateTime": "2026-11-21T10:00:00Z",
            "userPrincipalName": "reload.probe@contoso.com",
            "userId": "7c1d2e3f-4a5b-4c6d-9e8f-0a1b2c3d4e5f", "ipAddress": "203.0.113.10",
            "status": {"errorCode": 0}, "resourceTenantId": tenant, "homeTenantId": tenant,
            "isInteractive": true,
            "authenticationRequirement": "multiFactorAuthentication"}}]});
    std::fs::write(input.join("probe.json"), record.to_string()).unwrap();
    let rule = format!("sigma:{id}");
    assert!(
        receiver.wait_for(Duration::from_secs(60), |r| delivered_rules(r)
            .contains(&rule)),
        "no {rule} alert after the reload; got {:?}\n{}",
        delivered_rules(&receiver.requests()),
        service.logs()
    );
    let status = service.terminate(Duration::from_secs(30));
    assert!(status.success(), "{}", service.logs());
}

#[test]
fn a_file_source_over_a_folder_with_every_hazard_delivers_what_it_can_read_and_says_what_it_cannot()
{
    let dir = tempfile::tempdir().unwrap();
    let hazards = hazard_folder(dir.path());
    let receiver = Receiver::ok();
    let config = file_config(&dir.path().join("once"), &hazards.input, false);
    let log = dir.path().join("once.log");
    let mut service = start_service(&config, &log, &["--exit-when-done"], &receiver);
    // It ends (no pipe waited on, no loop walked for ever), and says that not all was read.
    let status = service.wait(Duration::from_secs(120));
    let logs = service.logs();
    assert_eq!(status.code(), Some(2), "exit {status}:\n{logs}");
    assert!(logs.contains("input could not be read"), "{logs}");
    assert!(logs.contains("loop.json: cannot read: "), "{logs}");
    if hazards.locked_unreadable {
        assert!(logs.contains("locked: cannot read: "), "{logs}");
    }
    assert!(
        logs.lines().any(|l| l.contains("path passed over")
            && l.contains("pipe.json")
            && l.contains("fifo")),
        "{logs}"
    );
    // Everything readable went through: the alerts a replay of the readable files raises.
    let expected = replay_alert_ids(&root().join("examples/entrawatch.toml"), &hazards.readable);
    assert!(expected.len() >= 8, "{expected:?}");
    assert_eq!(delivered_alert_ids(&receiver.requests()), expected);

    // Left running, the service shows the errors in its metrics; stopped, it exits with 2 too.
    let receiver = Receiver::ok();
    let config = file_config(&dir.path().join("running"), &hazards.input, false);
    let mut service = start_service(&config, &dir.path().join("running.log"), &[], &receiver);
    service.wait_ready(Duration::from_secs(60));
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let metrics = loop {
        let (_, metrics) = http("GET", &service.admin, "/metrics", "").unwrap();
        if metric(&metrics, "entrawatch_source_errors_total") >= hazards.unreadable_paths() as f64 {
            break metrics;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "entrawatch_source_errors_total not reported:\n{metrics}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        metrics.contains(&format!(
            "entrawatch_source_errors_total{{reason=\"unreadable\",source=\"demo\"}} {}",
            hazards.unreadable_paths()
        )),
        "{metrics}"
    );
    assert!(
        metrics
            .contains("entrawatch_source_paths_skipped_total{reason=\"fifo\",source=\"demo\"} 1"),
        "{metrics}"
    );
    let status = service.terminate(Duration::from_secs(30));
    assert_eq!(status.code(), Some(2), "{}", service.logs());
}

/// `validate` lists the problems of every section at once, the deep checks of the sections that
/// parsed included; a config without sources and destinations is valid for `replay` only, and
/// `run` refuses it.
#[test]
fn validate_lists_every_problem_and_recognises_a_replay_config() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    let command = |args: &[&str], config: &Path| {
        let out = entrawatch()
            .args(args)
            .arg("--config")
            .arg(config)
            .env_remove("EW_TEST_UNSET_TEAMS_URL")
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.code(), text)
    };

    let replay = write("replay.toml", DEMO_TENANTS);
    let (code, text) = command(&["validate"], &replay);
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains("valid for replay; `run` needs sources and destinations"),
        "{text}"
    );
    let (code, text) = command(&["run"], &replay);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("destinations: none configured"), "{text}");

    let bad = write(
        "bad.toml",
        &format!(
            "[service]\nstate_dir = {}\nsnapshot_interval_secs = \"30s\"\n\
             [[sources]]\ntype = \"file\"\nname = \"drop\"\npath = \"{}\"\npoll_secs = \"5s\"\n\
             [[destinations]]\ntype = \"teams\"\nname = \"soc\"\nurl = {{ env = \"EW_TEST_UNSET_TEAMS_URL\" }}\n",
            toml_path(&dir.path().join("state")),
            dir.path().display(),
        ),
    );
    let (code, text) = command(&["validate"], &bad);
    assert_eq!(code, Some(1), "{text}");
    for expected in [
        "service.snapshot_interval_secs: invalid type: string \"30s\", expected u64",
        "sources[0].poll_secs: invalid type: string \"5s\", expected u64",
        "destinations[0].url: environment variable EW_TEST_UNSET_TEAMS_URL is not set",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
    assert!(
        !dir.path().join("state").exists(),
        "validate created the state folder"
    );
}
