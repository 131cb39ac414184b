//! `log-source-silent`: see [`DOC`] for what it detects and why.

use chrono::DateTime;
use entrawatch_ingest::model::Event;
use serde_json::{Map, json};

use crate::detector::{Context, Detector};
use crate::finding::{Finding, Principal, PrincipalKind, Severity};
use crate::state::{Stream, StreamState};

pub const ID: &str = "log-source-silent";

/// A stream has a baseline once it has delivered this many events over the learning period.
pub const BASELINE_MIN_EVENTS: u64 = 10;

/// User documentation, printed by `entrawatch rules log-source-silent`.
pub const DOC: &str = r#"## What it detects
A tenant's sign-in or audit stream that had a baseline (at least 10 events spread over the
learning period, `learning_days`, default 7) delivers nothing for longer than
`silent_sign_ins_hours` (default 6) or `silent_audits_hours` (default 24), or for longer than one
and a half times the longest normal gap the stream showed, whichever is longer: a small tenant that
is quiet every night or every weekend is not reported silent every night. Gaps during the learning
period are all normal; after it, a gap long enough to be reported is an outage and is not learned. Time is the pipeline's event-time clock, the newest event
time seen from any tenant, so a replay raises the same alerts as the live stream did, and a
pipeline that receives nothing at all raises nothing.

One alert per gap: it fires on the first clock tick (whole event-time minute) at which the gap
reaches the threshold, and fires again only after the stream has delivered an event and gone
silent once more. The alert's principal is the tenant (kind `tenant`, id = tenant id).

## Why it matters
Entra logs are the only record of who signed in and what changed. A diagnostic setting deleted
or pointed elsewhere, an expired Graph credential or a revoked consent, or a partner removing the
export, blinds detection for that tenant; removing logging is also a step attackers take.
Microsoft's CSP guidance asks partners to keep 30 days of sign-in and audit logs.
MITRE ATT&CK T1562.008 (Impair Defenses: Disable or Modify Cloud Logs).

## Signals used
Per tenant and stream (sign-ins, audits): the first and last event times and the event count
kept by the engine's state, against the pipeline clock on each tick.

## Example
Contoso's sign-ins arrive every few minutes for a week, then stop at 14:02 while the other
tenants keep reporting. At 20:02 on the pipeline clock this fires medium: "No sign-in events from
tenant Contoso for 6 hours". If Contoso's sign-ins resume and stop again later, the new gap
raises a new alert.

## Known false positives and tuning
Small tenants with no activity at night or over a weekend (raise `silent_sign_ins_hours` /
`silent_audits_hours`, or allow-list the tenant id under `[detect.allow.log-source-silent]`);
planned collector maintenance. When all tenants go quiet together the clock stops too, so a
pipeline outage is not reported per tenant; when events resume after a gap affecting everyone,
every stream with a baseline whose gap now exceeds its threshold fires once.

