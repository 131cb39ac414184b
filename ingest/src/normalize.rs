//! From one decoded JSON record, in any of the three shapes, to one [`Event`].
//!
//! Dispatch: an Event Hub record on its `category`, a Log Analytics row on its `Type` (else
//! `Category`), a Graph entity on its list's `@odata.context` (else on the fields it has). The kind
//! normalisers below read through [`Obj`], so casing, stringified objects and numbers-as-strings are
//! handled once; the few fields whose name differs by shape are looked up per [`Flavor`].
//!
//! Nearly every record of a real export is an Event Hub or Graph sign-in or audit in the producers'
//! own spelling: [`normalize_fast`] reads those from their text into typed borrowed structs
//! (`typed`) and builds the event directly (`fast`), with the same rules, at a fraction of the
//! cost; whatever it does not promise to read identically it hands back, to be read as above.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use crate::model::*;
use crate::time::parse_timestamp;
use crate::value::{Obj, is_guid, tenant_from_resource_id, unwrap_json_string, value_to_string};

mod fast;
mod typed;

/// Normalises one JSON record straight from its text when it is an Event Hub or Graph sign-in or
/// audit in the producers' spelling; `None` for anything else (other kinds, Log Analytics, odd
/// casing or forms, any error), which [`normalize`] then reads from its decoded `Value`. Where it
/// returns an event, it is the event [`normalize`] returns for the same record.
pub fn normalize_fast(text: &str, ctx: &RecordContext<'_>) -> Option<Box<Event>> {
    fast::event(text, ctx)
}

/// What a record turned into.
#[derive(Debug)]
pub enum Outcome {
    Event(Box<Event>),
    /// A record of a category entrawatch does not read (counted, not an error).
    Skipped {
        category: String,
    },
}

/// Why a record could not be used: the field at fault and what was wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("field `{field}`: {reason}")]
pub struct RecordError {
    pub field: String,
    pub reason: String,
}

impl RecordError {
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        RecordError {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

/// What the reader knows about a record beyond its own fields.
#[derive(Debug, Clone)]
pub struct RecordContext<'a> {
    /// `--tenant`, else the nearest parent folder named by a tenant GUID.
    pub tenant_hint: Option<&'a str>,
    /// The entity type a Graph list's `@odata.context` names.
    pub graph_hint: Option<Kind>,
    /// Used only when a record has no usable time at all.
    pub ingest_time: DateTime<Utc>,
    /// Set by the CSV reader; JSON rows are recognised by their columns.
    pub csv: bool,
}

/// Which producer wrote the record: decides the handful of fields whose names differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flavor {
    Graph,
    EventHub,
    LogAnalytics,
}

/// Normalises one record of any shape.
pub fn normalize(
    record: &Map<String, Value>,
    ctx: &RecordContext<'_>,
) -> Result<Outcome, RecordError> {
    let o = Obj(record);
    if ctx.csv || is_log_analytics_row(o) {
        let shape = if ctx.csv {
            Shape::LogAnalyticsCsv
        } else {
            Shape::LogAnalyticsJson
        };
        return log_analytics_row(o, shape, ctx);
    }
    if is_event_hub_record(o) {
        return event_hub_record(o, ctx);
    }
    graph_entity(o, ctx)
}

fn is_event_hub_record(o: Obj<'_>) -> bool {
    o.raw("category").is_some_and(Value::is_string)
        && matches!(o.raw("properties"), Some(Value::Object(_)))
}

const LA_TABLES: [&str; 7] = [
    "SigninLogs",
    "AADNonInteractiveUserSignInLogs",
    "AADServicePrincipalSignInLogs",
    "AADManagedIdentitySignInLogs",
    "AuditLogs",
    "AADRiskyUsers",
    "AADUserRiskEvents",
];

fn is_log_analytics_row(o: Obj<'_>) -> bool {
    let typed =
        o.0.get("Type")
            .and_then(Value::as_str)
            .is_some_and(|t| LA_TABLES.iter().any(|x| x.eq_ignore_ascii_case(t)));
    typed
        || o.0.contains_key("TimeGenerated")
        || o.0.contains_key("AADTenantId")
        || o.0.contains_key("SourceSystem")
}

