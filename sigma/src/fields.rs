//! Field presentation: how a Sigma rule's field names read our event model.
//!
//! Events are presented in the Event Hub (diagnostic settings) shape: root fields (`operationName`,
//! `category`, `resultType`, `resultDescription`, `callerIpAddress`, `location`, ...) plus
//! `properties.*` in Graph camelCase. Those names are *native*. Log Analytics columns
//! (`ResultType`, `AuthenticationRequirement`, `DeviceDetail.isCompliant`, `TargetResources`, ...)
//! and flat Graph names (`userAgent`, `riskEventType`, ...) are *aliases* onto the same fields.
//! Names are compared case-insensitively; a name is resolved once, when the rule is loaded, to a
//! getter over the typed event, so nothing is rendered to JSON per event.
//!
//! A getter hands each value of the field to a predicate and says whether any value satisfied it
//! (arrays are matched element-wise). A field the event does not carry is presented once as
//! [`V::Null`].

use entrawatch_ingest::model::{
    Audit, AuditResult, Initiator, KeyValue, Location, ModifiedProperty, RiskDetection, SignIn,
    SignInEventType, TargetResource,
};
use entrawatch_ingest::{Body, Event};

/// One presented value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum V<'a> {
    Null,
    Str(&'a str),
    Int(i64),
    Bool(bool),
    Float(f64),
}

/// Visits the values of a field; true when the predicate accepted one.
pub type Getter = fn(&Event, &mut dyn FnMut(V<'_>) -> bool) -> bool;

/// Which log a rule reads (its `logsource`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Log {
    SignIn,
    Audit,
    Risk,
}

impl Log {
    pub fn as_str(self) -> &'static str {
        match self {
            Log::SignIn => "azure/signinlogs",
            Log::Audit => "azure/auditlogs",
            Log::Risk => "azure/riskdetection",
        }
    }
}

/// Whether a name is the Event Hub name of the field or an alias of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Native,
    Aliased,
}

