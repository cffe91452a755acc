//! Hostile workers: the orchestrator is the authority. A worker that holds the site's
//! key and a current lease still cannot mint itself a long-lived credential, release
//! a replica's leases by taking its name, write results about objects its lease is
//! not about, store a raw value as a "masked" sample, or make another worker read
//! outside the data source its own site configuration names.
//!
//! Reports are checked in the engine (`meridian_engine::reports`), which runs on both
//! stores; the worker API over HTTP is served only by `--mode orchestrator`, which
//! needs PostgreSQL, so its tests (credentials, node names, status codes) run there.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use meridian_child::{App, RunMode};
use meridian_config::{ConfigLayers, SystemConfig};
use meridian_engine::reports;
use meridian_service::worker_token as token;
use meridian_store::{
    ClaimedTask, Completion, DiscoveryBatch, FailOutcome, FailureKind, FindingsRange,
    HeartbeatOutcome, Lease, LeaseSpec, NewFinding, NewObject, ObjectResult, ReportOutcome, Store,
};
use meridian_tests::Backend;
use meridian_tests::process::{SiteProcess, free_port};
use meridian_tests::site::TestSite;
use meridian_wire::WorkPacket;
use meridian_wire::states::{ObjectOutcome, Phase};
use meridian_worker::reporter::Reporter;
use meridian_worker::runner;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

const KEY: &str = "hostile-worker-key-0123456789abcdef0123456789";

meridian_tests::on_both!(
    reports_about_another_object_or_phase_are_refused_and_write_nothing,
    raw_values_and_unbounded_findings_are_refused_and_write_nothing,
);

// ---- a site whose tasks only the test leases ------------------------------------------

/// A single-process site that hands out no task itself (draining), a job over two
/// files, its discovery recorded and pipelined, and every task leased by the test.
struct Leased {
    site: TestSite,
    job: String,
    discovery: Lease,
    /// (lease, object id) of each `PROCESS` task.
    process: Vec<(Lease, i64)>,
    _share: tempfile::TempDir,
}

fn lease_of(t: &ClaimedTask) -> Lease {
    Lease {
        task_id: t.id,
        lease_token: t.lease_token.clone(),
    }
}

fn share_with_two_files() -> tempfile::TempDir {
    let share = tempfile::tempdir().unwrap();
    std::fs::write(share.path().join("a.txt"), "contact jane.doe@example.com\n").unwrap();
    std::fs::write(share.path().join("b.txt"), "nothing here\n").unwrap();
    share
}

fn source_yaml(id: &str, root: &Path) -> String {
    format!(
        "data_sources:\n  - id: {id}\n    kind: filesystem\n    root: {}\n",
        root.display()
    )
}

async fn claim_all(app: &App, job: &str) -> Vec<ClaimedTask> {
    let spec = LeaseSpec {
        worker_id: "hostile".into(),
        node: "hostile-node".into(),
        lease_ms: 120_000,
    };
    let ids = app.store.pending_task_ids(job, 0, 100).await.unwrap();
    app.store.claim(&ids, &spec).await.unwrap()
}

