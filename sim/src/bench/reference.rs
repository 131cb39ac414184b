//! The parse-only reference of `entrawatch bench`: every record decoded into a typed, borrowed
//! struct of the fields entrawatch reads, and nothing else done with it.
//!
//! What comes in: the bytes of one record (framed by [`entrawatch_ingest::reader::for_each_json_record`],
//! the replay's own framing). What goes out: a [`RefRecord`] borrowing its strings from the input,
//! or an error. The struct covers one Event Hub envelope (`properties` holds the entity), a Graph
//! sign-in and a directory audit: the ~60 fields the normaliser and detectors use (docs/performance.md
//! calls this "serde_json → typed borrowed struct"). Unknown fields are skipped unvalidated, as
//! serde's derive does: this is the limit a typed parser reaches, not a tolerant reader.

// The fields are decoded to be measured, never read: that is the point of a parse-only reference.
#![allow(dead_code)]

use std::borrow::Cow;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};

/// A scalar of any JSON type: fields whose type differs by producer (`resultType` is `"0"` in
/// Event Hub and `0` in Graph `status.errorCode`).
#[derive(Debug)]
pub enum Scalar<'a> {
    Str(Cow<'a, str>),
    Int(i64),
    Float(f64),
    Bool(bool),
    Null,
    /// An object or array where a scalar was expected (skipped).
    Container,
}

