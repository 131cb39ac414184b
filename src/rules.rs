//! `entrawatch rules`: the detector catalogue and each detector's documentation.

use std::process::ExitCode;

use anyhow::bail;
use entrawatch_detect::registry;

use crate::cli::RulesArgs;

/// The first sentence of a doc's "What it detects" section.
fn synopsis(doc: &str) -> String {
    let section = doc.split("## What it detects").nth(1).unwrap_or(doc);
    let text: String = section
        .lines()
        .skip_while(|l| l.trim().is_empty())
        .take_while(|l| !l.trim().is_empty() && !l.starts_with("##"))
        .collect::<Vec<_>>()
        .join(" ");
    let sentence = match text.find(". ") {
        Some(i) => &text[..=i],
        None => text.as_str(),
    };
    match sentence.char_indices().nth(88) {
        Some((cut, _)) => format!("{}…", sentence[..cut].trim_end()),
        None => sentence.to_owned(),
    }
}

pub fn run(args: RulesArgs) -> anyhow::Result<ExitCode> {
    let all = registry::all();
    match args.id {
        None => {
            println!("{:<34} {:<9} what it detects", "rule", "severity");
            for d in &all {
                println!(
                    "{:<34} {:<9} {}",
                    d.id(),
                    d.default_severity().as_str(),
                    synopsis(d.doc())
                );
            }
            println!("\n{} rules. `entrawatch rules ID` explains one.", all.len());
        }
        Some(id) => {
            let Some(d) = all.iter().find(|d| d.id() == id) else {
                let known = all.iter().map(|d| d.id()).collect::<Vec<_>>().join(", ");
                bail!("unknown rule {id:?}; known rules: {known}");
            };
            println!(
                "# {} (default severity: {})\n\n{}",
                d.id(),
                d.default_severity().as_str(),
                d.doc().trim_end()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
