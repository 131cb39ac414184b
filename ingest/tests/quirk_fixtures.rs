//! Hand-written quirk fixtures (tests/fixtures/quirks, see MANIFEST.md there): every docs/formats.md §7
//! pitfall, read with zero errors, each record with the id, tenant and event time the manifest gives.

mod common;

use chrono::DateTime;
use common::*;
use entrawatch_ingest::model::*;

const TENANT_B: &str = "22222222-bbbb-4bbb-8bbb-222222222222";
const PARTNER: &str = "33333333-cccc-4ccc-8ccc-333333333333";

/// (file, context tenant, accepted, skipped) from MANIFEST.md's file table. The context tenant is
/// only given where the manifest says a record needs it; elsewhere the records must carry their own.
const FILES: &[(&str, Option<&str>, usize, usize)] = &[
    ("eh_signin_us_locale_time.json", None, 1, 0),
    ("eh_signin_level_lowercase.jsonl", None, 2, 0),
    ("eh_mixed_categories.json", None, 6, 2),
    ("eh_audit_roles_string.json", None, 3, 0),
    (
        "graph_beta_signins_page_newest_first.json",
        Some(TENANT_A),
        4,
        0,
    ),
    (
        "graph_directory_audits_no_tenant.json",
        Some(TENANT_B),
        2,
        0,
    ),
    (
        "graph_role_assignments_expand_principal.json",
        Some(TENANT_A),
        3,
        0,
    ),
    (
        "graph_role_eligibility_schedules.json",
        Some(TENANT_A),
        2,
        0,
    ),
    ("la_signinlogs_export.json", None, 2, 0),
    ("la_noninteractive_export.csv", None, 3, 0),
    ("la_audit_and_risk_export.json", Some(TENANT_A), 3, 0),
    ("graph_riskyusers_hidden.json", Some(TENANT_B), 3, 0),
    ("graph_signin_casing.json", None, 1, 0),
];

