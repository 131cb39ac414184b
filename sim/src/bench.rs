//! `entrawatch bench`: how close the replay comes to the JSON-parsing limit, and what state costs.
//!
//! What comes in: [`BenchArgs`] (a world to reuse, or the size of one to generate with the
//! simulator). What goes out: a table on standard output, or with `--json` one JSON document
//! ([`Report`]). The phases run back to back in one process on the same files:
//! 1. read-only: every file's bytes into memory, on all cores (after the first pass they come from
//!    the page cache, as they do for the phases after it);
//! 2. parse-only reference ([`reference`]): the replay's framing, then every record decoded into a
//!    typed borrowed struct of the fields entrawatch reads, with serde_json, on all cores the way
//!    the replay reads;
//! 3. ingest only: [`entrawatch_ingest::read_file`] on all cores, events dropped (what the replay
//!    spends before ordering and detection);
//! 4. full replay ([`entrawatch_alert::replay::replay_files`]): parse, normalise, order, de-duplicate, every
//!    detector, alert records.
//!
//! Before them, while the heap is small, the state-at-scale phase ([`synth`]): 100 k principals
//! through the engine, its own byte estimate beside the growth of resident memory. After them, the
//! same replay on a world with ten times the tenants and the same number of accounts (the cost per
//! event should not depend on tenants). Every phase's wall time, CPU time and memory come from
//! [`measure`].
//!
//! `--latency` measures the service instead ([`latency`]): `entrawatch run` as a child process
//! between a Kafka-protocol broker and a webhook receiver, both in this process on loopback, with
//! p50/p90/p99/max from a record's arrival at the broker to the webhook POST it causes.

mod latency;
mod measure;
mod reference;
mod synth;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use anyhow::{Context as _, bail};
use entrawatch_ingest::{ReadOptions, walk_all};
use serde::Serialize;

use entrawatch_alert::replay::{ReplayConfig, replay_files};

use crate::LoadConfig;
use crate::simulate::SimulateArgs;
use measure::Phase;

/// Accounts in the default world: 50 tenants of 250 give about one million records in ten days.
const DEFAULT_ACCOUNTS: f64 = 12_500.0;
/// The simulator's shortest world (its baselines need a week and a bit of history).
const DAYS: u32 = 10;

#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// Reuse this world (a folder written by `entrawatch simulate`, or any folder of logs) instead
    /// of generating one.
    #[arg(long, value_name = "DIR")]
    pub world: Option<PathBuf>,
    /// Generate the world here and keep it (default: a temporary folder, removed afterwards).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Size relative to the default world (about 1 M records, 12.5 k accounts) and to the default
    /// principal count; 0.1 makes a quick run.
    #[arg(long, default_value_t = 1.0)]
    pub scale: f64,
    /// Customer tenants of the generated world.
    #[arg(long, default_value_t = 50)]
    pub tenants: u32,
    /// Also generate and replay a world with this many tenants and the same number of accounts, to
    /// compare the cost per event (0 skips it).
    #[arg(long, default_value_t = 500)]
    pub compare_tenants: u32,
    /// Principals for the state-at-scale phase, before `--scale` (0 skips it).
    #[arg(long, default_value_t = 100_000)]
    pub principals: u64,
    /// Seed of the generated worlds.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Runs of each phase; the fastest is reported.
    #[arg(long, default_value_t = 1)]
    pub reps: u32,
    /// The full replay's memory budget (as `replay --memory-budget`: 512M, 2G); past it, sorted
    /// runs go to disk and are merged.
    #[arg(long, value_name = "SIZE", default_value = "1G", value_parser = entrawatch_ingest::ordered::parse_size)]
    pub memory_budget: u64,
    /// Print the figures as one JSON document instead of a table.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub latency: latency::LatencyArgs,
}

