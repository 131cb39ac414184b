//! The simulator's own random numbers and time arithmetic: SplitMix64, seeded only from `--seed` and
//! fixed labels, so the same arguments give the same world on every machine. Only integer and basic
//! floating-point arithmetic is used (no `ln`, `sin`), whose results do not vary between platforms.

use std::fmt;

/// Event time: 100 ns ticks since the Unix epoch (Entra writes 7 fractional digits).
pub type Ticks = i64;

pub const SEC: Ticks = 10_000_000;
pub const MIN: Ticks = 60 * SEC;
pub const HOUR: Ticks = 60 * MIN;
pub const DAY: Ticks = 24 * HOUR;

/// SplitMix64 (Steele, Lea, Flood 2014): tiny, fast, and every 64-bit seed gives a good stream.
#[derive(Debug, Clone)]
pub struct Rng(u64);

const GOLDEN: u64 = 0x9e37_79b9_7f4a_7c15;

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A 64-bit hash of a text label, to name independent streams.
pub fn label(text: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    mix(h)
}

impl Rng {
    /// An independent stream for `parts` under `seed` (a stream per account, per tenant, per
    /// purpose), so adding draws in one place never shifts another's numbers.
    pub fn derive(seed: u64, parts: &[u64]) -> Rng {
        let mut s = mix(seed ^ 0x5851_f42d_4c95_7f2d);
        for p in parts {
            s = mix(s ^ mix(p.wrapping_add(GOLDEN)));
        }
        Rng(s)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(GOLDEN);
        mix(self.0)
    }

    /// Uniform in [0, 1).
    pub fn f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in [0, n); 0 when n is 0.
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            return 0;
        }
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// Uniform in [lo, hi); `lo` when the range is empty.
    pub fn range(&mut self, lo: i64, hi: i64) -> i64 {
        if hi <= lo {
            return lo;
        }
        lo + self.below((hi - lo) as u64) as i64
    }

    pub fn chance(&mut self, p: f64) -> bool {
        self.f64() < p
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    pub fn index(&mut self, len: usize) -> usize {
        self.below(len as u64) as usize
    }

    /// Roughly normal with mean 0 and standard deviation 1 (Irwin-Hall of 12 uniforms).
    pub fn gauss(&mut self) -> f64 {
        (0..12).map(|_| self.f64()).sum::<f64>() - 6.0
    }

    /// A random duration around `mean` ticks with spread `sd` ticks, clamped to [lo, hi].
    pub fn around(&mut self, mean: Ticks, sd: Ticks, lo: Ticks, hi: Ticks) -> Ticks {
        let v = mean as f64 + self.gauss() * sd as f64;
        (v as Ticks).clamp(lo, hi)
    }

    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.index(i + 1);
            items.swap(i, j);
        }
    }

    pub fn guid(&mut self) -> Guid {
        let v = (u128::from(self.next_u64()) << 64) | u128::from(self.next_u64());
        // Version 4, RFC 4122 variant, as Entra's object ids are.
        Guid((v & !(0xf << 76) & !(0x3 << 62)) | (0x4 << 76) | (0x2 << 62))
    }

    /// `n` lower-case hex digits.
    pub fn hex(&mut self, n: usize) -> String {
        let mut s = String::with_capacity(n);
        while s.len() < n {
            s.push_str(&format!("{:016x}", self.next_u64()));
        }
        s.truncate(n);
        s
    }

    /// `n` characters from `alphabet`.
    pub fn text(&mut self, alphabet: &[u8], n: usize) -> String {
        (0..n).map(|_| char::from(*self.pick(alphabet))).collect()
    }
}

/// An object id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Guid(pub u128);

impl fmt::Display for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut buf = [0u8; 36];
        let mut pos = 0;
        for i in 0..32 {
            if matches!(i, 8 | 12 | 16 | 20) {
                buf[pos] = b'-';
                pos += 1;
            }
            buf[pos] = HEX[((self.0 >> (124 - 4 * i)) & 0xf) as usize];
            pos += 1;
        }
        f.write_str(std::str::from_utf8(&buf).unwrap_or_default())
    }
}

impl Guid {
    /// Without dashes (GDAP technician names: `user_<hex>`).
    pub fn simple(&self) -> String {
        format!("{:032x}", self.0)
    }

    pub fn bytes(&self) -> [u8; 16] {
        self.0.to_be_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_reproducible_and_independent() {
        let a: Vec<u64> = (0..4)
            .map({
                let mut r = Rng::derive(7, &[1, 2]);
                move |_| r.next_u64()
            })
            .collect();
        let b: Vec<u64> = (0..4)
            .map({
                let mut r = Rng::derive(7, &[1, 2]);
                move |_| r.next_u64()
            })
            .collect();
        assert_eq!(a, b);
        assert_ne!(
            Rng::derive(7, &[1, 2]).next_u64(),
            Rng::derive(7, &[2, 1]).next_u64()
        );
        assert_ne!(
            Rng::derive(7, &[1]).next_u64(),
            Rng::derive(8, &[1]).next_u64()
        );
    }

    #[test]
    fn guids_are_version_4() {
        let g = Rng::derive(1, &[]).guid().to_string();
        assert_eq!(g.len(), 36);
        assert_eq!(&g[14..15], "4");
        assert!(matches!(&g[19..20], "8" | "9" | "a" | "b"), "{g}");
    }

    #[test]
    fn ranges_stay_in_bounds() {
        let mut r = Rng::derive(3, &[]);
        for _ in 0..1000 {
            let v = r.range(-5, 5);
            assert!((-5..5).contains(&v));
            let x = r.f64();
            assert!((0.0..1.0).contains(&x));
        }
        assert_eq!(r.range(4, 4), 4);
    }
}