impl<'de: 'a, 'a> Deserialize<'de> for Scalar<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Scalar<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Scalar::Str(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Scalar::Str(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Scalar::Str(Cow::Owned(v)))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(Scalar::Int(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(i64::try_from(v).map_or(Scalar::Float(v as f64), Scalar::Int))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                Ok(Scalar::Float(v))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
                Ok(Scalar::Bool(v))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Scalar::Null)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
                while m.next_entry::<de::IgnoredAny, de::IgnoredAny>()?.is_some() {}
                Ok(Scalar::Container)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<Self::Value, A::Error> {
                while s.next_element::<de::IgnoredAny>()?.is_some() {}
                Ok(Scalar::Container)
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

type Text<'a> = Option<Cow<'a, str>>;

/// A field that is an object in one producer's records and a scalar in another's: Event Hub
/// `location` is a country code where Graph's is an object; a role eligibility's `status` is text
/// where a sign-in's is an object.
#[derive(Debug)]
pub enum ObjectOr<'a, T> {
    Object(T),
    Other(Scalar<'a>),
}

impl<'de: 'a, 'a, T: Deserialize<'de>> Deserialize<'de> for ObjectOr<'a, T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a, T>(std::marker::PhantomData<(&'a (), T)>);
        impl<'de: 'a, 'a, T: Deserialize<'de>> Visitor<'de> for V<'a, T> {
            type Value = ObjectOr<'a, T>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object or a scalar")
            }
            fn visit_map<A: MapAccess<'de>>(self, m: A) -> Result<Self::Value, A::Error> {
                T::deserialize(de::value::MapAccessDeserializer::new(m)).map(ObjectOr::Object)
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(ObjectOr::Other(Scalar::Str(Cow::Borrowed(v))))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(ObjectOr::Other(Scalar::Str(Cow::Owned(v.to_owned()))))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(ObjectOr::Other(Scalar::Int(v)))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(ObjectOr::Other(Scalar::Float(v as f64)))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                Ok(ObjectOr::Other(Scalar::Float(v)))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
                Ok(ObjectOr::Other(Scalar::Bool(v)))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(ObjectOr::Other(Scalar::Null))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<Self::Value, A::Error> {
                while s.next_element::<de::IgnoredAny>()?.is_some() {}
                Ok(ObjectOr::Other(Scalar::Container))
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

/// One record: an Event Hub envelope (with the entity in `properties`) or a Graph entity.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RefRecord<'a> {
    // Event Hub envelope
    #[serde(borrow)]
    pub time: Text<'a>,
    #[serde(borrow)]
    pub category: Text<'a>,
    #[serde(borrow)]
    pub tenant_id: Text<'a>,
    #[serde(borrow)]
    pub resource_id: Text<'a>,
    #[serde(borrow)]
    pub result_type: Option<Scalar<'a>>,
    #[serde(borrow)]
    pub result_description: Text<'a>,
    #[serde(borrow)]
    pub caller_ip_address: Text<'a>,
    #[serde(borrow)]
    pub operation_name: Text<'a>,
    #[serde(borrow)]
    pub properties: Option<Box<RefRecord<'a>>>,
    // Sign-in
    #[serde(borrow)]
    pub id: Text<'a>,
    #[serde(borrow)]
    pub created_date_time: Text<'a>,
    #[serde(borrow)]
    pub sign_in_event_types: Option<Vec<Cow<'a, str>>>,
    #[serde(borrow)]
    pub resource_tenant_id: Text<'a>,
    #[serde(borrow)]
    pub status: Option<ObjectOr<'a, RefStatus<'a>>>,
    #[serde(borrow)]
    pub location: Option<ObjectOr<'a, RefLocation<'a>>>,
    #[serde(borrow, rename = "riskEventTypes_v2")]
    pub risk_event_types_v2: Option<Vec<Cow<'a, str>>>,
    #[serde(borrow)]
    pub risk_event_types: Option<Vec<Cow<'a, str>>>,
    pub is_interactive: Option<bool>,
    #[serde(borrow)]
    pub user_id: Text<'a>,
    #[serde(borrow)]
    pub user_display_name: Text<'a>,
    #[serde(borrow)]
    pub user_principal_name: Text<'a>,
    #[serde(borrow)]
    pub user_type: Text<'a>,
    #[serde(borrow)]
    pub app_id: Text<'a>,
    #[serde(borrow)]
    pub app_display_name: Text<'a>,
    #[serde(borrow)]
    pub service_principal_id: Text<'a>,
    #[serde(borrow)]
    pub service_principal_name: Text<'a>,
    #[serde(borrow)]
    pub resource_display_name: Text<'a>,
    #[serde(borrow)]
    pub ip_address: Text<'a>,
    pub autonomous_system_number: Option<i64>,
    #[serde(borrow)]
    pub client_app_used: Text<'a>,
    #[serde(borrow)]
    pub user_agent: Text<'a>,
    #[serde(borrow)]
    pub correlation_id: Text<'a>,
    #[serde(borrow)]
    pub original_request_id: Text<'a>,
    #[serde(borrow)]
    pub conditional_access_status: Text<'a>,
    #[serde(borrow)]
    pub authentication_requirement: Text<'a>,
    #[serde(borrow)]
    pub authentication_protocol: Text<'a>,
    #[serde(borrow)]
    pub authentication_details: Option<Vec<RefAuthStep<'a>>>,
    #[serde(borrow)]
    pub authentication_methods_used: Option<Vec<Cow<'a, str>>>,
    #[serde(borrow)]
    pub risk_level_aggregated: Text<'a>,
    #[serde(borrow)]
    pub risk_level_during_sign_in: Text<'a>,
    #[serde(borrow)]
    pub risk_state: Text<'a>,
    #[serde(borrow)]
    pub risk_detail: Text<'a>,
    #[serde(borrow)]
    pub cross_tenant_access_type: Text<'a>,
    #[serde(borrow)]
    pub home_tenant_id: Text<'a>,
    #[serde(borrow)]
    pub home_tenant_name: Text<'a>,
    #[serde(borrow)]
    pub incoming_token_type: Text<'a>,
    #[serde(borrow)]
    pub device_detail: Option<RefDevice<'a>>,
    // Audit
    #[serde(borrow)]
    pub activity_date_time: Text<'a>,
    #[serde(borrow)]
    pub activity_display_name: Text<'a>,
    #[serde(borrow)]
    pub operation_type: Text<'a>,
    #[serde(borrow)]
    pub result: Text<'a>,
    #[serde(borrow)]
    pub result_reason: Text<'a>,
    #[serde(borrow)]
    pub logged_by_service: Text<'a>,
    #[serde(borrow)]
    pub initiated_by: Option<RefInitiator<'a>>,
    #[serde(borrow)]
    pub target_resources: Option<Vec<RefTarget<'a>>>,
    #[serde(borrow)]
    pub additional_details: Option<Vec<RefKeyValue<'a>>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RefStatus<'a> {
    #[serde(borrow)]
    pub error_code: Option<Scalar<'a>>,
    #[serde(borrow)]
    pub failure_reason: Text<'a>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RefLocation<'a> {
    #[serde(borrow)]
    pub city: Text<'a>,
    #[serde(borrow)]
    pub state: Text<'a>,
    #[serde(borrow)]
    pub country_or_region: Text<'a>,
    pub geo_coordinates: Option<RefGeo>,
}

#[derive(Debug, Deserialize)]
pub struct RefGeo {
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RefDevice<'a> {
    #[serde(borrow)]
    pub device_id: Text<'a>,
    #[serde(borrow)]
    pub display_name: Text<'a>,
    #[serde(borrow)]
    pub operating_system: Text<'a>,
    #[serde(borrow)]
    pub browser: Text<'a>,
    pub is_compliant: Option<bool>,
    pub is_managed: Option<bool>,
    #[serde(borrow)]
    pub trust_type: Text<'a>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RefAuthStep<'a> {
    #[serde(borrow)]
    pub authentication_step_date_time: Text<'a>,
    #[serde(borrow)]
    pub authentication_method: Text<'a>,
    #[serde(borrow)]
    pub authentication_method_detail: Text<'a>,
    pub succeeded: Option<bool>,
    #[serde(borrow)]
    pub authentication_step_result_detail: Text<'a>,
    #[serde(borrow)]
    pub authentication_step_requirement: Text<'a>,
}

#[derive(Debug, Deserialize)]
pub struct RefInitiator<'a> {
    #[serde(borrow)]
    pub user: Option<RefUser<'a>>,
    #[serde(borrow)]
    pub app: Option<RefApp<'a>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RefUser<'a> {
    #[serde(borrow)]
    pub id: Text<'a>,
    #[serde(borrow)]
    pub display_name: Text<'a>,
    #[serde(borrow)]
    pub user_principal_name: Text<'a>,
    #[serde(borrow)]
    pub ip_address: Text<'a>,
    #[serde(borrow)]
    pub user_type: Text<'a>,
    #[serde(borrow)]
    pub home_tenant_id: Text<'a>,
    #[serde(borrow)]
    pub home_tenant_name: Text<'a>,
    #[serde(borrow)]
    pub roles: Option<Vec<Cow<'a, str>>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RefApp<'a> {
    #[serde(borrow)]
    pub app_id: Text<'a>,
    #[serde(borrow)]
    pub display_name: Text<'a>,
    #[serde(borrow)]
    pub service_principal_id: Text<'a>,
    #[serde(borrow)]
    pub service_principal_name: Text<'a>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RefTarget<'a> {
    #[serde(borrow)]
    pub id: Text<'a>,
    #[serde(borrow)]
    pub display_name: Text<'a>,
    #[serde(borrow, rename = "type")]
    pub resource_type: Text<'a>,
    #[serde(borrow)]
    pub user_principal_name: Text<'a>,
    #[serde(borrow)]
    pub group_type: Text<'a>,
    #[serde(borrow)]
    pub modified_properties: Option<Vec<RefModified<'a>>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RefModified<'a> {
    #[serde(borrow)]
    pub display_name: Text<'a>,
    #[serde(borrow)]
    pub old_value: Text<'a>,
    #[serde(borrow)]
    pub new_value: Text<'a>,
}

#[derive(Debug, Deserialize)]
pub struct RefKeyValue<'a> {
    #[serde(borrow)]
    pub key: Text<'a>,
    #[serde(borrow)]
    pub value: Option<Scalar<'a>>,
}

/// Decodes one record with serde_json; `None` when it does not fit the struct (the world has none).
pub fn parse(raw: &[u8]) -> Option<RefRecord<'_>> {
    serde_json::from_slice(raw).ok()
}

/// The same struct decoded by sonic-rs (SIMD scanning): the fastest typed JSON parse measured on
/// these machines, the second reference the replay is held against.
pub fn parse_sonic(raw: &[u8]) -> Option<RefRecord<'_>> {
    sonic_rs::from_slice(raw).ok()
}

/// Which parser [`parse_file`] decodes with.
#[derive(Debug, Clone, Copy)]
pub enum Parser {
    SerdeJson,
    Sonic,
}

/// Reads one file and decodes every record of it: (records decoded, bytes). Records that do not
/// decode are counted too (the world has none; a count that differs from the replay's says so).
pub fn parse_file(
    path: &std::path::Path,
    parser: Parser,
    failures: &std::sync::atomic::AtomicU64,
) -> (u64, u64) {
    let Ok(bytes) = std::fs::read(path) else {
        return (0, 0);
    };
    let mut records = 0u64;
    entrawatch_ingest::reader::for_each_json_record(&bytes, &mut |raw| {
        records += 1;
        let decoded = match parser {
            Parser::SerdeJson => parse(raw),
            Parser::Sonic => parse_sonic(raw),
        };
        match decoded {
            Some(rec) => {
                std::hint::black_box(&rec);
            }
            None => {
                failures.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }
    });
    (records, bytes.len() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_hub_sign_in_and_a_graph_audit_decode() {
        let eh = br#"{"category":"SignInLogs","location":"JP","resultType":"50074","properties":{"id":"x","location":{"city":"Tokyo","geoCoordinates":{"latitude":35.6,"longitude":139.6}},"status":{"errorCode":50074},"isInteractive":true,"riskEventTypes_v2":[]}}"#;
        let rec = parse(eh).unwrap();
        assert!(matches!(rec.result_type, Some(Scalar::Str(ref s)) if s == "50074"));
        let p = rec.properties.unwrap();
        assert!(
            matches!(p.location, Some(ObjectOr::Object(ref l)) if l.city.as_deref() == Some("Tokyo"))
        );
        assert!(matches!(
            p.status,
            Some(ObjectOr::Object(RefStatus {
                error_code: Some(Scalar::Int(50074)),
                ..
            }))
        ));
        let eligibility = br#"{"id":"e","status":"Provisioned","principalId":"p"}"#;
        assert!(matches!(
            parse(eligibility).unwrap().status,
            Some(ObjectOr::Other(_))
        ));
        let audit = br#"{"id":"a","activityDisplayName":"Update user","initiatedBy":{"user":null,"app":{"displayName":"Sync"}},"targetResources":[{"id":"t","type":"User","modifiedProperties":[{"displayName":"X","newValue":"\"y\"","oldValue":null}]}],"additionalDetails":[{"key":"k","value":"v"}]}"#;
        let rec = parse(audit).unwrap();
        assert_eq!(
            rec.target_resources.unwrap()[0].resource_type.as_deref(),
            Some("User")
        );
        assert!(parse(b"[1]").is_none());
    }
}
