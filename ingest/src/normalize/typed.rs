//! Typed, borrowed decoding of one record: only the fields the normaliser reads, straight from the
//! JSON text into structs whose strings point into the input. The fast path of [`super::fast`].
//!
//! What comes in: the text of one record. What goes out: a [`Rec`] (an Event Hub envelope, its
//! `properties`, or a Graph entity: one struct serves all three), or an error when the record is
//! anything the fast path does not promise to read exactly as the tolerant reader does; the caller
//! then reads it the tolerant way ([`crate::value::Obj`] over a `serde_json::Value`).
//!
//! The promise, kept by construction: a record decodes here only if `serde_json::Value` would
//! decode it too (unknown values are decoded in full, as a `Value` would be, and then dropped), and
//! every field the normaliser reads is found under the same key. Keys match exactly (the
//! producers' camelCase); a key that matches a field only when case is ignored (Log Analytics
//! PascalCase, `RiskEventTypes_V2`), a field given twice, and the keys that make a record something
//! other than a sign-in or an audit (Log Analytics columns, role, risk) decline the fast path.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

/// Why the fast path stepped aside (never shown: the tolerant reader takes over).
pub(super) const DECLINED: &str = "not for the fast path";

/// One scalar as the record wrote it; containers where a scalar is read count as absent, as
/// `value_to_string` has it.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Scalar<'a> {
    Str(Cow<'a, str>),
    U64(u64),
    I64(i64),
    F64(f64),
    Bool(bool),
    Null,
    Container,
}

impl<'de: 'a, 'a> Deserialize<'de> for Scalar<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ScalarVisitor(PhantomData))
    }
}

struct ScalarVisitor<'a>(PhantomData<&'a ()>);

impl<'de: 'a, 'a> Visitor<'de> for ScalarVisitor<'a> {
    type Value = Scalar<'a>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
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
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Scalar::U64(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        // As `serde_json::Value` stores it: non-negative integers are unsigned.
        Ok(u64::try_from(v).map_or(Scalar::I64(v), Scalar::U64))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Ok(Scalar::F64(v))
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        Ok(Scalar::Bool(v))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Scalar::Null)
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        Skip::drain_map(map)?;
        Ok(Scalar::Container)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        Skip::drain_seq(seq)?;
        Ok(Scalar::Container)
    }
}

/// Any value, decoded in full exactly as `serde_json::Value` decodes it (strings unescaped and
/// checked, numbers read) and dropped: what a record holds beyond the fields read must not make it
/// acceptable here when the tolerant reader would refuse it.
pub(super) struct Skip;

impl Skip {
    fn drain_map<'de, A: MapAccess<'de>>(mut map: A) -> Result<(), A::Error> {
        while map.next_key::<Skip>()?.is_some() {
            map.next_value::<Skip>()?;
        }
        Ok(())
    }

    fn drain_seq<'de, A: SeqAccess<'de>>(mut seq: A) -> Result<(), A::Error> {
        while seq.next_element::<Skip>()?.is_some() {}
        Ok(())
    }
}

