//! Counts of what was read, for the replay summary, `--summary-json` and metrics.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::model::{Kind, TimeSource};
use crate::reader::{Item, Rejected};

/// How many first errors the summary keeps verbatim.
pub const FIRST_ERRORS_KEPT: usize = 10;

/// What reading produced, by kind, shape and outcome.
#[derive(Debug, Default, Clone, Serialize)]
pub struct IngestStats {
    pub files_read: u64,
    pub bytes_read: u64,
    /// Every record seen: parsed, skipped or rejected.
    pub records_read: u64,
    pub records_by_kind: BTreeMap<String, u64>,
    pub records_by_shape: BTreeMap<String, u64>,
    /// Records of categories entrawatch does not read (`ProvisioningLogs`, ...).
    pub skipped_by_category: BTreeMap<String, u64>,
    pub parse_errors: u64,
    /// The first few errors, as `file:line: record N: field: reason`.
    pub first_errors: Vec<String>,
    /// Records with no usable time, stamped with the time they were read.
    pub ingest_time_fallbacks: u64,
    pub empty_files: Vec<String>,
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
                if e.meta.time_source == TimeSource::Ingest {
                    self.ingest_time_fallbacks += 1;
                }
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
        if self.first_errors.len() < FIRST_ERRORS_KEPT {
            self.first_errors.push(r.to_string());
        }
    }

    /// Zero-filled counts for every kind, so a summary always lists them all.
    pub fn kinds_with_zeros(&self) -> BTreeMap<String, u64> {
        let mut all: BTreeMap<String, u64> = Kind::ALL
            .iter()
            .map(|k| (k.as_str().to_owned(), 0))
            .collect();
        all.extend(self.records_by_kind.iter().map(|(k, v)| (k.clone(), *v)));
        all
    }
}
