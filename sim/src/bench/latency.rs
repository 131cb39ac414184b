//! `entrawatch bench --latency`: how long a record takes from its arrival at the source to the
//! webhook POST it causes, with the real service under sustained load, all on loopback.
//!
//! What comes in: [`LatencyArgs`]. What goes out: a table on standard output, or with `--json`
//! one JSON document ([`report::LatencyReport`]). One run, in order:
//! 1. a Kafka-protocol broker in this process (librdkafka's mock cluster, one topic of
//!    `--partitions` partitions) and a webhook [`receiver`] on 127.0.0.1:0 that notes when each
//!    POST's headers arrived;
//! 2. a config for them ([`service::write_config`]: a `kafka` source, a `webhook` destination whose
//!    rate limit is raised out of the way, a route with `group_wait_secs = 0`) and `entrawatch run`
//!    on it as a child process, started from this executable, until `/readyz` answers;
//! 3. a first probe, to see the whole path work (consumer group joined, receiver reached);
//! 4. warm-up (`--warmup-seconds`, not counted), then the sustained phase (`--seconds`):
//!    background sign-ins at `--rate` records/s in Event Hub envelopes of up to ten, and probes at
//!    `--probes-per-sec`, each a sign-in that makes the service send a webhook of its own
//!    ([`records`]). A probe's arrival is the moment the broker confirmed its delivery to the
//!    producer; its latency ends when the receiver got the POST naming its record id;
//! 5. up to [`measure::DRAIN_WAIT`] for the last probes, a scrape of the service's `/metrics`, its
//!    peak memory and CPU from `/proc`, then SIGTERM and a bounded wait for its exit.
//!
//! The child is killed on every error path ([`service::ServiceChild`] kills it on drop), and every
//! wait is bounded. The mock broker keeps about 5 MB per partition: a consumer that falls that far
//! behind loses records, which shows as missing probes and fewer events processed, never a hang.
//!
//! The files, in the order a record meets them: [`records`] writes the background sign-ins and the
//! probes; [`measure`] produces them to the broker and drives the phases above; [`service`] writes
//! the config and runs the child that consumes them; [`receiver`] takes the webhook POSTs they
//! cause; [`report`] turns the probes' times and the service's figures into quantiles, the table
//! and the JSON document.

mod measure;
mod receiver;
mod records;
mod report;
mod service;

use std::process::ExitCode;

use anyhow::{Context as _, bail};
use chrono::Utc;

use crate::LoadConfig;

/// Options of `entrawatch bench --latency` (flattened into [`super::BenchArgs`]).
#[derive(Debug, Clone, clap::Args)]
pub struct LatencyArgs {
    /// Measure service-mode latency instead: `entrawatch run` reading a Kafka-protocol broker in
    /// this process, posting to a webhook receiver in this process; p50/p90/p99/max from a
    /// record's arrival at the broker to its webhook POST.
    #[arg(
        long = "latency",
        conflicts_with_all = ["world", "out", "scale", "tenants", "compare_tenants", "principals", "seed", "reps"]
    )]
    pub enabled: bool,
    /// Latency run: seconds of the sustained (measured) phase.
    #[arg(long, default_value_t = 60, requires = "enabled")]
    pub seconds: u64,
    /// Latency run: seconds of load before it, not counted.
    #[arg(long, default_value_t = 5, requires = "enabled")]
    pub warmup_seconds: u64,
    /// Latency run: background sign-ins per second (they raise no alert).
    #[arg(long, default_value_t = 2000, requires = "enabled")]
    pub rate: u64,
    /// Latency run: probes per second (sign-ins that each raise an alert and a webhook POST).
    #[arg(long, default_value_t = 5, requires = "enabled")]
    pub probes_per_sec: u64,
    /// Latency run: partitions of the topic.
    #[arg(long, default_value_t = 4, requires = "enabled")]
    pub partitions: i32,
    /// Latency run: the Kafka source's `batch_wait_ms` (default: the source's own default, 10 ms).
    #[arg(long, requires = "enabled")]
    pub batch_wait_ms: Option<u64>,
    /// Latency run: the consumer's `fetch.wait.max.ms`. The mock broker holds a fetch that finds
    /// nothing for this long even when records arrive meanwhile (a real broker answers at once),
    /// so librdkafka's default of 500 would measure the mock; 10 keeps its share small.
    #[arg(long, default_value_t = 10, requires = "enabled")]
    pub fetch_wait_ms: u64,
}

pub fn run(args: &LatencyArgs, json: bool, load: &LoadConfig) -> anyhow::Result<ExitCode> {
    check(args)?;
    let dir = std::env::temp_dir().join(format!(
        "entrawatch-bench-latency-{}-{}",
        std::process::id(),
        Utc::now().timestamp_micros()
    ));
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let report = match measure::measure(args, &dir, load) {
        Ok(r) => r,
        Err(e) => {
            return Err(e.context(format!(
                "latency run failed (its config and the service log are kept in {})",
                dir.display()
            )));
        }
    };
    let _ = std::fs::remove_dir_all(&dir);
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report::render(&report));
    }
    if report.service.exit_code != Some(0) {
        anyhow::bail!(
            "the service did not exit 0 after SIGTERM (exit code {:?})",
            report.service.exit_code
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn check(a: &LatencyArgs) -> anyhow::Result<()> {
    if !(1..=3600).contains(&a.seconds) {
        bail!("--seconds must be 1 to 3600");
    }
    if a.warmup_seconds > 600 {
        bail!("--warmup-seconds must be at most 600");
    }
    if !(1..=100_000).contains(&a.rate) {
        bail!("--rate must be 1 to 100000 records/s");
    }
    if !(1..=100).contains(&a.probes_per_sec) {
        bail!("--probes-per-sec must be 1 to 100 (each probe is a webhook POST)");
    }
    if !(1..=64).contains(&a.partitions) {
        bail!("--partitions must be 1 to 64");
    }
    if let Some(w) = a.batch_wait_ms
        && !(1..=60_000).contains(&w)
    {
        bail!("--batch-wait-ms must be 1 to 60000");
    }
    if !(1..=5000).contains(&a.fetch_wait_ms) {
        bail!("--fetch-wait-ms must be 1 to 5000");
    }
    Ok(())
}
