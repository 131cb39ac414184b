//! Timestamps in every form Entra writes them (docs/formats.md §7.4), always returned in UTC.
//!
//! Accepted: ISO 8601 with any number of fractional digits (Graph: none, Event Hub: 7), `Z`, `+00:00`
//! or any other offset, a space instead of `T`, non-padded hours (`2022-09-09T9:59:27.958Z`), no offset
//! at all (taken as UTC), and US-locale `M/D/YYYY h:mm:ss[.fff] AM/PM` with or without a comma after
//! the year (`"4/28/2021, 2:08:45.221 PM"`, Log Analytics CSV; `"8/22/2022 6:11:52 PM"`, Event Hub).

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};

/// Parses one timestamp; `None` when it is in no known form.
pub fn parse_timestamp(raw: &str) -> Option<DateTime<Utc>> {
    let s = raw.trim();
    if s.is_empty() {
        return None;
    }
    if s.contains('/') {
        return parse_us_locale(s);
    }
    parse_iso(s)
}

fn parse_iso(s: &str) -> Option<DateTime<Utc>> {
    let bytes = s.as_bytes();
    // Date part: YYYY-MM-DD.
    if bytes.len() < 10 || bytes[4] != b'-' || bytes[7] != b'-' {
        return None;
    }
    let year: i32 = s.get(0..4)?.parse().ok()?;
    let month: u32 = s.get(5..7)?.parse().ok()?;
    let day: u32 = s.get(8..10)?.parse().ok()?;
    let date = NaiveDate::from_ymd_opt(year, month, day)?;
    let rest = &s[10..];
    if rest.is_empty() {
        return Some(Utc.from_utc_datetime(&date.and_hms_opt(0, 0, 0)?));
    }
    let rest = rest.strip_prefix(['T', 't', ' '])?;
    // Split the offset off: `Z`, or the last `+` / `-` after the time's first colon.
    let (clock, offset_secs) = split_offset(rest)?;
    let time = parse_clock(clock)?;
    let naive = NaiveDateTime::new(date, time);
    let offset = FixedOffset::east_opt(offset_secs)?;
    let local = offset.from_local_datetime(&naive).single()?;
    Some(local.with_timezone(&Utc))
}

/// Splits `hh:mm:ss[.f][Z|±hh:mm|±hhmm]` into the clock text and the offset in seconds.
fn split_offset(s: &str) -> Option<(&str, i32)> {
    if let Some(clock) = s.strip_suffix(['Z', 'z']) {
        return Some((clock, 0));
    }
    if let Some(pos) = s.rfind(['+', '-']) {
        let (clock, offset) = s.split_at(pos);
        let sign = if offset.starts_with('-') { -1 } else { 1 };
        let digits: String = offset[1..].chars().filter(|c| *c != ':').collect();
        if digits.len() != 4 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let hours: i32 = digits[0..2].parse().ok()?;
        let minutes: i32 = digits[2..4].parse().ok()?;
        return Some((clock, sign * (hours * 3600 + minutes * 60)));
    }
    Some((s, 0))
}

/// `h:mm[:ss[.fraction]]`, hours possibly not zero-padded; fractions of any length (truncated to ns).
fn parse_clock(s: &str) -> Option<NaiveTime> {
    let (hms, fraction) = match s.split_once(['.', ',']) {
        Some((hms, f)) => (hms, Some(f)),
        None => (s, None),
    };
    let mut parts = hms.split(':');
    let hour: u32 = parse_digits(parts.next()?, 1, 2)?;
    let minute: u32 = parse_digits(parts.next()?, 2, 2)?;
    let second: u32 = match parts.next() {
        Some(p) => parse_digits(p, 2, 2)?,
        None => 0,
    };
    if parts.next().is_some() {
        return None;
    }
    let nanos = match fraction {
        Some(f) => parse_fraction(f)?,
        None => 0,
    };
    NaiveTime::from_hms_nano_opt(hour, minute, second, nanos)
}

