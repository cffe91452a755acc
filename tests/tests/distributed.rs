//! The distributed model with real processes and a real PostgreSQL: orchestrator
//! replicas (`--mode orchestrator`) and remote workers (`--mode worker`) killed,
//! stopped and cut off from their database, with exact counts at the end and the
//! lease history proving that no task was ever leased to two workers at once.
//!
//! Scenarios run one at a time (they share two cores); timeouts are short so that
//! leases expire and reapers run within seconds.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use meridian_service::worker_token as token;
use meridian_tests::corpus::{self, Corpus};
use meridian_tests::pg::{self, Cluster, ClusterOptions};
use meridian_tests::process::{SiteProcess, free_port, run_to_exit};
use serde_json::{Value, json};
use sqlx::PgPool;

const KEY: &str = "test-worker-key-0123456789abcdef0123456789";
const KEY_ENV: (&str, &str) = ("MERIDIAN_WORKER_AUTH_KEY", KEY);

/// One scenario at a time: each starts several processes.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

struct Mesh {
    dir: tempfile::TempDir,
    url: String,
    config: PathBuf,
    db: PgPool,
}

/// Orchestrator and worker settings shared by every scenario, over `sources` (YAML
/// list items).
fn yaml(url: &str, dir: &Path, sources: &str, extra_worker: &str) -> String {
    format!(
        "database:\n  url: \"{url}\"\n  max_connections: 8\nnode:\n  data_dir: {dir}\nsite:\n  name: london\n\
orchestrator:\n  long_poll_timeout_seconds: 2\n  reaper_interval_seconds: 1\n  config_reload_interval_seconds: 1\n  shutdown_grace_seconds: 5\n\
worker:\n  task_timeout_seconds: 3\n  heartbeat_interval_seconds: 1\n  global_cpu_threshold_percent: 100\n  retry_backoff_base_milliseconds: 50\n  retry_backoff_max_seconds: 1\n  slot_count: 4\n  drain_seconds: 5\n{extra_worker}\
connector:\n  discovery_batch_write_size: 100\n  objects_per_task: 4\ndata_sources:\n{sources}",
        dir = dir.display()
    )
}

async fn mesh_on(url: String, sources: impl Fn(&Path) -> String, extra_worker: &str) -> Mesh {
    meridian_tests::init();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("site.yaml");
    std::fs::write(
        &config,
        yaml(&url, dir.path(), &sources(dir.path()), extra_worker),
    )
    .unwrap();
    let db = PgPool::connect(&url).await.expect("test database");
    Mesh {
        dir,
        url,
        config,
        db,
    }
}

fn corpus_source(c: &Corpus) -> String {
    format!(
        "  - id: share\n    kind: filesystem\n    root: {}\n",
        c.root.display()
    )
}

impl Mesh {
    async fn orchestrator(&self, name: &str) -> SiteProcess {
        self.orchestrator_with(name, &[]).await
    }

    async fn orchestrator_with(&self, name: &str, env: &[(&str, &str)]) -> SiteProcess {
        let log = self.dir.path().join(format!("{name}.log"));
        let mut all = vec![KEY_ENV, ("MERIDIAN_NODE__ID", name)];
        all.extend_from_slice(env);
        SiteProcess::start_orchestrator(&self.config, free_port(), &log, &all).await
    }

    fn worker(&self, name: &str, orchestrator: &SiteProcess) -> SiteProcess {
        let log = self.dir.path().join(format!("{name}.log"));
        SiteProcess::start_worker(
            &self.config,
            &log,
            &[
                KEY_ENV,
                ("MERIDIAN_NODE__ID", name),
                ("MERIDIAN_WORKER__ORCHESTRATOR_URL", &orchestrator.base),
            ],
        )
    }

    /// The worker holding `task_id`'s open lease, from the lease history.
    async fn lease_holder(&self, task_id: i64) -> String {
        sqlx::query_scalar(
            "SELECT worker_id FROM lease_history WHERE task_id = $1 AND ended_at IS NULL",
        )
        .bind(task_id)
        .fetch_one(&self.db)
        .await
        .expect("an open lease")
    }

    async fn scalar(&self, sql: &'static str) -> i64 {
        sqlx::query_scalar(sql)
            .fetch_one(&self.db)
            .await
            .expect("query")
    }

    /// Fails the test if any task was ever leased twice at once, or if a succeeded
    /// task has other than exactly one lease that ended in SUCCEEDED.
    async fn assert_leases_never_overlapped(&self) {
        let overlapping = self
            .scalar(
                "SELECT COUNT(*) FROM lease_history a JOIN lease_history b \
                 ON b.task_id = a.task_id AND b.id > a.id \
                 WHERE a.ended_at IS NULL OR b.leased_at < a.ended_at",
            )
            .await;
        assert_eq!(overlapping, 0, "a task was leased to two workers at once");
        let odd = self
            .scalar(
                "SELECT COUNT(*) FROM tasks t WHERE t.state = 'SUCCEEDED' AND \
                 (SELECT COUNT(*) FROM lease_history h WHERE h.task_id = t.id AND h.end_state = 'SUCCEEDED') <> 1",
            )
            .await;
        assert_eq!(
            odd, 0,
            "a succeeded task without exactly one successful lease"
        );
    }
}

