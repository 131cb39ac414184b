//! Label matchers, Alertmanager style: the one condition language of routes, silences and inhibit
//! rules.
//!
//! What comes in: matcher strings from the config file or the silences API. What goes out: a parsed
//! [`Matcher`] that tests [`Labels`], or a [`MatcherError`] that says what is wrong.
//!
//! | matcher | matches when the label value |
//! | --- | --- |
//! | `name="value"` | equals `value` |
//! | `name!="value"` | differs from `value` |
//! | `name=~"regex"` | matches `regex` as a whole (it is anchored: `^(?:regex)$`) |
//! | `name!~"regex"` | does not match `regex` as a whole |
//!
//! Quotes around the value are optional (`rule=brute-force`); quote a value with spaces at its ends,
//! a `"`, or a leading `=` or `~`. Inside quotes `\"` is a quote, `\\` a backslash, `\n` and `\t`
//! a newline and a tab; any other backslash is kept as it is, so `rule=~"brute\-force"` needs no
//! doubling. A label the alert lacks has the value `""`: `upn=""` matches alerts without a UPN and
//! `upn!=""` alerts with one. Regexes use the `regex` crate's syntax (RE2-like, linear time);
//! matching is case-sensitive unless the regex starts with `(?i)`.
//!
//! In TOML, write matchers as literal strings so the quotes need no escaping:
//!
//! ```toml
//! matchers = ['severity=~"high|critical"', 'rule!="log-source-silent"', 'tenant="contoso"']
//! ```

use std::fmt;
use std::str::FromStr;

use regex::Regex;

use crate::labels::{Labels, is_valid_label_name};

/// How a matcher compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MatchOp {
    /// `=`
    Eq,
    /// `!=`
    Ne,
    /// `=~`
    Re,
    /// `!~`
    NotRe,
}

impl MatchOp {
    pub fn as_str(self) -> &'static str {
        match self {
            MatchOp::Eq => "=",
            MatchOp::Ne => "!=",
            MatchOp::Re => "=~",
            MatchOp::NotRe => "!~",
        }
    }
}

/// Why a matcher string does not parse. Each message quotes the input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MatcherError {
    #[error("empty matcher")]
    Empty,
    #[error("{0:?}: missing label name before the operator")]
    MissingName(String),
    #[error(
        "{input:?}: invalid label name {name:?} (letters, digits and _, not starting with a digit)"
    )]
    BadName { input: String, name: String },
    #[error("{0:?}: expected =, !=, =~ or !~ after the label name")]
    NoOperator(String),
    #[error("{0:?}: unterminated quoted value")]
    Unterminated(String),
    #[error("{0:?}: unexpected text after the closing quote")]
    TrailingText(String),
    #[error("{0:?}: unquoted value contains a quote")]
    StrayQuote(String),
    #[error("{input:?}: unquoted value starts with {first:?}; quote the value if that is meant")]
    Ambiguous { input: String, first: char },
    #[error("{input:?}: invalid regex {pattern:?}: {reason}")]
    BadRegex {
        input: String,
        pattern: String,
        reason: String,
    },
}

/// One parsed matcher.
#[derive(Debug, Clone)]
pub struct Matcher {
    name: String,
    op: MatchOp,
    value: String,
    /// The anchored regex, for `=~` and `!~`.
    re: Option<Regex>,
}

impl PartialEq for Matcher {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.op == other.op && self.value == other.value
    }
}

impl Eq for Matcher {}

impl Matcher {
    /// A matcher from its parts (the regex, if any, is compiled and anchored here).
    pub fn new(name: &str, op: MatchOp, value: &str) -> Result<Matcher, MatcherError> {
        let input = || format!("{name}{}{}", op.as_str(), quote(value));
        if name.is_empty() {
            return Err(MatcherError::MissingName(input()));
        }
        if !is_valid_label_name(name) {
            return Err(MatcherError::BadName {
                input: input(),
                name: name.to_owned(),
            });
        }
        let re = match op {
            MatchOp::Eq | MatchOp::Ne => None,
            MatchOp::Re | MatchOp::NotRe => {
                Some(compile(value).map_err(|reason| MatcherError::BadRegex {
                    input: input(),
                    pattern: value.to_owned(),
                    reason,
                })?)
            }
        };
        Ok(Matcher {
            name: name.to_owned(),
            op,
            value: value.to_owned(),
            re,
        })
    }

