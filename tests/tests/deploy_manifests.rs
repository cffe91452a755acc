//! The Kubernetes manifests against the binaries they run. Each kustomize overlay
//! (and base) under `deploy/k8s` is rendered with `kubectl kustomize`; for every
//! container, its command line is what the image (`deploy/Dockerfile`) and the
//! manifest make of it, and:
//!
//! - the flags parse: the binary's `--help` after the container's arguments exits 0
//!   and lists each flag;
//! - the configuration passes the binary's own validation: the container's file
//!   system is laid out from its mounts (ConfigMap items, Secrets with test
//!   certificates, the share's data-source roots) and its environment set (Secrets
//!   with test values, the database a fresh PostgreSQL database), then the binary runs
//!   `migrate` (`--mode migrate` / `meridian-master migrate`), which validates the file
//!   and every `MERIDIAN_SECTION__KEY` variable (unknown keys stop it) before applying
//!   the schema; other `MERIDIAN_*` variables must be ones the binary reads;
//! - the container starts as it would in the pod (its own command line and
//!   environment; only the listen addresses moved to loopback) and its ops listener
//!   answers;
//! - container ports are exactly the configured listeners' ports, probes and the
//!   Prometheus annotation hit the ops listener on `/health` or `/ready`, the image's
//!   `HEALTHCHECK` too, every Service port reaches a container port, and the workers'
//!   `worker.orchestrator_url` reaches the orchestrators' worker API through its
//!   Service, over HTTPS when the site serves TLS;
//! - the migration Job runs the `migrate` mode or subcommand and leaves the schema in
//!   its database.
//!
//! Every problem found is listed; the test fails if there is any.

#[path = "deploy_manifests/dockerfile.rs"]
mod dockerfile;
#[path = "deploy_manifests/render.rs"]
mod render;
#[path = "deploy_manifests/runs.rs"]
mod runs;
#[path = "deploy_manifests/sandbox.rs"]
mod sandbox;
#[path = "deploy_manifests/wiring.rs"]
mod wiring;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use meridian_config::SystemConfig;
use meridian_master::MasterConfig;
use meridian_master::certs::{self, DevCerts};
use meridian_tests::pg;
use meridian_tests::process::{binary, free_port, master_binary, worker_binary};
use render::{Container, EnvValue, Objects, Pod, PortRef, at, text};
use runs::{help, start_as_in_the_pod, validate_by_migrating};
use sandbox::{Sandbox, SecretFiles};
use serde_yaml::Value;
use wiring::{check_env_names, check_ports, check_services, check_worker_urls};

/// The worker key the test puts in `meridian-worker-key`.
const WORKER_KEY: &str = "deploy-manifests-test-worker-key-0123456789abcdef";

/// What the ops listeners serve that a probe may ask for.
const PROBE_PATHS: [&str; 2] = ["/health", "/ready"];

