//! `entrawatch rules`: the detector catalogue and each detector's documentation.

use std::process::ExitCode;

use anyhow::bail;
use entrawatch_detect::registry;

use crate::cli::RulesArgs;

/// Characters of a rule's description in the list; a description that would read like another
/// rule's at this width is cut longer.
const SYNOPSIS_WIDTH: usize = 88;

/// The first sentence of a doc's "What it detects" section, without its asides in parentheses
/// (defaults, examples: `entrawatch rules ID` has them) and list markers.
fn first_sentence(doc: &str) -> String {
    let section = doc.split("## What it detects").nth(1).unwrap_or(doc);
    let text: String = section
        .lines()
        .skip_while(|l| l.trim().is_empty())
        .take_while(|l| !l.trim().is_empty() && !l.starts_with("##"))
        .map(|l| l.trim().trim_start_matches("- "))
        .collect::<Vec<_>>()
        .join(" ");
    let text = without_asides(&text);
    match text.find(". ") {
        Some(i) => text[..=i].to_owned(),
        None => text,
    }
}

/// `text` without its parenthesised asides (parentheses inside `code` are kept).
fn without_asides(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut depth = 0usize;
    let mut code = false;
    for c in text.chars() {
        match c {
            '`' if depth == 0 => {
                code = !code;
                out.push(c);
            }
            '(' if !code => depth += 1,
            ')' if !code && depth > 0 => depth -= 1,
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .replace(" ,", ",")
        .replace(" :", ":")
        .replace(" .", ".")
}

/// `sentence` cut at the last word boundary within `width` characters, with "…" when cut.
fn cut(sentence: &str, width: usize) -> String {
    if sentence.chars().count() <= width {
        return sentence.to_owned();
    }
    let end = sentence
        .char_indices()
        .nth(width)
        .map_or(sentence.len(), |(i, _)| i);
    let head = &sentence[..end];
    // A word that the limit splits is left out whole; a first word longer than the limit is cut.
    let head = match head.rfind(' ') {
        Some(space) if !sentence[end..].starts_with(' ') => &head[..space],
        _ => head,
    };
    format!("{}…", head.trim_end_matches([' ', ',', ';', ':']))
}

/// Each doc's first sentence, cut to [`SYNOPSIS_WIDTH`], or longer where two would be the same.
fn synopses(docs: &[&str]) -> Vec<String> {
    let sentences: Vec<String> = docs.iter().map(|d| first_sentence(d)).collect();
    let mut widths = vec![SYNOPSIS_WIDTH; sentences.len()];
    loop {
        let cuts: Vec<String> = sentences
            .iter()
            .zip(&widths)
            .map(|(s, w)| cut(s, *w))
            .collect();
        let mut longer = false;
        for (i, c) in cuts.iter().enumerate() {
            let same = cuts.iter().enumerate().any(|(j, o)| j != i && o == c);
            if same && widths[i] < sentences[i].chars().count() {
                widths[i] += 1;
                longer = true;
            }
        }
        if !longer {
            return cuts;
        }
    }
}

pub fn run(args: RulesArgs) -> anyhow::Result<ExitCode> {
    let all = registry::all();
    match args.id {
        None => {
            println!("{:<34} {:<9} what it detects", "rule", "severity");
            let docs: Vec<&str> = all.iter().map(|d| d.doc()).collect();
            for (d, synopsis) in all.iter().zip(synopses(&docs)) {
                println!(
                    "{:<34} {:<9} {}",
                    d.id(),
                    d.default_severity().as_str(),
                    synopsis
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
            if let Some(settings) = d.settings() {
                println!(
                    "\n## Settings\nIn the config, every key at its default:\n\n{}",
                    settings.defaults_toml(&format!("detect.rules.{}", d.id()))
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptions_are_cut_at_a_word_and_differ_per_rule() {
        let all = registry::all();
        let docs: Vec<&str> = all.iter().map(|d| d.doc()).collect();
        let synopses = synopses(&docs);
        for (s, doc) in synopses.iter().zip(&docs) {
            let full = first_sentence(doc);
            assert!(!s.is_empty(), "{doc}");
            match s.strip_suffix('…') {
                None => assert_eq!(s, &full),
                Some(head) => {
                    assert!(full.starts_with(head), "{s:?} is not a start of {full:?}");
                    let next = full[head.len()..].chars().next();
                    assert!(
                        matches!(next, Some(' ' | ',' | ';' | ':')),
                        "{s:?} cuts a word of {full:?}"
                    );
                }
            }
        }
        let distinct: std::collections::BTreeSet<&String> = synopses.iter().collect();
        assert_eq!(distinct.len(), synopses.len(), "{synopses:#?}");
    }

    #[test]
    fn descriptions_alike_at_the_width_are_cut_longer() {
        let start = "A successful interactive sign-in by a privileged principal who holds a role of the catalogue";
        let a = format!("## What it detects\n\n{start} from an unmanaged device. More.\n");
        let b = format!("## What it detects\n\n{start} with phishable MFA only. More.\n");
        let got = synopses(&[&a, &b]);
        assert_ne!(got[0], got[1]);
        assert!(
            got[0].contains("from") && got[1].contains("with"),
            "{got:?}"
        );
        assert_eq!(
            cut("one two three", 9),
            "one two…",
            "a word split by the width is left out whole"
        );
        assert_eq!(cut("one two, three", 8), "one two…");
        assert_eq!(without_asides("a (b, `c`) d `e(f)` g."), "a d `e(f)` g.");
    }
}