/// Visits the values of a field found by a key the rule names (an `additionalDetails` entry, a
/// modified property).
pub type KeyedGetter = fn(&Event, &str, &mut dyn FnMut(V<'_>) -> bool) -> bool;

/// A resolved field.
#[derive(Debug, Clone)]
pub struct Field {
    /// The Event Hub name it stands for (shown in reports and evidence).
    pub canonical: &'static str,
    pub origin: Origin,
    get: Getter,
    /// For a keyed field: the getter and the key.
    keyed: Option<(KeyedGetter, Box<str>)>,
}

impl Field {
    /// Hands each value of the field to `p`; true when it accepted one.
    pub fn visit(&self, event: &Event, p: &mut dyn FnMut(V<'_>) -> bool) -> bool {
        match &self.keyed {
            Some((get, key)) => get(event, key, p),
            None => (self.get)(event, p),
        }
    }

    /// The name shown in evidence: the canonical name, with the key of a keyed field.
    pub fn shown(&self) -> String {
        match &self.keyed {
            Some((_, key)) => format!("{}[{key}]", self.canonical),
            None => self.canonical.to_owned(),
        }
    }
}

/// `additionalDetails.<key>`: the values of the audit's additional details with that key
/// (case-insensitive).
fn additional_detail(e: &Event, key: &str, p: &mut dyn FnMut(V<'_>) -> bool) -> bool {
    each(
        (au(e).into_iter().flat_map(|a| &a.additional_details))
            .filter(|kv| kv.key.eq_ignore_ascii_case(key))
            .map(|kv| opt(kv.value.as_deref())),
        p,
    )
}

/// A modified property by name (`ConsentContext.IsAdminConsent`): its new values.
fn modified_by_name(e: &Event, name: &str, p: &mut dyn FnMut(V<'_>) -> bool) -> bool {
    each(
        modified(e)
            .filter(|m| {
                m.display_name
                    .as_deref()
                    .is_some_and(|n| n.eq_ignore_ascii_case(name))
            })
            .map(|m| opt(m.new_value.as_deref())),
        p,
    )
}

/// Audit names that read a modified property of that name (as `Consent to application` records
/// carry them).
const MODIFIED_PROPERTY_NAMES: &[&str] = &[
    "consentcontext.isadminconsent",
    "consentcontext.isapponly",
    "consentcontext.onbehalfofall",
];

fn null_getter(_: &Event, p: &mut dyn FnMut(V<'_>) -> bool) -> bool {
    p(V::Null)
}

fn opt<'e>(v: Option<&'e str>) -> V<'e> {
    v.map_or(V::Null, V::Str)
}

fn si(e: &Event) -> Option<&SignIn> {
    match &e.body {
        Body::SignIn(s) => Some(s),
        _ => None,
    }
}

fn au(e: &Event) -> Option<&Audit> {
    match &e.body {
        Body::Audit(a) => Some(a),
        _ => None,
    }
}

fn rd(e: &Event) -> Option<&RiskDetection> {
    match &e.body {
        Body::RiskDetection(r) => Some(r),
        _ => None,
    }
}

/// Presents each value of an iterator (or `Null` when it is empty).
fn each<'e, I: Iterator<Item = V<'e>>>(values: I, p: &mut dyn FnMut(V<'_>) -> bool) -> bool {
    let mut seen = false;
    for v in values {
        seen = true;
        if p(v) {
            return true;
        }
    }
    !seen && p(V::Null)
}

macro_rules! si_str {
    ($($f:ident).+) => {
        |e, p| p(si(e).map_or(V::Null, |s| opt(s.$($f).+.as_deref())))
    };
}
macro_rules! si_enum {
    ($f:ident) => {
        |e, p| {
            p(si(e)
                .and_then(|s| s.$f.as_ref())
                .map_or(V::Null, |v| V::Str(v.as_str())))
        }
    };
}
macro_rules! si_bool {
    ($($f:ident).+) => {
        |e, p| p(si(e).and_then(|s| s.$($f).+).map_or(V::Null, V::Bool))
    };
}
macro_rules! au_str {
    ($($f:ident).+) => {
        |e, p| p(au(e).map_or(V::Null, |a| opt(a.$($f).+.as_deref())))
    };
}
macro_rules! rd_str {
    ($($f:ident).+) => {
        |e, p| p(rd(e).map_or(V::Null, |r| opt(r.$($f).+.as_deref())))
    };
}
macro_rules! rd_enum {
    ($f:ident) => {
        |e, p| {
            p(rd(e)
                .and_then(|r| r.$f.as_ref())
                .map_or(V::Null, |v| V::Str(v.as_str())))
        }
    };
}

/// The Event Hub `category` of a sign-in (its diagnostic log).
fn sign_in_category(s: &SignIn) -> &'static str {
    match s.event_type {
        Some(SignInEventType::NonInteractiveUser) => "NonInteractiveUserSignInLogs",
        Some(SignInEventType::ServicePrincipal) => "ServicePrincipalSignInLogs",
        Some(SignInEventType::ManagedIdentity) => "ManagedIdentitySignInLogs",
        Some(_) => "SignInLogs",
        None if s.is_interactive() => "SignInLogs",
        None if s.is_user() => "NonInteractiveUserSignInLogs",
        None => "ServicePrincipalSignInLogs",
    }
}

fn location<'e>(l: &'e Location, which: &str) -> V<'e> {
    match which {
        "city" => opt(l.city.as_deref()),
        "state" => opt(l.state.as_deref()),
        _ => opt(l.country_or_region.as_deref()),
    }
}

fn modified_strings<'e>(m: &'e ModifiedProperty) -> impl Iterator<Item = V<'e>> {
    [&m.display_name, &m.old_value, &m.new_value]
        .into_iter()
        .filter_map(|v| v.as_deref().map(V::Str))
}

fn target_strings<'e>(t: &'e TargetResource) -> impl Iterator<Item = V<'e>> {
    [
        &t.id,
        &t.display_name,
        &t.resource_type,
        &t.user_principal_name,
        &t.group_type,
    ]
    .into_iter()
    .filter_map(|v| v.as_deref().map(V::Str))
    .chain(t.modified_properties.iter().flat_map(modified_strings))
}

fn initiator_strings<'e>(i: &'e Initiator) -> impl Iterator<Item = V<'e>> {
    let user = i.user.iter().flat_map(|u| {
        [
            &u.id,
            &u.display_name,
            &u.user_principal_name,
            &u.ip_address,
        ]
        .into_iter()
        .filter_map(|v| v.as_deref().map(V::Str))
    });
    let app = i.app.iter().flat_map(|a| {
        [
            &a.app_id,
            &a.display_name,
            &a.service_principal_id,
            &a.service_principal_name,
        ]
        .into_iter()
        .filter_map(|v| v.as_deref().map(V::Str))
    });
    user.chain(app)
}

fn key_value_strings(kv: &KeyValue) -> impl Iterator<Item = V<'_>> {
    std::iter::once(V::Str(kv.key.as_str())).chain(kv.value.as_deref().map(V::Str))
}

fn targets(e: &Event) -> impl Iterator<Item = &TargetResource> {
    au(e).into_iter().flat_map(|a| &a.target_resources)
}

fn modified(e: &Event) -> impl Iterator<Item = &ModifiedProperty> {
    targets(e).flat_map(|t| &t.modified_properties)
}

