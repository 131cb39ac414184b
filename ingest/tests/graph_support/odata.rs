//! What the fake Graph needs to read requests: query strings, the `$filter` subset Graph documents
//! for the log collections, form bodies, and client-assertion JWTs (verified with the public key).

use chrono::{DateTime, Utc};
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Public};
use openssl::rsa::Padding;
use openssl::sign::{RsaPssSaltlen, Verifier};
use serde_json::Value;

use super::data::Endpoint;

/// Decodes `%XX` (and `+` as a space when `plus_is_space`, as in form bodies).
pub fn percent_decode(s: &str, plus_is_space: bool) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(v) => {
                        out.push(v);
                        i += 3;
                        continue;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b'+' if plus_is_space => out.push(b' '),
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Percent-encodes a query value (unreserved characters kept).
pub fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// `a=1&b=2` into pairs, decoded.
pub fn pairs(query: &str, plus_is_space: bool) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (
                percent_decode(k, plus_is_space),
                percent_decode(v, plus_is_space),
            )
        })
        .collect()
}

/// A parsed `$filter`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Filter {
    pub ge: Option<DateTime<Utc>>,
    pub le: Option<DateTime<Utc>>,
    /// `signInEventTypes/any(t: t eq 'a' or t eq 'b')`.
    pub event_types: Option<Vec<String>>,
}

