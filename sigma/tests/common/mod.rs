//! What the Sigma test files share.

use std::path::Path;

use entrawatch_ingest::{Event, Item, Kind, ReadOptions, read_bytes};

/// The first event of `kind` in the ingest fixture `file` (records without a tenant get a fixed
/// one).
pub fn first_event(file: &str, kind: Kind) -> Event {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../ingest/tests/fixtures")
        .join(file);
    let bytes = std::fs::read(&path).unwrap();
    let mut found = None;
    read_bytes(
        file,
        &bytes,
        Some("11111111-2222-3333-4444-555555555555"),
        &ReadOptions::default(),
        &mut |item| {
            if let Item::Event(e) = item
                && e.kind() == kind
                && found.is_none()
            {
                found = Some(*e);
            }
        },
    );
    found.unwrap_or_else(|| panic!("no {kind:?} in {file}"))
}
