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

use std::hash::BuildHasherDefault;
use std::net::IpAddr;

use entrawatch_ingest::model::{Event, SignIn};

/// A 128-bit key for an id: the GUID's value, else two 64-bit FNV-1a hashes of the lower-cased text.
pub fn key128(id: &str) -> u128 {
    let t = trimmed(id);
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

/// `id` without whitespace at either end, as `str::trim` has it; an id that starts and ends with
/// an ASCII byte that is not whitespace (nearly every one) is not scanned.
pub(crate) fn trimmed(id: &str) -> &str {
    let plain = |b: &u8| b.is_ascii() && !matches!(b, b'\t'..=b'\r' | b' ');
    let b = id.as_bytes();
    if b.first().is_some_and(plain) && b.last().is_some_and(plain) {
        id
    } else {
        id.trim()
    }
}

/// The value of an 8-4-4-4-12 GUID in either case (what `u128::from_str_radix` makes of its hex
/// digits), read without allocating: ids are keyed on every event. The 32 digits are read as four
/// words of eight, each checked and converted all at once ([`hex_word`]).
fn guid_value(s: &str) -> Option<u128> {
    let b = s.as_bytes();
    if b.len() != 36 || [8, 13, 18, 23].iter().any(|&i| b[i] != b'-') {
        return None;
    }
    let word = |parts: [&[u8]; 2]| {
        let mut w = [0u8; 8];
        w[..parts[0].len()].copy_from_slice(parts[0]);
        w[parts[0].len()..].copy_from_slice(parts[1]);
        hex_word(u64::from_le_bytes(w))
    };
    let high = (word([&b[0..8], &[]])?, word([&b[9..13], &b[14..18]])?);
    let low = (word([&b[19..23], &b[24..28]])?, word([&b[28..36], &[]])?);
    Some(
        (u128::from(high.0) << 96)
            | (u128::from(high.1) << 64)
            | (u128::from(low.0) << 32)
            | u128::from(low.1),
    )
}

/// The eight hex digits in `word` (the first in its lowest byte) as a number, or `None` when a
/// byte is not a hex digit: every byte is tested and converted at once (no byte's sum carries
/// into the next, since each is ASCII when tested).
fn hex_word(word: u64) -> Option<u32> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    if word & HIGH != 0 {
        return None;
    }
    // A byte's top bit after `x + (0x80 - c)` says x >= c.
    let at_least = |x: u64, c: u8| (x + ONES * u64::from(0x80 - c)) & HIGH;
    let lower = word | (ONES * 0x20);
    let digit = at_least(word, b'0') & !at_least(word, b'9' + 1);
    let letter = at_least(lower, b'a') & !at_least(lower, b'f' + 1);
    if digit | letter != HIGH {
        return None;
    }
    // A digit's value is its low four bits; a letter's, its low four bits plus 9.
    let nibbles = (word & (ONES * 0x0f)) + (letter >> 7) * 9;
    // Pack the nibbles, first digit highest: pairs, then quads, then all eight.
    let v = nibbles.swap_bytes();
    let v = (v | (v >> 4)) & 0x00ff_00ff_00ff_00ff;
    let v = (v | (v >> 8)) & 0x0000_ffff_0000_ffff;
    Some((v | (v >> 16)) as u32)
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

/// An IP address as `str::parse::<IpAddr>` reads it (surrounding whitespace trimmed first), with
/// the usual forms read directly: dotted IPv4 without leading zeros, and IPv6 of hex groups with
/// at most one `::`. Anything else (an IPv4 tail, a zone, an odd form) goes to the standard
/// parser, which is several times slower on IPv6, and a located sign-in asks on every new address.
pub fn parse_ip(text: &str) -> Option<IpAddr> {
    let t = trimmed(text).as_bytes();
    let direct = if t.contains(&b':') {
        ipv6(t).map(IpAddr::from)
    } else {
        ipv4(t).map(IpAddr::from)
    };
    direct.or_else(|| std::str::from_utf8(t).ok()?.parse().ok())
}

/// Dotted-quad IPv4: four decimal octets, no leading zero, nothing else; one pass.
fn ipv4(t: &[u8]) -> Option<[u8; 4]> {
    let mut octets = [0u8; 4];
    let mut i = 0;
    for (n, octet) in octets.iter_mut().enumerate() {
        if n > 0 {
            if t.get(i) != Some(&b'.') {
                return None;
            }
            i += 1;
        }
        let start = i;
        let mut v: u32 = 0;
        while let Some(d) = t.get(i).filter(|d| d.is_ascii_digit() && i - start < 3) {
            v = v * 10 + u32::from(d - b'0');
            i += 1;
        }
        let digits = i - start;
        if digits == 0 || (digits > 1 && t[start] == b'0') {
            return None;
        }
        *octet = u8::try_from(v).ok()?;
    }
    (i == t.len()).then_some(octets)
}

/// IPv6 of one to four hex digits per group: eight groups, or fewer around one `::`; one pass.
fn ipv6(t: &[u8]) -> Option<[u16; 8]> {
    let mut groups = [0u16; 8];
    let (mut n, mut gap, mut i) = (0, None, 0);
    if t.starts_with(b"::") {
        gap = Some(0);
        i = 2;
        if i == t.len() {
            return Some(groups);
        }
    }
    loop {
        let start = i;
        let mut v: u32 = 0;
        while let Some(&c) = t.get(i) {
            let d = HEX_DIGIT[usize::from(c)];
            if d & 0x80 != 0 || i - start == 4 {
                break;
            }
            v = (v << 4) | u32::from(d);
            i += 1;
        }
        if i == start || n == 8 {
            return None;
        }
        groups[n] = v as u16;
        n += 1;
        match t.get(i) {
            None => break,
            Some(b':') => i += 1,
            Some(_) => return None,
        }
        if t.get(i) == Some(&b':') {
            if gap.is_some() {
                return None;
            }
            gap = Some(n);
            i += 1;
            if i == t.len() {
                break;
            }
        } else if i == t.len() {
            return None;
        }
    }
    match gap {
        None => (n == 8).then_some(groups),
        Some(_) if n > 7 => None,
        Some(g) => {
            let mut out = [0u16; 8];
            out[..g].copy_from_slice(&groups[..g]);
            out[8 - (n - g)..].copy_from_slice(&groups[g..n]);
            Some(out)
        }
    }
}

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
                .filter(|x| !trimmed(x).is_empty())
                .map(key128),
        }
    }

    /// The keys of `event` when it is a sign-in, none otherwise.
    pub fn of_event(event: &Event) -> SignInKeys {
        event.as_sign_in().map(SignInKeys::of).unwrap_or_default()
    }
}

