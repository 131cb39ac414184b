//! The normalised event model every wire shape is parsed into.
//!
//! Field names follow Graph beta (docs/formats.md §1-§2); every optional field is `Option` and an empty
//! string on the wire is `None`. Times are UTC. Enums that Entra evolves are open (`Unknown(String)`).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use crate::enums::*;
pub use crate::text::Text;

/// One normalised Entra event: what happened, in which tenant, when, and from which wire shape.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Event {
    pub meta: Meta,
    #[serde(flatten)]
    pub body: Body,
}

/// What every event carries, whatever its kind.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Meta {
    /// The record's own id (sign-in id, audit id, detection id, user id for risky users).
    pub id: Text,
    /// The Entra tenant whose logs hold this record (never the Log Analytics workspace id).
    pub tenant_id: Text,
    /// Event time in UTC; see `time_source` for where it came from.
    pub time: DateTime<Utc>,
    pub time_source: TimeSource,
    /// The wire shape the record was read from.
    pub shape: Shape,
}

/// Where an event's time came from, best first. Every one is a time the record carries (or, for a
/// snapshot, "from the start"): a record with no time of its own is rejected, never stamped with
/// the moment it was read, so replaying the same records always gives the same alerts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimeSource {
    /// The record's own time field (`createdDateTime`, `activityDateTime`, ...).
    Record,
    /// The Event Hub envelope's top-level `time`, or Log Analytics `TimeGenerated`.
    Envelope,
    /// A time found deeper in a record whose own time field and envelope hold none: a sign-in's
    /// earliest `authenticationDetails[].authenticationStepDateTime`, an audit's
    /// `properties.activityDateTime`.
    Nested,
    /// A directory-context snapshot with no time of its own: it applies from the start.
    Snapshot,
}

/// The wire shapes entrawatch reads (docs/formats.md §1-§4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Shape {
    /// Microsoft Graph JSON (v1.0 or beta): a single entity, a list page or NDJSON of entities.
    Graph,
    /// An Event Hub diagnostic record, inside an envelope `{"records":[...]}` or bare.
    EventHub,
    /// A Log Analytics / Sentinel JSON export (PascalCase columns, stringified dynamic columns).
    LogAnalyticsJson,
    /// A Log Analytics / Sentinel portal CSV export.
    LogAnalyticsCsv,
}

impl Shape {
    pub fn as_str(self) -> &'static str {
        match self {
            Shape::Graph => "graph",
            Shape::EventHub => "event-hub",
            Shape::LogAnalyticsJson => "log-analytics-json",
            Shape::LogAnalyticsCsv => "log-analytics-csv",
        }
    }
}

/// The kinds of event, used for counting and de-duplication.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Kind {
    SignIn,
    Audit,
    RiskyUser,
    RiskyUserHistory,
    RiskDetection,
    RoleAssignment,
    RoleEligibility,
    /// A partner's GDAP relationship with a customer (`delegatedAdminRelationship`).
    GdapRelationship,
}

impl Kind {
    pub const ALL: [Kind; 8] = [
        Kind::SignIn,
        Kind::Audit,
        Kind::RiskyUser,
        Kind::RiskyUserHistory,
        Kind::RiskDetection,
        Kind::RoleAssignment,
        Kind::RoleEligibility,
        Kind::GdapRelationship,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::SignIn => "signIn",
            Kind::Audit => "audit",
            Kind::RiskyUser => "riskyUser",
            Kind::RiskyUserHistory => "riskyUserHistory",
            Kind::RiskDetection => "riskDetection",
            Kind::RoleAssignment => "roleAssignment",
            Kind::RoleEligibility => "roleEligibility",
            Kind::GdapRelationship => "gdapRelationship",
        }
    }
}

/// The kind-specific part of an event.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Body {
    SignIn(Box<SignIn>),
    Audit(Box<Audit>),
    /// A risky user's current state, or one item of its history (`history` is set).
    RiskyUser(Box<RiskyUser>),
    RiskDetection(Box<RiskDetection>),
    /// An active role assignment or an eligibility (directory context).
    Role(Box<RoleGrant>),
    /// A partner's granular delegated admin relationship with the customer tenant.
    Gdap(Box<GdapRelationship>),
}

