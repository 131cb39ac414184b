//! Builders for detector fixture stories: events with realistic defaults, and a runner that feeds
//! them, in order, to an engine with one rule enabled.

#![allow(dead_code)]

use chrono::{DateTime, Duration, TimeZone, Utc};
use entrawatch_ingest::model::*;
use serde_json::{Value, json};

use crate::config::DetectConfig;
use crate::engine::Engine;
use crate::finding::Finding;

pub const TENANT: &str = "11111111-aaaa-4aaa-8aaa-111111111111";
pub const TENANT_B: &str = "22222222-bbbb-4bbb-8bbb-222222222222";
pub const PARTNER: &str = "33333333-cccc-4ccc-8ccc-333333333333";
pub const GLOBAL_ADMIN: &str = "62e90394-69f5-4237-9190-012177145e10";

/// Minutes after the stories' epoch, 2026-10-01T00:00:00Z.
pub fn at(minutes: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 10, 1, 0, 0, 0).unwrap() + Duration::minutes(minutes)
}

/// The object id the builders give a UPN.
pub fn uid(upn: &str) -> String {
    format!("uid-{upn}")
}

fn meta(id: &str, tenant: &str, minute: i64) -> Meta {
    Meta {
        id: id.into(),
        tenant_id: tenant.into(),
        time: at(minute),
        time_source: TimeSource::Record,
        shape: Shape::Graph,
    }
}

/// A sign-in, by default a successful interactive MFA sign-in to the Azure portal from a managed
/// device in Seattle.
#[derive(Debug, Clone)]
pub struct SignInB {
    meta: Meta,
    s: SignIn,
}

pub fn sign_in(id: &str, upn: &str, minute: i64) -> SignInB {
    let s = SignIn {
        event_type: Some(SignInEventType::InteractiveUser),
        is_interactive: Some(true),
        user_id: Some(uid(upn).into()),
        user_display_name: Some(upn.split('@').next().unwrap_or(upn).to_owned().into()),
        user_principal_name: Some(upn.into()),
        user_type: Some(UserType::Member),
        app_id: Some("c44b4083-3bb0-49c1-b47d-974e53cbdf3c".into()),
        app_display_name: Some("Azure Portal".into()),
        resource_id: Some("797f4846-ba00-4fd7-ba43-dac1f8f63013".into()),
        resource_display_name: Some("Windows Azure Service Management API".into()),
        ip_address: Some("203.0.113.10".into()),
        client_app_used: Some("Browser".into()),
        user_agent: Some("Mozilla/5.0 (Windows NT 10.0; Win64; x64) Edg/120.0".into()),
        error_code: Some(0),
        conditional_access_status: Some(ConditionalAccessStatus::Success),
        authentication_requirement: Some(AuthenticationRequirement::MultiFactor),
        authentication_details: vec![
            step("Password", "Primary authentication"),
            step("Mobile app notification", "Multi-factor authentication"),
        ],
        resource_tenant_id: Some(TENANT.into()),
        home_tenant_id: Some(TENANT.into()),
        cross_tenant_access_type: Some(CrossTenantAccessType::None),
        device: DeviceDetail {
            device_id: Some("dev-1".into()),
            operating_system: Some("Windows 10".into()),
            browser: Some("Edge 120.0".into()),
            is_compliant: Some(true),
            is_managed: Some(true),
            trust_type: Some("Azure AD joined".into()),
            ..DeviceDetail::default()
        },
        location: Location {
            city: Some("Seattle".into()),
            state: Some("Washington".into()),
            country_or_region: Some("US".into()),
            latitude: Some(47.6062),
            longitude: Some(-122.3321),
        },
        ..SignIn::default()
    };
    SignInB {
        meta: meta(id, TENANT, minute),
        s,
    }
}

fn step(method: &str, requirement: &str) -> AuthenticationStep {
    AuthenticationStep {
        method: Some(method.into()),
        succeeded: Some(true),
        requirement: Some(requirement.into()),
        ..AuthenticationStep::default()
    }
}

