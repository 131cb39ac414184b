//! Sinks: where alerts go, and for each kind the exact bytes it receives and how it is sent.
//!
//! A [`Sink`] is one of `teams`, `slack`, `webhook`, `jsonl`, `stdout`, with its URL and signing
//! secret (a configured destination holds one, see [`crate::destination`]). [`Sink::render`] turns a
//! [`Message`] (one or more grouped alerts) into the [`Payload`] that kind posts; [`Sink::send`]
//! sends it once and classifies the answer into an [`Outcome`]. Nothing here retries or touches the
//! outbox: the delivery workers do.
//!
//! The parts, one file per kind and what they share, in the order a message meets them:
//! - `view` takes one neutral view of an alert, and [`text`] escapes user-provided text for each
//!   markup, so Teams and Slack say the same things.
//! - [`teams`] renders an Adaptive Card for a Teams Workflows trigger, [`slack`] Block Kit for an
//!   incoming webhook, [`webhook`] the signed versioned JSON envelope. Each measures what it
//!   produced and truncates to its kind's limits ("+N more"), and has a `minimal` form, sent once
//!   when the receiver rejects the full one as a payload bug (400/413/422).
//! - [`http`] posts a payload and reads at most 8 KiB of the answer; [`local`] appends the records to
//!   a `jsonl` file (fsynced) or prints them to standard output.
//! - [`classify`] says what an answer means for each kind (the table of docs/alerting.md §4.4).

pub mod classify;
pub mod http;
pub mod local;
pub mod slack;
pub mod teams;
pub mod text;
mod view;
pub mod webhook;

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, Utc};
use entrawatch_ingest::secret::Secret;

pub use classify::Outcome;

use crate::notify::Kind;
use crate::record::AlertRecord;

/// The kind of sink, as a bounded label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SinkKind {
    Teams,
    Slack,
    Webhook,
    Jsonl,
    Stdout,
}

impl SinkKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SinkKind::Teams => "teams",
            SinkKind::Slack => "slack",
            SinkKind::Webhook => "webhook",
            SinkKind::Jsonl => "jsonl",
            SinkKind::Stdout => "stdout",
        }
    }
}

/// A sink: where and how a destination sends, with its secrets. One variant per kind; each kind
/// renders in its own file and every HTTP kind posts through [`http`].
#[derive(Clone)]
pub enum Sink {
    Teams {
        url: Secret,
    },
    Slack {
        url: Secret,
    },
    Webhook {
        url: Secret,
        secret: Option<Secret>,
        headers: Vec<(String, String)>,
    },
    Jsonl {
        path: PathBuf,
    },
    Stdout,
}

impl Sink {
    pub fn kind(&self) -> SinkKind {
        match self {
            Sink::Teams { .. } => SinkKind::Teams,
            Sink::Slack { .. } => SinkKind::Slack,
            Sink::Webhook { .. } => SinkKind::Webhook,
            Sink::Jsonl { .. } => SinkKind::Jsonl,
            Sink::Stdout => SinkKind::Stdout,
        }
    }
}

impl fmt::Debug for Sink {
    /// The kind, header names and file path; never a URL, signing key or header value.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Sink::Teams { .. } => f.write_str("Teams { url: <redacted> }"),
            Sink::Slack { .. } => f.write_str("Slack { url: <redacted> }"),
            Sink::Webhook {
                secret, headers, ..
            } => {
                let names: Vec<&str> = headers.iter().map(|(n, _)| n.as_str()).collect();
                f.debug_struct("Webhook")
                    .field("url", &"<redacted>")
                    .field("signed", &secret.is_some())
                    .field("headers", &names)
                    .finish()
            }
            Sink::Jsonl { path } => f.debug_struct("Jsonl").field("path", path).finish(),
            Sink::Stdout => f.write_str("Stdout"),
        }
    }
}

