//! The admin API against strangers, end to end: the real binary listening on a free loopback port.
//! Writes (silence create and expire, reload) are off without `[service] admin_token` and need the
//! token when it is set; bodies are bounded in size and time; a flood of half-open connections
//! neither stops delivery nor the probes; at the file-descriptor limit the accept loop waits
//! instead of spinning.

mod common;

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// The token the tests configure (through `EW_TEST_ADMIN_TOKEN`).
const TOKEN: &str = "admin-test-token-0123456789abcdef";

const STDOUT: &str = r#"
[[destinations]]
type = "stdout"
name = "out"
"#;

/// A webhook to the URL in `EW_TEST_WEBHOOK_URL`, sent without waiting to group.
const WEBHOOK: &str = r#"
[[destinations]]
type = "webhook"
name = "soc"
url = { env = "EW_TEST_WEBHOOK_URL" }

[route]
receivers = ["soc"]
group_wait_secs = 0
group_interval_secs = 1
"#;

const WITH_TOKEN: &str = r#"admin_token = { env = "EW_TEST_ADMIN_TOKEN" }"#;

/// A config with `service` lines added to `[service]`, a followed drop folder (`dir/drop`, empty),
/// `destination`, and one file silence.
fn write_config(dir: &Path, service: &str, destination: &str) -> PathBuf {
    let drop = dir.join("drop");
    std::fs::create_dir_all(&drop).unwrap();
    let text = format!(
        r#"
[service]
state_dir = {state}
log_format = "json"
snapshot_interval_secs = 1
{service}
{DEMO_TENANTS}
[[sources]]
type = "file"
name = "drop"
path = {drop}
follow = true
poll_secs = 1
{destination}
[[silences]]
matchers = ['rule="new-country-sign-in"', 'upn="ada@contoso.com"']
starts_at = 2026-01-01T00:00:00Z
ends_at = 2099-01-01T00:00:00Z
author = "j.doe"
comment = "CHG-1234: Ada works from Japan"
"#,
        state = toml_path(&dir.join("state")),
        drop = toml_path(&drop),
    );
    let path = dir.join("entrawatch.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// Starts the service on a free port with the test token in its environment; waits until ready.
fn start(dir: &Path, service: &str, destination: &str, env: &[(&str, &str)]) -> Service {
    let config = write_config(dir, service, destination);
    let mut env = env.to_vec();
    env.push(("EW_TEST_ADMIN_TOKEN", TOKEN));
    let mut s = Service::start_env(&config, free_port(), &dir.join("log.jsonl"), &[], &env);
    s.wait_ready(Duration::from_secs(60));
    s
}

/// What the attacker of the hardening issue posted: every alert muted until 2099.
fn mute_everything(id: &str, author: &str) -> String {
    serde_json::json!({
        "id": id,
        "matchers": ["rule=~\".+\""],
        "starts_at": "2026-01-01T00:00:00Z",
        "ends_at": "2099-01-01T00:00:00Z",
        "author": author,
        "comment": "mute everything",
        "created_at": "2026-01-01T00:00:00Z",
    })
    .to_string()
}

/// `GET /api/silences` (with the token: it is only needed when reads are guarded).
fn silences(service: &Service) -> serde_json::Value {
    let (status, body) = http_auth("GET", &service.admin, "/api/silences", TOKEN, "").unwrap();
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

/// The JSON log lines whose message is `message`.
fn log_lines(service: &Service, message: &str) -> Vec<serde_json::Value> {
    service
        .logs()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["message"] == message)
        .collect()
}

/// Waits (bounded) for a log line with `message`.
fn wait_log(service: &Service, message: &str, timeout: Duration) -> Vec<serde_json::Value> {
    let deadline = Instant::now() + timeout;
    loop {
        let lines = log_lines(service, message);
        if !lines.is_empty() {
            return lines;
        }
        assert!(
            Instant::now() < deadline,
            "no log line {message:?} in {timeout:?}:\n{}",
            service.logs()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn without_a_configured_token_writes_are_off_and_the_silences_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let mut service = start(dir.path(), "", STDOUT, &[]);
    let before = silences(&service);
    let file_silence = before[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(before.as_array().unwrap().len(), 1, "{before}");

    let auth = format!("Bearer {TOKEN}");
    let delete = format!("/api/silences/{file_silence}");
    for (method, path, body) in [
        (
            "POST",
            "/api/silences",
            mute_everything("s-mallory", "mallory"),
        ),
        ("DELETE", delete.as_str(), String::new()),
        ("POST", "/-/reload", String::new()),
    ] {
        for headers in [vec![], vec![("Authorization", auth.as_str())]] {
            let r = http_with(method, &service.admin, path, &headers, &body).unwrap();
            assert_eq!(r.status, 403, "{method} {path}: {}", r.body);
            assert!(
                r.body.contains("service") && r.body.contains("admin_token"),
                "the 403 must say how to turn writes on: {}",
                r.body
            );
            assert!(r.body.contains("SIGHUP"), "{}", r.body);
        }
    }
    assert_eq!(
        silences(&service),
        before,
        "a refused request changed the silences"
    );
    // Reads and probes stay open.
    for path in ["/metrics", "/livez", "/readyz", "/api/silences"] {
        assert_eq!(
            http("GET", &service.admin, path, "").unwrap().0,
            200,
            "{path}"
        );
    }
    assert!(!log_lines(&service, "admin request refused").is_empty());
    // SIGHUP still reloads the file.
    let hup = Command::new("kill")
        .arg("-HUP")
        .arg(service.child.id().to_string())
        .status()
        .unwrap();
    assert!(hup.success());
    let reloads = wait_log(
        &service,
        "config reloaded (sources, destinations and [service] changes need a restart)",
        Duration::from_secs(30),
    );
    assert_eq!(reloads[0]["origin"], "SIGHUP");
    assert!(service.terminate(Duration::from_secs(30)).success());
}

#[test]
fn writes_need_the_configured_token_and_are_audited() {
    let dir = tempfile::tempdir().unwrap();
    let mut service = start(dir.path(), WITH_TOKEN, STDOUT, &[]);
    let before = silences(&service);
    let file_silence = before[0]["id"].as_str().unwrap().to_owned();
    let delete = format!("/api/silences/{file_silence}");
    let attack = mute_everything("s-mallory", "mallory");

    // No credentials, the wrong token, another scheme: 401 with a Bearer challenge, nothing changed.
    let wrong = format!("Bearer {TOKEN}x");
    let basic = format!("Basic {TOKEN}");
    let truncated = format!("Bearer {}", &TOKEN[..TOKEN.len() - 1]);
    for (method, path, body) in [
        ("POST", "/api/silences", attack.as_str()),
        ("DELETE", delete.as_str(), ""),
        ("POST", "/-/reload", ""),
    ] {
        for headers in [
            vec![],
            vec![("Authorization", wrong.as_str())],
            vec![("Authorization", truncated.as_str())],
            vec![("Authorization", basic.as_str())],
        ] {
            let r = http_with(method, &service.admin, path, &headers, body).unwrap();
            assert_eq!(r.status, 401, "{method} {path} {headers:?}: {}", r.body);
            let challenge = r.header("www-authenticate").unwrap_or_default();
            assert!(challenge.starts_with("Bearer"), "{challenge:?}");
        }
    }
    assert_eq!(
        silences(&service),
        before,
        "a refused request changed the silences"
    );

    // With the token: create, expire, reload.
    let silence = serde_json::json!({
        "id": "s-change-42",
        "matchers": ["rule=\"new-country-sign-in\"", "upn=\"bob@contoso.com\""],
        "starts_at": "2026-01-01T00:00:00Z",
        "ends_at": "2099-01-01T00:00:00Z",
        "author": "j.doe",
        "comment": "CHG-42",
        "created_at": "2026-01-01T00:00:00Z",
    })
    .to_string();
    let (status, body) =
        http_auth("POST", &service.admin, "/api/silences", TOKEN, &silence).unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&body).unwrap()["id"],
        "s-change-42"
    );
    // The scheme is case-insensitive.
    let lower = format!("bearer {TOKEN}");
    let r = http_with(
        "DELETE",
        &service.admin,
        "/api/silences/s-change-42",
        &[("Authorization", lower.as_str())],
        "",
    )
    .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    let after = silences(&service);
    assert_eq!(after.as_array().unwrap().len(), 2, "{after}");
    let made = after
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "s-change-42")
        .unwrap();
    assert_ne!(
        made["ends_at"], "2099-01-01T00:00:00Z",
        "not expired: {made}"
    );
    let (status, body) = http_auth("POST", &service.admin, "/-/reload", TOKEN, "").unwrap();
    assert_eq!(status, 200, "{body}");

    // The audit trail: who (author and address), from where, which matchers.
    let created = wait_log(&service, "silence created", Duration::from_secs(10));
    let c = &created[0];
    assert_eq!(c["silence"], "s-change-42");
    assert!(c["author"].as_str().unwrap().contains("j.doe"), "{c}");
    assert!(c["peer"].as_str().unwrap().starts_with("127.0.0.1:"), "{c}");
    assert!(
        c["matchers"].as_str().unwrap().contains("bob@contoso.com"),
        "{c}"
    );
    let expired = wait_log(&service, "silence expired", Duration::from_secs(10));
    let e = &expired[0];
    assert_eq!(e["silence"], "s-change-42");
    assert!(e["author"].as_str().unwrap().contains("j.doe"), "{e}");
    assert!(e["peer"].as_str().unwrap().starts_with("127.0.0.1:"), "{e}");
    assert!(
        e["matchers"]
            .as_str()
            .unwrap()
            .contains("new-country-sign-in"),
        "{e}"
    );
    let reloaded = wait_log(
        &service,
        "config reloaded (sources, destinations and [service] changes need a restart)",
        Duration::from_secs(10),
    );
    assert!(
        reloaded[0]["origin"]
            .as_str()
            .unwrap()
            .starts_with("127.0.0.1:"),
        "{}",
        reloaded[0]
    );
    // Reads stay open by default; the token never reaches the log.
    assert_eq!(http("GET", &service.admin, "/metrics", "").unwrap().0, 200);
    assert_eq!(
        http("GET", &service.admin, "/api/silences", "").unwrap().0,
        200
    );
    assert!(service.terminate(Duration::from_secs(30)).success());
    assert!(!service.logs().contains(TOKEN), "the token reached the log");
}

#[test]
fn metrics_token_required_guards_the_reads_but_not_the_probes() {
    let dir = tempfile::tempdir().unwrap();
    let extra = format!("{WITH_TOKEN}\nmetrics_token_required = true");
    let mut service = start(dir.path(), &extra, STDOUT, &[]);
    for path in ["/metrics", "/api/silences"] {
        let r = http_with("GET", &service.admin, path, &[], "").unwrap();
        assert_eq!(r.status, 401, "{path}: {}", r.body);
        assert!(r.header("www-authenticate").unwrap().starts_with("Bearer"));
        let (status, body) = http_auth("GET", &service.admin, path, TOKEN, "").unwrap();
        assert_eq!(status, 200, "{path}: {body}");
    }
    let (_, metrics) = http_auth("GET", &service.admin, "/metrics", TOKEN, "").unwrap();
    assert!(metrics.contains("entrawatch_ready 1"), "{metrics}");
    for path in ["/livez", "/readyz"] {
        assert_eq!(
            http("GET", &service.admin, path, "").unwrap().0,
            200,
            "{path}"
        );
    }
    assert!(service.terminate(Duration::from_secs(30)).success());
}

/// Reads an HTTP answer from `s` until the end of its head and as much body as arrived (bounded).
fn read_answer(s: &mut TcpStream, timeout: Duration) -> Reply {
    s.set_read_timeout(Some(timeout)).unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if out.is_empty() => panic!("no answer: {e}"),
            Err(_) => break,
        }
        if out.len() > 64 * 1024 {
            break;
        }
    }
    parse_reply(&out).unwrap_or_else(|| panic!("not HTTP: {:?}", String::from_utf8_lossy(&out)))
}

