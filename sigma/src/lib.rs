//! entrawatch sigma: runs Sigma rules for Entra sign-in, audit and risk detection logs on the event
//! stream, beside the native detectors (docs/sigma.md).
//!
//! Rules are loaded from folders ([`load`]), each one compiled against the field presentation of
//! the typed event model ([`fields`]); what cannot run is reported with the reason
//! ([`Status`]). The rules that run form a [`SigmaSet`], which the detection engine calls after
//! its native detectors ([`entrawatch_detect::ExtraRules`]); a match is a
//! [`entrawatch_detect::Finding`] with rule id `sigma:<rule id>`. Correlation rules (Sigma v2,
//! [`correlation`]) join the matches of the rules they name over event time, their windows kept
//! in the engine's [`entrawatch_detect::ExtraState`] (and so in its snapshot).

pub mod correlation;
pub mod fields;
pub mod rule;

use std::collections::{BTreeSet, HashSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use entrawatch_detect::extra::Member;
use entrawatch_detect::{ExtraRules, ExtraState, Finding, Principal, PrincipalKind, Severity};
use entrawatch_ingest::{Body, Event};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::fields::{Log, Origin, V};
use crate::rule::{Refusal, Rule};

/// Bounds on the rule folders: a walk stops (and says so) past them.
pub const MAX_FILE_BYTES: u64 = 256 * 1024;
pub const MAX_FILES: usize = 5_000;
pub const MAX_DEPTH: usize = 12;

/// The `[sigma]` section of the config (and `--sigma DIR` on the command line).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SigmaConfig {
    /// Rule folders (recursive, `.yml` / `.yaml`) or single rule files.
    #[serde(default)]
    pub paths: Vec<PathBuf>,
    /// When set, only these rule ids / tags / statuses / levels run.
    #[serde(default)]
    pub include_ids: Vec<String>,
    #[serde(default)]
    pub exclude_ids: Vec<String>,
    #[serde(default)]
    pub include_tags: Vec<String>,
    #[serde(default)]
    pub exclude_tags: Vec<String>,
    #[serde(default)]
    pub statuses: Vec<String>,
    #[serde(default)]
    pub levels: Vec<String>,
}

const STATUSES: &[&str] = &[
    "stable",
    "test",
    "experimental",
    "deprecated",
    "unsupported",
];
const LEVELS: &[&str] = &["informational", "low", "medium", "high", "critical"];

impl SigmaConfig {
    /// Every problem of the section, each naming its key.
    pub fn validate(&self) -> Vec<String> {
        let mut problems = Vec::new();
        for (i, p) in self.paths.iter().enumerate() {
            if p.as_os_str().is_empty() {
                problems.push(format!("sigma.paths[{i}]: empty path"));
            }
        }
        for s in &self.statuses {
            if !STATUSES.contains(&s.to_ascii_lowercase().as_str()) {
                problems.push(format!(
                    "sigma.statuses: unknown status {s:?} (known: {})",
                    STATUSES.join(", ")
                ));
            }
        }
        for l in &self.levels {
            if !LEVELS.contains(&l.to_ascii_lowercase().as_str()) {
                problems.push(format!(
                    "sigma.levels: unknown level {l:?} (known: {})",
                    LEVELS.join(", ")
                ));
            }
        }
        problems
    }

    fn excludes(&self, meta: &rule::Meta) -> Option<&'static str> {
        let has = |list: &[String], v: &str| list.iter().any(|x| x.eq_ignore_ascii_case(v));
        let any_tag = |list: &[String]| meta.tags.iter().any(|t| has(list, t));
        if has(&self.exclude_ids, &meta.id) {
            return Some("id excluded");
        }
        if any_tag(&self.exclude_tags) {
            return Some("tag excluded");
        }
        if !self.include_ids.is_empty() && !has(&self.include_ids, &meta.id) {
            return Some("id not included");
        }
        if !self.include_tags.is_empty() && !any_tag(&self.include_tags) {
            return Some("no included tag");
        }
        if !self.statuses.is_empty() && !has(&self.statuses, &meta.status) {
            return Some("status not selected");
        }
        if !self.levels.is_empty() && !has(&self.levels, &meta.level) {
            return Some("level not selected");
        }
        None
    }
}

