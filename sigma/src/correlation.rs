//! Sigma v2 correlation rules: `event_count`, `value_count`, `temporal` and `temporal_ordered`
//! over the detection rules they name, grouped by fields, within a timespan of event time.
//!
//! A correlation is parsed here ([`parse`]), resolved against the loaded detection rules by the
//! loader, and evaluated by the [`crate::SigmaSet`] with its windows in the engine's
//! [`ExtraState`], so a restart resumes them from the snapshot (docs/sigma.md, "Correlation
//! rules").
//!
//! Firing: the condition is checked when an event of the group arrives; when it holds, the
//! correlation fires once and the group's window starts again empty, so each event is evidence
//! in at most one firing of a correlation.

use std::collections::{BTreeMap, VecDeque};

use entrawatch_detect::ExtraState;
use entrawatch_detect::extra::{Member, Window};
use yaml_serde::Value as Yaml;

use crate::Entry;
use crate::fields::{Field, V, resolve};
use crate::rule::{Meta, Refusal, Rule, get, str_of};

/// Bounds: events kept per group window, groups per correlation, rules per correlation, the
/// longest timespan (the engine's state covers 30 days).
pub const MAX_WINDOW_EVENTS: usize = 10_000;
pub const MAX_GROUPS: usize = 100_000;
pub const MAX_RULES: usize = 64;
pub const MAX_TIMESPAN: i64 = 30 * 86_400;
/// Event ids named in a finding (the true count is given beside them).
pub const MAX_EVIDENCE: usize = 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    EventCount,
    ValueCount,
    Temporal,
    TemporalOrdered,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::EventCount => "event_count",
            Kind::ValueCount => "value_count",
            Kind::Temporal => "temporal",
            Kind::TemporalOrdered => "temporal_ordered",
        }
    }
}

/// A correlation rule as written, before its rule references are resolved.
#[derive(Debug, Clone)]
pub struct Spec {
    pub meta: Meta,
    pub kind: Kind,
    /// The referenced rules, by id or name, in the order written.
    pub rules: Vec<String>,
    pub group_by: Vec<String>,
    /// Seconds.
    pub timespan: i64,
    /// As written (`10m`).
    pub timespan_text: String,
    /// The count (events, distinct values, distinct rules) at which the correlation fires.
    pub threshold: u64,
    /// value_count: the field whose distinct values are counted.
    pub field: Option<String>,
    /// Alias name → (rule id or name → field name).
    pub aliases: BTreeMap<String, BTreeMap<String, String>>,
    /// `generate: true`: the referenced rules keep their own alerts.
    pub generate: bool,
}

/// Whether a YAML document is a correlation rule.
pub fn is_correlation(doc: &Yaml) -> bool {
    get(doc, "correlation").is_some()
}

fn timespan(s: &str) -> Option<i64> {
    let s = s.trim();
    let unit = s.chars().last()?;
    let n: i64 = s[..s.len() - unit.len_utf8()].parse().ok()?;
    let mult = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        _ => return None,
    };
    (n > 0).then(|| n.saturating_mul(mult))
}

fn list(y: Option<&Yaml>) -> Vec<String> {
    match y {
        Some(Yaml::Sequence(s)) => s.iter().filter_map(str_of).collect(),
        Some(other) => str_of(other).into_iter().collect(),
        None => Vec::new(),
    }
}

/// Reads a correlation document.
pub fn parse(doc: &Yaml) -> (Meta, Result<Spec, Refusal>) {
    let meta = crate::rule::meta(doc);
    let spec = parse_spec(doc, &meta);
    (meta, spec)
}

