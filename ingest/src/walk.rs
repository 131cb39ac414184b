//! The one folder walk `replay` and the `file` source read their inputs through: it always ends,
//! never opens anything but folders, and says what it passed over and why.
//!
//! - Symbolic links are followed, but every file and folder is taken at most once per (device,
//!   inode): a link back up the tree (`self -> .`) or a second name for a file already found is
//!   counted as [`SkipReason::AlreadyWalked`], so the walk ends on any tree.
//! - Folders deeper than [`MAX_DEPTH`] below a path given are not entered ([`SkipReason::TooDeep`]).
//! - Named pipes, sockets and devices are never opened (a FIFO would block the reader for ever):
//!   inside a folder they are counted ([`SkipReason::Fifo`], [`SkipReason::Socket`],
//!   [`SkipReason::Device`]); named explicitly, they are an error, since what was asked for is not
//!   read.
//! - A file or folder that cannot be read is an error ([`SkipReason::Unreadable`]) with its path;
//!   everything else is still walked.
//!
//! Entries are taken in name order, hidden ones (a leading `.`) passed over, and files in folders
//! kept only with a log extension ([`LOG_EXTENSIONS`]); the others are listed as ignored.

use std::collections::HashSet;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

/// File extensions read when walking a folder (files named explicitly are always read).
pub const LOG_EXTENSIONS: [&str; 5] = ["json", "jsonl", "ndjson", "csv", "log"];

/// Folders entered below each path given; deeper ones are skipped with [`SkipReason::TooDeep`].
pub const MAX_DEPTH: usize = 32;

/// What a walk found.
#[derive(Debug, Default)]
pub struct Walk {
    /// The files to read, in walk order (`-` stays as given: standard input).
    pub files: Vec<PathBuf>,
    /// Files in folders passed over because their extension is not a log extension.
    pub ignored: Vec<PathBuf>,
    /// Paths passed over, with why, in walk order.
    pub skipped: Vec<SkippedPath>,
}

impl Walk {
    /// The skips that are errors: something given could not be read.
    pub fn errors(&self) -> impl Iterator<Item = &SkippedPath> {
        self.skipped.iter().filter(|s| s.reason.is_error())
    }
}

/// A path the walk did not read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedPath {
    pub path: PathBuf,
    pub reason: SkipReason,
}

impl std::fmt::Display for SkippedPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.reason)
    }
}

/// Why a path was not read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SkipReason {
    /// A link to a file or folder this walk already took (a loop such as `self -> .`, or a second
    /// name for the same file): it is read once, under its first name.
    AlreadyWalked,
    /// A folder more than [`MAX_DEPTH`] levels below the path given.
    TooDeep,
    /// A named pipe in a folder.
    Fifo,
    /// A socket in a folder.
    Socket,
    /// A block or character device in a folder.
    Device,
    /// The path cannot be read (permissions, a broken link, a special file named explicitly, ...):
    /// the text says why.
    Unreadable(String),
}

impl SkipReason {
    /// A short fixed label, for counts and metric labels.
    pub fn as_str(&self) -> &'static str {
        match self {
            SkipReason::AlreadyWalked => "already-walked",
            SkipReason::TooDeep => "too-deep",
            SkipReason::Fifo => "fifo",
            SkipReason::Socket => "socket",
            SkipReason::Device => "device",
            SkipReason::Unreadable(_) => "unreadable",
        }
    }

    /// Whether something given could not be read because of it (`replay --strict` fails, the
    /// `file` source reports it). A repeated link and a special file in a folder are not: nothing
    /// that holds logs was left unread.
    pub fn is_error(&self) -> bool {
        matches!(self, SkipReason::TooDeep | SkipReason::Unreadable(_))
    }
}