/// SigmaHQ rules that read correctly but cannot match any single Entra record, with the reason:
/// reported as unsupported rather than run and never fire.
pub const NOT_ONE_RECORD: &[(&str, &str)] = &[(
    "f7b5b004-dece-46e4-a4a5-f6fd0e1c6947",
    "wants one audit record to be both `Add user` and `Add member to role`: two records, a correlation",
)];

/// What `sigma check` says of one rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// Runs; every field name is an Event Hub name.
    Native,
    /// Runs; some field names are Log Analytics or flat Graph aliases.
    Aliased,
    UnknownField(Vec<String>),
    Placeholder(Vec<String>),
    UnsupportedLogsource(String),
    Unsupported(String),
    ParseError(String),
    /// Left out by the config's include/exclude filters.
    Excluded(&'static str),
    /// A correlation rule whose referenced rules all run: it runs.
    Correlation,
}

impl Status {
    pub fn label(&self) -> &'static str {
        match self {
            Status::Native => "native",
            Status::Aliased => "aliased",
            Status::UnknownField(_) => "unknown field",
            Status::Placeholder(_) => "placeholder",
            Status::UnsupportedLogsource(_) => "unsupported logsource",
            Status::Unsupported(_) => "unsupported",
            Status::ParseError(_) => "parse error",
            Status::Excluded(_) => "excluded",
            Status::Correlation => "correlation",
        }
    }

    pub fn runs(&self) -> bool {
        matches!(self, Status::Native | Status::Aliased | Status::Correlation)
    }

    fn detail(&self) -> String {
        match self {
            Status::Native | Status::Aliased | Status::Correlation => String::new(),
            Status::UnknownField(v) | Status::Placeholder(v) => v.join(", "),
            Status::UnsupportedLogsource(s) | Status::Unsupported(s) | Status::ParseError(s) => {
                s.clone()
            }
            Status::Excluded(s) => (*s).to_owned(),
        }
    }
}

/// One rule file and what became of it.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The path relative to the folder it was found in.
    pub path: String,
    pub id: String,
    pub title: String,
    pub log: Option<Log>,
    pub status: Status,
    /// The rule's `name` (what correlation rules may refer to it by).
    pub name: String,
}

/// The rules found in the configured folders.
#[derive(Debug, Default)]
pub struct Loaded {
    pub entries: Vec<Entry>,
    pub rules: Vec<Rule>,
    /// The correlation rules that run, their references resolved.
    pub correlations: Vec<correlation::Compiled>,
    /// Problems with the folders themselves (missing, too deep, too many files).
    pub problems: Vec<String>,
}

fn walk(
    root: &Path,
    dir: &Path,
    depth: usize,
    files: &mut Vec<PathBuf>,
    problems: &mut Vec<String>,
) {
    if depth > MAX_DEPTH {
        problems.push(format!(
            "{}: deeper than {MAX_DEPTH} folders, not read",
            dir.display()
        ));
        return;
    }
    let mut children: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(rd) => rd.filter_map(|e| e.ok().map(|e| e.path())).collect(),
        Err(e) => {
            problems.push(format!("{}: {e}", dir.display()));
            return;
        }
    };
    children.sort();
    for path in children {
        // Symlinks are not followed (a link can lead out of the folder or round in a loop).
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if meta.is_dir() {
            walk(root, &path, depth + 1, files, problems);
        } else if meta.is_file()
            && path
                .extension()
                .is_some_and(|x| x.eq_ignore_ascii_case("yml") || x.eq_ignore_ascii_case("yaml"))
        {
            if files.len() >= MAX_FILES {
                problems.push(format!(
                    "{}: more than {MAX_FILES} rule files, the rest not read",
                    root.display()
                ));
                return;
            }
            files.push(path);
        }
    }
}

