//! `entrawatch validate --config FILE`: exactly what `run` does to a config before it starts
//! (interpolation, `ENTRAWATCH_*` overrides, parsing every section, validation, reading every
//! secret, building sources and routes), reporting every problem at once without starting anything.

use std::process::ExitCode;

use crate::cli::{EXIT_ERROR, ValidateArgs};

pub fn run(args: ValidateArgs) -> anyhow::Result<ExitCode> {
    let config = match crate::config::load(&args.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e:#}");
            return Ok(ExitCode::from(EXIT_ERROR));
        }
    };
    let problems = crate::run::deep_check(&config);
    if !problems.is_empty() {
        eprintln!(
            "config {} has {} problem(s):\n  {}",
            args.config.display(),
            problems.len(),
            problems.join("\n  ")
        );
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