/// A modified property as it reads in the record's JSON (`"displayName":"UserType","oldValue":
/// "[\"Guest\"]","newValue":"[\"Member\"]"`): what rules that search the whole audit message
/// for a change look for. Built only when a rule gets that far.
fn modified_fragment(m: &ModifiedProperty) -> String {
    let json = |v: &Option<entrawatch_ingest::Text>| {
        serde_json::to_string(v.as_deref().unwrap_or_default()).unwrap_or_default()
    };
    format!(
        "\"displayName\":{},\"oldValue\":{},\"newValue\":{}",
        json(&m.display_name),
        json(&m.old_value),
        json(&m.new_value)
    )
}

fn audit_result(a: &Audit) -> V<'_> {
    a.result.as_ref().map_or(V::Null, |r| V::Str(r.as_str()))
}

/// The sign-in fields: (name, origin, getter). Names are lower case.
const SIGN_IN: &[(&str, &str, Origin, Getter)] = &[
    // Event Hub root fields.
    ("operationname", "operationName", Origin::Native, |e, p| {
        p(si(e).map_or(V::Null, |_| V::Str("Sign-in activity")))
    }),
    ("category", "category", Origin::Native, |e, p| {
        p(si(e).map_or(V::Null, |s| V::Str(sign_in_category(s))))
    }),
    ("resulttype", "resultType", Origin::Native, |e, p| {
        p(si(e).and_then(|s| s.error_code).map_or(V::Null, V::Int))
    }),
    (
        "resultdescription",
        "resultDescription",
        Origin::Native,
        si_str!(failure_reason),
    ),
    (
        "calleripaddress",
        "callerIpAddress",
        Origin::Native,
        si_str!(ip_address),
    ),
    (
        "correlationid",
        "correlationId",
        Origin::Native,
        si_str!(correlation_id),
    ),
    (
        "identity",
        "identity",
        Origin::Native,
        si_str!(user_display_name),
    ),
    (
        "location",
        "location",
        Origin::Native,
        si_str!(location.country_or_region),
    ),
    ("tenantid", "tenantId", Origin::Native, |e, p| {
        p(V::Str(e.meta.tenant_id.as_str()))
    }),
    // properties.*
    ("properties.id", "properties.id", Origin::Native, |e, p| {
        p(V::Str(e.meta.id.as_str()))
    }),
    (
        "properties.userdisplayname",
        "properties.userDisplayName",
        Origin::Native,
        si_str!(user_display_name),
    ),
    (
        "properties.userprincipalname",
        "properties.userPrincipalName",
        Origin::Native,
        si_str!(user_principal_name),
    ),
    (
        "properties.userid",
        "properties.userId",
        Origin::Native,
        si_str!(user_id),
    ),
    (
        "properties.usertype",
        "properties.userType",
        Origin::Native,
        si_enum!(user_type),
    ),
    (
        "properties.appid",
        "properties.appId",
        Origin::Native,
        si_str!(app_id),
    ),
    (
        "properties.appdisplayname",
        "properties.appDisplayName",
        Origin::Native,
        si_str!(app_display_name),
    ),
    (
        "properties.ipaddress",
        "properties.ipAddress",
        Origin::Native,
        si_str!(ip_address),
    ),
    (
        "properties.autonomoussystemnumber",
        "properties.autonomousSystemNumber",
        Origin::Native,
        |e, p| {
            p(si(e)
                .and_then(|s| s.autonomous_system_number)
                .map_or(V::Null, |n| V::Int(i64::from(n))))
        },
    ),
    (
        "properties.clientappused",
        "properties.clientAppUsed",
        Origin::Native,
        si_str!(client_app_used),
    ),
    (
        "properties.useragent",
        "properties.userAgent",
        Origin::Native,
        si_str!(user_agent),
    ),
    (
        "properties.correlationid",
        "properties.correlationId",
        Origin::Native,
        si_str!(correlation_id),
    ),
    (
        "properties.originalrequestid",
        "properties.originalRequestId",
        Origin::Native,
        si_str!(original_request_id),
    ),
    (
        "properties.conditionalaccessstatus",
        "properties.conditionalAccessStatus",
        Origin::Native,
        si_enum!(conditional_access_status),
    ),
    (
        "properties.isinteractive",
        "properties.isInteractive",
        Origin::Native,
        |e, p| p(si(e).map_or(V::Null, |s| V::Bool(s.is_interactive()))),
    ),
    (
        "properties.authenticationrequirement",
        "properties.authenticationRequirement",
        Origin::Native,
        si_enum!(authentication_requirement),
    ),
    (
        "properties.authenticationprotocol",
        "properties.authenticationProtocol",
        Origin::Native,
        si_enum!(authentication_protocol),
    ),
    (
        "properties.originaltransfermethod",
        "properties.originalTransferMethod",
        Origin::Native,
        si_str!(original_transfer_method),
    ),
    (
        "properties.resourcedisplayname",
        "properties.resourceDisplayName",
        Origin::Native,
        si_str!(resource_display_name),
    ),
    (
        "properties.resourceid",
        "properties.resourceId",
        Origin::Native,
        si_str!(resource_id),
    ),
    (
        "properties.resourcetenantid",
        "properties.resourceTenantId",
        Origin::Native,
        si_str!(resource_tenant_id),
    ),
    (
        "properties.hometenantid",
        "properties.homeTenantId",
        Origin::Native,
        si_str!(home_tenant_id),
    ),
    (
        "properties.hometenantname",
        "properties.homeTenantName",
        Origin::Native,
        si_str!(home_tenant_name),
    ),
    (
        "properties.crosstenantaccesstype",
        "properties.crossTenantAccessType",
        Origin::Native,
        si_enum!(cross_tenant_access_type),
    ),
    (
        "properties.serviceprincipalid",
        "properties.servicePrincipalId",
        Origin::Native,
        si_str!(service_principal_id),
    ),
    (
        "properties.serviceprincipalname",
        "properties.servicePrincipalName",
        Origin::Native,
        si_str!(service_principal_name),
    ),
    (
        "properties.sessionid",
        "properties.sessionId",
        Origin::Native,
        si_str!(session_id),
    ),
    (
        "properties.incomingtokentype",
        "properties.incomingTokenType",
        Origin::Native,
        si_str!(incoming_token_type),
    ),
    (
        "properties.riskdetail",
        "properties.riskDetail",
        Origin::Native,
        si_str!(risk_detail),
    ),
    (
        "properties.risklevelaggregated",
        "properties.riskLevelAggregated",
        Origin::Native,
        si_enum!(risk_level_aggregated),
    ),
    (
        "properties.risklevelduringsignin",
        "properties.riskLevelDuringSignIn",
        Origin::Native,
        si_enum!(risk_level_during_sign_in),
    ),
    (
        "properties.riskstate",
        "properties.riskState",
        Origin::Native,
        si_enum!(risk_state),
    ),
    (
        "properties.riskeventtypes",
        "properties.riskEventTypes",
        Origin::Native,
        |e, p| {
            each(
                si(e)
                    .into_iter()
                    .flat_map(|s| &s.risk_event_types)
                    .map(|t| V::Str(t.as_str())),
                p,
            )
        },
    ),
    (
        "properties.riskeventtypes_v2",
        "properties.riskEventTypes_v2",
        Origin::Native,
        |e, p| {
            each(
                si(e)
                    .into_iter()
                    .flat_map(|s| &s.risk_event_types)
                    .map(|t| V::Str(t.as_str())),
                p,
            )
        },
    ),
    (
        "properties.status.errorcode",
        "properties.status.errorCode",
        Origin::Native,
        |e, p| p(si(e).and_then(|s| s.error_code).map_or(V::Null, V::Int)),
    ),
    (
        "properties.status.failurereason",
        "properties.status.failureReason",
        Origin::Native,
        si_str!(failure_reason),
    ),
    (
        "properties.status.additionaldetails",
        "properties.status.additionalDetails",
        Origin::Native,
        si_str!(additional_details),
    ),
    (
        "properties.devicedetail.deviceid",
        "properties.deviceDetail.deviceId",
        Origin::Native,
        si_str!(device.device_id),
    ),
    (
        "properties.devicedetail.displayname",
        "properties.deviceDetail.displayName",
        Origin::Native,
        si_str!(device.display_name),
    ),
    (
        "properties.devicedetail.operatingsystem",
        "properties.deviceDetail.operatingSystem",
        Origin::Native,
        si_str!(device.operating_system),
    ),
    (
        "properties.devicedetail.browser",
        "properties.deviceDetail.browser",
        Origin::Native,
        si_str!(device.browser),
    ),
    (
        "properties.devicedetail.iscompliant",
        "properties.deviceDetail.isCompliant",
        Origin::Native,
        si_bool!(device.is_compliant),
    ),
    (
        "properties.devicedetail.ismanaged",
        "properties.deviceDetail.isManaged",
        Origin::Native,
        si_bool!(device.is_managed),
    ),
    (
        "properties.devicedetail.trusttype",
        "properties.deviceDetail.trustType",
        Origin::Native,
        si_str!(device.trust_type),
    ),
    (
        "properties.location.city",
        "properties.location.city",
        Origin::Native,
        |e, p| p(si(e).map_or(V::Null, |s| location(&s.location, "city"))),
    ),
    (
        "properties.location.state",
        "properties.location.state",
        Origin::Native,
        |e, p| p(si(e).map_or(V::Null, |s| location(&s.location, "state"))),
    ),
    (
        "properties.location.countryorregion",
        "properties.location.countryOrRegion",
        Origin::Native,
        si_str!(location.country_or_region),
    ),
    (
        "properties.authenticationdetails.authenticationmethod",
        "properties.authenticationDetails.authenticationMethod",
        Origin::Native,
        |e, p| {
            each(
                si(e)
                    .into_iter()
                    .flat_map(|s| &s.authentication_details)
                    .map(|d| opt(d.method.as_deref())),
                p,
            )
        },
    ),
    (
        "properties.authenticationdetails.authenticationmethoddetail",
        "properties.authenticationDetails.authenticationMethodDetail",
        Origin::Native,
        |e, p| {
            each(
                si(e)
                    .into_iter()
                    .flat_map(|s| &s.authentication_details)
                    .map(|d| opt(d.method_detail.as_deref())),
                p,
            )
        },
    ),
    (
        "properties.authenticationdetails.succeeded",
        "properties.authenticationDetails.succeeded",
        Origin::Native,
        |e, p| {
            each(
                si(e)
                    .into_iter()
                    .flat_map(|s| &s.authentication_details)
                    .map(|d| d.succeeded.map_or(V::Null, V::Bool)),
                p,
            )
        },
    ),
    (
        "properties.authenticationdetails.authenticationstepresultdetail",
        "properties.authenticationDetails.authenticationStepResultDetail",
        Origin::Native,
        |e, p| {
            each(
                si(e)
                    .into_iter()
                    .flat_map(|s| &s.authentication_details)
                    .map(|d| opt(d.result_detail.as_deref())),
                p,
            )
        },
    ),
    (
        "properties.authenticationdetails.authenticationsteprequirement",
        "properties.authenticationDetails.authenticationStepRequirement",
        Origin::Native,
        |e, p| {
            each(
                si(e)
                    .into_iter()
                    .flat_map(|s| &s.authentication_details)
                    .map(|d| opt(d.requirement.as_deref())),
                p,
            )
        },
    ),
    (
        "properties.authenticationmethodsused",
        "properties.authenticationMethodsUsed",
        Origin::Native,
        |e, p| {
            each(
                si(e)
                    .into_iter()
                    .flat_map(|s| &s.authentication_methods_used)
                    .map(|t| V::Str(t.as_str())),
                p,
            )
        },
    ),
    // Log Analytics `Status` (a dynamic column: errorCode, failureReason, additionalDetails), as
    // rules use it: `Success` / `Failure`, or text of the failure reason and details.
    (
        "status",
        "properties.status",
        Origin::Aliased,
        |e, p| match si(e) {
            None => p(V::Null),
            Some(s) => {
                let outcome = match s.error_code {
                    Some(0) => V::Str("Success"),
                    Some(_) => V::Str("Failure"),
                    None => V::Null,
                };
                p(outcome)
                    || s.failure_reason.as_deref().is_some_and(|r| p(V::Str(r)))
                    || s.additional_details
                        .as_deref()
                        .is_some_and(|r| p(V::Str(r)))
            }
        },
    ),
];

