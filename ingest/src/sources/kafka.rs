//! The Kafka / Event Hub source (placeholder until the Kafka work lands).
