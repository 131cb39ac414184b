//! The sign-ins the latency run produces: Event Hub records (Entra diagnostic settings, the shape
//! an Event Hub or Kafka topic carries), stamped with the current time and fresh ids.
//!
//! Background records are ordinary activity of a fixed population of users, each always from the
//! same place and device, and never raise an alert: token refreshes (non-interactive), interactive
//! sign-ins that passed MFA, and "keep me signed in" interrupts. A probe is an interactive,
//! successful, single-factor sign-in of a user never seen before: `mfa-not-satisfied` fires on it,
//! and since the episode key is (rule, tenant, principal) every probe opens its own alert with its
//! own id (`alert_id` hashes the principal and the first evidence id) and its own notification
//! group (the default `group_by` is tenant, rule and principal). The probe's record id comes back
//! in the alert's `event_ids`, which is how a webhook POST is matched to its probe.

use std::fmt::Write as _;

use chrono::{DateTime, Utc};

use crate::simulate::rng::Rng;

/// Customer tenants of the background population.
pub const TENANTS: u64 = 10;
/// Users per tenant.
pub const USERS_PER_TENANT: u64 = 1000;

const CITIES: [(&str, &str, &str, f64, f64); 5] = [
    ("Seattle", "Washington", "US", 47.6062, -122.3321),
    ("London", "England", "GB", 51.5072, -0.1276),
    ("Berlin", "Berlin", "DE", 52.52, 13.405),
    ("Sydney", "New South Wales", "AU", -33.8688, 151.2093),
    ("Toronto", "Ontario", "CA", 43.6532, -79.3832),
];

/// A stable GUID for a (kind, number) pair of this run: the tenants and users of the population.
fn stable_guid(run: u64, kind: u64, n: u64) -> String {
    Rng::derive(run, &[kind, n]).guid().to_string()
}

/// What a record is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// Non-interactive token refresh ("Previously satisfied").
    Refresh,
    /// Interactive, password and an authenticator push.
    InteractiveMfa,
    /// Interactive "keep me signed in" interrupt (50140): neither failure nor success.
    Interrupt,
    /// Interactive, password only, success: a probe.
    Probe,
}

/// The record generator of one run.
#[derive(Debug)]
pub struct Generator {
    run: u64,
    rng: Rng,
    tenants: Vec<String>,
}

/// A user as the records show them.
struct User {
    id: String,
    upn: String,
    name: String,
    tenant: usize,
    ip: String,
    device: String,
    city: usize,
}

impl Generator {
    pub fn new(run: u64) -> Generator {
        Generator {
            run,
            rng: Rng::derive(run, &[]),
            tenants: (0..TENANTS).map(|t| stable_guid(run, 1, t)).collect(),
        }
    }

    fn user(&self, n: u64) -> User {
        let tenant = (n % TENANTS) as usize;
        // 198.18.0.0/15 is the range set aside for benchmarks (RFC 2544).
        User {
            id: stable_guid(self.run, 2, n),
            upn: format!("user{n}@tenant{tenant}.example"),
            name: format!("User {n}"),
            tenant,
            ip: format!(
                "198.{}.{}.{}",
                18 + (n >> 16) % 2,
                (n >> 8) & 0xff,
                n & 0xff
            ),
            device: stable_guid(self.run, 3, n),
            city: tenant % CITIES.len(),
        }
    }

    /// Appends one background record (a JSON object) to `out`.
    pub fn background(&mut self, now: DateTime<Utc>, out: &mut String) {
        let n = self.rng.below(TENANTS * USERS_PER_TENANT);
        let shape = match self.rng.below(100) {
            0..60 => Shape::Refresh,
            60..97 => Shape::InteractiveMfa,
            _ => Shape::Interrupt,
        };
        let user = self.user(n);
        let id = self.rng.guid().to_string();
        self.write(out, shape, &user, &id, now);
    }

