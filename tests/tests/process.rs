//! The real `meridian-child` binary: killed with SIGKILL mid-job and restarted,
//! stopped with SIGTERM, and refused bad configuration.

use std::path::Path;
use std::time::Duration;

use meridian_tests::corpus;
use meridian_tests::process::{SiteProcess, free_port, run_to_exit};
use meridian_tests::{Backend, database_url};
use serde_json::{Value, json};

async fn get(base: &str, path: &str) -> Value {
    reqwest::get(format!("{base}{path}"))
        .await
        .expect("request")
        .json()
        .await
        .expect("json")
}

async fn post(base: &str, path: &str, body: Value) -> Value {
    reqwest::Client::new()
        .post(format!("{base}{path}"))
        .json(&body)
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json")
}

fn write_config(dir: &Path, body: &str) -> std::path::PathBuf {
    let path = dir.join("site.yaml");
    std::fs::write(&path, body).unwrap();
    path
}

async fn wait_for(
    base: &str,
    job: &str,
    timeout: Duration,
    cond: impl Fn(&Value) -> bool,
) -> Value {
    let start = std::time::Instant::now();
    loop {
        let s = get(base, &format!("/get_job_status/{job}")).await;
        if cond(&s) {
            return s;
        }
        assert!(
            start.elapsed() < timeout,
            "condition not met after {timeout:?}: {s}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn killed_mid_job_resumes_without_duplicates(backend: Backend) {
    meridian_tests::init();
    let dir = tempfile::tempdir().unwrap();
    let corpus = corpus::generate(&dir.path().join("share"), 1234, 2500, 60);
    let url = database_url(backend, dir.path()).await;
    let config = write_config(
        dir.path(),
        &format!(
            "database:\n  url: \"{url}\"\nnode:\n  data_dir: {}\nworker:\n  in_process_thread_count: 1\n  global_cpu_threshold_percent: 100\nconnector:\n  discovery_batch_write_size: 100\ndata_sources:\n  - id: share\n    kind: filesystem\n    root: {}\n",
            dir.path().display(),
            corpus.root.display()
        ),
    );
    let port = free_port();
    let site = SiteProcess::start(&config, port, &dir.path().join("run1.log")).await;
    let job = post(
        &site.base,
        "/start_job",
        json!({ "name": "crash", "data_sources": ["share"] }),
    )
    .await;
    let job = job["job_id"].as_str().unwrap().to_owned();
    let before = wait_for(&site.base, &job, Duration::from_secs(120), |s| {
        s["objects"]["processed"].as_i64() >= Some(200)
    })
    .await;
    site.signal("KILL");
    let mut site = site;
    assert_eq!(
        site.wait_exit(Duration::from_secs(10)),
        None,
        "killed by the signal"
    );
    assert!(
        before["objects"]["processed"].as_i64().unwrap() < corpus.files as i64,
        "the job finished before the kill"
    );

    let again = SiteProcess::start(&config, port, &dir.path().join("run2.log")).await;
    let done = wait_for(&again.base, &job, Duration::from_secs(300), |s| {
        s["state"] == "COMPLETED" || s["state"] == "FAILED"
    })
    .await;
    assert_eq!(done["state"], "COMPLETED", "{done}");
    assert_eq!(
        meridian_tests::site::findings_by_classifier(&done),
        corpus.expected,
        "{done}"
    );
    assert_eq!(
        done["objects"]["discovered"], corpus.files as i64,
        "objects were discovered twice"
    );
    assert_eq!(done["objects"]["processed"], corpus.files as i64);
    again.signal("TERM");
}

async fn sigterm_drains_and_exits_zero(backend: Backend) {
    meridian_tests::init();
    let dir = tempfile::tempdir().unwrap();
    let url = database_url(backend, dir.path()).await;
    let config = write_config(
        dir.path(),
        &format!(
            "database:\n  url: \"{url}\"\nnode:\n  data_dir: {}\nworker:\n  in_process_thread_count: 2\n  global_cpu_threshold_percent: 100\norchestrator:\n  shutdown_grace_seconds: 10\nconnector:\n  objects_per_task: 10\ndata_sources:\n  - id: slow\n    kind: synthetic\n    objects: 300\n    work_ms: 50\n",
            dir.path().display()
        ),
    );
    let port = free_port();
    let mut site = SiteProcess::start(&config, port, &dir.path().join("run.log")).await;
    let job = post(
        &site.base,
        "/start_job",
        json!({ "name": "drain", "data_sources": ["slow"] }),
    )
    .await;
    let job = job["job_id"].as_str().unwrap().to_owned();
    wait_for(&site.base, &job, Duration::from_secs(60), |s| {
        s["tasks"]["by_phase"]["PROCESS"]["SUCCEEDED"].as_i64() >= Some(10)
    })
    .await;
    site.signal("TERM");
    assert_eq!(
        site.wait_exit(Duration::from_secs(30)),
        Some(0),
        "{}",
        std::fs::read_to_string(&site.log).unwrap_or_default()
    );
    let store = meridian_store::open(&url, 1).await.unwrap();
    let counts = store.job_counts(&job, 1_000_000).await.unwrap();
    let running: i64 = counts
        .tasks
        .iter()
        .filter(|t| t.1 == "RUNNING")
        .map(|t| t.2)
        .sum();
    assert_eq!(
        running, 0,
        "tasks left RUNNING after a graceful stop: {:?}",
        counts.tasks
    );
    store.close().await;
    let again = SiteProcess::start(&config, port, &dir.path().join("run2.log")).await;
    let done = wait_for(&again.base, &job, Duration::from_secs(120), |s| {
        s["state"] == "COMPLETED"
    })
    .await;
    assert_eq!(done["tasks"]["by_phase"]["PROCESS"]["SUCCEEDED"], 30);
    assert_eq!(done["objects"]["processed"], 300, "{done}");
    again.signal("TERM");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_site_killed_mid_job_resumes_without_duplicates() {
    killed_mid_job_resumes_without_duplicates(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_site_killed_mid_job_resumes_without_duplicates() {
    killed_mid_job_resumes_without_duplicates(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_site_sigterm_drains_and_exits_zero() {
    sigterm_drains_and_exits_zero(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_site_sigterm_drains_and_exits_zero() {
    sigterm_drains_and_exits_zero(Backend::Postgres).await;
}

/// Runs the binary on `yaml` and expects a configuration error naming `key`.
fn refused(yaml: &str, env: &[(&str, &str)], key: &str) {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &format!("node:\n  data_dir: {}\n{yaml}", dir.path().display()),
    );
    let port = free_port().to_string();
    let (code, stderr) = run_to_exit(
        &[
            "--config",
            config.to_str().unwrap(),
            "--listen",
            &format!("127.0.0.1:{port}"),
        ],
        env,
        Duration::from_secs(30),
    );
    assert_eq!(code, Some(2), "stderr: {stderr}");
    assert!(stderr.contains(key), "`{key}` not named in: {stderr}");
    assert_eq!(
        stderr.trim().lines().count(),
        1,
        "one line expected: {stderr}"
    );
}

#[test]
fn bad_configuration_stops_start_up_naming_the_key() {
    refused("worker:\n  max_retries: lots\n", &[], "worker.max_retries");
    refused(
        "orchestrator:\n  task_cache_size: 0\n",
        &[],
        "orchestrator.task_cache_size",
    );
    refused(
        "orchestrator:\n  fair_sharing_policy: FASTEST\n",
        &[],
        "orchestrator.fair_sharing_policy",
    );
    refused(
        "",
        &[("MERIDIAN_WORKER__GLOBAL_CPU_THRESHOLD_PERCENT", "250")],
        "worker.global_cpu_threshold_percent",
    );
    refused(
        "orchestrator:\n  deployment_model: EKS\n",
        &[],
        "orchestrator.deployment_model",
    );
    let (code, stderr) = run_to_exit(
        &["--config", "/definitely/missing.yaml"],
        &[],
        Duration::from_secs(30),
    );
    assert_eq!(code, Some(2));
    assert!(
        stderr.contains("/definitely/missing.yaml") && stderr.contains("does not exist"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_system_parameters_row_stops_start_up() {
    meridian_tests::init();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("site.db").display());
    let store = meridian_store::open(&url, 1).await.unwrap();
    store
        .set_parameter("global", "worker.max_retries", "0")
        .await
        .unwrap();
    store.close().await;
    refused(
        &format!("database:\n  url: \"{url}\"\n"),
        &[],
        "worker.max_retries",
    );
}

#[test]
fn distributed_modes_refuse_clearly() {
    for mode in ["orchestrator", "worker"] {
        let dir = tempfile::tempdir().unwrap();
        let (code, stderr) = run_to_exit(
            &["--mode", mode, "--data-dir", dir.path().to_str().unwrap()],
            &[],
            Duration::from_secs(30),
        );
        // Without PostgreSQL and the worker key the distributed modes are a
        // configuration error naming what is missing (tests/tests/distributed.rs runs them).
        assert_eq!(code, Some(2), "{stderr}");
        let missing = if mode == "orchestrator" {
            "PostgreSQL"
        } else {
            "MERIDIAN_WORKER_AUTH_KEY"
        };
        assert!(stderr.contains(missing), "{stderr}");
    }
}

#[test]
fn help_lists_the_flags() {
    let out = std::process::Command::new(meridian_tests::process::binary())
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--mode",
        "--config",
        "--data-dir",
        "--node-id",
        "--listen",
        "MERIDIAN_CONFIG",
    ] {
        assert!(text.contains(flag), "--help lacks {flag}:\n{text}");
    }
}
