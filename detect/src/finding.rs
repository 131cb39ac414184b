//! What a detector reports.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Alert severity, lowest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub const ALL: [Severity; 5] = [
        Severity::Info,
        Severity::Low,
        Severity::Medium,
        Severity::High,
        Severity::Critical,
    ];

    /// One step up, capped at critical (privileged principals raise a sign-in risk by one).
    pub fn step_up(self) -> Severity {
        match self {
            Severity::Info => Severity::Low,
            Severity::Low => Severity::Medium,
            Severity::Medium => Severity::High,
            Severity::High | Severity::Critical => Severity::Critical,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

/// What an alert is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum PrincipalKind {
    User,
    ServicePrincipal,
    Ip,
    Tenant,
}

/// The principal of a finding (docs/detectors.md, "The alert record").
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Principal {
    pub kind: PrincipalKind,
    /// Object id; the IP for IP-keyed rules; the tenant id for tenant-level rules.
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub home_tenant_id: Option<String>,
}

/// One detector decision.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    /// The rule id (docs/detectors.md).
    pub rule: &'static str,
    pub severity: Severity,
    /// The tenant the activity happened in (the partner's home tenant for partner-level rules).
    pub tenant_id: String,
    pub principal: Principal,
    /// Event time of the evidence.
    pub time: DateTime<Utc>,
    /// Ids of the records that are evidence.
    pub event_ids: Vec<String>,
    pub title: String,
    pub summary: String,
    pub evidence: Map<String, Value>,
    pub mitre: &'static [&'static str],
    /// The source address, when the finding has one (allow lists match on it).
    #[serde(skip)]
    pub ip: Option<String>,
}
