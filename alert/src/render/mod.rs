//! Rendering: a [`Message`] (one or more grouped alerts for one destination) to the exact bytes a
//! sink posts. Pure functions, snapshot-tested; delivery never builds payloads itself.
//!
//! Every renderer measures what it produced and truncates to its sink's limits, turning alerts or
//! evidence that do not fit into "+N more". Each sink also has a `minimal` form, sent once when the
//! receiver rejects the full one as a payload bug (400/413/422).

pub mod slack;
pub mod teams;
pub mod webhook;

use chrono::{DateTime, Utc};

use crate::notify::Kind;
use crate::record::AlertRecord;

/// What one message says: one or more alerts of one group, for one destination.
#[derive(Debug, Clone, Copy)]
pub struct Message<'a> {
    /// The notification id of the first (headline) alert; the webhook's `Idempotency-Key`.
    pub notification_id: &'a str,
    pub kind: Kind,
    /// The alerts of the group, most severe first; never empty.
    pub alerts: &'a [AlertRecord],
    /// The time the message is rendered (webhook timestamp header).
    pub now: DateTime<Utc>,
}

/// Bytes to post and the headers that go with them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payload {
    pub body: Vec<u8>,
    pub content_type: &'static str,
    pub headers: Vec<(String, String)>,
    /// Alerts of the message left out to fit the sink's limits ("+N more").
    pub truncated: usize,
}

impl Payload {
    pub fn json(body: Vec<u8>, truncated: usize) -> Payload {
        Payload {
            body,
            content_type: "application/json",
            headers: Vec::new(),
            truncated,
        }
    }
}

/// Link to the Entra admin center's sign-in log for a user in a tenant.
pub fn sign_in_log_url(tenant_id: &str, user_id: &str) -> String {
    format!(
        "https://entra.microsoft.com/{tenant_id}/#view/Microsoft_AAD_UsersAndTenants/UserProfileMenuBlade/~/SignIns/userId/{user_id}"
    )
}
