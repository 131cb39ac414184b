//! The alert record (docs/detectors.md, "The alert record").

use chrono::{DateTime, SecondsFormat, Utc};
use entrawatch_detect::{Finding, Principal, Severity};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// One alert, as every sink renders it and `replay --alerts` writes it (one JSON object per line).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertRecord {
    pub id: String,
    pub rule: String,
    pub severity: Severity,
    pub tenant_id: String,
    pub tenant_name: Option<String>,
    pub principal: Principal,
    pub title: String,
    pub summary: String,
    #[serde(serialize_with = "utc_seconds")]
    pub first_seen: DateTime<Utc>,
    #[serde(serialize_with = "utc_seconds")]
    pub last_seen: DateTime<Utc>,
    pub count: u64,
    pub event_ids: Vec<String>,
    pub evidence: Map<String, Value>,
    pub mitre: Vec<String>,
}

fn utc_seconds<S: serde::Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&t.to_rfc3339_opts(SecondsFormat::Secs, true))
}

/// `ew-` and 16 hex digits of SHA-256 over what makes an episode: the rule, the tenant, the principal,
/// the time the episode opened and the first evidence record. Same input, same id.
pub fn alert_id(finding: &Finding) -> String {
    let mut h = Sha256::new();
    for part in [
        finding.rule,
        finding.tenant_id.as_str(),
        &format!("{:?}", finding.principal.kind),
        finding.principal.id.as_str(),
        &finding.time.timestamp_micros().to_string(),
        finding.event_ids.first().map_or("", String::as_str),
    ] {
        h.update(part.as_bytes());
        h.update([0u8]);
    }
    let digest = h.finalize();
    let hex: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
    format!("ew-{hex}")
}

impl AlertRecord {
    /// A new alert from the finding that opens an episode.
    pub fn open(finding: Finding) -> AlertRecord {
        AlertRecord {
            id: alert_id(&finding),
            rule: finding.rule.to_owned(),
            severity: finding.severity,
            tenant_id: finding.tenant_id,
            tenant_name: None,
            principal: finding.principal,
            title: finding.title,
            summary: finding.summary,
            first_seen: finding.time,
            last_seen: finding.time,
            count: 1,
            event_ids: finding.event_ids,
            evidence: finding.evidence,
            mitre: finding.mitre.iter().map(|m| (*m).to_owned()).collect(),
        }
    }
}
