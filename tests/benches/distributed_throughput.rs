//! No-op task throughput of the distributed model through the full HTTP worker
//! protocol (get_task → complete_task) with W worker processes against one
//! orchestrator process on PostgreSQL, next to the batched SQL-only reference (claim
//! 100 + complete 100 per statement) on the same cluster in the same run; plus the
//! time from `start_job` to an idle long-polling worker holding the job's first task,
//! on the replica that created it and across replicas (LISTEN/NOTIFY).
//!
//! `cargo bench -p meridian-tests --bench distributed_throughput -- [--seconds 60]
//!  [--workers 3] [--slots 100] [--samples 1000] [--warmup 100] [--latency-only]`
//!
//! 1000 latency samples per path by default: a p99 over 200 is the third-worst sample,
//! which one hiccup of this VM moves by a millisecond.
//!
//! The latency figures are steady-state: `--warmup` samples per path (default 100) go
//! first and are reported apart (max only), because the first uses of each pooled
//! database connection prepare their statements (a few round trips each) and
//! PostgreSQL plans a prepared statement afresh for its first five executions on each
//! connection before it settles on a generic plan (+0.6 ms for the create statement);
//! the pool holds up to 16 connections. A long-running replica pays that once.
//!
//! PostgreSQL comes from `DATABASE_URL` or a throwaway cluster started here with
//! durable commits (fsync and synchronous_commit on), as production runs.

use std::path::Path;
use std::time::{Duration, Instant};

use meridian_service::worker_token as token;
use meridian_tests::pg::{Cluster, ClusterOptions, replace_database};
use meridian_tests::process::{SiteProcess, free_port};
use serde_json::{Value, json};
use sqlx::{Connection, PgConnection};

const KEY: &str = "bench-worker-key-0123456789abcdef0123456789";

/// Tasks seeded for the measurement; more than the run can finish.
const SEED: i64 = 1_500_000;

struct Args {
    seconds: u64,
    workers: usize,
    slots: u32,
    samples: usize,
    /// Latency samples taken first and left out of the percentiles.
    warmup: usize,
    /// Only the start_job → first task latency (`--latency-only`).
    latency_only: bool,
}

fn args() -> Args {
    let mut a = Args {
        seconds: 60,
        workers: 3,
        slots: 100,
        samples: 1000,
        warmup: 100,
        latency_only: false,
    };
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < argv.len() {
        let value = argv.get(i + 1).cloned().unwrap_or_default();
        match argv[i].as_str() {
            "--seconds" => a.seconds = value.parse().expect("--seconds N"),
            "--workers" => a.workers = value.parse().expect("--workers N"),
            "--slots" => a.slots = value.parse().expect("--slots N"),
            "--samples" => a.samples = value.parse().expect("--samples N"),
            "--warmup" => a.warmup = value.parse().expect("--warmup N"),
            "--latency-only" => {
                a.latency_only = true;
                i += 1;
                continue;
            }
            _ => {
                i += 1;
                continue;
            }
        }
        i += 2;
    }
    a
}

async fn fresh(admin: &str, tag: &str) -> String {
    let name = format!("meridian_bench_{tag}_{}", uuid::Uuid::new_v4().simple());
    let mut c = PgConnection::connect(admin).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut c)
        .await
        .unwrap();
    let url = replace_database(admin, &name);
    meridian_store::open(&url, 2)
        .await
        .expect("migrate")
        .close()
        .await;
    url
}

