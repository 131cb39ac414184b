//! Small validated types for pacing: [`Backoff`] (exponential with full jitter), [`TokenBucket`]
//! (a destination's request rate and burst) and [`Jitter`] (the random numbers they need).
//!
//! All arithmetic saturates, so a huge attempt count or a clock jump cannot overflow; the property
//! tests below check the bounds over random schedules.

use std::time::Duration;

use chrono::{DateTime, Utc};

/// Why a pacing parameter was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PacingError {
    #[error("backoff base must be above zero and at most the cap")]
    Backoff,
    #[error("rate must be a positive finite number and burst at least 1")]
    Bucket,
}

/// Exponential backoff with full jitter: retry `n` (0 for the first) waits a uniform random time
/// in `[0, min(cap, base * 2^n)]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    base: Duration,
    cap: Duration,
}

impl Backoff {
    /// Base 2 s, cap 5 min (docs/alerting.md §5.6).
    pub const DEFAULT: Backoff = Backoff {
        base: Duration::from_secs(2),
        cap: Duration::from_secs(300),
    };

    pub fn new(base: Duration, cap: Duration) -> Result<Backoff, PacingError> {
        if base.is_zero() || cap < base {
            return Err(PacingError::Backoff);
        }
        Ok(Backoff { base, cap })
    }

    /// The upper bound of retry `n`'s delay.
    pub fn ceiling(&self, n: u32) -> Duration {
        let factor = 1u32.checked_shl(n.min(31)).unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.cap)
    }

    /// Retry `n`'s delay, drawn from `jitter`.
    pub fn delay(&self, n: u32, jitter: &mut Jitter) -> Duration {
        let ceiling = self.ceiling(n).as_millis() as u64;
        Duration::from_millis(jitter.below(ceiling.saturating_add(1)))
    }
}

impl Default for Backoff {
    fn default() -> Backoff {
        Backoff::DEFAULT
    }
}

/// A small fast generator (splitmix64): good enough for jitter, not for secrets.
#[derive(Debug, Clone)]
pub struct Jitter(u64);

impl Jitter {
    pub fn seeded(seed: u64) -> Jitter {
        Jitter(seed)
    }