#[test]
fn a_64_mib_body_gets_413_and_memory_stays_small() {
    const MIB: usize = 1024 * 1024;
    const BIG: usize = 64 * MIB;
    let dir = tempfile::tempdir().unwrap();
    let mut service = start(dir.path(), WITH_TOKEN, STDOUT, &[]);
    let addr: std::net::SocketAddr = service.admin.parse().unwrap();
    let chunk = vec![b'x'; MIB];

    for _ in 0..3 {
        // Content-Length beyond the limit: refused from the head, before a byte of the body.
        let mut s = TcpStream::connect(addr).unwrap();
        write!(
            s,
            "POST /api/silences HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\nContent-Length: {BIG}\r\n\r\n"
        )
        .unwrap();
        let r = read_answer(&mut s, Duration::from_secs(30));
        assert_eq!(r.status, 413, "{}", r.body);
        // Sending the body anyway goes nowhere (the server has closed; bounded in count).
        for _ in 0..BIG / MIB {
            if s.write_all(&chunk).is_err() {
                break;
            }
        }

        // Chunked: counted as it arrives, refused past 1 MiB, while the client is still sending.
        let mut s = TcpStream::connect(addr).unwrap();
        write!(
            s,
            "POST /api/silences HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        .unwrap();
        let mut writer = s.try_clone().unwrap();
        let sender = std::thread::spawn(move || {
            let chunk = vec![b'x'; MIB];
            for _ in 0..BIG / MIB {
                let sent = write!(writer, "{:x}\r\n", chunk.len())
                    .and_then(|()| writer.write_all(&chunk))
                    .and_then(|()| writer.write_all(b"\r\n"));
                if sent.is_err() {
                    return;
                }
            }
            let _ = writer.write_all(b"0\r\n\r\n");
        });
        let r = read_answer(&mut s, Duration::from_secs(30));
        assert_eq!(r.status, 413, "{}", r.body);
        drop(s);
        sender.join().unwrap();

        // Without the token the body is not even looked at.
        let mut s = TcpStream::connect(addr).unwrap();
        write!(
            s,
            "POST /api/silences HTTP/1.1\r\nHost: x\r\nContent-Length: {BIG}\r\n\r\n"
        )
        .unwrap();
        let r = read_answer(&mut s, Duration::from_secs(30));
        assert_eq!(r.status, 401, "{}", r.body);
    }

    let rss = rss_bytes(service.child.id());
    assert!(
        rss < 200 * MIB as u64,
        "entrawatch holds {} MiB after refusing large bodies",
        rss / MIB as u64
    );
    // Nothing was created, and the service still answers.
    assert_eq!(silences(&service).as_array().unwrap().len(), 1);
    assert_eq!(http("GET", &service.admin, "/readyz", "").unwrap().0, 200);
    assert!(service.terminate(Duration::from_secs(30)).success());
}

/// Whether the server closed `s` within `timeout` (end of stream or a reset, rather than nothing).
fn closed_within(s: &mut TcpStream, timeout: Duration) -> bool {
    s.set_read_timeout(Some(timeout)).unwrap();
    let mut buf = [0u8; 1024];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return false;
            }
            Err(_) => return true,
        }
    }
}

