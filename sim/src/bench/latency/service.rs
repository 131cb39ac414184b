//! The service under test: its config, the child process (killed on drop), its admin endpoints,
//! its figures in `/proc`, and the Prometheus histograms it serves.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use serde::Serialize;

/// The environment variable the child reads the webhook URL from (`url` is a secret reference).
pub const URL_VAR: &str = "ENTRAWATCH_BENCH_WEBHOOK_URL";
/// Linux `USER_HZ`: the unit of CPU times in `/proc/<pid>/stat`.
const CLOCK_TICKS_PER_SECOND: f64 = 100.0;
/// Name of the webhook destination in the generated config.
pub const DESTINATION: &str = "bench";

/// What the generated config says about the path under test.
#[derive(Debug, Clone, Serialize)]
pub struct Settings {
    pub topic: String,
    pub partitions: i32,
    pub batch_max: usize,
    pub batch_wait_ms: u64,
    /// Whether `batch_wait_ms` is the Kafka source's default.
    pub batch_wait_is_default: bool,
    pub fetch_wait_max_ms: u64,
    pub group_wait_secs: u64,
    pub webhook_rate_per_sec: f64,
    pub webhook_burst: u32,
    pub snapshot_interval_secs: u64,
    pub shutdown_grace_secs: u64,
    /// The aligner's out-of-orderness bound: every event waits until each partition is this far
    /// past it, so it adds to the latency measured.
    pub out_of_order_secs: i64,
}

/// A TOML string literal.
fn toml_string(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

/// Writes the service's config into `dir` and returns its path.
pub fn write_config(
    dir: &Path,
    bootstrap: &str,
    admin: SocketAddr,
    s: &Settings,
    load: &crate::LoadConfig,
) -> anyhow::Result<PathBuf> {
    let state = dir.join("state");
    let text = format!(
        r#"# Written by `entrawatch bench --latency` for one run.
[service]
state_dir = {state}
admin_listen = "{admin}"
log_format = "json"
snapshot_interval_secs = {snapshot}
shutdown_grace_secs = {grace}
out_of_order_secs = {out_of_order}
# Once the load stops, the partitions are idle after a second and the aligner releases its tail.
idle_source_secs = 1

[[sources]]
type = "kafka"
name = "bench"
brokers = {bootstrap}
topics = [{topic}]
group_id = "entrawatch-bench-latency"
dead_letter_file = {dead}
batch_max = {batch_max}
batch_wait_ms = {batch_wait}
settings = {{ "fetch.wait.max.ms" = "{fetch_wait}" }}

[[destinations]]
type = "webhook"
name = "{DESTINATION}"
url = {{ env = "{URL_VAR}" }}
rate_per_sec = {rate:.1}
burst = {burst}

[route]
receivers = ["{DESTINATION}"]
group_wait_secs = {group_wait}
"#,
        state = toml_string(&state.display().to_string()),
        dead = toml_string(&dir.join("dead-letters.jsonl").display().to_string()),
        bootstrap = toml_string(bootstrap),
        topic = toml_string(&s.topic),
        snapshot = s.snapshot_interval_secs,
        grace = s.shutdown_grace_secs,
        out_of_order = s.out_of_order_secs,
        batch_max = s.batch_max,
        batch_wait = s.batch_wait_ms,
        fetch_wait = s.fetch_wait_max_ms,
        rate = s.webhook_rate_per_sec,
        burst = s.webhook_burst,
        group_wait = s.group_wait_secs,
    );
    let path = dir.join("entrawatch.toml");
    std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    // The same checks `entrawatch validate` makes, before a child is started on it.
    load(&path).context("the generated service config is not valid")?;
    Ok(path)
}

/// A free loopback address for the child's admin server (free a moment ago).
pub fn free_loopback() -> anyhow::Result<SocketAddr> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")
        .context("cannot find a free loopback port for the service's admin server")?;
    Ok(listener.local_addr()?)
}

/// `entrawatch run` as a child process; killed (SIGKILL) and reaped when dropped unless it has
/// exited.
#[derive(Debug)]
pub struct ServiceChild {
    child: Child,
    pub admin: SocketAddr,
    pub log: PathBuf,
}