/// The overlays this file checks; a new overlay must be added here.
const OVERLAYS: [&str; 3] = ["london", "master", "tokyo"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlay_london() {
    check("deploy/k8s/overlays/london").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlay_tokyo() {
    check("deploy/k8s/overlays/tokyo").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlay_master() {
    check("deploy/k8s/overlays/master").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn base_site() {
    check("deploy/k8s/base/site").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn base_master() {
    check("deploy/k8s/base/master").await;
}

#[test]
fn every_overlay_is_checked() {
    let dir = render::workspace().join("deploy/k8s/overlays");
    let found: BTreeSet<String> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    let known: BTreeSet<String> = OVERLAYS.iter().map(|s| s.to_string()).collect();
    assert_eq!(
        found,
        known,
        "overlays in {} and the ones tests/tests/deploy_manifests.rs checks differ",
        dir.display()
    );
}

/// Which configuration a binary reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    Site,
    Master,
}

impl Family {
    /// Prefix of its `SECTION__KEY` variables.
    fn prefix(self) -> &'static str {
        match self {
            Family::Site => "MERIDIAN_",
            Family::Master => "MERIDIAN_MASTER_",
        }
    }

    fn config_env(self) -> &'static str {
        match self {
            Family::Site => "MERIDIAN_CONFIG",
            Family::Master => "MERIDIAN_MASTER_CONFIG",
        }
    }

    fn database_env(self) -> String {
        format!("{}DATABASE__URL", self.prefix())
    }

    /// The variable that sets `key`.
    fn env_of(self, key: &str) -> String {
        format!(
            "{}{}",
            self.prefix(),
            key.to_ascii_uppercase().replace('.', "__")
        )
    }

    /// The built-in defaults, as JSON.
    fn defaults(self) -> serde_json::Value {
        match self {
            Family::Site => serde_json::to_value(SystemConfig::default()).unwrap(),
            Family::Master => serde_json::to_value(MasterConfig::default()).unwrap(),
        }
    }
}

/// What a container runs, as far as the checks care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// `meridian-child --mode single|orchestrator`: the site API and its listeners.
    Site,
    /// `meridian-worker` or `meridian-child --mode worker`.
    Worker,
    /// `meridian-master serve`.
    Master,
    /// `meridian-child --mode migrate` or `meridian-master migrate`.
    Migrate(Family),
}

impl Role {
    fn family(self) -> Family {
        match self {
            Role::Site | Role::Worker => Family::Site,
            Role::Master => Family::Master,
            Role::Migrate(f) => f,
        }
    }

    /// The keys of the listeners this role opens, the ops listener last.
    fn listeners(self) -> &'static [&'static str] {
        match self {
            Role::Site => &["api.listen", "api.worker_listen", "api.ops_listen"],
            Role::Worker => &["worker.ops_listen"],
            Role::Master => &["master.listen", "master.ops_listen"],
            Role::Migrate(_) => &[],
        }
    }

    fn ops_key(self) -> Option<&'static str> {
        self.listeners().last().copied()
    }
}

/// The container's configuration: its file with the environment over it, then the
/// built-in defaults.
struct Effective<'a> {
    family: Family,
    file: Value,
    env: &'a BTreeMap<String, String>,
    defaults: serde_json::Value,
}

impl Effective<'_> {
    fn get(&self, key: &str) -> Option<String> {
        if let Some(v) = self.env.get(&self.family.env_of(key)) {
            return Some(v.clone());
        }
        let path: Vec<&str> = key.split('.').collect();
        if let Some(v) = at(&self.file, &path).as_str() {
            return Some(v.to_owned());
        }
        let mut d = &self.defaults;
        for p in &path {
            d = &d[p];
        }
        d.as_str().map(str::to_owned)
    }

    fn is_set(&self, key: &str) -> bool {
        let path: Vec<&str> = key.split('.').collect();
        !at(&self.file, &path).is_null()
    }

    /// The port of a listen address (`0.0.0.0:8443`).
    fn port(&self, key: &str) -> Option<u16> {
        self.get(key)?.rsplit(':').next()?.parse().ok()
    }
}

/// One container's findings that the cross-object checks need.
struct Seen {
    workload: String,
    container: String,
    role: Role,
    /// Port of the worker API (api.worker_listen, else api.listen) and whether it is TLS.
    worker_api: Option<(u16, bool)>,
    /// The worker's `worker.orchestrator_url`.
    orchestrator_url: Option<String>,
}

struct Context {
    objects: Objects,
    targets: BTreeMap<String, dockerfile::Target>,
    secrets: SecretFiles,
    tmp: tempfile::TempDir,
}

