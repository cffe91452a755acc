//! The API contract: the OpenAPI documents of the master, the site and the worker
//! API match their snapshots in docs/openapi/ (`UPDATE_OPENAPI=1` rewrites them),
//! every documented operation is served and every served route documented, answers
//! carry `X-Request-Id`, and the master's list, bulk cancel and whoami behave as
//! documented in docs/federation.md.

use std::path::PathBuf;
use std::sync::Arc;

use meridian_master::auth::{Role, mint};
use meridian_master::config::{AuthConfig, SiteEntry};
use meridian_master::store::NewJob;
use meridian_master::{MasterConfig, MasterServer};
use meridian_service::failpoints::Failpoints;
use meridian_tests::Backend;
use meridian_tests::site::TestSite;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn snapshot(name: &str, doc: &utoipa::openapi::OpenApi) {
    let path = repo().join("docs/openapi").join(format!("{name}.json"));
    let text = meridian_service::openapi::to_json(doc);
    if std::env::var("UPDATE_OPENAPI").is_ok_and(|v| v == "1") {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &text).unwrap();
        return;
    }
    let old = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        old == text,
        "{} differs from the generated document: the API contract changed. Review the change, then run with UPDATE_OPENAPI=1 to rewrite it.",
        path.display()
    );
}

#[test]
fn the_documents_match_their_snapshots() {
    snapshot("master", &meridian_master::api::openapi());
    snapshot("site", &meridian_child::api::docs::site_openapi());
    snapshot("worker", &meridian_child::api::docs::worker_openapi());
}

/// Every `$ref` under `v`, as written.
fn refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            if let Some(Value::String(r)) = map.get("$ref") {
                out.push(r.clone());
            }
            map.values().for_each(|x| refs(x, out));
        }
        Value::Array(items) => items.iter().for_each(|x| refs(x, out)),
        _ => {}
    }
}

/// A reference to a schema the document does not define makes the whole document
/// invalid to validators and clients (the findings `format` parameter named a
/// `Format` schema that utoipa never added to the components).
#[test]
fn every_reference_resolves_within_its_document() {
    for (name, doc) in [
        ("master", meridian_master::api::openapi()),
        ("site", meridian_child::api::docs::site_openapi()),
        ("worker", meridian_child::api::docs::worker_openapi()),
    ] {
        let v = serde_json::to_value(&doc).unwrap();
        let mut all = Vec::new();
        refs(&v, &mut all);
        assert!(!all.is_empty(), "{name}: no references at all");
        for r in all {
            let pointer = r.strip_prefix('#').unwrap_or_else(|| {
                panic!("{name}: `{r}` points outside the document");
            });
            assert!(
                v.pointer(pointer).is_some(),
                "{name}: `{r}` names nothing in the document"
            );
        }
    }
}

/// (method, path) of every operation, with `{x}` parameters filled by `fill`.
fn operations(doc: &utoipa::openapi::OpenApi) -> Vec<(String, String)> {
    let v = serde_json::to_value(doc).unwrap();
    let mut out = Vec::new();
    for (path, item) in v["paths"].as_object().unwrap() {
        for m in ["get", "post", "put", "delete", "patch"] {
            if item.get(m).is_some() {
                out.push((m.to_uppercase(), path.clone()));
            }
        }
    }
    out
}

fn fill(path: &str) -> String {
    path.replace("{job_id}", "no-such-job")
}