/// (file, record number, kind, id, tenant, event time) from MANIFEST.md's record tables.
const EXPECTED: &[(&str, usize, &str, &str, &str, &str)] = &[
    (
        "eh_signin_us_locale_time.json",
        1,
        "signIn",
        "240d2dbd-bdee-44f7-a2d7-b2f6ee0e5f00",
        "11111111-aaaa-4aaa-8aaa-111111111111",
        "2025-11-14T01:48:53.4417236Z",
    ),
    (
        "eh_signin_level_lowercase.jsonl",
        1,
        "signIn",
        "dc25db72-c36f-4013-87ec-25c6e05a6000",
        "11111111-aaaa-4aaa-8aaa-111111111111",
        "2022-09-09T09:59:27.958Z",
    ),
    (
        "eh_signin_level_lowercase.jsonl",
        2,
        "signIn",
        "08347293-d95b-4ef5-b29a-294fd664d600",
        "11111111-aaaa-4aaa-8aaa-111111111111",
        "2022-09-09T10:02:11.3349751Z",
    ),
    (
        "eh_mixed_categories.json",
        1,
        "signIn",
        "dc9c2986-f599-4cdd-a9d2-3cdd0593f200",
        "22222222-bbbb-4bbb-8bbb-222222222222",
        "2025-03-04T08:15:02.1187345Z",
    ),
    (
        "eh_mixed_categories.json",
        2,
        "signIn",
        "d8247be0-f303-4381-82c0-e882490e5200",
        "22222222-bbbb-4bbb-8bbb-222222222222",
        "2025-03-04T08:16:40.5521893Z",
    ),
    (
        "eh_mixed_categories.json",
        3,
        "signIn",
        "77ed9e52-883a-4ce0-9f55-9101a246c900",
        "22222222-bbbb-4bbb-8bbb-222222222222",
        "2025-03-04T08:17:05.9038211Z",
    ),
    (
        "eh_mixed_categories.json",
        4,
        "signIn",
        "8ec655b1-8adc-4beb-b3c8-a5111fc97600",
        "22222222-bbbb-4bbb-8bbb-222222222222",
        "2025-03-04T08:18:30.6672019Z",
    ),
    (
        "eh_mixed_categories.json",
        5,
        "riskyUser",
        "3db4a22f-ca78-415c-ae06-ba809971bebb",
        "22222222-bbbb-4bbb-8bbb-222222222222",
        "2025-03-04T18:11:52.702Z",
    ),
    (
        "eh_mixed_categories.json",
        6,
        "riskDetection",
        "58b173ee73745028a8bf3ad29b2bb27eb92b5e735c755ccebbf740edd0bba847",
        "22222222-bbbb-4bbb-8bbb-222222222222",
        "2025-03-04T18:07:16.894Z",
    ),
    (
        "eh_audit_roles_string.json",
        1,
        "audit",
        "Directory_0c41ca08-0d72-4116-9df3-a95a30fd77bc_K7QX2_318004412",
        "11111111-aaaa-4aaa-8aaa-111111111111",
        "2025-06-02T14:03:27.8123456Z",
    ),
    (
        "eh_audit_roles_string.json",
        2,
        "audit",
        "Directory_eea95713-6def-4566-a423-b9663d71bd45_P3MZ8_318007291",
        "11111111-aaaa-4aaa-8aaa-111111111111",
        "2025-06-02T14:09:51.2264918Z",
    ),
    (
        "eh_audit_roles_string.json",
        3,
        "audit",
        "Directory_2da62783-4917-4a82-a968-5b64095dee94_ZR41C_318005867",
        "11111111-aaaa-4aaa-8aaa-111111111111",
        "2025-06-02T14:07:12.5517003Z",
    ),
    (
        "graph_beta_signins_page_newest_first.json",
        1,
        "signIn",
        "ed0f6486-3c7a-4654-984d-79a6005f8000",
        "11111111-aaaa-4aaa-8aaa-111111111111",
        "2025-06-02T14:20:05Z",
    ),
    (
        "graph_beta_signins_page_newest_first.json",
        2,
        "signIn",
        "9f2fe83d-080a-4df2-857d-7406545a1a00",
        "11111111-aaaa-4aaa-8aaa-111111111111",
        "2025-06-02T14:11:47Z",
    ),
    (
        "graph_beta_signins_page_newest_first.json",
        3,
        "signIn",
        "afe06445-4f0b-4976-b4a6-91c3901b5900",
        "11111111-aaaa-4aaa-8aaa-111111111111",
        "2025-06-02T14:05:33Z",
    ),
    (
        "graph_beta_signins_page_newest_first.json",
        4,
        "signIn",
        "dbb2f6fc-1c15-4d2f-86b5-75e9e4539700",
        "11111111-aaaa-4aaa-8aaa-111111111111",
        "2025-06-02T13:52:18Z",
    ),
    (
        "graph_directory_audits_no_tenant.json",
        1,
        "audit",
        "Directory_08cd805f-5016-4e63-99b1-c08790be5e87_JQ5NS_402123904",
        "22222222-bbbb-4bbb-8bbb-222222222222",
        "2025-07-09T10:31:05.0917722Z",
    ),
    (
        "graph_directory_audits_no_tenant.json",
        2,
        "audit",
        "Directory_6c267c05-a5bc-4904-9ccb-adc83d998aa8_M8W2D_402119377",
        "22222222-bbbb-4bbb-8bbb-222222222222",
        "2025-07-09T10:22:41.3380547Z",
    ),
    (
        "graph_role_assignments_expand_principal.json",
        1,
        "roleAssignment",
        "lAPpYvVpN0KRkAEhdxReELFYVyb0FPJJo9HxnB7vDwk-1",
        "11111111-aaaa-4aaa-8aaa-111111111111",
        "snapshot",
    ),
    (
        "graph_role_assignments_expand_principal.json",
        2,
        "roleAssignment",
        "y-RKGSaxskC9W2CRs4CXfaD5qB1xUkdDhDnzCIrP-bU-1",
        "11111111-aaaa-4aaa-8aaa-111111111111",
        "snapshot",
    ),
    (
        "graph_role_assignments_expand_principal.json",
        3,
        "roleAssignment",
        "4-PYiFWPHkqVOpuYmLiHawwK9lChtZlOmk7F9jiwqwU-1",
        "11111111-aaaa-4aaa-8aaa-111111111111",
        "snapshot",
    ),
    (
        "graph_role_eligibility_schedules.json",
        1,
        "roleEligibility",
        "55f421b5-d461-4a7c-aa82-adb6160ee648",
        "11111111-aaaa-4aaa-8aaa-111111111111",
        "snapshot",
    ),
    (
        "graph_role_eligibility_schedules.json",
        2,
        "roleEligibility",
        "1e5d2b67-c9b6-46f4-917b-6467aa6a7bd7",
        "11111111-aaaa-4aaa-8aaa-111111111111",
        "snapshot",
    ),
    (
        "la_signinlogs_export.json",
        1,
        "signIn",
        "642ef62f-e023-4128-bbf4-35b09f732a00",
        "11111111-aaaa-4aaa-8aaa-111111111111",
        "2025-08-18T07:42:16.9034512Z",
    ),
    (
        "la_signinlogs_export.json",
        2,
        "signIn",
        "1e91b841-edb2-4211-802a-a6416795e800",
        "11111111-aaaa-4aaa-8aaa-111111111111",
        "2025-08-18T07:39:58.2210435Z",
    ),
    (
        "la_noninteractive_export.csv",
        1,
        "signIn",
        "66c87620-da91-4d6e-931a-f07e2282b500",
        "11111111-aaaa-4aaa-8aaa-111111111111",
        "2025-09-03T09:05:07.412Z",
    ),
    (
        "la_noninteractive_export.csv",
        2,
        "signIn",
        "b91c1f79-a696-47e3-b743-4252e40dcb00",
        "11111111-aaaa-4aaa-8aaa-111111111111",
        "2025-09-03T12:41:19.088Z",
    ),
    (
        "la_noninteractive_export.csv",
        3,
        "signIn",
        "ea5184fe-f79d-478a-a63e-58e7c015aa00",
        "11111111-aaaa-4aaa-8aaa-111111111111",
        "2025-09-03T00:02:55.930Z",
    ),
    (
        "la_audit_and_risk_export.json",
        1,
        "audit",
        "Directory_80c9a3e8-9205-4f1a-90ce-fcb027360f17_8FJ2K_511230045",
        "11111111-aaaa-4aaa-8aaa-111111111111",
        "2025-08-18T09:12:44.5590102Z",
    ),
    (
        "la_audit_and_risk_export.json",
        2,
        "riskyUser",
        "b0ab02ea-b439-4f03-8b41-5f16468cf587",
        "11111111-aaaa-4aaa-8aaa-111111111111",
        "2025-08-18T10:03:19.1182737Z",
    ),
    (
        "la_audit_and_risk_export.json",
        3,
        "riskDetection",
        "7be5bc47013a58489311470fe17dee69636520346655567cbf923cd57d9fabdd",
        "11111111-aaaa-4aaa-8aaa-111111111111",
        "2025-08-18T10:01:47.0031175Z",
    ),
    (
        "graph_riskyusers_hidden.json",
        1,
        "riskyUser",
        "61af9b06-f8b6-4c14-99b4-18883cff50df",
        "22222222-bbbb-4bbb-8bbb-222222222222",
        "2025-09-01T06:14:27.3321907Z",
    ),
    (
        "graph_riskyusers_hidden.json",
        2,
        "riskyUser",
        "8326e226-eabd-4a07-b095-51c614ac8760",
        "22222222-bbbb-4bbb-8bbb-222222222222",
        "2025-09-01T05:40:02.0081516Z",
    ),
    (
        "graph_riskyusers_hidden.json",
        3,
        "riskyUser",
        "7ea8095c-86ba-4f87-9b0b-351e6177263e",
        "22222222-bbbb-4bbb-8bbb-222222222222",
        "2025-08-30T22:07:51.6604102Z",
    ),
    (
        "graph_signin_casing.json",
        1,
        "signIn",
        "10d02a8e-f6a3-4711-aa67-eb7e3a5a7e00",
        "11111111-aaaa-4aaa-8aaa-111111111111",
        "2025-10-06T15:30:12Z",
    ),
];

