//! The federation end to end with real processes over real HTTPS: a master and
//! sites that are `meridian-child` binaries, mutual TLS with a dev mesh CA, JWTs on
//! the user API, SIGKILL of sites and of the master.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use meridian_master::auth::Role;
use meridian_tests::corpus;
use meridian_tests::mesh::Mesh;
use serde_json::{Value, json};

fn filesystem(id: &str, root: &Path) -> String {
    format!(
        "  - id: {id}\n    kind: filesystem\n    root: {}\n    include: [\"**/*\"]\n",
        root.display()
    )
}

fn synthetic(id: &str, objects: u64, work_ms: u64) -> String {
    format!("  - id: {id}\n    kind: synthetic\n    objects: {objects}\n    work_ms: {work_ms}\n")
}

fn site<'a>(view: &'a Value, name: &str) -> &'a Value {
    view["sites"]
        .as_array()
        .and_then(|a| a.iter().find(|s| s["site"] == name))
        .unwrap_or_else(|| panic!("no site {name} in {view:#}"))
}

fn counts(v: &Value) -> BTreeMap<String, i64> {
    serde_json::from_value(v.clone()).unwrap_or_default()
}

/// Two sites with their own seeded corpora and a master over both.
async fn two_site_mesh(london: &str, tokyo: &str) -> Mesh {
    let mut mesh = Mesh::new(&["london", "tokyo"]);
    mesh.configure_site("london", london, "");
    mesh.configure_site("tokyo", tokyo, "");
    mesh.start_site("london").await;
    mesh.start_site("tokyo").await;
    mesh.configure_master("", &BTreeMap::new());
    mesh.start_master().await;
    mesh.wait_catalog(2).await;
    mesh
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_across_two_sites_completes_with_the_seeded_counts() {
    let data = tempfile::tempdir().unwrap();
    let lc = corpus::generate(&data.path().join("london"), 11, 30, 40);
    let tc = corpus::generate(&data.path().join("tokyo"), 12, 30, 40);
    let mesh = two_site_mesh(
        &filesystem("ds_london_01", &lc.root),
        &filesystem("ds_tokyo_01", &tc.root),
    )
    .await;
    let id = mesh
        .create_job(&json!({"name": "two sites", "data_sources": ["ds_london_01", "ds_tokyo_01"]}))
        .await;
    let view = mesh
        .wait_view(&id, Duration::from_secs(60), |v| v["state"] == "COMPLETED")
        .await;

    let unified = counts(&view["findings"]["by_classifier"]);
    let mut seeded = lc.expected.clone();
    for (k, v) in &tc.expected {
        *seeded.entry(k.clone()).or_default() += v;
    }
    seeded.retain(|_, v| *v > 0);
    assert_eq!(
        unified, seeded,
        "unified findings are the sum of both corpora"
    );
    for (name, corpus) in [("london", &lc), ("tokyo", &tc)] {
        let part = site(&view, name);
        let mut expected = corpus.expected.clone();
        expected.retain(|_, v| *v > 0);
        assert_eq!(
            counts(&part["findings"]["by_classifier"]),
            expected,
            "{name}'s part"
        );
        let (code, child) = mesh.site_get(name, &format!("/get_job_status/{id}")).await;
        assert_eq!(code, 200);
        assert_eq!(
            child["findings"], part["findings"],
            "the view shows what {name} reports"
        );
        assert_eq!(mesh.child_jobs_with_id(name, &id).await, 1);
        assert_eq!(part["progress"], 1.0);
        assert_eq!(part["stale"], false);
    }
    let sum: i64 = view["sites"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["objects"]["discovered"].as_i64().unwrap())
        .sum();
    assert_eq!(view["objects"]["discovered"].as_i64(), Some(sum));
    assert_eq!(sum as usize, lc.files + tc.files);

    // Findings come from the sites on demand, masked, page by page across sites.
    let mut cursor: Option<String> = None;
    let mut total = 0;
    let mut sites_seen = std::collections::BTreeSet::new();
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/jobs/{id}/findings?limit=7&cursor={c}"),
            None => format!("/api/v1/jobs/{id}/findings?limit=7"),
        };
        let (code, page) = mesh.get(&path).await;
        assert_eq!(code, 200, "{page}");
        for f in page["items"].as_array().unwrap() {
            total += f["count"].as_i64().unwrap();
            sites_seen.insert(f["site"].as_str().unwrap().to_owned());
            assert!(
                f["masked_sample"].as_str().unwrap().contains('*'),
                "masked: {f}"
            );
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(total, view["findings"]["total"].as_i64().unwrap());
    assert_eq!(sites_seen.len(), 2);

    // Filtered by classifier, the sites filter: every page but the last is full, and
    // the counts add up to the view's.
    let by_classifier = view["findings"]["by_classifier"].as_object().unwrap();
    assert!(by_classifier.len() > 1, "{view}");
    for (classifier, want) in by_classifier {
        let mut cursor: Option<String> = None;
        let mut total = 0;
        loop {
            let after = cursor.map(|c| format!("&cursor={c}")).unwrap_or_default();
            let (code, page) = mesh
                .get(&format!(
                    "/api/v1/jobs/{id}/findings?limit=7&classifier={classifier}{after}"
                ))
                .await;
            let items = items_of(code, &page, classifier);
            total += items
                .iter()
                .map(|f| f["count"].as_i64().unwrap())
                .sum::<i64>();
            match page["next_cursor"].as_str() {
                Some(c) => {
                    assert_eq!(items.len(), 7, "a short page before the last: {page}");
                    cursor = Some(c.to_owned());
                }
                None => break,
            }
        }
        assert_eq!(Some(total), want.as_i64(), "{classifier}");
        // The site itself answers only that classifier.
        let (code, page) = mesh
            .site_get(
                "london",
                &format!("/jobs/{id}/findings?classifier={classifier}"),
            )
            .await;
        items_of(code, &page, classifier);
    }
    let (code, body) = mesh
        .site_get("london", &format!("/jobs/{id}/findings?classifier="))
        .await;
    assert_eq!(code, 400, "an empty filter is refused: {body}");
}

/// The items of a findings page answered 200, each of `classifier`.
fn items_of<'a>(code: u16, page: &'a Value, classifier: &str) -> &'a Vec<Value> {
    assert_eq!(code, 200, "{page}");
    let items = page["items"].as_array().unwrap();
    assert!(
        items.iter().all(|f| f["classifier"] == classifier),
        "{page}"
    );
    items
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_site_is_unreachable_with_its_last_status_then_converges() {
    let mut mesh = Mesh::new(&["london", "tokyo"]);
    mesh.poll_seconds = 1.0;
    mesh.configure_site("london", &synthetic("ds_london_01", 5, 10), "");
    mesh.configure_site("tokyo", &synthetic("ds_tokyo_01", 60, 100), "");
    mesh.start_site("london").await;
    mesh.start_site("tokyo").await;
    mesh.configure_master("", &BTreeMap::new());
    mesh.start_master().await;
    mesh.wait_catalog(2).await;
    let id = mesh
        .create_job(&json!({"name": "outage", "data_sources": ["ds_london_01", "ds_tokyo_01"]}))
        .await;
    mesh.wait_view(&id, Duration::from_secs(30), |v| {
        site(v, "tokyo")["state"] == "RUNNING"
    })
    .await;
    mesh.kill_site("tokyo");
    let killed = Instant::now();
    let view = mesh
        .wait_view(&id, Duration::from_secs(10), |v| {
            site(v, "tokyo")["site_reachability"] == "UNREACHABLE"
        })
        .await;
    let noticed = killed.elapsed();
    assert!(
        noticed <= Duration::from_secs_f64(3.0 * mesh.poll_seconds),
        "UNREACHABLE after {noticed:?}, more than 3 poll intervals"
    );
    let tokyo = site(&view, "tokyo");
    assert_eq!(
        tokyo["state"], "RUNNING",
        "the last known status stays visible"
    );
    assert_eq!(tokyo["stale"], true);
    assert!(tokyo["status_age_seconds"].as_f64().unwrap() > 0.0);
    assert!(
        tokyo["error"].as_str().is_some_and(|e| !e.is_empty()),
        "the error is shown: {tokyo}"
    );
    assert!(view["stale"] == true && view["stale_sites"] == json!(["tokyo"]));
    assert_ne!(view["state"], "COMPLETED");

    mesh.start_site("tokyo").await;
    let view = mesh
        .wait_view(&id, Duration::from_secs(60), |v| v["state"] == "COMPLETED")
        .await;
    let tokyo = site(&view, "tokyo");
    assert_eq!(tokyo["site_reachability"], "REACHABLE");
    assert_eq!(tokyo["stale"], false);
    assert_eq!(tokyo["dispatch_attempts"], 1, "no second dispatch");
    assert_eq!(mesh.child_jobs_with_id("tokyo", &id).await, 1);
    assert_eq!(tokyo["objects"]["processed"], 60);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_start_job_response_still_yields_one_child_job() {
    let mut mesh = Mesh::new(&["london"]);
    mesh.configure_site("london", &synthetic("ds_london_01", 10, 5), "");
    mesh.site_env(
        "london",
        "MERIDIAN_FAILPOINTS",
        "start_job.lose_response=panic*1",
    );
    mesh.start_site("london").await;
    mesh.configure_master("", &BTreeMap::new());
    mesh.start_master().await;
    mesh.wait_catalog(1).await;
    let id = mesh
        .create_job(&json!({"name": "lossy", "data_sources": ["ds_london_01"]}))
        .await;
    let view = mesh
        .wait_view(&id, Duration::from_secs(30), |v| v["state"] == "COMPLETED")
        .await;
    assert_eq!(mesh.child_jobs_with_id("london", &id).await, 1);
    assert_eq!(site(&view, "london")["objects"]["processed"], 10);
    let site_log = mesh.sites["london"].proc.as_ref().unwrap().log_text();
    assert!(
        site_log.contains("start_job.lose_response"),
        "the response was really dropped"
    );
    let master_log = mesh.master.as_ref().unwrap().log_text();
    assert!(
        master_log.contains("dispatch attempt 1 failed"),
        "the master saw no answer:\n{master_log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_creates_with_one_idempotency_key_make_one_job() {
    let mut mesh = Mesh::new(&["london"]);
    mesh.configure_site("london", &synthetic("ds_london_01", 3, 1), "");
    mesh.start_site("london").await;
    mesh.configure_master("", &BTreeMap::new());
    mesh.start_master().await;
    mesh.wait_catalog(1).await;
    let token = mesh.token(Role::Operator);
    let body = json!({"name": "once", "data_sources": ["ds_london_01"], "idempotency_key": "nightly-2026-12-02"});
    let calls =
        (0..50).map(|_| mesh.api(reqwest::Method::POST, "/api/v1/jobs", &token, Some(&body)));
    let answers = futures::future::join_all(calls).await;
    let created = answers.iter().filter(|(c, _)| *c == 201).count();
    assert_eq!(
        created,
        1,
        "exactly one create wins: {:?}",
        answers.iter().map(|a| a.0).collect::<Vec<_>>()
    );
    assert!(answers.iter().all(|(c, _)| *c == 200 || *c == 201));
    let ids: std::collections::BTreeSet<&str> = answers
        .iter()
        .map(|(_, v)| v["job_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 1, "every answer names the same job");
    let (_, list) = mesh.get("/api/v1/jobs").await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1);

    let other = json!({"name": "another", "data_sources": ["ds_london_01"], "idempotency_key": "nightly-2026-12-02"});
    let (code, err) = mesh
        .api(reqwest::Method::POST, "/api/v1/jobs", &token, Some(&other))
        .await;
    assert_eq!(code, 409, "{err}");
    assert_eq!(err["error"]["code"], "conflict");
    let id = ids.into_iter().next().unwrap().to_owned();
    mesh.wait_view(&id, Duration::from_secs(30), |v| v["state"] == "COMPLETED")
        .await;
    assert_eq!(mesh.child_jobs_with_id("london", &id).await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_master_killed_mid_job_resumes_and_shows_the_job_completed() {
    let mesh_sources = (
        synthetic("ds_london_01", 20, 100),
        synthetic("ds_tokyo_01", 20, 100),
    );
    let mut mesh = two_site_mesh(&mesh_sources.0, &mesh_sources.1).await;
    let id = mesh
        .create_job(&json!({"name": "orphaned", "data_sources": ["ds_london_01", "ds_tokyo_01"]}))
        .await;
    mesh.wait_view(&id, Duration::from_secs(30), |v| {
        site(v, "london")["dispatch"] == "DISPATCHED"
            && site(v, "tokyo")["dispatch"] == "DISPATCHED"
    })
    .await;
    mesh.kill_master();
    // The sites keep working while the master is away.
    for name in ["london", "tokyo"] {
        let start = Instant::now();
        loop {
            let (_, st) = mesh.site_get(name, &format!("/get_job_status/{id}")).await;
            if st["state"] == "COMPLETED" {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "{name} did not finish alone: {st}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    mesh.start_master().await;
    let view = mesh
        .wait_view(&id, Duration::from_secs(30), |v| v["state"] == "COMPLETED")
        .await;
    assert_eq!(view["objects"]["processed"], 40);
    for name in ["london", "tokyo"] {
        assert_eq!(mesh.child_jobs_with_id(name, &id).await, 1);
        assert_eq!(site(&view, name)["dispatch_attempts"], 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_reaches_every_site_including_one_that_was_down() {
    let mut mesh = two_site_mesh(
        &synthetic("ds_london_01", 400, 100),
        &synthetic("ds_tokyo_01", 400, 100),
    )
    .await;
    let id = mesh
        .create_job(&json!({"name": "stop me", "data_sources": ["ds_london_01", "ds_tokyo_01"]}))
        .await;
    mesh.wait_view(&id, Duration::from_secs(30), |v| {
        site(v, "london")["state"] == "RUNNING" && site(v, "tokyo")["state"] == "RUNNING"
    })
    .await;
    mesh.kill_site("tokyo");
    let (code, view) = mesh
        .api(
            reqwest::Method::POST,
            &format!("/api/v1/jobs/{id}/cancel"),
            &mesh.token(Role::Operator),
            None,
        )
        .await;
    assert_eq!(code, 202, "{view}");
    let view = mesh
        .wait_view(&id, Duration::from_secs(30), |v| {
            site(v, "london")["state"] == "CANCELLED"
        })
        .await;
    assert_eq!(site(&view, "london")["cancel"], "ACKNOWLEDGED");
    assert_eq!(
        site(&view, "tokyo")["cancel"],
        "REQUESTED",
        "tokyo is down: not acknowledged yet"
    );
    assert_eq!(view["state"], "CANCELLING");

    mesh.start_site("tokyo").await;
    let view = mesh
        .wait_view(&id, Duration::from_secs(60), |v| v["state"] == "CANCELLED")
        .await;
    assert_eq!(site(&view, "tokyo")["cancel"], "ACKNOWLEDGED");
    let (_, st) = mesh
        .site_get("tokyo", &format!("/get_job_status/{id}"))
        .await;
    assert_eq!(st["state"], "CANCELLED");
    assert!(
        st["objects"]["processed"].as_i64().unwrap() < 400,
        "the cancel stopped the work"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_quickstart_runs_a_job_across_london_and_tokyo() {
    let dir = tempfile::tempdir().unwrap();
    let port = meridian_tests::process::free_port();
    let log = std::fs::File::create(dir.path().join("quickstart.log")).unwrap();
    let mut child = std::process::Command::new(meridian_tests::process::quickstart_binary())
        .args([
            "--dir",
            dir.path().join("qs").to_str().unwrap(),
            "--listen",
            &format!("127.0.0.1:{port}"),
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(log)
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let token_file = dir.path().join("qs").join("token");
    let start = Instant::now();
    let token = loop {
        if let Ok(t) = std::fs::read_to_string(&token_file)
            && http
                .get(format!("{base}/ready"))
                .send()
                .await
                .is_ok_and(|r| r.status() == 200)
        {
            break t;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the quickstart never became ready"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let call = |req: reqwest::RequestBuilder| {
        let token = token.clone();
        async move {
            let r = req.bearer_auth(token).send().await.unwrap();
            (
                r.status().as_u16(),
                r.json::<Value>().await.unwrap_or(Value::Null),
            )
        }
    };
    let start = Instant::now();
    while call(http.get(format!("{base}/api/v1/data_sources")))
        .await
        .1
        .as_array()
        .map(Vec::len)
        != Some(2)
    {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "catalog of both sites"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let body = json!({"name": "first scan", "data_sources": ["ds_london_01", "ds_tokyo_01"]});
    let (code, view) = call(http.post(format!("{base}/api/v1/jobs")).json(&body)).await;
    assert_eq!(code, 201, "{view}");
    let id = view["job_id"].as_str().unwrap().to_owned();
    let start = Instant::now();
    let view = loop {
        let (_, v) = call(http.get(format!("{base}/api/v1/jobs/{id}"))).await;
        if v["state"] == "COMPLETED" {
            break v;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "{v:#}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // What the README promises for the sample data.
    assert_eq!(
        counts(&site(&view, "london")["findings"]["by_classifier"]),
        BTreeMap::from([("email".into(), 3), ("us_ssn".into(), 2)])
    );
    assert_eq!(
        counts(&site(&view, "tokyo")["findings"]["by_classifier"]),
        BTreeMap::from([("aws_access_key_id".into(), 1), ("payment_card".into(), 2)])
    );
    let ok = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "quickstart did not stop on SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(status.code(), Some(0));
    let mut out = String::new();
    std::io::Read::read_to_string(child.stdout.as_mut().unwrap(), &mut out).unwrap();
    assert!(
        out.contains(&format!("master    {base}")) && out.contains("MERIDIAN_TOKEN="),
        "{out}"
    );
    // The command-line client's next steps, pointed at this master.
    assert!(
        out.contains(&format!("export MERIDIAN_SERVER={base}"))
            && out.contains("meridianctl jobs watch <job_id>"),
        "{out}"
    );
}
