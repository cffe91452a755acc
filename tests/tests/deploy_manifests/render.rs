//! `kubectl kustomize` of a directory under `deploy/k8s`, and the pods it declares:
//! their containers, environment, ports, probes and volumes, read from the YAML.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_yaml::Value;

/// The repository root (the tests crate lives in `tests/`).
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_owned()
}

/// The objects `kubectl kustomize <dir>` renders (`dir` relative to the workspace).
pub fn kustomize(dir: &str) -> Objects {
    let out = match Command::new("kubectl")
        .args(["kustomize", dir])
        .current_dir(workspace())
        .output()
    {
        Ok(out) => out,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
            "kubectl is not installed (no `kubectl` on PATH): this test renders deploy/k8s with \
             `kubectl kustomize`, which needs kustomize v5 (kubectl 1.27 or later; Debian's \
             kubernetes-client package is too old). Install kubectl from the Kubernetes apt \
             repository (pkgs.k8s.io) or its release binary."
        ),
        Err(e) => panic!("kubectl kustomize {dir}: {e}"),
    };
    assert!(
        out.status.success(),
        "kubectl kustomize {dir} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("kustomize prints UTF-8");
    let docs = serde_yaml::Deserializer::from_str(&text)
        .map(|d| serde::Deserialize::deserialize(d).expect("kustomize prints YAML"))
        .filter(|v: &Value| !v.is_null())
        .collect();
    Objects { docs }
}

/// `v` at `path` (mapping keys), or `Null`.
pub fn at<'a>(v: &'a Value, path: &[&str]) -> &'a Value {
    static NULL: Value = Value::Null;
    path.iter().fold(v, |v, k| v.get(*k).unwrap_or(&NULL))
}

pub fn text(v: &Value, path: &[&str]) -> Option<String> {
    at(v, path).as_str().map(str::to_owned)
}

fn strings(v: &Value) -> Option<Vec<String>> {
    v.as_sequence().map(|s| {
        s.iter()
            .map(|x| match x {
                Value::String(s) => s.clone(),
                other => serde_yaml::to_string(other).unwrap().trim().to_owned(),
            })
            .collect()
    })
}

fn string_map(v: &Value) -> BTreeMap<String, String> {
    v.as_mapping()
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.as_str()?.to_owned(), v.as_str()?.to_owned())))
                .collect()
        })
        .unwrap_or_default()
}

pub struct Objects {
    pub docs: Vec<Value>,
}

impl Objects {
    pub fn of_kind<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
        self.docs
            .iter()
            .filter(move |d| d["kind"].as_str() == Some(kind))
    }

    pub fn named(&self, kind: &str, name: &str) -> Option<&Value> {
        self.docs.iter().find(|d| {
            d["kind"].as_str() == Some(kind)
                && text(d, &["metadata", "name"]).as_deref() == Some(name)
        })
    }

    /// The pod templates of every workload.
    pub fn pods(&self) -> Vec<Pod> {
        let mut pods = Vec::new();
        for kind in ["Deployment", "StatefulSet", "DaemonSet", "Job"] {
            for d in self.of_kind(kind) {
                let name = text(d, &["metadata", "name"]).unwrap_or_default();
                pods.push(Pod::read(
                    format!("{kind}/{name}"),
                    kind == "Job",
                    at(d, &["spec", "template"]),
                ));
            }
        }
        pods
    }
}

#[derive(Debug, Clone)]
pub enum Volume {
    /// A ConfigMap or Secret: its name and, when listed, which keys become which files.
    ConfigMap {
        name: String,
        items: Option<Vec<(String, String)>>,
    },
    Secret {
        name: String,
        items: Option<Vec<(String, String)>>,
    },
    /// A PersistentVolumeClaim: content from outside the manifests.
    Claim,
    EmptyDir,
    Other,
}

