//! The service's live silences: the config file's `[[silences]]` plus those made through the admin
//! API, shared with the alert stage and kept in the outbox database so they survive restarts.
//!
//! What comes in: the config's [`SilenceConfig`]s and the outbox path at start; admin requests
//! (list, add a JSON [`Silence`], expire by id) and reloaded config silences while running. What
//! goes out: the shared [`Silences`] the stage consults, and answers for the admin API. An admin
//! change is written to the outbox before the stage sees it, so an acknowledged silence is durable.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use chrono::Utc;
use serde_json::Value;

use crate::outbox::Outbox;
use crate::silence::{Silence, SilenceConfig, Silences};

/// The shared set and where it is stored. Cloning shares the set.
#[derive(Debug, Clone)]
pub struct SilenceStore {
    shared: Arc<RwLock<Silences>>,
    outbox_path: PathBuf,
}

impl SilenceStore {
    /// The config's silences plus those stored in the outbox at `outbox_path` (a stored silence
    /// that no longer parses is logged and left out). Every config problem at once.
    pub fn open(outbox_path: &Path, config: &[SilenceConfig]) -> Result<SilenceStore, String> {
        let mut silences = Silences::from_config(config)
            .map_err(|p| format!("silences:\n  {}", p.join("\n  ")))?;
        let outbox = Outbox::open(outbox_path).map_err(|e| e.to_string())?;
        let stored = outbox.list_silences().map_err(|e| e.to_string())?;
        let (from_api, problems) = Silences::from_values(stored);
        for p in problems {
            tracing::warn!(problem = %p, "stored silence ignored");
        }
        for s in from_api.iter() {
            let _ = silences.add(s.clone());
        }
        Ok(SilenceStore {
            shared: Arc::new(RwLock::new(silences)),
            outbox_path: outbox_path.to_owned(),
        })
    }

    /// The set the alert stage consults.
    pub fn shared(&self) -> Arc<RwLock<Silences>> {
        Arc::clone(&self.shared)
    }

    /// Every silence as JSON, by id.
    pub fn list(&self) -> Value {
        let all = self.shared.read().expect("silences lock");
        Value::Array(all.to_values().into_iter().map(|(_, v)| v).collect())
    }

    /// Adds the silence `value` describes once it is valid and stored; the silence added (the
    /// caller logs who made it, from where).
    pub fn add(&self, value: Value) -> Result<Silence, String> {
        let silence: Silence =
            serde_json::from_value(value).map_err(|e| format!("not a silence: {e}"))?;
        let problems = silence.validate("silence");
        if !problems.is_empty() {
            return Err(problems.join("\n"));
        }
        self.store(&silence.id, &silence)?;
        self.shared
            .write()
            .expect("silences lock")
            .add(silence.clone())
            .map_err(|p| p.join("\n"))?;
        Ok(silence)
    }

    /// Ends silence `id` now and stores it so; the silence as it now is.
    pub fn expire(&self, id: &str) -> Result<Silence, String> {
        let mut all = self.shared.write().expect("silences lock");
        let expired = all
            .expire(id, Utc::now())
            .map_err(|e| e.to_string())?
            .clone();
        self.store(id, &expired)?;
        Ok(expired)
    }

    /// Adds the silences of a reloaded config file (already checked with
    /// [`Silences::from_config`]).
    pub fn add_from_config(&self, file: &Silences) {
        let mut all = self.shared.write().expect("silences lock");
        for s in file.iter() {
            let _ = all.add(s.clone());
        }
    }

    fn store(&self, id: &str, silence: &Silence) -> Result<(), String> {
        let value = serde_json::to_value(silence).map_err(|e| e.to_string())?;
        let mut outbox = Outbox::open(&self.outbox_path).map_err(|e| e.to_string())?;
        outbox.put_silence(id, &value).map_err(|e| e.to_string())
    }
}
