//! Criterion benches of the engine, per detector, over one fixed event stream.
//!
//! What comes in: a synthetic but realistic stream built here (2,000 users in 10 tenants signing in
//! ten times each over ten days: successes with MFA from home, password failures, MFA interrupts,
//! legacy-protocol attempts, a password spray, partner technicians, a trip abroad, and directory
//! audits). What goes out: events per second for an engine running only that detector (its
//! decisions plus the state every engine keeps), and for the whole catalogue (`all`), printed by
//! criterion (`cargo bench -p entrawatch-detect --bench engine`).

use std::hint::black_box;
use std::time::Duration;

use chrono::{DateTime, Utc};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use entrawatch_detect::{DetectConfig, Engine, registry};
use entrawatch_ingest::model::*;

const USERS: u64 = 2_000;
const TENANTS: u64 = 10;
const ROUNDS: u64 = 10;
const PARTNER: &str = "99999999-9999-4999-8999-999999999999";

fn guid(kind: u32, n: u64) -> String {
    format!("{kind:08x}-0000-4000-8000-{n:012x}")
}

fn tenant(n: u64) -> String {
    guid(0x7e7e_0000, n % TENANTS)
}

fn meta(id: String, tenant: String, at: i64) -> Meta {
    Meta {
        id: id.into(),
        tenant_id: tenant.into(),
        time: DateTime::<Utc>::from_timestamp(at, 0).unwrap_or_default(),
        time_source: TimeSource::Record,
        shape: Shape::Graph,
    }
}

const PLACES: [(&str, &str, f64, f64); 4] = [
    ("GB", "London", 51.5072, -0.1276),
    ("DE", "Berlin", 52.52, 13.405),
    ("US", "Seattle", 47.6062, -122.3321),
    ("JP", "Tokyo", 35.6762, 139.6503),
];

fn sign_in(u: u64, round: u64, at: i64) -> Event {
    let (country, city, lat, lon) = PLACES[(u % 4) as usize];
    let abroad = u % 97 == 5 && round == 6;
    let (country, city, lat, lon) = if abroad {
        ("BR", "Sao Paulo", -23.5505, -46.6333)
    } else {
        (country, city, lat, lon)
    };
    let technician = u % 250 == 1;
    let code = match (u + round) % 40 {
        0 => 50126,
        1 => 50074,
        _ => 0,
    };
    let legacy = u % 300 == 2 && round.is_multiple_of(3);
    let s = SignIn {
        event_type: Some(SignInEventType::InteractiveUser),
        is_interactive: Some(true),
        user_id: Some(guid(0x5a5a_0000, u).into()),
        user_principal_name: Some(format!("user{u}@t{}.example", u % TENANTS).into()),
        app_id: Some("00000003-0000-0ff1-ce00-000000000000".into()),
        app_display_name: Some("Office 365 SharePoint Online".into()),
        ip_address: Some(format!("203.0.{}.{}", u / 250, u % 250).into()),
        error_code: Some(code),
        client_app_used: Some(if legacy { "IMAP4" } else { "Browser" }.into()),
        authentication_requirement: Some(AuthenticationRequirement::parse(
            "multiFactorAuthentication",
        )),
        authentication_details: vec![
            AuthenticationStep {
                method: Some("Password".into()),
                succeeded: Some(code != 50126),
                requirement: Some("Primary authentication".into()),
                ..AuthenticationStep::default()
            },
            AuthenticationStep {
                method: Some("Mobile app notification".into()),
                succeeded: Some(code == 0),
                requirement: Some("Multi-factor authentication".into()),
                result_detail: Some("MFA successfully completed".into()),
                ..AuthenticationStep::default()
            },
        ],
        cross_tenant_access_type: technician
            .then(|| CrossTenantAccessType::parse("serviceProvider")),
        home_tenant_id: technician.then(|| PARTNER.into()),
        device: DeviceDetail {
            device_id: Some(guid(0xde00_0000, u).into()),
            operating_system: Some("Windows10".into()),
            is_managed: Some(true),
            is_compliant: Some(true),
            ..DeviceDetail::default()
        },
        location: Location {
            city: Some(city.into()),
            country_or_region: Some(country.into()),
            latitude: Some(lat),
            longitude: Some(lon),
            ..Location::default()
        },
        ..SignIn::default()
    };
    Event {
        meta: meta(guid(0x1d00_0000 + round as u32, u), tenant(u), at),
        body: Body::SignIn(Box::new(s)),
    }
}

