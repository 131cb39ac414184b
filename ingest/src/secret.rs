//! Secrets in config: written as where to find them, never as the value itself.
//!
//! ```toml
//! client_secret = { env = "GRAPH_CLIENT_SECRET" }
//! url = { file = "/run/secrets/teams-url" }
//! ```
//!
//! [`SecretRef::resolve`] reads the value once at start (a trailing newline of a mounted file is
//! dropped); [`Secret`] never prints its value in `Debug` or `Display`, so it cannot reach a log.

use std::fmt;
use std::path::PathBuf;

use serde::Deserialize;

/// Where a secret comes from.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretRef {
    /// An environment variable holding the value.
    #[serde(default)]
    pub env: Option<String>,
    /// A file holding the value (a Kubernetes secret mount).
    #[serde(default)]
    pub file: Option<PathBuf>,
}

/// A resolved secret value.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The value, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl SecretRef {
    /// Problems with the reference itself (`path` names it in messages), without reading it.
    pub fn check(&self, path: &str) -> Vec<String> {
        match (&self.env, &self.file) {
            (Some(_), Some(_)) => vec![format!("{path}: give either env or file, not both")],
            (None, None) => vec![format!("{path}: give env = \"VAR\" or file = \"/path\"")],
            _ => Vec::new(),
        }
    }

    /// Reads the value. The error names the variable or file, never a value.
    pub fn resolve(&self, path: &str) -> Result<Secret, String> {
        self.resolve_with(path, &|name| std::env::var(name).ok())
    }

    /// [`SecretRef::resolve`] with the environment passed in (tests).
    pub fn resolve_with(
        &self,
        path: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Secret, String> {
        if let Some(problem) = self.check(path).into_iter().next() {
            return Err(problem);
        }
        if let Some(name) = &self.env {
            return match env(name) {
                Some(v) if !v.trim().is_empty() => Ok(Secret(v.trim().to_owned())),
                _ => Err(format!(
                    "{path}: environment variable {name} is not set or empty"
                )),
            };
        }
        let file = self.file.as_ref().expect("checked");
        match std::fs::read_to_string(file) {
            Ok(v) if !v.trim().is_empty() => Ok(Secret(v.trim().to_owned())),
            Ok(_) => Err(format!("{path}: secret file {} is empty", file.display())),
            Err(e) => Err(format!(
                "{path}: cannot read secret file {}: {e}",
                file.display()
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_from_env_and_file_and_never_prints_the_value() {
        let r = SecretRef {
            env: Some("X".into()),
            file: None,
        };
        let s = r
            .resolve_with("a.b", &|n| (n == "X").then(|| "hunter2\n".to_owned()))
            .unwrap();
        assert_eq!(s.expose(), "hunter2");
        assert!(!format!("{s:?} {s}").contains("hunter2"));
        let err = r.resolve_with("a.b", &|_| None).unwrap_err();
        assert!(err.contains("a.b") && err.contains('X'));

        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("s");
        std::fs::write(&f, "from-file\n").unwrap();
        let r = SecretRef {
            env: None,
            file: Some(f),
        };
        assert_eq!(r.resolve("c").unwrap().expose(), "from-file");
        let both = SecretRef {
            env: Some("X".into()),
            file: Some("/x".into()),
        };
        assert_eq!(both.check("d").len(), 1);
    }
}
