//! Text helpers the renderers share: plain strings in, display strings out.
//!
//! Alert text is partly attacker-controlled (application display names, user agents, group names), so
//! every string from an alert goes through [`one_line`] (control characters, line breaks and bidi
//! overrides neutralised) and [`clip`] (bounded length) before it is escaped for the markup of its
//! sink: [`markdown_escape`] for Adaptive Card TextBlocks and facts, [`mrkdwn_escape`] for Slack.
//! [`value_text`] turns an evidence value into one compact line; [`key_text`] an evidence key into a
//! label; [`time_text`] and [`duration_text`] format event times.

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use entrawatch_detect::{PrincipalKind, Severity};
use serde_json::Value;

use crate::notify::Kind;

/// The ellipsis a clipped string ends with.
pub const ELLIPSIS: char = '…';

/// `s` on one line: control characters and runs of whitespace become one space, Unicode bidi
/// overrides and isolates (which can make text read differently from what it is) become U+FFFD, and
/// the ends are trimmed.
pub fn one_line(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut space = false;
    for c in s.chars() {
        if c.is_whitespace() || c.is_control() {
            space = true;
            continue;
        }
        if space && !out.is_empty() {
            out.push(' ');
        }
        space = false;
        out.push(if is_bidi_control(c) { '\u{FFFD}' } else { c });
    }
    out
}

fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}')
}

/// At most `max` characters of `s`; a clipped string ends with [`ELLIPSIS`] (counted in `max`).
pub fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    let trimmed = out.trim_end().len();
    out.truncate(trimmed);
    out.push(ELLIPSIS);
    out
}

/// `one_line` then `clip`: the form every alert string takes before escaping.
pub fn line(s: &str, max: usize) -> String {
    clip(&one_line(s), max)
}

/// The upper-case severity word of a header line.
pub fn severity_word(severity: Severity) -> &'static str {
    match severity {
        Severity::Info => "INFO",
        Severity::Low => "LOW",
        Severity::Medium => "MEDIUM",
        Severity::High => "HIGH",
        Severity::Critical => "CRITICAL",
    }
}

/// What the principal is, as a fact label.
pub fn principal_kind_text(kind: PrincipalKind) -> &'static str {
    match kind {
        PrincipalKind::User => "User",
        PrincipalKind::ServicePrincipal => "Service principal",
        PrincipalKind::Ip => "IP address",
        PrincipalKind::Tenant => "Tenant-wide",
    }
}

/// Why the message is sent: `first`, `escalation`, `reminder (+N since last)`, `test`, `system`.
pub fn kind_text(kind: Kind, since_last: Option<u64>) -> String {
    match (kind, since_last) {
        (Kind::Reminder, Some(n)) => format!("reminder (+{n} since last)"),
        _ => kind.as_str().to_owned(),
    }
}