fn parse_spec(doc: &Yaml, meta: &Meta) -> Result<Spec, Refusal> {
    let bad = |m: &str| Refusal::Parse(m.to_owned());
    if meta.id.is_empty() {
        return Err(bad("no `id`"));
    }
    if meta.title.is_empty() {
        return Err(bad("no `title`"));
    }
    let c = get(doc, "correlation")
        .filter(|c| c.is_mapping())
        .ok_or_else(|| bad("`correlation` is not a map"))?;
    let kind_text = get(c, "type").and_then(str_of).unwrap_or_default();
    let kind = match kind_text.as_str() {
        "event_count" => Kind::EventCount,
        "value_count" => Kind::ValueCount,
        "temporal" => Kind::Temporal,
        "temporal_ordered" => Kind::TemporalOrdered,
        "value_sum" | "value_avg" | "value_percentile" | "value_median" => {
            return Err(Refusal::Unsupported(format!(
                "correlation type `{kind_text}`"
            )));
        }
        "" => return Err(bad("no `correlation.type`")),
        other => return Err(bad(&format!("unknown correlation type `{other}`"))),
    };
    let rules = list(get(c, "rules"));
    if rules.is_empty() {
        return Err(bad("no `correlation.rules`"));
    }
    if rules.len() > MAX_RULES {
        return Err(bad(&format!("more than {MAX_RULES} rules")));
    }
    let group_by = list(get(c, "group-by"));
    let span_text = get(c, "timespan")
        .or_else(|| get(c, "timeframe"))
        .and_then(str_of)
        .ok_or_else(|| bad("no `correlation.timespan`"))?;
    let span = timespan(&span_text).ok_or_else(|| {
        bad(&format!(
            "timespan `{span_text}` is not a number and s, m, h or d"
        ))
    })?;
    if span > MAX_TIMESPAN {
        return Err(Refusal::Unsupported(format!(
            "timespan `{span_text}` is longer than the engine's 30 days of state"
        )));
    }
    let mut aliases = BTreeMap::new();
    if let Some(a) = get(c, "aliases") {
        let map = a
            .as_mapping()
            .ok_or_else(|| bad("`aliases` is not a map"))?;
        for (k, v) in map {
            let name = k.as_str().ok_or_else(|| bad("an alias that is not text"))?;
            let per_rule = v
                .as_mapping()
                .ok_or_else(|| bad(&format!("alias `{name}` is not a map")))?;
            let mut m = BTreeMap::new();
            for (r, f) in per_rule {
                let (Some(r), Some(f)) = (str_of(r), str_of(f)) else {
                    return Err(bad(&format!("alias `{name}`: rule and field must be text")));
                };
                m.insert(r, f);
            }
            aliases.insert(name.to_owned(), m);
        }
    }
    let mut field = None;
    let mut lower: Option<u64> = None;
    let mut has_upper = false;
    match get(c, "condition") {
        Some(Yaml::Mapping(m)) => {
            for (k, v) in m {
                let key = k.as_str().unwrap_or_default();
                if key == "field" {
                    field = str_of(v);
                    continue;
                }
                let n = v
                    .as_u64()
                    .ok_or_else(|| bad(&format!("condition `{key}` wants a whole number")))?;
                match key {
                    "gt" => lower = Some(n + 1),
                    "gte" | "eq" => lower = Some(n),
                    "lt" | "lte" => has_upper = true,
                    other => return Err(bad(&format!("unknown condition `{other}`"))),
                }
            }
        }
        Some(_) => return Err(bad("`condition` is not a map")),
        None => {}
    }
    if has_upper {
        return Err(Refusal::Unsupported(
            "conditions with `lt` / `lte`: an upper bound needs the window to close, and correlations fire as events arrive".into(),
        ));
    }
    let threshold = match kind {
        Kind::EventCount | Kind::ValueCount => {
            lower.ok_or_else(|| bad("no `condition` (gt, gte or eq)"))?
        }
        Kind::Temporal => lower.unwrap_or(rules.len() as u64),
        Kind::TemporalOrdered => {
            if lower.is_some_and(|n| n != rules.len() as u64) {
                return Err(Refusal::Unsupported(
                    "temporal_ordered with a condition other than all its rules".into(),
                ));
            }
            rules.len() as u64
        }
    };
    if threshold == 0 {
        return Err(bad("a condition met by no events"));
    }
    if threshold > MAX_WINDOW_EVENTS as u64 {
        return Err(Refusal::Unsupported(format!(
            "a threshold above {MAX_WINDOW_EVENTS} events"
        )));
    }
    if matches!(kind, Kind::Temporal) && threshold > rules.len() as u64 {
        return Err(bad(
            "temporal: the condition asks for more rules than it names",
        ));
    }
    if kind == Kind::ValueCount && field.is_none() {
        return Err(bad("value_count without `condition.field`"));
    }
    let truthy = |y: Option<&Yaml>| y.and_then(Yaml::as_bool).unwrap_or(false);
    Ok(Spec {
        meta: meta.clone(),
        kind,
        rules,
        group_by,
        timespan: span,
        timespan_text: span_text,
        threshold,
        field,
        aliases,
        generate: truthy(get(doc, "generate")) || truthy(get(c, "generate")),
    })
}

