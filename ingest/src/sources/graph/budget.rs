//! Request budgets: Graph's throttling limits, kept on our side so a tenant is never throttled, and
//! shared fairly among hundreds of tenants.
//!
//! In: the configured limits ([`BudgetConfig`]), a [`Scale`] (1.0 in service; tests shrink time).
//! Out: [`Budgets::acquire`], which waits until one request of a [`Class`] may go to a tenant and
//! hands back a slot of the bounded worker pool; [`Budgets::throttled`] / [`Budgets::succeeded`]
//! feed 429s back (a `Retry-After` pauses that tenant's class; without one, exponential backoff
//! with full jitter).
//!
//! Each tenant has one sliding-window log per class: at most `limit` sends in any window of
//! `period` (stretched by a small margin, so network jitter never lets Graph count one more than
//! the limit). The reporting class also has one app-wide window across tenants, waited for behind
//! a FIFO turnstile. The worker pool (one FIFO semaphore per class) is taken *after* the tenant's
//! window has room and given back before any wait, so a tenant with a 30-day backlog queues
//! behind every other tenant for each page and never holds a worker while it waits for its own
//! budget: no tenant starves, and no class waits behind another. Within a tenant, the lanes that
//! share a class (risky users and risk detections; the sign-in kinds and audits) take turns, the
//! lane served least recently first ([`Turns`]), so a lane paging through a backlog cannot keep
//! another from its turn, and under another app's throttling the successes are shared too.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use super::config::BudgetConfig;
use super::lanes::{Class, Lane};

/// Time scale for everything the source waits on (poll interval, budgets, backoff, Retry-After):
/// 1.0 in service; tests use less so a 10 s window lasts milliseconds.
#[derive(Debug, Clone, Copy)]
pub struct Scale {
    pub factor: f64,
    /// Unscaled extra time added to every budget window (covers network jitter).
    pub slack: Duration,
}

impl Default for Scale {
    fn default() -> Self {
        Scale {
            factor: 1.0,
            slack: Duration::from_millis(50),
        }
    }
}

impl Scale {
    pub fn of(&self, d: Duration) -> Duration {
        d.mul_f64(self.factor)
    }

    /// A budget window: the documented period, 5 % longer, scaled, plus the slack.
    fn window(&self, period: Duration) -> Duration {
        self.of(period.mul_f64(1.05)) + self.slack
    }
}

/// At most `limit` sends in any `period`; optionally paused (after a 429).
#[derive(Debug)]
struct Window {
    limit: usize,
    period: Duration,
    sends: VecDeque<Instant>,
    paused_until: Option<Instant>,
    failures: u32,
}

impl Window {
    fn new(limit: u32, period: Duration) -> Window {
        Window {
            limit: limit.max(1) as usize,
            period,
            sends: VecDeque::new(),
            paused_until: None,
            failures: 0,
        }
    }

    /// When the next send may go (`None`: now).
    fn free_at(&mut self, now: Instant) -> Option<Instant> {
        while let Some(&first) = self.sends.front() {
            if now.duration_since(first) >= self.period {
                self.sends.pop_front();
            } else {
                break;
            }
        }
        let mut at = self.paused_until.filter(|p| *p > now);
        if self.sends.len() >= self.limit {
            let full_until = self.sends[self.sends.len() - self.limit] + self.period;
            at = Some(at.map_or(full_until, |a| a.max(full_until)));
        }
        at
    }

    fn take(&mut self, now: Instant) {
        self.sends.push_back(now);
    }
}

/// One class of one tenant: its window, and the queue its lanes wait in.
#[derive(Debug)]
struct ClassBudget {
    window: Mutex<Window>,
    /// Held by the lane whose turn it is, from its arrival until its send is counted.
    turns: Turns,
}

impl ClassBudget {
    fn new(limit: u32, period: Duration) -> ClassBudget {
        ClassBudget {
            window: Mutex::new(Window::new(limit, period)),
            turns: Turns::default(),
        }
    }
}

/// Whose turn it is among the lanes of one tenant sharing a class: of the lanes waiting, the one
/// *served* (answered 200) least recently, then the one that came first. In arrival order alone,
/// two lanes alternate their attempts; but when another app spends most of the tenant's Identity
/// Protection budget and only some attempts succeed, the same lane can land on every success while
/// the other starves. Least recently served gives the next attempt to the lane that has waited
/// longest for an answer, so successes alternate too.
#[derive(Debug, Default)]
struct Turns {
    state: Mutex<TurnState>,
    changed: tokio::sync::Notify,
}

