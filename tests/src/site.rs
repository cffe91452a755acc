//! In-process test sites: a real `Site` on 127.0.0.1 with a real database, driven over
//! real HTTP.

use std::sync::Arc;
use std::time::{Duration, Instant};

use meridian_child::{App, RunMode, Site, SiteOptions};
use meridian_config::ConfigLayers;
use meridian_service::failpoints::Failpoints;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::{Backend, database_url};

/// A running site and a client for it.
pub struct TestSite {
    pub base: String,
    pub app: Arc<App>,
    pub http: reqwest::Client,
    pub database_url: String,
    shutdown: CancellationToken,
    handle: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    _dir: tempfile::TempDir,
}

/// Configuration every test site gets unless its YAML says otherwise: fast loops,
/// random port, and back-pressure off (tests share two cores; the back-pressure test
/// turns it on).
pub const TEST_DEFAULTS: &str = "\
api:
  listen: 127.0.0.1:0
orchestrator:
  reaper_interval_seconds: 1
  config_reload_interval_seconds: 1
  shutdown_grace_seconds: 5
worker:
  in_process_thread_count: 2
  global_cpu_threshold_percent: 100
  retry_backoff_base_milliseconds: 50
  retry_backoff_max_seconds: 1
";

impl TestSite {
    /// Starts a site on `backend` with `yaml` layered over [`TEST_DEFAULTS`].
    pub async fn start(backend: Backend, yaml: &str) -> TestSite {
        TestSite::start_with(backend, yaml, Failpoints::default()).await
    }

    pub async fn start_with(backend: Backend, yaml: &str, failpoints: Failpoints) -> TestSite {
        crate::init();
        let dir = tempfile::tempdir().expect("temp dir");
        let url = database_url(backend, dir.path()).await;
        TestSite::start_on(&url, yaml, failpoints, dir).await
    }

    /// Starts a site on an existing database (e.g. to restart one).
    pub async fn start_on(
        url: &str,
        yaml: &str,
        failpoints: Failpoints,
        dir: tempfile::TempDir,
    ) -> TestSite {
        crate::init();
        let layers = ConfigLayers::new()
            .with_yaml(TEST_DEFAULTS)
            .with_yaml(yaml)
            .with_value("database.url", url)
            .with_value("node.data_dir", dir.path());
        let site = Site::build(SiteOptions {
            layers,
            mode: RunMode::Single,
            failpoints,
        })
        .await
        .expect("site builds");
        let base = format!("http://{}", site.local_addr());
        let app = site.app();
        let shutdown = CancellationToken::new();
        let handle = tokio::spawn(site.run(shutdown.clone()));
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("client");
        TestSite {
            base,
            app,
            http,
            database_url: url.to_owned(),
            shutdown,
            handle: Some(handle),
            _dir: dir,
        }
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let resp = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .expect("request");
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    pub async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        let resp = self
            .http
            .post(format!("{}{path}", self.base))
            .json(body)
            .send()
            .await
            .expect("request");
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// Starts a job and returns its id.
    pub async fn start_job(&self, body: Value) -> String {
        let (status, job) = self.post("/start_job", &body).await;
        assert_eq!(status, 201, "start_job: {job}");
        job["job_id"].as_str().expect("job_id").to_owned()
    }

    pub async fn status(&self, job: &str) -> Value {
        let (code, s) = self.get(&format!("/get_job_status/{job}")).await;
        assert_eq!(code, 200, "{s}");
        s
    }

    /// Polls until the job is terminal; panics after `timeout` with the last status.
    pub async fn wait_terminal(&self, job: &str, timeout: Duration) -> Value {
        let start = Instant::now();
        loop {
            let s = self.status(job).await;
            if matches!(
                s["state"].as_str(),
                Some("COMPLETED" | "FAILED" | "CANCELLED")
            ) {
                return s;
            }
            assert!(
                start.elapsed() < timeout,
                "job {job} not finished after {timeout:?}: {s}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Polls the job list every `every` until it shows `job` in a final state, and
    /// returns that state. For benches: a list entry counts nothing, while a status
    /// counts over every finding row of the job (tens of milliseconds of SQLite work
    /// at 10k rows, growing with the job), so polling the status would measure the
    /// status endpoint on the core the job shares, not the job.
    pub async fn wait_listed_final(&self, job: &str, every: Duration) -> String {
        loop {
            tokio::time::sleep(every).await;
            let (_, page) = self.get("/jobs?limit=10").await;
            let state = page["items"]
                .as_array()
                .and_then(|jobs| jobs.iter().find(|j| j["job_id"] == job))
                .and_then(|j| j["state"].as_str())
                .unwrap_or_default();
            if matches!(state, "COMPLETED" | "FAILED" | "CANCELLED") {
                return state.to_owned();
            }
        }
    }

    /// Polls `cond` on the job's status until it holds.
    pub async fn wait_status(
        &self,
        job: &str,
        timeout: Duration,
        cond: impl Fn(&Value) -> bool,
    ) -> Value {
        let start = Instant::now();
        loop {
            let s = self.status(job).await;
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

    /// Every finding of a job, following the cursor.
    pub async fn all_findings(&self, job: &str) -> Vec<Value> {
        let mut out = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let path = match &cursor {
                Some(c) => format!("/jobs/{job}/findings?limit=200&cursor={c}"),
                None => format!("/jobs/{job}/findings?limit=200"),
            };
            let (code, page) = self.get(&path).await;
            assert_eq!(code, 200, "{page}");
            out.extend(page["items"].as_array().cloned().unwrap_or_default());
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => return out,
            }
        }
    }

    /// SIGTERM-equivalent: drains and stops; returns the run result.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        match self.handle.take() {
            Some(h) => h.await.expect("site task"),
            None => Ok(()),
        }
    }
}

impl Drop for TestSite {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Findings per classifier from a status, as a sorted map.
pub fn findings_by_classifier(status: &Value) -> std::collections::BTreeMap<String, i64> {
    status["findings"]["by_classifier"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_i64().unwrap_or(0)))
                .collect()
        })
        .unwrap_or_default()
}
