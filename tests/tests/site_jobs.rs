//! Whole sites in-process, over real HTTP, on SQLite and on PostgreSQL: jobs end to
//! end, fair sharing, retries, the failure threshold, cancellation, back-pressure with
//! a live configuration change, the reaper, and loop supervision.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use meridian_service::failpoints::Failpoints;
use meridian_store::{Completion, CreateOutcome, LeaseSpec, NewFinding, NewJob, ReportOutcome};
use meridian_tests::Backend;
use meridian_tests::corpus;
use meridian_tests::site::{TestSite, findings_by_classifier};
use serde_json::{Value, json};

const LONG: Duration = Duration::from_secs(120);

meridian_tests::on_both!(
    a_corpus_job_finds_exactly_the_seeded_values,
    a_small_job_is_not_starved_under_round,
    a_small_job_is_not_starved_under_weighted,
    retryable_failures_are_retried_up_to_max_retries,
    permanent_failures_above_the_threshold_fail_the_job,
    cancellation_stops_the_job,
    back_pressure_holds_tasks_until_a_live_change_lifts_it,
    an_expired_lease_is_reaped_and_its_late_report_refused,
    a_failing_loop_is_restarted_and_the_job_completes,
    a_panicking_scan_fails_its_task_and_the_worker_goes_on,
    heartbeats_keep_a_task_longer_than_its_lease,
    a_stalled_scan_is_given_up_and_another_worker_takes_its_slot,
    shutdown_does_not_wait_for_a_scan_blocked_where_it_cannot_be_aborted,
);

/// One object per `PROCESS` task, for the tests of what happens to tasks (sharing,
/// retries, the failure threshold, cancellation, leases): their counts are then
/// counts of objects. Batches are the default and have tests of their own below.
const TASK_PER_OBJECT: &str = "connector:\n  objects_per_task: 1\n";

fn tasks_in(status: &Value, phase: &str, state: &str) -> i64 {
    status["tasks"]["by_phase"][phase][state]
        .as_i64()
        .unwrap_or(0)
}

fn filesystem_source(id: &str, root: &std::path::Path) -> String {
    format!(
        "data_sources:\n  - id: {id}\n    kind: filesystem\n    root: {}\n",
        root.display()
    )
}

async fn a_corpus_job_finds_exactly_the_seeded_values(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let corpus = corpus::generate(dir.path(), 42, 150, 40);
    let yaml = format!(
        "{}connector:\n  discovery_batch_write_size: 64\n",
        filesystem_source("ds_corpus", &corpus.root)
    );
    let site = TestSite::start(backend, &yaml).await;
    let job = site
        .start_job(json!({ "name": "corpus", "data_sources": ["ds_corpus"] }))
        .await;
    let status = site.wait_terminal(&job, LONG).await;
    assert_eq!(status["state"], "COMPLETED", "{status}");
    assert_eq!(findings_by_classifier(&status), corpus.expected, "{status}");
    assert_eq!(status["objects"]["discovered"], corpus.files as i64);
    assert_eq!(status["objects"]["processed"], corpus.files as i64);
    // The API only ever shows masked samples.
    let findings = site.all_findings(&job).await;
    let total: i64 = findings.iter().map(|f| f["count"].as_i64().unwrap()).sum();
    assert_eq!(total, corpus.expected.values().sum::<i64>());
    assert!(
        findings
            .iter()
            .all(|f| f["masked_sample"].as_str().unwrap().contains('*'))
    );
    site.stop().await.unwrap();
}

async fn fairness(backend: Backend, policy: &str, big_priority: u32) {
    let yaml = format!(
        "{TASK_PER_OBJECT}orchestrator:\n  fair_sharing_policy: {policy}\ndata_sources:\n  - id: big\n    kind: synthetic\n    objects: 2000\n    work_ms: 5\n  - id: small\n    kind: synthetic\n    objects: 20\n    work_ms: 5\n"
    );
    let site = TestSite::start(backend, &yaml).await;
    let big = site
        .start_job(json!({ "name": "big", "data_sources": ["big"], "priority": big_priority }))
        .await;
    site.wait_status(&big, LONG, |s| tasks_in(s, "PROCESS", "PENDING") >= 1500)
        .await;
    let small = site
        .start_job(json!({ "name": "small", "data_sources": ["small"], "priority": 1 }))
        .await;
    let done = site
        .wait_status(&small, LONG, |s| s["state"] == "COMPLETED")
        .await;
    let big_status = site.status(&big).await;
    let big_done = tasks_in(&big_status, "PROCESS", "SUCCEEDED");
    assert_eq!(tasks_in(&done, "PROCESS", "SUCCEEDED"), 20);
    assert!(
        big_done < 1000,
        "the small job waited for most of the big one: {big_done} of 2000 done"
    );
    assert!(
        tasks_in(&big_status, "PROCESS", "PENDING") > 1000,
        "{big_status}"
    );
    site.stop().await.unwrap();
}