impl SignInB {
    pub fn tenant(mut self, tenant: &str) -> Self {
        self.meta.tenant_id = tenant.into();
        self.s.resource_tenant_id = Some(tenant.into());
        if self.s.cross_tenant_access_type != Some(CrossTenantAccessType::ServiceProvider) {
            self.s.home_tenant_id = Some(tenant.into());
        }
        self
    }
    pub fn fail(mut self, code: i64) -> Self {
        self.s.error_code = Some(code);
        self
    }
    /// Password only.
    pub fn single_factor(mut self) -> Self {
        self.s.authentication_requirement = Some(AuthenticationRequirement::SingleFactor);
        self.s.authentication_details = vec![step("Password", "Primary authentication")];
        self
    }
    /// MFA with this second method (`FIDO2 security key`, `Text message`, `Previously satisfied`).
    pub fn mfa(mut self, method: &str) -> Self {
        self.s.authentication_requirement = Some(AuthenticationRequirement::MultiFactor);
        self.s.authentication_details = vec![
            step("Password", "Primary authentication"),
            step(method, "Multi-factor authentication"),
        ];
        self
    }
    pub fn non_interactive(mut self) -> Self {
        self.s.event_type = Some(SignInEventType::NonInteractiveUser);
        self.s.is_interactive = Some(false);
        self
    }
    pub fn place(mut self, country: &str, city: &str, lat: f64, lon: f64) -> Self {
        self.s.location = Location {
            city: Some(city.into()),
            state: None,
            country_or_region: Some(country.into()),
            latitude: Some(lat),
            longitude: Some(lon),
        };
        self
    }
    pub fn ip(mut self, ip: &str) -> Self {
        self.s.ip_address = Some(ip.into());
        self
    }
    pub fn app(mut self, name: &str, id: &str) -> Self {
        self.s.app_display_name = Some(name.into());
        self.s.app_id = Some(id.into());
        self
    }
    pub fn resource(mut self, name: &str, id: &str) -> Self {
        self.s.resource_display_name = Some(name.into());
        self.s.resource_id = Some(id.into());
        self
    }
    pub fn client_app(mut self, client: &str) -> Self {
        self.s.client_app_used = Some(client.into());
        self
    }
    pub fn user_agent(mut self, ua: &str) -> Self {
        self.s.user_agent = Some(ua.into());
        self
    }
    pub fn protocol(mut self, p: AuthenticationProtocol) -> Self {
        self.s.authentication_protocol = Some(p);
        self
    }
    /// A partner technician of `home` acting in this sign-in's tenant.
    pub fn partner(mut self, home: &str) -> Self {
        self.s.cross_tenant_access_type = Some(CrossTenantAccessType::ServiceProvider);
        self.s.home_tenant_id = Some(home.into());
        self
    }
    pub fn unmanaged(mut self) -> Self {
        self.s.device = DeviceDetail {
            operating_system: Some("Windows 10".into()),
            ..DeviceDetail::default()
        };
        self
    }
    pub fn risk(mut self, level: RiskLevel, state: RiskState) -> Self {
        self.s.risk_level_during_sign_in = Some(level.clone());
        self.s.risk_level_aggregated = Some(level);
        self.s.risk_state = Some(state);
        self
    }
    pub fn guest(mut self, home: &str) -> Self {
        self.s.user_type = Some(UserType::Guest);
        self.s.cross_tenant_access_type = Some(CrossTenantAccessType::B2bCollaboration);
        self.s.home_tenant_id = Some(home.into());
        self
    }
    pub fn with(mut self, f: impl FnOnce(&mut SignIn)) -> Self {
        f(&mut self.s);
        self
    }
    pub fn build(self) -> Event {
        Event {
            meta: self.meta,
            body: Body::SignIn(Box::new(self.s)),
        }
    }
}