#[test]
fn half_open_connections_stop_neither_delivery_nor_the_probes() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::ok();
    let url = receiver.url();
    let mut service = start(
        dir.path(),
        WITH_TOKEN,
        WEBHOOK,
        &[("EW_TEST_WEBHOOK_URL", url.as_str())],
    );
    let addr: std::net::SocketAddr = service.admin.parse().unwrap();
    // The demo's logs, staged outside the drop folder: moved in at once while the flood is held.
    let staged = dir.path().join("staged");
    copy_tree(&root().join("examples/demo"), &staged);

    // 500 connections that send part of a request line, then nothing.
    let mut held = Vec::new();
    for i in 0..500 {
        let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
            .unwrap_or_else(|e| panic!("connection {i}: {e}"));
        // The server may already have closed an older one to make room: a failed write is fine.
        let _ = s.write_all(b"GET /readyz HTT");
        held.push(s);
    }

    // While they are held: the probes answer, an authenticated write works, and events dropped into
    // the file source reach the webhook.
    assert_eq!(http("GET", &service.admin, "/readyz", "").unwrap().0, 200);
    assert_eq!(http("GET", &service.admin, "/livez", "").unwrap().0, 200);
    std::fs::rename(&staged, dir.path().join("drop/demo")).unwrap();
    assert!(
        receiver.wait_for(Duration::from_secs(120), |r| !delivered_alert_ids(r)
            .is_empty()),
        "no alert delivered while half-open connections were held:\n{}",
        service.logs()
    );
    assert_eq!(http("GET", &service.admin, "/readyz", "").unwrap().0, 200);
    let (status, body) = http_auth("POST", &service.admin, "/-/reload", TOKEN, "").unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(!log_lines(&service, "admin connection limit reached: closed the oldest connection still waiting for its request").is_empty());

    // A stalled request head, and a stalled body, are timed out by the server (bounded waits).
    let mut head = TcpStream::connect(addr).unwrap();
    head.write_all(b"GET /readyz HTT").unwrap();
    assert!(
        closed_within(&mut head, Duration::from_secs(60)),
        "a half-sent request head was never timed out"
    );
    let mut body = TcpStream::connect(addr).unwrap();
    write!(
        body,
        "POST /api/silences HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\nContent-Length: 100\r\n\r\n{{\"id\":"
    )
    .unwrap();
    let r = read_answer(&mut body, Duration::from_secs(60));
    assert_eq!(r.status, 408, "{}", r.body);

    drop(held);
    assert_eq!(http("GET", &service.admin, "/readyz", "").unwrap().0, 200);
    assert!(service.terminate(Duration::from_secs(30)).success());
}

