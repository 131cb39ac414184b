//! The config file: TOML, `${VAR}` / `${VAR:-default}` interpolation, unknown keys refused, and
//! validation that lists every problem at once with its path.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context as _, bail};
use entrawatch_detect::DetectConfig;
use serde::Deserialize;

/// A customer (or partner) tenant known by name.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantEntry {
    pub id: String,
    pub name: String,
}

/// Alert settings (`[alert]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertConfig {
    /// A repeat of a rule for a principal within this many hours of the last one joins its alert.
    pub episode_window_hours: i64,
}

impl Default for AlertConfig {
    fn default() -> Self {
        AlertConfig {
            episode_window_hours: entrawatch_alert::episodes::DEFAULT_WINDOW_HOURS,
        }
    }
}

/// The whole file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FileConfig {
    pub tenants: Vec<TenantEntry>,
    pub detect: DetectConfig,
    pub alert: AlertConfig,
}

impl FileConfig {
    /// Tenant id (lower case) to name.
    pub fn tenant_names(&self) -> BTreeMap<String, String> {
        self.tenants
            .iter()
            .map(|t| (t.id.to_ascii_lowercase(), t.name.clone()))
            .collect()
    }
}

/// Reads, interpolates, parses and validates a config file.
pub fn load(path: &Path) -> anyhow::Result<FileConfig> {
    let raw = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read config {}", path.display()))?;
    let text = interpolate(&raw, &|name| std::env::var(name).ok()).map_err(|problems| {
        anyhow::anyhow!("config {}:\n  {}", path.display(), problems.join("\n  "))
    })?;
    let config: FileConfig = toml::from_str(&text)
        .map_err(|e| anyhow::anyhow!("config {}: {}", path.display(), e.to_string().trim_end()))?;
    let problems = validate(&config);
    if !problems.is_empty() {
        bail!(
            "config {} has {} problem(s):\n  {}",
            path.display(),
            problems.len(),
            problems.join("\n  ")
        );
    }
    Ok(config)
}

/// Every problem in a parsed config.
pub fn validate(config: &FileConfig) -> Vec<String> {
    let mut problems = Vec::new();
    for (i, t) in config.tenants.iter().enumerate() {
        if !entrawatch_ingest::value::is_guid(&t.id) {
            problems.push(format!("tenants[{i}].id: {:?} is not a tenant GUID", t.id));
        }
        if t.name.trim().is_empty() {
            problems.push(format!("tenants[{i}].name: empty"));
        }
    }
    let rules: Vec<&str> = entrawatch_detect::registry::all()
        .iter()
        .map(|d| d.id())
        .collect();
    problems.extend(config.detect.validate(&rules));
    if config.alert.episode_window_hours <= 0 {
        problems.push("alert.episode_window_hours: must be greater than zero".to_owned());
    }
    problems
}

/// Replaces `${VAR}` and `${VAR:-default}`; `$$` is a literal `$`. Every unset variable without a
/// default is reported.
pub fn interpolate(
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<String, Vec<String>> {
    let mut out = String::with_capacity(text.len());
    let mut problems = Vec::new();
    let mut rest = text;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(body) = after.strip_prefix('{') {
            let Some(end) = body.find('}') else {
                problems.push(format!(
                    "unterminated ${{ at line {}",
                    text[..text.len() - rest.len() + pos].lines().count().max(1)
                ));
                out.push_str(&rest[pos..]);
                rest = "";
                break;
            };
            let expr = &body[..end];
            let (name, default) = match expr.split_once(":-") {
                Some((n, d)) => (n, Some(d)),
                None => (expr, None),
            };
            match (env(name), default) {
                (Some(v), _) if !v.is_empty() => out.push_str(&v),
                (_, Some(d)) => out.push_str(d),
                (Some(v), None) => out.push_str(&v),
                (None, None) => problems.push(format!("environment variable {name} is not set (write ${{{name}:-default}} for a default)")),
            }
            rest = &body[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interpolation() {
        let env = |n: &str| {
            (n == "HOME_TENANT").then(|| "33333333-cccc-4ccc-8ccc-333333333333".to_owned())
        };
        assert_eq!(
            interpolate("a = \"${HOME_TENANT}\"", &env).unwrap(),
            "a = \"33333333-cccc-4ccc-8ccc-333333333333\""
        );
        assert_eq!(interpolate("${NOPE:-x} $$ $5", &env).unwrap(), "x $ $5");
        let err = interpolate("${A} ${B}", &env).unwrap_err();
        assert_eq!(err.len(), 2);
        assert!(err[0].contains("A is not set"));
    }

    #[test]
    fn every_problem_is_listed_with_its_path() {
        let text = r#"
            [[tenants]]
            id = "contoso"
            name = ""
            [detect]
            partner_tenants = ["northwind"]
            enabled_rules = ["mfa-not-satisfied", "no-such-rule"]
            [detect.thresholds]
            spray_min_users = 0
            [alert]
            episode_window_hours = 0
        "#;
        let config: FileConfig = toml::from_str(text).unwrap();
        let problems = validate(&config);
        let paths: Vec<&str> = problems
            .iter()
            .map(|p| p.split(':').next().unwrap())
            .collect();
        assert_eq!(
            paths,
            vec![
                "tenants[0].id",
                "tenants[0].name",
                "detect.partner_tenants[0]",
                "detect.enabled_rules[1]",
                "detect.thresholds.spray_min_users",
                "alert.episode_window_hours"
            ]
        );
    }

    #[test]
    fn unknown_keys_are_refused() {
        let err = toml::from_str::<FileConfig>("[detect]\npartner_tenant = []\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown field `partner_tenant`"), "{err}");
    }
}
