//! The outbox from async code: a worker's own connection behind a mutex, used through tokio's
//! blocking pool so SQLite's fsyncs never stall the async threads.

use std::sync::Arc;

use crate::outbox::{Outbox, OutboxError};

/// A connection used from async code through the blocking pool.
#[derive(Debug, Clone)]
pub(crate) struct Db(Arc<std::sync::Mutex<Outbox>>);

impl Db {
    pub(crate) fn new(outbox: Outbox) -> Db {
        Db(Arc::new(std::sync::Mutex::new(outbox)))
    }

    pub(crate) async fn run<T, F>(&self, f: F) -> Result<T, OutboxError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Outbox) -> Result<T, OutboxError> + Send + 'static,
    {
        let db = self.0.clone();
        tokio::task::spawn_blocking(move || {
            let mut outbox = db.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            f(&mut outbox)
        })
        .await
        .map_err(|e| OutboxError::Task(e.to_string()))?
    }
}
