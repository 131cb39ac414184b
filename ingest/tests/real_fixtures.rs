//! Every real public sample (tests/fixtures/real, tests/fixtures/derived; provenance in
//! tests/fixtures/real/PROVENANCE.md) is read with zero errors, and concrete values come out right.

mod common;

use common::*;
use entrawatch_ingest::model::*;

const DOC_TENANT: &str = "99081087-73c4-48d1-a112-f60ff75114f7";
const DATADOG_TENANT: &str = "4d3bac44-0230-4732-9e70-cc00736f0a97";

fn sign_in(e: &Event) -> &SignIn {
    e.as_sign_in().expect("a sign-in")
}

fn audit(e: &Event) -> &Audit {
    match &e.body {
        Body::Audit(a) => a,
        other => panic!("expected an audit, got {other:?}"),
    }
}

#[test]
fn sentinel_csv_export_yields_its_56_sign_ins() {
    let r = read_clean("real/azure-sentinel-training-lab/sign-in_adelete.csv", None);
    assert_eq!(r.events.len(), 56);
    assert!(
        r.events
            .iter()
            .all(|e| e.meta.shape == Shape::LogAnalyticsCsv && e.kind() == Kind::SignIn)
    );
    // The Entra tenant is AADTenantId, never the workspace id in TenantId.
    assert!(
        r.events
            .iter()
            .all(|e| e.meta.tenant_id == "2ad3fc79-1859-42fa-9011-6f8df2251b22")
    );
    let codes: Vec<i64> = r
        .events
        .iter()
        .filter_map(|e| sign_in(e).error_code)
        .collect();
    assert_eq!(codes.iter().filter(|c| **c == 0).count(), 53);
    assert_eq!(codes.iter().filter(|c| **c == 16000).count(), 2);
    assert_eq!(codes.iter().filter(|c| **c == 50058).count(), 1);

    let first = &r.events[0];
    assert_eq!(first.meta.id, "cfb68155-70f5-4e28-b046-0a3a7086c401");
    assert_eq!(rfc3339(first.meta.time), "2021-04-28T14:08:45.221Z");
    assert_eq!(first.meta.time_source, TimeSource::Record);
    let s = sign_in(first);
    assert_eq!(
        s.user_principal_name.as_deref(),
        Some("adelev@m365x816222.onmicrosoft.com")
    );
    assert_eq!(
        s.user_id.as_deref(),
        Some("9b117c67-170e-4aed-9702-658b3fddc889")
    );
    assert_eq!(s.ip_address.as_deref(), Some("175.45.176.99"));
    assert_eq!(s.app_display_name.as_deref(), Some("Azure Portal"));
    assert_eq!(
        s.resource_id.as_deref(),
        Some("797f4846-ba00-4fd7-ba43-dac1f8f63013")
    );
    assert_eq!(
        s.authentication_requirement,
        Some(AuthenticationRequirement::SingleFactor)
    );
    assert_eq!(s.event_type, Some(SignInEventType::InteractiveUser));
    assert_eq!(s.is_interactive, Some(true));
    assert_eq!(s.user_type, Some(UserType::Member));
    assert_eq!(s.location.country_or_region.as_deref(), Some("IL"));
    assert_eq!(s.location.city.as_deref(), Some("Azor"));
    assert!((s.location.latitude.unwrap() - 32.0295).abs() < 1e-3);
    assert_eq!(s.device.device_id, None);
    assert_eq!(s.device.operating_system.as_deref(), Some("Windows 10"));
    assert_eq!(s.device.is_managed, None);
    assert!(!s.device.is_known_managed());
    // The multi-line AuthenticationDetails cell decodes.
    assert_eq!(s.authentication_details.len(), 1);
    assert_eq!(
        s.authentication_details[0].method.as_deref(),
        Some("Previously satisfied")
    );
    assert_eq!(s.authentication_details[0].succeeded, Some(true));
    assert!(!s.has_successful_second_factor());

    let last = r.events.last().unwrap();
    assert_eq!(last.meta.id, "3b50929d-3d7e-420d-a2bf-cf8189a36c01");
    assert_eq!(rfc3339(last.meta.time), "2021-04-28T15:19:08.373Z");
}

