//! No-op task throughput of a single-process site, against the batched SQL-only
//! lifecycle on the same database in the same run; plus start-up time to `/ready`
//! and idle memory of the real binary.
//!
//! `cargo bench -p meridian-tests --bench noop_throughput -- [--seconds 60]
//!  [--backend sqlite|postgres|both] [--threads 8]`
//!
//! PostgreSQL comes from `DATABASE_URL` or a throwaway cluster started here with
//! durable commits (fsync and synchronous_commit on), as production runs.

use std::time::{Duration, Instant};

use meridian_tests::pg::{Cluster, ClusterOptions, replace_database};
use meridian_tests::site::TestSite;
use sqlx::{AnyConnection, Connection};

struct Args {
    seconds: u64,
    backends: Vec<&'static str>,
    threads: u32,
}

fn args() -> Args {
    let mut a = Args {
        seconds: 60,
        backends: vec!["sqlite", "postgres"],
        threads: 8,
    };
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < argv.len() {
        let value = argv.get(i + 1).cloned().unwrap_or_default();
        match argv[i].as_str() {
            "--seconds" => a.seconds = value.parse().expect("--seconds N"),
            "--threads" => a.threads = value.parse().expect("--threads N"),
            "--backend" => {
                a.backends = match value.as_str() {
                    "sqlite" => vec!["sqlite"],
                    "postgres" => vec!["postgres"],
                    _ => vec!["sqlite", "postgres"],
                }
            }
            // cargo bench passes --bench; ignore what is not ours.
            _ => {
                i += 1;
                continue;
            }
        }
        i += 2;
    }
    a
}

/// Tasks seeded per measurement. A measurement ends at `--seconds` or when they run
/// out, whichever comes first; the rate is over the time actually measured.
const SEED: i64 = 1_500_000;

/// Seeds `n` pending no-op PROCESS tasks for job `job` in one statement.
async fn seed(url: &str, job: &str, n: i64) {
    let mut conn = AnyConnection::connect(url).await.expect("connect");
    let series = if url.starts_with("sqlite") {
        "WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < $2) SELECT i FROM s"
    } else {
        "SELECT generate_series(1, $2::BIGINT) AS i"
    };
    let payload = if url.starts_with("sqlite") {
        "json_object('object_id', i, 'key', printf('object-%010d', i))"
    } else {
        "json_build_object('object_id', i, 'key', 'object-' || lpad(i::text, 10, '0'))::text"
    };
    let sql = format!(
        "INSERT INTO tasks (job_id, data_source_id, phase, object_id, payload, state, created_at) \
         SELECT $1, 'noop', 'PROCESS', i, {payload}, 'PENDING', 0 FROM ({series}) AS q"
    );
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(job)
        .bind(n)
        .execute(&mut conn)
        .await
        .expect("seed tasks");
    let _ = conn.close().await;
}

