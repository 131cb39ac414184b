//! Pollers: one task per tenant and lane, reading time windows page by page.
//!
//! In: the lane's starting watermark (from the checkpoint, or a back-fill start), the shared
//! [`GraphClient`](super::client::GraphClient). Out: [`Msg::Page`] for every page (parsed with the
//! same reader `replay` uses, so every record meets the same normaliser) and [`Msg::Advance`] when a
//! window is complete.
//!
//! A cycle reads from `watermark - overlap` (or the back-fill start) to now, in ascending windows:
//! one open window in steady state; day-sized windows while back-filling (progress is logged and
//! checkpointed window by window), halved after a 503/504 or a window of many pages, doubled again
//! after a small one, and kept within a day of the other back-filling lanes
//! ([`InStep`](super::lanes::InStep)). A 429 waits as the budget says; a 403 parks the lane
//! (`stream_available` 0, one warning, a retry every `unavailable_retry_minutes`) without touching
//! any other lane or tenant; other failures back off and the next cycle starts where the watermark
//! stands, with one warning per new reason (repeats are debug lines) and one line when the lane
//! works again. The directory lane reads its two parts (assignments, eligibility) each with its
//! own availability ([`DirectoryPart`]).

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Duration as TimeDelta, Utc};
use tokio::time::Instant;

use super::batcher::Msg;
use super::budget::backoff;
use super::client::{Denied, Fetched};
use super::health::Health;
use super::lanes::{Lane, LaneKey, directory_urls};
use super::shared::{Shared, Tenant};
use crate::reader::Item;
use crate::source::AccessCause;

/// The first window asked for while catching up, and the widest it grows to.
const FIRST_SPAN: TimeDelta = TimeDelta::days(1);
const MAX_SPAN: TimeDelta = TimeDelta::days(7);
/// The narrowest window a 503 shrinks to.
const MIN_SPAN: TimeDelta = TimeDelta::minutes(1);
/// More pages than this in one window halves the next one.
const MANY_PAGES: u32 = 8;

/// Where a lane starts.
#[derive(Debug, Clone, Copy)]
pub enum Start {
    /// From a checkpointed watermark.
    Resume(DateTime<Utc>),
    /// First start: back-fill.
    Backfill,
}

enum WindowEnd {
    Done {
        pages: u32,
        records: usize,
    },
    Shrink,
    Unavailable(Denied),
    /// 404: Graph has no such collection for this tenant.
    NotFound(String),
    /// No token: Entra says the app has no consent in the tenant.
    NoConsent(String),
    Failed(String),
    Stopped,
}

enum CycleEnd {
    Done,
    Unavailable(Denied),
    /// Failed for want of the app's consent: retried like any failure, and reported as a loss
    /// of access ([`super::health`]).
    NoConsent(String),
    Failed(String),
    Stopped,
}

/// Polls one lane of one tenant until shutdown.
pub async fn run_lane(shared: Arc<Shared>, tenant: Arc<Tenant>, lane: Lane, start: Start) {
    let mut p = LanePoller {
        overlap: lane.overlap(&shared.cfg),
        lag: TimeDelta::minutes(shared.cfg.safety_lag_minutes as i64),
        watermark: DateTime::<Utc>::UNIX_EPOCH,
        first_floor: None,
        ceiling: None,
        unavailable: false,
        failures: 0,
        last_failure: None,
        parts_down: [false; 2],
        health_sent: Vec::new(),
        shared,
        tenant,
        lane,
    };
    p.shared.available(&p.tenant.handle, lane, true);
    if lane == Lane::DirectoryRoles {
        for part in DirectoryPart::ALL {
            p.shared
                .available_stream(&p.tenant.handle, part.name(), true);
        }
    }
    match start {
        Start::Resume(w) => p.watermark = w,
        Start::Backfill if lane == Lane::DirectoryRoles => {}
        Start::Backfill => {
            let days = p.backfill_days().await;
            // The source's one back-fill start (a shorter, Free tenant back-fill starts that much
            // later); a lane started long after the source (a tenant added while running) from
            // its own start.
            let shorter = p.shared.cfg.backfill_days.saturating_sub(days);
            let shared_from = p.shared.backfill_from + TimeDelta::days(i64::from(shorter));
            let own_from = Utc::now() - TimeDelta::days(i64::from(days));
            let from = shared_from.max(own_from - TimeDelta::minutes(10));
            p.watermark = from;
            p.first_floor = Some(from);
            p.shared.step.set((p.tenant.handle.index, lane), Some(from));
            tracing::info!(source = %p.shared.source, tenant = %p.tenant.handle.label,
                stream = lane.name(), days, "graph back-fill starting");
        }
    }
    p.run().await;
}

