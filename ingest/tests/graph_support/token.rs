//! The fake Entra token endpoint: `POST /{tenant}/oauth2/v2.0/token` with client credentials, a
//! client secret or a certificate assertion (verified against the app's registered certificates,
//! as Entra does) or a federated assertion (workload identity: accepted when it is one the test
//! trusts, as a federated identity credential trusts an issuer and subject); refusals carry
//! Entra's error shape and `AADSTS` codes, and a tenant can be made to refuse every request.

use std::collections::HashMap;

use bytes::Bytes;
use chrono::Utc;
use http_body_util::Full;
use hyper::Response;
use serde_json::json;
use tokio::time::Instant;

use super::fake::{State, hex_token, reply};
use super::odata::{pairs, verify_assertion};

const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

impl State {
    pub(super) fn token(&mut self, path: &str, body: &[u8]) -> Response<Full<Bytes>> {
        let tenant = path
            .trim_start_matches('/')
            .split('/')
            .next()
            .unwrap_or("")
            .to_owned();
        let form: HashMap<String, String> = pairs(&String::from_utf8_lossy(body), true)
            .into_iter()
            .collect();
        let get = |k: &str| form.get(k).map(String::as_str).unwrap_or("");
        if !self.tenants.contains_key(&tenant) {
            let why = format!("AADSTS90002: Tenant '{tenant}' not found.");
            return self.refuse(400, "invalid_request", why);
        }
        if let Some((status, error, why)) = self.tenants[&tenant].token_refusal.clone() {
            return self.refuse(status, &error, why);
        }
        if get("grant_type") != "client_credentials" {
            return self.refuse(400, "unsupported_grant_type", "AADSTS70003".into());
        }
        if get("client_id") != self.opts.client_id {
            let why = "AADSTS700016: Application not found in the directory".to_owned();
            return self.refuse(400, "unauthorized_client", why);
        }
        if get("scope") != format!("{}/.default", self.base) {
            let why = format!("AADSTS1002012: bad scope {}", get("scope"));
            return self.refuse(400, "invalid_scope", why);
        }
        if let Some(secret) = form.get("client_secret") {
            if self.opts.secret.as_deref() != Some(secret.as_str()) {
                let why = "AADSTS7000215: Invalid client secret provided.".to_owned();
                return self.refuse(401, "invalid_client", why);
            }
        } else if get("client_assertion_type") == JWT_BEARER {
            let audience = format!("{}{path}", self.base);
            let now = Utc::now().timestamp();
            let mut last = "AADSTS700027: no certificate registered".to_owned();
            let jwt = get("client_assertion");
            if !self.federated.is_empty() {
                self.counters.federated_seen.push(jwt.to_owned());
                if !self.federated.iter().any(|f| f == jwt) {
                    let why = "AADSTS700213: No matching federated identity record found for \
                               presented assertion."
                        .to_owned();
                    return self.refuse(400, "invalid_client", why);
                }
                return self.grant(tenant);
            }
            let ok = self.opts.certs.iter().any(|c| {
                verify_assertion(jwt, c, &self.opts.client_id, &audience, now)
                    .map_err(|e| last = e)
                    .is_ok()
            });
            if !ok {
                return self.refuse(401, "invalid_client", last);
            }
            self.counters.assertions_ok += 1;
        } else {
            return self.refuse(401, "invalid_client", "AADSTS7000218: no credential".into());
        }
        self.grant(tenant)
    }

    fn grant(&mut self, tenant: String) -> Response<Full<Bytes>> {
        let token = hex_token();
        let expires = Instant::now() + self.opts.token_lifetime;
        self.tokens.insert(token.clone(), (tenant, expires));
        self.counters.token_ok += 1;
        reply(
            200,
            json!({"token_type": "Bearer", "expires_in": self.opts.expires_in,
                   "ext_expires_in": self.opts.expires_in, "access_token": token}),
            &[],
        )
    }

    fn refuse(&mut self, status: u16, error: &str, why: String) -> Response<Full<Bytes>> {
        self.counters.token_refused.push(why.clone());
        reply(
            status,
            json!({"error": error, "error_description": why, "error_codes": aadsts(&why)}),
            &[],
        )
    }
}

/// The numbers of the `AADSTS` codes a description names (Entra lists them in `error_codes`).
fn aadsts(why: &str) -> Vec<u64> {
    why.match_indices("AADSTS")
        .filter_map(|(i, _)| {
            let d: String = why[i + 6..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            d.parse().ok()
        })
        .collect()
}
