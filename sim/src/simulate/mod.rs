//! `entrawatch simulate`: a deterministic, labelled CSP world to test detection against.
//!
//! What comes in: the sizes and the seed (`SimulateArgs`). What goes out, under `--out`:
//! Event Hub capture files and Graph beta pages for a partner tenant and its customers over
//! `--days` days ending 2026-11-01T00:00:00Z, the directory context (role assignments), the config
//! the world needs (`entrawatch.toml`), one label per injected attack (`labels.jsonl`), the named
//! benign look-alikes (`benign.jsonl`) and a description (`world.json`). With `--eval`, the world is
//! replayed through the real pipeline and each detector is scored (`eval.json` and a table).
//!
//! The parts, in the order they run:
//! - [`rng`]: SplitMix64 streams; nothing reads the clock and no hash-map order reaches the output,
//!   so the same arguments write byte-identical files.
//! - [`catalog`]: places, apps, roles, methods, names, texts.
//! - [`world`]: tenants, people, technicians, guests, networks, devices.
//! - [`attacks`]: the stories, with their victims added to the world first.
//! - [`activity`] and [`audits`]: everyone's ordinary days, look-alikes included.
//! - [`records`] and [`render`]: compact records, then Event Hub and Graph JSON.
//! - [`write`]: files, config, labels; [`eval`]: replay and scoring.

mod activity;
mod attacks;
mod audits;
mod catalog;
mod eval;
mod records;
mod render;
pub(crate) mod rng;
mod world;
mod write;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context as _, bail};
use clap::Args;
use serde_json::{Map, Value, json};

use crate::LoadConfig;
use records::Rec;
use world::{Kind, Sizes, World};

/// The smallest world every story fits in: fan-out needs five customers and a spare, baselines
/// need a week and a bit of history.
const MIN_TENANTS: u32 = 6;
const MIN_DAYS: u32 = 10;
/// The largest world `simulate` accepts, range by range.
const MAX_DAYS: u32 = 90;
const MAX_TENANTS: u32 = 500;
const MIN_USERS: u32 = 8;
const MAX_USERS: u32 = 5000;
const MAX_TECHNICIANS: u32 = 200;
const MAX_ATTACKS: u32 = 20;

#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// Folder to write the world into (created; must be empty or absent).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Random seed: the same seed and sizes give byte-identical output.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Days of activity: 10 to 90 (baselines need a week of history before the stories).
    #[arg(long, default_value_t = 30)]
    pub days: u32,
    /// Customer tenants: 6 to 500 (the fan-out story needs five customers and a spare).
    #[arg(long, default_value_t = 15)]
    pub tenants: u32,
    /// Users per customer tenant (admins and guests included): 8 to 5000.
    #[arg(long, default_value_t = 34)]
    pub users_per_tenant: u32,
    /// Partner technicians: 0 to 200.
    #[arg(long, default_value_t = 4)]
    pub technicians: u32,
    /// Injected attacks per detector: 0 to 20.
    #[arg(long, default_value_t = 1)]
    pub attacks_per_rule: u32,
    /// After generating, replay the world in process and report recall and false positives per
    /// detector against the labels.
    #[arg(long)]
    pub eval: bool,
}

/// Writes the world `args` describes; with `--eval` replays it with its config, read by `load`,
/// and scores each detector.
pub fn run(args: SimulateArgs, load: &LoadConfig) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    check(&args)?;
    let (dir, temporary) = match &args.out {
        Some(p) => (p.clone(), false),
        None if args.eval => (
            std::env::temp_dir().join(format!(
                "entrawatch-simulate-{}-{}",
                args.seed,
                std::process::id()
            )),
            true,
        ),
        None => bail!(
            "--out DIR is required (or --eval alone, which simulates into a temporary folder)"
        ),
    };
    prepare(&dir)?;
    let result = simulate(&args, &dir, temporary, started, load);
    if temporary {
        let _ = std::fs::remove_dir_all(&dir);
    }
    result
}

fn check(args: &SimulateArgs) -> anyhow::Result<()> {
    let mut problems = Vec::new();
    if !(MIN_DAYS..=MAX_DAYS).contains(&args.days) {
        problems.push(format!(
            "--days must be {MIN_DAYS} to {MAX_DAYS} (baselines need a week of history before the stories)"
        ));
    }
    if !(MIN_TENANTS..=MAX_TENANTS).contains(&args.tenants) {
        problems.push(format!(
            "--tenants must be {MIN_TENANTS} to {MAX_TENANTS} (the fan-out story needs five customers)"
        ));
    }
    if !(MIN_USERS..=MAX_USERS).contains(&args.users_per_tenant) {
        problems.push(format!(
            "--users-per-tenant must be {MIN_USERS} to {MAX_USERS}"
        ));
    }
    if args.technicians > MAX_TECHNICIANS {
        problems.push(format!("--technicians must be at most {MAX_TECHNICIANS}"));
    }
    if args.attacks_per_rule > MAX_ATTACKS {
        problems.push(format!("--attacks-per-rule must be at most {MAX_ATTACKS}"));
    }
    if !problems.is_empty() {
        bail!("{}", problems.join("; "));
    }
    Ok(())
}