#[test]
fn graph_beta_sign_in_with_duplicate_keys_takes_the_last() {
    let r = read_clean("real/msgraph-docs/beta_signin_get.json", None);
    assert_eq!(r.events.len(), 1);
    let e = &r.events[0];
    assert_eq!(e.meta.shape, Shape::Graph);
    assert_eq!(e.meta.tenant_id, DOC_TENANT);
    assert_eq!(e.meta.id, "66ea54eb-blah-4ee5-be62-ff5a759b0100");
    assert_eq!(rfc3339(e.meta.time), "2021-06-30T16:34:32Z");
    let s = sign_in(e);
    // `homeTenantId` appears twice in the sample; the last one wins.
    assert_eq!(s.home_tenant_id.as_deref(), Some(DOC_TENANT));
    assert_eq!(s.error_code, Some(50126));
    assert_eq!(s.event_type, Some(SignInEventType::InteractiveUser));
    assert_eq!(
        s.authentication_protocol,
        Some(AuthenticationProtocol::OAuth2)
    );
    assert_eq!(
        s.cross_tenant_access_type,
        Some(CrossTenantAccessType::None)
    );
    assert_eq!(s.autonomous_system_number, Some(3598));
    assert_eq!(s.device.is_managed, Some(false));
    assert_eq!(s.device.browser.as_deref(), Some("Edge 91.0.864"));
    assert_eq!(s.location.city.as_deref(), Some("Redmond"));
    assert_eq!(
        s.authentication_details[0].method.as_deref(),
        Some("Password")
    );
    assert_eq!(s.authentication_details[0].succeeded, Some(false));
    assert_eq!(
        s.incoming_token_type.as_deref(),
        Some("Primary Refresh Token")
    );
}

#[test]
fn graph_beta_sign_in_pages() {
    for rel in [
        "real/msgraph-docs/beta_signins_list_ex1_failed_password.json",
        "real/msgraph-docs/beta_signins_list_ex2_nextlink.json",
    ] {
        let r = read_clean(rel, None);
        assert_eq!(r.events.len(), 1, "{rel}");
        let e = &r.events[0];
        assert_eq!(e.meta.id, "1691d37b-8579-43a7-966a-0f35583c1300", "{rel}");
        assert_eq!(e.meta.tenant_id, DOC_TENANT);
        assert_eq!(
            sign_in(e).user_principal_name.as_deref(),
            Some("testaccount1@contoso.com")
        );
    }
}

#[test]
fn graph_v1_sign_in_pages_need_a_tenant_and_take_it_from_the_option() {
    // v1.0 sign-ins carry no tenant at all.
    let without = read_path(&fixture("real/msgraph-docs/v1_signins_list_ex1.json"), None);
    assert!(without.events.is_empty());
    assert_eq!(without.rejected.len(), 1);
    assert_eq!(without.rejected[0].field.as_deref(), Some("tenantId"));
    assert_eq!(without.rejected[0].at.record, Some(1));

    let r = read_clean("real/msgraph-docs/v1_signins_list_ex1.json", Some(TENANT_A));
    assert_eq!(r.events.len(), 1);
    let e = &r.events[0];
    assert_eq!(e.meta.tenant_id, TENANT_A);
    assert_eq!(e.meta.id, "66ea54eb-6301-4ee5-be62-ff5a759b0100");
    assert_eq!(rfc3339(e.meta.time), "2020-03-13T19:15:41.619583300Z");
    let s = sign_in(e);
    assert_eq!(s.app_display_name.as_deref(), Some("Graph explorer"));
    assert_eq!(s.error_code, Some(0));
    assert_eq!(s.event_type, None);
    assert!(s.is_interactive());

    let r = read_clean(
        "real/msgraph-docs/v1_signins_list_ex2_nextlink.json",
        Some(TENANT_A),
    );
    assert_eq!(r.events.len(), 1);
    assert_eq!(r.events[0].meta.id, "66ea54eb-6301-4ee5-be62-ff5a759b0100");
}

#[test]
fn graph_directory_audits() {
    let r = read_clean(
        "real/msgraph-docs/v1_directoryaudits_list.json",
        Some(TENANT_A),
    );
    assert_eq!(r.events.len(), 1);
    let e = &r.events[0];
    assert_eq!(e.meta.id, "id");
    assert_eq!(rfc3339(e.meta.time), "2018-01-09T21:20:02.721537400Z");
    let a = audit(e);
    assert_eq!(a.activity_display_name, "Add member to group");
    assert_eq!(a.category.as_deref(), Some("UserManagement"));
    assert_eq!(a.result, Some(AuditResult::Success));
    assert_eq!(
        a.initiated_by
            .user
            .as_ref()
            .unwrap()
            .user_principal_name
            .as_deref(),
        Some("bob@wingtiptoysonline.com")
    );
    assert_eq!(a.initiated_by.app, None);
    // The sample spells `Type` with a capital T.
    assert_eq!(
        a.target_resources[0].resource_type.as_deref(),
        Some("Group")
    );
    assert_eq!(a.target_resources[1].resource_type.as_deref(), Some("User"));
    assert_eq!(
        a.target_resources[0].modified_properties[0]
            .new_value
            .as_deref(),
        Some("DirectorySync")
    );
    assert_eq!(a.additional_details[0].key, "Additional Detail Name");

    let r = read_clean(
        "real/msgraph-docs/beta_directoryaudit_get_mfa_method_update.json",
        Some(TENANT_A),
    );
    let a = audit(&r.events[0]);
    assert_eq!(a.activity_display_name, "Update user");
    let user = a.initiated_by.user.as_ref().unwrap();
    assert_eq!(user.user_type, Some(UserType::Member));
    assert_eq!(user.home_tenant_id, None);
    assert_eq!(user.ip_address, None);
    assert_eq!(
        a.modified_new_value("Included Updated Properties"),
        Some("StrongAuthenticationMethod")
    );
    assert!(
        a.modified_new_value("StrongAuthenticationMethod")
            .unwrap()
            .starts_with("[{\"MethodType\":7")
    );
}