/// Loads the rules of the config's folders: every `.yml` file is read (bounded) and either
/// compiled or reported with the reason it does not run.
pub fn load(config: &SigmaConfig) -> Loaded {
    let mut loaded = Loaded::default();
    let mut ids = HashSet::new();
    // Correlation rules, resolved once every rule is read (a reference may be in a later file).
    let mut pending = Vec::new();
    for root in &config.paths {
        let mut files = Vec::new();
        match std::fs::symlink_metadata(root) {
            Ok(m) if m.is_dir() => walk(root, root, 0, &mut files, &mut loaded.problems),
            Ok(m) if m.is_file() => files.push(root.clone()),
            Ok(_) => loaded
                .problems
                .push(format!("{}: not a folder or a file", root.display())),
            Err(e) => loaded.problems.push(format!("{}: {e}", root.display())),
        }
        for file in files {
            let shown = file
                .strip_prefix(root)
                .ok()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(&file)
                .display()
                .to_string();
            let docs = match read_bounded(&file).and_then(|t| rule::documents(&t)) {
                Ok(docs) => docs,
                Err(e) => {
                    loaded.entries.push(Entry {
                        path: shown,
                        id: String::new(),
                        title: String::new(),
                        log: None,
                        status: Status::ParseError(e),
                        name: String::new(),
                    });
                    continue;
                }
            };
            let several = docs.len() > 1;
            for (n, doc) in docs.iter().enumerate() {
                let path = if several {
                    format!("{shown}#{}", n + 1)
                } else {
                    shown.clone()
                };
                if correlation::is_correlation(doc) {
                    let (meta, spec) = correlation::parse(doc);
                    let mut entry = Entry {
                        path,
                        id: meta.id.clone(),
                        title: meta.title.clone(),
                        log: None,
                        status: Status::Correlation,
                        name: meta.name.clone(),
                    };
                    match spec {
                        _ if !meta.id.is_empty() && !ids.insert(meta.id.clone()) => {
                            entry.status =
                                Status::ParseError("an earlier file has the same id".into());
                        }
                        Ok(spec) => pending.push((loaded.entries.len(), spec)),
                        Err(refusal) => entry.status = refused(refusal),
                    }
                    loaded.entries.push(entry);
                    continue;
                }
                let (meta, compiled) = rule::parse_doc(doc);
                let mut entry = Entry {
                    path,
                    id: meta.id.clone(),
                    title: meta.title.clone(),
                    log: None,
                    status: Status::Native,
                    name: meta.name.clone(),
                };
                entry.status = match compiled {
                    _ if !meta.id.is_empty() && !ids.insert(meta.id.clone()) => {
                        Status::ParseError("an earlier file has the same id".into())
                    }
                    Ok(rule) => {
                        entry.log = Some(rule.log);
                        let never = NOT_ONE_RECORD.iter().find(|(id, _)| *id == meta.id);
                        if let Some((_, why)) = never {
                            Status::Unsupported((*why).to_owned())
                        } else if let Some(why) = config.excludes(&meta) {
                            Status::Excluded(why)
                        } else {
                            let status = match rule.origin {
                                Origin::Native => Status::Native,
                                Origin::Aliased => Status::Aliased,
                            };
                            loaded.rules.push(rule);
                            status
                        }
                    }
                    Err(refusal) => refused(refusal),
                };
                loaded.entries.push(entry);
            }
        }
    }
    let correlations: Vec<(String, String)> = (pending.iter())
        .map(|(_, s)| (s.meta.id.clone(), s.meta.name.clone()))
        .collect();
    for (at, spec) in pending {
        let status = match config.excludes(&spec.meta) {
            Some(why) => Status::Excluded(why),
            None => match correlation::compile(spec, &loaded.rules, &loaded.entries, &correlations)
            {
                Ok(c) => {
                    loaded.correlations.push(c);
                    Status::Correlation
                }
                Err(refusal) => refused(refusal),
            },
        };
        loaded.entries[at].status = status;
    }
    loaded
}

