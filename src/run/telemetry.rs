//! Logs through `tracing`: JSON lines in production (or whenever standard error is not a
//! terminal), readable text on a terminal. Secrets never reach a log: they are held in
//! `entrawatch_ingest::secret::Secret`, whose `Debug` and `Display` print `<redacted>`, and URLs of
//! destinations are never logged, only destination names.

use std::io::IsTerminal as _;

use tracing_subscriber::EnvFilter;

use entrawatch_config::LogFormat;

/// Installs the global subscriber; `level` is a level or a full filter directive. `RUST_LOG`, when
/// set, wins.
pub fn init(format: LogFormat, level: &str) -> anyhow::Result<()> {
    let filter = match std::env::var("RUST_LOG") {
        Ok(f) if !f.is_empty() => EnvFilter::try_new(f)?,
        _ => EnvFilter::try_new(level)
            .map_err(|e| anyhow::anyhow!("service.log_level: {level:?}: {e}"))?,
    };
    let json = match format {
        LogFormat::Json => true,
        LogFormat::Text => false,
        LogFormat::Auto => !std::io::stderr().is_terminal(),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let result = if json {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init()
    } else {
        builder.with_target(false).try_init()
    };
    result.map_err(|e| anyhow::anyhow!("cannot install the logger: {e}"))
}