/// `2026-10-01 00:09:00 UTC`.
pub fn time_text(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// RFC 3339 in whole seconds with `Z`, as the alert record writes times.
pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// A short human duration: `45 s`, `42 min`, `3 h 5 min`, `2 d 4 h`.
pub fn duration_text(d: Duration) -> String {
    let s = d.num_seconds().max(0);
    let (days, hours, mins) = (s / 86_400, s % 86_400 / 3_600, s % 3_600 / 60);
    match (days, hours, mins) {
        (0, 0, 0) => format!("{s} s"),
        (0, 0, m) => format!("{m} min"),
        (0, h, 0) => format!("{h} h"),
        (0, h, m) => format!("{h} h {m} min"),
        (d, 0, _) => format!("{d} d"),
        (d, h, _) => format!("{d} d {h} h"),
    }
}

/// An evidence key as a label: `ip_address` → `IP address`, `app_id` → `App id`.
pub fn key_text(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for (i, word) in key
        .split(['_', '-', ' '])
        .filter(|w| !w.is_empty())
        .enumerate()
    {
        if i > 0 {
            out.push(' ');
        }
        match word.to_ascii_lowercase().as_str() {
            "ip" | "mfa" | "upn" | "url" | "mitre" | "pim" | "gdap" | "csp" => {
                out.push_str(&word.to_ascii_uppercase())
            }
            "ips" => out.push_str("IPs"),
            _ if i == 0 => {
                let mut cs = word.chars();
                if let Some(c) = cs.next() {
                    out.extend(c.to_uppercase());
                    out.push_str(cs.as_str());
                }
            }
            _ => out.push_str(word),
        }
    }
    if out.is_empty() {
        out.push_str(key);
    }
    line(&out, 60)
}

/// An evidence value on one line; `None` for null (nothing to show). Booleans read `yes`/`no`,
/// arrays are joined with `, ` (`none` when empty), objects read `key: value; key: value` (nested
/// ones in parentheses, nulls left out).
pub fn value_text(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::Bool(b) => Some(if *b { "yes" } else { "no" }.to_owned()),
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) => Some(s.clone()),
        Value::Array(items) if items.is_empty() => Some("none".to_owned()),
        Value::Array(items) => Some(
            items
                .iter()
                .map(|i| value_text(i).unwrap_or_else(|| "null".to_owned()))
                .collect::<Vec<_>>()
                .join(", "),
        ),
        Value::Object(m) => {
            let parts: Vec<String> = m
                .iter()
                .filter_map(|(k, v)| {
                    let t = value_text(v)?;
                    Some(match v {
                        Value::Object(_) => format!("{k}: ({t})"),
                        _ => format!("{k}: {t}"),
                    })
                })
                .collect();
            Some(if parts.is_empty() {
                "none".to_owned()
            } else {
                parts.join("; ")
            })
        }
    }
}

/// Escapes text for an Adaptive Card TextBlock or fact, which Teams reads as a Markdown subset:
/// emphasis (`*`, and `_` at a word edge), links (`[`, `]`), code spans and a backslash before
/// punctuation get a backslash; a line that would start a list or heading has its marker escaped.
/// Intra-word `_` (guest UPNs such as `ann_contoso.com#EXT#@…`) is left as it is: it makes no
/// emphasis, and a backslash there would show on clients that ignore escapes.
pub fn markdown_escape(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::with_capacity(s.len() + 8);
    for (i, &c) in chars.iter().enumerate() {
        let prev = i.checked_sub(1).map(|j| chars[j]);
        let next = chars.get(i + 1).copied();
        let escape = match c {
            '*' | '[' | ']' | '`' => true,
            '\\' => next.is_some_and(|n| n.is_ascii_punctuation()),
            '_' => {
                !(prev.is_some_and(char::is_alphanumeric)
                    && next.is_some_and(char::is_alphanumeric))
            }
            '#' | '-' | '+' | '>' if i == 0 => next.is_none_or(char::is_whitespace),
            '.' | ')' => {
                let start = chars[..i].iter().all(char::is_ascii_digit) && i > 0;
                start && next.is_none_or(char::is_whitespace)
            }
            _ => false,
        };
        if escape {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Escapes text for Slack mrkdwn: `&`, `<` and `>` become entities, which also keeps user text from
/// forming links or `<!channel>` mentions.
pub fn mrkdwn_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            _ => out.push(c),
        }
    }
    out
}

