//! The `filesystem` connector inside a whole site: a discovery task interrupted after
//! a batch and retried does not duplicate objects, tasks or findings (on both
//! stores), and nothing outside the root is read through symlinks, while hidden
//! files follow the data source's setting.

use std::time::Duration;

use meridian_service::failpoints::Failpoints;
use meridian_tests::Backend;
use meridian_tests::corpus;
use meridian_tests::site::{TestSite, findings_by_classifier};
use serde_json::json;

const LONG: Duration = Duration::from_secs(120);

meridian_tests::on_both!(a_retried_discovery_does_not_duplicate_objects);

async fn a_retried_discovery_does_not_duplicate_objects(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let corpus = corpus::generate(dir.path(), 11, 60, 20);
    let yaml = format!(
        "connector:\n  discovery_batch_write_size: 7\ndata_sources:\n  - id: share\n    kind: filesystem\n    root: {}\n",
        corpus.root.display()
    );
    let failpoints = Failpoints::parse("discovery_batch=error*2").unwrap();
    let site = TestSite::start_with(backend, &yaml, failpoints).await;
    let job = site
        .start_job(json!({ "name": "retried", "data_sources": ["share"] }))
        .await;
    let status = site.wait_terminal(&job, LONG).await;
    assert_eq!(status["state"], "COMPLETED", "{status}");
    // The discovery task ran three times: both interruptions were used up.
    assert_eq!(site.app.failpoints.hit("discovery_batch"), None);
    assert_eq!(
        status["tasks"]["by_phase"]["DISCOVERY"]["SUCCEEDED"], 1,
        "{status}"
    );
    assert_eq!(status["objects"]["discovered"], 60, "{status}");
    assert_eq!(status["objects"]["processed"], 60, "{status}");
    // One task per progress record of 7 new objects (60 = 8 × 7 + 4): a record the
    // retried discovery writes again brings no new object and no task.
    assert_eq!(
        status["tasks"]["by_phase"]["PROCESS"]["SUCCEEDED"], 9,
        "{status}"
    );
    assert_eq!(findings_by_classifier(&status), corpus.expected, "{status}");
    let (code, tasks) = site.get(&format!("/get_job_status/{job}")).await;
    assert_eq!(code, 200);
    assert_eq!(tasks["tasks"]["total"], 10, "{tasks}");
    site.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_outside_the_root_is_read_and_hidden_files_follow_the_setting() {
    let dir = tempfile::tempdir().unwrap();
    let outside = dir.path().join("outside");
    let root = dir.path().join("root");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::create_dir_all(root.join(".config")).unwrap();
    std::fs::write(outside.join("secret.txt"), "outside jane@example.com\n").unwrap();
    std::os::unix::fs::symlink(outside.join("secret.txt"), root.join("file-link.txt")).unwrap();
    std::os::unix::fs::symlink(&outside, root.join("dir-link")).unwrap();
    std::os::unix::fs::symlink("../outside/secret.txt", root.join("relative-link.txt")).unwrap();
    std::fs::write(root.join("inside.txt"), "inside bob@example.org\n").unwrap();
    std::fs::write(root.join(".config/hidden.txt"), "hidden amy@example.net\n").unwrap();
    let yaml = format!(
        "data_sources:\n  - id: on\n    kind: filesystem\n    root: {r}\n  - id: off\n    kind: filesystem\n    root: {r}/../root\n    hidden_files: false\n",
        r = root.display()
    );
    let site = TestSite::start(Backend::Sqlite, &yaml).await;
    for (ds, hidden) in [("on", true), ("off", false)] {
        let job = site
            .start_job(json!({ "name": ds, "data_sources": [ds] }))
            .await;
        let status = site.wait_terminal(&job, LONG).await;
        assert_eq!(status["state"], "COMPLETED", "{status}");
        assert_eq!(
            status["objects"]["by_reason"]["symlink not followed"], 3,
            "{status}"
        );
        let findings = site.all_findings(&job).await;
        let mut objects: Vec<&str> = findings
            .iter()
            .map(|f| f["object"].as_str().unwrap())
            .collect();
        objects.sort();
        if hidden {
            assert_eq!(
                objects,
                [".config/hidden.txt", "inside.txt"],
                "{findings:?}"
            );
        } else {
            assert_eq!(objects, ["inside.txt"], "{findings:?}");
        }
        assert!(
            findings
                .iter()
                .all(|f| f["masked_sample"] != "j***@example.com"),
            "the file outside the root was read: {findings:?}"
        );
    }
    site.stop().await.unwrap();
}