// ---------------------------------------------------------------------------------------------
// Event Hub

/// Event Hub `category` → what entrawatch makes of it (FORMATS.md §3).
fn event_hub_kind(category: &str) -> Option<(Kind, Option<SignInEventType>)> {
    let c = category.to_ascii_lowercase();
    Some(match c.as_str() {
        "signinlogs" => (Kind::SignIn, Some(SignInEventType::InteractiveUser)),
        "noninteractiveusersigninlogs" => (Kind::SignIn, Some(SignInEventType::NonInteractiveUser)),
        "serviceprincipalsigninlogs" | "microsoftserviceprincipalsigninlogs" => {
            (Kind::SignIn, Some(SignInEventType::ServicePrincipal))
        }
        "managedidentitysigninlogs" => (Kind::SignIn, Some(SignInEventType::ManagedIdentity)),
        "auditlogs" => (Kind::Audit, None),
        "riskyusers" => (Kind::RiskyUser, None),
        "userriskevents" => (Kind::RiskDetection, None),
        _ => return None,
    })
}

fn event_hub_record(o: Obj<'_>, ctx: &RecordContext<'_>) -> Result<Outcome, RecordError> {
    let category = o.str("category").map(String::from).unwrap_or_default();
    let Some((kind, event_type)) = event_hub_kind(&category) else {
        return Ok(Outcome::Skipped { category });
    };
    let props_map = o
        .object("properties")
        .ok_or_else(|| RecordError::new("properties", "missing"))?;
    let p = Obj(&props_map);
    let tenant = first_guid([
        o.str("tenantId"),
        p.str("tenantId"),
        o.str("resourceId")
            .and_then(|r| tenant_from_resource_id(&r))
            .map(Text::from),
        p.str("resourceTenantId"),
    ])
    .or_else(|| ctx.tenant_hint.map(Text::from))
    .ok_or_else(no_tenant)?;
    let envelope_time = o.str("time");
    build(
        kind,
        p,
        Some(o),
        Flavor::EventHub,
        Shape::EventHub,
        event_type,
        tenant,
        envelope_time,
        ctx,
    )
}

// ---------------------------------------------------------------------------------------------
// Log Analytics

fn log_analytics_kind(o: Obj<'_>) -> Option<(Kind, Option<SignInEventType>)> {
    if let Some(table) = o.str("Type") {
        return Some(match table.to_ascii_lowercase().as_str() {
            "signinlogs" => (Kind::SignIn, Some(SignInEventType::InteractiveUser)),
            "aadnoninteractiveusersigninlogs" => {
                (Kind::SignIn, Some(SignInEventType::NonInteractiveUser))
            }
            "aadserviceprincipalsigninlogs" => {
                (Kind::SignIn, Some(SignInEventType::ServicePrincipal))
            }
            "aadmanagedidentitysigninlogs" => {
                (Kind::SignIn, Some(SignInEventType::ManagedIdentity))
            }
            "auditlogs" => (Kind::Audit, None),
            "aadriskyusers" => (Kind::RiskyUser, None),
            "aaduserriskevents" => (Kind::RiskDetection, None),
            _ => return None,
        });
    }
    if let Some(category) = o.str("Category")
        && let Some(found) = event_hub_kind(&category)
    {
        return Some(found);
    }
    infer_kind(o).map(|k| (k, None))
}

fn log_analytics_row(
    o: Obj<'_>,
    shape: Shape,
    ctx: &RecordContext<'_>,
) -> Result<Outcome, RecordError> {
    let Some((kind, event_type)) = log_analytics_kind(o) else {
        let category = o
            .str_any(&["Type", "Category"])
            .map_or_else(|| "(none)".into(), String::from);
        return Ok(Outcome::Skipped { category });
    };
    // `TenantId` in Log Analytics is the workspace id, never the Entra tenant (FORMATS.md §4).
    let tenant = first_guid([
        o.str("AADTenantId"),
        o.str("ResourceId")
            .and_then(|r| tenant_from_resource_id(&r))
            .map(Text::from),
        o.str("ResourceTenantId"),
    ])
    .or_else(|| ctx.tenant_hint.map(Text::from))
    .ok_or_else(no_tenant)?;
    let envelope_time = o.str("TimeGenerated");
    build(
        kind,
        o,
        None,
        Flavor::LogAnalytics,
        shape,
        event_type,
        tenant,
        envelope_time,
        ctx,
    )
}

