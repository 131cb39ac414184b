//! The live sources. Each keeps the contract in [`crate::source`]; each has its own config struct,
//! and [`SourceConfig`] is the one list of source types the config file accepts.

pub mod file;
#[cfg(feature = "graph")]
pub mod graph;
#[cfg(feature = "kafka")]
pub mod kafka;
pub mod memory;

/// Placeholder until the config types land.
#[derive(Debug)]
pub struct SourceConfig;