fn refused(refusal: Refusal) -> Status {
    match refusal {
        Refusal::Parse(e) => Status::ParseError(e),
        Refusal::Logsource(e) => Status::UnsupportedLogsource(e),
        Refusal::Placeholder(v) => Status::Placeholder(v),
        Refusal::UnknownField(v) => Status::UnknownField(v),
        Refusal::Unsupported(e) => Status::Unsupported(e),
    }
}

fn read_bounded(path: &Path) -> Result<String, String> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let mut text = String::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(|e| e.to_string())?;
    if text.len() as u64 > MAX_FILE_BYTES {
        return Err(format!("larger than {MAX_FILE_BYTES} bytes"));
    }
    Ok(text)
}

/// The compatibility report `entrawatch sigma check` prints: one line per rule, then totals.
pub fn report(loaded: &Loaded) -> String {
    let mut out = String::new();
    let mut entries: Vec<&Entry> = loaded.entries.iter().collect();
    entries.sort_by(|a, b| a.path.cmp(&b.path));
    for e in &entries {
        let detail = e.status.detail();
        let _ = write!(
            out,
            "{:<22} {:<36} {}",
            e.status.label(),
            if e.id.is_empty() { "-" } else { &e.id },
            e.path
        );
        if !detail.is_empty() {
            let _ = write!(out, "  ({detail})");
        }
        out.push('\n');
    }
    for p in &loaded.problems {
        let _ = writeln!(out, "problem: {p}");
    }
    let count = |label: &str| entries.iter().filter(|e| e.status.label() == label).count();
    let runs = entries.iter().filter(|e| e.status.runs()).count();
    let correlations = match count("correlation") {
        0 => String::new(),
        n => format!(", {n} correlation"),
    };
    let _ = writeln!(
        out,
        "\n{} rules: {runs} run ({} native, {} aliased{correlations}); {} unknown field, {} placeholder, {} unsupported logsource, {} unsupported, {} parse error, {} excluded",
        entries.len(),
        count("native"),
        count("aliased"),
        count("unknown field"),
        count("placeholder"),
        count("unsupported logsource"),
        count("unsupported"),
        count("parse error"),
        count("excluded"),
    );
    out
}

/// `sigma:<id>`, interned: a finding's rule id is `&'static str`, and reloading the same rules
/// does not grow memory.
fn intern(s: String) -> &'static str {
    static SET: OnceLock<Mutex<BTreeSet<&'static str>>> = OnceLock::new();
    let mut set = SET
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(found) = set.get(s.as_str()) {
        return found;
    }
    let leaked: &'static str = Box::leak(s.into_boxed_str());
    set.insert(leaked);
    leaked
}

fn intern_list(list: Vec<String>) -> &'static [&'static str] {
    static SET: OnceLock<Mutex<BTreeSet<&'static [&'static str]>>> = OnceLock::new();
    let items: Vec<&'static str> = list.into_iter().map(intern).collect();
    let mut set = SET
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(found) = set.get(items.as_slice()) {
        return found;
    }
    let leaked: &'static [&'static str] = Box::leak(items.into_boxed_slice());
    set.insert(leaked);
    leaked
}

/// Severity from a Sigma `level`.
pub fn severity(level: &str) -> Severity {
    match level.to_ascii_lowercase().as_str() {
        "critical" => Severity::Critical,
        "high" => Severity::High,
        "medium" => Severity::Medium,
        "low" => Severity::Low,
        _ => Severity::Info,
    }
}

/// MITRE technique ids from Sigma tags: `attack.t1078` → `T1078`, `attack.t1078.004` →
/// `T1078.004`; tactics and other tags are left out.
pub fn mitre(tags: &[String]) -> Vec<String> {
    let mut out: Vec<String> = tags
        .iter()
        .filter_map(|t| {
            let rest = t.strip_prefix("attack.")?;
            let tech = rest.strip_prefix('t').or_else(|| rest.strip_prefix('T'))?;
            tech.chars()
                .next()
                .is_some_and(|c| c.is_ascii_digit())
                .then(|| format!("T{}", tech.to_ascii_uppercase()))
        })
        .collect();
    out.dedup();
    out
}