// ---------------------------------------------------------------------------------------------
// Graph

/// The entity type a Graph `@odata.context` names.
pub fn graph_kind_from_context(context: &str) -> Option<Kind> {
    let c = context.to_ascii_lowercase();
    let c = c.split("$metadata#").nth(1).unwrap_or(&c);
    if c.contains("rolemanagement") || c.contains("roleassignment") || c.contains("roleeligibility")
    {
        return Some(if c.contains("eligibility") {
            Kind::RoleEligibility
        } else {
            Kind::RoleAssignment
        });
    }
    if c.contains("signins") {
        Some(Kind::SignIn)
    } else if c.contains("directoryaudits") {
        Some(Kind::Audit)
    } else if c.contains("riskyusers") && c.contains("history") {
        Some(Kind::RiskyUserHistory)
    } else if c.contains("riskyusers") {
        Some(Kind::RiskyUser)
    } else if c.contains("riskdetections") {
        Some(Kind::RiskDetection)
    } else {
        None
    }
}

/// The kind of a Graph entity (or Log Analytics row) from the fields it has.
fn infer_kind(o: Obj<'_>) -> Option<Kind> {
    if o.has("roleDefinitionId") && o.has("principalId") {
        let eligible = o.has("scheduleInfo") || o.has("memberType") && !o.has("assignmentType");
        return Some(if eligible {
            Kind::RoleEligibility
        } else {
            Kind::RoleAssignment
        });
    }
    if o.has("riskEventType") {
        return Some(Kind::RiskDetection);
    }
    if o.has("riskLastUpdatedDateTime") {
        let history = o.has("activity") || (o.has("userId") && o.str("userId") != o.str("id"));
        return Some(if history {
            Kind::RiskyUserHistory
        } else {
            Kind::RiskyUser
        });
    }
    if o.has("activityDisplayName") || o.has("activityDateTime") {
        return Some(Kind::Audit);
    }
    if o.has("createdDateTime") && (o.has("userId") || o.has("appId") || o.has("status")) {
        return Some(Kind::SignIn);
    }
    None
}

/// `; its fields: a, b, c` (the first few), to show what a record that cannot be placed holds.
fn fields_named(o: Obj<'_>) -> String {
    let names: Vec<&str> = o.0.keys().map(String::as_str).take(8).collect();
    if names.is_empty() {
        "; it is empty".to_owned()
    } else {
        format!("; its fields: {}", names.join(", "))
    }
}

fn graph_entity(o: Obj<'_>, ctx: &RecordContext<'_>) -> Result<Outcome, RecordError> {
    let kind = ctx.graph_hint.or_else(|| infer_kind(o)).ok_or_else(|| {
        RecordError::new(
            "(record)",
            format!(
                "cannot tell what this record is: {}, and none of createdDateTime, \
                 activityDateTime, riskEventType, riskLastUpdatedDateTime or roleDefinitionId{}",
                match o.raw("category") {
                    Some(v) => format!("its category is {v}, not a string"),
                    None => "it has no category".to_owned(),
                },
                fields_named(o)
            ),
        )
    })?;
    let event_type = o
        .str_list("signInEventTypes")
        .first()
        .map(|t| SignInEventType::parse(t));
    let tenant = first_guid([o.str("tenantId"), o.str("resourceTenantId")])
        .or_else(|| ctx.tenant_hint.map(Text::from))
        .ok_or_else(no_tenant)?;
    build(
        kind,
        o,
        None,
        Flavor::Graph,
        Shape::Graph,
        event_type,
        tenant,
        None,
        ctx,
    )
}

