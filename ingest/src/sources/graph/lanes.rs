//! Lanes: the queries one tenant is polled with, each with its own watermark.
//!
//! In: the configured [`Stream`]s and sign-in event types. Out: [`Lane`]s, each naming its Graph
//! path, the time field its `$filter` and watermark use, its throttling [`Class`] and how to build
//! the URL of one time window. The `sign_ins` stream is split into one lane per group of event
//! types Graph accepts in one filter (user types together; service principals and managed
//! identities each alone), so each lane's window and watermark stay exact.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration as TimeDelta, SecondsFormat, Utc};
use tokio::sync::watch;

use super::config::{GraphConfig, SignInType, Stream};

/// How far (in event time) a back-filling lane may read ahead of the slowest lane that still has
/// back-fill to do. A day: the event-time aligner holds at most about a day of records ahead of
/// the slowest lane, and a lane reading a 30-day back-fill asks about 30 windows (a sparse lane
/// otherwise grows its windows to a week, in about 7).
pub const BACKFILL_SKEW: TimeDelta = TimeDelta::days(1);

/// A lane of one tenant: (tenant index, lane).
pub type LaneKey = (usize, Lane);

/// Keeps back-filling lanes in step: every lane of every tenant of the source, since the aligner
/// orders (and buffers) all of them together and `log-source-silent` reads one event-time clock
/// across tenants.
///
/// Each lane with back-fill to do posts its *mark* (where its next window starts); a lane that is
/// caught up, parked (403) or failing posts none and holds nobody. A lane ahead of the slowest
/// mark of the others waits until that lane reaches it, then reads at most [`BACKFILL_SKEW`]
/// past it: no lane runs more than the skew ahead of another, and the slowest lane never waits
/// (its window only ever starts at or behind every other mark), so the lanes cannot block each
/// other.
#[derive(Debug)]
pub struct InStep {
    skew: TimeDelta,
    marks: watch::Sender<BTreeMap<LaneKey, DateTime<Utc>>>,
}

impl InStep {
    pub fn new(skew: TimeDelta) -> InStep {
        InStep {
            skew,
            marks: watch::channel(BTreeMap::new()).0,
        }
    }

    /// Posts (`Some`) or withdraws (`None`) a lane's mark.
    pub fn set(&self, lane: LaneKey, mark: Option<DateTime<Utc>>) {
        self.marks.send_if_modified(|m| match mark {
            Some(t) => m.insert(lane, t) != Some(t),
            None => m.remove(&lane).is_some(),
        });
    }

    /// Waits until no other lane's mark is behind `lo`; returns how far a window from `lo` may
    /// reach (`None`: no limit, no other lane is back-filling).
    pub async fn turn(&self, lane: LaneKey, lo: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let mut rx = self.marks.subscribe();
        // The sender lives as long as `self`, so the wait ends only when the condition holds.
        let _ = rx
            .wait_for(|m| slowest_other(m, lane).is_none_or(|s| s >= lo))
            .await;
        slowest_other(&rx.borrow(), lane).map(|s| s + self.skew)
    }
}

fn slowest_other(marks: &BTreeMap<LaneKey, DateTime<Utc>>, lane: LaneKey) -> Option<DateTime<Utc>> {
    marks
        .iter()
        .filter(|(l, _)| **l != lane)
        .map(|(_, t)| *t)
        .min()
}

/// Which request budget a lane spends (Microsoft Graph service limits).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Class {
    /// Reporting APIs: sign-ins and directory audits.
    Reports,
    /// Identity Protection: risky users and risk detections.
    IdentityProtection,
    /// Directory reads: role assignments and eligibility schedules.
    Directory,
}

/// One polled query of one tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Lane {
    SignInsUser,
    SignInsServicePrincipal,
    SignInsManagedIdentity,
    DirectoryAudits,
    RiskyUsers,
    RiskDetections,
    /// Role assignments and eligibility schedules: a snapshot, not a time window.
    DirectoryRoles,
}

impl Lane {
    pub const ALL: [Lane; 7] = [
        Lane::SignInsUser,
        Lane::SignInsServicePrincipal,
        Lane::SignInsManagedIdentity,
        Lane::DirectoryAudits,
        Lane::RiskyUsers,
        Lane::RiskDetections,
        Lane::DirectoryRoles,
    ];