struct LanePoller {
    shared: Arc<Shared>,
    tenant: Arc<Tenant>,
    lane: Lane,
    overlap: TimeDelta,
    lag: TimeDelta,
    /// Where this poller has read to (ahead of the durable checkpoint).
    watermark: DateTime<Utc>,
    first_floor: Option<DateTime<Utc>>,
    /// The widest window known to work since the last 503/504 (`None`: no limit seen).
    ceiling: Option<TimeDelta>,
    unavailable: bool,
    failures: u32,
    /// The reason of the last failed cycle, while failing: a repeat of it is not logged again.
    last_failure: Option<String>,
    /// Directory lane: which of its parts ([`DirectoryPart`]) are unavailable.
    parts_down: [bool; 2],
    /// The health last told the batcher, per stream (sent again only on a change).
    health_sent: Vec<(&'static str, Health)>,
}

impl LanePoller {
    fn key(&self) -> LaneKey {
        (self.tenant.handle.index, self.lane)
    }

    /// Tells the batcher what `stream` answered, when it differs from what it was last told
    /// ([`super::health`]: a stream that had answered and is refused is a loss of access).
    /// False when the source is stopping.
    async fn health(&mut self, stream: &'static str, health: Health) -> bool {
        match self.health_sent.iter_mut().find(|(s, _)| *s == stream) {
            Some((_, h)) if *h == health => return true,
            Some((_, h)) => *h = health.clone(),
            None => self.health_sent.push((stream, health.clone())),
        }
        let msg = Msg::Health {
            tenant: self.tenant.handle.index,
            label: self.tenant.handle.label.clone(),
            stream,
            health,
        };
        self.shared.tx.send(msg).await.is_ok()
    }

    /// The health a token refused for want of the app's consent means.
    fn no_consent(reason: &str) -> Health {
        Health::Down {
            cause: AccessCause::Consent,
            detail: reason.to_owned(),
        }
    }

    /// The health a refusal means.
    fn refused(denied: &Denied) -> Health {
        Health::Down {
            cause: if denied.licence {
                AccessCause::Licence
            } else {
                AccessCause::Permission
            },
            detail: format!("HTTP 403: {}: {}", denied.code, denied.message),
        }
    }

    /// Back-fill depth: 30 days, or 7 for a tenant without P1/P2. Directory audits wait (bounded)
    /// for the user sign-in lane to learn which; sign-in and risk lanes need P1/P2 anyway.
    async fn backfill_days(&self) -> u32 {
        let cfg = &self.shared.cfg;
        if self.lane == Lane::DirectoryAudits && Lane::configured(cfg).contains(&Lane::SignInsUser)
        {
            let mut free = self.tenant.free.subscribe();
            let wait = self
                .shared
                .scale
                .of(Duration::from_secs((cfg.poll_interval_secs * 2).max(30)))
                .max(self.shared.licence_wait_floor);
            let known = tokio::time::timeout(wait, free.wait_for(Option::is_some)).await;
            if let Ok(Ok(v)) = known
                && *v == Some(true)
            {
                return cfg.free_backfill_days.min(cfg.backfill_days);
            }
        }
        cfg.backfill_days
    }

