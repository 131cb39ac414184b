//! Rule settings: each detector that has numbers owns a `Settings` type in its own file, read from
//! its own table `[detect.rules.RULE-ID]` (the rule id, as in `[detect.allow.RULE-ID]`).
//!
//! The config collects the rule tables generically ([`RuleTables`]): it keeps no field per rule, so
//! adding a detector touches its file and its registry line, not `config.rs`. Each registry entry
//! says how to read its table ([`Detector::settings`](crate::Detector::settings) returns a
//! [`SettingsKind`]); the tables are read once, when the config is read, into typed values that the
//! detectors and the state look up by type ([`crate::DetectConfig::rule`]). A table of an unknown
//! rule, or of a rule without settings, an unknown key or a bad value are problems of the config,
//! every one listed at once with its key path.

use std::any::{Any, TypeId};
use std::collections::BTreeMap;
use std::fmt::Debug;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde::Serialize;
use serde::de::DeserializeOwned;

/// A detector's settings: the type of its `[detect.rules.RULE-ID]` table. Deserialised with
/// `#[serde(deny_unknown_fields, default)]`, defaults as documented on each field.
pub trait RuleSettings:
    DeserializeOwned + Serialize + Default + Clone + PartialEq + Debug + Send + Sync + 'static
{
    /// Each key with what it means (one line), in the order `entrawatch rules ID` shows them.
    const KEYS: &'static [(&'static str, &'static str)];

    /// Where these settings sit in a [`RuleTables`]: write `crate::settings_slot!();` in the impl.
    fn slot() -> &'static Slot;

    /// Every problem of these values, each starting with `path` and the key
    /// (`detect.rules.brute-force.min_failures: must be greater than zero`).
    fn validate(&self, path: &str) -> Vec<String>;
}

/// The problems of `values` that are not greater than zero (NaN included), each as
/// `{path}.{key}: must be greater than zero`: the check most settings make of their numbers.
pub fn greater_than_zero(path: &str, values: &[(&str, f64)]) -> Vec<String> {
    values
        .iter()
        .filter(|(_, v)| v.is_nan() || *v <= 0.0)
        .map(|(key, _)| format!("{path}.{key}: must be greater than zero"))
        .collect()
}

/// Where a settings type sits in every [`RuleTables`] (each holds the registry's rules in one
/// order): found by a scan the first time, then read, so the lookup a detector makes on every event
/// costs an index and one type check. A wrong or unset place only sends the lookup to the scan.
#[derive(Debug)]
pub struct Slot(AtomicUsize);

impl Slot {
    pub const fn new() -> Slot {
        Slot(AtomicUsize::new(usize::MAX))
    }
}

impl Default for Slot {
    fn default() -> Self {
        Slot::new()
    }
}

/// The [`RuleSettings::slot`] of a settings type: one line in its `impl RuleSettings`.
#[macro_export]
macro_rules! settings_slot {
    () => {
        fn slot() -> &'static $crate::settings::Slot {
            static SLOT: $crate::settings::Slot = $crate::settings::Slot::new();
            &SLOT
        }
    };
}

/// What the registry knows of a rule's settings type, without naming it: how to read its table,
/// and its defaults for the documentation.
pub trait SettingsKind: Sync {
    /// The typed settings from the rule's table (`None`: the table is absent, every default), or
    /// the problem that stopped serde, with its key path under `path` (the values' own checks are
    /// [`AnySettings::check`]).
    fn read(
        &self,
        table: Option<&serde_json::Value>,
        path: &str,
    ) -> Result<Box<dyn AnySettings>, String>;

    /// Every default, for a table that did not read (its problem is reported).
    fn defaults(&self) -> Box<dyn AnySettings>;

    /// The table with every key at its default, as TOML lines with each key's meaning.
    fn defaults_toml(&self, path: &str) -> String;
}

/// [`SettingsKind`] of `S`: a detector returns `Some(&Of::<Settings>(PhantomData))`.
#[derive(Debug)]
pub struct Of<S>(pub PhantomData<S>);

impl<S: RuleSettings> SettingsKind for Of<S> {
    fn read(
        &self,
        table: Option<&serde_json::Value>,
        path: &str,
    ) -> Result<Box<dyn AnySettings>, String> {
        let settings: S = match table {
            None => S::default(),
            Some(value) => {
                let mut track = serde_path_to_error::Track::new();
                S::deserialize(serde_path_to_error::Deserializer::new(value, &mut track))
                    .map_err(|e| problem(path, &track.path(), &e.to_string()))?
            }
        };
        Ok(Box::new(settings))
    }