/// Everything measured.
#[derive(Debug, Serialize)]
pub struct Report {
    pub machine: Machine,
    pub world: WorldInfo,
    pub phases: Vec<Phase>,
    /// Every run of every phase, round by round (`phases` holds the best of each).
    pub rounds: Vec<Vec<Phase>>,
    /// Full replay events/s over parse-only events/s (goal: at least 0.8), by wall time (best runs)
    /// and by CPU time (least CPU per record of each over the rounds: the figure other work on the
    /// machine moves least).
    pub ratio_full_to_parse_wall: f64,
    pub ratio_full_to_parse_cpu: f64,
    /// The same ratios against the sonic-rs reference (the same struct, a faster parser).
    pub ratio_full_to_sonic_wall: f64,
    pub ratio_full_to_sonic_cpu: f64,
    pub replay: ReplayFigures,
    pub tenants: Option<TenantsComparison>,
    pub state_scale: Option<synth::StateScale>,
    /// The highest resident memory of any phase.
    pub peak_rss_mb: f64,
    /// The full replay's peak resident memory in the first round. Later rounds start with what
    /// the allocator kept of the replays before them (glibc does not give all it freed back to
    /// the system), and their peaks count it too: 1.33 GB against 0.87 GB on one world.
    pub replay_peak_rss_mb: f64,
    /// The full replay's memory budget (bytes).
    pub memory_budget: u64,
}

#[derive(Debug, Serialize)]
pub struct Machine {
    pub cores: usize,
    pub version: &'static str,
}

#[derive(Debug, Serialize)]
pub struct WorldInfo {
    pub path: String,
    pub generated: bool,
    pub generate_seconds: f64,
    pub tenants: Option<u32>,
    pub users_per_tenant: Option<u32>,
    pub files: usize,
    pub bytes: u64,
    pub records: u64,
}

#[derive(Debug, Serialize)]
pub struct ReplayFigures {
    pub records_read: u64,
    pub events_processed: u64,
    pub duplicates: u64,
    pub parse_errors: u64,
    pub alerts: u64,
    pub tracked_principals: u64,
    pub state_bytes: u64,
    pub state_bytes_per_principal: u64,
    /// The detection state by kind of key (bytes in all).
    pub state_parts: entrawatch_detect::state::StateBytes,
    /// Records the parse-only reference could not decode (0 on a simulated world).
    pub reference_failures: u64,
    /// Wall seconds of the replay's stages (the round with the quickest detection stage): reading
    /// on all cores, ordering and finding repeats, then detection on one thread.
    pub read_seconds: f64,
    pub order_seconds: f64,
    pub detect_seconds: f64,
    pub finish_seconds: f64,
    /// The detection stage's wall time per event processed.
    pub detect_us_per_event: f64,
    /// Sorted runs the replay wrote to disk past its memory budget (0: it fitted), and their bytes.
    pub spilled_runs: u64,
    pub spilled_bytes: u64,
}