    /// The name in metrics (`stream` label), logs and checkpoints.
    pub fn name(self) -> &'static str {
        match self {
            Lane::SignInsUser => "sign_ins_user",
            Lane::SignInsServicePrincipal => "sign_ins_service_principal",
            Lane::SignInsManagedIdentity => "sign_ins_managed_identity",
            Lane::DirectoryAudits => "directory_audits",
            Lane::RiskyUsers => "risky_users",
            Lane::RiskDetections => "risk_detections",
            Lane::DirectoryRoles => "directory_roles",
        }
    }

    pub fn class(self) -> Class {
        match self {
            Lane::SignInsUser
            | Lane::SignInsServicePrincipal
            | Lane::SignInsManagedIdentity
            | Lane::DirectoryAudits => Class::Reports,
            Lane::RiskyUsers | Lane::RiskDetections => Class::IdentityProtection,
            Lane::DirectoryRoles => Class::Directory,
        }
    }

    /// The path under the Graph host.
    pub fn path(self) -> &'static str {
        match self {
            Lane::SignInsUser | Lane::SignInsServicePrincipal | Lane::SignInsManagedIdentity => {
                "/beta/auditLogs/signIns"
            }
            Lane::DirectoryAudits => "/beta/auditLogs/directoryAudits",
            Lane::RiskyUsers => "/v1.0/identityProtection/riskyUsers",
            Lane::RiskDetections => "/v1.0/identityProtection/riskDetections",
            Lane::DirectoryRoles => "/v1.0/roleManagement/directory/roleAssignments",
        }
    }

    /// The field windows are filtered on (and the watermark follows).
    pub fn time_field(self) -> &'static str {
        match self {
            Lane::SignInsUser | Lane::SignInsServicePrincipal | Lane::SignInsManagedIdentity => {
                "createdDateTime"
            }
            Lane::DirectoryAudits => "activityDateTime",
            Lane::RiskyUsers => "riskLastUpdatedDateTime",
            Lane::RiskDetections => "lastUpdatedDateTime",
            Lane::DirectoryRoles => "",
        }
    }

    /// How far behind the watermark each poll starts.
    pub fn overlap(self, cfg: &GraphConfig) -> TimeDelta {
        match self.class() {
            Class::IdentityProtection => TimeDelta::hours(cfg.risk_overlap_hours as i64),
            _ => TimeDelta::minutes(cfg.overlap_minutes as i64),
        }
    }

    /// The sign-in event types this lane asks for, among those configured.
    fn event_types(self, configured: &[SignInType]) -> Vec<SignInType> {
        let group: &[SignInType] = match self {
            Lane::SignInsUser => &[SignInType::InteractiveUser, SignInType::NonInteractiveUser],
            Lane::SignInsServicePrincipal => &[SignInType::ServicePrincipal],
            Lane::SignInsManagedIdentity => &[SignInType::ManagedIdentity],
            _ => &[],
        };
        group
            .iter()
            .copied()
            .filter(|t| configured.contains(t))
            .collect()
    }

    /// The lanes a config asks for.
    pub fn configured(cfg: &GraphConfig) -> Vec<Lane> {
        let mut lanes = Vec::new();
        for stream in Stream::ALL {
            if !cfg.streams.contains(&stream) {
                continue;
            }
            match stream {
                Stream::SignIns => lanes.extend(
                    [
                        Lane::SignInsUser,
                        Lane::SignInsServicePrincipal,
                        Lane::SignInsManagedIdentity,
                    ]
                    .into_iter()
                    .filter(|l| !l.event_types(&cfg.sign_in_event_types).is_empty()),
                ),
                Stream::DirectoryAudits => lanes.push(Lane::DirectoryAudits),
                Stream::RiskyUsers => lanes.push(Lane::RiskyUsers),
                Stream::RiskDetections => lanes.push(Lane::RiskDetections),
                Stream::DirectoryRoles => lanes.push(Lane::DirectoryRoles),
            }
        }
        lanes
    }

    /// The `$filter` of one window: `field ge lo [and field le hi]` plus the event types.
    pub fn filter(
        self,
        lo: DateTime<Utc>,
        hi: Option<DateTime<Utc>>,
        types: &[SignInType],
    ) -> String {
        let field = self.time_field();
        let mut f = format!("{field} ge {}", odata_time(floor_second(lo)));
        if let Some(hi) = hi {
            f.push_str(&format!(" and {field} le {}", odata_time(ceil_second(hi))));
        }
        let types = self.event_types(types);
        if !types.is_empty() {
            let any: Vec<String> = types
                .iter()
                .map(|t| format!("t eq '{}'", t.as_str()))
                .collect();
            f.push_str(&format!(
                " and signInEventTypes/any(t: {})",
                any.join(" or ")
            ));
        }
        f
    }

    /// The URL of the first page of one window.
    pub fn window_url(
        self,
        graph_url: &str,
        lo: DateTime<Utc>,
        hi: Option<DateTime<Utc>>,
        types: &[SignInType],
        page_size: u32,
    ) -> String {
        let filter = self.filter(lo, hi, types);
        format!(
            "{}{}?$filter={}&$top={page_size}",
            graph_url.trim_end_matches('/'),
            self.path(),
            percent_encode(&filter)
        )
    }
}

/// The first pages of the directory snapshot.
pub fn directory_urls(graph_url: &str) -> [String; 2] {
    let base = graph_url.trim_end_matches('/');
    [
        format!("{base}/v1.0/roleManagement/directory/roleAssignments?$expand=principal"),
        format!("{base}/v1.0/roleManagement/directory/roleEligibilitySchedules"),
    ]
}