    /// Seeded from the time and `salt` (e.g. a hash of the destination name).
    pub fn from_time(salt: u64) -> Jitter {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        Jitter(nanos ^ salt.rotate_left(17))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, n)`; 0 when `n` is 0.
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            return 0;
        }
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }
}

/// Requests per second with a burst: starts full, refills continuously.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: DateTime<Utc>,
}

impl TokenBucket {
    pub fn new(
        rate_per_sec: f64,
        burst: u32,
        now: DateTime<Utc>,
    ) -> Result<TokenBucket, PacingError> {
        if !(rate_per_sec.is_finite() && rate_per_sec > 0.0) || burst == 0 {
            return Err(PacingError::Bucket);
        }
        Ok(TokenBucket {
            rate: rate_per_sec,
            burst: f64::from(burst),
            tokens: f64::from(burst),
            last: now,
        })
    }

    fn refill(&mut self, now: DateTime<Utc>) {
        if now > self.last {
            let secs = (now - self.last).num_microseconds().unwrap_or(i64::MAX) as f64 / 1e6;
            self.tokens = (self.tokens + secs * self.rate).min(self.burst);
        }
        // a clock that went back does not refill, and the bucket follows it
        self.last = now;
    }

    /// Takes a token, or says when the next one is available.
    pub fn try_take(&mut self, now: DateTime<Utc>) -> Result<(), DateTime<Utc>> {
        self.refill(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            return Ok(());
        }
        let wait_us = ((1.0 - self.tokens) / self.rate * 1e6).ceil() as i64;
        Err(now + chrono::Duration::microseconds(wait_us.max(1)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t0() -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000, 0).unwrap()
    }

    #[test]
    fn backoff_validates_and_grows_to_its_cap() {
        assert!(Backoff::new(Duration::ZERO, Duration::from_secs(1)).is_err());
        assert!(Backoff::new(Duration::from_secs(2), Duration::from_secs(1)).is_err());
        let b = Backoff::DEFAULT;
        assert_eq!(b.ceiling(0), Duration::from_secs(2));
        assert_eq!(b.ceiling(1), Duration::from_secs(4));
        assert_eq!(b.ceiling(7), Duration::from_secs(256));
        assert_eq!(b.ceiling(8), Duration::from_secs(300));
        assert_eq!(b.ceiling(u32::MAX), Duration::from_secs(300));
    }

    #[test]
    fn property_backoff_delay_stays_within_its_ceiling_and_spreads() {
        let mut j = Jitter::seeded(7);
        for seed in 0..200u64 {
            let base = Duration::from_millis(1 + seed * 13 % 5000);
            let cap = base * (1 + (seed % 300) as u32);
            let b = Backoff::new(base, cap).unwrap();
            let mut last = Duration::ZERO;
            for n in 0..70 {
                let ceiling = b.ceiling(n);
                assert!(
                    ceiling >= last && ceiling <= cap,
                    "ceiling must be monotone and capped"
                );
                last = ceiling;
                let d = b.delay(n, &mut j);
                assert!(d <= ceiling, "{d:?} > {ceiling:?}");
            }
        }
        // full jitter: draws spread over the range, not clustered at the top
        let b = Backoff::DEFAULT;
        let draws: Vec<Duration> = (0..1000).map(|_| b.delay(10, &mut j)).collect();
        let low = draws
            .iter()
            .filter(|d| **d < Duration::from_secs(150))
            .count();
        assert!(
            (350..650).contains(&low),
            "{low} of 1000 below the midpoint"
        );
    }

    #[test]
    fn bucket_starts_full_then_paces() {
        let mut b = TokenBucket::new(1.0, 3, t0()).unwrap();
        for _ in 0..3 {
            assert!(b.try_take(t0()).is_ok());
        }
        let next = b.try_take(t0()).unwrap_err();
        assert_eq!(next, t0() + chrono::Duration::seconds(1));
        assert!(b.try_take(next).is_ok());
        assert!(TokenBucket::new(0.0, 3, t0()).is_err());
        assert!(TokenBucket::new(f64::NAN, 3, t0()).is_err());
        assert!(TokenBucket::new(1.0, 0, t0()).is_err());
    }

    #[test]
    fn property_bucket_never_exceeds_burst_plus_rate_times_elapsed() {
        let mut j = Jitter::seeded(42);
        for case in 0..100 {
            let rate = 0.5 + (j.below(200) as f64) / 10.0;
            let burst = 1 + j.below(20) as u32;
            let mut b = TokenBucket::new(rate, burst, t0()).unwrap();
            let mut now = t0();
            let mut taken = 0u64;
            for _ in 0..2000 {
                now += chrono::Duration::microseconds(j.below(200_000) as i64);
                match b.try_take(now) {
                    Ok(()) => taken += 1,
                    Err(at) => assert!(at > now, "case {case}: next token must be in the future"),
                }
                let elapsed = (now - t0()).num_microseconds().unwrap() as f64 / 1e6;
                let bound = f64::from(burst) + rate * elapsed + 1e-6;
                assert!(taken as f64 <= bound, "case {case}: {taken} > {bound}");
            }
            // waiting for the announced time always succeeds
            if let Err(at) = b.try_take(now) {
                assert!(b.try_take(at).is_ok(), "case {case}");
            }
        }
    }

    #[test]
    fn bucket_survives_a_clock_going_back() {
        let mut b = TokenBucket::new(1.0, 1, t0()).unwrap();
        assert!(b.try_take(t0()).is_ok());
        let earlier = t0() - chrono::Duration::seconds(3600);
        assert!(b.try_take(earlier).is_err());
        assert!(b.try_take(earlier + chrono::Duration::seconds(1)).is_ok());
    }
}
