//! The neutral view of an alert that Teams and Slack both render, so both say the same things.
//!
//! What comes in: an [`AlertRecord`] and why it is sent. What goes out: an [`AlertView`] (the
//! headline alert in full: header, facts, evidence, links) or a [`CompactLine`] (one further alert of
//! a group). Every string is already on one line and clipped ([`text::line`]) but not escaped: each
//! renderer escapes for its own markup. [`largest_fitting`] is the search both renderers use to drop
//! alerts and evidence until the payload fits.

use entrawatch_detect::{PrincipalKind, Severity};

use super::sign_in_log_url;
use super::text::{self, line};
use crate::notify::Kind;
use crate::record::AlertRecord;

/// Longest title, in characters.
pub const TITLE_MAX: usize = 300;
/// Longest summary, in characters.
pub const SUMMARY_MAX: usize = 1500;
/// Longest fact or evidence value, in characters.
pub const VALUE_MAX: usize = 300;
/// Most evidence facts shown before any size-based truncation.
pub const EVIDENCE_MAX: usize = 40;
/// Evidence keys shown first, in this order, when present; the rest follow alphabetically.
const EVIDENCE_FIRST: [&str; 8] = [
    "ip_address",
    "location",
    "app",
    "resource",
    "outcome",
    "error_code",
    "failure_reason",
    "actor",
];

