//! The targets of `deploy/Dockerfile`: what each image runs (`ENTRYPOINT`, `CMD`),
//! its `ENV` and its `HEALTHCHECK` command, so a container's effective command line
//! is what Kubernetes would run.

use std::collections::BTreeMap;

#[derive(Debug, Clone, Default)]
pub struct Target {
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub env: Vec<(String, String)>,
    pub healthcheck: Vec<String>,
}

/// Every `FROM … AS name` stage with what it declares.
pub fn targets(dockerfile: &str) -> BTreeMap<String, Target> {
    let mut joined = Vec::new();
    let mut current = String::new();
    for line in dockerfile.lines() {
        let trimmed = line.trim();
        if current.is_empty() && (trimmed.is_empty() || trimmed.starts_with('#')) {
            continue;
        }
        match trimmed.strip_suffix('\\') {
            Some(head) => {
                current.push_str(head);
                current.push(' ');
            }
            None => {
                current.push_str(trimmed);
                joined.push(std::mem::take(&mut current));
            }
        }
    }
    let mut targets = BTreeMap::new();
    let mut stage: Option<(String, Target)> = None;
    for line in joined {
        let (instruction, rest) = line.split_once(' ').unwrap_or((line.as_str(), ""));
        let rest = rest.trim();
        match instruction.to_ascii_uppercase().as_str() {
            "FROM" => {
                if let Some((name, t)) = stage.take() {
                    targets.insert(name, t);
                }
                let words: Vec<&str> = rest.split_whitespace().collect();
                if let [.., as_, name] = words.as_slice()
                    && as_.eq_ignore_ascii_case("as")
                {
                    stage = Some((name.to_string(), Target::default()));
                }
            }
            "ENTRYPOINT" => set(&mut stage, |t| t.entrypoint = exec_form(rest)),
            "CMD" => set(&mut stage, |t| t.cmd = exec_form(rest)),
            "ENV" => set(&mut stage, |t| {
                for pair in rest.split_whitespace() {
                    if let Some((k, v)) = pair.split_once('=') {
                        t.env.push((k.to_owned(), v.trim_matches('"').to_owned()));
                    }
                }
            }),
            "HEALTHCHECK" => set(&mut stage, |t| {
                if let Some(i) = rest.find("CMD ") {
                    t.healthcheck = exec_form(rest[i + 4..].trim());
                }
            }),
            _ => {}
        }
    }
    if let Some((name, t)) = stage.take() {
        targets.insert(name, t);
    }
    targets
}

fn set(stage: &mut Option<(String, Target)>, f: impl FnOnce(&mut Target)) {
    if let Some((_, t)) = stage {
        f(t);
    }
}

/// `["a", "b"]` (exec form); shell form is split on spaces, which these files do not use.
fn exec_form(s: &str) -> Vec<String> {
    serde_json::from_str(s).unwrap_or_else(|_| s.split_whitespace().map(str::to_owned).collect())
}

/// The Dockerfile target an image reference was built from: its last path segment
/// without tag or digest (`registry.example.com/meridian/worker:0.1.0` → `worker`).
pub fn target_of(image: &str) -> &str {
    let last = image.rsplit('/').next().unwrap_or(image);
    let last = last.split('@').next().unwrap_or(last);
    last.split(':').next().unwrap_or(last)
}
