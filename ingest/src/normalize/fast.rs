//! The fast path of normalisation: Event Hub and Graph sign-ins and directory audits (nearly every
//! record of a real export) decoded typed and borrowed ([`super::typed`]) and built into an
//! [`Event`] without an intermediate `serde_json::Value`.
//!
//! What comes in: the text of one record and its [`RecordContext`]. What goes out: the event, or
//! `None` when the record is not one the fast path reads (another kind, Log Analytics, a field in an
//! unexpected form, any error): the caller then normalises it the tolerant way, which also words
//! every error. Each function here mirrors its namesake in `normalize.rs` (dispatch, tenant, time)
//! or `kinds.rs` (the kind readers) rule for rule (same fallbacks, trimming, lower-casing and enum
//! parsing); `reader::tests` replays every fixture and a few thousand mutated records both ways and
//! requires identical items.

use std::borrow::Cow;

use chrono::{DateTime, Utc};

use super::event_hub_kind;
use super::record::RecordContext;
use super::typed::{self, ListField, ObjField, Rec, Scalar};
use crate::model::*;
use crate::time::parse_timestamp;
use crate::value::{is_guid, tenant_from_resource_id, unwrap_json_string};

/// The fast path declines: the tolerant reader takes the record.
struct Decline;

type Fast<T> = Result<T, Decline>;

/// `value_to_string`, borrowing where it can: trimmed non-empty text, numbers and booleans as text.
fn scalar_text<'s>(v: &'s Scalar<'_>) -> Option<Cow<'s, str>> {
    match v {
        Scalar::Str(s) => {
            let t = s.trim();
            (!t.is_empty()).then_some(Cow::Borrowed(t))
        }
        Scalar::U64(n) => Some(Cow::Owned(n.to_string())),
        Scalar::I64(n) => Some(Cow::Owned(n.to_string())),
        Scalar::F64(f) => serde_json::Number::from_f64(*f).map(|n| Cow::Owned(n.to_string())),
        Scalar::Bool(b) => Some(Cow::Borrowed(if *b { "true" } else { "false" })),
        Scalar::Null | Scalar::Container => None,
    }
}

fn text<'s>(v: &'s Option<Scalar<'_>>) -> Option<Cow<'s, str>> {
    v.as_ref().and_then(scalar_text)
}

fn owned(v: &Option<Scalar<'_>>) -> Option<Text> {
    text(v).map(Text::from)
}

/// [`owned`] for fields of few distinct values (ids and names of tenants, users, apps and devices;
/// user agents; reasons): the text is shared between events ([`Text::shared`]).
fn shared(v: &Option<Scalar<'_>>) -> Option<Text> {
    text(v).map(|s| Text::shared(&s))
}

fn lower(v: &Option<Scalar<'_>>) -> Option<Text> {
    text(v).map(|s| Text::shared_lowercase(&s))
}

