//! Dead letters of the Kafka source: messages (or records inside them) that cannot be parsed.
//!
//! What comes in: the partition, offset, reason and raw bytes of a bad message or record. What
//! goes out: a JSON line appended to the dead-letter file (`topic`, `partition`, `offset`,
//! `record`, `field`, `reason`, `raw` as lossy UTF-8 capped at 64 KiB) and/or the raw value
//! produced to the dead-letter topic (key `topic/partition@offset`, reason in headers; cut to
//! [`MAX_TOPIC_BYTES`] with an `entrawatch-truncated-from` header when larger). Neither
//! ever blocks the partition: the message counts as processed once its dead letter is written.
//! [`DeadLetters::sync`] makes what was written durable; the source calls it before handing on a
//! batch, so no offset is committed past a dead letter that could still be lost.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::{ClientContext, Message};
use serde::Serialize;

/// Most raw bytes kept per dead letter in the file.
pub const MAX_RAW_BYTES: usize = 64 * 1024;
/// Most raw bytes produced to the dead-letter topic per dead letter: below librdkafka's and the
/// brokers' default `message.max.bytes` (1 000 000) with room for the key and headers.
pub const MAX_TOPIC_BYTES: usize = 900 * 1024;
/// Longest wait for the dead-letter topic to acknowledge what was produced.
const PRODUCE_FLUSH_TIMEOUT: Duration = Duration::from_secs(30);

/// One dead letter.
#[derive(Debug, Serialize)]
pub struct DeadLetter<'a> {
    pub topic: &'a str,
    pub partition: i32,
    pub offset: i64,
    /// 1-based record of the message (`null` when the whole message is bad).
    pub record: Option<usize>,
    /// The field that could not be read (`null` when no single field is to blame).
    pub field: Option<&'a str>,
    pub reason: &'a str,
    #[serde(skip)]
    pub raw: &'a [u8],
}

#[derive(Serialize)]
struct Line<'a> {
    time: String,
    source: &'a str,
    #[serde(flatten)]
    letter: &'a DeadLetter<'a>,
    raw: std::borrow::Cow<'a, str>,
}

/// Logs failed dead-letter deliveries (the file copy, when configured, still holds them).
#[derive(Debug)]
pub struct DeliveryLog {
    source: Arc<str>,
}

impl ClientContext for DeliveryLog {}

impl ProducerContext for DeliveryLog {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Err((e, msg)) = result {
            let key = msg
                .key()
                .map(|k| String::from_utf8_lossy(k).into_owned())
                .unwrap_or_default();
            tracing::error!(source = %self.source, message = %key, error = %e,
                "dead letter not delivered to the dead-letter topic");
        }
    }
}

/// Where dead letters go.
pub struct DeadLetters {
    source: Arc<str>,
    file: Option<(PathBuf, File)>,
    topic: Option<(String, BaseProducer<DeliveryLog>)>,
    dirty: bool,
    written: u64,
}

impl std::fmt::Debug for DeadLetters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeadLetters")
            .field("file", &self.file.as_ref().map(|(p, _)| p))
            .field("topic", &self.topic.as_ref().map(|(t, _)| t))
            .field("written", &self.written)
            .finish()
    }
}

