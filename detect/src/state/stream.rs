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
/// A bit for every hour of the week.
const EVERY_HOUR: [u64; 3] = [u64::MAX, u64::MAX, (1 << (WEEK_HOURS - 128)) - 1];

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

/// When a silence of a stream is reported: the settings of `[detect.rules.log-source-silent]`, in seconds.
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
    /// The counts the rates are learned from, kept up to date as hours are counted, so a new hour
    /// costs a few updates instead of a walk over the 30 days. Not kept in snapshots: a restored
    /// stream (`None`) counts them from the ring at its next hour.
    #[serde(skip)]
    counts: Option<Box<WeekCounts>>,
}

/// By hour of the week, over the hours [`StreamState::counted`]: active minutes, empty hours and
/// hours seen, their totals, and which hours of the week changed since the rates were learned.
#[derive(Debug, Clone, PartialEq)]
struct WeekCounts {
    minutes: [u32; WEEK_HOURS as usize],
    empty: [u32; WEEK_HOURS as usize],
    seen: [u32; WEEK_HOURS as usize],
    all_minutes: u32,
    all_seen: u32,
    /// One bit per hour of the week: its counts changed since the rates were learned.
    changed: [u64; 3],
    /// One bit per hour of the week: never seen (its rate is the mean).
    unseen: [u64; 3],
    /// The mean rate the rates were last learned with (bits; NaN before the first time).
    mean: u32,
}

impl WeekCounts {
    fn zero() -> WeekCounts {
        WeekCounts {
            minutes: [0; WEEK_HOURS as usize],
            empty: [0; WEEK_HOURS as usize],
            seen: [0; WEEK_HOURS as usize],
            all_minutes: 0,
            all_seen: 0,
            changed: [0; 3],
            unseen: EVERY_HOUR,
            mean: f32::NAN.to_bits(),
        }
    }

    /// Adds (`sign` 1) or takes away (`sign` -1) an hour with `active` minutes.
    fn count(&mut self, hour: i64, active: u8, sign: i32) {
        let w = hour.rem_euclid(WEEK_HOURS) as usize;
        let add = |n: &mut u32, by: u32| *n = n.wrapping_add_signed(sign * by as i32);
        add(&mut self.minutes[w], u32::from(active));
        add(&mut self.empty[w], u32::from(active == 0));
        add(&mut self.seen[w], 1);
        add(&mut self.all_minutes, u32::from(active));
        add(&mut self.all_seen, 1);
        let bit = 1 << (w % 64);
        self.changed[w / 64] |= bit;
        if self.seen[w] == 0 {
            self.unseen[w / 64] |= bit;
        } else {
            self.unseen[w / 64] &= !bit;
        }
    }

    /// The hours of the week whose rate may have moved, as bits: those seen whose counts changed
    /// (rate: their own), and those never seen whose counts changed or, when the mean moved, all
    /// of them (rate: the mean).
    fn to_learn(&self, mean_moved: bool) -> ([u64; 3], [u64; 3]) {
        let (mut seen, mut unseen) = ([0; 3], [0; 3]);
        for i in 0..3 {
            seen[i] = self.changed[i] & !self.unseen[i];
            unseen[i] = self.unseen[i]
                & if mean_moved {
                    u64::MAX
                } else {
                    self.changed[i]
                };
        }
        (seen, unseen)
    }
}