impl Event {
    pub fn kind(&self) -> Kind {
        match &self.body {
            Body::SignIn(_) => Kind::SignIn,
            Body::Audit(_) => Kind::Audit,
            Body::RiskyUser(r) if r.history.is_some() => Kind::RiskyUserHistory,
            Body::RiskyUser(_) => Kind::RiskyUser,
            Body::RiskDetection(_) => Kind::RiskDetection,
            Body::Role(r) if r.eligible => Kind::RoleEligibility,
            Body::Role(_) => Kind::RoleAssignment,
            Body::Gdap(_) => Kind::GdapRelationship,
        }
    }

    /// The key under which two records are "the same record": (tenant, kind, id), plus the
    /// update time for kinds whose records are re-emitted as their state changes (risky users and
    /// detections), so a later state of the same user is not mistaken for a repeat.
    pub fn dedup_key(&self) -> (String, Kind, String) {
        let (tenant, kind, id) = self.dedup_key_ref();
        (tenant.to_owned(), kind, id.into_owned())
    }

    /// [`Event::dedup_key`] without copying: the id is borrowed unless a version is appended.
    pub fn dedup_key_ref(&self) -> (&str, Kind, std::borrow::Cow<'_, str>) {
        let version = match &self.body {
            Body::RiskyUser(r) => r.risk_last_updated.map(|t| t.timestamp_micros()),
            Body::RiskDetection(d) => d.last_updated.map(|t| t.timestamp_micros()),
            // A relationship is one record through its life: each modification is a new state.
            Body::Gdap(_) => Some(self.meta.time.timestamp_micros()),
            _ => None,
        };
        let id = match version {
            Some(v) => std::borrow::Cow::Owned(format!("{}@{v}", self.meta.id)),
            None => std::borrow::Cow::Borrowed(self.meta.id.as_str()),
        };
        (&self.meta.tenant_id, self.kind(), id)
    }

    pub fn as_sign_in(&self) -> Option<&SignIn> {
        match &self.body {
            Body::SignIn(s) => Some(s),
            _ => None,
        }
    }
}

/// A sign-in of any type: interactive, non-interactive, service principal or managed identity.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SignIn {
    pub event_type: Option<SignInEventType>,
    pub is_interactive: Option<bool>,
    pub user_id: Option<Text>,
    pub user_display_name: Option<Text>,
    pub user_principal_name: Option<Text>,
    pub user_type: Option<UserType>,
    pub app_id: Option<Text>,
    pub app_display_name: Option<Text>,
    pub service_principal_id: Option<Text>,
    pub service_principal_name: Option<Text>,
    pub resource_id: Option<Text>,
    pub resource_display_name: Option<Text>,
    pub ip_address: Option<Text>,
    pub autonomous_system_number: Option<u32>,
    pub client_app_used: Option<Text>,
    pub user_agent: Option<Text>,
    pub correlation_id: Option<Text>,
    pub original_request_id: Option<Text>,
    /// `status.errorCode`; 0 is success.
    pub error_code: Option<i64>,
    pub failure_reason: Option<Text>,
    /// `status.additionalDetails`: the detail behind the error code (`MFA denied; user declined
    /// the authentication`, `MFA denied; Phone App Reported Fraud`, ...). Free text.
    pub additional_details: Option<Text>,
    pub conditional_access_status: Option<ConditionalAccessStatus>,
    pub authentication_requirement: Option<AuthenticationRequirement>,
    pub authentication_protocol: Option<AuthenticationProtocol>,
    /// `originalTransferMethod` (beta): how the session was first transferred to this client,
    /// `deviceCodeFlow` or `authenticationTransfer` (`none` otherwise). Free text.
    pub original_transfer_method: Option<Text>,
    /// `sessionId` (beta; Log Analytics `SessionId`): the id of the sign-in session, shared by every
    /// sign-in that session's cookies and tokens make (interactive and token refreshes alike).
    pub session_id: Option<Text>,
    pub authentication_details: Vec<AuthenticationStep>,
    pub authentication_methods_used: Vec<Text>,
    pub risk_level_aggregated: Option<RiskLevel>,
    pub risk_level_during_sign_in: Option<RiskLevel>,
    pub risk_state: Option<RiskState>,
    pub risk_detail: Option<Text>,
    pub risk_event_types: Vec<Text>,
    pub cross_tenant_access_type: Option<CrossTenantAccessType>,
    pub home_tenant_id: Option<Text>,
    pub home_tenant_name: Option<Text>,
    pub resource_tenant_id: Option<Text>,
    pub incoming_token_type: Option<Text>,
    pub device: DeviceDetail,
    pub location: Location,
}

