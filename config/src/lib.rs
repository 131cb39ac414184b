//! The config file: TOML, `${VAR}` / `${VAR:-default}` interpolation, unknown keys refused, and
//! validation that lists every problem at once with its path.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use entrawatch_alert::destination::DestinationConfig;
use entrawatch_alert::inhibit::InhibitRule;
use entrawatch_alert::replay::ReplayConfig;
use entrawatch_alert::route::RouteConfig;
use entrawatch_alert::silence::SilenceConfig;
use entrawatch_alert::stage::{AlertConfig, Routing, StageConfig};
use entrawatch_detect::DetectConfig;
use entrawatch_ingest::secret::{Secret, SecretRef};
use entrawatch_ingest::sources::SourceConfig;
use serde::Deserialize;
use serde::de::DeserializeOwned;

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
    /// `[sigma]`: Sigma rule folders and filters (docs/sigma.md).
    pub sigma: Option<entrawatch_sigma::SigmaConfig>,
    /// Where the entries of the arrays of tables stand in the file (not a key of the file).
    #[serde(skip)]
    entries: Entries,
}

/// Where the entries of the arrays of tables stood in the file. An entry that does not parse is
/// left out of the config, so the entries after it sit at a lower index than in the file; problems
/// name the position in the file.
#[derive(Debug, Clone, Default)]
struct Entries {
    /// For each array of tables that had an entry left out, the file position of every entry kept.
    kept: BTreeMap<&'static str, Vec<usize>>,
    /// Names of the `[[destinations]]` entries that did not parse: a route to one of them is not
    /// reported as going to an unknown destination on top of the entry's own problem.
    unparsed_destinations: Vec<String>,
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
            extra_rules: None,
            order: Default::default(),
        }
    }

    /// The routing the alert stage runs with: route tree, inhibit rules, tenant names and labels.
    pub fn routing(&self) -> Result<Routing, Vec<String>> {
        Routing::new(
            &self.route_config(),
            &self.destination_names(),
            &self.inhibit_rules,
            self.tenant_names(),
            self.tenant_labels(),
        )
    }

    /// `key[i]` with the position the `i`th entry kept of the array of tables `key` has in the
    /// file (entries that did not parse are left out of the config, not of the numbering).
    pub fn entry_path(&self, key: &str, i: usize) -> String {
        let at = self
            .entries
            .kept
            .get(key)
            .and_then(|kept| kept.get(i).copied())
            .unwrap_or(i);
        format!("{key}[{at}]")
    }

    /// Whether an entry of the array of tables `key` did not parse.
    fn left_out(&self, key: &str) -> bool {
        self.entries.kept.contains_key(key)
    }

    /// The names of the destinations in the file, those that did not parse included.
    fn destination_names(&self) -> Vec<&str> {
        self.destinations
            .iter()
            .map(|d| d.name())
            .chain(
                self.entries
                    .unparsed_destinations
                    .iter()
                    .map(String::as_str),
            )
            .collect()
    }

    /// No sources and no destinations: a config for `replay` (detection settings, tenant names),
    /// which `run` refuses.
    pub fn is_replay_only(&self) -> bool {
        self.sources.is_empty()
            && self.destinations.is_empty()
            && !self.left_out("sources")
            && !self.left_out("destinations")
    }

    /// Problems beyond the file itself, of the sections that parsed: secrets that cannot be read,
    /// sources that cannot be built, routing; and sources with nowhere to send alerts.
    pub fn deep_check(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if let Err(p) = self.service.resolve_admin_token() {
            problems.push(p);
        }
        if !self.sources.is_empty()
            && self.destinations.is_empty()
            && !self.left_out("destinations")
        {
            problems.push(NO_DESTINATIONS.to_owned());
        }
        for (i, d) in self.destinations.iter().enumerate() {
            if let Err(p) = d.resolve(&self.entry_path("destinations", i)) {
                problems.extend(p);
            }
        }
        for (i, s) in self.sources.iter().enumerate() {
            if let Err(p) = s.build() {
                let path = self.entry_path("sources", i);
                problems.extend(p.into_iter().map(|m| format!("{path}: {m}")));
            }
        }
        // Routes are checked when there is something to route (a config for `replay` has neither).
        // Inhibit rules are numbered by their index here, which is their place in the file only
        // when none was left out; `validate` has checked each of them with its own path anyway.
        let routed = self.route.is_some() || !self.destination_names().is_empty();
        if routed
            && !self.left_out("inhibit_rules")
            && let Err(p) = self.routing()
        {
            problems.extend(p);
        }
        problems
    }

    /// The route tree: the configured one, or everything to every destination.
    pub fn route_config(&self) -> RouteConfig {
        self.route
            .clone()
            .unwrap_or_else(|| RouteConfig::default_for(&self.destination_names()))
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
    parse(&read(path)?, env).map_err(|problems| report(path, &problems))
}