    async fn run(&mut self) {
        loop {
            if self.shared.stopping() {
                return;
            }
            let end = self.cycle().await;
            // A consent refusal is a failure like any other here, and a loss of access there
            // (the directory lane reported its parts itself).
            if let CycleEnd::NoConsent(reason) = &end
                && self.lane != Lane::DirectoryRoles
                && !self
                    .health(self.lane.name(), Self::no_consent(reason))
                    .await
            {
                return;
            }
            // Caught up, parked or failing: this lane holds no other until its next cycle finds
            // back-fill to do.
            self.shared.step.set(self.key(), None);
            let wait = match end {
                CycleEnd::Stopped => return,
                CycleEnd::Done => {
                    self.failures = 0;
                    if self.last_failure.take().is_some() {
                        tracing::info!(source = %self.shared.source, tenant = %self.tenant.handle.label,
                            stream = self.lane.name(), "graph poll works again");
                    }
                    if self.unavailable {
                        self.unavailable = false;
                        self.shared.available(&self.tenant.handle, self.lane, true);
                        tracing::info!(source = %self.shared.source, tenant = %self.tenant.handle.label,
                            stream = self.lane.name(), "graph stream available again");
                    }
                    self.shared.poll_interval()
                }
                CycleEnd::Unavailable(denied) => {
                    if !self.health(self.lane.name(), Self::refused(&denied)).await {
                        return;
                    }
                    let Denied {
                        licence,
                        code,
                        message,
                    } = denied;
                    if self.lane == Lane::SignInsUser && licence {
                        self.tenant.free.send_replace(Some(true));
                    }
                    if !self.unavailable {
                        self.unavailable = true;
                        self.shared.available(&self.tenant.handle, self.lane, false);
                        let reason = if licence {
                            "the tenant's licence does not include it (Entra ID P1/P2)"
                        } else {
                            "permission denied (check the app's permissions and admin consent)"
                        };
                        tracing::warn!(source = %self.shared.source, tenant = %self.tenant.handle.label,
                            tenant_id = %self.tenant.handle.id, stream = self.lane.name(), code = %code,
                            message = %message, retry_minutes = self.shared.cfg.unavailable_retry_minutes,
                            "graph stream unavailable for this tenant: {reason}; other streams and tenants go on");
                    }
                    self.shared.scale.of(Duration::from_secs(
                        self.shared.cfg.unavailable_retry_minutes * 60,
                    ))
                }
                CycleEnd::NoConsent(reason) | CycleEnd::Failed(reason) => {
                    self.failures += 1;
                    let interval = self
                        .shared
                        .scale
                        .of(Duration::from_secs(self.shared.cfg.poll_interval_secs));
                    let wait = interval
                        + backoff(
                            self.failures,
                            interval,
                            self.shared.scale.of(Duration::from_secs(1800)),
                        );
                    // One warning per change of state: the same reason again (a refused token
                    // while Entra's answer is held, a tenant still unreachable) is a debug line.
                    if self.last_failure.as_deref() == Some(reason.as_str()) {
                        tracing::debug!(source = %self.shared.source, tenant = %self.tenant.handle.label,
                            stream = self.lane.name(), failures = self.failures, reason = %reason,
                            retry_in_secs = wait.as_secs(), "graph poll failed again");
                    } else {
                        tracing::warn!(source = %self.shared.source, tenant = %self.tenant.handle.label,
                            stream = self.lane.name(), failures = self.failures, reason = %reason,
                            retry_in_secs = wait.as_secs(), "graph poll failed");
                    }
                    self.last_failure = Some(reason);
                    wait
                }
            };
            if !self.shared.sleep(wait).await {
                return;
            }
        }
    }

