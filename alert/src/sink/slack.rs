//! Slack payloads: a [`Message`] in, the body of a Slack incoming-webhook post out (docs/alerting.md §4.3).
//!
//! The body has `text` (always set, at most [`TEXT_MAX`] characters: the notification and fallback
//! text), Block Kit `blocks`, and `unfurl_links`/`unfurl_media` off. The blocks say what the Teams
//! card says, in the same order: a `header` (severity emoji and word, title), the summary, the facts
//! as `section.fields`, the evidence as one mrkdwn section, one line per further alert of the group,
//! and a `context` line with the alert id, why it is sent and a link to the user's sign-in logs.
//! Links are mrkdwn `<url|text>` (no buttons: they need an app with interactivity); user-provided
//! text has `&`, `<`, `>` escaped.
//!
//! Limits kept (Block Kit and docs/alerting.md §4.3): header ≤ 150 characters, section text ≤ 3000, ≤ 10
//! fields of ≤ 2000, context ≤ 10 elements, ≤ 50 blocks, no empty text, and all block text together
//! under [`BLOCK_TEXT_BUDGET`] bytes. As for Teams, the headline keeps as many evidence facts as fit
//! on their own, then as many further alerts as fit are listed, the rest as "+N more".
//! [`render_minimal`] is `text` alone.

use serde_json::{Value, json};

use super::text::{self, mrkdwn_escape};
use super::view::{self, AlertView, CompactLine, Fact, FactValue};
use super::{Message, Payload};
use entrawatch_detect::Severity;

/// Most characters of the top-level `text`.
pub const TEXT_MAX: usize = 4000;
/// All block text together stays under this many bytes (`msg_blocks_too_long` appears near 13 KB).
pub const BLOCK_TEXT_BUDGET: usize = 8 * 1024;
/// Most blocks in a message.
pub const MAX_BLOCKS: usize = 50;
/// Most characters of a header's text.
pub const HEADER_MAX: usize = 150;
/// Most characters of a section's text.
pub const SECTION_MAX: usize = 3000;
/// Most fields of a section, and characters of each.
pub const FIELDS_MAX: usize = 10;
pub const FIELD_MAX: usize = 2000;

/// The full Slack message for `msg`, within the limits above.
pub fn render(msg: &Message<'_>) -> Payload {
    let Some(head) = msg.alerts.first() else {
        return render_minimal(msg);
    };
    let view = view::headline(head, msg.kind, msg.since_last);
    let lines: Vec<CompactLine> = msg.alerts[1..].iter().map(view::compact).collect();
    let build = |shown: usize, facts: usize| blocks(&view, &lines, shown, facts);
    // The headline first (with as much evidence as fits alone), then as many further alerts as fit.
    let all_facts = view.evidence.len();
    let Some(facts) = view::largest_fitting(all_facts, |f| fits(&build(0, f))) else {
        return render_minimal(msg);
    };
    let shown = view::largest_fitting(lines.len(), |n| fits(&build(n, facts))).unwrap_or(0);
    let body = json!({
        "text": fallback_text(msg),
        "blocks": build(shown, facts),
        "unfurl_links": false,
        "unfurl_media": false,
    });
    Payload::json(to_body(&body), lines.len() - shown)
}

/// `text` alone, sent once when the full message is refused as a payload bug.
pub fn render_minimal(msg: &Message<'_>) -> Payload {
    let body = json!({ "text": fallback_text(msg) });
    Payload::json(to_body(&body), msg.alerts.len().saturating_sub(1))
}

/// `CRITICAL: title — who · tenant · alert ew-… (first)` (who left out when the title names it),
/// and how many more alerts.
fn fallback_text(msg: &Message<'_>) -> String {
    let Some(a) = msg.alerts.first() else {
        return format!(
            "entrawatch notification {}",
            mrkdwn_escape(&text::line(msg.notification_id, 60))
        );
    };
    let title = text::line(&a.title, 300);
    let who = text::line(a.principal.upn.as_deref().unwrap_or(&a.principal.id), 120);
    let tenant = text::line(a.tenant_name.as_deref().unwrap_or(&a.tenant_id), 120);
    let mut s = format!("{}: {title}", text::severity_word(a.severity));
    if !title.contains(&who) {
        s.push_str(&format!(" — {who}"));
    }
    s.push_str(&format!(
        " · {tenant} · alert {} ({})",
        text::line(&a.id, 60),
        text::kind_text(msg.kind, msg.since_last)
    ));
    let more = msg.alerts.len() - 1;
    if more > 0 {
        s.push_str(&format!(
            " and {more} more alert{}",
            if more == 1 { "" } else { "s" }
        ));
    }
    escaped(&s, TEXT_MAX)
}