/// `value_to_i64`.
fn int(v: &Option<Scalar<'_>>) -> Option<i64> {
    match v.as_ref()? {
        Scalar::U64(n) => Some(i64::try_from(*n).unwrap_or(*n as f64 as i64)),
        Scalar::I64(n) => Some(*n),
        Scalar::F64(f) => Some(*f as i64),
        Scalar::Str(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// `Obj::f64`.
fn float(v: &Option<Scalar<'_>>) -> Option<f64> {
    match v.as_ref()? {
        Scalar::U64(n) => Some(*n as f64),
        Scalar::I64(n) => Some(*n as f64),
        Scalar::F64(f) => Some(*f),
        Scalar::Str(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// `Obj::bool`.
fn boolean(v: &Option<Scalar<'_>>) -> Option<bool> {
    match v.as_ref()? {
        Scalar::Bool(b) => Some(*b),
        Scalar::U64(n) => i64::try_from(*n).ok().map(|i| i != 0),
        Scalar::I64(n) => Some(*n != 0),
        Scalar::Str(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" => Some(true),
            "false" | "0" | "no" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

/// Text the tolerant reader would decode as JSON (Log Analytics dynamic columns): declined.
fn json_text(s: &str) -> bool {
    let t = s.trim_start();
    t.starts_with('{') || t.starts_with('[')
}

/// `Obj::object`.
fn object<'r, T>(v: &'r Option<ObjField<'_, T>>) -> Fast<Option<&'r T>> {
    match v {
        Some(ObjField::Obj(t)) => Ok(Some(t)),
        Some(ObjField::Other(Scalar::Str(s))) if json_text(s) => Err(Decline),
        _ => Ok(None),
    }
}

/// `Obj::array`, for arrays of objects.
fn array<'r, T>(v: &'r Option<ListField<'_, T>>) -> Fast<&'r [T]> {
    match v {
        Some(ListField::Items(items)) => Ok(items),
        Some(ListField::One(Scalar::Str(s))) if json_text(s) => Err(Decline),
        _ => Ok(&[]),
    }
}

/// `Obj::str_list`.
fn str_list(v: &Option<ListField<'_, Scalar<'_>>>) -> Fast<Vec<Text>> {
    Ok(match v {
        None => Vec::new(),
        Some(ListField::Items(items)) => items
            .iter()
            .filter_map(|s| scalar_text(s).map(|s| Text::shared(&s)))
            .collect(),
        Some(ListField::One(Scalar::Str(s))) if json_text(s) => return Err(Decline),
        Some(ListField::One(one)) => scalar_text(one)
            .map(|s| Text::shared(&s))
            .into_iter()
            .collect(),
    })
}

/// `Obj::has`: the key is there, whatever its value.
fn has<T>(v: &Option<T>) -> bool {
    v.is_some()
}

fn first_guid<const N: usize>(candidates: [Option<Cow<'_, str>>; N]) -> Option<Text> {
    candidates
        .into_iter()
        .flatten()
        .find(|c| is_guid(c))
        .map(|c| Text::shared_lowercase(&c))
}

/// Normalises one record if the fast path reads it; `None` hands it to the tolerant reader.
pub(super) fn event(text: &str, ctx: &RecordContext<'_>) -> Option<Box<Event>> {
    if ctx.csv {
        return None;
    }
    let rec: Rec<'_> = serde_json::from_str(text).ok()?;
    let result = match &rec.properties {
        Some(ObjField::Obj(p)) if matches!(rec.category, Some(Scalar::Str(_))) => {
            event_hub(&rec, p, ctx)
        }
        _ => graph(&rec, ctx),
    };
    result.ok()
}

fn event_hub(o: &Rec<'_>, p: &Rec<'_>, ctx: &RecordContext<'_>) -> Fast<Box<Event>> {
    let category = text(&o.category).unwrap_or_default();
    let (kind, event_type) = event_hub_kind(&category).ok_or(Decline)?;
    let tenant = first_guid([
        text(&o.tenant_id),
        text(&p.tenant_id),
        text(&o.resource_id)
            .and_then(|r| tenant_from_resource_id(&r))
            .map(Cow::Owned),
        text(&p.resource_tenant_id),
    ])
    .or_else(|| ctx.tenant_hint.map(Text::shared))
    .ok_or(Decline)?;
    let envelope_time = text(&o.time);
    build(
        kind,
        p,
        Some(o),
        Shape::EventHub,
        event_type,
        tenant,
        envelope_time,
    )
}

/// `infer_kind` for the kinds the fast path reads (records with the keys of the others decline).
fn infer_kind(o: &Rec<'_>) -> Option<Kind> {
    if has(&o.activity_display_name) || has(&o.activity_date_time) {
        return Some(Kind::Audit);
    }
    if has(&o.created_date_time) && (has(&o.user_id) || has(&o.app_id) || has(&o.status)) {
        return Some(Kind::SignIn);
    }
    None
}

fn graph(o: &Rec<'_>, ctx: &RecordContext<'_>) -> Fast<Box<Event>> {
    let kind = ctx.graph_hint.or_else(|| infer_kind(o)).ok_or(Decline)?;
    let event_type = str_list(&o.sign_in_event_types)?
        .first()
        .map(|t| SignInEventType::parse(t));
    let tenant = first_guid([text(&o.tenant_id), text(&o.resource_tenant_id)])
        .or_else(|| ctx.tenant_hint.map(Text::shared))
        .ok_or(Decline)?;
    build(kind, o, None, Shape::Graph, event_type, tenant, None)
}

#[allow(clippy::too_many_arguments)]
fn build(
    kind: Kind,
    p: &Rec<'_>,
    outer: Option<&Rec<'_>>,
    shape: Shape,
    event_type: Option<SignInEventType>,
    tenant_id: Text,
    envelope_time: Option<Cow<'_, str>>,
) -> Fast<Box<Event>> {
    let (own_time, body) = match kind {
        Kind::SignIn => (
            &p.created_date_time,
            Body::SignIn(Box::new(sign_in(p, outer, event_type)?)),
        ),
        Kind::Audit => (
            &p.activity_date_time,
            Body::Audit(Box::new(audit(p, outer)?)),
        ),
        _ => return Err(Decline),
    };
    let id = owned(&p.id).ok_or(Decline)?;
    let (time, time_source) = event_time(own_time, envelope_time.as_deref())?;
    let meta = Meta {
        id,
        tenant_id,
        time,
        time_source,
        shape,
    };
    Ok(Box::new(Event { meta, body }))
}

/// `event_time` for sign-ins and audits from their own field or the envelope; anything else (an
/// unreadable time, or none there, when the tolerant reader looks deeper or rejects the record) is
/// left to the tolerant reader.
fn event_time(
    own: &Option<Scalar<'_>>,
    envelope: Option<&str>,
) -> Fast<(DateTime<Utc>, TimeSource)> {
    if let Some(t) = text(own).and_then(|raw| parse_timestamp(&raw)) {
        return Ok((t, TimeSource::Record));
    }
    if let Some(t) = envelope.and_then(parse_timestamp) {
        return Ok((t, TimeSource::Envelope));
    }
    Err(Decline)
}

fn sign_in<'a>(
    p: &Rec<'a>,
    outer: Option<&Rec<'a>>,
    event_type: Option<SignInEventType>,
) -> Fast<SignIn> {
    let status = object(&p.status)?;
    let outer_text =
        |f: for<'r> fn(&'r Rec<'a>) -> &'r Option<Scalar<'a>>| outer.and_then(|o| owned(f(o)));
    let error_code = status
        .and_then(|s| int(&s.error_code))
        .or_else(|| int(&p.result_type))
        .or_else(|| outer.and_then(|o| int(&o.result_type)));
    let failure_reason = status
        .and_then(|s| shared(&s.failure_reason))
        .or_else(|| shared(&p.result_description))
        .or_else(|| outer_text(|o| &o.result_description));
    let additional_details = status.and_then(|s| shared(&s.additional_details));
    let place = match object(&p.location_details)? {
        Some(place) => Some(place),
        None => object(&p.location)?,
    };
    let location = match place {
        Some(place) => location(place)?,
        None => Location::default(),
    };
    let mut risk_event_types = str_list(&p.risk_event_types_v2)?;
    if risk_event_types.is_empty() {
        risk_event_types = str_list(&p.risk_event_types)?;
    }
    Ok(SignIn {
        event_type,
        is_interactive: boolean(&p.is_interactive),
        user_id: shared(&p.user_id),
        user_display_name: shared(&p.user_display_name),
        user_principal_name: shared(&p.user_principal_name),
        user_type: text(&p.user_type).map(|s| UserType::parse(&s)),
        app_id: shared(&p.app_id),
        app_display_name: shared(&p.app_display_name),
        service_principal_id: shared(&p.service_principal_id),
        service_principal_name: shared(&p.service_principal_name),
        resource_id: shared(&p.resource_id),
        resource_display_name: shared(&p.resource_display_name),
        ip_address: owned(&p.ip_address).or_else(|| outer_text(|o| &o.caller_ip_address)),
        autonomous_system_number: int(&p.autonomous_system_number)
            .and_then(|n| u32::try_from(n).ok()),
        client_app_used: shared(&p.client_app_used),
        user_agent: shared(&p.user_agent),
        correlation_id: owned(&p.correlation_id).or_else(|| outer_text(|o| &o.correlation_id)),
        original_request_id: owned(&p.original_request_id),
        error_code,
        failure_reason,
        additional_details,
        conditional_access_status: text(&p.conditional_access_status)
            .map(|s| ConditionalAccessStatus::parse(&s)),
        authentication_requirement: text(&p.authentication_requirement)
            .map(|s| AuthenticationRequirement::parse(&s)),
        authentication_protocol: text(&p.authentication_protocol)
            .map(|s| AuthenticationProtocol::parse(&s)),
        original_transfer_method: shared(&p.original_transfer_method),
        session_id: owned(&p.session_id),
        authentication_details: array(&p.authentication_details)?
            .iter()
            .map(authentication_step)
            .collect(),
        authentication_methods_used: str_list(&p.authentication_methods_used)?,
        risk_level_aggregated: text(&p.risk_level_aggregated).map(|s| RiskLevel::parse(&s)),
        risk_level_during_sign_in: text(&p.risk_level_during_sign_in).map(|s| RiskLevel::parse(&s)),
        risk_state: text(&p.risk_state).map(|s| RiskState::parse(&s)),
        risk_detail: shared(&p.risk_detail),
        risk_event_types,
        cross_tenant_access_type: text(&p.cross_tenant_access_type)
            .map(|s| CrossTenantAccessType::parse(&s)),
        home_tenant_id: lower(&p.home_tenant_id),
        home_tenant_name: shared(&p.home_tenant_name),
        resource_tenant_id: lower(&p.resource_tenant_id),
        incoming_token_type: shared(&p.incoming_token_type),
        device: match object(&p.device_detail)? {
            Some(d) => device(d),
            None => DeviceDetail::default(),
        },
        location,
    })
}

fn authentication_step(o: &typed::AuthStep<'_>) -> AuthenticationStep {
    AuthenticationStep {
        time: text(&o.date_time).and_then(|s| parse_timestamp(&s)),
        method: shared(&o.method),
        method_detail: shared(&o.method_detail),
        succeeded: boolean(&o.succeeded),
        result_detail: shared(&o.result_detail),
        requirement: shared(&o.requirement),
    }
}

fn device(o: &typed::Device<'_>) -> DeviceDetail {
    DeviceDetail {
        device_id: shared(&o.device_id),
        display_name: shared(&o.display_name),
        operating_system: shared(&o.operating_system),
        browser: shared(&o.browser),
        is_compliant: boolean(&o.is_compliant),
        is_managed: boolean(&o.is_managed),
        trust_type: shared(&o.trust_type),
    }
}

fn location(o: &typed::Place<'_>) -> Fast<Location> {
    let geo = object(&o.geo_coordinates)?;
    Ok(Location {
        city: shared(&o.city),
        state: shared(&o.state),
        country_or_region: shared(&o.country_or_region),
        latitude: geo.and_then(|g| float(&g.latitude)),
        longitude: geo.and_then(|g| float(&g.longitude)),
    })
}

fn audit(p: &Rec<'_>, outer: Option<&Rec<'_>>) -> Fast<Audit> {
    let initiated = object(&p.initiated_by)?;
    let user = match initiated {
        Some(i) => object(&i.user)?,
        None => None,
    };
    let user = match user {
        Some(u) => Some(AuditUser {
            id: shared(&u.id),
            display_name: shared(&u.display_name),
            user_principal_name: shared(&u.user_principal_name),
            ip_address: owned(&u.ip_address),
            user_type: text(&u.user_type).map(|s| UserType::parse(&s)),
            home_tenant_id: lower(&u.home_tenant_id),
            home_tenant_name: shared(&u.home_tenant_name),
            roles: str_list(&u.roles)?,
        }),
        None => None,
    };
    let app = match initiated {
        Some(i) => object(&i.app)?.map(|a| AuditApp {
            app_id: shared(&a.app_id),
            display_name: shared(&a.display_name),
            service_principal_id: shared(&a.service_principal_id),
            service_principal_name: shared(&a.service_principal_name),
        }),
        None => None,
    };
    let mut target_resources = Vec::new();
    for t in array(&p.target_resources)? {
        target_resources.push(target_resource(t)?);
    }
    Ok(Audit {
        activity_display_name: shared(&p.activity_display_name)
            .or_else(|| shared(&p.operation_name))
            .or_else(|| outer.and_then(|o| shared(&o.operation_name)))
            .unwrap_or_default(),
        category: shared(&p.category),
        operation_type: shared(&p.operation_type).or_else(|| shared(&p.aad_operation_type)),
        result: text(&p.result).map(|s| AuditResult::parse(&s)),
        result_reason: shared(&p.result_reason),
        logged_by_service: shared(&p.logged_by_service),
        correlation_id: owned(&p.correlation_id)
            .or_else(|| outer.and_then(|o| owned(&o.correlation_id))),
        initiated_by: Initiator { user, app },
        target_resources,
        additional_details: array(&p.additional_details)?
            .iter()
            .filter_map(|kv| {
                Some(KeyValue {
                    key: shared(&kv.key)?,
                    value: owned(&kv.value),
                })
            })
            .collect(),
    })
}

fn target_resource(o: &typed::Target<'_>) -> Fast<TargetResource> {
    Ok(TargetResource {
        id: shared(&o.id),
        display_name: shared(&o.display_name),
        resource_type: shared(&o.resource_type),
        user_principal_name: shared(&o.user_principal_name),
        group_type: shared(&o.group_type),
        modified_properties: array(&o.modified_properties)?
            .iter()
            .map(|mp| ModifiedProperty {
                display_name: shared(&mp.display_name),
                old_value: text(&mp.old_value)
                    .and_then(|s| unwrap_json_string(&s))
                    .map(Text::from),
                new_value: text(&mp.new_value)
                    .and_then(|s| unwrap_json_string(&s))
                    .map(Text::from),
            })
            .collect(),
    })
}
