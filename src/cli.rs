//! Command-line interface.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Bad arguments, unreadable input paths or unwritable outputs.
pub const EXIT_ERROR: u8 = 1;
/// Not all the input was read: under `replay --strict`, a record or file could not be parsed or a
/// path could not be read; for `run`, a source stopped with an error or could not read what it was
/// given.
pub const EXIT_INCOMPLETE: u8 = 2;

/// Watches Microsoft Entra ID sign-in, audit and risk logs and tells a SOC what CSP security best
/// practices forbid or an attacker would do.
#[derive(Debug, Parser)]
#[command(name = "entrawatch", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Read exported logs (files or folders), run detection in event-time order, write alerts.
    Replay(ReplayArgs),
    /// List the detectors, or explain one: `entrawatch rules mfa-not-satisfied`.
    Rules(RulesArgs),
    /// Run the service: sources, detection, durable delivery, admin HTTP (metrics, health).
    Run(RunArgs),
    /// Check a config file: every problem listed at once (exit 1), secrets and routes included;
    /// a config without sources or destinations is checked as one for `replay`.
    Validate(ValidateArgs),
    /// Post a test message to one destination and report what it answered.
    SendTest(SendTestArgs),
    /// Generate a labelled simulated CSP world (Event Hub envelopes, Graph pages, labels), and
    /// optionally evaluate detection against its labels.
    Simulate(entrawatch_sim::simulate::SimulateArgs),
    /// Measure the replay against a parse-only reference on a large simulated world (events/s,
    /// MB/s, their ratio, peak memory, state bytes per principal), or with `--latency` the service's
    /// latency from a record's arrival to its webhook POST; see docs/PERFORMANCE-RESULTS.md.
    Bench(entrawatch_sim::bench::BenchArgs),
    /// Sigma rules: `entrawatch sigma check DIR` reports, rule by rule, whether it runs here.
    Sigma(SigmaArgs),
}

#[derive(Debug, Args)]
pub struct SigmaArgs {
    #[command(subcommand)]
    pub command: SigmaCommand,
}

#[derive(Debug, Subcommand)]
pub enum SigmaCommand {
    /// Per rule: native, aliased (both run), unknown field, placeholder, unsupported logsource,
    /// unsupported, parse error; then totals. Exit 1 when a folder cannot be read.
    Check {
        /// Rule folders (recursive `.yml`) or files.
        #[arg(required = true, value_name = "DIR")]
        paths: Vec<PathBuf>,
        /// Exit 1 when any rule does not run.
        #[arg(long)]
        strict: bool,
    },
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The config file (TOML).
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
    /// Exit once every source has finished and the outbox has nothing left to send: for one-shot
    /// backfills with `follow = false` file sources, and tests. Status 0, or 2 when a source
    /// stopped with an error or could not read all it was given (what it read is delivered).
    #[arg(long)]
    pub exit_when_done: bool,
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// The config file (TOML).
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
    /// Also connect: for each Kafka or Event Hub source, reach the brokers, find every topic and
    /// read the consumer group's offsets (nothing is created, committed or joined); for each Graph
    /// source, get a token for every tenant and make one `$top=1` request per stream, and print a
    /// table (ok, no consent, bad credential, no licence, no permission, throttled, network).
    /// Exits 1 when any check fails.
    #[arg(long)]
    pub online: bool,
}

#[derive(Debug, Args)]
pub struct SendTestArgs {
    /// The config file (TOML).
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
    /// The destination's name in the config.
    #[arg(long, value_name = "NAME")]
    pub destination: String,
}

#[derive(Debug, Args)]
pub struct RulesArgs {
    /// A rule id to explain in full.
    pub id: Option<String>,
}

#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// Files or folders to read (folders recursively; `-` reads standard input). Accepted: Graph
    /// JSON (v1.0/beta; entity, page, NDJSON), Event Hub envelopes or records, Log Analytics CSV/JSON.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,

    /// Tenant GUID for records that carry none (Graph audits, v1.0 sign-ins); without it, the nearest
    /// parent folder named by a tenant GUID is used.
    #[arg(long, value_name = "GUID")]
    pub tenant: Option<String>,

    /// Write alert records (JSON lines) here instead of standard output.
    #[arg(long, value_name = "FILE")]
    pub alerts: Option<PathBuf>,

    /// Write the run summary as JSON here.
    #[arg(long, value_name = "FILE")]
    pub summary_json: Option<PathBuf>,

    /// Write the normalised events, after ordering and de-duplication, as JSON lines here (what
    /// entrawatch understood of the input, in the order detection saw it).
    #[arg(long, value_name = "FILE")]
    pub events: Option<PathBuf>,

    /// Write every record that could not be used, with its position and reason, as JSON lines here.
    #[arg(long, value_name = "FILE")]
    pub rejects: Option<PathBuf>,

    /// Exit with status 2 when any record could not be parsed or any path could not be read
    /// (unreadable, or more than 32 folders deep); everything readable is still read.
    #[arg(long)]
    pub strict: bool,

    /// No progress display and no summary on standard error.
    #[arg(long, short)]
    pub quiet: bool,

    /// Detection config (TOML): partner tenants, break-glass accounts, privileged principals,
    /// allow lists, thresholds, tenant names.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Sigma rule folder (recursive `.yml`), run beside the native detectors; repeatable, added
    /// to the config's `[sigma]` paths.
    #[arg(long, value_name = "DIR")]
    pub sigma: Vec<PathBuf>,

    /// Largest single record accepted, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = entrawatch_ingest::reader::DEFAULT_MAX_RECORD_BYTES)]
    pub max_record_bytes: usize,

    /// Memory the events read may take before they are sorted and written to disk in runs, then
    /// merged (bytes, or with a unit: 512M, 2G; K, M and G are powers of 1024). An input that fits
    /// is ordered in memory; the files being read (one per core) come on top.
    #[arg(long, value_name = "SIZE", default_value = "1G", value_parser = entrawatch_ingest::ordered::parse_size)]
    pub memory_budget: u64,

    /// Folder for the sorted runs (a fresh folder is made inside it and removed at the end);
    /// the system's temporary folder by default.
    #[arg(long, value_name = "DIR")]
    pub spill_dir: Option<PathBuf>,
}