/// A running job `job` with `n` pending no-op PROCESS tasks, seeded in one statement.
async fn seed(url: &str, job: &str, n: i64) {
    let mut conn = PgConnection::connect(url).await.expect("connect");
    sqlx::query("INSERT INTO jobs (id, name, definition_hash, data_sources, options, priority, state, created_at, status_version) VALUES ($1, 'noop', 'h', '[\"noop\"]', '{}', 1, 'RUNNING', 0, 0)")
        .bind(job)
        .execute(&mut conn)
        .await
        .expect("job");
    sqlx::query(
        "INSERT INTO tasks (job_id, data_source_id, phase, object_id, payload, state, created_at) \
         SELECT $1, 'noop', 'PROCESS', i, json_build_object('object_id', i, 'key', 'object-' || lpad(i::text, 10, '0'))::text, \
         'PENDING', 0 FROM generate_series(1, $2::BIGINT) AS i",
    )
    .bind(job)
    .bind(n)
    .execute(&mut conn)
    .await
    .expect("seed");
    sqlx::query("ANALYZE")
        .execute(&mut conn)
        .await
        .expect("analyze");
    let _ = conn.close().await;
}

/// The reference of the single-process bench (keyset variant): claim 100, complete
/// 100, one statement and one transaction each.
async fn sql_reference(url: &str, seconds: u64) -> f64 {
    seed(url, "ref", SEED).await;
    let mut conn = PgConnection::connect(url).await.expect("connect");
    let start = Instant::now();
    let (mut done, mut after) = (0u64, 0i64);
    while start.elapsed() < Duration::from_secs(seconds) {
        let ids: Vec<i64> = sqlx::query_scalar(
            "UPDATE tasks SET state = 'RUNNING', attempts = attempts + 1, lease_token = 't' WHERE id IN \
             (SELECT id FROM tasks WHERE job_id = 'ref' AND state = 'PENDING' AND id > $1 ORDER BY id LIMIT 100 \
             FOR UPDATE SKIP LOCKED) RETURNING id",
        )
        .bind(after)
        .fetch_all(&mut conn)
        .await
        .expect("claim");
        if ids.is_empty() {
            break;
        }
        after = ids.iter().copied().max().unwrap_or(after);
        sqlx::query("UPDATE tasks SET state = 'SUCCEEDED', lease_token = NULL WHERE id = ANY($1)")
            .bind(&ids)
            .execute(&mut conn)
            .await
            .expect("complete");
        done += ids.len() as u64;
    }
    let _ = conn.close().await;
    done as f64 / start.elapsed().as_secs_f64()
}

fn config(dir: &Path, url: &str, slots: u32) -> std::path::PathBuf {
    let path = dir.join("site.yaml");
    std::fs::write(
        &path,
        format!(
            "database:\n  url: \"{url}\"\n  max_connections: 16\nnode:\n  data_dir: {}\nsite:\n  name: bench\n\
orchestrator:\n  long_poll_timeout_seconds: 30\n  max_tasks_per_poll: {slots}\n\
worker:\n  global_cpu_threshold_percent: 100\n  slot_count: {slots}\n\
log:\n  level: warn\ndata_sources:\n  - id: noop\n    kind: synthetic\n    objects: 0\n",
            dir.display()
        ),
    )
    .unwrap();
    path
}

async fn metrics(base: &str) -> String {
    reqwest::get(format!("{base}/metrics"))
        .await
        .expect("metrics")
        .text()
        .await
        .unwrap_or_default()
}