// ---------------------------------------------------------------------------------------------
// Shared

fn no_tenant() -> RecordError {
    RecordError::new(
        "tenantId",
        "no tenant in the record (tenantId, AADTenantId, resourceId, resourceTenantId); \
         pass --tenant GUID or put the file in a folder named by the tenant GUID",
    )
}

fn first_guid<const N: usize>(candidates: [Option<Text>; N]) -> Option<Text> {
    candidates
        .into_iter()
        .flatten()
        .find(|c| is_guid(c))
        .map(|c| Text::ascii_lowercase(&c))
}

#[allow(clippy::too_many_arguments)]
fn build(
    kind: Kind,
    p: Obj<'_>,
    outer: Option<Obj<'_>>,
    flavor: Flavor,
    shape: Shape,
    event_type: Option<SignInEventType>,
    tenant_id: Text,
    envelope_time: Option<Text>,
    ctx: &RecordContext<'_>,
) -> Result<Outcome, RecordError> {
    let (own_time_fields, body): (&[&str], Body) = match kind {
        Kind::SignIn => (
            &["createdDateTime"],
            Body::SignIn(Box::new(sign_in(p, outer, flavor, event_type))),
        ),
        Kind::Audit => (
            &["activityDateTime"],
            Body::Audit(Box::new(audit(p, outer))),
        ),
        Kind::RiskyUser | Kind::RiskyUserHistory => (
            &["riskLastUpdatedDateTime"],
            Body::RiskyUser(Box::new(risky_user(p, kind == Kind::RiskyUserHistory)?)),
        ),
        Kind::RiskDetection => (
            &[
                "lastUpdatedDateTime",
                "detectedDateTime",
                "activityDateTime",
            ],
            Body::RiskDetection(Box::new(risk_detection(p, outer))),
        ),
        Kind::RoleAssignment | Kind::RoleEligibility => (
            &[],
            Body::Role(Box::new(role_grant(p, kind == Kind::RoleEligibility)?)),
        ),
    };
    let id = p
        .str("id")
        .ok_or_else(|| RecordError::new("id", "missing or empty"))?;
    let (time, time_source) = event_time(p, own_time_fields, envelope_time.as_deref(), kind, ctx)?;
    let meta = Meta {
        id,
        tenant_id,
        time,
        time_source,
        shape,
    };
    Ok(Outcome::Event(Box::new(Event { meta, body })))
}

/// The record's own time, else the envelope's, else (context records) the epoch, else ingest time.
/// A time field that is present but unreadable is an error naming the field.
fn event_time(
    p: Obj<'_>,
    fields: &[&str],
    envelope: Option<&str>,
    kind: Kind,
    ctx: &RecordContext<'_>,
) -> Result<(DateTime<Utc>, TimeSource), RecordError> {
    let mut unreadable: Option<(String, String)> = None;
    for field in fields {
        if let Some(raw) = p.str(field) {
            match parse_timestamp(&raw) {
                Some(t) => return Ok((t, TimeSource::Record)),
                None => {
                    unreadable.get_or_insert(((*field).to_owned(), raw.into()));
                }
            }
        }
    }
    if let Some(raw) = envelope {
        if let Some(t) = parse_timestamp(raw) {
            return Ok((t, TimeSource::Envelope));
        }
        unreadable.get_or_insert(("time".to_owned(), raw.to_owned()));
    }
    if matches!(kind, Kind::RoleAssignment | Kind::RoleEligibility) {
        return Ok((DateTime::<Utc>::UNIX_EPOCH, TimeSource::Snapshot));
    }
    if let Some((field, raw)) = unreadable {
        return Err(RecordError::new(
            field,
            format!("unreadable timestamp {raw:?}"),
        ));
    }
    Ok((ctx.ingest_time, TimeSource::Ingest))
}

fn time_of(o: Obj<'_>, key: &str) -> Option<DateTime<Utc>> {
    o.str(key).and_then(|s| parse_timestamp(&s))
}

