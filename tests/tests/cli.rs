//! `meridianctl` against a real local federation (a `meridian-master` and two
//! `meridian-child` sites over mutual TLS): create, list, show, watch (piped and in
//! a pseudo-terminal), findings as CSV and JSON lines, cancel by filter with
//! `--dry-run`, a confirmation on a terminal that no longer holds, and `--yes`, the
//! exit codes of COMPLETED, FAILED and CANCELLED jobs, refused tokens, an unreachable
//! master and the config file's place in the layers.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use meridian_master::auth::Role;
use meridian_tests::corpus;
use meridian_tests::mesh::Mesh;
use meridian_tests::process::{ctl_binary, free_port};
use serde_json::Value;

fn filesystem(id: &str, root: &Path) -> String {
    format!(
        "  - id: {id}\n    kind: filesystem\n    root: {}\n    include: [\"**/*\"]\n",
        root.display()
    )
}

fn synthetic(id: &str, objects: u64, work_ms: u64, fail_every: u64) -> String {
    format!(
        "  - id: {id}\n    kind: synthetic\n    objects: {objects}\n    work_ms: {work_ms}\n    fail_permanently_every: {fail_every}\n"
    )
}

/// What one run of the CLI did.
#[derive(Debug)]
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {self:#?}"))
    }
}

/// The CLI pointed at the mesh's master through the environment, with a config
/// directory of its own so the developer's real config is never read.
struct Ctl {
    bin: PathBuf,
    env: BTreeMap<String, String>,
}

impl Ctl {
    fn new(mesh: &Mesh, role: Role) -> Ctl {
        let config_home = mesh.path().join("xdg");
        std::fs::create_dir_all(&config_home).unwrap();
        let mut env = BTreeMap::new();
        env.insert("MERIDIAN_SERVER".into(), mesh.master_url());
        env.insert("MERIDIAN_TOKEN".into(), mesh.token(role));
        env.insert("XDG_CONFIG_HOME".into(), config_home.display().to_string());
        env.insert("NO_COLOR".into(), "1".into());
        Ctl {
            bin: ctl_binary(),
            env,
        }
    }

    fn command(&self, program: &Path, args: &[&str]) -> Command {
        let mut cmd = Command::new(program);
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .env_remove("MERIDIAN_CA_FILE")
            .env_remove("MERIDIAN_CONFIG");
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd
    }

    /// Runs `meridianctl args` to its end (off the async workers).
    async fn run(&self, args: &[&str]) -> Run {
        let cmd = self.command(&self.bin, args);
        run(cmd).await
    }

    /// `-o json jobs create --name name -d sources`.
    async fn create(&self, name: &str, sources: &str) -> Run {
        self.run(&[
            "-o", "json", "jobs", "create", "--name", name, "-d", sources,
        ])
        .await
    }

    /// Same, with `key` set (or, with an empty value, removed) in the environment.
    async fn run_env(&self, args: &[&str], key: &str, value: &str) -> Run {
        let mut cmd = self.command(&self.bin, args);
        if value.is_empty() {
            cmd.env_remove(key);
        } else {
            cmd.env(key, value);
        }
        run(cmd).await
    }

    /// Runs `meridianctl args` inside a pseudo-terminal (util-linux `script`); what
    /// the terminal received.
    async fn run_in_terminal(&self, args: &str) -> Run {
        run(self.terminal_command(args)).await
    }

    fn terminal_command(&self, args: &str) -> Command {
        let line = format!("stty cols 120 rows 40; exec {} {args}", self.bin.display());
        self.command(Path::new("script"), &["-qec", &line, "/dev/null"])
    }

    /// Starts `meridianctl args` in a pseudo-terminal whose keyboard is the test.
    fn start_in_terminal(&self, args: &str) -> Terminal {
        let mut cmd = self.terminal_command(args);
        cmd.stdin(Stdio::piped());
        let mut child = cmd.spawn().expect("script");
        let screen = Arc::new(Mutex::new(Vec::new()));
        let mut out = child.stdout.take().expect("stdout");
        let sink = Arc::clone(&screen);
        let reader = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = out.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        Terminal {
            child,
            screen,
            reader,
        }
    }
}

