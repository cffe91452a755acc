//! Scan throughput of a single-process site, end to end (discovery, tasks,
//! extraction, classification, findings written to SQLite), over a generated corpus
//! of mixed text files, at 1..N worker threads, with a cold and a warm file cache;
//! and `rg` (ripgrep) over the same files with an equivalent pattern set, in the same
//! run, when it is on PATH: counting every match (`--count-matches`, the site's work)
//! and, for reference, counting matching lines (`-c`, which stops at a line's first
//! match).
//!
//! `cargo bench -p meridian-tests --bench scan_throughput -- [--mb 500]
//!  [--threads 1,2] [--dir /path/for/the/corpus] [--no-site]`
//!
//! The corpus goes to a temporary directory (under `--dir`, default the system temp
//! directory) and is deleted afterwards. The cold runs drop the page cache with
//! `echo 3 > /proc/sys/vm/drop_caches`, which needs root; without it the bench says
//! so and the "cold" numbers are warm.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use meridian_tests::Backend;
use meridian_tests::corpus;
use meridian_tests::site::{TestSite, findings_by_classifier};
use serde_json::json;

struct Args {
    mb: u64,
    threads: Vec<u32>,
    dir: std::path::PathBuf,
    /// Only the in-memory and connector figures, no site and no rg (`--no-site`).
    no_site: bool,
}

