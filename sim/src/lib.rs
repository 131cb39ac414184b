//! entrawatch tools: a labelled CSP world to test detection against, and the benchmarks.
//!
//! What comes in: sizes and a seed, or a folder of logs to measure. What goes out: a simulated
//! world on disk (Event Hub captures, Graph pages, directory context, the config it needs and one
//! label per injected attack), detection scored against those labels, and figures of speed,
//! memory and latency.
//!
//! - [`simulate`]: `entrawatch simulate`, the deterministic world and, with `--eval`, its replay
//!   through [`entrawatch_alert::replay`] scored per detector.
//! - [`bench`]: `entrawatch bench`, the replay against a parse-only reference and the state at
//!   scale, or with `--latency` the service (`entrawatch run` as a child process) from a record's
//!   arrival at a Kafka-protocol broker to the webhook POST it causes.
//!
//! The binary links this crate for those two subcommands; the service, detection and delivery
//! crates never depend on it. Config files are the binary's to load: it hands its loader in as
//! [`LoadConfig`], so a world's `entrawatch.toml` is read exactly as `entrawatch replay` reads it.

pub mod bench;
pub mod simulate;

use std::path::Path;

use entrawatch_alert::replay::ReplayConfig;

/// Reads, interpolates and validates a config file as `entrawatch replay --config` does, and
/// gives what a replay needs of it.
pub type LoadConfig = dyn Fn(&Path) -> anyhow::Result<ReplayConfig>;
