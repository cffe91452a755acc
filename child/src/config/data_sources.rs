//! Data sources defined in the site's configuration (SPEC §2). Connector settings and
//! credentials stay in the site; only id, kind and description reach the catalog.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// One data source; `kind` selects the connector.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum DataSourceConfig {
    /// Files under a root directory.
    Filesystem(FilesystemSource),
    /// Generated objects that need no storage: for load tests, benchmarks and chaos
    /// drills (it can fail on purpose).
    Synthetic(SyntheticSource),
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
            DataSourceConfig::Synthetic(s) => &s.id,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            DataSourceConfig::Filesystem(_) => "filesystem",
            DataSourceConfig::Synthetic(_) => "synthetic",
        }
    }

    pub fn description(&self) -> &str {
        match self {
            DataSourceConfig::Filesystem(s) => &s.description,
            DataSourceConfig::Synthetic(s) => &s.description,
        }
    }
}
