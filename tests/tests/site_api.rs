//! The site API contract: idempotent start, status and deltas, pagination,
//! the catalog, and the error envelope for every kind of bad request.

use meridian_tests::Backend;
use meridian_tests::site::TestSite;
use serde_json::{Value, json};

meridian_tests::on_both!(
    start_job_is_idempotent_on_job_id,
    statuses_and_lists_page_and_delta,
    bad_requests_get_the_envelope
);

const SOURCES: &str = "site:\n  name: london\ndata_sources:\n  - id: ds_a\n    kind: synthetic\n    description: test objects\n    objects: 3\n  - id: ds_b\n    kind: synthetic\n    objects: 2\n";

fn assert_envelope(code: u16, body: &Value, status: u16, error_code: &str) {
    assert_eq!(code, status, "{body}");
    assert_eq!(body["error"]["code"], error_code, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{body}"
    );
}

async fn start_job_is_idempotent_on_job_id(backend: Backend) {
    let site = TestSite::start(backend, SOURCES).await;
    let id = uuid::Uuid::now_v7().to_string();
    let body = json!({ "job_id": id, "name": "nightly", "data_sources": ["ds_a"], "options": { "classifiers": ["email"] } });
    let (code, first) = site.post("/start_job", &body).await;
    assert_eq!(code, 201, "{first}");
    assert_eq!(first["job_id"], id.as_str());
    let (code, again) = site.post("/start_job", &body).await;
    assert_eq!(
        code, 200,
        "the same definition again is the same job: {again}"
    );
    assert_eq!(again["job_id"], id.as_str());
    let other = json!({ "job_id": id, "name": "nightly", "data_sources": ["ds_a", "ds_b"] });
    let (code, conflict) = site.post("/start_job", &other).await;
    assert_envelope(code, &conflict, 409, "conflict");
    let (_, page) = site.get("/jobs").await;
    assert_eq!(
        page["items"].as_array().unwrap().len(),
        1,
        "a retry created a second job"
    );
    site.wait_terminal(&id, std::time::Duration::from_secs(60))
        .await;
    site.stop().await.unwrap();
}

async fn statuses_and_lists_page_and_delta(backend: Backend) {
    let site = TestSite::start(backend, SOURCES).await;
    let (_, catalog) = site.get("/data_sources").await;
    assert_eq!(
        catalog,
        json!([
            { "id": "ds_a", "kind": "synthetic", "site": "london", "description": "test objects" },
            { "id": "ds_b", "kind": "synthetic", "site": "london", "description": "" },
        ])
    );
    // In-process workers register as their threads start, which may be just after
    // the site says it is ready.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let (code, workers) = site.get("/workers").await;
        let listed = workers.as_array().map_or(0, Vec::len);
        if code == 200 && listed == 2 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "two in-process workers never listed: {code} {workers}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let mut ids = Vec::new();
    for n in 0..3 {
        ids.push(
            site.start_job(json!({ "name": format!("job {n}"), "data_sources": ["ds_a"] }))
                .await,
        );
    }
    let mut versions = Vec::new();
    for id in &ids {
        let done = site
            .wait_terminal(id, std::time::Duration::from_secs(60))
            .await;
        assert_eq!(done["state"], "COMPLETED");
        versions.push(done["status_version"].as_i64().unwrap());
    }
    let (code, delta) = site.get("/job_statuses?since_version=0").await;
    assert_eq!(code, 200);
    assert_eq!(delta["jobs"].as_array().unwrap().len(), 3);
    let next = delta["next_since_version"].as_i64().unwrap();
    assert_eq!(next, *versions.iter().max().unwrap());
    // Paging one at a time still sees every job, even those finished in one pass
    // (which share a status version).
    let (mut seen, mut since) = (std::collections::BTreeSet::new(), 0);
    loop {
        let (_, page) = site
            .get(&format!("/job_statuses?since_version={since}&limit=1"))
            .await;
        for j in page["jobs"].as_array().unwrap() {
            seen.insert(j["job_id"].as_str().unwrap().to_owned());
        }
        since = page["next_since_version"].as_i64().unwrap();
        if page["has_more"] != true {
            break;
        }
    }
    assert_eq!(seen.len(), 3, "a delta page skipped a job");
    let (_, quiet) = site
        .get(&format!("/job_statuses?since_version={next}"))
        .await;
    assert!(
        quiet["jobs"].as_array().unwrap().is_empty(),
        "nothing changed: {quiet}"
    );
    assert_eq!(quiet["next_since_version"], next);
    let (_, cancelled) = site
        .post(&format!("/cancel_job/{}", ids[0]), &json!({}))
        .await;
    assert_eq!(
        cancelled["state"], "COMPLETED",
        "a finished job stays finished"
    );

    let (_, p1) = site.get("/jobs?limit=2").await;
    assert_eq!(p1["items"].as_array().unwrap().len(), 2);
    let cursor = p1["next_cursor"].as_str().unwrap().to_owned();
    let (_, p2) = site.get(&format!("/jobs?limit=2&cursor={cursor}")).await;
    assert_eq!(p2["items"].as_array().unwrap().len(), 1);
    assert!(p2["next_cursor"].is_null());
    let listed: Vec<&str> = p1["items"]
        .as_array()
        .unwrap()
        .iter()
        .chain(p2["items"].as_array().unwrap())
        .map(|j| j["job_id"].as_str().unwrap())
        .collect();
    assert_eq!(listed, ids.iter().map(String::as_str).collect::<Vec<_>>());
    let (_, completed) = site.get("/jobs?state=COMPLETED").await;
    assert_eq!(completed["items"].as_array().unwrap().len(), 3);
    site.stop().await.unwrap();
}