/// A command running in a pseudo-terminal: what it printed so far, and its keyboard.
struct Terminal {
    child: std::process::Child,
    screen: Arc<Mutex<Vec<u8>>>,
    reader: std::thread::JoinHandle<()>,
}

impl Terminal {
    fn screen(&self) -> String {
        String::from_utf8_lossy(&self.screen.lock().unwrap()).into_owned()
    }

    /// Waits until the terminal shows `needle`.
    async fn wait_for(&self, needle: &str) {
        let start = std::time::Instant::now();
        while !self.screen().contains(needle) {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "the terminal never showed {needle:?}: {:?}",
                self.screen()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn type_line(&mut self, line: &str) {
        let keys = self.child.stdin.as_mut().expect("stdin");
        keys.write_all(format!("{line}\n").as_bytes()).unwrap();
        keys.flush().unwrap();
    }

    /// Waits for the command to end: its exit code and everything it showed.
    async fn finish(mut self) -> Run {
        tokio::task::spawn_blocking(move || {
            let status = self.child.wait().expect("wait");
            self.reader.join().expect("reader");
            let stdout = String::from_utf8_lossy(&self.screen.lock().unwrap()).into_owned();
            Run {
                code: status.code().unwrap_or(-1),
                stdout,
                stderr: String::new(),
            }
        })
        .await
        .expect("join")
    }
}

/// The fields of one CSV line (RFC 4180 quoting; no line breaks inside fields here).
fn csv_fields(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                fields.last_mut().unwrap().push('"');
            }
            (_, '"') => quoted = !quoted,
            (false, ',') => fields.push(String::new()),
            (_, c) => fields.last_mut().unwrap().push(c),
        }
    }
    fields
}

async fn run(mut cmd: Command) -> Run {
    tokio::task::spawn_blocking(move || {
        let out = cmd.output().expect("run meridianctl");
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    })
    .await
    .expect("join")
}

/// Creates `nightly-n` over tokyo's slow source and waits until it runs; its id.
async fn start_nightly(op: &Ctl, mesh: &Mesh, n: u32) -> String {
    let name = format!("nightly-{n}");
    let r = op.create(&name, "ds_tokyo_slow").await;
    let id = r.json()["job_id"].as_str().unwrap().to_owned();
    mesh.wait_view(&id, Duration::from_secs(60), |v| v["state"] == "RUNNING")
        .await;
    id
}

