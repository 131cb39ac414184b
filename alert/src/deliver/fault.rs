//! Crash injection for the conservation tests (docs/alerting.md §5.9): a [`FaultPlan`] makes a worker
//! die at a step boundary, after leasing rows (before sending) or after sending (before marking).
//!
//! In production the plan is empty. `ENTRAWATCH_FAULT=exit-after-send:3` (or `exit-after-lease:N`)
//! makes the process exit with status 137 at the N-th such point, as a `kill -9` would leave it.
//! In-process tests use `stop-after-…`, which freezes every worker of the [`super::Delivery`]
//! (no marking, no lease release) so the test can drop it, reopen the outbox and start afresh.
//! Messages a worker has in flight alongside stay leased as they are, as in a real crash: each is
//! sent once more after the restart.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

/// The environment variable read by [`FaultPlan::from_env`].
pub const FAULT_ENV: &str = "ENTRAWATCH_FAULT";

/// Where a worker can be made to die.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultPoint {
    /// Rows are leased (inflight) but nothing was sent.
    AfterLease,
    /// The receiver has the message but the rows are not marked.
    AfterSend,
}

/// What dying means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultAction {
    /// `std::process::exit(137)`.
    Exit,
    /// Every worker stops where it is (in-process crash).
    Stop,
}

/// An optional crash at the N-th passage of a point, shared by all workers of one delivery.
#[derive(Debug, Clone, Default)]
pub struct FaultPlan {
    trigger: Option<(FaultPoint, FaultAction, u32)>,
    passed: Arc<AtomicU32>,
    crashed: Arc<AtomicBool>,
}

impl FaultPlan {
    /// No crash (production).
    pub fn none() -> FaultPlan {
        FaultPlan::default()
    }

    /// An in-process crash at the `n`-th passage of `point` (1 for the first).
    pub fn stop_at(point: FaultPoint, n: u32) -> FaultPlan {
        FaultPlan {
            trigger: Some((point, FaultAction::Stop, n.max(1))),
            ..FaultPlan::default()
        }
    }

    /// `exit-after-send:3`, `exit-after-lease:2`, `stop-after-send:1`, `stop-after-lease:1`.
    pub fn parse(s: &str) -> Result<FaultPlan, String> {
        let (what, n) = s.trim().split_once(':').ok_or_else(|| {
            format!("{FAULT_ENV}: expected <action>-after-<point>:<n>, got {s:?}")
        })?;
        let n: u32 = n
            .parse()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| format!("{FAULT_ENV}: {n:?} is not a positive count"))?;
        let (action, point) = match what {
            "exit-after-send" => (FaultAction::Exit, FaultPoint::AfterSend),
            "exit-after-lease" => (FaultAction::Exit, FaultPoint::AfterLease),
            "stop-after-send" => (FaultAction::Stop, FaultPoint::AfterSend),
            "stop-after-lease" => (FaultAction::Stop, FaultPoint::AfterLease),
            other => return Err(format!("{FAULT_ENV}: unknown fault {other:?}")),
        };
        Ok(FaultPlan {
            trigger: Some((point, action, n)),
            ..FaultPlan::default()
        })
    }

    /// The plan in `ENTRAWATCH_FAULT`, read once at start; none when unset or invalid (logged).
    pub fn from_env() -> FaultPlan {
        match std::env::var(FAULT_ENV) {
            Ok(v) if !v.trim().is_empty() => match FaultPlan::parse(&v) {
                Ok(plan) => {
                    tracing::warn!(fault = %v, "fault injection is armed");
                    plan
                }
                Err(e) => {
                    tracing::error!(error = %e, "fault injection ignored");
                    FaultPlan::none()
                }
            },
            _ => FaultPlan::none(),
        }
    }

    /// Whether an in-process crash has happened (every worker stops at its next step).
    pub fn crashed(&self) -> bool {
        self.crashed.load(Ordering::SeqCst)
    }

    /// Called by a worker at `point`; true when it must stop now (an `Exit` plan never returns).
    pub(crate) fn hit(&self, point: FaultPoint) -> bool {
        if self.crashed() {
            return true;
        }
        let Some((at, action, n)) = self.trigger else {
            return false;
        };
        if at != point || self.passed.fetch_add(1, Ordering::SeqCst) + 1 != n {
            return false;
        }
        match action {
            FaultAction::Exit => {
                tracing::error!(point = ?point, "fault injection: exiting");
                std::process::exit(137);
            }
            FaultAction::Stop => {
                self.crashed.store(true, Ordering::SeqCst);
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_fires_once_at_the_nth_passage() {
        assert!(FaultPlan::parse("exit-after-send:3").is_ok());
        for bad in [
            "exit-after-send",
            "exit-after-send:0",
            "boom:1",
            "stop-after-lease:x",
        ] {
            assert!(FaultPlan::parse(bad).is_err(), "{bad}");
        }
        let plan = FaultPlan::parse("stop-after-send:2").unwrap();
        assert!(!plan.hit(FaultPoint::AfterLease));
        assert!(!plan.hit(FaultPoint::AfterSend));
        assert!(!plan.crashed());
        assert!(plan.hit(FaultPoint::AfterSend));
        assert!(plan.crashed());
        // after the crash every worker stops wherever it is
        assert!(plan.clone().hit(FaultPoint::AfterLease));
        assert!(!FaultPlan::none().hit(FaultPoint::AfterSend));
    }
}
