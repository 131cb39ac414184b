//! A Sigma detection rule: parsed from YAML, compiled against the field presentation, evaluated.
//!
//! The subset covered is what the Entra rules use: selections as maps (AND) or lists of maps (OR);
//! value lists (OR, or AND with `|all`); the modifiers `contains`, `startswith`, `endswith`,
//! `all`, `re`, `cidr`, `exists`; `*` / `?` wildcards; `null`; conditions with `and`, `or`,
//! `not`, parentheses, `1 of X*`, `all of X*`, `1 of them`, `all of them`. String comparison is
//! ASCII case-insensitive, as Sigma specifies; `0` and `"0"` compare equal.

use std::net::IpAddr;

use regex::Regex;
use yaml_serde::Value as Yaml;

use crate::fields::{Field, Log, Origin, V, resolve};

/// Why a rule does not run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The YAML or the detection cannot be read.
    Parse(String),
    /// The logsource is not one of the Entra logs entrawatch reads.
    Logsource(String),
    /// A value is a placeholder (`|expand`, `%name%`) the rule expects to be filled in.
    Placeholder(Vec<String>),
    /// Field names the event model does not carry.
    UnknownField(Vec<String>),
    /// A construct this evaluator does not implement.
    Unsupported(String),
}

/// The metadata of a rule, read even when its detection is refused.
#[derive(Debug, Clone, Default)]
pub struct Meta {
    pub id: String,
    pub title: String,
    pub status: String,
    pub level: String,
    pub tags: Vec<String>,
    pub description: String,
    /// The `name` correlation rules may refer to the rule by.
    pub name: String,
}

/// A rule ready to run.
#[derive(Debug)]
pub struct Rule {
    pub meta: Meta,
    pub log: Log,
    /// Native when every field name is an Event Hub name, aliased otherwise.
    pub origin: Origin,
    selections: Vec<Selection>,
    condition: Cond,
    /// The fields the rule names, in order of first use (evidence).
    pub fields: Vec<(String, Field)>,
}

#[derive(Debug)]
struct Selection {
    name: String,
    /// OR of AND-groups.
    groups: Vec<Vec<Item>>,
}

#[derive(Debug)]
struct Item {
    field: Field,
    all: bool,
    matchers: Vec<Matcher>,
}