    /// Appends probe `k` (a JSON object) to `out`; returns its record id.
    pub fn probe(&mut self, k: u64, now: DateTime<Utc>, out: &mut String) -> String {
        let user = User {
            id: self.rng.guid().to_string(),
            upn: format!("latency-probe-{k}@tenant0.example"),
            name: format!("Latency probe {k}"),
            tenant: 0,
            ip: format!("198.19.255.{}", k % 250 + 1),
            device: self.rng.guid().to_string(),
            city: 0,
        };
        let id = self.rng.guid().to_string();
        self.write(out, Shape::Probe, &user, &id, now);
        id
    }

    fn write(&mut self, out: &mut String, shape: Shape, u: &User, id: &str, now: DateTime<Utc>) {
        let tenant = &self.tenants[u.tenant];
        let (city, state, country, lat, lon) = CITIES[u.city];
        // Entra writes seven fractional digits.
        let time = format!(
            "{}.{:07}",
            now.format("%Y-%m-%dT%H:%M:%S"),
            now.timestamp_subsec_nanos() / 100
        );
        let correlation = self.rng.guid().to_string();
        let (category, interactive, code, app, app_id, resource, resource_id, client, agent) =
            match shape {
                Shape::Refresh => (
                    "NonInteractiveUserSignInLogs",
                    false,
                    0,
                    "Microsoft Teams",
                    "1fec8e78-bce4-4aaf-ab1b-5451cc387264",
                    "Microsoft Teams Services",
                    "cc15fd57-2c6c-4117-a88c-83b1d56b4bbe",
                    "Mobile Apps and Desktop clients",
                    "Microsoft Teams/24295.605.3225.8804 (Windows NT 10.0)",
                ),
                Shape::InteractiveMfa | Shape::Interrupt => (
                    "SignInLogs",
                    true,
                    if shape == Shape::Interrupt { 50140 } else { 0 },
                    "OfficeHome",
                    "4765445b-32c6-49b0-83e6-1d93765276ca",
                    "OfficeHome",
                    "4765445b-32c6-49b0-83e6-1d93765276ca",
                    "Browser",
                    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
                ),
                Shape::Probe => (
                    "SignInLogs",
                    true,
                    0,
                    "Azure Portal",
                    "c44b4083-3bb0-49c1-b47d-974e53cbdf3c",
                    "Windows Azure Service Management API",
                    "797f4846-ba00-4fd7-ba43-dac1f8f63013",
                    "Browser",
                    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
                ),
            };
        let result = match code {
            0 => String::new(),
            _ => r#","resultDescription":"This error occurred due to 'Keep me signed in' interrupt when the user was signing-in.""#.to_owned(),
        };
        let status = match code {
            0 => r#"{"errorCode":0}"#.to_owned(),
            c => format!(
                r#"{{"errorCode":{c},"failureReason":"This error occurred due to 'Keep me signed in' interrupt when the user was signing-in."}}"#
            ),
        };
        let password = format!(
            r#"{{"authenticationStepDateTime":"{time}+00:00","authenticationMethod":"Password","succeeded":true,"authenticationStepResultDetail":"Correct password","authenticationStepRequirement":"Primary authentication","StatusSequence":0,"RequestSequence":0}}"#
        );
        let (steps, requirement, ca_status, policy_result) = match shape {
            Shape::Refresh => (
                format!(
                    r#"[{{"authenticationStepDateTime":"{time}+00:00","authenticationMethod":"Previously satisfied","succeeded":true,"authenticationStepResultDetail":"First factor requirement satisfied by claim in the token","authenticationStepRequirement":"Primary authentication","StatusSequence":0,"RequestSequence":0}}]"#
                ),
                "singleFactorAuthentication",
                "notApplied",
                "notApplied",
            ),
            Shape::InteractiveMfa | Shape::Interrupt => (
                format!(
                    r#"[{password},{{"authenticationStepDateTime":"{time}+00:00","authenticationMethod":"Mobile app notification","succeeded":true,"authenticationStepResultDetail":"MFA successfully completed","authenticationStepRequirement":"MFA"}}]"#
                ),
                "multiFactorAuthentication",
                "success",
                "success",
            ),
            Shape::Probe => (
                format!("[{password}]"),
                "singleFactorAuthentication",
                "notApplied",
                "notApplied",
            ),
        };
        let _ = write!(
            out,
            r#"{{"time":"{time}Z","resourceId":"/tenants/{tenant}/providers/Microsoft.aadiam","operationName":"Sign-in activity","operationVersion":"1.0","category":"{category}","tenantId":"{tenant}","resultType":"{code}","resultSignature":"None"{result},"durationMs":0,"callerIpAddress":"{ip}","correlationId":"{correlation}","identity":"{name}","Level":4,"location":"{country}","properties":{{"id":"{id}","createdDateTime":"{time}+00:00","userDisplayName":"{name}","userPrincipalName":"{upn}","userId":"{user}","appId":"{app_id}","appDisplayName":"{app}","ipAddress":"{ip}","status":{status},"clientAppUsed":"{client}","userAgent":"{agent}","deviceDetail":{{"deviceId":"{device}","operatingSystem":"Windows10","browser":"Edge 131.0.0","isCompliant":true,"isManaged":true,"trustType":"Azure AD joined"}},"location":{{"city":"{city}","state":"{state}","countryOrRegion":"{country}","geoCoordinates":{{"latitude":{lat},"longitude":{lon}}}}},"correlationId":"{correlation}","conditionalAccessStatus":"{ca_status}","appliedConditionalAccessPolicies":[{{"id":"a1f4c3d2-7b6e-4d5c-9e8f-0a1b2c3d4e5f","displayName":"Require MFA for all users","enforcedGrantControls":["Mfa"],"enforcedSessionControls":[],"result":"{policy_result}"}}],"originalRequestId":"{id}","isInteractive":{interactive},"processingTimeInMilliseconds":120,"riskDetail":"none","riskLevelAggregated":"none","riskLevelDuringSignIn":"none","riskState":"none","riskEventTypes_v2":[],"resourceDisplayName":"{resource}","resourceId":"{resource_id}","resourceTenantId":"{tenant}","homeTenantId":"{tenant}","tokenIssuerName":"","tokenIssuerType":"AzureAD","authenticationDetails":{steps},"authenticationRequirement":"{requirement}","userType":"Member","crossTenantAccessType":"none"}}}}"#,
            ip = u.ip,
            name = u.name,
            upn = u.upn,
            user = u.id,
            device = u.device,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use entrawatch_ingest::{Item, ReadOptions, read_bytes};

    fn events(text: &str) -> Vec<entrawatch_ingest::Event> {
        let opts = ReadOptions {
            tenant: None,
            max_record_bytes: entrawatch_ingest::reader::DEFAULT_MAX_RECORD_BYTES,
        };
        let mut out = Vec::new();
        read_bytes(
            "test",
            text.as_bytes(),
            None,
            &opts,
            &mut |item| match item {
                Item::Event(e) => out.push(*e),
                other => panic!("not an event: {other:?}"),
            },
        );
        out
    }

    #[test]
    fn background_records_parse_and_raise_nothing_and_every_probe_raises_its_own_alert() {
        let mut g = Generator::new(7);
        let now = Utc::now();
        let mut records = Vec::new();
        for _ in 0..2000 {
            let mut s = String::new();
            g.background(now, &mut s);
            records.push(s);
        }
        let mut probe_ids = Vec::new();
        for k in 0..3 {
            let mut s = String::new();
            probe_ids.push(g.probe(k, now, &mut s));
            records.push(s);
        }
        let envelope = format!(r#"{{"records":[{}]}}"#, records.join(","));
        let events = events(&envelope);
        assert_eq!(events.len(), records.len());
        let mut engine =
            entrawatch_detect::Engine::new(entrawatch_detect::DetectConfig::default()).unwrap();
        let mut findings = Vec::new();
        for e in &events {
            engine.process(e, &mut findings);
        }
        let fired: Vec<(&str, &str)> = findings
            .iter()
            .map(|f| (f.rule, f.event_ids[0].as_str()))
            .collect();
        let expected: Vec<(&str, &str)> = probe_ids
            .iter()
            .map(|id| ("mfa-not-satisfied", id.as_str()))
            .collect();
        assert_eq!(fired, expected);
        let alert_ids: std::collections::BTreeSet<String> = findings
            .iter()
            .map(entrawatch_alert::record::alert_id)
            .collect();
        assert_eq!(alert_ids.len(), 3);
    }
}