fn sum_of(metrics: &str, name: &str) -> f64 {
    metrics
        .lines()
        .filter(|l| l.starts_with(name) && !l.starts_with(&format!("{name}_")))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

fn quantile(metrics: &str, name: &str, q: &str) -> f64 {
    let prefix = format!("{name}{{quantile=\"{q}\"}}");
    metrics
        .lines()
        .find(|l| l.starts_with(&prefix))
        .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .unwrap_or(f64::NAN)
}

fn percentile(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

/// Milliseconds for a request that touches no database (`GET /data_sources`): the
/// floor of any HTTP exchange with a replica on this machine, `samples` times.
async fn http_floor(base: &str, samples: usize) -> Vec<f64> {
    let http = reqwest::Client::new();
    let mut out = Vec::with_capacity(samples);
    for _ in 0..samples {
        let sent = Instant::now();
        let r = http
            .get(format!("{base}/data_sources"))
            .send()
            .await
            .expect("data_sources");
        out.push(sent.elapsed().as_secs_f64() * 1000.0);
        assert!(r.status().is_success());
        let _ = r.bytes().await;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    out
}

/// Milliseconds from sending `start_job` to `creator` until a worker long-polling
/// `poller` holds the new job's discovery task, `samples` times; and until the
/// `start_job` answer arrived.
async fn first_task_latency(creator: &str, poller: &str, samples: usize) -> (Vec<f64>, Vec<f64>) {
    let http = reqwest::Client::new();
    // Within the site's default `worker.credential_ttl_seconds` (900), which refuses
    // longer-lived credentials; the latency phase takes well under that.
    let bearer = token::mint(KEY.as_bytes(), "bench", "idle", 900);
    let mut out = Vec::with_capacity(samples);
    let mut answered = Vec::with_capacity(samples);
    for _ in 0..samples {
        let poll = {
            let (http, bearer, poller) = (http.clone(), bearer.clone(), poller.to_owned());
            tokio::spawn(async move {
                let r = http
                    .post(format!("{poller}/get_task"))
                    .bearer_auth(bearer)
                    .json(&json!({ "worker_id": "idle", "slots": 1, "max_tasks": 1, "wait_seconds": 10 }))
                    .send()
                    .await
                    .expect("get_task");
                let got = Instant::now();
                (got, r.json::<Value>().await.unwrap_or(Value::Null))
            })
        };
        // Let the poll reach the orchestrator and wait.
        tokio::time::sleep(Duration::from_millis(30)).await;
        let sent = Instant::now();
        let r = http
            .post(format!("{creator}/start_job"))
            .json(&json!({ "name": "latency", "data_sources": ["noop"] }))
            .send()
            .await
            .expect("start_job");
        answered.push(sent.elapsed().as_secs_f64() * 1000.0);
        assert!(r.status().is_success());
        let (got, packet) = poll.await.unwrap();
        let task = &packet["tasks"][0];
        assert!(task.is_object(), "no task: {packet}");
        let waited = got
            .checked_duration_since(sent)
            .expect("the poll was answered before start_job was sent");
        out.push(waited.as_secs_f64() * 1000.0);
        // Finish the task so the next sample starts idle.
        http.post(format!("{poller}/complete_task"))
            .bearer_auth(&bearer)
            .json(&json!({ "worker_id": "idle", "completions": [{ "task_id": task["task_id"], "lease_token": task["lease_token"] }] }))
            .send()
            .await
            .expect("complete_task");
    }
    (out, answered)
}

/// Tasks per second through the HTTP protocol next to the SQL-only reference.
async fn throughput(admin: &str, a: &Args) {
    let reference = sql_reference(&fresh(admin, "ref").await, a.seconds).await;

    let url = fresh(admin, "dist").await;
    seed(&url, &uuid::Uuid::now_v7().to_string(), SEED).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &url, a.slots);
    let env = [("MERIDIAN_WORKER_AUTH_KEY", KEY)];
    let orch =
        SiteProcess::start_orchestrator(&cfg, free_port(), &dir.path().join("orch.log"), &env)
            .await;
    let before = metrics(&orch.base).await;
    let done0 = sum_of(&before, "meridian_tasks_completed_total");
    let mut workers = Vec::new();
    for n in 0..a.workers {
        workers.push(SiteProcess::start_worker(
            &cfg,
            &dir.path().join(format!("w{n}.log")),
            &[
                env[0],
                ("MERIDIAN_WORKER__ORCHESTRATOR_URL", orch.base.as_str()),
                ("MERIDIAN_NODE__ID", &format!("w{n}")),
            ],
        ));
    }
    let start = Instant::now();
    let mut windows = Vec::new();
    let (mut w_start, mut w_base) = (Instant::now(), done0);
    let mut done = 0.0;
    while start.elapsed() < Duration::from_secs(a.seconds) {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = sum_of(&metrics(&orch.base).await, "meridian_tasks_completed_total");
        done = now - done0;
        if w_start.elapsed() >= Duration::from_secs(10) {
            windows.push((now - w_base) / w_start.elapsed().as_secs_f64());
            (w_start, w_base) = (Instant::now(), now);
        }
    }
    let rate = done / start.elapsed().as_secs_f64();
    let m = metrics(&orch.base).await;
    let claim = |q| quantile(&m, "meridian_claim_seconds", q) * 1000.0;
    let batch = sum_of(&m, "meridian_completion_batch_size_sum")
        / sum_of(&m, "meridian_completion_batch_size_count").max(1.0);
    for w in &workers {
        w.signal("TERM");
    }
    for w in &mut workers {
        let _ = w.wait_exit(Duration::from_secs(60));
    }
    orch.signal("TERM");
    println!(
        "{:>14} {:>16} {:>9}   {:>22}   per-10s windows",
        "ref keyset/s", "HTTP tasks/s", "vs ref", "claim p50/p90/p99 ms"
    );
    let w = windows
        .iter()
        .map(|r| format!("{r:.0}"))
        .collect::<Vec<_>>()
        .join(" ");
    println!(
        "{reference:>14.0} {rate:>16.0} {:>8.0}%   {:>6.2} / {:>5.2} / {:>5.2}   {w}",
        100.0 * rate / reference,
        claim("0.5"),
        claim("0.9"),
        claim("0.99"),
    );
    println!("  mean completions per complete_task commit: {batch:.1}");
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    meridian_tests::init();
    let a = args();
    println!(
        "meridian distributed no-op throughput: {} s, {} worker processes x {} slots, 1 orchestrator",
        a.seconds, a.workers, a.slots
    );
    let cluster = if std::env::var("DATABASE_URL").is_err() {
        Some(Cluster::start(ClusterOptions {
            durable: true,
            ..ClusterOptions::default()
        }))
    } else {
        None
    };
    let admin = std::env::var("DATABASE_URL")
        .ok()
        .or_else(|| cluster.as_ref().map(|c| c.url.clone()))
        .unwrap();

    if !a.latency_only {
        throughput(&admin, &a).await;
    }
    // Idle workers: the time for a new job's first task to reach a long-poll, on a
    // fresh database (no backlog that would answer the poll at once), through two
    // replicas.
    let url = fresh(&admin, "latency").await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &url, a.slots);
    let env = [("MERIDIAN_WORKER_AUTH_KEY", KEY)];
    let orch =
        SiteProcess::start_orchestrator(&cfg, free_port(), &dir.path().join("orch.log"), &env)
            .await;
    let other =
        SiteProcess::start_orchestrator(&cfg, free_port(), &dir.path().join("orch2.log"), &env)
            .await;
    let pcts = |ms: &mut Vec<f64>| {
        format!(
            "p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms",
            percentile(ms, 0.5),
            percentile(ms, 0.9),
            percentile(ms, 0.99)
        )
    };
    println!(
        "HTTP floor, GET /data_sources (no database, {} samples): {}",
        a.samples,
        pcts(&mut http_floor(&orch.base, a.samples).await)
    );
    for (name, creator) in [
        ("same replica", &orch.base),
        ("across replicas", &other.base),
    ] {
        let (mut ms, mut answered) =
            first_task_latency(creator, &orch.base, a.warmup + a.samples).await;
        let cold: Vec<f64> = ms.drain(..a.warmup).collect();
        answered.drain(..a.warmup);
        println!(
            "start_job → idle worker holds the first task ({name}, {} samples after {} warm-up, whose max was {:.2} ms): {}",
            ms.len(),
            cold.len(),
            cold.iter().copied().fold(0.0, f64::max),
            pcts(&mut ms)
        );
        println!("  start_job answered: {}", pcts(&mut answered));
    }
    orch.signal("TERM");
    other.signal("TERM");
}
