//! Keys: how ids, addresses and countries become the small fixed-size keys the detection state
//! and the privileged directory are indexed by, and the hasher of every such map.
//!
//! - [`key128`]: an id or address as 128 bits (a GUID's own value, else a hash of the lower-cased
//!   text); [`sign_in_key`] and [`SignInKeys`] pick and key a sign-in's principal and address once
//!   per event.
//! - `caseless_hash`: a 64-bit hash equal for every ASCII casing of an id, for lookups of
//!   configured names.
//! - [`country_code`]: an ISO country code packed into two bytes, and [`country_text`] back.
//! - [`KeyHash`]: the hasher of the state's maps, for keys that are already well spread.

use std::hash::{BuildHasherDefault, Hasher};

use entrawatch_ingest::model::{Event, SignIn};

/// A 128-bit key for an id: the GUID's value, else two 64-bit FNV-1a hashes of the lower-cased text.
pub fn key128(id: &str) -> u128 {
    let t = id.trim();
    if let Some(v) = guid_value(t) {
        return v;
    }
    let mut a: u64 = 0xcbf2_9ce4_8422_2325;
    let mut b: u64 = 0x6c62_272e_07bb_0142;
    for byte in t.bytes().map(|c| c.to_ascii_lowercase()) {
        a = (a ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
        b = (b ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3 ^ 0x9e37);
    }
    (u128::from(a) << 64) | u128::from(b)
}

/// The value of an 8-4-4-4-12 GUID in either case (what `u128::from_str_radix` makes of its hex
/// digits), read without allocating: ids are keyed on every event.
fn guid_value(s: &str) -> Option<u128> {
    let b = s.as_bytes();
    if b.len() != 36 {
        return None;
    }
    if [8, 13, 18, 23].iter().any(|&i| b[i] != b'-') {
        return None;
    }
    let mut v: u128 = 0;
    let mut invalid = 0u8;
    for (i, &c) in b.iter().enumerate() {
        if matches!(i, 8 | 13 | 18 | 23) {
            continue;
        }
        let digit = HEX_DIGIT[usize::from(c)];
        invalid |= digit;
        v = (v << 4) | u128::from(digit & 0x0f);
    }
    (invalid & 0x80 == 0).then_some(v)
}

/// Each byte's value as a hex digit, or 0x80 for a byte that is none: a table read per digit
/// instead of a range check, since ids are keyed on every event.
const HEX_DIGIT: [u8; 256] = {
    let mut table = [0x80u8; 256];
    let mut i = 0;
    while i < 10 {
        table[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        table[b'a' as usize + i] = 10 + i as u8;
        table[b'A' as usize + i] = 10 + i as u8;
        i += 1;
    }
    table
};

/// An ISO country code packed into two bytes (`US` → 0x5553); 0 for none.
pub fn country_code(c: Option<&str>) -> u16 {
    match c.map(str::as_bytes) {
        Some([a, b]) => u16::from_be_bytes([a.to_ascii_uppercase(), b.to_ascii_uppercase()]),
        _ => 0,
    }
}

pub fn country_text(code: u16) -> String {
    let [a, b] = code.to_be_bytes();
    String::from_utf8_lossy(&[a, b]).into_owned()
}

/// The id a sign-in's principal is keyed by: the user id, else the service principal id, else the UPN.
pub fn sign_in_key(s: &SignIn) -> Option<&str> {
    s.user_id
        .as_deref()
        .or(s.service_principal_id.as_deref())
        .or(s.user_principal_name.as_deref())
}

/// The keys of a sign-in that the state and several rules look up, made once per event, because
/// each [`key128`] reads and hashes the text again and the state and the rules each need them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SignInKeys {
    /// [`key128`] of the principal's [`sign_in_key`].
    pub principal: Option<u128>,
    /// [`key128`] of the source IP address.
    pub ip: Option<u128>,
    /// [`key128`] of the session id (`session-token-replay` and the state's sessions).
    pub session: Option<u128>,
}

impl SignInKeys {
    pub fn of(s: &SignIn) -> SignInKeys {
        SignInKeys {
            principal: sign_in_key(s).map(key128),
            ip: s.ip_address.as_deref().map(key128),
            session: s
                .session_id
                .as_deref()
                .filter(|x| !x.trim().is_empty())
                .map(key128),
        }
    }

    /// The keys of `event` when it is a sign-in, none otherwise.
    pub fn of_event(event: &Event) -> SignInKeys {
        event.as_sign_in().map(SignInKeys::of).unwrap_or_default()
    }
}

/// The hasher of every state map: FxHash-style multiply-rotate over the key's words, from a seed
/// drawn once per process, then a final avalanche. Keys are already well spread (GUID values,
/// FNV hashes of names, interned tenant numbers), so SipHash's cost buys nothing here; the seed
/// keeps the table layout unpredictable from outside.
pub type KeyHash = BuildHasherDefault<KeyHasher>;

#[derive(Debug, Clone, Copy)]
pub struct KeyHasher(u64);

impl Default for KeyHasher {
    fn default() -> Self {
        static SEED: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
        let seed = *SEED.get_or_init(|| {
            use std::hash::BuildHasher;
            std::collections::hash_map::RandomState::new().hash_one(0x5eed_u64)
        });
        KeyHasher(seed)
    }
}

impl KeyHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

impl Hasher for KeyHasher {
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
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }
    fn write_u16(&mut self, i: u16) {
        self.add(u64::from(i));
    }
    fn write_u32(&mut self, i: u32) {
        self.add(u64::from(i));
    }
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }
    fn write_u128(&mut self, i: u128) {
        self.add(i as u64);
        self.add((i >> 64) as u64);
    }
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }
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

