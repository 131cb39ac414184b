//! What the state keeps per tenant and log stream ([`StreamState`]), for `log-source-silent`: when
//! the stream began and last spoke, how busy it is at each hour of the week over the last 30 days,
//! and from that the moment its current silence becomes improbable ([`StreamState::due`]).
//!
//! The state keeps the *active minutes* (minutes with at least one event) of every hour of the
//! last 30 days. For each hour of the week the stream's rate is its mean active minutes in that
//! hour. Were minutes independent, an hour with rate `r` would be empty with the Poisson chance
//! `exp(-r)`; Entra streams clump (a session brings dozens of sign-ins in a few minutes, then
//! nothing for an hour), so the chance is that of a negative binomial, `(1 + r/k)^-k`, with one
//! shape `k` per stream fitted so the hours seen are predicted empty exactly as often as they were
//! (Poisson when they were empty no more often than that). The chance of a silence is the product
//! of those chances over the hours it has covered after the hour of the last event (a part of an
//! hour in proportion). The stream is silent when that chance falls below the configured
//! probability, once the silence lasts at least the configured floor, or, whatever the model, when
//! it reaches the ceiling.

use serde::{Deserialize, Serialize};

/// Hours of history the rates are learned from (30 days).
const RING_HOURS: i64 = 30 * 24;
/// Hours in a week: the rhythm the rates follow.
const WEEK_HOURS: i64 = 7 * 24;

/// The log streams `log-source-silent` watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Stream {
    SignIns,
    Audits,
}

impl Stream {
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::SignIns => "sign-ins",
            Stream::Audits => "audits",
        }
    }
}

/// When a silence of a stream is reported: the settings of `[detect.thresholds]`, in seconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SilencePolicy {
    /// No silence shorter than this is reported.
    pub floor_secs: i64,
    /// A silence this long is reported whatever the model says.
    pub ceiling_secs: i64,
    /// A silence is improbable when the chance of it under the stream's rates is below this.
    pub probability: f64,
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct StreamState {
    pub first: i64,
    pub last: i64,
    pub events: u64,
    /// Active minutes of each hour of the last [`RING_HOURS`]: slot `hour % RING_HOURS` (hours
    /// counted from the Unix epoch). Empty until the first event.
    active: Vec<u8>,
    /// The hour of the newest slot written.
    newest_hour: i64,
    /// The minute of the newest event counted (a minute is active once).
    last_minute: i64,
    /// By hour of the week (hour 0 = Thursday 00:00 UTC, the epoch's): how likely that hour is to
    /// be empty, from its mean active minutes and the stream's clumping; recomputed when an event
    /// opens a new hour.
    empty: Vec<f32>,
    /// By hour of the week: the mean active minutes.
    rates: Vec<f32>,
    /// How clumped the stream's activity is (the shape `k` of a negative binomial; infinite for
    /// independent minutes), fitted so the hours seen are predicted empty as often as they were;
    /// refitted once a day of the stream's time (the fit costs a few thousand powers, the rates
    /// that use it are recomputed every hour).
    clumping: f32,
    /// The day (hours since the epoch / 24) of the last fit.
    fitted_day: i64,
    /// When the silence after `last` becomes reportable (seconds), set with every event.
    pub due: i64,
    /// The hour the last [`StreamState::improbable_after_hour`] was worked out for, with the
    /// policy's probability (bits) and ceiling, and its answer: every event of that hour shares
    /// it, so most events set `due` without walking the hours. Not kept in snapshots.
    #[serde(skip)]
    improbable: Option<(i64, u64, i64, i64)>,
}

impl StreamState {
    /// A stream first heard at `now`.
    pub fn new(now: i64) -> StreamState {
        StreamState {
            first: now,
            last: now,
            newest_hour: now.div_euclid(3600),
            last_minute: i64::MIN,
            active: vec![0; RING_HOURS as usize],
            empty: vec![1.0; WEEK_HOURS as usize],
            clumping: f32::INFINITY,
            fitted_day: i64::MIN,
            rates: vec![0.0; WEEK_HOURS as usize],
            ..StreamState::default()
        }
    }

    /// Counts an event at `now` and sets when the silence after it becomes reportable.
    pub fn touch(&mut self, now: i64, policy: &SilencePolicy) {
        self.events += 1;
        self.first = self.first.min(now);
        let hour = now.div_euclid(3600);
        if hour > self.newest_hour {
            // Clear the slots of the hours passed since the newest (at most the whole ring).
            let from = (self.newest_hour + 1).max(hour - RING_HOURS + 1);
            for h in from..=hour {
                self.active[h.rem_euclid(RING_HOURS) as usize] = 0;
            }
            self.newest_hour = hour;
            self.learn();
        }
        let minute = now.div_euclid(60);
        // A late event counts in its own hour while that hour is still in the ring.
        if minute != self.last_minute && hour > self.newest_hour - RING_HOURS {
            let slot = &mut self.active[hour.rem_euclid(RING_HOURS) as usize];
            *slot = slot.saturating_add(1).min(60);
            self.last_minute = self.last_minute.max(minute);
        }
        if now >= self.last {
            self.last = now;
            let hour = now.div_euclid(3600);
            let key = (hour, policy.probability.to_bits(), policy.ceiling_secs);
            let improbable = match self.improbable {
                Some((h, p, c, at)) if (h, p, c) == key => at,
                _ => {
                    let at = self.improbable_after_hour(hour, policy);
                    self.improbable = Some((key.0, key.1, key.2, at));
                    at
                }
            };
            self.due = improbable
                .max(now + policy.floor_secs)
                .min(now + policy.ceiling_secs);
        }
    }

