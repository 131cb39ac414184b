//! [`WordHasher`]: the hash of in-process tables keyed by ids, names and numbers (detection's
//! state maps, the shared-text tables).

use std::hash::Hasher;

/// FxHash-style multiply-rotate over the key's words, from a seed, then a final avalanche. The keys
/// of these tables are already well spread (GUID values, hashes of names, interned numbers), so
/// SipHash's cost buys nothing; the seed, drawn at random, keeps the table layout unpredictable
/// from outside. `Default` takes a seed drawn once per process.
#[derive(Debug, Clone, Copy)]
pub struct WordHasher(u64);

impl WordHasher {
    pub fn with_seed(seed: u64) -> WordHasher {
        WordHasher(seed)
    }

    /// A seed drawn at random.
    pub fn random_seed() -> u64 {
        use std::hash::BuildHasher;
        std::collections::hash_map::RandomState::new().hash_one(0x5eed_u64)
    }

    #[inline]
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

impl Default for WordHasher {
    fn default() -> Self {
        static SEED: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
        WordHasher(*SEED.get_or_init(WordHasher::random_seed))
    }
}

impl Hasher for WordHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.add(u64::from_le_bytes([
                c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7],
            ]));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut last = [0u8; 8];
            last[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(last) ^ ((rest.len() as u64) << 59));
        }
    }
    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }
    #[inline]
    fn write_u16(&mut self, i: u16) {
        self.add(u64::from(i));
    }
    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.add(u64::from(i));
    }
    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }
    #[inline]
    fn write_u128(&mut self, i: u128) {
        self.add(i as u64);
        self.add((i >> 64) as u64);
    }
    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }
    #[inline]
    fn finish(&self) -> u64 {
        // murmur3's fmix64: hashbrown takes its control bits from the top of the hash.
        let mut h = self.0;
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        h ^ (h >> 33)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_keys_hash_alike_and_seeds_move_them() {
        let hash = |seed: u64, s: &str| {
            let mut h = WordHasher::with_seed(seed);
            h.write(s.as_bytes());
            h.finish()
        };
        let guid = "7f0ddfd5-0ac4-40ab-a688-a16250b50aba";
        let copy = guid.to_owned();
        assert_eq!(hash(1, guid), hash(1, copy.as_str()));
        assert_ne!(hash(1, guid), hash(2, guid));
        // The last partial word counts, and so does its length.
        assert_ne!(hash(1, "abc"), hash(1, "abd"));
        assert_ne!(hash(1, "a"), hash(1, "a\0"));
    }
}