#[derive(Debug)]
struct Runnable {
    rule: Rule,
    id: &'static str,
    severity: Severity,
    mitre: &'static [&'static str],
    /// Whether a match is an alert of its own (not when only correlations use the rule).
    own: bool,
    /// The correlations this rule feeds: (correlation, position among its rules).
    feeds: Vec<(usize, usize)>,
}

/// The rules that run, by log, in load order (folder order, then file name): alerts come out in
/// the same order on every replay.
#[derive(Debug, Default)]
pub struct SigmaSet {
    sign_in: Vec<Runnable>,
    audit: Vec<Runnable>,
    risk: Vec<Runnable>,
    /// Correlation rules, in load order; their windows live in the engine's [`ExtraState`].
    correlations: Vec<correlation::Runnable>,
}

impl SigmaSet {
    /// The detection rules, without correlations.
    pub fn new(rules: Vec<Rule>) -> SigmaSet {
        SigmaSet::with_correlations(rules, Vec::new())
    }

    /// Everything [`load`] found that runs: detection and correlation rules.
    pub fn from_loaded(loaded: Loaded) -> SigmaSet {
        SigmaSet::with_correlations(loaded.rules, loaded.correlations)
    }

    /// Detection rules and the correlations over them. A rule a correlation refers to gives no
    /// alert of its own unless the correlation says `generate: true`.
    pub fn with_correlations(
        rules: Vec<Rule>,
        correlations: Vec<correlation::Compiled>,
    ) -> SigmaSet {
        let mut set = SigmaSet::default();
        for rule in rules {
            let mut r = Runnable {
                id: intern(format!("sigma:{}", rule.meta.id)),
                severity: severity(&rule.meta.level),
                mitre: intern_list(mitre(&rule.meta.tags)),
                own: true,
                feeds: Vec::new(),
                rule,
            };
            for (ci, c) in correlations.iter().enumerate() {
                if let Some(mi) = c.rule_ids.iter().position(|id| *id == r.rule.meta.id) {
                    r.feeds.push((ci, mi));
                    r.own &= c.spec.generate;
                }
            }
            match r.rule.log {
                Log::SignIn => set.sign_in.push(r),
                Log::Audit => set.audit.push(r),
                Log::Risk => set.risk.push(r),
            }
        }
        set.correlations = (correlations.into_iter())
            .map(|c| correlation::Runnable {
                id: intern(format!("sigma:{}", c.spec.meta.id)),
                severity: severity(&c.spec.meta.level),
                mitre: intern_list(mitre(&c.spec.meta.tags)),
                group: c.group,
                value: c.value,
                rule_ids: c.rule_ids,
                spec: c.spec,
            })
            .collect();
        set
    }

    /// Detection and correlation rules.
    pub fn len(&self) -> usize {
        self.sign_in.len() + self.audit.len() + self.risk.len() + self.correlations.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The rule ids (`sigma:<id>`) the set runs.
    pub fn ids(&self) -> Vec<&'static str> {
        (self.sign_in.iter().chain(&self.audit).chain(&self.risk))
            .map(|r| r.id)
            .chain(self.correlations.iter().map(|c| c.id))
            .collect()
    }

    fn rules_for(&self, event: &Event) -> &[Runnable] {
        match &event.body {
            Body::SignIn(_) => &self.sign_in,
            Body::Audit(_) => &self.audit,
            Body::RiskDetection(_) => &self.risk,
            _ => &[],
        }
    }
}

fn value_json(v: V<'_>) -> Value {
    match v {
        V::Null => Value::Null,
        V::Str(s) => Value::String(s.chars().take(256).collect()),
        V::Int(n) => Value::from(n),
        V::Bool(b) => Value::Bool(b),
        V::Float(f) => Value::from(f),
    }
}

