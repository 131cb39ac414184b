//! Fixture loading shared by the ingest integration tests.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use entrawatch_ingest::{Event, Item, ReadOptions, Rejected, read_file};

pub const TENANT_A: &str = "11111111-aaaa-4aaa-8aaa-111111111111";

pub fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel)
}

/// Everything one file yields.
#[derive(Debug, Default)]
pub struct Read {
    pub events: Vec<Event>,
    pub skipped: Vec<String>,
    pub rejected: Vec<Rejected>,
    pub empty: bool,
}

pub fn read_path(path: &Path, tenant: Option<&str>) -> Read {
    let opts = ReadOptions {
        tenant: tenant.map(str::to_owned),
        ..ReadOptions::default()
    };
    let mut out = Read::default();
    // A file that cannot be read comes as a rejected file too.
    let _ = read_file(path, &opts, &mut |item| match item {
        Item::Event(e) => out.events.push(*e),
        Item::Skipped { category, .. } => out.skipped.push(category),
        Item::Rejected(r) => out.rejected.push(r),
        Item::EmptyFile { .. } => out.empty = true,
    });
    out
}

/// Reads a fixture and insists on zero errors.
pub fn read_clean(rel: &str, tenant: Option<&str>) -> Read {
    let out = read_path(&fixture(rel), tenant);
    assert!(
        out.rejected.is_empty(),
        "{rel}: unexpected errors: {:#?}",
        out.rejected
    );
    out
}

pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}
