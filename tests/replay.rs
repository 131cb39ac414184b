//! `entrawatch replay` end to end: the real binary over real files on disk.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

const TENANT_A: &str = "11111111-aaaa-4aaa-8aaa-111111111111";
const TENANT_B: &str = "22222222-bbbb-4bbb-8bbb-222222222222";

fn entrawatch() -> Command {
    Command::new(env!("CARGO_BIN_EXE_entrawatch"))
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `entrawatch replay ARGS... --summary-json S --alerts A --events E --rejects R` and returns
/// the process output with the parsed outputs.
struct Run {
    output: Output,
    summary: Value,
    alerts: Vec<Value>,
    /// The alerts file as written.
    alerts_bytes: Vec<u8>,
    events: Vec<Value>,
    rejects: Vec<Value>,
}

/// The replay must end: past this it is killed and the test fails.
const REPLAY_LIMIT: Duration = Duration::from_secs(300);

fn replay(dir: &Path, args: &[&str]) -> Run {
    let out = tempfile::tempdir().unwrap();
    let p = |n: &str| out.path().join(n);
    let mut child = entrawatch()
        .arg("replay")
        .args(args)
        .arg("--summary-json")
        .arg(p("summary.json"))
        .arg("--alerts")
        .arg(p("alerts.jsonl"))
        .arg("--events")
        .arg(p("events.jsonl"))
        .arg("--rejects")
        .arg(p("rejects.jsonl"))
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(p("stderr.txt")).unwrap())
        .spawn()
        .unwrap();
    let status = common::wait_bounded(&mut child, REPLAY_LIMIT);
    let output = Output {
        status,
        stdout: Vec::new(),
        stderr: std::fs::read(p("stderr.txt")).unwrap(),
    };
    let lines = |n: &str| -> Vec<Value> {
        std::fs::read_to_string(p(n))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let summary = std::fs::read_to_string(p("summary.json"))
        .map(|s| serde_json::from_str(&s).unwrap())
        .unwrap_or(Value::Null);
    Run {
        summary,
        alerts: lines("alerts.jsonl"),
        alerts_bytes: std::fs::read(p("alerts.jsonl")).unwrap_or_default(),
        events: lines("events.jsonl"),
        rejects: lines("rejects.jsonl"),
        output,
    }
}

fn stderr(run: &Run) -> String {
    String::from_utf8_lossy(&run.output.stderr).into_owned()
}

fn write(path: &Path, text: impl AsRef<[u8]>) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// An Event Hub sign-in record.
fn eh_sign_in(id: &str, tenant: &str, time: &str, upn: &str, requirement: &str) -> Value {
    json!({
        "time": time, "resourceId": format!("/tenants/{tenant}/providers/Microsoft.aadiam"),
        "operationName": "Sign-in activity", "category": "SignInLogs", "tenantId": tenant,
        "resultType": "0", "Level": 4, "location": "US",
        "properties": {
            "id": id, "createdDateTime": time, "userPrincipalName": upn, "userId": format!("uid-{upn}"),
            "appDisplayName": "Azure Portal", "ipAddress": "203.0.113.7", "isInteractive": true,
            "status": {"errorCode": 0}, "authenticationRequirement": requirement,
            "location": {"city": "Redmond", "countryOrRegion": "US"}
        }
    })
}

/// A Graph beta sign-in (no tenant of its own when `resource_tenant` is None).
fn graph_sign_in(id: &str, time: &str, upn: &str, resource_tenant: Option<&str>) -> Value {
    json!({
        "id": id, "createdDateTime": time, "userPrincipalName": upn, "userId": format!("uid-{upn}"),
        "appDisplayName": "Office 365 Exchange Online", "ipAddress": "198.51.100.4", "isInteractive": true,
        "signInEventTypes": ["interactiveUser"], "status": {"errorCode": 0},
        "authenticationRequirement": "multiFactorAuthentication", "resourceTenantId": resource_tenant
    })
}

#[test]
fn a_folder_mixing_all_shapes_replays_in_event_time_order_with_repeats_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Event Hub envelopes, out of order, one envelope per line.
    let env1 = json!({"records": [
        eh_sign_in("eh-3", TENANT_A, "2026-10-01T10:03:00.0000000Z", "ann@contoso.com", "multiFactorAuthentication"),
        eh_sign_in("eh-1", TENANT_A, "2026-10-01T10:01:00.1234567+00:00", "bob@contoso.com", "singleFactorAuthentication"),
    ]});
    let env2 = json!({"records": [eh_sign_in("eh-6", TENANT_A, "10/1/2026 10:06:00 AM", "cy@contoso.com", "multiFactorAuthentication")]});
    write(
        &d.join("eventhub/capture-1.json"),
        format!("{env1}\n{env2}\n"),
    );
    // The same record again, as at-least-once delivery does.
    write(&d.join("eventhub/capture-2.json"), json!({"records": [eh_sign_in("eh-3", TENANT_A, "2026-10-01T10:03:00.0000000Z", "ann@contoso.com", "multiFactorAuthentication")]}).to_string());
    // A Graph page, newest first, in a folder named by the tenant (its records carry none).
    let page = json!({
        "@odata.context": "https://graph.microsoft.com/beta/$metadata#auditLogs/signIns",
        "value": [graph_sign_in("g-5", "2026-10-01T10:05:00Z", "dee@fabrikam.com", None),
                  graph_sign_in("g-2", "2026-10-01T10:02:00Z", "eve@fabrikam.com", None)],
        "@odata.nextLink": "https://graph.microsoft.com/beta/auditLogs/signIns?$skiptoken=abc"
    });
    write(
        &d.join(format!("{TENANT_B}/graph/signins-page1.json")),
        serde_json::to_vec_pretty(&page).unwrap(),
    );
    // A risky user in the same tenant folder, and the Graph page's repeat in NDJSON form.
    write(
        &d.join(format!("{TENANT_B}/graph/riskyUsers.json")),
        json!({"@odata.context": "https://graph.microsoft.com/beta/$metadata#riskyUsers", "value": [{
            "id": "uid-eve@fabrikam.com", "userPrincipalName": "eve@fabrikam.com", "riskLevel": "high",
            "riskState": "atRisk", "riskDetail": "none", "riskLastUpdatedDateTime": "2026-10-01T10:04:00Z"}]})
        .to_string(),
    );
    write(
        &d.join(format!("{TENANT_B}/graph/signins.ndjson")),
        format!(
            "{}\n{}\n",
            graph_sign_in("g-5", "2026-10-01T10:05:00Z", "dee@fabrikam.com", None),
            graph_sign_in(
                "g-7",
                "2026-10-01T10:07:00Z",
                "dee@fabrikam.com",
                Some(TENANT_B)
            )
        ),
    );
    // A Log Analytics CSV export: BOM, CRLF, US-locale times, a dynamic column split in two.
    let csv = "\u{feff}TenantId,AADTenantId,Type,Id,CreatedDateTime [UTC],UserPrincipalName,UserId,AppDisplayName,IPAddress,IsInteractive,ResultType,AuthenticationRequirement,Status_dynamic,Status_string,LocationDetails_dynamic\r\n\
        9c4d2e7a-5b1f-4e38-a6d0-7f2b8c1e4a95,11111111-aaaa-4aaa-8aaa-111111111111,SigninLogs,la-4,\"10/1/2026, 10:04:00.500 AM\",fay@contoso.com,uid-fay,Azure Portal,192.0.2.9,TRUE,0,singleFactorAuthentication,\"{\"\"errorCode\"\":0}\",,\"{\"\"countryOrRegion\"\":\"\"NL\"\",\"\"city\"\":\"\"Utrecht\"\"}\"\r\n";
    write(&d.join("sentinel/export.csv"), csv);
    write(&d.join("README.md"), "not a log\n");

    let run = replay(d, &["."]);
    assert!(run.output.status.success(), "{}", stderr(&run));
    let ids: Vec<&str> = run
        .events
        .iter()
        .map(|e| e["meta"]["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        vec![
            "eh-1",
            "g-2",
            "eh-3",
            "uid-eve@fabrikam.com",
            "la-4",
            "g-5",
            "eh-6",
            "g-7"
        ]
    );
    let tenants: Vec<&str> = run
        .events
        .iter()
        .map(|e| e["meta"]["tenant_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        tenants,
        vec![
            TENANT_A, TENANT_B, TENANT_A, TENANT_B, TENANT_A, TENANT_B, TENANT_A, TENANT_B
        ]
    );
    let shapes: Vec<&str> = run
        .events
        .iter()
        .map(|e| e["meta"]["shape"].as_str().unwrap())
        .collect();
    assert_eq!(shapes[4], "log-analytics-csv");
    assert_eq!(run.events[4]["location"]["city"], "Utrecht");

    let s = &run.summary;
    assert_eq!(s["duplicates"], 2, "{s:#}");
    assert_eq!(s["records_read"], 10);
    assert_eq!(s["parse_errors"], 0);
    assert_eq!(s["records_by_kind"]["signIn"], 9);
    assert_eq!(s["records_by_kind"]["riskyUser"], 1);
    assert_eq!(s["records_by_shape"]["event-hub"], 4);
    assert_eq!(s["records_by_shape"]["graph"], 5);
    assert_eq!(s["records_by_shape"]["log-analytics-csv"], 1);
    assert_eq!(s["ignored_files"].as_array().unwrap().len(), 1);

    // Two single-factor interactive successes and one risky user.
    let rules: Vec<(&str, &str, &str)> = run
        .alerts
        .iter()
        .map(|a| {
            (
                a["rule"].as_str().unwrap(),
                a["principal"]["upn"].as_str().unwrap(),
                a["severity"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        rules,
        vec![
            ("mfa-not-satisfied", "bob@contoso.com", "medium"),
            ("risky-user", "eve@fabrikam.com", "high"),
            ("mfa-not-satisfied", "fay@contoso.com", "medium"),
        ]
    );
    assert_eq!(s["alerts_by_rule"]["mfa-not-satisfied"], 2);
    assert_eq!(run.alerts[0]["event_ids"], json!(["eh-1"]));
    assert_eq!(run.alerts[0]["first_seen"], "2026-10-01T10:01:00Z");
    assert_eq!(run.alerts[0]["tenant_id"], TENANT_A);

    // The same input gives the same alert ids.
    let again = replay(d, &["."]);
    let ids = |r: &Run| r.alerts.iter().map(|a| a["id"].clone()).collect::<Vec<_>>();
    assert_eq!(ids(&run), ids(&again));
    assert!(
        stderr(&run).contains("duplicates: 2 dropped"),
        "{}",
        stderr(&run)
    );
}

#[test]
fn bad_input_is_named_counted_kept_and_never_costs_the_good_records() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let good = |id: &str, minute: u32| {
        eh_sign_in(
            id,
            TENANT_A,
            &format!("2026-10-01T10:{minute:02}:00Z"),
            "ann@contoso.com",
            "multiFactorAuthentication",
        )
    };
    // Truncated JSON: the records before the cut are read.
    let page = serde_json::to_string_pretty(
        &json!({"records": [good("t-1", 1), good("t-2", 2), good("t-3", 3)]}),
    )
    .unwrap();
    write(&d.join("truncated.json"), &page[..page.len() * 3 / 4]);
    // A binary file and an empty file.
    write(
        &d.join("binary.json"),
        [0x00u8, 0x01, 0x02, 0xff, 0xfe, b'{'],
    );
    write(&d.join("empty.json"), "");
    // One 50 MB line between two good ones.
    let huge = format!(
        "{{\"records\":[{{\"category\":\"SignInLogs\",\"properties\":{{\"id\":\"huge\",\"blob\":\"{}\"}}}}]}}",
        "x".repeat(50 * 1024 * 1024)
    );
    write(
        &d.join("huge.jsonl"),
        format!(
            "{}\n{huge}\n{}\n",
            json!({"records": [good("h-1", 4)]}),
            json!({"records": [good("h-2", 5)]})
        ),
    );
    // A CSV row missing a column.
    write(
        &d.join("missing-column.csv"),
        "AADTenantId,Type,Id,CreatedDateTime [UTC],UserPrincipalName,ResultType\r\n\
         11111111-aaaa-4aaa-8aaa-111111111111,SigninLogs,c-1,\"10/1/2026, 10:06:00.000 AM\",ann@contoso.com,0\r\n\
         11111111-aaaa-4aaa-8aaa-111111111111,SigninLogs,c-2,\"10/1/2026, 10:07:00.000 AM\",ann@contoso.com\r\n",
    );
    // A record without any timestamp, one with an unreadable one, and one in each documented form.
    let mut no_time = good("n-1", 8);
    no_time.as_object_mut().unwrap().remove("time");
    no_time["properties"]
        .as_object_mut()
        .unwrap()
        .remove("createdDateTime");
    let mut bad_time = good("n-2", 9);
    bad_time["properties"]["createdDateTime"] = json!("the ninth of October");
    bad_time.as_object_mut().unwrap().remove("time");
    let forms = [
        "2026-10-01T10:10:00Z",
        "2026-10-01T10:11:00.1234567Z",
        "2026-10-01T10:12:00.1234567+00:00",
        "2026-10-01T05:13:00-05:00",
        "2026-10-01T10:14:00.5",
        "2026-10-01 10:15:00",
        "10/1/2026 10:16:00 AM",
        "10/1/2026, 10:17:00.250 AM",
    ];
    let mut records = vec![no_time, bad_time];
    for (i, t) in forms.iter().enumerate() {
        let mut r = good(&format!("f-{i}"), 0);
        r["time"] = json!(t);
        r["properties"]["createdDateTime"] = json!(t);
        records.push(r);
    }
    write(
        &d.join("times.json"),
        json!({ "records": records }).to_string(),
    );

    let run = replay(d, &["."]);
    assert!(run.output.status.success(), "{}", stderr(&run));
    let ids: Vec<&str> = run
        .events
        .iter()
        .map(|e| e["meta"]["id"].as_str().unwrap())
        .collect();
    // t-3 was cut; the bad-time record and the timeless one are rejected.
    assert_eq!(
        ids,
        vec![
            "t-1", "t-2", "h-1", "h-2", "c-1", "f-0", "f-1", "f-2", "f-3", "f-4", "f-5", "f-6",
            "f-7"
        ]
    );
    let minutes: Vec<String> = run.events[5..13]
        .iter()
        .map(|e| e["meta"]["time"].as_str().unwrap()[11..16].to_owned())
        .collect();
    assert_eq!(
        minutes,
        vec![
            "10:10", "10:11", "10:12", "10:13", "10:14", "10:15", "10:16", "10:17"
        ]
    );

    let s = &run.summary;
    assert_eq!(s["parse_errors"], 6, "{s:#}");
    assert_eq!(s["no_event_time"], 1);
    assert_eq!(s["empty_files"].as_array().unwrap().len(), 1);
    let reasons: Vec<String> = run
        .rejects
        .iter()
        .map(|r| {
            format!(
                "{}:{}:{}:{}",
                r["file"].as_str().unwrap(),
                r["line"],
                r["field"],
                r["reason"].as_str().unwrap()
            )
        })
        .collect();
    let has = |file: &str, needle: &str| {
        reasons
            .iter()
            .any(|r| r.contains(file) && r.contains(needle))
    };
    assert!(has("binary.json", "binary file"), "{reasons:#?}");
    assert!(
        has("huge.jsonl:2:", "over the 16777216-byte limit"),
        "{reasons:#?}"
    );
    assert!(
        has(
            "missing-column.csv:3:",
            "row has 5 fields but the header has 6"
        ),
        "{reasons:#?}"
    );
    assert!(
        has(
            "times.json:1:\"createdDateTime\"",
            "unreadable timestamp \"the ninth of October\""
        ),
        "{reasons:#?}"
    );
    assert!(has("truncated.json", "truncated JSON"), "{reasons:#?}");
    assert!(
        has(
            "times.json:1:\"createdDateTime\"",
            "no event time: none of createdDateTime, time"
        ),
        "{reasons:#?}"
    );
    // Rejected records are kept for inspection.
    let csv_reject = run
        .rejects
        .iter()
        .find(|r| r["file"].as_str().unwrap().contains("missing-column"))
        .unwrap();
    assert!(csv_reject["raw"].as_str().unwrap().contains("c-2"));
    assert_eq!(csv_reject["record"], 2);
    assert!(stderr(&run).contains("parse errors: 6"), "{}", stderr(&run));

    // --strict turns any parse error into exit status 2.
    let strict = replay(d, &[".", "--strict"]);
    assert_eq!(strict.output.status.code(), Some(2));
    assert_eq!(strict.events.len(), run.events.len());
}

#[test]
fn standard_input_and_the_tenant_option() {
    let mut child = entrawatch()
        .args(["replay", "-", "--quiet", "--tenant", TENANT_B])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let line = graph_sign_in("s-1", "2026-10-01T10:00:00Z", "gus@fabrikam.com", None);
    let mut line = line;
    line["authenticationRequirement"] = json!("singleFactorAuthentication");
    std::io::Write::write_all(
        child.stdin.as_mut().unwrap(),
        format!("{line}\n").as_bytes(),
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stderr.is_empty(),
        "--quiet prints nothing: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let alert: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(alert["rule"], "mfa-not-satisfied");
    assert_eq!(alert["tenant_id"], TENANT_B);
}

#[test]
fn bad_arguments_are_refused_with_a_clear_message() {
    let out = entrawatch()
        .args(["replay", "nowhere/at/all"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nowhere/at/all"));
    let out = entrawatch()
        .args(["replay", ".", "--tenant", "contoso"])
        .current_dir(root())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a tenant GUID"));
}

#[test]
fn the_bundled_demo_replays_cleanly_and_tells_its_stories() {
    let run = replay(
        &root(),
        &["--config", "examples/entrawatch.toml", "examples/demo"],
    );
    assert!(run.output.status.success(), "{}", stderr(&run));
    let s = &run.summary;
    assert_eq!(s["parse_errors"], 0, "{s:#}");
    assert_eq!(s["duplicates"], 2);
    assert_eq!(s["skipped_by_category"]["ProvisioningLogs"], 3);
    for shape in ["event-hub", "graph", "log-analytics-csv"] {
        assert!(
            s["records_by_shape"][shape].as_u64().unwrap() > 50,
            "{shape}: {s:#}"
        );
    }
    let find = |rule: &str, upn: &str| {
        run.alerts
            .iter()
            .find(|a| a["rule"] == rule && a["principal"]["upn"] == upn)
            .unwrap_or_else(|| panic!("no {rule} alert for {upn}: {:#?}", run.alerts))
    };
    let megan = find("mfa-not-satisfied", "megan.bowen@contoso.com");
    assert_eq!(megan["severity"], "high");
    assert_eq!(megan["tenant_name"], "Contoso");
    let lars = find("mfa-not-satisfied", "lars.visser@fabrikam.com");
    assert_eq!(
        (lars["severity"].as_str(), lars["count"].as_u64()),
        (Some("medium"), Some(2))
    );
    let tech = find(
        "mfa-not-satisfied",
        "user_5f0c2a9e8b7d4c3a9e1f2b3c4d5e6f70@northwindcsp.onmicrosoft.com",
    );
    assert_eq!(tech["severity"], "high");
    assert_eq!(tech["tenant_name"], "Tailspin Toys");
    assert_eq!(
        find("risky-user", "alex.wilber@contoso.com")["severity"],
        "medium"
    );
    assert_eq!(
        find("risky-user", "emma.bakker@fabrikam.com")["severity"],
        "high"
    );
    for rule in ["unmanaged-device-privileged", "impossible-travel"] {
        assert_eq!(
            find(rule, "megan.bowen@contoso.com")["severity"],
            "high",
            "{rule}"
        );
    }
    let spray = run
        .alerts
        .iter()
        .find(|a| a["rule"] == "password-spray")
        .expect("a spray alert");
    assert_eq!(spray["principal"]["id"], "203.0.113.99");
    // examples/demo/README.md lists exactly these eight.
    assert_eq!(run.alerts.len(), 8, "{:#?}", run.alerts);
    assert!(
        !run.alerts
            .iter()
            .any(|a| a["principal"]["upn"] == "thijs.meijer@fabrikam.com"),
        "remediated risk must not alert"
    );

    // Replaying the same input twice gives byte-identical alert output.
    let out = |args: &[&str]| {
        entrawatch()
            .args(args)
            .current_dir(root())
            .output()
            .unwrap()
            .stdout
    };
    let args = [
        "replay",
        "--quiet",
        "--config",
        "examples/entrawatch.toml",
        "examples/demo",
    ];
    let first = out(&args);
    assert!(!first.is_empty());
    assert_eq!(first, out(&args));
}

/// The pinned SigmaHQ Entra rules beside the native detectors on the demo: both kinds of alert,
/// Sigma ones with their rule id, severity and MITRE from the rule; the same bytes on a second run;
/// a rule folder that does not exist refuses the start.
#[test]
fn sigma_rules_run_beside_the_native_detectors() {
    let args = [
        "--config",
        "examples/entrawatch.toml",
        "examples/demo",
        "--sigma",
        "sigma/tests/fixtures/sigmahq",
    ];
    let run = replay(&root(), &args);
    assert!(run.output.status.success(), "{}", stderr(&run));
    assert!(
        stderr(&run).contains("sigma: 74 of 95 rules run"),
        "{}",
        stderr(&run)
    );
    let rules: Vec<&str> = (run.alerts.iter())
        .map(|a| a["rule"].as_str().unwrap())
        .collect();
    assert!(rules.iter().any(|r| !r.starts_with("sigma:")), "{rules:?}");
    let a = (run.alerts.iter())
        .find(|a| a["rule"] == "sigma:4f77e1d7-3982-4ee0-8489-abf2d6b75284")
        .expect("the non-compliant device rule fires on the demo");
    assert_eq!(a["severity"], "high");
    assert_eq!(a["title"], "Sign-ins from Non-Compliant Devices");
    assert_eq!(a["mitre"], json!(["T1078.004"]));
    assert_eq!(
        a["evidence"]["fields"]["properties.deviceDetail.isCompliant"],
        false
    );
    assert!(
        run.summary["alerts_by_rule"]["sigma:4f77e1d7-3982-4ee0-8489-abf2d6b75284"]
            .as_u64()
            .unwrap()
            >= 1
    );
    let again = replay(&root(), &args);
    assert_eq!(run.alerts_bytes, again.alerts_bytes);

    let missing = entrawatch()
        .args(["replay", "-q", "examples/demo", "--sigma", "no/such/rules"])
        .current_dir(root())
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(1));
    let err = String::from_utf8_lossy(&missing.stderr);
    assert!(
        err.contains("invalid sigma config") && err.contains("no/such/rules"),
        "{err}"
    );
}

/// Sigma findings feed no native rule: on a simulated world where they would (Sigma findings of
/// medium and high severity about users would join the account-takeover chain), the native alerts
/// are byte for byte those of a replay without Sigma.
#[test]
fn sigma_rules_leave_the_native_alerts_unchanged() {
    let world = tempfile::tempdir().unwrap();
    let dir = common::simulate_world(world.path(), 1);
    let config = dir.join("entrawatch.toml");
    let config = config.to_str().unwrap();
    let rules = root().join("sigma/tests/fixtures/sigmahq");
    let native = replay(&dir, &["--config", config, "."]);
    let with = replay(
        &dir,
        &["--config", config, ".", "--sigma", rules.to_str().unwrap()],
    );
    assert!(with.output.status.success(), "{}", stderr(&with));
    let is_sigma = |a: &Value| a["rule"].as_str().unwrap().starts_with("sigma:");
    let natives: Vec<&Value> = with.alerts.iter().filter(|a| !is_sigma(a)).collect();
    assert!(with.alerts.iter().any(is_sigma));
    assert!(
        native
            .alerts
            .iter()
            .any(|a| a["rule"] == "account-takeover-chain")
    );
    assert_eq!(natives, native.alerts.iter().collect::<Vec<_>>());
}

#[test]
fn a_folder_with_a_link_loop_a_pipe_and_unreadable_paths_is_read_to_the_end() {
    let dir = tempfile::tempdir().unwrap();
    let hazards = common::hazard_folder(dir.path());
    let config = root().join("examples/entrawatch.toml");
    let config = config.to_str().unwrap();

    let run = replay(dir.path(), &["--config", config, "in"]);
    assert!(run.output.status.success(), "{}", stderr(&run));
    // Every readable record was read: the same as a replay of the readable files alone.
    let clean = replay(dir.path(), &["--config", config, "readable"]);
    assert!(clean.output.status.success(), "{}", stderr(&clean));
    let s = &run.summary;
    assert_eq!(s["records_read"], clean.summary["records_read"], "{s:#}");
    assert_eq!(s["records_by_kind"], clean.summary["records_by_kind"]);
    assert_eq!(s["parse_errors"], 0, "{s:#}");
    assert_eq!(run.events.len(), clean.events.len());
    assert_eq!(run.alerts, clean.alerts);
    assert!(run.alerts.len() >= 8, "{:#?}", run.alerts);

    // What was passed over is counted by reason; what could not be read is named.
    assert_eq!(s["paths_skipped"]["fifo"], 1, "{s:#}");
    assert_eq!(s["paths_skipped"]["already-walked"], 1, "{s:#}");
    assert_eq!(s["paths_skipped"]["unreadable"], hazards.unreadable_paths());
    assert_eq!(s["path_errors"], hazards.unreadable_paths());
    let named: Vec<&str> = s["first_path_errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap())
        .collect();
    assert!(
        named
            .iter()
            .any(|e| e.starts_with("in/loop.json: cannot read: ")),
        "{named:#?}"
    );
    if hazards.locked_unreadable {
        assert!(
            named
                .iter()
                .any(|e| e.starts_with("in/locked: cannot read: ")),
            "{named:#?}"
        );
    }
    let text = stderr(&run);
    assert!(
        text.contains(&format!(
            "paths that could not be read: {}",
            hazards.unreadable_paths()
        )),
        "{text}"
    );
    assert!(text.contains("in/loop.json: cannot read: "), "{text}");
    assert!(text.contains("fifo 1"), "{text}");

    // --strict: the same work, and a failing exit status.
    let strict = replay(dir.path(), &["--config", config, "--strict", "in"]);
    assert_eq!(strict.output.status.code(), Some(2), "{}", stderr(&strict));
    assert_eq!(strict.alerts, run.alerts);
    // The readable files alone pass --strict.
    let strict_clean = replay(dir.path(), &["--config", config, "--strict", "readable"]);
    assert!(
        strict_clean.output.status.success(),
        "{}",
        stderr(&strict_clean)
    );

    // A named pipe named explicitly is refused unopened, with a reason.
    let pipe = replay(dir.path(), &["in/pipe.json"]);
    assert_eq!(pipe.output.status.code(), Some(1));
    assert!(stderr(&pipe).contains("named pipe"), "{}", stderr(&pipe));
}

/// A CSV cell holding `text` (quotes doubled).
fn csv_cell(text: &str) -> String {
    format!("\"{}\"", text.replace('"', "\"\""))
}

#[test]
fn records_without_a_time_of_their_own_take_a_time_they_carry_or_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // A Log Analytics sign-in export without TimeGenerated or CreatedDateTime: the authentication
    // steps carry the time.
    let steps = |times: &[&str]| {
        let steps: Vec<Value> = times
            .iter()
            .map(|t| {
                json!({"authenticationStepDateTime": t, "authenticationMethod": "Password",
                       "succeeded": true, "authenticationStepRequirement": "Primary authentication"})
            })
            .collect();
        csv_cell(&Value::Array(steps).to_string())
    };
    let status = csv_cell(&json!({"errorCode": 0}).to_string());
    let row = |id: &str, upn: &str, details: &str| {
        format!(
            "{TENANT_A},SigninLogs,{id},{upn},uid-{upn},Azure Portal,192.0.2.9,TRUE,0,singleFactorAuthentication,{status},{details}\r\n"
        )
    };
    let mut csv = "AADTenantId,Type,Id,UserPrincipalName,UserId,AppDisplayName,IPAddress,IsInteractive,ResultType,AuthenticationRequirement,Status_dynamic,AuthenticationDetails_dynamic\r\n".to_owned();
    csv += &row(
        "la-1",
        "fay@contoso.com",
        &steps(&["2026-10-01T10:05:10Z", "2026-10-01T10:04:30.5Z"]),
    );
    csv += &row(
        "la-2",
        "gil@contoso.com",
        &steps(&["10/1/2026, 10:07:00.000 AM"]),
    );
    // No time anywhere in the row.
    csv += &row("la-3", "hal@contoso.com", "");
    write(&d.join("sentinel/signins-no-timegenerated.csv"), csv);
    // A CSV whose header has no time column at all: rejected whole.
    write(
        &d.join("sentinel/no-time.csv"),
        format!(
            "AADTenantId,Type,Id,UserPrincipalName\r\n{TENANT_A},SigninLogs,la-9,ivy@contoso.com\r\n"
        ),
    );

    let run = replay(d, &["sentinel"]);
    assert!(run.output.status.success(), "{}", stderr(&run));
    let times: Vec<(&str, &str, &str)> = run
        .events
        .iter()
        .map(|e| {
            (
                e["meta"]["id"].as_str().unwrap(),
                e["meta"]["time"].as_str().unwrap(),
                e["meta"]["time_source"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        times,
        vec![
            ("la-1", "2026-10-01T10:04:30.500Z", "nested"),
            ("la-2", "2026-10-01T10:07:00Z", "nested")
        ]
    );
    let firsts: Vec<(&str, &str)> = run
        .alerts
        .iter()
        .map(|a| {
            (
                a["principal"]["upn"].as_str().unwrap(),
                a["first_seen"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        firsts,
        vec![
            ("fay@contoso.com", "2026-10-01T10:04:30Z"),
            ("gil@contoso.com", "2026-10-01T10:07:00Z")
        ]
    );

    // The rows with no time, and the file with no time column, are counted and kept, named.
    let s = &run.summary;
    assert_eq!(s["no_event_time"], 2, "{s:#}");
    assert_eq!(s["parse_errors"], 2, "{s:#}");
    let reject = |file: &str| {
        run.rejects
            .iter()
            .find(|r| r["file"].as_str().unwrap().ends_with(file))
            .unwrap_or_else(|| panic!("no reject for {file}: {:#?}", run.rejects))
    };
    let row_reject = reject("signins-no-timegenerated.csv");
    assert_eq!(row_reject["record"], 3);
    assert_eq!(row_reject["line"], 4);
    assert_eq!(row_reject["field"], "createdDateTime");
    let reason = row_reject["reason"].as_str().unwrap();
    assert!(reason.starts_with("no event time"), "{reason}");
    assert!(
        reason.contains("TimeGenerated")
            && reason.contains("authenticationDetails[].authenticationStepDateTime"),
        "{reason}"
    );
    assert!(row_reject["raw"].as_str().unwrap().contains("la-3"));
    let file_reject = reject("no-time.csv");
    assert_eq!(file_reject["record"], Value::Null);
    assert!(
        file_reject["reason"]
            .as_str()
            .unwrap()
            .starts_with("no event time"),
        "{file_reject}"
    );
    let text = stderr(&run);
    assert!(
        text.contains(
            "signins-no-timegenerated.csv:4: record 3: field `createdDateTime`: no event time"
        ),
        "{text}"
    );

    // Nothing depends on when the replay runs: a second replay writes the same bytes.
    let again = replay(d, &["sentinel"]);
    assert!(!run.alerts_bytes.is_empty());
    assert_eq!(run.alerts_bytes, again.alerts_bytes);
    assert_eq!(again.summary["no_event_time"], 2);
}

/// Every log file under `dir`, in the walk's order.
fn log_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(p) = stack.pop() {
        if p.is_dir() {
            let mut entries: Vec<_> = std::fs::read_dir(&p)
                .unwrap()
                .map(|e| e.unwrap().path())
                .collect();
            entries.sort();
            stack.extend(entries.into_iter().rev());
        } else if p.extension().is_some_and(|e| e == "json" || e == "jsonl") {
            files.push(p);
        }
    }
    files
}

/// A replay larger than its memory budget writes sorted runs to disk and merges them, and raises
/// byte for byte the alerts of a replay held in memory; so does a replay of the same files given
/// in other orders. The runs' folder is gone afterwards.
#[test]
fn a_replay_past_its_memory_budget_or_in_any_file_order_raises_the_same_alerts() {
    let dir = tempfile::tempdir().unwrap();
    let world = common::simulate_world(dir.path(), 7);
    let config = world.join("entrawatch.toml");
    let config = config.to_str().unwrap();
    let world_arg = world.to_str().unwrap();
    let memory = replay(dir.path(), &["--config", config, world_arg]);
    assert!(memory.output.status.success(), "{}", stderr(&memory));
    assert_eq!(
        memory.summary["spilled_runs"], 0,
        "the default budget holds it"
    );
    assert!(memory.alerts.len() > 10, "{} alerts", memory.alerts.len());
    assert!(memory.summary["duplicates"].as_u64().unwrap() > 0);

    let spill = tempfile::tempdir().unwrap();
    let spill_arg = spill.path().to_str().unwrap();
    for budget in ["64K", "1M"] {
        let spilled = replay(
            dir.path(),
            &[
                "--config",
                config,
                "--memory-budget",
                budget,
                "--spill-dir",
                spill_arg,
                world_arg,
            ],
        );
        assert!(spilled.output.status.success(), "{}", stderr(&spilled));
        let runs = spilled.summary["spilled_runs"].as_u64().unwrap();
        assert!(runs >= 3, "budget {budget}: {runs} runs");
        assert!(
            stderr(&spilled).contains("sorted runs"),
            "{}",
            stderr(&spilled)
        );
        assert_eq!(spilled.alerts_bytes, memory.alerts_bytes, "budget {budget}");
        assert_eq!(spilled.events, memory.events, "budget {budget}");
        assert_eq!(spilled.summary["duplicates"], memory.summary["duplicates"]);
        assert_eq!(
            std::fs::read_dir(spill.path()).unwrap().count(),
            0,
            "the runs are removed"
        );
    }

    // The same files named one by one, in reverse and in a shuffled order.
    let mut files = log_files(&world);
    assert!(files.len() > 20, "{} files", files.len());
    for turn in 0..2 {
        if turn == 0 {
            files.reverse();
        } else {
            let n = files.len();
            for i in 0..n {
                files.swap(i, (i * 7 + 3) % n);
            }
        }
        let mut args = vec!["--config", config, "--memory-budget", "256K"];
        args.extend(files.iter().map(|f| f.to_str().unwrap()));
        let reordered = replay(dir.path(), &args);
        assert!(reordered.output.status.success(), "{}", stderr(&reordered));
        assert_eq!(reordered.alerts_bytes, memory.alerts_bytes, "turn {turn}");
    }

    // A budget that is not a size is refused with the reason.
    let bad = replay(dir.path(), &["--memory-budget", "lots", world_arg]);
    assert!(!bad.output.status.success());
    assert!(stderr(&bad).contains("not a size"), "{}", stderr(&bad));
}
