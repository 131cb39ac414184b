//! Records the fake Graph serves: the real documentation samples under `tests/fixtures/` (see
//! their PROVENANCE.md / MANIFEST.md) with a fresh id, time and tenant stamped in.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::Value;

/// A Graph collection the fake serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Endpoint {
    SignIns,
    DirectoryAudits,
    RiskyUsers,
    RiskDetections,
    RoleAssignments,
    RoleEligibility,
}

/// The throttling class the fake counts a request in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Class {
    Reports,
    IdentityProtection,
    Directory,
}

impl Endpoint {
    pub const ALL: [Endpoint; 6] = [
        Endpoint::SignIns,
        Endpoint::DirectoryAudits,
        Endpoint::RiskyUsers,
        Endpoint::RiskDetections,
        Endpoint::RoleAssignments,
        Endpoint::RoleEligibility,
    ];

    /// From a request path such as `/beta/auditLogs/signIns` (either API version).
    pub fn from_path(path: &str) -> Option<Endpoint> {
        let p = path.to_ascii_lowercase();
        let rest = p
            .strip_prefix("/beta/")
            .or_else(|| p.strip_prefix("/v1.0/"))?;
        Some(match rest {
            "auditlogs/signins" => Endpoint::SignIns,
            "auditlogs/directoryaudits" => Endpoint::DirectoryAudits,
            "identityprotection/riskyusers" => Endpoint::RiskyUsers,
            "identityprotection/riskdetections" => Endpoint::RiskDetections,
            "rolemanagement/directory/roleassignments" => Endpoint::RoleAssignments,
            "rolemanagement/directory/roleeligibilityschedules" => Endpoint::RoleEligibility,
            _ => return None,
        })
    }

    pub fn class(self) -> Class {
        match self {
            Endpoint::SignIns | Endpoint::DirectoryAudits => Class::Reports,
            Endpoint::RiskyUsers | Endpoint::RiskDetections => Class::IdentityProtection,
            Endpoint::RoleAssignments | Endpoint::RoleEligibility => Class::Directory,
        }
    }

    /// The field `$filter` may use on time (None: no time filter).
    pub fn time_field(self) -> Option<&'static str> {
        match self {
            Endpoint::SignIns => Some("createdDateTime"),
            Endpoint::DirectoryAudits => Some("activityDateTime"),
            Endpoint::RiskyUsers => Some("riskLastUpdatedDateTime"),
            Endpoint::RiskDetections => Some("lastUpdatedDateTime"),
            _ => None,
        }
    }

    /// `@odata.context` of a page.
    pub fn context(self) -> &'static str {
        match self {
            Endpoint::SignIns => "beta/$metadata#auditLogs/signIns",
            Endpoint::DirectoryAudits => "beta/$metadata#auditLogs/directoryAudits",
            Endpoint::RiskyUsers => "v1.0/$metadata#identityProtection/riskyUsers",
            Endpoint::RiskDetections => "v1.0/$metadata#identityProtection/riskDetections",
            Endpoint::RoleAssignments => {
                "v1.0/$metadata#roleManagement/directory/roleAssignments(principal())"
            }
            Endpoint::RoleEligibility => {
                "v1.0/$metadata#roleManagement/directory/roleEligibilitySchedules"
            }
        }
    }

    /// The event kind the reader makes of it (`Kind::as_str`).
    pub fn kind(self) -> &'static str {
        match self {
            Endpoint::SignIns => "signIn",
            Endpoint::DirectoryAudits => "audit",
            Endpoint::RiskyUsers => "riskyUser",
            Endpoint::RiskDetections => "riskDetection",
            Endpoint::RoleAssignments => "roleAssignment",
            Endpoint::RoleEligibility => "roleEligibility",
        }
    }
}

const SIGN_IN: &str =
    include_str!("../fixtures/real/msgraph-docs/beta_signins_list_ex2_nextlink.json");
const AUDIT: &str =
    include_str!("../fixtures/real/msgraph-docs/beta_directoryaudit_get_mfa_method_update.json");
const RISKY_USER: &str = include_str!("../fixtures/real/msgraph-docs/beta_riskyusers_list.json");
const RISK_DETECTION: &str =
    include_str!("../fixtures/real/msgraph-docs/beta_riskdetections_list_ex1_remediated.json");
const ROLE_ASSIGNMENT: &str =
    include_str!("../fixtures/quirks/graph_role_assignments_expand_principal.json");
const ROLE_ELIGIBILITY: &str =
    include_str!("../fixtures/quirks/graph_role_eligibility_schedules.json");

fn first(page: &str) -> Value {
    let v: Value = serde_json::from_str(page).expect("fixture is JSON");
    match v.get("value") {
        Some(Value::Array(items)) => items[0].clone(),
        _ => v,
    }
}

pub fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// A record of `endpoint` for `tenant` with this id and time. `event_type` is the sign-in's
/// `signInEventTypes` entry.
pub fn record(
    endpoint: Endpoint,
    tenant: &str,
    id: &str,
    time: DateTime<Utc>,
    event_type: &str,
) -> Value {
    let t = ts(time);
    match endpoint {
        Endpoint::SignIns => {
            let mut r = first(SIGN_IN);
            r["id"] = id.into();
            r["createdDateTime"] = t.into();
            r["signInEventTypes"] = serde_json::json!([event_type]);
            r["isInteractive"] = (event_type == "interactiveUser").into();
            r["resourceTenantId"] = tenant.into();
            r
        }
        Endpoint::DirectoryAudits => {
            let mut r = first(AUDIT);
            r["id"] = id.into();
            r["activityDateTime"] = t.into();
            r
        }
        Endpoint::RiskyUsers => {
            let mut r = first(RISKY_USER);
            r["id"] = id.into();
            r["riskLastUpdatedDateTime"] = t.into();
            r
        }
        Endpoint::RiskDetections => {
            let mut r = first(RISK_DETECTION);
            r["id"] = id.into();
            r["activityDateTime"] = t.clone().into();
            r["detectedDateTime"] = t.clone().into();
            r["lastUpdatedDateTime"] = t.into();
            r
        }
        Endpoint::RoleAssignments => {
            let mut r = first(ROLE_ASSIGNMENT);
            r["id"] = id.into();
            r
        }
        Endpoint::RoleEligibility => {
            let mut r = first(ROLE_ELIGIBILITY);
            r["id"] = id.into();
            r
        }
    }
}

/// The key the reader's `dedup_key` gives this record (risk kinds carry their update time).
pub fn key(
    endpoint: Endpoint,
    tenant: &str,
    id: &str,
    time: DateTime<Utc>,
) -> (String, String, String) {
    let id = match endpoint {
        Endpoint::RiskyUsers | Endpoint::RiskDetections => {
            format!("{id}@{}", time.timestamp_micros())
        }
        _ => id.to_owned(),
    };
    (tenant.to_owned(), endpoint.kind().to_owned(), id)
}
