//! A local federation of real processes over real HTTPS: `meridian-child` sites and
//! a `meridian-master`, with a dev mesh CA and certificates made for the test, and
//! clients that speak to them like the master and like an operator.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use meridian_master::auth::{Role, mint};
use meridian_master::certs::{self, DevCerts};
use meridian_master::config::AuthConfig;
use meridian_service::tls::TlsFiles;
use serde_json::Value;

use crate::process::{binary, free_port, master_binary};

/// A process the mesh started; killed when dropped.
pub struct Proc {
    pub child: Child,
    pub log: PathBuf,
}

impl Proc {
    pub fn spawn(bin: &Path, args: &[&str], env: &[(String, String)], log: &Path) -> Proc {
        let log_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .expect("log file");
        let mut cmd = Command::new(bin);
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file)
            .env("RUST_LOG", "info");
        for (k, v) in env {
            cmd.env(k, v);
        }
        Proc {
            child: cmd.spawn().expect("spawn"),
            log: log.to_owned(),
        }
    }

    /// SIGKILL, and reap.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.kill();
        }
    }
}

/// One site of the mesh.
pub struct MeshSite {
    pub name: String,
    pub port: u16,
    pub config: PathBuf,
    pub env: Vec<(String, String)>,
    /// Arguments added to the site's command line (e.g. `--mode orchestrator`).
    pub args: Vec<String>,
    pub proc: Option<Proc>,
}

impl MeshSite {
    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }
}

pub struct Mesh {
    pub dir: tempfile::TempDir,
    pub certs: DevCerts,
    pub sites: BTreeMap<String, MeshSite>,
    pub master_port: u16,
    pub master: Option<Proc>,
    pub master_config: PathBuf,
    /// Plain HTTP to the master's user API.
    pub http: reqwest::Client,
    /// The master's identity, for calling sites directly.
    pub mtls: reqwest::Client,
    /// The master's `poll_interval_seconds`.
    pub poll_seconds: f64,
    /// Environment variables for the master's next start.
    pub master_env: Vec<(String, String)>,
}

/// Site settings for tests: fast loops, CPU back-pressure off.
pub const SITE_DEFAULTS: &str = "\
orchestrator:
  reaper_interval_seconds: 1
  config_reload_interval_seconds: 1
  shutdown_grace_seconds: 5
worker:
  in_process_thread_count: 2
  global_cpu_threshold_percent: 100
  retry_backoff_base_milliseconds: 50
  retry_backoff_max_seconds: 1
";

/// Poll interval of the test master, in seconds.
pub const POLL_SECONDS: f64 = 0.3;

/// A reqwest client presenting `identity`'s certificate from `certs` and trusting
/// that CA.
pub fn mtls_client(certs: &DevCerts, identity: &str) -> reqwest::Client {
    let ca = std::fs::read(certs.ca()).expect("ca");
    let mut pem = std::fs::read(certs.cert(identity)).expect("cert");
    pem.extend(std::fs::read(certs.key(identity)).expect("key"));
    reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&ca).expect("ca pem")])
        .identity(reqwest::Identity::from_pem(&pem).expect("identity"))
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client")
}

