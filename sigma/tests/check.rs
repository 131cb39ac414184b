//! `sigma check` on the pinned SigmaHQ Entra rules: the report is a snapshot.

use std::path::PathBuf;

use entrawatch_sigma::{SigmaConfig, load, report};

fn pinned() -> SigmaConfig {
    SigmaConfig {
        paths: vec![PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sigmahq")],
        ..SigmaConfig::default()
    }
}

#[test]
fn the_report_on_the_pinned_sigmahq_set() {
    let loaded = load(&pinned());
    insta::assert_snapshot!(report(&loaded));
}