    /// One pass from the floor to now.
    async fn cycle(&mut self) -> CycleEnd {
        if self.lane == Lane::DirectoryRoles {
            return self.directory().await;
        }
        let mut lo = self
            .first_floor
            .take()
            .unwrap_or(self.watermark - self.overlap);
        let width = Utc::now() - lo;
        let catching_up = width > self.overlap * 2;
        // Windows start a day wide while catching up, and never wider than what last worked
        // after a 503/504 (that limit doubles again with every cycle that needs no shrinking).
        let mut span = match (catching_up && width > FIRST_SPAN, self.ceiling) {
            (true, c) => Some(FIRST_SPAN.min(c.unwrap_or(FIRST_SPAN))),
            (false, Some(c)) if width > c => Some(c),
            _ => None,
        };
        let mut shrunk = false;
        let mut total = 0usize;
        // Only a back-fill goes in step: re-reading the overlap (48 hours for the risk lanes) in
        // narrowed windows after a 503 is not one, and must not hold the other lanes.
        self.shared.step.set(self.key(), catching_up.then_some(lo));
        loop {
            // While back-filling, in step with the other lanes (lanes.rs, `InStep`).
            let limit = match span {
                Some(_) if catching_up => {
                    let mut shutdown = self.shared.shutdown.clone();
                    tokio::select! {
                        l = self.shared.step.turn(self.key(), lo) => l,
                        _ = shutdown.wait_for(|s| *s) => return CycleEnd::Stopped,
                    }
                }
                _ => None,
            };
            let asked_at = Utc::now();
            let hi = span
                .map(|s| limit.map_or(lo + s, |l| (lo + s).min(l)))
                .filter(|h| *h < asked_at);
            match self.window(lo, hi).await {
                WindowEnd::Done { pages, records } => {
                    if !self.health(self.lane.name(), Health::Up).await {
                        return CycleEnd::Stopped;
                    }
                    total += records;
                    let reached = hi.map_or(asked_at - self.lag, |h| h.min(asked_at - self.lag));
                    if reached > self.watermark {
                        self.watermark = reached;
                        let msg = Msg::Advance {
                            tenant: self.tenant.handle.index,
                            lane: self.lane,
                            watermark: reached,
                            backlog: hi.is_some(),
                        };
                        if self.shared.tx.send(msg).await.is_err() {
                            return CycleEnd::Stopped;
                        }
                    }
                    if catching_up {
                        tracing::info!(source = %self.shared.source, tenant = %self.tenant.handle.label,
                            stream = self.lane.name(), through = %self.watermark.to_rfc3339(),
                            records = total, done = hi.is_none(), "graph back-fill progress");
                    }
                    let Some(h) = hi else {
                        if !shrunk {
                            self.ceiling = self.ceiling.map(|c| c * 2).filter(|c| *c < MAX_SPAN);
                        }
                        return CycleEnd::Done;
                    };
                    lo = h;
                    if catching_up {
                        self.shared.step.set(self.key(), Some(lo));
                    }
                    span = span.map(|s| {
                        if pages > MANY_PAGES {
                            (s / 2).max(MIN_SPAN)
                        } else if pages <= 2 {
                            (s * 2).min(self.ceiling.unwrap_or(MAX_SPAN))
                        } else {
                            s
                        }
                    });
                }
                WindowEnd::Shrink => {
                    let now = Utc::now();
                    let current = span.unwrap_or(now - lo);
                    if current <= MIN_SPAN {
                        self.failures += 1;
                        let pause = backoff(
                            self.failures,
                            self.shared.scale.of(Duration::from_secs(2)),
                            self.shared.scale.of(Duration::from_secs(300)),
                        );
                        if !self.shared.sleep(pause).await {
                            return CycleEnd::Stopped;
                        }
                    }
                    span = Some((current / 2).max(MIN_SPAN));
                    self.ceiling = span;
                    shrunk = true;
                    tracing::debug!(source = %self.shared.source, tenant = %self.tenant.handle.label,
                        stream = self.lane.name(), span_secs = span.map_or(0, |s| s.num_seconds()),
                        "graph window shrunk after a 503/504");
                }
                WindowEnd::Unavailable(denied) => return CycleEnd::Unavailable(denied),
                WindowEnd::NoConsent(r) => return CycleEnd::NoConsent(r),
                WindowEnd::NotFound(r) | WindowEnd::Failed(r) => return CycleEnd::Failed(r),
                WindowEnd::Stopped => return CycleEnd::Stopped,
            }
        }
    }

    /// Every page of one window `[lo, hi]` (`hi` open: up to now).
    async fn window(&mut self, lo: DateTime<Utc>, hi: Option<DateTime<Utc>>) -> WindowEnd {
        let cfg = &self.shared.cfg;
        let url = self.lane.window_url(
            &cfg.graph_url,
            lo,
            hi,
            &cfg.sign_in_event_types,
            cfg.page_size,
        );
        self.pages(url, |_| {}).await
    }