impl Spec {
    /// The field name a group-by (or counted) name stands for in the events of a referenced
    /// rule: its alias for that rule (by id or name) when one is defined, else the name itself.
    pub fn field_for<'a>(&'a self, name: &'a str, rule: &Meta) -> &'a str {
        self.aliases
            .get(name)
            .and_then(|m| {
                m.iter()
                    .find(|(r, _)| **r == rule.id || (!rule.name.is_empty() && **r == rule.name))
            })
            .map_or(name, |(_, f)| f.as_str())
    }
}

/// A correlation whose references are resolved: the referenced rules run, and every group-by
/// (and counted) field is one the events of each referenced rule carry.
#[derive(Debug)]
pub struct Compiled {
    pub spec: Spec,
    /// Per referenced rule (in the order written): its Sigma id.
    pub rule_ids: Vec<String>,
    pub group: Vec<Vec<Field>>,
    pub value: Vec<Option<Field>>,
}

/// Resolves a correlation's references against the rules that run (`rules`), reporting through
/// `entries` why a referenced rule does not.
/// `correlations` are the (id, name) of every correlation rule read.
pub fn compile(
    spec: Spec,
    rules: &[Rule],
    entries: &[Entry],
    correlations: &[(String, String)],
) -> Result<Compiled, Refusal> {
    let named = |m: &str, id: &str, name: &str| id == m || (!name.is_empty() && name == m);
    let mut rule_ids = Vec::new();
    let mut group = Vec::new();
    let mut value = Vec::new();
    let mut unknown = Vec::new();
    for r in &spec.rules {
        let Some(rule) = rules.iter().find(|x| named(r, &x.meta.id, &x.meta.name)) else {
            if correlations.iter().any(|(id, name)| named(r, id, name)) {
                return Err(Refusal::Unsupported(format!(
                    "refers to `{r}`, a correlation rule (chained correlations are not evaluated)"
                )));
            }
            return Err(match entries.iter().find(|e| named(r, &e.id, &e.name)) {
                Some(e) => Refusal::Unsupported(format!(
                    "refers to `{r}`, which does not run ({})",
                    e.status.label()
                )),
                None => Refusal::Parse(format!("refers to `{r}`, which is not loaded")),
            });
        };
        if rule_ids.contains(&rule.meta.id) {
            return Err(Refusal::Parse(format!("names `{r}` twice")));
        }
        let mut read = |name: &str| {
            let field = spec.field_for(name, &rule.meta);
            let found = resolve(rule.log, field);
            if found.is_none() {
                unknown.push(format!("{field} ({})", rule.log.as_str()));
            }
            found
        };
        group.push(spec.group_by.iter().filter_map(|g| read(g)).collect());
        value.push(spec.field.as_deref().and_then(&mut read));
        rule_ids.push(rule.meta.id.clone());
    }
    if !unknown.is_empty() {
        unknown.dedup();
        return Err(Refusal::UnknownField(unknown));
    }
    Ok(Compiled {
        spec,
        rule_ids,
        group,
        value,
    })
}

/// A correlation ready to run (built by [`crate::SigmaSet`] from a [`Compiled`]).
#[derive(Debug)]
pub struct Runnable {
    pub spec: Spec,
    /// `sigma:<id>`.
    pub id: &'static str,
    pub severity: entrawatch_detect::Severity,
    pub mitre: &'static [&'static str],
    /// Per referenced rule: the group-by fields read from its events.
    pub group: Vec<Vec<Field>>,
    /// Per referenced rule: the counted field (value_count).
    pub value: Vec<Option<Field>>,
    /// Per referenced rule: its Sigma id (evidence).
    pub rule_ids: Vec<String>,
}

/// The first value of a field as text (lower case, for grouping and counting); `None` when the
/// event does not carry it.
pub fn first_text(field: &Field, event: &entrawatch_ingest::Event) -> Option<String> {
    let mut found = None;
    field.visit(event, &mut |v| {
        found = match v {
            V::Null => None,
            V::Str("") => None,
            V::Str(s) => Some(s.to_ascii_lowercase()),
            V::Int(n) => Some(n.to_string()),
            V::Bool(b) => Some(b.to_string()),
            V::Float(f) => Some(f.to_string()),
        };
        found.is_some()
    });
    found
}

/// What a firing reports.
#[derive(Debug)]
pub struct Fired {
    pub count: u64,
    pub members: Vec<Member>,
}