fn sign_in(
    p: Obj<'_>,
    outer: Option<Obj<'_>>,
    flavor: Flavor,
    event_type: Option<SignInEventType>,
) -> SignIn {
    let status = p.object("status");
    let status = status.as_deref().map(Obj);
    let outer_str = |k: &str| outer.and_then(|o| o.str(k));
    let error_code = status
        .and_then(|s| s.i64("errorCode"))
        .or_else(|| p.i64("ResultType"))
        .or_else(|| outer.and_then(|o| o.i64("resultType")));
    let failure_reason = status
        .and_then(|s| s.str("failureReason"))
        .or_else(|| p.str("ResultDescription"))
        .or_else(|| outer_str("resultDescription"));
    // Log Analytics: `ResourceId` is the Azure path; the resource app id is `ResourceIdentity`.
    let resource_id = match flavor {
        Flavor::LogAnalytics => p.str("ResourceIdentity"),
        _ => p.str("resourceId"),
    };
    let mut location = p
        .object_any(&["locationDetails", "location"])
        .map(|m| location(Obj(&m)))
        .unwrap_or_default();
    if location.country_or_region.is_none() && flavor == Flavor::LogAnalytics {
        location.country_or_region = p.str("Location");
    }
    let mut risk_event_types = p.str_list("riskEventTypes_v2");
    if risk_event_types.is_empty() {
        risk_event_types = p.str_list("riskEventTypes");
    }
    SignIn {
        event_type,
        is_interactive: p.bool("isInteractive"),
        user_id: p.str("userId"),
        user_display_name: p.str("userDisplayName"),
        user_principal_name: p.str("userPrincipalName"),
        user_type: p.str("userType").map(|s| UserType::parse(&s)),
        app_id: p.str("appId"),
        app_display_name: p.str("appDisplayName"),
        service_principal_id: p.str("servicePrincipalId"),
        service_principal_name: p.str("servicePrincipalName"),
        resource_id,
        resource_display_name: p.str("resourceDisplayName"),
        ip_address: p.str("ipAddress").or_else(|| outer_str("callerIpAddress")),
        autonomous_system_number: p
            .i64("autonomousSystemNumber")
            .and_then(|n| u32::try_from(n).ok()),
        client_app_used: p.str("clientAppUsed"),
        user_agent: p.str("userAgent"),
        correlation_id: p
            .str("correlationId")
            .or_else(|| outer_str("correlationId")),
        original_request_id: p.str("originalRequestId"),
        error_code,
        failure_reason,
        conditional_access_status: p
            .str("conditionalAccessStatus")
            .map(|s| ConditionalAccessStatus::parse(&s)),
        authentication_requirement: p
            .str("authenticationRequirement")
            .map(|s| AuthenticationRequirement::parse(&s)),
        authentication_protocol: p
            .str("authenticationProtocol")
            .map(|s| AuthenticationProtocol::parse(&s)),
        authentication_details: p
            .array("authenticationDetails")
            .iter()
            .filter_map(Value::as_object)
            .map(|m| authentication_step(Obj(m)))
            .collect(),
        authentication_methods_used: p.str_list("authenticationMethodsUsed"),
        risk_level_aggregated: p.str("riskLevelAggregated").map(|s| RiskLevel::parse(&s)),
        risk_level_during_sign_in: p.str("riskLevelDuringSignIn").map(|s| RiskLevel::parse(&s)),
        risk_state: p.str("riskState").map(|s| RiskState::parse(&s)),
        risk_detail: p.str("riskDetail"),
        risk_event_types,
        cross_tenant_access_type: p
            .str("crossTenantAccessType")
            .map(|s| CrossTenantAccessType::parse(&s)),
        home_tenant_id: p.str("homeTenantId").map(|s| Text::ascii_lowercase(&s)),
        home_tenant_name: p.str("homeTenantName"),
        resource_tenant_id: p.str("resourceTenantId").map(|s| Text::ascii_lowercase(&s)),
        incoming_token_type: p.str("incomingTokenType"),
        device: p
            .object("deviceDetail")
            .map(|m| device(Obj(&m)))
            .unwrap_or_default(),
        location,
    }
}

