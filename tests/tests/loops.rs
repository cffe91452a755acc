//! Every background loop of a site and of the master is supervised: a panic (here a
//! failpoint) shows the loop degraded in `/health`, the supervisor restarts it, and
//! it is healthy again with its restarts counted. Single-process loops and the
//! master's are failed while running (`Failpoints::arm`); the orchestrator-only
//! loops (PostgreSQL listener, long-poll relay) through `MERIDIAN_FAILPOINTS` at
//! start.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use meridian_master::MasterServer;
use meridian_master::config::MasterConfig;
use meridian_service::failpoints::{Action, Failpoints};
use meridian_tests::Backend;
use meridian_tests::process::{SiteProcess, free_port};
use meridian_tests::site::TestSite;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

/// The loops a single-process site runs.
const SITE_LOOPS: &[&str] = &[
    "assigner",
    "reaper",
    "pipeliner",
    "finisher",
    "config_reloader",
    "resource_monitor",
    "completer",
    "database",
];

/// The loops only `--mode orchestrator` runs.
const ORCHESTRATOR_LOOPS: &[&str] = &["listener", "long_poll_relay"];

/// The master's loops.
const MASTER_LOOPS: &[&str] = &["dispatcher", "poller", "canceller", "catalog", "database"];

async fn health(http: &reqwest::Client, base: &str) -> Value {
    http.get(format!("{base}/health"))
        .send()
        .await
        .expect("/health answers")
        .json()
        .await
        .expect("/health is JSON")
}

/// Waits until every one of `names` is healthy.
async fn wait_healthy(http: &reqwest::Client, base: &str, names: &[&str]) {
    let start = Instant::now();
    loop {
        let h = health(http, base).await;
        if names
            .iter()
            .all(|n| h["components"][n]["state"] == "healthy")
        {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "not all of {names:?} healthy: {h:#}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Watches `/health` until each of `names` has been seen degraded by a panic and is
/// healthy again after `restarts` restarts; the whole service is seen degraded too.
async fn watch_panic_and_recovery(
    http: &reqwest::Client,
    base: &str,
    names: &[&str],
    restarts: u64,
) {
    let mut degraded: BTreeSet<&str> = BTreeSet::new();
    let mut overall_degraded = false;
    let start = Instant::now();
    loop {
        let h = health(http, base).await;
        let c = &h["components"];
        overall_degraded |= h["status"] == "degraded";
        for n in names {
            if c[n]["state"] == "degraded"
                && c[n]["reason"]
                    .as_str()
                    .is_some_and(|r| r.contains("panicked"))
            {
                degraded.insert(n);
            }
        }
        let recovered = names.iter().all(|n| {
            degraded.contains(n)
                && c[n]["state"] == "healthy"
                && c[n]["restarts"].as_u64() == Some(restarts)
        });
        if recovered {
            assert!(overall_degraded, "/health never degraded overall");
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "seen degraded: {degraded:?} of {names:?}; now: {h:#}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_site_loop_is_restarted_after_a_panic() {
    let yaml = "data_sources:\n  - id: s\n    kind: synthetic\n    objects: 30\n";
    let site = TestSite::start_with(Backend::Sqlite, yaml, Failpoints::default()).await;
    wait_healthy(&site.http, &site.base, SITE_LOOPS).await;
    for name in SITE_LOOPS {
        site.app.failpoints.arm(name, Action::Panic, 2);
    }
    watch_panic_and_recovery(&site.http, &site.base, SITE_LOOPS, 2).await;
    // The restarted loops do their work: a job runs to the end.
    let job = site
        .start_job(json!({ "name": "after restarts", "data_sources": ["s"] }))
        .await;
    let status = site.wait_terminal(&job, Duration::from_secs(60)).await;
    assert_eq!(status["state"], "COMPLETED", "{status}");
    site.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_orchestrator_only_loops_are_restarted_after_a_panic() {
    meridian_tests::init();
    let url = meridian_tests::pg::fresh_database().await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("site.yaml");
    std::fs::write(
        &config,
        format!(
            "database:\n  url: \"{url}\"\nnode:\n  data_dir: {}\nworker:\n  global_cpu_threshold_percent: 100\n",
            dir.path().display()
        ),
    )
    .unwrap();
    // Six panics each: at least 3 s degraded (jittered backoff from 50 ms), long
    // enough to be seen after `/ready`, which comes right after the loops start.
    let spec = ORCHESTRATOR_LOOPS
        .iter()
        .map(|n| format!("{n}=panic*6"))
        .collect::<Vec<_>>()
        .join(",");
    let orchestrator = SiteProcess::start_orchestrator(
        &config,
        free_port(),
        &dir.path().join("orchestrator.log"),
        &[
            (
                "MERIDIAN_WORKER_AUTH_KEY",
                "test-worker-key-0123456789abcdef0123456789",
            ),
            ("MERIDIAN_FAILPOINTS", &spec),
        ],
    )
    .await;
    let http = reqwest::Client::new();
    watch_panic_and_recovery(&http, &orchestrator.base, ORCHESTRATOR_LOOPS, 6).await;
    let log = orchestrator.log_text();
    assert!(log.contains("listener failed: panicked"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_master_loop_is_restarted_after_a_panic() {
    meridian_tests::init();
    let dir = tempfile::tempdir().unwrap();
    let certs = meridian_master::certs::init(&dir.path().join("certs"), &[]).expect("certs");
    let mut cfg = MasterConfig::default();
    cfg.master.listen = "127.0.0.1:0".into();
    cfg.master.data_dir = dir.path().join("master");
    cfg.master.poll_interval_seconds = 0.3;
    cfg.master.catalog_refresh_seconds = 0.5;
    cfg.auth.public_key_file = Some(certs.jwt_public());
    std::fs::create_dir_all(&cfg.master.data_dir).unwrap();
    let server = MasterServer::build_with(cfg, Failpoints::default())
        .await
        .expect("master builds");
    let base = format!("http://{}", server.local_addr());
    let master: Arc<_> = server.master();
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(server.run(shutdown.clone()));
    let http = reqwest::Client::new();
    wait_healthy(&http, &base, MASTER_LOOPS).await;
    for name in MASTER_LOOPS {
        master.failpoints.arm(name, Action::Panic, 2);
    }
    watch_panic_and_recovery(&http, &base, MASTER_LOOPS, 2).await;
    shutdown.cancel();
    running.await.unwrap().unwrap();
}
