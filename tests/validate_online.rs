//! `entrawatch validate --online` on a Graph source, the real binary against the project's Graph
//! fake on 127.0.0.1 (`ingest/tests/graph_support`): one tenant ready, and one for each thing that
//! stops a tenant before go-live (no consent, a wrong secret, no licence, no permission, throttled,
//! the token endpoint failing). The table names each, and the exit status is 1; a config of ready
//! tenants exits 0. Each run is bounded; nothing asserts on wall-clock durations.

mod common;
#[path = "../ingest/tests/graph_support/mod.rs"]
mod graph_support;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::*;
use graph_support::data::Endpoint;
use graph_support::fake::{FakeGraph, Fault, RetryAfter};
use graph_support::{CLIENT_ID, SECRET, options_scaled, tenant};

/// A bound on one run of the binary, not a timing.
const LIMIT: Duration = Duration::from_secs(90);

/// Runs `validate --online` with `env`; returns the exit code, the table as
/// (tenant, stream) -> result, and stdout.
fn validate_online(
    config: &Path,
    env: &[(&str, &str)],
) -> (i32, BTreeMap<(String, String), String>, String) {
    let mut cmd = entrawatch();
    cmd.args(["validate", "--online", "--config"])
        .arg(config)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let end = Instant::now() + LIMIT;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > end {
            let _ = child.kill();
            panic!("validate --online did not finish within {LIMIT:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut table = BTreeMap::new();
    for line in stdout.lines().filter(|l| l.starts_with("  ")) {
        let cols: Vec<&str> = line
            .trim()
            .split("  ")
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .collect();
        if cols.len() >= 3 && cols[0] != "tenant" {
            table.insert((cols[0].to_owned(), cols[1].to_owned()), cols[2].to_owned());
        }
    }
    (status.code().unwrap_or(-1), table, stdout)
}

fn write_config(
    dir: &Path,
    fake: &FakeGraph,
    tenants: &[(&str, &str)],
    extra: &str,
) -> std::path::PathBuf {
    let secret = dir.join("graph-secret");
    std::fs::write(&secret, SECRET).unwrap();
    let mut text = format!(
        "[[sources]]\ntype = \"graph\"\nname = \"graph\"\nclient_id = \"{CLIENT_ID}\"\n\
         login_url = \"{base}\"\ngraph_url = \"{base}\"\nclient_secret = {{ file = {secret} }}\n",
        base = fake.base,
        secret = toml_path(&secret),
    );
    text.push_str(extra);
    for (id, name) in tenants {
        text.push_str(&format!(
            "\n[[sources.tenants]]\nid = \"{id}\"\nname = \"{name}\"\n"
        ));
        if *name == "Wrongsecret" {
            text.push_str("client_secret = { env = \"WRONG_GRAPH_SECRET\" }\n");
        }
    }
    text.push_str("\n[[destinations]]\ntype = \"stdout\"\nname = \"out\"\n");
    let path = dir.join("entrawatch.toml");
    std::fs::write(&path, text).unwrap();
    path
}

const STREAMS: [&str; 8] = [
    "sign_ins_user",
    "sign_ins_service_principal",
    "sign_ins_managed_identity",
    "directory_audits",
    "risky_users",
    "risk_detections",
    "directory_roles",
    "directory_roles_eligibility",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validate_online_names_what_stops_each_tenant_and_fails() {
    let dir = tempfile::tempdir().unwrap();
    // Graph's real windows: 5 reporting requests / 10 s, 1 Identity Protection request / s.
    let fake = FakeGraph::start(options_scaled(true, vec![], 1.0)).await;
    let ids: Vec<String> = (1..=7).map(tenant).collect();
    let names = [
        "Ready",
        "Noconsent",
        "Wrongsecret",
        "Nolicence",
        "Nopermission",
        "Throttled",
        "Unreachable",
    ];
    for id in &ids {
        fake.add_tenant(id);
    }
    // More than one page for the ready tenant: the check reads the first only.
    for minutes in [5, 10, 15] {
        let at = chrono::Utc::now() - chrono::Duration::minutes(minutes);
        fake.add(&ids[0], Endpoint::DirectoryAudits, at, "");
    }
    fake.refuse_tokens(
        &ids[1],
        Some((
            400,
            "unauthorized_client",
            "AADSTS700016: Application with identifier '6731de76-14a6-49ae-97bc-6eba6914391e' \
             was not found in the directory. This can happen if the application has not been \
             installed by the administrator of the tenant or consented to by any user in the tenant.",
        )),
    );
    fake.forbid(
        &ids[3],
        Endpoint::SignIns,
        "Authentication_RequestFromNonPremiumTenantOrB2CTenant",
        "Neither tenant is B2C or tenant doesn't have premium license",
    );
    fake.forbid(
        &ids[4],
        Endpoint::DirectoryAudits,
        "Authorization_RequestDenied",
        "Insufficient privileges to complete the operation.",
    );
    // Throttled twice: the check waits once for the pause Graph asks, then reports it.
    for _ in 0..2 {
        fake.fault(
            &ids[5],
            Some(Endpoint::RiskyUsers),
            Fault::TooMany(Some(RetryAfter::Secs(1))),
        );
    }
    // Throttled once: waited out, the stream is ok.
    fake.fault(
        &ids[0],
        Some(Endpoint::RiskDetections),
        Fault::TooMany(None),
    );
    fake.refuse_tokens(
        &ids[6],
        Some((
            503,
            "temporarily_unavailable",
            "AADSTS90033: A transient error has occurred. Please try again.",
        )),
    );
    let tenants: Vec<(&str, &str)> = ids.iter().map(String::as_str).zip(names).collect();
    let config = write_config(dir.path(), &fake, &tenants, "");
    let (code, table, stdout) =
        validate_online(&config, &[("WRONG_GRAPH_SECRET", "not-the-secret")]);
    println!("{stdout}");
    assert_eq!(code, 1, "{stdout}");
    assert_eq!(table.len(), names.len() * STREAMS.len(), "{stdout}");
    let result = |tenant: &str, stream: &str| {
        table
            .get(&(tenant.to_owned(), stream.to_owned()))
            .map(String::as_str)
            .unwrap_or("missing")
    };
    for stream in STREAMS {
        assert_eq!(result("Ready", stream), "ok", "{stdout}");
        assert_eq!(result("Noconsent", stream), "no consent", "{stdout}");
        assert_eq!(result("Wrongsecret", stream), "bad credential", "{stdout}");
        assert_eq!(result("Unreachable", stream), "network", "{stdout}");
        let licence = if stream.starts_with("sign_ins") {
            "no licence"
        } else {
            "ok"
        };
        assert_eq!(result("Nolicence", stream), licence, "{stdout}");
        let permission = if stream == "directory_audits" {
            "no permission"
        } else {
            "ok"
        };
        assert_eq!(result("Nopermission", stream), permission, "{stdout}");
        let throttled = if stream == "risky_users" {
            "throttled"
        } else {
            "ok"
        };
        assert_eq!(result("Throttled", stream), throttled, "{stdout}");
    }
    // Entra's and Graph's own words are shown, never the secret.
    assert!(stdout.contains("AADSTS7000215"), "{stdout}");
    // A refused token's reason is written once per tenant, not once per stream.
    assert_eq!(stdout.matches("AADSTS700016").count(), 1, "{stdout}");
    assert!(stdout.contains("Insufficient privileges"), "{stdout}");
    assert!(
        !stdout.contains("not-the-secret") && !stdout.contains(SECRET),
        "{stdout}"
    );
    assert!(
        stdout.contains("FAILED  29 of 56 check(s), in 6 of 7 tenant(s)"),
        "{stdout}"
    );
    // Every token and Graph request counted: one token per tenant, one $top=1 call per stream.
    fake.with_counters(|c| {
        assert_eq!(c.token_ok, 4, "{c:?}");
        assert_eq!(c.token_refused.len(), 3, "{:?}", c.token_refused);
    });
    let log = fake.log();
    assert!(log.iter().all(|l| !l.paged), "a next link was followed");
    let ready_audits = log
        .iter()
        .filter(|l| l.tenant == ids[0] && l.endpoint == Endpoint::DirectoryAudits)
        .count();
    assert_eq!(ready_audits, 1);

    assert_eq!(fake.faults_left(), 0);

    // A source whose tenants are all ready passes (a tenant of its own: Graph's reporting budget
    // of the first one is still spent).
    let fresh = tenant(8);
    fake.add_tenant(&fresh);
    let ready = write_config(
        dir.path(),
        &fake,
        &[(fresh.as_str(), "Ready")],
        "streams = [\"sign_ins\", \"directory_audits\"]\n",
    );
    let (code, table, stdout) = validate_online(&ready, &[]);
    assert_eq!(code, 0, "{stdout}");
    assert_eq!(table.len(), 4, "{stdout}");
    assert!(table.values().all(|r| r == "ok"), "{stdout}");
    assert!(stdout.contains("config "), "{stdout}");
}

/// With `discover = "gdap"` the check lists the partner's customers as the service would (one
/// `gdap_discovery` row for the partner) and checks every customer it would poll besides the
/// listed tenants: an ended relationship and a customer past `max_tenants` are not checked, a
/// discovered customer without the licence fails the run like a listed one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validate_online_checks_the_customers_gdap_discovery_would_poll() {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeGraph::start(options_scaled(true, vec![], 1.0)).await;
    let partner = tenant(0x100);
    let listed = tenant(0x10);
    let (contoso, fabrikam, northwind, tailspin) =
        (tenant(0xc1), tenant(0xc2), tenant(0xc3), tenant(0xc4));
    fake.set_partner(&partner);
    for t in [&listed, &contoso, &fabrikam, &northwind, &tailspin] {
        fake.add_tenant(t);
    }
    fake.relate(&contoso, "Contoso", "active", &[], "PT0S");
    fake.relate(&fabrikam, "Fabrikam", "expired", &[], "PT0S");
    fake.relate(&northwind, "Northwind", "active", &[], "PT0S");
    // Past the cap: the listed tenant and the two customers with the smallest ids make three.
    fake.relate(&tailspin, "Tailspin", "active", &[], "PT0S");
    fake.forbid(
        &northwind,
        Endpoint::SignIns,
        "Authentication_RequestFromNonPremiumTenantOrB2CTenant",
        "Neither tenant is B2C or tenant doesn't have premium license",
    );
    let extra = format!(
        "streams = [\"sign_ins\", \"directory_audits\"]\ndiscover = \"gdap\"\n\
         partner_tenant_id = \"{partner}\"\nmax_tenants = 3\n"
    );
    let config = write_config(dir.path(), &fake, &[(listed.as_str(), "Listed")], &extra);
    let (code, table, stdout) = validate_online(&config, &[]);
    println!("{stdout}");
    assert_eq!(code, 1, "{stdout}");
    let result = |tenant: &str, stream: &str| {
        table
            .get(&(tenant.to_owned(), stream.to_owned()))
            .map(String::as_str)
            .unwrap_or("missing")
            .to_owned()
    };
    assert_eq!(
        result("partner (GDAP discovery)", "gdap_discovery"),
        "ok",
        "{stdout}"
    );
    assert!(
        stdout.contains("2 polled besides the listed tenants, 1 left out by max_tenants"),
        "{stdout}"
    );
    // The partner, the listed tenant and the two customers.
    assert!(
        stdout.contains("FAILED  3 of 13 check(s), in 1 of 4 tenant(s)"),
        "{stdout}"
    );
    let streams = [
        "sign_ins_user",
        "sign_ins_service_principal",
        "sign_ins_managed_identity",
        "directory_audits",
    ];
    for stream in streams {
        assert_eq!(result("Listed", stream), "ok", "{stdout}");
        assert_eq!(result("Contoso", stream), "ok", "{stdout}");
        let licence = if stream.starts_with("sign_ins") {
            "no licence"
        } else {
            "ok"
        };
        assert_eq!(result("Northwind", stream), licence, "{stdout}");
    }
    assert_eq!(table.len(), 1 + 3 * streams.len(), "{stdout}");
    assert!(
        !stdout.contains("Fabrikam") && !stdout.contains("Tailspin"),
        "{stdout}"
    );
    // No customer's logs were read past one record, and the ended one not at all.
    assert!(
        fake.log()
            .iter()
            .all(|l| l.tenant != fabrikam && l.tenant != tailspin)
    );
}