/// A directory audit, by default a successful one initiated by a user of the tenant.
#[derive(Debug, Clone)]
pub struct AuditB {
    meta: Meta,
    a: Audit,
}

pub fn audit(id: &str, activity: &str, minute: i64) -> AuditB {
    let a = Audit {
        activity_display_name: activity.into(),
        category: Some("UserManagement".into()),
        result: Some(AuditResult::Success),
        logged_by_service: Some("Core Directory".into()),
        initiated_by: Initiator {
            user: Some(AuditUser {
                id: Some(uid("admin@contoso.com").into()),
                user_principal_name: Some("admin@contoso.com".into()),
                ip_address: Some("203.0.113.10".into()),
                ..AuditUser::default()
            }),
            app: None,
        },
        ..Audit::default()
    };
    AuditB {
        meta: meta(id, TENANT, minute),
        a,
    }
}

impl AuditB {
    pub fn tenant(mut self, tenant: &str) -> Self {
        self.meta.tenant_id = tenant.into();
        self
    }
    pub fn category(mut self, c: &str) -> Self {
        self.a.category = Some(c.into());
        self
    }
    pub fn by_user(mut self, upn: &str) -> Self {
        self.a.initiated_by = Initiator {
            user: Some(AuditUser {
                id: Some(uid(upn).into()),
                user_principal_name: Some(upn.into()),
                ..AuditUser::default()
            }),
            app: None,
        };
        self
    }
    /// Initiated by a partner technician (`user_<hex>` name, partner home tenant).
    pub fn by_technician(mut self, home: &str) -> Self {
        self.a.initiated_by = Initiator {
            user: Some(AuditUser {
                id: Some("5f0c2a9e-8b7d-4c3a-9e1f-2b3c4d5e6f70".into()),
                display_name: Some("Northwind CSP Technician".into()),
                user_principal_name: Some(
                    "user_5f0c2a9e8b7d4c3a9e1f2b3c4d5e6f70@northwindcsp.onmicrosoft.com".into(),
                ),
                home_tenant_id: Some(home.into()),
                ..AuditUser::default()
            }),
            app: None,
        };
        self
    }
    pub fn by_app(mut self, name: &str) -> Self {
        self.a.initiated_by = Initiator {
            user: None,
            app: Some(AuditApp {
                display_name: Some(name.into()),
                ..AuditApp::default()
            }),
        };
        self
    }
    pub fn target(mut self, kind: &str, id: &str, name: &str) -> Self {
        self.a.target_resources.push(TargetResource {
            id: Some(id.into()),
            display_name: Some(name.into()),
            resource_type: Some(kind.into()),
            user_principal_name: (kind == "User").then(|| Text::from(name)),
            ..TargetResource::default()
        });
        self
    }
    /// A user target whose id is [`uid`] of the UPN.
    pub fn target_user(self, upn: &str) -> Self {
        let id = uid(upn);
        self.target("User", &id, upn)
    }
    /// A modified property on the last target (values as they are after decoding).
    pub fn modified(mut self, name: &str, old: Option<&str>, new: Option<&str>) -> Self {
        if self.a.target_resources.is_empty() {
            self.a.target_resources.push(TargetResource::default());
        }
        self.a
            .target_resources
            .last_mut()
            .unwrap()
            .modified_properties
            .push(ModifiedProperty {
                display_name: Some(name.into()),
                old_value: old.map(Text::from),
                new_value: new.map(Text::from),
            });
        self
    }
    pub fn failed(mut self) -> Self {
        self.a.result = Some(AuditResult::Failure);
        self
    }
    pub fn with(mut self, f: impl FnOnce(&mut Audit)) -> Self {
        f(&mut self.a);
        self
    }
    pub fn build(self) -> Event {
        Event {
            meta: self.meta,
            body: Body::Audit(Box::new(self.a)),
        }
    }
}

