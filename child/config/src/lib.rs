//! The site's typed configuration: every parameter with its exact name and
//! default, the layers it is read from, and the checks that stop a bad start-up.

pub mod distributed;
pub mod load;
pub mod object_keys;
mod validate;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use load::{ConfigLayers, LIVE_KEYS, finalize};
pub use meridian_scan::settings::{
    ClassifiersConfig, CustomClassifierConfig, DataSourceConfig, FilesystemSource, PostgresSource,
    SecretString, SyntheticSource, Validator,
};
pub use meridian_service::config::ConfigError;
pub use meridian_service::telemetry::LogFormat;
pub use meridian_wire::task::SystemParameter;
pub use object_keys::ObjectKeys;

/// How the site process is deployed; changes resource logic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeploymentModel {
    #[serde(rename = "EKS")]
    Eks,
    #[serde(rename = "SINGLE_PROCESS")]
    SingleProcess,
}

/// How free workers are shared between active jobs (`orchestrator.fair_sharing_policy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FairSharingPolicy {
    /// Free workers go to active jobs in turn, one task each.
    #[serde(rename = "ROUND")]
    Round,
    /// Free workers go to active jobs in proportion to their priority (smooth
    /// weighted round-robin), so every job with a weight gets a share.
    #[serde(rename = "WEIGHTED")]
    Weighted,
}

/// The whole site configuration after `finalize()`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SystemConfig {
    pub orchestrator: OrchestratorConfig,
    pub worker: WorkerConfig,
    pub job: JobConfig,
    pub connector: ConnectorConfig,
    pub node: NodeConfig,
    pub site: SiteConfig,
    pub api: ApiConfig,
    pub database: DatabaseConfig,
    pub log: LogConfig,
    pub classifiers: ClassifiersConfig,
    pub data_sources: Vec<DataSourceConfig>,
}

/// `orchestrator.*`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrchestratorConfig {
    pub deployment_model: DeploymentModel,
    pub long_poll_timeout_seconds: u64,
    pub reaper_interval_seconds: u64,
    pub task_cache_size: u32,
    pub fair_sharing_policy: FairSharingPolicy,
    /// A running task with no progress report for this long is flagged stalled.
    pub stalled_task_seconds: u64,
    /// How often `system_parameters` is re-read for live changes.
    pub config_reload_interval_seconds: u64,
    /// How long SIGTERM waits for running tasks before handing them back.
    pub shutdown_grace_seconds: u64,
    /// Most work packets one `get_task` answer carries (distributed mode).
    pub max_tasks_per_poll: u32,
}

/// `worker.*`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkerConfig {
    pub in_process_thread_count: u32,
    pub task_timeout_seconds: u64,
    pub heartbeat_interval_seconds: u64,
    pub max_retries: u32,
    pub process_memory_limit_mb: u64,
    pub global_cpu_threshold_percent: u32,
    /// First retry delay; doubles per attempt, with jitter.
    pub retry_backoff_base_milliseconds: u64,
    /// Ceiling of the retry delay.
    pub retry_backoff_max_seconds: u64,
    /// `--mode worker`: base URL of the site's orchestrators (a load balancer in front
    /// of the replicas), e.g. `http://meridian-orchestrator:8080`.
    pub orchestrator_url: String,
    /// `--mode worker`: tasks one worker process runs at once.
    pub slot_count: u32,
    /// `--mode worker`: on SIGTERM, how long running tasks get to finish before they
    /// are handed back.
    pub drain_seconds: u64,
    /// Name of the environment variable holding the site's worker key (at least 32
    /// bytes). Orchestrators verify worker credentials with it, workers sign theirs.
    /// The key itself is never in the configuration, logs or errors.
    pub auth_key_env: String,
    /// Lifetime of a worker credential; workers sign a fresh one before it ends.
    pub credential_ttl_seconds: u64,
    /// `--mode worker`: trust for an `https://` orchestrator URL, and the worker's
    /// optional client certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<WorkerTlsConfig>,
    /// `--mode worker`: plain HTTP `/health`, `/ready`, `/metrics` for probes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ops_listen: Option<String>,
}

/// `job.*`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobConfig {
    pub failure_threshold_percent: f64,
}

/// `connector.*`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectorConfig {
    pub discovery_batch_write_size: u32,
    /// Most objects one `PROCESS` task covers.
    pub objects_per_task: u32,
    /// Most bytes (MiB) of objects one `PROCESS` task covers; a larger object gets a
    /// task of its own.
    pub task_bytes_mb: u64,
    pub easyocr_support_enabled: bool,
    pub get_table_or_images_enabled: bool,
}

/// `node.*`: this process.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    /// Names this node's `system_parameters` rows and prefixes its worker ids.
    pub id: String,
    /// Holds the embedded SQLite database when `database.url` is empty.
    pub data_dir: PathBuf,
}

/// `site.*`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SiteConfig {
    /// `[a-z0-9-]{1,63}`, e.g. `london`.
    pub name: String,
    /// Part of a federation: the master calls this site, so `api.tls` is required.
    pub federated: bool,
    /// How object keys (file paths, table names) leave the site in findings.
    #[serde(default)]
    pub object_keys: ObjectKeys,
    /// The environment variable holding the secret keyed hashes are made with
    /// (`object_keys: hashed`).
    #[serde(default = "object_keys::default_secret_env")]
    pub object_key_secret_env: String,
}