fn quirk(file: &str) -> Read {
    let (_, tenant, _, _) = FILES.iter().find(|f| f.0 == file).expect("listed");
    read_clean(&format!("quirks/{file}"), *tenant)
}

#[test]
fn every_quirk_file_yields_the_manifest_records() {
    for (file, tenant, accepted, skipped) in FILES {
        let r = read_clean(&format!("quirks/{file}"), *tenant);
        assert_eq!(r.events.len(), *accepted, "{file}");
        assert_eq!(r.skipped.len(), *skipped, "{file}");
        let expected: Vec<_> = EXPECTED.iter().filter(|e| e.0 == *file).collect();
        assert_eq!(expected.len(), *accepted, "{file}: manifest rows");
        for ((_, n, kind, id, tenant_id, time), event) in expected.iter().zip(&r.events) {
            let at = format!("{file} record {n}");
            assert_eq!(event.kind().as_str(), *kind, "{at}");
            assert_eq!(event.meta.id, *id, "{at}");
            assert_eq!(event.meta.tenant_id, *tenant_id, "{at}");
            if *time == "snapshot" {
                assert_eq!(event.meta.time_source, TimeSource::Snapshot, "{at}");
            } else {
                let want = DateTime::parse_from_rfc3339(time).unwrap();
                assert_eq!(event.meta.time, want, "{at}");
                assert_eq!(event.meta.time_source, TimeSource::Record, "{at}");
            }
        }
    }
}