fn args() -> Args {
    let mut a = Args {
        mb: 500,
        threads: vec![1, 2],
        dir: std::env::temp_dir(),
        no_site: false,
    };
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < argv.len() {
        let value = argv.get(i + 1).cloned().unwrap_or_default();
        match argv[i].as_str() {
            "--mb" => a.mb = value.parse().expect("--mb N"),
            "--threads" => {
                a.threads = value
                    .split(',')
                    .map(|t| t.parse().expect("--threads 1,2,4"))
                    .collect()
            }
            "--dir" => a.dir = value.into(),
            "--no-site" => {
                a.no_site = true;
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

fn drop_caches() -> bool {
    let _ = Command::new("sync").status();
    std::fs::OpenOptions::new()
        .write(true)
        .open("/proc/sys/vm/drop_caches")
        .and_then(|mut f| f.write_all(b"3\n"))
        .is_ok()
}

/// One end-to-end job; returns the seconds from start_job to COMPLETED.
async fn scan(root: &Path, threads: u32, expected: &corpus::Corpus) -> f64 {
    let yaml = format!(
        "worker:\n  in_process_thread_count: {threads}\ndata_sources:\n  - id: bench\n    kind: filesystem\n    root: {}\n",
        root.display()
    );
    let site = TestSite::start(Backend::Sqlite, &yaml).await;
    let start = Instant::now();
    let job = site
        .start_job(json!({ "name": "bench", "data_sources": ["bench"] }))
        .await;
    // The job list, not the status, so that polling costs the scan nothing.
    site.wait_listed_final(&job, Duration::from_millis(50))
        .await;
    let secs = start.elapsed().as_secs_f64();
    let status = site.status(&job).await;
    assert_eq!(status["state"], "COMPLETED", "{status}");
    assert_eq!(
        findings_by_classifier(&status),
        expected.expected,
        "the bench must also be right"
    );
    site.stop().await.expect("site stops");
    secs
}

/// What rg is asked to report.
#[derive(Clone, Copy)]
enum RgMode {
    /// `--count-matches`: every match, as the site counts every value it finds. The
    /// equivalent of the site's work (still less: rg neither finds a value inside
    /// another pattern's match nor validates, checks context or masks).
    EveryMatch,
    /// `-c`: lines with a match; rg stops reading a line at its first match, so on a
    /// dense corpus it skips most values. Printed as the fastest thing rg can do here.
    MatchingLines,
}

impl RgMode {
    fn flag(self) -> &'static str {
        match self {
            RgMode::EveryMatch => "--count-matches",
            RgMode::MatchingLines => "-c",
        }
    }
}

/// `rg` over the corpus with `threads` threads; seconds, or None without rg.
fn ripgrep(root: &Path, threads: u32, mode: RgMode) -> Option<f64> {
    let mut cmd = Command::new("rg");
    cmd.args(["--no-config", "--no-ignore", "--hidden", mode.flag(), "-j"])
        .arg(threads.to_string());
    for (_, p) in corpus::RG_PATTERNS {
        cmd.arg("-e").arg(p);
    }
    cmd.arg(root).stdout(Stdio::null()).stderr(Stdio::null());
    let start = Instant::now();
    let status = cmd.status().ok()?;
    // rg exits 1 when nothing matched, 2 on error.
    (status.code() != Some(2)).then(|| start.elapsed().as_secs_f64())
}

/// Per-classifier cost: each built-in classifier alone over the first `mb` MB of the
/// corpus held in memory, in 1 MiB windows (no I/O, no site).
fn per_classifier(root: &Path, mb: usize) {
    let mut text = String::new();
    for entry in walk(root) {
        if text.len() >= mb << 20 {
            break;
        }
        text.push_str(&std::fs::read_to_string(entry).unwrap_or_default());
    }
    let windows: Vec<&str> = text
        .as_bytes()
        .chunks(1 << 20)
        .map(|c| std::str::from_utf8(c).unwrap_or(""))
        .collect();
    let size = text.len() as f64 / (1024.0 * 1024.0);
    // What the site runs: one candidate-line pass, then each classifier on its lines only.
    let all = meridian_scan::classify::built_in();
    let t = Instant::now();
    let mut rows = 0;
    for w in &windows {
        let mut scanner = meridian_scan::classify::TextScanner::new(&all, 1);
        scanner.scan(w, 1);
        rows += scanner.finish().len();
    }
    println!(
        "  all built-ins (candidate pass + their lines) {:>8.1} MB/s in memory ({rows} rows)",
        size / t.elapsed().as_secs_f64()
    );
    // Each classifier alone over all of the text, for comparison.
    for c in meridian_scan::classify::built_in() {
        let mut out = Vec::new();
        let t = Instant::now();
        for w in &windows {
            out.clear();
            c.scan(w, &mut out);
        }
        println!(
            "  classifier {:<24} {:>8.1} MB/s in memory",
            c.name(),
            size / t.elapsed().as_secs_f64()
        );
    }
}

/// The connector alone, one thread, no site: read, extract, classify every file.
fn connector_only(root: &Path, mb: f64, files: usize) {
    use meridian_config::FilesystemSource;
    use meridian_scan::{classify, extract::ExtractSettings, filesystem};
    let src = FilesystemSource {
        id: "bench".into(),
        description: String::new(),
        root: root.to_owned(),
        include: vec!["**/*".into()],
        exclude: vec![],
        max_file_size_mb: 256,
        hidden_files: true,
    };
    let cs = classify::built_in();
    let abort = std::sync::atomic::AtomicBool::new(false);
    let t = Instant::now();
    let mut findings = 0usize;
    for (i, path) in walk(root).iter().enumerate() {
        let key = path
            .strip_prefix(root)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let scan = filesystem::process(
            &src,
            &key,
            i as i64,
            None,
            &cs,
            ExtractSettings::default(),
            &abort,
        )
        .expect("scan");
        findings += scan.findings.len();
    }
    line(
        "connector alone, 1 thread, warm",
        t.elapsed().as_secs_f64(),
        mb,
        files,
    );
    println!("  ({findings} finding rows)");
}

fn walk(root: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut dirs = vec![root.to_owned()];
    while let Some(d) = dirs.pop() {
        let mut entries: Vec<_> = std::fs::read_dir(&d)
            .map(|r| r.filter_map(Result::ok).map(|e| e.path()).collect())
            .unwrap_or_default();
        entries.sort();
        for p in entries {
            if p.is_dir() {
                dirs.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}

fn line(label: &str, secs: f64, mb: f64, files: usize) {
    println!(
        "{label:<34} {secs:>8.2} s  {:>8.1} MB/s  {:>9.0} files/s",
        mb / secs,
        files as f64 / secs
    );
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    meridian_tests::init();
    let a = args();
    let dir = tempfile::tempdir_in(&a.dir).expect("corpus dir");
    // Files of about 100 KB: 1,500 lines of ~65 bytes on average.
    let files = (a.mb * 1024 * 1024 / (100 * 1024)).max(1) as usize;
    let t = Instant::now();
    let corpus = corpus::generate(dir.path(), 2026, files, 2000);
    let mb = corpus.bytes as f64 / (1024.0 * 1024.0);
    println!(
        "corpus: {} files, {mb:.0} MB, generated in {:.1} s under {}",
        corpus.files,
        t.elapsed().as_secs_f64(),
        a.dir.display()
    );
    per_classifier(dir.path(), 20);
    connector_only(dir.path(), mb, corpus.files);
    if a.no_site {
        return;
    }
    let can_drop = drop_caches();
    if !can_drop {
        println!("note: cannot drop the page cache (needs root): cold runs are warm");
    }
    for &threads in &a.threads {
        drop_caches();
        let cold = scan(dir.path(), threads, &corpus).await;
        line(
            &format!("meridian {threads} thread(s), cold"),
            cold,
            mb,
            corpus.files,
        );
        let warm = scan(dir.path(), threads, &corpus).await;
        line(
            &format!("meridian {threads} thread(s), warm"),
            warm,
            mb,
            corpus.files,
        );
        drop_caches();
        let Some(rg_cold) = ripgrep(dir.path(), threads, RgMode::EveryMatch) else {
            println!("rg not on PATH: no reference");
            continue;
        };
        line(
            &format!("rg -j{threads} --count-matches, cold"),
            rg_cold,
            mb,
            corpus.files,
        );
        for mode in [RgMode::EveryMatch, RgMode::MatchingLines] {
            if let Some(rg_warm) = ripgrep(dir.path(), threads, mode) {
                let flag = mode.flag();
                line(
                    &format!("rg -j{threads} {flag}, warm"),
                    rg_warm,
                    mb,
                    corpus.files,
                );
                println!(
                    "meridian/rg {flag} warm throughput at {threads} thread(s): {:.2}",
                    rg_warm / warm
                );
            }
        }
    }
}
