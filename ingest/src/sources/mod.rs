//! The live sources. Each keeps the contract in [`crate::source`]; each has its own config struct,
//! and [`SourceConfig`] is the one list of source types the config file accepts.

pub mod file;
#[cfg(feature = "graph")]
pub mod graph;
#[cfg(feature = "kafka")]
pub mod kafka;
pub mod memory;

use serde::Deserialize;

use crate::source::Source;

/// `[[sources]]`: one entry per source, `type` says which.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum SourceConfig {
    /// A drop folder or file of exported logs.
    File(file::FileConfig),
}

impl SourceConfig {
    /// The names `type` accepts.
    pub const TYPES: &'static [&'static str] = &["file"];

    pub fn name(&self) -> &str {
        match self {
            SourceConfig::File(c) => &c.name,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            SourceConfig::File(_) => "file",
        }
    }

    /// Every problem, each prefixed with `path`.
    pub fn validate(&self, path: &str) -> Vec<String> {
        let mut problems = Vec::new();
        if self.name().trim().is_empty() {
            problems.push(format!("{path}.name: empty"));
        }
        problems.extend(match self {
            SourceConfig::File(c) => c.validate(path),
        });
        problems
    }

    /// The running source (secrets are read here).
    pub fn build(&self) -> Result<Box<dyn Source>, Vec<String>> {
        Ok(match self {
            SourceConfig::File(c) => Box::new(file::FileSource::new(c.clone())),
        })
    }
}
