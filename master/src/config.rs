//! The master's configuration: built-in defaults → YAML file (`--config` or
//! `MERIDIAN_MASTER_CONFIG`) → `MERIDIAN_MASTER_SECTION__KEY` environment variables →
//! flags; then checked, so a bad value stops start-up with one line naming the key.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use meridian_service::config::{ConfigError, Layers};
use meridian_service::telemetry::LogFormat;
use meridian_service::tls::TlsFiles;
use meridian_wire::{SITE_NAME_RULE, is_site_name};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MasterConfig {
    pub master: MasterSection,
    pub database: DatabaseConfig,
    /// The master's client identity towards the sites (mutual TLS).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<ClientTls>,
    pub auth: AuthConfig,
    pub sites: Vec<SiteEntry>,
    pub log: LogConfig,
}

/// `master.*`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MasterSection {
    /// Address of the user API.
    pub listen: String,
    /// Holds the embedded SQLite database when `database.url` is empty.
    pub data_dir: PathBuf,
    /// How often every site's status is refreshed (one request per site per round).
    pub poll_interval_seconds: f64,
    /// Failed polls in a row after which a site is shown `UNREACHABLE`.
    pub unreachable_after_failures: u32,
    /// Timeout of one request to a site.
    pub request_timeout_seconds: f64,
    /// How often each site's data-source catalog is re-read.
    pub catalog_refresh_seconds: f64,
    /// Ceiling of the exponential backoff between dispatch or cancel attempts.
    pub retry_backoff_max_seconds: f64,
    /// Larger request bodies are refused with 413.
    pub max_body_bytes: u64,
}

/// `database.*`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `postgres://…`, `sqlite://PATH`; empty means `master.db` in `master.data_dir`.
    pub url: String,
    pub max_connections: u32,
}

/// `tls.*`: the master's certificate (DNS SAN `master`), the mesh CA, and how often
/// the files are checked for rotation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientTls {
    pub ca_file: PathBuf,
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    #[serde(default = "default_reload")]
    pub reload_interval_seconds: u64,
}

fn default_reload() -> u64 {
    5
}

impl ClientTls {
    pub fn files(&self) -> TlsFiles {
        TlsFiles {
            ca_file: self.ca_file.clone(),
            cert_file: self.cert_file.clone(),
            key_file: self.key_file.clone(),
        }
    }
}

/// `auth.*`: JWT bearer tokens on the user API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// The one algorithm accepted: ES256, ES384, RS256, RS384, RS512, PS256, EdDSA, HS256…
    pub algorithm: String,
    pub issuer: String,
    pub audience: String,
    /// Public key (PEM) for asymmetric algorithms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key_file: Option<PathBuf>,
    /// Environment variable holding the shared secret for HS* algorithms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hmac_secret_env: Option<String>,
    /// Private key (PEM) used only by `meridian-master token` to mint dev tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signing_key_file: Option<PathBuf>,
    /// Clock skew tolerated on `exp`/`nbf`, at most 60.
    pub leeway_seconds: u64,
}

/// One entry of `sites`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SiteEntry {
    /// `[a-z0-9-]{1,63}`; also the identity its certificate must carry.
    pub name: String,
    /// Base URL of the child's site API, `https://…` (plain `http://` only on loopback).
    pub url: String,
}

/// `log.*`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    pub format: LogFormat,
    pub level: String,
}

impl Default for MasterConfig {
    fn default() -> Self {
        MasterConfig {
            master: MasterSection {
                listen: "127.0.0.1:8400".into(),
                data_dir: PathBuf::from(".data/master"),
                poll_interval_seconds: 5.0,
                unreachable_after_failures: 2,
                request_timeout_seconds: 10.0,
                catalog_refresh_seconds: 60.0,
                retry_backoff_max_seconds: 60.0,
                max_body_bytes: 1024 * 1024,
            },
            database: DatabaseConfig {
                url: String::new(),
                max_connections: 4,
            },
            tls: None,
            auth: AuthConfig {
                algorithm: "ES256".into(),
                issuer: "meridian".into(),
                audience: "meridian-api".into(),
                public_key_file: None,
                hmac_secret_env: None,
                signing_key_file: None,
                leeway_seconds: 30,
            },
            sites: Vec::new(),
            log: LogConfig {
                format: LogFormat::Text,
                level: "info".into(),
            },
        }
    }
}

