//! The master tracking many sites and jobs: requests per poll round, master CPU per
//! round, and how long a site's status change takes to reach the unified view.
//!
//! `cargo bench -p meridian-tests --bench master_polling -- [--sites 20] [--jobs 500]
//!  [--rounds 30] [--poll 1.0] [--changes 25]`
//!
//! The master is the real `meridian-master` binary (its own process, so its CPU is
//! its own); the sites are lightweight in-process fakes of the child API (start_job,
//! the delta status call, data_sources) on loopback, which change `--changes` job
//! statuses per site per second while the rounds are measured.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::extract::{Query, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use meridian_master::auth::{Role, mint};
use meridian_master::config::AuthConfig;
use meridian_wire::states::JobState;
use meridian_wire::{DataSourceInfo, JobStatus, StartJobRequest, StatusDelta};
use serde::Deserialize;
use tokio::sync::Mutex;

struct Args {
    sites: usize,
    jobs: usize,
    rounds: u32,
    poll: f64,
    changes: usize,
}

fn args() -> Args {
    let mut a = Args {
        sites: 20,
        jobs: 500,
        rounds: 30,
        poll: 1.0,
        changes: 25,
    };
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < argv.len() {
        let v = argv.get(i + 1).cloned().unwrap_or_default();
        match argv[i].as_str() {
            "--sites" => a.sites = v.parse().expect("--sites N"),
            "--jobs" => a.jobs = v.parse().expect("--jobs N"),
            "--rounds" => a.rounds = v.parse().expect("--rounds N"),
            "--poll" => a.poll = v.parse().expect("--poll SECONDS"),
            "--changes" => a.changes = v.parse().expect("--changes N"),
            _ => {
                i += 1;
                continue;
            }
        }
        i += 2;
    }
    a
}

/// One fake site: its jobs with their status versions.
#[derive(Default)]
struct FakeSite {
    name: String,
    jobs: Mutex<BTreeMap<String, JobStatus>>,
    version: AtomicU64,
    status_calls: AtomicU64,
    start_calls: AtomicU64,
}

fn status(id: &str, version: i64) -> JobStatus {
    JobStatus::new(id, JobState::Running, version)
}

async fn start_job(
    State(s): State<Arc<FakeSite>>,
    Json(req): Json<StartJobRequest>,
) -> Json<JobStatus> {
    s.start_calls.fetch_add(1, Ordering::Relaxed);
    let id = req.job_id.unwrap_or_default();
    let v = s.version.fetch_add(1, Ordering::Relaxed) as i64 + 1;
    let st = status(&id, v);
    s.jobs.lock().await.insert(id, st.clone());
    Json(st)
}

#[derive(Deserialize)]
struct Since {
    since_version: i64,
    limit: Option<usize>,
}

async fn statuses(State(s): State<Arc<FakeSite>>, Query(q): Query<Since>) -> Json<StatusDelta> {
    s.status_calls.fetch_add(1, Ordering::Relaxed);
    let limit = q.limit.unwrap_or(500);
    let jobs = s.jobs.lock().await;
    let mut changed: Vec<&JobStatus> = jobs
        .values()
        .filter(|j| j.status_version > q.since_version)
        .collect();
    changed.sort_by_key(|j| j.status_version);
    let has_more = changed.len() > limit;
    let page: Vec<JobStatus> = changed.into_iter().take(limit).cloned().collect();
    let next = page
        .last()
        .map(|j| j.status_version)
        .unwrap_or(q.since_version);
    Json(StatusDelta {
        jobs: page,
        next_since_version: next,
        has_more,
    })
}

async fn data_sources(State(s): State<Arc<FakeSite>>) -> Json<Vec<DataSourceInfo>> {
    Json(vec![DataSourceInfo {
        id: format!("ds_{}", s.name),
        kind: "synthetic".into(),
        site: s.name.clone(),
        description: String::new(),
    }])
}