/// A fact's value: text, or links (MITRE techniques) that a sink may render as text.
#[derive(Debug, Clone, PartialEq)]
pub enum FactValue {
    Text(String),
    Links(Vec<Link>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Link {
    pub text: String,
    /// `None` when the text has no page to link to.
    pub url: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Fact {
    pub title: String,
    pub value: FactValue,
}

impl Fact {
    fn text(title: &str, value: String) -> Fact {
        Fact {
            title: title.to_owned(),
            value: FactValue::Text(value),
        }
    }
}

/// The headline alert of a message, in full.
#[derive(Debug, Clone)]
pub struct AlertView {
    pub severity: Severity,
    pub rule: String,
    pub id: String,
    /// `first`, `escalation`, `reminder (+N since last)`.
    pub kind: String,
    pub title: String,
    pub summary: String,
    /// Who, tenant, times, count, rule, MITRE, alert id.
    pub facts: Vec<Fact>,
    pub evidence: Vec<Fact>,
    /// Evidence facts left out before any size-based truncation (over [`EVIDENCE_MAX`]).
    pub evidence_over: usize,
    /// Buttons: the user's sign-in logs when the principal is a user.
    pub actions: Vec<(String, String)>,
}

/// One further alert of a group, on one line.
#[derive(Debug, Clone)]
pub struct CompactLine {
    pub severity: Severity,
    /// `title — who · tenant · ew-id` (who left out when the title already names it).
    pub text: String,
}

/// The full view of `a`, sent as `kind`.
pub fn headline(a: &AlertRecord, kind: Kind, since_last: Option<u64>) -> AlertView {
    let p = &a.principal;
    let who = line(p.upn.as_deref().unwrap_or(&p.id), 200);
    let mut facts = vec![Fact::text(text::principal_kind_text(p.kind), who.clone())];
    if p.upn.as_deref().is_some_and(|u| u != p.id) {
        facts.push(Fact::text("Object id", line(&p.id, VALUE_MAX)));
    }
    if let Some(home) = p.home_tenant_id.as_deref().filter(|h| *h != a.tenant_id) {
        facts.push(Fact::text("Home tenant", line(home, VALUE_MAX)));
    }
    let tenant_fact = match &a.tenant_name {
        Some(name) => format!("{} ({})", line(name, 120), line(&a.tenant_id, 80)),
        None => line(&a.tenant_id, VALUE_MAX),
    };
    facts.push(Fact::text("Tenant", tenant_fact));
    facts.push(Fact::text("First seen", text::time_text(a.first_seen)));
    if a.last_seen != a.first_seen {
        facts.push(Fact::text(
            "Last seen",
            format!(
                "{} ({} later)",
                text::time_text(a.last_seen),
                text::duration_text(a.last_seen - a.first_seen)
            ),
        ));
    }
    facts.push(Fact::text("Occurrences", a.count.to_string()));
    facts.push(Fact::text("Rule", line(&a.rule, 100)));
    if !a.mitre.is_empty() {
        let links = a
            .mitre
            .iter()
            .take(10)
            .map(|m| Link {
                text: line(m, 20),
                url: text::mitre_url(m),
            })
            .collect();
        facts.push(Fact {
            title: "MITRE ATT&CK".to_owned(),
            value: FactValue::Links(links),
        });
    }
    let kind = text::kind_text(kind, since_last);
    facts.push(Fact::text("Alert", format!("{} · {kind}", line(&a.id, 60))));

    let (evidence, evidence_over) = evidence(a);
    let actions = match p.kind {
        PrincipalKind::User => vec![(
            "Open sign-in logs".to_owned(),
            sign_in_log_url(&url_part(&a.tenant_id), &url_part(&p.id)),
        )],
        _ => Vec::new(),
    };
    AlertView {
        severity: a.severity,
        rule: line(&a.rule, 100),
        id: line(&a.id, 60),
        kind,
        title: line(&a.title, TITLE_MAX),
        summary: line(&a.summary, SUMMARY_MAX),
        facts,
        evidence,
        evidence_over,
        actions,
    }
}

/// The one-line form of a further alert.
pub fn compact(a: &AlertRecord) -> CompactLine {
    let title = line(&a.title, 160);
    let who = line(a.principal.upn.as_deref().unwrap_or(&a.principal.id), 100);
    let id = line(&a.id, 60);
    let mut text = title.clone();
    if !title.contains(&who) {
        text.push_str(" — ");
        text.push_str(&who);
    }
    text.push_str(" · ");
    text.push_str(&tenant_text(a));
    text.push_str(" · ");
    text.push_str(&id);
    CompactLine {
        severity: a.severity,
        text,
    }
}

fn tenant_text(a: &AlertRecord) -> String {
    line(a.tenant_name.as_deref().unwrap_or(&a.tenant_id), 120)
}

/// Evidence facts in display order, nulls left out, capped at [`EVIDENCE_MAX`]; and how many more.
fn evidence(a: &AlertRecord) -> (Vec<Fact>, usize) {
    let mut keys: Vec<&String> = a.evidence.keys().collect();
    keys.sort_by_key(|k| {
        (
            EVIDENCE_FIRST
                .iter()
                .position(|f| f == k)
                .unwrap_or(EVIDENCE_FIRST.len()),
            k.as_str(),
        )
    });
    let facts: Vec<Fact> = keys
        .into_iter()
        .filter_map(|k| {
            let v = text::value_text(&a.evidence[k])?;
            Some(Fact::text(&text::key_text(k), line(&v, VALUE_MAX)))
        })
        .collect();
    let over = facts.len().saturating_sub(EVIDENCE_MAX);
    (facts.into_iter().take(EVIDENCE_MAX).collect(), over)
}

/// Keeps a URL path segment to unreserved characters (ids are GUIDs; anything else is encoded).
fn url_part(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'@') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The largest `n` in `0..=max` for which `fits(n)` holds, given that `fits` is monotone (true up to
/// some point, false after); `None` when even 0 does not fit. Tries `max` first (the common case:
/// everything fits), then bisects.
pub fn largest_fitting(max: usize, mut fits: impl FnMut(usize) -> bool) -> Option<usize> {
    if fits(max) {
        return Some(max);
    }
    if !fits(0) {
        return None;
    }
    let (mut lo, mut hi) = (0, max); // fits(lo), !fits(hi)
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if fits(mid) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    Some(lo)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn largest_fitting_finds_the_edge() {
        for edge in 0..20 {
            assert_eq!(largest_fitting(19, |n| n <= edge), Some(edge));
        }
        assert_eq!(largest_fitting(5, |n| n <= 9), Some(5));
        assert_eq!(largest_fitting(5, |_| false), None);
        assert_eq!(largest_fitting(0, |_| true), Some(0));
    }

    #[test]
    fn url_parts_are_encoded() {
        assert_eq!(url_part("0f8e-AB@contoso.com"), "0f8e-AB@contoso.com");
        assert_eq!(url_part("a/b?c#d e"), "a%2Fb%3Fc%23d%20e");
    }
}