/// Creates `dir`, which must be absent or empty.
fn prepare(dir: &Path) -> anyhow::Result<()> {
    if dir.exists() {
        let mut entries =
            std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))?;
        if entries.next().is_some() {
            bail!(
                "{} is not empty: simulate writes into an empty or new folder",
                dir.display()
            );
        }
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))
}

/// The command line that reproduces the world (without `--out`, so two copies match byte for byte).
fn command(args: &SimulateArgs) -> String {
    format!(
        "entrawatch simulate --seed {} --days {} --tenants {} --users-per-tenant {} --technicians {} --attacks-per-rule {}",
        args.seed,
        args.days,
        args.tenants,
        args.users_per_tenant,
        args.technicians,
        args.attacks_per_rule
    )
}

fn simulate(
    args: &SimulateArgs,
    dir: &Path,
    temporary: bool,
    started: Instant,
    load: &LoadConfig,
) -> anyhow::Result<ExitCode> {
    let sizes = Sizes {
        days: args.days,
        tenants: args.tenants,
        users_per_tenant: args.users_per_tenant,
        technicians: args.technicians,
    };
    let mut w = World::build(args.seed, sizes);
    let attacks = attacks::inject(&mut w, args.attacks_per_rule);
    let (mut recs, notes) = activity::background(&w);
    recs.extend(attacks.recs.iter().cloned());
    // Nothing outside the world's days (a local evening can be the next UTC day), and nothing in
    // a silenced stream while it is silent.
    recs.retain(|r| {
        let at = r.time();
        at >= w.start
            && at < w.end
            && !attacks.silences.iter().any(|s| {
                s.tenant == r.tenant()
                    && at >= s.from
                    && at < s.to
                    && match r {
                        Rec::SignIn(_) => !s.audits,
                        Rec::Audit(_) => s.audits,
                        _ => false,
                    }
            })
    });
    recs.sort_by_key(Rec::time);

    let mut out = write::Writer::new(dir, &w);
    out.tenants(&recs)?;
    out.gdap(&attacks.gdap)?;
    let config_path = dir.join("entrawatch.toml");
    out.text("entrawatch.toml", &write::config_toml(&w, &command(args)))?;
    out.lines("labels.jsonl", &write::label_lines(&w, &attacks.labels))?;
    out.lines("benign.jsonl", &write::note_lines(&w, &notes))?;
    let description = describe(args, &w, &attacks, &recs, &notes, &out.written);
    out.json("world.json", &description, true)?;
    let written = std::mem::take(&mut out.written);
    eprintln!(
        "entrawatch simulate: seed {} · {} days · {} customers + partner · {} accounts · {} log records (+{} delivered twice) · {} stories · {} files, {:.1} MB in {:.2} s{}",
        args.seed,
        args.days,
        w.customers.len(),
        w.accounts
            .iter()
            .filter(|a| w.tenants[a.tenant].monitored)
            .count(),
        recs.len(),
        written.redelivered,
        attacks.labels.len(),
        written.files,
        written.bytes as f64 / 1e6,
        started.elapsed().as_secs_f64(),
        if temporary {
            String::new()
        } else {
            format!(" → {}", dir.display())
        }
    );
    if args.eval {
        let evaluation = eval::evaluate(&w, &attacks, &notes, dir, &load(&config_path)?)?;
        print!("{}", evaluation.table());
        eprintln!(
            "entrawatch simulate: replayed {} records, {} parse errors, {} alerts",
            evaluation.replay["records_read"],
            evaluation.replay["parse_errors"],
            evaluation.replay["alerts"]
        );
        if !temporary {
            let summary = evaluation.summary(args.seed);
            let path: PathBuf = dir.join("eval.json");
            let text = serde_json::to_string_pretty(&summary)? + "\n";
            std::fs::write(&path, text)
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `world.json`: sizes, tenants, technicians, counts, attack principals; nothing that varies
/// between two runs with the same arguments.
fn describe(
    args: &SimulateArgs,
    w: &World,
    attacks: &attacks::Attacks,
    recs: &[Rec],
    notes: &[activity::Note],
    written: &write::Written,
) -> Value {
    let count = |t: usize, f: &dyn Fn(&world::Account) -> bool| {
        w.tenants[t]
            .members
            .iter()
            .filter(|&&a| f(&w.accounts[a]))
            .count()
    };
    let mut max_gap: Vec<(usize, i64)> = vec![(0, 0); w.tenants.len()];
    let mut last_seen: Vec<Option<i64>> = vec![None; w.tenants.len()];
    for r in recs {
        if let Rec::SignIn(s) = r {
            let t = s.tenant;
            if let Some(prev) = last_seen[t] {
                let gap = s.t - prev;
                if gap > max_gap[t].1 {
                    max_gap[t] = (t, gap);
                }
            }
            last_seen[t] = Some(s.t);
        }
    }
    let tenants: Vec<Value> = std::iter::once(w.partner)
        .chain(w.customers.iter().copied())
        .map(|t| {
            let tenant = &w.tenants[t];
            json!({
                "id": tenant.id.to_string(),
                "name": tenant.name,
                "domain": tenant.domain,
                "role": if t == w.partner { "partner" } else { "customer" },
                "city": catalog::CITIES[tenant.hq].name,
                "format": match tenant.format { world::Format::EventHub => "eventhub", world::Format::Graph => "graph" },
                "accounts": tenant.members.len(),
                "regular": count(t, &|a| a.kind == Kind::Regular && !a.attack),
                "admin_accounts": count(t, &|a| matches!(a.kind, Kind::Admin { .. }) && !a.attack),
                "guests": count(t, &|a| a.kind == Kind::Guest),
                "technicians": count(t, &|a| a.kind == Kind::Technician && !a.attack),
                "attack_accounts": count(t, &|a| a.attack),
                "longest_sign_in_gap_minutes": max_gap[t].1 / rng::MIN,
            })
        })
        .collect();
    let technicians: Vec<Value> = w
        .accounts
        .iter()
        .enumerate()
        .filter(|(_, a)| {
            a.kind == Kind::Technician
                && (a.home_tenant == w.partner || a.home_tenant == w.second_partner)
        })
        .map(|(i, a)| {
            json!({
                "partner": w.tenants[a.home_tenant].name,
                "id": a.id.to_string(),
                "upn": a.upn,
                "customer_upn": w.technician_upn(i),
                "usual": a.usual.iter().map(|&t| w.tenants[t].id.to_string()).collect::<Vec<_>>(),
                "occasional": a.occasional.map(|t| w.tenants[t].id.to_string()),
                "attack": a.attack,
            })
        })
        .collect();
    let principals: Vec<Value> = write::attack_principals(w, attacks)
        .into_iter()
        .map(|(kind, id)| json!({"kind": kind, "id": id}))
        .collect();
    let mut look_alikes: std::collections::BTreeMap<&str, usize> =
        std::collections::BTreeMap::new();
    for n in notes {
        *look_alikes.entry(n.rule).or_default() += 1;
    }
    let trip = w.trip.map(|t| {
        json!({
            "account": w.accounts[t.account].id.to_string(),
            "upn": w.accounts[t.account].upn,
            "depart": render::iso_secs(t.depart),
            "arrive": render::iso_secs(t.arrive),
            "leave": render::iso_secs(t.leave),
            "back": render::iso_secs(t.back),
        })
    });
    let mut m = Map::new();
    m.insert("command".into(), json!(command(args)));
    m.insert("seed".into(), json!(args.seed));
    m.insert("start".into(), json!(render::iso_secs(w.start)));
    m.insert("end".into(), json!(render::iso_secs(w.end)));
    m.insert(
        "partner_tenant".into(),
        json!(w.partner_tenant().id.to_string()),
    );
    m.insert(
        "second_partner_tenant".into(),
        json!(w.tenants[w.second_partner].id.to_string()),
    );
    m.insert("tenants".into(), Value::Array(tenants));
    m.insert("technicians".into(), Value::Array(technicians));
    m.insert("traveller".into(), trip.unwrap_or(Value::Null));
    m.insert("records".into(), json!(written.records));
    m.insert("redelivered_records".into(), json!(written.redelivered));
    m.insert("log_files".into(), json!(written.files));
    m.insert("log_bytes".into(), json!(written.bytes));
    m.insert("stories".into(), json!(attacks.labels.len()));
    m.insert("look_alikes_named".into(), json!(look_alikes));
    m.insert("attack_principals".into(), Value::Array(principals));
    write::tagged("World", m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn help_states_the_ranges_the_check_enforces() {
        let mut command = SimulateArgs::augment_args(clap::Command::new("simulate"));
        let help = command.render_help().to_string();
        let help = help.split_whitespace().collect::<Vec<_>>().join(" ");
        for (arg, min, max) in [
            ("--days", MIN_DAYS, MAX_DAYS),
            ("--tenants", MIN_TENANTS, MAX_TENANTS),
            ("--users-per-tenant", MIN_USERS, MAX_USERS),
            ("--technicians", 0, MAX_TECHNICIANS),
            ("--attacks-per-rule", 0, MAX_ATTACKS),
        ] {
            let doc = help
                .split(arg)
                .nth(1)
                .and_then(|rest| rest.split(" --").next())
                .unwrap_or_else(|| panic!("{arg} not in:\n{help}"));
            assert!(
                doc.contains(&format!("{min} to {max}")),
                "{arg} does not say {min} to {max}:\n{help}"
            );
        }
        let args = |days, tenants| SimulateArgs {
            out: None,
            seed: 1,
            days,
            tenants,
            users_per_tenant: MIN_USERS,
            technicians: MAX_TECHNICIANS,
            attacks_per_rule: MAX_ATTACKS,
            eval: false,
        };
        assert!(check(&args(MIN_DAYS, MIN_TENANTS)).is_ok());
        assert!(check(&args(MAX_DAYS, MAX_TENANTS)).is_ok());
        assert!(check(&args(MIN_DAYS - 1, MIN_TENANTS)).is_err());
        assert!(check(&args(MIN_DAYS, MAX_TENANTS + 1)).is_err());
    }
}
