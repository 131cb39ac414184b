//! What a source tells the SOC about its own access to a tenant ([`Notice`]): plain data, so the
//! alert crate can turn it into a system alert without the live sources compiled in.

use chrono::{DateTime, Utc};

/// A source's word to the SOC about its own access to a tenant (Graph: a licence, permission
/// or consent withdrawn while it ran, and access back). Not an event: it never goes through
/// the aligner or detection, and its time is the wall clock; the runtime turns it into one
/// system alert routed like the tenant's alerts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub tenant_id: String,
    /// The tenant's name in the source's config (or from discovery); may equal the id.
    pub tenant_label: String,
    pub change: AccessChange,
    /// When the source first found access lost (wall clock). With the source and the tenant it
    /// is the alert's identity: a repeat of the same notice makes the same alert id.
    pub since: DateTime<Utc>,
    /// The streams refused (for [`AccessChange::Lost`]) or answering again (`Restored`).
    pub streams: Vec<StreamAccess>,
}

/// Whether access was lost or came back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessChange {
    Lost,
    Restored,
}

/// Why a stream that had answered is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessCause {
    /// A 403 a licence would lift (Entra ID P1/P2).
    Licence,
    /// A 403 for a missing permission (the app's consented permissions changed).
    Permission,
    /// The token endpoint says the app has no consent (no service principal) in the tenant.
    Consent,
}

impl AccessCause {
    pub fn as_str(self) -> &'static str {
        match self {
            AccessCause::Licence => "licence",
            AccessCause::Permission => "permission",
            AccessCause::Consent => "consent",
        }
    }

    pub fn parse(s: &str) -> Option<AccessCause> {
        Some(match s {
            "licence" => AccessCause::Licence,
            "permission" => AccessCause::Permission,
            "consent" => AccessCause::Consent,
            _ => return None,
        })
    }

    /// What the SOC (or the partner's admin) can do about it.
    pub fn advice(self) -> &'static str {
        match self {
            AccessCause::Licence => {
                "the tenant no longer has the Entra ID P1/P2 licence these logs need: check its subscriptions"
            }
            AccessCause::Permission => {
                "the app lost a Graph permission in this tenant: check its API permissions and admin consent"
            }
            AccessCause::Consent => {
                "the app's admin consent (service principal) was removed from this tenant: consent again"
            }
        }
    }
}

/// One stream named in a [`Notice`]: refused with its cause and Graph's or Entra's words, or
/// (`cause` `None`) answering again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamAccess {
    pub stream: String,
    pub cause: Option<AccessCause>,
    pub detail: String,
}