fn authentication_step(o: Obj<'_>) -> AuthenticationStep {
    AuthenticationStep {
        time: time_of(o, "authenticationStepDateTime"),
        method: o.str("authenticationMethod"),
        method_detail: o.str("authenticationMethodDetail"),
        succeeded: o.bool("succeeded"),
        result_detail: o.str("authenticationStepResultDetail"),
        requirement: o.str("authenticationStepRequirement"),
    }
}

fn device(o: Obj<'_>) -> DeviceDetail {
    DeviceDetail {
        device_id: o.str("deviceId"),
        display_name: o.str("displayName"),
        operating_system: o.str("operatingSystem"),
        browser: o.str("browser"),
        is_compliant: o.bool("isCompliant"),
        is_managed: o.bool("isManaged"),
        trust_type: o.str("trustType"),
    }
}

fn location(o: Obj<'_>) -> Location {
    let geo = o.object("geoCoordinates");
    let geo = geo.as_deref().map(Obj);
    Location {
        city: o.str("city"),
        state: o.str("state"),
        country_or_region: o.str("countryOrRegion"),
        latitude: geo.and_then(|g| g.f64("latitude")),
        longitude: geo.and_then(|g| g.f64("longitude")),
    }
}

fn audit(p: Obj<'_>, outer: Option<Obj<'_>>) -> Audit {
    let initiated = p.object("initiatedBy");
    let initiated = initiated.as_deref().map(Obj);
    let user = initiated.and_then(|i| i.object("user")).map(|m| {
        let u = Obj(&m);
        AuditUser {
            id: u.str("id"),
            display_name: u.str("displayName"),
            user_principal_name: u.str("userPrincipalName"),
            ip_address: u.str("ipAddress"),
            user_type: u.str("userType").map(|s| UserType::parse(&s)),
            home_tenant_id: u.str("homeTenantId").map(|s| Text::ascii_lowercase(&s)),
            home_tenant_name: u.str("homeTenantName"),
            roles: u.str_list("roles"),
        }
    });
    let app = initiated.and_then(|i| i.object("app")).map(|m| {
        let a = Obj(&m);
        AuditApp {
            app_id: a.str("appId"),
            display_name: a.str("displayName"),
            service_principal_id: a.str("servicePrincipalId"),
            service_principal_name: a.str("servicePrincipalName"),
        }
    });
    Audit {
        activity_display_name: p
            .str_any(&["activityDisplayName", "OperationName"])
            .or_else(|| outer.and_then(|o| o.str("operationName")))
            .unwrap_or_default(),
        category: p.str("category"),
        operation_type: p.str_any(&["operationType", "AADOperationType"]),
        result: p.str("result").map(|s| AuditResult::parse(&s)),
        result_reason: p.str("resultReason"),
        logged_by_service: p.str("loggedByService"),
        correlation_id: p
            .str("correlationId")
            .or_else(|| outer.and_then(|o| o.str("correlationId"))),
        initiated_by: Initiator { user, app },
        target_resources: p
            .array("targetResources")
            .iter()
            .filter_map(Value::as_object)
            .map(|m| target_resource(Obj(m)))
            .collect(),
        additional_details: key_values(&p.array("additionalDetails")),
    }
}

fn target_resource(o: Obj<'_>) -> TargetResource {
    TargetResource {
        id: o.str("id"),
        display_name: o.str("displayName"),
        resource_type: o.str("type"),
        user_principal_name: o.str("userPrincipalName"),
        group_type: o.str("groupType"),
        modified_properties: o
            .array("modifiedProperties")
            .iter()
            .filter_map(Value::as_object)
            .map(|m| {
                let mp = Obj(m);
                ModifiedProperty {
                    display_name: mp.str("displayName"),
                    old_value: mp
                        .raw("oldValue")
                        .and_then(value_to_string)
                        .and_then(|s| unwrap_json_string(&s))
                        .map(Text::from),
                    new_value: mp
                        .raw("newValue")
                        .and_then(value_to_string)
                        .and_then(|s| unwrap_json_string(&s))
                        .map(Text::from),
                }
            })
            .collect(),
    }
}

