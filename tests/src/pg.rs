//! PostgreSQL for tests. With `DATABASE_URL` set, that server is used; otherwise one
//! throwaway cluster per test process is started with `initdb` + `pg_ctl` in a temp
//! directory on 127.0.0.1 and a free port (as the `postgres` user when running as
//! root). A watchdog process stops it when the test process exits, however it exits.
//! PostgreSQL tests are never skipped: without a server they fail, saying why.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use sqlx::Connection;

static ADMIN_URL: OnceLock<String> = OnceLock::new();

/// Settings for a cluster started here.
#[derive(Debug, Clone, Copy, Default)]
pub struct ClusterOptions {
    /// Durable commits (`fsync`, `synchronous_commit`); off for tests, on for benches.
    pub durable: bool,
    /// More server options, e.g. `-c wal_writer_delay=10s`.
    pub extra: &'static str,
}

/// A running throwaway cluster.
#[derive(Debug)]
pub struct Cluster {
    pub url: String,
    pub data_dir: PathBuf,
    bin: PathBuf,
    as_postgres: bool,
    server_opts: String,
}

fn find_bin() -> PathBuf {
    let mut candidates: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.path().join("bin"))
                .collect()
        })
        .unwrap_or_default();
    candidates.sort();
    if let Some(dir) = candidates
        .into_iter()
        .rev()
        .find(|d| d.join("initdb").exists())
    {
        return dir;
    }
    if let Ok(out) = Command::new("sh")
        .args(["-c", "command -v initdb"])
        .output()
    {
        let p = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        if !p.is_empty() {
            return Path::new(&p).parent().unwrap_or(Path::new("/")).to_owned();
        }
    }
    panic!(
        "PostgreSQL tests need a server: set DATABASE_URL, or install PostgreSQL (apt-get install postgresql) \
         so that initdb and pg_ctl are available. These tests are never skipped."
    );
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout.starts_with(b"0"))
        .unwrap_or(false)
}

fn run(bin: &Path, as_postgres: bool, tool: &str, args: &[&str]) -> std::process::Output {
    let exe = bin.join(tool);
    let mut cmd = if as_postgres {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(&exe);
        c
    } else {
        Command::new(&exe)
    };
    let out = cmd
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", exe.display()));
    assert!(
        out.status.success(),
        "{tool} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

impl Cluster {
    /// Starts a new cluster; it stops when this process exits.
    pub fn start(opts: ClusterOptions) -> Cluster {
        let bin = find_bin();
        let as_postgres = is_root();
        let base = tempfile::Builder::new()
            .prefix("meridian-pg-")
            .tempdir()
            .expect("temp dir")
            .keep();
        let data_dir = base.join("data");
        std::fs::create_dir_all(&data_dir).expect("data dir");
        if as_postgres {
            let ok = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&base)
                .status();
            assert!(
                ok.is_ok_and(|s| s.success()),
                "chown of {} to postgres failed",
                base.display()
            );
        }
        let data = data_dir.to_string_lossy().into_owned();
        run(
            &bin,
            as_postgres,
            "initdb",
            &[
                "-D",
                &data,
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        );
        let port = free_port();
        let durability = if opts.durable {
            ""
        } else {
            " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        };
        let server_opts = format!(
            "-c listen_addresses=127.0.0.1 -p {port} -c unix_socket_directories={data} -c max_connections=200{durability} {}",
            opts.extra
        );
        let log = format!("{data}/server.log");
        run(
            &bin,
            as_postgres,
            "pg_ctl",
            &[
                "-D",
                &data,
                "-o",
                &server_opts,
                "-l",
                &log,
                "-w",
                "-t",
                "60",
                "start",
            ],
        );
        let cluster = Cluster {
            url: format!("postgres://postgres@127.0.0.1:{port}/postgres"),
            data_dir,
            bin,
            as_postgres,
            server_opts,
        };
        cluster.watchdog(&base);
        cluster
    }

    /// Stops the cluster when this process is gone, even after SIGKILL.
    fn watchdog(&self, base: &Path) {
        let pg_ctl = self.bin.join("pg_ctl");
        let stop = if self.as_postgres {
            format!(
                "runuser -u postgres -- {} -D {} -m immediate stop",
                pg_ctl.display(),
                self.data_dir.display()
            )
        } else {
            format!(
                "{} -D {} -m immediate stop",
                pg_ctl.display(),
                self.data_dir.display()
            )
        };
        let script = format!(
            "while kill -0 {pid} 2>/dev/null; do sleep 1; done; {stop} >/dev/null 2>&1; rm -rf {base}",
            pid = std::process::id(),
            base = base.display()
        );
        let _ = Command::new("sh")
            .args(["-c", &script])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn();
    }

    /// Stops the server now (`-m fast`), e.g. to test an outage.
    pub fn stop(&self) {
        self.pg_ctl_stop("fast");
    }

    /// Kills the server as a crash would (`-m immediate`): no shutdown checkpoint, and
    /// WAL still in the server's buffers, not yet written out, is lost; the next start
    /// recovers from what reached the log.
    pub fn crash(&self) {
        self.pg_ctl_stop("immediate");
    }

    fn pg_ctl_stop(&self, mode: &str) {
        let d = self.data_dir.to_string_lossy().into_owned();
        run(
            &self.bin,
            self.as_postgres,
            "pg_ctl",
            &["-D", &d, "-m", mode, "-w", "stop"],
        );
    }

    /// Starts a stopped server again on the same port and data.
    pub fn restart(&self) {
        let d = self.data_dir.to_string_lossy().into_owned();
        let log = format!("{d}/server.log");
        run(
            &self.bin,
            self.as_postgres,
            "pg_ctl",
            &[
                "-D",
                &d,
                "-o",
                &self.server_opts,
                "-l",
                &log,
                "-w",
                "-t",
                "60",
                "start",
            ],
        );
    }

    /// A new, empty database on this cluster; its URL.
    pub async fn fresh_database(&self) -> String {
        create_database(&self.url).await
    }
}

/// The admin URL of the shared test server (started on first use).
pub fn admin_url() -> String {
    ADMIN_URL
        .get_or_init(|| match std::env::var("DATABASE_URL") {
            Ok(url) if !url.is_empty() => url,
            _ => Cluster::start(ClusterOptions::default()).url,
        })
        .clone()
}

/// A new, empty database on the shared server; its URL.
pub async fn fresh_database() -> String {
    create_database(&admin_url()).await
}

async fn create_database(admin: &str) -> String {
    let admin = admin.to_owned();
    let name = format!("meridian_test_{}", uuid::Uuid::new_v4().simple());
    let mut conn = sqlx::PgConnection::connect(&admin)
        .await
        .unwrap_or_else(|e| panic!("cannot reach PostgreSQL for tests: {e}"));
    // The name is ours (a UUID), not input.
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .expect("create test database");
    let _ = conn.close().await;
    replace_database(&admin, &name)
}

/// `url` with its database name replaced by `name`.
pub fn replace_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let after_scheme = base.find("://").map(|i| i + 3).unwrap_or(0);
    let base = match base[after_scheme..].find('/') {
        Some(i) => &base[..after_scheme + i],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn replaces_the_database_name() {
        assert_eq!(
            super::replace_database("postgres://u@h:5/postgres", "x"),
            "postgres://u@h:5/x"
        );
        assert_eq!(
            super::replace_database("postgres://u@h:5", "x"),
            "postgres://u@h:5/x"
        );
        assert_eq!(
            super::replace_database("postgres://u@h/db?sslmode=disable", "x"),
            "postgres://u@h/x?sslmode=disable"
        );
    }
}