#[derive(Debug)]
enum Matcher {
    Null,
    Exists(bool),
    Int(i64),
    Bool(bool),
    /// Lower-case text, with how it is compared.
    Text(Cmp, String),
    Regex(Regex),
    Cidr(IpAddr, u8),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cmp {
    Eq,
    Contains,
    Starts,
    Ends,
}

#[derive(Debug)]
enum Cond {
    Sel(usize),
    Not(Box<Cond>),
    And(Vec<Cond>),
    Or(Vec<Cond>),
}

/// Bounds on what a rule may hold.
const MAX_SELECTIONS: usize = 64;
const MAX_VALUES: usize = 1024;
const MAX_CONDITION: usize = 4096;
const MAX_REGEX: usize = 1 << 16;

pub(crate) fn str_of(y: &Yaml) -> Option<String> {
    match y {
        Yaml::String(s) => Some(s.clone()),
        Yaml::Number(n) => Some(n.to_string()),
        Yaml::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

pub(crate) fn get<'a>(y: &'a Yaml, key: &str) -> Option<&'a Yaml> {
    y.as_mapping()?.get(key)
}

/// The YAML documents of a file (`---` separates them: a correlation rule and its base rules
/// may share a file).
pub fn documents(text: &str) -> Result<Vec<Yaml>, String> {
    use serde::Deserialize as _;
    let mut docs = Vec::new();
    for d in yaml_serde::Deserializer::from_str(text) {
        let doc = Yaml::deserialize(d).map_err(|e| e.to_string())?;
        if !doc.is_null() {
            docs.push(doc);
        }
    }
    if docs.is_empty() {
        return Err("no YAML document".into());
    }
    Ok(docs)
}

/// Reads a rule's metadata and logsource, then compiles its detection.
pub fn parse(text: &str) -> (Meta, Result<Rule, Refusal>) {
    let doc: Yaml = match yaml_serde::from_str(text) {
        Ok(d) => d,
        Err(e) => return (Meta::default(), Err(Refusal::Parse(e.to_string()))),
    };
    parse_doc(&doc)
}

/// The metadata every rule document has, detection or correlation.
pub fn meta(doc: &Yaml) -> Meta {
    let text_of = |k: &str| get(doc, k).and_then(str_of).unwrap_or_default();
    Meta {
        id: text_of("id"),
        title: text_of("title"),
        status: text_of("status"),
        level: text_of("level"),
        description: text_of("description"),
        name: text_of("name"),
        tags: get(doc, "tags")
            .and_then(Yaml::as_sequence)
            .map(|s| s.iter().filter_map(str_of).collect())
            .unwrap_or_default(),
    }
}

/// [`parse`] of one YAML document.
pub fn parse_doc(doc: &Yaml) -> (Meta, Result<Rule, Refusal>) {
    let meta = meta(doc);
    let compiled = compile(doc, &meta);
    (meta, compiled)
}

fn compile(doc: &Yaml, meta: &Meta) -> Result<Rule, Refusal> {
    if meta.id.is_empty() {
        return Err(Refusal::Parse("no `id`".into()));
    }
    if meta.title.is_empty() {
        return Err(Refusal::Parse("no `title`".into()));
    }
    if get(doc, "correlation").is_some() {
        return Err(Refusal::Unsupported(
            "a correlation rule: read with the others of its folder (`load`)".into(),
        ));
    }
    let logsource = get(doc, "logsource").ok_or(Refusal::Parse("no `logsource`".into()))?;
    let product = get(logsource, "product")
        .and_then(str_of)
        .unwrap_or_default();
    let service = get(logsource, "service")
        .and_then(str_of)
        .unwrap_or_default();
    let log = match (
        product.to_ascii_lowercase().as_str(),
        service.to_ascii_lowercase().as_str(),
    ) {
        ("azure", "signinlogs") => Log::SignIn,
        ("azure", "auditlogs") => Log::Audit,
        ("azure", "riskdetection") => Log::Risk,
        ("azure", "pim") => {
            return Err(Refusal::Logsource(
                "azure/pim: PIM alerts are not in the sign-in, audit or risk detection logs entrawatch reads".into(),
            ));
        }
        (p, s) => {
            return Err(Refusal::Logsource(format!(
                "{p}/{s}: only azure/signinlogs, azure/auditlogs and azure/riskdetection are read"
            )));
        }
    };
    let detection = get(doc, "detection")
        .and_then(Yaml::as_mapping)
        .ok_or(Refusal::Parse("no `detection` map".into()))?;
    let condition = match detection.get("condition") {
        Some(Yaml::String(s)) => s.clone(),
        Some(Yaml::Sequence(_)) => {
            return Err(Refusal::Unsupported("a list of conditions".into()));
        }
        _ => return Err(Refusal::Parse("no `detection.condition`".into())),
    };
    if condition.len() > MAX_CONDITION {
        return Err(Refusal::Parse("condition too long".into()));
    }
    if condition.contains('|') {
        return Err(Refusal::Unsupported(
            "aggregations in the condition (`| count()`)".into(),
        ));
    }
    let mut unknown = Vec::new();
    let mut placeholders = Vec::new();
    let mut fields: Vec<(String, Field)> = Vec::new();
    let mut selections = Vec::new();
    for (k, v) in detection {
        let Some(name) = k.as_str() else {
            return Err(Refusal::Parse("a detection key that is not text".into()));
        };
        if name == "condition" || name == "timeframe" {
            continue;
        }
        if selections.len() >= MAX_SELECTIONS {
            return Err(Refusal::Parse("too many selections".into()));
        }
        let maps: Vec<&yaml_serde::Mapping> = match v {
            Yaml::Mapping(m) => vec![m],
            Yaml::Sequence(s) if s.iter().all(Yaml::is_mapping) && !s.is_empty() => {
                s.iter().filter_map(Yaml::as_mapping).collect()
            }
            Yaml::Sequence(_) | Yaml::String(_) => {
                return Err(Refusal::Unsupported(format!(
                    "keyword search (selection `{name}` is a list of values, not of fields)"
                )));
            }
            _ => return Err(Refusal::Parse(format!("selection `{name}` is empty"))),
        };
        let mut groups = Vec::new();
        for m in maps {
            let mut items = Vec::new();
            for (fk, fv) in m {
                let Some(spec) = fk.as_str() else {
                    return Err(Refusal::Parse(format!("a field in `{name}` is not text")));
                };
                let mut parts = spec.split('|');
                let field_name = parts.next().unwrap_or_default();
                let mods: Vec<String> = parts.map(str::to_ascii_lowercase).collect();
                if mods.iter().any(|m| m == "expand") || has_placeholder(fv) {
                    placeholders.push(spec.to_owned());
                    continue;
                }
                let Some(field) = resolve(log, field_name) else {
                    if !unknown.iter().any(|u| u == field_name) {
                        unknown.push(field_name.to_owned());
                    }
                    continue;
                };
                if !fields.iter().any(|(n, _)| n == field_name) {
                    fields.push((field_name.to_owned(), field.clone()));
                }
                items.push(item(field, &mods, fv, spec)?);
            }
            // An AND group has no side effects: the cheap tests first, so a selection usually
            // fails before it searches text.
            items.sort_by_key(Item::cost);
            groups.push(items);
        }
        selections.push(Selection {
            name: name.to_owned(),
            groups,
        });
    }
    if !placeholders.is_empty() {
        return Err(Refusal::Placeholder(placeholders));
    }
    if !unknown.is_empty() {
        return Err(Refusal::UnknownField(unknown));
    }
    let names: Vec<&str> = selections.iter().map(|s| s.name.as_str()).collect();
    let condition = parse_condition(&condition, &names)?;
    let origin = if fields.iter().all(|(_, f)| f.origin == Origin::Native) {
        Origin::Native
    } else {
        Origin::Aliased
    };
    Ok(Rule {
        meta: meta.clone(),
        log,
        origin,
        selections,
        condition,
        fields,
    })
}

fn has_placeholder(v: &Yaml) -> bool {
    match v {
        Yaml::String(s) => {
            let t = s.trim();
            t.len() > 2 && t.starts_with('%') && t.ends_with('%')
        }
        Yaml::Sequence(s) => s.iter().any(has_placeholder),
        _ => false,
    }
}

fn item(field: Field, mods: &[String], value: &Yaml, spec: &str) -> Result<Item, Refusal> {
    let mut cmp = Cmp::Eq;
    let mut all = false;
    let mut re = false;
    let mut cidr = false;
    let mut exists = false;
    for m in mods {
        match m.as_str() {
            "contains" => cmp = Cmp::Contains,
            "startswith" => cmp = Cmp::Starts,
            "endswith" => cmp = Cmp::Ends,
            "all" => all = true,
            "re" => re = true,
            "cidr" => cidr = true,
            "exists" => exists = true,
            "i" | "ignorecase" => {}
            other => {
                return Err(Refusal::Unsupported(format!(
                    "modifier `{other}` in `{spec}`"
                )));
            }
        }
    }
    let values: Vec<&Yaml> = match value {
        Yaml::Sequence(s) => s.iter().collect(),
        v => vec![v],
    };
    if values.len() > MAX_VALUES {
        return Err(Refusal::Parse(format!("too many values in `{spec}`")));
    }
    let mut matchers = Vec::with_capacity(values.len());
    for v in values {
        let m = if exists {
            match v {
                Yaml::Bool(b) => Matcher::Exists(*b),
                _ => return Err(Refusal::Parse(format!("`{spec}` wants true or false"))),
            }
        } else if re {
            let s = str_of(v).ok_or(Refusal::Parse(format!("`{spec}` wants a regex")))?;
            let r = regex::RegexBuilder::new(&s)
                .size_limit(MAX_REGEX * 16)
                .build()
                .map_err(|e| Refusal::Parse(format!("`{spec}`: {e}")))?;
            Matcher::Regex(r)
        } else if cidr {
            let s = str_of(v).ok_or(Refusal::Parse(format!("`{spec}` wants a CIDR")))?;
            parse_cidr(&s).ok_or(Refusal::Parse(format!("`{spec}`: `{s}` is not a CIDR")))?
        } else {
            match v {
                Yaml::Null => Matcher::Null,
                Yaml::Bool(b) if cmp == Cmp::Eq => Matcher::Bool(*b),
                Yaml::Number(n) if cmp == Cmp::Eq && n.as_i64().is_some() => {
                    Matcher::Int(n.as_i64().unwrap_or_default())
                }
                other => {
                    let s = str_of(other).ok_or(Refusal::Parse(format!(
                        "`{spec}`: a value that is not text"
                    )))?;
                    text_matcher(cmp, &s)?
                }
            }
        };
        matchers.push(m);
    }
    Ok(Item {
        field,
        all,
        matchers,
    })
}

/// A Sigma string: `*` and `?` are wildcards, `\` escapes them.
fn text_matcher(cmp: Cmp, s: &str) -> Result<Matcher, Refusal> {
    let mut plain = String::with_capacity(s.len());
    let mut pattern = String::with_capacity(s.len() + 8);
    let mut wild = false;
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if matches!(chars.peek(), Some('*' | '?' | '\\')) => {
                let n = chars.next().unwrap_or('\\');
                plain.push(n);
                pattern.push_str(&regex::escape(&n.to_string()));
            }
            '*' => {
                wild = true;
                pattern.push_str(".*");
            }
            '?' => {
                wild = true;
                pattern.push('.');
            }
            c => {
                plain.push(c);
                pattern.push_str(&regex::escape(&c.to_string()));
            }
        }
    }
    if !wild {
        return Ok(Matcher::Text(cmp, plain.to_ascii_lowercase()));
    }
    let (pre, post) = match cmp {
        Cmp::Eq => ("^", "$"),
        Cmp::Contains => ("", ""),
        Cmp::Starts => ("^", ""),
        Cmp::Ends => ("", "$"),
    };
    let r = regex::RegexBuilder::new(&format!("(?is){pre}{pattern}{post}"))
        .size_limit(MAX_REGEX * 16)
        .build()
        .map_err(|e| Refusal::Parse(format!("`{s}`: {e}")))?;
    Ok(Matcher::Regex(r))
}

