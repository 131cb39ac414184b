//! `log-source-silent`: see [`DOC`] for what it detects and why.

use std::marker::PhantomData;

use chrono::DateTime;
use entrawatch_ingest::model::Event;
use serde_json::{Map, json};

use crate::detector::{Context, Detector};
use crate::finding::{Finding, Principal, PrincipalKind, Severity};
use crate::settings::{Of, RuleSettings, SettingsKind};
use crate::state::{SilencePolicy, Stream, StreamState};

pub const ID: &str = "log-source-silent";

/// A stream has a baseline once it has delivered this many events over the learning period.
pub const BASELINE_MIN_EVENTS: u64 = 10;

/// User documentation, printed by `entrawatch rules log-source-silent`.
pub const DOC: &str = r#"## What it detects
A tenant's sign-in or audit stream that has gone quiet for longer than its own rhythm makes
believable. Each stream (per tenant: sign-ins, audits) learns how busy it is at each hour of the
week over the last 30 days, in *active minutes* (minutes with at least one event), and how much
its activity clumps (sessions bring bursts, then empty hours). From that, each hour has a chance
of being empty; the chance of the whole silence is the product over the hours it has covered. The
rule fires when that chance falls below `probability` (default 0.000001, one in a million:
streams are checked hour after hour across many tenants, so a larger threshold means regular false
alarms), and not before the silence lasts `sign_ins_hours` / `audits_hours`
(default 1 hour each), or, whatever the model, when it reaches `max_hours` (default 168,
a week).

So a busy stream (sign-ins most minutes) that stops is reported after an hour; a tenant quiet
every night and weekend is reported during the working day its events fail to come, after a few
hours that are never empty; a small tenant whose audit log speaks once a day is reported after
the week's ceiling, not every few days.

A stream is watched once it has a baseline: at least 10 events spread over the learning period
(`detect.baseline.learning_days`, default 7). Time is the pipeline's event-time clock, the newest event time seen
from any tenant, so a replay raises the same alerts as the live stream did, and a pipeline that
receives nothing at all raises nothing. One alert per gap: it fires on the first clock tick
(whole event-time minute) after the moment the silence became improbable, and again only after
the stream has spoken and gone quiet once more. The alert's principal is the tenant (kind
`tenant`, id = tenant id).

## Why it matters
Entra logs are the only record of who signed in and what changed. A diagnostic setting deleted
or pointed elsewhere, an expired Graph credential or a revoked consent, or a partner removing the
export, blinds detection for that tenant; removing logging is also a step attackers take.
Microsoft's CSP guidance asks partners to keep 30 days of sign-in and audit logs.
MITRE ATT&CK T1562.008 (Impair Defenses: Disable or Modify Cloud Logs).

## Signals used
Per tenant and stream: the first and last event times, the event count, and the active minutes
of every hour of the last 30 days (720 one-byte slots), from which the rates by hour of the week
and the clumping are learned each time an event opens a new hour; the pipeline clock on each
tick. The evidence gives the silence, the active minutes its hours usually hold, the chance of it
and the policy.

## Example
Contoso's sign-ins come most minutes on working days, hardly at night. They stop at 14:02 on a
Tuesday while the other tenants keep reporting: at 15:03 (the one-hour floor; the afternoon hours
are never empty) this fires medium, "No sign-in events from tenant Contoso for 1h01m (usually 41
active minutes)". A Friday-evening stop would instead be reported on Monday morning, soon after
the hour Contoso's users usually start.

## Known false positives and tuning
A tenant whose activity changes for good (a migration, a company shutting down, holidays longer
than the history shows) until its 30 days of rates catch up; planned collector maintenance. Lower
`probability` (for example 0.00000001) for fewer, later alerts (raised to 0.001 it gave
four to six false alarms in 30 days of a 16-tenant simulated world, 0.0001 up to one, the default
none), raise the floors for busy
streams you want reported later, or allow-list the tenant under
`[detect.allow.log-source-silent]`. An outage once resumed is learned as quiet hours for the next
30 days, which makes the stream's rates a little lower. When all tenants go quiet together the
clock stops too, so a pipeline outage is not reported per tenant; when events resume after a gap
affecting everyone, every stream whose silence became improbable fires once.