/// `api.*`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiConfig {
    /// Address the site API listens on; port 0 picks a free port.
    pub listen: String,
    /// Larger request bodies are refused with 413.
    pub max_body_bytes: u64,
    /// When set, the worker API (`/get_task` …) is served here and no longer on
    /// `listen`: HTTPS with the site's certificate when `tls` is set (workers
    /// authenticate with their bearer credential), plain HTTP only on loopback.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker_listen: Option<String>,
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
    /// HTTPS with required client certificates (mutual TLS). Absent: plain HTTP,
    /// which is allowed only on a loopback address of a site outside a federation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<ApiTlsConfig>,
}

impl ApiConfig {
    /// The connection bounds of every listener of the site.
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

/// `worker.tls.*`: how a remote worker reaches an `https://` orchestrator URL.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkerTlsConfig {
    /// The CA the site's certificate chains to; the certificate must name `site.name`.
    pub ca_file: PathBuf,
    /// The worker's own certificate, presented when set (with `key_file`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_file: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_file: Option<PathBuf>,
}

/// `api.tls.*`: the site's certificate and who may call it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiTlsConfig {
    /// The mesh CA that client certificates must chain to.
    pub ca_file: PathBuf,
    /// This site's certificate; its DNS SAN is the site name.
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    /// Client identities (DNS SANs) allowed to call this site.
    #[serde(default = "default_allowed_clients")]
    pub allowed_clients: Vec<String>,
    /// How often the three files are checked for rotation.
    #[serde(default = "default_tls_reload_seconds")]
    pub reload_interval_seconds: u64,
}

fn default_allowed_clients() -> Vec<String> {
    vec![meridian_service::tls::MASTER_IDENTITY.to_owned()]
}

fn default_tls_reload_seconds() -> u64 {
    5
}

impl ApiTlsConfig {
    pub fn files(&self) -> meridian_service::tls::TlsFiles {
        meridian_service::tls::TlsFiles {
            ca_file: self.ca_file.clone(),
            cert_file: self.cert_file.clone(),
            key_file: self.key_file.clone(),
        }
    }
}

/// `database.*`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `postgres://…` for PostgreSQL, `sqlite://PATH` or `sqlite::memory:`; empty means
    /// the embedded SQLite file `site.db` in `node.data_dir`.
    pub url: SecretString,
    pub max_connections: u32,
}

/// `log.*`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    pub format: LogFormat,
    /// A `tracing` filter, e.g. `info` or `meridian_child=debug`.
    pub level: String,
}

impl Default for SystemConfig {
    fn default() -> Self {
        SystemConfig {
            orchestrator: OrchestratorConfig {
                deployment_model: DeploymentModel::Eks,
                long_poll_timeout_seconds: 30,
                reaper_interval_seconds: 120,
                task_cache_size: 100,
                fair_sharing_policy: FairSharingPolicy::Round,
                stalled_task_seconds: 300,
                config_reload_interval_seconds: 15,
                shutdown_grace_seconds: 30,
                max_tasks_per_poll: 100,
            },
            worker: WorkerConfig {
                in_process_thread_count: 8,
                task_timeout_seconds: 600,
                heartbeat_interval_seconds: 60,
                max_retries: 3,
                process_memory_limit_mb: 4096,
                global_cpu_threshold_percent: 90,
                retry_backoff_base_milliseconds: 1000,
                retry_backoff_max_seconds: 300,
                orchestrator_url: "http://127.0.0.1:8080".into(),
                slot_count: 4,
                drain_seconds: 30,
                auth_key_env: "MERIDIAN_WORKER_AUTH_KEY".into(),
                credential_ttl_seconds: 900,
                tls: None,
                ops_listen: None,
            },
            job: JobConfig {
                failure_threshold_percent: 10.0,
            },
            connector: ConnectorConfig {
                discovery_batch_write_size: 1000,
                objects_per_task: 256,
                task_bytes_mb: 16,
                easyocr_support_enabled: true,
                get_table_or_images_enabled: true,
            },
            node: NodeConfig {
                id: "node-1".into(),
                data_dir: PathBuf::from(".data"),
            },
            site: SiteConfig {
                name: "local".into(),
                federated: false,
                object_keys: ObjectKeys::Plain,
                object_key_secret_env: object_keys::default_secret_env(),
            },
            api: ApiConfig {
                listen: "127.0.0.1:8080".into(),
                max_body_bytes: 1024 * 1024,
                worker_listen: None,
                ops_listen: None,
                header_read_timeout_seconds: 10,
                body_read_timeout_seconds: 60,
                idle_timeout_seconds: 60,
                max_connections: 1024,
                tls: None,
            },
            database: DatabaseConfig {
                url: SecretString::default(),
                max_connections: 4,
            },
            log: LogConfig {
                format: LogFormat::Text,
                level: "info".into(),
            },
            classifiers: ClassifiersConfig::default(),
            data_sources: Vec::new(),
        }
    }
}

impl SystemConfig {
    /// The database URL to connect to, resolving the embedded default.
    pub fn database_url(&self) -> String {
        let url = self.database.url.expose();
        if url.is_empty() {
            format!("sqlite://{}", self.node.data_dir.join("site.db").display())
        } else {
            url.to_owned()
        }
    }

    pub fn data_source(&self, id: &str) -> Option<&DataSourceConfig> {
        self.data_sources.iter().find(|d| d.id() == id)
    }
}

/// Which parts of a site this process runs (`--mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RunMode {
    /// Orchestrator, site API and in-process workers (the default).
    Single,
    /// Site API, engine and the worker API, no workers (distributed model; PostgreSQL).
    Orchestrator,
    /// Workers only, long-polling an orchestrator; no API, no database (distributed model).
    Worker,
    /// Apply the database migrations and exit (a Kubernetes Job before a rollout).
    Migrate,
}
