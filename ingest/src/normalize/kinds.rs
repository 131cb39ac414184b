//! The kind readers: one decoded record's fields, read through [`Obj`], to a [`SignIn`], an
//! [`Audit`], a [`RiskyUser`], a [`RiskDetection`] or a [`RoleGrant`]. Casing, stringified objects
//! and numbers-as-strings are handled by [`Obj`]; the few fields whose name differs by producer are
//! looked up per [`Flavor`].

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::record::RecordError;
use crate::model::*;
use crate::time::parse_timestamp;
use crate::value::{Obj, unwrap_json_string, value_to_string};

/// Which producer wrote the record: decides the handful of fields whose names differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Flavor {
    Graph,
    EventHub,
    LogAnalytics,
}

fn time_of(o: Obj<'_>, key: &str) -> Option<DateTime<Utc>> {
    o.str(key).and_then(|s| parse_timestamp(&s))
}

pub(super) fn sign_in(
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
    let additional_details = status.and_then(|s| s.str("additionalDetails"));
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
        additional_details,
        conditional_access_status: p
            .str("conditionalAccessStatus")
            .map(|s| ConditionalAccessStatus::parse(&s)),
        authentication_requirement: p
            .str("authenticationRequirement")
            .map(|s| AuthenticationRequirement::parse(&s)),
        authentication_protocol: p
            .str("authenticationProtocol")
            .map(|s| AuthenticationProtocol::parse(&s)),
        original_transfer_method: p.str("originalTransferMethod"),
        session_id: p.str("sessionId"),
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

pub(super) fn audit(p: Obj<'_>, outer: Option<Obj<'_>>) -> Audit {
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

pub(super) fn risky_user(p: Obj<'_>, history: bool) -> Result<RiskyUser, RecordError> {
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

pub(super) fn risk_detection(p: Obj<'_>, outer: Option<Obj<'_>>) -> RiskDetection {
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

pub(super) fn role_grant(p: Obj<'_>, eligible: bool) -> Result<RoleGrant, RecordError> {
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

/// A GDAP relationship (Graph `delegatedAdminRelationship`).
pub(super) fn gdap_relationship(p: Obj<'_>) -> GdapRelationship {
    let customer = p.object("customer");
    let customer = customer.as_deref().map(Obj);
    let access = p.object("accessDetails");
    let role_definition_ids = access
        .as_deref()
        .map(|a| {
            Obj(a)
                .array("unifiedRoles")
                .iter()
                .filter_map(|r| r.as_object())
                .filter_map(|r| Obj(r).str("roleDefinitionId"))
                .map(|id| Text::ascii_lowercase(&id))
                .collect()
        })
        .unwrap_or_default();
    GdapRelationship {
        display_name: p.str("displayName"),
        status: p.str("status"),
        customer_display_name: customer.and_then(|c| c.str("displayName")),
        role_definition_ids,
        duration_days: p.str("duration").and_then(|d| iso_days(&d)),
        auto_extend_days: p.str("autoExtendDuration").and_then(|d| iso_days(&d)),
        activated: time_of(p, "activatedDateTime"),
        end: time_of(p, "endDateTime"),
    }
}

/// Whole days of an ISO 8601 duration (`P730D`, `P2Y`, `P1Y6M`, `P4W`, `PT0S`, `P180DT12H`): a
/// year counts 365 days, a month 30; hours, minutes and seconds are dropped. `None` when it does
/// not read as a duration.
pub(super) fn iso_days(text: &str) -> Option<i64> {
    let rest = text.trim().strip_prefix(['P', 'p'])?;
    let (date, time) = match rest.find(['T', 't']) {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, ""),
    };
    let mut days = 0i64;
    let mut number = String::new();
    for c in date.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let n: i64 = number.parse().ok()?;
        number.clear();
        days += n * match c.to_ascii_uppercase() {
            'Y' => 365,
            'M' => 30,
            'W' => 7,
            'D' => 1,
            _ => return None,
        };
    }
    if !number.is_empty() {
        return None;
    }
    // The time part must read too, though it adds no whole day here.
    for c in time.chars() {
        if c.is_ascii_digit() || c == '.' {
            number.push(c);
            continue;
        }
        number.parse::<f64>().ok()?;
        number.clear();
        if !matches!(c.to_ascii_uppercase(), 'H' | 'M' | 'S') {
            return None;
        }
    }
    (number.is_empty() && (!date.is_empty() || !time.is_empty())).then_some(days)
}

#[cfg(test)]
mod gdap_tests {
    use super::iso_days;
    use crate::model::{Body, Kind, TimeSource};

    /// The example response of Microsoft Learn's "List delegatedAdminRelationships" (Graph v1.0,
    /// `GET /tenantRelationships/delegatedAdminRelationships`), as published: an active
    /// relationship, a terminated one, and a reseller's awaiting approval.
    const LEARN_LIST_PAGE: &str = r##"{
  "@odata.context": "https://graph.microsoft.com/v1.0/tenantRelationships/$metadata#delegatedAdminRelationships",
  "value": [
    {
      "@odata.type": "#microsoft.graph.delegatedAdminRelationship",
      "@odata.etag": "W/\"JyIwMzAwZTM0ZS0wMDAwLTAyMDAtMDAwMC02MTRjZjI1YzAwMDAiJw==\"",
      "id": "5d027261-d21f-4aa9-b7db-7fa1f56fb163-8777b240-c6f0-4469-9e98-a3205431b836",
      "displayName": "Contoso admin relationship",
      "duration": "P730D",
      "customer": { "tenantId": "52eaad04-13a2-4a2f-9ce8-93a294fadf36", "displayName": "Contoso Inc" },
      "accessDetails": { "unifiedRoles": [ { "roleDefinitionId": "dd4db9a0-cc4a-4213-9f9f-70242232d97e" } ] },
      "status": "active",
      "autoExtendDuration": "P180D",
      "createdDateTime": "2022-02-10T11:24:42.3148266Z",
      "lastModifiedDateTime": "2022-02-10T11:26:44.9941884Z",
      "activatedDateTime": "2022-02-10T11:26:44.9941884Z",
      "endDateTime": "2024-02-10T11:24:42.3148266Z"
    },
    {
      "@odata.type": "#microsoft.graph.delegatedAdminRelationship",
      "@odata.etag": "W/\"JyIwMzAwZTM0ZS0wKklILTAyMDAtMDAwMC02MTRjZjI1YzAwMDAiJw==\"",
      "id": "1041ef52-a99b-4245-a3be-cbd3fa7c5ed1-8777b240-c6f0-4469-9e98-a3205431b836",
      "displayName": "Contoso subsidiary relationship",
      "duration": "P30D",
      "customer": { "tenantId": "4b827261-d21f-4aa9-b7db-7fa1f56fb163", "displayName": "Contoso subsidiary Inc" },
      "accessDetails": { "unifiedRoles": [
        { "roleDefinitionId": "29232cdf-9323-42fd-ade2-1d097af3e4de" },
        { "roleDefinitionId": "3a2c62db-5318-420d-8d74-23affee5d9d5" } ] },
      "status": "terminated",
      "autoExtendDuration": "PT0S",
      "createdDateTime": "2021-09-29T16:52:39.6133896Z",
      "lastModifiedDateTime": "2021-10-29T16:57:20.2101088Z",
      "activatedDateTime": "2021-09-29T16:55:20.2101088Z",
      "endDateTime": "2021-10-29T16:57:20.2101088Z"
    },
    {
      "@odata.type": "#microsoft.graph.resellerDelegatedAdminRelationship",
      "@odata.etag": "W/\"JyIwMzAwZTM0ZS0wMDAwLTAyMDAtMDAwMC02MTRjZjI1YzAwMDAiJw==\"",
      "id": "4b227261-d21f-4aa9-b7db-7fa1f56fb163-8777b240-c6f0-4469-9e98-a3205431b836",
      "displayName": "Fabrikam admin relationship",
      "duration": "P180D",
      "customer": { "tenantId": "52eaad04-13a2-4a2f-9ce8-93a294fadf36", "displayName": "Fabrikam Inc." },
      "accessDetails": { "unifiedRoles": [
        { "roleDefinitionId": "7be44c8a-adaf-4e2a-84d6-ab2649e08a13" },
        { "roleDefinitionId": "e8611ab8-c189-46e8-94e1-60213ab1f814" },
        { "roleDefinitionId": "fe930be7-5e62-47db-91af-98c3a49a38b1" },
        { "roleDefinitionId": "729827e3-9c14-49f7-bb1b-9608f156bbb8" },
        { "roleDefinitionId": "4d6ac14f-3453-41d0-bef9-a3e0c569773a" },
        { "roleDefinitionId": "f023fd81-a637-4b56-95fd-791ac0226033" },
        { "roleDefinitionId": "9360feb5-f418-4baa-8175-e2a00bac4301" },
        { "roleDefinitionId": "88d8e3e3-8f55-4a1e-953a-9b9898b8876b" },
        { "roleDefinitionId": "f2ef992c-3afb-46b9-b7cf-a126ee74c451" } ] },
      "status": "approvalPending",
      "autoExtendDuration": "PT0S",
      "createdDateTime": "2022-02-10T11:24:42.3148266Z",
      "lastModifiedDateTime": "2022-02-10T11:26:44.9941884Z",
      "activatedDateTime": null,
      "endDateTime": null,
      "isPartnerConsentPending": true,
      "indirectProviderTenantId": "60ea59db-a506-485e-94c5-d115f369e239"
    }
  ]
}"##;

    #[test]
    fn microsoft_learns_gdap_relationship_page_is_read_for_each_customer_tenant() {
        let partner = "9c7e1f0a-3b2d-4c5e-8f6a-1d2e3f4a5b6c";
        let mut events = Vec::new();
        crate::reader::read_bytes(
            "graph:partner/gdap_relationships",
            LEARN_LIST_PAGE.as_bytes(),
            Some(partner),
            &crate::reader::ReadOptions::default(),
            &mut |item| match item {
                crate::reader::Item::Event(e) => events.push(e),
                other => panic!("{other:?}"),
            },
        );
        assert_eq!(events.len(), 3);
        for e in &events {
            assert_eq!(e.kind(), Kind::GdapRelationship);
            assert_eq!(e.meta.time_source, TimeSource::Record);
        }
        let e = &events[0];
        assert_eq!(
            &*e.meta.tenant_id, "52eaad04-13a2-4a2f-9ce8-93a294fadf36",
            "the customer's tenant, not the partner's it was read in"
        );
        assert_eq!(
            e.meta.time.to_rfc3339(),
            "2022-02-10T11:26:44.994188400+00:00",
            "lastModifiedDateTime"
        );
        let Body::Gdap(g) = &e.body else { panic!() };
        assert_eq!(g.status.as_deref(), Some("active"));
        assert_eq!(g.customer_display_name.as_deref(), Some("Contoso Inc"));
        assert_eq!(
            g.role_definition_ids
                .iter()
                .map(|r| &**r)
                .collect::<Vec<_>>(),
            ["dd4db9a0-cc4a-4213-9f9f-70242232d97e"]
        );
        assert_eq!(
            (g.duration_days, g.auto_extend_days),
            (Some(730), Some(180))
        );
        assert!(g.end.is_some() && g.activated.is_some());
        let (_, _, id) = e.dedup_key();
        assert!(
            id.contains('@'),
            "each modification is its own record: {id}"
        );
        assert_eq!(
            &*events[1].meta.tenant_id,
            "4b827261-d21f-4aa9-b7db-7fa1f56fb163"
        );
        let Body::Gdap(reseller) = &events[2].body else {
            panic!()
        };
        assert_eq!(reseller.status.as_deref(), Some("approvalPending"));
        assert_eq!(reseller.role_definition_ids.len(), 9);
        assert_eq!((reseller.activated, reseller.end), (None, None));
    }

    #[test]
    fn iso_durations_read_as_whole_days() {
        for (text, days) in [
            ("P730D", Some(730)),
            ("P2Y", Some(730)),
            ("P1Y6M", Some(545)),
            ("P4W", Some(28)),
            ("PT0S", Some(0)),
            ("P0D", Some(0)),
            ("P180DT12H", Some(180)),
            ("P", None),
            ("730", None),
            ("P7X", None),
        ] {
            assert_eq!(iso_days(text), days, "{text}");
        }
    }
}