/// Waits until a dry-run cancel of `filter` counts `n` jobs: the list's state is
/// the master's stored one, which a poll round may update a moment after the view
/// shows it.
async fn wait_cancellable(op: &Ctl, filter: &[&str], n: i64) {
    let started = std::time::Instant::now();
    loop {
        let r = op
            .run(&[&["-o", "json", "jobs", "cancel", "--dry-run"][..], filter].concat())
            .await;
        assert_eq!(r.code, 0, "{r:#?}");
        if r.json()["matched"] == n {
            return;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "{r:#?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// london: a seeded corpus and a source whose every object fails; tokyo: a seeded
/// corpus and a slow source that keeps a job running until it is cancelled.
async fn federation(data: &Path) -> (Mesh, i64) {
    let lc = corpus::generate(&data.join("london"), 21, 12, 30);
    let tc = corpus::generate(&data.join("tokyo"), 22, 12, 30);
    let mut mesh = Mesh::new(&["london", "tokyo"]);
    let london = format!(
        "{}{}",
        filesystem("ds_london_01", &lc.root),
        synthetic("ds_london_bad", 3, 1, 1)
    );
    let tokyo = format!(
        "{}{}",
        filesystem("ds_tokyo_01", &tc.root),
        synthetic("ds_tokyo_slow", 2000, 200, 0)
    );
    mesh.configure_site("london", &london, "");
    mesh.configure_site("tokyo", &tokyo, "");
    mesh.start_site("london").await;
    mesh.start_site("tokyo").await;
    mesh.configure_master("", &BTreeMap::new());
    mesh.start_master().await;
    mesh.wait_catalog(4).await;
    let expected: i64 = lc.expected.values().chain(tc.expected.values()).sum();
    (mesh, expected)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn meridianctl_drives_a_federation() {
    let data = tempfile::tempdir().unwrap();
    let (mesh, expected_findings) = federation(data.path()).await;
    let op = Ctl::new(&mesh, Role::Operator);

    // The catalog, with the site of every row.
    let r = op.run(&["data-sources"]).await;
    assert_eq!(r.code, 0, "{r:#?}");
    assert!(r.stdout.starts_with("SITE"), "{r:#?}");
    let r = op
        .run(&["-o", "json", "data-sources", "--site", "tokyo"])
        .await;
    let ids: BTreeSet<String> = r
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        ids,
        BTreeSet::from(["ds_tokyo_01".into(), "ds_tokyo_slow".into()])
    );
    let r = op.run(&["-o", "json", "sites"]).await;
    assert_eq!(r.json().as_array().unwrap().len(), 2, "{r:#?}");

    // Create a job across both sites.
    let r = op.create("cli two sites", "ds_london_01,ds_tokyo_01").await;
    assert_eq!(r.code, 0, "{r:#?}");
    let job = r.json()["job_id"].as_str().unwrap().to_owned();
    assert_eq!(r.json()["sites"].as_array().unwrap().len(), 2);

    // Listed (JSON array), and an empty filter result is `[]`.
    let r = op.run(&["-o", "json", "jobs", "list"]).await;
    assert_eq!(r.code, 0, "{r:#?}");
    assert!(
        r.json()
            .as_array()
            .unwrap()
            .iter()
            .any(|j| j["job_id"] == job.as_str()),
        "{r:#?}"
    );
    let r = op
        .run(&["-o", "json", "jobs", "list", "--name", "no such job*"])
        .await;
    assert_eq!((r.code, r.stdout.trim()), (0, "[]"), "{r:#?}");
    let r = op
        .run(&[
            "-o", "json", "jobs", "list", "--site", "tokyo", "--name", "cli*",
        ])
        .await;
    assert_eq!(r.json().as_array().unwrap().len(), 1, "{r:#?}");
    // A bare date is the start of that day in UTC.
    let r = op
        .run(&["-o", "json", "jobs", "list", "--since", "2000-01-01"])
        .await;
    assert_eq!(r.json().as_array().unwrap().len(), 1, "{r:#?}");
    let r = op
        .run(&["-o", "json", "jobs", "list", "--until", "2000-01-01"])
        .await;
    assert_eq!((r.code, r.stdout.trim()), (0, "[]"), "{r:#?}");

    // Watched with stdout piped: JSON of the final view, exit 0 for COMPLETED.
    let r = op
        .run(&[
            "-o",
            "json",
            "jobs",
            "watch",
            &job,
            "--interval",
            "200ms",
            "--timeout",
            "90s",
        ])
        .await;
    assert_eq!(r.code, 0, "{r:#?}");
    let view = r.json();
    assert_eq!(view["state"], "COMPLETED", "{view:#}");
    assert_eq!(view["findings"]["total"].as_i64(), Some(expected_findings));

    // Piped text: plain appended lines, one per site and the totals.
    let r = op.run(&["jobs", "watch", &job]).await;
    assert_eq!(r.code, 0, "{r:#?}");
    assert!(
        !r.stdout.contains('\x1b'),
        "no terminal codes when piped: {r:#?}"
    );
    for needle in ["london", "tokyo", "TOTAL", "COMPLETED"] {
        assert!(r.stdout.contains(needle), "{needle} in {r:#?}");
    }

    // Shown as text: a SITE column and each site's row.
    let r = op.run(&["jobs", "show", &job]).await;
    assert_eq!(r.code, 0, "{r:#?}");
    assert!(
        r.stdout.contains("SITE") && r.stdout.contains("london") && r.stdout.contains("tokyo"),
        "{r:#?}"
    );

    // Findings: every page, as CSV and as JSON lines, adding up to the view's total.
    let r = op.run(&["jobs", "findings", &job, "--format", "csv"]).await;
    assert_eq!(r.code, 0, "{r:#?}");
    let mut lines = r.stdout.lines();
    assert_eq!(
        lines.next(),
        Some(
            "site,finding_id,data_source,object,classifier,location,count,masked_sample,confidence"
        )
    );
    let mut sites = BTreeSet::new();
    let mut total = 0;
    for l in lines {
        let cols = csv_fields(l);
        assert_eq!(cols.len(), 9, "{l}");
        sites.insert(cols[0].clone());
        total += cols[6]
            .parse::<i64>()
            .unwrap_or_else(|_| panic!("count in {l}"));
    }
    assert_eq!(total, expected_findings);
    assert_eq!(sites, BTreeSet::from(["london".into(), "tokyo".into()]));
    let r = op
        .run(&["jobs", "findings", &job, "--format", "jsonl"])
        .await;
    let rows: Vec<Value> = r
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        rows.iter()
            .map(|f| f["count"].as_i64().unwrap())
            .sum::<i64>(),
        expected_findings
    );
    assert!(
        rows.iter()
            .all(|f| f["masked_sample"].as_str().unwrap().contains('*'))
    );
    let r = op
        .run(&["-o", "json", "jobs", "findings", &job, "--site", "london"])
        .await;
    assert!(
        r.json()
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["site"] == "london"),
        "{r:#?}"
    );

    // Watched in a terminal: one bar per site and the totals, redrawn, then the final state.
    let r = op.create("cli terminal", "ds_london_01,ds_tokyo_01").await;
    let job2 = r.json()["job_id"].as_str().unwrap().to_owned();
    let r = op
        .run_in_terminal(&format!("jobs watch {job2} --interval 200ms --timeout 90s"))
        .await;

    assert_eq!(r.code, 0, "{r:#?}");
    for needle in ["london", "tokyo", "TOTAL", "COMPLETED", "#", "obj "] {
        assert!(
            r.stdout.contains(needle),
            "{needle} on the terminal: {r:#?}"
        );
    }
    let final_line = r
        .stdout
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap();
    assert!(
        final_line.contains(&job2) && final_line.contains("COMPLETED"),
        "{r:#?}"
    );

    // A job whose every object fails: FAILED, exit 7 from watch and show.
    let r = op.create("cli broken", "ds_london_bad").await;
    let broken = r.json()["job_id"].as_str().unwrap().to_owned();
    let r = op
        .run(&[
            "jobs",
            "watch",
            &broken,
            "--interval",
            "200ms",
            "--timeout",
            "90s",
        ])
        .await;
    assert_eq!(r.code, 7, "{r:#?}");
    assert_eq!(op.run(&["jobs", "show", &broken]).await.code, 7);

    // Cancel by filter: count with --dry-run, refuse without a terminal, refuse a
    // confirmed count that no longer holds, then --yes.
    let filter = ["--state", "RUNNING", "--name", "nightly*"];
    let mut nightly = Vec::new();
    for n in 1..=2 {
        nightly.push(start_nightly(&op, &mesh, n).await);
    }
    wait_cancellable(&op, &filter, 2).await;
    let r = op
        .run(&[&["jobs", "cancel", "--dry-run"][..], &filter].concat())
        .await;
    assert!(
        r.stdout.starts_with("2 job(s) would be cancelled"),
        "{r:#?}"
    );
    let r = op.run(&[&["jobs", "cancel"][..], &filter].concat()).await;
    assert_eq!(r.code, 2, "no prompt without a terminal: {r:#?}");
    assert!(r.stderr.contains("--yes"), "{r:#?}");
    assert_eq!(mesh.view(&nightly[0]).await["cancel_requested"], false);
    // Confirmed on a terminal for 2 jobs, but a third starts before the answer:
    // nothing is cancelled, and the command says so.
    let mut term = op.start_in_terminal("jobs cancel --state RUNNING --name 'nightly*'");
    term.wait_for("Cancel 2 job(s)? [y/N]").await;
    nightly.push(start_nightly(&op, &mesh, 3).await);
    wait_cancellable(&op, &filter, 3).await;
    term.type_line("y");
    let r = term.finish().await;
    assert_eq!(r.code, 1, "{r:#?}");
    assert!(
        r.stdout
            .contains("selects 3 job(s) to cancel now, not the 2 confirmed"),
        "{r:#?}"
    );
    for id in &nightly {
        assert_eq!(mesh.view(id).await["cancel_requested"], false, "{id}");
    }
    let r = op
        .run(&[&["-o", "json", "jobs", "cancel", "--yes"][..], &filter].concat())
        .await;
    assert_eq!(r.code, 0, "{r:#?}");
    let cancelled: BTreeSet<String> = r.json()["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["outcome"] == "cancelled")
        .map(|x| x["job_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(cancelled, nightly.iter().cloned().collect());
    for id in &nightly {
        let r = op
            .run(&[
                "jobs",
                "watch",
                id,
                "--interval",
                "200ms",
                "--timeout",
                "60s",
            ])
            .await;
        assert_eq!(r.code, 8, "CANCELLED: {r:#?}");
    }

    // Errors: one line each, with their exit codes.
    let r = op
        .run_env(&["jobs", "list"], "MERIDIAN_TOKEN", "not-a-token")
        .await;
    assert_eq!(r.code, 3, "{r:#?}");
    assert_eq!(r.stderr.trim().lines().count(), 1, "{r:#?}");
    assert!(r.stderr.contains("401"), "{r:#?}");
    let r = op
        .run_env(
            &["-o", "json", "jobs", "list"],
            "MERIDIAN_TOKEN",
            "not-a-token",
        )
        .await;
    let err: Value = serde_json::from_str(r.stderr.trim()).expect("error as JSON");
    assert_eq!(err["error"]["http_status"], 401);
    assert_eq!(r.stdout, "");
    let viewer = Ctl::new(&mesh, Role::Viewer);
    let r = viewer.run(&["jobs", "cancel", "--yes", &job]).await;
    assert_eq!(r.code, 3, "403 is an auth error: {r:#?}");
    let r = op.run(&["jobs", "show", "no-such-job"]).await;
    assert_eq!(r.code, 1, "{r:#?}");
    assert!(
        r.stderr.starts_with("meridianctl: not found (HTTP 404)"),
        "{r:#?}"
    );
    let r = op.create("x", "ds_nowhere").await;
    assert_eq!(r.code, 1, "{r:#?}");
    assert_eq!(
        serde_json::from_str::<Value>(r.stderr.trim()).unwrap()["error"]["http_status"],
        422
    );
    let dead = format!("http://127.0.0.1:{}", free_port());
    let r = op
        .run_env(&["jobs", "list"], "MERIDIAN_SERVER", &dead)
        .await;
    assert_eq!(r.code, 4, "{r:#?}");
    assert!(r.stderr.contains("cannot reach the master"), "{r:#?}");

    // The config file is the last layer: it serves when nothing else is said, and
    // the environment wins over it.
    let dir = mesh.path().join("xdg").join("meridian");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("config.yaml"),
        format!(
            "server: {}\ntoken: {}\n",
            mesh.master_url(),
            mesh.token(Role::Viewer)
        ),
    )
    .unwrap();
    let mut from_file = Ctl::new(&mesh, Role::Viewer);
    from_file.env.remove("MERIDIAN_SERVER");
    from_file.env.remove("MERIDIAN_TOKEN");
    let r = from_file.run(&["-o", "json", "whoami"]).await;
    assert_eq!(r.code, 0, "{r:#?}");
    assert_eq!(r.json()["roles"], serde_json::json!(["viewer"]));
    let r = from_file
        .run_env(&["whoami"], "MERIDIAN_TOKEN", "not-a-token")
        .await;
    assert_eq!(r.code, 3, "the environment wins over the file: {r:#?}");
    let r = from_file.run(&["--token", "not-a-token", "sites"]).await;
    assert_eq!(r.code, 3, "a flag wins over the file: {r:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_errors_and_completions_need_no_master() {
    let bin = ctl_binary();
    let out = Command::new(&bin).args(["jobs", "watch"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = Command::new(&bin).args(["--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(
        help.contains("Exit codes:") && help.contains("PARTIALLY_COMPLETED"),
        "{help}"
    );
    let out = Command::new(&bin)
        .args(["completions", "bash"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("meridianctl"));
    let out = Command::new(&bin)
        .args(["jobs", "list"])
        .env_remove("MERIDIAN_TOKEN")
        .env("XDG_CONFIG_HOME", "/nonexistent")
        .env("HOME", "/nonexistent")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "no token is an auth error");
}
