//! Range and consistency checks that serde's types cannot express. Each failure names
//! the key, the value and what is allowed.

use std::collections::HashSet;
use std::net::SocketAddr;

use super::{ConfigError, CustomClassifierConfig, DataSourceConfig, SystemConfig};
use meridian_scan::classify;
use meridian_service::config::check_range as range;
use meridian_wire::{SITE_NAME_RULE, is_site_name};

pub(super) fn validate(cfg: &SystemConfig) -> Result<(), ConfigError> {
    let o = &cfg.orchestrator;
    range(
        "orchestrator.long_poll_timeout_seconds",
        o.long_poll_timeout_seconds,
        1,
        300,
    )?;
    range(
        "orchestrator.reaper_interval_seconds",
        o.reaper_interval_seconds,
        1,
        86_400,
    )?;
    range(
        "orchestrator.task_cache_size",
        o.task_cache_size.into(),
        1,
        100_000,
    )?;
    range(
        "orchestrator.stalled_task_seconds",
        o.stalled_task_seconds,
        1,
        604_800,
    )?;
    range(
        "orchestrator.config_reload_interval_seconds",
        o.config_reload_interval_seconds,
        1,
        3600,
    )?;
    range(
        "orchestrator.shutdown_grace_seconds",
        o.shutdown_grace_seconds,
        0,
        3600,
    )?;
    let w = &cfg.worker;
    range(
        "worker.in_process_thread_count",
        w.in_process_thread_count.into(),
        1,
        1024,
    )?;
    range(
        "worker.task_timeout_seconds",
        w.task_timeout_seconds,
        1,
        86_400,
    )?;
    range(
        "worker.heartbeat_interval_seconds",
        w.heartbeat_interval_seconds,
        1,
        86_400,
    )?;
    range("worker.max_retries", w.max_retries.into(), 1, 100)?;
    range(
        "worker.process_memory_limit_mb",
        w.process_memory_limit_mb,
        64,
        1 << 20,
    )?;
    range(
        "worker.global_cpu_threshold_percent",
        w.global_cpu_threshold_percent.into(),
        1,
        100,
    )?;
    range(
        "worker.retry_backoff_base_milliseconds",
        w.retry_backoff_base_milliseconds,
        1,
        3_600_000,
    )?;
    range(
        "worker.retry_backoff_max_seconds",
        w.retry_backoff_max_seconds,
        1,
        86_400,
    )?;
    if w.heartbeat_interval_seconds >= w.task_timeout_seconds {
        return Err(ConfigError::new(
            "worker.heartbeat_interval_seconds",
            format!(
                "value {} must be below worker.task_timeout_seconds ({}), or every lease expires between heartbeats",
                w.heartbeat_interval_seconds, w.task_timeout_seconds
            ),
        ));
    }
    let threshold = cfg.job.failure_threshold_percent;
    if !(0.0..=100.0).contains(&threshold) {
        return Err(ConfigError::new(
            "job.failure_threshold_percent",
            format!("value {threshold} is out of range; allowed 0..=100"),
        ));
    }
    range(
        "connector.discovery_batch_write_size",
        cfg.connector.discovery_batch_write_size.into(),
        1,
        100_000,
    )?;
    range(
        "connector.objects_per_task",
        cfg.connector.objects_per_task.into(),
        1,
        1000,
    )?;
    range(
        "connector.task_bytes_mb",
        cfg.connector.task_bytes_mb,
        1,
        65_536,
    )?;
    range("api.max_body_bytes", cfg.api.max_body_bytes, 1024, 1 << 30)?;
    range(
        "database.max_connections",
        cfg.database.max_connections.into(),
        1,
        256,
    )?;
    if cfg.api.listen.parse::<SocketAddr>().is_err() {
        return Err(ConfigError::new(
            "api.listen",
            format!(
                "value `{}` is not an address; allowed: IP:PORT, e.g. 127.0.0.1:8080",
                cfg.api.listen
            ),
        ));
    }
    validate_listeners(cfg)?;
    validate_tls(cfg)?;
    if !is_site_name(&cfg.site.name) {
        return Err(ConfigError::new(
            "site.name",
            format!(
                "value `{}` is invalid; allowed: {SITE_NAME_RULE}",
                cfg.site.name
            ),
        ));
    }
    if !is_name(&cfg.node.id, 64, |c| {
        c.is_ascii_alphanumeric() || "-_.".contains(c)
    }) {
        return Err(ConfigError::new(
            "node.id",
            format!(
                "value `{}` is invalid; allowed: [A-Za-z0-9._-]{{1,64}}",
                cfg.node.id
            ),
        ));
    }
    crate::object_keys::secret(cfg)?;
    validate_custom_classifiers(&cfg.classifiers.custom)?;
    validate_data_sources(&cfg.data_sources)
}

