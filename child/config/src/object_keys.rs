//! `site.object_keys`: whether object keys (file paths, table names) leave the site
//! in clear in findings, or as keyed hashes (HMAC-SHA-256 under a site secret) for
//! sites whose paths are themselves sensitive. A hash is stable, so findings of one
//! object still group together, but it cannot be reversed or guessed without the
//! secret, which never leaves the site.

use serde::{Deserialize, Serialize};

use crate::{ConfigError, SystemConfig};

/// How object keys leave the site.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ObjectKeys {
    /// As they are (the default): what an operator needs to find the object.
    #[default]
    Plain,
    /// `hmac-sha256:` and 32 hex digits of HMAC-SHA-256(secret, "data_source/key").
    Hashed,
}

/// Shortest secret accepted.
pub const MIN_SECRET_BYTES: usize = 32;

pub(crate) fn default_secret_env() -> String {
    "MERIDIAN_OBJECT_KEY_SECRET".to_owned()
}

/// The secret for `hashed` keys, from the environment; `None` for `plain`. Errors
/// name the variable, never its value.
pub fn secret(cfg: &SystemConfig) -> Result<Option<Vec<u8>>, ConfigError> {
    if cfg.site.object_keys == ObjectKeys::Plain {
        return Ok(None);
    }
    let name = &cfg.site.object_key_secret_env;
    match std::env::var(name) {
        Ok(v) if v.len() >= MIN_SECRET_BYTES => Ok(Some(v.into_bytes())),
        Ok(_) => Err(ConfigError::new(
            "site.object_key_secret_env",
            format!(
                "the environment variable {name} holds a secret shorter than {MIN_SECRET_BYTES} bytes"
            ),
        )),
        Err(_) => Err(ConfigError::new(
            "site.object_key_secret_env",
            format!(
                "site.object_keys is hashed, so the environment variable {name} must hold a secret \
                 of at least {MIN_SECRET_BYTES} bytes; it is not set"
            ),
        )),
    }
}