/// What `run` starts with: [`load`], then the deep checks ([`check`]), and a destination to send
/// alerts to; every problem found is in the one error.
pub fn load_for_run(path: &Path) -> anyhow::Result<FileConfig> {
    let env: BTreeMap<String, String> = std::env::vars().collect();
    let Checked {
        config,
        mut problems,
    } = check(&read(path)?, &env);
    match config {
        Some(config) if problems.is_empty() && !config.is_replay_only() => Ok(config),
        Some(config) => {
            if config.is_replay_only() {
                problems.push(NO_DESTINATIONS.to_owned());
            }
            Err(report(path, &problems))
        }
        None => Err(report(path, &problems)),
    }
}

fn read(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("cannot read config {}", path.display()))
}

/// Every problem of the config at `path` in one error, one line each.
pub fn report(path: &Path, problems: &[String]) -> anyhow::Error {
    anyhow::anyhow!(
        "config {} has {} problem(s):\n  {}",
        path.display(),
        problems.len(),
        problems.join("\n  ")
    )
}

/// A config read as far as it goes, with every problem found on the way.
#[derive(Debug)]
pub struct Checked {
    /// The sections that parsed, the others at their defaults and the entries of arrays of tables
    /// that did not parse left out; `None` when the text is not TOML or a variable is unset.
    pub config: Option<FileConfig>,
    pub problems: Vec<String>,
}

/// What `validate` checks, in one list: the file's problems ([`parse`]), then the deep checks
/// ([`FileConfig::deep_check`]) of every section that parsed, so a bad section hides neither the
/// secrets nor the sources of the others.
pub fn check(raw: &str, env: &BTreeMap<String, String>) -> Checked {
    let (config, mut problems) = parse_partial(raw, env);
    if let Some(config) = &config {
        // Reading a destination's secrets validates it again: each problem is listed once.
        for p in config.deep_check() {
            if !problems.contains(&p) {
                problems.push(p);
            }
        }
    }
    Checked { config, problems }
}

/// Text to a validated config: interpolation, TOML, `ENTRAWATCH_*` overrides, every section parsed
/// on its own (so one bad section does not hide another's problems), then validation. Every problem
/// found on the way is returned at once, each with the path of its key (`sources[0].poll_secs`).
pub fn parse(raw: &str, env: &BTreeMap<String, String>) -> Result<FileConfig, Vec<String>> {
    match parse_partial(raw, env) {
        (Some(config), problems) if problems.is_empty() => Ok(config),
        (_, problems) => Err(problems),
    }
}

