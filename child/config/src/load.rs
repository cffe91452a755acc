//! The configuration layers, later wins: built-in defaults → YAML file → environment
//! (`MERIDIAN_SECTION__KEY`) → command-line flags → `system_parameters` rows (global,
//! then this node's) → `finalize()`.

use std::path::Path;

use figment::Figment;
use figment::providers::Serialized;
use meridian_service::config::{Layers, parse_parameter_value};
use serde::Serialize;

use super::validate::validate;
use super::{ConfigError, DeploymentModel, SystemConfig, SystemParameter};
use crate::RunMode;

/// Keys that take effect while running when their `system_parameters` row changes.
/// Everything else is read once at start-up.
pub const LIVE_KEYS: &[&str] = &[
    "orchestrator.long_poll_timeout_seconds",
    "orchestrator.reaper_interval_seconds",
    "orchestrator.task_cache_size",
    "orchestrator.fair_sharing_policy",
    "orchestrator.stalled_task_seconds",
    "orchestrator.max_tasks_per_poll",
    "worker.task_timeout_seconds",
    "worker.heartbeat_interval_seconds",
    "worker.max_retries",
    "worker.global_cpu_threshold_percent",
    "worker.retry_backoff_base_milliseconds",
    "worker.retry_backoff_max_seconds",
    "job.failure_threshold_percent",
    "connector.discovery_batch_write_size",
    "connector.objects_per_task",
    "connector.task_bytes_mb",
    "connector.easyocr_support_enabled",
    "connector.get_table_or_images_enabled",
];

/// Sections that only the file, the environment and flags may set: a database row
/// cannot move the database, rename the node or change what it listens on.
const NOT_FROM_DATABASE: &[&str] = &[
    "node.",
    "database.",
    "api.",
    "site.",
    "log.",
    "classifiers",
    "data_sources",
];

/// The layers above the built-in defaults, before the database is known.
#[derive(Debug, Clone, Default)]
pub struct ConfigLayers {
    layers: Layers,
}

/// The master's variables share this prefix's start; the site never reads them.
const MASTER_PREFIX: &str = "MERIDIAN_MASTER_";

impl ConfigLayers {
    pub fn new() -> Self {
        ConfigLayers::default()
    }

    /// Adds a YAML file; a path that does not exist is an error, not a silent default.
    pub fn with_file(self, path: &Path) -> Result<Self, ConfigError> {
        Ok(ConfigLayers {
            layers: self.layers.file(path)?,
        })
    }

    /// Adds YAML text (tests and embedded examples).
    pub fn with_yaml(self, yaml: &str) -> Self {
        ConfigLayers {
            layers: self.layers.yaml(yaml),
        }
    }

    /// Adds `MERIDIAN_SECTION__KEY=value` variables, e.g. `MERIDIAN_WORKER__MAX_RETRIES=5`.
    /// Only variables with the `__` separator are parameters: `MERIDIAN_CONFIG`,
    /// `MERIDIAN_FAILPOINTS`, `MERIDIAN_TESSERACT`, the worker key and any variable a
    /// data source's `url_env` names are not read here, nor the master's
    /// `MERIDIAN_MASTER_*` variables.
    pub fn with_env(self) -> Self {
        ConfigLayers {
            layers: self.layers.env("MERIDIAN_", &[MASTER_PREFIX]),
        }
    }

    /// Sets one dotted key (command-line flags).
    pub fn with_value(self, key: &str, value: impl Serialize) -> Self {
        ConfigLayers {
            layers: self.layers.value(key, value),
        }
    }

    /// Defaults plus these layers, validated; used to find the database before its
    /// parameters can be read.
    pub fn preliminary(&self, mode: RunMode) -> Result<SystemConfig, ConfigError> {
        finalize(self, &[], mode)
    }
}