impl std::fmt::Display for SkipReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SkipReason::AlreadyWalked => {
                f.write_str("already walked (a link to a file or folder read once already)")
            }
            SkipReason::TooDeep => write!(f, "more than {MAX_DEPTH} folders deep: not entered"),
            SkipReason::Fifo => f.write_str("a named pipe (FIFO): not opened"),
            SkipReason::Socket => f.write_str("a socket: not opened"),
            SkipReason::Device => f.write_str("a device: not opened"),
            SkipReason::Unreadable(why) => write!(f, "cannot read: {why}"),
        }
    }
}

/// Walks `paths` (files and folders, folders recursively) into the files to read.
pub fn walk(paths: &[PathBuf]) -> Walk {
    let mut walker = Walker {
        seen: HashSet::new(),
        out: Walk::default(),
    };
    for path in paths {
        if path.as_os_str() == "-" {
            walker.out.files.push(path.clone());
            continue;
        }
        let meta = match std::fs::metadata(path) {
            Ok(meta) => meta,
            Err(e) => {
                walker.skip(path, SkipReason::Unreadable(e.to_string()));
                continue;
            }
        };
        if meta.is_dir() {
            if walker.first_time(&meta, path) {
                walker.folder(path, 0);
            }
        } else if meta.is_file() {
            if walker.first_time(&meta, path) {
                walker.out.files.push(path.clone());
            }
        } else {
            let what = special(&meta.file_type()).map_or("not a regular file", |r| match r {
                SkipReason::Fifo => "a named pipe (FIFO), not a regular file",
                SkipReason::Socket => "a socket, not a regular file",
                _ => "a device, not a regular file",
            });
            walker.skip(
                path,
                SkipReason::Unreadable(format!(
                    "{what} (pipe its content to standard input with `-`)"
                )),
            );
        }
    }
    walker.out
}

/// [`walk`] for inputs that must be read whole (generated worlds, benchmarks): the walk, or an
/// error naming the first path it could not read.
pub fn walk_all(paths: &[PathBuf]) -> std::io::Result<Walk> {
    let walked = walk(paths);
    if let Some(e) = walked.errors().next() {
        return Err(std::io::Error::other(e.to_string()));
    }
    Ok(walked)
}

struct Walker {
    /// (device, inode) of every file and folder taken.
    seen: HashSet<(u64, u64)>,
    out: Walk,
}

impl Walker {
    fn skip(&mut self, path: &Path, reason: SkipReason) {
        self.out.skipped.push(SkippedPath {
            path: path.to_path_buf(),
            reason,
        });
    }

    /// Whether this file or folder is met for the first time; a repeat is recorded as skipped.
    fn first_time(&mut self, meta: &std::fs::Metadata, path: &Path) -> bool {
        let first = self.seen.insert((meta.dev(), meta.ino()));
        if !first {
            self.skip(path, SkipReason::AlreadyWalked);
        }
        first
    }

    /// Walks the folder `dir`, `depth` levels below the path given.
    fn folder(&mut self, dir: &Path, depth: usize) {
        let listing = match std::fs::read_dir(dir) {
            Ok(listing) => listing,
            Err(e) => {
                self.skip(dir, SkipReason::Unreadable(e.to_string()));
                return;
            }
        };
        let mut entries = Vec::new();
        for entry in listing {
            match entry {
                Ok(entry) => entries.push(entry.path()),
                Err(e) => {
                    // The listing cannot go on; what was listed is still walked.
                    self.skip(dir, SkipReason::Unreadable(e.to_string()));
                    break;
                }
            }
        }
        entries.sort();
        for path in entries {
            let hidden = path
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with('.'));
            if hidden {
                continue;
            }
            // Follows a link: what it points at decides (a link that leads nowhere is unreadable).
            let meta = match std::fs::metadata(&path) {
                Ok(meta) => meta,
                Err(e) => {
                    self.skip(&path, SkipReason::Unreadable(e.to_string()));
                    continue;
                }
            };
            if meta.is_dir() {
                if depth >= MAX_DEPTH {
                    self.skip(&path, SkipReason::TooDeep);
                } else if self.first_time(&meta, &path) {
                    self.folder(&path, depth + 1);
                }
            } else if meta.is_file() {
                let ext = path
                    .extension()
                    .and_then(|e| e.to_str())
                    .map(str::to_ascii_lowercase);
                if !ext.as_deref().is_some_and(|e| LOG_EXTENSIONS.contains(&e)) {
                    self.out.ignored.push(path);
                } else if self.first_time(&meta, &path) {
                    self.out.files.push(path);
                }
            } else {
                let reason = special(&meta.file_type()).unwrap_or(SkipReason::Device);
                self.skip(&path, reason);
            }
        }
    }
}