/// The audit fields.
const AUDIT: &[(&str, &str, Origin, Getter)] = &[
    ("operationname", "operationName", Origin::Native, |e, p| {
        p(au(e).map_or(V::Null, |a| V::Str(a.activity_display_name.as_str())))
    }),
    // Root `category` is `AuditLogs` on the wire; the Entra rules mean the audit category by it
    // (`UserManagement`, `Policy`, ...), as the Log Analytics `Category` column holds.
    (
        "category",
        "properties.category",
        Origin::Aliased,
        au_str!(category),
    ),
    (
        "resultdescription",
        "properties.resultReason",
        Origin::Native,
        au_str!(result_reason),
    ),
    (
        "calleripaddress",
        "callerIpAddress",
        Origin::Native,
        |e, p| {
            p(au(e)
                .and_then(|a| a.initiated_by.user.as_ref())
                .map_or(V::Null, |u| opt(u.ip_address.as_deref())))
        },
    ),
    (
        "correlationid",
        "correlationId",
        Origin::Native,
        au_str!(correlation_id),
    ),
    ("tenantid", "tenantId", Origin::Native, |e, p| {
        p(V::Str(e.meta.tenant_id.as_str()))
    }),
    ("properties.id", "properties.id", Origin::Native, |e, p| {
        p(V::Str(e.meta.id.as_str()))
    }),
    (
        "properties.activitydisplayname",
        "properties.activityDisplayName",
        Origin::Native,
        |e, p| p(au(e).map_or(V::Null, |a| V::Str(a.activity_display_name.as_str()))),
    ),
    (
        "properties.category",
        "properties.category",
        Origin::Native,
        au_str!(category),
    ),
    (
        "properties.operationtype",
        "properties.operationType",
        Origin::Native,
        au_str!(operation_type),
    ),
    (
        "properties.result",
        "properties.result",
        Origin::Native,
        |e, p| p(au(e).map_or(V::Null, audit_result)),
    ),
    (
        "properties.resultreason",
        "properties.resultReason",
        Origin::Native,
        au_str!(result_reason),
    ),
    (
        "properties.loggedbyservice",
        "properties.loggedByService",
        Origin::Native,
        au_str!(logged_by_service),
    ),
    (
        "properties.correlationid",
        "properties.correlationId",
        Origin::Native,
        au_str!(correlation_id),
    ),
    (
        "properties.initiatedby",
        "properties.initiatedBy",
        Origin::Native,
        |e, p| {
            each(
                au(e)
                    .into_iter()
                    .flat_map(|a| initiator_strings(&a.initiated_by)),
                p,
            )
        },
    ),
    (
        "properties.initiatedby.user.userprincipalname",
        "properties.initiatedBy.user.userPrincipalName",
        Origin::Native,
        |e, p| {
            p(au(e)
                .and_then(|a| a.initiated_by.user.as_ref())
                .map_or(V::Null, |u| opt(u.user_principal_name.as_deref())))
        },
    ),
    (
        "properties.initiatedby.user.id",
        "properties.initiatedBy.user.id",
        Origin::Native,
        |e, p| {
            p(au(e)
                .and_then(|a| a.initiated_by.user.as_ref())
                .map_or(V::Null, |u| opt(u.id.as_deref())))
        },
    ),
    (
        "properties.initiatedby.user.ipaddress",
        "properties.initiatedBy.user.ipAddress",
        Origin::Native,
        |e, p| {
            p(au(e)
                .and_then(|a| a.initiated_by.user.as_ref())
                .map_or(V::Null, |u| opt(u.ip_address.as_deref())))
        },
    ),
    (
        "properties.initiatedby.app.appid",
        "properties.initiatedBy.app.appId",
        Origin::Native,
        |e, p| {
            p(au(e)
                .and_then(|a| a.initiated_by.app.as_ref())
                .map_or(V::Null, |u| opt(u.app_id.as_deref())))
        },
    ),
    (
        "properties.initiatedby.app.displayname",
        "properties.initiatedBy.app.displayName",
        Origin::Native,
        |e, p| {
            p(au(e)
                .and_then(|a| a.initiated_by.app.as_ref())
                .map_or(V::Null, |u| opt(u.display_name.as_deref())))
        },
    ),
    (
        "properties.targetresources",
        "properties.targetResources",
        Origin::Native,
        |e, p| each(targets(e).flat_map(target_strings), p),
    ),
    (
        "properties.targetresources.id",
        "properties.targetResources.id",
        Origin::Native,
        |e, p| each(targets(e).map(|t| opt(t.id.as_deref())), p),
    ),
    (
        "properties.targetresources.displayname",
        "properties.targetResources.displayName",
        Origin::Native,
        |e, p| each(targets(e).map(|t| opt(t.display_name.as_deref())), p),
    ),
    (
        "properties.targetresources.type",
        "properties.targetResources.type",
        Origin::Native,
        |e, p| each(targets(e).map(|t| opt(t.resource_type.as_deref())), p),
    ),
    (
        "properties.targetresources.userprincipalname",
        "properties.targetResources.userPrincipalName",
        Origin::Native,
        |e, p| each(targets(e).map(|t| opt(t.user_principal_name.as_deref())), p),
    ),
    (
        "properties.targetresources.modifiedproperties",
        "properties.targetResources.modifiedProperties",
        Origin::Native,
        |e, p| each(modified(e).flat_map(modified_strings), p),
    ),
    (
        "properties.targetresources.modifiedproperties.displayname",
        "properties.targetResources.modifiedProperties.displayName",
        Origin::Native,
        |e, p| each(modified(e).map(|m| opt(m.display_name.as_deref())), p),
    ),
    (
        "properties.targetresources.modifiedproperties.oldvalue",
        "properties.targetResources.modifiedProperties.oldValue",
        Origin::Native,
        |e, p| each(modified(e).map(|m| opt(m.old_value.as_deref())), p),
    ),
    (
        "properties.targetresources.modifiedproperties.newvalue",
        "properties.targetResources.modifiedProperties.newValue",
        Origin::Native,
        |e, p| each(modified(e).map(|m| opt(m.new_value.as_deref())), p),
    ),
    (
        "properties.additionaldetails",
        "properties.additionalDetails",
        Origin::Native,
        |e, p| {
            each(
                au(e)
                    .into_iter()
                    .flat_map(|a| &a.additional_details)
                    .flat_map(key_value_strings),
                p,
            )
        },
    ),
    // Log Analytics `Result` / `Status` (older exports): the outcome, and the reason.
    (
        "status",
        "properties.result",
        Origin::Aliased,
        |e, p| match au(e) {
            None => p(V::Null),
            Some(a) => {
                let outcome = match a.result {
                    Some(AuditResult::Success) => V::Str("Success"),
                    Some(AuditResult::Failure) => V::Str("Failure"),
                    _ => audit_result(a),
                };
                p(outcome) || a.result_reason.as_deref().is_some_and(|r| p(V::Str(r)))
            }
        },
    ),
    // `properties.message` (the Azure activity-log name of the operation, which rules also search
    // for a change): the activity's display name, then each modified property as its JSON reads.
    (
        "properties.message",
        "properties.activityDisplayName",
        Origin::Aliased,
        |e, p| match au(e) {
            None => p(V::Null),
            Some(a) => {
                p(V::Str(a.activity_display_name.as_str()))
                    || (a
                        .target_resources
                        .iter()
                        .flat_map(|t| &t.modified_properties))
                    .any(|m| p(V::Str(&modified_fragment(m))))
            }
        },
    ),
    // `ActivityType`: the activity's display name.
    (
        "activitytype",
        "properties.activityDisplayName",
        Origin::Aliased,
        |e, p| p(au(e).map_or(V::Null, |a| V::Str(a.activity_display_name.as_str()))),
    ),
];