#[derive(Debug, Default)]
struct TurnState {
    /// A lane holds the turn.
    busy: bool,
    /// Waiting lanes with their arrival tickets.
    waiting: Vec<(Lane, u64)>,
    /// Per lane, the order of its last success (0: never served).
    served: HashMap<Lane, u64>,
    tickets: u64,
    successes: u64,
}

impl TurnState {
    /// The waiting lane whose turn is next.
    fn next(&self) -> Option<(Lane, u64)> {
        self.waiting
            .iter()
            .copied()
            .min_by_key(|(lane, ticket)| (self.served.get(lane).copied().unwrap_or(0), *ticket))
    }
}

/// The turn, until dropped.
struct Turn<'a>(&'a Turns);

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        lock(&self.0.state).busy = false;
        self.0.changed.notify_waiters();
    }
}

/// A place in the queue; leaves it when dropped (a lane that stops waiting).
struct Waiting<'a> {
    turns: &'a Turns,
    ticket: u64,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        lock(&self.turns.state)
            .waiting
            .retain(|(_, t)| *t != self.ticket);
        self.turns.changed.notify_waiters();
    }
}

impl Turns {
    /// Waits until `window` has room and, among the lanes waiting then, it is `lane`'s turn.
    /// Deciding at the instant the window frees (not when the previous holder let go) is what lets
    /// a lane that came straight back for another try lose its turn to one served less recently.
    async fn take(&self, lane: Lane, window: &Mutex<Window>) -> Turn<'_> {
        let ticket = {
            let mut st = lock(&self.state);
            st.tickets += 1;
            let ticket = st.tickets;
            st.waiting.push((lane, ticket));
            ticket
        };
        let place = Waiting {
            turns: self,
            ticket,
        };
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            let free_at = {
                let mut st = lock(&self.state);
                if !st.busy && st.next().is_some_and(|(_, t)| t == ticket) {
                    match lock(window).free_at(Instant::now()) {
                        None => {
                            st.busy = true;
                            st.waiting.retain(|(_, t)| *t != ticket);
                            std::mem::forget(place);
                            return Turn(self);
                        }
                        at => at,
                    }
                } else {
                    None
                }
            };
            match free_at {
                Some(at) => {
                    tokio::select! {
                        _ = tokio::time::sleep_until(at) => {}
                        _ = &mut changed => {}
                    }
                }
                None => changed.await,
            }
        }
    }

    fn served(&self, lane: Lane) {
        {
            let mut st = lock(&self.state);
            st.successes += 1;
            let n = st.successes;
            st.served.insert(lane, n);
        }
        self.changed.notify_waiters();
    }
}

/// One tenant's budgets, one per class.
#[derive(Debug)]
pub struct TenantBudget {
    reports: ClassBudget,
    identity_protection: ClassBudget,
    directory: ClassBudget,
}

impl TenantBudget {
    fn class(&self, class: Class) -> &ClassBudget {
        match class {
            Class::Reports => &self.reports,
            Class::IdentityProtection => &self.identity_protection,
            Class::Directory => &self.directory,
        }
    }

    fn window(&self, class: Class) -> &Mutex<Window> {
        &self.class(class).window
    }
}

/// Every tenant's budgets, the app-wide reporting window and the worker pool.
#[derive(Debug)]
pub struct Budgets {
    cfg: BudgetConfig,
    scale: Scale,
    app_reports: Option<Mutex<Window>>,
    /// Reporting requests wait for the app-wide window one at a time, in arrival order.
    turnstile: tokio::sync::Mutex<()>,
    /// The worker pool, one share per class (half for reports, a quarter each for the others),
    /// so a class waiting on its own limits never holds up another's requests.
    pools: [std::sync::Arc<Semaphore>; 3],
}

impl Budgets {
    pub fn new(cfg: &BudgetConfig, scale: Scale) -> Budgets {
        let app_reports = (cfg.app_reports_per_10s > 0).then(|| {
            Mutex::new(Window::new(
                cfg.app_reports_per_10s,
                scale.window(Duration::from_secs(10)),
            ))
        });
        Budgets {
            cfg: cfg.clone(),
            scale,
            app_reports,
            turnstile: tokio::sync::Mutex::new(()),
            pools: {
                let n = cfg.max_concurrent_requests;
                [n / 2, n / 4, n / 4].map(|k| std::sync::Arc::new(Semaphore::new(k.max(1))))
            },
        }
    }

