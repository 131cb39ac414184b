//! Tests of silences: windows, matching, validation, expiry, config and storage round trips.

use super::*;
use chrono::{Duration, TimeZone};
use serde::Deserialize;

fn t(h: u32, m: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 8, 1, h, m, 0).unwrap()
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn silence(matchers: &[&str], from: DateTime<Utc>, to: DateTime<Utc>) -> Silence {
    Silence::new(
        matchers.iter().map(|m| (*m).to_owned()).collect(),
        from,
        to,
        "j.doe",
        "maintenance",
        from - Duration::minutes(5),
    )
    .unwrap_or_else(|p| panic!("{p:?}"))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    silences: Vec<SilenceConfig>,
}

#[test]
fn window_is_start_inclusive_end_exclusive() {
    let mut set = Silences::new();
    let s = silence(&[r#"rule="brute-force""#], t(10, 0), t(12, 0));
    set.add(s.clone()).unwrap();
    let l = labels(&[("rule", "brute-force"), ("severity", "high")]);
    // (time, silenced)
    let cases = [
        (t(9, 59), false),
        (t(10, 0), true),
        (t(11, 0), true),
        (t(11, 59) + Duration::seconds(59), true),
        (t(12, 0), false),
        (t(13, 0), false),
    ];
    for (now, want) in cases {
        assert_eq!(set.is_silenced(&l, now).is_some(), want, "{now}");
    }
    assert_eq!(set.is_silenced(&l, t(11, 0)), Some(&s));
    assert_eq!(s.state(t(9, 0)), SilenceState::Pending);
    assert_eq!(s.state(t(10, 0)), SilenceState::Active);
    assert_eq!(s.state(t(12, 0)), SilenceState::Expired);
}

#[test]
fn all_matchers_must_match() {
    let mut set = Silences::new();
    set.add(silence(
        &[
            r#"tenant="contoso""#,
            r#"severity=~"low|medium""#,
            r#"upn!="""#,
        ],
        t(0, 0),
        t(23, 0),
    ))
    .unwrap();
    let now = t(12, 0);
    let cases: &[(&[(&str, &str)], bool)] = &[
        (
            &[("tenant", "contoso"), ("severity", "low"), ("upn", "a@c")],
            true,
        ),
        (
            &[
                ("tenant", "contoso"),
                ("severity", "medium"),
                ("upn", "a@c"),
            ],
            true,
        ),
        (
            &[("tenant", "contoso"), ("severity", "high"), ("upn", "a@c")],
            false,
        ),
        (
            &[("tenant", "fabrikam"), ("severity", "low"), ("upn", "a@c")],
            false,
        ),
        // No upn: `upn!=""` fails.
        (&[("tenant", "contoso"), ("severity", "low")], false),
    ];
    for (pairs, want) in cases {
        assert_eq!(
            set.is_silenced(&labels(pairs), now).is_some(),
            *want,
            "{pairs:?}"
        );
    }
}

#[test]
fn first_matching_active_silence_by_id_and_active_list() {
    let mut set = Silences::new();
    let a = silence(&[r#"rule="x""#], t(1, 0), t(5, 0));
    let b = silence(&[r#"rule=~"x|y""#], t(2, 0), t(6, 0));
    let pending = silence(&[r#"rule="x""#], t(8, 0), t(9, 0));
    for s in [&a, &b, &pending] {
        set.add(s.clone()).unwrap();
    }
    let first = if a.id < b.id { &a } else { &b };
    assert_eq!(
        set.is_silenced(&labels(&[("rule", "x")]), t(3, 0)),
        Some(first)
    );
    assert_eq!(
        set.is_silenced(&labels(&[("rule", "y")]), t(3, 0)),
        Some(&b)
    );
    assert_eq!(
        set.is_silenced(&labels(&[("rule", "x")]), t(5, 30)),
        Some(&b)
    );
    assert_eq!(set.is_silenced(&labels(&[("rule", "x")]), t(7, 0)), None);
    let active: Vec<&str> = set.active(t(3, 0)).iter().map(|s| s.id.as_str()).collect();
    let mut want = vec![a.id.as_str(), b.id.as_str()];
    want.sort();
    assert_eq!(active, want);
    assert_eq!(set.active(t(8, 30)), vec![&pending]);
    assert_eq!(set.len(), 3);
}

#[test]
fn expire_active_pending_and_ended() {
    let mut set = Silences::new();
    let active = silence(&[r#"rule="x""#], t(1, 0), t(5, 0));
    let pending = silence(&[r#"rule="y""#], t(8, 0), t(9, 0));
    set.add(active.clone()).unwrap();
    set.add(pending.clone()).unwrap();
    let now = t(3, 0);

    let e = set.expire(&active.id, now).unwrap();
    assert_eq!((e.starts_at, e.ends_at), (t(1, 0), now));
    assert!(set.is_silenced(&labels(&[("rule", "x")]), now).is_none());

    let e = set.expire(&pending.id, now).unwrap();
    assert_eq!((e.starts_at, e.ends_at), (now, now));
    assert!(
        set.is_silenced(&labels(&[("rule", "y")]), t(8, 30))
            .is_none()
    );

    assert_eq!(
        set.expire(&active.id, t(4, 0)),
        Err(SilenceError::AlreadyExpired(active.id.clone()))
    );
    assert_eq!(
        set.expire("s-nope", now),
        Err(SilenceError::NotFound("s-nope".into()))
    );

    // Expired silences survive a storage round trip (ends_at == starts_at is fine there).
    let (back, problems) = Silences::from_values(set.to_values());
    assert!(problems.is_empty(), "{problems:?}");
    assert_eq!(
        back.iter().collect::<Vec<_>>(),
        set.iter().collect::<Vec<_>>()
    );
}

#[test]
fn validation_lists_every_problem() {
    let bad = Silence {
        id: " ".into(),
        matchers: vec!["bad".into(), r#"rule=~"(""#.into()],
        starts_at: t(5, 0),
        ends_at: t(5, 0),
        author: "".into(),
        comment: "  ".into(),
        created_at: t(1, 0),
    };
    assert_eq!(
        bad.validate("silence"),
        [
            r#"silence.id: empty"#,
            r#"silence.matchers[0]: "bad": expected =, !=, =~ or !~ after the label name"#,
            r#"silence.matchers[1]: "rule=~\"(\"": invalid regex "(": unclosed group"#,
            r#"silence.ends_at: 2026-08-01T05:00:00Z is not after starts_at 2026-08-01T05:00:00Z"#,
            r#"silence.author: empty; say who set the silence"#,
            r#"silence.comment: empty; say why"#,
        ]
    );
    let mut set = Silences::new();
    assert_eq!(set.add(bad).unwrap_err().len(), 6);
    assert!(set.is_empty());

    let s = |m: &[&str]| Silence {
        matchers: m.iter().map(|x| (*x).to_owned()).collect(),
        ..silence(&[r#"rule="x""#], t(1, 0), t(2, 0))
    };
    assert_eq!(
        s(&[]).validate("s"),
        ["s.matchers: empty; a silence needs at least one matcher"]
    );
    // Matchers that all match an empty label would mute everything.
    for everything in [&[r#"rule=~".*""#][..], &[r#"upn="""#, r#"rule!="x""#]] {
        let p = s(everything).validate("s");
        assert_eq!(p.len(), 1, "{everything:?}: {p:?}");
        assert!(p[0].starts_with("s.matchers: every matcher matches an empty label"));
    }
    // One matcher that needs a value is enough.
    assert!(
        s(&[r#"rule=~".*""#, r#"tenant="contoso""#])
            .validate("s")
            .is_empty()
    );

    // Silence::new validates too.
    assert!(
        Silence::new(
            vec![r#"rule="x""#.into()],
            t(2, 0),
            t(1, 0),
            "a",
            "b",
            t(0, 0)
        )
        .is_err()
    );
}

#[test]
fn documented_config_parses_and_ids_are_deterministic() {
    let blocks = crate::matcher::doc_toml(include_str!("silence.rs"));
    assert_eq!(blocks.len(), 1);
    let file: File = toml::from_str(&blocks[0]).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(file.silences.len(), 2);
    let set = Silences::from_config(&file.silences).unwrap_or_else(|p| panic!("{p:?}"));

    let trip = file.silences[0].to_silence();
    assert!(
        trip.id.starts_with("s-") && trip.id.len() == 18,
        "{}",
        trip.id
    );
    assert_eq!(trip.created_at, trip.starts_at);
    // Same content, same id; other content, other id.
    let again: File = toml::from_str(&blocks[0]).unwrap();
    assert_eq!(again.silences[0].to_silence().id, trip.id);
    let mut changed = file.silences[0].clone();
    changed.comment.push('!');
    assert_ne!(changed.to_silence().id, trip.id);

    let pentest = set.get("pentest-2026-08").expect("configured id kept");
    // +02:00 normalised to UTC.
    assert_eq!(
        pentest.starts_at,
        Utc.with_ymd_and_hms(2026, 8, 3, 6, 0, 0).unwrap()
    );
    let hit = labels(&[
        ("tenant_id", "11111111-1111-1111-1111-111111111111"),
        ("principal", "203.0.113.7"),
        ("rule", "password-spray"),
    ]);
    let during = Utc.with_ymd_and_hms(2026, 8, 3, 12, 0, 0).unwrap();
    assert_eq!(
        set.is_silenced(&hit, during).map(|s| s.id.as_str()),
        Some("pentest-2026-08")
    );
    let ada = labels(&[
        ("tenant", "contoso"),
        ("rule", "new-country-sign-in"),
        ("upn", "ada@contoso.com"),
    ]);
    assert_eq!(set.is_silenced(&ada, during).map(|s| &s.id), Some(&trip.id));
    let after = Utc.with_ymd_and_hms(2026, 8, 15, 0, 0, 0).unwrap();
    assert!(set.is_silenced(&ada, after).is_none());
}

#[test]
fn config_problems_and_unknown_fields() {
    let file: File = toml::from_str(
        r#"
        [[silences]]
        id = "dup"
        matchers = ['rule="x"']
        starts_at = 2026-08-01T00:00:00Z
        ends_at = 2026-08-02T00:00:00Z
        author = "a"
        comment = "c"

        [[silences]]
        id = "dup"
        matchers = ['rule="y"']
        starts_at = 2026-08-01T00:00:00Z
        ends_at = 2026-08-02T00:00:00Z
        author = "a"
        comment = "c"

        [[silences]]
        matchers = []
        starts_at = 2026-08-02T00:00:00Z
        ends_at = 2026-08-01T00:00:00Z
        author = "a"
        comment = ""
        "#,
    )
    .unwrap();
    assert_eq!(
        Silences::from_config(&file.silences).unwrap_err(),
        [
            r#"silences[1].id: duplicate silence id "dup""#,
            r#"silences[2].matchers: empty; a silence needs at least one matcher"#,
            r#"silences[2].ends_at: 2026-08-01T00:00:00Z is not after starts_at 2026-08-02T00:00:00Z"#,
            r#"silences[2].comment: empty; say why"#,
        ]
    );
    assert_eq!(
        file.silences[2].validate("silences[2]").len(),
        3,
        "validate agrees with from_config"
    );

    for (text, want) in [
        (
            "matchers = ['rule=\"x\"']\nstarts_at = 2026-08-01T00:00:00Z\nends_at = 2026-08-02T00:00:00Z\nauthor = \"a\"\ncomment = \"c\"\nowner = \"x\"",
            "unknown field `owner`",
        ),
        (
            "matchers = ['rule=\"x\"']\nstarts_at = 2026-08-01T00:00:00\nends_at = 2026-08-02T00:00:00Z\nauthor = \"a\"\ncomment = \"c\"",
            "use RFC 3339 with an offset",
        ),
        (
            "matchers = ['rule=\"x\"']\nstarts_at = \"yesterday\"\nends_at = 2026-08-02T00:00:00Z\nauthor = \"a\"\ncomment = \"c\"",
            "invalid time \"yesterday\"",
        ),
    ] {
        let err = toml::from_str::<File>(&format!("[[silences]]\n{text}"))
            .err()
            .unwrap_or_else(|| panic!("accepted: {text}"))
            .to_string();
        assert!(err.contains(want), "{err}");
    }
}

#[test]
fn json_round_trip_and_bad_rows() {
    let mut set = Silences::new();
    let s = Silence::new(
        vec![r#"rule="x""#.into()],
        t(1, 0),
        t(2, 0),
        "a",
        "c",
        t(0, 0) + Duration::milliseconds(250),
    )
    .unwrap();
    set.add(s.clone()).unwrap();
    let values = set.to_values();
    assert_eq!(values.len(), 1);
    assert_eq!(values[0].0, s.id);
    assert_eq!(
        values[0].1,
        serde_json::json!({
            "id": s.id,
            "matchers": ["rule=\"x\""],
            "starts_at": "2026-08-01T01:00:00Z",
            "ends_at": "2026-08-01T02:00:00Z",
            "author": "a",
            "comment": "c",
            "created_at": "2026-08-01T00:00:00.250Z",
        })
    );

    let mut rows = values.clone();
    rows.push(("s-wrong".into(), values[0].1.clone()));
    rows.push(("s-junk".into(), serde_json::json!({"id": "s-junk"})));
    let mut invalid = values[0].1.clone();
    invalid["id"] = "s-inv".into();
    invalid["author"] = "".into();
    rows.push(("s-inv".into(), invalid));
    let (back, problems) = Silences::from_values(rows);
    assert_eq!(back.len(), 1);
    assert_eq!(back.get(&s.id), Some(&s));
    assert_eq!(problems.len(), 3, "{problems:?}");
    assert!(problems[0].starts_with(r#"silences["s-wrong"].id: stored under"#));
    assert!(problems[1].starts_with(r#"silences["s-junk"]: missing field"#));
    assert_eq!(
        problems[2],
        r#"silences["s-inv"].author: empty; say who set the silence"#
    );

    // Replacing by id returns the old one; prune drops the ended.
    let mut s2 = s.clone();
    s2.comment = "longer".into();
    assert_eq!(set.add(s2).unwrap(), Some(s.clone()));
    assert_eq!(set.get(&s.id).unwrap().comment, "longer");
    assert!(set.prune(t(2, 0)).is_empty());
    assert_eq!(set.prune(t(2, 1)), vec![s.id.clone()]);
    assert!(set.is_empty());
}
