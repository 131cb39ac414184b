//! Directory audits: the initiator (an app, a user as their home tenant names them, or an object
//! id alone), the target resources with their modified properties, and the additional details.
//! Event Hub `AuditLogs` records wrap the same properties Graph `directoryAudit` entities carry.

use serde_json::{Map, Value, json};

use super::{iso7, resource_path};
use crate::simulate::catalog::CITIES;
use crate::simulate::records::{Actor, Audit, Target};
use crate::simulate::world::{Kind, World};

fn initiator(w: &World, a: &Audit, graph: bool) -> (Value, String, Option<String>) {
    match &a.actor {
        Actor::App { name, sp } => {
            let app = json!({"appId": null, "displayName": name, "servicePrincipalId": sp.to_string(), "servicePrincipalName": null});
            let mut m = Map::new();
            m.insert("app".into(), app);
            m.insert("user".into(), Value::Null);
            ((Value::Object(m)), (*name).to_owned(), None)
        }
        Actor::IdOnly { account, net } => {
            let ip = net.map(|n| w.nets[n].ip.clone());
            let mut u = Map::new();
            u.insert("id".into(), json!(w.accounts[*account].id.to_string()));
            u.insert("displayName".into(), Value::Null);
            u.insert("userPrincipalName".into(), Value::Null);
            u.insert("ipAddress".into(), json!(ip.clone().unwrap_or_default()));
            if !graph {
                u.insert("roles".into(), json!([]));
            }
            let mut m = Map::new();
            m.insert("user".into(), Value::Object(u));
            if graph {
                m.insert("app".into(), Value::Null);
            }
            (Value::Object(m), String::new(), ip)
        }
        Actor::User { account, net } => {
            let acc = &w.accounts[*account];
            let technician = acc.kind == Kind::Technician && acc.home_tenant != a.tenant;
            let home = &w.tenants[acc.home_tenant];
            let (display, upn) = if technician {
                (
                    Some(w.technician_display(*account)),
                    w.technician_upn(*account),
                )
            } else {
                (None, acc.upn.clone())
            };
            let ip = net.map(|n| w.nets[n].ip.clone());
            let mut u = Map::new();
            u.insert("id".into(), json!(acc.id.to_string()));
            u.insert("displayName".into(), json!(display));
            u.insert("userPrincipalName".into(), json!(upn));
            u.insert("ipAddress".into(), json!(ip.clone().unwrap_or_default()));
            if !graph {
                u.insert("roles".into(), json!([]));
            }
            u.insert(
                "userType".into(),
                if technician {
                    Value::Null
                } else {
                    json!(if acc.kind == Kind::Guest {
                        "Guest"
                    } else {
                        "Member"
                    })
                },
            );
            u.insert("homeTenantId".into(), json!(home.id.to_string()));
            u.insert(
                "homeTenantName".into(),
                if technician {
                    json!(home.name)
                } else {
                    Value::Null
                },
            );
            let mut m = Map::new();
            m.insert("user".into(), Value::Object(u));
            if graph {
                m.insert("app".into(), Value::Null);
            }
            (
                Value::Object(m),
                display.unwrap_or_else(|| acc.display.clone()),
                ip,
            )
        }
    }
}

fn target(t: &Target, graph: bool) -> Value {
    let props: Vec<Value> = t
        .props
        .iter()
        .map(|(name, old, new)| json!({"displayName": name, "oldValue": old, "newValue": new}))
        .collect();
    let mut m = Map::new();
    m.insert("id".into(), json!(t.id));
    m.insert("displayName".into(), json!(t.display));
    m.insert("type".into(), json!(t.kind));
    m.insert("userPrincipalName".into(), json!(t.upn));
    if graph {
        m.insert(
            "groupType".into(),
            if t.kind == "Group" {
                json!("azureAD")
            } else {
                Value::Null
            },
        );
    }
    m.insert("modifiedProperties".into(), Value::Array(props));
    if !graph {
        m.insert("administrativeUnits".into(), json!([]));
    }
    Value::Object(m)
}

fn audit_prefix(service: &str) -> &'static str {
    match service {
        "Self-service Password Management" => "SSPR",
        "PIM" => "PIM",
        "Authentication Methods" => "UserManagement",
        "Invited Users" => "B2B",
        "Conditional Access" => "IPCGraph",
        _ => "Directory",
    }
}

fn audit_props(w: &World, a: &Audit, graph: bool) -> (Map<String, Value>, String, Option<String>) {
    let (initiated, identity, ip) = initiator(w, a, graph);
    let mut p = Map::new();
    p.insert(
        "id".into(),
        json!(format!(
            "{}_{}_{}",
            audit_prefix(a.service),
            a.corr,
            a.id_tail
        )),
    );
    p.insert("category".into(), json!(a.category));
    p.insert("correlationId".into(), json!(a.corr.to_string()));
    p.insert("result".into(), json!("success"));
    p.insert("resultReason".into(), json!(a.reason));
    p.insert("activityDisplayName".into(), json!(a.activity));
    p.insert(
        "activityDateTime".into(),
        json!(if graph {
            iso7(a.t, "Z")
        } else {
            iso7(a.t, "+00:00")
        }),
    );
    p.insert("loggedByService".into(), json!(a.service));
    p.insert("operationType".into(), json!(a.op));
    p.insert("initiatedBy".into(), initiated);
    p.insert(
        "targetResources".into(),
        Value::Array(a.targets.iter().map(|t| target(t, graph)).collect()),
    );
    p.insert(
        "additionalDetails".into(),
        Value::Array(
            a.details
                .iter()
                .map(|(k, v)| json!({"key": k, "value": v}))
                .collect(),
        ),
    );
    (p, identity, ip)
}

/// An Event Hub `AuditLogs` record.
pub fn eh_audit(w: &World, a: &Audit) -> Value {
    let (mut p, identity, ip) = audit_props(w, a, false);
    let tid = w.tenants[a.tenant].id.to_string();
    p.insert("tenantId".into(), json!(tid));
    p.insert("resultType".into(), json!(""));
    p.insert("resultDescription".into(), json!(""));
    p.insert("operationName".into(), json!(a.activity));
    p.insert("identity".into(), json!(identity));
    p.insert(
        "tenantGeo".into(),
        json!(if CITIES[w.tenants[a.tenant].hq].tz < -2 {
            "NA"
        } else {
            "EU"
        }),
    );
    let mut r = Map::new();
    r.insert("time".into(), json!(iso7(a.t, "Z")));
    r.insert("resourceId".into(), json!(resource_path(w, a.tenant)));
    r.insert("operationName".into(), json!(a.activity));
    r.insert("operationVersion".into(), json!("1.0"));
    r.insert("category".into(), json!("AuditLogs"));
    r.insert("tenantId".into(), json!(tid));
    r.insert("resultSignature".into(), json!("None"));
    r.insert("durationMs".into(), json!(0));
    if let Some(ip) = ip {
        r.insert("callerIpAddress".into(), json!(ip));
    }
    r.insert("correlationId".into(), json!(a.corr.to_string()));
    r.insert("identity".into(), json!(identity));
    r.insert("Level".into(), json!(4));
    r.insert("properties".into(), Value::Object(p));
    Value::Object(r)
}

/// A Graph `directoryAudit` entity (no tenant inside: the folder names it).
pub fn graph_audit(w: &World, a: &Audit) -> Value {
    Value::Object(audit_props(w, a, true).0)
}