fn spray(i: u64, at: i64) -> Event {
    let s = SignIn {
        event_type: Some(SignInEventType::InteractiveUser),
        user_id: Some(guid(0x5a5a_0000, i * 7).into()),
        ip_address: Some("198.51.100.66".into()),
        error_code: Some(50126),
        client_app_used: Some("Browser".into()),
        ..SignIn::default()
    };
    Event {
        meta: meta(guid(0x5b00_0000, i), tenant(i * 7), at),
        body: Body::SignIn(Box::new(s)),
    }
}

fn audit(n: u64, activity: &str, at: i64) -> Event {
    let a = Audit {
        activity_display_name: activity.into(),
        category: Some("RoleManagement".into()),
        result: Some(AuditResult::parse("success")),
        initiated_by: Initiator {
            user: Some(AuditUser {
                id: Some(guid(0x5a5a_0000, n).into()),
                user_principal_name: Some(format!("user{n}@t{}.example", n % TENANTS).into()),
                ..AuditUser::default()
            }),
            app: None,
        },
        target_resources: vec![TargetResource {
            id: Some(guid(0x5a5a_0000, n + 1).into()),
            resource_type: Some("User".into()),
            modified_properties: vec![ModifiedProperty {
                display_name: Some("Role.DisplayName".into()),
                new_value: Some("Global Reader".into()),
                ..ModifiedProperty::default()
            }],
            ..TargetResource::default()
        }],
        ..Audit::default()
    };
    Event {
        meta: meta(guid(0xa0d1_0000, n), tenant(n), at),
        body: Body::Audit(Box::new(a)),
    }
}

/// The stream, in event-time order.
fn stream() -> Vec<Event> {
    let start = 1_790_000_000i64;
    let span = 10 * 86_400;
    let total = USERS * ROUNDS;
    let mut events = Vec::new();
    for round in 0..ROUNDS {
        for u in 0..USERS {
            let seq = round * USERS + u;
            let at = start + (seq as i64 * span / total as i64);
            events.push(sign_in(u, round, at));
            if seq.is_multiple_of(97) {
                events.push(audit(seq, "Update user", at));
            }
            if seq.is_multiple_of(1999) {
                events.push(audit(seq, "Add member to role", at));
            }
            if round == 8 && (100..130).contains(&u) {
                events.push(spray(u, at));
            }
        }
    }
    events
}

fn engine(rule: Option<&str>) -> Engine {
    let config = DetectConfig {
        partner_tenants: vec![PARTNER.to_owned()],
        enabled_rules: rule.map(|r| vec![r.to_owned()]).unwrap_or_default(),
        ..DetectConfig::default()
    };
    Engine::new(config).expect("bench config is valid")
}

fn run(mut engine: Engine, events: &[Event]) -> usize {
    let mut out = Vec::new();
    let mut findings = 0;
    for e in events {
        engine.process(e, &mut out);
        findings += out.len();
        out.clear();
    }
    black_box(findings)
}

fn detectors(c: &mut Criterion) {
    let events = stream();
    let mut group = c.benchmark_group("engine");
    group.throughput(Throughput::Elements(events.len() as u64));
    let rules: Vec<&'static str> = registry::all().iter().map(|d| d.id()).collect();
    for rule in std::iter::once(None).chain(rules.into_iter().map(Some)) {
        group.bench_function(rule.unwrap_or("all"), |b| {
            b.iter_batched(|| engine(rule), |e| run(e, &events), BatchSize::LargeInput)
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = detectors
}
criterion_main!(benches);
