//! The environment layer of the site's configuration reads `MERIDIAN_SECTION__KEY`
//! variables only: other `MERIDIAN_*` variables (the OCR program, a data source's
//! `url_env`, the master's own variables) must not stop a site as unknown keys.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use meridian_tests::process::{binary, free_port};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_parameter_meridian_variables_do_not_stop_the_site() {
    meridian_tests::init();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("site.yaml");
    std::fs::write(
        &config,
        format!(
            "node:\n  data_dir: {}\nworker:\n  global_cpu_threshold_percent: 100\n\
             data_sources:\n  - id: crm\n    kind: postgres\n    url_env: MERIDIAN_CRM_URL\n",
            dir.path().join("db").display()
        ),
    )
    .unwrap();
    let port = free_port();
    let log = dir.path().join("site.log");
    let mut child = Command::new(binary())
        .arg("--config")
        .arg(&config)
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .env("MERIDIAN_TESSERACT", "/usr/bin/tesseract")
        .env(
            "MERIDIAN_CRM_URL",
            "postgres://scanner:secret@127.0.0.1:1/crm",
        )
        .env("MERIDIAN_MASTER_MASTER__POLL_INTERVAL_SECONDS", "2")
        .env("MERIDIAN_MASTER_FAILPOINTS", "poller=panic")
        // A parameter still is one: the layer is not simply switched off.
        .env("MERIDIAN_WORKER__MAX_RETRIES", "5")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("spawn meridian-child");
    let http = reqwest::Client::new();
    let start = Instant::now();
    let ready = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Err(format!("exited with {status}"));
        }
        if let Ok(r) = http
            .get(format!("http://127.0.0.1:{port}/ready"))
            .send()
            .await
            && r.status().is_success()
        {
            break Ok(());
        }
        if start.elapsed() > Duration::from_secs(60) {
            break Err("not ready after 60 s".to_owned());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let _ = child.kill();
    let _ = child.wait();
    let log = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(ready.is_ok(), "{ready:?}; log:\n{log}");
}

#[test]
fn a_misspelt_parameter_variable_still_stops_the_site() {
    let (code, stderr) = meridian_tests::process::run_to_exit(
        &[],
        &[
            ("MERIDIAN_TESSERACT", "/usr/bin/tesseract"),
            ("MERIDIAN_WORKER__MAX_RETIRES", "5"),
        ],
        Duration::from_secs(30),
    );
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("max_retires"), "{stderr}");
}
