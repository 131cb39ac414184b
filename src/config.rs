//! The config file: TOML, `${VAR}` / `${VAR:-default}` interpolation, unknown keys refused, and
//! validation that lists every problem at once with its path.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use entrawatch_alert::destination::{self, DestinationConfig};
use entrawatch_alert::inhibit::InhibitRule;
use entrawatch_alert::replay::ReplayConfig;
use entrawatch_alert::route::RouteConfig;
use entrawatch_alert::silence::SilenceConfig;
use entrawatch_alert::stage::{AlertConfig, Routing, StageConfig};
use entrawatch_detect::DetectConfig;
use entrawatch_ingest::secret::{Secret, SecretRef};
use entrawatch_ingest::sources::SourceConfig;
use serde::Deserialize;

/// What `run` and `validate` say when no destination is configured.
pub const NO_DESTINATIONS: &str = "destinations: none configured; `run` needs at least one ([[destinations]] type = \"stdout\" prints alerts)";

/// A customer (or partner) tenant known by name.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantEntry {
    pub id: String,
    pub name: String,
    /// Extra routing labels for this tenant's alerts (`tier = "gold"`).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// How logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// JSON when standard error is not a terminal, readable text when it is.
    #[default]
    Auto,
    Json,
    Text,
}

/// The service itself (`[service]`), used by `entrawatch run`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServiceConfig {
    /// Where the state snapshot, the outbox database and kept rejects live.
    pub state_dir: PathBuf,
    /// Address of the admin HTTP server (`/metrics`, `/livez`, `/readyz`, `/-/reload`,
    /// `/api/silences`).
    pub admin_listen: String,
    /// Where the bearer token of the admin API is (`{ env = "..." }` or `{ file = "..." }`).
    /// Creating and expiring silences and `POST /-/reload` need it; without it they are off.
    pub admin_token: Option<SecretRef>,
    /// When true, `/metrics` and `GET /api/silences` need the admin token too.
    pub metrics_token_required: bool,
    /// Seconds between state snapshots.
    pub snapshot_interval_secs: u64,
    /// Seconds SIGTERM may take: drain, snapshot, deliver what fits, exit.
    pub shutdown_grace_secs: u64,
    /// Batches waiting between the sources and detection (backpressure beyond this).
    pub channel_capacity: usize,
    /// Hours of event time a record id is remembered to drop repeats.
    pub dedup_window_hours: i64,
    /// Seconds of event time a lane (a Kafka partition) may deliver an event behind its newest
    /// one and still be in order: the event-time aligner holds events this long.
    pub out_of_order_secs: i64,
    /// Wall-clock seconds without data after which an input with nothing waiting to be read
    /// stops holding the event-time watermark back.
    pub idle_source_secs: u64,
    /// Events the aligner holds before it pauses the inputs furthest ahead.
    pub align_buffer_events: usize,
    pub log_format: LogFormat,
    /// `error`, `warn`, `info`, `debug`, `trace`, or a tracing filter (`info,entrawatch_ingest=debug`).
    pub log_level: String,
}

/// Fewest characters of an admin token (`openssl rand -hex 32` gives 64).
pub const ADMIN_TOKEN_MIN_CHARS: usize = 16;
/// Most characters of an admin token (it travels in a request header).
pub const ADMIN_TOKEN_MAX_CHARS: usize = 1024;

impl ServiceConfig {
    /// The admin token, read from where `admin_token` says; `None` when none is configured. The
    /// error names the variable or file and what is wrong, never the value.
    pub fn resolve_admin_token(&self) -> Result<Option<Secret>, String> {
        let Some(r) = &self.admin_token else {
            return Ok(None);
        };
        let path = "service.admin_token";
        let token = r.resolve(path).map_err(|e| {
            format!(
                "{e} (the admin API's bearer token: generate one with `openssl rand -hex 32`, or \
                 remove service.admin_token to turn the API's writes off)"
            )
        })?;
        let value = token.expose();
        let chars = value.chars().count();
        if chars < ADMIN_TOKEN_MIN_CHARS {
            return Err(format!(
                "{path}: the token has {chars} characters; use at least {ADMIN_TOKEN_MIN_CHARS} (e.g. `openssl rand -hex 32`)"
            ));
        }
        if chars > ADMIN_TOKEN_MAX_CHARS {
            return Err(format!(
                "{path}: the token has {chars} characters; at most {ADMIN_TOKEN_MAX_CHARS} fit in a request header"
            ));
        }
        if !value.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(format!(
                "{path}: the token may hold printable ASCII without spaces only (it is sent as `Authorization: Bearer <token>`)"
            ));
        }
        Ok(Some(token))
    }

    /// The event-time aligner's settings.
    pub fn align(&self) -> entrawatch_ingest::align::AlignConfig {
        entrawatch_ingest::align::AlignConfig {
            out_of_order_secs: self.out_of_order_secs,
            idle_secs: self.idle_source_secs,
            max_buffered: self.align_buffer_events,
        }
    }
}

