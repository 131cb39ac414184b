//! Tolerant access to one JSON record, whatever producer wrote it.
//!
//! Keys match case-insensitively (Graph camelCase, Event Hub camelCase with `Level`, Log Analytics
//! PascalCase, `RiskEventTypes_V2`); `""` and `null` read as absent; numbers and booleans may arrive as
//! strings (`"50126"`, `"TRUE"`); objects and arrays may arrive as JSON text inside a string (Log
//! Analytics dynamic columns, `additionalInfo`, `modifiedProperties`), and are decoded on access.

use serde_json::{Map, Value};
use std::borrow::Cow;

use crate::text::Text;

/// A view of one JSON object.
#[derive(Debug, Clone, Copy)]
pub struct Obj<'a>(pub &'a Map<String, Value>);

impl<'a> Obj<'a> {
    /// The value under `key`: exact match first, then case-insensitive. `null` is absent.
    pub fn raw(&self, key: &str) -> Option<&'a Value> {
        let found = match self.0.get(key) {
            Some(v) => Some(v),
            None => self
                .0
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(key))
                .map(|(_, v)| v),
        };
        found.filter(|v| !v.is_null())
    }

    /// A non-empty string (numbers and booleans are rendered as text).
    pub fn str(&self, key: &str) -> Option<Text> {
        self.raw(key).and_then(value_to_string).map(Text::from)
    }

    pub fn str_any(&self, keys: &[&str]) -> Option<Text> {
        keys.iter().find_map(|k| self.str(k))
    }

    /// A boolean, from `true`, `"true"`, `"TRUE"`, `"True"`, `1` or `"1"`.
    pub fn bool(&self, key: &str) -> Option<bool> {
        match self.raw(key)? {
            Value::Bool(b) => Some(*b),
            Value::Number(n) => n.as_i64().map(|i| i != 0),
            Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" => Some(true),
                "false" | "0" | "no" => Some(false),
                _ => None,
            },
            _ => None,
        }
    }

    /// An integer, from a number or a numeric string.
    pub fn i64(&self, key: &str) -> Option<i64> {
        value_to_i64(self.raw(key)?)
    }

    /// A float, from a number or a numeric string.
    pub fn f64(&self, key: &str) -> Option<f64> {
        match self.raw(key)? {
            Value::Number(n) => n.as_f64(),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        }
    }

    /// A nested object, or JSON object text inside a string.
    pub fn object(&self, key: &str) -> Option<Cow<'a, Map<String, Value>>> {
        match self.raw(key)? {
            Value::Object(m) => Some(Cow::Borrowed(m)),
            Value::String(s) => match decode_json_text(s)? {
                Value::Object(m) => Some(Cow::Owned(m)),
                _ => None,
            },
            _ => None,
        }
    }

    pub fn object_any(&self, keys: &[&str]) -> Option<Cow<'a, Map<String, Value>>> {
        keys.iter().find_map(|k| self.object(k))
    }

    /// A nested array, or JSON array text inside a string. Absent reads as empty.
    pub fn array(&self, key: &str) -> Cow<'a, [Value]> {
        match self.raw(key) {
            Some(Value::Array(a)) => Cow::Borrowed(a.as_slice()),
            Some(Value::String(s)) => match decode_json_text(s) {
                Some(Value::Array(a)) => Cow::Owned(a),
                _ => Cow::Owned(Vec::new()),
            },
            _ => Cow::Owned(Vec::new()),
        }
    }

    /// A list of strings: a JSON array, an array in a string, or a single plain string.
    pub fn str_list(&self, key: &str) -> Vec<Text> {
        let texts = |a: &[Value]| {
            a.iter()
                .filter_map(value_to_string)
                .map(Text::from)
                .collect()
        };
        match self.raw(key) {
            Some(Value::Array(a)) => texts(a),
            Some(Value::String(s)) => match decode_json_text(s) {
                Some(Value::Array(a)) => texts(&a),
                _ => value_to_string(&Value::String(s.clone()))
                    .map(Text::from)
                    .into_iter()
                    .collect(),
            },
            Some(other) => value_to_string(other).map(Text::from).into_iter().collect(),
            None => Vec::new(),
        }
    }

    /// Whether the key is present (even as `null` or `""`).
    pub fn has(&self, key: &str) -> bool {
        self.0.contains_key(key) || self.0.keys().any(|k| k.eq_ignore_ascii_case(key))
    }
}