impl Mesh {
    /// Certificates for the master and `sites`; nothing started yet.
    pub fn new(sites: &[&str]) -> Mesh {
        crate::init();
        let dir = tempfile::tempdir().expect("temp dir");
        let names: Vec<String> = sites.iter().map(|s| s.to_string()).collect();
        let certs = certs::init(&dir.path().join("certs"), &names).expect("dev certs");
        let mtls = mtls_client(&certs, "master");
        let mut map = BTreeMap::new();
        for s in sites {
            map.insert(
                s.to_string(),
                MeshSite {
                    name: s.to_string(),
                    port: free_port(),
                    config: dir.path().join(format!("{s}.yaml")),
                    env: Vec::new(),
                    args: Vec::new(),
                    proc: None,
                },
            );
        }
        Mesh {
            master_config: dir.path().join("master.yaml"),
            dir,
            certs,
            sites: map,
            master_port: free_port(),
            master: None,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("client"),
            mtls,
            poll_seconds: POLL_SECONDS,
            master_env: Vec::new(),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes `site`'s configuration: `data_sources` is the YAML list of its sources.
    pub fn configure_site(&mut self, site: &str, data_sources: &str, extra: &str) {
        let s = &self.sites[site];
        let yaml = format!(
            "{SITE_DEFAULTS}{extra}\nsite:\n  name: {site}\n  federated: true\nnode:\n  id: {site}-1\n  data_dir: {data}\n\
             api:\n  tls:\n    ca_file: {ca}\n    cert_file: {cert}\n    key_file: {key}\n    reload_interval_seconds: 1\n\
             data_sources:\n{data_sources}\n",
            data = self.dir.path().join(site).join("db").display(),
            ca = self.certs.ca().display(),
            cert = self.certs.cert(site).display(),
            key = self.certs.key(site).display(),
        );
        std::fs::write(&s.config, yaml).expect("site config");
    }

    /// Sets environment variables for `site`'s next start (e.g. MERIDIAN_FAILPOINTS).
    pub fn site_env(&mut self, site: &str, key: &str, value: &str) {
        let s = self.sites.get_mut(site).expect("site");
        s.env.retain(|(k, _)| k != key);
        s.env.push((key.to_owned(), value.to_owned()));
    }

    /// Starts (or restarts) `site` and waits until it is ready over mutual TLS.
    pub async fn start_site(&mut self, site: &str) {
        let s = self.sites.get_mut(site).expect("site");
        let port = s.port.to_string();
        let listen = format!("127.0.0.1:{port}");
        let log = self.dir.path().join(format!("{site}.log"));
        let config = s.config.display().to_string();
        let mut args = vec!["--config", &config, "--listen", &listen];
        args.extend(s.args.iter().map(String::as_str));
        let url = format!("{}/ready", s.url());
        let proc = s.proc.insert(Proc::spawn(&binary(), &args, &s.env, &log));
        // Ready means this site answered: the master's own check of the site's
        // identity, so another server on the port cannot pass for it.
        let files = TlsFiles {
            ca_file: self.certs.ca(),
            cert_file: self.certs.cert("master"),
            key_file: self.certs.key("master"),
        };
        let tls = meridian_service::tls::client_config(&files, site).expect("site client tls");
        let client = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .timeout(Duration::from_secs(10))
            .build()
            .expect("client");
        wait_ready(&client, &url, proc).await;
    }

    /// SIGKILL `site`.
    pub fn kill_site(&mut self, site: &str) {
        if let Some(mut p) = self.sites.get_mut(site).and_then(|s| s.proc.take()) {
            p.kill();
        }
    }

    /// The auth section the master runs with; tokens minted from it are accepted.
    pub fn auth(&self) -> AuthConfig {
        AuthConfig {
            algorithm: "ES256".into(),
            issuer: "meridian-test".into(),
            audience: "meridian-api".into(),
            public_key_file: Some(self.certs.jwt_public()),
            hmac_secret_env: None,
            signing_key_file: Some(self.certs.jwt_private()),
            leeway_seconds: 5,
        }
    }

    pub fn token(&self, role: Role) -> String {
        mint(&self.auth(), "test", &[role], 3600).expect("token")
    }

    /// Writes the master's configuration; `site_urls` overrides where a site is reached.
    pub fn configure_master(&self, database_url: &str, site_urls: &BTreeMap<String, String>) {
        let a = self.auth();
        let mut sites = String::new();
        if self.sites.is_empty() {
            sites.push_str("  []\n");
        }
        for s in self.sites.values() {
            let url = site_urls.get(&s.name).cloned().unwrap_or_else(|| s.url());
            sites.push_str(&format!("  - name: {}\n    url: {url}\n", s.name));
        }
        let yaml = format!(
            "master:\n  listen: 127.0.0.1:{port}\n  data_dir: {data}\n  poll_interval_seconds: {poll}\n  \
             unreachable_after_failures: 2\n  request_timeout_seconds: 2\n  catalog_refresh_seconds: 0.5\n  \
             retry_backoff_max_seconds: 0.5\ndatabase:\n  url: \"{database_url}\"\ntls:\n  ca_file: {ca}\n  \
             cert_file: {cert}\n  key_file: {key}\n  reload_interval_seconds: 1\nauth:\n  algorithm: ES256\n  \
             issuer: {iss}\n  audience: {aud}\n  public_key_file: {pubk}\n  signing_key_file: {privk}\n  \
             leeway_seconds: {leeway}\nsites:\n{sites}",
            port = self.master_port,
            poll = self.poll_seconds,
            data = self.dir.path().join("master").display(),
            ca = self.certs.ca().display(),
            cert = self.certs.cert("master").display(),
            key = self.certs.key("master").display(),
            iss = a.issuer,
            aud = a.audience,
            pubk = self.certs.jwt_public().display(),
            privk = self.certs.jwt_private().display(),
            leeway = a.leeway_seconds,
        );
        std::fs::write(&self.master_config, yaml).expect("master config");
    }

    /// Starts (or restarts) the master and waits for `/ready`.
    pub async fn start_master(&mut self) {
        let log = self.dir.path().join("master.log");
        let config = self.master_config.display().to_string();
        let url = format!("{}/ready", self.master_url());
        let proc = self.master.insert(Proc::spawn(
            &master_binary(),
            &["serve", "--config", &config],
            &self.master_env,
            &log,
        ));
        wait_ready(&self.http, &url, proc).await;
    }

    pub fn kill_master(&mut self) {
        if let Some(mut p) = self.master.take() {
            p.kill();
        }
    }

    pub fn master_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.master_port)
    }