impl Default for ServiceConfig {
    fn default() -> Self {
        let align = entrawatch_ingest::align::AlignConfig::default();
        ServiceConfig {
            state_dir: PathBuf::from("entrawatch-state"),
            admin_listen: "127.0.0.1:9898".to_owned(),
            admin_token: None,
            metrics_token_required: false,
            snapshot_interval_secs: 30,
            shutdown_grace_secs: 20,
            channel_capacity: 16,
            dedup_window_hours: entrawatch_alert::stage::DEFAULT_DEDUP_WINDOW_HOURS,
            out_of_order_secs: align.out_of_order_secs,
            idle_source_secs: align.idle_secs,
            align_buffer_events: align.max_buffered,
            log_format: LogFormat::Auto,
            log_level: "info".to_owned(),
        }
    }
}

/// The whole file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FileConfig {
    pub service: ServiceConfig,
    pub tenants: Vec<TenantEntry>,
    pub detect: DetectConfig,
    pub alert: AlertConfig,
    pub sources: Vec<SourceConfig>,
    pub destinations: Vec<DestinationConfig>,
    pub route: Option<RouteConfig>,
    pub silences: Vec<SilenceConfig>,
    pub inhibit_rules: Vec<InhibitRule>,
}

impl FileConfig {
    /// Tenant id (lower case) to name.
    pub fn tenant_names(&self) -> BTreeMap<String, String> {
        self.tenants
            .iter()
            .map(|t| (t.id.to_ascii_lowercase(), t.name.clone()))
            .collect()
    }

    /// Tenant id (lower case) to its routing labels.
    pub fn tenant_labels(&self) -> BTreeMap<String, BTreeMap<String, String>> {
        self.tenants
            .iter()
            .filter(|t| !t.labels.is_empty())
            .map(|t| (t.id.to_ascii_lowercase(), t.labels.clone()))
            .collect()
    }

    /// The alert stage's windows.
    pub fn stage_config(&self) -> StageConfig {
        StageConfig {
            episode_window_hours: self.alert.episode_window_hours,
            reminder_interval_hours: self.alert.reminder_interval_hours,
            dedup_window_hours: self.service.dedup_window_hours,
        }
    }

    /// What `replay` (and the simulator's evaluation and the benchmark) need of the config.
    pub fn replay_config(&self) -> ReplayConfig {
        ReplayConfig {
            detect: self.detect.clone(),
            stage: self.stage_config(),
            tenant_names: self.tenant_names(),
        }
    }

    /// The routing the alert stage runs with: route tree, inhibit rules, tenant names and labels.
    pub fn routing(&self) -> Result<Routing, Vec<String>> {
        let names: Vec<&str> = self.destinations.iter().map(|d| d.name()).collect();
        Routing::new(
            &self.route_config(),
            &names,
            &self.inhibit_rules,
            self.tenant_names(),
            self.tenant_labels(),
        )
    }

    /// Problems `validate` reports beyond the file itself: secrets that cannot be read, sources
    /// that cannot start, routing.
    pub fn deep_check(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if let Err(p) = self.service.resolve_admin_token() {
            problems.push(p);
        }
        if self.destinations.is_empty() {
            problems.push(NO_DESTINATIONS.to_owned());
            return problems;
        }
        if let Err(p) = destination::resolve_all(&self.destinations) {
            problems.extend(p);
        }
        for (i, s) in self.sources.iter().enumerate() {
            if let Err(p) = s.build() {
                problems.extend(p.into_iter().map(|m| format!("sources[{i}]: {m}")));
            }
        }
        if let Err(p) = self.routing() {
            problems.extend(p);
        }
        problems
    }

    /// The route tree: the configured one, or everything to every destination.
    pub fn route_config(&self) -> RouteConfig {
        self.route.clone().unwrap_or_else(|| {
            let names: Vec<&str> = self.destinations.iter().map(|d| d.name()).collect();
            RouteConfig::default_for(&names)
        })
    }
}

