//! The canary test: unique raw values are seeded in files of several types, a real
//! site process scans them with debug logging, and then the site's SQLite files, its
//! log and every API response are searched for the raw values. None may appear:
//! only masked samples leave the worker.

use std::path::Path;
use std::time::Duration;

use meridian_tests::documents;
use meridian_tests::process::{SiteProcess, free_port};
use serde_json::{Value, json};

/// Values that occur nowhere else, with the forms a leak could take.
const CANARIES: &[&str] = &[
    "canary.zq7xw@example.com",
    "4929 7310 2846 5524",
    "4929731028465524",
    "219-83-4417",
    "DE75512108001245126199",
    "wQz8Kd2LpX7vN4mR9sT1yB6hJ3fG5cA0eU2iO8nM",
    "+44 20 7946 8317",
    "10.231.77.19",
    "eyJzdWIiOiJjYW5hcnkiLCJpYXQiOjE3MDAwMDAwMDB9",
    "AKIAZQ7XW3CANARY2026",
];

fn canary_lines() -> Vec<String> {
    vec![
        "contact canary.zq7xw@example.com for the invoice".into(),
        "card 4929 7310 2846 5524 expires soon".into(),
        "ssn 219-83-4417 on file".into(),
        "iban DE75512108001245126199 for payroll".into(),
        "aws_secret_access_key=wQz8Kd2LpX7vN4mR9sT1yB6hJ3fG5cA0eU2iO8nM".into(),
        "phone +44 20 7946 8317 desk".into(),
        "host 10.231.77.19 in the rack".into(),
        "token eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJjYW5hcnkiLCJpYXQiOjE3MDAwMDAwMDB9.q9Zx4Yt7Wv2Ls8Kp1Nm6Rb3Cd5Fg0Hj".into(),
        "key AKIAZQ7XW3CANARY2026 rotated".into(),
    ]
}

fn assert_clean(what: &str, haystack: &[u8]) {
    let text = String::from_utf8_lossy(haystack);
    for c in CANARIES {
        assert!(!text.contains(c), "raw value `{c}` found in {what}");
    }
}

async fn get(http: &reqwest::Client, base: &str, path: &str) -> (Value, Vec<u8>) {
    let body = http
        .get(format!("{base}{path}"))
        .send()
        .await
        .expect("request")
        .bytes()
        .await
        .expect("body")
        .to_vec();
    assert_clean(&format!("GET {path}"), &body);
    (serde_json::from_slice(&body).unwrap_or(Value::Null), body)
}

#[test]
fn the_canary_lines_carry_every_canary() {
    let all = canary_lines().join("\n");
    for c in CANARIES {
        // The compact card number is the grouped one without its spaces.
        assert!(all.replace(' ', "").contains(&c.replace(' ', "")), "{c}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_raw_value_reaches_the_database_logs_or_api() {
    meridian_tests::init();
    let dir = tempfile::tempdir().unwrap();
    let share = dir.path().join("share");
    std::fs::create_dir_all(&share).unwrap();
    let lines = canary_lines();
    std::fs::write(share.join("notes.txt"), lines.join("\n")).unwrap();
    std::fs::write(share.join("notes.pdf"), documents::pdf(&lines)).unwrap();
    std::fs::write(share.join("notes.docx"), documents::docx(&lines)).unwrap();
    std::fs::write(share.join("notes.xlsx"), documents::xlsx(&lines)).unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let config = dir.path().join("site.yaml");
    std::fs::write(
        &config,
        format!(
            "node:\n  data_dir: {}\nlog:\n  level: debug\nworker:\n  in_process_thread_count: 2\n  global_cpu_threshold_percent: 100\ndata_sources:\n  - id: share\n    kind: filesystem\n    root: {}\n",
            data.display(),
            share.display()
        ),
    )
    .unwrap();
    let log = dir.path().join("site.log");
    let site = SiteProcess::start(&config, free_port(), &log).await;
    let http = reqwest::Client::new();
    let started = http
        .post(format!("{}/start_job", site.base))
        .json(&json!({ "name": "canary", "data_sources": ["share"] }))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_clean("POST /start_job", &started);
    let job: Value = serde_json::from_slice(&started).unwrap();
    let job = job["job_id"].as_str().unwrap().to_owned();
    let start = std::time::Instant::now();
    let status = loop {
        let (s, _) = get(&http, &site.base, &format!("/get_job_status/{job}")).await;
        if s["state"] == "COMPLETED" {
            break s;
        }
        assert!(start.elapsed() < Duration::from_secs(120), "{s}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // Each of the nine values was found in each of the four files.
    assert_eq!(status["findings"]["total"], 36, "{status}");
    get(
        &http,
        &site.base,
        &format!("/jobs/{job}/findings?limit=1000"),
    )
    .await;
    for path in [
        "/jobs",
        "/job_statuses?since_version=0",
        "/data_sources",
        "/workers",
        "/health",
        "/metrics",
    ] {
        let resp = http
            .get(format!("{}{path}", site.base))
            .send()
            .await
            .unwrap();
        assert_clean(path, &resp.bytes().await.unwrap());
    }
    site.signal("TERM");
    let mut site = site;
    site.wait_exit(Duration::from_secs(30));
    assert_clean("the site log", &std::fs::read(&log).unwrap());
    let mut db_files = 0;
    for entry in std::fs::read_dir(&data).unwrap() {
        let path = entry.unwrap().path();
        assert_clean(&path.display().to_string(), &std::fs::read(&path).unwrap());
        db_files += 1;
    }
    assert!(db_files >= 1 && Path::new(&data.join("site.db")).exists());
    // The scanned files themselves do hold the values: the search can fail.
    assert!(
        String::from_utf8_lossy(&std::fs::read(share.join("notes.txt")).unwrap())
            .contains(CANARIES[0])
    );
}