## References
Microsoft Learn: "Stream Microsoft Entra logs to an event hub", "Microsoft Entra data retention",
"Integrate Microsoft Entra logs with Azure Monitor logs" (diagnostic settings), and the Partner
Center "Partner security requirements".
"#;

/// `[detect.rules.log-source-silent]`: this rule's settings, each with its default.
#[derive(Debug, Clone, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// No silence of a sign-in stream shorter than this is reported (default 1).
    pub sign_ins_hours: i64,
    /// No silence of an audit stream shorter than this is reported (default 1).
    pub audits_hours: i64,
    /// A silence is reported once its chance under the stream's own rates by hour of the week falls below this (0 to 0.5) (default 0.000001).
    pub probability: f64,
    /// A silence this long is reported whatever the rates (the floors to 720) (default 168).
    pub max_hours: i64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            sign_ins_hours: 1,
            audits_hours: 1,
            probability: 0.000_001,
            max_hours: 168,
        }
    }
}

impl RuleSettings for Settings {
    crate::settings_slot!();

    const KEYS: &'static [(&'static str, &'static str)] = &[
        (
            "sign_ins_hours",
            "no silence of a sign-in stream shorter than this is reported",
        ),
        (
            "audits_hours",
            "no silence of an audit stream shorter than this is reported",
        ),
        (
            "probability",
            "a silence is reported once its chance under the stream's own rates by hour of the week falls below this (0 to 0.5)",
        ),
        (
            "max_hours",
            "a silence this long is reported whatever the rates (the floors to 720)",
        ),
    ];

    fn validate(&self, path: &str) -> Vec<String> {
        let mut problems = crate::settings::greater_than_zero(
            path,
            &[
                ("sign_ins_hours", self.sign_ins_hours as f64),
                ("audits_hours", self.audits_hours as f64),
            ],
        );
        if !(self.probability > 0.0 && self.probability < 0.5) {
            problems.push(format!(
                "{path}.probability: must be between 0 and 0.5 (got {})",
                self.probability
            ));
        }
        let floor = self.sign_ins_hours.max(self.audits_hours);
        if self.max_hours < floor || self.max_hours > 720 {
            problems.push(format!(
                "{path}.max_hours: must be between the silence floors (sign_ins_hours, \
                 audits_hours: {floor}) and 720 (30 days); got {}",
                self.max_hours
            ));
        }
        problems
    }
}

impl Settings {
    /// When a silence of `stream` is reported.
    pub fn silence(&self, stream: Stream) -> SilencePolicy {
        let floor_hours = match stream {
            Stream::SignIns => self.sign_ins_hours,
            Stream::Audits => self.audits_hours,
        };
        SilencePolicy {
            floor_secs: floor_hours.saturating_mul(3600),
            ceiling_secs: self.max_hours.saturating_mul(3600),
            probability: self.probability,
        }
    }
}

#[derive(Debug, Clone, Copy, Default)]
pub struct LogSourceSilent;

/// Whether the stream has a baseline worth watching: enough events over the learning period.
fn has_baseline(s: &StreamState, learning_days: i64) -> bool {
    s.events >= BASELINE_MIN_EVENTS && s.last - s.first >= learning_days * 86_400
}

fn minute_floor(secs: i64) -> i64 {
    secs.div_euclid(60) * 60
}

fn rfc3339(secs: i64) -> String {
    DateTime::from_timestamp(secs, 0)
        .map(|t| t.to_rfc3339())
        .unwrap_or_default()
}

