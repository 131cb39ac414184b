//! Generic webhook payloads (stub: the full renderer replaces this).

use super::{Message, Payload};

/// The versioned JSON envelope, signed with `secret` when one is configured.
pub fn render(msg: &Message<'_>, secret: Option<&[u8]>) -> Payload {
    let _ = secret;
    let body = serde_json::json!({ "version": "1", "notification_id": msg.notification_id, "alerts": msg.alerts });
    Payload::json(serde_json::to_vec(&body).unwrap_or_default(), 0)
}

/// The smallest valid envelope.
pub fn render_minimal(msg: &Message<'_>, secret: Option<&[u8]>) -> Payload {
    render(msg, secret)
}