/// The risk detection fields.
const RISK: &[(&str, &str, Origin, Getter)] = &[
    ("tenantid", "tenantId", Origin::Native, |e, p| {
        p(V::Str(e.meta.tenant_id.as_str()))
    }),
    ("properties.id", "properties.id", Origin::Native, |e, p| {
        p(V::Str(e.meta.id.as_str()))
    }),
    (
        "properties.riskeventtype",
        "properties.riskEventType",
        Origin::Native,
        rd_str!(risk_event_type),
    ),
    (
        "properties.risklevel",
        "properties.riskLevel",
        Origin::Native,
        rd_enum!(risk_level),
    ),
    (
        "properties.riskstate",
        "properties.riskState",
        Origin::Native,
        rd_enum!(risk_state),
    ),
    (
        "properties.riskdetail",
        "properties.riskDetail",
        Origin::Native,
        rd_str!(risk_detail),
    ),
    (
        "properties.source",
        "properties.source",
        Origin::Native,
        rd_str!(source),
    ),
    (
        "properties.detectiontimingtype",
        "properties.detectionTimingType",
        Origin::Native,
        rd_enum!(detection_timing_type),
    ),
    (
        "properties.activity",
        "properties.activity",
        Origin::Native,
        rd_str!(activity),
    ),
    (
        "properties.ipaddress",
        "properties.ipAddress",
        Origin::Native,
        rd_str!(ip_address),
    ),
    (
        "properties.requestid",
        "properties.requestId",
        Origin::Native,
        rd_str!(request_id),
    ),
    (
        "properties.correlationid",
        "properties.correlationId",
        Origin::Native,
        rd_str!(correlation_id),
    ),
    (
        "properties.userid",
        "properties.userId",
        Origin::Native,
        rd_str!(user_id),
    ),
    (
        "properties.userdisplayname",
        "properties.userDisplayName",
        Origin::Native,
        rd_str!(user_display_name),
    ),
    (
        "properties.userprincipalname",
        "properties.userPrincipalName",
        Origin::Native,
        rd_str!(user_principal_name),
    ),
    (
        "properties.usertype",
        "properties.userType",
        Origin::Native,
        rd_enum!(user_type),
    ),
    (
        "properties.hometenantid",
        "properties.homeTenantId",
        Origin::Native,
        rd_str!(home_tenant_id),
    ),
    (
        "properties.mitretechniqueid",
        "properties.mitreTechniqueId",
        Origin::Native,
        rd_str!(mitre_technique_id),
    ),
    (
        "properties.location.city",
        "properties.location.city",
        Origin::Native,
        |e, p| p(rd(e).map_or(V::Null, |r| location(&r.location, "city"))),
    ),
    (
        "properties.location.countryorregion",
        "properties.location.countryOrRegion",
        Origin::Native,
        rd_str!(location.country_or_region),
    ),
    (
        "properties.additionalinfo",
        "properties.additionalInfo",
        Origin::Native,
        |e, p| {
            each(
                rd(e)
                    .into_iter()
                    .flat_map(|r| &r.additional_info)
                    .flat_map(key_value_strings),
                p,
            )
        },
    ),
    (
        "calleripaddress",
        "callerIpAddress",
        Origin::Native,
        rd_str!(ip_address),
    ),
];

