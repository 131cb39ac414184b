//! Command-line interface.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Bad arguments, unreadable input paths or unwritable outputs.
pub const EXIT_ERROR: u8 = 1;
/// `--strict` and at least one record could not be parsed.
pub const EXIT_PARSE_ERRORS: u8 = 2;

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

    /// Exit with status 2 when any record could not be parsed.
    #[arg(long)]
    pub strict: bool,

    /// No progress display and no summary on standard error.
    #[arg(long, short)]
    pub quiet: bool,

    /// Largest single record accepted, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = entrawatch_ingest::reader::DEFAULT_MAX_RECORD_BYTES)]
    pub max_record_bytes: usize,
}
