//! Profiling aid: the candidate-line pass alone and the whole text scanner, in memory, over
//! a generated corpus kept in a directory between runs (so that `valgrind --tool=
//! callgrind` can count instructions of the scan, and only of the scan, run after run).
//!
//! `cargo run --release -p meridian-tests --example candidate_pass -- [MB] [DIR]`
//! `ONLY=candidates|scanner` runs one of the two.
use std::time::Instant;

use meridian_scan::classify::{TextScanner, built_in, candidates};

fn main() {
    let mb: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(50);
    let dir = std::path::PathBuf::from(
        std::env::args()
            .nth(2)
            .unwrap_or("/tmp/candidate-corpus".into()),
    );
    if !dir.exists() {
        std::fs::create_dir_all(&dir).unwrap();
        meridian_tests::corpus::generate(&dir, 2026, mb * 10, 2000);
    }
    let dir = &dir;
    let mut text = String::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(d).unwrap().flatten() {
            if e.path().is_dir() {
                dirs.push(e.path());
            } else {
                text.push_str(&std::fs::read_to_string(e.path()).unwrap_or_default());
            }
        }
    }
    let windows: Vec<&str> = text
        .as_bytes()
        .chunks(1 << 20)
        .map(|c| std::str::from_utf8(c).unwrap_or(""))
        .collect();
    let size = text.len() as f64 / 1048576.0;
    let only = std::env::var("ONLY").unwrap_or_default();
    let mut out = Vec::new();
    let mut lines = 0;
    if only != "scanner" {
        let t = Instant::now();
        for w in &windows {
            out.clear();
            candidates::candidate_lines(w.as_bytes(), &mut out);
            lines += out.len();
        }
        println!(
            "{size:.0} MB; candidate pass {:.1} MB/s, {lines} candidate lines",
            size / t.elapsed().as_secs_f64()
        );
    }
    if only == "candidates" {
        return;
    }
    let cs = built_in();
    let t = Instant::now();
    for w in &windows {
        let mut s = TextScanner::new(&cs, 1);
        s.scan(w, 1);
        s.finish();
    }
    println!("whole scanner {:.1} MB/s", size / t.elapsed().as_secs_f64());
}
