//! One job over one data source, timed as a user sees it: from `start_job` until the
//! job's state reads `COMPLETED`, on a single-process site.
//!
//! - **Many small objects**: a `synthetic` source of `--objects` objects (default
//!   50,000) with `work_ms: 0`, so that what is measured is discovery, the pipeliner,
//!   leasing, completion and finishing; 8 in-process workers; on SQLite and on
//!   PostgreSQL (a throwaway cluster with durable commits, or `DATABASE_URL`).
//!   Printed as objects/s.
//! - **Scanning**: a seeded text corpus (`--mb`, default 500, in `--files` files,
//!   default 2,000) on a site with its default worker count over SQLite, the job
//!   limited to the four classifiers email, payment_card, us_ssn and
//!   aws_access_key_id, then with every classifier; warm page cache; the counts
//!   checked against the seeded ones. Printed as MB/s, next to `rg --count-matches`
//!   with the same patterns in the same run (1 and 2 threads) when `rg` is on PATH.
//!
//! `cargo bench -p meridian-tests --bench end_to_end -- [--objects 50000]
//!  [--backend sqlite|postgres|both] [--threads 8] [--runs 1] [--mb 500]
//!  [--files 2000] [--scan-threads 8] [--dir PATH] [--no-scan] [--no-objects]`

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use meridian_tests::corpus::{self, RG_PATTERNS};
use meridian_tests::pg::{Cluster, ClusterOptions, replace_database};
use meridian_tests::site::{TestSite, findings_by_classifier};
use serde_json::{Value, json};
use sqlx::Connection;

struct Args {
    objects: u64,
    backends: Vec<&'static str>,
    threads: u32,
    runs: u32,
    mb: u64,
    files: usize,
    scan_threads: u32,
    dir: std::path::PathBuf,
    scan: bool,
    small_objects: bool,
}