impl MasterConfig {
    /// Defaults, then the file, then the environment, then `overrides` (flags).
    pub fn load(
        file: Option<&Path>,
        overrides: &[(&str, String)],
    ) -> Result<MasterConfig, ConfigError> {
        let mut layers = Layers::new();
        if let Some(path) = file {
            layers = layers.file(path)?;
        }
        // `MERIDIAN_MASTER_SECTION__KEY` only: `MERIDIAN_MASTER_CONFIG` and
        // `MERIDIAN_MASTER_FAILPOINTS` have no section separator and are not read here.
        layers = layers.env("MERIDIAN_MASTER_", &[]);
        for (key, value) in overrides {
            layers = layers.value(key, value);
        }
        let cfg = layers.extract(&MasterConfig::default())?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// The database URL, the embedded file when none is set.
    pub fn database_url(&self) -> String {
        if self.database.url.is_empty() {
            format!(
                "sqlite://{}",
                self.master.data_dir.join("master.db").display()
            )
        } else {
            self.database.url.clone()
        }
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let m = &self.master;
        if m.listen.parse::<SocketAddr>().is_err() {
            return Err(ConfigError::new(
                "master.listen",
                format!(
                    "value `{}` is not an address; allowed: IP:PORT, e.g. 127.0.0.1:8400",
                    m.listen
                ),
            ));
        }
        seconds(
            "master.poll_interval_seconds",
            m.poll_interval_seconds,
            0.05,
            3600.0,
        )?;
        seconds(
            "master.request_timeout_seconds",
            m.request_timeout_seconds,
            0.1,
            600.0,
        )?;
        seconds(
            "master.catalog_refresh_seconds",
            m.catalog_refresh_seconds,
            0.1,
            86_400.0,
        )?;
        seconds(
            "master.retry_backoff_max_seconds",
            m.retry_backoff_max_seconds,
            0.1,
            3600.0,
        )?;
        if !(1..=100).contains(&m.unreachable_after_failures) {
            return Err(ConfigError::out_of_range(
                "master.unreachable_after_failures",
                m.unreachable_after_failures,
                1,
                100,
            ));
        }
        if !(1..=256).contains(&self.database.max_connections) {
            return Err(ConfigError::out_of_range(
                "database.max_connections",
                self.database.max_connections,
                1,
                256,
            ));
        }
        let mut seen = std::collections::BTreeSet::new();
        for (i, site) in self.sites.iter().enumerate() {
            let key = format!("sites[{i}].name");
            if !is_site_name(&site.name) {
                return Err(ConfigError::new(
                    key,
                    format!(
                        "value `{}` is invalid; allowed: {SITE_NAME_RULE}",
                        site.name
                    ),
                ));
            }
            if !seen.insert(site.name.clone()) {
                return Err(ConfigError::new(
                    key,
                    format!("site `{}` is listed twice", site.name),
                ));
            }
            let url = reqwest::Url::parse(&site.url).map_err(|e| {
                ConfigError::new(
                    format!("sites[{i}].url"),
                    format!("value `{}` is not a URL: {e}", site.url),
                )
            })?;
            match url.scheme() {
                "https" => {
                    if self.tls.is_none() {
                        return Err(ConfigError::new(
                            "tls",
                            format!(
                                "site `{}` is served over HTTPS, so the master needs its client certificate: set tls.ca_file, tls.cert_file and tls.key_file",
                                site.name
                            ),
                        ));
                    }
                }
                "http" if is_loopback(&url) => {}
                other => {
                    return Err(ConfigError::new(
                        format!("sites[{i}].url"),
                        format!(
                            "scheme `{other}` of `{}` is not allowed; allowed: https:// (mutual TLS), or http:// on a loopback address",
                            site.url
                        ),
                    ));
                }
            }
        }
        if let Some(tls) = &self.tls {
            let files = tls.files();
            files
                .check()
                .map_err(|e| ConfigError::new(tls_key(tls, &e.file), e.to_string()))?;
        }
        self.validate_auth()
    }

    fn validate_auth(&self) -> Result<(), ConfigError> {
        let a = &self.auth;
        if a.leeway_seconds > 60 {
            return Err(ConfigError::out_of_range(
                "auth.leeway_seconds",
                a.leeway_seconds,
                0,
                60,
            ));
        }
        if a.issuer.is_empty() {
            return Err(ConfigError::new(
                "auth.issuer",
                "is empty; tokens must name their issuer",
            ));
        }
        if a.audience.is_empty() {
            return Err(ConfigError::new(
                "auth.audience",
                "is empty; tokens must name their audience",
            ));
        }
        crate::auth::Verifier::from_config(a).map(|_| ())
    }
}

fn tls_key(tls: &ClientTls, file: &Path) -> &'static str {
    if file == tls.ca_file {
        "tls.ca_file"
    } else if file == tls.cert_file {
        "tls.cert_file"
    } else {
        "tls.key_file"
    }
}

fn is_loopback(url: &reqwest::Url) -> bool {
    let host = url.host_str().unwrap_or_default();
    host == "localhost"
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn seconds(key: &str, value: f64, min: f64, max: f64) -> Result<(), ConfigError> {
    if value.is_finite() && (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(ConfigError::new(
            key,
            format!("value {value} is out of range; allowed {min}..={max}"),
        ))
    }
}
