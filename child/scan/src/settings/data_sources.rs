//! Data sources defined in the site's configuration. Connector settings and
//! credentials stay in the site; only id, kind and description reach the catalog.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::SecretString;

/// One data source; `kind` selects the connector.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum DataSourceConfig {
    /// Files under a root directory.
    Filesystem(FilesystemSource),
    /// Tables of a PostgreSQL database, sampled row by row.
    Postgres(PostgresSource),
    /// Generated objects that need no storage: for load tests, benchmarks and chaos
    /// drills (it can fail on purpose).
    Synthetic(SyntheticSource),
}

/// `kind: postgres`. The connection URL carries credentials: it is never serialized
/// (so it is in no work packet, status or log), and the worker takes it from the
/// site's configuration when it runs a task.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostgresSource {
    pub id: String,
    #[serde(default)]
    pub description: String,
    /// `postgres://user:password@host/db`, inline in the site's configuration.
    #[serde(default, skip_serializing)]
    pub url: SecretString,
    /// Or the name of an environment variable holding that URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url_env: Option<String>,
    /// Schemas to scan; every schema except PostgreSQL's own when empty.
    #[serde(default)]
    pub schemas: Vec<String>,
    #[serde(default)]
    pub exclude_schemas: Vec<String>,
    /// Tables to scan, as `table` or `schema.table`; all when empty.
    #[serde(default)]
    pub tables: Vec<String>,
    #[serde(default)]
    pub exclude_tables: Vec<String>,
    /// Columns never read, as `column`, `table.column` or `schema.table.column`.
    #[serde(default)]
    pub exclude_columns: Vec<String>,
    /// Rows read per table at most (job option `sample_rows` overrides).
    #[serde(default = "default_sample_rows")]
    pub sample_rows: u64,
    /// Percentage of rows sampled (Bernoulli, repeatable), 1..=100 (job option
    /// `sample_percent` overrides).
    #[serde(default = "default_sample_percent")]
    pub sample_percent: u32,
}

impl std::fmt::Debug for PostgresSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresSource")
            .field("id", &self.id)
            .field("url", &self.url)
            .field("url_env", &self.url_env)
            .field("schemas", &self.schemas)
            .finish_non_exhaustive()
    }
}

impl PostgresSource {
    /// The connection URL: the inline `url`, else the variable named by `url_env`.
    /// Errors name the data source and the variable, never a value.
    pub fn connection_url(&self) -> Result<SecretString, String> {
        if !self.url.expose().is_empty() {
            return Ok(self.url.clone());
        }
        match &self.url_env {
            Some(var) => std::env::var(var).map(SecretString::new).map_err(|_| {
                format!(
                    "data source {}: environment variable {var} is not set",
                    self.id
                )
            }),
            None => Err(format!(
                "data source {}: neither url nor url_env is set",
                self.id
            )),
        }
    }
}

fn default_sample_rows() -> u64 {
    1000
}

fn default_sample_percent() -> u32 {
    100
}

/// `kind: filesystem`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilesystemSource {
    pub id: String,
    #[serde(default)]
    pub description: String,
    /// Nothing outside this directory is ever read.
    pub root: PathBuf,
    /// Globs relative to `root`; a file must match one of them.
    #[serde(default = "include_everything")]
    pub include: Vec<String>,
    /// Globs relative to `root`; a matching file is not discovered.
    #[serde(default)]
    pub exclude: Vec<String>,
    /// Larger files are discovered but skipped, with the reason counted.
    #[serde(default = "default_max_file_size_mb")]
    pub max_file_size_mb: u64,
    /// Whether files and directories whose name starts with `.` are scanned; when
    /// false, hidden directories are not entered at all.
    #[serde(default = "yes")]
    pub hidden_files: bool,
}

/// `kind: synthetic`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyntheticSource {
    pub id: String,
    #[serde(default)]
    pub description: String,
    /// How many objects discovery reports.
    pub objects: u64,
    /// Time each object takes to "scan".
    #[serde(default)]
    pub work_ms: u64,
    /// Every n-th object (1-based) fails permanently; 0 disables.
    #[serde(default)]
    pub fail_permanently_every: u64,
    /// Each object's first n attempts fail with a retryable error; 0 disables.
    #[serde(default)]
    pub fail_retryable_attempts: u32,
}

fn include_everything() -> Vec<String> {
    vec!["**/*".to_owned()]
}

fn yes() -> bool {
    true
}

fn default_max_file_size_mb() -> u64 {
    256
}

impl DataSourceConfig {
    pub fn id(&self) -> &str {
        match self {
            DataSourceConfig::Filesystem(s) => &s.id,
            DataSourceConfig::Postgres(s) => &s.id,
            DataSourceConfig::Synthetic(s) => &s.id,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            DataSourceConfig::Filesystem(_) => "filesystem",
            DataSourceConfig::Postgres(_) => "postgres",
            DataSourceConfig::Synthetic(_) => "synthetic",
        }
    }

    pub fn description(&self) -> &str {
        match self {
            DataSourceConfig::Filesystem(s) => &s.description,
            DataSourceConfig::Postgres(s) => &s.description,
            DataSourceConfig::Synthetic(s) => &s.description,
        }
    }
}
