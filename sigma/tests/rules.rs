//! Every pinned SigmaHQ rule that `sigma check` says runs has a real-shaped event that must match
//! and one that must not. Events start from real Event Hub / Graph records (the ingest crate's
//! fixtures, read by the real reader) and change only the fields the rule is about.

use std::path::PathBuf;

use entrawatch_ingest::model::{
    Audit, AuditResult, AuthenticationRequirement, ConditionalAccessStatus, ModifiedProperty,
    RiskState, TargetResource,
};
use entrawatch_ingest::{Body, Event, Text};
use entrawatch_sigma::{SigmaConfig, SigmaSet, load};

mod common;
use common::first_event;

fn pinned() -> SigmaConfig {
    SigmaConfig {
        paths: vec![PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sigmahq")],
        ..SigmaConfig::default()
    }
}

fn target(a: &mut Audit) -> &mut TargetResource {
    if a.target_resources.is_empty() {
        a.target_resources.push(TargetResource::default());
    }
    &mut a.target_resources[0]
}

fn modified(a: &mut Audit) -> &mut ModifiedProperty {
    let t = target(a);
    if t.modified_properties.is_empty() {
        t.modified_properties.push(ModifiedProperty::default());
    }
    &mut t.modified_properties[0]
}

/// Sets a field of the event by a short name (the test table's vocabulary).
fn set(e: &mut Event, key: &str, value: &str) {
    let t = || Some(Text::from(value));
    match &mut e.body {
        Body::SignIn(s) => match key {
            "error" => s.error_code = Some(value.parse().unwrap()),
            "reason" => s.failure_reason = t(),
            "details" => s.additional_details = t(),
            "ua" => s.user_agent = t(),
            "req" => s.authentication_requirement = Some(AuthenticationRequirement::parse(value)),
            "ca" => s.conditional_access_status = Some(ConditionalAccessStatus::parse(value)),
            "resource" => s.resource_display_name = t(),
            "risk_state" => s.risk_state = Some(RiskState::parse(value)),
            "trust" => s.device.trust_type = t().filter(|v| !v.is_empty()),
            "compliant" => s.device.is_compliant = Some(value == "true"),
            _ => panic!("sign-in key {key}"),
        },
        Body::Audit(a) => {
            match key {
                "act" => a.activity_display_name = Text::from(value),
                "category" => a.category = t(),
                "result" => a.result = Some(AuditResult::parse(value)),
                "reason" => a.result_reason = t(),
                "service" => a.logged_by_service = t(),
                // One target, replacing the record's own.
                "target" => {
                    a.target_resources = vec![TargetResource {
                        display_name: t(),
                        ..TargetResource::default()
                    }]
                }
                "target_id" => {
                    a.target_resources = vec![TargetResource {
                        id: t(),
                        ..TargetResource::default()
                    }]
                }
                "target_type" => target(a).resource_type = t(),
                "mod_name" => modified(a).display_name = t(),
                "mod_old" => modified(a).old_value = t(),
                "mod_new" => modified(a).new_value = t(),
                // The audit's additional details: one `AdditionalInfo` entry.
                "info" => {
                    a.additional_details = vec![entrawatch_ingest::model::KeyValue {
                        key: Text::from("AdditionalInfo"),
                        value: t(),
                    }]
                }
                _ => panic!("audit key {key}"),
            }
        }
        Body::RiskDetection(r) => match key {
            "type" => r.risk_event_type = t(),
            _ => panic!("risk key {key}"),
        },
        _ => panic!("no setter for this kind"),
    }
}

type Sets = &'static [(&'static str, &'static str)];

/// (Sigma id, log, what makes the base record match, what then makes it not match).
const CASES: &[(&str, char, Sets, Sets)] = &[
    // audit_logs
    (
        "26e7c5e2-6545-481e-b7e6-050143459635",
        'a',
        &[("act", "Delete conditional access policy")],
        &[("act", "Update conditional access policy")],
    ),
    (
        "50a3c7aa-ec29-44a4-92c1-fce229eef6fc",
        'a',
        &[("act", "Update conditional access policy")],
        &[("act", "Delete conditional access policy")],
    ),
    (
        "0922467f-db53-4348-b7bf-dee8d0d348c6",
        'a',
        &[("act", "Add conditional access policy")],
        &[("act", "Update conditional access policy")],
    ),
    (
        "6f583da0-3a90-4566-a4ed-83c09fe18bbf",
        'a',
        &[("act", "Delete user"), ("result", "success")],
        &[("result", "failure")],
    ),
    (
        "a0413867-daf3-43dd-9245-734b3a787942",
        'a',
        &[("category", "KeyManagement"), ("act", "Read BitLocker key")],
        &[("category", "Device")],
    ),
    (
        "c2496b41-16a9-4016-a776-b23f8910dc58",
        'a',
        &[
            ("act", "Authentication Methods Policy Update"),
            ("mod_name", "AuthenticationMethodsPolicy"),
            ("mod_old", ""),
            ("mod_new", ""),
        ],
        &[("mod_name", "Included.Targets")],
    ),
    (
        "9494bff8-959f-4440-bbce-fb87a208d517",
        'a',
        &[
            ("category", "Policy"),
            ("act", "Set device registration policies"),
        ],
        &[("act", "Set Company Information")],
    ),
    (
        "4bb80281-3756-4ec8-a88e-523c5a6fda9e",
        'a',
        &[
            ("act", "Set Company Information"),
            ("mod_name", "Included Updated Properties"),
            ("mod_new", "TrustedCAsForPasswordlessAuth"),
        ],
        &[("mod_new", "DirSyncEnabled")],
    ),
    (
        "ebbeb024-5b1d-4e16-9c0c-917f86c708a7",
        'a',
        &[
            ("act", "Add member to role"),
            ("target", "Global Administrator"),
        ],
        &[("target", "Directory Readers")],
    ),
    (
        "11c767ae-500b-423b-bae3-b234450736ed",
        'a',
        &[
            ("category", "RoleManagement"),
            ("act", "Add eligible member to role"),
            ("target_id", "9f06204d-73c1-4d4c-880a-6edb90606fd8"),
            ("mod_name", "Role.TemplateId"),
            ("mod_new", "7698a772-787b-4ac8-901f-60d6b08affd2"),
        ],
        &[("mod_new", "88d8e3e3-8f55-4a1e-953a-9b9898b8876b")],
    ),
    (
        "1b45b0d1-773f-4f23-aedc-814b759563b1",
        'a',
        &[("act", "Update service principal")],
        &[("act", "Add service principal")],
    ),
    (
        "cbb67ecc-fb70-4467-9350-c910bdf7c628",
        'a',
        &[(
            "act",
            "Update application – Certificates and secrets management",
        )],
        &[("act", "Update application")],
    ),
    (
        "a6355fbe-f36f-45d8-8efc-ab42465cbc52",
        'a',
        &[("act", "Add delegated permission grant")],
        &[("act", "Remove delegated permission grant")],
    ),
    (
        "74298991-9fc4-460e-a92e-511aa60baec1",
        'a',
        &[("act", "Add owner to application")],
        &[("act", "Add owner to service principal")],
    ),
    (
        "c1d147ae-a951-48e5-8b41-dcd0170c7213",
        'a',
        &[("act", "Add app role assignment to service principal")],
        &[("act", "Add owner to application")],
    ),
    (
        "5aecf3d5-f8a0-48e7-99be-3a759df7358f",
        'a',
        &[("act", "Add app role assignment to service principal")],
        &[("act", "Add delegated permission grant")],
    ),
    (
        "b04934b2-0a68-4845-8a19-bdfed3a68a7a",
        'a',
        &[
            ("act", "Add member to role"),
            ("target_type", "Service Principal"),
        ],
        &[("target_type", "User")],
    ),
    (
        "0055ad1f-be85-4798-83cf-a6da17c993b3",
        'a',
        &[("act", "Update Application Sucess- Property Name AppAddress")],
        &[("act", "Update Application")],
    ),
    (
        "410d2a41-1e6d-452f-85e5-abdd8257a823",
        'a',
        &[("act", "Hard Delete application")],
        &[("act", "Add application")],
    ),
    (
        "4d78a000-ab52-4564-88a5-7ab5242b20c7",
        'a',
        &[
            ("service", "Authentication Methods"),
            ("category", "UserManagement"),
            ("act", "User registered security info"),
        ],
        &[("service", "Core Directory")],
    ),
    (
        "542b9912-c01f-4e3f-89a8-014c48cdca7d",
        'a',
        &[("act", "Device no longer compliant")],
        &[("act", "Update device")],
    ),
    (
        "352a54e1-74ba-4929-9d47-8193d67aba1e",
        'a',
        &[("act", "Set federation settings on domain")],
        &[("act", "Set domain authentication")],
    ),
    (
        "91c95675-1f27-46d0-bead-d1ae96b97cd3",
        'a',
        &[("act", "Add member from group")],
        &[("act", "Add member to group")],
    ),
    (
        "665e2d43-70dc-4ccc-9d27-026c9dd7ed9c",
        'a',
        &[("act", "Remove member from group")],
        &[("act", "Add member to group")],
    ),
    (
        "0b4b72e3-4c53-4d5b-b198-2c58cfef39a9",
        'a',
        &[("act", "Invite external user"), ("result", "failure")],
        &[("result", "success")],
    ),
    (
        "8dee7a0d-43fd-4b3c-8cd1-605e189d195e",
        'a',
        &[
            ("category", "UserManagement"),
            ("act", "Update user"),
            ("mod_name", "UserType"),
            ("mod_old", "[\"Guest\"]"),
            ("mod_new", "[\"Member\"]"),
        ],
        &[("mod_new", "[\"Guest\"]")],
    ),
    (
        "7ea78478-a4f9-42a6-9dcd-f861816122bf",
        'a',
        &[
            ("act", "Disable Strong Authentication"),
            ("result", "success"),
        ],
        &[("result", "failure")],
    ),
    (
        "636e30d5-3736-42ea-96b1-e6e2f8429fd6",
        'a',
        &[("act", "Remove owner from service principal")],
        &[("act", "Add owner to service principal")],
    ),
    (
        "039a7469-0296-4450-84c0-f6966b16dc6d",
        'a',
        &[("act", "Request Approved/Denied")],
        &[("act", "Add member to role completed (PIM activation)")],
    ),
    (
        "aeaef14c-e5bf-4690-a9c8-835caad458bd",
        'a',
        &[("act", "Disable PIM Alert")],
        &[("act", "Enable PIM Alert")],
    ),
    (
        "db6c06c4-bf3b-421c-aa88-15672b88c743",
        'a',
        &[("act", "Update role setting in PIM")],
        &[("act", "Update user")],
    ),
    (
        "49a268a4-72f4-4e38-8a7b-885be690c5b5",
        'a',
        &[("act", "Add eligible member (permanent)")],
        &[("act", "Add member to role")],
    ),
    (
        "102e11e3-2db5-4c9e-bc26-357d42585d21",
        'a',
        &[("act", "Remove eligible member (eligible)")],
        &[("act", "Remove member from role")],
    ),
    (
        "0ddcff6d-d262-40b0-804b-80eb592de8e3",
        'a',
        &[("act", "Add service principal")],
        &[("act", "Remove service principal")],
    ),
    (
        "448fd1ea-2116-4c62-9cde-a92d120e0f08",
        'a',
        &[("act", "Remove service principal")],
        &[("act", "Add service principal")],
    ),
    (
        "ca9bf243-465e-494a-9e54-bf9fc239057d",
        'a',
        &[
            ("category", "Administrative"),
            ("act", "Assigns the caller to user access admin"),
        ],
        &[("category", "Policy")],
    ),
    (
        "fa84aaf5-8142-43cd-9ec2-78cfebf878ce",
        'a',
        &[
            ("act", "Admin registered security info"),
            (
                "reason",
                "Admin registered temporary access pass method for user",
            ),
        ],
        &[("reason", "Admin registered phone method for user")],
    ),
    (
        "d4c7758e-9417-4f2e-9109-6125d66dabef",
        'a',
        &[
            ("service", "AAD Management UX"),
            ("category", "Policy"),
            ("act", "Update User Risk and MFA Registration Policy"),
        ],
        &[("service", "Core Directory")],
    ),
    (
        "b18454c8-0be3-41f7-86bc-9c614611b839",
        'a',
        &[
            ("service", "Core Directory"),
            ("category", "UserManagement"),
            ("act", "Update user"),
            ("mod_name", "StrongAuthenticationRequirement"),
            (
                "mod_new",
                "[{\"RelyingParty\":\"*\",\"State\":0,\"RememberDevicesNotIssuedBefore\":\"2026-01-01T00:00:00Z\"}]",
            ),
        ],
        &[("mod_new", "[{\"RelyingParty\":\"*\",\"State\":1}]")],
    ),
    (
        "9b2cc4c4-2ad4-416d-8e8e-ee6aa6f5035a",
        'a',
        &[
            ("act", "Consent to application"),
            ("mod_name", "ConsentContext.IsAdminConsent"),
            ("mod_new", "False"),
        ],
        &[("mod_new", "True")],
    ),
    (
        "a4b25073-8947-489c-a8dd-93b41c23f26d",
        'a',
        &[
            ("category", "Device"),
            ("act", "Recover device local administrator password"),
            (
                "info",
                "Successfully recovered local credential by device id: 6a1f0e4c-1f4a-4b47-9a54-0d5f1a7c3e21",
            ),
        ],
        &[(
            "info",
            "Failed to recover local credential by device id: 6a1f0e4c-1f4a-4b47-9a54-0d5f1a7c3e21",
        )],
    ),
    // identity_protection
    (
        "6555754e-5e7f-4a67-ad1c-4041c413a007",
        'r',
        &[("type", "anomalousToken")],
        &[("type", "unfamiliarFeatures")],
    ),
    (
        "258b6593-215d-4a26-a141-c8e31c1299a6",
        'r',
        &[("type", "anomalousUserActivity")],
        &[("type", "anomalousToken")],
    ),
    (
        "be4d9c86-d702-4030-b52e-c7859110e5e8",
        'r',
        &[("type", "riskyIPAddress")],
        &[("type", "anonymizedIPAddress")],
    ),
    (
        "53acd925-2003-440d-a1f3-71a5253fe237",
        'r',
        &[("type", "anonymizedIPAddress")],
        &[("type", "riskyIPAddress")],
    ),
    (
        "1a41023f-1e70-4026-921a-4d9341a9038e",
        'r',
        &[("type", "unlikelyTravel")],
        &[("type", "impossibleTravel")],
    ),
    (
        "b2572bf9-e20a-4594-b528-40bde666525a",
        'r',
        &[("type", "impossibleTravel")],
        &[("type", "unlikelyTravel")],
    ),
    (
        "27e4f1d6-ae72-4ea0-8a67-77a73a289c3d",
        'r',
        &[("type", "suspiciousInboxForwarding")],
        &[("type", "mcasSuspiciousInboxManipulationRules")],
    ),
    (
        "ceb55fd0-726e-4656-bf4e-b585b7f7d572",
        'r',
        &[("type", "mcasSuspiciousInboxManipulationRules")],
        &[("type", "suspiciousInboxForwarding")],
    ),
    (
        "19128e5e-4743-48dc-bd97-52e5775af817",
        'r',
        &[("type", "leakedCredentials")],
        &[("type", "passwordSpray")],
    ),
    (
        "a3f55ebd-0c01-4ed6-adc0-8fb76d8cd3cd",
        'r',
        &[("type", "maliciousIPAddress")],
        &[("type", "suspiciousIPAddress")],
    ),
    (
        "36440e1c-5c22-467a-889b-593e66498472",
        'r',
        &[("type", "suspiciousIPAddress")],
        &[("type", "maliciousIPAddress")],
    ),
    (
        "821b4dc3-1295-41e7-b157-39ab212dd6bd",
        'r',
        &[("type", "malwareInfectedIPAddress")],
        &[("type", "maliciousIPAddress")],
    ),
    (
        "adf9f4d2-559e-4f5c-95be-c28dff0b1476",
        'r',
        &[("type", "newCountry")],
        &[("type", "unlikelyTravel")],
    ),
    (
        "28ecba0a-c743-4690-ad29-9a8f6f25a6f9",
        'r',
        &[("type", "passwordSpray")],
        &[("type", "leakedCredentials")],
    ),
    (
        "a84fc3b1-c9ce-4125-8e74-bdcdb24021f1",
        'r',
        &[("type", "attemptedPrtAccess")],
        &[("type", "anomalousToken")],
    ),
    (
        "944f6adb-7a99-4c69-80c1-b712579e93e6",
        'r',
        &[("type", "suspiciousBrowser")],
        &[("type", "unfamiliarFeatures")],
    ),
    (
        "a2cb56ff-4f46-437a-a0fa-ffa4d1303cba",
        'r',
        &[("type", "investigationsThreatIntelligence")],
        &[("type", "generic")],
    ),
    (
        "e3393cba-31f0-4207-831e-aef90ab17a8c",
        'r',
        &[("type", "tokenIssuerAnomaly")],
        &[("type", "anomalousToken")],
    ),
    (
        "128faeef-79dd-44ca-b43c-a9e236a60f49",
        'r',
        &[("type", "unfamiliarFeatures")],
        &[("type", "newCountry")],
    ),
    // signin_logs
    (
        "2b7d6fc0-71ac-4cf7-8ed1-b5788ee5257a",
        's',
        &[("error", "50053")],
        &[("error", "50126")],
    ),
    (
        "35b781cc-1a08-4a5a-80af-42fd7c315c6b",
        's',
        &[("ua", "azurehound/v2.1.7"), ("error", "0")],
        &[("error", "50126")],
    ),
    (
        "5afa454e-030c-4ab4-9253-a90aa7fcc581",
        's',
        &[
            ("resource", "Device Registration Service"),
            ("ca", "success"),
            ("req", "singleFactorAuthentication"),
        ],
        &[("req", "multiFactorAuthentication")],
    ),
    (
        "28eea407-28d7-4e42-b0be-575d5ba60b2c",
        's',
        &[("error", "0"), ("req", "singleFactorAuthentication")],
        &[("req", "multiFactorAuthentication")],
    ),
    (
        "572b12d4-9062-11ed-a1eb-0242ac120002",
        's',
        &[
            ("error", "0"),
            ("req", "singleFactorAuthentication"),
            ("risk_state", "atRisk"),
            ("trust", ""),
        ],
        &[("trust", "Azure AD joined")],
    ),
    (
        "4f77e1d7-3982-4ee0-8489-abf2d6b75284",
        's',
        &[("compliant", "false")],
        &[("compliant", "true")],
    ),
    (
        "53bb4f7f-48a8-4475-ac30-5a82ddfdf6fc",
        's',
        &[("error", "0"), ("ua", "BAV2ROPC")],
        &[("ua", "Mozilla/5.0 (Windows NT 10.0; Win64; x64)")],
    ),
    (
        "4afac85c-224a-4dd7-b1af-8da40e1c60bd",
        's',
        &[("error", "50057"), ("reason", "Failure")],
        &[("error", "50053")],
    ),
    (
        "b4a6d707-9430-4f5f-af68-0337f52d5c42",
        's',
        &[
            ("error", "53003"),
            ("reason", "Blocked by Conditional Access"),
        ],
        &[("error", "50126")],
    ),
    (
        "908655e0-25cf-4ae1-b775-1c8ce9cf43d8",
        's',
        &[
            ("error", "50057"),
            (
                "reason",
                "User account is disabled. The account has been disabled by an administrator.",
            ),
        ],
        &[("reason", "Failure")],
    ),
    (
        "e40f4962-b02b-4192-9bfe-245f7ece1f99",
        's',
        &[
            ("error", "500121"),
            ("req", "multiFactorAuthentication"),
            ("details", "MFA denied; user declined the authentication"),
        ],
        &[("details", "MFA completed in Azure AD")],
    ),
    (
        "5496ff55-42ec-4369-81cb-00f417029e25",
        's',
        &[
            ("error", "500121"),
            (
                "reason",
                "Authentication failed during strong authentication request.",
            ),
        ],
        &[("error", "50126")],
    ),
    (
        "8366030e-7216-476b-9927-271d79f13cf3",
        's',
        &[
            ("error", "50158"),
            (
                "reason",
                "ExternalSecurityChallenge - External security challenge was not satisfied",
            ),
        ],
        &[("reason", "External security challenge was not satisfied")],
    ),
    (
        "9a60e676-26ac-44c3-814b-0c2a8b977adf",
        's',
        &[("error", "53003")],
        &[("error", "0")],
    ),
];

fn base(log: char) -> Event {
    use entrawatch_ingest::Kind;
    match log {
        's' => first_event("derived/eventhub_envelope_signinlogs.json", Kind::SignIn),
        'a' => first_event("derived/eventhub_envelope_auditlogs.json", Kind::Audit),
        _ => first_event(
            "real/msgraph-docs/beta_riskdetections_list_ex1_remediated.json",
            Kind::RiskDetection,
        ),
    }
}

#[test]
fn every_rule_that_runs_has_a_matching_and_a_non_matching_event() {
    let loaded = load(&pinned());
    let runs: Vec<&str> = (loaded.entries.iter())
        .filter(|e| e.status.runs())
        .map(|e| e.id.as_str())
        .collect();
    let sigma = SigmaSet::new(loaded.rules);
    let mut failures = Vec::new();
    for id in &runs {
        if !CASES.iter().any(|c| c.0 == *id) {
            failures.push(format!("{id}: runs but has no case"));
        }
    }
    for &(id, log, hit, miss) in CASES {
        if !runs.contains(&id) {
            failures.push(format!("{id}: has a case but does not run"));
            continue;
        }
        let mut event = base(log);
        for (k, v) in hit {
            set(&mut event, k, v);
        }
        if !sigma.matching_ids(&event).contains(&id) {
            failures.push(format!("{id}: the matching event does not match"));
        }
        for (k, v) in miss {
            set(&mut event, k, v);
        }
        if sigma.matching_ids(&event).contains(&id) {
            failures.push(format!("{id}: the non-matching event matches"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(runs.len(), CASES.len());
}

/// A match flows out of the detection engine as a finding like any native one: rule id
/// `sigma:<id>`, severity from `level`, MITRE from `tags`, evidence from the rule's fields.
#[test]
fn a_match_is_an_engine_finding() {
    let loaded = load(&pinned());
    let sigma = std::sync::Arc::new(SigmaSet::new(loaded.rules));
    let mut engine =
        entrawatch_detect::Engine::new(entrawatch_detect::DetectConfig::default()).unwrap();
    engine.set_extra_rules(Some(sigma));
    let mut event = base('r');
    set(&mut event, "type", "leakedCredentials");
    let mut out = Vec::new();
    engine.process(&event, &mut out);
    let f = out
        .iter()
        .find(|f| f.rule == "sigma:19128e5e-4743-48dc-bd97-52e5775af817")
        .expect("a sigma finding");
    assert_eq!(f.severity, entrawatch_detect::Severity::High);
    assert_eq!(f.title, "Azure AD Account Credential Leaked");
    assert_eq!(f.mitre, ["T1589"]);
    assert_eq!(
        f.evidence["fields"]["properties.riskEventType"],
        "leakedCredentials"
    );
    assert_eq!(f.event_ids, [event.meta.id.to_string()]);
    assert_eq!(
        engine.findings_by_rule()["sigma:19128e5e-4743-48dc-bd97-52e5775af817"],
        1
    );
}

/// `detect.allow."sigma:<id>"` is accepted by the config check and drops that rule's findings for
/// the principals it names, as for a native rule.
#[test]
fn allow_lists_take_sigma_rule_ids() {
    let id = "sigma:19128e5e-4743-48dc-bd97-52e5775af817";
    let mut config = entrawatch_detect::DetectConfig::default();
    let mut event = base('r');
    set(&mut event, "type", "leakedCredentials");
    let Body::RiskDetection(r) = &event.body else {
        unreachable!()
    };
    let user = r.user_id.as_deref().unwrap().to_owned();
    config.allow.insert(
        id.to_owned(),
        entrawatch_detect::config::AllowList {
            principals: vec![user],
            ips: Vec::new(),
        },
    );
    assert!(
        config.validate(&[]).is_empty(),
        "{:?}",
        config.validate(&[])
    );
    let mut engine = entrawatch_detect::Engine::new(config).unwrap();
    engine.set_extra_rules(Some(std::sync::Arc::new(SigmaSet::new(
        load(&pinned()).rules,
    ))));
    let mut out = Vec::new();
    engine.process(&event, &mut out);
    assert!(out.iter().all(|f| f.rule != id), "{out:?}");
    assert_eq!(engine.allowed(), 1);
}
