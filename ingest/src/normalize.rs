//! From one decoded JSON record, in any of the three shapes, to one [`Event`].
//!
//! Dispatch: an Event Hub record on its `category`, a Log Analytics row on its `Type` (else
//! `Category`), a Graph entity on its list's `@odata.context` (else on the fields it has); then the
//! tenant and the event time, the same way for every kind. This file holds that dispatch; `kinds`
//! reads each kind's fields through [`Obj`], so casing, stringified objects and numbers-as-strings
//! are handled once, and `record` holds what a normaliser is given and gives back
//! ([`RecordContext`], [`Outcome`], [`RecordError`]).
//!
//! Nearly every record of a real export is an Event Hub or Graph sign-in or audit in the producers'
//! own spelling: [`normalize_fast`] reads those from their text into typed borrowed structs
//! (`typed`) and builds the event directly (`fast`), with the same rules, at a fraction of the
//! cost; whatever it does not promise to read identically it hands back, to be read as above.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use crate::model::*;
use crate::time::parse_timestamp;
use crate::value::{Obj, is_guid, tenant_from_resource_id};

mod fast;
mod kinds;
mod record;
mod typed;

use kinds::{Flavor, audit, gdap_relationship, risk_detection, risky_user, role_grant, sign_in};
pub use record::{NO_EVENT_TIME, Outcome, RecordContext, RecordError};

/// Normalises one JSON record straight from its text when it is an Event Hub or Graph sign-in or
/// audit in the producers' spelling; `None` for anything else (other kinds, Log Analytics, odd
/// casing or forms, any error), which [`normalize`] then reads from its decoded `Value`. Where it
/// returns an event, it is the event [`normalize`] returns for the same record.
pub fn normalize_fast(text: &str, ctx: &RecordContext<'_>) -> Option<Box<Event>> {
    fast::event(text, ctx)
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

/// Event Hub `category` → what entrawatch makes of it (docs/formats.md §3).
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
    // `TenantId` in Log Analytics is the workspace id, never the Entra tenant (docs/formats.md §4).
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
    )
}

// ---------------------------------------------------------------------------------------------
// Graph

/// The entity type a Graph `@odata.context` names.
pub fn graph_kind_from_context(context: &str) -> Option<Kind> {
    let c = context.to_ascii_lowercase();
    let c = c.split("$metadata#").nth(1).unwrap_or(&c);
    if c.contains("delegatedadminrelationship") {
        return Some(Kind::GdapRelationship);
    }
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
    if o.has("accessDetails") && o.has("customer") {
        return Some(Kind::GdapRelationship);
    }
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
    // A GDAP relationship is read in the partner's tenant and belongs to the customer's.
    let customer = (kind == Kind::GdapRelationship)
        .then(|| o.object("customer"))
        .flatten()
        .and_then(|c| Obj(&c).str("tenantId"));
    let tenant = first_guid([customer, o.str("tenantId"), o.str("resourceTenantId")])
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
        Kind::GdapRelationship => (
            &[
                "lastModifiedDateTime",
                "activatedDateTime",
                "createdDateTime",
            ],
            Body::Gdap(Box::new(gdap_relationship(p))),
        ),
    };
    let id = p
        .str("id")
        .ok_or_else(|| RecordError::new("id", "missing or empty"))?;
    let envelope = match flavor {
        Flavor::EventHub => Some("time"),
        Flavor::LogAnalytics => Some("TimeGenerated"),
        Flavor::Graph => None,
    };
    let times = RecordTimes {
        own: own_time_fields,
        envelope: envelope.map(|name| (name, envelope_time.as_deref())),
        nested: nested_time(p, &body),
    };
    let (time, time_source) = event_time(p, &times, kind)?;
    let meta = Meta {
        id,
        tenant_id,
        time,
        time_source,
        shape,
    };
    Ok(Outcome::Event(Box::new(Event { meta, body })))
}

/// Where a record's time may be, in the order they are tried.
struct RecordTimes<'a> {
    /// The kind's own time fields.
    own: &'a [&'a str],
    /// The envelope's time field when the shape has one, with its text when the record has it.
    envelope: Option<(&'a str, Option<&'a str>)>,
    /// A time deeper in the record, and where it was looked for; `None` when the kind keeps none.
    nested: Option<(Option<DateTime<Utc>>, &'static str)>,
}

/// The time hidden deeper in the record, for a record whose own time field and envelope are
/// missing: a sign-in's earliest authentication step (the first step is when the sign-in began),
/// an audit's `properties.activityDateTime` (exports that keep the Event Hub `properties` nested).
fn nested_time(p: Obj<'_>, body: &Body) -> Option<(Option<DateTime<Utc>>, &'static str)> {
    match body {
        Body::SignIn(s) => Some((
            s.authentication_details.iter().filter_map(|a| a.time).min(),
            "authenticationDetails[].authenticationStepDateTime",
        )),
        Body::Audit(_) => Some((
            p.object("properties").and_then(|m| {
                Obj(&m)
                    .str("activityDateTime")
                    .and_then(|t| parse_timestamp(&t))
            }),
            "properties.activityDateTime",
        )),
        _ => None,
    }
}