/// Root fields of the Event Hub shape (a flat name that is one of these is not a `properties.*`
/// alias).
const ROOT: &[&str] = &[
    "operationname",
    "category",
    "resulttype",
    "resultdescription",
    "calleripaddress",
    "correlationid",
    "identity",
    "location",
    "tenantid",
    "status",
    "properties.message",
    "activitytype",
];

/// Log Analytics columns whose name is not `properties.` + the Graph name (lower case), mapped to
/// the name they stand for.
const LA_RENAMES: &[(&str, &str)] = &[
    ("targetresources", "properties.targetresources"),
    ("initiatedby", "properties.initiatedby"),
    ("activitydisplayname", "properties.activitydisplayname"),
    ("loggedbyservice", "properties.loggedbyservice"),
    ("result", "properties.result"),
    ("resultreason", "properties.resultreason"),
    ("additionaldetails", "properties.additionaldetails"),
];

fn table(log: Log) -> &'static [(&'static str, &'static str, Origin, Getter)] {
    match log {
        Log::SignIn => SIGN_IN,
        Log::Audit => AUDIT,
        Log::Risk => RISK,
    }
}

/// Resolves a rule's field name for a log, case-insensitively; `None` when the model does not
/// carry it.
pub fn resolve(log: Log, name: &str) -> Option<Field> {
    let lower = name.trim().to_ascii_lowercase();
    let find = |n: &str| {
        table(log)
            .iter()
            .find(|(k, ..)| *k == n)
            .map(|&(_, canonical, origin, get)| Field {
                canonical,
                origin,
                get,
                keyed: None,
            })
    };
    if let Some(f) = find(&lower) {
        return Some(f);
    }
    if log == Log::Audit {
        let keyed = |canonical, get: KeyedGetter, key: &str| {
            Some(Field {
                canonical,
                origin: Origin::Aliased,
                get: null_getter,
                keyed: Some((get, key.into())),
            })
        };
        let trimmed = name.trim();
        for prefix in ["properties.additionaldetails.", "additionaldetails."] {
            if lower.starts_with(prefix) && lower.len() > prefix.len() {
                return keyed(
                    "properties.additionalDetails",
                    additional_detail,
                    &trimmed[prefix.len()..],
                );
            }
        }
        if MODIFIED_PROPERTY_NAMES.contains(&lower.as_str()) {
            return keyed(
                "properties.targetResources.modifiedProperties.newValue",
                modified_by_name,
                trimmed,
            );
        }
    }
    // A flat Graph name or a Log Analytics column: `properties.` + the name, or the path of a
    // `TargetResources.*` style column.
    let mapped = LA_RENAMES
        .iter()
        .find_map(|(from, to)| {
            lower
                .strip_prefix(from)
                .filter(|rest| rest.is_empty() || rest.starts_with('.'))
                .map(|rest| format!("{to}{rest}"))
        })
        .unwrap_or_else(|| format!("properties.{lower}"));
    if ROOT.contains(&lower.as_str()) || lower.starts_with("properties.") {
        return None;
    }
    find(&mapped).map(|f| Field {
        origin: Origin::Aliased,
        ..f
    })
}

