//! Silences: mute matching alerts for a time window, with who and why (Alertmanager semantics).
//!
//! What comes in: `[[silences]]` from the config file ([`SilenceConfig`]), silences created through
//! the admin API (`/api/silences`, JSON [`Silence`]), and silences read back from the outbox
//! database ([`Silences::from_values`]). What goes out: [`Silences`], which answers
//! [`Silences::is_silenced`] for an alert's [`Labels`] at a time, lists the active ones, expires one,
//! and turns the set back into JSON values by id for the database ([`Silences::to_values`]).
//!
//! A silence mutes an alert while `starts_at <= now < ends_at` when all its matchers match the
//! alert's labels (see [`crate::matcher`]). A silenced alert is still recorded and counted
//! (`entrawatch_alerts_suppressed_total{reason="silenced"}`); only its notifications are held back.
//! Rules a silence must meet: at least one matcher, every matcher parses, at least one matcher does
//! not match an empty label (so no silence mutes everything, e.g. `rule=~".*"` alone), `ends_at` after
//! `starts_at`, and a non-empty `author` and `comment`. Expiring a silence ends it now: an active
//! silence's `ends_at` becomes now; a pending one gets `starts_at = ends_at = now`, so it never
//! applies (this is the one case where a stored silence has `ends_at == starts_at`).
//!
//! In the config file a silence needs no `id`: it is derived from the content (`s-` and 16 hex
//! digits), so reloading the same file gives the same ids, and `created_at` is `starts_at`. Times
//! are RFC 3339 with an offset, as TOML datetimes or strings. Config silences are rebuilt from the
//! file on every load; to end one early, edit the file.
//!
//! ```toml
//! # A technician on a trip: no new-country alerts for them for two weeks.
//! [[silences]]
//! matchers = ['tenant="contoso"', 'rule="new-country-sign-in"', 'upn="ada@contoso.com"']
//! starts_at = 2026-08-01T00:00:00Z
//! ends_at = 2026-08-15T00:00:00Z
//! author = "j.doe"
//! comment = "CHG-1234: Ada works from Japan until the 15th"
//!
//! # A pen test against one tenant, from one address; strings work as times too.
//! [[silences]]
//! id = "pentest-2026-08"
//! matchers = ['tenant_id="11111111-1111-1111-1111-111111111111"', 'principal="203.0.113.7"']
//! starts_at = "2026-08-03T08:00:00+02:00"
//! ends_at = "2026-08-03T18:00:00+02:00"
//! author = "soc-lead"
//! comment = "authorised pen test, ticket SEC-88"
//! ```

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::labels::Labels;
use crate::matcher::{self, Matcher};

/// One silence, as the API takes and returns it and the database stores it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Silence {
    pub id: String,
    pub matchers: Vec<String>,
    #[serde(with = "time")]
    pub starts_at: DateTime<Utc>,
    #[serde(with = "time")]
    pub ends_at: DateTime<Utc>,
    pub author: String,
    pub comment: String,
    #[serde(with = "time")]
    pub created_at: DateTime<Utc>,
}

/// Where a silence stands at a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SilenceState {
    /// Not started yet.
    Pending,
    Active,
    /// Ended (or expired early).
    Expired,
}

impl Silence {
    /// A new silence with an id derived from all of its content, `created_at` included (so two
    /// identical silences created at different times differ). Validated.
    pub fn new(
        matchers: Vec<String>,
        starts_at: DateTime<Utc>,
        ends_at: DateTime<Utc>,
        author: &str,
        comment: &str,
        created_at: DateTime<Utc>,
    ) -> Result<Silence, Vec<String>> {
        let s = Silence {
            id: silence_id(&matchers, starts_at, ends_at, author, comment, created_at),
            matchers,
            starts_at,
            ends_at,
            author: author.to_owned(),
            comment: comment.to_owned(),
            created_at,
        };
        let problems = s.validate("silence");
        if problems.is_empty() {
            Ok(s)
        } else {
            Err(problems)
        }
    }

    /// Every problem of a new silence, each prefixed with `path`.
    pub fn validate(&self, path: &str) -> Vec<String> {
        let mut problems = Vec::new();
        self.check(path, true, &mut problems);
        problems
    }