fn is_name(s: &str, max: usize, ok: impl Fn(char) -> bool) -> bool {
    !s.is_empty() && s.len() <= max && s.chars().all(ok)
}

fn validate_custom_classifiers(custom: &[CustomClassifierConfig]) -> Result<(), ConfigError> {
    let mut seen = HashSet::new();
    for (i, c) in custom.iter().enumerate() {
        let key = format!("classifiers.custom[{i}]");
        let lower = |ch: char| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '_';
        if !is_name(&c.name, 64, lower) || !c.name.starts_with(|ch: char| ch.is_ascii_lowercase()) {
            return Err(ConfigError::new(
                format!("{key}.name"),
                format!(
                    "value `{}` is invalid; allowed: [a-z][a-z0-9_]{{0,63}}",
                    c.name
                ),
            ));
        }
        if classify::NAMES.contains(&c.name.as_str()) || !seen.insert(c.name.as_str()) {
            return Err(ConfigError::new(
                format!("{key}.name"),
                format!(
                    "value `{}` is already the name of another classifier",
                    c.name
                ),
            ));
        }
        if let Err(e) = classify::custom::compile_regex(&c.regex) {
            return Err(ConfigError::new(
                format!("{key}.regex"),
                format!("value `{}` is not a valid regex: {e}", c.regex),
            ));
        }
        for (field, v) in [
            ("confidence", c.confidence),
            ("context_confidence", c.context_confidence),
        ] {
            if !(v > 0.0 && v <= 1.0) {
                return Err(ConfigError::new(
                    format!("{key}.{field}"),
                    format!("value {v} is out of range; allowed (0, 1]"),
                ));
            }
        }
    }
    Ok(())
}

fn validate_data_sources(sources: &[DataSourceConfig]) -> Result<(), ConfigError> {
    let mut seen = HashSet::new();
    for (i, ds) in sources.iter().enumerate() {
        let key = format!("data_sources[{i}]");
        if !is_name(ds.id(), 64, |c| {
            c.is_ascii_alphanumeric() || "-_".contains(c)
        }) {
            return Err(ConfigError::new(
                format!("{key}.id"),
                format!(
                    "value `{}` is invalid; allowed: [A-Za-z0-9_-]{{1,64}}",
                    ds.id()
                ),
            ));
        }
        if !seen.insert(ds.id().to_owned()) {
            return Err(ConfigError::new(
                format!("{key}.id"),
                format!("value `{}` is used twice", ds.id()),
            ));
        }
        if let DataSourceConfig::Postgres(pg) = ds {
            if let Err(e) = pg.connection_url() {
                let field = if pg.url_env.is_some() {
                    "url_env"
                } else {
                    "url"
                };
                return Err(ConfigError::new(format!("{key}.{field}"), e));
            }
            range(&format!("{key}.sample_rows"), pg.sample_rows, 1, 10_000_000)?;
            range(
                &format!("{key}.sample_percent"),
                pg.sample_percent.into(),
                1,
                100,
            )?;
        }
        if let DataSourceConfig::Filesystem(fs) = ds {
            if !fs.root.is_dir() {
                return Err(ConfigError::new(
                    format!("{key}.root"),
                    format!("value `{}` is not a directory", fs.root.display()),
                ));
            }
            for (field, globs) in [("include", &fs.include), ("exclude", &fs.exclude)] {
                for g in globs {
                    if let Err(e) = globset::Glob::new(g) {
                        return Err(ConfigError::new(
                            format!("{key}.{field}"),
                            format!("value `{g}` is not a glob: {e}"),
                        ));
                    }
                }
            }
        }
    }
    Ok(())
}