    fn defaults(&self) -> Box<dyn AnySettings> {
        Box::new(S::default())
    }

    fn defaults_toml(&self, path: &str) -> String {
        let defaults = serde_json::to_value(S::default()).unwrap_or_default();
        let mut out = format!("[{path}]\n");
        for (key, meaning) in S::KEYS {
            let value = defaults.get(key).map(toml_value).unwrap_or_default();
            out.push_str(&format!("{key} = {value}    # {meaning}\n"));
        }
        out
    }
}

/// A JSON scalar or array as a TOML value (numbers, strings, booleans and arrays of them read the
/// same in both).
pub(crate) fn toml_value(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Array(items) => {
            let items: Vec<String> = items.iter().map(toml_value).collect();
            format!("[{}]", items.join(", "))
        }
        other => other.to_string(),
    }
}

/// `path`, then the keys `at` goes down, then serde's message.
fn problem(path: &str, at: &serde_path_to_error::Path, message: &str) -> String {
    use serde_path_to_error::Segment;
    let mut full = path.to_owned();
    for segment in at.iter() {
        match segment {
            Segment::Seq { index } => full.push_str(&format!("[{index}]")),
            Segment::Map { key } | Segment::Enum { variant: key } => {
                full.push('.');
                full.push_str(key);
            }
            Segment::Unknown => full.push_str(".?"),
        }
    }
    format!("{full}: {message}")
}

/// Typed settings behind a trait object: compared, cloned and printed without their type.
pub trait AnySettings: Any + Send + Sync + Debug {
    fn as_any(&self) -> &dyn Any;
    fn as_any_mut(&mut self) -> &mut dyn Any;
    fn same(&self, other: &dyn AnySettings) -> bool;
    fn boxed(&self) -> Box<dyn AnySettings>;
    /// [`RuleSettings::validate`].
    fn check(&self, path: &str) -> Vec<String>;
    /// The values, as the table that would set them.
    fn to_json(&self) -> serde_json::Value;
}

impl<S: RuleSettings> AnySettings for S {
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
    fn same(&self, other: &dyn AnySettings) -> bool {
        other.as_any().downcast_ref::<S>() == Some(self)
    }
    fn boxed(&self) -> Box<dyn AnySettings> {
        Box::new(self.clone())
    }
    fn check(&self, path: &str) -> Vec<String> {
        self.validate(path)
    }
    fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_default()
    }
}

/// The rule tables of `[detect.rules]`, read: for each registered rule with settings, its typed
/// settings (defaults when its table is absent); the problems found reading them are kept for
/// [`crate::DetectConfig::validate`].
#[derive(Debug)]
pub struct RuleTables {
    /// By type, with the rule id: a handful of entries, scanned.
    typed: Vec<(TypeId, &'static str, Box<dyn AnySettings>)>,
    problems: Vec<String>,
}

impl RuleTables {
    /// Reads `tables` (rule id to its table) with the registry's settings types.
    pub fn read(tables: &BTreeMap<String, serde_json::Value>) -> RuleTables {
        let all = crate::registry::all();
        let mut typed = Vec::new();
        let mut problems = Vec::new();
        for d in &all {
            let Some(kind) = d.settings() else { continue };
            let path = format!("detect.rules.{}", d.id());
            let settings = kind.read(tables.get(d.id()), &path).unwrap_or_else(|p| {
                problems.push(p);
                kind.defaults()
            });
            typed.push((settings.as_any().type_id(), d.id(), settings));
        }
        let with: Vec<&str> = all
            .iter()
            .filter(|d| d.settings().is_some())
            .map(|d| d.id())
            .collect();
        for id in tables.keys() {
            if with.contains(&id.as_str()) {
                continue;
            }
            let why = if all.iter().any(|d| d.id() == id) {
                "this rule has no settings"
            } else {
                "unknown rule"
            };
            problems.push(format!(
                "detect.rules.{id}: {why}; rules with settings: {}",
                with.join(", ")
            ));
        }
        RuleTables { typed, problems }
    }

    /// The settings of type `S`, its rule's.
    ///
    /// # Panics
    /// When no registered rule has settings of type `S` (a detector's `settings()` not naming its
    /// own type): a programming error every test of that detector meets.
    #[inline]
    pub fn get<S: RuleSettings>(&self) -> &S {
        let slot = S::slot().0.load(Ordering::Relaxed);
        if let Some((_, _, settings)) = self.typed.get(slot) {
            let settings: &dyn Any = settings.as_ref();
            if let Some(s) = settings.downcast_ref::<S>() {
                return s;
            }
        }
        self.find::<S>()
    }