impl<'de> Deserialize<'de> for Skip {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Skip;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_borrowed_str<E: de::Error>(self, _: &'de str) -> Result<Skip, E> {
                Ok(Skip)
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Skip, E> {
                Ok(Skip)
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Skip, E> {
                Ok(Skip)
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Skip, E> {
                Ok(Skip)
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Skip, E> {
                Ok(Skip)
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Skip, E> {
                Ok(Skip)
            }
            fn visit_unit<E: de::Error>(self) -> Result<Skip, E> {
                Ok(Skip)
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Skip, A::Error> {
                Skip::drain_map(map).map(|()| Skip)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Skip, A::Error> {
                Skip::drain_seq(seq).map(|()| Skip)
            }
        }
        d.deserialize_any(V)
    }
}

/// A key, borrowed when it has no escapes.
struct Key<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Key<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Key<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a key")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Key<'a>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Key<'a>, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
        }
        d.deserialize_str(V(PhantomData))
    }
}

/// A field read as an object (`Obj::object`): the object, or what stood there instead.
#[derive(Debug)]
pub(super) enum ObjField<'a, T> {
    Obj(T),
    Other(Scalar<'a>),
}

impl<'de: 'a, 'a, T: Deserialize<'de>> Deserialize<'de> for ObjField<'a, T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a, T>(PhantomData<(&'a (), T)>);
        impl<'de: 'a, 'a, T: Deserialize<'de>> Visitor<'de> for V<'a, T> {
            type Value = ObjField<'a, T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                T::deserialize(de::value::MapAccessDeserializer::new(map)).map(ObjField::Obj)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
                ScalarVisitor(PhantomData)
                    .visit_seq(seq)
                    .map(ObjField::Other)
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(ObjField::Other(Scalar::Str(Cow::Borrowed(v))))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(ObjField::Other(Scalar::Str(Cow::Owned(v.to_owned()))))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(ObjField::Other(Scalar::U64(v)))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(ObjField::Other(Scalar::I64(v)))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                Ok(ObjField::Other(Scalar::F64(v)))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
                Ok(ObjField::Other(Scalar::Bool(v)))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(ObjField::Other(Scalar::Null))
            }
        }
        d.deserialize_any(V(PhantomData))
    }
}

/// A field read as a list: the items of an array, or the one value that stood there.
#[derive(Debug)]
pub(super) enum ListField<'a, T> {
    Items(Vec<T>),
    One(Scalar<'a>),
}

impl<'de: 'a, 'a, T: Deserialize<'de>> Deserialize<'de> for ListField<'a, T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a, T>(PhantomData<(&'a (), T)>);
        impl<'de: 'a, 'a, T: Deserialize<'de>> Visitor<'de> for V<'a, T> {
            type Value = ListField<'a, T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(16));
                while let Some(item) = seq.next_element::<T>()? {
                    items.push(item);
                }
                Ok(ListField::Items(items))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                ScalarVisitor(PhantomData)
                    .visit_map(map)
                    .map(ListField::One)
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(ListField::One(Scalar::Str(Cow::Borrowed(v))))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(ListField::One(Scalar::Str(Cow::Owned(v.to_owned()))))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(ListField::One(Scalar::U64(v)))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(ListField::One(Scalar::I64(v)))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                Ok(ListField::One(Scalar::F64(v)))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
                Ok(ListField::One(Scalar::Bool(v)))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(ListField::One(Scalar::Null))
            }
        }
        d.deserialize_any(V(PhantomData))
    }
}

/// For each lower-cased first byte (mod 32), the lengths (up to 63) of the names starting with it:
/// an unknown key that cannot be a case variant of a name is told apart in one lookup.
const fn length_filter(names: &[&str]) -> [u64; 32] {
    let mut filter = [0u64; 32];
    let mut i = 0;
    while i < names.len() {
        let b = names[i].as_bytes();
        if !b.is_empty() {
            let len = if b.len() > 63 { 63 } else { b.len() };
            filter[((b[0] | 0x20) & 31) as usize] |= 1 << len;
        }
        i += 1;
    }
    filter
}

fn may_be_a_name(filter: &[u64; 32], key: &str) -> bool {
    let b = key.as_bytes();
    !b.is_empty() && filter[((b[0] | 0x20) & 31) as usize] >> b.len().min(63) & 1 == 1
}

/// Declares a record struct of optional fields and its decoder: each field under its exact key,
/// every other key decoded and dropped, and the fast path declined on a repeated field, a case
/// variant of a field or a `decline` key.
macro_rules! record {
    (
        $(#[$meta:meta])*
        $name:ident<$lt:lifetime> {
            $($key:literal => $field:ident: $ty:ty,)*
        }
        decline [$($decline:literal),* $(,)?]
    ) => {
        $(#[$meta])*
        #[derive(Debug, Default)]
        pub(super) struct $name<$lt> {
            $(pub $field: Option<$ty>,)*
            _input: PhantomData<&$lt ()>,
        }

        impl<'de: $lt, $lt> Deserialize<'de> for $name<$lt> {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V<$lt>(PhantomData<&$lt ()>);
                impl<'de: $lt, $lt> Visitor<'de> for V<$lt> {
                    type Value = $name<$lt>;
                    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                        f.write_str("a JSON object")
                    }
                    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                        const NAMES: &[&str] = &[$($key,)* $($decline,)*];
                        const FILTER: [u64; 32] = length_filter(NAMES);
                        let mut out = $name::default();
                        while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
                            match key.as_ref() {
                                $($key => {
                                    if out.$field.is_some() {
                                        return Err(de::Error::custom(DECLINED));
                                    }
                                    out.$field = Some(map.next_value()?);
                                })*
                                $($decline => return Err(de::Error::custom(DECLINED)),)*
                                other => {
                                    if may_be_a_name(&FILTER, other)
                                        && NAMES.iter().any(|n| n.eq_ignore_ascii_case(other))
                                    {
                                        return Err(de::Error::custom(DECLINED));
                                    }
                                    map.next_value::<Skip>()?;
                                }
                            }
                        }
                        Ok(out)
                    }
                }
                d.deserialize_map(V(PhantomData))
            }
        }
    };
}

