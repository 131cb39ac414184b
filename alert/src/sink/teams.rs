//! Teams payloads: a [`Message`] in, the body a Teams Workflows trigger ("When a Teams webhook
//! request is received" + "Post card in a chat or channel") posts as one Adaptive Card, out
//! (docs/alerting.md §4.2).
//!
//! The body is `{"type":"message","attachments":[{"contentType":"application/vnd.microsoft.card.adaptive",
//! "contentUrl":null,"content":<AdaptiveCard 1.4>}]}` with exactly one attachment (the flow posts each
//! attachment as its own message). The card uses only `TextBlock`, `FactSet`, `ColumnSet`/`Column`,
//! `Container` and `Action.OpenUrl`, and reads top to bottom the way an analyst triages: a header
//! tinted by severity (severity word and rule, then the title), the summary, the facts (who, tenant,
//! when, how often, rule, MITRE techniques linked to ATT&CK, alert id and why it is sent), the
//! evidence, one compact line per further alert of the group, and a button to the user's Entra
//! sign-in logs when the principal is a user (no button otherwise).
//!
//! Size: the serialized body is kept within [`BODY_BUDGET`] (Teams refuses posts above about 28 KB)
//! The headline alert keeps as many evidence facts as fit on their own, then as many further alerts
//! as fit are listed; what is left out becomes a "+N more" line, and [`Payload::truncated`] counts the
//! alerts left out. [`render_minimal`] is the smallest valid card:
//! the header line and the alert id.

use serde_json::{Value, json};

use super::text::{self, markdown_escape as md};
use super::view::{self, AlertView, CompactLine, Fact, FactValue};
use super::{Message, Payload};
use entrawatch_detect::Severity;

/// The most bytes a rendered body may take (Teams' limit is about 28 KB; docs/alerting.md §4.2 budgets 24).
pub const BODY_BUDGET: usize = 24 * 1024;

const SCHEMA: &str = "http://adaptivecards.io/schemas/adaptive-card.json";

/// The full Teams message for `msg`, within [`BODY_BUDGET`].
pub fn render(msg: &Message<'_>) -> Payload {
    let Some(head) = msg.alerts.first() else {
        return render_minimal(msg);
    };
    let view = view::headline(head, msg.kind, msg.since_last);
    let lines: Vec<CompactLine> = msg.alerts[1..].iter().map(view::compact).collect();
    let build = |shown: usize, facts: usize| to_body(&card(&view, &lines, shown, facts));
    let fits = |body: &Vec<u8>| body.len() <= BODY_BUDGET;
    // The headline first (with as much evidence as fits alone), then as many further alerts as fit.
    let all_facts = view.evidence.len();
    let Some(facts) = view::largest_fitting(all_facts, |f| fits(&build(0, f))) else {
        return render_minimal(msg);
    };
    let shown = view::largest_fitting(lines.len(), |n| fits(&build(n, facts))).unwrap_or(0);
    Payload::json(build(shown, facts), lines.len() - shown)
}

/// The smallest valid card: the header line and the alert id, sent once when the full one is
/// refused as a payload bug.
pub fn render_minimal(msg: &Message<'_>) -> Payload {
    let Some(a) = msg.alerts.first() else {
        let body = vec![text_block(
            &format!(
                "entrawatch notification {}",
                md(&text::line(msg.notification_id, 60))
            ),
            json!({"weight": "Bolder"}),
        )];
        return Payload::json(to_body(&envelope(body, Vec::new())), 0);
    };
    let more = msg.alerts.len() - 1;
    let mut id_line = format!(
        "Alert {} · {}",
        text::line(&a.id, 60),
        text::kind_text(msg.kind, msg.since_last)
    );
    if more > 0 {
        id_line.push_str(&format!(" · +{more} more"));
    }
    let body = vec![
        text_block(
            &md(&text::line(
                &format!("{} · {}", text::severity_word(a.severity), a.title),
                200,
            )),
            json!({"weight": "Bolder", "color": color(a.severity)}),
        ),
        text_block(&md(&id_line), json!({"isSubtle": true, "spacing": "None"})),
    ];
    Payload::json(to_body(&envelope(body, Vec::new())), more)
}