#[test]
fn graph_risky_users_history_and_detections() {
    let r = read_clean(
        "real/msgraph-docs/beta_riskyusers_list.json",
        Some(TENANT_A),
    );
    assert_eq!(r.events.len(), 1);
    assert_eq!(r.events[0].kind(), Kind::RiskyUser);
    let Body::RiskyUser(u) = &r.events[0].body else {
        panic!()
    };
    assert_eq!(u.user_id, "c2b6c2b9-dddc-acd0-2b39-d519d803dbc3");
    assert_eq!(u.risk_level, Some(RiskLevel::High));
    assert_eq!(u.risk_state, Some(RiskState::AtRisk));
    assert_eq!(u.is_deleted, Some(true));
    assert_eq!(
        rfc3339(r.events[0].meta.time),
        "2016-01-29T20:03:57.787242600Z"
    );

    let r = read_clean(
        "real/msgraph-docs/beta_riskyuser_history.json",
        Some(TENANT_A),
    );
    assert_eq!(r.events.len(), 3);
    assert!(r.events.iter().all(|e| e.kind() == Kind::RiskyUserHistory));
    let Body::RiskyUser(h) = &r.events[1].body else {
        panic!()
    };
    assert_eq!(h.user_id, "41a31b00-3b3b-42d9-8f1c-6d4f14e74c69");
    assert_eq!(
        r.events[1].meta.id,
        "41a31b00-3b3b-42d9-8f1c-6d4f14e74c69636901009342322587"
    );
    assert_eq!(h.risk_state, Some(RiskState::AtRisk));
    assert_eq!(
        h.history.as_ref().unwrap().event_types,
        vec!["anonymizedIPAddress"]
    );
    let Body::RiskyUser(h0) = &r.events[0].body else {
        panic!()
    };
    assert_eq!(
        h0.history.as_ref().unwrap().initiated_by.as_deref(),
        Some("68ca8ec0-11f8-456b-a785-70d9936650d5")
    );

    let r = read_clean(
        "real/msgraph-docs/beta_riskdetections_list_ex1_remediated.json",
        Some(TENANT_A),
    );
    assert_eq!(r.events.len(), 1);
    let Body::RiskDetection(d) = &r.events[0].body else {
        panic!()
    };
    assert_eq!(d.risk_event_type.as_deref(), Some("unfamiliarFeatures"));
    assert_eq!(d.risk_state, Some(RiskState::Remediated));
    assert_eq!(d.detection_timing_type, Some(DetectionTimingType::Realtime));
    assert_eq!(
        d.request_id.as_deref(),
        Some("6a5874ca-abcd-9d82-5ad39bd71600")
    );
    assert_eq!(d.additional_info[0].key, "userAgent");
    assert!(
        d.additional_info[0]
            .value
            .as_deref()
            .unwrap()
            .starts_with("Mozilla/5.0")
    );
    // The event time of a detection is when it was last updated.
    assert_eq!(
        rfc3339(r.events[0].meta.time),
        "2018-09-05T00:11:27.773602Z"
    );
    assert_eq!(
        rfc3339(d.activity_time.unwrap()),
        "2018-09-05T00:09:18.782285100Z"
    );
}

