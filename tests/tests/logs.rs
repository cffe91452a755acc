//! What the logs of a federation show an operator: one line per event whatever the
//! text it quotes, and one trace id that follows a job from the master through a
//! site to the remote worker that scanned its objects.

use std::collections::BTreeMap;
use std::time::Duration;

use meridian_tests::Backend;
use meridian_tests::mesh::{Mesh, Proc};
use meridian_tests::process::{binary, free_port};
use serde_json::{Value, json};

const KEY: &str = "test-worker-key-0123456789abcdef0123456789";

fn synthetic(id: &str, objects: u64) -> String {
    format!("  - id: {id}\n    kind: synthetic\n    objects: {objects}\n")
}

fn completed(v: &Value) -> bool {
    v["state"] == "COMPLETED"
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_name_with_line_breaks_cannot_forge_a_log_line() {
    let mut mesh = Mesh::new(&["london"]);
    mesh.configure_site("london", &synthetic("ds_london", 3), "");
    mesh.start_site("london").await;
    mesh.configure_master("", &BTreeMap::new());
    mesh.start_master().await;
    mesh.wait_catalog(1).await;

    let name =
        "nightly\n2026-12-06T00:00:00.000000Z ERROR forged: site compromised\r\n\u{1b}[31mred";
    let id = mesh
        .create_job(&json!({"name": name, "data_sources": ["ds_london"]}))
        .await;
    mesh.wait_view(&id, Duration::from_secs(60), completed)
        .await;

    let master = mesh.master.as_ref().unwrap().log_text();
    let site = mesh.sites["london"].proc.as_ref().unwrap().log_text();
    for (who, log) in [("master", &master), ("site", &site)] {
        assert!(
            log.lines().any(|l| l.contains(&id)
                && l.contains("nightly\\n2026-12-06T00:00:00.000000Z ERROR forged")),
            "the {who} never logged the job's name, escaped:\n{log}"
        );
        for line in log.lines() {
            assert!(
                !line.contains("forged") || line.contains("nightly\\n"),
                "the {who}'s log has a line forged by the job name: {line:?}"
            );
        }
        assert!(
            !log.contains('\u{1b}') && !log.contains('\r'),
            "the {who}'s log holds raw control characters from the job name"
        );
    }
}

/// The `trace_id` of every JSON log line in `log` (top level or in a span).
fn trace_ids(log: &str) -> Vec<(String, Value)> {
    log.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|v| {
            let in_spans = v["spans"]
                .as_array()
                .and_then(|s| s.iter().find_map(|s| s["trace_id"].as_str()));
            let id = v["trace_id"]
                .as_str()
                .or(v["span"]["trace_id"].as_str())
                .or(in_spans)?;
            Some((id.to_owned(), v))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_trace_id_follows_a_job_from_the_master_to_the_worker_that_scanned_it() {
    // The site is an orchestrator (on PostgreSQL, as replicas share one database)
    // whose only worker is a separate process.
    let mut mesh = Mesh::new(&["london"]);
    let database = meridian_tests::database_url(Backend::Postgres, mesh.path()).await;
    mesh.configure_site(
        "london",
        &synthetic("ds_london", 5),
        &format!("database:\n  url: \"{database}\"\n"),
    );
    mesh.sites.get_mut("london").unwrap().args = vec!["--mode".into(), "orchestrator".into()];
    let worker_port = free_port();
    for (k, v) in [
        ("MERIDIAN_LOG__FORMAT", "json".to_owned()),
        ("MERIDIAN_WORKER_AUTH_KEY", KEY.to_owned()),
        (
            "MERIDIAN_API__WORKER_LISTEN",
            format!("127.0.0.1:{worker_port}"),
        ),
    ] {
        mesh.site_env("london", k, &v);
    }
    mesh.start_site("london").await;
    mesh.master_env
        .push(("MERIDIAN_MASTER_LOG__FORMAT".into(), "json".into()));
    mesh.configure_master("", &BTreeMap::new());
    mesh.start_master().await;
    mesh.wait_catalog(1).await;

    let config = mesh.sites["london"].config.display().to_string();
    let ca = mesh.certs.ca().display().to_string();
    let worker = Proc::spawn(
        &binary(),
        &["--mode", "worker", "--config", &config],
        &[
            ("MERIDIAN_LOG__FORMAT".into(), "json".into()),
            ("RUST_LOG".into(), "info,meridian_worker=debug".into()),
            ("MERIDIAN_WORKER_AUTH_KEY".into(), KEY.into()),
            ("MERIDIAN_NODE__ID".into(), "london-worker-1".into()),
            (
                "MERIDIAN_WORKER__ORCHESTRATOR_URL".into(),
                format!("https://127.0.0.1:{worker_port}"),
            ),
            ("MERIDIAN_WORKER__TLS__CA_FILE".into(), ca),
        ],
        &mesh.path().join("worker.log"),
    );

    // The console's call starts the trace.
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let resp = mesh
        .http
        .post(format!("{}/api/v1/jobs", mesh.master_url()))
        .bearer_auth(mesh.token(meridian_master::auth::Role::Operator))
        .header("traceparent", format!("00-{trace}-00f067aa0ba902b7-01"))
        .json(&json!({"name": "traced", "data_sources": ["ds_london"]}))
        .send()
        .await
        .expect("master answers");
    assert_eq!(resp.status().as_u16(), 201);
    let view: Value = resp.json().await.unwrap();
    let id = view["job_id"].as_str().unwrap().to_owned();
    let done = mesh
        .wait_view(&id, Duration::from_secs(60), completed)
        .await;
    assert_eq!(done["objects"]["processed"], 5, "{done:#}");

    let master = mesh.master.as_ref().unwrap().log_text();
    let site = mesh.sites["london"].proc.as_ref().unwrap().log_text();
    let worker_log = worker.log_text();
    let of = |log: &str| -> Vec<Value> {
        trace_ids(log)
            .into_iter()
            .filter(|(t, _)| t == trace)
            .map(|(_, v)| v)
            .collect()
    };
    let (m, s, w) = (of(&master), of(&site), of(&worker_log));
    let text = |lines: &[Value]| {
        lines
            .iter()
            .map(|l| l.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert!(
        m.iter().any(|l| l.to_string().contains("job created"))
            && m.iter()
                .any(|l| l.to_string().contains("dispatched to site london")),
        "the master's lines under the trace:\n{}\nwhole log:\n{master}",
        text(&m)
    );
    assert!(
        s.iter()
            .any(|l| l.to_string().contains(&id) && l.to_string().contains("created")),
        "the site's lines under the trace:\n{}\nwhole log:\n{site}",
        text(&s)
    );
    // Discovery and the task of the five objects were run by the remote worker, each
    // logged under the trace with its job and task.
    let tasks: std::collections::BTreeSet<i64> = w
        .iter()
        .filter(|l| l.to_string().contains("done by london-worker-1"))
        .filter_map(|l| {
            l["spans"]
                .as_array()?
                .iter()
                .find_map(|s| s["task_id"].as_i64())
        })
        .collect();
    assert_eq!(
        tasks.len(),
        2,
        "one discovery and one task of five objects under the trace in the worker's log:\n{}\nwhole log:\n{worker_log}",
        text(&w)
    );
    assert!(
        w.iter().all(|l| l.to_string().contains(&id)),
        "a worker line under the trace does not name the job"
    );
}