record! {
    /// An Event Hub envelope, its `properties`, or a Graph sign-in or directory audit.
    Rec<'a> {
        // Event Hub envelope
        "time" => time: Scalar<'a>,
        "category" => category: Scalar<'a>,
        "tenantId" => tenant_id: Scalar<'a>,
        "resourceId" => resource_id: Scalar<'a>,
        "resultType" => result_type: Scalar<'a>,
        "resultDescription" => result_description: Scalar<'a>,
        "callerIpAddress" => caller_ip_address: Scalar<'a>,
        "correlationId" => correlation_id: Scalar<'a>,
        "operationName" => operation_name: Scalar<'a>,
        "properties" => properties: ObjField<'a, Box<Rec<'a>>>,
        // Both kinds
        "id" => id: Scalar<'a>,
        // Sign-in
        "createdDateTime" => created_date_time: Scalar<'a>,
        "signInEventTypes" => sign_in_event_types: ListField<'a, Scalar<'a>>,
        "resourceTenantId" => resource_tenant_id: Scalar<'a>,
        "status" => status: ObjField<'a, Status<'a>>,
        "locationDetails" => location_details: ObjField<'a, Place<'a>>,
        "location" => location: ObjField<'a, Place<'a>>,
        "riskEventTypes_v2" => risk_event_types_v2: ListField<'a, Scalar<'a>>,
        "riskEventTypes" => risk_event_types: ListField<'a, Scalar<'a>>,
        "isInteractive" => is_interactive: Scalar<'a>,
        "userId" => user_id: Scalar<'a>,
        "userDisplayName" => user_display_name: Scalar<'a>,
        "userPrincipalName" => user_principal_name: Scalar<'a>,
        "userType" => user_type: Scalar<'a>,
        "appId" => app_id: Scalar<'a>,
        "appDisplayName" => app_display_name: Scalar<'a>,
        "servicePrincipalId" => service_principal_id: Scalar<'a>,
        "servicePrincipalName" => service_principal_name: Scalar<'a>,
        "resourceDisplayName" => resource_display_name: Scalar<'a>,
        "ipAddress" => ip_address: Scalar<'a>,
        "autonomousSystemNumber" => autonomous_system_number: Scalar<'a>,
        "clientAppUsed" => client_app_used: Scalar<'a>,
        "userAgent" => user_agent: Scalar<'a>,
        "originalRequestId" => original_request_id: Scalar<'a>,
        "conditionalAccessStatus" => conditional_access_status: Scalar<'a>,
        "authenticationRequirement" => authentication_requirement: Scalar<'a>,
        "authenticationProtocol" => authentication_protocol: Scalar<'a>,
        "originalTransferMethod" => original_transfer_method: Scalar<'a>,
        "sessionId" => session_id: Scalar<'a>,
        "authenticationDetails" => authentication_details: ListField<'a, AuthStep<'a>>,
        "authenticationMethodsUsed" => authentication_methods_used: ListField<'a, Scalar<'a>>,
        "riskLevelAggregated" => risk_level_aggregated: Scalar<'a>,
        "riskLevelDuringSignIn" => risk_level_during_sign_in: Scalar<'a>,
        "riskState" => risk_state: Scalar<'a>,
        "riskDetail" => risk_detail: Scalar<'a>,
        "crossTenantAccessType" => cross_tenant_access_type: Scalar<'a>,
        "homeTenantId" => home_tenant_id: Scalar<'a>,
        "homeTenantName" => home_tenant_name: Scalar<'a>,
        "incomingTokenType" => incoming_token_type: Scalar<'a>,
        "deviceDetail" => device_detail: ObjField<'a, Device<'a>>,
        // Audit
        "activityDateTime" => activity_date_time: Scalar<'a>,
        "activityDisplayName" => activity_display_name: Scalar<'a>,
        "operationType" => operation_type: Scalar<'a>,
        "AADOperationType" => aad_operation_type: Scalar<'a>,
        "result" => result: Scalar<'a>,
        "resultReason" => result_reason: Scalar<'a>,
        "loggedByService" => logged_by_service: Scalar<'a>,
        "initiatedBy" => initiated_by: ObjField<'a, Initiator<'a>>,
        "targetResources" => target_resources: ListField<'a, Target<'a>>,
        "additionalDetails" => additional_details: ListField<'a, KeyValue<'a>>,
    }
    // Log Analytics columns, and what makes an entity a role grant or a risk record.
    decline [
        "Type", "TimeGenerated", "AADTenantId", "SourceSystem", "ResourceIdentity",
        "roleDefinitionId", "principalId", "scheduleInfo", "memberType", "assignmentType",
        "riskEventType", "riskLastUpdatedDateTime",
    ]
}