fn parse_cidr(s: &str) -> Option<Matcher> {
    let (ip, bits) = s.trim().split_once('/')?;
    let ip: IpAddr = ip.parse().ok()?;
    let bits: u8 = bits.parse().ok()?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    (bits <= max).then_some(Matcher::Cidr(ip, bits))
}

fn in_cidr(ip: IpAddr, net: IpAddr, bits: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(b)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(bits)).unwrap_or(0);
            u32::from(a) & mask == u32::from(b) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(b)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(bits)).unwrap_or(0);
            u128::from(a) & mask == u128::from(b) & mask
        }
        _ => false,
    }
}

/// Whether `hay` contains `needle` (lower case) in any ASCII casing, without copying `hay`: the
/// candidates are the places of the needle's first byte in either case, found a vector at a time.
fn contains_caseless(hay: &str, needle: &str) -> bool {
    let (h, n) = (hay.as_bytes(), needle.as_bytes());
    let Some(&first) = n.first() else {
        return true;
    };
    if h.len() < n.len() {
        return false;
    }
    let last_start = h.len() - n.len();
    memchr::memchr2_iter(first, first.to_ascii_uppercase(), &h[..=last_start])
        .any(|i| h[i..i + n.len()].eq_ignore_ascii_case(n))
}

/// Writes an integer without allocating.
fn int_text(n: i64, buf: &mut [u8; 24]) -> &str {
    let mut i = buf.len();
    let neg = n < 0;
    let mut v = n.unsigned_abs();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    if neg {
        i -= 1;
        buf[i] = b'-';
    }
    std::str::from_utf8(&buf[i..]).unwrap_or_default()
}