impl ReplayFigures {
    /// Of two rounds' figures, the one whose detection stage was quicker.
    fn quicker(a: Option<anyhow::Result<Self>>, b: anyhow::Result<Self>) -> anyhow::Result<Self> {
        match (a, b) {
            (Some(Ok(a)), Ok(b)) if a.detect_seconds <= b.detect_seconds => Ok(a),
            (_, b) => b,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct TenantsComparison {
    pub base_tenants: u32,
    pub base_cpu_us_per_event: f64,
    pub other_tenants: u32,
    pub other_users_per_tenant: u32,
    pub other_records: u64,
    pub other_cpu_us_per_event: f64,
    pub other_events_per_second: f64,
    /// Other over base: 1.0 is perfectly flat.
    pub cost_ratio: f64,
    /// The detection stage alone (one thread, wall time per event), which reading and parsing do
    /// not blur: base, other, and other over base.
    pub base_detect_us_per_event: f64,
    pub other_detect_us_per_event: f64,
    pub detect_cost_ratio: f64,
}

/// Runs the benchmark `args` asks for; a world's `entrawatch.toml` is read with `load`.
pub fn run(args: BenchArgs, load: &LoadConfig) -> anyhow::Result<ExitCode> {
    if args.latency.enabled {
        return latency::run(&args.latency, args.json, load);
    }
    if !(args.scale > 0.0 && args.scale <= 10.0) {
        bail!("--scale must be above 0 and at most 10");
    }
    let reps = args.reps.max(1);
    // First, while the heap is still small: memory freed by a replay would be reused by the state
    // and hide its growth.
    let state_scale = if args.principals > 0 {
        let n = ((args.principals as f64 * args.scale).round() as u64).max(1);
        eprintln!("entrawatch bench: state at scale ({n} principals)");
        Some(synth::run(n, &entrawatch_detect::DetectConfig::default())?)
    } else {
        None
    };
    let users = users_per_tenant(args.scale, args.tenants);
    let (dir, generated, generate_seconds) = match &args.world {
        Some(w) => (w.clone(), false, 0.0),
        None => {
            let dir = args
                .out
                .clone()
                .unwrap_or_else(|| temp_dir("world", args.tenants));
            let secs = generate(&dir, args.seed, args.tenants, users, load)?;
            (dir, true, secs)
        }
    };
    let temporary = generated && args.out.is_none();
    let result = bench(&args, &dir, generated, generate_seconds, users, reps, load)
        .map(|r| Report { state_scale, ..r });
    if temporary {
        let _ = std::fs::remove_dir_all(&dir);
    }
    let report = result?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", render(&report));
    }
    Ok(ExitCode::SUCCESS)
}

fn users_per_tenant(scale: f64, tenants: u32) -> u32 {
    ((DEFAULT_ACCOUNTS * scale / f64::from(tenants.max(1))).round() as u32).clamp(8, 5000)
}

fn temp_dir(what: &str, tenants: u32) -> PathBuf {
    std::env::temp_dir().join(format!(
        "entrawatch-bench-{what}-{tenants}-{}",
        std::process::id()
    ))
}

/// Writes a world with the simulator; returns the seconds it took.
fn generate(
    dir: &Path,
    seed: u64,
    tenants: u32,
    users: u32,
    load: &LoadConfig,
) -> anyhow::Result<f64> {
    eprintln!(
        "entrawatch bench: generating {tenants} tenants × {users} users × {DAYS} days into {}",
        dir.display()
    );
    let started = Instant::now();
    crate::simulate::run(
        SimulateArgs {
            out: Some(dir.to_owned()),
            seed,
            days: DAYS,
            tenants,
            users_per_tenant: users,
            technicians: 4,
            attacks_per_rule: 1,
            eval: false,
        },
        load,
    )?;
    Ok(started.elapsed().as_secs_f64())
}

/// The config of the world in `dir`, or the default when it has none.
fn load_config(dir: &Path, load: &LoadConfig) -> anyhow::Result<ReplayConfig> {
    let path = dir.join("entrawatch.toml");
    if path.is_file() {
        load(&path)
    } else {
        Ok(ReplayConfig::default())
    }
}

/// [`load_config`] with the replay's memory budget from the arguments.
fn replay_config(dir: &Path, load: &LoadConfig, args: &BenchArgs) -> anyhow::Result<ReplayConfig> {
    let mut config = load_config(dir, load)?;
    config.order.memory_budget = args.memory_budget;
    Ok(config)
}

fn bench(
    args: &BenchArgs,
    dir: &Path,
    generated: bool,
    generate_seconds: f64,
    users: u32,
    reps: u32,
    load: &LoadConfig,
) -> anyhow::Result<Report> {
    let files = walk_all(&[dir.to_owned()])
        .with_context(|| format!("cannot list {}", dir.display()))?
        .files;
    if files.is_empty() {
        bail!("no log files under {}", dir.display());
    }
    let config = replay_config(dir, load, args)?;

    let failures = AtomicU64::new(0);
    let opts = read_options();
    let mut replay_figures = None;
    // Rounds of all four phases rather than each phase repeated: a burst of load from elsewhere
    // then costs every phase alike, and the best run of each is kept.
    let mut rounds: Vec<[Phase; 5]> = Vec::new();
    for round in 1..=reps {
        eprintln!("entrawatch bench: round {round}/{reps}: read-only pass");
        let read = measure::measure("read-only", || {
            measure::on_all_cores(&files, &|f| {
                let n = std::fs::read(f).map_or(0, |b| std::hint::black_box(b).len() as u64);
                (0, n)
            })
        });
        eprintln!(
            "entrawatch bench: round {round}/{reps}: parse-only reference (serde_json typed)"
        );
        failures.store(0, Ordering::Relaxed);
        let parse = measure::measure("parse-only (serde_json typed)", || {
            measure::on_all_cores(&files, &|f| {
                reference::parse_file(f, reference::Parser::SerdeJson, &failures)
            })
        });
        eprintln!(
            "entrawatch bench: round {round}/{reps}: ingest only (read_file, events dropped)"
        );
        let ingest = measure::measure("ingest only (read_file)", || {
            measure::on_all_cores(&files, &|f| {
                let mut records = 0u64;
                let bytes = entrawatch_ingest::read_file(f, &opts, &mut |item| {
                    records +=
                        u64::from(!matches!(item, entrawatch_ingest::Item::EmptyFile { .. }));
                    drop(std::hint::black_box(item));
                });
                // An unreadable file was counted as a reject above; it read no bytes.
                (records, bytes.unwrap_or(0))
            })
        });
        eprintln!("entrawatch bench: round {round}/{reps}: full replay");
        let (full, figures) = replay_phase("full replay", &files, &config);
        replay_figures = Some(ReplayFigures::quicker(replay_figures, figures));
        eprintln!("entrawatch bench: round {round}/{reps}: parse-only reference (sonic-rs typed)");
        let sonic_failures = AtomicU64::new(0);
        let sonic = measure::measure("parse-only (sonic-rs typed)", || {
            measure::on_all_cores(&files, &|f| {
                reference::parse_file(f, reference::Parser::Sonic, &sonic_failures)
            })
        });
        failures.fetch_add(sonic_failures.into_inner(), Ordering::Relaxed);
        rounds.push([read, parse, ingest, full, sonic]);
    }
    let best = |i: usize| measure::best(rounds.iter().map(|r| r[i].clone()));
    let least_cpu = |i: usize| {
        rounds
            .iter()
            .map(|r| r[i].cpu_us_per_event)
            .fold(f64::INFINITY, f64::min)
    };
    let (read, parse, ingest, full, sonic) = (best(0), best(1), best(2), best(3), best(4));
    let cpu_ratio = least_cpu(1) / least_cpu(3);
    let sonic_cpu_ratio = least_cpu(4) / least_cpu(3);
    let mut replay = replay_figures.context("the replay did not run")??;
    replay.reference_failures = failures.load(Ordering::Relaxed);

    let tenants = if args.compare_tenants > 0 && args.compare_tenants != args.tenants {
        Some(compare_tenants(args, &full, &replay, load)?)
    } else {
        None
    };
    let phases = vec![read, parse, ingest, full, sonic];
    let peak_rss_mb = phases.iter().map(|p| p.rss_peak_mb).fold(0.0, f64::max);
    let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { 0.0 };
    Ok(Report {
        machine: Machine {
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            version: env!("CARGO_PKG_VERSION"),
        },
        world: WorldInfo {
            path: dir.display().to_string(),
            generated,
            generate_seconds,
            tenants: generated.then_some(args.tenants),
            users_per_tenant: generated.then_some(users),
            files: files.len(),
            bytes: phases[0].bytes,
            records: phases[1].events,
        },
        ratio_full_to_parse_wall: ratio(phases[3].events_per_second, phases[1].events_per_second),
        ratio_full_to_parse_cpu: cpu_ratio,
        ratio_full_to_sonic_wall: ratio(phases[3].events_per_second, phases[4].events_per_second),
        ratio_full_to_sonic_cpu: sonic_cpu_ratio,
        rounds: rounds.iter().map(|r| r.to_vec()).collect(),
        replay,
        tenants,
        state_scale: None,
        peak_rss_mb,
        replay_peak_rss_mb: rounds.first().map_or(0.0, |r| r[3].rss_peak_mb),
        memory_budget: args.memory_budget,
        phases,
    })
}

fn read_options() -> ReadOptions {
    ReadOptions {
        tenant: None,
        max_record_bytes: entrawatch_ingest::reader::DEFAULT_MAX_RECORD_BYTES,
    }
}

/// One full replay, measured.
fn replay_phase(
    name: &str,
    files: &[PathBuf],
    config: &ReplayConfig,
) -> (Phase, anyhow::Result<ReplayFigures>) {
    let opts = read_options();
    let mut figures = None;
    let phase = measure::measure(name, || {
        let replayed = replay_files(
            files,
            &opts,
            config,
            &mut |_| {},
            &mut |_: &entrawatch_ingest::Rejected| {},
            &mut |_: &entrawatch_ingest::Event| Ok(()),
        );
        let counts = replayed
            .as_ref()
            .map_or((0, 0), |r| (r.stats.records_read, r.stats.bytes_read));
        figures = Some(
            replayed
                .map_err(anyhow::Error::from)
                .map(|r| ReplayFigures {
                    records_read: r.stats.records_read,
                    events_processed: r.events_processed,
                    duplicates: r.duplicates,
                    parse_errors: r.stats.parse_errors,
                    alerts: r.alerts.len() as u64,
                    tracked_principals: r.tracked_principals as u64,
                    state_bytes: r.state_bytes as u64,
                    state_bytes_per_principal: r
                        .state_bytes
                        .checked_div(r.tracked_principals)
                        .unwrap_or(0) as u64,
                    state_parts: r.state_parts,
                    reference_failures: 0,
                    read_seconds: r.stages.read,
                    order_seconds: r.stages.order,
                    finish_seconds: r.stages.finish,
                    detect_seconds: r.stages.detect,
                    detect_us_per_event: r.stages.detect * 1e6 / r.events_processed.max(1) as f64,
                    spilled_runs: r.spilled_runs as u64,
                    spilled_bytes: r.spilled_bytes,
                }),
        );
        counts
    });
    let figures = figures.unwrap_or_else(|| Err(anyhow::anyhow!("the replay did not run")));
    (phase, figures)
}

/// Generates a world with `--compare-tenants` tenants and the same accounts, replays it, and
/// compares the CPU per event with the base world's.
fn compare_tenants(
    args: &BenchArgs,
    base: &Phase,
    base_replay: &ReplayFigures,
    load: &LoadConfig,
) -> anyhow::Result<TenantsComparison> {
    let tenants = args.compare_tenants;
    let users = users_per_tenant(args.scale, tenants);
    let dir = temp_dir("tenants", tenants);
    let result = (|| {
        generate(&dir, args.seed, tenants, users, load)?;
        let files = walk_all(std::slice::from_ref(&dir))?.files;
        let config = replay_config(&dir, load, args)?;
        eprintln!("entrawatch bench: full replay of the {tenants}-tenant world");
        let mut quickest = None;
        let phase = measure::best((0..args.reps.max(1)).map(|_| {
            let (phase, figures) = replay_phase("full replay", &files, &config);
            quickest = Some(ReplayFigures::quicker(quickest.take(), figures));
            phase
        }));
        let figures = quickest.context("the replay did not run")??;
        Ok::<_, anyhow::Error>((phase, figures, users))
    })();
    let _ = std::fs::remove_dir_all(&dir);
    let (phase, other, users) = result?;
    let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { 0.0 };
    Ok(TenantsComparison {
        base_tenants: args.tenants,
        base_cpu_us_per_event: base.cpu_us_per_event,
        other_tenants: tenants,
        other_users_per_tenant: users,
        other_records: phase.events,
        other_cpu_us_per_event: phase.cpu_us_per_event,
        other_events_per_second: phase.events_per_second,
        cost_ratio: ratio(phase.cpu_us_per_event, base.cpu_us_per_event),
        base_detect_us_per_event: base_replay.detect_us_per_event,
        other_detect_us_per_event: other.detect_us_per_event,
        detect_cost_ratio: ratio(other.detect_us_per_event, base_replay.detect_us_per_event),
    })
}

fn render(r: &Report) -> String {
    let mut out = String::new();
    let w = &r.world;
    out += &format!(
        "entrawatch bench {} · {} cores · world {} ({} files, {:.1} MB, {} records{})\n",
        r.machine.version,
        r.machine.cores,
        w.path,
        w.files,
        w.bytes as f64 / 1e6,
        w.records,
        match (w.tenants, w.users_per_tenant) {
            (Some(t), Some(u)) => format!(
                ", {t} tenants × {u} users × {DAYS} days, generated in {:.1} s",
                w.generate_seconds
            ),
            _ => String::new(),
        }
    );
    out += &format!(
        "\n{:<32} {:>9} {:>9} {:>12} {:>9} {:>12} {:>10} {:>10}\n",
        "phase", "wall s", "cpu s", "records/s", "MB/s", "cpu µs/rec", "peak RSS", "RSS growth"
    );
    for p in &r.phases {
        out += &format!(
            "{:<32} {:>9.2} {:>9.2} {:>12.0} {:>9.1} {:>12.2} {:>7.0} MB {:>7.0} MB\n",
            p.name,
            p.wall_seconds,
            p.cpu_seconds,
            p.events_per_second,
            p.megabytes_per_second,
            p.cpu_us_per_event,
            p.rss_peak_mb,
            p.rss_growth_mb
        );
    }
    out += &format!(
        "\nfull replay / parse-only: {:.2} by wall time, {:.2} by CPU time (goal ≥ 0.80) · against sonic-rs: {:.2} by wall, {:.2} by CPU\n",
        r.ratio_full_to_parse_wall,
        r.ratio_full_to_parse_cpu,
        r.ratio_full_to_sonic_wall,
        r.ratio_full_to_sonic_cpu
    );
    let rp = &r.replay;
    out += &format!(
        "replay: {} records, {} events processed, {} duplicates, {} parse errors, {} alerts; reference could not decode {}\n",
        rp.records_read,
        rp.events_processed,
        rp.duplicates,
        rp.parse_errors,
        rp.alerts,
        rp.reference_failures
    );
    out += &format!(
        "replay stages (wall): read {:.2} s on all cores · order {:.2} s · detect {:.2} s on one thread ({:.2} µs/event) · finish {:.2} s\n",
        rp.read_seconds,
        rp.order_seconds,
        rp.detect_seconds,
        rp.detect_us_per_event,
        rp.finish_seconds
    );
    out += &format!(
        "replay memory: peak RSS {:.0} MB (first round) against a budget of {:.0} MB · {}\n",
        r.replay_peak_rss_mb,
        r.memory_budget as f64 / 1e6,
        if rp.spilled_runs == 0 {
            "fitted, ordered in memory".to_owned()
        } else {
            format!(
                "{} sorted runs ({:.0} MB) written to disk and merged",
                rp.spilled_runs,
                rp.spilled_bytes as f64 / 1e6
            )
        }
    );
    let each = |bytes: usize| bytes as u64 / rp.tracked_principals.max(1);
    let parts = &rp.state_parts;
    out += &format!(
        "state after the replay: {} principals, {} bytes each (State::approx_bytes): the principals' own {} · addresses {} · applications {} · findings chains {} · technicians and tenants {} · extra rules' windows {}\n",
        rp.tracked_principals,
        rp.state_bytes_per_principal,
        each(parts.principals),
        each(parts.addresses),
        each(parts.applications),
        each(parts.chains),
        each(parts.technicians + parts.tenants),
        (rp.state_bytes.saturating_sub(parts.total() as u64)) / rp.tracked_principals.max(1),
    );
    if let Some(t) = &r.tenants {
        out += &format!(
            "tenants: {} tenants {:.2} cpu µs/record · {} tenants ({} users each, {} records) {:.2} cpu µs/record · ratio {:.2} (flat = 1.00)\n",
            t.base_tenants,
            t.base_cpu_us_per_event,
            t.other_tenants,
            t.other_users_per_tenant,
            t.other_records,
            t.other_cpu_us_per_event,
            t.cost_ratio
        );
        out += &format!(
            "tenants, detection stage alone: {:.2} µs/event at {} · {:.2} µs/event at {} · ratio {:.2}\n",
            t.base_detect_us_per_event,
            t.base_tenants,
            t.other_detect_us_per_event,
            t.other_tenants,
            t.detect_cost_ratio
        );
    }
    if let Some(s) = &r.state_scale {
        out += &format!(
            "state at scale: {} principals ({} events, {:.1} s) · estimate {:.0} B/principal · resident growth {:.0} B/principal · {:.2} M principals per GB (goal ≤ 1024 B)\n",
            s.principals_tracked,
            s.events,
            s.seconds,
            s.approx_bytes_per_principal,
            s.rss_bytes_per_principal,
            s.principals_per_gb / 1e6
        );
    }
    out += &format!("peak RSS of any phase: {:.0} MB\n", r.peak_rss_mb);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn world_sizes_follow_the_scale_and_stay_in_the_simulators_bounds() {
        assert_eq!(users_per_tenant(1.0, 50), 250);
        assert_eq!(users_per_tenant(1.0, 500), 25);
        assert_eq!(users_per_tenant(0.1, 500), 8);
        assert_eq!(users_per_tenant(100.0, 6), 5000);
    }
}
