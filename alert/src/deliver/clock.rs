//! Time for the delivery workers: [`SystemClock`] in production, [`ManualClock`] in tests, so a
//! timeline (group waits, backoff, `Retry-After`, deadlines) runs without real sleeps.
//!
//! Workers read [`Clock::now`] and wait with [`Clock::sleep_until`]; they always re-check the outbox
//! after a wait, so a sleep that ends early is harmless.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::watch;

/// A future a clock resolves when its time has come.
pub type Sleep = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// Where delivery gets the time.
pub trait Clock: Send + Sync + fmt::Debug {
    fn now(&self) -> DateTime<Utc>;
    /// Resolves at (or, harmlessly, before) `deadline`.
    fn sleep_until(&self, deadline: DateTime<Utc>) -> Sleep;
}

/// The wall clock. Sleeps are capped so a clock step is noticed within a few seconds.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

const MAX_NAP: Duration = Duration::from_secs(5);

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    fn sleep_until(&self, deadline: DateTime<Utc>) -> Sleep {
        let wait = (deadline - Utc::now())
            .to_std()
            .unwrap_or(Duration::ZERO)
            .min(MAX_NAP);
        Box::pin(tokio::time::sleep(wait))
    }
}

/// A clock that moves only when told to (tests). Clones share the time.
#[derive(Debug, Clone)]
pub struct ManualClock {
    now: Arc<watch::Sender<DateTime<Utc>>>,
}

impl ManualClock {
    pub fn new(start: DateTime<Utc>) -> ManualClock {
        ManualClock {
            now: Arc::new(watch::Sender::new(start)),
        }
    }

    /// Moves the time forward by `by`, waking every sleeper whose time has come.
    pub fn advance(&self, by: Duration) {
        let by = chrono::Duration::from_std(by).unwrap_or(chrono::Duration::MAX);
        self.now
            .send_modify(|t| *t = t.checked_add_signed(by).unwrap_or(*t));
    }

    /// Sets the time (never backwards).
    pub fn set(&self, to: DateTime<Utc>) {
        self.now.send_modify(|t| *t = (*t).max(to));
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.now.borrow()
    }

    fn sleep_until(&self, deadline: DateTime<Utc>) -> Sleep {
        let mut rx = self.now.subscribe();
        Box::pin(async move {
            loop {
                if *rx.borrow_and_update() >= deadline {
                    return;
                }
                if rx.changed().await.is_err() {
                    std::future::pending::<()>().await;
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn manual_sleep_ends_only_when_the_clock_passes_it() {
        let start = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let clock = ManualClock::new(start);
        let mut sleep = clock.sleep_until(start + chrono::Duration::seconds(2));
        let poll = |s: &mut Sleep| {
            let waker = std::task::Waker::noop();
            let mut cx = std::task::Context::from_waker(waker);
            s.as_mut().poll(&mut cx).is_ready()
        };
        assert!(!poll(&mut sleep));
        clock.advance(Duration::from_secs(1));
        assert!(!poll(&mut sleep));
        clock.advance(Duration::from_secs(1));
        assert!(poll(&mut sleep));
        clock.set(start);
        assert_eq!(clock.now(), start + chrono::Duration::seconds(2));
    }
}
