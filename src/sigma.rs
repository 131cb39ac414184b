//! `entrawatch sigma check`, and the Sigma rule set the replay and the service run beside the
//! native detectors (`[sigma]` in the config, `replay --sigma DIR`; docs/sigma.md).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::bail;
use entrawatch_detect::ExtraRules;
use entrawatch_sigma::{SigmaConfig, SigmaSet, load, report};

use crate::cli::{EXIT_ERROR, SigmaArgs, SigmaCommand};

pub fn run(args: SigmaArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        SigmaCommand::Check { paths, strict } => {
            let loaded = load(&SigmaConfig {
                paths,
                ..SigmaConfig::default()
            });
            print!("{}", report(&loaded));
            let all_run = loaded.entries.iter().all(|e| e.status.runs());
            if !loaded.problems.is_empty() || (strict && !all_run) {
                return Ok(ExitCode::from(EXIT_ERROR));
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The rules of `config` (plus `extra_paths`), ready for the engine; `None` when no folder is
/// given. Folders that cannot be read, and config problems, refuse the start, all listed.
pub fn rules(
    config: Option<&SigmaConfig>,
    extra_paths: &[PathBuf],
    quiet: bool,
) -> anyhow::Result<Option<Arc<dyn ExtraRules>>> {
    let mut config = config.cloned().unwrap_or_default();
    config.paths.extend(extra_paths.iter().cloned());
    if config.paths.is_empty() {
        return Ok(None);
    }
    let mut problems = config.validate();
    let loaded = load(&config);
    problems.extend(loaded.problems.iter().map(|p| format!("sigma: {p}")));
    if !problems.is_empty() {
        bail!("invalid sigma config:\n  {}", problems.join("\n  "));
    }
    let total = loaded.entries.len();
    let set = SigmaSet::from_loaded(loaded);
    let message = format!(
        "sigma: {} of {total} rules run (`entrawatch sigma check` says why the others do not)",
        set.len()
    );
    if !quiet {
        eprintln!("{message}");
    }
    tracing::info!("{message}");
    Ok(Some(Arc::new(set)))
}
