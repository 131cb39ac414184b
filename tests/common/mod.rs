//! Test harness for the whole binary: a scriptable HTTP receiver bound to 127.0.0.1:0 that records
//! every request, a tiny HTTP client for the admin endpoints, and helpers to start `entrawatch run`
//! with its logs kept in a file.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

pub fn entrawatch() -> Command {
    Command::new(env!("CARGO_BIN_EXE_entrawatch"))
}

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("receiver got JSON")
    }
}

/// What the receiver answers: status and body, by request number (0-based).
pub type Script = Arc<dyn Fn(usize, &Received) -> (u16, String) + Send + Sync>;

/// A local HTTP receiver (webhook, Teams or Slack stand-in) on its own thread.
pub struct Receiver {
    pub addr: SocketAddr,
    pub got: Arc<Mutex<Vec<Received>>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Receiver {
    /// Answers 200 `ok` to everything.
    pub fn ok() -> Receiver {
        Receiver::start(Arc::new(|_, _| (200, "ok".to_owned())))
    }

    pub fn start(script: Script) -> Receiver {
        let got: Arc<Mutex<Vec<Received>>> = Arc::default();
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread_got = Arc::clone(&got);
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                addr_tx.send(listener.local_addr().unwrap()).unwrap();
                let mut stop_rx = stop_rx;
                loop {
                    let (stream, _) = tokio::select! {
                        a = listener.accept() => a.unwrap(),
                        _ = &mut stop_rx => return,
                    };
                    let got = Arc::clone(&thread_got);
                    let script = Arc::clone(&script);
                    tokio::spawn(async move {
                        let svc = service_fn(move |req: Request<hyper::body::Incoming>| {
                            let got = Arc::clone(&got);
                            let script = Arc::clone(&script);
                            async move {
                                let path = req.uri().path().to_owned();
                                let headers = req
                                    .headers()
                                    .iter()
                                    .map(|(k, v)| {
                                        (k.to_string(), v.to_str().unwrap_or("").to_owned())
                                    })
                                    .collect();
                                let body = req.into_body().collect().await.unwrap().to_bytes();
                                let r = Received {
                                    path,
                                    headers,
                                    body: body.to_vec(),
                                };
                                let n = {
                                    let mut g = got.lock().unwrap();
                                    g.push(r.clone());
                                    g.len() - 1
                                };
                                let (status, text) = script(n, &r);
                                Ok::<_, std::convert::Infallible>(
                                    Response::builder()
                                        .status(status)
                                        .body(Full::new(Bytes::from(text)))
                                        .unwrap(),
                                )
                            }
                        });
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), svc)
                            .await;
                    });
                }
            });
        });
        let addr = addr_rx.recv_timeout(Duration::from_secs(10)).unwrap();
        Receiver {
            addr,
            got,
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    pub fn requests(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }

    /// Waits (bounded) until `pred` holds over the requests so far.
    pub fn wait_for(&self, timeout: Duration, pred: impl Fn(&[Received]) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if pred(&self.got.lock().unwrap()) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        pred(&self.got.lock().unwrap())
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `GET`/`POST` over plain HTTP/1.1; returns (status, body). `None` when nothing answers.
pub fn http(method: &str, addr: &str, path: &str, body: &str) -> Option<(u16, String)> {
    http_with(method, addr, path, &[], body).map(|r| (r.status, r.body))
}

/// [`http`] with `Authorization: Bearer <token>`.
pub fn http_auth(
    method: &str,
    addr: &str,
    path: &str,
    token: &str,
    body: &str,
) -> Option<(u16, String)> {
    let auth = format!("Bearer {token}");
    http_with(method, addr, path, &[("Authorization", &auth)], body).map(|r| (r.status, r.body))
}

/// An HTTP answer.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    /// Header lines as (name, value), names as sent.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// [`http`] with extra request headers, returning the whole answer. `None` when nothing answers.
pub fn http_with(
    method: &str,
    addr: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Option<Reply> {
    let mut s = TcpStream::connect_timeout(&addr.parse().ok()?, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let extra: String = headers
        .iter()
        .map(|(k, v)| format!("{k}: {v}\r\n"))
        .collect();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\n{extra}Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).ok()?;
    let mut out = Vec::new();
    s.read_to_end(&mut out).ok()?;
    parse_reply(&out)
}

/// An HTTP/1.1 answer's status, headers and body (not chunked).
pub fn parse_reply(raw: &[u8]) -> Option<Reply> {
    let text = String::from_utf8_lossy(raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split_whitespace().nth(1)?.parse().ok()?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    Some(Reply {
        status,
        headers,
        body: body.to_owned(),
    })
}

/// Resident memory of process `pid` in bytes (`VmRSS` of `/proc/<pid>/status`).
pub fn rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no VmRSS in /proc/{pid}/status"));
    kib * 1024
}

/// A running `entrawatch run`, its logs in `log`.
pub struct Service {
    pub child: Child,
    pub admin: String,
    pub log: PathBuf,
}

impl Service {
    pub fn start(config: &Path, admin_port: u16, log: &Path, extra: &[&str]) -> Service {
        Service::start_env(config, admin_port, log, extra, &[])
    }

    /// [`Service::start`] with extra environment variables for the child.
    pub fn start_env(
        config: &Path,
        admin_port: u16,
        log: &Path,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Service {
        let log_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap();
        let child = entrawatch()
            .arg("run")
            .arg("--config")
            .arg(config)
            .args(extra)
            .env(
                "ENTRAWATCH_SERVICE__ADMIN_LISTEN",
                format!("127.0.0.1:{admin_port}"),
            )
            .envs(env.iter().copied())
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .unwrap();
        Service {
            child,
            admin: format!("127.0.0.1:{admin_port}"),
            log: log.to_owned(),
        }
    }

    /// Waits until `/readyz` answers 200 (bounded).
    pub fn wait_ready(&mut self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some((200, _)) = http("GET", &self.admin, "/readyz", "") {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "entrawatch exited with {status} before ready:\n{}",
                    self.logs()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("entrawatch not ready in {timeout:?}:\n{}", self.logs());
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then the exit status (bounded wait).
    pub fn terminate(&mut self, timeout: Duration) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        self.wait(timeout)
    }

    pub fn wait(&mut self, timeout: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.kill9();
        panic!("entrawatch did not exit in {timeout:?}:\n{}", self.logs());
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.kill9();
        }
    }
}

/// Path as a TOML string literal.
pub fn toml_path(p: &Path) -> String {
    toml::Value::String(p.display().to_string()).to_string()
}

/// The alert ids `entrawatch replay --config CONFIG PATH` raises.
pub fn replay_alert_ids(config: &Path, path: &Path) -> std::collections::BTreeSet<String> {
    replay_alerts(config, path, &[])
        .iter()
        .map(|a| a["id"].as_str().unwrap().to_owned())
        .collect()
}

/// The alerts `entrawatch replay --config CONFIG PATH EXTRA...` prints, in order.
pub fn replay_alerts(
    config: &Path,
    path: &Path,
    extra: &[&std::ffi::OsStr],
) -> Vec<serde_json::Value> {
    let out = entrawatch()
        .args(["replay", "--quiet", "--config"])
        .arg(config)
        .arg(path)
        .args(extra)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Every alert id in the webhook envelopes a receiver got (all grouped alerts of each message).
pub fn delivered_alert_ids(requests: &[Received]) -> std::collections::BTreeSet<String> {
    requests
        .iter()
        .flat_map(|r| {
            r.json()["alerts"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .map(|a| a["id"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        })
        .collect()
}

/// A tiny deterministic generator (the test must be reproducible from its seed).
pub struct Lcg(pub u64);

impl Lcg {
    pub fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }
}

/// The value of a metric line (`name{labels} value`), summed over label sets.
pub fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(name) && !l.starts_with('#'))
        .filter(|l| {
            let rest = &l[name.len()..];
            rest.starts_with('{') || rest.starts_with(' ')
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// (notification id, alert id) of every notification in every request, in arrival order.
pub fn notifications(requests: &[Received]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for r in requests {
        let v = r.json();
        let alerts = v["alerts"].as_array().cloned().unwrap_or_default();
        let ids = v["notification_ids"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        for (i, a) in alerts.iter().enumerate() {
            let n = ids
                .get(i)
                .and_then(|x| x.as_str())
                .map(str::to_owned)
                .unwrap_or_else(|| format!("{}#{}", a["id"].as_str().unwrap(), v["kind"]));
            out.push((n, a["id"].as_str().unwrap().to_owned()));
        }
    }
    out
}

/// A producer to a Kafka-protocol broker on loopback (large messages allowed).
pub fn producer(bootstrap: &str) -> rdkafka::producer::BaseProducer {
    rdkafka::ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("message.max.bytes", "10000000")
        .create()
        .unwrap()
}

/// Produces `messages` to `topic`, each to its partition (or keyed by its index, for the
/// partitioner to place), waiting on a full local queue; returns once the broker has them all.
pub fn produce(
    producer: &rdkafka::producer::BaseProducer,
    topic: &str,
    messages: &[(Option<i32>, String)],
) {
    use rdkafka::producer::{BaseRecord, Producer as _};
    for (i, (partition, m)) in messages.iter().enumerate() {
        let key = format!("k{i}");
        loop {
            let mut record = BaseRecord::to(topic).key(&key).payload(m);
            if let Some(p) = partition {
                record = record.partition(*p);
            }
            match producer.send(record) {
                Ok(()) => break,
                Err((e, _)) => {
                    assert!(
                        matches!(
                            e,
                            rdkafka::error::KafkaError::MessageProduction(
                                rdkafka::types::RDKafkaErrorCode::QueueFull
                            )
                        ),
                        "{e}"
                    );
                    producer.poll(Duration::from_millis(50));
                }
            }
        }
        producer.poll(Duration::ZERO);
    }
    producer.flush(Duration::from_secs(30)).unwrap();
}

/// `entrawatch simulate` of a small CSP world (10 days, 6 tenants of 8 users, 2 technicians) into
/// `dir/world`; returns that folder (its `entrawatch.toml`, `eventhub/`, `graph/`, labels).
pub fn simulate_world(dir: &Path, seed: u64) -> PathBuf {
    let world = dir.join("world");
    let out = entrawatch()
        .args(["simulate", "--seed", &seed.to_string(), "--days", "10"])
        .args([
            "--tenants",
            "6",
            "--users-per-tenant",
            "8",
            "--technicians",
            "2",
            "--out",
        ])
        .arg(&world)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    world
}

/// Every Event Hub record in the envelope files under `folder`, in event-time order.
pub fn eventhub_records(folder: &Path) -> Vec<serde_json::Value> {
    let mut records = Vec::new();
    let mut stack = vec![folder.to_owned()];
    while let Some(p) = stack.pop() {
        for entry in std::fs::read_dir(&p).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            for line in text.lines().filter(|l| !l.trim().is_empty()) {
                let v: serde_json::Value = serde_json::from_str(line).unwrap();
                records.extend(v["records"].as_array().cloned().unwrap_or_default());
            }
        }
    }
    // Event Hub writes `time` as ISO 8601 for most categories and as `10/24/2026 1:14:37 PM` for
    // the risk ones: order by the instant, as Entra sends records roughly in event-time order.
    records.sort_by_key(event_time);
    records
}

/// The instant of a record's envelope `time`, in either form Event Hub writes it.
pub fn event_time(record: &serde_json::Value) -> chrono::DateTime<chrono::Utc> {
    let raw = record["time"].as_str().unwrap_or("").trim();
    chrono::DateTime::parse_from_rfc3339(raw)
        .map(|t| t.to_utc())
        .or_else(|_| {
            chrono::NaiveDateTime::parse_from_str(raw, "%m/%d/%Y %I:%M:%S %p").map(|t| t.and_utc())
        })
        .unwrap_or_else(|e| panic!("record time {raw:?}: {e}"))
}

/// A folder of real exports beside every hazard a walk can meet, and a folder of the same exports
/// alone, to compare with.
pub struct Hazards {
    /// `in/`: a copy of the bundled demo under `demo/`, a link loop `self -> .`, a named pipe
    /// `pipe.json`, a link to itself `loop.json` (unreadable whoever reads it) and a folder
    /// `locked/` with mode 000 holding one more export.
    pub input: PathBuf,
    /// `readable/`: the demo copy under `demo/`, and `locked/`'s export when this user can read
    /// it anyway.
    pub readable: PathBuf,
    /// Whether `locked/` is unreadable here (root reads it whatever its mode).
    pub locked_unreadable: bool,
}

impl Hazards {
    /// Paths that cannot be read under `input`.
    pub fn unreadable_paths(&self) -> u64 {
        1 + u64::from(self.locked_unreadable)
    }
}

impl Drop for Hazards {
    fn drop(&mut self) {
        // Leave the tree removable.
        set_mode(&self.input.join("locked"), 0o755);
    }
}

pub fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode));
}

pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// Builds [`Hazards`] in `dir`.
pub fn hazard_folder(dir: &Path) -> Hazards {
    let input = dir.join("in");
    let readable = dir.join("readable");
    for d in [&input, &readable] {
        copy_tree(&root().join("examples/demo"), &d.join("demo"));
    }
    std::os::unix::fs::symlink(".", input.join("self")).unwrap();
    std::os::unix::fs::symlink("loop.json", input.join("loop.json")).unwrap();
    let made = Command::new("mkfifo")
        .arg(input.join("pipe.json"))
        .status()
        .expect("mkfifo (coreutils) is needed");
    assert!(made.success());
    // One more export in the locked folder: a Contoso sign-in, so the folder holds real records.
    let locked = input
        .join("locked")
        .join("11111111-aaaa-4aaa-8aaa-111111111111");
    std::fs::create_dir_all(&locked).unwrap();
    std::fs::copy(
        root().join("ingest/tests/fixtures/real/entra-docs/eventhub_signinlogs_record.json"),
        locked.join("record.json"),
    )
    .unwrap();
    set_mode(&input.join("locked"), 0o000);
    let locked_unreadable = std::fs::read_dir(input.join("locked")).is_err();
    if !locked_unreadable {
        eprintln!(
            "note: a folder with mode 000 is readable here (running as root): the unreadable-folder \
             part is not checked; the link that cannot be resolved (loop.json) still is"
        );
        copy_tree(&input.join("locked"), &readable.join("locked"));
    }
    Hazards {
        input,
        readable,
        locked_unreadable,
    }
}

/// Waits for `child` at most `limit`; kills it and fails the test past that (what is checked is
/// that it ends, not how fast).
pub fn wait_bounded(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("entrawatch did not finish in {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The tenants of `examples/demo` and the partner tenant, as the demo config names them.
pub const DEMO_TENANTS: &str = r#"
[[tenants]]
id = "11111111-aaaa-4aaa-8aaa-111111111111"
name = "Contoso"
[[tenants]]
id = "22222222-bbbb-4bbb-8bbb-222222222222"
name = "Fabrikam"
[[tenants]]
id = "44444444-dddd-4ddd-8ddd-444444444444"
name = "Tailspin Toys"
[[tenants]]
id = "33333333-cccc-4ccc-8ccc-333333333333"
name = "Northwind CSP"
[detect]
partner_tenants = ["33333333-cccc-4ccc-8ccc-333333333333"]
"#;