    /// [`RuleTables::get`] the first time for `S`: its place is found and kept in its [`Slot`].
    ///
    /// # Panics
    /// As [`RuleTables::get`].
    #[cold]
    fn find<S: RuleSettings>(&self) -> &S {
        self.place::<S>()
            .and_then(|i| {
                S::slot().0.store(i, Ordering::Relaxed);
                let settings: &dyn Any = self.typed[i].2.as_ref();
                settings.downcast_ref::<S>()
            })
            .unwrap_or_else(|| {
                panic!(
                    "no registered rule has settings {}",
                    std::any::type_name::<S>()
                )
            })
    }

    /// The settings of type `S`, to change (tests and tools that build a config in code); checked
    /// by [`RuleTables::validate`] like settings read from a file.
    pub fn get_mut<S: RuleSettings>(&mut self) -> &mut S {
        self.place::<S>()
            .and_then(|i| self.typed[i].2.as_any_mut().downcast_mut::<S>())
            .unwrap_or_else(|| {
                panic!(
                    "no registered rule has settings {}",
                    std::any::type_name::<S>()
                )
            })
    }

    /// Where the settings of type `S` are in `typed`.
    fn place<S: RuleSettings>(&self) -> Option<usize> {
        let want = TypeId::of::<S>();
        self.typed.iter().position(|(t, _, _)| *t == want)
    }

    /// Every problem: those found reading the tables, then each rule's own checks of its values.
    pub fn validate(&self) -> Vec<String> {
        let mut problems = self.problems.clone();
        for (_, id, settings) in &self.typed {
            problems.extend(settings.check(&format!("detect.rules.{id}")));
        }
        problems
    }

    /// The rules with settings, in catalogue order, with their settings.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &dyn AnySettings)> {
        self.typed.iter().map(|(_, id, s)| (*id, s.as_ref()))
    }
}

impl Default for RuleTables {
    fn default() -> Self {
        RuleTables::read(&BTreeMap::new())
    }
}

impl Clone for RuleTables {
    fn clone(&self) -> Self {
        RuleTables {
            typed: (self.typed.iter())
                .map(|(t, id, s)| (*t, *id, s.boxed()))
                .collect(),
            problems: self.problems.clone(),
        }
    }
}

impl PartialEq for RuleTables {
    fn eq(&self, other: &Self) -> bool {
        self.problems == other.problems
            && self.typed.len() == other.typed.len()
            && self.typed.iter().all(|(t, _, s)| {
                other
                    .typed
                    .iter()
                    .any(|(u, _, o)| t == u && s.same(o.as_ref()))
            })
    }
}

impl<'de> serde::Deserialize<'de> for RuleTables {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let tables = BTreeMap::<String, serde_json::Value>::deserialize(d)?;
        Ok(RuleTables::read(&tables))
    }
}

#[cfg(test)]
mod tests {
    use crate::DetectConfig;
    use crate::detectors::{brute_force, log_source_silent, password_spray};

    #[test]
    fn each_config_answers_with_its_own_settings_however_lookups_interleave() {
        let read = |v: serde_json::Value| -> DetectConfig { serde_json::from_value(v).unwrap() };
        let a = read(serde_json::json!({"rules": {"brute-force": {"min_failures": 4}}}));
        let b = read(serde_json::json!({"rules": {
            "brute-force": {"min_failures": 7},
            "password-spray": {"min_users": 3}
        }}));
        let mut c = DetectConfig::default();
        c.rule_mut::<log_source_silent::Settings>().max_hours = 200;
        for _ in 0..3 {
            assert_eq!(a.rule::<brute_force::Settings>().min_failures, 4);
            assert_eq!(b.rule::<brute_force::Settings>().min_failures, 7);
            assert_eq!(c.rule::<brute_force::Settings>().min_failures, 10);
            assert_eq!(a.rule::<password_spray::Settings>().min_users, 10);
            assert_eq!(b.rule::<password_spray::Settings>().min_users, 3);
            assert_eq!(c.rule::<log_source_silent::Settings>().max_hours, 200);
            assert_eq!(a.rule::<log_source_silent::Settings>().max_hours, 168);
        }
        // Equal configs compare equal; one differing value does not.
        assert_eq!(a.clone(), a);
        assert_ne!(a, b);
        assert_ne!(c, DetectConfig::default());
    }
}