fn key_values(items: &[Value]) -> Vec<KeyValue> {
    items
        .iter()
        .filter_map(Value::as_object)
        .filter_map(|m| {
            let kv = Obj(m);
            Some(KeyValue {
                key: kv.str("key")?,
                value: kv.str("value"),
            })
        })
        .collect()
}

fn risky_user(p: Obj<'_>, history: bool) -> Result<RiskyUser, RecordError> {
    let user_id = if history {
        p.str("userId").or_else(|| p.str("id"))
    } else {
        p.str("id")
    };
    let user_id = user_id.ok_or_else(|| {
        RecordError::new(if history { "userId" } else { "id" }, "missing or empty")
    })?;
    let history = history.then(|| {
        let activity = p.object("activity");
        let activity = activity.as_deref().map(Obj);
        let mut event_types = activity
            .map(|a| a.str_list("eventTypes"))
            .unwrap_or_default();
        if event_types.is_empty() {
            event_types = activity
                .map(|a| a.str_list("riskEventTypes"))
                .unwrap_or_default();
        }
        RiskyUserHistory {
            initiated_by: p.str("initiatedBy"),
            event_types,
            detail: activity.and_then(|a| a.str("detail")),
        }
    });
    Ok(RiskyUser {
        user_id,
        user_display_name: p.str("userDisplayName"),
        user_principal_name: p.str("userPrincipalName"),
        risk_level: p.str("riskLevel").map(|s| RiskLevel::parse(&s)),
        risk_state: p.str("riskState").map(|s| RiskState::parse(&s)),
        risk_detail: p.str("riskDetail"),
        risk_last_updated: time_of(p, "riskLastUpdatedDateTime"),
        is_deleted: p.bool("isDeleted"),
        is_processing: p.bool("isProcessing"),
        is_guest: p.bool("isGuest"),
        history,
    })
}

fn risk_detection(p: Obj<'_>, outer: Option<Obj<'_>>) -> RiskDetection {
    let additional_info = p
        .array("additionalInfo")
        .iter()
        .filter_map(Value::as_object)
        .filter_map(|m| {
            let kv = Obj(m);
            Some(KeyValue {
                key: kv.str("Key")?,
                value: kv.raw("Value").map(|v| match v {
                    Value::String(s) => Text::from(s.as_str()),
                    other => Text::from(other.to_string()),
                }),
            })
        })
        .collect();
    RiskDetection {
        request_id: p.str("requestId"),
        correlation_id: p
            .str("correlationId")
            .or_else(|| outer.and_then(|o| o.str("correlationId"))),
        risk_event_type: p.str("riskEventType"),
        risk_level: p.str("riskLevel").map(|s| RiskLevel::parse(&s)),
        risk_state: p.str("riskState").map(|s| RiskState::parse(&s)),
        risk_detail: p.str("riskDetail"),
        source: p.str("source"),
        detection_timing_type: p
            .str("detectionTimingType")
            .map(|s| DetectionTimingType::parse(&s)),
        activity: p.str("activity"),
        ip_address: p
            .str("ipAddress")
            .or_else(|| outer.and_then(|o| o.str("callerIpAddress"))),
        location: p
            .object("location")
            .map(|m| location(Obj(&m)))
            .unwrap_or_default(),
        activity_time: time_of(p, "activityDateTime"),
        detected_time: time_of(p, "detectedDateTime"),
        last_updated: time_of(p, "lastUpdatedDateTime"),
        user_id: p.str("userId"),
        user_display_name: p.str("userDisplayName"),
        user_principal_name: p.str("userPrincipalName"),
        user_type: p.str("userType").map(|s| UserType::parse(&s)),
        home_tenant_id: p.str("homeTenantId").map(|s| Text::ascii_lowercase(&s)),
        cross_tenant_access_type: p
            .str("crossTenantAccessType")
            .map(|s| CrossTenantAccessType::parse(&s)),
        mitre_technique_id: p.str("mitreTechniqueId"),
        additional_info,
    }
}

