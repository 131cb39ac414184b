//! The live sources. Each keeps the contract in [`crate::source`]; each has its own config struct,
//! and [`SourceConfig`] is the one list of source types the config file accepts.

pub mod file;
#[cfg(feature = "graph")]
pub mod graph;
#[cfg(feature = "kafka")]
pub mod kafka;

use serde::Deserialize;

use crate::source::Source;

/// `[[sources]]`: one entry per source, `type` says which.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum SourceConfig {
    /// A drop folder or file of exported logs.
    File(file::FileConfig),
    /// Topics of any Kafka-protocol broker.
    #[cfg(feature = "kafka")]
    Kafka(kafka::KafkaConfig),
    /// An Event Hubs namespace through its Kafka endpoint.
    #[cfg(feature = "kafka")]
    Eventhub(kafka::EventHubConfig),
    /// Microsoft Graph polling across customer tenants.
    #[cfg(feature = "graph")]
    Graph(Box<graph::GraphConfig>),
}

impl SourceConfig {
    pub fn name(&self) -> &str {
        match self {
            SourceConfig::File(c) => &c.name,
            #[cfg(feature = "kafka")]
            SourceConfig::Kafka(c) => &c.name,
            #[cfg(feature = "kafka")]
            SourceConfig::Eventhub(c) => &c.name,
            #[cfg(feature = "graph")]
            SourceConfig::Graph(c) => &c.name,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            SourceConfig::File(_) => "file",
            #[cfg(feature = "kafka")]
            SourceConfig::Kafka(_) => "kafka",
            #[cfg(feature = "kafka")]
            SourceConfig::Eventhub(_) => "eventhub",
            #[cfg(feature = "graph")]
            SourceConfig::Graph(_) => "graph",
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
            #[cfg(feature = "kafka")]
            SourceConfig::Kafka(c) => c.validate(path),
            #[cfg(feature = "kafka")]
            SourceConfig::Eventhub(c) => c.validate(path),
            #[cfg(feature = "graph")]
            SourceConfig::Graph(c) => c.validate(path),
        });
        problems
    }

    /// The entry whose `type` is `tag`, from the rest of its table; `None` for a type this build
    /// does not know. The same result as deserialising the whole table, but the variant's fields
    /// are read straight from `rest`: serde reads an internally tagged enum through a buffer, which
    /// hides from a path-tracking deserializer which key an error is at, and the config file's
    /// errors name their key.
    pub fn from_tagged<'de, D: serde::Deserializer<'de>>(
        tag: &str,
        rest: D,
    ) -> Option<Result<SourceConfig, D::Error>> {
        Some(match tag {
            "file" => Deserialize::deserialize(rest).map(SourceConfig::File),
            #[cfg(feature = "kafka")]
            "kafka" => Deserialize::deserialize(rest).map(SourceConfig::Kafka),
            #[cfg(feature = "kafka")]
            "eventhub" => Deserialize::deserialize(rest).map(SourceConfig::Eventhub),
            #[cfg(feature = "graph")]
            "graph" => Deserialize::deserialize(rest).map(SourceConfig::Graph),
            _ => return None,
        })
    }

    /// The running source (secrets are read here).
    pub fn build(&self) -> Result<Box<dyn Source>, Vec<String>> {
        Ok(match self {
            SourceConfig::File(c) => Box::new(file::FileSource::new(c.clone())),
            #[cfg(feature = "kafka")]
            SourceConfig::Kafka(c) => {
                Box::new(kafka::KafkaSource::new(c.clone()).map_err(|e| vec![e.to_string()])?)
            }
            #[cfg(feature = "kafka")]
            SourceConfig::Eventhub(c) => Box::new(
                kafka::KafkaSource::from_event_hub(c.clone()).map_err(|e| vec![e.to_string()])?,
            ),
            #[cfg(feature = "graph")]
            SourceConfig::Graph(c) => Box::new(graph::GraphSource::new((**c).clone())?),
        })
    }
}
