//! `unmanaged-device-privileged`: see [`DOC`] for what it detects and why.

use entrawatch_ingest::model::{DeviceDetail, Event, Kind};
use serde_json::{Map, Value, json};

use super::{about_sign_in, actor, app_name, place, role_names, who};
use crate::detector::{Context, Detector};
use crate::finding::{Finding, Severity};
use crate::privileged::PrivilegedDirectory;

pub const ID: &str = "unmanaged-device-privileged";

/// User documentation, printed by `entrawatch rules unmanaged-device-privileged`.
pub const DOC: &str = r#"## What it detects
A successful interactive sign-in by a privileged principal (a holder of a role from the privileged
catalogue, active or eligible, a principal configured as privileged, or a partner technician acting
through GDAP) from a device that is not known to be managed: `deviceDetail.deviceId` is empty (the
device is unknown to Entra), or neither `isManaged` nor `isCompliant` is true.

## Why it matters
Admin sessions on personal or unknown devices are where token theft starts: infostealer malware
lifts the session cookie and replays it elsewhere, past MFA. Microsoft's CSP security best
practices and its privileged-access guidance ask for admin work from managed, compliant (ideally
dedicated) devices only, enforced by Conditional Access. MITRE ATT&CK T1078.004 (Valid Accounts:
Cloud Accounts).

## Signals used
`status.errorCode` (0), `isInteractive` or the Event Hub category, `deviceDetail` (`deviceId`,
`isManaged`, `isCompliant`, `trustType`, `operatingSystem`, `browser`, `displayName`), the
privileged directory, `detect.privileged_principals`, and `crossTenantAccessType` / `homeTenantId`
for partner technicians. Event Hub and Log Analytics drop `isManaged` and `isCompliant` when they
are false, so a missing key counts as "not true". Non-interactive token refreshes replay an earlier
sign-in's device and never fire.

## Example
A partner technician opens the customer's Entra admin center from a home laptop: the sign-in has no
device id and no compliance state. This fires high, naming the operating system and browser, so the
analyst can ask the technician which machine it was.

## Known false positives and tuning
Devices that are Entra-registered (personal devices with a work account added) have a device id
but are neither managed nor compliant, and fire by design. Tenants that manage admin devices outside
Intune (a third-party MDM without the compliance partner integration) show them as unmanaged; fix
the integration, or put dedicated admin egress addresses in
`[detect.allow.unmanaged-device-privileged]`. Partner technicians' own devices are managed in the
partner tenant, which the customer's log cannot see: the partner's own logs are the place to prove
it. Repeats group into one episode per principal.

## References
Microsoft Learn: "Require device compliance with Conditional Access", "Securing devices as part of
the privileged access story", "Partner security requirements", and the sign-in log schema
(`deviceDetail`).
"#;

#[derive(Debug, Clone, Copy, Default)]
pub struct UnmanagedDevicePrivileged;

/// Why the device is not known-managed, for the analyst; `None` when it is.
fn unmanaged_reason(d: &DeviceDetail) -> Option<&'static str> {
    if d.is_known_managed() {
        None
    } else if d.device_id.is_none() {
        Some("unknown to Entra (no device id)")
    } else {
        Some("known to Entra but neither managed nor compliant")
    }
}

/// `Windows 10, Edge 120.0`, or `an unidentified device`.
fn describe(d: &DeviceDetail) -> String {
    let parts: Vec<&str> = [&d.display_name, &d.operating_system, &d.browser]
        .into_iter()
        .filter_map(|p| p.as_deref())
        .collect();
    if parts.is_empty() {
        "an unidentified device".to_owned()
    } else {
        parts.join(", ")
    }
}

