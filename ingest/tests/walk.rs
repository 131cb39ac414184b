//! The folder walk over a real tree on disk holding every hazard at once: a link loop, a named
//! pipe, a link that cannot be resolved and a folder without read permission, beside real exports.
//! The walk and the read end, read every readable record (the same counts as a tree of only the
//! readable files) and name what they passed over.

mod common;

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use common::{TENANT_A, fixture};
use entrawatch_ingest::ordered::read_ordered;
use entrawatch_ingest::{IngestStats, Item, ReadOptions, SkipReason, read_file, walk};

/// Runs `f` on its own thread and gives its result, or fails the test when it has not finished
/// within `limit`: what is checked is that it ends at all (a FIFO opened would block for ever).
fn ends<T: Send + 'static>(limit: Duration, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(limit)
        .unwrap_or_else(|_| panic!("still running after {limit:?}: it blocked or looped"))
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// Whether the running user can list `dir` (root can whatever its mode).
fn can_list(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok()
}

/// `in/`: real exports and every hazard; `readable/`: the same exports alone (and the locked
/// folder's file when this user can read it anyway). Returns whether `in/locked` is unreadable.
fn build(root: &Path) -> bool {
    let input = root.join("in");
    let readable = root.join("readable");
    for dir in [&input, &readable] {
        copy_tree(&fixture("real"), &dir.join("real"));
        copy_tree(&fixture("derived"), &dir.join("derived"));
    }
    std::os::unix::fs::symlink(".", input.join("self")).unwrap();
    std::os::unix::fs::symlink("loop.json", input.join("loop.json")).unwrap();
    let made = std::process::Command::new("mkfifo")
        .arg(input.join("pipe.json"))
        .status()
        .expect("mkfifo (coreutils) is needed");
    assert!(made.success());
    let locked = input.join("locked");
    std::fs::create_dir(&locked).unwrap();
    std::fs::copy(
        fixture("real/entra-docs/eventhub_signinlogs_record.json"),
        locked.join("record.json"),
    )
    .unwrap();
    set_mode(&locked, 0o000);
    let unreadable = !can_list(&locked);
    if !unreadable {
        eprintln!(
            "note: {} is readable with mode 000 (running as root): the unreadable-folder part is \
             not checked here; the link that cannot be resolved still is",
            locked.display()
        );
        copy_tree(&locked, &readable.join("locked"));
    }
    unreadable
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn read(files: Vec<PathBuf>) -> IngestStats {
    let opts = ReadOptions {
        tenant: Some(TENANT_A.to_owned()),
        ..ReadOptions::default()
    };
    ends(Duration::from_secs(120), move || {
        read_ordered(&files, &opts, &Default::default(), &mut |_| {}, &mut |_| {})
            .expect("in memory")
            .stats
    })
}

#[test]
fn a_tree_with_every_hazard_is_walked_and_read_to_the_end() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let unreadable = build(&root);

    let input = root.join("in");
    let walked = ends(Duration::from_secs(60), move || walk(&[input]));
    let reasons: Vec<(String, &str)> = walked
        .skipped
        .iter()
        .map(|s| {
            (
                s.path
                    .strip_prefix(root.join("in"))
                    .unwrap()
                    .display()
                    .to_string(),
                s.reason.as_str(),
            )
        })
        .collect();
    let mut want = vec![
        ("loop.json".to_owned(), "unreadable"),
        ("pipe.json".to_owned(), "fifo"),
        ("self".to_owned(), "already-walked"),
    ];
    if unreadable {
        want.insert(0, ("locked".to_owned(), "unreadable"));
    }
    assert_eq!(reasons, want, "{:#?}", walked.skipped);
    let errors: Vec<String> = walked.errors().map(ToString::to_string).collect();
    assert_eq!(errors.len(), 1 + usize::from(unreadable), "{errors:#?}");
    assert!(
        errors[errors.len() - 1].contains("loop.json: cannot read: "),
        "{errors:#?}"
    );
    if unreadable {
        assert!(errors[0].contains("locked: cannot read: "), "{errors:#?}");
    }

    let readable = walk(&[root.join("readable")]);
    assert_eq!(readable.skipped, vec![]);
    assert_eq!(walked.files.len(), readable.files.len());
    let got = read(walked.files.clone());
    let want = read(readable.files);
    assert!(got.records_read > 50, "{got:#?}");
    assert_eq!(got.records_read, want.records_read);
    assert_eq!(got.records_by_kind, want.records_by_kind);
    assert_eq!(got.parse_errors, 0, "{:#?}", got.first_errors);

    let mut stats = got;
    stats.count_walk(&walked);
    assert_eq!(stats.path_errors, 1 + u64::from(unreadable));
    assert_eq!(stats.paths_skipped["fifo"], 1);
    assert_eq!(stats.paths_skipped["already-walked"], 1);

    // Leave the tree removable.
    set_mode(&root.join("in/locked"), 0o755);
}

#[test]
fn a_named_pipe_named_explicitly_is_refused_unopened() {
    let dir = tempfile::tempdir().unwrap();
    let pipe = dir.path().join("pipe.json");
    let made = std::process::Command::new("mkfifo")
        .arg(&pipe)
        .status()
        .expect("mkfifo (coreutils) is needed");
    assert!(made.success());

    let walked = walk(std::slice::from_ref(&pipe));
    assert!(walked.files.is_empty());
    assert!(
        matches!(&walked.skipped[0].reason, SkipReason::Unreadable(why) if why.contains("named pipe")),
        "{:?}",
        walked.skipped
    );

    // Read directly (as a file source might after the folder changed), it is a rejected file.
    let (result, items) = ends(Duration::from_secs(60), move || {
        let mut items = Vec::new();
        let result = read_file(&pipe, &ReadOptions::default(), &mut |i| items.push(i));
        (result.map_err(|e| e.to_string()), items)
    });
    let err = result.unwrap_err();
    assert!(err.contains("named pipe"), "{err}");
    assert!(
        matches!(&items[..], [Item::Rejected(r)] if r.reason.contains("named pipe") && r.at.file.ends_with("pipe.json")),
        "{items:?}"
    );
}