async fn a_small_job_is_not_starved_under_round(backend: Backend) {
    fairness(backend, "ROUND", 1).await;
}

async fn a_small_job_is_not_starved_under_weighted(backend: Backend) {
    // Even at a fifth of the big job's weight, the small job gets its share at once.
    fairness(backend, "WEIGHTED", 5).await;
}

async fn retryable_failures_are_retried_up_to_max_retries(backend: Backend) {
    let sources = "connector:\n  objects_per_task: 1\ndata_sources:\n  - id: flaky\n    kind: synthetic\n    objects: 5\n    fail_retryable_attempts: 2\n";
    let enough = TestSite::start(backend, &format!("worker:\n  max_retries: 3\n{sources}")).await;
    let job = enough
        .start_job(json!({ "name": "flaky", "data_sources": ["flaky"] }))
        .await;
    let status = enough.wait_terminal(&job, LONG).await;
    assert_eq!(
        status["state"], "COMPLETED",
        "third attempts succeed: {status}"
    );
    assert_eq!(tasks_in(&status, "PROCESS", "SUCCEEDED"), 5);
    enough.stop().await.unwrap();

    let too_few = TestSite::start(backend, &format!("worker:\n  max_retries: 2\n{sources}")).await;
    let job = too_few
        .start_job(json!({ "name": "flaky", "data_sources": ["flaky"] }))
        .await;
    let status = too_few.wait_terminal(&job, LONG).await;
    assert_eq!(
        tasks_in(&status, "PROCESS", "FAILED"),
        5,
        "two attempts are all it gets: {status}"
    );
    assert_eq!(status["state"], "FAILED");
    too_few.stop().await.unwrap();
}

async fn permanent_failures_above_the_threshold_fail_the_job(backend: Backend) {
    // Each job's 40 objects are one task: a failed object is recorded as a failed task
    // of its own and the threshold counts objects, as it would with a task each.
    let yaml = "job:\n  failure_threshold_percent: 10\ndata_sources:\n  - id: few\n    kind: synthetic\n    objects: 40\n    fail_permanently_every: 20\n  - id: many\n    kind: synthetic\n    objects: 40\n    fail_permanently_every: 5\n";
    let site = TestSite::start(backend, yaml).await;
    let below = site
        .start_job(json!({ "name": "few failures", "data_sources": ["few"] }))
        .await;
    let above = site
        .start_job(json!({ "name": "many failures", "data_sources": ["many"] }))
        .await;
    let below = site.wait_terminal(&below, LONG).await;
    let above = site.wait_terminal(&above, LONG).await;
    // 41 units each (the discovery, 40 objects): 2 failed is 4.9 %, 8 failed is 19.5 %.
    assert_eq!(tasks_in(&below, "PROCESS", "FAILED"), 2, "{below}");
    assert_eq!(below["state"], "COMPLETED", "{below}");
    assert_eq!(tasks_in(&above, "PROCESS", "FAILED"), 8, "{above}");
    assert_eq!(above["state"], "FAILED", "{above}");
    for (status, complete) in [(&below, 38), (&above, 32)] {
        assert_eq!(tasks_in(status, "PROCESS", "SUCCEEDED"), 1, "{status}");
        assert_eq!(
            status["objects"]["by_outcome"],
            json!({ "COMPLETE": complete }),
            "the failed objects' neighbours completed: {status}"
        );
    }
    site.stop().await.unwrap();
}