    pub fn scale(&self) -> Scale {
        self.scale
    }

    pub fn tenant(&self) -> TenantBudget {
        let s = &self.scale;
        TenantBudget {
            reports: ClassBudget::new(self.cfg.reports_per_10s, s.window(Duration::from_secs(10))),
            identity_protection: ClassBudget::new(
                self.cfg.identity_protection_per_second,
                s.window(Duration::from_secs(1)),
            ),
            directory: ClassBudget::new(
                self.cfg.directory_per_10s,
                s.window(Duration::from_secs(10)),
            ),
        }
    }

    /// Waits until one `class` request may go to `tenant`, and for a worker slot; the send is
    /// counted against the windows when this returns (send right away, holding the slot).
    ///
    /// Order: the tenant's own queue for the class, then its window (only its few lanes wait
    /// there, in arrival order); then, for the reporting class, the app-wide window behind a
    /// FIFO turnstile, so hundreds of waiting lanes queue in order instead of all waking for
    /// every free slot; then the worker pool.
    pub async fn acquire(&self, tenant: &TenantBudget, lane: Lane) -> OwnedSemaphorePermit {
        let class = lane.class();
        let own = tenant.class(class);
        // Without the queue, lanes asleep until the same free instant race for it, and the lane
        // that comes straight back for its next page can win every time.
        let _own_turn = own.turns.take(lane, &own.window).await;
        loop {
            wait_until_free(&own.window).await;
            let turn = match self.app_window(class) {
                Some(app) => {
                    let turn = self.turnstile.lock().await;
                    wait_until_free(app).await;
                    Some(turn)
                }
                None => None,
            };
            let pool = match class {
                Class::Reports => &self.pools[0],
                Class::IdentityProtection => &self.pools[1],
                Class::Directory => &self.pools[2],
            };
            let permit = pool
                .clone()
                .acquire_owned()
                .await
                .expect("the pool is never closed");
            let now = Instant::now();
            let mut window = lock(&own.window);
            let mut app = self.app_window(class).map(lock);
            let free = window.free_at(now).is_none()
                && app.as_mut().is_none_or(|a| a.free_at(now).is_none());
            if free {
                window.take(now);
                if let Some(a) = app.as_mut() {
                    a.take(now);
                }
                drop(turn);
                return permit;
            }
            // A 429 paused the window while this lane waited for a worker: start over, giving
            // back the app-wide turn and the slot (this tenant's turn is kept).
        }
    }

    fn app_window(&self, class: Class) -> Option<&Mutex<Window>> {
        match class {
            Class::Reports => self.app_reports.as_ref(),
            _ => None,
        }
    }

    #[cfg(test)]
    fn free_at(&self, tenant: &TenantBudget, class: Class, now: Instant) -> Option<Instant> {
        let own = lock(tenant.window(class)).free_at(now);
        let app = self.app_window(class).and_then(|w| lock(w).free_at(now));
        match (own, app) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        }
    }

    /// A 429: pause the tenant's class for `retry_after` (already in real time), or back off
    /// exponentially with full jitter. Returns the pause.
    pub fn throttled(
        &self,
        tenant: &TenantBudget,
        class: Class,
        retry_after: Option<Duration>,
    ) -> Duration {
        let mut w = lock(tenant.window(class));
        w.failures = w.failures.saturating_add(1);
        let pause = retry_after.unwrap_or_else(|| {
            backoff(
                w.failures - 1,
                self.scale.of(Duration::from_secs(1)),
                self.scale.of(Duration::from_secs(120)),
            )
        });
        let until = Instant::now() + pause;
        w.paused_until = Some(w.paused_until.map_or(until, |p| p.max(until)));
        pause
    }

    /// A request of this lane succeeded: its class's backoff starts over, and the lane goes to the
    /// back of its class's queue.
    pub fn succeeded(&self, tenant: &TenantBudget, lane: Lane) {
        let own = tenant.class(lane.class());
        lock(&own.window).failures = 0;
        own.turns.served(lane);
    }
}