/// The blocks with the first `shown` further alerts and the first `facts` evidence facts.
fn blocks(view: &AlertView, lines: &[CompactLine], shown: usize, facts: usize) -> Vec<Value> {
    let mut header = format!(
        "{} {}",
        emoji(view.severity),
        text::severity_word(view.severity)
    );
    if view.kind != "first" {
        header.push_str(&format!(" ({})", view.kind));
    }
    let header = text::clip(&format!("{header} · {}", view.title), HEADER_MAX);
    let mut out = vec![
        json!({"type": "header", "text": {"type": "plain_text", "text": header, "emoji": true}}),
        section(&escaped(&view.summary, SECTION_MAX)),
    ];
    let fields: Vec<Value> = view
        .facts
        .iter()
        .take(FIELDS_MAX)
        .map(|f| {
            let title = mrkdwn_escape(&f.title);
            mrkdwn(&format!("*{title}*\n{}", value(f, FIELD_MAX - 40)))
        })
        .collect();
    out.push(json!({"type": "section", "fields": fields}));
    if !view.evidence.is_empty() {
        let mut s = String::from("*Evidence*");
        for f in &view.evidence[..facts] {
            s.push_str(&format!(
                "\n• *{}:* {}",
                mrkdwn_escape(&f.title),
                value(f, 600)
            ));
        }
        let over = view.evidence.len() - facts + view.evidence_over;
        if over > 0 {
            s.push_str(&format!("\n_+{over} more_"));
        }
        out.push(section(&s));
    }
    if !lines.is_empty() {
        out.push(json!({"type": "divider"}));
        let n = lines.len();
        let mut s = format!(
            "*{n} more alert{} in this group*",
            if n == 1 { "" } else { "s" }
        );
        for l in &lines[..shown] {
            let row = format!(
                "\n{} *{}* · {}",
                emoji(l.severity),
                text::severity_word(l.severity),
                escaped(&l.text, 600)
            );
            if s.chars().count() + row.chars().count() > SECTION_MAX {
                out.push(section(s.trim_start_matches('\n')));
                s = String::new();
            }
            s.push_str(&row);
        }
        if shown < n {
            s.push_str(&format!("\n_+{} more not shown_", n - shown));
        }
        out.push(section(s.trim_start_matches('\n')));
    }
    let mut context = format!(
        "entrawatch · alert `{}` · {} · rule `{}`",
        mrkdwn_escape(&view.id),
        mrkdwn_escape(&view.kind),
        mrkdwn_escape(&view.rule)
    );
    for (title, url) in &view.actions {
        context.push_str(&format!(" · <{url}|{}>", mrkdwn_escape(title)));
    }
    out.push(json!({"type": "context", "elements": [mrkdwn(&context)]}));
    out
}

fn value(f: &Fact, max: usize) -> String {
    match &f.value {
        FactValue::Text(t) => escaped(t, max),
        FactValue::Links(links) => links
            .iter()
            .map(|l| match &l.url {
                Some(url) => format!("<{url}|{}>", mrkdwn_escape(&l.text)),
                None => mrkdwn_escape(&l.text),
            })
            .collect::<Vec<_>>()
            .join(", "),
    }
}

/// Whether `blocks` keep every limit this module promises.
fn fits(blocks: &[Value]) -> bool {
    if blocks.len() > MAX_BLOCKS {
        return false;
    }
    let mut total = 0;
    for b in blocks {
        if let Some(t) = b.pointer("/text/text").and_then(Value::as_str) {
            let max = if b["type"] == "header" {
                HEADER_MAX
            } else {
                SECTION_MAX
            };
            if t.is_empty() || t.chars().count() > max {
                return false;
            }
            total += t.len();
        }
        for list in ["fields", "elements"] {
            for f in b[list].as_array().map(Vec::as_slice).unwrap_or_default() {
                let t = f["text"].as_str().unwrap_or_default();
                if t.is_empty() || t.chars().count() > FIELD_MAX {
                    return false;
                }
                total += t.len();
            }
        }
    }
    total < BLOCK_TEXT_BUDGET
}

fn section(text: &str) -> Value {
    json!({"type": "section", "text": mrkdwn(text)})
}

fn mrkdwn(text: &str) -> Value {
    json!({"type": "mrkdwn", "text": text})
}

/// `s` escaped for mrkdwn in at most `max` characters, cut between entities, ending in "…" when cut.
fn escaped(s: &str, max: usize) -> String {
    let full = mrkdwn_escape(s);
    if full.chars().count() <= max {
        return full;
    }
    let mut out = String::new();
    let mut used = 0;
    for c in s.chars() {
        let piece = mrkdwn_escape(c.encode_utf8(&mut [0; 4]));
        let n = piece.chars().count();
        if used + n > max.saturating_sub(1) {
            break;
        }
        out.push_str(&piece);
        used += n;
    }
    out.push(text::ELLIPSIS);
    out
}

/// Slack emoji shortcode of a severity (rendered in mrkdwn and in `plain_text` with `emoji: true`).
fn emoji(s: Severity) -> &'static str {
    match s {
        Severity::Critical => ":red_circle:",
        Severity::High => ":large_orange_circle:",
        Severity::Medium => ":large_yellow_circle:",
        Severity::Low => ":large_blue_circle:",
        Severity::Info => ":white_circle:",
    }
}

fn to_body(v: &Value) -> Vec<u8> {
    serde_json::to_vec(v).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaped_cuts_between_entities() {
        assert_eq!(escaped("a<b", 10), "a&lt;b");
        let s = escaped(&"<".repeat(100), 10);
        assert_eq!(s, "&lt;&lt;…");
        assert!(s.chars().count() <= 10);
    }

    #[test]
    fn fits_rejects_empty_and_long_text() {
        assert!(fits(&[section("x")]));
        assert!(!fits(&[section("")]));
        assert!(!fits(&[section(&"x".repeat(SECTION_MAX + 1))]));
        assert!(!fits(&vec![section("x"); MAX_BLOCKS + 1]));
        let big = "x".repeat(2900);
        assert!(!fits(&[section(&big), section(&big), section(&big)]));
    }
}