    /// Follows `@odata.nextLink` from `url` to the last page, sending each page as it comes
    /// (`collect` instead keeps the items: directory snapshots are sent whole).
    async fn pages(&mut self, mut url: String, mut collect: impl FnMut(Vec<Item>)) -> WindowEnd {
        let handle = &self.tenant.handle;
        let keep = self.lane == Lane::DirectoryRoles;
        let (mut pages, mut records, mut throttled, mut errors) = (0u32, 0usize, 0u32, 0u32);
        loop {
            let Some(fetched) = self.shared.get(handle, self.lane, &url).await else {
                return WindowEnd::Stopped;
            };
            let retry = match fetched {
                Fetched::Page { body, next_link } => {
                    let received_at = Instant::now();
                    (throttled, errors) = (0, 0);
                    pages += 1;
                    self.shared
                        .ready
                        .send_if_modified(|r| !std::mem::replace(r, true));
                    if self.lane == Lane::SignInsUser {
                        self.tenant
                            .free
                            .send_if_modified(|f| f.replace(false).is_none());
                    }
                    let items = self.shared.parse(handle, self.lane, body).await;
                    records += items.len();
                    if keep {
                        collect(items);
                    } else if !items.is_empty() {
                        let msg = Msg::Page {
                            tenant: handle.index,
                            lane: self.lane,
                            items,
                            received_at,
                        };
                        if self.shared.tx.send(msg).await.is_err() {
                            return WindowEnd::Stopped;
                        }
                    }
                    match next_link {
                        Some(next) => url = next,
                        None => return WindowEnd::Done { pages, records },
                    }
                    continue;
                }
                Fetched::Throttled { pause } => {
                    throttled += 1;
                    tracing::debug!(source = %self.shared.source, tenant = %handle.label,
                        stream = self.lane.name(), pause_ms = pause.as_millis() as u64, "graph throttled (429)");
                    if throttled > 30 {
                        return WindowEnd::Failed("throttled (429) 30 times in a row".to_owned());
                    }
                    continue;
                }
                // The directory is read whole: there is no window to narrow, so a 503/504 there is
                // retried like any other transient failure.
                Fetched::Shrink { status } if keep => format!("HTTP {status}"),
                Fetched::Shrink { .. } => return WindowEnd::Shrink,
                Fetched::Unavailable(denied) => return WindowEnd::Unavailable(denied),
                Fetched::NotFound { code, message } => {
                    return WindowEnd::NotFound(format!("HTTP 404: {code}: {message}"));
                }
                Fetched::Unauthorized {
                    reason,
                    no_consent: true,
                } => return WindowEnd::NoConsent(reason),
                Fetched::Unauthorized { reason, .. } => return WindowEnd::Failed(reason),
                Fetched::Failed {
                    retryable: true,
                    reason,
                } => reason,
                Fetched::Failed {
                    retryable: false,
                    reason,
                } => return WindowEnd::Failed(reason),
            };
            errors += 1;
            if errors > 5 {
                return WindowEnd::Failed(format!("{retry} (5 times in a row)"));
            }
            let pause = backoff(
                errors,
                self.shared.scale.of(Duration::from_secs(1)),
                self.shared.scale.of(Duration::from_secs(60)),
            );
            if !self.shared.sleep(pause).await {
                return WindowEnd::Stopped;
            }
        }
    }

