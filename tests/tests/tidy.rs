//! Tidy checks that keep the repository's shape true: the crate graph is the
//! architecture (forbidden dependencies fail here), every source file says what it
//! owns, files stay small, no comment cites a document outside the repository, and
//! the live-parameter list, `docs/configuration.md` and the built-in defaults agree.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Every `.rs` file of the workspace, outside `target/` and hidden folders.
fn sources() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if name.starts_with('.') || name == "target" {
                continue;
            }
            if path.is_dir() {
                walk(&path, out);
            } else if name.ends_with(".rs") {
                out.push(path);
            }
        }
    }
    let mut out = Vec::new();
    walk(&root(), &mut out);
    assert!(out.len() > 50, "found only {} source files", out.len());
    out
}

fn relative(path: &Path) -> String {
    path.strip_prefix(root()).unwrap().display().to_string()
}

/// Normal (non-dev, non-build) dependencies of each workspace package, transitively,
/// from `cargo metadata`'s resolved graph.
fn normal_closure() -> BTreeMap<String, BTreeSet<String>> {
    // This machine's target only: other platforms' crates need not be downloaded.
    let rustc = Command::new(std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into()))
        .arg("-vV")
        .output()
        .expect("rustc -vV");
    let host = String::from_utf8_lossy(&rustc.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: ").map(str::to_owned))
        .expect("rustc -vV names the host");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--filter-platform",
            &host,
        ])
        .current_dir(root())
        .output()
        .expect("cargo metadata");
    assert!(out.status.success(), "cargo metadata failed");
    let meta: Value = serde_json::from_slice(&out.stdout).unwrap();
    let names: BTreeMap<String, String> = meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["id"].as_str().unwrap().to_owned(),
                p["name"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let mut edges: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for node in meta["resolve"]["nodes"].as_array().unwrap() {
        let id = node["id"].as_str().unwrap().to_owned();
        let deps = node["deps"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| {
                d["dep_kinds"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|k| k["kind"].is_null())
            })
            .map(|d| d["pkg"].as_str().unwrap().to_owned())
            .collect();
        edges.insert(id, deps);
    }
    let members: Vec<String> = meta["workspace_members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap().to_owned())
        .collect();
    let mut closure = BTreeMap::new();
    for member in members {
        let mut seen = BTreeSet::new();
        let mut stack = vec![member.clone()];
        while let Some(id) = stack.pop() {
            for dep in edges.get(&id).into_iter().flatten() {
                if seen.insert(dep.clone()) {
                    stack.push(dep.clone());
                }
            }
        }
        closure.insert(
            names[&member].clone(),
            seen.iter().map(|id| names[id].clone()).collect(),
        );
    }
    closure
}

/// The rules a reviewer checks with `cargo tree`, kept by the compiler's graph.
#[test]
fn crate_dependencies_follow_the_architecture() {
    let closure = normal_closure();
    let rules: &[(&str, &[&str], &str)] = &[
        (
            "meridian-master",
            &[
                "meridian-child",
                "meridian-engine",
                "meridian-store",
                "meridian-scan",
                "meridian-worker",
                "meridian-config",
                "calamine",
                "pdf-extract",
            ],
            "the master links no site, scanner or extraction code",
        ),
        (
            "meridian-worker",
            &[
                "sqlx",
                "meridian-store",
                "meridian-db",
                "meridian-engine",
                "meridian-child",
            ],
            "the remote worker links no database driver and no store",
        ),
        (
            "meridian-scan",
            &[
                "meridian-store",
                "meridian-db",
                "meridian-engine",
                "meridian-service",
                "axum",
                "sqlx",
            ],
            "the scanner links no store and no web framework",
        ),
        (
            "meridian-wire",
            &["sqlx", "axum", "meridian-service"],
            "the wire types carry no database or router types",
        ),
        (
            "meridian-store",
            &["meridian-engine", "meridian-scan", "meridian-worker"],
            "the store knows nothing above it",
        ),
        (
            "meridian-engine",
            &["meridian-child", "meridian-worker"],
            "the engine does not depend on the binaries above it",
        ),
    ];
    let mut broken = Vec::new();
    for (package, forbidden, why) in rules {
        let deps = closure
            .get(*package)
            .unwrap_or_else(|| panic!("{package} is not a workspace member"));
        for f in *forbidden {
            if deps.contains(*f) {
                broken.push(format!("{package} depends on {f}: {why}"));
            }
        }
    }
    // Only the dev-only quickstart may link both sides, and nothing depends on it.
    for (package, deps) in &closure {
        if deps.contains("meridian-quickstart") {
            broken.push(format!(
                "{package} depends on the dev-only meridian-quickstart"
            ));
        }
    }
    assert!(broken.is_empty(), "{}", broken.join("\n"));
}

#[test]
fn every_source_file_opens_with_a_line_saying_what_it_owns() {
    let missing: Vec<String> = sources()
        .into_iter()
        .filter(|p| {
            let text = std::fs::read_to_string(p).unwrap();
            !text.trim_start().starts_with("//!")
        })
        .map(|p| relative(&p))
        .collect();
    assert!(missing.is_empty(), "no `//!` opening line: {missing:?}");
}

/// Files outside the tests stay readable in one sitting; split by verb as they grow.
const MAX_LINES: usize = 600;

#[test]
fn no_source_file_outside_the_tests_is_over_600_lines() {
    let tests = root().join("tests");
    let long: Vec<String> = sources()
        .into_iter()
        .filter(|p| !p.starts_with(&tests))
        .filter_map(|p| {
            let lines = std::fs::read_to_string(&p).unwrap().lines().count();
            (lines > MAX_LINES).then(|| format!("{} ({lines} lines)", relative(&p)))
        })
        .collect();
    assert!(long.is_empty(), "over {MAX_LINES} lines: {long:?}");
}

#[test]
fn no_comment_cites_a_document_outside_the_repository() {
    let citing: Vec<String> = sources()
        .into_iter()
        .filter(|p| {
            let text = std::fs::read_to_string(p).unwrap();
            // Built from pieces so this file does not match itself.
            let spec = ["SPEC", " §"].concat();
            let spec_file = ["SPEC", ".md"].concat();
            text.contains(&spec) || text.contains(&spec_file)
        })
        .map(|p| relative(&p))
        .collect();
    assert!(
        citing.is_empty(),
        "cites a document outside the repo: {citing:?}"
    );
}

/// `(parameter, live)` rows of the parameter table in docs/configuration.md.
fn documented_parameters() -> BTreeMap<String, bool> {
    let doc = std::fs::read_to_string(root().join("docs/configuration.md")).unwrap();
    let mut rows = BTreeMap::new();
    let mut in_table = false;
    for line in doc.lines() {
        if line.starts_with("| parameter |") {
            in_table = true;
            continue;
        }
        if in_table && !line.starts_with('|') {
            break;
        }
        if !in_table || line.starts_with("|---") {
            continue;
        }
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let live = match cells[4] {
            "yes" => true,
            "no" => false,
            other => panic!(
                "docs/configuration.md: {}: live column says {other:?}",
                cells[1]
            ),
        };
        // One row may name several keys: `a`, `b`, `c`.
        for key in cells[1].split(',') {
            rows.insert(key.trim().trim_matches('`').to_owned(), live);
        }
    }
    assert!(rows.len() > 20, "parameter table not found");
    rows
}

/// Dotted keys of `config/system_default.yaml` (leaves of its scalar sections).
fn default_keys() -> BTreeSet<String> {
    let yaml = std::fs::read_to_string(root().join("config/system_default.yaml")).unwrap();
    let mut keys = BTreeSet::new();
    let mut section = String::new();
    for line in yaml.lines() {
        let code = line.split('#').next().unwrap();
        if code.trim().is_empty() {
            continue;
        }
        let indent = code.len() - code.trim_start().len();
        let Some((name, _)) = code.trim().split_once(':') else {
            continue;
        };
        if indent == 0 {
            section = name.to_owned();
        } else if indent == 2 && !name.starts_with('-') {
            keys.insert(format!("{section}.{name}"));
        }
    }
    keys
}

#[test]
fn live_keys_documentation_and_defaults_agree() {
    let documented = documented_parameters();
    let live: BTreeSet<String> = meridian_config::LIVE_KEYS
        .iter()
        .map(|k| (*k).to_owned())
        .collect();
    let documented_live: BTreeSet<String> = documented
        .iter()
        .filter(|(_, live)| **live)
        .map(|(k, _)| k.clone())
        .collect();
    assert_eq!(
        live, documented_live,
        "LIVE_KEYS and the 'live' column of docs/configuration.md differ"
    );
    let defaults = default_keys();
    // A key outside the table (e.g. `classifiers.custom`) has a section of its own.
    let doc = std::fs::read_to_string(root().join("docs/configuration.md")).unwrap();
    let undocumented: Vec<&String> = defaults
        .iter()
        .filter(|k| !documented.contains_key(*k) && !doc.contains(k.as_str()))
        .collect();
    assert!(
        undocumented.is_empty(),
        "in config/system_default.yaml but not in docs/configuration.md: {undocumented:?}"
    );
    // Optional keys without a default (`api.tls.*`, `orchestrator.deployment_model`)
    // are shown commented out in the defaults file.
    let yaml = std::fs::read_to_string(root().join("config/system_default.yaml")).unwrap();
    let stale: Vec<&String> = documented
        .keys()
        .filter(|k| {
            let leaf = k.rsplit('.').next().unwrap();
            !defaults.contains(*k)
                && !yaml.contains(&format!("# {leaf}:"))
                && !yaml.contains(&format!("#   {leaf}:"))
        })
        .collect();
    assert!(
        stale.is_empty(),
        "in docs/configuration.md but not in config/system_default.yaml: {stale:?}"
    );
}

/// PostgreSQL migrations that were applied before the rule below; sqlx checksums every
/// applied migration, so they stay as they are.
const INDEXED_IN_A_TRANSACTION: &[&str] = &[
    "migrations/postgres/0001_init.sql",
    "migrations/postgres/0003_distributed.sql",
    "migrations/master/postgres/0001_master.sql",
    "migrations/master/postgres/0002_job_filters.sql",
];

/// A PostgreSQL migration that creates or drops an index does it `CONCURRENTLY`, alone
/// in a `-- no-transaction` file: in a transaction the index build or drop blocks the
/// running replicas' claims and completions for its whole duration, and PostgreSQL runs
/// several statements of one file in one transaction anyway.
#[test]
fn postgres_index_migrations_do_not_lock_the_running_site() {
    let mut wrong = Vec::new();
    for dir in ["migrations/postgres", "migrations/master/postgres"] {
        for entry in std::fs::read_dir(root().join(dir)).unwrap() {
            let path = entry.unwrap().path();
            let name = relative(&path);
            if INDEXED_IN_A_TRANSACTION.contains(&name.as_str()) {
                continue;
            }
            let sql = std::fs::read_to_string(&path).unwrap();
            let code: Vec<&str> = sql
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with("--"))
                .collect();
            let text = code.join(" ").to_uppercase();
            if !text.contains(" INDEX ") && !text.starts_with("DROP INDEX") {
                continue;
            }
            let statements = text.split(';').filter(|s| !s.trim().is_empty()).count();
            if !sql.starts_with("-- no-transaction")
                || !text.contains("INDEX CONCURRENTLY")
                || statements != 1
            {
                wrong.push(name);
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "index migrations not CONCURRENTLY, alone, without a transaction: {wrong:?}"
    );
}