/// What kind of special file this is; `None` for files and folders.
fn special(t: &std::fs::FileType) -> Option<SkipReason> {
    if t.is_fifo() {
        Some(SkipReason::Fifo)
    } else if t.is_socket() {
        Some(SkipReason::Socket)
    } else if t.is_block_device() || t.is_char_device() {
        Some(SkipReason::Device)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(paths: &[PathBuf], root: &Path) -> Vec<String> {
        paths
            .iter()
            .map(|p| p.strip_prefix(root).unwrap().display().to_string())
            .collect()
    }

    #[test]
    fn links_back_up_the_tree_are_walked_once() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir_all(d.join("a/b")).unwrap();
        std::fs::write(d.join("a/b/x.json"), "{}").unwrap();
        std::fs::write(d.join("y.json"), "{}").unwrap();
        std::os::unix::fs::symlink(".", d.join("self")).unwrap();
        std::os::unix::fs::symlink("..", d.join("a/b/up")).unwrap();
        std::os::unix::fs::symlink("y.json", d.join("z.json")).unwrap();
        let w = walk(&[d.to_path_buf()]);
        assert_eq!(names(&w.files, d), ["a/b/x.json", "y.json"]);
        let skipped: Vec<(String, &str)> = w
            .skipped
            .iter()
            .map(|s| {
                (
                    s.path.strip_prefix(d).unwrap().display().to_string(),
                    s.reason.as_str(),
                )
            })
            .collect();
        assert_eq!(
            skipped,
            [
                ("a/b/up".to_owned(), "already-walked"),
                ("self".to_owned(), "already-walked"),
                ("z.json".to_owned(), "already-walked"),
            ]
        );
        assert_eq!(w.errors().count(), 0);
    }

    #[test]
    fn deep_trees_stop_at_the_depth_limit() {
        let dir = tempfile::tempdir().unwrap();
        let mut deep = dir.path().to_path_buf();
        for i in 0..=MAX_DEPTH {
            deep.push(format!("d{i}"));
        }
        std::fs::create_dir_all(&deep).unwrap();
        std::fs::write(deep.join("lost.json"), "{}").unwrap();
        std::fs::write(deep.parent().unwrap().join("kept.json"), "{}").unwrap();
        let w = walk(&[dir.path().to_path_buf()]);
        assert_eq!(w.files.len(), 1);
        assert!(w.files[0].ends_with("kept.json"));
        let errors: Vec<_> = w.errors().collect();
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].reason, SkipReason::TooDeep);
        assert_eq!(errors[0].path, deep);
    }

    #[test]
    fn missing_paths_and_broken_links_are_errors_that_cost_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join("a.json"), "{}").unwrap();
        std::os::unix::fs::symlink("nowhere.json", d.join("broken.json")).unwrap();
        let w = walk(&[d.join("missing"), d.to_path_buf()]);
        assert_eq!(names(&w.files, d), ["a.json"]);
        let errors: Vec<String> = w.errors().map(|s| s.path.display().to_string()).collect();
        assert_eq!(
            errors,
            [
                d.join("missing").display().to_string(),
                d.join("broken.json").display().to_string()
            ]
        );
    }
}