/// Every name a log presents (for docs and tests).
pub fn names(log: Log) -> impl Iterator<Item = (&'static str, Origin)> {
    table(log).iter().map(|&(_, c, o, _)| (c, o))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_resolve_case_insensitively_with_their_origin() {
        let f = resolve(Log::SignIn, "ResultType").unwrap();
        assert_eq!((f.canonical, f.origin), ("resultType", Origin::Native));
        let f = resolve(Log::SignIn, "DeviceDetail.isCompliant").unwrap();
        assert_eq!(
            (f.canonical, f.origin),
            ("properties.deviceDetail.isCompliant", Origin::Aliased)
        );
        let f = resolve(Log::SignIn, "properties.authenticationRequirement").unwrap();
        assert_eq!(f.origin, Origin::Native);
        let f = resolve(Log::Risk, "riskEventType").unwrap();
        assert_eq!(
            (f.canonical, f.origin),
            ("properties.riskEventType", Origin::Aliased)
        );
        let f = resolve(Log::Audit, "TargetResources.ModifiedProperties.NewValue").unwrap();
        assert_eq!(
            f.canonical,
            "properties.targetResources.modifiedProperties.newValue"
        );
        let f = resolve(Log::Audit, "additionalDetails.additionalInfo").unwrap();
        assert_eq!(f.shown(), "properties.additionalDetails[additionalInfo]");
        let f = resolve(Log::Audit, "ConsentContext.IsAdminConsent").unwrap();
        assert_eq!(f.origin, Origin::Aliased);
        assert!(resolve(Log::SignIn, "additionalDetails.x").is_none());
        assert!(resolve(Log::SignIn, "NetworkLocationDetails").is_none());
        assert!(resolve(Log::SignIn, "properties.message").is_none());
        assert!(resolve(Log::Audit, "riskEventType").is_none());
    }
}