/// The reference: claim 100 pending tasks in one statement, complete those 100 in
/// one statement, one transaction each, for `seconds`. `keyset` makes each claim
/// start above the last id claimed, as the site's assigner does, instead of at the
/// head of the queue, where PostgreSQL must step over the dead index entries of
/// every task claimed since the last vacuum.
async fn sql_reference(url: &str, seconds: u64, keyset: bool) -> f64 {
    let mut conn = AnyConnection::connect(url).await.expect("connect");
    sqlx::query("INSERT INTO jobs (id, name, definition_hash, data_sources, options, priority, state, created_at, status_version) VALUES ('ref', 'ref', 'h', '[]', '{}', 1, 'RUNNING', 0, 0)")
        .execute(&mut conn)
        .await
        .expect("reference job");
    let _ = conn.close().await;
    seed(url, "ref", SEED).await;
    let mut conn = AnyConnection::connect(url).await.expect("connect");
    sqlx::query("ANALYZE")
        .execute(&mut conn)
        .await
        .expect("analyze");
    let pg = !url.starts_with("sqlite");
    let claim = if pg {
        "UPDATE tasks SET state = 'RUNNING', attempts = attempts + 1, lease_token = 't' WHERE id IN \
         (SELECT id FROM tasks WHERE job_id = 'ref' AND state = 'PENDING' AND id > $1 ORDER BY id LIMIT 100 FOR UPDATE SKIP LOCKED) RETURNING id"
    } else {
        "UPDATE tasks SET state = 'RUNNING', attempts = attempts + 1, lease_token = 't' WHERE id IN \
         (SELECT id FROM tasks WHERE job_id = 'ref' AND state = 'PENDING' AND id > $1 ORDER BY id LIMIT 100) RETURNING id"
    };
    let start = Instant::now();
    let mut done = 0u64;
    let mut after = 0i64;
    while start.elapsed() < Duration::from_secs(seconds) {
        let ids: Vec<i64> = sqlx::query_scalar(claim)
            .bind(after)
            .fetch_all(&mut conn)
            .await
            .expect("claim");
        if ids.is_empty() {
            break;
        }
        if keyset {
            after = ids.iter().copied().max().unwrap_or(after);
        }
        let list = ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
        let complete = format!(
            "UPDATE tasks SET state = 'SUCCEEDED', lease_token = NULL WHERE id IN ({list})"
        );
        sqlx::query(sqlx::AssertSqlSafe(complete))
            .execute(&mut conn)
            .await
            .expect("complete");
        done += ids.len() as u64;
    }
    let _ = conn.close().await;
    done as f64 / start.elapsed().as_secs_f64()
}

