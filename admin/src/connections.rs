//! The admin server's open connections, bounded in number.
//!
//! Each connection carries one request (keep-alive is off). At the limit, a new connection takes
//! the place of the oldest one that has not finished sending its request head yet (a stalled or
//! slow client, which is what a flood of half-open connections is), so probes and scrapes still
//! get through; when every connection is busy with a request, the new one is closed at once.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::task::AbortHandle;

/// The open connections, oldest first.
#[derive(Debug)]
pub struct Connections {
    limit: usize,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    next_id: u64,
    open: BTreeMap<u64, Slot>,
}

#[derive(Debug)]
struct Slot {
    /// Its request head has arrived: it is not taken over at the limit.
    busy: bool,
    /// Ends the connection's task (and closes its socket) when another connection takes its place.
    abort: Option<AbortHandle>,
}

/// What happened to a new connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Served.
    Admitted,
    /// Served in place of the oldest connection still waiting for its request head.
    Replaced,
    /// Every connection is busy with a request: close this one.
    Full,
}

impl Connections {
    pub fn new(limit: usize) -> Arc<Connections> {
        Arc::new(Connections {
            limit: limit.max(1),
            inner: Mutex::new(Inner::default()),
        })
    }

    /// Makes room for a new connection and starts it with `start` (given its id, ids counting up
    /// from 0; returning the handle that can end it), or refuses it.
    pub fn admit(&self, start: impl FnOnce(u64) -> AbortHandle) -> Admission {
        let mut inner = self.inner.lock().expect("connections lock");
        let mut replaced = false;
        if inner.open.len() >= self.limit {
            let oldest_waiting = inner
                .open
                .iter()
                .find(|(_, slot)| !slot.busy)
                .map(|(id, _)| *id);
            let Some(id) = oldest_waiting else {
                return Admission::Full;
            };
            if let Some(slot) = inner.open.remove(&id)
                && let Some(abort) = slot.abort
            {
                abort.abort();
            }
            replaced = true;
        }
        let id = inner.next_id;
        inner.next_id += 1;
        // Started under the lock: the task's `close` waits for its slot to exist.
        let abort = start(id);
        inner.open.insert(
            id,
            Slot {
                busy: false,
                abort: Some(abort),
            },
        );
        if replaced {
            Admission::Replaced
        } else {
            Admission::Admitted
        }
    }

    /// Connection `id` has sent its request head. False when it already lost its place (its task
    /// is being ended): it must not act on the request.
    pub fn mark_busy(&self, id: u64) -> bool {
        let mut inner = self.inner.lock().expect("connections lock");
        match inner.open.get_mut(&id) {
            Some(slot) => {
                slot.busy = true;
                true
            }
            None => false,
        }
    }

    /// Connection `id` has ended.
    pub fn close(&self, id: u64) {
        self.inner
            .lock()
            .expect("connections lock")
            .open
            .remove(&id);
    }

    /// Connections open now.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.inner.lock().expect("connections lock").open.len()
    }
}

/// Frees connection `id`'s slot when its task ends, however it ends (finished, timed out, ended).
#[derive(Debug)]
pub struct SlotGuard {
    pub connections: Arc<Connections>,
    pub id: u64,
}

impl Drop for SlotGuard {
    fn drop(&mut self) {
        self.connections.close(self.id);
    }
}

/// A log line about a repeated condition at most once per interval, with how many occurrences
/// went unlogged in between (a flood must not turn into a flood of log lines).
#[derive(Debug)]
pub struct Throttle {
    every: Duration,
    last: Option<Instant>,
    unlogged: u64,
}

impl Throttle {
    pub fn new(every: Duration) -> Throttle {
        Throttle {
            every,
            last: None,
            unlogged: 0,
        }
    }

    /// One more occurrence at `now`: `Some(n)` when it is to be logged, `n` being the occurrences
    /// not logged since the last line; `None` when it is to be counted only.
    pub fn hit(&mut self, now: Instant) -> Option<u64> {
        match self.last {
            Some(last) if now.duration_since(last) < self.every => {
                self.unlogged += 1;
                None
            }
            _ => {
                self.last = Some(now);
                Some(std::mem::take(&mut self.unlogged))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A task that never ends until aborted, and a way to see whether it was.
    fn parked(rt: &tokio::runtime::Runtime) -> tokio::task::JoinHandle<()> {
        rt.spawn(std::future::pending::<()>())
    }

    #[test]
    fn at_the_limit_the_oldest_waiting_connection_makes_room() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let conns = Connections::new(2);
        let tasks = std::cell::RefCell::new(Vec::new());
        let start = |_id: u64| {
            let t = parked(&rt);
            let abort = t.abort_handle();
            tasks.borrow_mut().push(t);
            abort
        };
        assert_eq!(conns.admit(start), Admission::Admitted);
        assert_eq!(conns.admit(start), Admission::Admitted);
        // 0 is busy with a request: 1, still waiting for its head, makes room for 2.
        assert!(conns.mark_busy(0));
        assert_eq!(conns.admit(start), Admission::Replaced);
        assert_eq!(conns.len(), 2);
        assert!(!conns.mark_busy(1), "a replaced connection must not act");
        assert!(conns.mark_busy(2));
        // Both busy: the next one is refused, nothing is started.
        assert_eq!(conns.admit(start), Admission::Full);
        assert_eq!(tasks.borrow().len(), 3);
        rt.block_on(async {
            for _ in 0..10 {
                tokio::task::yield_now().await;
            }
        });
        let ended: Vec<bool> = tasks.borrow().iter().map(|t| t.is_finished()).collect();
        assert_eq!(ended, vec![false, true, false]);
        // A finished connection frees its slot.
        conns.close(0);
        assert_eq!(conns.admit(start), Admission::Admitted);
        for t in tasks.borrow().iter() {
            t.abort();
        }
    }

    #[test]
    fn throttle_logs_once_per_interval_and_counts_the_rest() {
        let mut t = Throttle::new(Duration::from_secs(10));
        let t0 = Instant::now();
        assert_eq!(t.hit(t0), Some(0));
        assert_eq!(t.hit(t0 + Duration::from_secs(1)), None);
        assert_eq!(t.hit(t0 + Duration::from_secs(9)), None);
        assert_eq!(t.hit(t0 + Duration::from_secs(10)), Some(2));
        assert_eq!(t.hit(t0 + Duration::from_secs(11)), None);
        assert_eq!(t.hit(t0 + Duration::from_secs(30)), Some(1));
    }
}