impl ServiceChild {
    pub fn spawn(
        config: &Path,
        admin: SocketAddr,
        log: &Path,
        webhook_url: &str,
    ) -> anyhow::Result<ServiceChild> {
        let exe = std::env::current_exe().context("cannot find the entrawatch executable")?;
        let log_file = std::fs::File::create(log)
            .with_context(|| format!("cannot create the service log {}", log.display()))?;
        let child = Command::new(&exe)
            .arg("run")
            .arg("--config")
            .arg(config)
            .env(URL_VAR, webhook_url)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .with_context(|| format!("cannot start {} run", exe.display()))?;
        Ok(ServiceChild {
            child,
            admin,
            log: log.to_owned(),
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Fails when the child has exited.
    pub fn check_alive(&mut self) -> anyhow::Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!(
                "the service exited early ({status}); its log ends:\n{}",
                self.log_tail()
            );
        }
        Ok(())
    }

    /// Waits until `/readyz` answers 200.
    pub fn wait_ready(&mut self, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            self.check_alive()?;
            if let Ok((200, _)) = get(self.admin, "/readyz") {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        bail!(
            "the service was not ready within {timeout:?}; its log ends:\n{}",
            self.log_tail()
        )
    }

    pub fn metrics(&self) -> anyhow::Result<String> {
        match get(self.admin, "/metrics") {
            Ok((200, text)) => Ok(text),
            Ok((status, _)) => bail!("GET /metrics of the service answered {status}"),
            Err(e) => Err(e.context("GET /metrics of the service failed")),
        }
    }

    /// SIGTERM, then waits for the exit (the `kill` command: the workspace forbids `unsafe`, and
    /// std can only send SIGKILL). Returns the status and how long the stop took, or `None` when
    /// it did not exit in time (it is then killed).
    pub fn terminate(&mut self, timeout: Duration) -> anyhow::Result<(Option<ExitStatus>, f64)> {
        let started = Instant::now();
        let pid = self.pid().to_string();
        let sent = Command::new("kill")
            .args(["-TERM", &pid])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .context("cannot run `kill -TERM` to stop the service")?;
        if !sent.success() {
            if let Some(status) = self.child.try_wait()? {
                return Ok((Some(status), 0.0));
            }
            bail!("`kill -TERM {pid}` failed ({sent})");
        }
        while started.elapsed() < timeout {
            if let Some(status) = self.child.try_wait()? {
                return Ok((Some(status), started.elapsed().as_secs_f64()));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        Ok((None, started.elapsed().as_secs_f64()))
    }

    /// The last lines of the service's log.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// Lines of the service's log at level ERROR and WARN.
    pub fn log_levels(&self) -> (u64, u64) {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let count = |level: &str| {
            let needle = format!("\"level\":\"{level}\"");
            text.lines().filter(|l| l.contains(&needle)).count() as u64
        };
        (count("ERROR"), count("WARN"))
    }
}

impl Drop for ServiceChild {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// What `/proc` says of a process: peak resident memory (MB) and CPU seconds (user + system).
pub fn proc_figures(pid: u32) -> (Option<f64>, Option<f64>) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok();
    let peak = status.as_deref().and_then(|s| {
        s.lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .map(|kb| kb / 1024.0)
    });
    let cpu = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            let rest = stat.rsplit_once(')')?.1;
            let fields: Vec<&str> = rest.split_whitespace().collect();
            let ticks = |i: usize| fields.get(i)?.parse::<f64>().ok();
            // After `)`: utime and stime are fields 14 and 15 of the file, indexes 11 and 12 here.
            Some((ticks(11)? + ticks(12)?) / CLOCK_TICKS_PER_SECOND)
        });
    (peak, cpu)
}

/// `GET path` over HTTP/1.1 with `Connection: close`; returns (status, body).
pub fn get(addr: SocketAddr, path: &str) -> anyhow::Result<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    s.set_write_timeout(Some(Duration::from_secs(10)))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut out = Vec::new();
    s.read_to_end(&mut out)?;
    let text = String::from_utf8_lossy(&out);
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .context("not an HTTP response")?;
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let chunked = head.lines().any(|l| {
        l.to_ascii_lowercase()
            .starts_with("transfer-encoding: chunked")
    });
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_owned()
    };
    Ok((status, body))
}

/// The body of a chunked HTTP/1.1 response.
fn dechunk(mut rest: &str) -> String {
    let mut out = String::new();
    while let Some((size, after)) = rest.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || after.len() < n {
            break;
        }
        out.push_str(&after[..n]);
        rest = after[n..].strip_prefix("\r\n").unwrap_or(&after[n..]);
    }
    out
}

/// The value of a sample line `name{labels} value`, summed over the label sets that contain
/// every one of `labels` (`key="value"`).
pub fn metric_sum(text: &str, name: &str, labels: &[&str]) -> f64 {
    samples(text, name)
        .filter(|(l, _)| labels.iter().all(|want| l.contains(want)))
        .map(|(_, v)| v)
        .sum()
}

/// (labels, value) of every sample of `name`.
fn samples<'a>(text: &'a str, name: &'a str) -> impl Iterator<Item = (&'a str, f64)> + 'a {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(move |l| {
            let rest = l.strip_prefix(name)?;
            let (labels, value) = match rest.strip_prefix('{') {
                Some(r) => {
                    let (labels, v) = r.split_once('}')?;
                    (labels, v)
                }
                None if rest.starts_with(' ') => ("", rest),
                None => return None,
            };
            Some((labels, value.trim().parse::<f64>().ok()?))
        })
}

/// A Prometheus histogram as scraped: cumulative bucket counts by upper bound, sum and count.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Histogram {
    pub buckets: Vec<(f64, f64)>,
    pub sum: f64,
    pub count: f64,
}

