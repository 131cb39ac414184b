//! `entrawatch validate --config FILE`: exactly what `run` does to a config before it starts
//! (interpolation, `ENTRAWATCH_*` overrides, parsing every section, validation, reading every
//! secret, building sources and routes), reporting every problem at once, each with the path of its
//! key, without starting anything: a section that does not parse hides neither the problems nor
//! the secrets of the others. A config with no sources and no destinations is valid for `replay`
//! (exit 0, and a line saying `run` needs both). With `--online` it also connects each Kafka or
//! Event Hub source and checks what it will read, and for each Graph source gets a token for every
//! tenant and makes one `$top=1` request per stream, printing a table (tenant, stream, ok / no
//! consent / bad credential / no licence / no permission / throttled / network); any check that
//! is not ok exits 1.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;

use crate::cli::{EXIT_ERROR, ValidateArgs};
use entrawatch_config::{self as config, Checked, FileConfig};

/// How long each online check may wait for a broker.
const ONLINE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Runs the online checks of every Kafka and Event Hub source; prints one line per check and
/// returns whether they all passed.
fn online(config: &FileConfig) -> bool {
    use entrawatch_ingest::sources::SourceConfig;
    use entrawatch_ingest::sources::kafka::KafkaSource;
    let mut ok = true;
    for (i, source) in config.sources.iter().enumerate() {
        let built = match source {
            SourceConfig::Kafka(c) => KafkaSource::new(c.clone()),
            SourceConfig::Eventhub(c) => KafkaSource::from_event_hub(c.clone()),
            SourceConfig::Graph(c) => {
                ok &= graph_online(&format!("sources[{i}] {}", c.name), c);
                continue;
            }
            other => {
                println!(
                    "sources[{i}] {} ({}): no online check for this type",
                    other.name(),
                    other.kind()
                );
                continue;
            }
        };
        let source_name = format!("sources[{i}] {}", source.name());
        match built {
            Ok(kafka) => {
                for check in kafka.check_online(ONLINE_TIMEOUT) {
                    match check {
                        Ok(line) => println!("{source_name}: ok      {line}"),
                        Err(line) => {
                            ok = false;
                            println!("{source_name}: FAILED  {line}");
                        }
                    }
                }
            }
            Err(e) => {
                ok = false;
                println!("{source_name}: FAILED  {e}");
            }
        }
    }
    ok
}

/// The online check of one Graph source: a table with one row per tenant and stream.
fn graph_online(source_name: &str, cfg: &entrawatch_ingest::sources::graph::GraphConfig) -> bool {
    use entrawatch_ingest::sources::graph::GraphSource;
    use entrawatch_ingest::sources::graph::check::Outcome;
    let source = match GraphSource::new(cfg.clone()) {
        Ok(s) => s,
        Err(problems) => {
            for p in problems {
                println!("{source_name}: FAILED  {p}");
            }
            return false;
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            println!("{source_name}: FAILED  cannot start the async runtime: {e}");
            return false;
        }
    };
    let rows = runtime.block_on(source.check_online(ONLINE_TIMEOUT));
    let header = ["tenant", "stream", "result", "detail"];
    let width = |f: &dyn Fn(&entrawatch_ingest::sources::graph::check::CheckRow) -> usize,
                 h: &str| { rows.iter().map(f).max().unwrap_or(0).max(h.len()) };
    let (wt, ws, wr) = (
        width(&|r| r.tenant.len(), header[0]),
        width(&|r| r.stream.len(), header[1]),
        width(&|r| r.outcome.label().len(), header[2]),
    );
    println!("{source_name}: online check, one token and one $top=1 request per tenant and stream");
    println!(
        "  {:wt$}  {:ws$}  {:wr$}  {}",
        header[0], header[1], header[2], header[3]
    );
    let mut previous: Option<(&str, &str)> = None;
    for r in &rows {
        // A tenant's repeated reason (a refused token answers every stream) is written once.
        let same = previous == Some((r.tenant_id.as_str(), r.detail.as_str()));
        let detail = if same && !r.detail.is_empty() {
            "as above"
        } else {
            r.detail.as_str()
        };
        previous = Some((r.tenant_id.as_str(), r.detail.as_str()));
        println!(
            "  {:wt$}  {:ws$}  {:wr$}  {}",
            r.tenant,
            r.stream,
            r.outcome.label(),
            detail
        );
    }
    let failed: Vec<_> = rows.iter().filter(|r| r.outcome != Outcome::Ok).collect();
    let mut tenants_failed: Vec<&str> = failed.iter().map(|r| r.tenant_id.as_str()).collect();
    tenants_failed.dedup();
    // The listed tenants, and (GDAP discovery) the partner and the customers found.
    let tenants = rows
        .iter()
        .map(|r| r.tenant_id.as_str())
        .collect::<std::collections::BTreeSet<_>>()
        .len()
        .max(cfg.tenants.len());
    if failed.is_empty() {
        println!(
            "{source_name}: ok      {tenants} tenant(s), {} check(s)",
            rows.len()
        );
        true
    } else {
        println!(
            "{source_name}: FAILED  {} of {} check(s), in {} of {} tenant(s)",
            failed.len(),
            rows.len(),
            tenants_failed.len(),
            tenants
        );
        false
    }
}

pub fn run(args: ValidateArgs) -> anyhow::Result<ExitCode> {
    let raw = match std::fs::read_to_string(&args.config) {
        Ok(raw) => raw,
        Err(e) => {
            eprintln!("cannot read config {}: {e}", args.config.display());
            return Ok(ExitCode::from(EXIT_ERROR));
        }
    };
    let env: BTreeMap<String, String> = std::env::vars().collect();
    let Checked { config, problems } = config::check(&raw, &env);
    let config = match config {
        Some(config) if problems.is_empty() => config,
        _ => {
            eprintln!("{:#}", config::report(&args.config, &problems));
            return Ok(ExitCode::from(EXIT_ERROR));
        }
    };
    // The Sigma rule folders are read as `run` reads them (a folder that cannot be read refuses
    // the start).
    if let Err(e) = crate::sigma::rules(config.sigma.as_ref(), &[], true) {
        eprintln!("{}: {e:#}", args.config.display());
        return Ok(ExitCode::from(EXIT_ERROR));
    }
    if args.online && !online(&config) {
        return Ok(ExitCode::from(EXIT_ERROR));
    }
    println!("{}", summary(&args.config, &config));
    Ok(ExitCode::SUCCESS)
}

/// The line `validate` prints for a config without problems.
fn summary(path: &Path, config: &FileConfig) -> String {
    if config.is_replay_only() {
        return format!(
            "config {} is valid for replay; `run` needs sources and destinations ({} tenant(s))",
            path.display(),
            config.tenants.len()
        );
    }
    format!(
        "config {} is valid: {} tenant(s), {} source(s), {} destination(s), {} silence(s), {} inhibit rule(s)",
        path.display(),
        config.tenants.len(),
        config.sources.len(),
        config.destinations.len(),
        config.silences.len(),
        config.inhibit_rules.len()
    )
}
