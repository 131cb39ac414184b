//! The `graph` source's tenant set changing while it runs, against the fake Graph on 127.0.0.1
//! (`graph_support/fake.rs`): tenants added and removed through [`GraphControl`] (what a reload
//! does), and customers found by GDAP discovery appearing and disappearing.
//!
//! Time runs 20x faster than in service (`graph_support::SCALE`): a one-minute discovery interval
//! lasts 3 s. Every wait is bounded; nothing asserts on wall-clock durations.
//!
//! Run: `cargo test -p entrawatch-ingest --features graph --test graph_tenants -- --nocapture`.

#![cfg(feature = "graph")]

mod graph_support;

use std::collections::HashMap;
use std::time::Duration;

use entrawatch_ingest::sources::graph::{Discover, GraphConfig, GraphControl, TenantChange};
use graph_support::fake::{FakeGraph, Key};
use graph_support::harness::Run;
use graph_support::scenario::*;
use graph_support::*;
use serde_json::Value;
use tokio::time::Instant;

/// A bound on each wait, not a timing.
const LIMIT: Duration = Duration::from_secs(120);

/// Tests run one at a time: the fake's budgets count requests as they arrive.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const GLOBAL_ADMINISTRATOR: &str = "62e90394-69f5-4237-9190-012177145e10";
const USER_ADMINISTRATOR: &str = "fe930be7-5e62-47db-91af-98c3a49a38b1";

/// Every record key the fake holds for `tenant`.
fn keys_of(fake: &FakeGraph, tenant: &str) -> HashMap<Key, Instant> {
    fake.expected(&all_endpoints())
        .into_iter()
        .filter(|(k, _)| k.0 == tenant)
        .collect()
}

/// A lane's watermark (seconds) in a position.
fn watermark(position: &Value, tenant: &str, lane: &str) -> Option<i64> {
    position["tenants"][tenant][lane][0].as_i64()
}

/// Requests `tenant` makes over `d` once the changes before have settled (a request already on
/// the wire when its poller stopped may still be logged in the first moments).
async fn requests_over(run: &mut Run, fake: &FakeGraph, tenant: &str, d: Duration) -> usize {
    run.settle(Duration::from_millis(300)).await;
    let (_, from) = fake.requests_since(tenant, 0);
    run.settle(d).await;
    fake.requests_since(tenant, from).0
}

/// The tests' config with each tenant named after its id, so a tenant keeps its entry whatever
/// its place in the list.
fn named(fake: &FakeGraph, tenants: &[String], dir: &std::path::Path) -> GraphConfig {
    let mut c = config(fake, tenants, dir);
    for t in &mut c.tenants {
        t.name = Some(format!("customer {}", &t.id[..8]));
    }
    c
}