impl Matcher {
    fn test(&self, v: V<'_>) -> bool {
        let mut buf = [0u8; 24];
        let text: Option<&str> = match v {
            V::Str(s) => Some(s),
            V::Int(n) => Some(int_text(n, &mut buf)),
            V::Bool(true) => Some("true"),
            V::Bool(false) => Some("false"),
            V::Float(_) | V::Null => None,
        };
        match self {
            Matcher::Null => v == V::Null,
            Matcher::Exists(want) => (v != V::Null) == *want,
            Matcher::Int(n) => match v {
                V::Int(m) => m == *n,
                V::Str(s) => s.trim().parse::<i64>() == Ok(*n),
                V::Float(f) => f == *n as f64,
                _ => false,
            },
            Matcher::Bool(b) => match v {
                V::Bool(x) => x == *b,
                V::Str(s) => s
                    .trim()
                    .eq_ignore_ascii_case(if *b { "true" } else { "false" }),
                _ => false,
            },
            // The model does not keep an empty string apart from an absent field: `''` matches both.
            Matcher::Text(Cmp::Eq, t) if t.is_empty() => text.is_none_or(str::is_empty),
            Matcher::Text(cmp, t) => text.is_some_and(|s| {
                let (h, n) = (s.as_bytes(), t.as_bytes());
                match cmp {
                    Cmp::Eq => h.eq_ignore_ascii_case(n),
                    Cmp::Contains => contains_caseless(s, t),
                    Cmp::Starts => h.len() >= n.len() && h[..n.len()].eq_ignore_ascii_case(n),
                    Cmp::Ends => {
                        h.len() >= n.len() && h[h.len() - n.len()..].eq_ignore_ascii_case(n)
                    }
                }
            }),
            Matcher::Regex(r) => text.is_some_and(|s| r.is_match(s)),
            Matcher::Cidr(net, bits) => text
                .and_then(|s| s.trim().parse::<IpAddr>().ok())
                .is_some_and(|ip| in_cidr(ip, *net, *bits)),
        }
    }
}

