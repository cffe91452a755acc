//! `site.object_keys: hashed`: for sites whose file paths are themselves sensitive,
//! findings name objects by a keyed hash; the path and the secret never leave.

use std::time::Duration;

use meridian_tests::process::{SiteProcess, free_port, run_to_exit};
use serde_json::{Value, json};

const SECRET: &str = "a-site-secret-of-more-than-32-bytes-0123";

fn config(dir: &std::path::Path, share: &std::path::Path, keys: &str) -> std::path::PathBuf {
    let path = dir.join("site.yaml");
    std::fs::write(
        &path,
        format!(
            "node:\n  data_dir: {}\nsite:\n  object_keys: {keys}\ndata_sources:\n  - id: ds_hr\n    kind: filesystem\n    root: {}\n",
            dir.join("data").display(),
            share.display()
        ),
    )
    .unwrap();
    path
}

async fn findings(keys: &str) -> Vec<Value> {
    let dir = tempfile::tempdir().unwrap();
    let share = dir.path().join("share");
    std::fs::create_dir_all(share.join("payroll")).unwrap();
    std::fs::write(
        share.join("payroll/ceo-salary.csv"),
        "ada@example.com\n078-05-1120\n",
    )
    .unwrap();
    std::fs::write(share.join("notes.txt"), "bob@example.org\n").unwrap();
    let cfg = config(dir.path(), &share, keys);
    let site = SiteProcess::start_with_env(
        &cfg,
        free_port(),
        &dir.path().join("site.log"),
        &[("MERIDIAN_OBJECT_KEY_SECRET", SECRET)],
    )
    .await;
    let http = reqwest::Client::new();
    let job: Value = http
        .post(format!("{}/start_job", site.base))
        .json(&json!({ "name": "keys", "data_sources": ["ds_hr"] }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let job = job["job_id"].as_str().unwrap().to_owned();
    let started = std::time::Instant::now();
    loop {
        let s: Value = http
            .get(format!("{}/get_job_status/{job}", site.base))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if s["state"] == "COMPLETED" {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "{s}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let text = http
        .get(format!("{}/jobs/{job}/findings?limit=100", site.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!text.contains(SECRET));
    let page: Value = serde_json::from_str(&text).unwrap();
    page["items"].as_array().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hashed_object_keys_hide_the_path_and_group_one_objects_findings() {
    let items = findings("hashed").await;
    assert_eq!(items.len(), 3, "{items:?}");
    for f in &items {
        let object = f["object"].as_str().unwrap();
        assert!(object.starts_with("hmac-sha256:"), "{object}");
        assert_eq!(object.len(), "hmac-sha256:".len() + 32, "{object}");
        assert!(!object.contains("payroll") && !object.contains("notes"));
    }
    let of = |classifier: &str| {
        items
            .iter()
            .filter(|f| f["classifier"] == classifier)
            .map(|f| f["object"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    let (emails, ssns) = (of("email"), of("us_ssn"));
    assert_eq!(emails.len(), 2);
    assert_eq!(ssns.len(), 1);
    // The SSN and one e-mail are in the same file: the same hash.
    assert!(emails.contains(&ssns[0]), "{emails:?} {ssns:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_object_keys_are_the_paths() {
    let items = findings("plain").await;
    let mut objects: Vec<&str> = items
        .iter()
        .map(|f| f["object"].as_str().unwrap())
        .collect();
    objects.sort();
    objects.dedup();
    assert_eq!(objects, ["notes.txt", "payroll/ceo-salary.csv"]);
}

#[test]
fn hashed_object_keys_without_a_secret_stop_the_site_naming_the_variable() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), dir.path(), "hashed");
    let (code, err) = run_to_exit(
        &["--config", cfg.to_str().unwrap()],
        &[("MERIDIAN_OBJECT_KEY_SECRET", "q7z-tiny")],
        Duration::from_secs(60),
    );
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("site.object_key_secret_env"), "{err}");
    assert!(err.contains("MERIDIAN_OBJECT_KEY_SECRET"), "{err}");
    assert!(!err.contains("q7z-tiny"), "the value is never shown: {err}");
}
