//! Page-load bench of the ops console with 100,000 jobs in the master (SQLite, the
//! master as a real process): the API calls the console makes for the first jobs page
//! and for a job view, timed from a client on loopback, and the master's CPU while 20
//! simulated consoles refresh the jobs page every 5 s. Figures go to
//! docs/performance.md ("The ops console").
//!
//! `cargo bench -p meridian-tests --bench console_load` (CONSOLES, SECONDS override the
//! load phase's 20 consoles and 60 s).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use meridian_master::auth::Role;
use meridian_tests::mesh::Mesh;
use meridian_wire::JobStatus;
use meridian_wire::states::JobState;
use serde_json::Value;
use sqlx::Connection;

const JOBS: i64 = 100_000;

/// Every job with a part at london and at tokyo, each holding a finished site status
/// (what the poller stores), so the views parse real JSON.
async fn seed(db: &str) {
    let mut st = JobStatus::new("x", JobState::Completed, 1);
    st.tasks.total = 120;
    st.tasks.by_state.insert("SUCCEEDED".into(), 120);
    st.objects.discovered = 119;
    st.objects.processed = 119;
    st.findings.total = 42;
    st.findings.by_classifier.insert("email".into(), 30);
    st.findings.by_classifier.insert("payment_card".into(), 12);
    st.started_at = Some("2026-01-01T00:00:00Z".into());
    st.finished_at = Some("2026-01-01T00:01:00Z".into());
    let status = serde_json::to_string(&st).unwrap().replace('\'', "''");
    let series = format!(
        "WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < {JOBS}) \
         SELECT n, substr('0000000000' || n, -10, 10) AS id FROM s"
    );
    let jobs = format!(
        "INSERT INTO jobs (job_id, name, request, request_hash, state, created_at, updated_at) \
         SELECT 'j' || id, 'nightly ' || (n % 500), '{{\"name\":\"n\",\"data_sources\":[\"ds_london_01\",\"ds_tokyo_01\"]}}', 'h', \
         CASE WHEN n % 10 = 0 THEN 'RUNNING' ELSE 'COMPLETED' END, 1700000000000 + n * 1000, 1700000000000 + n * 1000 FROM ({series}) AS g"
    );
    let parts = |site: &str| {
        format!(
            "INSERT INTO site_jobs (job_id, site, data_sources, dispatch_state, next_dispatch_at, status, status_version) \
             SELECT 'j' || id, '{site}', '[\"ds_{site}_01\"]', 'DISPATCHED', 0, '{status}', 1 FROM ({series}) AS g"
        )
    };
    let mut c = sqlx::SqliteConnection::connect(db).await.unwrap();
    for q in [jobs, parts("london"), parts("tokyo"), "ANALYZE".to_owned()] {
        sqlx::query(sqlx::AssertSqlSafe(q))
            .execute(&mut c)
            .await
            .unwrap();
    }
}

struct Console {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Console {
    async fn get(&self, path: &str) -> Value {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap();
        let status = r.status();
        let v = r.json().await.unwrap_or(Value::Null);
        assert!(status.is_success() || status == 503, "{path}: {status} {v}");
        v
    }