/// [`parse`], keeping what parsed next to the problems.
fn parse_partial(raw: &str, env: &BTreeMap<String, String>) -> (Option<FileConfig>, Vec<String>) {
    let text = match interpolate(raw, &|name| env.get(name).cloned()) {
        Ok(text) => text,
        Err(problems) => return (None, problems),
    };
    let mut table: toml::Table = match toml::from_str(&text) {
        Ok(table) => table,
        Err(e) => return (None, vec![format!("toml: {}", e.to_string().trim_end())]),
    };
    let mut problems = apply_overrides(&mut table, env);
    let config = sections(table, &mut problems);
    problems.extend(validate(&config));
    (Some(config), problems)
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
    fn one<T: DeserializeOwned + Default>(
        table: &mut toml::Table,
        key: &str,
        problems: &mut Vec<String>,
    ) -> T {
        match table.remove(key) {
            None => T::default(),
            Some(v) => at_path(v, key).unwrap_or_else(|p| {
                problems.push(p);
                T::default()
            }),
        }
    }
    fn many<T>(
        table: &mut toml::Table,
        key: &'static str,
        problems: &mut Vec<String>,
        entries: &mut Entries,
        read: fn(toml::Value, &str) -> Result<T, String>,
    ) -> Vec<T> {
        match table.remove(key) {
            None => Vec::new(),
            Some(toml::Value::Array(items)) => {
                let total = items.len();
                let mut out = Vec::new();
                let mut kept = Vec::new();
                for (i, v) in items.into_iter().enumerate() {
                    let name = v.get("name").and_then(|n| n.as_str()).map(str::to_owned);
                    match read(v, &format!("{key}[{i}]")) {
                        Ok(t) => {
                            out.push(t);
                            kept.push(i);
                        }
                        Err(p) => {
                            problems.push(p);
                            if key == "destinations" {
                                entries.unparsed_destinations.extend(name);
                            }
                        }
                    }
                }
                if kept.len() < total {
                    entries.kept.insert(key, kept);
                }
                out
            }
            Some(_) => {
                problems.push(format!("{key}: must be an array of tables ([[{key}]])"));
                entries.kept.insert(key, Vec::new());
                Vec::new()
            }
        }
    }
    let mut entries = Entries::default();
    let mut config = FileConfig {
        service: one(&mut table, "service", problems),
        tenants: many(&mut table, "tenants", problems, &mut entries, at_path),
        detect: one(&mut table, "detect", problems),
        alert: one(&mut table, "alert", problems),
        sources: many(
            &mut table,
            "sources",
            problems,
            &mut entries,
            tagged_at_path,
        ),
        destinations: many(
            &mut table,
            "destinations",
            problems,
            &mut entries,
            tagged_at_path,
        ),
        route: match table.remove("route") {
            None => None,
            Some(v) => at_path(v, "route").map_err(|p| problems.push(p)).ok(),
        },
        silences: many(&mut table, "silences", problems, &mut entries, at_path),
        inhibit_rules: many(&mut table, "inhibit_rules", problems, &mut entries, at_path),
        sigma: match table.remove("sigma") {
            None => None,
            Some(v) => at_path(v, "sigma").map_err(|p| problems.push(p)).ok(),
        },
        entries: Entries::default(),
    };
    config.entries = entries;
    for key in table.keys() {
        problems.push(format!(
            "{key}: unknown section (known: service, tenants, detect, alert, sources, destinations, route, silences, inhibit_rules, sigma)"
        ));
    }
    config
}

/// Deserialises `value`, found at `path`; the error names the key it is about:
/// `sources[0].poll_secs: invalid type: string "5s", expected u64`.
fn at_path<T: DeserializeOwned>(value: toml::Value, path: &str) -> Result<T, String> {
    let mut track = serde_path_to_error::Track::new();
    T::deserialize(serde_path_to_error::Deserializer::new(value, &mut track))
        .map_err(|e| problem(path, &track.path(), &e.to_string()))
}

/// The entries the file selects by `type` (`[[sources]]`, `[[destinations]]`).
trait Tagged: DeserializeOwned {
    fn from_tagged<'de, D: serde::Deserializer<'de>>(
        tag: &str,
        rest: D,
    ) -> Option<Result<Self, D::Error>>;
}