impl FakeSite {
    /// Bumps the status of `job` (progress: one more task done).
    async fn touch(&self, job: &str) -> i64 {
        let v = self.version.fetch_add(1, Ordering::Relaxed) as i64 + 1;
        let mut jobs = self.jobs.lock().await;
        if let Some(st) = jobs.get_mut(job) {
            st.status_version = v;
            st.tasks.total += 1;
        }
        v
    }
}

async fn serve(site: Arc<FakeSite>) -> String {
    let app = Router::new()
        .route("/start_job", post(start_job))
        .route("/job_statuses", get(statuses))
        .route("/data_sources", get(data_sources))
        .with_state(site);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

/// utime + stime of `pid`, in seconds.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = f.get(11).and_then(|u| u.parse::<f64>().ok()).unwrap_or(0.0)
        + f.get(12).and_then(|s| s.parse::<f64>().ok()).unwrap_or(0.0);
    ticks / 100.0
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let a = args();
    meridian_tests::init();
    let dir = tempfile::tempdir().unwrap();
    let keys = meridian_master::certs::init(&dir.path().join("certs"), &[]).unwrap();
    let mut sites = Vec::new();
    let mut yaml_sites = String::new();
    for i in 0..a.sites {
        let site = Arc::new(FakeSite {
            name: format!("site-{i:02}"),
            ..Default::default()
        });
        let url = serve(site.clone()).await;
        yaml_sites.push_str(&format!("  - name: {}\n    url: {url}\n", site.name));
        sites.push(site);
    }
    let port = meridian_tests::process::free_port();
    let auth = AuthConfig {
        algorithm: "ES256".into(),
        issuer: "bench".into(),
        audience: "bench".into(),
        public_key_file: Some(keys.jwt_public()),
        hmac_secret_env: None,
        signing_key_file: Some(keys.jwt_private()),
        leeway_seconds: 5,
    };
    let config = dir.path().join("master.yaml");
    std::fs::write(
        &config,
        format!(
            "master:\n  listen: 127.0.0.1:{port}\n  data_dir: {}\n  poll_interval_seconds: {}\n  catalog_refresh_seconds: 60\n\
             auth:\n  algorithm: ES256\n  issuer: bench\n  audience: bench\n  public_key_file: {}\nlog:\n  level: warn\nsites:\n{yaml_sites}",
            dir.path().join("m").display(),
            a.poll,
            keys.jwt_public().display()
        ),
    )
    .unwrap();
    let mut master = std::process::Command::new(meridian_tests::process::master_binary())
        .args(["serve", "--config", config.to_str().unwrap()])
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("start the master");
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let token = mint(&auth, "bench", &[Role::Operator], 3600).unwrap();
    // Ready, and the catalog holds every site's data source.
    let all: Vec<String> = sites.iter().map(|s| format!("ds_{}", s.name)).collect();
    let start = Instant::now();
    loop {
        let n = match http
            .get(format!("{base}/api/v1/data_sources"))
            .bearer_auth(&token)
            .send()
            .await
        {
            Ok(r) if r.status() == 200 => r
                .json::<Vec<serde_json::Value>>()
                .await
                .map(|v| v.len())
                .unwrap_or(0),
            _ => 0,
        };
        if n == a.sites {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the master never learned the catalog"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Jobs over every site, then wait until every site holds every job.
    let created = Instant::now();
    let mut ids = Vec::new();
    for i in 0..a.jobs {
        let body = serde_json::json!({"name": format!("bench {i}"), "data_sources": all});
        let r = http
            .post(format!("{base}/api/v1/jobs"))
            .bearer_auth(&token)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        let v: serde_json::Value = r.json().await.unwrap();
        ids.push(v["job_id"].as_str().unwrap().to_owned());
    }
    let create_s = created.elapsed().as_secs_f64();
    let want = (a.jobs * a.sites) as u64;
    while sites
        .iter()
        .map(|s| s.start_calls.load(Ordering::Relaxed))
        .sum::<u64>()
        < want
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let dispatched_s = created.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs_f64(a.poll * 3.0)).await;

    // Steady state: every site changes `changes` statuses per second.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    for s in &sites {
        let (s, ids, stop, n) = (s.clone(), ids.clone(), stop.clone(), a.changes);
        tokio::spawn(async move {
            let mut k = 0usize;
            while !stop.load(Ordering::Relaxed) {
                for _ in 0..n {
                    s.touch(&ids[k % ids.len()]).await;
                    k += 7;
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
    }
    let calls0: u64 = sites
        .iter()
        .map(|s| s.status_calls.load(Ordering::Relaxed))
        .sum();
    let cpu0 = cpu_seconds(master.id());
    let t0 = Instant::now();
    // Meanwhile: status change at one site → visible in the unified view.
    let mut lags = Vec::new();
    let mut probe = 0usize;
    while t0.elapsed() < Duration::from_secs_f64(a.poll * a.rounds as f64) {
        let site = &sites[probe % sites.len()];
        let job = &ids[(probe * 13) % ids.len()];
        let before = site.jobs.lock().await[job].tasks.total;
        site.touch(job).await;
        let changed = Instant::now();
        loop {
            let r = http
                .get(format!("{base}/api/v1/jobs/{job}"))
                .bearer_auth(&token)
                .send()
                .await
                .unwrap();
            let v: serde_json::Value = r.json().await.unwrap();
            let seen = v["sites"]
                .as_array()
                .unwrap()
                .iter()
                .find(|x| x["site"] == site.name.as_str())
                .unwrap()["tasks_total"]
                .as_i64()
                .unwrap_or(0);
            if seen > before {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        lags.push(changed.elapsed().as_secs_f64());
        probe += 1;
        tokio::time::sleep(Duration::from_millis(137)).await;
    }
    let elapsed = t0.elapsed().as_secs_f64();
    let cpu = cpu_seconds(master.id()) - cpu0;
    let calls: u64 = sites
        .iter()
        .map(|s| s.status_calls.load(Ordering::Relaxed))
        .sum::<u64>()
        - calls0;
    stop.store(true, Ordering::Relaxed);
    let _ = master.kill();
    let _ = master.wait();

    let rounds = elapsed / a.poll;
    lags.sort_by(|x, y| x.partial_cmp(y).unwrap());
    println!(
        "master polling: {} sites x {} active jobs ({} site-jobs), poll interval {:.2} s, {} status changes/site/s",
        a.sites,
        a.jobs,
        a.jobs * a.sites,
        a.poll,
        a.changes
    );
    println!(
        "  create {} jobs                  {:>8.2} s  ({:.0} jobs/s)",
        a.jobs,
        create_s,
        a.jobs as f64 / create_s
    );
    println!(
        "  all {} start_job calls answered {:>8.2} s after the first create",
        want, dispatched_s
    );
    println!(
        "  measured                        {:>8.2} s  (~{:.1} rounds)",
        elapsed, rounds
    );
    println!(
        "  status requests per round        {:>8.2}  ({:.2} per site)",
        calls as f64 / rounds,
        calls as f64 / rounds / a.sites as f64
    );
    println!(
        "  master CPU per round             {:>8.1} ms ({:.1} % of one core)",
        cpu / rounds * 1000.0,
        cpu / elapsed * 100.0
    );
    println!(
        "  change → unified view            p50 {:.3} s  p99 {:.3} s  max {:.3} s  ({} probes; {:.2} / {:.2} poll intervals)",
        pct(&lags, 0.5),
        pct(&lags, 0.99),
        lags.last().copied().unwrap_or(f64::NAN),
        lags.len(),
        pct(&lags, 0.5) / a.poll,
        pct(&lags, 0.99) / a.poll
    );
}