/// Reads, interpolates, parses and validates a config file, with `ENTRAWATCH_*` overrides from
/// the process environment.
pub fn load(path: &Path) -> anyhow::Result<FileConfig> {
    let env: BTreeMap<String, String> = std::env::vars().collect();
    load_with(path, &env)
}

/// [`load`] with the environment passed in.
pub fn load_with(path: &Path, env: &BTreeMap<String, String>) -> anyhow::Result<FileConfig> {
    let raw = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read config {}", path.display()))?;
    parse(&raw, env).map_err(|problems| {
        anyhow::anyhow!(
            "config {} has {} problem(s):\n  {}",
            path.display(),
            problems.len(),
            problems.join("\n  ")
        )
    })
}

/// Text to a validated config: interpolation, TOML, `ENTRAWATCH_*` overrides, every section parsed
/// on its own (so one bad section does not hide another's problems), then validation. Every problem
/// found on the way is returned at once.
pub fn parse(raw: &str, env: &BTreeMap<String, String>) -> Result<FileConfig, Vec<String>> {
    let text = interpolate(raw, &|name| env.get(name).cloned())?;
    let mut table: toml::Table =
        toml::from_str(&text).map_err(|e| vec![format!("toml: {}", e.to_string().trim_end())])?;
    let mut problems = apply_overrides(&mut table, env);
    let config = sections(table, &mut problems);
    problems.extend(validate(&config));
    if problems.is_empty() {
        Ok(config)
    } else {
        Err(problems)
    }
}

/// `ENTRAWATCH_SERVICE__ADMIN_LISTEN=0.0.0.0:9898` sets `service.admin_listen`: the variable name
/// after the prefix, lower-cased, with `__` between path segments. Values are read as TOML
/// scalars (numbers, booleans) when they parse as one, else as strings.
pub fn apply_overrides(table: &mut toml::Table, env: &BTreeMap<String, String>) -> Vec<String> {
    let mut problems = Vec::new();
    for (name, value) in env {
        let Some(rest) = name.strip_prefix("ENTRAWATCH_") else {
            continue;
        };
        if !rest.contains("__") {
            continue;
        }
        let path: Vec<String> = rest.split("__").map(str::to_ascii_lowercase).collect();
        let parsed = toml::from_str::<toml::Table>(&format!("v = {value}"))
            .ok()
            .and_then(|mut t| t.remove("v"))
            .filter(|v| !v.is_table())
            .unwrap_or_else(|| toml::Value::String(value.clone()));
        if let Err(at) = set_path(table, &path, parsed) {
            problems.push(format!(
                "{name}: {at} is not a table, cannot override inside it"
            ));
        }
    }
    problems
}

/// Sets `value` at `path`, creating tables on the way; the error names the first non-table.
fn set_path(table: &mut toml::Table, path: &[String], value: toml::Value) -> Result<(), String> {
    let (first, rest) = path.split_first().expect("a path has one part at least");
    if rest.is_empty() {
        table.insert(first.clone(), value);
        return Ok(());
    }
    match table
        .entry(first.clone())
        .or_insert_with(|| toml::Value::Table(toml::Table::new()))
    {
        toml::Value::Table(inner) => {
            set_path(inner, rest, value).map_err(|e| format!("{first}.{e}"))
        }
        _ => Err(first.clone()),
    }
}