impl Item {
    /// A rough order of cost: exact values, then text searches, then regular expressions; a
    /// field presenting many values (arrays, objects) after one presenting one.
    fn cost(&self) -> u8 {
        let search = self.matchers.iter().map(|m| match m {
            Matcher::Null | Matcher::Exists(_) | Matcher::Int(_) | Matcher::Bool(_) => 0,
            Matcher::Text(Cmp::Eq, _) | Matcher::Cidr(..) => 1,
            Matcher::Text(..) => 2,
            Matcher::Regex(_) => 3,
        });
        let many = u8::from(
            self.field.canonical.contains("targetResources")
                || self.field.canonical.contains("initiatedBy")
                || self.field.canonical.contains("additional")
                || self.field.canonical == "properties.activityDisplayName",
        );
        search.max().unwrap_or(0) + 4 * many
    }

    fn matches(&self, event: &entrawatch_ingest::Event) -> bool {
        let field = &self.field;
        if self.all {
            (self.matchers.iter()).all(|m| field.visit(event, &mut |v| m.test(v)))
        } else {
            field.visit(event, &mut |v| self.matchers.iter().any(|m| m.test(v)))
        }
    }
}

impl Selection {
    fn matches(&self, event: &entrawatch_ingest::Event) -> bool {
        self.groups
            .iter()
            .any(|g| g.iter().all(|i| i.matches(event)))
    }
}

impl Cond {
    fn eval(&self, sels: &[Selection], event: &entrawatch_ingest::Event) -> bool {
        match self {
            Cond::Sel(i) => sels[*i].matches(event),
            Cond::Not(c) => !c.eval(sels, event),
            Cond::And(cs) => cs.iter().all(|c| c.eval(sels, event)),
            Cond::Or(cs) => cs.iter().any(|c| c.eval(sels, event)),
        }
    }
}

impl Rule {
    /// Whether the event matches (the caller routes by log).
    pub fn matches(&self, event: &entrawatch_ingest::Event) -> bool {
        self.condition.eval(&self.selections, event)
    }
}

// ---- conditions ----

