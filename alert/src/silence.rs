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
#[path = "silence_tests.rs"]
mod tests;