/// Deserialises each top-level section (and each element of the arrays of tables) separately.
fn sections(mut table: toml::Table, problems: &mut Vec<String>) -> FileConfig {
    fn one<T: serde::de::DeserializeOwned + Default>(
        table: &mut toml::Table,
        key: &str,
        problems: &mut Vec<String>,
    ) -> T {
        match table.remove(key) {
            None => T::default(),
            Some(v) => T::deserialize(v).unwrap_or_else(|e| {
                problems.push(format!("{key}: {}", e.to_string().trim_end()));
                T::default()
            }),
        }
    }
    fn many<T: serde::de::DeserializeOwned>(
        table: &mut toml::Table,
        key: &str,
        problems: &mut Vec<String>,
    ) -> Vec<T> {
        match table.remove(key) {
            None => Vec::new(),
            Some(toml::Value::Array(items)) => items
                .into_iter()
                .enumerate()
                .filter_map(|(i, v)| {
                    T::deserialize(v)
                        .map_err(|e| {
                            problems.push(format!("{key}[{i}]: {}", e.to_string().trim_end()))
                        })
                        .ok()
                })
                .collect(),
            Some(_) => {
                problems.push(format!("{key}: must be an array of tables ([[{key}]])"));
                Vec::new()
            }
        }
    }
    let config = FileConfig {
        service: one(&mut table, "service", problems),
        tenants: many(&mut table, "tenants", problems),
        detect: one(&mut table, "detect", problems),
        alert: one(&mut table, "alert", problems),
        sources: many(&mut table, "sources", problems),
        destinations: many(&mut table, "destinations", problems),
        route: match table.remove("route") {
            None => None,
            Some(v) => RouteConfig::deserialize(v)
                .map_err(|e| problems.push(format!("route: {}", e.to_string().trim_end())))
                .ok(),
        },
        silences: many(&mut table, "silences", problems),
        inhibit_rules: many(&mut table, "inhibit_rules", problems),
    };
    for key in table.keys() {
        problems.push(format!(
            "{key}: unknown section (known: service, tenants, detect, alert, sources, destinations, route, silences, inhibit_rules)"
        ));
    }
    config
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
    problems.extend(config.alert.validate("alert"));
    let s = &config.service;
    if s.admin_listen.parse::<std::net::SocketAddr>().is_err() {
        problems.push(format!(
            "service.admin_listen: {:?} is not an address:port",
            s.admin_listen
        ));
    }
    if let Some(token) = &s.admin_token {
        problems.extend(token.check("service.admin_token"));
    }
    if s.metrics_token_required && s.admin_token.is_none() {
        problems.push(
            "service.metrics_token_required: true needs service.admin_token (the token scrapers then send)"
                .to_owned(),
        );
    }
    if s.snapshot_interval_secs == 0 {
        problems.push("service.snapshot_interval_secs: must be at least 1".to_owned());
    }
    if s.channel_capacity == 0 {
        problems.push("service.channel_capacity: must be at least 1".to_owned());
    }
    if !(0..=7 * 24 * 3600).contains(&s.out_of_order_secs) {
        problems.push(format!(
            "service.out_of_order_secs: {} is outside 0..=604800 (a week)",
            s.out_of_order_secs
        ));
    }
    if s.idle_source_secs == 0 {
        problems.push("service.idle_source_secs: must be at least 1".to_owned());
    }
    if s.align_buffer_events < 1000 {
        problems.push(format!(
            "service.align_buffer_events: {} is below 1000",
            s.align_buffer_events
        ));
    }
    if s.dedup_window_hours < 0 {
        problems.push("service.dedup_window_hours: must not be negative".to_owned());
    }
    let mut names = std::collections::BTreeSet::new();
    for (i, source) in config.sources.iter().enumerate() {
        let path = format!("sources[{i}]");
        if !names.insert(source.name().to_owned()) {
            problems.push(format!("{path}.name: {:?} is used twice", source.name()));
        }
        problems.extend(source.validate(&path));
    }
    let mut names = std::collections::BTreeSet::new();
    for (i, d) in config.destinations.iter().enumerate() {
        let path = format!("destinations[{i}]");
        if !names.insert(d.name().to_owned()) {
            problems.push(format!("{path}.name: {:?} is used twice", d.name()));
        }
        problems.extend(d.validate(&path));
    }
    let known: Vec<&str> = config.destinations.iter().map(|d| d.name()).collect();
    if config.route.is_some() || !known.is_empty() {
        problems.extend(config.route_config().validate("route", &known));
    }
    for (i, silence) in config.silences.iter().enumerate() {
        problems.extend(silence.validate(&format!("silences[{i}]")));
    }
    for (i, rule) in config.inhibit_rules.iter().enumerate() {
        problems.extend(rule.validate(&format!("inhibit_rules[{i}]")));
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

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn problems_in_every_section_are_listed_at_once() {
        let text = r#"
            [service]
            admin_listen = "nowhere"
            snapshot_interval_secs = 0
            [[sources]]
            type = "file"
            name = "a"
            path = "/no/such/folder"
            [[sources]]
            type = "carrier-pigeon"
            name = "b"
            [[sources]]
            type = "file"
            name = "a"
            path = "/"
            colour = "blue"
            [[destinations]]
            type = "stdout"
            name = "out"
            [route]
            receivers = ["nowhere"]
            [alert]
            episode_window_hours = 0
            [extra]
            x = 1
        "#;
        let problems = parse(text, &BTreeMap::new()).unwrap_err();
        let joined = problems.join("\n");
        for expected in [
            "sources[1]: unknown variant `carrier-pigeon`",
            "sources[2]: unknown field `colour`",
            "extra: unknown section",
            "service.admin_listen",
            "service.snapshot_interval_secs",
            "sources[0].path: /no/such/folder does not exist",
            "route.receivers[0]",
            "alert.episode_window_hours",
        ] {
            assert!(
                joined.contains(expected),
                "missing {expected:?} in:\n{joined}"
            );
        }
    }

    #[test]
    fn environment_overrides_win_over_the_file() {
        let text = "[service]\nadmin_listen = \"127.0.0.1:1\"\nshutdown_grace_secs = 5\n";
        let config = parse(
            text,
            &env(&[
                ("ENTRAWATCH_SERVICE__ADMIN_LISTEN", "0.0.0.0:9898"),
                ("ENTRAWATCH_SERVICE__SHUTDOWN_GRACE_SECS", "30"),
                ("ENTRAWATCH_ALERT__REMINDER_INTERVAL_HOURS", "2"),
                ("ENTRAWATCH_UNRELATED", "x"),
            ]),
        )
        .unwrap();
        assert_eq!(config.service.admin_listen, "0.0.0.0:9898");
        assert_eq!(config.service.shutdown_grace_secs, 30);
        assert_eq!(config.alert.reminder_interval_hours, 2);
        // A bad override is reported like a bad file value.
        let err = parse(
            text,
            &env(&[("ENTRAWATCH_SERVICE__SHUTDOWN_GRACE_SECS", "soon")]),
        )
        .unwrap_err();
        assert!(err[0].starts_with("service:"), "{err:?}");
        let err = parse(text, &env(&[("ENTRAWATCH_SERVICE__ADMIN_LISTEN__X", "1")])).unwrap_err();
        assert!(
            err[0].contains("service.admin_listen is not a table"),
            "{err:?}"
        );
    }

    #[test]
    fn the_admin_token_is_checked_and_read() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("token");
        let config = |extra: &str| {
            parse(
                &format!("[service]\n{extra}\n"),
                &env(&[("EW_SHORT", "short"), ("EW_GOOD", "0123456789abcdef0123")]),
            )
        };
        // None configured: nothing to read, writes stay off.
        assert!(
            config("")
                .unwrap()
                .service
                .resolve_admin_token()
                .unwrap()
                .is_none()
        );
        // The reference itself is checked with the file.
        let err = config("admin_token = {}").unwrap_err();
        assert!(err[0].starts_with("service.admin_token:"), "{err:?}");
        let err = config("metrics_token_required = true").unwrap_err();
        assert!(
            err[0].starts_with("service.metrics_token_required:") && err[0].contains("admin_token"),
            "{err:?}"
        );
        // Reading it: unset, too short, unreadable file, then a good one.
        let service = |r: SecretRef| ServiceConfig {
            admin_token: Some(r),
            ..ServiceConfig::default()
        };
        let unset = service(SecretRef {
            env: Some("EW_TEST_SURELY_UNSET_ADMIN_TOKEN".into()),
            file: None,
        });
        let err = unset.resolve_admin_token().unwrap_err();
        assert!(
            err.contains("service.admin_token") && err.contains("EW_TEST_SURELY_UNSET_ADMIN_TOKEN"),
            "{err}"
        );
        std::fs::write(&file, "short\n").unwrap();
        let short = service(SecretRef {
            env: None,
            file: Some(file.clone()),
        });
        let err = short.resolve_admin_token().unwrap_err();
        assert!(
            err.contains("at least 16") && !err.contains("short\n"),
            "{err}"
        );
        std::fs::write(&file, "with a space in it, long enough\n").unwrap();
        assert!(
            short
                .resolve_admin_token()
                .unwrap_err()
                .contains("without spaces")
        );
        std::fs::write(&file, "0123456789abcdef0123\n").unwrap();
        assert_eq!(
            short.resolve_admin_token().unwrap().unwrap().expose(),
            "0123456789abcdef0123"
        );
        let missing = service(SecretRef {
            env: None,
            file: Some(dir.path().join("nope")),
        });
        assert!(
            missing
                .resolve_admin_token()
                .unwrap_err()
                .contains("cannot read")
        );
        // `validate` lists an unreadable token with the other problems.
        let config = FileConfig {
            service: missing.clone(),
            ..FileConfig::default()
        };
        let problems = config.deep_check();
        assert!(
            problems[0].starts_with("service.admin_token:"),
            "{problems:?}"
        );
        assert!(
            problems.iter().any(|p| p == NO_DESTINATIONS),
            "{problems:?}"
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