    /// `strict`: `ends_at` must be after `starts_at` (false for stored, possibly expired, ones).
    fn check(&self, path: &str, strict: bool, problems: &mut Vec<String>) -> Vec<Matcher> {
        if self.id.trim().is_empty() {
            problems.push(format!("{path}.id: empty"));
        }
        let matchers = matcher::parse_list(&self.matchers, &format!("{path}.matchers"), problems);
        if self.matchers.is_empty() {
            problems.push(format!(
                "{path}.matchers: empty; a silence needs at least one matcher"
            ));
        } else if matchers.len() == self.matchers.len()
            && matchers.iter().all(|m| m.matches_value(""))
        {
            problems.push(format!(
                "{path}.matchers: every matcher matches an empty label, so the silence would mute \
                 every alert; add one that names a value (e.g. rule=\"...\")"
            ));
        }
        if (strict && self.ends_at <= self.starts_at) || self.ends_at < self.starts_at {
            problems.push(format!(
                "{path}.ends_at: {} is not after starts_at {}",
                time::format(&self.ends_at),
                time::format(&self.starts_at)
            ));
        }
        if self.author.trim().is_empty() {
            problems.push(format!("{path}.author: empty; say who set the silence"));
        }
        if self.comment.trim().is_empty() {
            problems.push(format!("{path}.comment: empty; say why"));
        }
        matchers
    }

    pub fn state(&self, now: DateTime<Utc>) -> SilenceState {
        if now < self.starts_at {
            SilenceState::Pending
        } else if now < self.ends_at {
            SilenceState::Active
        } else {
            SilenceState::Expired
        }
    }

    pub fn is_active(&self, now: DateTime<Utc>) -> bool {
        self.state(now) == SilenceState::Active
    }
}

/// `s-` and 16 hex digits of SHA-256 over the silence's content.
pub fn silence_id(
    matchers: &[String],
    starts_at: DateTime<Utc>,
    ends_at: DateTime<Utc>,
    author: &str,
    comment: &str,
    created_at: DateTime<Utc>,
) -> String {
    let mut h = Sha256::new();
    for m in matchers {
        h.update(m.as_bytes());
        h.update([0u8]);
    }
    h.update([1u8]);
    for part in [
        &time::format(&starts_at),
        &time::format(&ends_at),
        author,
        comment,
        &time::format(&created_at),
    ] {
        h.update(part.as_bytes());
        h.update([0u8]);
    }
    let digest = h.finalize();
    let hex: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
    format!("s-{hex}")
}

/// One `[[silences]]` entry of the config file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SilenceConfig {
    /// Optional; derived from the content when absent.
    #[serde(default)]
    pub id: Option<String>,
    pub matchers: Vec<String>,
    #[serde(deserialize_with = "time::deserialize")]
    pub starts_at: DateTime<Utc>,
    #[serde(deserialize_with = "time::deserialize")]
    pub ends_at: DateTime<Utc>,
    pub author: String,
    pub comment: String,
}

impl SilenceConfig {
    /// The silence: `created_at` is `starts_at`, the id the configured one or derived from content.
    pub fn to_silence(&self) -> Silence {
        let id = self.id.clone().unwrap_or_else(|| {
            silence_id(
                &self.matchers,
                self.starts_at,
                self.ends_at,
                &self.author,
                &self.comment,
                self.starts_at,
            )
        });
        Silence {
            id,
            matchers: self.matchers.clone(),
            starts_at: self.starts_at,
            ends_at: self.ends_at,
            author: self.author.clone(),
            comment: self.comment.clone(),
            created_at: self.starts_at,
        }
    }

    /// Every problem, each prefixed with `path` (e.g. `silences[0]`).
    pub fn validate(&self, path: &str) -> Vec<String> {
        self.to_silence().validate(path)
    }
}

/// Why [`Silences::expire`] failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SilenceError {
    #[error("no silence {0:?}")]
    NotFound(String),
    #[error("silence {0:?} has already ended")]
    AlreadyExpired(String),
}

#[derive(Debug, Clone)]
struct Entry {
    silence: Silence,
    matchers: Vec<Matcher>,
}

/// The set of known silences (pending, active and expired), by id.
#[derive(Debug, Clone, Default)]
pub struct Silences {
    by_id: BTreeMap<String, Entry>,
}

impl Silences {
    pub fn new() -> Silences {
        Silences::default()
    }