#[test]
fn context_only_records_are_errors_without_a_tenant() {
    let r = read_path(
        &fixture("quirks/graph_beta_signins_page_newest_first.json"),
        None,
    );
    assert_eq!(r.events.len(), 3);
    assert_eq!(r.rejected.len(), 1);
    assert_eq!(r.rejected[0].at.record, Some(4));
    assert_eq!(r.rejected[0].field.as_deref(), Some("tenantId"));
    // The Log Analytics `TenantId` is a workspace id and is never taken for the tenant.
    let r = read_path(&fixture("quirks/la_audit_and_risk_export.json"), None);
    assert_eq!(r.events.len(), 1);
    assert_eq!(r.rejected.len(), 2);
    assert!(
        r.events
            .iter()
            .chain(quirk("la_signinlogs_export.json").events.iter())
            .all(|e| e.meta.tenant_id != "9c4d2e7a-5b1f-4e38-a6d0-7f2b8c1e4a95")
    );
}

#[test]
fn event_hub_quirks() {
    let r = quirk("eh_signin_us_locale_time.json");
    let s = r.events[0].as_sign_in().unwrap();
    assert_eq!(
        s.user_principal_name.as_deref(),
        Some("dana.whitfield@contoso.com")
    );
    assert_eq!(
        s.authentication_requirement,
        Some(AuthenticationRequirement::MultiFactor)
    );
    assert_eq!(s.device.is_managed, Some(true));

    let r = quirk("eh_signin_level_lowercase.jsonl");
    assert_eq!(r.events[0].as_sign_in().unwrap().device.device_id, None);
    assert_eq!(r.events[1].as_sign_in().unwrap().error_code, Some(50126));

    let r = quirk("eh_mixed_categories.json");
    let types: Vec<_> = r
        .events
        .iter()
        .filter_map(|e| e.as_sign_in())
        .map(|s| s.event_type.clone().unwrap())
        .collect();
    assert_eq!(
        types,
        vec![
            SignInEventType::NonInteractiveUser,
            SignInEventType::ServicePrincipal,
            SignInEventType::ServicePrincipal,
            SignInEventType::ManagedIdentity
        ]
    );
    let sp = r.events[1].as_sign_in().unwrap();
    assert_eq!(sp.user_principal_name, None);
    assert_eq!(
        sp.service_principal_name.as_deref(),
        Some("fabrikam-backup-sync")
    );
    assert_eq!(sp.error_code, Some(7000215));
    assert!(!sp.is_user());
    assert_eq!(
        r.events[2].as_sign_in().unwrap().ip_address.as_deref(),
        Some("2001:db8:17::5")
    );
    assert_eq!(r.events[3].as_sign_in().unwrap().ip_address, None);
    let Body::RiskyUser(u) = &r.events[4].body else {
        panic!()
    };
    assert_eq!(
        (u.risk_level.clone(), u.risk_state.clone()),
        (Some(RiskLevel::Medium), Some(RiskState::AtRisk))
    );
    let Body::RiskDetection(d) = &r.events[5].body else {
        panic!()
    };
    assert_eq!(d.risk_event_type.as_deref(), Some("unlikelyTravel"));
    assert_eq!(d.detection_timing_type, Some(DetectionTimingType::Offline));
    assert_eq!(d.request_id.as_deref(), Some(r.events[0].meta.id.as_str()));
    assert_eq!(d.additional_info.len(), 4);
    assert_eq!(
        d.additional_info
            .iter()
            .find(|kv| kv.key == "alertUrl")
            .unwrap()
            .value,
        None
    );
    assert!(r.skipped.contains(&"ProvisioningLogs".to_owned()));

    let r = quirk("eh_audit_roles_string.json");
    let Body::Audit(a) = &r.events[0].body else {
        panic!()
    };
    assert_eq!(a.category.as_deref(), Some("RoleManagement"));
    assert_eq!(
        a.initiated_by.user.as_ref().unwrap().roles,
        vec!["Privileged Role Administrator"]
    );
    assert_eq!(
        a.modified_new_value("Role.DisplayName"),
        Some("Global Administrator")
    );
    assert_eq!(
        a.modified_new_value("Role.TemplateId"),
        Some("62e90394-69f5-4237-9190-012177145e10")
    );
    assert_eq!(
        a.target_resources[0].user_principal_name.as_deref(),
        Some("Tomasz.Nowak@contoso.com")
    );
    let Body::Audit(a) = &r.events[1].body else {
        panic!()
    };
    assert_eq!(a.initiated_by.user, None);
    assert!(
        a.modified_new_value("StrongAuthenticationMethod")
            .unwrap()
            .starts_with('[')
    );
    let Body::Audit(a) = &r.events[2].body else {
        panic!()
    };
    let tech = a.initiated_by.user.as_ref().unwrap();
    assert_eq!(tech.home_tenant_id.as_deref(), Some(PARTNER));
    assert_eq!(
        tech.display_name.as_deref(),
        Some("Northwind Traders Technician")
    );
    assert_eq!(a.activity_display_name, "Add user");
}