    /// What the jobs page asks: sites (for the filter), one page, its summaries.
    async fn jobs_page(&self) -> Vec<String> {
        self.get("/api/v1/sites").await;
        let page = self.get("/api/v1/jobs?limit=100").await;
        let ids: Vec<String> = page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|j| j["job_id"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(ids.len(), 100);
        let lines = self
            .get(&format!("/api/v1/job_summaries?ids={}", ids.join(",")))
            .await;
        assert_eq!(lines.as_array().unwrap().len(), 100);
        ids
    }

    /// What a job view asks: the view and the first page of findings.
    async fn job_view(&self, id: &str) {
        let v = self.get(&format!("/api/v1/jobs/{id}")).await;
        assert_eq!(v["sites"].as_array().unwrap().len(), 2);
        self.get(&format!("/api/v1/jobs/{id}/findings?limit=100"))
            .await;
    }

    /// The page and its files, as a browser without a cache fetches them.
    async fn page_files(&self) -> usize {
        let html = self
            .http
            .get(format!("{}/", self.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let v = html
            .split("/console/")
            .nth(1)
            .unwrap()
            .split('/')
            .next()
            .unwrap()
            .to_owned();
        let files = [
            "app.css",
            "js/app.js",
            "js/api.js",
            "js/dom.js",
            "js/format.js",
            "js/live.js",
            "js/route.js",
            "js/signin.js",
            "js/sites.js",
            "js/jobs.js",
            "js/bulk.js",
            "js/job.js",
            "js/findings.js",
            "js/compare.js",
            "js/newjob.js",
        ];
        let mut bytes = html.len();
        for f in files {
            let r = self
                .http
                .get(format!("{}/console/{v}/{f}", self.base))
                .send()
                .await
                .unwrap();
            assert!(r.status().is_success(), "{f}");
            bytes += r.bytes().await.unwrap().len();
        }
        bytes
    }
}

fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the parenthesised command name; utime and stime are 14 and 15.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
}

fn ticks_per_second() -> f64 {
    100.0 // USER_HZ on Linux
}

fn stats(mut v: Vec<f64>) -> (f64, f64) {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    (v[v.len() / 2], v[v.len() - 1])
}

async fn timed<F: std::future::Future<Output = T>, T>(f: F) -> (T, f64) {
    let t = Instant::now();
    let out = f.await;
    (out, t.elapsed().as_secs_f64() * 1000.0)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let consoles: usize = std::env::var("CONSOLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let seconds: u64 = std::env::var("SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(60);
    let mut mesh = Mesh::new(&["london", "tokyo"]);
    // The sites are not running: their parts are what the master last stored, and a
    // findings page is the 503 of an unreachable site (no site time in the figures).
    let dead: BTreeMap<String, String> = ["london", "tokyo"]
        .iter()
        .map(|s| {
            (
                s.to_string(),
                format!("http://127.0.0.1:{}", meridian_tests::process::free_port()),
            )
        })
        .collect();
    mesh.poll_seconds = 5.0;
    mesh.configure_master("", &dead);
    mesh.start_master().await;
    mesh.kill_master();
    let db = format!(
        "sqlite://{}",
        mesh.path().join("master").join("master.db").display()
    );
    let t = Instant::now();
    seed(&db).await;
    println!(
        "seeded {JOBS} jobs (2 sites each) in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    mesh.start_master().await;
    let pid = mesh.master.as_ref().unwrap().child.id();
    let c = Console {
        http: reqwest::Client::new(),
        base: mesh.master_url(),
        token: mesh.token(Role::Viewer),
    };

    let (bytes, ms) = timed(c.page_files()).await;
    println!("page and files (cold, {bytes} bytes, 16 requests): {ms:.1} ms");
    let (ids, first) = timed(c.jobs_page()).await;
    println!("first jobs page, first call after start: {first:.1} ms");
    let mut pages = Vec::new();
    let mut views = Vec::new();
    for i in 0..20 {
        pages.push(timed(c.jobs_page()).await.1);
        views.push(timed(c.job_view(&ids[i * 5])).await.1);
    }
    let (pm, px) = stats(pages);
    let (vm, vx) = stats(views);
    println!("jobs page (sites + 100 jobs + their summaries): median {pm:.1} ms, max {px:.1} ms");
    println!("job view (view + findings page): median {vm:.1} ms, max {vx:.1} ms");

    let idle_start = cpu_ticks(pid);
    tokio::time::sleep(Duration::from_secs(10)).await;
    let idle = (cpu_ticks(pid) - idle_start) as f64 / ticks_per_second() / 10.0 * 100.0;

    let start = cpu_ticks(pid);
    let wall = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..consoles {
        let c = Console {
            http: reqwest::Client::new(),
            base: c.base.clone(),
            token: c.token.clone(),
        };
        tasks.push(tokio::spawn(async move {
            // Consoles opened at different moments, each refreshing every 5 s.
            tokio::time::sleep(Duration::from_millis(5000 * i as u64 / consoles as u64)).await;
            let mut tick = tokio::time::interval(Duration::from_secs(5));
            let end = Instant::now() + Duration::from_secs(seconds);
            let mut n = 0;
            while Instant::now() < end {
                tick.tick().await;
                c.jobs_page().await;
                n += 1;
            }
            n
        }));
    }
    let mut refreshes = 0;
    for t in tasks {
        refreshes += t.await.unwrap();
    }
    let used = (cpu_ticks(pid) - start) as f64 / ticks_per_second();
    let cpu = used / wall.elapsed().as_secs_f64() * 100.0;
    println!(
        "{consoles} consoles refreshing every 5 s for {seconds} s ({refreshes} refreshes): master CPU {cpu:.1} % of one core (idle {idle:.1} %)"
    );
    mesh.kill_master();
}