fn principal(event: &Event) -> (Principal, Option<String>) {
    let owned = |s: Option<&str>| s.map(str::to_owned);
    match &event.body {
        Body::SignIn(s) if s.is_user() => (
            Principal {
                kind: PrincipalKind::User,
                id: (s.user_id.as_deref())
                    .or(s.user_principal_name.as_deref())
                    .unwrap_or("(unknown)")
                    .to_owned(),
                upn: owned(s.user_principal_name.as_deref()),
                home_tenant_id: (s.home_tenant_id.as_deref())
                    .filter(|h| Some(*h) != s.resource_tenant_id.as_deref())
                    .map(str::to_owned),
            },
            owned(s.ip_address.as_deref()),
        ),
        Body::SignIn(s) => (
            Principal {
                kind: PrincipalKind::ServicePrincipal,
                id: (s.service_principal_id.as_deref())
                    .or(s.app_id.as_deref())
                    .unwrap_or("(unknown)")
                    .to_owned(),
                upn: None,
                home_tenant_id: None,
            },
            owned(s.ip_address.as_deref()),
        ),
        Body::Audit(a) => {
            let ip = a
                .initiated_by
                .user
                .as_ref()
                .and_then(|u| owned(u.ip_address.as_deref()));
            if let Some(u) = &a.initiated_by.user
                && let Some(id) = u.id.as_deref().or(u.user_principal_name.as_deref())
            {
                let p = Principal {
                    kind: PrincipalKind::User,
                    id: id.to_owned(),
                    upn: owned(u.user_principal_name.as_deref()),
                    home_tenant_id: owned(u.home_tenant_id.as_deref()),
                };
                return (p, ip);
            }
            let app = a.initiated_by.app.as_ref().and_then(|p| {
                (p.service_principal_id.as_deref())
                    .or(p.app_id.as_deref())
                    .or(p.display_name.as_deref())
            });
            let p = match app {
                Some(id) => Principal {
                    kind: PrincipalKind::ServicePrincipal,
                    id: id.to_owned(),
                    upn: None,
                    home_tenant_id: None,
                },
                None => Principal {
                    kind: PrincipalKind::Tenant,
                    id: event.meta.tenant_id.to_string(),
                    upn: None,
                    home_tenant_id: None,
                },
            };
            (p, ip)
        }
        Body::RiskDetection(r) => (
            Principal {
                kind: PrincipalKind::User,
                id: (r.user_id.as_deref())
                    .or(r.user_principal_name.as_deref())
                    .unwrap_or("(unknown)")
                    .to_owned(),
                upn: owned(r.user_principal_name.as_deref()),
                home_tenant_id: owned(r.home_tenant_id.as_deref()),
            },
            owned(r.ip_address.as_deref()),
        ),
        _ => (
            Principal {
                kind: PrincipalKind::Tenant,
                id: event.meta.tenant_id.to_string(),
                upn: None,
                home_tenant_id: None,
            },
            None,
        ),
    }
}

impl SigmaSet {
    fn finding(&self, r: &Runnable, event: &Event) -> Finding {
        let (principal, ip) = principal(event);
        let mut evidence = Map::new();
        evidence.insert("sigma_id".into(), Value::String(r.rule.meta.id.clone()));
        let mut fields = Map::new();
        for (name, field) in &r.rule.fields {
            let mut values = Vec::new();
            field.visit(event, &mut |v| {
                if values.len() < 8 {
                    values.push(value_json(v));
                }
                false
            });
            let v = match values.len() {
                1 => values.remove(0),
                _ => Value::Array(values),
            };
            fields.insert(field.shown(), v);
            let _ = name;
        }
        evidence.insert("fields".into(), Value::Object(fields));
        if !r.rule.meta.status.is_empty() {
            evidence.insert(
                "sigma_status".into(),
                Value::String(r.rule.meta.status.clone()),
            );
        }
        let who = principal.upn.as_deref().unwrap_or(&principal.id).to_owned();
        let summary = format!(
            "Sigma rule \"{}\" matched {} {} by {who}",
            r.rule.meta.title,
            event.kind().as_str(),
            event.meta.id
        );
        Finding {
            rule: r.id,
            severity: r.severity,
            tenant_id: event.meta.tenant_id.to_string(),
            principal,
            time: event.meta.time,
            event_ids: vec![event.meta.id.to_string()],
            title: r.rule.meta.title.clone(),
            summary,
            evidence,
            mitre: r.mitre,
            ip,
        }
    }