/// Splits on ` and ` outside parentheses.
fn top_level_and(s: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut depth = 0i32;
    let mut start = 0;
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'(' => depth += 1,
            b')' => depth -= 1,
            _ if depth == 0 && s[i..].starts_with(" and ") => {
                parts.push(s[start..i].trim().to_owned());
                i += 5;
                start = i;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    parts.push(s[start..].trim().to_owned());
    parts
}

fn strip_parens(s: &str) -> &str {
    let mut s = s.trim();
    while s.starts_with('(') && s.ends_with(')') {
        s = s[1..s.len() - 1].trim();
    }
    s
}

/// The `$filter` subset Graph documents for these collections: `ge`/`le` on the collection's
/// time field and, on sign-ins, `signInEventTypes/any(...)`, which may not mix user and
/// service-principal types (Graph refuses that combination).
pub fn parse_filter(f: &str, endpoint: Endpoint) -> Result<Filter, String> {
    let mut out = Filter::default();
    for term in top_level_and(strip_parens(f)) {
        let term = strip_parens(&term);
        if let Some(inner) = term.strip_prefix("signInEventTypes/any(") {
            if endpoint != Endpoint::SignIns {
                return Err(format!(
                    "signInEventTypes is not a property of {endpoint:?}"
                ));
            }
            let inner = inner.strip_suffix(')').ok_or("unbalanced any()")?;
            let (var, body) = inner.split_once(':').ok_or("any() without a variable")?;
            let var = var.trim();
            let mut types = Vec::new();
            for alt in body.split(" or ") {
                let alt = alt.trim();
                let value = alt
                    .strip_prefix(&format!("{var} eq '"))
                    .and_then(|r| r.strip_suffix('\''))
                    .ok_or_else(|| format!("unsupported clause in any(): {alt}"))?;
                types.push(value.to_owned());
            }
            let user = types
                .iter()
                .any(|t| t == "interactiveUser" || t == "nonInteractiveUser");
            let apps = types
                .iter()
                .filter(|t| *t == "servicePrincipal" || *t == "managedIdentity")
                .count();
            if (user && apps > 0) || apps > 1 {
                return Err(
                    "filtering on user and service principal sign-in event types together is not supported"
                        .to_owned(),
                );
            }
            out.event_types = Some(types);
            continue;
        }
        let mut words = term.split_whitespace();
        let (Some(field), Some(op), Some(value), None) =
            (words.next(), words.next(), words.next(), words.next())
        else {
            return Err(format!("unsupported filter clause: {term}"));
        };
        let expected = endpoint
            .time_field()
            .ok_or_else(|| format!("{endpoint:?} does not support $filter"))?;
        if !field.eq_ignore_ascii_case(expected) {
            return Err(format!("{field} is not filterable on {endpoint:?}"));
        }
        let t = DateTime::parse_from_rfc3339(value)
            .map_err(|_| format!("invalid date {value}"))?
            .with_timezone(&Utc);
        match op {
            "ge" => out.ge = Some(t),
            "le" => out.le = Some(t),
            _ => return Err(format!("operator {op} is not supported on {field}")),
        }
    }
    Ok(out)
}

fn b64url_decode(s: &str) -> Option<Vec<u8>> {
    let mut std: String = s.replace('-', "+").replace('_', "/");
    while !std.len().is_multiple_of(4) {
        std.push('=');
    }
    openssl::base64::decode_block(&std).ok()
}

fn b64url(bytes: &[u8]) -> String {
    openssl::base64::encode_block(bytes)
        .trim_end_matches('=')
        .replace('+', "-")
        .replace('/', "_")
}

/// The certificate a fake tenant trusts for client assertions.
#[derive(Debug, Clone)]
pub struct TrustedCert {
    pub public_key: PKey<Public>,
    pub x5t: String,
    pub x5t_s256: String,
}

impl TrustedCert {
    pub fn from_der(der: &[u8]) -> TrustedCert {
        let cert = openssl::x509::X509::from_der(der).expect("certificate");
        let sha1 = openssl::hash::hash(MessageDigest::sha1(), der).unwrap();
        let sha256 = openssl::hash::hash(MessageDigest::sha256(), der).unwrap();
        TrustedCert {
            public_key: cert.public_key().unwrap(),
            x5t: b64url(&sha1),
            x5t_s256: b64url(&sha256),
        }
    }
}

/// Verifies a client assertion as Entra does: signature by the registered certificate (found by
/// thumbprint), `aud` the tenant's token endpoint, `iss` = `sub` = the client id, not expired.
pub fn verify_assertion(
    jwt: &str,
    cert: &TrustedCert,
    client_id: &str,
    audience: &str,
    now: i64,
) -> Result<(), String> {
    let parts: Vec<&str> = jwt.split('.').collect();
    let [h, p, s] = parts[..] else {
        return Err("not a JWT".into());
    };
    let header: Value = serde_json::from_slice(&b64url_decode(h).ok_or("header base64")?)
        .map_err(|e| e.to_string())?;
    let claims: Value = serde_json::from_slice(&b64url_decode(p).ok_or("claims base64")?)
        .map_err(|e| e.to_string())?;
    let sig = b64url_decode(s).ok_or("signature base64")?;
    if header["typ"] != "JWT" {
        return Err("typ is not JWT".into());
    }
    let thumb_ok = header["x5t#S256"].as_str() == Some(cert.x5t_s256.as_str())
        || header["x5t"].as_str() == Some(cert.x5t.as_str());
    if !thumb_ok {
        return Err("AADSTS700027: no registered certificate matches the thumbprint".into());
    }
    if let Some(x5t) = header["x5t"].as_str()
        && x5t != cert.x5t
    {
        return Err("x5t does not match the certificate".into());
    }
    let pss = match header["alg"].as_str() {
        Some("RS256") => false,
        Some("PS256") => true,
        other => return Err(format!("unsupported alg {other:?}")),
    };
    let mut v = Verifier::new(MessageDigest::sha256(), &cert.public_key).unwrap();
    if pss {
        v.set_rsa_padding(Padding::PKCS1_PSS).unwrap();
        v.set_rsa_pss_saltlen(RsaPssSaltlen::DIGEST_LENGTH).unwrap();
        v.set_rsa_mgf1_md(MessageDigest::sha256()).unwrap();
    }
    let input = format!("{h}.{p}");
    if !v.verify_oneshot(&sig, input.as_bytes()).unwrap_or(false) {
        return Err("AADSTS700027: signature verification failed".into());
    }
    if claims["aud"].as_str() != Some(audience) {
        return Err(format!("aud {:?} is not {audience}", claims["aud"]));
    }
    if claims["iss"].as_str() != Some(client_id) || claims["sub"].as_str() != Some(client_id) {
        return Err("iss and sub must be the client id".into());
    }
    let exp = claims["exp"].as_i64().ok_or("no exp")?;
    let nbf = claims["nbf"].as_i64().ok_or("no nbf")?;
    if exp <= now || nbf > now + 60 || exp - nbf > 3600 {
        return Err("assertion expired or not yet valid".into());
    }
    if claims["jti"].as_str().is_none_or(str::is_empty) {
        return Err("no jti".into());
    }
    Ok(())
}