    /// The empty shares and rates by hour of the week from the completed hours in the ring (those
    /// since the stream began, within the last 30 days).
    fn learn(&mut self) {
        let first_hour = self.first.div_euclid(3600);
        let from = first_hour.max(self.newest_hour - RING_HOURS + 1);
        let mut minutes = [0u32; WEEK_HOURS as usize];
        let mut empty = [0u32; WEEK_HOURS as usize];
        let mut seen = [0u32; WEEK_HOURS as usize];
        for h in from..self.newest_hour {
            let w = h.rem_euclid(WEEK_HOURS) as usize;
            let active = self.active[h.rem_euclid(RING_HOURS) as usize];
            minutes[w] += u32::from(active);
            empty[w] += u32::from(active == 0);
            seen[w] += 1;
        }
        // An hour of the week never seen yet (a stream younger than a week) takes the mean.
        let (all_minutes, all_seen): (u32, u32) = (minutes.iter().sum(), seen.iter().sum());
        let mean = if all_seen == 0 {
            0.0
        } else {
            f64::from(all_minutes) / f64::from(all_seen)
        };
        for w in 0..WEEK_HOURS as usize {
            self.rates[w] = if seen[w] == 0 {
                mean as f32
            } else {
                minutes[w] as f32 / seen[w] as f32
            };
        }
        let day = self.newest_hour.div_euclid(24);
        if day != self.fitted_day {
            self.fitted_day = day;
            self.clumping = fit_clumping(&self.rates, &seen, &empty);
        }
        for w in 0..WEEK_HOURS as usize {
            self.empty[w] = empty_chance(f64::from(self.rates[w]), f64::from(self.clumping)) as f32;
        }
    }

    /// Active minutes the stream usually has from `from` to `to` (seconds), by its rates.
    pub fn expected_active_minutes(&self, from: i64, to: i64) -> f64 {
        self.fold_hours(from, to, 0.0, |sum, w, part| {
            sum + f64::from(self.rates[w]) * part
        })
    }

    /// The chance, under the stream's empty shares, of a silence from `last` to `to` (seconds):
    /// the hours after the hour of `last`, a part of an hour in proportion.
    pub fn chance_of_silence(&self, last: i64, to: i64) -> f64 {
        let from = (last.div_euclid(3600) + 1) * 3600;
        self.fold_hours(from, to, 1.0, |chance, w, part| {
            chance * f64::from(self.empty[w]).powf(part)
        })
    }

    /// Folds `f(acc, hour of the week, fraction of that hour)` over the hours from `from` to `to`.
    fn fold_hours(&self, from: i64, to: i64, init: f64, f: impl Fn(f64, usize, f64) -> f64) -> f64 {
        let mut acc = init;
        let mut t = from;
        while t < to {
            let hour = t.div_euclid(3600);
            let end = ((hour + 1) * 3600).min(to);
            acc = f(
                acc,
                hour.rem_euclid(WEEK_HOURS) as usize,
                (end - t) as f64 / 3600.0,
            );
            t = end;
        }
        acc
    }

    /// When a silence after an event of `hour` becomes improbable: the first moment the product
    /// of the empty chances of the hours after it falls below the policy's probability, or the
    /// ceiling counted from the end of `hour` when it never does. The caller applies the floor and
    /// the ceiling from the event itself.
    fn improbable_after_hour(&self, hour: i64, policy: &SilencePolicy) -> i64 {
        let need = policy.probability.ln();
        let start = (hour + 1) * 3600;
        let ceiling = start + policy.ceiling_secs;
        let mut log_chance = 0.0;
        let mut t = start;
        while t < ceiling {
            let hour = t.div_euclid(3600);
            let end = ((hour + 1) * 3600).min(ceiling);
            let per_hour = f64::from(self.empty[hour.rem_euclid(WEEK_HOURS) as usize]).ln();
            let adds = per_hour * (end - t) as f64 / 3600.0;
            if log_chance + adds <= need {
                // A never-empty hour (-inf) makes the silence improbable as soon as it begins.
                let secs = if per_hour.is_finite() {
                    ((need - log_chance) / per_hour * 3600.0).ceil() as i64
                } else {
                    0
                };
                return (t + secs).min(end);
            }
            log_chance += adds;
            t = end;
        }
        ceiling
    }
}

