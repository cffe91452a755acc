//! Where meridianctl finds the master, the CA to trust and the token: flags, then
//! `MERIDIAN_*` variables (clap merges those two, flags first), then the config file
//! `$XDG_CONFIG_HOME/meridian/config.yaml` (default `~/.config/meridian/config.yaml`).

use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Format as _, Yaml};
use serde::Deserialize;

use crate::exit::CliError;

/// The master of the quickstart, when nothing else is said.
pub const DEFAULT_SERVER: &str = "http://127.0.0.1:8400";

/// The config file's keys; an unknown key is refused so a typo does not go unseen.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    server: Option<String>,
    ca_file: Option<PathBuf>,
    token: Option<String>,
}

/// What the flags and the environment said (None when neither did).
#[derive(Debug, Default, Clone)]
pub struct Given {
    pub server: Option<String>,
    pub ca_file: Option<PathBuf>,
    pub token: Option<String>,
    /// `--config`: a file that must exist, instead of the default location.
    pub config: Option<PathBuf>,
}

/// The settings a command runs with.
#[derive(Debug, Clone)]
pub struct Settings {
    pub server: String,
    pub ca_file: Option<PathBuf>,
    pub token: Option<String>,
}

/// `$XDG_CONFIG_HOME/meridian/config.yaml`, or `$HOME/.config/meridian/config.yaml`;
/// XDG says a relative `XDG_CONFIG_HOME` is to be ignored.
pub fn default_path() -> Option<PathBuf> {
    let xdg = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute());
    let base = xdg.or_else(|| {
        std::env::var_os("HOME")
            .filter(|h| !h.is_empty())
            .map(|h| PathBuf::from(h).join(".config"))
    })?;
    Some(base.join("meridian").join("config.yaml"))
}

fn read_file(path: &Path) -> Result<FileConfig, CliError> {
    Figment::from(Yaml::file_exact(path))
        .extract::<FileConfig>()
        .map_err(|e| CliError::Other(format!("config file {}: {e}", path.display())))
}

/// Empty values count as absent: `MERIDIAN_TOKEN=` must not send an empty token.
fn non_empty(s: Option<String>) -> Option<String> {
    s.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
}

/// Merges `given` over the config file: flags > environment > file.
pub fn resolve(given: &Given) -> Result<Settings, CliError> {
    let file = match &given.config {
        Some(path) => {
            if !path.is_file() {
                return Err(CliError::Usage(format!(
                    "config file {} does not exist",
                    path.display()
                )));
            }
            Some((path.clone(), read_file(path)?))
        }
        None => match default_path() {
            Some(path) if path.is_file() => Some((path.clone(), read_file(&path)?)),
            _ => None,
        },
    };
    let (dir, file) = match file {
        Some((path, f)) => (path.parent().map(Path::to_path_buf), f),
        None => (None, FileConfig::default()),
    };
    // A relative CA path in the file is relative to the file, not to where the
    // command happens to run.
    let file_ca = file.ca_file.map(|p| match (&dir, p.is_relative()) {
        (Some(d), true) => d.join(p),
        _ => p,
    });
    let server = non_empty(given.server.clone())
        .or_else(|| non_empty(file.server))
        .unwrap_or_else(|| DEFAULT_SERVER.to_owned());
    Ok(Settings {
        server: server.trim_end_matches('/').to_owned(),
        ca_file: given
            .ca_file
            .clone()
            .filter(|p| !p.as_os_str().is_empty())
            .or(file_ca),
        token: non_empty(given.token.clone()).or_else(|| non_empty(file.token)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_win_over_the_file_and_relative_ca_paths_follow_the_file() {
        let dir = std::env::temp_dir().join(format!("meridianctl-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("config.yaml");
        std::fs::write(
            &path,
            "server: https://file:8400/\nca_file: ca.pem\ntoken: from-file\n",
        )
        .unwrap();
        let given = Given {
            config: Some(path.clone()),
            ..Given::default()
        };
        let s = resolve(&given).unwrap();
        assert_eq!(s.server, "https://file:8400");
        assert_eq!(s.ca_file, Some(dir.join("ca.pem")));
        assert_eq!(s.token.as_deref(), Some("from-file"));
        let given = Given {
            server: Some("http://flag".into()),
            token: Some("from-flag".into()),
            config: Some(path.clone()),
            ..Given::default()
        };
        let s = resolve(&given).unwrap();
        assert_eq!(s.server, "http://flag");
        assert_eq!(s.token.as_deref(), Some("from-flag"));
        std::fs::write(&path, "sever: typo\n").unwrap();
        assert!(resolve(&given).is_err(), "an unknown key is refused");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