/// Merges defaults, the layers and the database rows into one validated
/// `SystemConfig`. `params` must hold the `global` rows and this node's rows; rows
/// of other nodes are ignored.
pub fn finalize(
    layers: &ConfigLayers,
    params: &[SystemParameter],
    mode: RunMode,
) -> Result<SystemConfig, ConfigError> {
    let mut figment = layers.layers.figment().clone();
    let node_id: String = Figment::from(Serialized::defaults(SystemConfig::default()))
        .merge(figment.clone())
        .extract_inner("node.id")
        .map_err(ConfigError::from_figment)?;
    for scope in ["global", node_id.as_str()] {
        for p in params.iter().filter(|p| p.scope == scope) {
            if NOT_FROM_DATABASE
                .iter()
                .any(|prefix| p.key.starts_with(prefix))
            {
                return Err(ConfigError::new(
                    &p.key,
                    format!(
                        "cannot be set in system_parameters (scope `{}`); set it in the file or environment",
                        p.scope
                    ),
                ));
            }
            figment = figment.merge(Serialized::default(&p.key, parse_parameter_value(&p.value)));
        }
    }
    let explicit_model: Option<DeploymentModel> =
        figment.extract_inner("orchestrator.deployment_model").ok();
    let mut cfg: SystemConfig = Figment::from(Serialized::defaults(SystemConfig::default()))
        .merge(figment)
        .extract()
        .map_err(ConfigError::from_figment)?;
    match (mode, explicit_model) {
        (RunMode::Single, Some(DeploymentModel::Eks)) => {
            return Err(ConfigError::new(
                "orchestrator.deployment_model",
                "value EKS contradicts --mode single; allowed with --mode single: SINGLE_PROCESS (or leave it unset)",
            ));
        }
        (RunMode::Single, _) => cfg.orchestrator.deployment_model = DeploymentModel::SingleProcess,
        (_, Some(DeploymentModel::SingleProcess)) => {
            return Err(ConfigError::new(
                "orchestrator.deployment_model",
                "value SINGLE_PROCESS contradicts --mode orchestrator/worker; allowed: EKS",
            ));
        }
        _ => {}
    }
    validate(&cfg)?;
    super::distributed::validate(&cfg)?;
    if mode != RunMode::Worker {
        super::validate::api_tls_files(&cfg)?;
    }
    Ok(cfg)
}