/// The hasher of every state map ([`entrawatch_ingest::hash::WordHasher`], seeded once per
/// process). Keys are already well spread (GUID values, FNV hashes of names, interned tenant
/// numbers), so SipHash's cost buys nothing here; the seed keeps the table layout unpredictable
/// from outside.
pub type KeyHash = BuildHasherDefault<KeyHasher>;

pub type KeyHasher = entrawatch_ingest::hash::WordHasher;

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
            for c in "0 9aAfFgG-z/:@`[{pP\u{10}\u{19}\u{7f}é".chars() {
                let mut changed = guid.to_owned();
                changed.replace_range(at..=at, &c.to_string());
                assert_eq!(guid_value(&changed), reference(&changed), "{changed}");
            }
        }
        assert_eq!(guid_value(&guid[1..]), None);
        assert_eq!(guid_value("0123abcd-ef45-6789-ABCD-EF012345678é"), None);
    }

    /// `trimmed` is `str::trim` for ids with every kind of end: ASCII and Unicode whitespace,
    /// non-ASCII letters, empty.
    #[test]
    fn ids_are_trimmed_as_str_trim_does() {
        for end in [
            "", " ", "\t", "\u{b}", "\u{c}", "\r\n", "\u{a0}", "\u{3000}", "é", "x", "-",
        ] {
            for id in ["", "a", "ann@contoso.com", "\u{2003}b", "203.0.113.5"] {
                for text in [
                    format!("{end}{id}"),
                    format!("{id}{end}"),
                    format!("{end}{id}{end}"),
                ] {
                    assert_eq!(trimmed(&text), text.trim(), "{text:?}");
                }
            }
        }
    }

    /// `parse_ip` reads every address exactly as the standard parser does: the usual forms,
    /// compressed ones at every place, IPv4 tails, zones, leading zeros, too many or too few
    /// groups, stray characters, and random strings over the characters addresses use.
    #[test]
    fn addresses_are_parsed_as_the_standard_parser_does() {
        let std_parse = |t: &str| t.trim().parse::<IpAddr>().ok();
        let mut cases: Vec<String> = [
            "203.0.113.5",
            " 198.51.100.26 ",
            "0.0.0.0",
            "255.255.255.255",
            "256.1.1.1",
            "01.2.3.4",
            "1.2.3",
            "1.2.3.4.5",
            "1..2.3",
            "1.2.3.4 x",
            "",
            " ",
            "::",
            "::1",
            "1::",
            "2001:db8::8a2e:370:7334",
            "2001:0db8:85a3:0000:0000:8a2e:0370:7334",
            "2001:DB8:85A3::8A2E:370:7334",
            "1:2:3:4:5:6:7:8",
            "1:2:3:4:5:6:7::",
            "::2:3:4:5:6:7:8",
            "1:2:3:4:5:6:7:8:9",
            "1:2:3:4:5:6:7",
            "1::2::3",
            ":::",
            "1:::2",
            "12345::1",
            "::ffff:1.2.3.4",
            "fe80::1%eth0",
            "g::1",
            "1:2:3:4:5:6:7::8",
            ":1:2:3:4:5:6:7",
            "1:2:3:4:5:6:7:",
        ]
        .map(str::to_owned)
        .to_vec();
        // Random addresses built group by group (1-5 hex digits, 6-9 groups, a `::` anywhere,
        // octets up to 300 with leading zeros now and then), some with a character changed.
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        for _ in 0..50_000 {
            let mut text = if next(3) == 0 {
                let octet = |v: u64, pad: bool| if pad { format!("0{v}") } else { v.to_string() };
                (0..3 + next(3))
                    .map(|_| octet(next(300), next(20) == 0))
                    .collect::<Vec<_>>()
                    .join(".")
            } else {
                let groups: Vec<String> = (0..6 + next(4))
                    .map(|_| {
                        let digits = 1 + next(5);
                        format!("{:x}", next(1 << (4 * digits)))
                    })
                    .collect();
                let mut text = groups.join(":");
                if next(2) == 0 {
                    let cut = next(text.len() as u64 + 1) as usize;
                    let end = (cut + next(12) as usize).min(text.len());
                    if text.is_char_boundary(cut) && text.is_char_boundary(end) {
                        text.replace_range(cut..end, "::");
                    }
                }
                text
            };
            if next(10) == 0 && !text.is_empty() {
                let at = next(text.len() as u64) as usize;
                let c = char::from(b"0aF:.g %"[next(8) as usize]);
                text.replace_range(at..=at, &c.to_string());
            }
            cases.push(text);
        }
        let mut valid = 0;
        for case in &cases {
            assert_eq!(parse_ip(case), std_parse(case), "{case:?}");
            valid += usize::from(std_parse(case).is_some());
        }
        assert!(valid > 4_000, "{valid}");
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
