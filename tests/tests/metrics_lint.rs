//! Both services' `/metrics` pass `promtool check metrics` (every metric has help
//! text, counters end in `_total`, base units), after a job has run through a
//! federation so that the interesting series exist.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use meridian_tests::mesh::Mesh;
use serde_json::json;

fn promtool_check(service: &str, exposition: &str) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (Debian's prometheus package; tests/run.sh installs it)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(exposition.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics on the {service}'s /metrics:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_services_metrics_pass_promtool() {
    let mut mesh = Mesh::new(&["london"]);
    mesh.configure_site(
        "london",
        "  - id: ds_london_01\n    kind: synthetic\n    objects: 20\n",
        "",
    );
    mesh.start_site("london").await;
    mesh.configure_master("", &BTreeMap::new());
    mesh.start_master().await;
    mesh.wait_catalog(1).await;
    let id = mesh
        .create_job(&json!({"name": "metrics", "data_sources": ["ds_london_01"]}))
        .await;
    mesh.wait_view(&id, Duration::from_secs(60), |v| v["state"] == "COMPLETED")
        .await;
    let site = mesh.sites["london"].url();
    let site_metrics = mesh
        .mtls
        .get(format!("{site}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        site_metrics.contains("meridian_tasks_completed_total"),
        "{site_metrics}"
    );
    promtool_check("site", &site_metrics);
    let master_metrics = mesh
        .http
        .get(format!("{}/metrics", mesh.master_url()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        master_metrics.contains("meridian_master_poll_requests_total"),
        "{master_metrics}"
    );
    promtool_check("master", &master_metrics);
}