#[test]
fn graph_quirks() {
    let r = quirk("graph_beta_signins_page_newest_first.json");
    let s: Vec<&SignIn> = r.events.iter().map(|e| e.as_sign_in().unwrap()).collect();
    assert_eq!(
        s[0].home_tenant_id.as_deref(),
        Some(TENANT_A),
        "duplicate key: last wins"
    );
    assert!(s[1].is_interrupt() && !s[1].is_success());
    assert_eq!(
        s[1].device,
        DeviceDetail {
            operating_system: s[1].device.operating_system.clone(),
            browser: s[1].device.browser.clone(),
            ..DeviceDetail::default()
        }
    );
    assert!(s[2].is_service_provider());
    assert_eq!(s[2].home_tenant_id.as_deref(), Some(PARTNER));
    assert_eq!(s[3].home_tenant_id, None);
    assert_eq!(
        s[3].ip_address.as_deref(),
        Some("2001:db8:85a3::8a2e:370:7334")
    );

    let r = quirk("graph_directory_audits_no_tenant.json");
    let Body::Audit(a) = &r.events[0].body else {
        panic!()
    };
    assert_eq!(
        a.initiated_by.app.as_ref().unwrap().display_name.as_deref(),
        Some("MS-PIM")
    );
    assert_eq!(
        a.modified_new_value("Role.TemplateId"),
        Some("194ae4cb-b126-40b2-bd5b-6091b380977d")
    );
    let Body::Audit(a) = &r.events[1].body else {
        panic!()
    };
    let perms = a.modified_new_value("ConsentAction.Permissions").unwrap();
    assert!(
        perms.contains("Files.ReadWrite.All") && perms.contains("ConsentType: AllPrincipals"),
        "{perms}"
    );

    let r = quirk("graph_role_assignments_expand_principal.json");
    let grants: Vec<&RoleGrant> = r
        .events
        .iter()
        .map(|e| match &e.body {
            Body::Role(g) => &**g,
            _ => panic!(),
        })
        .collect();
    assert_eq!(grants[0].principal_type.as_deref(), Some("user"));
    assert_eq!(
        grants[0].principal_user_principal_name.as_deref(),
        Some("dana.whitfield@contoso.com")
    );
    assert_eq!(
        grants[0].role_definition_id,
        "62e90394-69f5-4237-9190-012177145e10"
    );
    assert_eq!(grants[1].principal_type.as_deref(), Some("group"));
    assert_eq!(
        grants[2].principal_type.as_deref(),
        Some("servicePrincipal")
    );

    let r = quirk("graph_role_eligibility_schedules.json");
    let Body::Role(g) = &r.events[0].body else {
        panic!()
    };
    assert!(g.eligible);
    assert_eq!(
        g.end,
        Some(
            DateTime::parse_from_rfc3339("2026-05-01T09:00:00Z")
                .unwrap()
                .into()
        )
    );
    let Body::Role(g) = &r.events[1].body else {
        panic!()
    };
    assert_eq!(g.end, None);
    assert_eq!(g.role_definition_id, "e8611ab8-c189-46e8-94e1-60213ab1f814");

    let r = quirk("graph_riskyusers_hidden.json");
    let Body::RiskyUser(u) = &r.events[0].body else {
        panic!()
    };
    assert_eq!(u.risk_level, Some(RiskLevel::Hidden));
    assert!(u.risk_level.as_ref().unwrap().is_medium_or_high());
    let Body::RiskyUser(u) = &r.events[1].body else {
        panic!()
    };
    assert_eq!(
        u.risk_detail.as_deref(),
        Some("m365DAdminDismissedDetection")
    );
    assert_eq!(u.risk_state, Some(RiskState::Dismissed));

    let r = quirk("graph_signin_casing.json");
    let s = r.events[0].as_sign_in().unwrap();
    assert_eq!(s.user_type, Some(UserType::Guest));
    assert_eq!(s.risk_event_types, vec!["unfamiliarFeatures"]);
    assert_eq!(s.ip_address.as_deref(), Some("198.51.100.88"));
    assert_eq!(s.risk_state, Some(RiskState::AtRisk));
    assert_eq!(s.risk_level_during_sign_in, Some(RiskLevel::Medium));
    assert_eq!(
        s.conditional_access_status,
        Some(ConditionalAccessStatus::NotApplied)
    );
    assert_eq!(
        s.cross_tenant_access_type,
        Some(CrossTenantAccessType::B2bCollaboration)
    );
    assert_eq!(
        s.authentication_protocol,
        Some(AuthenticationProtocol::OAuth2)
    );
    assert_eq!(s.event_type, Some(SignInEventType::InteractiveUser));
    assert_eq!(s.home_tenant_id.as_deref(), Some(TENANT_B));
}