/// A hash of an id equal for every ASCII casing of it: the id is hashed in lower case, a word
/// at a time, without an intermediate string.
pub(crate) fn caseless_hash(id: &str) -> u64 {
    use std::hash::{BuildHasher as _, Hasher as _};
    let mut h = KeyHash::default().build_hasher();
    let mut chunks = id.as_bytes().chunks_exact(8);
    for c in &mut chunks {
        let word = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        h.write_u64(ascii_lowercase_word(word));
    }
    let mut last = [0u8; 8];
    last[..chunks.remainder().len()].copy_from_slice(chunks.remainder());
    h.write_u64(ascii_lowercase_word(u64::from_le_bytes(last)));
    h.write_usize(id.len());
    h.finish()
}

/// The eight bytes of `word` with each ASCII capital made small, all at once; other bytes,
/// non-ASCII included, are left as they are.
fn ascii_lowercase_word(word: u64) -> u64 {
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let low = word & LOW7;
    // A byte's top bit is set by the first sum when its low 7 bits are at least b'A' (0x41), by
    // the second when they are above b'Z' (0x5a); neither sum carries into the next byte.
    let at_least_a = low + 0x3f3f_3f3f_3f3f_3f3f;
    let above_z = low + 0x2525_2525_2525_2525;
    let capital = at_least_a & !above_z & !word & HIGH;
    word | (capital >> 2)
}
#[cfg(test)]
mod tests {
    use super::*;

    /// `guid_value` reads exactly the 8-4-4-4-12 form, in any case, as `from_str_radix` reads
    /// its digits: checked with every position of a GUID changed to each of a set of bytes.
    #[test]
    fn guid_values_are_read_as_their_hex_digits() {
        let reference = |s: &str| {
            let b = s.as_bytes();
            let dashes = [8, 13, 18, 23];
            let form = b.len() == 36
                && b.iter().enumerate().all(|(i, c)| {
                    if dashes.contains(&i) {
                        *c == b'-'
                    } else {
                        c.is_ascii_hexdigit()
                    }
                });
            form.then(|| u128::from_str_radix(&s.replace('-', ""), 16).unwrap())
        };
        let guid = "0123abcd-ef45-6789-ABCD-EF0123456789";
        assert_eq!(guid_value(guid), Some(0x0123abcdef456789abcdef0123456789));
        for at in 0..guid.len() {
            for c in "0 9aAfFgG-z/:@`".chars() {
                let mut changed = guid.to_owned();
                changed.replace_range(at..=at, &c.to_string());
                assert_eq!(guid_value(&changed), reference(&changed), "{changed}");
            }
        }
        assert_eq!(guid_value(&guid[1..]), None);
        assert_eq!(guid_value("0123abcd-ef45-6789-ABCD-EF012345678é"), None);
    }

    #[test]
    fn keys_and_countries() {
        assert_eq!(
            key128("11111111-aaaa-4aaa-8aaa-111111111111"),
            0x11111111aaaa4aaa8aaa111111111111
        );
        assert_eq!(
            key128(" 11111111-AAAA-4aaa-8aaa-111111111111"),
            0x11111111aaaa4aaa8aaa111111111111
        );
        assert_eq!(key128("Ann@Contoso.com"), key128("ann@contoso.com"));
        assert_ne!(key128("ann@contoso.com"), key128("bob@contoso.com"));
        assert_eq!(country_text(country_code(Some("us"))), "US");
        assert_eq!(country_code(None), 0);
        assert_eq!(country_code(Some("USA")), 0);
    }

    /// Every byte value, at every position of the word and next to every kind of neighbour, is
    /// lower-cased exactly as `u8::to_ascii_lowercase` does.
    #[test]
    fn a_word_is_lower_cased_as_each_of_its_bytes() {
        for b in 0..=255u8 {
            for neighbour in [
                0u8, b'@', b'A', b'Z', b'[', b'a', 0x7f, 0x80, 0xc1, 0xda, 0xff,
            ] {
                for pos in 0..8 {
                    let mut bytes = [neighbour; 8];
                    bytes[pos] = b;
                    let want = bytes.map(|x| x.to_ascii_lowercase());
                    assert_eq!(
                        ascii_lowercase_word(u64::from_le_bytes(bytes)).to_le_bytes(),
                        want,
                        "{bytes:?}"
                    );
                }
            }
        }
        assert_eq!(
            caseless_hash("Ann@Contoso.COM"),
            caseless_hash("ann@contoso.com")
        );
        assert_ne!(
            caseless_hash("ann@contoso.com"),
            caseless_hash("ann@contoso.co")
        );
    }
}
