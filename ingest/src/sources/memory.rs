//! A source that hands out events given to it in memory: the double that lets the whole pipeline
//! run in tests without files, Graph or Kafka. Its position is the count of items handed out.