    /// Parses `name<op>value` (see the module docs).
    pub fn parse(input: &str) -> Result<Matcher, MatcherError> {
        let s = input.trim();
        if s.is_empty() {
            return Err(MatcherError::Empty);
        }
        let own = || s.to_owned();
        let name_end = s
            .find(|c: char| c == '=' || c == '!' || c == '~' || c.is_whitespace())
            .unwrap_or(s.len());
        let name = &s[..name_end];
        let rest = s[name_end..].trim_start();
        let (op, rest) = if let Some(r) = rest.strip_prefix("=~") {
            (MatchOp::Re, r)
        } else if let Some(r) = rest.strip_prefix("!~") {
            (MatchOp::NotRe, r)
        } else if let Some(r) = rest.strip_prefix("!=") {
            (MatchOp::Ne, r)
        } else if let Some(r) = rest.strip_prefix('=') {
            (MatchOp::Eq, r)
        } else if name.is_empty() {
            return Err(MatcherError::MissingName(own()));
        } else if !is_valid_label_name(name) {
            return Err(MatcherError::BadName {
                input: own(),
                name: name.to_owned(),
            });
        } else {
            return Err(MatcherError::NoOperator(own()));
        };
        if name.is_empty() {
            return Err(MatcherError::MissingName(own()));
        }
        if !is_valid_label_name(name) {
            return Err(MatcherError::BadName {
                input: own(),
                name: name.to_owned(),
            });
        }
        let rest = rest.trim_start();
        let value = if let Some(quoted) = rest.strip_prefix('"') {
            unquote(quoted)
                .ok_or_else(|| MatcherError::Unterminated(own()))
                .and_then(|(v, tail)| {
                    if tail.trim().is_empty() {
                        Ok(v)
                    } else {
                        Err(MatcherError::TrailingText(own()))
                    }
                })?
        } else {
            if rest.contains('"') {
                return Err(MatcherError::StrayQuote(own()));
            }
            if let Some(first @ ('=' | '~')) = rest.chars().next() {
                return Err(MatcherError::Ambiguous {
                    input: own(),
                    first,
                });
            }
            rest.to_owned()
        };
        Matcher::new(name, op, &value).map_err(|e| match e {
            MatcherError::BadRegex {
                pattern, reason, ..
            } => MatcherError::BadRegex {
                input: own(),
                pattern,
                reason,
            },
            other => other,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn op(&self) -> MatchOp {
        self.op
    }

    pub fn value(&self) -> &str {
        &self.value
    }

    /// Whether the labels satisfy this matcher; an absent label has the value `""`.
    pub fn matches(&self, labels: &Labels) -> bool {
        self.matches_value(labels.get(&self.name).map_or("", String::as_str))
    }

    /// Whether a label value satisfies this matcher.
    pub fn matches_value(&self, v: &str) -> bool {
        match (self.op, &self.re) {
            (MatchOp::Eq, _) => v == self.value,
            (MatchOp::Ne, _) => v != self.value,
            (MatchOp::Re, Some(re)) => re.is_match(v),
            (MatchOp::NotRe, Some(re)) => !re.is_match(v),
            // `new` always compiles a regex for the regex operators.
            (MatchOp::Re | MatchOp::NotRe, None) => false,
        }
    }
}

impl FromStr for Matcher {
    type Err = MatcherError;
    fn from_str(s: &str) -> Result<Matcher, MatcherError> {
        Matcher::parse(s)
    }
}

/// The canonical form, `name<op>"value"`, which parses back to an equal matcher.
impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}{}", self.name, self.op.as_str(), quote(&self.value))
    }
}

/// Whether every matcher matches (true for an empty list).
pub fn matches_all(matchers: &[Matcher], labels: &Labels) -> bool {
    matchers.iter().all(|m| m.matches(labels))
}

/// Parses a config list of matchers; each failure is pushed to `problems` as `path[i]: message`.
/// Returns the matchers that parsed.
pub fn parse_list(list: &[String], path: &str, problems: &mut Vec<String>) -> Vec<Matcher> {
    let mut out = Vec::with_capacity(list.len());
    for (i, s) in list.iter().enumerate() {
        match Matcher::parse(s) {
            Ok(m) => out.push(m),
            Err(e) => problems.push(format!("{path}[{i}]: {e}")),
        }
    }
    out
}

/// `"value"` with `"` and `\` escaped (and newlines and tabs spelt out).
pub(crate) fn quote(value: &str) -> String {
    let mut s = String::with_capacity(value.len() + 2);
    s.push('"');
    for c in value.chars() {
        match c {
            '"' => s.push_str("\\\""),
            '\\' => s.push_str("\\\\"),
            '\n' => s.push_str("\\n"),
            '\t' => s.push_str("\\t"),
            c => s.push(c),
        }
    }
    s.push('"');
    s
}