/// Interrupt codes: normal steps of successful flows, neither failures nor successes.
pub const INTERRUPT_CODES: [i64; 6] = [50074, 50140, 16000, 50058, 50125, 50076];

impl SignIn {
    /// `status.errorCode == 0`.
    pub fn is_success(&self) -> bool {
        self.error_code == Some(0)
    }

    /// An interrupt (50074, 50140, ...): neither a failure nor a success.
    pub fn is_interrupt(&self) -> bool {
        self.error_code
            .is_some_and(|c| INTERRUPT_CODES.contains(&c))
    }

    /// Interactive: `isInteractive`, else the event type (Event Hub `SignInLogs`).
    pub fn is_interactive(&self) -> bool {
        match (&self.event_type, self.is_interactive) {
            (Some(SignInEventType::InteractiveUser), _) => true,
            (Some(_), _) => false,
            (None, flag) => flag.unwrap_or(false),
        }
    }

    /// A user (not a service principal or managed identity) sign-in.
    pub fn is_user(&self) -> bool {
        match &self.event_type {
            Some(SignInEventType::ServicePrincipal | SignInEventType::ManagedIdentity) => false,
            Some(_) => true,
            None => self.user_id.is_some() || self.user_principal_name.is_some(),
        }
    }

    /// A CSP / GDAP partner technician acting in a customer tenant.
    pub fn is_service_provider(&self) -> bool {
        self.cross_tenant_access_type == Some(CrossTenantAccessType::ServiceProvider)
    }

    /// Whether the sign-in went through the OAuth device authorization grant: the
    /// `authenticationProtocol` `deviceCode`, or an `originalTransferMethod` of `deviceCodeFlow`
    /// (the session began with a device code).
    pub fn is_device_code(&self) -> bool {
        self.authentication_protocol == Some(AuthenticationProtocol::DeviceCode)
            || self
                .original_transfer_method
                .as_deref()
                .is_some_and(|m| m.trim().eq_ignore_ascii_case("deviceCodeFlow"))
    }

    /// Whether MFA was satisfied by a claim in the token the client presented (a step's result
    /// `MFA requirement satisfied by claim in the token`), not by a prompt in this sign-in: what
    /// a replayed session cookie or token shows.
    pub fn mfa_by_claim(&self) -> bool {
        const CLAIM: &[u8] = b"mfa requirement satisfied by claim";
        self.authentication_details.iter().any(|s| {
            s.result_detail.as_deref().is_some_and(|d| {
                d.as_bytes()
                    .windows(CLAIM.len())
                    .any(|w| w.eq_ignore_ascii_case(CLAIM))
            })
        })
    }

    /// Whether any step completed a second factor (a fresh prompt or a claim in the token).
    pub fn has_successful_second_factor(&self) -> bool {
        self.authentication_details
            .iter()
            .any(|s| s.succeeded == Some(true) && s.is_second_factor())
    }
}

/// One step of `authenticationDetails`. Free text in every field: never enum-matched.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AuthenticationStep {
    pub time: Option<DateTime<Utc>>,
    pub method: Option<Text>,
    pub method_detail: Option<Text>,
    pub succeeded: Option<bool>,
    pub result_detail: Option<Text>,
    pub requirement: Option<Text>,
}