/// CPU time (user + system) of process `pid` so far, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command name (which is in parentheses and may hold spaces).
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after the name.
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

#[test]
fn at_the_descriptor_limit_the_accept_loop_waits_instead_of_spinning() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), WITH_TOKEN, STDOUT);
    let port = free_port();
    let admin = format!("127.0.0.1:{port}");
    let log = dir.path().join("log.jsonl");
    // A low descriptor limit for the service alone, so that admin connections exhaust it.
    let child = Command::new("bash")
        .arg("-c")
        .arg(r#"ulimit -Sn 48 && exec "$0" "$@""#)
        .arg(env!("CARGO_BIN_EXE_entrawatch"))
        .args(["run", "--config"])
        .arg(&config)
        .env("ENTRAWATCH_SERVICE__ADMIN_LISTEN", &admin)
        .env("EW_TEST_ADMIN_TOKEN", TOKEN)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let mut service = Service {
        child,
        admin: admin.clone(),
        log,
    };
    service.wait_ready(Duration::from_secs(60));
    let pid = service.child.id();
    let addr: std::net::SocketAddr = admin.parse().unwrap();

    // More stalled connections than descriptors are left: the rest wait in the listen queue and
    // accept fails with EMFILE until the held ones time out.
    let mut held = Vec::new();
    for _ in 0..60 {
        let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
        let _ = s.write_all(b"GET /readyz HTT");
        held.push(s);
    }
    wait_log(
        &service,
        "admin server cannot accept connections; retrying",
        Duration::from_secs(30),
    );
    let window = Duration::from_secs(3);
    let before = cpu_ticks(pid);
    std::thread::sleep(window);
    let used = cpu_ticks(pid) - before;
    // A spinning accept loop burns a whole core (about 100 ticks a second); waiting uses next to
    // nothing. Half a core is the line.
    assert!(
        used < 150,
        "entrawatch used {used} CPU ticks in {window:?} at the descriptor limit"
    );

    // Once the clients go, the server recovers (bounded wait).
    drop(held);
    let deadline = Instant::now() + Duration::from_secs(60);
    while http("GET", &service.admin, "/readyz", "").map(|r| r.0) != Some(200) {
        assert!(
            Instant::now() < deadline,
            "no /readyz after the descriptors were freed:\n{}",
            service.logs()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(service.terminate(Duration::from_secs(30)).success());
}