/// The optional listeners and the connection bounds every listener applies.
fn validate_listeners(cfg: &SystemConfig) -> Result<(), ConfigError> {
    let a = &cfg.api;
    range(
        "api.header_read_timeout_seconds",
        a.header_read_timeout_seconds,
        1,
        300,
    )?;
    range(
        "api.body_read_timeout_seconds",
        a.body_read_timeout_seconds,
        1,
        3600,
    )?;
    range("api.idle_timeout_seconds", a.idle_timeout_seconds, 1, 3600)?;
    range("api.max_connections", a.max_connections.into(), 1, 65_536)?;
    for (key, value) in [
        ("api.worker_listen", &a.worker_listen),
        ("api.ops_listen", &a.ops_listen),
    ] {
        let Some(value) = value else { continue };
        let addr = address(key, value)?;
        if key == "api.worker_listen" && a.tls.is_none() && !addr.ip().is_loopback() {
            return Err(ConfigError::new(
                key,
                format!(
                    "`{value}` is not a loopback address; the worker API carries credentials, so \
                     plain HTTP is allowed only on loopback: set api.tls (its certificate serves \
                     the worker API too)"
                ),
            ));
        }
    }
    Ok(())
}

/// `value` as a socket address, or an error naming `key`.
pub(crate) fn address(key: &str, value: &str) -> Result<SocketAddr, ConfigError> {
    value.parse::<SocketAddr>().map_err(|_| {
        ConfigError::new(
            key,
            format!("value `{value}` is not an address; allowed: IP:PORT, e.g. 0.0.0.0:9090"),
        )
    })
}

/// HTTPS rules: a federated site or one listening beyond loopback must have its TLS
/// files configured (whether they load is [`api_tls_files`], per mode).
fn validate_tls(cfg: &SystemConfig) -> Result<(), ConfigError> {
    let loopback = cfg
        .api
        .listen
        .parse::<SocketAddr>()
        .is_ok_and(|a| a.ip().is_loopback());
    let Some(tls) = &cfg.api.tls else {
        if cfg.site.federated {
            return Err(ConfigError::new(
                "api.tls",
                "site.federated is true, so the site API must serve mutual TLS; set api.tls.ca_file, \
                 api.tls.cert_file and api.tls.key_file (meridian-master certs init makes dev files)",
            ));
        }
        if !loopback {
            return Err(ConfigError::new(
                "api.tls",
                format!(
                    "api.listen `{}` is not a loopback address; plain HTTP is allowed only on loopback, \
                     so set api.tls.ca_file, api.tls.cert_file and api.tls.key_file",
                    cfg.api.listen
                ),
            ));
        }
        return Ok(());
    };
    if tls.allowed_clients.is_empty() {
        return Err(ConfigError::new(
            "api.tls.allowed_clients",
            "is empty, so no client could call the site; allowed: one or more identities, e.g. [master]",
        ));
    }
    range(
        "api.tls.reload_interval_seconds",
        tls.reload_interval_seconds,
        1,
        3600,
    )?;
    Ok(())
}