impl Runnable {
    /// Records one event the referenced rules `bits` matched, in the group `key`, and says
    /// whether the correlation fires (then the group's window is emptied).
    pub fn record(
        &self,
        state: &mut ExtraState,
        key: &str,
        member: Member,
        now: i64,
    ) -> Option<Fired> {
        if !state.windows.contains_key(self.id) {
            state.windows.insert(self.id.to_owned(), BTreeMap::new());
        }
        let groups = state.windows.get_mut(self.id)?;
        if !groups.contains_key(key) {
            if groups.len() >= MAX_GROUPS {
                state.dropped += 1;
                return None;
            }
            groups.insert(key.to_owned(), Window::default());
        }
        let window = groups.get_mut(key)?;
        let oldest = now - self.spec.timespan;
        while window.members.front().is_some_and(|m| m.time < oldest) {
            window.members.pop_front();
        }
        match self.spec.kind {
            // Only the latest event of each value (of each rule) matters for a distinct count.
            Kind::ValueCount => window.members.retain(|m| m.value != member.value),
            Kind::Temporal => window.members.retain(|m| m.rules & !member.rules != 0),
            Kind::EventCount | Kind::TemporalOrdered => {}
        }
        if window.members.len() >= MAX_WINDOW_EVENTS {
            window.members.pop_front();
            state.dropped += 1;
        }
        window.members.push_back(member);
        let count = self.count(&window.members);
        if count < self.spec.threshold {
            return None;
        }
        let members: Vec<Member> = std::mem::take(&mut window.members).into();
        groups.remove(key);
        Some(Fired { count, members })
    }

    fn count(&self, members: &VecDeque<Member>) -> u64 {
        match self.spec.kind {
            Kind::EventCount | Kind::ValueCount => members.len() as u64,
            Kind::Temporal => {
                let all = members.iter().fold(0u64, |acc, m| acc | m.rules);
                u64::from(all.count_ones())
            }
            Kind::TemporalOrdered => {
                // The rules in the order written, each matched by a later event than the one
                // before: the earliest match of each step is the best choice for the next.
                let mut next = 0usize;
                // One event counts for one step.
                for m in members {
                    if next < self.spec.rules.len() && m.rules & (1 << next) != 0 {
                        next += 1;
                    }
                }
                next as u64
            }
        }
    }

    /// Drops what is older than the timespan at `now` from every group (and empty groups).
    pub fn sweep(&self, groups: &mut BTreeMap<String, Window>, now: i64) {
        let oldest = now - self.spec.timespan;
        groups.retain(|_, w| {
            while w.members.front().is_some_and(|m| m.time < oldest) {
                w.members.pop_front();
            }
            !w.members.is_empty()
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(text: &str) -> Result<Spec, Refusal> {
        let doc: Yaml = yaml_serde::from_str(text).unwrap();
        parse(&doc).1
    }

    #[test]
    fn timespans_and_conditions_read_as_the_specification_writes_them() {
        assert_eq!(timespan("90m"), Some(5400));
        assert_eq!(timespan("1d"), Some(86_400));
        assert_eq!(timespan("10"), None);
        assert_eq!(timespan("0s"), None);
        let s = spec("title: t\nid: c\ncorrelation:\n  type: event_count\n  rules: [a]\n  group-by: [userPrincipalName]\n  timespan: 10m\n  condition:\n    gt: 4\n").unwrap();
        assert_eq!(
            (s.kind, s.threshold, s.timespan),
            (Kind::EventCount, 5, 600)
        );
        let s = spec(
            "title: t\nid: c\ncorrelation:\n  type: temporal\n  rules: [a, b]\n  timespan: 1h\n",
        )
        .unwrap();
        assert_eq!(s.threshold, 2);
        assert!(!s.generate);
        let e = spec("title: t\nid: c\ncorrelation:\n  type: value_sum\n  rules: [a]\n  timespan: 1h\n  condition:\n    gt: 4\n").unwrap_err();
        assert!(matches!(e, Refusal::Unsupported(_)), "{e:?}");
        let e = spec("title: t\nid: c\ncorrelation:\n  type: event_count\n  rules: [a]\n  timespan: 1h\n  condition:\n    lt: 4\n").unwrap_err();
        assert!(matches!(e, Refusal::Unsupported(_)), "{e:?}");
        let e = spec("title: t\nid: c\ncorrelation:\n  type: value_count\n  rules: [a]\n  timespan: 1h\n  condition:\n    gt: 4\n").unwrap_err();
        assert!(matches!(e, Refusal::Parse(_)), "{e:?}");
        let e = spec("title: t\nid: c\ncorrelation:\n  type: event_count\n  rules: [a]\n  timespan: 31d\n  condition:\n    gt: 4\n").unwrap_err();
        assert!(matches!(e, Refusal::Unsupported(_)), "{e:?}");
    }
}