    /// A call to the master's API with `token`: (status, JSON body or null).
    pub async fn api(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Option<&Value>,
    ) -> (u16, Value) {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.master_url()))
            .bearer_auth(token);
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().await.expect("master answers");
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.api(reqwest::Method::GET, path, &self.token(Role::Viewer), None)
            .await
    }

    /// Waits until the master's catalog lists `n` data sources.
    pub async fn wait_catalog(&self, n: usize) {
        let start = Instant::now();
        loop {
            let (code, body) = self.get("/api/v1/data_sources").await;
            if code == 200 && body.as_array().is_some_and(|a| a.len() == n) {
                return;
            }
            if start.elapsed() > Duration::from_secs(30) {
                // Each site's last error says why its catalog is missing.
                let (_, sites) = self.get("/api/v1/sites").await;
                panic!("catalog never reached {n} sources: {body}\nsites: {sites:#}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Creates a job as an operator; its id.
    pub async fn create_job(&self, body: &Value) -> String {
        let (code, view) = self
            .api(
                reqwest::Method::POST,
                "/api/v1/jobs",
                &self.token(Role::Operator),
                Some(body),
            )
            .await;
        assert_eq!(code, 201, "create job: {view}");
        view["job_id"].as_str().expect("job id").to_owned()
    }

    pub async fn view(&self, job: &str) -> Value {
        let (code, view) = self.get(&format!("/api/v1/jobs/{job}")).await;
        assert_eq!(code, 200, "view: {view}");
        view
    }

    /// Polls the unified view until `pred` holds.
    pub async fn wait_view(
        &self,
        job: &str,
        timeout: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> Value {
        let start = Instant::now();
        loop {
            let view = self.view(job).await;
            if pred(&view) {
                return view;
            }
            if start.elapsed() > timeout {
                panic!("view of {job} never matched within {timeout:?}: {view:#}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// A GET to a site as the master would make it: (status, JSON body).
    pub async fn site_get(&self, site: &str, path: &str) -> (u16, Value) {
        let resp = self
            .mtls
            .get(format!("{}{path}", self.sites[site].url()))
            .send()
            .await
            .expect("site answers");
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// How many child jobs `site` holds with id `job`.
    pub async fn child_jobs_with_id(&self, site: &str, job: &str) -> usize {
        let (code, page) = self.site_get(site, "/jobs?limit=500").await;
        assert_eq!(code, 200, "site jobs: {page}");
        page["items"]
            .as_array()
            .map(|a| a.iter().filter(|j| j["job_id"] == job).count())
            .unwrap_or(0)
    }
}

/// Waits until `url` answers 2xx; fails at once, with its log, if `proc` exits.
async fn wait_ready(client: &reqwest::Client, url: &str, proc: &mut Proc) {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(60) {
        if let Ok(Some(status)) = proc.child.try_wait() {
            panic!(
                "{url}: the process exited ({status}); log:\n{}",
                proc.log_text()
            );
        }
        if let Ok(r) = client.get(url).send().await
            && r.status().is_success()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{url} not ready after 60 s; log:\n{}", proc.log_text());
}