## References
Microsoft Learn: "Stream Microsoft Entra logs to an event hub", "Microsoft Entra data retention",
"Integrate Microsoft Entra logs with Azure Monitor logs" (diagnostic settings), and the Partner
Center "Partner security requirements".
"#;

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
    /// in the minute of the previous tick: a gap "crosses" on this tick when it reaches the
    /// threshold at this minute but had not at the previous tick's minute. That fires exactly once
    /// per gap without writing any state; a stream that delivers again starts a new gap.
    fn on_tick(&self, ctx: &Context<'_>, now: i64, out: &mut Vec<Finding>) {
        // The limit is the configured threshold, or one and a half times the longest gap the stream
        // has shown so far, whichever is longer.
        let t = &ctx.config.thresholds;
        let previous = minute_floor(ctx.state.clock);
        let current = minute_floor(now);
        let mut silent: Vec<(&str, Stream, &StreamState, i64)> = ctx
            .state
            .streams
            .iter()
            .filter(|(_, s)| has_baseline(s, t.learning_days))
            .filter_map(|((tenant, stream), s)| {
                let hours = match stream {
                    Stream::SignIns => t.silent_sign_ins_hours,
                    Stream::Audits => t.silent_audits_hours,
                };
                let limit = s.silence_limit(hours);
                (current - s.last >= limit && previous - s.last < limit)
                    .then(|| (ctx.state.tenants.name(*tenant), *stream, s, hours))
            })
            .collect();
        silent.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
        for (tenant, stream, s, hours) in silent {
            let what = match stream {
                Stream::SignIns => "sign-in",
                Stream::Audits => "audit",
            };
            let silent_minutes = (now - s.last) / 60;
            let span = format!("{}h{:02}m", silent_minutes / 60, silent_minutes % 60);
            let title = format!("No {what} events from tenant {tenant} for {span}");
            let summary = format!(
                "entrawatch has received no Entra {what} logs for tenant {tenant} since {} ({span} on the \
                 pipeline's event-time clock, threshold {hours} h); before that the stream had delivered {} \
                 events since {}. Check the tenant's diagnostic \
                 setting or Graph export (credentials, consent, `AuditLog.Read.All`), the Event Hub and the \
                 collector; if someone removed the export, treat it as an attempt to hide activity and review \
                 the tenant's audit log once it is restored.",
                rfc3339(s.last),
                s.events,
                rfc3339(s.first),
            );
            let mut evidence = Map::new();
            evidence.insert("stream".into(), json!(stream.as_str()));
            evidence.insert("last_event".into(), json!(rfc3339(s.last)));
            evidence.insert("silent_minutes".into(), json!(silent_minutes));
            evidence.insert("threshold_hours".into(), json!(hours));
            evidence.insert(
                "longest_normal_gap_minutes".into(),
                json!(s.longest_gap / 60),
            );
            evidence.insert(
                "effective_threshold_minutes".into(),
                json!(s.silence_limit(hours) / 60),
            );
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
        config.thresholds.learning_days = 1;
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
                // Last sign-in 47:07; first tick at or after 53:07 is Fabrikam's 53:13.
                ("sign-ins".to_owned(), TENANT, at(53 * H + 13).to_rfc3339()),
                // Last audit 46:00; 24 h later is 70:00, first tick 70:03.
                ("audits".to_owned(), TENANT, at(70 * H + 3).to_rfc3339()),
                // Sign-ins resumed 80..90 and stopped again at 89:07: a new gap at 95:07, tick 95:13.
                ("sign-ins".to_owned(), TENANT, at(95 * H + 13).to_rfc3339()),
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
        // Contoso and Fabrikam both stop at hour 30; the next event of any tenant comes at hour 40.
        let mut events = hourly(TENANT, "ann@contoso.com", 0, 30);
        events.extend(hourly(TENANT_B, "bea@fabrikam.com", 0, 30));
        let mut events = in_order(events);
        events.push(sign_in("late", "ann@contoso.com", 40 * H).build());
        events.push(sign_in("later", "ann@contoso.com", 41 * H).build());
        let found = run(ID, one_day_learning(), &events);
        // Fabrikam's gap is reported once; Contoso's own event moved the clock, and the tick runs
        // before it is learned, so its gap is reported too (the pipeline saw nothing for 10 hours).
        let tenants: Vec<&str> = found.iter().map(|f| f.tenant_id.as_str()).collect();
        assert_eq!(tenants, vec![TENANT, TENANT_B]);
        assert!(found.iter().all(|f| f.time == at(40 * H)));
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
        let contoso: Vec<i64> = found
            .iter()
            .filter(|f| f.tenant_id == TENANT)
            .map(|f| f.evidence["effective_threshold_minutes"].as_i64().unwrap())
            .collect();
        // The nights raise nothing (the 15-hour rhythm is learned in the first week); the outage
        // after day 8 and the one after day 11 are each reported once, at 1.5x the learned night
        // (22.5 hours), not at the 6-hour default, and the outage itself is not learned as normal.
        assert_eq!(contoso, vec![1350, 1350], "{found:#?}");
    }
}