fn role_grant(p: Obj<'_>, eligible: bool) -> Result<RoleGrant, RecordError> {
    let principal = p.object("principal");
    let principal = principal.as_deref().map(Obj);
    let principal_type = principal.and_then(|pr| pr.str("@odata.type")).map(|t| {
        let t = t.trim_start_matches('#');
        Text::from(t.strip_prefix("microsoft.graph.").unwrap_or(t))
    });
    let schedule = p.object("scheduleInfo");
    let schedule = schedule.as_deref().map(Obj);
    let expiration = schedule.and_then(|s| s.object("expiration"));
    Ok(RoleGrant {
        eligible,
        principal_id: p
            .str("principalId")
            .or_else(|| principal.and_then(|pr| pr.str("id")))
            .ok_or_else(|| RecordError::new("principalId", "missing or empty"))?,
        principal_type,
        principal_display_name: principal.and_then(|pr| pr.str("displayName")),
        principal_user_principal_name: principal.and_then(|pr| pr.str("userPrincipalName")),
        role_definition_id: p
            .str_any(&["roleTemplateId", "roleDefinitionId"])
            .map(|id| Text::ascii_lowercase(&id))
            .ok_or_else(|| RecordError::new("roleDefinitionId", "missing or empty"))?,
        directory_scope_id: p.str("directoryScopeId"),
        start: schedule.and_then(|s| time_of(s, "startDateTime")),
        end: expiration
            .as_deref()
            .and_then(|e| time_of(Obj(e), "endDateTime")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ctx() -> RecordContext<'static> {
        RecordContext {
            tenant_hint: None,
            graph_hint: None,
            ingest_time: DateTime::<Utc>::UNIX_EPOCH,
            csv: false,
        }
    }

    fn event(v: Value) -> Event {
        match normalize(v.as_object().unwrap(), &ctx()).unwrap() {
            Outcome::Event(e) => *e,
            other => panic!("expected an event, got {other:?}"),
        }
    }

    #[test]
    fn event_hub_interrupt_code_comes_from_status_or_result_type() {
        let e = event(json!({
            "time": "2019-03-12T16:02:15.5522137Z", "category": "SignInLogs",
            "tenantId": "4d3bac44-0230-4732-9e70-cc00736f0a97", "resultType": "50140",
            "properties": {"id": "x", "createdDateTime": "2019-03-12T16:02:15.5522137+00:00"}
        }));
        let s = e.as_sign_in().unwrap();
        assert_eq!(s.error_code, Some(50140));
        assert!(s.is_interrupt());
        assert!(s.is_interactive());
        assert_eq!(e.meta.time_source, TimeSource::Record);
    }

    #[test]
    fn unknown_categories_are_skipped() {
        let out = normalize(
            json!({"category": "ProvisioningLogs", "properties": {}})
                .as_object()
                .unwrap(),
            &ctx(),
        )
        .unwrap();
        assert!(matches!(out, Outcome::Skipped { category } if category == "ProvisioningLogs"));
    }

    #[test]
    fn missing_tenant_and_bad_time_name_the_field() {
        let err = normalize(
            json!({"id": "a", "createdDateTime": "2021-01-01T00:00:00Z", "userId": "u"})
                .as_object()
                .unwrap(),
            &ctx(),
        )
        .unwrap_err();
        assert_eq!(err.field, "tenantId");
        let err = normalize(
            json!({"id": "a", "createdDateTime": "not a time", "userId": "u",
                   "resourceTenantId": "4d3bac44-0230-4732-9e70-cc00736f0a97"})
            .as_object()
            .unwrap(),
            &ctx(),
        )
        .unwrap_err();
        assert_eq!(err.field, "createdDateTime");
        assert!(err.reason.contains("not a time"), "{err}");
    }

    #[test]
    fn a_record_without_any_time_takes_the_ingest_time() {
        let e = event(
            json!({"id": "a", "userId": "u", "status": {"errorCode": 0}, "createdDateTime": null,
                             "resourceTenantId": "4d3bac44-0230-4732-9e70-cc00736f0a97"}),
        );
        assert_eq!(e.meta.time_source, TimeSource::Ingest);
    }
}
