//! The `entrawatch` binary: command line, wiring of ingest → detect → alert, and exit codes.

mod cli;
mod progress;
mod replay;
mod rules;
mod run;
mod send_test;
mod sigma;
mod validate;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let result = match cli.command {
        cli::Command::Replay(args) => replay::run(args),
        cli::Command::Rules(args) => rules::run(args),
        cli::Command::Simulate(args) => entrawatch_sim::simulate::run(args, &load_replay_config),
        cli::Command::Run(args) => run::run(args),
        cli::Command::Validate(args) => validate::run(args),
        cli::Command::SendTest(args) => send_test::run(args),
        cli::Command::Bench(args) => entrawatch_sim::bench::run(args, &load_replay_config),
        cli::Command::Sigma(args) => sigma::run(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("entrawatch: error: {e:#}");
            ExitCode::from(cli::EXIT_ERROR)
        }
    }
}

/// The config loader the tools take: the file read and checked as `replay --config` reads it.
fn load_replay_config(
    path: &std::path::Path,
) -> anyhow::Result<entrawatch_alert::replay::ReplayConfig> {
    let config = entrawatch_config::load(path)?;
    let mut replay = config.replay_config();
    replay.extra_rules = sigma::rules(config.sigma.as_ref(), &[], true)?;
    Ok(replay)
}