impl Sink {
    /// The bytes this sink would receive for `msg` (`None` for local sinks, which write records).
    pub fn render(&self, msg: &Message<'_>, minimal: bool) -> Option<Payload> {
        Some(match (self, minimal) {
            (Sink::Teams { .. }, false) => teams::render(msg),
            (Sink::Teams { .. }, true) => teams::render_minimal(msg),
            (Sink::Slack { .. }, false) => slack::render(msg),
            (Sink::Slack { .. }, true) => slack::render_minimal(msg),
            (Sink::Webhook { secret, .. }, false) => {
                webhook::render(msg, secret.as_ref().map(|s| s.expose().as_bytes()))
            }
            (Sink::Webhook { secret, .. }, true) => {
                webhook::render_minimal(msg, secret.as_ref().map(|s| s.expose().as_bytes()))
            }
            (Sink::Jsonl { .. } | Sink::Stdout, _) => return None,
        })
    }

    /// Sends `msg` once with `client` (a delivery worker keeps one per destination); `name` is the
    /// destination's, for logs.
    pub async fn send(
        &self,
        client: &reqwest::Client,
        name: &str,
        msg: &Message<'_>,
        minimal: bool,
    ) -> Outcome {
        match self {
            Sink::Jsonl { path } => local::write_jsonl(path.clone(), msg).await,
            Sink::Stdout => local::print_stdout(msg),
            Sink::Teams { url } | Sink::Slack { url } | Sink::Webhook { url, .. } => {
                let payload = self.render(msg, minimal).expect("http sinks render");
                let extra: &[(String, String)] = match self {
                    Sink::Webhook { headers, .. } => headers,
                    _ => &[],
                };
                http::post(client, self.kind(), name, url.expose(), &payload, extra).await
            }
        }
    }
}

/// What one message says: one or more alerts of one group, for one destination.
#[derive(Debug, Clone, Copy)]
pub struct Message<'a> {
    /// The notification id of the first (headline) alert; the webhook's `Idempotency-Key`.
    pub notification_id: &'a str,
    pub kind: Kind,
    /// The alerts of the group, most severe first; never empty.
    pub alerts: &'a [AlertRecord],
    /// The time the message is rendered (webhook timestamp header).
    pub now: DateTime<Utc>,
    /// For a reminder: how many occurrences the headline alert gained since its previous
    /// notification, when the caller knows it (shown as "reminder (+N since last)").
    pub since_last: Option<u64>,
    /// The notification id of each alert in `alerts` (same order), when the caller has them; the
    /// webhook envelope lists them so a receiver can de-duplicate per alert occasion.
    pub notification_ids: &'a [String],
}

/// Bytes to post and the headers that go with them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payload {
    pub body: Vec<u8>,
    pub content_type: &'static str,
    pub headers: Vec<(String, String)>,
    /// Alerts of the message left out to fit the sink's limits ("+N more").
    pub truncated: usize,
}

impl Payload {
    pub fn json(body: Vec<u8>, truncated: usize) -> Payload {
        Payload {
            body,
            content_type: "application/json",
            headers: Vec::new(),
            truncated,
        }
    }
}

/// Link to the Entra admin center's sign-in log for a user in a tenant.
pub fn sign_in_log_url(tenant_id: &str, user_id: &str) -> String {
    format!(
        "https://entra.microsoft.com/{tenant_id}/#view/Microsoft_AAD_UsersAndTenants/UserProfileMenuBlade/~/SignIns/userId/{user_id}"
    )
}

/// An HTTP client for one destination: whole-request timeout, no redirects, no cookies.
pub fn client(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(5)))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("entrawatch/", env!("CARGO_PKG_VERSION")))
        .build()
        .unwrap_or_else(|e| {
            tracing::warn!(error = %e, "http client with settings failed, using defaults");
            reqwest::Client::new()
        })
}

#[cfg(test)]
mod tests {
    //! Snapshot and limit tests of the renderers: one alert of each severity, a group of three, a group
    //! of 200 with big evidence (limits and "+N more" asserted, not snapshotted), hostile text, the
    //! minimal forms, and the webhook signature against a known answer.