fn args() -> Args {
    let mut a = Args {
        objects: 50_000,
        backends: vec!["sqlite", "postgres"],
        threads: 8,
        runs: 1,
        mb: 500,
        files: 2_000,
        // The site's default (`worker.in_process_thread_count`).
        scan_threads: 8,
        dir: std::env::temp_dir(),
        scan: true,
        small_objects: true,
    };
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < argv.len() {
        let value = argv.get(i + 1).cloned().unwrap_or_default();
        match argv[i].as_str() {
            "--objects" => a.objects = value.parse().expect("--objects N"),
            "--threads" => a.threads = value.parse().expect("--threads N"),
            "--runs" => a.runs = value.parse().expect("--runs N"),
            "--mb" => a.mb = value.parse().expect("--mb N"),
            "--files" => a.files = value.parse().expect("--files N"),
            "--scan-threads" => a.scan_threads = value.parse().expect("--scan-threads N"),
            "--dir" => a.dir = value.into(),
            "--backend" => {
                a.backends = match value.as_str() {
                    "sqlite" => vec!["sqlite"],
                    "postgres" => vec!["postgres"],
                    _ => vec!["sqlite", "postgres"],
                }
            }
            "--no-scan" | "--no-objects" => {
                if argv[i] == "--no-scan" {
                    a.scan = false
                } else {
                    a.small_objects = false
                }
                i += 1;
                continue;
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

/// The classifiers of the scan job.
const FOUR: &[&str] = &["email", "payment_card", "us_ssn", "aws_access_key_id"];

/// Starts `body` as a job on `site` and waits until it is terminal; the seconds from
/// the request to the first read that shows it finished. Waits on `GET /jobs`, whose
/// summaries count nothing, so that the poll itself costs the site little; the full
/// status is read once, after the clock stops.
async fn timed_job(site: &TestSite, body: Value) -> (f64, Value) {
    let start = Instant::now();
    let job = site.start_job(body).await;
    site.wait_listed_final(&job, Duration::from_millis(10))
        .await;
    let secs = start.elapsed().as_secs_f64();
    (secs, site.status(&job).await)
}

/// A fresh database of `backend`: a file in `dir`, or a new database on `pg`.
async fn fresh(backend: &str, dir: &Path, pg: Option<&str>, tag: &str) -> String {
    if backend == "sqlite" {
        return format!("sqlite://{}", dir.join(format!("{tag}.db")).display());
    }
    let admin = pg.expect("a PostgreSQL server");
    let name = format!("meridian_e2e_{tag}_{}", uuid::Uuid::new_v4().simple());
    let mut c = sqlx::PgConnection::connect(admin).await.expect("connect");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut c)
        .await
        .expect("create database");
    let _ = c.close().await;
    replace_database(admin, &name)
}

/// The synthetic job on a new site over `url`; objects per second.
async fn small_objects(url: &str, a: &Args) -> f64 {
    let yaml = format!(
        "worker:\n  in_process_thread_count: {}\ndata_sources:\n  - id: synth\n    kind: synthetic\n    objects: {}\n    work_ms: 0\n",
        a.threads, a.objects
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let site = TestSite::start_on(url, &yaml, Default::default(), dir).await;
    let (secs, status) = timed_job(
        &site,
        json!({ "name": "small-objects", "data_sources": ["synth"] }),
    )
    .await;
    assert_eq!(status["state"], "COMPLETED", "{status}");
    let n = a.objects as i64;
    assert_eq!(status["objects"]["discovered"], n, "{status}");
    assert_eq!(status["objects"]["by_outcome"]["COMPLETE"], n, "{status}");
    site.stop().await.expect("site stops");
    a.objects as f64 / secs
}

/// The scan job on a new SQLite site; seconds, and the peak resident memory of this
/// process (the site and the bench around it) while the job ran, in MB.
async fn scan_job(
    root: &Path,
    threads: u32,
    classifiers: Option<&[&str]>,
    expected: &BTreeMap<String, i64>,
) -> (f64, f64) {
    let yaml = format!(
        "worker:\n  in_process_thread_count: {threads}\ndata_sources:\n  - id: corpus\n    kind: filesystem\n    root: {}\n",
        root.display()
    );
    let site = TestSite::start(meridian_tests::Backend::Sqlite, &yaml).await;
    let mut body = json!({ "name": "scan", "data_sources": ["corpus"] });
    if let Some(c) = classifiers {
        body["options"] = json!({ "classifiers": c });
    }
    reset_peak_rss();
    let (secs, status) = timed_job(&site, body).await;
    let peak = peak_rss_mb();
    assert_eq!(status["state"], "COMPLETED", "{status}");
    assert_eq!(
        &findings_by_classifier(&status),
        expected,
        "the counts must be exact"
    );
    site.stop().await.expect("site stops");
    (secs, peak)
}

/// `VmHWM` starts again from the current resident set (Linux: `clear_refs` 5).
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// `rg --count-matches` with the patterns of `names` over `root`; seconds, or None
/// when rg is not on PATH.
fn ripgrep(root: &Path, threads: u32, names: &[&str]) -> Option<f64> {
    let mut cmd = Command::new("rg");
    cmd.args(["--no-config", "--no-ignore", "--hidden", "--count-matches"])
        .arg("-j")
        .arg(threads.to_string());
    for (_, p) in RG_PATTERNS.iter().filter(|(n, _)| names.contains(n)) {
        cmd.arg("-e").arg(p);
    }
    cmd.arg(root).stdout(Stdio::null()).stderr(Stdio::null());
    let start = Instant::now();
    let status = cmd.status().ok()?;
    // rg exits 1 when nothing matched, 2 on error.
    (status.code() != Some(2)).then(|| start.elapsed().as_secs_f64())
}

/// Reads every file once so that the timed runs find them in the page cache.
fn warm(root: &Path) {
    let _ = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "find '{}' -type f -exec cat {{}} + > /dev/null",
            root.display()
        ))
        .status();
}

fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

async fn run_small_objects(a: &Args) {
    let cluster = (a.backends.contains(&"postgres") && std::env::var("DATABASE_URL").is_err())
        .then(|| {
            Cluster::start(ClusterOptions {
                durable: true,
                ..ClusterOptions::default()
            })
        });
    let pg = std::env::var("DATABASE_URL")
        .ok()
        .or_else(|| cluster.as_ref().map(|c| c.url.clone()));
    println!(
        "small objects: {} synthetic objects, work_ms 0, {} in-process workers",
        a.objects, a.threads
    );
    let dir = tempfile::tempdir().expect("temp dir");
    for run in 0..a.runs {
        for backend in &a.backends {
            let url = fresh(backend, dir.path(), pg.as_deref(), &format!("objects{run}")).await;
            let rate = small_objects(&url, a).await;
            println!("  {backend:<9} {rate:>9.0} objects/s   (load {})", load());
        }
    }
}

async fn run_scan(a: &Args) {
    let dir = tempfile::tempdir_in(&a.dir).expect("corpus dir");
    let files = a.files.max(1);
    // A line is about 67 bytes and a file gets 3/4 of `lines_per_file` on average.
    let per_file = a.mb * 1024 * 1024 / files as u64;
    let lines_per_file = (per_file * 4 / 3 / 67).max(2) as usize;
    let t = Instant::now();
    let corpus = corpus::generate(dir.path(), 2026, files, lines_per_file);
    let mb = corpus.bytes as f64 / (1024.0 * 1024.0);
    println!(
        "scan: {} files, {mb:.0} MB, generated in {:.1} s; site over SQLite with {} worker threads; warm page cache",
        corpus.files,
        t.elapsed().as_secs_f64(),
        a.scan_threads
    );
    let rg = Command::new("rg").arg("--version").output().is_ok();
    if !rg {
        println!("  rg is not on PATH (apt-get install ripgrep): no reference figure");
    }
    let all: Vec<&str> = RG_PATTERNS.iter().map(|(n, _)| *n).collect();
    warm(dir.path());
    for run in 0..a.runs {
        for (label, names, option) in [
            ("four classifiers", FOUR, Some(FOUR)),
            ("all classifiers", all.as_slice(), None),
        ] {
            let expected: BTreeMap<String, i64> = corpus
                .expected
                .iter()
                .filter(|(k, _)| names.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), *v))
                .collect();
            let (secs, peak) = scan_job(dir.path(), a.scan_threads, option, &expected).await;
            let site = mb / secs;
            let mut line = format!(
                "  run {run} {label:<17} site {site:>7.1} MB/s ({secs:.2} s, peak RSS {peak:.0} MB)"
            );
            if rg {
                for j in [1, 2] {
                    if let Some(r) = ripgrep(dir.path(), j, names) {
                        let rate = mb / r;
                        line +=
                            &format!("   rg -j{j} {rate:>7.1} MB/s → site/rg {:.2}", site / rate);
                    }
                }
            }
            println!("{line}   (load {})", load());
        }
    }
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    meridian_tests::init();
    let a = args();
    println!("meridian end to end (load average at start {})", load());
    if a.small_objects {
        run_small_objects(&a).await;
    }
    if a.scan {
        run_scan(&a).await;
    }
}
