//! The `entrawatch` binary: command line, wiring of ingest → detect → alert, and exit codes.

mod bench;
mod cli;
mod config;
mod progress;
mod replay;
mod rules;
mod run;
mod send_test;
mod simulate;
mod validate;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let result = match cli.command {
        cli::Command::Replay(args) => replay::run(args),
        cli::Command::Rules(args) => rules::run(args),
        cli::Command::Simulate(args) => simulate::run(args),
        cli::Command::Run(args) => run::run(args),
        cli::Command::Validate(args) => validate::run(args),
        cli::Command::SendTest(args) => send_test::run(args),
        cli::Command::Bench(args) => bench::run(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("entrawatch: error: {e:#}");
            ExitCode::from(cli::EXIT_ERROR)
        }
    }
}