/// Reads a quoted value after its opening quote: (value, text after the closing quote), or `None`
/// when the closing quote is missing.
fn unquote(s: &str) -> Option<(String, &str)> {
    let mut out = String::new();
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((out, &s[i + 1..])),
            '\\' => match chars.next()?.1 {
                '"' => out.push('"'),
                '\\' => out.push('\\'),
                'n' => out.push('\n'),
                't' => out.push('\t'),
                other => {
                    out.push('\\');
                    out.push(other);
                }
            },
            c => out.push(c),
        }
    }
    None
}

/// Compiles `^(?:pattern)$`; the error is the regex crate's one-line reason about the user's
/// pattern (not the anchored one).
fn compile(pattern: &str) -> Result<Regex, String> {
    let reason = |e: regex::Error| {
        let text = e.to_string();
        text.lines()
            .rev()
            .find_map(|l| l.trim().strip_prefix("error: ").map(str::to_owned))
            .unwrap_or_else(|| text.lines().map(str::trim).collect::<Vec<_>>().join(" "))
    };
    Regex::new(pattern).map_err(reason)?;
    Regex::new(&format!("^(?:{pattern})$")).map_err(reason)
}

/// The ```` ```toml ```` blocks of a module's `//!` docs, so tests can parse the documented examples.
#[cfg(test)]
pub(crate) fn doc_toml(src: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in src.lines() {
        let Some(doc) = line.strip_prefix("//!") else {
            continue;
        };
        let doc = doc.strip_prefix(' ').unwrap_or(doc);
        match (&mut current, doc.trim()) {
            (None, "```toml") => current = Some(String::new()),
            (Some(_), "```") => blocks.extend(current.take()),
            (Some(b), _) => {
                b.push_str(doc);
                b.push('\n');
            }
            (None, _) => {}
        }
    }
    blocks
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn parse_table() {
        // (input, name, op, value)
        let cases: &[(&str, &str, MatchOp, &str)] = &[
            (r#"rule="brute-force""#, "rule", MatchOp::Eq, "brute-force"),
            ("rule=brute-force", "rule", MatchOp::Eq, "brute-force"),
            (
                r#"  rule = "brute-force"  "#,
                "rule",
                MatchOp::Eq,
                "brute-force",
            ),
            (
                r#"severity=~"high|critical""#,
                "severity",
                MatchOp::Re,
                "high|critical",
            ),
            (
                "severity=~high|critical",
                "severity",
                MatchOp::Re,
                "high|critical",
            ),
            (r#"severity!="info""#, "severity", MatchOp::Ne, "info"),
            (r#"rule!~"risky-.*""#, "rule", MatchOp::NotRe, "risky-.*"),
            (r#"upn="""#, "upn", MatchOp::Eq, ""),
            ("upn=", "upn", MatchOp::Eq, ""),
            ("upn!=", "upn", MatchOp::Ne, ""),
            (r#"tenant="a \"b\" c""#, "tenant", MatchOp::Eq, r#"a "b" c"#),
            (
                r#"tenant="back\\slash""#,
                "tenant",
                MatchOp::Eq,
                r"back\slash",
            ),
            (
                r#"rule=~"brute\-force""#,
                "rule",
                MatchOp::Re,
                r"brute\-force",
            ),
            (r#"tenant=" padded ""#, "tenant", MatchOp::Eq, " padded "),
            ("tenant=two words", "tenant", MatchOp::Eq, "two words"),
            ("_x=1", "_x", MatchOp::Eq, "1"),
        ];
        for (input, name, op, value) in cases {
            let m = Matcher::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(
                (m.name(), m.op(), m.value()),
                (*name, *op, *value),
                "{input}"
            );
            // The canonical form parses back to the same matcher.
            let again = Matcher::parse(&m.to_string()).unwrap();
            assert_eq!(again, m, "{input} -> {m}");
        }
    }

    #[test]
    fn parse_errors_table() {
        let cases: &[(&str, &str)] = &[
            ("", "empty matcher"),
            ("   ", "empty matcher"),
            (
                r#"="x""#,
                r#""=\"x\"": missing label name before the operator"#,
            ),
            (
                "severity",
                r#""severity": expected =, !=, =~ or !~ after the label name"#,
            ),
            (
                "severity high",
                r#""severity high": expected =, !=, =~ or !~ after the label name"#,
            ),
            (
                "severity<high",
                r#""severity<high": invalid label name "severity<high""#,
            ),
            ("9sev=high", r#""9sev=high": invalid label name "9sev""#),
            ("a-b=high", r#""a-b=high": invalid label name "a-b""#),
            (
                r#"rule="brute"#,
                r#""rule=\"brute": unterminated quoted value"#,
            ),
            (r#"rule="a\"#, r#""rule=\"a\\": unterminated quoted value"#),
            (
                r#"rule="a" b"#,
                r#""rule=\"a\" b": unexpected text after the closing quote"#,
            ),
            (
                r#"rule=a"b"#,
                r#""rule=a\"b": unquoted value contains a quote"#,
            ),
            ("rule==x", r#""rule==x": unquoted value starts with '='"#),
            ("rule=~~x", r#""rule=~~x": unquoted value starts with '~'"#),
            (
                r#"rule=~"(""#,
                r#""rule=~\"(\"": invalid regex "(": unclosed group"#,
            ),
            (
                r#"rule!~"[a""#,
                r#""rule!~\"[a\"": invalid regex "[a": unclosed character class"#,
            ),
        ];
        for (input, want) in cases {
            let err = Matcher::parse(input).expect_err(input).to_string();
            assert!(
                err.starts_with(want),
                "{input}: got {err:?}, want prefix {want:?}"
            );
            assert!(!err.contains('\n'), "{input}: multi-line error {err:?}");
        }
    }

    #[test]
    fn matching_table() {
        let l = labels(&[
            ("severity", "high"),
            ("rule", "brute-force"),
            ("tenant", "Contoso"),
        ]);
        // (matcher, matches l)
        let cases: &[(&str, bool)] = &[
            (r#"severity="high""#, true),
            (r#"severity="hig""#, false),
            (r#"severity!="high""#, false),
            (r#"severity!="low""#, true),
            (r#"severity=~"high|critical""#, true),
            (r#"severity=~"low|medium""#, false),
            // Anchored: a regex must match the whole value, not a part of it.
            (r#"severity=~"hig""#, false),
            (r#"severity=~"igh""#, false),
            (r#"severity=~"h.*""#, true),
            (r#"rule=~"brute""#, false),
            (r#"rule=~"brute|x""#, false),
            (r#"rule=~"x|brute-force""#, true),
            (r#"rule!~"brute""#, true),
            (r#"rule!~"brute-.*""#, false),
            // Case-sensitive unless asked.
            (r#"tenant="contoso""#, false),
            (r#"tenant=~"(?i)contoso""#, true),
            // An absent label is "".
            (r#"upn="""#, true),
            (r#"upn!="""#, false),
            (r#"upn=~".*""#, true),
            (r#"upn=~".+""#, false),
            (r#"upn!~".+""#, true),
            (r#"upn="x""#, false),
            (r#"upn!="x""#, true),
            (r#"tenant="""#, false),
        ];
        for (m, want) in cases {
            let matcher = Matcher::parse(m).unwrap();
            assert_eq!(matcher.matches(&l), *want, "{m}");
        }
    }

    #[test]
    fn list_parsing_reports_every_problem_with_its_path() {
        let list: Vec<String> = ["rule=x", "bad", r#"rule=~"(""#, "severity=high"]
            .map(str::to_owned)
            .to_vec();
        let mut problems = vec![];
        let ms = parse_list(&list, "route.matchers", &mut problems);
        assert_eq!(ms.len(), 2);
        assert_eq!(problems.len(), 2);
        assert!(
            problems[0].starts_with("route.matchers[1]: \"bad\""),
            "{problems:?}"
        );
        assert!(
            problems[1].starts_with("route.matchers[2]: "),
            "{problems:?}"
        );
        assert!(matches_all(
            &ms,
            &labels(&[("rule", "x"), ("severity", "high")])
        ));
        assert!(!matches_all(
            &ms,
            &labels(&[("rule", "x"), ("severity", "low")])
        ));
        assert!(matches_all(&[], &Labels::new()));
    }

    #[test]
    fn display_quotes_and_escapes() {
        let m = Matcher::new("tenant", MatchOp::Ne, "a\"b\\c\nd").unwrap();
        assert_eq!(m.to_string(), r#"tenant!="a\"b\\c\nd""#);
        assert_eq!(Matcher::parse(&m.to_string()).unwrap(), m);
        assert!(Matcher::new("", MatchOp::Eq, "x").is_err());
        assert!(Matcher::new("a.b", MatchOp::Eq, "x").is_err());
    }
}