async fn retarget(control: &GraphControl, cfg: &GraphConfig) -> TenantChange {
    let prepared = control.prepare(cfg).unwrap_or_else(|p| panic!("{p:#?}"));
    control.apply(prepared).await.expect("the source runs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_added_back_fills_a_tenant_removed_stops_and_the_kept_one_keeps_its_watermarks() {
    let _serial = SERIAL.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeGraph::start(options(true, vec![])).await;
    let (a, b, c) = (tenant(1), tenant(2), tenant(3));
    for t in [&a, &b, &c] {
        seed(&fake, t, 20, 2);
    }
    let source = source(named(&fake, &[a.clone(), b.clone()], dir.path()));
    let control = source.control();
    let mut run = Run::start(source, None);
    let first: Vec<Key> = keys_of(&fake, &a)
        .into_keys()
        .chain(keys_of(&fake, &b).into_keys())
        .collect();
    assert!(
        run.until(LIMIT, |r| r.has_all(&first)).await,
        "the listed tenants back-filled"
    );
    assert!(!fake.tenants_polled().contains(&c), "c is not listed yet");
    let b_before = watermark(run.position.as_ref().unwrap(), &b, "directory_audits")
        .expect("b's audit lane checkpointed");

    // The reload: a goes, c comes, b stays.
    let asked = Instant::now();
    let change = retarget(&control, &named(&fake, &[b.clone(), c.clone()], dir.path())).await;
    println!(
        "{change} (applied in {} ms, a's pollers stopped and c's started)",
        asked.elapsed().as_millis()
    );
    assert_eq!(change.added, std::slice::from_ref(&c));
    assert_eq!(change.removed, std::slice::from_ref(&a));
    assert_eq!(change.unchanged, 1);
    assert!(!change.restart_needed);

    let c_keys = keys_of(&fake, &c);
    assert!(
        run.until(LIMIT, |r| r.has_all(c_keys.keys())).await,
        "the added tenant back-filled its configured days"
    );
    // A record of the removed tenant, read by nobody; one of the kept tenant, found by its poll.
    fake.add(
        &a,
        graph_support::data::Endpoint::DirectoryAudits,
        chrono::Utc::now() - chrono::Duration::minutes(10),
        "",
    );
    let b_new = fake.add(
        &b,
        graph_support::data::Endpoint::DirectoryAudits,
        chrono::Utc::now() - chrono::Duration::minutes(10),
        "",
    );
    assert!(
        run.until(LIMIT, |r| r.counts.contains_key(&b_new)).await,
        "the kept tenant is still polled"
    );
    let a_requests = requests_over(&mut run, &fake, &a, Duration::from_millis(1500)).await;
    assert_eq!(a_requests, 0, "the removed tenant is no longer polled");

    let position = run.position.clone().unwrap();
    assert!(position["tenants"].get(&a).is_none(), "a left the position");
    assert!(
        position["tenants"].get(&c).is_some(),
        "c is in the position"
    );
    let b_after = watermark(&position, &b, "directory_audits").unwrap();
    assert!(
        b_after >= b_before,
        "b kept its watermark ({b_before} -> {b_after}) instead of starting a back-fill again"
    );
    assert_eq!(
        run.repeats(),
        vec![],
        "no record of the kept tenant read twice"
    );
    let listed = run
        .metrics
        .graph_tenants
        .with_label_values(&["graph", "listed"])
        .get();
    assert_eq!(listed, 2);

    // A set that changes nothing says so.
    let same = retarget(&control, &named(&fake, &[b.clone(), c.clone()], dir.path())).await;
    assert!(same.added.is_empty() && same.removed.is_empty());
    assert_eq!(same.unchanged, 2);
    assert!(!same.restart_needed, "{same}");
    // A kept tenant's entry changed: it keeps running as it was until a restart, and says so.
    let mut renamed = named(&fake, &[b.clone(), c.clone()], dir.path());
    renamed.tenants[0].client_id = Some("0d9f3a1e-5c2b-4e8f-9a7d-3b6c1e2f4a50".into());
    let change = retarget(&control, &renamed).await;
    assert_eq!(change.unchanged, 2);
    assert!(change.restart_needed, "{change}");
    // Other settings changed: the tenants change, the rest waits for a restart.
    let mut other = named(&fake, std::slice::from_ref(&b), dir.path());
    other.poll_interval_secs = 30;
    let change = retarget(&control, &other).await;
    assert_eq!(change.removed, std::slice::from_ref(&c));
    assert!(change.restart_needed, "{change}");
    run.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gdap_customers_are_discovered_and_picked_up_and_dropped_as_relationships_change() {
    let _serial = SERIAL.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeGraph::start(options(true, vec![])).await;
    let partner = tenant(100);
    fake.set_partner(&partner);
    let c1 = tenant(0x11);
    let c2 = tenant(0x12);
    let expired = tenant(0x13);
    let excluded = tenant(0x14);
    let later = tenant(0x15);
    let over_cap = tenant(0x16);
    for t in [&c1, &c2, &expired, &excluded, &later, &over_cap] {
        seed(&fake, t, 8, 2);
    }
    let r1 = fake.relate(&c1, "Contoso", "active", &[GLOBAL_ADMINISTRATOR], "P180D");
    fake.relate(&c2, "Fabrikam", "active", &[USER_ADMINISTRATOR], "PT0S");
    fake.relate(
        &expired,
        "Old customer",
        "expired",
        &[USER_ADMINISTRATOR],
        "PT0S",
    );
    fake.relate(
        &excluded,
        "Not ours",
        "active",
        &[USER_ADMINISTRATOR],
        "PT0S",
    );
    // Over the cap of 2: the greatest tenant id is left out.
    fake.relate(
        &over_cap,
        "Too many",
        "active",
        &[USER_ADMINISTRATOR],
        "PT0S",
    );

    let mut cfg = config(&fake, &[], dir.path());
    cfg.discover = Some(Discover::Gdap);
    cfg.partner_tenant_id = Some(partner.clone());
    cfg.discover_interval_minutes = 1;
    cfg.discover_exclude = vec![excluded.clone()];
    cfg.max_tenants = 2;
    let mut run = Run::start(source(cfg), None);
    let first: Vec<Key> = keys_of(&fake, &c1)
        .into_keys()
        .chain(keys_of(&fake, &c2).into_keys())
        .collect();
    assert!(
        run.until(LIMIT, |r| r.has_all(&first)).await,
        "the customers with an active relationship back-filled"
    );
    let discovered = |run: &Run| {
        run.metrics
            .graph_tenants
            .with_label_values(&["graph", "discovered"])
            .get()
    };
    assert_eq!(discovered(&run), 2);
    assert_eq!(
        run.metrics
            .graph_discovery_ok
            .with_label_values(&["graph"])
            .get(),
        1
    );
    let polled = fake.tenants_polled();
    for (t, why) in [
        (&expired, "an expired relationship"),
        (&excluded, "an excluded customer"),
        (&over_cap, "a customer over the cap"),
    ] {
        assert!(!polled.contains(t), "{why} is not polled");
    }
    assert!(
        fake.with_counters(|c| c.gdap_pages) >= 4,
        "both collections read, following nextLink"
    );
    let relationships = |run: &Run, t: &str| {
        run.counts
            .keys()
            .filter(|k| k.0 == t && k.1 == "gdapRelationship")
            .count()
    };
    assert_eq!(
        relationships(&run, &c1),
        1,
        "the relationship went to detection, in the customer's tenant"
    );
    for t in [&expired, &excluded, &over_cap] {
        assert_eq!(
            relationships(&run, t),
            0,
            "only the relationships of tenants polled go to detection"
        );
    }

    // While running: c1's relationship expires, a new customer's becomes active.
    let changed_at = Instant::now();
    fake.set_relationship_status(&r1, "expired");
    fake.relate(&later, "Northwind", "active", &[USER_ADMINISTRATOR], "PT0S");
    let later_keys = keys_of(&fake, &later);
    assert!(
        run.until(LIMIT, |r| r.has_all(later_keys.keys())).await,
        "the new customer was discovered and back-filled"
    );
    println!(
        "new GDAP customer picked up and back-filled {} ms after its relationship became active \
         (discovery every 3 s scaled); GDAP pages read so far: {}",
        changed_at.elapsed().as_millis(),
        fake.with_counters(|c| c.gdap_pages)
    );
    assert_eq!(
        relationships(&run, &later),
        1,
        "the new customer's relationship went to detection"
    );
    let c1_requests = requests_over(&mut run, &fake, &c1, Duration::from_millis(1500)).await;
    assert_eq!(
        c1_requests, 0,
        "the customer whose relationship ended is dropped"
    );
    assert!(
        !fake.tenants_polled().contains(&over_cap),
        "still over the cap"
    );
    let position = run.position.clone().unwrap();
    assert!(position["tenants"].get(&c1).is_none());
    assert!(position["tenants"].get(&later).is_some());
    assert_eq!(discovered(&run), 2);
    assert_eq!(run.repeats(), vec![]);
    run.stop().await;
}