async fn bad_requests_get_the_envelope(backend: Backend) {
    let site = TestSite::start(backend, &format!("api:\n  max_body_bytes: 2048\n{SOURCES}")).await;
    let url = |p: &str| format!("{}{p}", site.base);
    let raw = |body: &'static str, ct: Option<&str>| {
        let mut req = site.http.post(url("/start_job")).body(body);
        if let Some(ct) = ct {
            req = req.header("content-type", ct);
        }
        req
    };
    let send = |req: reqwest::RequestBuilder| async move {
        let resp = req.send().await.unwrap();
        let code = resp.status().as_u16();
        (code, resp.json::<Value>().await.unwrap_or(Value::Null))
    };
    let (c, b) = send(raw("{\"name\": ", Some("application/json"))).await;
    assert_envelope(c, &b, 400, "bad_request");
    let (c, b) = send(raw("{\"name\":\"x\",\"data_sources\":[\"ds_a\"]}", None)).await;
    assert_envelope(c, &b, 415, "unsupported_media_type");
    let (c, b) = send(raw("{\"name\": 5}", Some("application/json"))).await;
    assert_envelope(c, &b, 422, "invalid");
    let big = "x".repeat(10_000);
    let (c, b) = send(
        site.http
            .post(url("/start_job"))
            .header("content-type", "application/json")
            .body(format!("{{\"name\":\"{big}\"}}")),
    )
    .await;
    assert_envelope(c, &b, 413, "payload_too_large");
    let (c, b) = site
        .post(
            "/start_job",
            &json!({ "name": "x", "data_sources": ["ds_a", "ds_tokyo_09"] }),
        )
        .await;
    assert_envelope(c, &b, 422, "invalid");
    assert!(
        b["error"]["message"]
            .as_str()
            .unwrap()
            .contains("ds_tokyo_09"),
        "{b}"
    );
    assert_eq!(
        b["error"]["details"]["unknown_data_sources"],
        json!(["ds_tokyo_09"])
    );
    let (c, b) = site.post("/start_job", &json!({ "name": "x", "data_sources": ["ds_a"], "options": { "classifiers": ["iban2"] } })).await;
    assert_envelope(c, &b, 422, "invalid");
    let (c, b) = site
        .post(
            "/start_job",
            &json!({ "name": "x", "data_sources": ["ds_a"], "job_id": "not-a-uuid" }),
        )
        .await;
    assert_envelope(c, &b, 422, "invalid");
    let (c, b) = site
        .post("/start_job", &json!({ "name": "x", "data_sources": [] }))
        .await;
    assert_envelope(c, &b, 422, "invalid");
    let (c, b) = site
        .post(
            "/start_job",
            &json!({ "name": "x", "data_sources": ["ds_a"], "priority": 0 }),
        )
        .await;
    assert_envelope(c, &b, 422, "invalid");
    let (c, b) = site
        .get("/get_job_status/0190a000-0000-7000-8000-000000000000")
        .await;
    assert_envelope(c, &b, 404, "not_found");
    let (c, b) = site.post("/cancel_job/nope", &json!({})).await;
    assert_envelope(c, &b, 404, "not_found");
    let (c, b) = site.get("/jobs/nope/findings").await;
    assert_envelope(c, &b, 404, "not_found");
    let (c, b) = site.get("/jobs?cursor=abc").await;
    assert_envelope(c, &b, 400, "bad_request");
    let (c, b) = site.get("/jobs?limit=0").await;
    assert_envelope(c, &b, 400, "bad_request");
    let (c, b) = site.get("/jobs?state=SLEEPING").await;
    assert_envelope(c, &b, 400, "bad_request");
    let (c, b) = site.get("/job_statuses?since_version=x").await;
    assert_envelope(c, &b, 400, "bad_request");
    let (c, b) = site.get("/no/such/route").await;
    assert_envelope(c, &b, 404, "not_found");
    let (c, b) = send(site.http.delete(url("/jobs"))).await;
    assert_envelope(c, &b, 405, "method_not_allowed");
    let (c, b) = site.get("/ready").await;
    assert_eq!((c, &b), (200, &json!({ "ready": true })));
    let metrics = site
        .http
        .get(url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("meridian_"), "{metrics}");
    site.stop().await.unwrap();
}