/// The clumping (negative-binomial shape) that makes the hours `seen` of each hour of the week,
/// at their `rates`, empty as often as they were (`empty`): infinite (independent minutes) when
/// they were empty no more often than that.
fn fit_clumping(rates: &[f32], seen: &[u32], empty: &[u32]) -> f32 {
    let observed: f64 = empty.iter().map(|e| f64::from(*e)).sum();
    let predicted = |k: f64| -> f64 {
        rates
            .iter()
            .zip(seen)
            .filter(|(r, n)| **n > 0 && **r > 0.0)
            .map(|(r, n)| f64::from(*n) * empty_chance(f64::from(*r), k))
            .sum::<f64>()
            + rates
                .iter()
                .zip(seen)
                .filter(|(r, n)| **n > 0 && **r <= 0.0)
                .map(|(_, n)| f64::from(*n))
                .sum::<f64>()
    };
    if seen.iter().all(|n| *n == 0) || observed <= predicted(f64::INFINITY) {
        return f32::INFINITY;
    }
    // predicted() falls as k grows: bisect ln k over [1e-3, 1e3] (to 1e-8 of the range).
    let (mut lo, mut hi) = (
        -3.0f64 * std::f64::consts::LN_10,
        3.0 * std::f64::consts::LN_10,
    );
    for _ in 0..30 {
        let mid = (lo + hi) / 2.0;
        if predicted(mid.exp()) > observed {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    ((lo + hi) / 2.0).exp() as f32
}

/// The chance of an hour with no active minute when the hour usually has `rate` of them and
/// activity clumps with shape `k` (negative binomial; Poisson as `k` grows without bound).
fn empty_chance(rate: f64, k: f64) -> f64 {
    if rate <= 0.0 {
        1.0
    } else if k.is_infinite() {
        (-rate).exp()
    } else {
        (1.0 + rate / k).powf(-k)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = 3600;

    fn policy() -> SilencePolicy {
        SilencePolicy {
            floor_secs: H,
            ceiling_secs: 168 * H,
            probability: 0.001,
        }
    }

    #[test]
    fn a_busy_stream_is_due_at_the_floor_and_a_daily_one_after_days() {
        let p = policy();
        // Busy: an event every minute for three weeks; no hour was ever empty.
        let mut busy = StreamState::new(0);
        for m in 0..21 * 24 * 60 {
            busy.touch(m * 60, &p);
        }
        assert_eq!(
            busy.due - busy.last,
            H,
            "a busy stream is due at the one-hour floor"
        );
        // Daily: one event at 10:00 every day for three weeks. Only the 10:00 hours have
        // activity, one active minute, and no clumping shows: each silent 10:00 hour has the
        // chance exp(-1), so 13.8 of them would be needed: the week's ceiling comes first.
        let mut daily = StreamState::new(10 * H);
        for d in 0..21 {
            daily.touch(d * 24 * H + 10 * H, &p);
        }
        assert_eq!(daily.due - daily.last, 168 * H);
        let usual = daily.expected_active_minutes(daily.last, daily.last + 24 * H);
        assert!((usual - 1.0).abs() < 0.01, "{usual}");
    }

    #[test]
    fn quiet_hours_of_the_week_do_not_count_against_a_silence() {
        let p = policy();
        // Active every minute 08:00-18:00, silent at night, for four weeks.
        let mut s = StreamState::new(8 * H);
        for d in 0..28 {
            for m in 0..600 {
                s.touch(d * 24 * H + 8 * H + m * 60, &p);
            }
        }
        // Last event 17:59 on day 27. The night's hours never had an event (chance 1 of being
        // empty); 08:00 usually has 60 active minutes, so the silence is improbable minutes into
        // it.
        let after = s.due - s.last;
        assert!(
            after > 14 * H && after < 14 * H + 10 * 60,
            "{}",
            after as f64 / H as f64
        );
        assert_eq!(s.chance_of_silence(s.last, s.last + 14 * H), 1.0);
    }

    #[test]
    fn a_clumped_stream_takes_longer_than_a_steady_one() {
        let p = policy();
        // Two streams with an event every two minutes; the second skips every fifth hour (not
        // the same hours of the week each week), which independent minutes would never do: it
        // is fitted as clumped, and its empty hours are far likelier.
        let mut steady = StreamState::new(0);
        let mut clumped = StreamState::new(0);
        for m in (0..14 * 24 * 60).step_by(2) {
            steady.touch(m * 60, &p);
            if (m / 60) % 5 != 0 {
                clumped.touch(m * 60, &p);
            }
        }
        assert_eq!(steady.due - steady.last, H);
        assert!(clumped.clumping.is_finite(), "{}", clumped.clumping);
        assert!(
            clumped.due - clumped.last > 3 * H,
            "{}",
            clumped.due - clumped.last
        );
    }
}