impl Histogram {
    /// The histogram `name` from a scrape, restricted to the series carrying `labels`.
    pub fn parse(text: &str, name: &str, labels: &[&str]) -> Histogram {
        let bucket = format!("{name}_bucket");
        let mut buckets: Vec<(f64, f64)> = Vec::new();
        for (l, v) in samples(text, &bucket) {
            if !labels.iter().all(|want| l.contains(want)) {
                continue;
            }
            let Some(le) = l
                .split(',')
                .find_map(|kv| kv.trim().strip_prefix("le=\""))
                .and_then(|s| s.strip_suffix('"'))
            else {
                continue;
            };
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                match le.parse() {
                    Ok(x) => x,
                    Err(_) => continue,
                }
            };
            match buckets.iter_mut().find(|(b, _)| *b == le) {
                Some((_, c)) => *c += v,
                None => buckets.push((le, v)),
            }
        }
        buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
        Histogram {
            buckets,
            sum: metric_sum(text, &format!("{name}_sum"), labels),
            count: metric_sum(text, &format!("{name}_count"), labels),
        }
    }

    /// `self - earlier`: what was observed between two scrapes.
    pub fn since(&self, earlier: &Histogram) -> Histogram {
        let before = |le: f64| {
            earlier
                .buckets
                .iter()
                .find(|(b, _)| *b == le)
                .map_or(0.0, |(_, c)| *c)
        };
        Histogram {
            buckets: self
                .buckets
                .iter()
                .map(|(le, c)| (*le, c - before(*le)))
                .collect(),
            sum: self.sum - earlier.sum,
            count: self.count - earlier.count,
        }
    }

    /// The q-quantile estimated as Prometheus' `histogram_quantile` does: linear within the
    /// bucket it falls in (the bound below the first bucket is 0); `None` without observations,
    /// the highest finite bound when it falls in the `+Inf` bucket.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let total = self.buckets.last().map(|(_, c)| *c)?;
        if total <= 0.0 {
            return None;
        }
        let rank = q * total;
        let mut lower = (0.0, 0.0);
        for &(le, c) in &self.buckets {
            if c >= rank {
                if le.is_infinite() {
                    return Some(lower.0);
                }
                let within = c - lower.1;
                let frac = if within > 0.0 {
                    (rank - lower.1) / within
                } else {
                    1.0
                };
                return Some(lower.0 + (le - lower.0) * frac);
            }
            lower = (le, c);
        }
        Some(lower.0)
    }

    /// The share of observations at or below `le` (one of the bucket bounds).
    pub fn share_at_most(&self, le: f64) -> Option<f64> {
        let total = self.buckets.last().map(|(_, c)| *c)?;
        let at = self.buckets.iter().find(|(b, _)| *b == le)?.1;
        (total > 0.0).then(|| at / total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCRAPE: &str = r#"# HELP x_seconds a histogram
# TYPE x_seconds histogram
x_seconds_bucket{destination="a",le="0.1"} 2
x_seconds_bucket{destination="a",le="0.25"} 6
x_seconds_bucket{destination="a",le="+Inf"} 8
x_seconds_sum{destination="a"} 1.5
x_seconds_count{destination="a"} 8
x_seconds_bucket{destination="b",le="0.1"} 100
x_seconds_bucket{destination="b",le="0.25"} 100
x_seconds_bucket{destination="b",le="+Inf"} 100
x_seconds_sum{destination="b"} 1
x_seconds_count{destination="b"} 100
plain_total 7
"#;

    #[test]
    fn histograms_are_read_per_series_and_their_quantiles_interpolate_like_prometheus() {
        let h = Histogram::parse(SCRAPE, "x_seconds", &["destination=\"a\""]);
        assert_eq!(
            h.buckets,
            vec![(0.1, 2.0), (0.25, 6.0), (f64::INFINITY, 8.0)]
        );
        assert_eq!((h.sum, h.count), (1.5, 8.0));
        // rank 4 of 8: halfway through the (0.1, 0.25] bucket.
        assert!((h.quantile(0.5).unwrap() - 0.175).abs() < 1e-9);
        // rank 7.92: in +Inf, reported as the highest finite bound.
        assert_eq!(h.quantile(0.99), Some(0.25));
        assert_eq!(h.share_at_most(0.25), Some(0.75));
        let both = Histogram::parse(SCRAPE, "x_seconds", &[]);
        assert_eq!(both.count, 108.0);
        let later = Histogram::parse(SCRAPE, "x_seconds", &[]);
        let none = later.since(&both);
        assert_eq!(none.count, 0.0);
        assert_eq!(none.quantile(0.5), None);
        assert_eq!(metric_sum(SCRAPE, "plain_total", &[]), 7.0);
        assert_eq!(metric_sum(SCRAPE, "x_seconds_count", &[]), 108.0);
    }

    #[test]
    fn chunked_bodies_are_joined() {
        assert_eq!(dechunk("3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"), "abcde");
    }
}