impl AuthenticationStep {
    /// A multi-factor step, by its requirement or its result text.
    pub fn is_second_factor(&self) -> bool {
        let requirement = self
            .requirement
            .as_deref()
            .unwrap_or("")
            .to_ascii_lowercase();
        let result = self
            .result_detail
            .as_deref()
            .unwrap_or("")
            .to_ascii_lowercase();
        requirement.contains("multi")
            || requirement == "mfa"
            || result.contains("mfa requirement satisfied")
            || result.contains("mfa successfully completed")
    }
}

/// `deviceDetail`. Event Hub and Log Analytics omit `isManaged` / `isCompliant` when false.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DeviceDetail {
    pub device_id: Option<Text>,
    pub display_name: Option<Text>,
    pub operating_system: Option<Text>,
    pub browser: Option<Text>,
    pub is_compliant: Option<bool>,
    pub is_managed: Option<bool>,
    pub trust_type: Option<Text>,
}

impl DeviceDetail {
    /// Known-managed: a device id and `isManaged` or `isCompliant` true.
    pub fn is_known_managed(&self) -> bool {
        self.device_id.is_some()
            && (self.is_managed == Some(true) || self.is_compliant == Some(true))
    }
}

/// `location` (Graph, Event Hub) or `LocationDetails` (Log Analytics).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Location {
    pub city: Option<Text>,
    pub state: Option<Text>,
    /// ISO 3166 alpha-2 country code.
    pub country_or_region: Option<Text>,
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
}

/// A directory audit event (`directoryAudits`, Event Hub `AuditLogs`, LA `AuditLogs`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Audit {
    pub activity_display_name: Text,
    /// The audit category (`RoleManagement`, `UserManagement`, ...).
    pub category: Option<Text>,
    pub operation_type: Option<Text>,
    pub result: Option<AuditResult>,
    pub result_reason: Option<Text>,
    pub logged_by_service: Option<Text>,
    pub correlation_id: Option<Text>,
    pub initiated_by: Initiator,
    pub target_resources: Vec<TargetResource>,
    pub additional_details: Vec<KeyValue>,
}

/// Who performed an audited action: a user, an app, or neither.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Initiator {
    pub user: Option<AuditUser>,
    pub app: Option<AuditApp>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AuditUser {
    pub id: Option<Text>,
    pub display_name: Option<Text>,
    pub user_principal_name: Option<Text>,
    pub ip_address: Option<Text>,
    pub user_type: Option<UserType>,
    pub home_tenant_id: Option<Text>,
    pub home_tenant_name: Option<Text>,
    /// Event Hub / LA `roles`; an array, or a single string in some records.
    pub roles: Vec<Text>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AuditApp {
    pub app_id: Option<Text>,
    pub display_name: Option<Text>,
    pub service_principal_id: Option<Text>,
    pub service_principal_name: Option<Text>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TargetResource {
    pub id: Option<Text>,
    pub display_name: Option<Text>,
    /// `User`, `Group`, `ServicePrincipal`, `Role`, ...
    pub resource_type: Option<Text>,
    pub user_principal_name: Option<Text>,
    pub group_type: Option<Text>,
    pub modified_properties: Vec<ModifiedProperty>,
}

/// A changed attribute. Values are JSON inside strings on the wire; a value that decodes to a JSON
/// string is unwrapped (`"\"Global Administrator\""` becomes `Global Administrator`), anything else
/// (arrays, objects, invalid or truncated JSON) is kept as written.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ModifiedProperty {
    pub display_name: Option<Text>,
    pub old_value: Option<Text>,
    pub new_value: Option<Text>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct KeyValue {
    pub key: Text,
    pub value: Option<Text>,
}

impl Audit {
    /// The new value of a modified property on any target, by property name (case-insensitive).
    pub fn modified_new_value(&self, name: &str) -> Option<&str> {
        self.target_resources
            .iter()
            .flat_map(|t| &t.modified_properties)
            .find(|p| {
                p.display_name
                    .as_deref()
                    .is_some_and(|n| n.eq_ignore_ascii_case(name))
            })
            .and_then(|p| p.new_value.as_deref())
    }
}

/// A risky user's state (`riskyUsers`), or one item of its history (`riskyUsers/{id}/history`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RiskyUser {
    /// The user's object id.
    pub user_id: Text,
    pub user_display_name: Option<Text>,
    pub user_principal_name: Option<Text>,
    pub risk_level: Option<RiskLevel>,
    pub risk_state: Option<RiskState>,
    pub risk_detail: Option<Text>,
    pub risk_last_updated: Option<DateTime<Utc>>,
    pub is_deleted: Option<bool>,
    pub is_processing: Option<bool>,
    pub is_guest: Option<bool>,
    pub history: Option<RiskyUserHistory>,
}

/// What a history item adds to the risky-user state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RiskyUserHistory {
    pub initiated_by: Option<Text>,
    pub event_types: Vec<Text>,
    pub detail: Option<Text>,
}

