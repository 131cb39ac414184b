//! `entrawatch send-test --config FILE --destination NAME`: renders a test alert for one
//! destination, posts it once, and says what the receiver answered. Teams Workflows answer 202
//! before the flow runs, so a 2xx here proves the URL works, not that the card reached the
//! channel: look in the channel (and the flow's run history) too.

use std::process::ExitCode;

use chrono::Utc;
use entrawatch_alert::AlertRecord;
use entrawatch_alert::deliver::Verdict;
use entrawatch_alert::notify::Kind;
use entrawatch_alert::sink::Message;
use entrawatch_alert::sink::SinkKind;
use entrawatch_detect::{Principal, PrincipalKind, Severity};

use crate::cli::{EXIT_ERROR, SendTestArgs};

/// The alert a test message shows.
pub fn test_alert() -> AlertRecord {
    let now = Utc::now();
    let mut evidence = serde_json::Map::new();
    evidence.insert(
        "note".into(),
        serde_json::Value::String("This is a test message from entrawatch send-test.".into()),
    );
    AlertRecord {
        id: "ew-0000000000000000".into(),
        rule: "send-test".into(),
        severity: Severity::Info,
        tenant_id: "00000000-0000-0000-0000-000000000000".into(),
        tenant_name: Some("entrawatch".into()),
        principal: Principal {
            kind: PrincipalKind::Tenant,
            id: "00000000-0000-0000-0000-000000000000".into(),
            upn: None,
            home_tenant_id: None,
        },
        title: "entrawatch test message".into(),
        summary: "If you can read this in the channel, alerts will reach it.".into(),
        first_seen: now,
        last_seen: now,
        count: 1,
        event_ids: Vec::new(),
        evidence,
        mitre: Vec::new(),
    }
}

pub fn run(args: SendTestArgs) -> anyhow::Result<ExitCode> {
    let config = entrawatch_config::load(&args.config)?;
    let Some((i, d)) = config
        .destinations
        .iter()
        .enumerate()
        .find(|(_, d)| d.name() == args.destination)
    else {
        let known: Vec<&str> = config.destinations.iter().map(|d| d.name()).collect();
        anyhow::bail!(
            "no destination named {:?} (known: {})",
            args.destination,
            known.join(", ")
        );
    };
    let dest = d
        .resolve(&format!("destinations[{i}]"))
        .map_err(|p| anyhow::anyhow!("{}", p.join("\n  ")))?;
    let alert = test_alert();
    let alerts = [alert];
    let msg = Message {
        notification_id: "n-test",
        kind: Kind::Test,
        alerts: &alerts,
        now: Utc::now(),
        since_last: None,
        notification_ids: &[],
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let outcome = runtime.block_on(entrawatch_alert::deliver::send_once(&dest, &msg));
    let status = outcome
        .status
        .map_or_else(|| "no response".to_owned(), |s| format!("HTTP {s}"));
    println!(
        "{}: {:?} ({status}){}",
        args.destination,
        outcome.verdict,
        if outcome.detail.is_empty() {
            String::new()
        } else {
            format!(": {}", outcome.detail)
        }
    );
    if outcome.verdict == Verdict::Delivered && dest.kind() == SinkKind::Teams {
        println!(
            "Teams Workflows accept the request before the flow runs: check that the card is in the channel (and the flow's run history if not)."
        );
    }
    Ok(if outcome.verdict == Verdict::Delivered {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_ERROR)
    })
}