/// The hours of the week whose bits are set, in order.
fn hours_in(bits: [u64; 3]) -> impl Iterator<Item = usize> {
    (0..3).flat_map(move |i| {
        let mut word = bits[i];
        std::iter::from_fn(move || {
            (word != 0).then(|| {
                let at = word.trailing_zeros() as usize;
                word &= word - 1;
                i * 64 + at
            })
        })
    })
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
        let hour = now.div_euclid(3600);
        if now < self.first {
            // An earlier beginning: the hours between it and the old one are counted too.
            let (old, _) = self.counted();
            self.first = now;
            let (from, _) = self.counted();
            self.count_hours(from..old, 1);
        }
        if hour > self.newest_hour {
            // The hours leaving the 30 days are uncounted before their slots are reused.
            let (old_from, old_to) = self.counted();
            let new_from = self.first.div_euclid(3600).max(hour - RING_HOURS + 1);
            self.count_hours(old_from..new_from.min(old_to), -1);
            // Clear the slots of the hours passed since the newest (at most the whole ring).
            let from = (self.newest_hour + 1).max(hour - RING_HOURS + 1);
            for h in from..=hour {
                self.active[h.rem_euclid(RING_HOURS) as usize] = 0;
            }
            self.newest_hour = hour;
            self.count_hours(new_from.max(old_to)..hour, 1);
            self.learn();
        }
        let minute = now.div_euclid(60);
        // A late event counts in its own hour while that hour is still in the ring.
        if minute != self.last_minute && hour > self.newest_hour - RING_HOURS {
            let slot = &mut self.active[hour.rem_euclid(RING_HOURS) as usize];
            let before = *slot;
            *slot = slot.saturating_add(1).min(60);
            let after = *slot;
            self.last_minute = self.last_minute.max(minute);
            let (from, to) = self.counted();
            if let Some(counts) = self.counts.as_mut()
                && (from..to).contains(&hour)
                && after != before
            {
                counts.count(hour, before, -1);
                counts.count(hour, after, 1);
            }
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

    /// The hours the rates are learned from: the completed hours in the ring since the stream
    /// began (within the last 30 days), as a range.
    fn counted(&self) -> (i64, i64) {
        let first_hour = self.first.div_euclid(3600);
        (
            first_hour.max(self.newest_hour - RING_HOURS + 1),
            self.newest_hour,
        )
    }

    /// Adds (`sign` 1) or takes away (`sign` -1) the `hours` with their active minutes in the
    /// ring to the counts, when they are kept.
    fn count_hours(&mut self, hours: std::ops::Range<i64>, sign: i32) {
        if let Some(counts) = self.counts.as_mut() {
            for h in hours {
                counts.count(h, self.active[h.rem_euclid(RING_HOURS) as usize], sign);
            }
        }
    }

    /// The counts of the hours [`StreamState::counted`], walked from the ring.
    fn counts_from_ring(&self) -> WeekCounts {
        let mut counts = WeekCounts::zero();
        let (from, to) = self.counted();
        for h in from..to {
            counts.count(h, self.active[h.rem_euclid(RING_HOURS) as usize], 1);
        }
        counts.changed = EVERY_HOUR;
        counts
    }

    /// The empty shares and rates by hour of the week from the completed hours in the ring (those
    /// since the stream began, within the last 30 days). Only the hours of the week whose rate
    /// may have moved (the unseen ones as one), or all of them when the clumping is refitted,
    /// have their empty share worked out again.
    fn learn(&mut self) {
        let mut counts = match self.counts.take() {
            Some(counts) => counts,
            None => Box::new(self.counts_from_ring()),
        };
        // An hour of the week never seen yet (a stream younger than a week) takes the mean.
        let mean = if counts.all_seen == 0 {
            0.0
        } else {
            f64::from(counts.all_minutes) / f64::from(counts.all_seen)
        };
        let mean = mean as f32;
        // Only these can have moved: a rate is a function of its counts (or of the mean). Which
        // of the hours seen did is kept as bits, so that only they have their empty share worked
        // out again. The hours never seen take the mean and are all worked out again: their share
        // is one value, and each hour's share is always its rate's (so redoing one whose rate
        // stayed changes nothing). While a stream is younger than a week most hours are unseen,
        // and each new hour moves the mean.
        let mut moved = [0u64; 3];
        let (seen_hours, unseen_hours) = counts.to_learn(mean.to_bits() != counts.mean);
        for w in hours_in(seen_hours) {
            let rate = counts.minutes[w] as f32 / counts.seen[w] as f32;
            moved[w / 64] |= u64::from(rate.to_bits() != self.rates[w].to_bits()) << (w % 64);
            self.rates[w] = rate;
        }
        for w in hours_in(unseen_hours) {
            self.rates[w] = mean;
        }
        (counts.changed, counts.mean) = ([0; 3], mean.to_bits());
        let (empty, seen) = (&counts.empty, &counts.seen);
        let day = self.newest_hour.div_euclid(24);
        let mut refitted = false;
        if day != self.fitted_day {
            self.fitted_day = day;
            let clumping = fit_clumping(&self.rates, seen, empty);
            refitted = clumping.to_bits() != self.clumping.to_bits();
            self.clumping = clumping;
        }
        let clumping = f64::from(self.clumping);
        let (redo, unseen_redo) = if refitted {
            let unseen = counts.unseen;
            ([0, 1, 2].map(|i| EVERY_HOUR[i] & !unseen[i]), unseen)
        } else {
            (moved, unseen_hours)
        };
        for w in hours_in(redo) {
            self.empty[w] = empty_chance(f64::from(self.rates[w]), clumping) as f32;
        }
        // The hours of the week not seen yet share the mean rate, so they share its chance.
        if unseen_redo != [0; 3] {
            let chance = empty_chance(f64::from(mean), clumping) as f32;
            for w in hours_in(unseen_redo) {
                self.empty[w] = chance;
            }
        }
        self.counts = Some(counts);
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
    // The hours of the week seen with activity, as (rate, hours seen), and the hours seen that
    // never had any (always empty, whatever the shape): gathered once for the bisection.
    let mut active = [(0.0f64, 0.0f64); WEEK_HOURS as usize];
    let mut n_active = 0;
    for (r, n) in rates.iter().zip(seen).filter(|(r, n)| **n > 0 && **r > 0.0) {
        active[n_active] = (f64::from(*r), f64::from(*n));
        n_active += 1;
    }
    let active = &active[..n_active];
    let idle: f64 = (rates.iter().zip(seen))
        .filter(|(r, n)| **n > 0 && **r <= 0.0)
        .map(|(_, n)| f64::from(*n))
        .sum();
    let predicted = |k: f64| -> f64 {
        active
            .iter()
            .map(|(r, n)| n * empty_chance(*r, k))
            .sum::<f64>()
            + idle
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

    /// The counts kept up to date hour by hour give exactly what walking the ring gives: a
    /// stream with busy and quiet spells, late events (some older than the ring, some before the
    /// stream began) and jumps of more than 30 days, against the same stream made to walk the
    /// ring at every new hour.
    #[test]
    fn counts_kept_hour_by_hour_are_the_counts_of_the_ring() {
        let p = policy();
        let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        let start = 40 * 24 * H;
        let (mut kept, mut walked) = (StreamState::new(start), StreamState::new(start));
        let mut now = start;
        let (mut late, mut incremental, mut relearned) = (0, 0, 0);
        for i in 0..20_000 {
            now += match next(100) {
                0 => (next(50 * 24) as i64) * H,
                1..=20 => (next(6) as i64) * H,
                _ => next(300) as i64,
            };
            let at = if next(15) == 0 {
                late += 1;
                now - (next(45 * 24) as i64) * H - next(3600) as i64
            } else {
                now
            };
            incremental += usize::from(kept.counts.is_some());
            let newest_before = kept.newest_hour;
            walked.counts = None;
            kept.touch(at, &p);
            walked.touch(at, &p);
            if walked.counts.is_some() {
                assert_eq!(kept.counts, walked.counts, "counts after event {i}");
            }
            assert_eq!(kept.rates, walked.rates, "rates after event {i}");
            // Right after a new hour is learned, every hour's rate and empty share are what
            // learning all 168 from the counts gives (the old learning, which redid every hour
            // that moved without tracking which).
            if kept.newest_hour != newest_before
                && let Some(counts) = kept.counts.as_deref()
            {
                relearned += 1;
                let k = f64::from(kept.clumping);
                for w in 0..WEEK_HOURS as usize {
                    let rate = if counts.seen[w] == 0 {
                        f32::from_bits(counts.mean)
                    } else {
                        counts.minutes[w] as f32 / counts.seen[w] as f32
                    };
                    assert_eq!(
                        kept.rates[w].to_bits(),
                        rate.to_bits(),
                        "rate {w}, event {i}"
                    );
                    let chance = empty_chance(f64::from(rate), k) as f32;
                    assert_eq!(
                        kept.empty[w].to_bits(),
                        chance.to_bits(),
                        "empty {w}, event {i}"
                    );
                }
            }
            assert_eq!(kept.empty, walked.empty, "empty shares after event {i}");
            assert_eq!(kept.due, walked.due, "due after event {i}");
            assert_eq!(kept.clumping.to_bits(), walked.clumping.to_bits());
        }
        assert!(late > 1000 && incremental > 19_000, "{late} {incremental}");
        assert!(relearned > 1000, "{relearned}");
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
