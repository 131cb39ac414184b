//! Tests of the `graph` source's configuration: validation paths and the documented example.
use super::*;

fn valid() -> GraphConfig {
    let mut c = GraphConfig::new(
        "graph",
        "6731de76-14a6-49ae-97bc-6eba6914391e",
        vec![TenantConfig {
            id: "4d3bac44-0230-4732-9e70-cc00736f0a97".into(),
            name: Some("Contoso".into()),
            client_id: None,
            client_secret: None,
            certificate: None,
        }],
    );
    c.client_secret = Some(SecretRef {
        env: Some("GRAPH_SECRET".into()),
        file: None,
    });
    c
}

#[test]
fn a_valid_config_has_no_problems() {
    assert_eq!(valid().validate("sources[0]"), Vec::<String>::new());
}

#[test]
fn every_problem_is_listed_with_its_path() {
    let mut c = valid();
    c.login_url = "http://login.example.com".into();
    c.graph_url = "https://graph.microsoft.com/v1.0".into();
    c.client_id = Some("app".into());
    c.certificate = Some(CertificateConfig {
        certificate_file: "c.pem".into(),
        private_key_file: "k.pem".into(),
        algorithm: "HS256".into(),
    });
    c.tenants.push(c.tenants[0].clone());
    c.tenants.push(TenantConfig {
        id: "nope".into(),
        name: None,
        client_id: None,
        client_secret: Some(SecretRef {
            env: None,
            file: None,
        }),
        certificate: None,
    });
    c.overlap_minutes = 10;
    c.risk_overlap_hours = 1;
    c.page_size = 5000;
    c.poll_interval_secs = 0;
    c.backfill_days = 90;
    c.directory_refresh_minutes = 120;
    c.budget.reports_per_10s = 0;
    let p = c.validate("sources[2]");
    let expect = [
        "sources[2].login_url: ",
        "sources[2].graph_url: ",
        "sources[2].client_id: ",
        "sources[2]: give either client_secret or certificate",
        "sources[2].certificate.algorithm: ",
        "sources[2].tenants[1].id: tenant 4d3bac44-0230-4732-9e70-cc00736f0a97 is listed twice",
        "sources[2].tenants[2].id: ",
        "sources[2].tenants[2].client_secret: ",
        "sources[2].overlap_minutes: ",
        "sources[2].risk_overlap_hours: ",
        "sources[2].page_size: ",
        "sources[2].poll_interval_secs: ",
        "sources[2].backfill_days: ",
        "sources[2].directory_refresh_minutes: ",
        "sources[2].budget.reports_per_10s: ",
    ];
    for e in expect {
        assert!(
            p.iter().any(|x| x.starts_with(e)),
            "missing {e:?} in {p:#?}"
        );
    }
    assert_eq!(p.len(), expect.len(), "{p:#?}");
}

#[test]
fn a_tenant_needs_an_app_id_and_a_credential_somewhere() {
    let mut c = valid();
    c.client_id = None;
    c.client_secret = None;
    let p = c.validate("s");
    assert!(
        p.iter().any(|x| x.starts_with("s.tenants[0].client_id: ")),
        "{p:?}"
    );
    assert!(
        p.iter()
            .any(|x| x.starts_with("s.tenants[0]: no credential")),
        "{p:?}"
    );
    c.tenants[0].client_id = Some("6731de76-14a6-49ae-97bc-6eba6914391e".into());
    c.tenants[0].certificate = Some(CertificateConfig {
        certificate_file: "c.pem".into(),
        private_key_file: "c.pem".into(),
        algorithm: default_assertion_algorithm(),
    });
    assert_eq!(c.validate("s"), Vec::<String>::new());
}

#[test]
fn plain_http_is_accepted_only_to_this_machine() {
    let mut c = valid();
    c.login_url = "http://127.0.0.1:8080".into();
    c.graph_url = "http://127.0.0.1:8080/".into();
    assert_eq!(c.validate("s"), Vec::<String>::new());
}

#[test]
fn the_documented_example_is_valid() {
    let doc = include_str!("../../../../docs/graph.md");
    let start = doc
        .find("```toml\n[[sources]]\ntype = \"graph\"")
        .expect("example")
        + 8;
    let end = start + doc[start..].find("```").expect("end of example");
    let file: toml::Table = toml::from_str(&doc[start..end]).unwrap();
    let source = file["sources"].as_array().unwrap()[0].clone();
    let mut table = source.as_table().unwrap().clone();
    assert_eq!(table.remove("type").unwrap().as_str(), Some("graph"));
    let cfg: GraphConfig = toml::Value::Table(table).try_into().unwrap();
    assert_eq!(cfg.validate("sources[0]"), Vec::<String>::new());
    assert_eq!(cfg.tenants.len(), 2);
    assert!(cfg.tenants[1].client_secret.is_some() && cfg.certificate.is_some());
    assert_eq!(cfg.poll_interval_secs, 60);
    assert_eq!(cfg.budget, BudgetConfig::default());
    assert_eq!(cfg.streams, Stream::ALL.to_vec());
}

#[test]
fn unknown_fields_are_refused() {
    let err = serde_json::from_value::<GraphConfig>(serde_json::json!({
        "name": "g", "tenants": [], "client_secret_value": "x"
    }))
    .unwrap_err();
    assert!(err.to_string().contains("client_secret_value"), "{err}");
    let err = serde_json::from_value::<GraphConfig>(serde_json::json!({
        "name": "g", "tenants": [], "streams": ["sign_ins", "provisioning"]
    }))
    .unwrap_err();
    assert!(err.to_string().contains("provisioning"), "{err}");
}