/// `2024-01-13T14:13:32Z`: unquoted, UTC, whole seconds (docs/formats.md §5).
pub fn odata_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn floor_second(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp(t.timestamp(), 0).unwrap_or(t)
}

fn ceil_second(t: DateTime<Utc>) -> DateTime<Utc> {
    let s = t.timestamp() + i64::from(t.timestamp_subsec_nanos() > 0);
    DateTime::from_timestamp(s, 0).unwrap_or(t)
}

/// Percent-encodes a query value: everything but RFC 3986 unreserved characters (spaces become
/// `%20`, never `+`, which OData would not read as a space).
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn sign_in_lanes_split_user_and_application_types() {
        let cfg = GraphConfig::new("g", "6731de76-14a6-49ae-97bc-6eba6914391e", vec![]);
        let lanes = Lane::configured(&cfg);
        assert_eq!(lanes, Lane::ALL.to_vec());
        let f = Lane::SignInsUser.filter(
            t("2024-01-13T14:13:32.5Z"),
            Some(t("2024-01-14T17:43:26.1Z")),
            &cfg.sign_in_event_types,
        );
        assert_eq!(
            f,
            "createdDateTime ge 2024-01-13T14:13:32Z and createdDateTime le 2024-01-14T17:43:27Z \
             and signInEventTypes/any(t: t eq 'interactiveUser' or t eq 'nonInteractiveUser')"
        );
        let f = Lane::SignInsManagedIdentity.filter(
            t("2024-01-13T14:13:32Z"),
            None,
            &cfg.sign_in_event_types,
        );
        assert_eq!(
            f,
            "createdDateTime ge 2024-01-13T14:13:32Z and signInEventTypes/any(t: t eq 'managedIdentity')"
        );
        let only_interactive = GraphConfig {
            sign_in_event_types: vec![SignInType::InteractiveUser],
            streams: vec![Stream::SignIns, Stream::RiskDetections],
            ..cfg
        };
        assert_eq!(
            Lane::configured(&only_interactive),
            vec![Lane::SignInsUser, Lane::RiskDetections]
        );
    }

    #[test]
    fn window_urls_are_percent_encoded_without_plus() {
        let url = Lane::RiskDetections.window_url(
            "https://graph.microsoft.com/",
            t("2024-01-13T14:13:32Z"),
            None,
            &[],
            500,
        );
        assert_eq!(
            url,
            "https://graph.microsoft.com/v1.0/identityProtection/riskDetections?$filter=\
             lastUpdatedDateTime%20ge%202024-01-13T14%3A13%3A32Z&$top=500"
        );
        assert!(reqwest::Url::parse(&url).is_ok());
    }

    /// Three lanes of two tenants back-filling 30 days at very different speeds (an hour, 20 hours
    /// and a week per window): at every step no lane's mark is more than the skew ahead of another's,
    /// and everything ends (no lane waits on another forever).
    #[tokio::test]
    async fn lanes_back_fill_in_step_and_never_block_each_other() {
        use std::sync::Arc;
        let step = Arc::new(InStep::new(TimeDelta::days(1)));
        let start = t("2026-01-01T00:00:00Z");
        let end = start + TimeDelta::days(30);
        let lanes = [
            ((0, Lane::SignInsUser), TimeDelta::hours(1)),
            ((0, Lane::DirectoryAudits), TimeDelta::days(7)),
            ((1, Lane::SignInsUser), TimeDelta::hours(20)),
        ];
        for (lane, _) in lanes {
            step.set(lane, Some(start));
        }
        let widest = Arc::new(std::sync::Mutex::new(TimeDelta::zero()));
        let mut tasks = Vec::new();
        for (lane, span) in lanes {
            let (step, widest) = (step.clone(), widest.clone());
            tasks.push(tokio::spawn(async move {
                let mut lo = start;
                let mut windows = 0;
                while lo < end {
                    let limit = step.turn(lane, lo).await;
                    let hi = limit.map_or(lo + span, |l| (lo + span).min(l)).min(end);
                    assert!(hi > lo, "{lane:?}: an empty window at {lo}");
                    lo = hi;
                    windows += 1;
                    step.set(lane, (lo < end).then_some(lo));
                    let marks = step.marks.borrow().clone();
                    if let (Some(a), Some(b)) = (marks.values().min(), marks.values().max()) {
                        let mut w = widest.lock().unwrap();
                        *w = (*w).max(*b - *a);
                    }
                    tokio::task::yield_now().await;
                }
                windows
            }));
        }
        let mut windows = Vec::new();
        for task in tasks {
            let n = tokio::time::timeout(std::time::Duration::from_secs(10), task)
                .await
                .expect("every lane finished: none waited forever")
                .unwrap();
            windows.push(n);
        }
        let widest = *widest.lock().unwrap();
        assert!(widest <= TimeDelta::days(1), "lanes {widest} apart");
        // The weekly lane needs windows no narrower than the skew allows: about 30, not 720.
        assert!(windows[1] <= 31, "{windows:?}");
    }
}
