//! The `entrawatch` binary: command line, wiring of ingest → detect → alert, and exit codes.

mod cli;
mod progress;
mod replay;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let result = match cli.command {
        cli::Command::Replay(args) => replay::run(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("entrawatch: error: {e:#}");
            ExitCode::from(cli::EXIT_ERROR)
        }
    }
}
