//! What the state keeps per tenant and log stream ([`StreamState`]), for `log-source-silent`: when
//! the stream began and last spoke, and the longest gap it normally keeps.

use serde::{Deserialize, Serialize};

/// The log streams `log-source-silent` watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Stream {
    SignIns,
    Audits,
}

impl Stream {
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::SignIns => "sign-ins",
            Stream::Audits => "audits",
        }
    }
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct StreamState {
    pub first: i64,
    pub last: i64,
    pub events: u64,
    /// The longest gap between two consecutive events seen so far (seconds): the stream's own
    /// rhythm, so a tenant that is quiet every night is not reported silent every night.
    pub longest_gap: i64,
}

impl StreamState {
    /// Seconds of silence that make this stream silent: the configured hours, or one and a half
    /// times the stream's longest normal gap, whichever is longer.
    pub fn silence_limit(&self, hours: i64) -> i64 {
        (hours * 3600).max(self.longest_gap.saturating_mul(3) / 2)
    }
}