fn completed_counter(metrics: &str) -> f64 {
    metrics
        .lines()
        .filter(|l| l.starts_with("meridian_tasks_completed_total"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// No-op tasks through a whole single-process site: assignment, fair-share policy,
/// in-memory queue, workers, group-committed completions.
async fn site_rate(url: &str, seconds: u64, threads: u32) -> (f64, Vec<f64>) {
    let yaml = format!(
        "worker:\n  in_process_thread_count: {threads}\n  global_cpu_threshold_percent: 100\ndata_sources:\n  - id: noop\n    kind: synthetic\n    objects: 0\n"
    );
    // A job with a large backlog of no-op tasks, seeded before the site starts.
    let job = uuid::Uuid::now_v7().to_string();
    let store = meridian_store::open(url, 2).await.expect("open");
    let new = meridian_store::NewJob {
        id: job.clone(),
        name: "noop".into(),
        definition_hash: "bench".into(),
        data_sources: vec!["noop".into()],
        options: "{}".into(),
        priority: 1,
        trace_id: "4bf92f3577b34da6a3ce929d0e0e4736".into(),
    };
    store.create_job(&new).await.expect("job");
    store.close().await;
    seed(url, &job, SEED).await;
    let mut conn = AnyConnection::connect(url).await.expect("connect");
    sqlx::query("ANALYZE")
        .execute(&mut conn)
        .await
        .expect("analyze");
    let _ = conn.close().await;
    let dir = tempfile::tempdir().unwrap();
    let site = TestSite::start_on(url, &yaml, Default::default(), dir).await;
    let base = completed_counter(&site.app.metrics.render());
    let start = Instant::now();
    let mut windows = Vec::new();
    let (mut window_start, mut window_base) = (Instant::now(), base);
    let mut total;
    loop {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let now = completed_counter(&site.app.metrics.render());
        total = now - base;
        if window_start.elapsed() >= Duration::from_secs(10) {
            windows.push((now - window_base) / window_start.elapsed().as_secs_f64());
            (window_start, window_base) = (Instant::now(), now);
        }
        if total >= SEED as f64 {
            println!(
                "  (the {SEED} seeded tasks ran out after {:.0} s)",
                start.elapsed().as_secs_f64()
            );
            break;
        }
        if start.elapsed() >= Duration::from_secs(seconds) {
            break;
        }
    }
    let rate = total / start.elapsed().as_secs_f64();
    if std::env::var("BENCH_METRICS").is_ok() {
        for l in site
            .app
            .metrics
            .render()
            .lines()
            .filter(|l| !l.starts_with('#') && (l.contains("batch") || l.contains("claim")))
        {
            println!("  {l}");
        }
        println!(
            "  window: task_micros={}",
            site.app
                .task_micros
                .load(std::sync::atomic::Ordering::Relaxed)
        );
    }
    let _ = site.stop().await;
    (rate, windows)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Time from spawning the real binary to `/ready`, and its idle resident memory.
async fn startup_and_memory() -> (f64, u64) {
    let mut times = Vec::new();
    let mut rss = 0;
    for _ in 0..5 {
        let dir = tempfile::tempdir().unwrap();
        let port = meridian_tests::process::free_port();
        let started = Instant::now();
        let mut child = std::process::Command::new(meridian_tests::process::binary())
            .args([
                "--data-dir",
                dir.path().to_str().unwrap(),
                "--listen",
                &format!("127.0.0.1:{port}"),
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let http = reqwest::Client::new();
        loop {
            if let Ok(r) = http
                .get(format!("http://127.0.0.1:{port}/ready"))
                .send()
                .await
                && r.status().is_success()
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        times.push(started.elapsed().as_secs_f64() * 1000.0);
        tokio::time::sleep(Duration::from_secs(3)).await;
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap_or_default();
        rss = status
            .lines()
            .find(|l| l.starts_with("VmRSS:"))
            .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
            .unwrap_or(0);
        let _ = child.kill();
        let _ = child.wait();
    }
    (median(times), rss)
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    meridian_tests::init();
    sqlx::any::install_default_drivers();
    let a = args();
    println!(
        "meridian no-op throughput: {} s per measurement, {} worker threads",
        a.seconds, a.threads
    );
    let cluster = if a.backends.contains(&"postgres") && std::env::var("DATABASE_URL").is_err() {
        Some(Cluster::start(ClusterOptions {
            durable: true,
            ..ClusterOptions::default()
        }))
    } else {
        None
    };
    let pg_admin = std::env::var("DATABASE_URL")
        .ok()
        .or_else(|| cluster.as_ref().map(|c| c.url.clone()));
    println!(
        "{:<9} {:>13} {:>14} {:>13} {:>8} {:>9}   per-10s windows (site)",
        "backend", "ref head/s", "ref keyset/s", "site tasks/s", "vs head", "vs keyset"
    );
    for backend in &a.backends {
        let dir = tempfile::tempdir().unwrap();
        let fresh = |tag: &str| {
            let dir = dir.path().to_owned();
            let admin = pg_admin.clone();
            let tag = tag.to_owned();
            async move {
                if *backend == "sqlite" {
                    let url = format!("sqlite://{}", dir.join(format!("{tag}.db")).display());
                    meridian_store::open(&url, 4)
                        .await
                        .expect("migrate")
                        .close()
                        .await;
                    url
                } else {
                    let admin = admin.expect("postgres");
                    let name = format!("meridian_bench_{tag}_{}", uuid::Uuid::new_v4().simple());
                    let mut c = sqlx::PgConnection::connect(&admin).await.unwrap();
                    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                        .execute(&mut c)
                        .await
                        .unwrap();
                    let url = replace_database(&admin, &name);
                    meridian_store::open(&url, 4)
                        .await
                        .expect("migrate")
                        .close()
                        .await;
                    url
                }
            }
        };
        let head = sql_reference(&fresh("refhead").await, a.seconds, false).await;
        let keyset = sql_reference(&fresh("refkeyset").await, a.seconds, true).await;
        let (rate, windows) = site_rate(&fresh("site").await, a.seconds, a.threads).await;
        let w = windows
            .iter()
            .map(|r| format!("{r:.0}"))
            .collect::<Vec<_>>()
            .join(" ");
        println!(
            "{backend:<9} {head:>13.0} {keyset:>14.0} {rate:>13.0} {:>7.0}% {:>8.0}%   {w}",
            100.0 * rate / head,
            100.0 * rate / keyset
        );
    }
    let (ready_ms, rss_kb) = startup_and_memory().await;
    println!(
        "start-up to /ready (SQLite, median of 5): {ready_ms:.0} ms; idle resident memory: {:.1} MB",
        rss_kb as f64 / 1024.0
    );
}
