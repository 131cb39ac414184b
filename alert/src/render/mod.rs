//! Rendering: a [`Message`] (one or more grouped alerts for one destination) to the exact bytes a
//! sink posts. Pure functions, snapshot-tested; delivery never builds payloads itself.
//!
//! What comes in: a [`Message`]. What goes out: a [`Payload`] (body, content type, headers, how many
//! alerts were left out). [`teams`] renders an Adaptive Card for a Teams Workflows trigger, [`slack`]
//! Block Kit for an incoming webhook, [`webhook`] the signed versioned JSON envelope. Teams and Slack
//! say the same things, taken from one neutral view of the alert (`view`), and escape user-provided
//! text for their markup (`text`).
//!
//! Every renderer measures what it produced and truncates to its sink's limits, turning alerts or
//! evidence that do not fit into "+N more". Each sink also has a `minimal` form, sent once when the
//! receiver rejects the full one as a payload bug (400/413/422).

pub mod slack;
pub mod teams;
pub mod text;
mod view;
pub mod webhook;

#[cfg(test)]
mod tests;

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
    /// For a reminder: how many occurrences the headline alert gained since its previous
    /// notification, when the caller knows it (shown as "reminder (+N since last)").
    pub since_last: Option<u64>,
    /// The notification id of each alert in `alerts` (same order), when the caller has them; the
    /// webhook envelope lists them so a receiver can de-duplicate per alert occasion.
    pub notification_ids: &'a [String],
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