fn tokens(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for c in s.chars() {
        match c {
            '(' | ')' => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
                out.push(c.to_string());
            }
            c if c.is_whitespace() => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

struct CondParser<'a> {
    toks: Vec<String>,
    pos: usize,
    names: &'a [&'a str],
}

fn glob_names(names: &[&str], pattern: &str) -> Vec<usize> {
    let matches = |n: &str| match pattern.strip_suffix('*') {
        Some(prefix) => n.starts_with(prefix),
        None => n == pattern,
    };
    (names.iter().enumerate())
        .filter(|(_, n)| pattern == "them" || matches(n))
        .map(|(i, _)| i)
        .collect()
}

impl CondParser<'_> {
    fn peek(&self) -> Option<&str> {
        self.toks.get(self.pos).map(String::as_str)
    }

    fn next(&mut self) -> Option<String> {
        let t = self.toks.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn or(&mut self, depth: usize) -> Result<Cond, Refusal> {
        let mut parts = vec![self.and(depth)?];
        while self.peek().is_some_and(|t| t.eq_ignore_ascii_case("or")) {
            self.pos += 1;
            parts.push(self.and(depth)?);
        }
        Ok(if parts.len() == 1 {
            parts.remove(0)
        } else {
            Cond::Or(parts)
        })
    }

    fn and(&mut self, depth: usize) -> Result<Cond, Refusal> {
        let mut parts = vec![self.unary(depth)?];
        while self.peek().is_some_and(|t| t.eq_ignore_ascii_case("and")) {
            self.pos += 1;
            parts.push(self.unary(depth)?);
        }
        Ok(if parts.len() == 1 {
            parts.remove(0)
        } else {
            Cond::And(parts)
        })
    }

    fn unary(&mut self, depth: usize) -> Result<Cond, Refusal> {
        if depth > 32 {
            return Err(Refusal::Parse("condition nested too deep".into()));
        }
        let bad = |m: String| Refusal::Parse(format!("condition: {m}"));
        let t = self.next().ok_or_else(|| bad("ends too early".into()))?;
        let lower = t.to_ascii_lowercase();
        match lower.as_str() {
            "not" => Ok(Cond::Not(Box::new(self.unary(depth + 1)?))),
            "(" => {
                let c = self.or(depth + 1)?;
                match self.next().as_deref() {
                    Some(")") => Ok(c),
                    _ => Err(bad("a `(` is not closed".into())),
                }
            }
            "1" | "any" | "all" => {
                if !self.next().is_some_and(|o| o.eq_ignore_ascii_case("of")) {
                    return Err(bad(format!("`{t}` not followed by `of`")));
                }
                let target = self.next().ok_or_else(|| bad("`of` what?".into()))?;
                let found = glob_names(self.names, &target);
                if found.is_empty() {
                    return Err(bad(format!("no selection matches `{target}`")));
                }
                let parts: Vec<Cond> = found.into_iter().map(Cond::Sel).collect();
                Ok(if lower == "all" {
                    Cond::And(parts)
                } else {
                    Cond::Or(parts)
                })
            }
            _ => {
                let i = self
                    .names
                    .iter()
                    .position(|n| *n == t)
                    .ok_or_else(|| bad(format!("unknown selection `{t}`")))?;
                Ok(Cond::Sel(i))
            }
        }
    }
}

