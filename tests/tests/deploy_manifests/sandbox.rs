//! A container's file system as the manifests give it, under a temporary directory:
//! each volume mount with what its ConfigMap or Secret holds (only the listed items),
//! empty directories for `emptyDir`, and for a PersistentVolumeClaim the data-source
//! roots the configuration names below it (the share's content is not in the
//! manifests). Nothing else exists: the image's root file system holds no
//! configuration, so a path outside every mount is missing, as in the pod.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_yaml::Value;

use super::render::{Container, Objects, Pod, Volume, at};

/// What each Secret holds in the test: (key, file whose content it has).
pub type SecretFiles = BTreeMap<String, Vec<(String, PathBuf)>>;

pub struct Sandbox {
    pub root: PathBuf,
}

fn under(path: &str, dir: &str) -> bool {
    let dir = dir.trim_end_matches('/');
    path == dir || path.starts_with(&format!("{dir}/"))
}

impl Sandbox {
    /// Lays out `c`'s mounts under `root`; the problems found (a mount without a
    /// volume, a ConfigMap or Secret key that does not exist …) are returned.
    pub fn build(
        root: &Path,
        pod: &Pod,
        c: &Container,
        objects: &Objects,
        secrets: &SecretFiles,
    ) -> (Sandbox, Vec<String>) {
        let sandbox = Sandbox {
            root: root.to_owned(),
        };
        let mut problems = Vec::new();
        let mut yaml_files = Vec::new();
        for m in &c.mounts {
            let dir = sandbox.host(&m.path);
            std::fs::create_dir_all(&dir).unwrap();
            let files: Vec<(String, Vec<u8>)> = match pod.volumes.get(&m.volume) {
                None => {
                    problems.push(format!("volumeMount `{}` names no volume", m.volume));
                    continue;
                }
                Some(Volume::ConfigMap { name, items }) => {
                    let Some(cm) = objects.named("ConfigMap", name) else {
                        problems.push(format!("ConfigMap `{name}` is not in the rendered objects"));
                        continue;
                    };
                    let data: BTreeMap<String, String> = at(cm, &["data"])
                        .as_mapping()
                        .into_iter()
                        .flatten()
                        .filter_map(|(k, v)| Some((k.as_str()?.into(), v.as_str()?.into())))
                        .collect();
                    pick(&data, items, &format!("ConfigMap `{name}`"), &mut problems)
                        .into_iter()
                        .map(|(path, text)| (path, text.into_bytes()))
                        .collect()
                }
                Some(Volume::Secret { name, items }) => {
                    let Some(held) = secrets.get(name) else {
                        problems.push(format!(
                            "Secret `{name}` is not one this test knows (docs/operations.md lists \
                             the Secrets and their keys; teach the test what it holds)"
                        ));
                        continue;
                    };
                    let data: BTreeMap<String, PathBuf> = held.iter().cloned().collect();
                    pick(&data, items, &format!("Secret `{name}`"), &mut problems)
                        .into_iter()
                        .map(|(path, file)| (path, std::fs::read(file).unwrap()))
                        .collect()
                }
                Some(Volume::Claim | Volume::EmptyDir) => Vec::new(),
                Some(Volume::Other) => {
                    problems.push(format!(
                        "volume `{}` is of a kind this test does not lay out",
                        m.volume
                    ));
                    continue;
                }
            };
            for (path, bytes) in files {
                let file = dir.join(&path);
                std::fs::create_dir_all(file.parent().unwrap()).unwrap();
                std::fs::write(&file, bytes).unwrap();
                if path.ends_with(".yaml") || path.ends_with(".yml") {
                    yaml_files.push(file);
                }
            }
        }
        let claims: Vec<&str> = c
            .mounts
            .iter()
            .filter(|m| matches!(pod.volumes.get(&m.volume), Some(Volume::Claim)))
            .map(|m| m.path.as_str())
            .collect();
        for file in yaml_files {
            let text = std::fs::read_to_string(&file).unwrap();
            let Ok(mut doc) = serde_yaml::from_str::<Value>(&text) else {
                continue;
            };
            for source in at(&doc, &["data_sources"])
                .as_sequence()
                .into_iter()
                .flatten()
            {
                if let Some(root) = source["root"].as_str()
                    && claims.iter().any(|c| under(root, c))
                {
                    std::fs::create_dir_all(sandbox.host(root)).unwrap();
                }
            }
            sandbox.rewrite_value(&mut doc);
            std::fs::write(&file, serde_yaml::to_string(&doc).unwrap()).unwrap();
        }
        (sandbox, problems)
    }

    /// Where the container's `path` is on this machine.
    pub fn host(&self, path: &str) -> PathBuf {
        self.root.join(path.trim_start_matches('/'))
    }

    /// `s` with an absolute path moved into the sandbox; anything else unchanged.
    pub fn rewrite(&self, s: &str) -> String {
        if s.starts_with('/') {
            self.host(s).display().to_string()
        } else {
            s.to_owned()
        }
    }

    fn rewrite_value(&self, v: &mut Value) {
        match v {
            Value::String(s) => *s = self.rewrite(s),
            Value::Sequence(items) => items.iter_mut().for_each(|i| self.rewrite_value(i)),
            Value::Mapping(m) => m.values_mut().for_each(|i| self.rewrite_value(i)),
            Value::Tagged(t) => self.rewrite_value(&mut t.value),
            _ => {}
        }
    }
}

/// The files a ConfigMap or Secret volume shows: every key, or only `items`.
fn pick<T: Clone>(
    data: &BTreeMap<String, T>,
    items: &Option<Vec<(String, String)>>,
    what: &str,
    problems: &mut Vec<String>,
) -> Vec<(String, T)> {
    match items {
        None => data.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        Some(items) => items
            .iter()
            .filter_map(|(key, path)| match data.get(key) {
                Some(v) => Some((path.clone(), v.clone())),
                None => {
                    problems.push(format!("{what} has no key `{key}`"));
                    None
                }
            })
            .collect(),
    }
}