impl DeadLetters {
    /// Opens the file (append) and creates the producer; `producer` is `None` without a topic.
    pub fn open(
        source: Arc<str>,
        file: Option<&Path>,
        topic: Option<(&str, &ClientConfig)>,
    ) -> Result<DeadLetters, String> {
        let file = match file {
            Some(path) => {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir).map_err(|e| {
                        format!(
                            "cannot create the dead-letter folder {}: {e}",
                            dir.display()
                        )
                    })?;
                }
                let f = OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_err(|e| format!("cannot open dead-letter file {}: {e}", path.display()))?;
                Some((path.to_owned(), f))
            }
            None => None,
        };
        let topic = match topic {
            Some((name, config)) => {
                let producer: BaseProducer<DeliveryLog> = config
                    .create_with_context(DeliveryLog {
                        source: source.clone(),
                    })
                    .map_err(|e| format!("cannot create the dead-letter producer: {e}"))?;
                Some((name.to_owned(), producer))
            }
            None => None,
        };
        Ok(DeadLetters {
            source,
            file,
            topic,
            dirty: false,
            written: 0,
        })
    }

    /// How many dead letters were written since start.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Writes one dead letter. Failures are logged (with partition and offset, never the raw
    /// value) and do not stop the partition.
    pub fn write(&mut self, letter: &DeadLetter<'_>) {
        self.written += 1;
        tracing::warn!(source = %self.source, topic = letter.topic, partition = letter.partition,
            offset = letter.offset, record = ?letter.record, reason = letter.reason,
            "message not readable: dead-lettered");
        if let Some((path, file)) = &mut self.file {
            let kept = &letter.raw[..letter.raw.len().min(MAX_RAW_BYTES)];
            let line = Line {
                time: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                source: &self.source,
                letter,
                raw: String::from_utf8_lossy(kept),
            };
            let mut text = serde_json::to_vec(&line).expect("serialisable");
            text.push(b'\n');
            if let Err(e) = file.write_all(&text) {
                tracing::error!(source = %self.source, file = %path.display(), error = %e,
                    topic = letter.topic, partition = letter.partition, offset = letter.offset,
                    "cannot write the dead-letter file");
            }
            self.dirty = true;
        }
        if let Some((topic, producer)) = &self.topic {
            let key = format!("{}/{}@{}", letter.topic, letter.partition, letter.offset);
            let headers = OwnedHeaders::new()
                .insert(Header {
                    key: "entrawatch-reason",
                    value: Some(letter.reason),
                })
                .insert(Header {
                    key: "entrawatch-source",
                    value: Some(&*self.source),
                });
            // A message the broker would refuse as too large goes out cut, with a marker header
            // giving its full size (the file copy, when configured, keeps the first 64 KiB too).
            let (payload, headers) = if letter.raw.len() > MAX_TOPIC_BYTES {
                let size = letter.raw.len().to_string();
                (
                    &letter.raw[..MAX_TOPIC_BYTES],
                    headers.insert(Header {
                        key: "entrawatch-truncated-from",
                        value: Some(size.as_str()),
                    }),
                )
            } else {
                (letter.raw, headers)
            };
            let mut record = BaseRecord::to(topic)
                .key(&key)
                .payload(payload)
                .headers(headers);
            // A full local queue: serve deliveries and retry a few times.
            for _ in 0..50 {
                match producer.send(record) {
                    Ok(()) => break,
                    Err((e, r)) => {
                        record = r;
                        if !matches!(
                            e.rdkafka_error_code(),
                            Some(rdkafka::types::RDKafkaErrorCode::QueueFull)
                        ) {
                            tracing::error!(source = %self.source, error = %e, message = %key,
                                "cannot produce to the dead-letter topic");
                            break;
                        }
                        producer.poll(Duration::from_millis(100));
                    }
                }
            }
            producer.poll(Duration::ZERO);
            self.dirty = true;
        }
    }

    /// Makes every dead letter written so far durable (file synced, topic acknowledged).
    pub fn sync(&mut self) {
        if !self.dirty {
            return;
        }
        self.dirty = false;
        if let Some((path, file)) = &mut self.file
            && let Err(e) = file.sync_data()
        {
            tracing::error!(source = %self.source, file = %path.display(), error = %e,
                "cannot sync the dead-letter file");
        }
        if let Some((_, producer)) = &self.topic
            && let Err(e) = producer.flush(PRODUCE_FLUSH_TIMEOUT)
        {
            tracing::error!(source = %self.source, error = %e,
                "dead letters not acknowledged by the dead-letter topic in time");
        }
    }
}