    /// How many rules match the event, without building findings (for measurements).
    pub fn count_matches(&self, event: &Event) -> usize {
        (self.rules_for(event).iter())
            .filter(|r| r.rule.matches(event))
            .count()
    }

    /// Whether a rule (by Sigma id) matches the event; for tests and `sigma check`.
    pub fn matching_ids(&self, event: &Event) -> Vec<&str> {
        (self.rules_for(event).iter())
            .filter(|r| r.rule.matches(event))
            .map(|r| r.rule.meta.id.as_str())
            .collect()
    }
}

impl SigmaSet {
    /// Once per hour of event time: drops expired events and empty groups from every window,
    /// and the windows of correlations this set does not run (rules changed across a restart).
    fn sweep(&self, state: &mut ExtraState, now: i64) {
        if state.last_sweep.is_some_and(|t| now - t < 3600) {
            return;
        }
        state.last_sweep = Some(now);
        state.windows.retain(|id, groups| {
            match self.correlations.iter().find(|c| c.id == id) {
                Some(c) => c.sweep(groups, now),
                None => groups.clear(),
            }
            !groups.is_empty()
        });
    }

    /// One event the rules at positions `bits` of correlation `c` matched (`first` the lowest).
    fn correlate(
        &self,
        c: &correlation::Runnable,
        first: usize,
        bits: u64,
        event: &Event,
        state: &mut ExtraState,
        out: &mut Vec<Finding>,
    ) {
        let mut key = event.meta.tenant_id.to_string();
        let mut values = Vec::with_capacity(c.group[first].len());
        for field in &c.group[first] {
            // An event without a group-by value is in no group.
            let Some(v) = correlation::first_text(field, event) else {
                return;
            };
            key.push('\u{1f}');
            key.push_str(&v);
            values.push(v);
        }
        let value = match &c.value[first] {
            Some(field) => match correlation::first_text(field, event) {
                Some(v) => Some(v),
                None => return,
            },
            None => None,
        };
        let now = event.meta.time.timestamp();
        let member = Member {
            time: now,
            rules: bits,
            event_id: event.meta.id.to_string(),
            value,
        };
        if let Some(fired) = c.record(state, &key, member, now) {
            out.push(correlation_finding(c, event, values, fired));
        }
    }
}

