//! Measuring one phase of `entrawatch bench`: wall time, CPU time of the whole process (every
//! thread, including threads that have ended), resident memory before and at peak, and a runner
//! that spreads files over every core the way the replay does.
//!
//! What comes in: a closure to time. What goes out: a [`Phase`] with its figures. Figures come from
//! `/proc/self/stat` (CPU in 1/100 s ticks) and `/proc/self/status` (`VmRSS`, `VmHWM`); the peak is
//! reset before each phase through `/proc/self/clear_refs`, so each phase has its own. On a system
//! without `/proc` the memory and CPU figures read as zero.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use serde::Serialize;

/// Linux reports CPU times in `USER_HZ` ticks, 100 per second on every architecture's ABI.
const TICKS_PER_SECOND: f64 = 100.0;

/// The figures of one measured phase.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Phase {
    pub name: String,
    pub wall_seconds: f64,
    /// User plus system CPU of the whole process during the phase.
    pub cpu_seconds: f64,
    pub events: u64,
    pub bytes: u64,
    pub events_per_second: f64,
    pub megabytes_per_second: f64,
    /// CPU microseconds per event, all threads: the figure that load on a shared machine moves least.
    pub cpu_us_per_event: f64,
    /// Resident memory when the phase started, and the highest it reached during it.
    pub rss_start_mb: f64,
    pub rss_peak_mb: f64,
    /// Peak minus start: what the phase itself needed (memory freed by an earlier phase may still
    /// be counted in the start, as the allocator keeps it).
    pub rss_growth_mb: f64,
}

/// Resident memory now and the peak since the last reset, in bytes.
pub fn rss() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map_or(0, |kb| kb * 1024)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Resets the peak resident figure (`VmHWM`) to the current one, where the kernel allows it.
pub fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// CPU seconds (user plus system) the process has used, ended threads included.
pub fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // The command name may hold spaces: fields are counted after its closing parenthesis.
    let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
        return 0.0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After `)`: state is field 3 of the file, utime 14 and stime 15, so indexes 11 and 12 here.
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    (ticks(11) + ticks(12)) as f64 / TICKS_PER_SECOND
}

/// Runs `work`, which returns (events, bytes), and measures it as phase `name`.
pub fn measure(name: &str, work: impl FnOnce() -> (u64, u64)) -> Phase {
    reset_peak();
    let (rss_start, _) = rss();
    let cpu_start = cpu_seconds();
    let started = Instant::now();
    let (events, bytes) = work();
    let wall = started.elapsed().as_secs_f64().max(1e-9);
    let cpu = cpu_seconds() - cpu_start;
    let (_, peak) = rss();
    Phase {
        name: name.to_owned(),
        wall_seconds: wall,
        cpu_seconds: cpu,
        events,
        bytes,
        events_per_second: events as f64 / wall,
        megabytes_per_second: bytes as f64 / 1e6 / wall,
        cpu_us_per_event: if events == 0 {
            0.0
        } else {
            cpu * 1e6 / events as f64
        },
        rss_start_mb: rss_start as f64 / 1e6,
        rss_peak_mb: peak.max(rss_start) as f64 / 1e6,
        rss_growth_mb: peak.saturating_sub(rss_start) as f64 / 1e6,
    }
}

/// The best of several runs of a phase (highest events/s), so one disturbed run does not decide.
pub fn best(runs: impl Iterator<Item = Phase>) -> Phase {
    runs.fold(None::<Phase>, |best, run| match best {
        Some(b) if b.events_per_second >= run.events_per_second => Some(b),
        _ => Some(run),
    })
    .unwrap_or_default()
}

/// Calls `per_file` for every file on all available cores, as the replay reads (one file at a
/// time per worker, the next file to whichever worker is free), and sums what it returns.
pub fn on_all_cores(
    files: &[PathBuf],
    per_file: &(dyn Fn(&PathBuf) -> (u64, u64) + Sync),
) -> (u64, u64) {
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(files.len())
        .max(1);
    let next = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                let next = &next;
                scope.spawn(move || {
                    let mut sum = (0u64, 0u64);
                    while let Some(file) = files.get(next.fetch_add(1, Ordering::Relaxed)) {
                        let (a, b) = per_file(file);
                        sum.0 += a;
                        sum.1 += b;
                    }
                    sum
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_default())
            .fold((0, 0), |acc, s| (acc.0 + s.0, acc.1 + s.1))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_figures_are_read() {
        let (now, peak) = rss();
        assert!(now > 0 && peak >= now, "rss {now} peak {peak}");
        let spent = measure("spin", || {
            let mut x = 0u64;
            for i in 0..20_000_000u64 {
                x = std::hint::black_box(x.wrapping_add(i));
            }
            (1, x % 2)
        });
        assert_eq!(spent.events, 1);
        assert!(spent.cpu_seconds >= 0.0 && spent.wall_seconds > 0.0);
    }
}
