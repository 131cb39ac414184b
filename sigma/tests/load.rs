//! Loading rule folders: bounded, symlinks not followed, filters, duplicates, bad files reported
//! without stopping the others.

use std::path::Path;

use entrawatch_sigma::{MAX_FILE_BYTES, SigmaConfig, Status, load, report};

fn rule(id: &str, level: &str, tags: &[&str], status: &str) -> String {
    let tags: String = tags.iter().map(|t| format!("    - {t}\n")).collect();
    format!(
        "title: Rule {id}\nid: {id}\nstatus: {status}\nlevel: {level}\ntags:\n{tags}logsource:\n    product: azure\n    service: signinlogs\ndetection:\n    selection:\n        ResultType: 50053\n    condition: selection\n"
    )
}

fn write(dir: &Path, name: &str, text: &str) {
    let path = dir.join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

fn status_of<'a>(loaded: &'a entrawatch_sigma::Loaded, path: &str) -> &'a Status {
    &loaded
        .entries
        .iter()
        .find(|e| e.path == path)
        .unwrap_or_else(|| panic!("no entry {path}: {}", report(loaded)))
        .status
}

#[test]
fn folders_are_walked_with_bounds_and_filters() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(
        d,
        "a/one.yml",
        &rule("one", "high", &["attack.t1078"], "stable"),
    );
    write(
        d,
        "a/b/two.yaml",
        &rule("two", "low", &["attack.t1110"], "test"),
    );
    write(d, "a/zdup.yml", &rule("one", "high", &[], "stable"));
    write(d, "big.yml", &"#".repeat(MAX_FILE_BYTES as usize + 1));
    write(d, "bad.yml", "title: [unclosed\n");
    write(d, "notes.txt", "not a rule");
    let outside = tempfile::tempdir().unwrap();
    write(
        outside.path(),
        "three.yml",
        &rule("three", "high", &[], "stable"),
    );
    #[cfg(unix)]
    std::os::unix::fs::symlink(outside.path(), d.join("link")).unwrap();

    let all = load(&SigmaConfig {
        paths: vec![d.to_path_buf()],
        ..SigmaConfig::default()
    });
    assert!(all.problems.is_empty(), "{:?}", all.problems);
    assert_eq!(all.rules.len(), 2, "{}", report(&all));
    assert_eq!(status_of(&all, "a/one.yml"), &Status::Native);
    assert!(
        matches!(status_of(&all, "a/zdup.yml"), Status::ParseError(e) if e.contains("same id"))
    );
    assert!(
        matches!(status_of(&all, "big.yml"), Status::ParseError(e) if e.contains("larger than"))
    );
    assert!(matches!(status_of(&all, "bad.yml"), Status::ParseError(_)));
    assert!(
        all.entries.iter().all(|e| e.id != "three"),
        "a link was followed"
    );
    assert!(all.entries.iter().all(|e| !e.path.ends_with(".txt")));

    let filtered = load(&SigmaConfig {
        paths: vec![d.to_path_buf()],
        exclude_tags: vec!["attack.t1110".into()],
        levels: vec!["HIGH".into()],
        ..SigmaConfig::default()
    });
    assert_eq!(filtered.rules.len(), 1);
    assert_eq!(filtered.rules[0].meta.id, "one");
    assert_eq!(
        status_of(&filtered, "a/b/two.yaml"),
        &Status::Excluded("tag excluded")
    );
    let only = load(&SigmaConfig {
        paths: vec![d.to_path_buf()],
        include_ids: vec!["two".into()],
        ..SigmaConfig::default()
    });
    assert_eq!(only.rules.len(), 1);
    assert_eq!(only.rules[0].meta.id, "two");

    let missing = load(&SigmaConfig {
        paths: vec![d.join("nope")],
        ..SigmaConfig::default()
    });
    assert_eq!(missing.problems.len(), 1);
    assert!(missing.problems[0].contains("nope"));
}

#[test]
fn a_walk_stops_past_its_depth() {
    let dir = tempfile::tempdir().unwrap();
    let mut deep = dir.path().to_path_buf();
    for i in 0..=entrawatch_sigma::MAX_DEPTH + 1 {
        deep.push(format!("d{i}"));
    }
    write(&deep, "r.yml", &rule("deep", "high", &[], "stable"));
    let loaded = load(&SigmaConfig {
        paths: vec![dir.path().to_path_buf()],
        ..SigmaConfig::default()
    });
    assert!(loaded.rules.is_empty());
    assert_eq!(loaded.problems.len(), 1);
    assert!(
        loaded.problems[0].contains("deeper than"),
        "{:?}",
        loaded.problems
    );
}