/// The site API's certificate, key and CA load now rather than at the first
/// connection. Only the modes that serve the site API need them: a remote worker
/// (`--mode worker`) never does, and its pods must not hold the site's private key.
pub(super) fn api_tls_files(cfg: &SystemConfig) -> Result<(), ConfigError> {
    let Some(tls) = &cfg.api.tls else {
        return Ok(());
    };
    let files = tls.files();
    let key_of = |e: &meridian_service::tls::TlsError| {
        if e.file == tls.ca_file {
            "api.tls.ca_file"
        } else if e.file == tls.cert_file {
            "api.tls.cert_file"
        } else {
            "api.tls.key_file"
        }
    };
    meridian_service::tls::server_config(&files, &tls.allowed_clients)
        .map(|_| ())
        .map_err(|e| ConfigError::new(key_of(&e), e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::super::{ConfigLayers, finalize};
    use crate::RunMode;

    #[test]
    fn out_of_range_numbers_are_refused_with_the_range() {
        for (yaml, key) in [
            ("worker:\n  max_retries: 0\n", "worker.max_retries"),
            (
                "worker:\n  global_cpu_threshold_percent: 101\n",
                "worker.global_cpu_threshold_percent",
            ),
            (
                "orchestrator:\n  task_cache_size: 0\n",
                "orchestrator.task_cache_size",
            ),
            (
                "job:\n  failure_threshold_percent: 150\n",
                "job.failure_threshold_percent",
            ),
        ] {
            let err =
                finalize(&ConfigLayers::new().with_yaml(yaml), &[], RunMode::Single).unwrap_err();
            assert_eq!(err.key, key);
            assert!(err.message.contains("allowed"), "{err}");
        }
    }

    #[test]
    fn heartbeat_must_be_shorter_than_the_lease() {
        let yaml = "worker:\n  heartbeat_interval_seconds: 600\n  task_timeout_seconds: 600\n";
        let err = finalize(&ConfigLayers::new().with_yaml(yaml), &[], RunMode::Single).unwrap_err();
        assert_eq!(err.key, "worker.heartbeat_interval_seconds");
    }

    #[test]
    fn a_bad_custom_regex_is_refused_naming_the_key() {
        let yaml = "classifiers:\n  custom:\n    - name: ok\n      regex: 'x+'\n    - name: broken\n      regex: 'EMP-('\n";
        let err = finalize(&ConfigLayers::new().with_yaml(yaml), &[], RunMode::Single).unwrap_err();
        assert_eq!(err.key, "classifiers.custom[1].regex");
        let yaml = "classifiers:\n  custom:\n    - name: email\n      regex: 'x'\n";
        let err = finalize(&ConfigLayers::new().with_yaml(yaml), &[], RunMode::Single).unwrap_err();
        assert_eq!(err.key, "classifiers.custom[0].name");
    }

    #[test]
    fn only_the_modes_serving_the_site_api_load_its_tls_files() {
        let yaml = "site:\n  federated: true\napi:\n  listen: 0.0.0.0:8443\n  tls:\n    \
                    ca_file: /no/ca.crt\n    cert_file: /no/tls.crt\n    key_file: /no/tls.key\n";
        let layers = ConfigLayers::new().with_yaml(yaml);
        for mode in [RunMode::Single, RunMode::Orchestrator, RunMode::Migrate] {
            let err = finalize(&layers, &[], mode).unwrap_err();
            assert!(err.key.starts_with("api.tls."), "{mode:?}: {err}");
        }
        finalize(&layers, &[], RunMode::Worker).expect("a worker holds no site key");
        // What a worker is told about the site API still has to make sense.
        let no_tls = "site:\n  federated: true\n";
        let err =
            finalize(&ConfigLayers::new().with_yaml(no_tls), &[], RunMode::Worker).unwrap_err();
        assert_eq!(err.key, "api.tls");
    }

    #[test]
    fn a_missing_data_source_root_is_refused() {
        let yaml =
            "data_sources:\n  - id: a\n    kind: filesystem\n    root: /definitely/not/here\n";
        let err = finalize(&ConfigLayers::new().with_yaml(yaml), &[], RunMode::Single).unwrap_err();
        assert_eq!(err.key, "data_sources[0].root");
    }
}