/// A risk detection (`riskDetections`, Event Hub `UserRiskEvents`, LA `AADUserRiskEvents`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RiskDetection {
    /// The sign-in it concerns (joins to `SignIn` id / `originalRequestId`).
    pub request_id: Option<Text>,
    pub correlation_id: Option<Text>,
    pub risk_event_type: Option<Text>,
    pub risk_level: Option<RiskLevel>,
    pub risk_state: Option<RiskState>,
    pub risk_detail: Option<Text>,
    pub source: Option<Text>,
    pub detection_timing_type: Option<DetectionTimingType>,
    pub activity: Option<Text>,
    pub ip_address: Option<Text>,
    pub location: Location,
    pub activity_time: Option<DateTime<Utc>>,
    pub detected_time: Option<DateTime<Utc>>,
    pub last_updated: Option<DateTime<Utc>>,
    pub user_id: Option<Text>,
    pub user_display_name: Option<Text>,
    pub user_principal_name: Option<Text>,
    pub user_type: Option<UserType>,
    pub home_tenant_id: Option<Text>,
    pub cross_tenant_access_type: Option<CrossTenantAccessType>,
    pub mitre_technique_id: Option<Text>,
    /// `additionalInfo`, decoded from its JSON string (`[{"Key":..,"Value":..}]`).
    pub additional_info: Vec<KeyValue>,
}

/// Directory context: a role held by a principal, active (`roleAssignments`) or eligible
/// (`roleEligibilitySchedules`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RoleGrant {
    pub eligible: bool,
    pub principal_id: Text,
    /// `user`, `group`, `servicePrincipal` (from the expanded principal's `@odata.type`).
    pub principal_type: Option<Text>,
    pub principal_display_name: Option<Text>,
    pub principal_user_principal_name: Option<Text>,
    /// The role definition id; for built-in roles this is the role template id.
    pub role_definition_id: Text,
    pub directory_scope_id: Option<Text>,
    pub start: Option<DateTime<Utc>>,
    pub end: Option<DateTime<Utc>>,
}

/// A granular delegated admin privileges (GDAP) relationship between a partner and this customer
/// tenant, as Microsoft Graph's `delegatedAdminRelationship` resource gives it (read by the Graph
/// source's discovery with the partner's token). The event's tenant is the customer's; its time
/// is `lastModifiedDateTime`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct GdapRelationship {
    pub display_name: Option<Text>,
    /// `active`, `approvalPending`, `expired`, `terminated`, ... as Graph spells it.
    pub status: Option<Text>,
    pub customer_display_name: Option<Text>,
    /// `accessDetails.unifiedRoles[].roleDefinitionId`, lower case (built-in role template ids).
    pub role_definition_ids: Vec<Text>,
    /// `duration` (ISO 8601, `P1D` to `P2Y`), in whole days when it reads as days, weeks, months or
    /// years (a month 30 days, a year 365).
    pub duration_days: Option<i64>,
    /// `autoExtendDuration` in days (`PT0S` and `P0D`: 0, no auto-extension; `P180D`: 180).
    pub auto_extend_days: Option<i64>,
    pub activated: Option<DateTime<Utc>>,
    pub end: Option<DateTime<Utc>>,
}