fn correlation_finding(
    c: &correlation::Runnable,
    event: &Event,
    values: Vec<String>,
    fired: correlation::Fired,
) -> Finding {
    use correlation::{Kind, MAX_EVIDENCE};
    let spec = &c.spec;
    let (principal, ip) = principal(event);
    let members = &fired.members;
    let mut evidence = Map::new();
    evidence.insert("sigma_id".into(), Value::String(spec.meta.id.clone()));
    evidence.insert(
        "correlation".into(),
        Value::String(spec.kind.as_str().into()),
    );
    let group: Map<String, Value> = (spec.group_by.iter().cloned())
        .zip(values.iter().map(|v| Value::String(v.clone())))
        .collect();
    evidence.insert("group".into(), Value::Object(group));
    evidence.insert("count".into(), Value::from(fired.count));
    evidence.insert("threshold".into(), Value::from(spec.threshold));
    evidence.insert("timespan".into(), Value::String(spec.timespan_text.clone()));
    let first = members.first().map_or(0, |m| m.time);
    let last = members.last().map_or(0, |m| m.time);
    evidence.insert("span_seconds".into(), Value::from(last - first));
    evidence.insert("events".into(), Value::from(members.len()));
    match spec.kind {
        Kind::ValueCount => {
            let distinct: Vec<Value> = (members.iter())
                .filter_map(|m| m.value.clone().map(Value::String))
                .take(MAX_EVIDENCE)
                .collect();
            evidence.insert(
                "field".into(),
                Value::String(spec.field.clone().unwrap_or_default()),
            );
            evidence.insert("values".into(), Value::Array(distinct));
        }
        Kind::Temporal | Kind::TemporalOrdered => {
            let all = members.iter().fold(0u64, |acc, m| acc | m.rules);
            let rules: Vec<Value> = (c.rule_ids.iter().enumerate())
                .filter(|(i, _)| all & (1 << i) != 0)
                .map(|(_, id)| Value::String(id.clone()))
                .collect();
            evidence.insert("rules".into(), Value::Array(rules));
        }
        Kind::EventCount => {}
    }
    // The first events and the one that completed the correlation.
    let mut event_ids: Vec<String> = (members.iter())
        .take(MAX_EVIDENCE - 1)
        .map(|m| m.event_id.clone())
        .collect();
    if members.len() >= MAX_EVIDENCE
        && let Some(m) = members.last()
    {
        event_ids.push(m.event_id.clone());
    }
    if !spec.meta.status.is_empty() {
        evidence.insert(
            "sigma_status".into(),
            Value::String(spec.meta.status.clone()),
        );
    }
    let what = match spec.kind {
        Kind::EventCount => format!("{} events", fired.count),
        Kind::ValueCount => format!(
            "{} distinct {}",
            fired.count,
            spec.field.as_deref().unwrap_or_default()
        ),
        Kind::Temporal | Kind::TemporalOrdered => {
            format!("{} of {} rules", fired.count, spec.rules.len())
        }
    };
    let group = if values.is_empty() {
        "the tenant".to_owned()
    } else {
        (spec.group_by.iter().zip(&values))
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let summary = format!(
        "Sigma correlation \"{}\" ({}): {what} for {group} within {}",
        spec.meta.title,
        spec.kind.as_str(),
        spec.timespan_text
    );
    Finding {
        rule: c.id,
        severity: c.severity,
        tenant_id: event.meta.tenant_id.to_string(),
        principal,
        time: event.meta.time,
        event_ids,
        title: spec.meta.title.clone(),
        summary,
        evidence,
        mitre: c.mitre,
        ip,
    }
}

impl ExtraRules for SigmaSet {
    fn observe(&self, event: &Event, state: &mut ExtraState, out: &mut Vec<Finding>) {
        // (correlation, position of the rule in it) for every matching rule that feeds one.
        let mut hits: Vec<(usize, usize)> = Vec::new();
        for r in self.rules_for(event) {
            if r.rule.matches(event) {
                if r.own {
                    out.push(self.finding(r, event));
                }
                hits.extend_from_slice(&r.feeds);
            }
        }
        if self.correlations.is_empty() {
            return;
        }
        self.sweep(state, event.meta.time.timestamp());
        // Correlations in load order; an event matching several rules of one correlation is one
        // event of it.
        hits.sort_unstable();
        let mut i = 0;
        while i < hits.len() {
            let (ci, first) = hits[i];
            let mut bits = 0u64;
            while i < hits.len() && hits[i].0 == ci {
                bits |= 1 << hits[i].1;
                i += 1;
            }
            self.correlate(&self.correlations[ci], first, bits, event, state, out);
        }
    }

    fn describe(&self) -> String {
        format!(
            "sigma: {} rules run, {} of them correlations",
            self.len(),
            self.correlations.len()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_become_techniques_and_levels_severities() {
        let tags = [
            "attack.t1078.004",
            "attack.initial-access",
            "attack.T1110",
            "cve.2021",
        ]
        .map(String::from);
        assert_eq!(mitre(&tags), ["T1078.004", "T1110"]);
        assert_eq!(severity("informational"), Severity::Info);
        assert_eq!(severity("High"), Severity::High);
        assert_eq!(severity("critical"), Severity::Critical);
    }

    #[test]
    fn interned_ids_are_shared() {
        let a = intern("sigma:x".into());
        let b = intern(String::from("sigma:x"));
        assert!(std::ptr::eq(a, b));
    }

    #[test]
    fn config_problems_are_listed_together() {
        let c = SigmaConfig {
            statuses: vec!["nope".into()],
            levels: vec!["urgent".into()],
            paths: vec![PathBuf::new()],
            ..SigmaConfig::default()
        };
        assert_eq!(c.validate().len(), 3);
    }
}