async fn leased_site(backend: Backend) -> Leased {
    let share = share_with_two_files();
    // A task per object, so that one object's task can report on the other's.
    let yaml = format!(
        "connector:\n  objects_per_task: 1\n{}",
        source_yaml("share", share.path())
    );
    let site = TestSite::start(backend, &yaml).await;
    // Nothing is leased to in-process workers while the site drains: every task of
    // the job below is the test's to report on.
    site.app
        .draining
        .store(true, std::sync::atomic::Ordering::Release);
    let job = site
        .start_job(json!({ "name": "hostile", "data_sources": ["share"] }))
        .await;
    let discovery = claim_all(&site.app, &job).await.remove(0);
    assert_eq!(discovery.phase, "DISCOVERY");
    let discovery = lease_of(&discovery);
    let batch = DiscoveryBatch {
        attempt: 1,
        seq: 0,
        objects: ["a.txt", "b.txt"]
            .iter()
            .map(|k| NewObject {
                key: (*k).into(),
                size_bytes: 20,
                modified_at: None,
                skipped_reason: None,
            })
            .collect(),
    };
    assert_eq!(
        reports::discovered(&site.app, &discovery, &batch)
            .await
            .unwrap(),
        ReportOutcome::Accepted
    );
    let mut process = Vec::new();
    for _ in 0..100 {
        site.app.store.pipeline(100).await.unwrap();
        process.extend(claim_all(&site.app, &job).await);
        if process.len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(process.len(), 2, "two PROCESS tasks");
    let mut process: Vec<(Lease, i64)> = process
        .iter()
        .map(|t| {
            let payload: Value = serde_json::from_str(&t.payload).unwrap();
            (
                lease_of(t),
                payload["objects"][0]["object_id"].as_i64().unwrap(),
            )
        })
        .collect();
    process.sort_by_key(|(_, o)| *o);
    Leased {
        site,
        job,
        discovery,
        process,
        _share: share,
    }
}

fn finding(object_id: i64, classifier: &str, sample: &str) -> NewFinding {
    NewFinding {
        object_id,
        classifier: classifier.into(),
        location: "line:1".into(),
        count: 1,
        masked_sample: sample.into(),
        confidence: 0.9,
    }
}

fn completion(lease: &Lease, object: Option<i64>, findings: Vec<NewFinding>) -> Completion {
    Completion {
        failed: vec![],
        lease: lease.clone(),
        objects: object
            .map(|object_id| ObjectResult {
                object_id,
                outcome: ObjectOutcome::Complete,
                reason: None,
            })
            .into_iter()
            .collect(),
        findings,
    }
}

impl Leased {
    /// Asserts that `batch` is refused with a message containing `why`, and that it
    /// wrote nothing: no finding, and every lease in it still current.
    async fn refused(&self, batch: &[Completion], why: &str) {
        let before = self.findings().await;
        match reports::completed(&self.site.app, batch).await {
            Ok(o) => panic!("accepted ({o:?}), expected a refusal naming `{why}`"),
            Err(e) => assert!(
                e.to_string().contains(why),
                "refusal `{e}` does not name `{why}`"
            ),
        }
        assert_eq!(
            self.findings().await,
            before,
            "a refused batch wrote findings"
        );
        for c in batch {
            assert!(
                matches!(
                    self.site
                        .app
                        .store
                        .heartbeat(&c.lease, 120_000)
                        .await
                        .unwrap(),
                    HeartbeatOutcome::Extended { .. }
                ),
                "task {} was finished by a refused batch",
                c.lease.task_id
            );
        }
    }

    async fn findings(&self) -> usize {
        self.site
            .app
            .store
            .findings_page(&self.job, &FindingsRange::after(0, 1000))
            .await
            .unwrap()
            .rows
            .len()
    }
}

async fn reports_about_another_object_or_phase_are_refused_and_write_nothing(backend: Backend) {
    let l = leased_site(backend).await;
    let (a, a_id) = l.process[0].clone();
    let (_, b_id) = l.process[1].clone();
    // The object outcome of another object of the same job, or of one that does not
    // exist.
    l.refused(&[completion(&a, Some(b_id), vec![])], "object")
        .await;
    l.refused(&[completion(&a, Some(987_654), vec![])], "object")
        .await;
    // Findings about another object.
    let other = finding(b_id, "email", "j***@example.com");
    l.refused(&[completion(&a, Some(a_id), vec![other])], "object")
        .await;
    // A discovery task has no object and no findings.
    l.refused(&[completion(&l.discovery, Some(a_id), vec![])], "DISCOVERY")
        .await;
    let on_discovery = finding(a_id, "email", "j***@example.com");
    l.refused(
        &[completion(&l.discovery, None, vec![on_discovery])],
        "DISCOVERY",
    )
    .await;
    // The same object's outcome twice.
    let mut twice = completion(&a, Some(a_id), vec![]);
    twice.objects.push(twice.objects[0].clone());
    l.refused(&[twice], "twice").await;
    // One bad completion refuses its whole batch, the honest one included.
    let honest = completion(&a, Some(a_id), vec![]);
    let bad = completion(&l.process[1].0, Some(a_id), vec![]);
    l.refused(&[honest, bad], "object").await;
    // Only a DISCOVERY task reports discovered objects.
    let objects_before = l.site.status(&l.job).await["objects"]["discovered"].clone();
    let smuggled = DiscoveryBatch {
        attempt: 1,
        seq: 0,
        objects: vec![NewObject {
            key: "../../etc/shadow".into(),
            size_bytes: 1,
            modified_at: None,
            skipped_reason: None,
        }],
    };
    let refused = reports::discovered(&l.site.app, &a, &smuggled).await;
    let e = refused.expect_err("a PROCESS task reported discovered objects");
    assert!(e.to_string().contains("DISCOVERY"), "{e}");
    assert_eq!(
        l.site.status(&l.job).await["objects"]["discovered"],
        objects_before
    );
    // The honest reports are still accepted.
    let honest = completion(
        &a,
        Some(a_id),
        vec![finding(a_id, "email", "j***@example.com")],
    );
    assert_eq!(
        reports::completed(&l.site.app, &[honest]).await.unwrap(),
        [ReportOutcome::Accepted]
    );
    assert_eq!(l.findings().await, 1);
    assert_eq!(
        reports::completed(&l.site.app, &[completion(&l.discovery, None, vec![])])
            .await
            .unwrap(),
        [ReportOutcome::Accepted]
    );
    l.site.stop().await.unwrap();
}

async fn raw_values_and_unbounded_findings_are_refused_and_write_nothing(backend: Backend) {
    let l = leased_site(backend).await;
    let (a, a_id) = l.process[0].clone();
    let with = |f: NewFinding| [completion(&a, Some(a_id), vec![f])];
    // Raw values in place of masked samples: a card number that passes Luhn, a full
    // address, and one value of one kind hidden in the sample of another.
    for (classifier, sample) in [
        ("payment_card", "4111 1111 1111 1111"),
        ("payment_card", "4111111111111111"),
        ("email", "jane.doe@example.com"),
        ("email", "j***@example.com, also jane.doe@example.com"),
        ("us_ssn", "card 4111-1111-1111-1111"),
    ] {
        l.refused(&with(finding(a_id, classifier, sample)), "masked_sample")
            .await;
    }
    // Counts must be positive and bounded.
    for count in [0, -3, i64::MAX] {
        let mut f = finding(a_id, "email", "j***@example.com");
        f.count = count;
        l.refused(&with(f), "count").await;
    }
    // Classifiers from the known set, strings of bounded length.
    l.refused(
        &with(finding(a_id, "no_such_classifier", "***")),
        "classifier",
    )
    .await;
    let mut f = finding(a_id, "email", "j***@example.com");
    f.location = "line:1,".repeat(2000);
    l.refused(&with(f), "location").await;
    let mut f = finding(a_id, "email", "j***@example.com");
    f.masked_sample = "*".repeat(100_000);
    l.refused(&with(f), "masked_sample").await;
    let mut f = finding(a_id, "email", "j***@example.com");
    f.confidence = f64::NAN;
    l.refused(&with(f), "confidence").await;
    // What the scanner itself produces passes.
    let honest: Vec<NewFinding> = [
        ("email", "j***@example.com"),
        ("payment_card", "**** **** **** 1111"),
        ("us_ssn", "***-**-6789"),
        ("iban", "DE****************3000"),
        ("phone_number", "+* *** *** **71"),
        ("ipv4_address", "192.*.*.*"),
        ("ipv6_address", "2001:****"),
        ("aws_access_key_id", "AKIA****************"),
        ("private_key", "-----BEGIN RSA PRIVATE KEY----- ****"),
        ("jwt", "JWT(alg=HS256).****.****"),
    ]
    .iter()
    .map(|(c, s)| finding(a_id, c, s))
    .collect();
    assert_eq!(
        reports::completed(&l.site.app, &[completion(&a, Some(a_id), honest)])
            .await
            .unwrap(),
        [ReportOutcome::Accepted]
    );
    assert_eq!(l.findings().await, 10);
    l.site.stop().await.unwrap();
}

// ---- an orchestrator and the worker API over HTTP (PostgreSQL) -----------------------

/// A `--mode orchestrator` process on a fresh PostgreSQL database, node id `orch-a`,
/// with the worker API, and the test's own handle on its store.
struct Orchestrator {
    process: SiteProcess,
    store: Arc<dyn Store>,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
    _share: tempfile::TempDir,
}

async fn orchestrator() -> Orchestrator {
    meridian_tests::init();
    let share = share_with_two_files();
    let dir = tempfile::tempdir().unwrap();
    let url = meridian_tests::pg::fresh_database().await;
    let config = dir.path().join("site.yaml");
    std::fs::write(
        &config,
        format!(
            "database:\n  url: \"{url}\"\n  max_connections: 4\nnode:\n  id: orch-a\n  data_dir: {}\n\
site:\n  name: london\nworker:\n  global_cpu_threshold_percent: 100\n  credential_ttl_seconds: 600\n{}",
            dir.path().display(),
            source_yaml("share", share.path())
        ),
    )
    .unwrap();
    let process = SiteProcess::start_orchestrator(
        &config,
        free_port(),
        &dir.path().join("orchestrator.log"),
        &[("MERIDIAN_WORKER_AUTH_KEY", KEY)],
    )
    .await;
    let store = meridian_store::open(&url, 2).await.expect("store");
    Orchestrator {
        process,
        store,
        http: reqwest::Client::new(),
        _dir: dir,
        _share: share,
    }
}

impl Orchestrator {
    async fn call(&self, path: &str, body: &Value, credential: &str) -> (u16, Value) {
        let r = self
            .http
            .post(format!("{}{path}", self.process.base))
            .bearer_auth(credential)
            .json(body)
            .send()
            .await
            .expect("request");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    async fn start_job(&self) -> String {
        let r = self
            .http
            .post(format!("{}/start_job", self.process.base))
            .json(&json!({ "name": "hostile", "data_sources": ["share"] }))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success());
        let body: Value = r.json().await.unwrap();
        body["job_id"].as_str().unwrap().to_owned()
    }

    async fn stop(self) {
        self.store.close().await;
    }
}

fn get_task(worker: &str) -> Value {
    json!({ "worker_id": worker, "slots": 1, "max_tasks": 1, "wait_seconds": 0 })
}

/// A credential with the given `iat` and `exp`, signed with the site's key.
fn credential_at(worker: &str, iat: u64, exp: u64) -> String {
    let claims = token::WorkerClaims {
        sub: worker.into(),
        iss: "meridian-worker".into(),
        aud: "meridian-site:london".into(),
        exp,
        iat,
    };
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(KEY.as_bytes()),
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn self_signed_credentials_beyond_the_ttl_or_from_the_future_get_401() {
    let o = orchestrator().await;
    let now = jsonwebtoken::get_current_timestamp();
    // Within worker.credential_ttl_seconds (600): accepted (no work yet: 204).
    let fresh = token::mint(KEY.as_bytes(), "london", "w", 300);
    assert_eq!(o.call("/get_task", &get_task("w"), &fresh).await.0, 204);
    // Signed for a year, for ten minutes and a second, or issued an hour from now.
    for forged in [
        token::mint(KEY.as_bytes(), "london", "w", 365 * 86_400),
        credential_at("w", now, now + 601),
        credential_at("w", now + 3600, now + 3900),
    ] {
        let (code, body) = o.call("/get_task", &get_task("w"), &forged).await;
        assert_eq!(code, 401, "{body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .contains("credential"),
            "{body}"
        );
    }
    // A credential without `iat` cannot say how long it lives.
    let no_iat = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &json!({ "sub": "w", "iss": "meridian-worker", "aud": "meridian-site:london", "exp": now + 60 }),
        &jsonwebtoken::EncodingKey::from_secret(KEY.as_bytes()),
    )
    .unwrap();
    assert_eq!(o.call("/get_task", &get_task("w"), &no_iat).await.0, 401);
    o.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_named_after_a_replica_keeps_its_lease_when_the_replica_restarts() {
    let o = orchestrator().await;
    // The worker calls itself what the replica is called...
    let cred = token::mint(KEY.as_bytes(), "london", "orch-a", 300);
    o.start_job().await;
    let (code, body) = o.call("/get_task", &get_task("orch-a"), &cred).await;
    assert_eq!(code, 200, "{body}");
    let packet = &body["tasks"][0];
    // ...and the replica restarts, handing back its own leases: the worker's lease is
    // not one of them.
    let released = o
        .store
        .release_node_leases("orch-a", true, 3)
        .await
        .unwrap();
    assert_eq!(released, 0, "a replica released a remote worker's lease");
    let beat = json!({ "worker_id": "orch-a", "task_id": packet["task_id"], "lease_token": packet["lease_token"] });
    let (code, body) = o.call("/report_heartbeat", &beat, &cred).await;
    assert_eq!(code, 200, "{body}");
    o.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worker_api_answers_a_report_about_another_object_with_422_naming_it() {
    let o = orchestrator().await;
    let cred = token::mint(KEY.as_bytes(), "london", "w", 300);
    let job = o.start_job().await;
    let (code, body) = o.call("/get_task", &get_task("w"), &cred).await;
    assert_eq!(code, 200, "{body}");
    let discovery = body["tasks"][0].clone();
    assert_eq!(discovery["phase"], "DISCOVERY");
    // A discovery task that completes with a raw finding about some object.
    let complete = json!({ "worker_id": "w", "completions": [{
        "task_id": discovery["task_id"], "lease_token": discovery["lease_token"],
        "findings": [{ "object_id": 1, "classifier": "email", "location": "line:1",
            "count": 1, "masked_sample": "jane.doe@example.com", "confidence": 1.0 }],
    }]});
    let (code, body) = o.call("/complete_task", &complete, &cred).await;
    assert_eq!(code, 422, "{body}");
    assert_eq!(body["error"]["code"], "invalid", "{body}");
    let findings = o
        .store
        .findings_page(&job, &FindingsRange::after(0, 10))
        .await
        .unwrap();
    assert!(findings.rows.is_empty());
    let beat = json!({ "worker_id": "w", "task_id": discovery["task_id"], "lease_token": discovery["lease_token"] });
    assert_eq!(o.call("/report_heartbeat", &beat, &cred).await.0, 200);
    o.stop().await;
}

/// PostgreSQL text cannot hold a NUL character: a NUL in a report, a name, an id or a
/// query was a 500 from the database (found by tests/schemathesis.sh). Every API
/// refuses it before the store sees it, naming where it was, and writes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nul_characters_anywhere_in_a_request_are_refused_not_a_500() {
    let o = orchestrator().await;
    let cred = token::mint(KEY.as_bytes(), "london", "w", 300);
    let job = o.start_job().await;
    let (code, body) = o.call("/get_task", &get_task("w"), &cred).await;
    assert_eq!(code, 200, "{body}");
    let task = body["tasks"][0].clone();
    let lease =
        json!({ "worker_id": "w", "task_id": task["task_id"], "lease_token": task["lease_token"] });
    let mut fail = lease.clone();
    fail["attempt"] = json!(1);
    fail["error"] = json!("cannot read a\u{0}b");
    fail["retryable"] = json!(false);
    let (code, body) = o.call("/fail_task", &fail, &cred).await;
    assert_eq!(code, 422, "{body}");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("`error`") && message.contains("NUL"),
        "{body}"
    );
    // Nothing was written: the lease is still current.
    assert_eq!(o.call("/report_heartbeat", &lease, &cred).await.0, 200);
    let complete = json!({ "worker_id": "w", "completions": [{
        "task_id": task["task_id"], "lease_token": task["lease_token"],
        "object": { "object_id": 1, "outcome": "SKIPPED", "reason": "x\u{0}" } }] });
    let (code, body) = o.call("/complete_task", &complete, &cred).await;
    assert_eq!(code, 422, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("`completions[0].object.reason`"),
        "{body}"
    );
    // A worker named with a NUL (its credential says so too) leases nothing.
    let odd = token::mint(KEY.as_bytes(), "london", "w\u{0}", 300);
    let (code, body) = o.call("/get_task", &get_task("w\u{0}"), &odd).await;
    assert_eq!(code, 422, "{body}");
    // The site API: a name in a body, an id in the path, a cursor in the query.
    let base = &o.process.base;
    let r = o
        .http
        .post(format!("{base}/start_job"))
        .json(&json!({ "name": "a\u{0}", "data_sources": ["share"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 422);
    for path in [
        format!("/get_job_status/{job}%00"),
        // Not NUL, but axum answered a path that is not UTF-8 in plain text.
        "/get_job_status/%FF".to_owned(),
        format!("/jobs/{job}%00/findings"),
        "/jobs?cursor=%00".to_owned(),
        format!("/jobs/{job}/findings?cursor=a%00"),
    ] {
        let r = o.http.get(format!("{base}{path}")).send().await.unwrap();
        let code = r.status().as_u16();
        let body: Value = r.json().await.unwrap_or(Value::Null);
        assert_eq!(code, 400, "{path}: {body}");
        assert_eq!(body["error"]["code"], "bad_request", "{path}: {body}");
    }
    let r = o
        .http
        .post(format!("{base}/cancel_job/{job}%00"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    o.stop().await;
}

// ---- the remote worker reads only its own data sources -------------------------------

/// A reporter that records what the runner reports, with a worker's own configuration.
struct Recorder {
    cfg: Arc<SystemConfig>,
    completions: Mutex<Vec<Completion>>,
    discovered: Mutex<Vec<NewObject>>,
    failures: Mutex<Vec<(String, FailureKind)>>,
}

impl Recorder {
    /// A worker whose configuration names one filesystem data source, `id` at `root`.
    fn over(id: &str, root: &Path) -> Arc<Recorder> {
        let cfg = ConfigLayers::new()
            .with_yaml(&source_yaml(id, root))
            .preliminary(RunMode::Single)
            .expect("worker configuration");
        Arc::new(Recorder {
            cfg: Arc::new(cfg),
            completions: Mutex::default(),
            discovered: Mutex::default(),
            failures: Mutex::default(),
        })
    }

    /// The completion reported last (the test expects one).
    fn last_completion(&self) -> Completion {
        self.completions
            .lock()
            .unwrap()
            .pop()
            .expect("a completion")
    }
}

#[async_trait::async_trait]
impl Reporter for Recorder {
    fn cfg(&self) -> Arc<SystemConfig> {
        self.cfg.clone()
    }
    async fn heartbeat(&self, _: &Lease) -> anyhow::Result<HeartbeatOutcome> {
        Ok(HeartbeatOutcome::Extended { expires_at: 0 })
    }
    async fn discovered(&self, _: &Lease, b: &DiscoveryBatch) -> anyhow::Result<ReportOutcome> {
        self.discovered.lock().unwrap().extend(b.objects.clone());
        Ok(ReportOutcome::Accepted)
    }
    async fn failed(
        &self,
        _: &Lease,
        _: u32,
        error: &str,
        kind: FailureKind,
    ) -> anyhow::Result<FailOutcome> {
        self.failures.lock().unwrap().push((error.into(), kind));
        Ok(FailOutcome::Failed)
    }
    fn complete(&self, c: Completion) {
        self.completions.lock().unwrap().push(c);
    }
    fn released(&self) {}
    async fn interrupted(&self, _: &Lease, _: u32) {}
}

fn packet(phase: Phase, data_source: Value, payload: Value) -> WorkPacket {
    WorkPacket {
        task_id: 1,
        lease_token: "t".into(),
        job_id: "j".into(),
        phase,
        attempt: 1,
        data_source,
        options: Default::default(),
        payload,
        lease_expires_at: String::new(),
        heartbeat_interval_seconds: 60,
        trace_id: None,
    }
}

async fn run(worker: &Arc<Recorder>, p: WorkPacket) {
    let reporter: Arc<dyn Reporter> = worker.clone();
    runner::run(
        &reporter,
        "w",
        p,
        &CancellationToken::new(),
        runner::ScanOn::BlockingPool,
        runner::Heartbeat::PerTask,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_scans_its_own_configured_root_and_refuses_unknown_data_sources() {
    meridian_tests::init();
    // The worker's own `share` holds nothing sensitive; the root a packet names holds
    // an address and a file the worker's share does not have.
    let own = tempfile::tempdir().unwrap();
    std::fs::write(own.path().join("a.txt"), "nothing here\n").unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    std::fs::write(elsewhere.path().join("a.txt"), "jane.doe@example.com\n").unwrap();
    std::fs::write(elsewhere.path().join("secret.txt"), "x\n").unwrap();
    let worker = Recorder::over("share", own.path());
    let named = json!({ "id": "share", "kind": "filesystem", "root": elsewhere.path() });
    let object = json!({ "object_id": 7, "key": "a.txt", "size_bytes": 21 });
    run(
        &worker,
        packet(Phase::Process, named.clone(), object.clone()),
    )
    .await;
    let done = worker.last_completion();
    assert!(
        done.findings.is_empty(),
        "the worker read the packet's root: {:?}",
        done.findings
    );
    run(&worker, packet(Phase::Discovery, named, json!({}))).await;
    let keys: Vec<String> = worker
        .discovered
        .lock()
        .unwrap()
        .iter()
        .map(|o| o.key.clone())
        .collect();
    assert_eq!(keys, ["a.txt"], "discovery walked the packet's root");
    // A data source this worker's configuration does not name: refused, nothing read.
    let unknown = json!({ "id": "elsewhere", "kind": "filesystem", "root": elsewhere.path() });
    worker.completions.lock().unwrap().clear();
    run(&worker, packet(Phase::Process, unknown, object)).await;
    assert!(worker.completions.lock().unwrap().is_empty());
    let failures = worker.failures.lock().unwrap().clone();
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert_eq!(failures[0].1, FailureKind::Permanent);
    assert!(failures[0].0.contains("elsewhere"), "{failures:?}");
}

/// A batched packet: every object is scanned and gets one outcome, its findings name
/// it, and an object that is gone by the time it is read is skipped without failing
/// its neighbours.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_scans_every_object_of_a_batched_packet() {
    meridian_tests::init();
    let own = tempfile::tempdir().unwrap();
    std::fs::write(own.path().join("a.txt"), "jane.doe@example.com\n").unwrap();
    std::fs::write(own.path().join("b.txt"), "nothing here\n").unwrap();
    let worker = Recorder::over("share", own.path());
    let source = json!({ "id": "share", "kind": "filesystem" });
    let objects = json!({ "objects": [
        { "object_id": 7, "key": "a.txt", "size_bytes": 21 },
        { "object_id": 8, "key": "gone.txt", "size_bytes": 5 },
        { "object_id": 9, "key": "b.txt", "size_bytes": 13 },
    ] });
    run(&worker, packet(Phase::Process, source, objects)).await;
    assert!(worker.failures.lock().unwrap().is_empty());
    let done = worker.last_completion();
    let outcomes: Vec<(i64, ObjectOutcome)> = done
        .objects
        .iter()
        .map(|o| (o.object_id, o.outcome))
        .collect();
    assert_eq!(
        outcomes,
        [
            (7, ObjectOutcome::Complete),
            (8, ObjectOutcome::Skipped),
            (9, ObjectOutcome::Complete)
        ],
        "{:?}",
        done.objects
    );
    assert_eq!(done.findings.len(), 1, "{:?}", done.findings);
    assert_eq!(done.findings[0].object_id, 7);
    assert_eq!(done.findings[0].classifier, "email");
}