/// Probes each documented operation: it must reach a handler, not the fallback.
async fn all_served(base: &str, doc: &utoipa::openapi::OpenApi, token: Option<&str>) {
    let http = reqwest::Client::new();
    for (method, path) in operations(doc) {
        let url = format!("{base}{}", fill(&path));
        let mut req = http.request(method.parse().unwrap(), &url);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if method == "POST" {
            req = req.json(&json!({}));
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        assert!(
            resp.headers().contains_key("x-request-id"),
            "{method} {path}"
        );
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        let fallback = status == 405
            || (status == 404
                && body["error"]["message"]
                    .as_str()
                    .is_some_and(|m| m.starts_with("no route for")));
        assert!(
            !fallback,
            "{method} {path} is documented but not served: {status} {body}"
        );
    }
}

/// Every `.route(` in the API sources is one of the documented or documentation routes:
/// the others register through utoipa-axum's `routes!`, which documents them.
#[test]
fn nothing_is_served_undocumented() {
    let allowed = [
        "\"/worker/openapi.json\"",
        "GET_TASK",
        "REPORT_HEARTBEAT",
        "UPDATE_TASK_PROGRESS",
        "COMPLETE_TASK",
        "FAIL_TASK",
    ];
    for dir in ["master/src/api", "child/site/src/api"] {
        for e in std::fs::read_dir(repo().join(dir)).unwrap() {
            let p = e.unwrap().path();
            let text = std::fs::read_to_string(&p).unwrap();
            for (i, line) in text.lines().enumerate() {
                if let Some(at) = line.find(".route(") {
                    let rest = &line[at + 7..];
                    assert!(
                        allowed.iter().any(|a| rest.starts_with(a)) || rest.trim().is_empty(),
                        "{}:{}: a route outside utoipa-axum: {line}",
                        p.display(),
                        i + 1
                    );
                }
            }
        }
    }
    // The worker API's document names exactly the routes tasks.rs serves.
    let doc = meridian_child::api::docs::worker_openapi();
    let mut documented: Vec<String> = operations(&doc).into_iter().map(|(_, p)| p).collect();
    documented.sort();
    let mut served: Vec<String> = [
        meridian_wire::worker::GET_TASK,
        meridian_wire::worker::REPORT_HEARTBEAT,
        meridian_wire::worker::UPDATE_TASK_PROGRESS,
        meridian_wire::worker::COMPLETE_TASK,
        meridian_wire::worker::FAIL_TASK,
    ]
    .map(str::to_owned)
    .to_vec();
    served.sort();
    assert_eq!(documented, served);
}

struct TestMaster {
    base: String,
    master: Arc<meridian_master::app::Master>,
    auth: AuthConfig,
    shutdown: CancellationToken,
    _dir: tempfile::TempDir,
}

impl TestMaster {
    async fn start() -> TestMaster {
        TestMaster::start_with_sites(Vec::new()).await
    }

    async fn start_with_sites(sites: Vec<SiteEntry>) -> TestMaster {
        meridian_tests::init();
        let dir = tempfile::tempdir().unwrap();
        let certs = meridian_master::certs::init(&dir.path().join("certs"), &[]).unwrap();
        let mut cfg = MasterConfig::default();
        cfg.master.listen = "127.0.0.1:0".into();
        cfg.master.data_dir = dir.path().join("master");
        cfg.sites = sites;
        cfg.auth.public_key_file = Some(certs.jwt_public());
        let auth = AuthConfig {
            signing_key_file: Some(certs.jwt_private()),
            ..cfg.auth.clone()
        };
        std::fs::create_dir_all(&cfg.master.data_dir).unwrap();
        let server = MasterServer::build_with(cfg, Failpoints::default())
            .await
            .unwrap();
        let base = format!("http://{}", server.local_addr());
        let master = server.master();
        let shutdown = CancellationToken::new();
        tokio::spawn(server.run(shutdown.clone()));
        TestMaster {
            base,
            master,
            auth,
            shutdown,
            _dir: dir,
        }
    }

    fn token(&self, roles: &[Role]) -> String {
        mint(&self.auth, "ana", roles, 3600).unwrap()
    }

    async fn call(
        &self,
        method: &str,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (u16, reqwest::header::HeaderMap, Value) {
        let mut req = reqwest::Client::new()
            .request(method.parse().unwrap(), format!("{}{path}", self.base))
            .bearer_auth(token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let (status, headers) = (resp.status().as_u16(), resp.headers().clone());
        (status, headers, resp.json().await.unwrap_or(Value::Null))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_documented_operation_of_the_master_is_served() {
    let m = TestMaster::start().await;
    all_served(
        &m.base,
        &meridian_master::api::openapi(),
        Some(&m.token(&[Role::Admin])),
    )
    .await;
    let (code, _, doc) = m.call("GET", "/openapi.json", "", None).await;
    assert_eq!(code, 200);
    assert_eq!(doc["openapi"], "3.1.0");
    let docs = reqwest::get(format!("{}/docs/", m.base)).await.unwrap();
    assert_eq!(docs.status().as_u16(), 200);
    m.shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_documented_operation_of_a_site_is_served() {
    let site = TestSite::start(Backend::Sqlite, "").await;
    all_served(&site.base, &meridian_child::api::docs::site_openapi(), None).await;
    let (code, doc) = site.get("/worker/openapi.json").await;
    assert_eq!(code, 200);
    assert_eq!(doc["info"]["title"], "Meridian worker API");
    site.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nul_characters_and_paths_that_are_not_utf8_are_refused_in_the_envelope() {
    // A NUL cannot be stored in PostgreSQL text (a 500 there), and axum answered a
    // path that is not UTF-8 in plain text: the master refuses both, on every store.
    let m = TestMaster::start().await;
    let op = m.token(&[Role::Operator]);
    for path in [
        "/api/v1/jobs/%FF",
        "/api/v1/jobs/a%00b",
        "/api/v1/jobs/a%00b/findings",
        "/api/v1/jobs?name=a%00",
    ] {
        let (code, headers, body) = m.call("GET", path, &op, None).await;
        assert_eq!(code, 400, "{path}: {body}");
        assert_eq!(body["error"]["code"], "bad_request", "{path}: {body}");
        assert_eq!(headers["content-type"], "application/json", "{path}");
    }
    let create = json!({"name": "a\u{0}b", "data_sources": ["ds"]});
    let (code, _, body) = m.call("POST", "/api/v1/jobs", &op, Some(create)).await;
    assert_eq!(code, 422, "{body}");
    assert_eq!(body["error"]["details"]["field"], "name", "{body}");
    m.shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_ids_are_echoed_kept_when_sane_and_quoted_in_errors() {
    let m = TestMaster::start().await;
    let http = reqwest::Client::new();
    let resp = http
        .get(format!("{}/api/v1/jobs/nope", m.base))
        .bearer_auth(m.token(&[Role::Viewer]))
        .header("x-request-id", "abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["x-request-id"], "abc-123");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["request_id"], "abc-123");
    let resp = http
        .get(format!("{}/health", m.base))
        .header("x-request-id", "bad id with spaces")
        .send()
        .await
        .unwrap();
    let id = resp.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_ne!(id, "bad id with spaces");
    assert!(meridian_service::request_id::is_sane(&id));
    m.shutdown.cancel();
}

/// Nothing listens on port 1 of the loopback (binding it needs privileges): a site
/// there refuses every connection, so the dispatcher retries its parts forever and
/// their jobs stay PENDING however long the test takes.
const REFUSING_SITE: &str = "http://127.0.0.1:1";

/// A master whose only site, `london`, refuses connections, holding `nightly a` and
/// `nightly b` there (PENDING for good) and `weekly` at `tokyo`, a site it does not
/// know: the dispatcher rejects that part, so `weekly` is FAILED, a final state
/// nothing moves it out of. Returns once `weekly` is FAILED.
async fn seeded_master() -> TestMaster {
    let m = TestMaster::start_with_sites(vec![SiteEntry {
        name: "london".into(),
        url: REFUSING_SITE.into(),
    }])
    .await;
    for (i, name) in ["nightly a", "nightly b", "weekly"].iter().enumerate() {
        m.master
            .store
            .create_job(&NewJob {
                job_id: format!("job-{i}"),
                name: (*name).into(),
                request: "{}".into(),
                request_hash: "h".into(),
                idempotency_key: None,
                sites: vec![(
                    if i == 2 { "tokyo" } else { "london" }.into(),
                    vec!["ds".into()],
                )],
                now_ms: 1_777_000_000_000 + i as i64 * 1000,
                trace_id: format!("{:032x}", i + 1),
            })
            .await
            .unwrap();
    }
    m.master.work_arrived();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let job = m.master.store.job("job-2").await.unwrap().unwrap();
        if job.state == "FAILED" {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the part at an unknown site was not rejected within 30 s (state {})",
            job.state
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    m
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_master_filters_lists_cancels_in_bulk_and_says_who_is_calling() {
    let m = seeded_master().await;
    let viewer = m.token(&[Role::Viewer]);
    let (code, _, page) = m
        .call(
            "GET",
            "/api/v1/jobs?name=nightly*&sort=name&limit=1",
            &viewer,
            None,
        )
        .await;
    assert_eq!(code, 200, "{page}");
    assert_eq!(page["items"][0]["name"], "nightly a");
    let cursor = page["next_cursor"].as_str().unwrap().to_owned();
    let (_, _, page) = m
        .call(
            "GET",
            &format!("/api/v1/jobs?name=nightly*&sort=name&limit=1&cursor={cursor}"),
            &viewer,
            None,
        )
        .await;
    assert_eq!(page["items"][0]["name"], "nightly b");
    assert!(page["next_cursor"].is_null());
    let (_, _, page) = m
        .call("GET", "/api/v1/jobs?site=tokyo", &viewer, None)
        .await;
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    let (_, _, page) = m
        .call("GET", "/api/v1/jobs?state=PENDING&sort=name", &viewer, None)
        .await;
    let names: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["nightly a", "nightly b"], "{page}");
    for bad in [
        "state=NOPE",
        "created_after=yesterday",
        "limit=1001",
        "sort=size",
    ] {
        let (code, _, body) = m
            .call("GET", &format!("/api/v1/jobs?{bad}"), &viewer, None)
            .await;
        assert_eq!(code, 422, "{bad}: {body}");
    }
    // A viewer may not cancel; an operator may, by filter (dry run first) or ids.
    let body = json!({"filter": {"name": "nightly*"}, "dry_run": true});
    let (code, _, _) = m
        .call("POST", "/api/v1/jobs/cancel", &viewer, Some(body.clone()))
        .await;
    assert_eq!(code, 403);
    let op = m.token(&[Role::Operator]);
    let (code, _, dry) = m.call("POST", "/api/v1/jobs/cancel", &op, Some(body)).await;
    assert_eq!((code, dry["matched"].clone()), (200, json!(2)), "{dry}");
    // A confirmed count that no longer holds cancels nothing (a job created between
    // the dry run and the confirmation is not cancelled unseen).
    let stale = json!({"filter": {"name": "nightly*"}, "expected": 1});
    let (code, _, body) = m
        .call("POST", "/api/v1/jobs/cancel", &op, Some(stale))
        .await;
    assert_eq!(code, 409, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("selects 2 job(s) to cancel now, not the 1 confirmed"),
        "{body}"
    );
    let again = json!({"filter": {"name": "nightly*"}, "dry_run": true});
    let (_, _, dry) = m
        .call("POST", "/api/v1/jobs/cancel", &op, Some(again))
        .await;
    assert_eq!(
        dry["matched"], 2,
        "the refused call cancelled something: {dry}"
    );
    let odd = json!({"ids": ["job-0"], "expected": 1});
    let (code, _, body) = m.call("POST", "/api/v1/jobs/cancel", &op, Some(odd)).await;
    assert_eq!(code, 422, "{body}");
    // The documented bounds of `ids` are the enforced ones.
    let doc = serde_json::to_value(meridian_master::api::openapi()).unwrap();
    let bounds = &doc["components"]["schemas"]["CancelMany"]["properties"]["ids"];
    assert_eq!(
        (bounds["minItems"].clone(), bounds["maxItems"].clone()),
        (json!(1), json!(1000))
    );
    let many = |n: usize| json!({"ids": (0..n).map(|i| format!("none-{i}")).collect::<Vec<_>>()});
    for (n, want) in [(0, 422), (1001, 422), (1000, 200)] {
        let (code, _, body) = m
            .call("POST", "/api/v1/jobs/cancel", &op, Some(many(n)))
            .await;
        assert_eq!(code, want, "{n} ids: {body}");
    }
    let ids = json!({"ids": ["job-0", "job-2", "job-9"]});
    let (code, _, done) = m.call("POST", "/api/v1/jobs/cancel", &op, Some(ids)).await;
    assert_eq!(code, 200, "{done}");
    let outcomes: Vec<(String, String)> = done["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["job_id"].as_str().unwrap().into(),
                r["outcome"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        outcomes,
        [
            ("job-0", "cancelled"),
            ("job-2", "already_final"),
            ("job-9", "not_found")
        ]
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
    );
    let (code, _, me) = m.call("GET", "/api/v1/whoami", &op, None).await;
    assert_eq!(code, 200);
    assert_eq!(me["subject"], "ana");
    assert_eq!(me["roles"], json!(["operator"]));
    assert!(
        me["permissions"]
            .as_array()
            .unwrap()
            .contains(&json!("jobs:cancel"))
    );
    m.shutdown.cancel();
}