    /// The directory context: role assignments (with their principals) and eligibility
    /// schedules, each read whole and sent as its own snapshot. Each part has its own
    /// availability: a part Graph refuses (licence or permission 403, or 404) is marked
    /// unavailable once, with one log line, and asked again at the next refresh; the other part
    /// goes on. A transient failure of a part retries the lane (what was read is kept).
    async fn directory(&mut self) -> CycleEnd {
        let mut failed = None;
        let mut no_consent = false;
        for part in DirectoryPart::ALL {
            let url = part.url(&self.shared.cfg.graph_url);
            let received_at = Instant::now();
            let mut got = Vec::new();
            let outcome = match self.pages(url, |items| got.extend(items)).await {
                WindowEnd::Done { .. } => {
                    let msg = Msg::Snapshot {
                        tenant: self.tenant.handle.index,
                        part,
                        items: got,
                        received_at,
                    };
                    if self.shared.tx.send(msg).await.is_err()
                        || !self.health(part.name(), Health::Up).await
                    {
                        return CycleEnd::Stopped;
                    }
                    None
                }
                WindowEnd::Unavailable(denied) => {
                    if !self.health(part.name(), Self::refused(&denied)).await {
                        return CycleEnd::Stopped;
                    }
                    Some(if denied.licence {
                        PartDown::Licence(denied.code, denied.message)
                    } else {
                        PartDown::Permission(denied.code, denied.message)
                    })
                }
                WindowEnd::NotFound(r) => Some(PartDown::NotFound(r)),
                WindowEnd::Shrink => {
                    failed = Some(format!("{} read failed", part.name()));
                    continue;
                }
                WindowEnd::NoConsent(r) => {
                    if !self.health(part.name(), Self::no_consent(&r)).await {
                        return CycleEnd::Stopped;
                    }
                    no_consent = true;
                    failed = Some(r);
                    continue;
                }
                WindowEnd::Failed(r) => {
                    failed = Some(r);
                    continue;
                }
                WindowEnd::Stopped => return CycleEnd::Stopped,
            };
            self.part_availability(part, outcome);
        }
        if let Some(r) = failed {
            return if no_consent {
                CycleEnd::NoConsent(r)
            } else {
                CycleEnd::Failed(r)
            };
        }
        // The next snapshot after `directory_refresh_minutes`, not after the poll interval.
        let refresh = self.shared.scale.of(Duration::from_secs(
            self.shared.cfg.directory_refresh_minutes * 60,
        ));
        let poll = self
            .shared
            .scale
            .of(Duration::from_secs(self.shared.cfg.poll_interval_secs));
        if refresh > poll && !self.shared.sleep(refresh - poll).await {
            return CycleEnd::Stopped;
        }
        CycleEnd::Done
    }

    /// Records whether a directory part answered; logs and sets the gauge only on a change.
    fn part_availability(&mut self, part: DirectoryPart, down: Option<PartDown>) {
        let was_down = self.parts_down[part as usize];
        let now_down = down.is_some();
        if was_down == now_down {
            return;
        }
        self.parts_down[part as usize] = now_down;
        let handle = &self.tenant.handle;
        self.shared.available_stream(handle, part.name(), !now_down);
        let refresh_minutes = self.shared.cfg.directory_refresh_minutes;
        let (source, tenant, stream) = (&self.shared.source, &handle.label, part.name());
        match down {
            None => tracing::info!(source = %source, tenant = %tenant, stream,
                "graph stream available again"),
            Some(d) => {
                let (reason, detail) = d.describe();
                tracing::warn!(source = %source, tenant = %tenant, tenant_id = %handle.id, stream,
                    detail = %detail, retry_minutes = refresh_minutes,
                    "graph stream unavailable for this tenant: {reason}; asked again at each directory refresh, other streams go on");
            }
        }
    }
}

/// The two reads of the directory lane, each with its own availability.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DirectoryPart {
    /// Active role assignments with their principals (any licence).
    Assignments = 0,
    /// Eligible (PIM) role assignments: Entra ID P2 or Governance.
    Eligibility = 1,
}

impl DirectoryPart {
    pub const ALL: [DirectoryPart; 2] = [DirectoryPart::Assignments, DirectoryPart::Eligibility];

    /// The `stream` label in metrics and logs. Assignments keep the lane's name.
    pub fn name(self) -> &'static str {
        match self {
            DirectoryPart::Assignments => "directory_roles",
            DirectoryPart::Eligibility => "directory_roles_eligibility",
        }
    }

    fn url(self, graph_url: &str) -> String {
        let [assignments, eligibility] = directory_urls(graph_url);
        match self {
            DirectoryPart::Assignments => assignments,
            DirectoryPart::Eligibility => eligibility,
        }
    }
}

/// Why a directory part is unavailable.
enum PartDown {
    Licence(String, String),
    Permission(String, String),
    NotFound(String),
}

impl PartDown {
    fn describe(self) -> (&'static str, String) {
        match self {
            PartDown::Licence(code, message) => (
                "the tenant's licence does not include it (Entra ID P2 for eligibility)",
                format!("{code}: {message}"),
            ),
            PartDown::Permission(code, message) => (
                "permission denied (check the app's permissions and admin consent)",
                format!("{code}: {message}"),
            ),
            PartDown::NotFound(r) => ("Graph has no such collection for this tenant (404)", r),
        }
    }
}