async fn get(base: &str, path: &str) -> (u16, Value) {
    let r = reqwest::get(format!("{base}{path}"))
        .await
        .expect("request");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn start_job(base: &str, sources: &[&str]) -> String {
    let body = start_job_answer(base, sources).await;
    body["job_id"].as_str().unwrap().to_owned()
}

/// `start_job`'s whole answer (the job's status); fails the test unless it succeeded.
async fn start_job_answer(base: &str, sources: &[&str]) -> Value {
    let (code, body) = try_start_job(base, sources).await;
    assert!((200..300).contains(&code), "{code}: {body}");
    body
}

/// `POST /start_job` over `sources`: the HTTP status and the answer.
async fn try_start_job(base: &str, sources: &[&str]) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(format!("{base}/start_job"))
        .json(&json!({ "name": "dist", "data_sources": sources }))
        .send()
        .await
        .expect("start_job");
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

/// Polls the job's status on `base` until `cond`, tolerating 503s.
async fn wait_for(
    base: &str,
    job: &str,
    timeout: Duration,
    cond: impl Fn(&Value) -> bool,
) -> Value {
    let start = Instant::now();
    let mut last = Value::Null;
    while start.elapsed() < timeout {
        if let Ok(r) = reqwest::get(format!("{base}/get_job_status/{job}")).await
            && r.status().is_success()
        {
            last = r.json().await.unwrap_or(Value::Null);
            if cond(&last) {
                return last;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("condition not met after {timeout:?}: {last}");
}

fn terminal(s: &Value) -> bool {
    s["state"] == "COMPLETED" || s["state"] == "FAILED" || s["state"] == "CANCELLED"
}

fn assert_exact(done: &Value, c: &Corpus) {
    assert_eq!(done["state"], "COMPLETED", "{done}");
    assert_eq!(
        meridian_tests::site::findings_by_classifier(done),
        c.expected,
        "{done}"
    );
    assert_eq!(done["objects"]["discovered"], c.files as i64, "{done}");
    assert_eq!(done["objects"]["processed"], c.files as i64, "{done}");
}

/// Worker-API calls made by the test itself, as a worker would.
struct FakeWorker {
    base: String,
    id: String,
    token: String,
    http: reqwest::Client,
}

impl FakeWorker {
    fn new(base: &str, id: &str) -> FakeWorker {
        FakeWorker {
            base: base.to_owned(),
            id: id.to_owned(),
            token: token::mint(KEY.as_bytes(), "london", id, 300),
            http: reqwest::Client::new(),
        }
    }

    async fn call(&self, path: &str, body: Value, token: Option<&str>) -> (u16, Value) {
        let mut req = self.http.post(format!("{}{path}", self.base)).json(&body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let r = req.send().await.expect("request");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    async fn post(&self, path: &str, mut body: Value) -> (u16, Value) {
        body["worker_id"] = json!(self.id);
        self.call(path, body, Some(self.token.as_str())).await
    }

    /// Completes `task` (a packet from `get_task`) with its lease token.
    async fn complete(&self, task: &Value) -> (u16, Value) {
        self.post(
            "/complete_task",
            json!({ "completions": [{ "task_id": task["task_id"], "lease_token": task["lease_token"] }] }),
        )
        .await
    }

    async fn get_task(&self, max: u32, wait: u64) -> (u16, Value) {
        self.post(
            "/get_task",
            json!({ "slots": max, "max_tasks": max, "wait_seconds": wait }),
        )
        .await
    }
}

// ---- scenarios ----------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_orchestrators_and_three_workers_finish_a_2000_object_job_exactly() {
    let _serial = SERIAL.lock().await;
    let url = pg::fresh_database().await;
    let root = tempfile::tempdir().unwrap();
    let c = corpus::generate(&root.path().join("share"), 42, 2000, 12);
    let mesh = mesh_on(url, |_| corpus_source(&c), "").await;
    let a = mesh.orchestrator("orch-a").await;
    let b = mesh.orchestrator("orch-b").await;
    let _w1 = mesh.worker("w1", &a);
    let _w2 = mesh.worker("w2", &b);
    let _w3 = mesh.worker("w3", &b);
    let job = start_job(&a.base, &["share"]).await;
    let done = wait_for(&b.base, &job, Duration::from_secs(120), terminal).await;
    assert_exact(&done, &c);
    assert_eq!(
        done["tasks"]["by_phase"]["PROCESS"]["SUCCEEDED"], 500,
        "{done}"
    );
    mesh.assert_leases_never_overlapped().await;
    let workers = mesh
        .scalar("SELECT COUNT(DISTINCT worker_id) FROM lease_history")
        .await;
    assert_eq!(workers, 3, "every worker took part");
    // /workers of each replica lists the workers polling it, with their slots.
    let (_, listed) = get(&b.base, "/workers").await;
    let remote: Vec<&Value> = listed
        .as_array()
        .unwrap()
        .iter()
        .filter(|w| w["kind"] == "remote")
        .collect();
    assert_eq!(remote.len(), 2, "{listed}");
    assert!(remote.iter().all(|w| w["slots"] == 4), "{listed}");
    let (_, metrics) = {
        let r = reqwest::get(format!("{}/metrics", a.base)).await.unwrap();
        (r.status(), r.text().await.unwrap())
    };
    assert!(
        metrics.contains("meridian_tasks_claimed_total"),
        "{metrics}"
    );
    assert!(
        metrics.contains("meridian_long_poll_wait_seconds"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_mid_task_loses_its_lease_and_the_task_completes_once() {
    let _serial = SERIAL.lock().await;
    let url = pg::fresh_database().await;
    let root = tempfile::tempdir().unwrap();
    let c = corpus::generate(&root.path().join("share"), 7, 400, 12);
    let mesh = mesh_on(url, |_| corpus_source(&c), "").await;
    let a = mesh.orchestrator("orch-a").await;
    let victim = mesh.worker("victim", &a);
    let job = start_job(&a.base, &["share"]).await;
    wait_for(&a.base, &job, Duration::from_secs(60), |s| {
        s["objects"]["processed"].as_i64() >= Some(50)
    })
    .await;
    // Freeze the worker first so that it provably holds leases when it dies.
    let mut held = 0;
    for _ in 0..50 {
        victim.signal("STOP");
        held = mesh
            .scalar("SELECT COUNT(*) FROM tasks WHERE state = 'RUNNING'")
            .await;
        if held > 0 {
            break;
        }
        victim.signal("CONT");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(held > 0, "the worker never held a lease");
    victim.signal("KILL");
    // A completion already on the wire may still land; what is RUNNING after that
    // only the reaper can end.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let held = mesh
        .scalar("SELECT COUNT(*) FROM tasks WHERE state = 'RUNNING'")
        .await;
    assert!(held > 0, "the dead worker held no lease any more");
    let _other = mesh.worker("other", &a);
    let done = wait_for(&a.base, &job, Duration::from_secs(90), terminal).await;
    assert_exact(&done, &c);
    let reaped = mesh
        .scalar("SELECT COUNT(*) FROM lease_history WHERE end_state = 'PENDING'")
        .await;
    assert!(reaped >= held, "{reaped} leases reaped, {held} were held");
    let duplicates = mesh
        .scalar(
            "SELECT COUNT(*) FROM (SELECT object_id, classifier, location FROM findings \
             GROUP BY 1, 2, 3 HAVING COUNT(*) > 1) d",
        )
        .await;
    assert_eq!(duplicates, 0);
    mesh.assert_leases_never_overlapped().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_orchestrator_replica_killed_mid_job_leaves_the_job_to_the_other() {
    let _serial = SERIAL.lock().await;
    let url = pg::fresh_database().await;
    let root = tempfile::tempdir().unwrap();
    let c = corpus::generate(&root.path().join("share"), 11, 1000, 12);
    let mesh = mesh_on(url, |_| corpus_source(&c), "").await;
    let a = mesh.orchestrator("orch-a").await;
    let b = mesh.orchestrator("orch-b").await;
    let stranded = mesh.worker("w-a", &a);
    let _survivor = mesh.worker("w-b", &b);
    let job = start_job(&a.base, &["share"]).await;
    let before = wait_for(&b.base, &job, Duration::from_secs(60), |s| {
        s["objects"]["processed"].as_i64() >= Some(200)
    })
    .await;
    a.signal("KILL");
    assert!(
        before["objects"]["processed"].as_i64() < Some(c.files as i64),
        "the job finished before the kill"
    );
    let done = wait_for(&b.base, &job, Duration::from_secs(90), terminal).await;
    assert_exact(&done, &c);
    mesh.assert_leases_never_overlapped().await;
    // The survivor's reaper and pipeliner kept running.
    let (_, health) = get(&b.base, "/health").await;
    for c in ["reaper", "pipeliner", "finisher"] {
        assert_eq!(health["components"][c]["state"], "healthy", "{health}");
    }
    // The stranded worker backs off; it does not crash-loop or exit.
    let mut stranded = stranded;
    assert!(
        stranded.child.try_wait().unwrap().is_none(),
        "worker exited"
    );
    assert!(stranded.log_text().contains("retrying with backoff"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_down_for_20_seconds_is_503_and_the_job_completes_exactly() {
    let _serial = SERIAL.lock().await;
    let cluster = Cluster::start(ClusterOptions::default());
    let url = cluster.fresh_database().await;
    let root = tempfile::tempdir().unwrap();
    let c = corpus::generate(&root.path().join("share"), 99, 1200, 12);
    let mesh = mesh_on(url, |_| corpus_source(&c), "").await;
    let a = mesh.orchestrator("orch-a").await;
    let mut w1 = mesh.worker("w1", &a);
    let mut w2 = mesh.worker("w2", &a);
    let job = start_job(&a.base, &["share"]).await;
    let before = wait_for(&a.base, &job, Duration::from_secs(60), |s| {
        s["objects"]["processed"].as_i64() >= Some(150)
    })
    .await;
    mesh.db.close().await;
    cluster.stop();
    assert!(
        before["objects"]["processed"].as_i64() < Some(c.files as i64 - 200),
        "the job was nearly done before the outage: {before}"
    );
    let fake = FakeWorker::new(&a.base, "probe");
    let outage = Instant::now();
    let mut seen = std::collections::BTreeMap::new();
    while outage.elapsed() < Duration::from_secs(20) {
        let status = format!("/get_job_status/{job}");
        let ((s1, _), (s2, _), (s3, _)) = tokio::join!(
            get(&a.base, &status),
            get(&a.base, "/ready"),
            fake.get_task(1, 0)
        );
        for s in [s1, s2, s3] {
            *seen.entry(s).or_insert(0) += 1;
            assert!(s != 500, "a 500 during the outage: {seen:?}");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    eprintln!("answers during the outage (status: count): {seen:?}");
    assert!(seen.contains_key(&503), "{seen:?}");
    assert!(w1.child.try_wait().unwrap().is_none(), "worker 1 exited");
    assert!(w2.child.try_wait().unwrap().is_none(), "worker 2 exited");
    cluster.restart();
    let done = wait_for(&a.base, &job, Duration::from_secs(120), terminal).await;
    assert_exact(&done, &c);
    let mesh = Mesh {
        db: PgPool::connect(&mesh.url).await.unwrap(),
        ..mesh
    };
    mesh.assert_leases_never_overlapped().await;
    assert!(!a.log_text().contains("panicked"), "{}", a.log_text());
    for w in [&mut w1, &mut w2] {
        w.signal("TERM");
        assert_eq!(w.wait_exit(Duration::from_secs(30)), Some(0));
    }
}

/// Job creation, hand-offs and claims commit without waiting for the disk, so that a
/// waiting worker gets its lease sooner; but nothing that leaves the site may depend on
/// such a commit. PostgreSQL is crashed (`-m immediate`: WAL not yet written out is
/// lost, and the WAL writer writes an unflushed commit only up to 200 ms later) right
/// after (1) `start_job` answered with its task handed to a waiting worker, and (2) a
/// worker claimed a task and a master-style delta poll read the status versions. After
/// recovery the job and both leases are there, and the status counter has not gone
/// back below the version the poll handed out (it would be handed out again, and a
/// master past it would skip that change).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_jobs_and_handed_out_versions_survive_a_postgres_crash() {
    let _serial = SERIAL.lock().await;
    // The WAL writer would write an unflushed commit out within 200 ms, where a crash
    // no longer loses it; slowed down, so that only a missing flush can pass here.
    let cluster = Cluster::start(ClusterOptions {
        durable: true,
        extra: "-c wal_writer_delay=10s",
    });
    let url = cluster.fresh_database().await;
    let mesh = mesh_on(
        url,
        |_| "  - id: s1\n    kind: synthetic\n    objects: 0\n".into(),
        "",
    )
    .await;
    // The leases must outlive both crashes: with the mesh's 3 s leases, a reaper back
    // from its restart backoff before the test reports would take them back, which is
    // not what this test is about.
    let config = std::fs::read_to_string(&mesh.config).unwrap();
    assert!(config.contains("task_timeout_seconds: 3\n"), "{config}");
    std::fs::write(
        &mesh.config,
        config.replace("task_timeout_seconds: 3\n", "task_timeout_seconds: 120\n"),
    )
    .unwrap();
    let a = mesh.orchestrator("orch-a").await;
    mesh.db.close().await;
    let w = FakeWorker::new(&a.base, "fake-1");

    // (1) A hand-off at creation, then the crash. A poll caught between two looks of
    // its poll fallback (off the queue for a moment every 500 ms) when the job started
    // claims the task the ordinary way instead: that task is completed and the
    // scenario tried again.
    let mut attempts = 0;
    let (answer, poll) = loop {
        attempts += 1;
        let poll = {
            let w = FakeWorker::new(&a.base, "fake-1");
            tokio::spawn(async move { w.get_task(1, 5).await })
        };
        // Time for the poll to find nothing and queue itself.
        tokio::time::sleep(Duration::from_millis(1000)).await;
        let answer = start_job_answer(&a.base, &["s1"]).await;
        if answer["tasks"]["by_state"]["RUNNING"] == 1 {
            cluster.crash();
            break (answer, poll);
        }
        assert!(attempts < 5, "never handed off at creation: {answer}");
        let (_, body) = poll.await.unwrap();
        let (code, body) = w.complete(&body["tasks"][0]).await;
        assert_eq!(code, 200, "{body}");
    };
    let handed_job = answer["job_id"].as_str().unwrap().to_owned();
    let (status, body) = poll.await.unwrap();
    assert_eq!(status, 200, "the waiting worker got no task: {body}");
    let handed = body["tasks"][0].clone();
    assert_eq!(handed["job_id"], handed_job.as_str(), "{body}");
    cluster.restart();
    let status = wait_for(&a.base, &handed_job, Duration::from_secs(60), |s| {
        s["job_id"] == handed_job.as_str()
    })
    .await;
    assert_ne!(
        status["state"], "PENDING",
        "the hand-off was lost: {status}"
    );

    // (2) A plain claim, a delta poll, then the crash.
    let (code, answer) = retry_503(|| try_start_job(&a.base, &["s1"])).await;
    assert!((200..300).contains(&code), "{code}: {answer}");
    let claimed_job = answer["job_id"].as_str().unwrap().to_owned();
    let (status, body) = retry_503(|| w.get_task(1, 5)).await;
    assert_eq!(status, 200, "{body}");
    let claimed = body["tasks"][0].clone();
    assert_eq!(claimed["job_id"], claimed_job.as_str(), "{body}");
    let (status, delta) =
        retry_503(|| get(&a.base, "/job_statuses?since_version=0&limit=100")).await;
    assert_eq!(status, 200, "{delta}");
    let handed_out = delta["next_since_version"].as_i64().unwrap();
    cluster.crash();
    cluster.restart();
    let db = PgPool::connect(&mesh.url).await.unwrap();
    let counter: i64 =
        sqlx::query_scalar("SELECT value FROM site_counters WHERE name = 'status_version'")
            .fetch_one(&db)
            .await
            .unwrap();
    assert!(
        counter >= handed_out,
        "the status version went back from {handed_out} to {counter}"
    );

    // Both leases survived: their tokens still complete the tasks.
    for task in [&handed, &claimed] {
        let (code, body) = retry_503(|| w.complete(task)).await;
        assert_eq!(code, 200, "{body}");
    }
    for job in [&handed_job, &claimed_job] {
        let done = wait_for(&a.base, job, Duration::from_secs(30), terminal).await;
        assert_eq!(done["state"], "COMPLETED", "{done}");
    }
    a.signal("TERM");
}

/// Calls `f` until it answers other than 503 (a pooled connection that died with the
/// server fails one statement), for up to 30 s.
async fn retry_503<F, Fut>(f: F) -> (u16, Value)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = (u16, Value)>,
{
    let start = Instant::now();
    loop {
        let (code, body) = f().await;
        if code != 503 || start.elapsed() > Duration::from_secs(30) {
            return (code, body);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_with_a_reaped_lease_token_are_409_and_write_nothing() {
    let _serial = SERIAL.lock().await;
    let url = pg::fresh_database().await;
    let mesh = mesh_on(
        url,
        |_| "  - id: synth\n    kind: synthetic\n    objects: 3\n    work_ms: 0\n".into(),
        "",
    )
    .await;
    let a = mesh.orchestrator("orch-a").await;
    let w = FakeWorker::new(&a.base, "fake-1");
    let job = start_job(&a.base, &["synth"]).await;
    let (status, body) = w.get_task(1, 2).await;
    assert_eq!(status, 200, "{body}");
    let packet = body["tasks"][0].clone();
    assert_eq!(packet["phase"], "DISCOVERY");
    let (task_id, stale) = (packet["task_id"].clone(), packet["lease_token"].clone());
    // No heartbeat: the lease expires (3 s) and the reaper (every 1 s) takes it back.
    let start = Instant::now();
    loop {
        let open = mesh
            .scalar("SELECT COUNT(*) FROM lease_history WHERE ended_at IS NULL")
            .await;
        if open == 0 {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(15), "never reaped");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let objects =
        json!([{ "key": "k1", "size_bytes": 1, "modified_at": null, "skipped_reason": null }]);
    let lease = json!({ "task_id": task_id, "lease_token": stale });
    let progress = json!({ "task_id": task_id, "lease_token": stale, "attempt": 1, "seq": 0, "objects": objects });
    let (s, body) = w.post("/update_task_progress", progress.clone()).await;
    assert_eq!(s, 409, "{body}");
    assert_eq!(body["error"]["code"], "lease_lost");
    let (s, _) = w.post("/report_heartbeat", lease.clone()).await;
    assert_eq!(s, 409);
    let (s, body) = w
        .post("/complete_task", json!({ "completions": [lease.clone()] }))
        .await;
    assert_eq!(s, 409, "{body}");
    assert_eq!(body["error"]["details"]["refused"], json!([task_id]));
    let (s, _) = w
        .post(
            "/fail_task",
            json!({ "task_id": task_id, "lease_token": stale, "attempt": 1, "error": "x", "retryable": true }),
        )
        .await;
    assert_eq!(s, 409);
    assert_eq!(
        mesh.scalar("SELECT COUNT(*) FROM progress_records").await,
        0
    );
    assert_eq!(
        mesh.scalar("SELECT COUNT(*) FROM discovered_objects").await,
        0
    );
    assert_eq!(
        mesh.scalar("SELECT COUNT(*) FROM tasks WHERE state <> 'PENDING'")
            .await,
        0
    );
    // The current lease holder's reports are accepted, a resent batch is a no-op.
    let (s, body) = w.get_task(1, 2).await;
    assert_eq!(s, 200, "{body}");
    let fresh = body["tasks"][0]["lease_token"].clone();
    let attempt = body["tasks"][0]["attempt"].clone();
    let progress = json!({ "task_id": task_id, "lease_token": fresh, "attempt": attempt, "seq": 0, "objects": objects });
    let (s, body) = w.post("/update_task_progress", progress.clone()).await;
    assert_eq!(
        (s, body["duplicate"].clone()),
        (200, json!(false)),
        "{body}"
    );
    let (s, body) = w.post("/update_task_progress", progress).await;
    assert_eq!((s, body["duplicate"].clone()), (200, json!(true)), "{body}");
    let (s, body) = w
        .post(
            "/complete_task",
            json!({ "completions": [{ "task_id": task_id, "lease_token": fresh }] }),
        )
        .await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(
        mesh.scalar("SELECT COUNT(*) FROM discovered_objects").await,
        1
    );
    // Malformed and oversized requests are client errors, never 500.
    let (s, _) = w
        .post("/get_task", json!({ "slots": 0, "max_tasks": 0 }))
        .await;
    assert_eq!(s, 422);
    let (s, _) = w.post("/complete_task", json!({ "completions": [] })).await;
    assert_eq!(s, 422);
    let _ = job;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_on_a_busy_worker_hands_its_tasks_back() {
    let _serial = SERIAL.lock().await;
    let url = pg::fresh_database().await;
    // Tasks far longer than the drain window: the worker must hand them back.
    let mesh = mesh_on(
        url,
        |_| "  - id: slow\n    kind: synthetic\n    objects: 20\n    work_ms: 60000\n".into(),
        "",
    )
    .await;
    std::fs::write(
        &mesh.config,
        std::fs::read_to_string(&mesh.config)
            .unwrap()
            .replace("task_timeout_seconds: 3", "task_timeout_seconds: 60")
            .replace("drain_seconds: 5", "drain_seconds: 1"),
    )
    .unwrap();
    let a = mesh.orchestrator("orch-a").await;
    let mut w = mesh.worker("busy", &a);
    let job = start_job(&a.base, &["slow"]).await;
    wait_for(&a.base, &job, Duration::from_secs(60), |s| {
        s["tasks"]["by_phase"]["PROCESS"]["RUNNING"].as_i64() >= Some(4)
    })
    .await;
    w.signal("TERM");
    assert_eq!(
        w.wait_exit(Duration::from_secs(20)),
        Some(0),
        "{}",
        w.log_text()
    );
    let running = mesh
        .scalar("SELECT COUNT(*) FROM tasks WHERE state = 'RUNNING'")
        .await;
    assert_eq!(
        running,
        0,
        "tasks left RUNNING after SIGTERM: {}",
        w.log_text()
    );
    let handed_back = mesh
        .scalar("SELECT COUNT(*) FROM tasks WHERE phase = 'PROCESS' AND state = 'PENDING' AND attempts >= 1")
        .await;
    assert_eq!(handed_back, 4, "the 4 running tasks went back to PENDING");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_of_another_site_expired_or_missing_get_401_and_no_work() {
    let _serial = SERIAL.lock().await;
    let url = pg::fresh_database().await;
    let mesh = mesh_on(
        url,
        |_| "  - id: synth\n    kind: synthetic\n    objects: 3\n    work_ms: 0\n".into(),
        "",
    )
    .await;
    let a = mesh.orchestrator("orch-a").await;
    start_job(&a.base, &["synth"]).await;
    let w = FakeWorker::new(&a.base, "w");
    let body = json!({ "worker_id": "w", "slots": 1, "max_tasks": 1, "wait_seconds": 0 });
    let other_key = "another-sites-key-0123456789abcdef01234567";
    let cases = [
        ("none", None),
        (
            "tokyo's",
            Some(token::mint(KEY.as_bytes(), "tokyo", "w", 300)),
        ),
        (
            "tokyo-key",
            Some(token::mint(other_key.as_bytes(), "london", "w", 300)),
        ),
        (
            "expired",
            Some(token::mint(KEY.as_bytes(), "london", "w", -600)),
        ),
        ("garbage", Some("not.a.token".to_owned())),
    ];
    for (name, t) in &cases {
        let (s, b) = w.call("/get_task", body.clone(), t.as_deref()).await;
        assert_eq!(s, 401, "{name} credential: {b}");
        assert_eq!(b["error"]["code"], "unauthorized");
        let text = b.to_string();
        assert!(!text.contains(KEY), "the key leaked");
    }
    assert_eq!(
        mesh.scalar("SELECT COUNT(*) FROM lease_history").await,
        0,
        "a refused worker got work"
    );
    // A credential of worker w used for worker x is refused too.
    let (s, _) = w
        .call(
            "/get_task",
            json!({ "worker_id": "x", "slots": 1, "max_tasks": 1 }),
            Some(w.token.as_str()),
        )
        .await;
    assert_eq!(s, 403);
    let (s, b) = w.get_task(1, 2).await;
    assert_eq!(s, 200, "{b}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn distributed_modes_refuse_sqlite_and_a_missing_key_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("site.yaml");
    std::fs::write(
        &config,
        format!("node:\n  data_dir: {}\n", dir.path().display()),
    )
    .unwrap();
    let cfg = config.to_str().unwrap();
    let port = format!("127.0.0.1:{}", free_port());
    let (code, err) = run_to_exit(
        &["--mode", "orchestrator", "--config", cfg, "--listen", &port],
        &[KEY_ENV],
        Duration::from_secs(30),
    );
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("database.url") && err.contains("PostgreSQL"),
        "{err}"
    );
    let (code, err) = run_to_exit(
        &["--mode", "worker", "--config", cfg],
        &[],
        Duration::from_secs(30),
    );
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("MERIDIAN_WORKER_AUTH_KEY"), "{err}");
    let (code, err) = run_to_exit(
        &["--mode", "worker", "--config", cfg],
        &[("MERIDIAN_WORKER_AUTH_KEY", "tiny-key")],
        Duration::from_secs(30),
    );
    assert_eq!(code, Some(2), "{err}");
    assert!(
        !err.contains("tiny-key"),
        "the key's value was echoed: {err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_started_on_a_replica_hands_its_first_tasks_to_the_long_polls_waiting_there() {
    let _serial = SERIAL.lock().await;
    let url = pg::fresh_database().await;
    let mesh = mesh_on(
        url,
        |_| {
            "  - id: s1\n    kind: synthetic\n    objects: 0\n  - id: s2\n    kind: synthetic\n    objects: 0\n"
                .into()
        },
        "",
    )
    .await;
    let a = mesh.orchestrator("orch-a").await;
    // Three idle workers wait; the job has two tasks.
    let mut polls = Vec::new();
    for n in 1..=3 {
        let w = FakeWorker::new(&a.base, &format!("fake-{n}"));
        polls.push(tokio::spawn(async move { (w.get_task(1, 2).await, w) }));
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    let job = start_job(&a.base, &["s1", "s2"]).await;
    let mut answered = Vec::new();
    for p in polls {
        let ((status, body), w) = p.await.unwrap();
        answered.push((w, status, body));
    }
    // The two longest-waiting got one task each, at once; the third found nothing.
    let (s1, s2, s3) = (answered[0].1, answered[1].1, answered[2].1);
    let bodies: Vec<&Value> = answered.iter().map(|a| &a.2).collect();
    assert_eq!((s1, s2, s3), (200, 200, 204), "{bodies:?}");
    let mut ids = Vec::new();
    for (w, _, body) in &answered[..2] {
        let tasks = body["tasks"].as_array().unwrap();
        assert_eq!(tasks.len(), 1, "{body}");
        assert_eq!(tasks[0]["job_id"], job.as_str());
        assert_eq!(tasks[0]["phase"], "DISCOVERY");
        ids.push(tasks[0]["task_id"].as_i64().unwrap());
        // An ordinary lease: in the history under this worker, and fenced.
        let holder = mesh
            .lease_holder(tasks[0]["task_id"].as_i64().unwrap())
            .await;
        assert_eq!(holder, w.id);
        let (status, _) = w
            .post(
                "/complete_task",
                json!({ "completions": [{ "task_id": tasks[0]["task_id"], "lease_token": "forged" }] }),
            )
            .await;
        assert_eq!(status, 409);
        let (status, body) = w.complete(&tasks[0]).await;
        assert_eq!(status, 200, "{body}");
    }
    assert_ne!(ids[0], ids[1]);
    let metrics = reqwest::get(format!("{}/metrics", a.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("meridian_tasks_handed_off_total") && l.ends_with(" 2")),
        "{metrics}"
    );
    let done = wait_for(&a.base, &job, Duration::from_secs(30), terminal).await;
    assert_eq!(done["state"], "COMPLETED", "{done}");
    mesh.assert_leases_never_overlapped().await;
    a.signal("TERM");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_started_on_another_replica_is_announced_and_taken_by_the_long_polls_waiting_here() {
    let _serial = SERIAL.lock().await;
    let url = pg::fresh_database().await;
    let mesh = mesh_on(
        url,
        |_| {
            "  - id: s1\n    kind: synthetic\n    objects: 0\n  - id: s2\n    kind: synthetic\n    objects: 0\n"
                .into()
        },
        "",
    )
    .await;
    let a = mesh.orchestrator("orch-a").await;
    let b = mesh.orchestrator("orch-b").await;
    // Two idle workers wait on replica a; the job starts on replica b, where no one
    // waits, so b announces its two pending tasks and a's long-polls take them.
    let mut polls = Vec::new();
    for n in 1..=2 {
        let w = FakeWorker::new(&a.base, &format!("fake-{n}"));
        polls.push(tokio::spawn(async move { (w.get_task(1, 5).await, w) }));
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    let job = start_job(&b.base, &["s1", "s2"]).await;
    let mut ids = Vec::new();
    for p in polls {
        let ((status, body), w) = p.await.unwrap();
        assert_eq!(status, 200, "{body}");
        let tasks = body["tasks"].as_array().unwrap();
        assert_eq!(tasks.len(), 1, "{body}");
        assert_eq!(tasks[0]["job_id"], job.as_str());
        let id = tasks[0]["task_id"].as_i64().unwrap();
        assert_eq!(mesh.lease_holder(id).await, w.id);
        let (status, body) = w.complete(&tasks[0]).await;
        assert_eq!(status, 200, "{body}");
        ids.push(id);
    }
    assert_ne!(ids[0], ids[1]);
    // Through the announcement, not a poll: replica a handed them off. (A waiter that
    // happened to be between two looks of its poll fallback when the announcement came
    // claims through the assigner instead; both at once would be a broken announcement.)
    let metrics = reqwest::get(format!("{}/metrics", a.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let handed_off: f64 = metrics
        .lines()
        .filter(|l| l.starts_with("meridian_tasks_handed_off_total"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert!(handed_off >= 1.0, "{metrics}");
    let done = wait_for(&a.base, &job, Duration::from_secs(30), terminal).await;
    assert_eq!(done["state"], "COMPLETED", "{done}");
    mesh.assert_leases_never_overlapped().await;
    a.signal("TERM");
    b.signal("TERM");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_handed_off_to_a_long_poll_that_went_away_goes_back_and_is_leased_again() {
    let _serial = SERIAL.lock().await;
    let url = pg::fresh_database().await;
    let mesh = mesh_on(
        url,
        |_| "  - id: s1\n    kind: synthetic\n    objects: 0\n".into(),
        "",
    )
    .await;
    // The failpoint drops the first hand-off's answer as if its long-poll had gone.
    let a = mesh
        .orchestrator_with(
            "orch-a",
            &[("MERIDIAN_FAILPOINTS", "hand_off.long_poll_gone=error*1")],
        )
        .await;
    let w = FakeWorker::new(&a.base, "fake-1");
    let poll = {
        let w = FakeWorker::new(&a.base, "fake-1");
        tokio::spawn(async move { w.get_task(1, 5).await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let job = start_job(&a.base, &["s1"]).await;
    // The same long-poll still gets the task: handed back to PENDING at once (no
    // lease timeout to wait for), then claimed again.
    let (status, body) = poll.await.unwrap();
    assert_eq!(status, 200, "{body}");
    let tasks = body["tasks"].as_array().unwrap();
    assert_eq!(tasks.len(), 1, "{body}");
    let id = tasks[0]["task_id"].as_i64().unwrap();
    let history: Vec<(String, Option<String>)> = sqlx::query_as(
        "SELECT worker_id, end_state FROM lease_history WHERE task_id = $1 ORDER BY id",
    )
    .bind(id)
    .fetch_all(&mesh.db)
    .await
    .unwrap();
    assert_eq!(
        history,
        [
            ("fake-1".to_owned(), Some("PENDING".to_owned())),
            ("fake-1".to_owned(), None)
        ],
        "the handed-off lease ended when it went back, then a second one began"
    );
    let (status, body) = w.complete(&tasks[0]).await;
    assert_eq!(status, 200, "{body}");
    let done = wait_for(&a.base, &job, Duration::from_secs(30), terminal).await;
    assert_eq!(done["state"], "COMPLETED", "{done}");
    mesh.assert_leases_never_overlapped().await;
    a.signal("TERM");
}
