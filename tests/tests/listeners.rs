//! The listeners of a site and of the master: the worker API on its own HTTPS
//! listener, probes on plain HTTP, the master's user API over HTTPS, the
//! configuration rules around them, the master's clients (strict site URLs, no
//! redirects), certificate expiry (gauge and warning) and graceful rotation.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use meridian_child::{RunMode, Site, SiteOptions};
use meridian_config::{ConfigLayers, finalize};
use meridian_master::MasterConfig;
use meridian_master::certs;
use meridian_service::tls::{self, Limits, ServerTls};
use meridian_tests::mesh::mtls_client;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

fn ca_client(ca: &Path) -> reqwest::Client {
    let ca = reqwest::Certificate::from_pem(&std::fs::read(ca).unwrap()).unwrap();
    reqwest::Client::builder()
        .tls_certs_only([ca])
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// A certificate for `identity` (also `localhost`, `127.0.0.1`) signed by a new CA,
/// valid for `days`: (ca, cert, key) PEM.
fn short_lived(identity: &str, days: i64) -> (String, String, String) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair, KeyUsagePurpose};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca, ca_key);
    let mut leaf = CertificateParams::new(vec![
        identity.to_owned(),
        "localhost".into(),
        "127.0.0.1".into(),
    ])
    .unwrap();
    leaf.not_before = rcgen::date_time_ymd(2020, 1, 1);
    let until = std::time::SystemTime::now() + Duration::from_secs(days as u64 * 86_400);
    leaf.not_after = until.into();
    leaf.extended_key_usages = vec![
        rcgen::ExtendedKeyUsagePurpose::ServerAuth,
        rcgen::ExtendedKeyUsagePurpose::ClientAuth,
    ];
    let key = KeyPair::generate().unwrap();
    let cert = leaf.signed_by(&key, &issuer).unwrap();
    (ca_cert.pem(), cert.pem(), key.serialize_pem())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worker_api_moves_to_worker_listen_and_probes_answer_on_ops_listen() {
    meridian_tests::init();
    let dir = tempfile::tempdir().unwrap();
    let c = certs::init(&dir.path().join("certs"), &["london".into()]).unwrap();
    let yaml = format!(
        "site:\n  name: london\napi:\n  listen: 127.0.0.1:0\n  worker_listen: 127.0.0.1:0\n  ops_listen: 127.0.0.1:0\n  tls:\n    ca_file: {}\n    cert_file: {}\n    key_file: {}\n",
        c.ca().display(),
        c.cert("london").display(),
        c.key("london").display()
    );
    let layers = ConfigLayers::new()
        .with_yaml(&yaml)
        .with_value("database.url", "sqlite::memory:")
        .with_value("node.data_dir", dir.path());
    let site = Site::build(SiteOptions::new(layers))
        .await
        .expect("site builds");
    let api = format!("https://{}", site.local_addr());
    let workers = format!("https://{}", site.worker_addr().expect("worker listener"));
    let ops = format!("http://{}", site.ops_addr().expect("ops listener"));
    let stop = CancellationToken::new();
    let run = tokio::spawn(site.run(stop.clone()));

    let master = mtls_client(&c, "master");
    let ready = Instant::now();
    while !reqwest::get(format!("{ops}/ready"))
        .await
        .is_ok_and(|r| r.status() == 200)
    {
        assert!(ready.elapsed() < Duration::from_secs(20), "never ready");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The site API keeps its routes and loses the worker API.
    let r = master
        .get(format!("{api}/data_sources"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = master
        .post(format!("{api}/get_task"))
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    let body: serde_json::Value = r.json().await.unwrap();
    let message = body["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        message.starts_with("no route"),
        "the worker API is no longer on api.listen: {body}"
    );
    // The worker listener: HTTPS with the site's certificate, no client certificate
    // needed; the credential is what is checked (absent here), and nothing else.
    let anonymous = ca_client(&c.ca());
    let r = anonymous
        .post(format!("{workers}/get_task"))
        .json(&serde_json::json!({"worker_id": "w", "slots": 1, "max_tasks": 1}))
        .send()
        .await
        .expect("TLS without a client certificate");
    // A single-mode site answers its worker API with "only by --mode orchestrator":
    // the route is there, which is what this listener is for.
    let body: serde_json::Value = r.json().await.unwrap();
    let message = body["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        message.contains("worker API"),
        "the worker API is on api.worker_listen: {body}"
    );
    let r = anonymous
        .get(format!("{workers}/data_sources"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404, "no site API on the worker listener");
    // Probes on plain HTTP, and nothing else.
    for path in ["/health", "/ready", "/metrics"] {
        let r = reqwest::get(format!("{ops}{path}")).await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
    }
    for path in ["/data_sources", "/jobs"] {
        let r = reqwest::get(format!("{ops}{path}")).await.unwrap();
        assert_eq!(r.status(), 404, "{path} is data, not a probe");
    }
    let metrics = reqwest::get(format!("{ops}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for role in ["site-api", "worker-api"] {
        let line = format!(
            "meridian_tls_certificate_expiry_timestamp_seconds{{role=\"{role}\",identity=\"london\"}}"
        );
        assert!(metrics.contains(&line), "{line} missing from:\n{metrics}");
    }
    stop.cancel();
    run.await.unwrap().unwrap();
}

#[test]
fn listener_rules_of_the_site_configuration() {
    let err = finalize(
        &ConfigLayers::new().with_yaml("api:\n  worker_listen: 0.0.0.0:8444\n"),
        &[],
        RunMode::Single,
    )
    .unwrap_err();
    assert_eq!(err.key, "api.worker_listen", "{err}");
    for (yaml, key) in [
        ("api:\n  ops_listen: nowhere\n", "api.ops_listen"),
        (
            "api:\n  header_read_timeout_seconds: 0\n",
            "api.header_read_timeout_seconds",
        ),
        ("api:\n  max_connections: 0\n", "api.max_connections"),
        (
            "worker:\n  orchestrator_url: https://orchestrators:8444\n",
            "worker.tls.ca_file",
        ),
        (
            "worker:\n  tls:\n    ca_file: /x\n    cert_file: /y\n",
            "worker.tls.cert_file",
        ),
    ] {
        let err = finalize(&ConfigLayers::new().with_yaml(yaml), &[], RunMode::Single).unwrap_err();
        assert_eq!(err.key, key, "{yaml}: {err}");
    }
    let ok = "api:\n  worker_listen: 127.0.0.1:0\n  ops_listen: 0.0.0.0:0\n";
    finalize(&ConfigLayers::new().with_yaml(ok), &[], RunMode::Single)
        .expect("loopback worker API");
}

fn master_yaml(c: &certs::DevCerts, dir: &Path, extra: &str) -> std::path::PathBuf {
    let yaml = format!(
        "master:\n  data_dir: {}\n{extra}auth:\n  algorithm: ES256\n  issuer: meridian\n  audience: meridian-api\n  public_key_file: {}\n",
        dir.join("data").display(),
        c.jwt_public().display()
    );
    let path = dir.join(format!("master-{}.yaml", uuid::Uuid::new_v4()));
    std::fs::write(&path, yaml).unwrap();
    path
}

#[test]
fn master_configuration_refuses_what_would_break_or_bypass_it() {
    let dir = tempfile::tempdir().unwrap();
    let c = certs::init(&dir.path().join("certs"), &["london".into()]).unwrap();
    let tls = format!(
        "tls:\n  ca_file: {}\n  cert_file: {}\n  key_file: {}\n",
        c.ca().display(),
        c.cert("master").display(),
        c.key("master").display()
    );
    let cases = [
        ("  listen: 0.0.0.0:8400\n".to_owned(), "master.tls"),
        ("  max_body_bytes: 0\n".to_owned(), "master.max_body_bytes"),
        ("  ops_listen: x\n".to_owned(), "master.ops_listen"),
        (
            "  idle_timeout_seconds: 0\n".to_owned(),
            "master.idle_timeout_seconds",
        ),
        (
            format!(
                "{}  reload_interval_seconds: 0\n",
                tls.replacen("tls:\n", "", 1)
            ),
            "tls.reload_interval_seconds",
        ),
        (
            "sites:\n  - name: london\n    url: HTTPS://127.0.0.1:8441\n".to_owned(),
            "sites[0].url",
        ),
        (
            "sites:\n  - name: london\n    url: ' https://127.0.0.1:8441'\n".to_owned(),
            "sites[0].url",
        ),
        (
            "sites:\n  - name: london\n    url: http://10.1.2.3:8441\n".to_owned(),
            "sites[0].url",
        ),
        (
            "sites:\n  - name: london\n    url: https://user:pw@127.0.0.1:8441\n".to_owned(),
            "sites[0].url",
        ),
    ];
    for (extra, key) in cases {
        // Lines indented under `master:` go there; the others are top-level sections.
        let extra = if key == "tls.reload_interval_seconds" {
            format!("tls:\n{extra}")
        } else if extra.starts_with("  ") {
            extra
        } else {
            format!("{tls}{extra}")
        };
        let path = master_yaml(&c, dir.path(), &extra);
        let err = MasterConfig::load(Some(&path), &[]).unwrap_err();
        assert_eq!(err.key, key, "{extra}: {err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_master_does_not_follow_a_redirect_from_a_site() {
    meridian_tests::init();
    let hits = Arc::new(AtomicUsize::new(0));
    let elsewhere = {
        let hits = hits.clone();
        axum::Router::new().fallback(move || {
            hits.fetch_add(1, Ordering::SeqCst);
            async { "taken" }
        })
    };
    let other = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let target = format!("http://{}/start_job", other.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(other, elsewhere).await });
    let redirecting = axum::Router::new().fallback(move || {
        let target = target.clone();
        async move {
            (
                axum::http::StatusCode::TEMPORARY_REDIRECT,
                [(axum::http::header::LOCATION, target)],
            )
        }
    });
    let site = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", site.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(site, redirecting).await });

    let mut cfg = MasterConfig::default();
    cfg.sites.push(meridian_master::config::SiteEntry {
        name: "london".into(),
        url,
    });
    let clients = meridian_master::clients::SiteClients::new(&cfg).unwrap();
    let london = clients.get("london").unwrap();
    let resp = london
        .http
        .post(london.endpoint("/start_job"))
        .json(&serde_json::json!({"job_id": "j"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 307, "the redirect is the answer");
    assert_eq!(hits.load(Ordering::SeqCst), 0, "the master went elsewhere");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_master_serves_https_warns_of_expiry_and_probes_on_plain_http() {
    let dir = tempfile::tempdir().unwrap();
    let c = certs::init(&dir.path().join("certs"), &["london".into()]).unwrap();
    let (ca, cert, key) = short_lived("master-api.example", 5);
    for (name, pem) in [("api-ca.pem", &ca), ("api.pem", &cert), ("api.key", &key)] {
        std::fs::write(dir.path().join(name), pem).unwrap();
    }
    let (port, ops_port) = (
        meridian_tests::process::free_port(),
        meridian_tests::process::free_port(),
    );
    let extra = format!(
        "  listen: 127.0.0.1:{port}\n  ops_listen: 127.0.0.1:{ops_port}\n  tls:\n    cert_file: {}\n    key_file: {}\n",
        dir.path().join("api.pem").display(),
        dir.path().join("api.key").display()
    );
    let config = master_yaml(&c, dir.path(), &extra);
    let log = dir.path().join("master.log");
    let mut child = std::process::Command::new(meridian_tests::process::master_binary())
        .args(["serve", "--config"])
        .arg(&config)
        .stdout(std::fs::File::create(&log).unwrap())
        .stderr(std::fs::File::create(dir.path().join("master.err")).unwrap())
        .spawn()
        .unwrap();
    let ops = format!("http://127.0.0.1:{ops_port}");
    let started = Instant::now();
    while !reqwest::get(format!("{ops}/ready"))
        .await
        .is_ok_and(|r| r.status() == 200)
    {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "master never ready: {}",
            std::fs::read_to_string(dir.path().join("master.err")).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let https = ca_client(&dir.path().join("api-ca.pem"));
    let r = https
        .get(format!("https://127.0.0.1:{port}/health"))
        .send()
        .await
        .expect("the user API over HTTPS");
    assert_eq!(r.status(), 200);
    let plain = reqwest::get(format!("http://127.0.0.1:{port}/health")).await;
    assert!(
        plain.is_err() || plain.unwrap().status() == 400,
        "plain HTTP on the HTTPS port"
    );
    let r = reqwest::get(format!("{ops}/api/v1/jobs")).await.unwrap();
    assert_eq!(r.status(), 404, "no user API on the ops listener");
    let metrics = reqwest::get(format!("{ops}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let line = metrics
        .lines()
        .find(|l| {
            l.starts_with("meridian_tls_certificate_expiry_timestamp_seconds")
                && l.contains("role=\"master-api\"")
                && l.contains("identity=\"master-api.example\"")
        })
        .unwrap_or_else(|| panic!("no master-api expiry gauge in:\n{metrics}"));
    let value: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!((value - now - 5.0 * 86_400.0).abs() < 3600.0, "{line}");
    let _ = child.kill();
    let _ = child.wait();
    let text = std::fs::read_to_string(&log).unwrap()
        + &std::fs::read_to_string(dir.path().join("master.err")).unwrap();
    assert!(
        text.lines()
            .any(|l| l.contains("WARN") && l.contains("master-api") && l.contains("expires in")),
        "no expiry warning in:\n{text}"
    );
}

/// One HTTP/1.1 request on a raw TLS connection; returns the peer's leaf certificate.
async fn tls_get(
    connector: &tokio_rustls::TlsConnector,
    addr: std::net::SocketAddr,
) -> (
    tokio_rustls::client::TlsStream<tokio::net::TcpStream>,
    Vec<u8>,
) {
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut s = connector.connect(name, tcp).await.unwrap();
    s.write_all(b"GET /x HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut buf = vec![0u8; 4096];
    let n = s.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    let leaf = s.get_ref().1.peer_certificates().unwrap()[0].to_vec();
    (s, leaf)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_closes_existing_connections_and_new_sessions_get_the_new_certificate() {
    meridian_tests::init();
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = short_lived("london", 300);
    let files = tls::TlsFiles {
        ca_file: dir.path().join("ca.pem"),
        cert_file: dir.path().join("cert.pem"),
        key_file: dir.path().join("cert.key"),
    };
    std::fs::write(&files.ca_file, &ca).unwrap();
    std::fs::write(&files.cert_file, &cert).unwrap();
    std::fs::write(&files.key_file, &key).unwrap();
    let build = |f: &tls::TlsFiles| tls::server_config_with(&f.cert_file, &f.key_file, None, false);
    let server_tls = ServerTls::new(build(&files).unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = CancellationToken::new();
    let router = axum::Router::new().route("/x", axum::routing::get(|| async { "x" }));
    let server = tls::server::spawn(
        listener,
        router,
        Some(server_tls.clone()),
        Limits::default(),
        stop.clone(),
    );
    let watcher = {
        let (f, t) = (files.clone(), server_tls.clone());
        tokio::spawn(tls::keep_current(
            files.clone(),
            Duration::from_millis(200),
            vec!["site-api"],
            stop.clone(),
            move || {
                t.rotate(build(&f)?);
                Ok(())
            },
        ))
    };

    // Trust both the old and the new CA.
    let (ca2, cert2, key2) = short_lived("london", 3);
    let mut roots = rustls::RootCertStore::empty();
    for pem in [&ca, &ca2] {
        use rustls::pki_types::pem::PemObject;
        roots
            .add(rustls::pki_types::CertificateDer::from_pem_slice(pem.as_bytes()).unwrap())
            .unwrap();
    }
    let connector = tokio_rustls::TlsConnector::from(Arc::new(
        rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    ));
    let (mut old, old_leaf) = tls_get(&connector, addr).await;

    std::fs::write(&files.cert_file, &cert2).unwrap();
    std::fs::write(&files.key_file, &key2).unwrap();
    // The kept-alive connection is closed (the idle timeout is 60 s, so only the
    // rotation can close it), and a new one sees the new certificate.
    let mut buf = [0u8; 64];
    let closed = tokio::time::timeout(Duration::from_secs(10), old.read(&mut buf)).await;
    assert!(
        matches!(closed, Ok(Ok(0)) | Ok(Err(_))),
        "the old connection was not closed: {closed:?}"
    );
    let (_new, new_leaf) = tls_get(&connector, addr).await;
    assert_ne!(old_leaf, new_leaf, "a new session uses the new certificate");
    let expiry = tls::Expiry::of(&new_leaf).unwrap();
    assert!(expiry.remaining_seconds() < 4 * 86_400);
    stop.cancel();
    server.await.unwrap().unwrap();
    watcher.await.unwrap();
}

/// The distributed model across two addresses over TLS: an orchestrator whose worker
/// API listens on 127.0.0.2 with the site's certificate (which names `london`,
/// `localhost` and 127.0.0.1, not 127.0.0.2: a worker checks the site's identity,
/// not the URL's host), a remote worker trusting the mesh CA that finishes a job with
/// the exact counts, and one trusting another CA that gets no work and logs why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_workers_reach_the_worker_api_on_another_address_only_trusting_the_site_ca() {
    use meridian_tests::process::{SiteProcess, free_port, free_port_on};
    meridian_tests::init();
    let dir = tempfile::tempdir().unwrap();
    let c = certs::init(&dir.path().join("certs"), &["london".into()]).unwrap();
    let stranger = certs::init(&dir.path().join("other-ca"), &["london".into()]).unwrap();
    let corpus = meridian_tests::corpus::generate(&dir.path().join("share"), 7, 30, 12);
    let url = meridian_tests::pg::fresh_database().await;
    let (api, workers, ops) = (free_port(), free_port_on("127.0.0.2"), free_port());
    let config = dir.path().join("site.yaml");
    let yaml = [
        "site:\n  name: london\n  federated: true".to_owned(),
        format!("node:\n  data_dir: {}", dir.path().display()),
        format!("database:\n  url: \"{url}\""),
        format!("api:\n  listen: 127.0.0.1:{api}\n  worker_listen: 127.0.0.2:{workers}"),
        format!("  ops_listen: 127.0.0.1:{ops}"),
        format!(
            "  tls:\n    ca_file: {}\n    cert_file: {}\n    key_file: {}",
            c.ca().display(),
            c.cert("london").display(),
            c.key("london").display()
        ),
        "orchestrator:\n  long_poll_timeout_seconds: 2\n  reaper_interval_seconds: 1".to_owned(),
        "  shutdown_grace_seconds: 5".to_owned(),
        "worker:\n  task_timeout_seconds: 5\n  heartbeat_interval_seconds: 1".to_owned(),
        "  global_cpu_threshold_percent: 100\n  retry_backoff_base_milliseconds: 50".to_owned(),
        "  retry_backoff_max_seconds: 1\n  slot_count: 4\n  drain_seconds: 2".to_owned(),
        format!(
            "data_sources:\n  - id: share\n    kind: filesystem\n    root: {}",
            corpus.root.display()
        ),
    ];
    std::fs::write(&config, yaml.join("\n") + "\n").unwrap();
    let config_arg = config.to_str().unwrap();
    let key = (
        "MERIDIAN_WORKER_AUTH_KEY",
        "listeners-test-worker-key-0123456789abcdef",
    );
    let _orchestrator = SiteProcess::start_with_args(
        &["--mode", "orchestrator", "--config", config_arg],
        &[key, ("MERIDIAN_NODE__ID", "orch")],
        &dir.path().join("orch.log"),
        &format!("http://127.0.0.1:{ops}"),
    )
    .await;
    let master = mtls_client(&c, "master");
    let site = format!("https://127.0.0.1:{api}");
    let r = master
        .post(format!("{site}/start_job"))
        .json(&serde_json::json!({"name": "over-tls", "data_sources": ["share"]}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "start_job: {}", r.status());
    let job = r.json::<serde_json::Value>().await.unwrap()["job_id"]
        .as_str()
        .unwrap()
        .to_owned();

    let orchestrator_url = format!("https://127.0.0.2:{workers}");
    let worker = |name: &str, ca: &Path| {
        SiteProcess::start_worker(
            &config,
            &dir.path().join(format!("{name}.log")),
            &[
                key,
                ("MERIDIAN_NODE__ID", name),
                ("MERIDIAN_WORKER__ORCHESTRATOR_URL", &orchestrator_url),
                ("MERIDIAN_WORKER__TLS__CA_FILE", ca.to_str().unwrap()),
            ],
        )
    };
    // Alone with the job, the worker trusting another CA: it keeps failing the TLS
    // handshake, says so, and no task is leased.
    let untrusting = worker("untrusting", &stranger.ca());
    let started = Instant::now();
    while !untrusting.log_text().contains("cannot get work") {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the untrusting worker never reported its failure:\n{}",
            untrusting.log_text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let log = untrusting.log_text();
    assert!(
        log.to_ascii_lowercase().contains("certificate"),
        "the log does not say the certificate was the problem:\n{log}"
    );
    let db = sqlx::PgPool::connect(&url).await.unwrap();
    let leases: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM lease_history")
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(leases, 0, "a worker that does not trust the site got work");

    let _trusting = worker("trusting", &c.ca());
    let started = Instant::now();
    let done = loop {
        let status: serde_json::Value = master
            .get(format!("{site}/get_job_status/{job}"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if ["COMPLETED", "FAILED", "CANCELLED"].contains(&status["state"].as_str().unwrap_or("")) {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "job not finished: {status}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(done["state"], "COMPLETED", "{done}");
    assert_eq!(
        meridian_tests::site::findings_by_classifier(&done),
        corpus.expected,
        "{done}"
    );
    let holders: Vec<String> =
        sqlx::query_scalar("SELECT DISTINCT worker_id FROM lease_history ORDER BY 1")
            .fetch_all(&db)
            .await
            .unwrap();
    assert!(
        !holders.is_empty()
            && holders
                .iter()
                .all(|w| w.contains("trusting-") && !w.contains("untrusting")),
        "leases went to {holders:?}"
    );
}
