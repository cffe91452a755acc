//! Checks of the distributed deployment model's keys (`--mode orchestrator` and
//! `--mode worker`). Ranges are checked for every mode, so that a file valid for one
//! replica is valid for all; what a mode needs at run time (PostgreSQL, the worker key
//! in the environment, an orchestrator URL) is checked by [`require`] when that mode
//! starts.

use super::{ConfigError, SystemConfig};
use crate::RunMode;
use meridian_service::config::check_range as range;

/// Shortest worker key accepted: HMAC-SHA256 keys shorter than the hash add no strength.
pub const MIN_KEY_BYTES: usize = 32;

/// The default of `worker.auth_key_env`; the environment layer skips it.
pub const DEFAULT_KEY_ENV: &str = "MERIDIAN_WORKER_AUTH_KEY";

pub(super) fn validate(cfg: &SystemConfig) -> Result<(), ConfigError> {
    range(
        "orchestrator.max_tasks_per_poll",
        cfg.orchestrator.max_tasks_per_poll.into(),
        1,
        1000,
    )?;
    let w = &cfg.worker;
    range("worker.slot_count", w.slot_count.into(), 1, 1024)?;
    range("worker.drain_seconds", w.drain_seconds, 0, 3600)?;
    range(
        "worker.credential_ttl_seconds",
        w.credential_ttl_seconds,
        60,
        86_400,
    )?;
    let env_ok = !w.auth_key_env.is_empty()
        && w.auth_key_env
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !env_ok {
        return Err(ConfigError::new(
            "worker.auth_key_env",
            format!(
                "value `{}` is not an environment variable name; allowed: [A-Za-z0-9_]+",
                w.auth_key_env
            ),
        ));
    }
    // Other MERIDIAN_* variables are configuration layers; a key there would be read
    // as an unknown parameter.
    if w.auth_key_env.starts_with("MERIDIAN_") && w.auth_key_env != DEFAULT_KEY_ENV {
        return Err(ConfigError::new(
            "worker.auth_key_env",
            format!(
                "value `{}` starts with MERIDIAN_, which names configuration variables; use {DEFAULT_KEY_ENV} or another prefix",
                w.auth_key_env
            ),
        ));
    }
    let url = &w.orchestrator_url;
    if !(url.starts_with("http://") || url.starts_with("https://")) || url.len() < 10 {
        return Err(ConfigError::new(
            "worker.orchestrator_url",
            format!("value `{url}` is not a URL; allowed: http://HOST:PORT or https://HOST:PORT"),
        ));
    }
    if let Some(ops) = &w.ops_listen {
        crate::validate::address("worker.ops_listen", ops)?;
    }
    if let Some(tls) = &w.tls
        && tls.cert_file.is_some() != tls.key_file.is_some()
    {
        return Err(ConfigError::new(
            "worker.tls.cert_file",
            "worker.tls.cert_file and worker.tls.key_file go together; set both or neither",
        ));
    }
    if url.starts_with("https://") && w.tls.is_none() {
        return Err(ConfigError::new(
            "worker.tls.ca_file",
            format!(
                "worker.orchestrator_url `{url}` is https, so the worker needs the CA the site's \
                 certificate chains to: set worker.tls.ca_file"
            ),
        ));
    }
    Ok(())
}

/// The worker's TLS configuration towards an `https://` orchestrator URL, its files
/// loaded now (at start-up of `--mode worker`), or `None` for plain HTTP.
pub fn worker_tls(cfg: &SystemConfig) -> Result<Option<rustls::ClientConfig>, ConfigError> {
    let w = &cfg.worker;
    let Some(tls) = &w.tls else { return Ok(None) };
    if !w.orchestrator_url.starts_with("https://") {
        return Ok(None);
    }
    let identity = match (&tls.cert_file, &tls.key_file) {
        (Some(c), Some(k)) => Some((c.as_path(), k.as_path())),
        _ => None,
    };
    meridian_service::tls::worker_client_config(&tls.ca_file, identity, &cfg.site.name)
        .map(Some)
        .map_err(|e| {
            let key = if e.file == tls.ca_file {
                "worker.tls.ca_file"
            } else if Some(&e.file) == tls.cert_file.as_ref() {
                "worker.tls.cert_file"
            } else {
                "worker.tls.key_file"
            };
            ConfigError::new(key, e.to_string())
        })
}

/// The worker key from the environment variable named by `worker.auth_key_env`. The
/// error names the variable, never its value.
pub fn worker_key(cfg: &SystemConfig) -> Result<Vec<u8>, ConfigError> {
    let name = &cfg.worker.auth_key_env;
    match std::env::var(name) {
        Ok(v) if v.len() >= MIN_KEY_BYTES => Ok(v.into_bytes()),
        Ok(_) => Err(ConfigError::new(
            "worker.auth_key_env",
            format!(
                "the environment variable {name} holds a key shorter than {MIN_KEY_BYTES} bytes"
            ),
        )),
        Err(_) => Err(ConfigError::new(
            "worker.auth_key_env",
            format!(
                "the distributed mode needs the site's worker key in the environment variable {name} \
                 (at least {MIN_KEY_BYTES} bytes); it is not set"
            ),
        )),
    }
}

/// What `mode` needs before it starts; returns the worker key for the distributed modes.
pub fn require(cfg: &SystemConfig, mode: RunMode) -> Result<Option<Vec<u8>>, ConfigError> {
    match mode {
        RunMode::Single | RunMode::Migrate => Ok(None),
        RunMode::Orchestrator => {
            let url = cfg.database_url();
            if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
                return Err(ConfigError::new(
                    "database.url",
                    "--mode orchestrator needs PostgreSQL (postgres://…): replicas share one database \
                     and claim with FOR UPDATE SKIP LOCKED; SQLite serves only --mode single",
                ));
            }
            worker_key(cfg).map(Some)
        }
        RunMode::Worker => worker_key(cfg).map(Some),
    }
}