/// The card with the first `shown` further alerts and the first `facts` evidence facts.
fn card(view: &AlertView, lines: &[CompactLine], shown: usize, facts: usize) -> Value {
    let mut body = vec![
        header(view),
        text_block(&md(&view.summary), json!({"spacing": "Medium"})),
    ];
    body.push(fact_set(&view.facts, 0, json!({"spacing": "Medium"})));
    if !view.evidence.is_empty() {
        body.push(text_block(
            "Evidence",
            json!({"weight": "Bolder", "separator": true, "spacing": "Medium"}),
        ));
        let over = view.evidence.len() - facts + view.evidence_over;
        body.push(fact_set(
            &view.evidence[..facts],
            over,
            json!({"spacing": "Small"}),
        ));
    }
    if !lines.is_empty() {
        let n = lines.len();
        body.push(text_block(
            &format!(
                "{n} more alert{} in this group",
                if n == 1 { "" } else { "s" }
            ),
            json!({"weight": "Bolder", "separator": true, "spacing": "Medium"}),
        ));
        body.extend(lines[..shown].iter().map(compact_row));
        if shown < n {
            body.push(text_block(
                &format!("+{} more not shown", n - shown),
                json!({"isSubtle": true, "spacing": "Small"}),
            ));
        }
    }
    let actions = view
        .actions
        .iter()
        .map(|(title, url)| json!({"type": "Action.OpenUrl", "title": title, "url": url}))
        .collect();
    envelope(body, actions)
}

fn envelope(body: Vec<Value>, actions: Vec<Value>) -> Value {
    let mut content = json!({
        "$schema": SCHEMA,
        "type": "AdaptiveCard",
        "version": "1.4",
        "msteams": {"width": "Full"},
        "body": body,
    });
    if !actions.is_empty() {
        content["actions"] = Value::Array(actions);
    }
    json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": content,
        }],
    })
}

fn header(view: &AlertView) -> Value {
    json!({
        "type": "Container",
        "style": container_style(view.severity),
        "bleed": true,
        "items": [
            text_block(
                &md(&header_line(view)),
                json!({"weight": "Bolder", "size": "Small", "color": color(view.severity)}),
            ),
            text_block(
                &md(&view.title),
                json!({"weight": "Bolder", "size": "Medium", "spacing": "Small"}),
            ),
        ],
    })
}

/// `CRITICAL · rule`, and why it is sent when it is not the first notice (`· escalation`).
fn header_line(view: &AlertView) -> String {
    let mut s = format!("{} · {}", text::severity_word(view.severity), view.rule);
    if view.kind != "first" {
        s.push_str(" · ");
        s.push_str(&view.kind);
    }
    s
}

fn compact_row(line: &CompactLine) -> Value {
    json!({
        "type": "ColumnSet",
        "spacing": "Small",
        "columns": [
            {
                "type": "Column",
                "width": "72px",
                "items": [text_block(
                    text::severity_word(line.severity),
                    json!({"weight": "Bolder", "size": "Small", "color": color(line.severity)}),
                )],
            },
            {
                "type": "Column",
                "width": "stretch",
                "items": [text_block(&md(&line.text), json!({"size": "Small"}))],
            },
        ],
    })
}

/// A FactSet of `facts`, with a last "+N more" fact when `more` were left out.
fn fact_set(facts: &[Fact], more: usize, extra: Value) -> Value {
    let mut rows: Vec<Value> = facts
        .iter()
        .map(|f| json!({"title": md(&f.title), "value": fact_value(&f.value)}))
        .collect();
    if more > 0 {
        rows.push(json!({"title": "…", "value": format!("+{more} more")}));
    }
    let mut set = json!({"type": "FactSet", "facts": rows});
    merge(&mut set, extra);
    set
}

fn fact_value(v: &FactValue) -> String {
    match v {
        FactValue::Text(t) => md(t),
        FactValue::Links(links) => links
            .iter()
            .map(|l| match &l.url {
                Some(url) => format!("[{}]({url})", md(&l.text)),
                None => md(&l.text),
            })
            .collect::<Vec<_>>()
            .join(", "),
    }
}

fn text_block(text: &str, extra: Value) -> Value {
    let mut block = json!({"type": "TextBlock", "text": text, "wrap": true});
    merge(&mut block, extra);
    block
}

fn merge(into: &mut Value, extra: Value) {
    if let (Value::Object(into), Value::Object(extra)) = (into, extra) {
        into.extend(extra);
    }
}

/// TextBlock colour of a severity.
fn color(s: Severity) -> &'static str {
    match s {
        Severity::Critical | Severity::High => "Attention",
        Severity::Medium => "Warning",
        Severity::Low => "Accent",
        Severity::Info => "Default",
    }
}

/// Container style (background tint) of the header.
fn container_style(s: Severity) -> &'static str {
    match s {
        Severity::Critical | Severity::High => "attention",
        Severity::Medium => "warning",
        Severity::Low => "accent",
        Severity::Info => "emphasis",
    }
}

fn to_body(v: &Value) -> Vec<u8> {
    serde_json::to_vec(v).unwrap_or_default()
}