impl Tagged for SourceConfig {
    fn from_tagged<'de, D: serde::Deserializer<'de>>(
        tag: &str,
        rest: D,
    ) -> Option<Result<Self, D::Error>> {
        SourceConfig::from_tagged(tag, rest)
    }
}

impl Tagged for DestinationConfig {
    fn from_tagged<'de, D: serde::Deserializer<'de>>(
        tag: &str,
        rest: D,
    ) -> Option<Result<Self, D::Error>> {
        DestinationConfig::from_tagged(tag, rest)
    }
}

/// [`at_path`] for an entry selected by `type`: the variant is read from the rest of the table so
/// the error's path reaches inside it (serde's own tagged enums read through a buffer that loses
/// the path). A missing or unknown `type` gets the enum's own error.
fn tagged_at_path<T: Tagged>(value: toml::Value, path: &str) -> Result<T, String> {
    let toml::Value::Table(mut rest) = value.clone() else {
        return at_path(value, path);
    };
    let Some(toml::Value::String(tag)) = rest.remove("type") else {
        return at_path(value, path);
    };
    let mut track = serde_path_to_error::Track::new();
    let de = serde_path_to_error::Deserializer::new(toml::Value::Table(rest), &mut track);
    match T::from_tagged(&tag, de) {
        Some(result) => result.map_err(|e| problem(path, &track.path(), &e.to_string())),
        None => at_path(value, path),
    }
}

/// `path` plus the keys `at` goes down, then the message. serde reports a missing key at the table
/// that should hold it: the key is added to the path. toml's own note of the key (`in `key``, on a
/// line of its own) is left out, the path says it.
fn problem(path: &str, at: &serde_path_to_error::Path, message: &str) -> String {
    use serde_path_to_error::Segment;
    fn push_key(out: &mut String, key: &str) {
        let bare = !key.is_empty()
            && key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if bare {
            out.push('.');
            out.push_str(key);
        } else {
            out.push_str(&format!(".{key:?}"));
        }
    }
    let mut full = path.to_owned();
    for segment in at.iter() {
        match segment {
            Segment::Seq { index } => full.push_str(&format!("[{index}]")),
            Segment::Map { key } => push_key(&mut full, key),
            Segment::Enum { variant } => push_key(&mut full, variant),
            Segment::Unknown => full.push_str(".?"),
        }
    }
    let message = match message.find("\nin `") {
        Some(at) => &message[..at],
        None => message,
    }
    .trim_end();
    if let Some(key) = message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split('`').next())
    {
        push_key(&mut full, key);
    }
    format!("{full}: {message}")
}