async fn check(dir: &str) {
    meridian_tests::init();
    let objects = render::kustomize(dir);
    let dockerfile =
        std::fs::read_to_string(render::workspace().join("deploy/Dockerfile")).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let site = site_name(&objects);
    let certs = certs::init(&tmp.path().join("certs"), std::slice::from_ref(&site)).unwrap();
    let cx = Context {
        secrets: secret_files(&certs, &site),
        targets: dockerfile::targets(&dockerfile),
        objects,
        tmp,
    };
    let mut problems = Vec::new();
    let mut seen = Vec::new();
    let pods = cx.objects.pods();
    assert!(!pods.is_empty(), "{dir} renders no workload");
    for (i, pod) in pods.iter().enumerate() {
        for (j, c) in pod.containers.iter().enumerate() {
            let root = cx.tmp.path().join(format!("pod{i}-{j}"));
            let what = format!("{} container `{}`", pod.workload, c.name);
            let mut found = Vec::new();
            if let Some(s) = check_container(&cx, pod, c, &root, &mut found).await {
                seen.push(s);
            }
            problems.extend(found.into_iter().map(|p| format!("{what}: {p}")));
        }
    }
    let migrate_jobs = pods
        .iter()
        .filter(|p| p.is_job)
        .flat_map(|p| seen.iter().filter(move |s| s.workload == p.workload))
        .filter(|s| matches!(s.role, Role::Migrate(_)))
        .count();
    if migrate_jobs == 0 {
        problems.push("no Job runs the migrations (`--mode migrate` / `migrate`)".into());
    }
    check_services(&cx.objects, &pods, &mut problems);
    check_worker_urls(&cx.objects, &pods, &seen, &mut problems);
    assert!(
        problems.is_empty(),
        "{dir}: {} problem(s):\n  - {}",
        problems.len(),
        problems.join("\n  - ")
    );
}

/// The site's name in the rendered configuration (the identity of its certificate).
fn site_name(objects: &Objects) -> String {
    objects
        .of_kind("ConfigMap")
        .flat_map(|cm| {
            at(cm, &["data"])
                .as_mapping()
                .into_iter()
                .flatten()
                .filter_map(|(_, v)| serde_yaml::from_str::<Value>(v.as_str()?).ok())
                .filter_map(|doc| text(&doc, &["site", "name"]))
                .collect::<Vec<_>>()
        })
        .next()
        .unwrap_or_else(|| "local".into())
}

/// The Secrets the manifests mount, with the files a real deployment puts in them
/// (docs/operations.md lists them), made by `meridian-master certs init`.
fn secret_files(c: &DevCerts, site: &str) -> SecretFiles {
    let own = |id: &str| {
        vec![
            ("ca.crt".to_owned(), c.ca()),
            ("tls.crt".to_owned(), c.cert(id)),
            ("tls.key".to_owned(), c.key(id)),
        ]
    };
    BTreeMap::from([
        ("meridian-site-tls".to_owned(), own(site)),
        ("meridian-master-tls".to_owned(), own("master")),
        (
            // The dev master certificate is a server certificate too.
            "meridian-master-api-tls".to_owned(),
            vec![
                ("tls.crt".to_owned(), c.cert("master")),
                ("tls.key".to_owned(), c.key("master")),
            ],
        ),
        (
            "meridian-master-jwt".to_owned(),
            vec![("jwt-signing.pub.pem".to_owned(), c.jwt_public())],
        ),
    ])
}

/// The value a Secret key referenced from `env` holds in the test.
fn secret_value(name: &str, key: &str, database: &str) -> Option<String> {
    match (name, key) {
        ("meridian-database" | "meridian-master-database", "url") => Some(database.to_owned()),
        ("meridian-worker-key", "key") => Some(WORKER_KEY.to_owned()),
        // A data source's URL: checked for form at start-up, connected to only by a scan.
        (n, "url") if n.starts_with("meridian-datasource-") => {
            Some("postgres://scanner@127.0.0.1:1/source".to_owned())
        }
        _ => None,
    }
}

fn binary_of(name: &str) -> Option<PathBuf> {
    match name {
        "meridian-child" => Some(binary()),
        "meridian-worker" => Some(worker_binary()),
        "meridian-master" => Some(master_binary()),
        _ => None,
    }
}

