//! Running the binaries: their `--help`, `migrate` as validation, and a container's
//! own command line started as in its pod.

use super::*;

/// `bin ARGS --help`: its help text, or why the parser refused `args`.
pub fn help(bin: &Path, args: &[String]) -> Result<String, String> {
    let out = Command::new(bin)
        .args(args)
        .arg("--help")
        .env_clear()
        .output()
        .expect("run --help");
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_owned())
    }
}

/// Runs `bin` with exactly `env` until it exits or `timeout` passes: (exit code, stderr).
pub async fn run(
    bin: &Path,
    args: &[String],
    env: &BTreeMap<String, String>,
    timeout: Duration,
) -> (Option<i32>, String) {
    let log = tempfile::NamedTempFile::new().unwrap();
    let mut child = Command::new(bin)
        .args(args)
        .env_clear()
        .envs(env)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log.reopen().unwrap())
        .spawn()
        .expect("spawn");
    let start = Instant::now();
    let code = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status.code();
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    (
        code,
        std::fs::read_to_string(log.path()).unwrap_or_default(),
    )
}

/// Runs `migrate` (the Job's own command line, or the binary's migrate mode with this
/// container's configuration and environment) on the container's database: the
/// configuration and every `SECTION__KEY` variable are validated before the schema is
/// applied. For a migration Job, the schema must then be there.
pub async fn validate_by_migrating(
    role: Role,
    bin_name: &str,
    args: &[String],
    env: &BTreeMap<String, String>,
    database: &str,
    problems: &mut Vec<String>,
) {
    let family = role.family();
    let mut env = env.clone();
    env.entry(family.database_env())
        .or_insert_with(|| database.to_owned());
    let migrate_args: Vec<String> = match role {
        Role::Migrate(_) => args.to_vec(),
        _ => {
            let mode: &[&str] = match family {
                Family::Site => &["--mode", "migrate"],
                Family::Master => &["migrate"],
            };
            let config = flag_value(args, "--config")
                .map(|p| vec!["--config".to_owned(), p.to_owned()])
                .unwrap_or_default();
            mode.iter().map(|s| s.to_string()).chain(config).collect()
        }
    };
    let validator = match family {
        Family::Site => binary(),
        Family::Master => master_binary(),
    };
    let (code, stderr) = run(&validator, &migrate_args, &env, Duration::from_secs(60)).await;
    if code != Some(0) {
        problems.push(format!(
            "its configuration and environment fail validation (`{} {}` exited {code:?}): {}",
            validator.file_name().unwrap().to_string_lossy(),
            migrate_args.join(" "),
            stderr.trim()
        ));
    } else if let Role::Migrate(_) = role
        && applied_migrations(database).await == 0
    {
        problems.push(format!(
            "`{bin_name} {}` exited 0 but applied no migration",
            args.join(" ")
        ));
    }
}

pub async fn applied_migrations(url: &str) -> i64 {
    let pool = sqlx::PgPool::connect(url).await.expect("test database");
    let n = sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations WHERE success")
        .fetch_one(&pool)
        .await
        .unwrap_or(0);
    pool.close().await;
    n
}

/// Starts the container's own command line with its environment, the listeners moved
/// to loopback (the ops listener on a free port), and waits for the ops listener to
/// answer: what the pod's start-up needs (TLS files, the worker key, the CA of the
/// worker API, PostgreSQL for an orchestrator) is there.
pub async fn start_as_in_the_pod(
    bin: &Path,
    args: &[String],
    env: &BTreeMap<String, String>,
    role: Role,
    cfg: &Effective<'_>,
    problems: &mut Vec<String>,
) {
    let family = role.family();
    let ops_port = free_port();
    let mut env = env.clone();
    for key in role.listeners() {
        if cfg.get(key).is_some() {
            env.insert(family.env_of(key), "127.0.0.1:0".into());
        }
    }
    let ops_key = role.ops_key().unwrap();
    env.insert(family.env_of(ops_key), format!("127.0.0.1:{ops_port}"));
    let log = tempfile::NamedTempFile::new().unwrap();
    let mut child = Command::new(bin)
        .args(args)
        .env_clear()
        .envs(&env)
        .stdin(Stdio::null())
        .stdout(log.reopen().unwrap())
        .stderr(log.reopen().unwrap())
        .spawn()
        .expect("spawn");
    // A worker is ready only once it reaches an orchestrator; here none runs.
    let path = if role == Role::Worker {
        "/health"
    } else {
        "/ready"
    };
    let url = format!("http://127.0.0.1:{ops_port}{path}");
    let start = Instant::now();
    let outcome = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Err(format!("exited with {status}"));
        }
        if reqwest::get(&url).await.is_ok_and(|r| r.status() == 200) {
            break Ok(());
        }
        if start.elapsed() > Duration::from_secs(60) {
            break Err("its ops listener did not answer within 60 s".into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let _ = child.kill();
    let _ = child.wait();
    if let Err(e) = outcome {
        let log = std::fs::read_to_string(log.path()).unwrap_or_default();
        problems.push(format!(
            "does not start as in the pod ({e}; {ops_key} moved to 127.0.0.1:{ops_port}): {}",
            log.trim()
        ));
    }
}