impl Detector for UnmanagedDevicePrivileged {
    fn id(&self) -> &'static str {
        ID
    }

    fn doc(&self) -> &'static str {
        DOC
    }

    fn default_severity(&self) -> Severity {
        Severity::High
    }

    fn kinds(&self) -> &'static [Kind] {
        &[Kind::SignIn]
    }

    fn observe(&self, ctx: &Context<'_>, event: &Event, out: &mut Vec<Finding>) {
        let Some(s) = event.as_sign_in() else { return };
        if !(s.is_user() && s.is_interactive() && s.is_success()) {
            return;
        }
        let Some(reason) = unmanaged_reason(&s.device) else {
            return;
        };
        let tenant = &event.meta.tenant_id;
        if !ctx.sign_in_is_privileged(tenant, s) {
            return;
        }
        let partner = PrivilegedDirectory::is_partner_technician(ctx.config, s);
        let roles = role_names(ctx, tenant, s);
        let device = describe(&s.device);
        let app = app_name(s);
        let ip = s
            .ip_address
            .clone()
            .unwrap_or_else(|| "an unknown IP".into());
        let actor = actor(who(s), partner, true);
        let title = format!("{actor} signed in to {app} from an unmanaged device ({device})");
        let summary = format!(
            "{actor}{} signed in interactively to {app} in tenant {tenant} from {ip} ({}) on a \
             device {reason}: {device}. Ask the person which machine this was; if they do not \
             know it, revoke sessions and reset the password and MFA methods, and look for token \
             theft. Require a compliant or hybrid-joined device for admin roles with Conditional \
             Access.",
            if roles.is_empty() {
                String::new()
            } else {
                format!(" ({})", roles.join(", "))
            },
            place(s),
        );
        let d = &s.device;
        let mut evidence = Map::new();
        evidence.insert("app".into(), json!(app));
        evidence.insert("resource".into(), json!(s.resource_display_name));
        evidence.insert("ip_address".into(), json!(s.ip_address));
        evidence.insert("location".into(), json!(place(s)));
        evidence.insert("unmanaged_reason".into(), json!(reason));
        evidence.insert("device_id".into(), json!(d.device_id));
        evidence.insert("device_name".into(), json!(d.display_name));
        evidence.insert("operating_system".into(), json!(d.operating_system));
        evidence.insert("browser".into(), json!(d.browser));
        evidence.insert("trust_type".into(), json!(d.trust_type));
        evidence.insert("is_managed".into(), json!(d.is_managed));
        evidence.insert("is_compliant".into(), json!(d.is_compliant));
        evidence.insert(
            "conditional_access_status".into(),
            json!(s.conditional_access_status),
        );
        evidence.insert("partner_technician".into(), Value::Bool(partner));
        evidence.insert("roles".into(), json!(roles));
        out.push(Finding {
            rule: ID,
            severity: Severity::High,
            title,
            summary,
            evidence,
            mitre: &["T1078.004"],
            ..about_sign_in(event, s)
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DetectConfig;
    use crate::config::PrincipalRef;
    use crate::testkit::*;

    const USER_ADMIN: &str = "fe930be7-5e62-47db-91af-98c3a49a38b1";

    fn config() -> DetectConfig {
        DetectConfig {
            privileged_principals: vec![PrincipalRef {
                tenant_id: TENANT.into(),
                id: "secops@contoso.com".into(),
            }]
            .into(),
            ..DetectConfig::default()
        }
    }

    /// A personal device with a work account added, as Event Hub writes it (false keys omitted).
    fn registered(d: &mut DeviceDetail) {
        *d = DeviceDetail {
            device_id: Some("5b1d2c3e-registered".into()),
            display_name: Some("DESKTOP-HOME42".into()),
            operating_system: Some("Windows 11".into()),
            browser: Some("Chrome 126.0".into()),
            trust_type: Some("Azure AD registered".into()),
            ..DeviceDetail::default()
        };
    }

    #[test]
    fn fires_on_admins_partners_and_just_activated_roles_from_unmanaged_devices() {
        let events = vec![
            role_grant(TENANT, "megan@contoso.com", GLOBAL_ADMIN),
            sign_in("u1", "megan@contoso.com", 0)
                .unmanaged()
                .ip("198.51.100.40")
                .build(),
            sign_in("u2", "user_5f0c@northwind.example", 10)
                .partner(PARTNER)
                .with(|s| registered(&mut s.device))
                .build(),
            // Graph writes the false flags out; a device id alone is not enough.
            sign_in("u3", "secops@contoso.com", 20)
                .with(|s| {
                    s.device.is_managed = Some(false);
                    s.device.is_compliant = Some(false);
                    s.device.trust_type = None;
                })
                .build(),
            // A PIM activation makes Joe privileged for the next sign-in.
            audit("pim1", "Add member to role completed (PIM activation)", 30)
                .category("RoleManagement")
                .by_app("MS-PIM")
                .target_user("joe@contoso.com")
                .modified("Role.TemplateId", None, Some(USER_ADMIN))
                .build(),
            sign_in("u4", "joe@contoso.com", 31).unmanaged().build(),
        ];
        let found = run(ID, config(), &events);
        let brief: Vec<(&str, &str, Severity)> = found
            .iter()
            .map(|f| (f.rule, f.event_ids[0].as_str(), f.severity))
            .collect();
        assert_eq!(
            brief,
            vec![
                (ID, "u1", Severity::High),
                (ID, "u2", Severity::High),
                (ID, "u3", Severity::High),
                (ID, "u4", Severity::High),
            ]
        );
        assert_eq!(found[0].ip.as_deref(), Some("198.51.100.40"));
        assert_eq!(
            found[0].evidence["unmanaged_reason"],
            json!("unknown to Entra (no device id)")
        );
        assert_eq!(
            found[1].evidence["unmanaged_reason"],
            json!("known to Entra but neither managed nor compliant")
        );
        assert_eq!(found[3].evidence["roles"], json!(["User Administrator"]));
        insta::assert_json_snapshot!("unmanaged_device_privileged_fires", snapshot(&found));
    }

    #[test]
    fn stays_quiet_on_managed_devices_ordinary_users_refreshes_and_failures() {
        let events = vec![
            role_grant(TENANT, "megan@contoso.com", GLOBAL_ADMIN),
            // Managed and compliant (the builder's default), compliant only, managed only.
            sign_in("q1", "megan@contoso.com", 0).build(),
            sign_in("q2", "megan@contoso.com", 1)
                .with(|s| s.device.is_managed = None)
                .build(),
            sign_in("q3", "megan@contoso.com", 2)
                .with(|s| s.device.is_compliant = None)
                .build(),
            // An ordinary user on a personal laptop.
            sign_in("q4", "ann@contoso.com", 3).unmanaged().build(),
            // Token refresh, wrong password, MFA interrupt, Conditional Access block.
            sign_in("q5", "megan@contoso.com", 4)
                .unmanaged()
                .non_interactive()
                .build(),
            sign_in("q6", "megan@contoso.com", 5)
                .unmanaged()
                .fail(50126)
                .build(),
            sign_in("q7", "megan@contoso.com", 6)
                .unmanaged()
                .fail(50074)
                .build(),
            sign_in("q8", "megan@contoso.com", 7)
                .unmanaged()
                .fail(53003)
                .build(),
            // A guest collaborator from another tenant is not a partner technician.
            sign_in("q9", "guest@fabrikam.com", 8)
                .guest(TENANT_B)
                .unmanaged()
                .build(),
        ];
        assert!(run(ID, config(), &events).is_empty());
    }
}