/// `--flag VALUE` or `--flag=VALUE` in `args`.
fn flag_value<'a>(args: &'a [String], flag: &str) -> Option<&'a str> {
    args.iter().enumerate().find_map(|(i, a)| {
        if a == flag {
            args.get(i + 1).map(String::as_str)
        } else {
            a.strip_prefix(flag)?.strip_prefix('=')
        }
    })
}

fn role_of(bin: &str, args: &[String]) -> Result<Role, String> {
    match bin {
        "meridian-worker" => Ok(Role::Worker),
        "meridian-child" => {
            // The parser has accepted the value (the `--help` run); these are its names.
            match flag_value(args, "--mode").unwrap_or("single") {
                "single" | "orchestrator" => Ok(Role::Site),
                "worker" => Ok(Role::Worker),
                "migrate" => Ok(Role::Migrate(Family::Site)),
                other => Err(format!("--mode {other} is not a mode of meridian-child")),
            }
        }
        "meridian-master" => match args
            .iter()
            .find(|a| !a.starts_with('-'))
            .map(String::as_str)
        {
            Some("serve") => Ok(Role::Master),
            Some("migrate") => Ok(Role::Migrate(Family::Master)),
            other => Err(format!(
                "meridian-master {other:?} is neither `serve` nor `migrate`"
            )),
        },
        other => Err(format!("runs `{other}`, not a Meridian binary")),
    }
}

