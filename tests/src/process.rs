//! The real `meridian-child` binary as a child process, for crash and signal tests.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

static CHILD: OnceLock<PathBuf> = OnceLock::new();
static MASTER: OnceLock<PathBuf> = OnceLock::new();
static WORKER: OnceLock<PathBuf> = OnceLock::new();
static QUICKSTART: OnceLock<PathBuf> = OnceLock::new();
static CTL: OnceLock<PathBuf> = OnceLock::new();

/// Path of the `meridian-child` binary, built on first use by the same cargo that
/// runs the tests (a no-op when it is up to date).
pub fn binary() -> PathBuf {
    CHILD.get_or_init(|| build("meridian-child")).clone()
}

/// Path of the `meridian-master` binary, built like `binary()`.
pub fn master_binary() -> PathBuf {
    MASTER.get_or_init(|| build("meridian-master")).clone()
}

/// Path of the `meridian-worker` binary (the remote worker), built like `binary()`.
pub fn worker_binary() -> PathBuf {
    WORKER.get_or_init(|| build("meridian-worker")).clone()
}

/// Path of the `meridian-quickstart` binary, built like `binary()`.
pub fn quickstart_binary() -> PathBuf {
    QUICKSTART
        .get_or_init(|| build("meridian-quickstart"))
        .clone()
}

/// Path of `meridianctl` (the master's command-line client), built like `binary()`.
pub fn ctl_binary() -> PathBuf {
    CTL.get_or_init(|| build("meridianctl")).clone()
}

fn build(package: &str) -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut args = vec![
        "build",
        "-q",
        "-p",
        package,
        "--bin",
        package,
        "--message-format=json",
    ];
    // Benchmarks (built without debug assertions) measure an optimised binary.
    if !cfg!(debug_assertions) {
        args.push("--release");
    }
    let out = Command::new(cargo)
        .args(&args)
        .stderr(Stdio::inherit())
        .output()
        .unwrap_or_else(|e| panic!("cargo build {package}: {e}"));
    assert!(out.status.success(), "building {package} failed");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["executable"].as_str().map(PathBuf::from))
        .next_back()
        .unwrap_or_else(|| panic!("cargo reported no {package} executable"))
}

/// A running `meridian-child` process.
pub struct SiteProcess {
    pub child: Child,
    pub base: String,
    pub log: PathBuf,
}

/// Runs the binary to completion with `args` and `env`; returns (exit code, stderr).
pub fn run_to_exit(
    args: &[&str],
    env: &[(&str, &str)],
    timeout: Duration,
) -> (Option<i32>, String) {
    let mut cmd = Command::new(binary());
    cmd.args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawn meridian-child");
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            let mut err = String::new();
            if let Some(mut s) = child.stderr.take() {
                use std::io::Read;
                let _ = s.read_to_string(&mut err);
            }
            return (status.code(), err);
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            panic!("meridian-child {args:?} did not exit within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

impl SiteProcess {
    /// Starts the binary with `config` and waits until `/ready` answers.
    pub async fn start(config: &Path, port: u16, log: &Path) -> SiteProcess {
        SiteProcess::start_with_env(config, port, log, &[]).await
    }

    /// Starts the binary with `config` and `env`, and waits until `/ready` answers.
    pub async fn start_with_env(
        config: &Path,
        port: u16,
        log: &Path,
        env: &[(&str, &str)],
    ) -> SiteProcess {
        let log_file = std::fs::File::create(log).expect("log file");
        let mut cmd = Command::new(binary());
        cmd.arg("--config")
            .arg(config)
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("spawn meridian-child");
        let p = SiteProcess {
            child,
            base: format!("http://127.0.0.1:{port}"),
            log: log.to_owned(),
        };
        p.wait_ready(Duration::from_secs(60)).await;
        p
    }

    /// Starts the binary as `--mode orchestrator` with `env`, and waits until `/ready`.
    pub async fn start_orchestrator(
        config: &Path,
        port: u16,
        log: &Path,
        env: &[(&str, &str)],
    ) -> SiteProcess {
        let log_file = std::fs::File::create(log).expect("log file");
        let mut cmd = Command::new(binary());
        cmd.args(["--mode", "orchestrator", "--config"])
            .arg(config)
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let p = SiteProcess {
            child: cmd.spawn().expect("spawn meridian-child"),
            base: format!("http://127.0.0.1:{port}"),
            log: log.to_owned(),
        };
        p.wait_ready(Duration::from_secs(60)).await;
        p
    }

    /// Starts the binary with exactly `args` and `env`, and waits until `ops_base`'s
    /// `/ready` answers: for a site whose API is mutual TLS, `ops_base` is its plain
    /// `api.ops_listen`. `base` is `ops_base`.
    pub async fn start_with_args(
        args: &[&str],
        env: &[(&str, &str)],
        log: &Path,
        ops_base: &str,
    ) -> SiteProcess {
        let log_file = std::fs::File::create(log).expect("log file");
        let mut cmd = Command::new(binary());
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let p = SiteProcess {
            child: cmd.spawn().expect("spawn meridian-child"),
            base: ops_base.to_owned(),
            log: log.to_owned(),
        };
        p.wait_ready(Duration::from_secs(60)).await;
        p
    }

    /// Starts the binary as `--mode worker` with `env`. Workers open no port; `base`
    /// is empty.
    pub fn start_worker(config: &Path, log: &Path, env: &[(&str, &str)]) -> SiteProcess {
        let log_file = std::fs::File::create(log).expect("log file");
        let mut cmd = Command::new(binary());
        cmd.args(["--mode", "worker", "--config"])
            .arg(config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file);
        for (k, v) in env {
            cmd.env(k, v);
        }
        SiteProcess {
            child: cmd.spawn().expect("spawn meridian-child"),
            base: String::new(),
            log: log.to_owned(),
        }
    }

    /// The process's log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    async fn wait_ready(&self, timeout: Duration) {
        let http = reqwest::Client::new();
        let start = Instant::now();
        while start.elapsed() < timeout {
            if let Ok(r) = http.get(format!("{}/ready", self.base)).send().await
                && r.status().is_success()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        panic!("meridian-child not ready after {timeout:?}; log:\n{log}");
    }

    /// Sends a signal (`"KILL"`, `"TERM"`) to the process.
    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.child.id().to_string())
            .status();
        assert!(ok.is_ok_and(|s| s.success()), "kill -{sig} failed");
    }

    /// Waits for the process to exit; its exit code (None when killed by a signal).
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status.code();
            }
            assert!(
                start.elapsed() < timeout,
                "process did not exit within {timeout:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for SiteProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    free_port_on("127.0.0.1")
}

/// A free TCP port on `ip`, e.g. `127.0.0.2` (all of 127.0.0.0/8 is loopback on
/// Linux, so a second address needs no setup).
///
/// A port is handed out once per test process: the kernel may give the same free
/// port to two `bind(0)` calls in a row, and two servers of one mesh told to listen
/// on the same port would leave the second one's readiness check answered by the
/// first.
pub fn free_port_on(ip: &str) -> u16 {
    static GIVEN: Mutex<BTreeSet<(String, u16)>> = Mutex::new(BTreeSet::new());
    let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        let port = std::net::TcpListener::bind((ip, 0))
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("free port");
        if given.insert((ip.to_owned(), port)) {
            return port;
        }
    }
}