async fn cancellation_stops_the_job(backend: Backend) {
    let yaml = "connector:\n  objects_per_task: 1\ndata_sources:\n  - id: slow\n    kind: synthetic\n    objects: 400\n    work_ms: 20\n";
    let site = TestSite::start(backend, yaml).await;
    let job = site
        .start_job(json!({ "name": "to cancel", "data_sources": ["slow"] }))
        .await;
    site.wait_status(&job, LONG, |s| tasks_in(s, "PROCESS", "SUCCEEDED") >= 5)
        .await;
    let (code, body) = site.post(&format!("/cancel_job/{job}"), &json!({})).await;
    assert_eq!(code, 200, "{body}");
    let status = site.wait_terminal(&job, LONG).await;
    assert_eq!(status["state"], "CANCELLED", "{status}");
    assert_eq!(
        tasks_in(&status, "PROCESS", "PENDING") + tasks_in(&status, "PROCESS", "RUNNING"),
        0
    );
    assert!(tasks_in(&status, "PROCESS", "CANCELLED") > 300, "{status}");
    let (code, again) = site.post(&format!("/cancel_job/{job}"), &json!({})).await;
    assert_eq!((code, again["state"].as_str()), (200, Some("CANCELLED")));
    site.stop().await.unwrap();
}

/// Busy threads that keep both cores above any low threshold until dropped.
struct CpuBurner {
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl CpuBurner {
    fn start() -> CpuBurner {
        let stop = Arc::new(AtomicBool::new(false));
        let threads = (0..2)
            .map(|_| {
                let stop = stop.clone();
                std::thread::spawn(move || {
                    let deadline = std::time::Instant::now() + Duration::from_secs(60);
                    let mut x = 0u64;
                    while !stop.load(Ordering::Relaxed) && std::time::Instant::now() < deadline {
                        x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
                        std::hint::black_box(x);
                    }
                })
            })
            .collect();
        CpuBurner { stop, threads }
    }
}

impl Drop for CpuBurner {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

async fn back_pressure_holds_tasks_until_a_live_change_lifts_it(backend: Backend) {
    let yaml = "worker:\n  global_cpu_threshold_percent: 1\ndata_sources:\n  - id: s\n    kind: synthetic\n    objects: 10\n";
    let burner = CpuBurner::start();
    let site = TestSite::start(backend, yaml).await;
    let (_, health) = site.get("/health").await;
    let _ = health;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let job = site
        .start_job(json!({ "name": "held", "data_sources": ["s"] }))
        .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let held = site.status(&job).await;
    assert_eq!(
        held["state"], "PENDING",
        "no task may start under back-pressure: {held}"
    );
    assert_eq!(held["back_pressure"], true);
    // A live change in system_parameters, picked up without a restart.
    site.app
        .store
        .set_parameter("global", "worker.global_cpu_threshold_percent", "100")
        .await
        .unwrap();
    let done = site.wait_terminal(&job, LONG).await;
    assert_eq!(done["state"], "COMPLETED", "{done}");
    assert_eq!(site.app.cfg().worker.global_cpu_threshold_percent, 100);
    drop(burner);
    site.stop().await.unwrap();
}

async fn an_expired_lease_is_reaped_and_its_late_report_refused(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let corpus = corpus::generate(dir.path(), 9, 12, 30);
    let yaml = format!(
        "worker:\n  task_timeout_seconds: 2\n  heartbeat_interval_seconds: 1\n{}",
        filesystem_source("ds", &corpus.root)
    );
    let db_dir = tempfile::tempdir().unwrap();
    let url = meridian_tests::database_url(backend, db_dir.path()).await;
    // A worker of another node takes the job's discovery task and then goes silent.
    meridian_tests::init();
    let store = meridian_store::open(&url, 2).await.unwrap();
    let job_id = uuid::Uuid::now_v7().to_string();
    let new = NewJob {
        id: job_id.clone(),
        name: "reaped".into(),
        definition_hash: "h".into(),
        data_sources: vec!["ds".into()],
        options: "{}".into(),
        priority: 1,
        trace_id: "4bf92f3577b34da6a3ce929d0e0e4736".into(),
    };
    assert!(matches!(
        store.create_job(&new).await.unwrap(),
        CreateOutcome::Created(_)
    ));
    let ids = store.pending_task_ids(&job_id, 0, 10).await.unwrap();
    let ghost = LeaseSpec {
        worker_id: "ghost/1".into(),
        node: "ghost".into(),
        lease_ms: 1500,
    };
    let stale = store.claim(&ids, &ghost).await.unwrap().remove(0);
    let site = TestSite::start_on(&url, &yaml, Failpoints::default(), db_dir).await;
    let status = site.wait_terminal(&job_id, LONG).await;
    assert_eq!(status["state"], "COMPLETED", "{status}");
    assert_eq!(findings_by_classifier(&status), corpus.expected);
    // The ghost wakes up and reports: refused, and nothing of it is written.
    let late = Completion {
        failed: vec![],
        lease: meridian_store::Lease {
            task_id: stale.id,
            lease_token: stale.lease_token.clone(),
        },
        objects: vec![],
        findings: vec![NewFinding {
            object_id: 1,
            classifier: "email".into(),
            location: "line:999".into(),
            count: 1000,
            masked_sample: "g***@example.com".into(),
            confidence: 1.0,
        }],
    };
    assert_eq!(
        store.complete(&[late]).await.unwrap(),
        [ReportOutcome::LeaseLost]
    );
    let after = site.status(&job_id).await;
    assert_eq!(findings_by_classifier(&after), corpus.expected);
    store.close().await;
    site.stop().await.unwrap();
}

async fn a_failing_loop_is_restarted_and_the_job_completes(backend: Backend) {
    let yaml = "connector:\n  objects_per_task: 1\ndata_sources:\n  - id: s\n    kind: synthetic\n    objects: 50\n";
    let failpoints = Failpoints::parse("finisher=panic*4").unwrap();
    let site = TestSite::start_with(backend, yaml, failpoints).await;
    let job = site
        .start_job(json!({ "name": "survives", "data_sources": ["s"] }))
        .await;
    let mut saw_degraded = false;
    // Until the first panic. (The finisher: a loop the job cannot complete without.)
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while std::time::Instant::now() < deadline {
        let (_, health) = site.get("/health").await;
        if health["components"]["finisher"]["state"] == "degraded" {
            saw_degraded = true;
            assert!(
                health["components"]["finisher"]["reason"]
                    .as_str()
                    .unwrap()
                    .contains("panicked"),
                "{health}"
            );
            assert_eq!(health["status"], "degraded");
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(saw_degraded, "/health never showed the finisher degraded");
    let status = site.wait_terminal(&job, LONG).await;
    assert_eq!(status["state"], "COMPLETED", "{status}");
    assert_eq!(tasks_in(&status, "PROCESS", "SUCCEEDED"), 50);
    // The tick that finishes the job reports healthy only when it returns, after its
    // pause (up to 250 ms): the status can show COMPLETED before /health catches up.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let health = loop {
        let (_, health) = site.get("/health").await;
        if health["components"]["finisher"]["state"] == "healthy"
            || std::time::Instant::now() > deadline
        {
            break health;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(
        health["components"]["finisher"]["state"], "healthy",
        "{health}"
    );
    assert_eq!(health["components"]["finisher"]["restarts"], 4);
    site.stop().await.unwrap();
}

/// A panic in a connector or classifier (here a failpoint) is a retryable task
/// failure: the worker that ran it goes on with the next task, its heartbeat stops,
/// and the job completes with every object scanned. The 20 objects are one task: it
/// panics on its first attempt and on its retry, is split in two, and both halves
/// complete.
async fn a_panicking_scan_fails_its_task_and_the_worker_goes_on(backend: Backend) {
    let yaml = "worker:\n  in_process_thread_count: 1\ndata_sources:\n  - id: s\n    kind: synthetic\n    objects: 20\n";
    let failpoints = Failpoints::parse("scan_panic=panic*2").unwrap();
    let site = TestSite::start_with(backend, yaml, failpoints).await;
    let job = site
        .start_job(json!({ "name": "panics", "data_sources": ["s"] }))
        .await;
    let status = site.wait_terminal(&job, LONG).await;
    assert_eq!(status["state"], "COMPLETED", "{status}");
    assert_eq!(tasks_in(&status, "PROCESS", "SUCCEEDED"), 2, "{status}");
    assert_eq!(tasks_in(&status, "PROCESS", "FAILED"), 0, "{status}");
    assert_eq!(status["objects"]["processed"], 20, "{status}");
    let (_, workers) = site.get("/workers").await;
    let workers = workers.as_array().unwrap();
    assert_eq!(
        workers.len(),
        1,
        "the one worker is still registered: {workers:?}"
    );
    assert_eq!(workers[0]["current_tasks"], json!([]), "{workers:?}");
    site.stop().await.unwrap();
}

/// A task that runs longer than its lease is kept by its worker's heartbeats: no
/// lease expires, each task is leased once and completes, and `/workers` shows the
/// heartbeats while the tasks run.
async fn heartbeats_keep_a_task_longer_than_its_lease(backend: Backend) {
    let yaml = "connector:\n  objects_per_task: 1\nworker:\n  task_timeout_seconds: 2\n  heartbeat_interval_seconds: 1\n  in_process_thread_count: 2\ndata_sources:\n  - id: slow\n    kind: synthetic\n    objects: 2\n    work_ms: 3500\n";
    let site = TestSite::start(backend, yaml).await;
    let job = site
        .start_job(json!({ "name": "long tasks", "data_sources": ["slow"] }))
        .await;
    site.wait_status(&job, LONG, |s| tasks_in(s, "PROCESS", "RUNNING") == 2)
        .await;
    // Past the first lease's expiry (2 s): only heartbeats can have kept the leases.
    tokio::time::sleep(Duration::from_millis(2600)).await;
    let (_, workers) = site.get("/workers").await;
    let beating = workers
        .as_array()
        .unwrap()
        .iter()
        .filter(|w| !w["last_heartbeat_at"].is_null() && w["current_tasks"] != json!([]))
        .count();
    assert_eq!(beating, 2, "{workers}");
    let status = site.wait_terminal(&job, LONG).await;
    assert_eq!(status["state"], "COMPLETED", "{status}");
    assert_eq!(tasks_in(&status, "PROCESS", "SUCCEEDED"), 2, "{status}");
    // Task 1 is the discovery; 2 and 3 the long ones. A reaped task is leased again.
    for task in 2..=3 {
        let leases = site.app.store.lease_history(task).await.unwrap();
        assert_eq!(leases.len(), 1, "task {task}: {leases:?}");
    }
    site.stop().await.unwrap();
}

/// Regression: a scan blocked where it never looks at its abort flag (a read hung in
/// a network file system; here a failpoint) kept its lease for ever through
/// heartbeats, and its worker was lost. Past `stalled_task_seconds` × 2 without
/// progress the task is failed as retryable, another worker takes the slot, and the
/// retried task completes. One worker only: the job can only finish in a new one.
async fn a_stalled_scan_is_given_up_and_another_worker_takes_its_slot(backend: Backend) {
    let yaml = "orchestrator:\n  stalled_task_seconds: 1\nworker:\n  in_process_thread_count: 1\n  heartbeat_interval_seconds: 1\ndata_sources:\n  - id: s\n    kind: synthetic\n    objects: 3\n";
    let failpoints = Failpoints::parse("scan_hang=panic*1").unwrap();
    let site = TestSite::start_with(backend, yaml, failpoints).await;
    let job = site
        .start_job(json!({ "name": "stalls", "data_sources": ["s"] }))
        .await;
    let status = site.wait_terminal(&job, LONG).await;
    assert_eq!(status["state"], "COMPLETED", "{status}");
    // The three objects are one task, retried once after it was given up.
    assert_eq!(tasks_in(&status, "PROCESS", "SUCCEEDED"), 1, "{status}");
    assert_eq!(status["objects"]["processed"], 3, "{status}");
    let (_, workers) = site.get("/workers").await;
    let workers = workers.as_array().unwrap();
    assert_eq!(
        workers.len(),
        1,
        "one worker counts, the stuck one no longer: {workers:?}"
    );
    site.stop().await.unwrap();
}

/// Regression: SIGTERM waited for ever on a worker blocked where it cannot see the
/// abort. Shutdown is bounded: the grace period, then a short wait for hand-backs.
async fn shutdown_does_not_wait_for_a_scan_blocked_where_it_cannot_be_aborted(backend: Backend) {
    let yaml = "orchestrator:\n  shutdown_grace_seconds: 1\nworker:\n  in_process_thread_count: 1\ndata_sources:\n  - id: s\n    kind: synthetic\n    objects: 2\n";
    let failpoints = Failpoints::parse("scan_hang=panic").unwrap();
    let site = TestSite::start_with(backend, yaml, failpoints).await;
    let job = site
        .start_job(json!({ "name": "hangs", "data_sources": ["s"] }))
        .await;
    site.wait_status(&job, LONG, |s| tasks_in(s, "PROCESS", "RUNNING") >= 1)
        .await;
    let started = std::time::Instant::now();
    tokio::time::timeout(Duration::from_secs(30), site.stop())
        .await
        .expect("shutdown waited on the blocked scan")
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
}