    use chrono::{DateTime, Duration, TimeZone, Utc};
    use entrawatch_detect::{Principal, PrincipalKind, Severity};
    use serde_json::{Value, json};

    use super::{Message, Payload, slack, teams, webhook};
    use crate::notify::Kind;
    use crate::record::AlertRecord;

    const CONTOSO: &str = "11111111-aaaa-4aaa-8aaa-111111111111";
    const NORTHWIND: &str = "33333333-cccc-4ccc-8ccc-333333333333";
    const SECRET: &[u8] = b"whsec-test-secret";

    fn t(minute: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 10, 27, 3, 0, 0).unwrap() + Duration::minutes(minute)
    }

    fn now() -> DateTime<Utc> {
        t(90)
    }

    fn user(id: &str, upn: &str) -> Principal {
        Principal {
            kind: PrincipalKind::User,
            id: id.into(),
            upn: Some(upn.into()),
            home_tenant_id: None,
        }
    }

    fn evidence(v: Value) -> serde_json::Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => unreachable!("evidence is an object"),
        }
    }

    /// A plausible alert of `severity`, from a different rule and principal kind each.
    fn alert(severity: Severity) -> AlertRecord {
        let (rule, principal, title, summary, ev, mitre, count) = match severity {
            Severity::Critical => (
                "break-glass-account-used",
                user(
                    "0f2c6d1e-5b7a-4c1d-9e3f-2a4b6c8d0e1f",
                    "bg-admin@contoso.onmicrosoft.com",
                ),
                "Break-glass account bg-admin@contoso.onmicrosoft.com signed in to Azure Portal from 198.51.100.99",
                "Emergency access account bg-admin@contoso.onmicrosoft.com signed in successfully to Azure Portal from 198.51.100.99 (Sao Paulo, BR). Confirm with the identity owner that an emergency or a scheduled test is under way. If not, treat the account as compromised: reset its credentials, revoke its sessions, and review every audit event it initiated from this time on.",
                json!({"app": "Azure Portal", "authentication_methods": ["Password"], "client_app_used": "Browser",
                   "conditional_access_status": "success", "device_managed": false, "error_code": 0,
                   "failure_reason": null, "interactive": true, "ip_address": "198.51.100.99",
                   "location": "Sao Paulo, BR", "outcome": "success",
                   "resource": "Windows Azure Service Management API",
                   "user_agent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Edg/120.0"}),
                vec!["T1078.004"],
                1,
            ),
            Severity::High => (
                "impossible-travel",
                user("7d9e0a1b-2c3d-4e5f-8a9b-0c1d2e3f4a5b", "alice@contoso.com"),
                "alice@contoso.com signed in from Amsterdam, NL and São Paulo, BR 42 minutes apart",
                "alice@contoso.com signed in from Amsterdam, NL and then from São Paulo, BR 42 minutes later (9,780 km, 13,971 km/h). Confirm with the user; if one sign-in was not theirs, revoke sessions and reset the password.",
                json!({"from": {"ip_address": "203.0.113.7", "location": "Amsterdam, NL"},
                   "ip_address": "198.51.100.20", "location": "São Paulo, BR", "distance_km": 9780,
                   "minutes_apart": 42, "speed_kmh": 13971.4}),
                vec!["T1078.004"],
                3,
            ),
            Severity::Medium => (
                "password-spray",
                Principal {
                    kind: PrincipalKind::Ip,
                    id: "203.0.113.99".into(),
                    upn: None,
                    home_tenant_id: None,
                },
                "Password spray from 203.0.113.99: 25 accounts tried in 10 minutes",
                "203.0.113.99 (Bucharest, RO) failed password checks for 25 accounts of tenant Contoso Ltd in 10 minutes. Block the address at the edge and check the targeted accounts for a success from it.",
                json!({"accounts_tried": 25, "failures": 31, "ip_address": "203.0.113.99",
                   "location": "Bucharest, RO", "sample_accounts": ["cfo@contoso.com", "it@contoso.com", "hr@contoso.com"],
                   "window_minutes": 10}),
                vec!["T1110.003"],
                2,
            ),
            Severity::Low => (
                "new-country-sign-in",
                user(
                    "5a6b7c8d-9e0f-4a1b-8c2d-3e4f5a6b7c8d",
                    "ann_fabrikam.com#EXT#@contoso.onmicrosoft.com",
                ),
                "ann_fabrikam.com#EXT#@contoso.onmicrosoft.com signed in from a new country: PT",
                "A guest account signed in from Portugal for the first time in 30 days of history. Usually travel; confirm if the account is sensitive.",
                json!({"country": "PT", "ip_address": "192.0.2.44", "known_countries": ["NL", "DE"], "location": "Lisbon, PT"}),
                vec!["T1078"],
                1,
            ),
            Severity::Info => (
                "log-source-silent",
                Principal {
                    kind: PrincipalKind::Tenant,
                    id: NORTHWIND.into(),
                    upn: None,
                    home_tenant_id: None,
                },
                "No sign-in logs from Northwind CSP for 2 hours",
                "The SignInLogs stream of tenant Northwind CSP has been silent for 2 hours. Check the diagnostic setting and the Event Hub.",
                json!({"stream": "SignInLogs", "silent_minutes": 120, "last_event_at": "2026-10-27T01:30:00Z"}),
                vec![],
                1,
            ),
        };
        let tenant = if severity == Severity::Info {
            NORTHWIND
        } else {
            CONTOSO
        };
        AlertRecord {
            id: format!("ew-{:016x}", 0x3f9c_1a2b_7d4e_5f60_u64 + severity as u64),
            rule: rule.into(),
            severity,
            tenant_id: tenant.into(),
            tenant_name: (severity != Severity::Low).then(|| {
                if tenant == CONTOSO {
                    "Contoso Ltd".into()
                } else {
                    "Northwind CSP".into()
                }
            }),
            principal,
            title: title.into(),
            summary: summary.into(),
            first_seen: t(0),
            last_seen: t(7 * (count as i64 - 1)),
            count,
            event_ids: (0..count).map(|i| format!("evt-{i}")).collect(),
            evidence: evidence(ev),
            mitre: mitre.into_iter().map(String::from).collect(),
        }
    }

    fn msg<'a>(alerts: &'a [AlertRecord], kind: Kind) -> Message<'a> {
        Message {
            notification_id: "n-5d41402abc4b2a76",
            kind,
            alerts,
            now: now(),
            since_last: None,
            notification_ids: &[],
        }
    }

    fn json_of(p: &Payload) -> Value {
        assert_eq!(p.content_type, "application/json");
        serde_json::from_slice(&p.body).expect("body is json")
    }

    /// Every Teams invariant the module promises: one attachment of an AdaptiveCard 1.4, known element
    /// types only, within budget.
    fn check_teams(p: &Payload) -> Value {
        assert!(p.body.len() <= teams::BODY_BUDGET, "{} bytes", p.body.len());
        let v = json_of(p);
        assert_eq!(v["type"], "message");
        assert_eq!(v["attachments"].as_array().unwrap().len(), 1);
        let a = &v["attachments"][0];
        assert_eq!(a["contentType"], "application/vnd.microsoft.card.adaptive");
        assert_eq!(a["content"]["type"], "AdaptiveCard");
        assert_eq!(a["content"]["version"], "1.4");
        fn walk(v: &Value) {
            match v {
                Value::Object(m) => {
                    if let Some(Value::String(t)) = m.get("type") {
                        assert!(
                            [
                                "message",
                                "AdaptiveCard",
                                "TextBlock",
                                "FactSet",
                                "ColumnSet",
                                "Column",
                                "Container",
                                "Action.OpenUrl"
                            ]
                            .contains(&t.as_str()),
                            "element type {t}"
                        );
                    }
                    if m.get("type") == Some(&json!("TextBlock")) {
                        assert!(!m["text"].as_str().unwrap().is_empty());
                    }
                    m.values().for_each(walk);
                }
                Value::Array(a) => a.iter().for_each(walk),
                _ => {}
            }
        }
        walk(&a["content"]);
        v
    }

    /// Every Slack limit the module promises.
    fn check_slack(p: &Payload) -> Value {
        let v = json_of(p);
        let text = v["text"].as_str().expect("text is always set");
        assert!(!text.is_empty() && text.chars().count() <= slack::TEXT_MAX);
        let Some(blocks) = v["blocks"].as_array() else {
            return v;
        };
        assert_eq!(v["unfurl_links"], false);
        assert_eq!(v["unfurl_media"], false);
        assert!(blocks.len() <= slack::MAX_BLOCKS);
        let mut total = 0;
        let mut count = |t: &Value, max: usize| {
            let t = t.as_str().unwrap();
            assert!(!t.is_empty(), "empty text object");
            assert!(t.chars().count() <= max, "{} > {max}", t.chars().count());
            total += t.len();
        };
        for b in blocks {
            match b["type"].as_str().unwrap() {
                "header" => {
                    assert_eq!(b["text"]["type"], "plain_text");
                    count(&b["text"]["text"], slack::HEADER_MAX);
                }
                "section" => {
                    if let Some(fields) = b["fields"].as_array() {
                        assert!(fields.len() <= slack::FIELDS_MAX);
                        fields
                            .iter()
                            .for_each(|f| count(&f["text"], slack::FIELD_MAX));
                    } else {
                        count(&b["text"]["text"], slack::SECTION_MAX);
                    }
                }
                "context" => {
                    let e = b["elements"].as_array().unwrap();
                    assert!(!e.is_empty() && e.len() <= 10);
                    e.iter().for_each(|e| count(&e["text"], slack::FIELD_MAX));
                }
                "divider" => {}
                other => panic!("unexpected block {other}"),
            }
        }
        assert!(
            total < slack::BLOCK_TEXT_BUDGET,
            "{total} bytes of block text"
        );
        v
    }

    fn webhook_json(p: &Payload) -> Value {
        json!({
            "headers": p.headers.iter().map(|(k, v)| json!([k, v])).collect::<Vec<_>>(),
            "body": json_of(p),
            "truncated": p.truncated,
        })
    }

    #[test]
    fn one_alert_of_each_severity() {
        for severity in Severity::ALL {
            let alerts = [alert(severity)];
            let name = severity.as_str();
            let m = msg(&alerts, Kind::First);
            let p = teams::render(&m);
            assert_eq!(p.truncated, 0);
            insta::assert_json_snapshot!(format!("teams_{name}"), check_teams(&p));
            let p = slack::render(&m);
            assert_eq!(p.truncated, 0);
            insta::assert_json_snapshot!(format!("slack_{name}"), check_slack(&p));
            let p = webhook::render(&m, Some(SECRET));
            assert_eq!(p.truncated, 0);
            insta::assert_json_snapshot!(format!("webhook_{name}"), webhook_json(&p));
        }
    }

    #[test]
    fn sign_in_button_only_for_users() {
        for severity in Severity::ALL {
            let alerts = [alert(severity)];
            let v = check_teams(&teams::render(&msg(&alerts, Kind::First)));
            let actions = &v["attachments"][0]["content"]["actions"];
            let is_user = alerts[0].principal.kind == PrincipalKind::User;
            assert_eq!(actions.is_array(), is_user, "{severity:?}");
            if is_user {
                let url = actions[0]["url"].as_str().unwrap();
                assert!(url.starts_with("https://entra.microsoft.com/"));
                assert!(url.contains(&alerts[0].principal.id));
            }
            let s = check_slack(&slack::render(&msg(&alerts, Kind::First)));
            assert_eq!(s.to_string().contains("|Open sign-in logs>"), is_user);
        }
    }

    #[test]
    fn grouped_message_of_three() {
        let alerts = [
            alert(Severity::Critical),
            alert(Severity::High),
            alert(Severity::Medium),
        ];
        let m = msg(&alerts, Kind::Escalation);
        let p = teams::render(&m);
        assert_eq!(p.truncated, 0);
        insta::assert_json_snapshot!("teams_group_of_3", check_teams(&p));
        let p = slack::render(&m);
        assert_eq!(p.truncated, 0);
        insta::assert_json_snapshot!("slack_group_of_3", check_slack(&p));
        let p = webhook::render(&m, None);
        assert_eq!(p.truncated, 0);
        let v = webhook_json(&p);
        assert_eq!(v["body"]["alerts"].as_array().unwrap().len(), 3);
        assert_eq!(v["body"]["alert_id"], alerts[0].id.as_str());
        insta::assert_json_snapshot!("webhook_group_of_3", v);
    }

    /// 200 alerts with big evidence: every sink stays within its limits and says how many it left out.
    #[test]
    fn two_hundred_alerts_with_big_evidence_are_truncated() {
        let alerts: Vec<AlertRecord> = (0..200)
            .map(|i| {
                let mut a = alert(Severity::ALL[4 - i % 5]);
                a.id = format!("ew-{i:016x}");
                a.title = format!("{} #{i} {}", a.title, "padding ".repeat(40));
                for k in 0..60 {
                    a.evidence
                        .insert(format!("extra_fact_{k:02}"), json!("x".repeat(700)));
                }
                a
            })
            .collect();
        let m = msg(&alerts, Kind::First);

        let started = std::time::Instant::now();
        let p = teams::render(&m);
        println!(
            "teams: {} bytes, {} of 199 further alerts left out, rendered in {:?}",
            p.body.len(),
            p.truncated,
            started.elapsed()
        );
        let v = check_teams(&p);
        assert!(p.truncated > 0 && p.truncated < 199, "{}", p.truncated);
        let text = v.to_string();
        assert!(text.contains(&format!("+{} more not shown", p.truncated)));
        assert!(text.contains("199 more alerts in this group"));
        // Evidence beyond EVIDENCE_MAX shows as a "+N more" fact; values are clipped.
        assert!(text.contains("\"value\":\"+"));
        assert!(!text.contains(&"x".repeat(view_value_max() + 1)));

        let started = std::time::Instant::now();
        let p = slack::render(&m);
        println!(
            "slack: {} bytes, {} of 199 further alerts left out, rendered in {:?}",
            p.body.len(),
            p.truncated,
            started.elapsed()
        );
        let v = check_slack(&p);
        assert!(p.truncated > 0 && p.truncated < 199, "{}", p.truncated);
        assert!(
            v.to_string()
                .contains(&format!("+{} more not shown", p.truncated))
        );
        assert!(v["text"].as_str().unwrap().ends_with("and 199 more alerts"));

        let started = std::time::Instant::now();
        let p = webhook::render(&m, Some(SECRET));
        println!(
            "webhook: {} bytes, {} of 199 further alerts left out, rendered in {:?}",
            p.body.len(),
            p.truncated,
            started.elapsed()
        );
        assert!(p.body.len() <= webhook::BODY_MAX);
        let v = json_of(&p);
        let included = v["alerts"].as_array().unwrap().len();
        assert!(included < 200 && included > 1);
        // As many records as fit: one more would not.
        let next = serde_json::to_vec(&alerts[included]).unwrap().len();
        assert!(p.body.len() + next + 1 > webhook::BODY_MAX);
        assert_eq!(p.truncated, 200 - included);
        assert_eq!(v["truncated"], 200 - included);
        assert_eq!(v["alert_count"], 200);
    }

    fn view_value_max() -> usize {
        super::view::VALUE_MAX
    }

    /// The headline alone too big for the Slack block budget: evidence facts go before the headline.
    #[test]
    fn evidence_is_dropped_when_the_headline_alone_is_too_big() {
        let mut a = alert(Severity::High);
        for k in 0..30 {
            a.evidence
                .insert(format!("k{k:02}"), json!("é".repeat(290)));
        }
        let alerts = [a];
        let p = slack::render(&msg(&alerts, Kind::First));
        let v = check_slack(&p);
        assert_eq!(p.truncated, 0);
        assert!(v.to_string().contains(" more_"), "{v}");
    }

    fn hostile() -> AlertRecord {
        let mut a = alert(Severity::High);
        a.title = "**URGENT** [click here](https://evil.example/login) <!channel> <https://evil.example|Entra> & _x_ `rm -rf` \u{202E}exe.pdf ünïcødé 日本語 👩‍💻".into();
        a.summary = "- line one\n1. line two\r\n# heading\t> quote {{DATE(2017-02-14T06:00:00Z, SHORT)}} \\*not bold\\* ${expr}".into();
        a.tenant_name = Some("Contoso <script>alert(1)</script> & Co".into());
        a.principal.upn = Some("eve_[admin]*@contoso.com".into());
        a.evidence = evidence(json!({
            "app": "**Totally Legit** [App](https://evil.example)",
            "user_agent": "<b>bold</b> & <i>",
            "nested": {"a": [1, "two"], "b": null},
            "emoji": "🚨🔥",
        }));
        a
    }

    #[test]
    fn hostile_text_is_escaped() {
        let alerts = [hostile()];
        let m = msg(&alerts, Kind::First);
        let p = teams::render(&m);
        let v = check_teams(&p);
        let card = v.to_string();
        assert!(card.contains("\\\\[click here\\\\](https://evil.example/login)"));
        assert!(!card.contains("[App](https"));
        assert!(!card.contains('\u{202E}'));
        insta::assert_json_snapshot!("teams_hostile", v);

        let p = slack::render(&m);
        let v = check_slack(&p);
        // mrkdwn (and the top-level text) is escaped; the header is plain_text, shown as it is.
        let mut mrkdwn = vec![v["text"].as_str().unwrap().to_owned()];
        fn collect(v: &Value, out: &mut Vec<String>) {
            match v {
                Value::Object(m) if m.get("type") == Some(&json!("mrkdwn")) => {
                    out.push(m["text"].as_str().unwrap().to_owned())
                }
                Value::Object(m) => m.values().for_each(|v| collect(v, out)),
                Value::Array(a) => a.iter().for_each(|v| collect(v, out)),
                _ => {}
            }
        }
        collect(&v["blocks"], &mut mrkdwn);
        let all = mrkdwn.join("\n");
        assert!(!all.contains("<!channel>") && !all.contains("<https://evil"));
        assert!(!all.contains("<script>") && !all.contains("<b>"));
        assert!(all.contains("&lt;!channel&gt;") && all.contains("&amp; Co"));
        assert_eq!(v["blocks"][0]["type"], "header");
        assert!(
            v["blocks"][0]["text"]["text"]
                .as_str()
                .unwrap()
                .contains("<!channel>")
        );
        insta::assert_json_snapshot!("slack_hostile", v);

        let p = webhook::render(&m, None);
        let v = json_of(&p);
        // The webhook carries the record as it is: receivers escape for their own display.
        assert_eq!(v["title"], alerts[0].title.as_str());
    }

    #[test]
    fn minimal_forms() {
        let alerts = [
            alert(Severity::Critical),
            alert(Severity::High),
            alert(Severity::Medium),
        ];
        let mut m = msg(&alerts, Kind::Reminder);
        m.since_last = Some(4);
        let p = teams::render_minimal(&m);
        assert_eq!(p.truncated, 2);
        insta::assert_json_snapshot!("teams_minimal", check_teams(&p));
        let p = slack::render_minimal(&m);
        assert_eq!(p.truncated, 2);
        let v = check_slack(&p);
        assert_eq!(v.as_object().unwrap().len(), 1, "text only");
        insta::assert_json_snapshot!("slack_minimal", v);
        let p = webhook::render_minimal(&m, Some(SECRET));
        assert_eq!(p.truncated, 2);
        let v = webhook_json(&p);
        assert!(v["body"].get("evidence").is_none() && v["body"].get("alerts").is_none());
        insta::assert_json_snapshot!("webhook_minimal", v);
    }

    #[test]
    fn reminder_says_how_many_since_last() {
        let alerts = [alert(Severity::High)];
        let mut m = msg(&alerts, Kind::Reminder);
        m.since_last = Some(12);
        let teams = String::from_utf8(teams::render(&m).body).unwrap();
        assert!(teams.contains("reminder (+12 since last)"));
        let slack = String::from_utf8(slack::render(&m).body).unwrap();
        assert!(slack.contains("reminder (+12 since last)"));
    }

    #[test]
    fn an_empty_message_renders_without_panicking() {
        let m = msg(&[], Kind::System);
        check_teams(&teams::render(&m));
        check_slack(&slack::render(&m));
        let v = json_of(&webhook::render(&m, None));
        assert_eq!(v["alert_count"], 0);
    }

    /// HMAC-SHA256("whsec-test-secret", "1793070000.{\"hello\":\"world\"}"), computed independently with
    /// `python3 -c 'import hmac,hashlib;print(hmac.new(b"whsec-test-secret",
    /// b"1793070000.{\"hello\":\"world\"}",hashlib.sha256).hexdigest())'`.
    const KNOWN_SIGNATURE: &str =
        "sha256=1890f3aec099ee28346cc0212d02dda5d37d807e924a68781820cb238175f369";

    #[test]
    fn signature_matches_a_known_answer() {
        let body = br#"{"hello":"world"}"#;
        assert_eq!(
            webhook::signature(SECRET, "1793070000", body),
            KNOWN_SIGNATURE
        );
        assert!(webhook::verify_signature(
            SECRET,
            "1793070000",
            body,
            KNOWN_SIGNATURE
        ));
    }

    #[test]
    fn signature_headers_and_verification() {
        let alerts = [alert(Severity::Critical)];
        let m = msg(&alerts, Kind::First);
        let p = webhook::render(&m, Some(SECRET));
        let header = |name: &str| {
            p.headers
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
                .unwrap_or_else(|| panic!("no {name} header"))
        };
        assert_eq!(header("Idempotency-Key"), "n-5d41402abc4b2a76");
        let ts = header("X-Entrawatch-Timestamp");
        assert_eq!(ts, now().timestamp().to_string());
        let sig = header("X-Entrawatch-Signature");
        assert!(webhook::verify_signature(SECRET, &ts, &p.body, &sig));
        assert!(webhook::verify_signature(
            SECRET,
            &ts,
            &p.body,
            &sig.to_ascii_uppercase().replace("SHA256=", "sha256=")
        ));
        assert!(!webhook::verify_signature(b"other", &ts, &p.body, &sig));
        assert!(!webhook::verify_signature(SECRET, "1", &p.body, &sig));
        let mut tampered = p.body.clone();
        tampered[10] ^= 1;
        assert!(!webhook::verify_signature(SECRET, &ts, &tampered, &sig));
        assert!(!webhook::verify_signature(SECRET, &ts, &p.body, &sig[7..]));
        assert!(!webhook::verify_signature(
            SECRET,
            &ts,
            &p.body,
            "sha256=zz"
        ));
        let unsigned = webhook::render(&m, None);
        assert!(
            unsigned
                .headers
                .iter()
                .all(|(k, _)| k != "X-Entrawatch-Signature")
        );
        assert_eq!(unsigned.body, p.body, "signing does not change the body");
    }
}
