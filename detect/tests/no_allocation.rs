//! The engine's hot path allocates nothing: once the principals, their IPs and countries are
//! known, deciding on a sign-in that fires no rule and learning from it makes no heap allocation.
//! An allocation per event is what the performance budget rules out (docs/PERFORMANCE-RESULTS.md);
//! this counts it with `allocation-counter`, whose allocator counts on the measuring thread only.
//! (This file is the only user of that crate, so only this test binary gets its allocator.)

use chrono::{TimeZone, Utc};
use entrawatch_detect::config::{DetectConfig, PrincipalRef};
use entrawatch_detect::{Engine, Finding};
use entrawatch_ingest::model::{
    Audit, AuditResult, AuditUser, AuthenticationRequirement, AuthenticationStep, Body,
    ConditionalAccessStatus, DeviceDetail, Event, Initiator, Location, Meta, ModifiedProperty,
    Shape, SignIn, SignInEventType, TargetResource, TimeSource, UserType,
};

const TENANT: &str = "6f1c2d3e-4a5b-4c6d-8e7f-0123456789ab";

/// A successful MFA sign-in of user `u` (0-based) at `second`, from that user's own IP, with an
/// IMAP-free client and a browser user agent, as the simulated world writes most of them.
fn sign_in(u: usize, second: i64) -> Event {
    let upn = format!("user{u}@contoso.example");
    let s = SignIn {
        event_type: Some(SignInEventType::InteractiveUser),
        is_interactive: Some(true),
        user_id: Some(format!("{u:08x}-1111-4222-8333-444455556666").into()),
        user_principal_name: Some(upn.into()),
        user_type: Some(UserType::Member),
        app_id: Some("c44b4083-3bb0-49c1-b47d-974e53cbdf3c".into()),
        app_display_name: Some("Azure Portal".into()),
        ip_address: Some(format!("203.0.113.{}", u % 200).into()),
        client_app_used: Some("Browser".into()),
        user_agent: Some(
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Edg/120.0".into(),
        ),
        error_code: Some(0),
        conditional_access_status: Some(ConditionalAccessStatus::Success),
        authentication_requirement: Some(AuthenticationRequirement::MultiFactor),
        authentication_details: vec![AuthenticationStep {
            method: Some("Mobile app notification".into()),
            succeeded: Some(true),
            requirement: Some("Multi-factor authentication".into()),
            ..AuthenticationStep::default()
        }],
        home_tenant_id: Some(TENANT.into()),
        resource_tenant_id: Some(TENANT.into()),
        device: DeviceDetail {
            device_id: Some(format!("dev-{u}").into()),
            is_compliant: Some(true),
            is_managed: Some(true),
            trust_type: Some("Azure AD joined".into()),
            ..DeviceDetail::default()
        },
        location: Location {
            city: Some("Seattle".into()),
            country_or_region: Some("US".into()),
            latitude: Some(47.6062),
            longitude: Some(-122.3321),
            ..Location::default()
        },
        ..SignIn::default()
    };
    Event {
        meta: Meta {
            id: format!("{u:08x}-{second:012x}-0000-0000-000000000000").into(),
            tenant_id: TENANT.into(),
            time: Utc.timestamp_opt(1_790_000_000 + second, 0).unwrap(),
            time_source: TimeSource::Record,
            shape: Shape::Graph,
        },
        body: Body::SignIn(Box::new(s)),
    }
}

fn failed(mut event: Event, code: i64) -> Event {
    if let Body::SignIn(s) = &mut event.body {
        s.error_code = Some(code);
        s.failure_reason = Some("Invalid username or password.".into());
        s.authentication_details.clear();
    }
    event
}

/// An admin updating user `u`'s profile: an audit that is no role change.
fn update_user(u: usize, second: i64) -> Event {
    let a = Audit {
        activity_display_name: "Update user".into(),
        category: Some("UserManagement".into()),
        result: Some(AuditResult::Success),
        logged_by_service: Some("Core Directory".into()),
        initiated_by: Initiator {
            user: Some(AuditUser {
                id: Some("a0a0a0a0-1111-4222-8333-444455556666".into()),
                user_principal_name: Some("helpdesk@contoso.example".into()),
                ip_address: Some("198.51.100.7".into()),
                ..AuditUser::default()
            }),
            app: None,
        },
        target_resources: vec![TargetResource {
            id: Some(format!("{u:08x}-1111-4222-8333-444455556666").into()),
            user_principal_name: Some(format!("user{u}@contoso.example").into()),
            resource_type: Some("User".into()),
            modified_properties: vec![ModifiedProperty {
                display_name: Some("JobTitle".into()),
                old_value: Some("[\"Analyst\"]".into()),
                new_value: Some("[\"Senior analyst\"]".into()),
            }],
            ..TargetResource::default()
        }],
        ..Audit::default()
    };
    let mut event = sign_in(u, second);
    event.meta.id = format!("audit-{second}").into();
    event.body = Body::Audit(Box::new(a));
    event
}

/// Every rule enabled, a break-glass account and a privileged principal named in config (so
/// both lists are asked), `users` users taking turns, one event every 7 seconds: mostly
/// successful sign-ins, a mistyped password one time in ten, an "Update user" audit one time in
/// twenty. The first `warm` events teach the engine; allocations are counted over the rest,
/// which span hours of event time (minute ticks and hourly evictions included).
fn count_steady_state_allocations(users: usize, warm: usize, counted: usize) -> (u64, usize) {
    let named = |id: &str| {
        vec![PrincipalRef {
            tenant_id: TENANT.to_owned(),
            id: id.to_owned(),
        }]
        .into()
    };
    let config = DetectConfig {
        break_glass: named("emergency@contoso.example"),
        privileged_principals: named("0000ffff-1111-4222-8333-444455556666"),
        ..DetectConfig::default()
    };
    let mut engine = Engine::new(config).unwrap();
    let events: Vec<Event> = (0..warm + counted)
        .map(|i| {
            let (user, second) = (i % users, i as i64 * 7);
            match i % 20 {
                // A mistyped password now and then: failures are kept per principal and per IP.
                3 | 13 => failed(sign_in(user, second), 50126),
                // Directory activity that changes no role.
                19 => update_user(user, second),
                _ => sign_in(user, second),
            }
        })
        .collect();
    let mut findings: Vec<Finding> = Vec::with_capacity(64);
    for event in &events[..warm] {
        engine.process(event, &mut findings);
    }
    let fired_while_learning = findings.len();
    findings.clear();
    let made = allocation_counter::measure(|| {
        for event in &events[warm..] {
            engine.process(event, &mut findings);
        }
    })
    .count_total;
    assert!(
        findings.is_empty(),
        "the counted events must fire nothing (learning fired {fired_while_learning}): {findings:#?}"
    );
    (made, counted)
}

#[test]
fn ordinary_events_of_known_principals_cost_no_allocation() {
    let (made, counted) = count_steady_state_allocations(50, 2_000, 5_000);
    assert_eq!(
        made, 0,
        "{made} heap allocations over {counted} ordinary events of known principals"
    );
}
