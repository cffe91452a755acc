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
    /// The user API over HTTPS. Required when `listen` is not a loopback address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<ServerTlsConfig>,
    /// When set, plain HTTP `/health`, `/ready` and `/metrics` (no data) for probes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ops_listen: Option<String>,
    /// A request head must be complete this long after its first byte (and a TLS
    /// handshake after the accept), or the connection is closed.
    pub header_read_timeout_seconds: u64,
    /// A request body must be read this long after its head.
    pub body_read_timeout_seconds: u64,
    /// A keep-alive connection with nothing in flight is closed after this.
    pub idle_timeout_seconds: u64,
    /// Connections served at once on each listener; more wait to be accepted.
    pub max_connections: u32,
}

impl MasterSection {
    pub fn limits(&self) -> meridian_service::tls::Limits {
        use std::time::Duration;
        meridian_service::tls::Limits {
            header_read_timeout: Duration::from_secs(self.header_read_timeout_seconds),
            body_read_timeout: Duration::from_secs(self.body_read_timeout_seconds),
            idle_timeout: Duration::from_secs(self.idle_timeout_seconds),
            max_connections: self.max_connections as usize,
        }
    }
}

/// `master.tls.*`: the user API's server certificate, and optionally the CA that
/// client certificates must chain to (then they are required).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerTlsConfig {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_ca_file: Option<PathBuf>,
    /// How often the files are checked for rotation.
    #[serde(default = "default_reload")]
    pub reload_interval_seconds: u64,
}

impl ServerTlsConfig {
    /// The rustls configuration of the user API, errors naming the key.
    pub fn server_config(&self) -> Result<std::sync::Arc<rustls::ServerConfig>, ConfigError> {
        meridian_service::tls::server_config_with(
            &self.cert_file,
            &self.key_file,
            self.client_ca_file.as_deref(),
            true,
        )
        .map_err(|e| {
            let key = if e.file == self.cert_file {
                "master.tls.cert_file"
            } else if e.file == self.key_file {
                "master.tls.key_file"
            } else {
                "master.tls.client_ca_file"
            };
            ConfigError::new(key, e.to_string())
        })
    }

    /// The files watched for rotation (the CA slot holds the client CA, or the
    /// certificate again when there is none).
    pub fn files(&self) -> TlsFiles {
        TlsFiles {
            ca_file: self
                .client_ca_file
                .clone()
                .unwrap_or_else(|| self.cert_file.clone()),
            cert_file: self.cert_file.clone(),
            key_file: self.key_file.clone(),
        }
    }
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
                tls: None,
                ops_listen: None,
                header_read_timeout_seconds: 10,
                body_read_timeout_seconds: 60,
                idle_timeout_seconds: 60,
                max_connections: 1024,
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
        let Ok(listen) = m.listen.parse::<SocketAddr>() else {
            return Err(ConfigError::new(
                "master.listen",
                format!(
                    "value `{}` is not an address; allowed: IP:PORT, e.g. 127.0.0.1:8400",
                    m.listen
                ),
            ));
        };
        self.validate_listeners(listen)?;
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
            let url =
                site_url(&site.url).map_err(|e| ConfigError::new(format!("sites[{i}].url"), e))?;
            if url.scheme() == "https" && self.tls.is_none() {
                return Err(ConfigError::new(
                    "tls",
                    format!(
                        "site `{}` is served over HTTPS, so the master needs its client certificate: set tls.ca_file, tls.cert_file and tls.key_file",
                        site.name
                    ),
                ));
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

    /// The user API's HTTPS rule, the probes' address, the connection bounds, and
    /// the ranges whose zero would break the service (a reload loop that spins, a
    /// body limit that refuses every POST).
    fn validate_listeners(&self, listen: SocketAddr) -> Result<(), ConfigError> {
        let m = &self.master;
        match &m.tls {
            Some(tls) => {
                range(
                    "master.tls.reload_interval_seconds",
                    tls.reload_interval_seconds,
                    1,
                    3600,
                )?;
                tls.server_config()?;
            }
            None if !listen.ip().is_loopback() => {
                return Err(ConfigError::new(
                    "master.tls",
                    format!(
                        "master.listen `{}` is not a loopback address; plain HTTP is allowed only on \
                         loopback, so set master.tls.cert_file and master.tls.key_file",
                        m.listen
                    ),
                ));
            }
            None => {}
        }
        if let Some(ops) = &m.ops_listen
            && ops.parse::<SocketAddr>().is_err()
        {
            return Err(ConfigError::new(
                "master.ops_listen",
                format!("value `{ops}` is not an address; allowed: IP:PORT, e.g. 0.0.0.0:9090"),
            ));
        }
        range("master.max_body_bytes", m.max_body_bytes, 1024, 1 << 30)?;
        range(
            "master.header_read_timeout_seconds",
            m.header_read_timeout_seconds,
            1,
            300,
        )?;
        range(
            "master.body_read_timeout_seconds",
            m.body_read_timeout_seconds,
            1,
            3600,
        )?;
        range(
            "master.idle_timeout_seconds",
            m.idle_timeout_seconds,
            1,
            3600,
        )?;
        range(
            "master.max_connections",
            m.max_connections.into(),
            1,
            65_536,
        )?;
        if let Some(tls) = &self.tls {
            range(
                "tls.reload_interval_seconds",
                tls.reload_interval_seconds,
                1,
                3600,
            )?;
        }
        Ok(())
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

/// A site's base URL, strictly: nothing trimmed, the scheme exactly `https://` or
/// (on a loopback host only) `http://`, a host, and no credentials, query or fragment.
/// The URL parser would accept ` HTTPS://x` and lower-case it; such a spelling must
/// not reach the choice of client, so it is refused here.
pub fn site_url(raw: &str) -> Result<reqwest::Url, String> {
    let allowed =
        "allowed: https://HOST[:PORT][/PATH] (mutual TLS), or http:// on a loopback address";
    if raw.is_empty() || raw.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("value `{raw}` contains whitespace; {allowed}"));
    }
    let https = raw.starts_with("https://");
    if !https && !raw.starts_with("http://") {
        return Err(format!(
            "value `{raw}` does not start with https:// or http://; {allowed}"
        ));
    }
    let url = reqwest::Url::parse(raw).map_err(|e| format!("value `{raw}` is not a URL: {e}"))?;
    if url.host_str().is_none_or(str::is_empty)
        || !url.username().is_empty()
        || url.password().is_some()
        || url.query().is_some()
        || url.fragment().is_some()
    {
        return Err(format!(
            "value `{raw}` must be a base URL with a host and no credentials, query or fragment"
        ));
    }
    if !https && !is_loopback(&url) {
        return Err(format!(
            "value `{raw}` is plain HTTP to a host that is not loopback; {allowed}"
        ));
    }
    Ok(url)
}

fn range(key: &str, value: u64, min: u64, max: u64) -> Result<(), ConfigError> {
    if (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(ConfigError::out_of_range(
            key, value, min as i64, max as i64,
        ))
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
