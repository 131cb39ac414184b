//! Identity Protection's records: risky users and risk detections. Their Event Hub records carry
//! the US-locale `time` and a region or country as `location`; the Graph entities carry the same
//! properties.

use serde_json::{Map, Value, json};

use super::{iso3, location, resource_path, us_clock};
use crate::simulate::catalog::CITIES;
use crate::simulate::records::{Detection, RiskyUser};
use crate::simulate::world::{Kind, World};

fn risky_user_props(w: &World, r: &RiskyUser) -> Map<String, Value> {
    let acc = &w.accounts[r.user];
    let mut p = Map::new();
    p.insert("id".into(), json!(acc.id.to_string()));
    p.insert("isDeleted".into(), json!(false));
    p.insert("isGuest".into(), json!(acc.kind == Kind::Guest));
    p.insert("isProcessing".into(), json!(false));
    p.insert("riskLastUpdatedDateTime".into(), json!(iso3(r.t)));
    p.insert("riskLevel".into(), json!(r.level));
    p.insert("riskState".into(), json!(r.state));
    p.insert("riskDetail".into(), json!(r.detail));
    p.insert("userDisplayName".into(), json!(acc.display));
    p.insert("userPrincipalName".into(), json!(acc.upn));
    p
}

fn region(w: &World, tenant: usize) -> &'static str {
    if CITIES[w.tenants[tenant].hq].tz < -2 {
        "eus"
    } else {
        "neu"
    }
}

pub fn eh_risky_user(w: &World, r: &RiskyUser) -> Value {
    let acc = &w.accounts[r.user];
    json!({
        "time": us_clock(r.t),
        "resourceId": resource_path(w, r.tenant),
        "operationName": "Risky user",
        "operationVersion": "1.0",
        "category": "RiskyUsers",
        "tenantId": w.tenants[r.tenant].id.to_string(),
        "resultSignature": "None",
        "durationMs": 0,
        "correlationId": acc.id.to_string(),
        "identity": acc.display.to_lowercase(),
        "Level": 4,
        "location": region(w, r.tenant),
        "properties": Value::Object(risky_user_props(w, r)),
    })
}

pub fn graph_risky_user(w: &World, r: &RiskyUser) -> Value {
    Value::Object(risky_user_props(w, r))
}

fn detection_props(w: &World, d: &Detection, graph: bool) -> Map<String, Value> {
    let acc = &w.accounts[d.user];
    let tenant = w.tenants[d.tenant].id.to_string();
    let (request, corr) = d
        .request
        .map(|(r, c)| (r.to_string(), c.to_string()))
        .unwrap_or_default();
    let info =
        serde_json::to_string(&json!([{"Key": "alertUrl", "Value": null}])).unwrap_or_default();
    let mut p = Map::new();
    p.insert("id".into(), json!(d.id));
    p.insert("requestId".into(), json!(request));
    p.insert("correlationId".into(), json!(corr));
    p.insert("riskType".into(), json!(d.kind));
    p.insert("riskEventType".into(), json!(d.kind));
    p.insert("riskState".into(), json!(d.state));
    p.insert("riskLevel".into(), json!(d.level));
    p.insert("riskDetail".into(), json!(d.detail));
    p.insert("source".into(), json!("IdentityProtection"));
    p.insert("detectionTimingType".into(), json!(d.timing));
    p.insert("activity".into(), json!(d.activity));
    p.insert("tokenIssuerType".into(), json!("AzureAD"));
    p.insert(
        "ipAddress".into(),
        json!(d.net.map(|n| w.nets[n].ip.clone()).unwrap_or_default()),
    );
    p.insert(
        "location".into(),
        d.net.map_or_else(|| json!({}), |n| location(w, n)),
    );
    p.insert("activityDateTime".into(), json!(iso3(d.activity_time)));
    p.insert("detectedDateTime".into(), json!(iso3(d.detected)));
    p.insert("lastUpdatedDateTime".into(), json!(iso3(d.updated)));
    p.insert("userId".into(), json!(acc.id.to_string()));
    p.insert("userDisplayName".into(), json!(acc.display));
    p.insert("userPrincipalName".into(), json!(acc.upn));
    p.insert("additionalInfo".into(), json!(info));
    if !graph {
        p.insert("resourceTenantId".into(), json!(tenant));
        p.insert("homeTenantId".into(), json!(tenant));
        p.insert("userType".into(), json!("member"));
        p.insert("crossTenantAccessType".into(), json!("none"));
    }
    p
}

pub fn eh_detection(w: &World, d: &Detection) -> Value {
    json!({
        "time": us_clock(d.updated),
        "resourceId": resource_path(w, d.tenant),
        "operationName": "User Risk Detection",
        "operationVersion": "1.0",
        "category": "UserRiskEvents",
        "tenantId": w.tenants[d.tenant].id.to_string(),
        "resultSignature": "None",
        "durationMs": 0,
        "callerIpAddress": d.net.map(|n| w.nets[n].ip.clone()).unwrap_or_default(),
        "correlationId": d.id,
        "identity": w.accounts[d.user].display.to_lowercase(),
        "Level": 4,
        "location": d.net.map_or_else(String::new, |n| CITIES[w.nets[n].city].country.to_ascii_lowercase()),
        "properties": Value::Object(detection_props(w, d, false)),
    })
}

pub fn graph_detection(w: &World, d: &Detection) -> Value {
    Value::Object(detection_props(w, d, true))
}