record! {
    /// `status` of a sign-in.
    Status<'a> {
        "errorCode" => error_code: Scalar<'a>,
        "failureReason" => failure_reason: Scalar<'a>,
        "additionalDetails" => additional_details: Scalar<'a>,
    }
    decline []
}

record! {
    /// `location` / `locationDetails`.
    Place<'a> {
        "city" => city: Scalar<'a>,
        "state" => state: Scalar<'a>,
        "countryOrRegion" => country_or_region: Scalar<'a>,
        "geoCoordinates" => geo_coordinates: ObjField<'a, Geo<'a>>,
    }
    decline []
}

record! {
    Geo<'a> {
        "latitude" => latitude: Scalar<'a>,
        "longitude" => longitude: Scalar<'a>,
    }
    decline []
}

record! {
    /// `deviceDetail`.
    Device<'a> {
        "deviceId" => device_id: Scalar<'a>,
        "displayName" => display_name: Scalar<'a>,
        "operatingSystem" => operating_system: Scalar<'a>,
        "browser" => browser: Scalar<'a>,
        "isCompliant" => is_compliant: Scalar<'a>,
        "isManaged" => is_managed: Scalar<'a>,
        "trustType" => trust_type: Scalar<'a>,
    }
    decline []
}

record! {
    /// One item of `authenticationDetails`.
    AuthStep<'a> {
        "authenticationStepDateTime" => date_time: Scalar<'a>,
        "authenticationMethod" => method: Scalar<'a>,
        "authenticationMethodDetail" => method_detail: Scalar<'a>,
        "succeeded" => succeeded: Scalar<'a>,
        "authenticationStepResultDetail" => result_detail: Scalar<'a>,
        "authenticationStepRequirement" => requirement: Scalar<'a>,
    }
    decline []
}

record! {
    /// `initiatedBy` of an audit.
    Initiator<'a> {
        "user" => user: ObjField<'a, AuditUser<'a>>,
        "app" => app: ObjField<'a, AuditApp<'a>>,
    }
    decline []
}

record! {
    AuditUser<'a> {
        "id" => id: Scalar<'a>,
        "displayName" => display_name: Scalar<'a>,
        "userPrincipalName" => user_principal_name: Scalar<'a>,
        "ipAddress" => ip_address: Scalar<'a>,
        "userType" => user_type: Scalar<'a>,
        "homeTenantId" => home_tenant_id: Scalar<'a>,
        "homeTenantName" => home_tenant_name: Scalar<'a>,
        "roles" => roles: ListField<'a, Scalar<'a>>,
    }
    decline []
}

record! {
    AuditApp<'a> {
        "appId" => app_id: Scalar<'a>,
        "displayName" => display_name: Scalar<'a>,
        "servicePrincipalId" => service_principal_id: Scalar<'a>,
        "servicePrincipalName" => service_principal_name: Scalar<'a>,
    }
    decline []
}

record! {
    /// One item of `targetResources`.
    Target<'a> {
        "id" => id: Scalar<'a>,
        "displayName" => display_name: Scalar<'a>,
        "type" => resource_type: Scalar<'a>,
        "userPrincipalName" => user_principal_name: Scalar<'a>,
        "groupType" => group_type: Scalar<'a>,
        "modifiedProperties" => modified_properties: ListField<'a, Modified<'a>>,
    }
    decline []
}

record! {
    Modified<'a> {
        "displayName" => display_name: Scalar<'a>,
        "oldValue" => old_value: Scalar<'a>,
        "newValue" => new_value: Scalar<'a>,
    }
    decline []
}

record! {
    /// One item of `additionalDetails`.
    KeyValue<'a> {
        "key" => key: Scalar<'a>,
        "value" => value: Scalar<'a>,
    }
    decline []
}
