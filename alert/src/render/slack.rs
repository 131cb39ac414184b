//! slack payloads (stub: the full renderer replaces this).

use super::{Message, Payload};

/// The full slack message for `msg`, within the sink's limits.
pub fn render(msg: &Message<'_>) -> Payload {
    render_minimal(msg)
}

/// The smallest valid message, sent once when the full one is refused as a payload bug.
pub fn render_minimal(msg: &Message<'_>) -> Payload {
    let a = &msg.alerts[0];
    let body = serde_json::json!({ "text": format!("{} {}", a.severity.as_str(), a.title) });
    Payload::json(
        serde_json::to_vec(&body).unwrap_or_default(),
        msg.alerts.len() - 1,
    )
}
