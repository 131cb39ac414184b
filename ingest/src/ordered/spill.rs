//! Sorted runs of events on disk, for a replay larger than its memory budget.
//!
//! A run is the events of one stretch of the input, sorted in the replay's order (event time, then
//! record identity, then input position) and written one after another, each as its length
//! (`u32`) and then, in bincode with variable-length integers, the position, the [`Meta`] (its
//! time as numbers) and the body. Text shared between events (tenant, user and app ids and names,
//! user agents: [`crate::Text::shared`]) is written once per run and then by number
//! ([`crate::text::in_runs`]), and comes back shared. The folder that holds the runs is made
//! fresh for the replay, readable by its owner only, and removed with everything in it when the
//! replay ends (or fails).

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use bincode::Options;
use serde::{Deserialize, Serialize};

use crate::text::in_runs::{self, Codec};

use crate::model::{
    Audit, Body, Event, GdapRelationship, Meta, RiskDetection, RiskyUser, RoleGrant, SignIn,
};

/// The body as written to a run. [`Body`] is tagged inside the event's own map (`"kind"`), which
/// a format without field names cannot read back; this enum has the same variants, in the same
/// order as [`BodyOwned`], tagged by position.
#[derive(Serialize)]
enum BodyRef<'a> {
    SignIn(&'a SignIn),
    Audit(&'a Audit),
    RiskyUser(&'a RiskyUser),
    RiskDetection(&'a RiskDetection),
    Role(&'a RoleGrant),
    Gdap(&'a GdapRelationship),
}

/// [`BodyRef`] read back.
#[derive(Deserialize)]
enum BodyOwned {
    SignIn(Box<SignIn>),
    Audit(Box<Audit>),
    RiskyUser(Box<RiskyUser>),
    RiskDetection(Box<RiskDetection>),
    Role(Box<RoleGrant>),
    Gdap(Box<GdapRelationship>),
}

fn body_ref(body: &Body) -> BodyRef<'_> {
    match body {
        Body::SignIn(b) => BodyRef::SignIn(b),
        Body::Audit(b) => BodyRef::Audit(b),
        Body::RiskyUser(b) => BodyRef::RiskyUser(b),
        Body::RiskDetection(b) => BodyRef::RiskDetection(b),
        Body::Role(b) => BodyRef::Role(b),
        Body::Gdap(b) => BodyRef::Gdap(b),
    }
}

fn body_owned(body: BodyOwned) -> Body {
    match body {
        BodyOwned::SignIn(b) => Body::SignIn(b),
        BodyOwned::Audit(b) => Body::Audit(b),
        BodyOwned::RiskyUser(b) => Body::RiskyUser(b),
        BodyOwned::RiskDetection(b) => Body::RiskDetection(b),
        BodyOwned::Role(b) => Body::Role(b),
        BodyOwned::Gdap(b) => Body::Gdap(b),
    }
}

/// The event's [`Meta`] as written to a run: its time as seconds and nanoseconds, not RFC 3339
/// text (the time is read back for every event of a merge; the bodies' times stay as they are).
#[derive(Serialize)]
struct MetaRef<'a> {
    id: &'a crate::Text,
    tenant_id: &'a crate::Text,
    time: (i64, u32),
    time_source: crate::TimeSource,
    shape: crate::Shape,
}

/// [`MetaRef`] read back.
#[derive(Deserialize)]
struct MetaOwned {
    id: crate::Text,
    tenant_id: crate::Text,
    time: (i64, u32),
    time_source: crate::TimeSource,
    shape: crate::Shape,
}

fn record(position: u64, event: &Event) -> (u64, MetaRef<'_>, BodyRef<'_>) {
    let m = &event.meta;
    let meta = MetaRef {
        id: &m.id,
        tenant_id: &m.tenant_id,
        time: (m.time.timestamp(), m.time.timestamp_subsec_nanos()),
        time_source: m.time_source,
        shape: m.shape,
    };
    (position, meta, body_ref(&event.body))
}

/// The encoding of a run's events: bincode with variable-length integers (a string's length or a
/// field's presence takes a byte, not eight).
fn codec() -> impl Options {
    bincode::DefaultOptions::new()
        .with_varint_encoding()
        .allow_trailing_bytes()
}

/// Writes one event of a run: its length (`u32`, little-endian), then the encoded event, so a
/// reader takes each whole from its buffer and decodes it from memory. `texts` numbers the shared
/// text the run has met.
pub(super) fn write_event(
    w: &mut impl Write,
    scratch: &mut Vec<u8>,
    texts: &mut Codec,
    position: u64,
    event: &Event,
) -> std::io::Result<()> {
    scratch.clear();
    in_runs::with(texts, || {
        codec().serialize_into(&mut *scratch, &record(position, event))
    })
    .map_err(|e| into_io(*e))?;
    let len = u32::try_from(scratch.len())
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidData, "an event over 4 GiB"))?;
    w.write_all(&len.to_le_bytes())?;
    w.write_all(scratch)
}

fn into_io(e: bincode::ErrorKind) -> std::io::Error {
    match e {
        bincode::ErrorKind::Io(e) => e,
        other => std::io::Error::new(std::io::ErrorKind::InvalidData, other.to_string()),
    }
}

/// The folder of a replay's runs; removed, with its runs, when dropped.
#[derive(Debug)]
pub(super) struct SpillDir {
    path: PathBuf,
    runs: usize,
    /// Bytes written to runs so far.
    pub bytes: u64,
}

impl SpillDir {
    /// A fresh folder inside `parent` (the system's temporary folder when `None`).
    pub fn create(parent: Option<&Path>) -> std::io::Result<SpillDir> {
        let parent = parent.map_or_else(std::env::temp_dir, Path::to_path_buf);
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let path = parent.join(format!(
            "entrawatch-replay-{}-{stamp:x}",
            std::process::id()
        ));
        let mut builder = std::fs::DirBuilder::new();
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        // `create`, not `create_all`: a folder already there is not ours to fill.
        builder.create(&path).map_err(|e| {
            std::io::Error::new(e.kind(), format!("cannot create {}: {e}", path.display()))
        })?;
        Ok(SpillDir {
            path,
            runs: 0,
            bytes: 0,
        })
    }

    #[cfg(test)]
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn runs(&self) -> usize {
        self.runs
    }

    /// Writes `events` (already in order, each with its input position) as the next run.
    #[cfg(test)]
    pub fn write_run<'a>(
        &mut self,
        events: impl Iterator<Item = (u64, &'a Event)>,
    ) -> std::io::Result<Run> {
        let mut w = self.start_run()?;
        for (position, event) in events {
            w.push(position, event)?;
        }
        self.finish_run(w)
    }

    /// Opens the next run for writing, an event at a time ([`RunWriter::push`]).
    pub fn start_run(&mut self) -> std::io::Result<RunWriter> {
        let path = self.path.join(format!("run-{:05}.bin", self.runs));
        self.runs += 1;
        let file = File::create(&path).map_err(|e| named(&path, "write", e))?;
        Ok(RunWriter {
            w: BufWriter::with_capacity(1 << 20, file),
            scratch: Vec::new(),
            texts: Codec::writing(),
            count: 0,
            path,
        })
    }

    /// Ends a run started by [`SpillDir::start_run`].
    pub fn finish_run(&mut self, run: RunWriter) -> std::io::Result<Run> {
        let RunWriter { w, count, path, .. } = run;
        let file = w
            .into_inner()
            .map_err(|e| named(&path, "write", e.into_error()))?;
        self.bytes += file.metadata().map_err(|e| named(&path, "write", e))?.len();
        Ok(Run { path, count })
    }
}

/// `e`, saying what could not be done to which run.
fn named(path: &Path, verb: &str, e: std::io::Error) -> std::io::Error {
    std::io::Error::new(e.kind(), format!("cannot {verb} {}: {e}", path.display()))
}

/// A run being written.
#[derive(Debug)]
pub(super) struct RunWriter {
    w: BufWriter<File>,
    /// The event being encoded.
    scratch: Vec<u8>,
    /// The shared text written so far.
    texts: Codec,
    count: u64,
    path: PathBuf,
}

impl RunWriter {
    pub fn push(&mut self, position: u64, event: &Event) -> std::io::Result<()> {
        self.count += 1;
        write_event(
            &mut self.w,
            &mut self.scratch,
            &mut self.texts,
            position,
            event,
        )
        .map_err(|e| named(&self.path, "write", e))
    }
}

impl Drop for SpillDir {
    fn drop(&mut self) {
        // Best effort: a run left behind is named for this replay and holds only its input.
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// A run written to disk: its file and how many events it holds.
#[derive(Debug)]
pub(super) struct Run {
    path: PathBuf,
    count: u64,
}

impl Run {
    /// Opens the run for reading, from its first event.
    pub fn open(&self) -> std::io::Result<RunReader> {
        let file = File::open(&self.path).map_err(|e| named(&self.path, "read", e))?;
        Ok(RunReader {
            reader: BufReader::with_capacity(READ_BUFFER, file),
            scratch: Vec::new(),
            texts: Codec::reading(),
            left: self.count,
            path: self.path.clone(),
        })
    }

    /// Removes the run's file (once merged into another run).
    pub fn remove(self) -> std::io::Result<()> {
        std::fs::remove_file(&self.path).map_err(|e| named(&self.path, "remove", e))
    }
}

/// The read buffer of each run in a merge: at most [`super::MAX_FAN_IN`] are open at once.
const READ_BUFFER: usize = 64 * 1024;

/// Reads a run's events back, in the order written.
#[derive(Debug)]
pub(super) struct RunReader {
    reader: BufReader<File>,
    /// The event being decoded.
    scratch: Vec<u8>,
    /// The shared text read so far.
    texts: Codec,
    left: u64,
    path: PathBuf,
}

impl RunReader {
    /// The next event and its input position; `None` after the last.
    pub fn next_event(&mut self) -> std::io::Result<Option<(u64, Box<Event>)>> {
        if self.left == 0 {
            return Ok(None);
        }
        let back = |e: std::io::Error| {
            std::io::Error::new(
                e.kind(),
                format!("cannot read back {}: {e}", self.path.display()),
            )
        };
        let mut len = [0u8; 4];
        self.reader.read_exact(&mut len).map_err(back)?;
        self.scratch.resize(u32::from_le_bytes(len) as usize, 0);
        self.reader.read_exact(&mut self.scratch).map_err(back)?;
        let scratch = &self.scratch;
        let (position, m, body): (u64, MetaOwned, BodyOwned) =
            in_runs::with(&mut self.texts, || codec().deserialize(scratch))
                .map_err(|e| back(into_io(*e)))?;
        let time = chrono::DateTime::from_timestamp(m.time.0, m.time.1).ok_or_else(|| {
            back(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "a time out of range",
            ))
        })?;
        let meta = Meta {
            id: m.id,
            tenant_id: m.tenant_id,
            time,
            time_source: m.time_source,
            shape: m.shape,
        };
        self.left -= 1;
        Ok(Some((
            position,
            Box::new(Event {
                meta,
                body: body_owned(body),
            }),
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every kind of event the real samples hold comes back from a run as it went in (compared
    /// through its JSON form, which names every field).
    #[test]
    fn runs_give_back_every_field_of_every_kind() {
        let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
        let mut events = Vec::new();
        for file in crate::walk(&[fixtures]).files {
            let _ = crate::read_file(&file, &crate::ReadOptions::default(), &mut |item| {
                if let crate::Item::Event(e) = item {
                    events.push(e);
                }
            });
        }
        // The samples hold no directory context: a role grant and a GDAP relationship, filled.
        let meta = events[0].meta.clone();
        let t = |s: &str| Some(crate::Text::from(s));
        events.push(Box::new(Event {
            meta: meta.clone(),
            body: Body::Role(Box::new(RoleGrant {
                eligible: true,
                principal_id: "4d3bac44-0230-4732-9e70-cc00736f0a97".into(),
                principal_type: t("user"),
                principal_user_principal_name: t("adele@contoso.com"),
                role_definition_id: "62e90394-69f5-4237-9190-012177145e10".into(),
                directory_scope_id: t("/"),
                start: Some(meta.time),
                ..RoleGrant::default()
            })),
        }));
        events.push(Box::new(Event {
            meta,
            body: Body::Gdap(Box::new(GdapRelationship {
                status: t("active"),
                role_definition_ids: vec!["62e90394-69f5-4237-9190-012177145e10".into()],
                duration_days: Some(730),
                auto_extend_days: Some(0),
                ..GdapRelationship::default()
            })),
        }));
        let mut kinds: Vec<_> = events.iter().map(|e| e.kind() as usize).collect();
        kinds.sort_unstable();
        kinds.dedup();
        assert_eq!(kinds.len(), 6, "every kind of body: {kinds:?}");
        let parent = tempfile::tempdir().unwrap();
        let mut dir = SpillDir::create(Some(parent.path())).unwrap();
        let run = dir
            .write_run(events.iter().enumerate().map(|(i, e)| (i as u64 * 3, &**e)))
            .unwrap();
        let mut back = run.open().unwrap();
        let mut shared = 0;
        for (i, e) in events.iter().enumerate() {
            let (position, got) = back.next_event().unwrap().expect("an event");
            assert_eq!(position, i as u64 * 3);
            assert_eq!(
                serde_json::to_value(&got).unwrap(),
                serde_json::to_value(e).unwrap()
            );
            assert_eq!(got.meta.id.is_shared(), e.meta.id.is_shared());
            if e.meta.tenant_id.is_shared() {
                assert!(
                    got.meta.tenant_id.is_shared(),
                    "shared text comes back shared"
                );
                shared += 1;
            }
        }
        assert!(shared > 0, "the samples' tenant ids are shared");
        assert!(back.next_event().unwrap().is_none());
        assert!(dir.bytes > 0);
        let path = dir.path().to_path_buf();
        drop(dir);
        assert!(!path.exists(), "the runs go with the replay");
    }

    /// A run writes a shared value in full once, then by number; outside a run (snapshots, JSON)
    /// the same text is a plain string, whether shared or not.
    #[test]
    fn a_run_writes_shared_text_once() {
        let agent =
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko)";
        let event = |id: &str| {
            let sign_in = SignIn {
                user_agent: Some(crate::Text::shared(agent)),
                user_principal_name: Some(crate::Text::shared("adele.vance@contoso.example.com")),
                ..SignIn::default()
            };
            Event {
                meta: Meta {
                    id: crate::Text::from(id),
                    tenant_id: crate::Text::shared("0b5b7a2e-25b6-4c94-9d41-7ad16b3e2f0a"),
                    time: chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
                    time_source: crate::TimeSource::Record,
                    shape: crate::Shape::Graph,
                },
                body: Body::SignIn(Box::new(sign_in)),
            }
        };
        let one = event("7c6b1d4e-0a52-4f2b-8a1e-3d9c5e6f7a81");
        let two = event("9f1e2d3c-4b5a-4968-8776-655443322110");
        assert!(one.meta.tenant_id.is_shared());
        let parent = tempfile::tempdir().unwrap();
        let mut dir = SpillDir::create(Some(parent.path())).unwrap();
        dir.write_run([(0, &one)].into_iter()).unwrap();
        let alone = dir.bytes;
        let run = dir.write_run([(0, &one), (1, &two)].into_iter()).unwrap();
        let second = dir.bytes - 2 * alone;
        let text = agent.len() + 31 + 36;
        assert!(
            second + text as u64 <= alone,
            "the second event names the shared text by number: {second} B against {alone} B"
        );
        let mut back = run.open().unwrap();
        for want in [&one, &two] {
            let (_, got) = back.next_event().unwrap().unwrap();
            assert_eq!(got.meta.id, want.meta.id);
            let Body::SignIn(s) = &got.body else {
                panic!("a sign-in")
            };
            assert_eq!(s.user_agent.as_deref(), Some(agent));
            assert!(s.user_agent.as_ref().unwrap().is_shared());
        }
        // Outside a run: the same bytes as text of its own.
        let plain = crate::Text::from(agent);
        assert!(!plain.is_shared());
        assert_eq!(
            bincode::serialize(&crate::Text::shared(agent)).unwrap(),
            bincode::serialize(&plain).unwrap()
        );
        let back: crate::Text = bincode::deserialize(&bincode::serialize(&plain).unwrap()).unwrap();
        assert_eq!(back, plain);
    }
}