/// Sleeps until `window` has room for one more send.
async fn wait_until_free(window: &Mutex<Window>) {
    loop {
        let free_at = lock(window).free_at(Instant::now());
        match free_at {
            Some(at) => tokio::time::sleep_until(at).await,
            None => return,
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Full-jitter exponential backoff: uniform in `[0, min(cap, base * 2^attempt)]`.
pub fn backoff(attempt: u32, base: Duration, cap: Duration) -> Duration {
    let ceiling = base
        .checked_mul(1u32.checked_shl(attempt.min(30)).unwrap_or(u32::MAX))
        .unwrap_or(cap)
        .min(cap);
    ceiling.mul_f64(random_unit())
}

/// A uniform number in `[0, 1)` (splitmix64; jitter only, not for secrets).
pub fn random_unit() -> f64 {
    static STATE: AtomicU64 = AtomicU64::new(0);
    let mut s = STATE.load(Ordering::Relaxed);
    if s == 0 {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0x9E37_79B9, |d| d.as_nanos() as u64)
            | 1;
        let _ = STATE.compare_exchange(0, seed, Ordering::Relaxed, Ordering::Relaxed);
        s = STATE.load(Ordering::Relaxed);
    }
    let mut z = STATE
        .fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed)
        .wrapping_add(0x9E37_79B9_7F4A_7C15)
        ^ s.rotate_left(7);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_never_admits_more_than_its_limit_in_any_period() {
        let start = Instant::now();
        let mut w = Window::new(5, Duration::from_secs(10));
        let mut sends = Vec::new();
        let mut now = start;
        // Try to send every 100 ms for a minute; record when it is allowed.
        for _ in 0..600 {
            if w.free_at(now).is_none() {
                w.take(now);
                sends.push(now);
            }
            now += Duration::from_millis(100);
        }
        for (i, s) in sends.iter().enumerate() {
            let in_window = sends[i..]
                .iter()
                .take_while(|t| t.duration_since(*s) < Duration::from_secs(10))
                .count();
            assert!(in_window <= 5, "{in_window} sends within 10 s");
        }
        // And it is not idle: 5 per 10 s over 60 s.
        assert!(sends.len() >= 30, "{}", sends.len());
    }

    #[test]
    fn a_pause_holds_the_window_shut() {
        let now = Instant::now();
        let mut w = Window::new(5, Duration::from_secs(10));
        w.paused_until = Some(now + Duration::from_secs(3));
        assert_eq!(w.free_at(now), Some(now + Duration::from_secs(3)));
        assert_eq!(w.free_at(now + Duration::from_secs(3)), None);
    }

    #[test]
    fn backoff_stays_within_its_ceiling() {
        for attempt in 0..40 {
            let d = backoff(attempt, Duration::from_secs(1), Duration::from_secs(120));
            let ceiling = Duration::from_secs(1u64 << attempt.min(7)).min(Duration::from_secs(120));
            assert!(d <= ceiling, "{attempt}: {d:?}");
        }
        let spread: Vec<f64> = (0..1000).map(|_| random_unit()).collect();
        assert!(spread.iter().all(|x| (0.0..1.0).contains(x)));
        let mean = spread.iter().sum::<f64>() / spread.len() as f64;
        assert!((0.4..0.6).contains(&mean), "{mean}");
    }

    /// The two Identity Protection lanes, by test name.
    fn lane_of(name: &str) -> Lane {
        if name == "a" {
            Lane::RiskyUsers
        } else {
            Lane::RiskDetections
        }
    }

    /// Budgets allowing one Identity Protection request per second (scaled by `factor`, no
    /// slack).
    fn one_identity_protection_per_second(factor: f64) -> Budgets {
        let cfg = BudgetConfig {
            identity_protection_per_second: 1,
            ..BudgetConfig::default()
        };
        Budgets::new(
            &cfg,
            Scale {
                factor,
                slack: Duration::ZERO,
            },
        )
    }

    #[tokio::test]
    async fn acquire_spaces_one_tenants_requests_and_leaves_others_free() {
        let b = one_identity_protection_per_second(0.05);
        let t1 = b.tenant();
        let t2 = b.tenant();
        let start = Instant::now();
        drop(b.acquire(&t1, Lane::RiskyUsers).await);
        // The first tenant's window is full; the second tenant's is not. (Asked as of `start`:
        // the window empties 52.5 ms after the send, and a busy machine may take that long to
        // get here.)
        assert!(b.free_at(&t1, Class::IdentityProtection, start).is_some());
        assert!(
            b.free_at(&t2, Class::IdentityProtection, Instant::now())
                .is_none()
        );
        assert!(b.free_at(&t1, Class::Reports, Instant::now()).is_none());
        drop(b.acquire(&t1, Lane::RiskyUsers).await);
        // One second, scaled and stretched: 52.5 ms between two sends of the same tenant.
        let same_tenant = start.elapsed();
        assert!(same_tenant >= Duration::from_millis(52), "{same_tenant:?}");
    }

    /// Two lanes of one tenant share a class and both always want to send (each comes straight
    /// back for its next page): they take turns. That is what the tenant's queue is for: without it
    /// the lanes would race for each free instant, and one could win ten times in a row while the
    /// other waited.
    #[tokio::test]
    async fn lanes_of_one_tenant_sharing_a_class_take_turns() {
        use std::sync::Arc;
        let budgets = Arc::new(one_identity_protection_per_second(0.02));
        let tenant = Arc::new(budgets.tenant());
        let sends = Arc::new(Mutex::new(Vec::new()));
        let lane = |name: &'static str, n: usize| {
            let (budgets, tenant, sends) = (budgets.clone(), tenant.clone(), sends.clone());
            tokio::spawn(async move {
                for _ in 0..n {
                    drop(budgets.acquire(&tenant, lane_of(name)).await);
                    lock(&sends).push(name);
                }
            })
        };
        let (a, b) = (lane("a", 10), lane("b", 10));
        a.await.unwrap();
        b.await.unwrap();
        let sends = lock(&sends).clone();
        assert_eq!(sends.len(), 20);
        // The lane polled second queues while the first waits for room for its second send.
        let both = sends.iter().position(|w| *w != sends[0]).unwrap();
        assert!(both <= 2, "{sends:?}");
        // From then until the first lane is done, no lane sends twice in a row.
        let last = sends[sends.len() - 1];
        let done = sends.len() - sends.iter().rev().take_while(|w| **w == last).count();
        for (i, pair) in sends[both..=done].windows(2).enumerate() {
            assert_ne!(
                pair[0],
                pair[1],
                "sends {} and {}: {sends:?}",
                both + i,
                both + i + 1
            );
        }
    }

    /// Another app spends every other slot of the tenant's Identity Protection budget (Graph counts
    /// its 1 request / s per tenant for all apps): only every other attempt of ours succeeds. In
    /// arrival order the two lanes alternate attempts, so one lane lands on every success and the
    /// other starves; served least recently first, the successes alternate. Scaled: a 1 s window
    /// lasts 10 ms; 40 attempts.
    #[tokio::test]
    async fn identity_protection_lanes_share_successes_under_another_apps_throttling() {
        use std::sync::Arc;
        use std::sync::atomic::AtomicUsize;
        let budgets = Arc::new(one_identity_protection_per_second(0.01));
        let tenant = Arc::new(budgets.tenant());
        let attempts = Arc::new(AtomicUsize::new(0));
        let successes = Arc::new(Mutex::new(Vec::new()));
        const ATTEMPTS: usize = 40;
        let lane = |name: &'static str| {
            let (budgets, tenant, attempts, successes) = (
                budgets.clone(),
                tenant.clone(),
                attempts.clone(),
                successes.clone(),
            );
            tokio::spawn(async move {
                loop {
                    let slot = budgets.acquire(&tenant, lane_of(name)).await;
                    let n = attempts.fetch_add(1, Ordering::SeqCst);
                    if n >= ATTEMPTS {
                        return;
                    }
                    // The answer takes a moment; the other lane is already waiting by then.
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    drop(slot);
                    if n % 2 == 0 {
                        budgets.succeeded(&tenant, lane_of(name));
                        lock(&successes).push(name);
                    }
                }
            })
        };
        let (a, b) = (lane("a"), lane("b"));
        let bound = Duration::from_secs(30);
        tokio::time::timeout(bound, a).await.unwrap().unwrap();
        tokio::time::timeout(bound, b).await.unwrap().unwrap();
        let successes = lock(&successes).clone();
        let of = |name: &str| successes.iter().filter(|s| **s == name).count();
        println!("successes in turn: {successes:?}");
        assert_eq!(successes.len(), ATTEMPTS / 2);
        assert!(
            of("a") >= 8 && of("b") >= 8,
            "a {} and b {}: {successes:?}",
            of("a"),
            of("b")
        );
    }
}