/// The record's own time, else the envelope's, else one found deeper in the record, else (context
/// records) the epoch. A time field that is present but unreadable is an error naming the field;
/// a record with no time at all is rejected with [`NO_EVENT_TIME`], naming the fields looked in.
fn event_time(
    p: Obj<'_>,
    times: &RecordTimes<'_>,
    kind: Kind,
) -> Result<(DateTime<Utc>, TimeSource), RecordError> {
    let mut unreadable: Option<(String, String)> = None;
    for field in times.own {
        if let Some(raw) = p.str(field) {
            match parse_timestamp(&raw) {
                Some(t) => return Ok((t, TimeSource::Record)),
                None => {
                    unreadable.get_or_insert(((*field).to_owned(), raw.into()));
                }
            }
        }
    }
    if let Some((name, Some(raw))) = times.envelope {
        if let Some(t) = parse_timestamp(raw) {
            return Ok((t, TimeSource::Envelope));
        }
        unreadable.get_or_insert((name.to_owned(), raw.to_owned()));
    }
    if let Some((Some(t), _)) = times.nested {
        return Ok((t, TimeSource::Nested));
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
    let looked: Vec<&str> = times
        .own
        .iter()
        .copied()
        .chain(times.envelope.map(|(name, _)| name))
        .chain(times.nested.map(|(_, name)| name))
        .collect();
    Err(RecordError::new(
        times.own.first().copied().unwrap_or("time"),
        format!(
            "{NO_EVENT_TIME}: none of {} holds a time (the time a record is read is never used \
             in its place)",
            looked.join(", ")
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ctx() -> RecordContext<'static> {
        RecordContext {
            tenant_hint: None,
            graph_hint: None,
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

    /// `status.additionalDetails`, `authenticationProtocol` and `originalTransferMethod` are read
    /// from every shape: a Graph beta entity, an Event Hub record and a Log Analytics row (whose
    /// `Status` column is a JSON string in exports), by the tolerant and the fast reader alike.
    #[test]
    fn mfa_details_and_the_device_code_flow_are_read_from_every_shape() {
        let tenant = "11111111-aaaa-4aaa-8aaa-111111111111";
        let graph = json!({
            "id": "g1", "createdDateTime": "2026-10-01T08:29:40Z", "userId": "u1",
            "userPrincipalName": "ann@contoso.com", "resourceTenantId": tenant,
            "status": {"errorCode": 500121,
                "failureReason": "Authentication failed during strong authentication request.",
                "additionalDetails": "MFA denied; user declined the authentication"},
            "authenticationProtocol": "deviceCode", "originalTransferMethod": "deviceCodeFlow"
        });
        let event_hub = json!({
            "time": "2026-10-01T08:29:40.1234567Z", "category": "SignInLogs", "tenantId": tenant,
            "resultType": "500121",
            "resultDescription": "Authentication failed during strong authentication request.",
            "properties": {"id": "e1", "createdDateTime": "2026-10-01T08:29:40.1234567+00:00",
                "userId": "u1", "userPrincipalName": "ann@contoso.com",
                "status": {"errorCode": 500121,
                    "additionalDetails": "MFA denied; user declined the authentication"},
                "authenticationProtocol": "deviceCode", "originalTransferMethod": "deviceCodeFlow"}
        });
        let log_analytics = json!({
            "TenantId": "9c4d2e7a-5b1f-4e38-a6d0-7f2b8c1e4a95", "Type": "SigninLogs",
            "AADTenantId": tenant, "TimeGenerated": "2026-10-01T08:29:41Z",
            "CreatedDateTime": "2026-10-01T08:29:40Z", "Id": "l1", "UserId": "u1",
            "UserPrincipalName": "ann@contoso.com", "ResultType": "500121",
            "ResultDescription": "Authentication failed during strong authentication request.",
            "Status": "{\"errorCode\":500121,\"additionalDetails\":\"MFA denied; user declined the authentication\"}",
            "AuthenticationProtocol": "deviceCode", "OriginalTransferMethod": "deviceCodeFlow"
        });
        for record in [graph, event_hub, log_analytics] {
            let mut events = vec![event(record.clone())];
            if let Some(fast) = normalize_fast(&record.to_string(), &ctx()) {
                events.push(*fast);
            }
            for e in events {
                let s = e.as_sign_in().unwrap();
                assert_eq!(s.error_code, Some(500121), "{record}");
                assert_eq!(
                    s.additional_details.as_deref(),
                    Some("MFA denied; user declined the authentication"),
                    "{record}"
                );
                assert_eq!(
                    s.authentication_protocol,
                    Some(crate::model::AuthenticationProtocol::DeviceCode),
                    "{record}"
                );
                assert_eq!(
                    s.original_transfer_method.as_deref(),
                    Some("deviceCodeFlow"),
                    "{record}"
                );
                assert!(s.is_device_code());
            }
        }
    }

    /// `sessionId` (Graph beta, Event Hub `properties.sessionId`) and the Log Analytics
    /// `SessionId` column are read by the tolerant and the fast reader alike; a record without
    /// one has none.
    #[test]
    fn the_session_id_is_read_from_every_shape() {
        let tenant = "11111111-aaaa-4aaa-8aaa-111111111111";
        let session = "00a1b2c3-d4e5-4f60-8718-293a4b5c6d7e";
        let graph = json!({
            "id": "g1", "createdDateTime": "2026-10-01T08:29:40Z", "userId": "u1",
            "userPrincipalName": "ann@contoso.com", "resourceTenantId": tenant,
            "status": {"errorCode": 0}, "sessionId": session
        });
        let event_hub = json!({
            "time": "2026-10-01T08:29:40.1234567Z", "category": "NonInteractiveUserSignInLogs",
            "tenantId": tenant, "resultType": "0",
            "properties": {"id": "e1", "createdDateTime": "2026-10-01T08:29:40.1234567+00:00",
                "userId": "u1", "userPrincipalName": "ann@contoso.com",
                "status": {"errorCode": 0}, "sessionId": session}
        });
        let log_analytics = json!({
            "TenantId": "9c4d2e7a-5b1f-4e38-a6d0-7f2b8c1e4a95", "Type": "SigninLogs",
            "AADTenantId": tenant, "TimeGenerated": "2026-10-01T08:29:41Z",
            "CreatedDateTime": "2026-10-01T08:29:40Z", "Id": "l1", "UserId": "u1",
            "UserPrincipalName": "ann@contoso.com", "ResultType": "0",
            "Status": "{\"errorCode\":0}", "SessionId": session
        });
        for record in [graph, event_hub, log_analytics] {
            let mut events = vec![event(record.clone())];
            if let Some(fast) = normalize_fast(&record.to_string(), &ctx()) {
                events.push(*fast);
            }
            for e in events {
                let s = e.as_sign_in().unwrap();
                assert_eq!(s.session_id.as_deref(), Some(session), "{record}");
            }
            let mut without = record.clone();
            for o in [without.as_object_mut(), None].into_iter().flatten() {
                o.remove("sessionId");
                o.remove("SessionId");
                if let Some(p) = o.get_mut("properties").and_then(|p| p.as_object_mut()) {
                    p.remove("sessionId");
                }
            }
            assert_eq!(event(without).as_sign_in().unwrap().session_id, None);
        }
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
    fn a_time_hidden_deeper_in_the_record_is_taken() {
        let tenant = "4d3bac44-0230-4732-9e70-cc00736f0a97";
        let e = event(json!({"id": "a", "userId": "u", "status": {"errorCode": 0},
            "createdDateTime": null, "resourceTenantId": tenant,
            "authenticationDetails": [
                {"authenticationStepDateTime": "2021-01-01T00:00:09Z", "succeeded": true},
                {"authenticationStepDateTime": "2021-01-01T00:00:05Z", "succeeded": true},
                {"authenticationStepDateTime": null}]}));
        assert_eq!(e.meta.time_source, TimeSource::Nested);
        assert_eq!(e.meta.time.to_rfc3339(), "2021-01-01T00:00:05+00:00");
        let e = event(
            json!({"id": "b", "activityDisplayName": "Add member to role",
            "tenantId": tenant, "properties": {"activityDateTime": "2021-01-02T00:00:00Z"}}),
        );
        assert_eq!(e.meta.time_source, TimeSource::Nested);
        assert_eq!(e.meta.time.to_rfc3339(), "2021-01-02T00:00:00+00:00");
    }

    #[test]
    fn a_record_without_any_time_is_rejected_naming_what_was_looked_for() {
        let err = normalize(
            json!({"id": "a", "userId": "u", "status": {"errorCode": 0}, "createdDateTime": null,
                   "resourceTenantId": "4d3bac44-0230-4732-9e70-cc00736f0a97",
                   "authenticationDetails": [{"succeeded": true}]})
            .as_object()
            .unwrap(),
            &ctx(),
        )
        .unwrap_err();
        assert_eq!(err.field, "createdDateTime");
        assert!(err.reason.starts_with(NO_EVENT_TIME), "{err}");
        assert!(
            err.reason
                .contains("authenticationDetails[].authenticationStepDateTime"),
            "{err}"
        );
    }
}