#[test]
fn event_hub_doc_record_with_placeholders() {
    let r = read_clean("real/entra-docs/eventhub_signinlogs_record.json", None);
    assert_eq!(r.events.len(), 1);
    let e = &r.events[0];
    assert_eq!(e.meta.shape, Shape::EventHub);
    // tenantId and resourceId hold placeholders; resourceTenantId is the first real GUID.
    assert_eq!(e.meta.tenant_id, "72f988bf-86f1-41af-91ab-2d7cd011db47");
    assert_eq!(e.meta.id, "0231f922-93fa-4005-bb11-b344eca03c01");
    assert_eq!(rfc3339(e.meta.time), "2019-03-12T16:02:15.552213700Z");
    let s = sign_in(e);
    assert_eq!(s.error_code, Some(50140));
    assert!(s.is_interrupt());
    assert_eq!(s.event_type, Some(SignInEventType::InteractiveUser));
    assert_eq!(
        s.authentication_requirement,
        Some(AuthenticationRequirement::MultiFactor)
    );
    assert!(s.has_successful_second_factor());
    assert_eq!(s.user_type, Some(UserType::Member));
    assert_eq!(
        s.device.device_id.as_deref(),
        Some("8bfcb982-6856-4402-924c-ada2486321cc")
    );
    assert_eq!(s.device.is_managed, None);
    assert_eq!(
        s.resource_id.as_deref(),
        Some("00000003-0000-0ff1-ce00-000000000000")
    );
    assert_eq!(s.autonomous_system_number, Some(8000));
}

#[test]
fn event_hub_ndjson_records_from_datadog() {
    let r = read_clean(
        "real/datadog-integrations-core/azure_activedirectory_eventhub_records.jsonl",
        None,
    );
    assert_eq!(r.events.len(), 3);
    assert!(
        r.events
            .iter()
            .all(|e| e.meta.tenant_id == DATADOG_TENANT && e.meta.shape == Shape::EventHub)
    );
    let kinds: Vec<Kind> = r.events.iter().map(Event::kind).collect();
    assert_eq!(kinds, vec![Kind::Audit, Kind::SignIn, Kind::Audit]);

    // A minimal audit with no activityDateTime: the envelope time and operationName fill in.
    let first = &r.events[0];
    assert_eq!(first.meta.time_source, TimeSource::Envelope);
    assert_eq!(rfc3339(first.meta.time), "2020-04-08T07:40:53.169543600Z");
    assert_eq!(
        audit(first).activity_display_name,
        "Add owner to service principal"
    );
    assert_eq!(
        audit(first)
            .initiated_by
            .app
            .as_ref()
            .unwrap()
            .display_name
            .as_deref(),
        Some("Microsoft.Intune")
    );

    let s = sign_in(&r.events[1]);
    assert_eq!(r.events[1].meta.id, "b95c8eca-487b-4631-b6e5-0469cb7c0800");
    assert_eq!(s.error_code, Some(0));
    assert_eq!(s.is_interactive, Some(false));
    // Category SignInLogs is the interactive log, whatever the record's own flag says.
    assert!(s.is_interactive());
    assert_eq!(
        s.user_principal_name.as_deref(),
        Some("testtest@datadoghq.com")
    );
    assert_eq!(s.location.city.as_deref(), Some("Kirkland"));

    let third = audit(&r.events[2]);
    assert_eq!(third.activity_display_name, "Delete user");
    assert_eq!(third.category.as_deref(), Some("UserManagement"));
    assert_eq!(third.operation_type.as_deref(), Some("Delete"));
    assert_eq!(
        third.target_resources[0].user_principal_name.as_deref(),
        Some("deleted_user@datadoghq.com")
    );
    assert_eq!(
        third.target_resources[0].modified_properties[0]
            .new_value
            .as_deref(),
        Some("False")
    );
}

#[test]
fn event_hub_envelopes() {
    let r = read_clean("derived/eventhub_envelope_signinlogs.json", None);
    let ids: Vec<&str> = r.events.iter().map(|e| e.meta.id.as_str()).collect();
    assert_eq!(
        ids,
        vec![
            "0231f922-93fa-4005-bb11-b344eca03c01",
            "b95c8eca-487b-4631-b6e5-0469cb7c0800"
        ]
    );
    let r = read_clean("derived/eventhub_envelope_auditlogs.json", None);
    let ids: Vec<&str> = r.events.iter().map(|e| e.meta.id.as_str()).collect();
    assert_eq!(
        ids,
        vec![
            "Directory_d38a4a5b-dea6-4fb4-aa82-7d42c51d0d60_8X8M4_47251981",
            "Directory_a13bd0fa-70d0-4e60-ae23-b687377b4695_VTP26_161277857"
        ]
    );
}

#[test]
fn every_real_and_derived_fixture_reads_without_errors() {
    // Graph files without a tenant in their records get one, as `--tenant` would give it.
    let files = entrawatch_ingest::walk_all(&[fixture("real"), fixture("derived")])
        .unwrap()
        .files;
    assert_eq!(files.len(), 15, "{files:#?}");
    let mut total = 0;
    for f in &files {
        let r = read_path(f, Some(TENANT_A));
        assert!(r.rejected.is_empty(), "{}: {:#?}", f.display(), r.rejected);
        assert!(!r.events.is_empty(), "{}", f.display());
        total += r.events.len();
    }
    assert_eq!(
        total,
        56 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 3 + 1 + 1 + 3 + 2 + 2
    );
}