/// Whether `help` lists `flag` (not only a longer flag starting with it).
fn lists_flag(help: &str, flag: &str) -> bool {
    help.match_indices(flag).any(|(i, _)| {
        help[i + flag.len()..]
            .chars()
            .next()
            .is_none_or(|c| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
    })
}

/// Every check of one container; returns what the cross-object checks need.
async fn check_container(
    cx: &Context,
    pod: &Pod,
    c: &Container,
    root: &Path,
    problems: &mut Vec<String>,
) -> Option<Seen> {
    let target_name = dockerfile::target_of(&c.image);
    let Some(target) = cx.targets.get(target_name) else {
        problems.push(format!(
            "image `{}` names no target of deploy/Dockerfile (`{target_name}`)",
            c.image
        ));
        return None;
    };
    // Kubernetes: `command` replaces ENTRYPOINT (and drops CMD), `args` replace CMD.
    let argv: Vec<String> = match (&c.command, &c.args) {
        (Some(cmd), args) => cmd.iter().chain(args.iter().flatten()).cloned().collect(),
        (None, Some(args)) => target.entrypoint.iter().chain(args).cloned().collect(),
        (None, None) => target
            .entrypoint
            .iter()
            .chain(&target.cmd)
            .cloned()
            .collect(),
    };
    let Some((program, args)) = argv.split_first() else {
        problems.push("runs nothing (no command and no ENTRYPOINT)".into());
        return None;
    };
    let bin_name = Path::new(program)
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let Some(bin) = binary_of(&bin_name) else {
        problems.push(format!("runs `{program}`, not a Meridian binary"));
        return None;
    };
    let role = match role_of(&bin_name, args) {
        Ok(r) => r,
        Err(e) => {
            problems.push(e);
            return None;
        }
    };
    let family = role.family();

    // Flags: what the binary's own parser accepts and its help lists.
    let help_text = match help(&bin, args) {
        Ok(text) => text,
        Err(refusal) => {
            problems.push(format!(
                "`{bin_name} {}` is refused by its parser: {refusal}",
                args.join(" ")
            ));
            // The help of the (sub)command alone, to say which flags it does have.
            let subcommand: Vec<String> = match role {
                Role::Master | Role::Migrate(Family::Master) => args
                    .iter()
                    .filter(|a| !a.starts_with('-'))
                    .take(1)
                    .cloned()
                    .collect(),
                _ => Vec::new(),
            };
            help(&bin, &subcommand).unwrap_or_default()
        }
    };
    for flag in args.iter().filter(|a| a.starts_with("--")) {
        let name = flag.split('=').next().unwrap();
        if !lists_flag(&help_text, name) {
            problems.push(format!("flag `{name}` is not in `{bin_name} --help`"));
        }
    }

    // The file system and the environment of the pod.
    let (sandbox, found) = Sandbox::build(root, pod, c, &cx.objects, &cx.secrets);
    problems.extend(found);
    let database = pg::fresh_database().await;
    let mut env: BTreeMap<String, String> = target.env.iter().cloned().collect();
    for (name, value) in &c.env {
        let value = match value {
            EnvValue::Plain(v) => v.clone(),
            EnvValue::Secret { name: s, key } => match secret_value(s, key, &database) {
                Some(v) => v,
                None => {
                    problems.push(format!(
                        "{name} comes from Secret `{s}` key `{key}`, which this test does not know"
                    ));
                    continue;
                }
            },
            EnvValue::Field(f) if f == "metadata.name" => {
                format!("{}-7c9d5b8f4-x2v7k", pod_base(pod))
            }
            EnvValue::Field(f) => {
                problems.push(format!(
                    "{name} comes from field `{f}`, which this test does not know"
                ));
                continue;
            }
            EnvValue::Other => {
                problems.push(format!("{name} has a value source this test does not know"));
                continue;
            }
        };
        env.insert(name.clone(), sandbox.rewrite(&value));
    }
    let args: Vec<String> = args.iter().map(|a| sandbox.rewrite(a)).collect();

    // The configuration file the binary reads.
    let config_path = flag_value(&args, "--config")
        .map(str::to_owned)
        .or_else(|| env.get(family.config_env()).cloned());
    let file: Value = match &config_path {
        None => Value::Null,
        Some(p) => match std::fs::read_to_string(p) {
            Ok(t) => serde_yaml::from_str(&t).unwrap_or(Value::Null),
            Err(e) => {
                problems.push(format!(
                    "the configuration file {p} is not mounted ({e}); volumeMounts: {:?}",
                    c.mounts.iter().map(|m| &m.path).collect::<Vec<_>>()
                ));
                Value::Null
            }
        },
    };
    let cfg = Effective {
        family,
        file,
        env: &env,
        defaults: family.defaults(),
    };

    check_env_names(family, &help_text, &cfg, &bin_name, problems);
    if matches!(role, Role::Site | Role::Worker) {
        let key_env = cfg.get("worker.auth_key_env").unwrap_or_default();
        if !env.contains_key(&key_env) {
            problems.push(format!(
                "the worker key variable {key_env} (worker.auth_key_env) is not set; \
                 {bin_name} refuses to start without it"
            ));
        }
    }

    // A worker's own start-up is its validation (below): `migrate` would also load
    // the site API's TLS files, which a worker neither uses nor mounts.
    if role != Role::Worker {
        validate_by_migrating(role, &bin_name, &args, &env, &database, problems).await;
    }

    check_ports(pod, c, role, &cfg, target, problems);
    if role.ops_key().is_some() && problems.is_empty() {
        start_as_in_the_pod(&bin, &args, &env, role, &cfg, problems).await;
    }

    let worker_api = (role == Role::Site).then(|| {
        let port = cfg
            .port("api.worker_listen")
            .or_else(|| cfg.port("api.listen"));
        port.map(|p| (p, cfg.is_set("api.tls")))
    });
    Some(Seen {
        workload: pod.workload.clone(),
        container: c.name.clone(),
        role,
        worker_api: worker_api.flatten(),
        orchestrator_url: (role == Role::Worker)
            .then(|| cfg.get("worker.orchestrator_url"))
            .flatten(),
    })
}

/// The workload's name, for a plausible pod name.
fn pod_base(pod: &Pod) -> &str {
    pod.workload.split('/').nth(1).unwrap_or("pod")
}
