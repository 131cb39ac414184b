use super::*;

fn parse(json: serde_json::Value) -> Result<DestinationConfig, serde_json::Error> {
    serde_json::from_value(json)
}

fn env(name: &str) -> Option<String> {
    match name {
        "TEAMS_OK" => Some("https://x.environment.api.powerplatform.com:443/powerautomate/automations/direct/workflows/abc/triggers/manual/paths/invoke?api-version=1&sig=SECRETSIG".into()),
        "TEAMS_OLD" => Some("https://contoso.webhook.office.com/webhookb2/abc@def/IncomingWebhook/x/y".into()),
        "TEAMS_OUTLOOK" => Some("https://outlook.office.com/webhook/abc/IncomingWebhook/SECRETSIG".into()),
        "FTP" => Some("ftp://example.com/SECRETSIG".into()),
        "SLACK_HTTP" => Some("http://hooks.slack.com/services/T/B/SECRETSIG".into()),
        "LOCAL" => Some("http://127.0.0.1:8080/hook".into()),
        "KEY" => Some("hmac-key-SECRETSIG".into()),
        _ => None,
    }
}

#[test]
fn defaults_follow_the_kind() {
    let d = parse(serde_json::json!({"type": "teams", "name": "soc", "url": {"env": "TEAMS_OK"}}))
        .unwrap();
    let DestinationConfig::Teams(c) = &d else {
        panic!("{d:?}")
    };
    assert_eq!(
        (c.rate_per_sec, c.burst, c.timeout_secs, c.deadline_hours),
        (1.0, 3, 10, 24)
    );
    let w = parse(serde_json::json!({"type": "webhook", "name": "h", "url": {"env": "LOCAL"}}))
        .unwrap();
    let DestinationConfig::Webhook(c) = &w else {
        panic!("{w:?}")
    };
    assert_eq!((c.rate_per_sec, c.burst), (10.0, 10));
    assert!(d.validate("destinations[0]").is_empty());
    let r = d.resolve_with("destinations[0]", &env).unwrap();
    assert_eq!(r.kind(), SinkKind::Teams);
    assert_eq!(r.timeout, Duration::from_secs(10));
    assert_eq!(r.deadline, Duration::from_secs(24 * 3600));
    assert!(!format!("{r:?}").contains("SECRETSIG"));
}

#[test]
fn unknown_fields_and_types_are_refused() {
    assert!(
        parse(serde_json::json!({"type": "teams", "name": "a", "url": {"env": "X"}, "colour": 1}))
            .is_err()
    );
    let err = parse(serde_json::json!({"type": "pager", "name": "a"})).unwrap_err();
    assert!(err.to_string().contains("teams"), "{err}");
}

#[test]
fn validate_lists_every_problem_with_its_path() {
    let d = parse(serde_json::json!({
        "type": "webhook", "name": "bad name", "url": {},
        "secret": {"env": "A", "file": "/b"},
        "headers": {"Content-Type": "x", "X-Ok": "a\nb"},
        "rate_per_sec": 0.0, "burst": 0, "timeout_secs": 0, "deadline_hours": 0
    }))
    .unwrap();
    let problems = d.validate("destinations[3]");
    for needle in [
        ".name:",
        ".url:",
        ".secret:",
        "Content-Type is set by entrawatch",
        "headers.X-Ok",
        ".rate_per_sec:",
        ".burst:",
        ".timeout_secs:",
        ".deadline_hours:",
    ] {
        assert!(
            problems.iter().any(|p| p.contains(needle)),
            "{needle} missing in {problems:#?}"
        );
    }
    assert!(problems.iter().all(|p| p.starts_with("destinations[3].")));
}

#[test]
fn duplicate_names_are_reported() {
    let a = parse(serde_json::json!({"type": "stdout", "name": "out"})).unwrap();
    let problems = validate_all(&[a.clone(), a], "destinations");
    assert_eq!(problems.len(), 1);
    assert!(
        problems[0].starts_with("destinations[1].name"),
        "{problems:?}"
    );
}

#[test]
fn resolve_refuses_retired_connectors_and_bad_schemes_without_leaking() {
    let cases = [
        (
            "teams",
            "TEAMS_OLD",
            "Post to a channel when a webhook request is received",
        ),
        ("teams", "TEAMS_OUTLOOK", "retired Office 365 connector"),
        ("webhook", "FTP", "scheme \"ftp\""),
        ("slack", "SLACK_HTTP", "need https"),
        ("slack", "MISSING", "MISSING is not set"),
    ];
    for (kind, var, needle) in cases {
        let d = parse(serde_json::json!({"type": kind, "name": "d", "url": {"env": var}})).unwrap();
        let errors = d.resolve_with("destinations[0]", &env).unwrap_err();
        assert!(
            errors.iter().any(|e| e.contains(needle)),
            "{kind} {var}: {errors:?}"
        );
        assert!(
            errors
                .iter()
                .all(|e| !e.contains("SECRETSIG") && e.starts_with("destinations[0].url"))
        );
    }
    let local =
        parse(serde_json::json!({"type": "slack", "name": "d", "url": {"env": "LOCAL"}})).unwrap();
    assert!(local.resolve_with("d", &env).is_ok());
}

#[test]
fn webhook_resolves_its_key_and_hides_it() {
    let d = parse(serde_json::json!({
        "type": "webhook", "name": "siem", "url": {"env": "LOCAL"}, "secret": {"env": "KEY"},
        "headers": {"X-Tenant": "contoso"}, "timeout_secs": 3
    }))
    .unwrap();
    let r = d.resolve_with("destinations[1]", &env).unwrap();
    let Target::Webhook {
        secret, headers, ..
    } = &r.target
    else {
        panic!("{r:?}")
    };
    assert_eq!(secret.as_ref().unwrap().expose(), "hmac-key-SECRETSIG");
    assert_eq!(
        headers,
        &vec![("X-Tenant".to_owned(), "contoso".to_owned())]
    );
    assert_eq!(r.timeout, Duration::from_secs(3));
    let shown = format!("{r:?}");
    assert!(
        !shown.contains("SECRETSIG") && !shown.contains("127.0.0.1") && shown.contains("X-Tenant")
    );
}

#[test]
fn jsonl_needs_an_existing_directory() {
    let d = parse(
        serde_json::json!({"type": "jsonl", "name": "f", "path": "/nonexistent-dir-ew/a.jsonl"}),
    )
    .unwrap();
    let errors = d.resolve_with("destinations[0]", &env).unwrap_err();
    assert!(errors[0].contains("does not exist"), "{errors:?}");
}