#[test]
fn log_analytics_quirks() {
    let r = quirk("la_signinlogs_export.json");
    assert!(
        r.events
            .iter()
            .all(|e| e.meta.shape == Shape::LogAnalyticsJson)
    );
    let s = r.events[0].as_sign_in().unwrap();
    assert_eq!(s.user_type, Some(UserType::Guest));
    assert_eq!(
        s.cross_tenant_access_type,
        Some(CrossTenantAccessType::B2bCollaboration)
    );
    assert_eq!(s.home_tenant_id.as_deref(), Some(TENANT_B));
    assert_eq!(s.error_code, Some(0));
    assert_eq!(s.autonomous_system_number, Some(64505));
    let s = r.events[1].as_sign_in().unwrap();
    assert_eq!(s.error_code, Some(53003));
    assert_eq!(
        s.conditional_access_status,
        Some(ConditionalAccessStatus::Failure)
    );
    assert_eq!(
        s.resource_id.as_deref(),
        Some("797f4846-ba00-4fd7-ba43-dac1f8f63013")
    );

    let r = quirk("la_noninteractive_export.csv");
    assert!(
        r.events
            .iter()
            .all(|e| e.meta.shape == Shape::LogAnalyticsCsv)
    );
    let s: Vec<&SignIn> = r.events.iter().map(|e| e.as_sign_in().unwrap()).collect();
    assert_eq!(s[0].event_type, Some(SignInEventType::NonInteractiveUser));
    assert_eq!(s[0].is_interactive, Some(false));
    assert!(!s[0].is_interactive());
    assert_eq!(s[0].device.is_managed, Some(true));
    assert_eq!(s[1].error_code, Some(700082));
    assert_eq!(s[2].device.device_id, None);
    assert!(!s[2].device.is_known_managed());
    assert_eq!(
        s[2].user_principal_name.as_deref(),
        Some("kofi.mensah@contoso.com")
    );

    let r = quirk("la_audit_and_risk_export.json");
    let Body::Audit(a) = &r.events[0].body else {
        panic!()
    };
    assert_eq!(
        a.activity_display_name,
        "Update application – Certificates and secrets management"
    );
    assert_eq!(a.category.as_deref(), Some("ApplicationManagement"));
    assert_eq!(a.operation_type.as_deref(), Some("Update"));
    assert_eq!(
        a.initiated_by
            .user
            .as_ref()
            .unwrap()
            .user_principal_name
            .as_deref(),
        Some("Priya.Natarajan@contoso.com")
    );
    let Body::RiskyUser(u) = &r.events[1].body else {
        panic!()
    };
    assert_eq!(u.risk_state, Some(RiskState::ConfirmedCompromised));
    let Body::RiskDetection(d) = &r.events[2].body else {
        panic!()
    };
    assert_eq!(d.ip_address.as_deref(), Some("198.51.100.23"));
    assert_eq!(d.location.city.as_deref(), Some("Rotterdam"));
    assert_eq!(d.additional_info.len(), 2);
    assert_eq!(
        d.request_id.as_deref(),
        Some("df7c61f1-e65f-4a38-8527-97cb0e887b00")
    );
}