/// The ATT&CK page of a technique id (`T1078` or `T1078.004`), or `None` for anything else.
pub fn mitre_url(id: &str) -> Option<String> {
    let rest = id.strip_prefix('T')?;
    let (technique, sub) = match rest.split_once('.') {
        Some((t, s)) => (t, Some(s)),
        None => (rest, None),
    };
    let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(technique, 4) || sub.is_some_and(|s| !digits(s, 3)) {
        return None;
    }
    Some(match sub {
        Some(s) => format!("https://attack.mitre.org/techniques/T{technique}/{s}/"),
        None => format!("https://attack.mitre.org/techniques/T{technique}/"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn one_line_flattens_and_neutralises_bidi() {
        assert_eq!(one_line("  a\r\n\tb \u{0007} c  "), "a b c");
        assert_eq!(one_line("evil\u{202E}gpj.exe"), "evil\u{FFFD}gpj.exe");
        assert_eq!(one_line(""), "");
    }

    #[test]
    fn clip_counts_characters_and_marks_the_cut() {
        assert_eq!(clip("abc", 3), "abc");
        assert_eq!(clip("abcd", 3), "ab…");
        assert_eq!(clip("ab cd", 4), "ab…");
        assert_eq!(clip("ééééé", 3).chars().count(), 3);
        assert_eq!(clip("日本語のテキスト", 4), "日本語…");
    }

    #[test]
    fn markdown_escape_breaks_links_and_emphasis_only() {
        assert_eq!(
            markdown_escape("[click](https://evil.example) **now**"),
            "\\[click\\](https://evil.example) \\*\\*now\\*\\*"
        );
        assert_eq!(markdown_escape("_x_ a_b"), "\\_x\\_ a_b");
        assert_eq!(
            markdown_escape("ann_contoso.com#EXT#@contoso.onmicrosoft.com"),
            "ann_contoso.com#EXT#@contoso.onmicrosoft.com"
        );
        assert_eq!(markdown_escape("- item"), "\\- item");
        assert_eq!(markdown_escape("1. item"), "1\\. item");
        assert_eq!(markdown_escape("CONTOSO\\alice"), "CONTOSO\\alice");
        assert_eq!(markdown_escape("a\\*b"), "a\\\\\\*b");
        assert_eq!(markdown_escape("a-b 10.5"), "a-b 10.5");
    }

    #[test]
    fn mrkdwn_escape_handles_the_three_control_characters() {
        assert_eq!(
            mrkdwn_escape("<!channel> & <https://x|y>"),
            "&lt;!channel&gt; &amp; &lt;https://x|y&gt;"
        );
    }

    #[test]
    fn values_are_compact() {
        assert_eq!(value_text(&json!(null)), None);
        assert_eq!(value_text(&json!(true)).unwrap(), "yes");
        assert_eq!(value_text(&json!(50126)).unwrap(), "50126");
        assert_eq!(value_text(&json!(["a", 1, null])).unwrap(), "a, 1, null");
        assert_eq!(value_text(&json!([])).unwrap(), "none");
        assert_eq!(
            value_text(&json!({"ip": "192.0.2.1", "loc": "Lisbon, PT", "x": null})).unwrap(),
            "ip: 192.0.2.1; loc: Lisbon, PT"
        );
        assert_eq!(
            value_text(&json!({"a": {"b": [1, 2]}})).unwrap(),
            "a: (b: 1, 2)"
        );
        assert_eq!(value_text(&json!({})).unwrap(), "none");
    }

    #[test]
    fn keys_read_as_labels() {
        assert_eq!(key_text("ip_address"), "IP address");
        assert_eq!(key_text("app_id"), "App id");
        assert_eq!(key_text("failures_in_window"), "Failures in window");
        assert_eq!(key_text("distinct_ips"), "Distinct IPs");
        assert_eq!(key_text("_"), "_");
    }

    #[test]
    fn durations_and_kinds() {
        assert_eq!(duration_text(Duration::seconds(45)), "45 s");
        assert_eq!(duration_text(Duration::minutes(42)), "42 min");
        assert_eq!(duration_text(Duration::minutes(185)), "3 h 5 min");
        assert_eq!(duration_text(Duration::hours(52)), "2 d 4 h");
        assert_eq!(
            kind_text(Kind::Reminder, Some(3)),
            "reminder (+3 since last)"
        );
        assert_eq!(kind_text(Kind::Reminder, None), "reminder");
        assert_eq!(kind_text(Kind::Escalation, Some(3)), "escalation");
    }

    #[test]
    fn mitre_links_only_for_technique_ids() {
        assert_eq!(
            mitre_url("T1078.004").unwrap(),
            "https://attack.mitre.org/techniques/T1078/004/"
        );
        assert_eq!(
            mitre_url("T1110").unwrap(),
            "https://attack.mitre.org/techniques/T1110/"
        );
        assert_eq!(mitre_url("TA0001"), None);
        assert_eq!(mitre_url("T1078.4"), None);
        assert_eq!(mitre_url("javascript:alert(1)"), None);
    }
}