/// Every problem in a parsed config.
pub fn validate(config: &FileConfig) -> Vec<String> {
    let mut problems = Vec::new();
    for (i, t) in config.tenants.iter().enumerate() {
        let path = config.entry_path("tenants", i);
        if !entrawatch_ingest::value::is_guid(&t.id) {
            problems.push(format!("{path}.id: {:?} is not a tenant GUID", t.id));
        }
        if t.name.trim().is_empty() {
            problems.push(format!("{path}.name: empty"));
        }
    }
    let rules: Vec<&str> = entrawatch_detect::registry::all()
        .iter()
        .map(|d| d.id())
        .collect();
    problems.extend(config.detect.validate(&rules));
    problems.extend(config.alert.validate("alert"));
    if let Some(sigma) = &config.sigma {
        problems.extend(sigma.validate());
    }
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
        let path = config.entry_path("sources", i);
        if !names.insert(source.name().to_owned()) {
            problems.push(format!("{path}.name: {:?} is used twice", source.name()));
        }
        problems.extend(source.validate(&path));
    }
    let mut names = std::collections::BTreeSet::new();
    for (i, d) in config.destinations.iter().enumerate() {
        let path = config.entry_path("destinations", i);
        if !names.insert(d.name().to_owned()) {
            problems.push(format!("{path}.name: {:?} is used twice", d.name()));
        }
        problems.extend(d.validate(&path));
    }
    let known = config.destination_names();
    if config.route.is_some() || !known.is_empty() {
        problems.extend(config.route_config().validate("route", &known));
    }
    for (i, silence) in config.silences.iter().enumerate() {
        problems.extend(silence.validate(&config.entry_path("silences", i)));
    }
    for (i, rule) in config.inhibit_rules.iter().enumerate() {
        problems.extend(rule.validate(&config.entry_path("inhibit_rules", i)));
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
            [detect.rules.password-spray]
            min_users = 0
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
                "detect.rules.password-spray.min_users",
                "alert.episode_window_hours"
            ]
        );
    }

    #[test]
    fn rule_tables_are_read_from_toml_and_the_retired_thresholds_say_what_to_write() {
        let text = r#"
            [detect.baseline]
            learning_days = 3
            [detect.rules.brute-force]
            min_failures = 5
            [detect.rules.impossible-travel]
            min_km = 800
            [detect.rules.log-source-silent]
            probability = 1e-4
        "#;
        let config = parse(text, &BTreeMap::new()).unwrap();
        use entrawatch_detect::detectors::{brute_force, impossible_travel, log_source_silent};
        let d = &config.detect;
        assert_eq!(d.baseline.learning_days, 3);
        assert_eq!(d.rule::<brute_force::Settings>().min_failures, 5);
        assert_eq!(d.rule::<brute_force::Settings>().window_minutes, 10);
        assert_eq!(d.rule::<impossible_travel::Settings>().min_km, 800.0);
        assert_eq!(d.rule::<log_source_silent::Settings>().probability, 1e-4);

        let old = r#"
            [detect.thresholds]
            brute_force_min_failures = 5
            travel_min_km = 800.0
            [detect.rules.brute-force]
            min_failures = "five"
            unknown = 1
            [detect.rules.no-such-rule]
            x = 1
        "#;
        let problems = parse(old, &BTreeMap::new()).unwrap_err();
        assert_eq!(
            problems,
            [
                "detect.rules.brute-force.min_failures: invalid type: string \"five\", expected u32",
                "detect.rules.no-such-rule: unknown rule; rules with settings: impossible-travel, \
                 session-token-replay, password-spray, brute-force, mfa-fatigue, \
                 disabled-account-sign-in, partner-tenant-fanout, security-info-changed-privileged, \
                 cross-tenant-access-changed, log-source-silent, account-takeover-chain, \
                 gdap-relationship-risky",
                "detect.thresholds.brute_force_min_failures: [detect.thresholds] is retired; write \
                 it as `min_failures = 5` under [detect.rules.brute-force]",
                "detect.thresholds.travel_min_km: [detect.thresholds] is retired; write it as \
                 `min_km = 800.0` under [detect.rules.impossible-travel]",
            ]
        );
    }

    #[test]
    fn each_rules_documented_table_is_a_config_that_sets_every_key_to_its_default() {
        let defaults = entrawatch_detect::DetectConfig::default();
        let mut seen = 0;
        for d in entrawatch_detect::registry::all() {
            let Some(kind) = d.settings() else { continue };
            seen += 1;
            let text = kind.defaults_toml(&format!("detect.rules.{}", d.id()));
            let config = parse(&text, &BTreeMap::new())
                .unwrap_or_else(|p| panic!("{}: {p:#?}\n{text}", d.id()));
            let (_, got) = config
                .detect
                .rules
                .iter()
                .find(|(id, _)| *id == d.id())
                .unwrap();
            let (_, want) = defaults.rules.iter().find(|(id, _)| *id == d.id()).unwrap();
            assert!(got.same(want), "{}: {got:?} != {want:?}", d.id());
            let keys = want.to_json().as_object().unwrap().len();
            let lines = text.lines().filter(|l| l.contains(" = ")).count();
            assert_eq!(lines, keys, "{}: every key documented\n{text}", d.id());
        }
        assert!(seen >= 12, "{seen}");
    }

    #[test]
    fn the_sigma_section_is_read_and_its_problems_listed_with_the_others() {
        let good = "[sigma]\npaths = [\"rules/sigma\"]\nexclude_tags = [\"attack.t1078\"]\n";
        let config = parse(good, &BTreeMap::new()).unwrap();
        let sigma = config.sigma.as_ref().unwrap();
        assert_eq!(sigma.paths, [std::path::PathBuf::from("rules/sigma")]);
        assert_eq!(sigma.exclude_tags, ["attack.t1078"]);
        let text = r#"
            [sigma]
            paths = ["rules/sigma"]
            levels = ["high", "urgent"]
            statuses = ["stable", "beta"]
            [alert]
            episode_window_hours = 0
        "#;
        let problems = parse(text, &BTreeMap::new()).unwrap_err();
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(problems[0].starts_with("alert.episode_window_hours"));
        assert!(problems[1].starts_with("sigma.statuses: unknown status \"beta\""));
        assert!(problems[2].starts_with("sigma.levels: unknown level \"urgent\""));
        let err = parse("[sigma]\npath = \"x\"\n", &BTreeMap::new()).unwrap_err();
        assert!(err[0].starts_with("sigma.path: unknown field"), "{err:?}");
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
            "sources[1].type: unknown variant `carrier-pigeon`",
            "sources[2].colour: unknown field `colour`",
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
        assert!(
            err[0].starts_with("service.shutdown_grace_secs: invalid type"),
            "{err:?}"
        );
        let err = parse(text, &env(&[("ENTRAWATCH_SERVICE__ADMIN_LISTEN__X", "1")])).unwrap_err();
        assert!(
            err[0].contains("service.admin_listen is not a table"),
            "{err:?}"
        );
    }

    #[test]
    fn errors_of_parsing_name_their_key() {
        let text = r#"
            [service]
            snapshot_interval_secs = "5s"
            [[tenants]]
            id = 5
            [[sources]]
            type = "kafka"
            name = "hub"
            brokers = "localhost:9092"
            topics = ["signins"]
            group_id = "entrawatch"
            batch_wait_ms = "5s"
            [[sources]]
            type = "kafka"
            name = "other"
            brokers = "localhost:9092"
            topics = ["signins"]
            group_id = "entrawatch"
            settings = { "fetch.wait.max.ms" = [1] }
            [[sources]]
            name = "no-type"
            [[destinations]]
            type = "webhook"
            name = "soar"
            [[destinations]]
            type = "stdout"
            name = "out"
            colour = "blue"
            [route]
            group_wait_secs = "soon"
            [[silences]]
            matchers = 7
        "#;
        let problems = parse(text, &BTreeMap::new()).unwrap_err();
        let paths: Vec<&str> = problems
            .iter()
            .map(|p| p.split(": ").next().unwrap())
            .collect();
        for path in [
            "service.snapshot_interval_secs",
            "tenants[0].id",
            "sources[0].batch_wait_ms",
            "sources[1].settings.\"fetch.wait.max.ms\"",
            "sources[2].type",
            "destinations[0].url",
            "destinations[1].colour",
            "route.group_wait_secs",
        ] {
            assert!(
                paths.contains(&path),
                "no {path:?} in:\n{}",
                problems.join("\n")
            );
        }
        assert!(
            problems.iter().all(|p| !p.contains('\n')),
            "one line each:\n{}",
            problems.join("\n")
        );
        assert!(
            problems.iter().any(|p| p.starts_with("silences[0]")),
            "{problems:?}"
        );
    }

    #[test]
    fn entries_after_one_that_does_not_parse_keep_their_place() {
        let text = r#"
            [[tenants]]
            id = 5
            [[tenants]]
            id = "contoso"
            name = "Contoso"
            [[sources]]
            type = "carrier-pigeon"
            name = "a"
            [[sources]]
            type = "file"
            name = "b"
            path = "/no/such/folder"
            [[destinations]]
            type = "teams"
            name = "soc"
            [[destinations]]
            type = "stdout"
            name = ""
            [route]
            receivers = ["soc", "nowhere"]
        "#;
        let problems = parse(text, &BTreeMap::new()).unwrap_err();
        let joined = problems.join("\n");
        for expected in [
            "tenants[1].id: \"contoso\" is not a tenant GUID",
            "sources[1].path: /no/such/folder does not exist",
            "destinations[1].name:",
            "route.receivers[1]: unknown destination \"nowhere\"",
        ] {
            assert!(
                joined.contains(expected),
                "missing {expected:?} in:\n{joined}"
            );
        }
        // The destination that did not parse is still a known name for routes.
        assert!(!joined.contains("unknown destination \"soc\""), "{joined}");
    }

    #[test]
    fn a_bad_section_hides_neither_the_secrets_nor_the_sources_of_the_others() {
        let text = r#"
            [service]
            snapshot_interval_secs = "5s"
            [[sources]]
            type = "file"
            name = "drop"
            path = "/no/such/folder"
            [[destinations]]
            type = "jsonl"
            name = "archive"
            path = 5
            [[destinations]]
            type = "teams"
            name = "soc"
            url = { env = "ENTRAWATCH_TEST_UNSET_TEAMS_URL" }
        "#;
        let Checked { config, problems } = check(text, &BTreeMap::new());
        assert!(config.is_some());
        let joined = problems.join("\n");
        for expected in [
            "service.snapshot_interval_secs: invalid type",
            "destinations[0].path: invalid type",
            "sources[0].path: /no/such/folder does not exist",
            "destinations[1].url: environment variable ENTRAWATCH_TEST_UNSET_TEAMS_URL is not set",
        ] {
            assert!(
                joined.contains(expected),
                "missing {expected:?} in:\n{joined}"
            );
        }
        assert_eq!(
            problems.len(),
            problems
                .iter()
                .collect::<std::collections::BTreeSet<_>>()
                .len(),
            "a problem listed twice:\n{joined}"
        );
        // A source with no destination configured (a destination that did not parse counts).
        assert!(!joined.contains(NO_DESTINATIONS), "{joined}");
    }

    #[test]
    fn a_config_without_sources_and_destinations_is_for_replay() {
        let tenants = "[[tenants]]\nid = \"33333333-cccc-4ccc-8ccc-333333333333\"\nname = \"N\"\n";
        let Checked { config, problems } = check(tenants, &BTreeMap::new());
        assert!(problems.is_empty(), "{problems:?}");
        assert!(config.unwrap().is_replay_only());

        let source = format!("{tenants}[[sources]]\ntype = \"file\"\nname = \"d\"\npath = \"/\"\n");
        let Checked { config, problems } = check(&source, &BTreeMap::new());
        assert_eq!(problems, vec![NO_DESTINATIONS.to_owned()]);
        assert!(!config.unwrap().is_replay_only());

        let broken_source = format!("{tenants}[[sources]]\ntype = \"file\"\n");
        let Checked { config, problems } = check(&broken_source, &BTreeMap::new());
        assert!(!config.unwrap().is_replay_only(), "{problems:?}");
    }

    #[test]
    fn unknown_keys_are_refused() {
        let err = toml::from_str::<FileConfig>("[detect]\npartner_tenant = []\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown field `partner_tenant`"), "{err}");
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
        let text = format!(
            "[service]\nadmin_token = {{ file = {:?} }}\n[[destinations]]\ntype = \"teams\"\nname = \"soc\"\nurl = {{ env = \"ENTRAWATCH_TEST_UNSET_TEAMS_URL\" }}\n",
            dir.path().join("nope")
        );
        let Checked { problems, .. } = check(&text, &BTreeMap::new());
        assert!(
            problems
                .iter()
                .any(|p| p.starts_with("service.admin_token:"))
                && problems
                    .iter()
                    .any(|p| p.starts_with("destinations[0].url:")),
            "{problems:?}"
        );
    }
}