impl Detector for LogSourceSilent {
    fn id(&self) -> &'static str {
        ID
    }

    fn settings(&self) -> Option<&'static dyn SettingsKind> {
        Some(&Of::<Settings>(PhantomData))
    }

    fn doc(&self) -> &'static str {
        DOC
    }

    fn default_severity(&self) -> Severity {
        Severity::Medium
    }

    /// Absence has no event: everything happens in [`Detector::on_tick`].
    fn observe(&self, _ctx: &Context<'_>, _event: &Event, _out: &mut Vec<Finding>) {}

    /// Gaps are measured in whole minutes of the clock. The engine ticks at most once per minute,
    /// before the state learns from the event that moved the clock, so `ctx.state.clock` still lies
    /// in the minute of the previous tick: a silence "crosses" on this tick when its due moment
    /// ([`StreamState::due`], set with the stream's last event) lies in the previous tick's minute
    /// or after it, and before this tick's minute (a stream whose event comes exactly when due is
    /// not silent). That fires exactly once per gap without writing any state; a stream that
    /// speaks again starts a new gap.
    fn on_tick(&self, ctx: &Context<'_>, now: i64, out: &mut Vec<Finding>) {
        let t = ctx.config.rule::<Settings>();
        let learning_days = ctx.config.baseline.learning_days;
        let previous = minute_floor(ctx.state.clock);
        let current = minute_floor(now);
        let mut silent: Vec<(&str, Stream, &StreamState)> = ctx
            .state
            .streams
            .iter()
            .filter(|(_, s)| s.due >= previous && s.due < current)
            .filter(|(_, s)| has_baseline(s, learning_days))
            .map(|((tenant, stream), s)| (ctx.state.tenants.name(*tenant), *stream, s))
            .collect();
        silent.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
        for (tenant, stream, s) in silent {
            let policy = t.silence(stream);
            let what = match stream {
                Stream::SignIns => "sign-in",
                Stream::Audits => "audit",
            };
            let silent_minutes = (now - s.last) / 60;
            let span = format!("{}h{:02}m", silent_minutes / 60, silent_minutes % 60);
            let expected = s.expected_active_minutes(s.last, now);
            let chance = s.chance_of_silence(s.last, now);
            let why = if now - s.last >= policy.ceiling_secs {
                format!(
                    "the longest silence reported whatever the stream's rhythm, {} h",
                    policy.ceiling_secs / 3600
                )
            } else {
                format!(
                    "its hours of the week usually hold {expected:.1} active minutes in that time, and \
                     the chance of hearing nothing in it is {chance:.1e} by how often those hours \
                     were empty over the last 30 days (threshold {})",
                    policy.probability
                )
            };
            let title = format!(
                "No {what} events from tenant {tenant} for {span} (usually {expected:.0} active minutes)"
            );
            let summary = format!(
                "entrawatch has received no Entra {what} logs for tenant {tenant} since {} ({span} on the \
                 pipeline's event-time clock); {why}. Before that the stream had delivered {} events \
                 since {}. Check the tenant's diagnostic setting or Graph export (credentials, consent, \
                 `AuditLog.Read.All`), the Event Hub and the collector; if someone removed the export, \
                 treat it as an attempt to hide activity and review the tenant's audit log once it is \
                 restored.",
                rfc3339(s.last),
                s.events,
                rfc3339(s.first),
            );
            let mut evidence = Map::new();
            evidence.insert("stream".into(), json!(stream.as_str()));
            evidence.insert("last_event".into(), json!(rfc3339(s.last)));
            evidence.insert("silent_minutes".into(), json!(silent_minutes));
            evidence.insert(
                "expected_active_minutes".into(),
                json!((expected * 10.0).round() / 10.0),
            );
            evidence.insert("chance_of_silence".into(), json!(format!("{chance:.1e}")));
            evidence.insert("threshold_probability".into(), json!(policy.probability));
            evidence.insert("floor_hours".into(), json!(policy.floor_secs / 3600));
            evidence.insert("ceiling_hours".into(), json!(policy.ceiling_secs / 3600));
            evidence.insert("events_seen".into(), json!(s.events));
            evidence.insert("first_event".into(), json!(rfc3339(s.first)));
            evidence.insert("pipeline_clock".into(), json!(rfc3339(now)));
            out.push(Finding {
                rule: ID,
                severity: Severity::Medium,
                tenant_id: tenant.to_owned(),
                principal: Principal {
                    kind: PrincipalKind::Tenant,
                    id: tenant.to_owned(),
                    upn: None,
                    home_tenant_id: None,
                },
                time: DateTime::from_timestamp(now, 0).unwrap_or_default(),
                event_ids: Vec::new(),
                title,
                summary,
                evidence,
                mitre: &["T1562.008"],
                ip: None,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DetectConfig;
    use crate::testkit::*;
    use chrono::{Datelike, Weekday};
    use entrawatch_ingest::model::Event;

    const H: i64 = 60;

    /// Hourly sign-ins in `tenant` for hours `from..to` (at minute 7 of each hour).
    fn hourly(tenant: &str, upn: &str, from: i64, to: i64) -> Vec<Event> {
        (from..to)
            .map(|h| {
                sign_in(&format!("{tenant}-{h}"), upn, h * H + 7)
                    .tenant(tenant)
                    .build()
            })
            .collect()
    }

    /// A one-day learning period, so the stories stay short.
    fn one_day_learning() -> DetectConfig {
        let mut config = DetectConfig::default();
        config.baseline.learning_days = 1;
        config
    }

    fn in_order(mut events: Vec<Event>) -> Vec<Event> {
        events.sort_by_key(|e| e.meta.time);
        events
    }

    #[test]
    fn fires_once_per_gap_for_sign_ins_and_audits() {
        let mut events = Vec::new();
        // Contoso: sign-ins hours 0..48, then silent until hour 80, then hours 80..90, then silent.
        events.extend(hourly(TENANT, "ann@contoso.com", 0, 48));
        events.extend(hourly(TENANT, "ann@contoso.com", 80, 90));
        // Contoso audits every two hours until hour 46.
        events.extend((0..24).map(|k| audit(&format!("au-{k}"), "Update user", k * 2 * H).build()));
        // Fabrikam keeps the clock moving every ten minutes for five days.
        events.extend((0..5 * 24 * 6).map(|k| {
            sign_in(&format!("fb-{k}"), "bea@fabrikam.com", k * 10 + 3)
                .tenant(TENANT_B)
                .build()
        }));
        let found = run(ID, one_day_learning(), &in_order(events));
        let brief: Vec<(String, &str, String)> = found
            .iter()
            .map(|f| {
                (
                    f.evidence["stream"].as_str().unwrap().to_owned(),
                    f.tenant_id.as_str(),
                    f.time.to_rfc3339(),
                )
            })
            .collect();
        assert_eq!(
            brief,
            vec![
                // Sign-ins came once an hour, never an empty hour, so no clumping: each hour is
                // empty with the Poisson chance exp(-1), and ln(10^-6) = -13.8 takes 13.8 hours
                // from 48:00, after the hour of the last event (47:07): 61:49; Fabrikam's next
                // tick is 61:53.
                ("sign-ins".to_owned(), TENANT, at(61 * H + 53).to_rfc3339()),
                // Audits came every two hours until 46:00; the hours after 47:00 were never seen
                // and take the mean, half an active minute: 27.6 hours from 47:00, 74:38; tick
                // 74:43.
                ("audits".to_owned(), TENANT, at(74 * H + 43).to_rfc3339()),
                // Sign-ins resumed 80..90 and stopped again at 89:07. The 32-hour outage was
                // learned as empty hours (fewer empties than the rates predict: no clumping), and
                // the hours after 90:00 were never seen: the mean, 57 active minutes in 89 hours,
                // takes 21.6 hours from 90:00, 111:34; tick 111:43.
                ("sign-ins".to_owned(), TENANT, at(111 * H + 43).to_rfc3339()),
            ]
        );
        assert!(
            found.iter().all(
                |f| f.severity == Severity::Medium && f.principal.kind == PrincipalKind::Tenant
            )
        );
        assert!(
            found
                .iter()
                .all(|f| f.principal.id == TENANT && f.event_ids.is_empty())
        );
        insta::assert_json_snapshot!("log_source_silent_fires", snapshot(&found));
    }

    #[test]
    fn a_clock_that_jumps_past_the_threshold_fires_once() {
        // Contoso and Fabrikam both stop at hour 30; the next event of any tenant comes at hour 50
        // (the silences became improbable at 43:49).
        let mut events = hourly(TENANT, "ann@contoso.com", 0, 30);
        events.extend(hourly(TENANT_B, "bea@fabrikam.com", 0, 30));
        let mut events = in_order(events);
        events.push(sign_in("late", "ann@contoso.com", 50 * H).build());
        events.push(sign_in("later", "ann@contoso.com", 51 * H).build());
        let found = run(ID, one_day_learning(), &events);
        // Fabrikam's gap is reported once; Contoso's own event moved the clock, and the tick runs
        // before it is learned, so its gap is reported too (the pipeline saw nothing for 20 hours).
        let tenants: Vec<&str> = found.iter().map(|f| f.tenant_id.as_str()).collect();
        assert_eq!(tenants, vec![TENANT, TENANT_B]);
        assert!(found.iter().all(|f| f.time == at(50 * H)));
    }

    #[test]
    fn stays_quiet_without_a_baseline_below_the_threshold_and_on_a_steady_stream() {
        let small = "55555555-eeee-4eee-8eee-555555555555";
        let young = "66666666-ffff-4fff-8fff-666666666666";
        let mut events = Vec::new();
        // Six sign-ins over two days: too few for a baseline.
        events.extend((0..6).map(|k| {
            sign_in(&format!("sm-{k}"), "s@small.example", k * 8 * H)
                .tenant(small)
                .build()
        }));
        // Forty sign-ins in twelve hours: too young.
        events.extend((0..40).map(|k| {
            sign_in(&format!("yg-{k}"), "y@young.example", k * 18)
                .tenant(young)
                .build()
        }));
        // Contoso audits with a 20-hour gap (under 24 h), sign-ins with 5-hour gaps (under 6 h).
        events
            .extend((0..12).map(|k| audit(&format!("au-{k}"), "Update user", k * 20 * H).build()));
        events.extend(
            (0..48).map(|k| sign_in(&format!("c-{k}"), "ann@contoso.com", k * 5 * H).build()),
        );
        // Fabrikam, steady every ten minutes for ten days, keeps the clock moving.
        events.extend((0..10 * 24 * 6).map(|k| {
            sign_in(&format!("fb-{k}"), "bea@fabrikam.com", k * 10 + 3)
                .tenant(TENANT_B)
                .build()
        }));
        let found = run(ID, one_day_learning(), &in_order(events));
        assert!(found.is_empty(), "{:#?}", snapshot(&found));
    }

    #[test]
    fn learns_a_tenants_nightly_quiet_but_not_from_an_outage() {
        let mut events = Vec::new();
        // Contoso works 08:00-18:00 only: every night is a 15-hour gap, for eight days.
        for day in 0..8 {
            events.extend(hourly(
                TENANT,
                "ann@contoso.com",
                day * 24 + 8,
                day * 24 + 18,
            ));
        }
        // Then the export breaks for three days, comes back for a day, and breaks again.
        events.extend(hourly(TENANT, "ann@contoso.com", 11 * 24 + 8, 11 * 24 + 18));
        // Fabrikam keeps the clock moving around the clock for two weeks.
        events.extend((0..14 * 24 * 6).map(|k| {
            sign_in(&format!("fb-{k}"), "bea@fabrikam.com", k * 10 + 3)
                .tenant(TENANT_B)
                .build()
        }));
        let found = run(ID, DetectConfig::default(), &in_order(events));
        let contoso: Vec<(String, i64)> = found
            .iter()
            .filter(|f| f.tenant_id == TENANT)
            .map(|f| {
                (
                    f.time.to_rfc3339(),
                    f.evidence["silent_minutes"].as_i64().unwrap(),
                )
            })
            .collect();
        // The nights raise nothing (no hour of the night ever had an event); each outage is
        // reported once. Working hours had one active minute each (an empty one has the chance
        // exp(-1)): 13.8 of them, the next working day and 3.8 hours of the one after, 11:49;
        // Fabrikam's next tick is 11:53, 42h46m after Contoso's last event at 17:07.
        let at_day = |day: i64| at((day * 24 + 11) * H + 53).to_rfc3339();
        assert_eq!(
            contoso,
            vec![(at_day(9), 2566), (at_day(13), 2566)],
            "{found:#?}"
        );
    }

    #[test]
    fn a_daily_audit_log_is_reported_after_a_week_not_after_a_quiet_weekend() {
        // A small tenant's audit log: one change a day at 10:00 on weekdays, for three weeks.
        let small = "55555555-eeee-4eee-8eee-555555555555";
        let mut events = Vec::new();
        let weekday = |day: i64| !matches!(at(day * 24 * H).weekday(), Weekday::Sat | Weekday::Sun);
        for day in (0..21).filter(|d| weekday(*d)) {
            events.push(
                audit(&format!("sm-{day}"), "Update user", (day * 24 + 10) * H)
                    .tenant(small)
                    .build(),
            );
        }
        // Then four quiet days (a weekend and two weekdays off), one change, and silence.
        let back = (0..30).find(|d| *d >= 25 && weekday(*d)).unwrap();
        events.push(
            audit("sm-back", "Update user", (back * 24 + 10) * H)
                .tenant(small)
                .build(),
        );
        // Fabrikam keeps the clock moving for six weeks.
        events.extend((0..42 * 24 * 6).map(|k| {
            sign_in(&format!("fb-{k}"), "bea@fabrikam.com", k * 10 + 3)
                .tenant(TENANT_B)
                .build()
        }));
        let found = run(ID, DetectConfig::default(), &in_order(events));
        let small: Vec<&Finding> = found.iter().filter(|f| f.tenant_id == small).collect();
        // Each weekday's 10:00 hour expects about one active minute: the quiet days before `back`
        // are not improbable; after it, the seventh expected minute is missed about seven
        // weekdays later (one alert), well inside the week-long ceiling plus the weekend.
        assert_eq!(small.len(), 1, "{small:#?}");
        let silent_days = small[0].evidence["silent_minutes"].as_i64().unwrap() / (24 * 60);
        assert!((6..=10).contains(&silent_days), "{silent_days}");
        assert_eq!(small[0].evidence["stream"], "audits");
    }

    #[test]
    fn a_busy_stream_that_stops_for_an_hour_is_reported() {
        // Contoso signs in every minute for eight days, then stops; Fabrikam goes on.
        let mut events: Vec<Event> = (0..8 * 24 * 60)
            .map(|m| sign_in(&format!("c-{m}"), "ann@contoso.com", m).build())
            .collect();
        events.extend((0..9 * 24 * 6).map(|k| {
            sign_in(&format!("fb-{k}"), "bea@fabrikam.com", k * 10 + 3)
                .tenant(TENANT_B)
                .build()
        }));
        let found = run(ID, DetectConfig::default(), &in_order(events));
        assert_eq!(found.len(), 1, "{found:#?}");
        // Last event at 8d-1min; the one-hour floor ends at 8d 00:59, the next tick is 01:03.
        assert_eq!(found[0].time, at(8 * 24 * H + H + 3));
        assert_eq!(found[0].evidence["silent_minutes"], 64);
        let chance: f64 = found[0].evidence["chance_of_silence"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!(chance < 1e-20, "{chance}");
    }
}