/// A role held by a principal (directory context).
pub fn role_grant(tenant: &str, upn: &str, role: &str) -> Event {
    Event {
        meta: Meta {
            id: format!("ra-{upn}-{role}").into(),
            tenant_id: tenant.into(),
            time: DateTime::<Utc>::UNIX_EPOCH,
            time_source: TimeSource::Snapshot,
            shape: Shape::Graph,
        },
        body: Body::Role(Box::new(RoleGrant {
            eligible: false,
            principal_id: uid(upn).into(),
            principal_type: Some("user".into()),
            principal_user_principal_name: Some(upn.into()),
            role_definition_id: role.into(),
            ..RoleGrant::default()
        })),
    }
}

/// A risky-user record.
pub fn risky_user(upn: &str, level: RiskLevel, state: RiskState, minute: i64) -> Event {
    Event {
        meta: meta(&uid(upn), TENANT, minute),
        body: Body::RiskyUser(Box::new(entrawatch_ingest::model::RiskyUser {
            user_id: uid(upn).into(),
            user_principal_name: Some(upn.into()),
            risk_level: Some(level),
            risk_state: Some(state),
            risk_last_updated: Some(at(minute)),
            ..Default::default()
        })),
    }
}

/// A risk detection.
pub fn risk_detection(
    id: &str,
    upn: &str,
    kind: &str,
    level: RiskLevel,
    state: RiskState,
    minute: i64,
) -> Event {
    Event {
        meta: meta(id, TENANT, minute),
        body: Body::RiskDetection(Box::new(RiskDetection {
            user_id: Some(uid(upn).into()),
            user_principal_name: Some(upn.into()),
            risk_event_type: Some(kind.into()),
            risk_level: Some(level),
            risk_state: Some(state),
            detection_timing_type: Some(DetectionTimingType::Offline),
            last_updated: Some(at(minute)),
            ..Default::default()
        })),
    }
}

/// `days` of ordinary MFA sign-ins for a user from Seattle, `per_day` a day, ending before `minute`.
pub fn baseline(upn: &str, days: i64, per_day: i64, end_minute: i64) -> Vec<Event> {
    let mut out = Vec::new();
    for d in (1..=days).rev() {
        for k in 0..per_day {
            let m = end_minute - d * 1440 + k * 60;
            out.push(sign_in(&format!("base-{upn}-{d}-{k}"), upn, m).build());
        }
    }
    out
}

/// Runs the events, in order, through an engine with only `rule` enabled.
pub fn run(rule: &str, mut config: DetectConfig, events: &[Event]) -> Vec<Finding> {
    config.enabled_rules = vec![rule.to_owned()];
    let mut engine = Engine::new(config).expect("valid config");
    let mut out = Vec::new();
    for e in events {
        engine.process(e, &mut out);
    }
    out
}

/// The parts of findings worth snapshotting.
pub fn snapshot(findings: &[Finding]) -> Value {
    Value::Array(
        findings
            .iter()
            .map(|f| {
                json!({
                    "rule": f.rule, "severity": f.severity, "tenant_id": f.tenant_id, "principal": f.principal,
                    "time": f.time.to_rfc3339(), "event_ids": f.event_ids, "title": f.title,
                    "summary": f.summary, "evidence": f.evidence, "mitre": f.mitre,
                })
            })
            .collect(),
    )
}

/// The events of an ingest fixture file (any wire shape), read with `tenant` for records that name
/// none; rejected and skipped records are dropped.
pub fn fixture_events(name: &str, bytes: &[u8], tenant: &str) -> Vec<Event> {
    let opts = entrawatch_ingest::ReadOptions {
        tenant: Some(tenant.to_owned()),
        ..Default::default()
    };
    let mut out = Vec::new();
    entrawatch_ingest::read_bytes(name, bytes, Some(tenant), &opts, &mut |item| {
        if let entrawatch_ingest::Item::Event(e) = item {
            out.push(*e);
        }
    });
    out
}
