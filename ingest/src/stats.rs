//! Counts of what was read, for the replay summary, `--summary-json` and metrics.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::model::Kind;
use crate::normalize::NO_EVENT_TIME;
use crate::reader::{Item, Rejected};
use crate::walk::Walk;

/// How many first errors the summary keeps verbatim.
pub const FIRST_ERRORS_KEPT: usize = 10;

/// What reading produced, by kind, shape and outcome.
#[derive(Debug, Default, Clone, Serialize)]
pub struct IngestStats {
    pub files_read: u64,
    pub bytes_read: u64,
    /// Every record seen: parsed, skipped or rejected.
    pub records_read: u64,
    /// Written with every kind, zeros included, so a summary always lists them all.
    #[serde(serialize_with = "every_kind")]
    pub records_by_kind: BTreeMap<String, u64>,
    pub records_by_shape: BTreeMap<String, u64>,
    /// Records of categories entrawatch does not read (`ProvisioningLogs`, ...).
    pub skipped_by_category: BTreeMap<String, u64>,
    pub parse_errors: u64,
    /// The first few errors, as `file:line: record N: field: reason`.
    pub first_errors: Vec<String>,
    /// Records rejected because they carry no event time, and CSV files rejected whole because
    /// their header has no time column (all counted in `parse_errors` too).
    pub no_event_time: u64,
    pub empty_files: Vec<String>,
    /// Paths the walk passed over, by reason (`already-walked`, `fifo`, `socket`, `device`,
    /// `too-deep`, `unreadable`).
    pub paths_skipped: BTreeMap<String, u64>,
    /// Paths passed over for an error (`too-deep`, `unreadable`): something given was not read.
    pub path_errors: u64,
    /// The first few of them, as `path: reason`.
    pub first_path_errors: Vec<String>,
}

impl IngestStats {
    /// Counts one item. Events are counted here; what happens to them next is the caller's.
    pub fn count(&mut self, item: &Item) {
        match item {
            Item::Event(e) => {
                self.records_read += 1;
                *self
                    .records_by_kind
                    .entry(e.kind().as_str().to_owned())
                    .or_default() += 1;
                *self
                    .records_by_shape
                    .entry(e.meta.shape.as_str().to_owned())
                    .or_default() += 1;
            }
            Item::Skipped { category, .. } => {
                self.records_read += 1;
                *self
                    .skipped_by_category
                    .entry(category.clone())
                    .or_default() += 1;
            }
            Item::Rejected(r) => self.count_error(r),
            Item::EmptyFile { file } => self.empty_files.push(file.clone()),
        }
    }

    fn count_error(&mut self, r: &Rejected) {
        if r.at.record.is_some() {
            self.records_read += 1;
        }
        self.parse_errors += 1;
        if r.reason.starts_with(NO_EVENT_TIME) {
            self.no_event_time += 1;
        }
        if self.first_errors.len() < FIRST_ERRORS_KEPT {
            self.first_errors.push(r.to_string());
        }
    }

    /// Counts what a walk passed over.
    pub fn count_walk(&mut self, walk: &Walk) {
        for skipped in &walk.skipped {
            *self
                .paths_skipped
                .entry(skipped.reason.as_str().to_owned())
                .or_default() += 1;
            if skipped.reason.is_error() {
                self.path_errors += 1;
                if self.first_path_errors.len() < FIRST_ERRORS_KEPT {
                    self.first_path_errors.push(skipped.to_string());
                }
            }
        }
    }

    /// Adds another reading's counts (a file read on another thread); `first_errors` keeps the
    /// earliest, this reading's first.
    pub fn merge(&mut self, from: IngestStats) {
        // Destructured, so a new field cannot be forgotten here.
        let IngestStats {
            files_read,
            bytes_read,
            records_read,
            records_by_kind,
            records_by_shape,
            skipped_by_category,
            parse_errors,
            first_errors,
            no_event_time,
            empty_files,
            paths_skipped,
            path_errors,
            first_path_errors,
        } = from;
        self.files_read += files_read;
        self.bytes_read += bytes_read;
        self.records_read += records_read;
        for (map, add) in [
            (&mut self.records_by_kind, records_by_kind),
            (&mut self.records_by_shape, records_by_shape),
            (&mut self.skipped_by_category, skipped_by_category),
            (&mut self.paths_skipped, paths_skipped),
        ] {
            for (k, v) in add {
                *map.entry(k).or_default() += v;
            }
        }
        self.parse_errors += parse_errors;
        let room = FIRST_ERRORS_KEPT.saturating_sub(self.first_errors.len());
        self.first_errors
            .extend(first_errors.into_iter().take(room));
        self.no_event_time += no_event_time;
        self.empty_files.extend(empty_files);
        self.path_errors += path_errors;
        let room = FIRST_ERRORS_KEPT.saturating_sub(self.first_path_errors.len());
        self.first_path_errors
            .extend(first_path_errors.into_iter().take(room));
    }
}

/// Counts by kind with a zero for every kind not seen.
fn every_kind<S: serde::Serializer>(
    by_kind: &BTreeMap<String, u64>,
    s: S,
) -> Result<S::Ok, S::Error> {
    let mut all: BTreeMap<&str, u64> = Kind::ALL.iter().map(|k| (k.as_str(), 0)).collect();
    all.extend(by_kind.iter().map(|(k, v)| (k.as_str(), *v)));
    serde::Serialize::serialize(&all, s)
}