fn parse_digits(s: &str, min: usize, max: usize) -> Option<u32> {
    if s.len() < min || s.len() > max || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn parse_fraction(f: &str) -> Option<u32> {
    if f.is_empty() || !f.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut nanos: u32 = 0;
    for (i, b) in f.bytes().take(9).enumerate() {
        nanos += u32::from(b - b'0') * 10u32.pow(8 - i as u32);
    }
    Some(nanos)
}

/// `M/D/YYYY[,] h:mm:ss[.fff] [AM|PM]`, always UTC (Entra writes UTC in these columns).
fn parse_us_locale(s: &str) -> Option<DateTime<Utc>> {
    let (date_part, rest) = s.split_once([' ', 'T'])?;
    let date_part = date_part.trim_end_matches(',');
    let mut d = date_part.split('/');
    let month: u32 = parse_digits(d.next()?, 1, 2)?;
    let day: u32 = parse_digits(d.next()?, 1, 2)?;
    let year: i32 = parse_digits(d.next()?, 4, 4)? as i32;
    if d.next().is_some() {
        return None;
    }
    let date = NaiveDate::from_ymd_opt(year, month, day)?;
    let rest = rest.trim();
    let (clock, meridiem) = match rest.rsplit_once(' ') {
        Some((clock, m)) if m.eq_ignore_ascii_case("AM") || m.eq_ignore_ascii_case("PM") => {
            (clock.trim(), Some(m.eq_ignore_ascii_case("PM")))
        }
        _ => (rest, None),
    };
    let clock = clock.strip_suffix(['Z', 'z']).unwrap_or(clock);
    let time = parse_clock(clock)?;
    let time = match meridiem {
        None => time,
        Some(pm) => {
            use chrono::Timelike;
            let h = time.hour();
            if h == 0 || h > 12 {
                return None;
            }
            let hour = match (pm, h) {
                (false, 12) => 0,
                (false, h) => h,
                (true, 12) => 12,
                (true, h) => h + 12,
            };
            time.with_hour(hour)?
        }
    };
    Some(Utc.from_utc_datetime(&NaiveDateTime::new(date, time)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iso(s: &str) -> String {
        parse_timestamp(s)
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
            .unwrap_or_else(|| "NONE".into())
    }

    #[test]
    fn every_documented_form_parses_to_utc() {
        let cases = [
            ("2021-06-30T16:34:32Z", "2021-06-30T16:34:32Z"),
            (
                "2019-03-12T16:02:15.5522137Z",
                "2019-03-12T16:02:15.552213700Z",
            ),
            (
                "2019-03-12T16:02:15.5522137+00:00",
                "2019-03-12T16:02:15.552213700Z",
            ),
            (
                "2025-11-13T20:48:53.1234567-05:00",
                "2025-11-14T01:48:53.123456700Z",
            ),
            ("2022-09-09T9:59:27.958Z", "2022-09-09T09:59:27.958Z"),
            ("2021-04-28 14:08:45", "2021-04-28T14:08:45Z"),
            ("2021-04-28T14:08:45.221", "2021-04-28T14:08:45.221Z"),
            ("4/28/2021, 2:08:45.221 PM", "2021-04-28T14:08:45.221Z"),
            ("8/22/2022 6:11:52 PM", "2022-08-22T18:11:52Z"),
            ("11/14/2025 1:48:53 AM", "2025-11-14T01:48:53Z"),
            ("11/14/2025 12:05:00 AM", "2025-11-14T00:05:00Z"),
            ("11/14/2025 12:05:00 PM", "2025-11-14T12:05:00Z"),
            ("11/14/2025 13:05:00", "2025-11-14T13:05:00Z"),
            (
                "2024-01-01T00:00:00.123456789123Z",
                "2024-01-01T00:00:00.123456789Z",
            ),
            ("2024-01-01T00:00:00+0530", "2023-12-31T18:30:00Z"),
        ];
        for (input, want) in cases {
            assert_eq!(iso(input), want, "input {input:?}");
        }
    }

    #[test]
    fn nonsense_is_none_never_a_panic() {
        for bad in [
            "",
            "yesterday",
            "2021-13-01T00:00:00Z",
            "13/40/2021 1:00:00 PM",
            "2021-04-28T25:00:00Z",
            "0/0/0",
            "2021-04-28T1",
            "2021-04-28Tab:cd:efZ",
            "4/28/2021, 13:00:00 PM",
            "\u{0}\u{1}",
            "2021-04-28T14:08:45.Z",
            "2021-04-28T14:08:45+5",
        ] {
            assert_eq!(parse_timestamp(bad), None, "input {bad:?}");
        }
    }
}