/// Text for a scalar; `None` for `null`, `""` (after trimming) and containers.
pub fn value_to_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => {
            let t = s.trim();
            (!t.is_empty()).then(|| t.to_owned())
        }
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

pub fn value_to_i64(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Decodes JSON text held in a string, if it looks like a container. Invalid JSON is `None`.
pub fn decode_json_text(s: &str) -> Option<Value> {
    let t = s.trim_start();
    if t.starts_with('{') || t.starts_with('[') {
        serde_json::from_str(t).ok()
    } else {
        None
    }
}

/// A modified-property value: JSON text that decodes to a string is unwrapped; anything else
/// (arrays, objects, plain text, invalid or truncated JSON) is kept as written.
pub fn unwrap_json_string(raw: &str) -> Option<String> {
    let t = raw.trim();
    if t.is_empty() || t == "\"\"" || t == "null" {
        return None;
    }
    if t.starts_with('"')
        && let Ok(Value::String(inner)) = serde_json::from_str::<Value>(t)
    {
        let inner = inner.trim();
        return (!inner.is_empty()).then(|| inner.to_owned());
    }
    Some(t.to_owned())
}

/// True for the 8-4-4-4-12 hex form of a GUID.
pub fn is_guid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// The tenant GUID inside an Azure resource path `/tenants/<guid>/providers/...` (any case).
pub fn tenant_from_resource_id(path: &str) -> Option<String> {
    let lower = path.to_ascii_lowercase();
    let start = lower.find("/tenants/")? + "/tenants/".len();
    let candidate = path.get(start..start + 36)?;
    is_guid(candidate).then(|| candidate.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tolerant_reads() {
        let v = json!({
            "RiskEventTypes_V2": "[\"unlikelyTravel\"]",
            "resultType": "50126",
            "IsInteractive": "TRUE",
            "DeviceDetail": "{\"deviceId\":\"\",\"operatingSystem\":\"Windows 10\"}",
            "empty": "",
            "nothing": null,
            "roles": "Global Administrator",
        });
        let o = Obj(v.as_object().unwrap());
        assert_eq!(o.str_list("riskEventTypes_v2"), vec!["unlikelyTravel"]);
        assert_eq!(o.i64("ResultType"), Some(50126));
        assert_eq!(o.bool("isInteractive"), Some(true));
        let dev = o.object("deviceDetail").unwrap();
        assert_eq!(
            Obj(&dev).str("operatingSystem").as_deref(),
            Some("Windows 10")
        );
        assert_eq!(Obj(&dev).str("deviceId"), None);
        assert_eq!(o.str("empty"), None);
        assert_eq!(o.str("nothing"), None);
        assert!(o.has("nothing"));
        assert_eq!(o.str_list("roles"), vec!["Global Administrator"]);
    }

    #[test]
    fn json_in_strings_unwraps_only_strings() {
        assert_eq!(
            unwrap_json_string("\"Global Administrator\"").as_deref(),
            Some("Global Administrator")
        );
        assert_eq!(unwrap_json_string("[\"a\"]").as_deref(), Some("[\"a\"]"));
        assert_eq!(unwrap_json_string("\"trunc").as_deref(), Some("\"trunc"));
        assert_eq!(unwrap_json_string("\"\""), None);
    }

    #[test]
    fn guids_and_resource_paths() {
        assert!(is_guid("4d3bac44-0230-4732-9e70-cc00736f0a97"));
        assert!(!is_guid("<TENANT ID>"));
        assert_eq!(
            tenant_from_resource_id(
                "/tenants/4D3BAC44-0230-4732-9E70-CC00736F0A97/providers/microsoft.aadiam"
            )
            .as_deref(),
            Some("4d3bac44-0230-4732-9e70-cc00736f0a97")
        );
        assert_eq!(
            tenant_from_resource_id("/tenants/<TENANT ID>/providers/Microsoft.aadiam"),
            None
        );
    }
}
