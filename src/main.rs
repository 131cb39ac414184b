//! The `entrawatch` binary: command line, wiring of ingest → detect → alert, and exit codes.

mod cli;
mod config;
mod progress;
mod replay;
mod rules;
mod simulate;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let result = match cli.command {
        cli::Command::Replay(args) => replay::run(args),
        cli::Command::Rules(args) => rules::run(args),
        cli::Command::Simulate(args) => simulate::run(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("entrawatch: error: {e:#}");
            ExitCode::from(cli::EXIT_ERROR)
        }
    }
}