#[derive(Debug, Clone)]
pub enum EnvValue {
    Plain(String),
    Secret { name: String, key: String },
    Field(String),
    Other,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PortRef {
    Name(String),
    Number(u16),
}

impl PortRef {
    fn read(v: &Value) -> PortRef {
        match v {
            Value::Number(n) => PortRef::Number(n.as_u64().unwrap_or(0) as u16),
            Value::String(s) => PortRef::Name(s.clone()),
            _ => PortRef::Name(String::new()),
        }
    }
}

impl std::fmt::Display for PortRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PortRef::Name(n) => write!(f, "{n}"),
            PortRef::Number(n) => write!(f, "{n}"),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Probe {
    pub kind: &'static str,
    pub port: PortRef,
    pub path: String,
}

#[derive(Debug, Clone)]
pub struct Mount {
    pub path: String,
    pub volume: String,
}

#[derive(Debug, Clone)]
pub struct Container {
    pub name: String,
    pub image: String,
    pub command: Option<Vec<String>>,
    pub args: Option<Vec<String>>,
    pub env: Vec<(String, EnvValue)>,
    /// (name, containerPort)
    pub ports: Vec<(Option<String>, u16)>,
    pub probes: Vec<Probe>,
    pub mounts: Vec<Mount>,
}

impl Container {
    /// The container port `r` names, as a number.
    pub fn port(&self, r: &PortRef) -> Option<u16> {
        match r {
            PortRef::Number(n) => self.ports.iter().any(|(_, p)| p == n).then_some(*n),
            PortRef::Name(name) => self
                .ports
                .iter()
                .find(|(n, _)| n.as_deref() == Some(name.as_str()))
                .map(|(_, p)| *p),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Pod {
    /// `Kind/name` of the workload.
    pub workload: String,
    pub is_job: bool,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub volumes: BTreeMap<String, Volume>,
    pub containers: Vec<Container>,
}

impl Pod {
    fn read(workload: String, is_job: bool, template: &Value) -> Pod {
        let spec = at(template, &["spec"]);
        let items = |v: &Value| {
            v.as_sequence().map(|s| {
                s.iter()
                    .map(|i| {
                        (
                            text(i, &["key"]).unwrap_or_default(),
                            text(i, &["path"]).unwrap_or_default(),
                        )
                    })
                    .collect()
            })
        };
        let volumes = at(spec, &["volumes"])
            .as_sequence()
            .into_iter()
            .flatten()
            .map(|v| {
                let name = text(v, &["name"]).unwrap_or_default();
                let volume = if let Some(cm) = v.get("configMap") {
                    Volume::ConfigMap {
                        name: text(cm, &["name"]).unwrap_or_default(),
                        items: items(at(cm, &["items"])),
                    }
                } else if let Some(s) = v.get("secret") {
                    Volume::Secret {
                        name: text(s, &["secretName"]).unwrap_or_default(),
                        items: items(at(s, &["items"])),
                    }
                } else if v.get("persistentVolumeClaim").is_some() {
                    Volume::Claim
                } else if v.get("emptyDir").is_some() {
                    Volume::EmptyDir
                } else {
                    Volume::Other
                };
                (name, volume)
            })
            .collect();
        let containers = at(spec, &["containers"])
            .as_sequence()
            .into_iter()
            .flatten()
            .map(Container::read)
            .collect();
        Pod {
            workload,
            is_job,
            labels: string_map(at(template, &["metadata", "labels"])),
            annotations: string_map(at(template, &["metadata", "annotations"])),
            volumes,
            containers,
        }
    }
}

impl Container {
    fn read(c: &Value) -> Container {
        let env = at(c, &["env"])
            .as_sequence()
            .into_iter()
            .flatten()
            .map(|e| {
                let name = text(e, &["name"]).unwrap_or_default();
                let value = if let Some(v) = e.get("value") {
                    EnvValue::Plain(v.as_str().unwrap_or_default().to_owned())
                } else if let Some(s) = at(e, &["valueFrom"]).get("secretKeyRef") {
                    EnvValue::Secret {
                        name: text(s, &["name"]).unwrap_or_default(),
                        key: text(s, &["key"]).unwrap_or_default(),
                    }
                } else if let Some(f) = at(e, &["valueFrom"]).get("fieldRef") {
                    EnvValue::Field(text(f, &["fieldPath"]).unwrap_or_default())
                } else {
                    EnvValue::Other
                };
                (name, value)
            })
            .collect();
        let ports = at(c, &["ports"])
            .as_sequence()
            .into_iter()
            .flatten()
            .map(|p| {
                (
                    text(p, &["name"]),
                    at(p, &["containerPort"]).as_u64().unwrap_or(0) as u16,
                )
            })
            .collect();
        let probes = ["startupProbe", "readinessProbe", "livenessProbe"]
            .into_iter()
            .filter_map(|kind| {
                let get = c.get(kind)?.get("httpGet");
                Some(Probe {
                    kind,
                    port: get.map(|g| PortRef::read(at(g, &["port"])))?,
                    path: get.and_then(|g| text(g, &["path"])).unwrap_or_default(),
                })
            })
            .collect();
        let mounts = at(c, &["volumeMounts"])
            .as_sequence()
            .into_iter()
            .flatten()
            .map(|m| Mount {
                path: text(m, &["mountPath"]).unwrap_or_default(),
                volume: text(m, &["name"]).unwrap_or_default(),
            })
            .collect();
        Container {
            name: text(c, &["name"]).unwrap_or_default(),
            image: text(c, &["image"]).unwrap_or_default(),
            command: strings(at(c, &["command"])),
            args: strings(at(c, &["args"])),
            env,
            ports,
            probes,
            mounts,
        }
    }
}