/// The configuration to run with after a live reload: `fresh`'s live keys on top of
/// `current`. Other keys keep their start-up values; their names are returned so the
/// caller can say a restart is needed.
pub fn apply_live(
    current: &SystemConfig,
    fresh: &SystemConfig,
) -> (SystemConfig, Vec<&'static str>) {
    let mut next = current.clone();
    next.orchestrator.long_poll_timeout_seconds = fresh.orchestrator.long_poll_timeout_seconds;
    next.orchestrator.reaper_interval_seconds = fresh.orchestrator.reaper_interval_seconds;
    next.orchestrator.task_cache_size = fresh.orchestrator.task_cache_size;
    next.orchestrator.fair_sharing_policy = fresh.orchestrator.fair_sharing_policy;
    next.orchestrator.stalled_task_seconds = fresh.orchestrator.stalled_task_seconds;
    next.orchestrator.max_tasks_per_poll = fresh.orchestrator.max_tasks_per_poll;
    next.worker.task_timeout_seconds = fresh.worker.task_timeout_seconds;
    next.worker.heartbeat_interval_seconds = fresh.worker.heartbeat_interval_seconds;
    next.worker.max_retries = fresh.worker.max_retries;
    next.worker.global_cpu_threshold_percent = fresh.worker.global_cpu_threshold_percent;
    next.worker.retry_backoff_base_milliseconds = fresh.worker.retry_backoff_base_milliseconds;
    next.worker.retry_backoff_max_seconds = fresh.worker.retry_backoff_max_seconds;
    next.job = fresh.job.clone();
    next.connector = fresh.connector.clone();
    let mut restart_needed = Vec::new();
    if fresh.orchestrator.config_reload_interval_seconds
        != current.orchestrator.config_reload_interval_seconds
    {
        restart_needed.push("orchestrator.config_reload_interval_seconds");
    }
    if fresh.orchestrator.shutdown_grace_seconds != current.orchestrator.shutdown_grace_seconds {
        restart_needed.push("orchestrator.shutdown_grace_seconds");
    }
    if fresh.worker.in_process_thread_count != current.worker.in_process_thread_count {
        restart_needed.push("worker.in_process_thread_count");
    }
    if fresh.worker.process_memory_limit_mb != current.worker.process_memory_limit_mb {
        restart_needed.push("worker.process_memory_limit_mb");
    }
    (next, restart_needed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(scope: &str, key: &str, value: &str) -> SystemParameter {
        SystemParameter {
            scope: scope.into(),
            key: key.into(),
            value: value.into(),
        }
    }

    #[test]
    fn defaults_match_the_spec_table() {
        let cfg = finalize(&ConfigLayers::new(), &[], RunMode::Orchestrator).unwrap();
        assert_eq!(cfg.orchestrator.deployment_model, DeploymentModel::Eks);
        assert_eq!(cfg.orchestrator.long_poll_timeout_seconds, 30);
        assert_eq!(cfg.orchestrator.reaper_interval_seconds, 120);
        assert_eq!(cfg.orchestrator.task_cache_size, 100);
        assert_eq!(cfg.worker.in_process_thread_count, 8);
        assert_eq!(cfg.worker.task_timeout_seconds, 600);
        assert_eq!(cfg.worker.heartbeat_interval_seconds, 60);
        assert_eq!(cfg.worker.max_retries, 3);
        assert_eq!(cfg.worker.process_memory_limit_mb, 4096);
        assert_eq!(cfg.worker.global_cpu_threshold_percent, 90);
        assert_eq!(cfg.job.failure_threshold_percent, 10.0);
        assert_eq!(cfg.connector.discovery_batch_write_size, 1000);
        assert!(cfg.connector.easyocr_support_enabled);
        assert!(cfg.connector.get_table_or_images_enabled);
    }

    #[test]
    fn the_shipped_default_file_equals_the_built_in_defaults() {
        let layers =
            ConfigLayers::new().with_yaml(include_str!("../../../config/system_default.yaml"));
        let from_file = finalize(&layers, &[], RunMode::Orchestrator).unwrap();
        assert_eq!(from_file, SystemConfig::default());
    }

    #[test]
    fn later_layers_win_and_node_rows_beat_global_rows() {
        let layers = ConfigLayers::new()
            .with_yaml("worker:\n  max_retries: 5\n  task_timeout_seconds: 700\nnode:\n  id: n7\n");
        let params = [
            row("n7", "worker.max_retries", "9"),
            row("global", "worker.max_retries", "7"),
            row("other-node", "worker.task_timeout_seconds", "5"),
            row("global", "orchestrator.fair_sharing_policy", "WEIGHTED"),
        ];
        let cfg = finalize(&layers, &params, RunMode::Single).unwrap();
        assert_eq!(cfg.worker.max_retries, 9);
        assert_eq!(cfg.worker.task_timeout_seconds, 700);
        assert_eq!(
            cfg.orchestrator.fair_sharing_policy,
            super::super::FairSharingPolicy::Weighted
        );
        assert_eq!(
            cfg.orchestrator.deployment_model,
            DeploymentModel::SingleProcess
        );
    }

    #[test]
    fn wrong_type_names_the_key_and_value() {
        let layers = ConfigLayers::new().with_yaml("worker:\n  max_retries: lots\n");
        let err = finalize(&layers, &[], RunMode::Single).unwrap_err();
        assert_eq!(err.key, "worker.max_retries");
        assert!(err.to_string().contains("lots"), "{err}");
    }

    #[test]
    fn unknown_policy_lists_the_allowed_ones() {
        let layers =
            ConfigLayers::new().with_yaml("orchestrator:\n  fair_sharing_policy: FASTEST\n");
        let err = finalize(&layers, &[], RunMode::Single)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("orchestrator.fair_sharing_policy") && err.contains("FASTEST"),
            "{err}"
        );
        assert!(err.contains("ROUND") && err.contains("WEIGHTED"), "{err}");
    }

    #[test]
    fn explicit_eks_with_single_mode_is_an_error() {
        let layers = ConfigLayers::new().with_yaml("orchestrator:\n  deployment_model: EKS\n");
        let err = finalize(&layers, &[], RunMode::Single).unwrap_err();
        assert_eq!(err.key, "orchestrator.deployment_model");
    }

    #[test]
    fn unknown_keys_are_refused() {
        let layers = ConfigLayers::new().with_yaml("worker:\n  max_retires: 3\n");
        let err = finalize(&layers, &[], RunMode::Single)
            .unwrap_err()
            .to_string();
        assert!(err.contains("max_retires"), "{err}");
    }

    #[test]
    fn database_rows_cannot_move_the_database() {
        let err = finalize(
            &ConfigLayers::new(),
            &[row("global", "database.url", "x")],
            RunMode::Single,
        )
        .unwrap_err();
        assert_eq!(err.key, "database.url");
    }

    #[test]
    fn live_reload_keeps_start_up_only_keys() {
        let current = finalize(&ConfigLayers::new(), &[], RunMode::Single).unwrap();
        let mut fresh = current.clone();
        fresh.worker.max_retries = 9;
        fresh.worker.in_process_thread_count = 2;
        let (next, restart) = apply_live(&current, &fresh);
        assert_eq!(next.worker.max_retries, 9);
        assert_eq!(next.worker.in_process_thread_count, 8);
        assert_eq!(restart, ["worker.in_process_thread_count"]);
    }
}
