//! `entrawatch validate --config FILE`: exactly what `run` does to a config before it starts
//! (interpolation, `ENTRAWATCH_*` overrides, parsing every section, validation, reading every
//! secret, building sources and routes), reporting every problem at once without starting anything.
//! With `--online` it also connects each Kafka or Event Hub source and checks what it will read.

use std::process::ExitCode;

use crate::cli::{EXIT_ERROR, ValidateArgs};

/// How long each online check may wait for a broker.
const ONLINE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Runs the online checks of every Kafka and Event Hub source; prints one line per check and
/// returns whether they all passed.
fn online(config: &crate::config::FileConfig) -> bool {
    use entrawatch_ingest::sources::SourceConfig;
    use entrawatch_ingest::sources::kafka::KafkaSource;
    let mut ok = true;
    for (i, source) in config.sources.iter().enumerate() {
        let built = match source {
            SourceConfig::Kafka(c) => KafkaSource::new(c.clone()),
            SourceConfig::Eventhub(c) => KafkaSource::from_event_hub(c.clone()),
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

pub fn run(args: ValidateArgs) -> anyhow::Result<ExitCode> {
    let config = match crate::config::load(&args.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e:#}");
            return Ok(ExitCode::from(EXIT_ERROR));
        }
    };
    let problems = config.deep_check();
    if !problems.is_empty() {
        eprintln!(
            "config {} has {} problem(s):\n  {}",
            args.config.display(),
            problems.len(),
            problems.join("\n  ")
        );
        return Ok(ExitCode::from(EXIT_ERROR));
    }
    if args.online && !online(&config) {
        return Ok(ExitCode::from(EXIT_ERROR));
    }
    println!(
        "config {} is valid: {} tenant(s), {} source(s), {} destination(s), {} silence(s), {} inhibit rule(s)",
        args.config.display(),
        config.tenants.len(),
        config.sources.len(),
        config.destinations.len(),
        config.silences.len(),
        config.inhibit_rules.len()
    );
    Ok(ExitCode::SUCCESS)
}