fn parse_condition(s: &str, names: &[&str]) -> Result<Cond, Refusal> {
    let mut p = CondParser {
        toks: tokens(s),
        pos: 0,
        names,
    };
    let c = p.or(0)?;
    if p.pos != p.toks.len() {
        return Err(Refusal::Parse(format!(
            "condition: unexpected `{}`",
            p.toks[p.pos]
        )));
    }
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(detection: &str, service: &str) -> Result<Rule, Refusal> {
        let text = format!(
            "title: t\nid: 1\nlogsource:\n  product: azure\n  service: {service}\ndetection:\n{detection}\nlevel: high\n"
        );
        parse(&text).1
    }

    #[test]
    fn conditions_parse_with_precedence_and_globs() {
        let names = ["selection_a", "selection_b", "filter"];
        let c = parse_condition("1 of selection_* and not filter", &names).unwrap();
        assert!(
            matches!(c, Cond::And(ref v) if matches!(v[0], Cond::Or(_)) && matches!(v[1], Cond::Not(_)))
        );
        let c = parse_condition("selection_a or selection_b and filter", &names).unwrap();
        assert!(matches!(c, Cond::Or(ref v) if matches!(v[1], Cond::And(_))));
        assert!(parse_condition("(selection_a", &names).is_err());
        assert!(parse_condition("nope", &names).is_err());
        assert!(parse_condition("all of them", &names).is_ok());
    }

    #[test]
    fn refusals_name_what_is_wrong() {
        let r = rule("  sel:\n    Foo: 1\n  condition: sel", "signinlogs");
        assert_eq!(r.unwrap_err(), Refusal::UnknownField(vec!["Foo".into()]));
        let r = rule(
            "  sel:\n    x|expand: '%A%'\n  condition: sel",
            "signinlogs",
        );
        assert!(matches!(r.unwrap_err(), Refusal::Placeholder(_)));
        let r = rule(
            "  sel:\n    userAgent|base64: a\n  condition: sel",
            "signinlogs",
        );
        assert!(matches!(r.unwrap_err(), Refusal::Unsupported(_)));
        let r = rule("  sel:\n    userAgent: a\n  condition: sel", "activitylogs");
        assert!(matches!(r.unwrap_err(), Refusal::Logsource(_)));
        let r = rule(
            "  sel:\n    userAgent: a\n  condition: sel | count() > 5",
            "signinlogs",
        );
        assert!(matches!(r.unwrap_err(), Refusal::Unsupported(_)));
        let r = rule("  sel:\n    - a\n  condition: sel", "signinlogs");
        assert!(matches!(r.unwrap_err(), Refusal::Unsupported(_)));
        assert!(matches!(parse("::: nope").1, Err(Refusal::Parse(_))));
    }

    #[test]
    fn matchers_are_caseless_and_type_lenient() {
        let t = |m: Matcher, v: V| m.test(v);
        assert!(t(Matcher::Int(0), V::Str("0")));
        assert!(t(Matcher::Int(50053), V::Int(50053)));
        assert!(!t(Matcher::Int(0), V::Null));
        assert!(t(text_matcher(Cmp::Eq, "0").unwrap(), V::Int(0)));
        assert!(t(text_matcher(Cmp::Eq, "false").unwrap(), V::Bool(false)));
        assert!(t(Matcher::Bool(false), V::Str("False")));
        assert!(t(
            text_matcher(Cmp::Contains, "AzureHound").unwrap(),
            V::Str("x azurehound/2.0")
        ));
        assert!(!t(
            text_matcher(Cmp::Contains, "azurehound").unwrap(),
            V::Str("curl")
        ));
        assert!(t(text_matcher(Cmp::Starts, "ab").unwrap(), V::Str("ABC")));
        assert!(t(text_matcher(Cmp::Ends, "bc").unwrap(), V::Str("ABC")));
        assert!(t(text_matcher(Cmp::Eq, "a*c").unwrap(), V::Str("AxxC")));
        assert!(!t(text_matcher(Cmp::Eq, "a*c").unwrap(), V::Str("AxxCd")));
        assert!(t(text_matcher(Cmp::Eq, r"a\*c").unwrap(), V::Str("a*c")));
        assert!(t(text_matcher(Cmp::Eq, "").unwrap(), V::Null));
        assert!(t(Matcher::Null, V::Null));
        assert!(!t(Matcher::Null, V::Str("x")));
        assert!(t(parse_cidr("10.0.0.0/8").unwrap(), V::Str("10.2.3.4")));
        assert!(!t(parse_cidr("10.0.0.0/8").unwrap(), V::Str("11.2.3.4")));
        assert!(t(
            parse_cidr("2001:db8::/32").unwrap(),
            V::Str("2001:db8::1")
        ));
        assert!(t(Matcher::Exists(true), V::Str("")));
        assert!(t(Matcher::Exists(false), V::Null));
        let mut buf = [0u8; 24];
        assert_eq!(int_text(-50053, &mut buf), "-50053");
    }
}
