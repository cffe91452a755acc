//! `meridian-quickstart`: a whole local federation in one process — the
//! master and two single-process sites, `london` and `tokyo`, each on embedded
//! SQLite with its own sample data folder, talking over mutual TLS with dev
//! certificates made on the spot. Prints the master URL and an operator token.

use std::path::{Path, PathBuf};

use anyhow::Context;
use meridian_child::{Site, SiteOptions};
use meridian_config::ConfigLayers;
use meridian_master::auth::{Role, mint};
use meridian_master::certs;
use meridian_master::config::{ClientTls, MasterConfig, SiteEntry};
use meridian_master::server::MasterServer;
use tokio_util::sync::CancellationToken;

pub const SITES: [&str; 2] = ["london", "tokyo"];

/// Sample files with fake sensitive values (test card numbers, reserved
/// e-mail domains), so a first job finds something at each site.
fn sample_files(site: &str) -> Vec<(&'static str, String)> {
    match site {
        "london" => vec![
            ("hr/employees.csv", "name,email,ssn\nAda Byron,ada.byron@example.com,078-05-1120\nAlan Turing,alan.turing@example.org,219-09-9999\n".into()),
            ("hr/onboarding.txt", "Welcome! Send questions to people-team@example.com.\nNo secrets here.\n".into()),
        ],
        _ => vec![
            ("finance/payments.log", "2026-11-30 charge ok card=4242 4242 4242 4242 amount=12.00\n2026-11-30 charge ok card=5555555555554444 amount=99.95\n".into()),
            ("finance/deploy.env", "AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE\nREGION=ap-northeast-1\n".into()),
        ],
    }
}

fn write_samples(root: &Path, site: &str) -> anyhow::Result<PathBuf> {
    let data = root.join(site).join("data");
    for (rel, content) in sample_files(site) {
        let path = data.join(rel);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(&path, content)?;
    }
    Ok(data)
}

fn site_yaml(site: &str, dir: &Path, data: &Path, certs: &certs::DevCerts) -> String {
    format!(
        r#"site:
  name: {site}
  federated: true
node:
  id: {site}-1
  data_dir: {data_dir}
api:
  listen: 127.0.0.1:0
  tls:
    ca_file: {ca}
    cert_file: {cert}
    key_file: {key}
    allowed_clients: [master]
worker:
  in_process_thread_count: 2
  # Two threads per site already bound what the demo takes; pausing it while the
  # laptop is busy elsewhere (a build, a browser) would only look like a hang.
  global_cpu_threshold_percent: 100
data_sources:
  - id: ds_{site}_01
    kind: filesystem
    description: {site} sample share
    root: {root}
    include: ["**/*"]
    max_file_size_mb: 16
"#,
        data_dir = dir.join(site).join("db").display(),
        ca = certs.ca().display(),
        cert = certs.cert(site).display(),
        key = certs.key(site).display(),
        root = data.display(),
    )
}

/// Runs the federation until `shutdown`. `listen` is the master's address.
pub async fn run(dir: &Path, listen: &str, shutdown: CancellationToken) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let dir = dir.canonicalize()?;
    let certs = certs::init(&dir.join("certs"), &SITES.map(String::from))?;
    let mut entries = Vec::new();
    let mut sites = Vec::new();
    for site in SITES {
        let data = write_samples(&dir, site)?;
        let yaml_path = dir.join(format!("{site}.yaml"));
        std::fs::write(&yaml_path, site_yaml(site, &dir, &data, &certs))?;
        let layers = ConfigLayers::new().with_file(&yaml_path)?;
        let built = Site::build(SiteOptions::new(layers))
            .await
            .with_context(|| format!("cannot start site {site}"))?;
        entries.push(SiteEntry {
            name: site.to_owned(),
            url: format!("https://127.0.0.1:{}", built.local_addr().port()),
        });
        let stop = shutdown.clone();
        sites.push(tokio::spawn(built.run(stop)));
    }
    let mut cfg = MasterConfig::default();
    cfg.master.listen = listen.to_owned();
    cfg.master.data_dir = dir.join("master");
    cfg.master.poll_interval_seconds = 1.0;
    cfg.sites = entries;
    cfg.tls = Some(ClientTls {
        ca_file: certs.ca(),
        cert_file: certs.cert(meridian_service::tls::MASTER_IDENTITY),
        key_file: certs.key(meridian_service::tls::MASTER_IDENTITY),
        reload_interval_seconds: 5,
    });
    cfg.auth.public_key_file = Some(certs.jwt_public());
    cfg.auth.signing_key_file = Some(certs.jwt_private());
    // The effective master configuration (JSON is YAML), reusable with
    // `meridian-master serve --config`.
    std::fs::write(dir.join("master.json"), serde_json::to_string_pretty(&cfg)?)?;
    let master = MasterServer::build(cfg.clone()).await?;
    let url = format!("http://{}", master.local_addr());
    let token = mint(&cfg.auth, "quickstart", &[Role::Admin], 12 * 3600)?;
    std::fs::write(dir.join("token"), &token)?;
    // The console offers this token at sign-in; the master refuses unless it listens
    // on loopback (it must, without master.tls).
    if let Err(why) = master.master().offer_dev_token(token.clone()) {
        tracing::warn!("the console will not offer the dev token: {why}");
    }
    println!(
        "Meridian quickstart: a master and sites {} on embedded SQLite, mutual TLS between them.",
        SITES.join(", ")
    );
    println!();
    println!("  master    {url}");
    for e in &cfg.sites {
        println!("  site      {:<8} {}", e.name, e.url);
    }
    println!("  files     {}", dir.display());
    println!();
    println!(
        "An admin token (12 h), also in {}:",
        dir.join("token").display()
    );
    println!("  export MERIDIAN_TOKEN={token}");
    println!();
    println!("Run a job over both sites and read the unified view:");
    println!(
        "  curl -s -H \"Authorization: Bearer $MERIDIAN_TOKEN\" -H 'content-type: application/json' \\\n    -d '{{\"name\":\"first scan\",\"data_sources\":[\"ds_london_01\",\"ds_tokyo_01\"]}}' {url}/api/v1/jobs"
    );
    println!("  curl -s -H \"Authorization: Bearer $MERIDIAN_TOKEN\" {url}/api/v1/jobs/<job_id>");
    println!();
    println!("The same with meridianctl (cargo build -p meridianctl; docs/cli.md):");
    println!("  export MERIDIAN_SERVER={url}");
    println!("  meridianctl sites");
    println!("  meridianctl jobs create --name \"first scan\" -d ds_london_01,ds_tokyo_01");
    println!("  meridianctl jobs watch <job_id>");
    println!("  meridianctl jobs findings <job_id> --format csv");
    println!();
    println!("The ops console: {url}/ (it offers this token at sign-in).");
    println!();
    println!("Ctrl-C stops everything.");
    let result = master.run(shutdown.clone()).await;
    shutdown.cancel();
    for s in sites {
        match s.await {
            Ok(Err(e)) => tracing::warn!("a site ended with an error: {e:#}"),
            Err(e) => tracing::warn!("a site task failed: {e}"),
            Ok(Ok(())) => {}
        }
    }
    result
}