/// Bytes a value holds on the heap beyond its own size, with the allocator's rounding: what an
/// event held in memory costs ([`Event::held_bytes`]).
pub trait Held {
    fn held(&self) -> usize;
}

impl Held for Text {
    fn held(&self) -> usize {
        self.heap_bytes()
    }
}

impl<T: Held> Held for Option<T> {
    fn held(&self) -> usize {
        self.as_ref().map_or(0, Held::held)
    }
}

impl<T: Held> Held for Vec<T> {
    fn held(&self) -> usize {
        crate::text::allocation(self.capacity() * std::mem::size_of::<T>())
            + self.iter().map(Held::held).sum::<usize>()
    }
}

impl<T: Held> Held for Box<T> {
    fn held(&self) -> usize {
        crate::text::allocation(std::mem::size_of::<T>()) + (**self).held()
    }
}

/// [`Held`] for a struct: the sum over its fields that can hold heap memory (the others are
/// numbers, times and enums of known values).
macro_rules! held {
    ($t:ty: $($f:ident),* $(,)?) => {
        impl Held for $t {
            fn held(&self) -> usize {
                0 $(+ self.$f.held())*
            }
        }
    };
}

held!(Meta: id, tenant_id);
held!(SignIn: user_id, user_display_name, user_principal_name, app_id, app_display_name, service_principal_id, service_principal_name, resource_id, resource_display_name, ip_address, client_app_used, user_agent, correlation_id, original_request_id, failure_reason, additional_details, original_transfer_method, session_id, authentication_details, authentication_methods_used, risk_detail, risk_event_types, home_tenant_id, home_tenant_name, resource_tenant_id, incoming_token_type, device, location);
held!(AuthenticationStep: method, method_detail, result_detail, requirement);
held!(DeviceDetail: device_id, display_name, operating_system, browser, trust_type);
held!(Location: city, state, country_or_region);
held!(Audit: activity_display_name, category, operation_type, result_reason, logged_by_service, correlation_id, initiated_by, target_resources, additional_details);
held!(Initiator: user, app);
held!(AuditUser: id, display_name, user_principal_name, ip_address, home_tenant_id, home_tenant_name, roles);
held!(AuditApp: app_id, display_name, service_principal_id, service_principal_name);
held!(TargetResource: id, display_name, resource_type, user_principal_name, group_type, modified_properties);
held!(ModifiedProperty: display_name, old_value, new_value);
held!(KeyValue: key, value);
held!(RiskyUser: user_id, user_display_name, user_principal_name, risk_detail, history);
held!(RiskyUserHistory: initiated_by, event_types, detail);
held!(RiskDetection: request_id, correlation_id, risk_event_type, risk_detail, source, activity, ip_address, location, user_id, user_display_name, user_principal_name, home_tenant_id, mitre_technique_id, additional_info);
held!(RoleGrant: principal_id, principal_type, principal_display_name, principal_user_principal_name, role_definition_id, directory_scope_id);
held!(GdapRelationship: display_name, status, customer_display_name, role_definition_ids);

impl Held for Body {
    fn held(&self) -> usize {
        match self {
            Body::SignIn(b) => b.held(),
            Body::Audit(b) => b.held(),
            Body::RiskyUser(b) => b.held(),
            Body::RiskDetection(b) => b.held(),
            Body::Role(b) => b.held(),
            Body::Gdap(b) => b.held(),
        }
    }
}

impl Event {
    /// The bytes this event takes in memory when held boxed, as a replay holds it: its box, its
    /// body's box and every allocation of its own (text held inline or shared costs nothing more).
    pub fn held_bytes(&self) -> usize {
        crate::text::allocation(std::mem::size_of::<Event>()) + self.meta.held() + self.body.held()
    }
}