    /// Builds the set from `[[silences]]`; `Err` lists every problem (`silences[i]...`), including
    /// two entries with one id.
    pub fn from_config(configs: &[SilenceConfig]) -> Result<Silences, Vec<String>> {
        let mut set = Silences::new();
        let mut problems = Vec::new();
        for (i, c) in configs.iter().enumerate() {
            let path = format!("silences[{i}]");
            let s = c.to_silence();
            let mut p = Vec::new();
            let matchers = s.check(&path, true, &mut p);
            if p.is_empty() && set.by_id.contains_key(&s.id) {
                p.push(format!("{path}.id: duplicate silence id {:?}", s.id));
            }
            if p.is_empty() {
                set.by_id.insert(
                    s.id.clone(),
                    Entry {
                        silence: s,
                        matchers,
                    },
                );
            }
            problems.extend(p);
        }
        if problems.is_empty() {
            Ok(set)
        } else {
            Err(problems)
        }
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// Adds a validated silence, or replaces the one with its id (returned). `Err` lists every
    /// problem (paths start with `silence`).
    pub fn add(&mut self, silence: Silence) -> Result<Option<Silence>, Vec<String>> {
        let mut problems = Vec::new();
        let matchers = silence.check("silence", true, &mut problems);
        if !problems.is_empty() {
            return Err(problems);
        }
        let old = self
            .by_id
            .insert(silence.id.clone(), Entry { silence, matchers });
        Ok(old.map(|e| e.silence))
    }

    pub fn get(&self, id: &str) -> Option<&Silence> {
        self.by_id.get(id).map(|e| &e.silence)
    }

    /// Ends a silence now (see the module docs); returns it as it now stands.
    pub fn expire(&mut self, id: &str, now: DateTime<Utc>) -> Result<&Silence, SilenceError> {
        let e = self
            .by_id
            .get_mut(id)
            .ok_or_else(|| SilenceError::NotFound(id.to_owned()))?;
        let s = &mut e.silence;
        match s.state(now) {
            SilenceState::Expired => return Err(SilenceError::AlreadyExpired(id.to_owned())),
            SilenceState::Active => s.ends_at = now,
            SilenceState::Pending => {
                s.starts_at = now;
                s.ends_at = now;
            }
        }
        Ok(&e.silence)
    }

    /// The first active silence (by id) whose matchers all match, if any.
    pub fn is_silenced(&self, labels: &Labels, now: DateTime<Utc>) -> Option<&Silence> {
        self.by_id
            .values()
            .find(|e| e.silence.is_active(now) && matcher::matches_all(&e.matchers, labels))
            .map(|e| &e.silence)
    }

    /// The silences active at `now`, by id.
    pub fn active(&self, now: DateTime<Utc>) -> Vec<&Silence> {
        self.iter().filter(|s| s.is_active(now)).collect()
    }

    /// Every silence, by id.
    pub fn iter(&self) -> impl Iterator<Item = &Silence> {
        self.by_id.values().map(|e| &e.silence)
    }

    /// Drops silences that ended before `cutoff` (retention); returns their ids.
    pub fn prune(&mut self, cutoff: DateTime<Utc>) -> Vec<String> {
        let gone: Vec<String> = self
            .by_id
            .values()
            .filter(|e| e.silence.ends_at < cutoff)
            .map(|e| e.silence.id.clone())
            .collect();
        for id in &gone {
            self.by_id.remove(id);
        }
        gone
    }

    /// Each silence as (id, JSON), by id: what the database stores.
    pub fn to_values(&self) -> Vec<(String, Value)> {
        self.iter()
            .map(|s| {
                let v = serde_json::to_value(s).expect("a silence always serializes");
                (s.id.clone(), v)
            })
            .collect()
    }

    /// The set back from stored (id, JSON) pairs. A row that does not decode, does not validate,
    /// or whose JSON id differs from its key is left out and reported (`silences[<id>]: ...`), so
    /// one bad row does not drop the others.
    pub fn from_values(
        values: impl IntoIterator<Item = (String, Value)>,
    ) -> (Silences, Vec<String>) {
        let mut set = Silences::new();
        let mut problems = Vec::new();
        for (id, v) in values {
            let path = format!("silences[{id:?}]");
            let s: Silence = match serde_json::from_value(v) {
                Ok(s) => s,
                Err(e) => {
                    problems.push(format!("{path}: {e}"));
                    continue;
                }
            };
            if s.id != id {
                problems.push(format!(
                    "{path}.id: stored under {id:?} but says {:?}",
                    s.id
                ));
                continue;
            }
            let mut p = Vec::new();
            let matchers = s.check(&path, false, &mut p);
            if p.is_empty() {
                set.by_id.insert(
                    id,
                    Entry {
                        silence: s,
                        matchers,
                    },
                );
            }
            problems.extend(p);
        }
        (set, problems)
    }
}

/// RFC 3339 times: written with `Z` and only the fractional digits needed, read from a string or
/// a TOML datetime.
pub(crate) mod time {
    use chrono::{DateTime, SecondsFormat, Utc};
    use serde::de::{self, MapAccess, Visitor};
    use serde::{Deserializer, Serializer};
    use std::fmt;

    pub fn format(t: &DateTime<Utc>) -> String {
        t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
    }

    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format(t))
    }

    fn parse<E: de::Error>(v: &str) -> Result<DateTime<Utc>, E> {
        DateTime::parse_from_rfc3339(v)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|_| {
                E::custom(format!(
                    "invalid time {v:?}: use RFC 3339 with an offset, e.g. 2026-08-01T00:00:00Z"
                ))
            })
    }

    struct V;

    impl<'de> Visitor<'de> for V {
        type Value = DateTime<Utc>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an RFC 3339 time with an offset")
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            parse(v)
        }

        /// A TOML datetime reaches serde as a one-entry map holding its text.
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let (_, text): (String, String) = map
                .next_entry()?
                .ok_or_else(|| de::Error::custom("expected an RFC 3339 time"))?;
            parse(&text)
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
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
}
