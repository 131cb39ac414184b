//! `entrawatch run`: the service.
//!
//! ```text
//!  sources (tokio tasks) ──Batch──▶ [bounded channel] ──▶ detection thread ──▶ outbox (SQLite, WAL)
//!        ▲                                 aligner → engine, episodes,        │
//!        └──── Committed(seq) at each snapshot ◀──┘  routing, snapshots       ▼
//!                                                                     delivery workers (one per destination)
//!  admin HTTP: /metrics /livez /readyz /-/reload /api/silences (writes need the admin token)
//! ```
//!
//! Start: bind the admin port (`/readyz` answers 503 "starting"), resolve secrets, open the outbox,
//! restore the snapshot ("restoring"), start delivery, then the sources from the snapshot's
//! positions, or where a source prefers (Graph, per lane) the newer checkpoint committed to the
//! outbox ("ready"). Every batch's events go through the event-time aligner, which hands them to
//! detection in event-time order; the notifications and the batch's position are committed in one
//! outbox transaction (see [`pipeline`]). A snapshot of the whole detection state, the aligner's
//! buffer and the positions they reflect is written every `snapshot_interval_secs`; only then are
//! the batches it covers acknowledged to their sources (a Kafka offset is committed).
//!
//! Stop (SIGTERM or SIGINT): "draining"; a snapshot is written at once and every snapshot after it
//! acknowledges what came in; sources stop fetching and commit what is durable; the detection thread
//! finishes what is queued and writes a final snapshot; delivery sends what is due and what is held
//! for grouping until the outbox is empty or the grace period ends; exit 0 (2 when a source stopped
//! with an error or could not read all it was given). Undelivered rows stay in the outbox. SIGHUP
//! or `POST /-/reload` (with the admin token, see [`entrawatch_admin`]) re-reads the config file,
//! validates it, and swaps
//! detection settings, routing, inhibition, tenant names and file silences, and hands each running
//! Graph source its new tenant set (tenants added start polling, tenants removed stop; the reply
//! lists them); other source changes, destinations and `[service]` need a restart.

mod detection;
pub mod metrics;
pub mod pipeline;
pub mod snapshot;
pub mod telemetry;

mod service;

use std::process::ExitCode;

use crate::cli::RunArgs;

pub fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let config = entrawatch_config::load_for_run(&args.config)?;
    telemetry::init(config.service.log_format, &config.service.log_level)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("entrawatch")
        .build()?;
    let result = runtime.block_on(service::serve(args, config));
    // Sources may leave blocking work (a Kafka poll) behind; do not wait for it forever.
    runtime.shutdown_timeout(std::time::Duration::from_secs(5));
    result
}
