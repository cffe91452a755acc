//! Layered configuration shared by the site and the master: one way to stack a YAML
//! file, environment variables and flags over built-in defaults ([`Layers`]), and
//! one-line error messages that name the key, the bad value and what is allowed.

use std::fmt;
use std::path::Path;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Yaml};
use serde::Serialize;

/// The layers above a service's built-in defaults, later wins: a YAML file, the
/// environment, then single keys (flags).
///
/// The environment layer takes only `<PREFIX><SECTION>__<KEY>` variables, those with
/// the double-underscore section separator, so variables that are not parameters
/// (`MERIDIAN_CONFIG`, `MERIDIAN_FAILPOINTS`, `MERIDIAN_TESSERACT`, a data source's
/// `url_env`, the worker key) never reach a service's unknown-key check. Another
/// service's prefix that starts with this one's (`MERIDIAN_MASTER_` inside
/// `MERIDIAN_`) is passed as `foreign` and skipped as well.
#[derive(Debug, Clone, Default)]
pub struct Layers {
    figment: Figment,
}

impl Layers {
    pub fn new() -> Self {
        Layers::default()
    }

    /// Adds a YAML file, read at exactly this path (never searched for in parent
    /// directories); a path that is not a file is an error, not a silent default.
    pub fn file(self, path: &Path) -> Result<Self, ConfigError> {
        if !path.is_file() {
            return Err(ConfigError::new(
                "",
                format!(
                    "configuration file {} does not exist or is not a file",
                    path.display()
                ),
            ));
        }
        Ok(Layers {
            figment: self.figment.merge(Yaml::file_exact(path)),
        })
    }

    /// Adds YAML text (tests and embedded examples).
    pub fn yaml(self, yaml: &str) -> Self {
        Layers {
            figment: self.figment.merge(Yaml::string(yaml)),
        }
    }

    /// Adds the `<prefix><SECTION>__<KEY>` variables of the process environment,
    /// except those starting with one of the `foreign` prefixes.
    pub fn env(self, prefix: &str, foreign: &[&str]) -> Self {
        Layers {
            figment: self.figment.merge(env_provider(prefix, foreign)),
        }
    }

    /// Sets one dotted key.
    pub fn value(self, key: &str, value: impl Serialize) -> Self {
        Layers {
            figment: self.figment.merge(Serialized::default(key, value)),
        }
    }

    /// The layers, for a service to merge over its defaults and extract.
    pub fn figment(&self) -> &Figment {
        &self.figment
    }

    /// `defaults` under these layers, extracted; a bad or unknown key is one line.
    pub fn extract<T>(&self, defaults: &T) -> Result<T, ConfigError>
    where
        T: Serialize + serde::de::DeserializeOwned,
    {
        Figment::from(Serialized::defaults(defaults))
            .merge(self.figment.clone())
            .extract()
            .map_err(ConfigError::from_figment)
    }
}

fn env_provider(prefix: &str, foreign: &[&str]) -> Env {
    // Prefixes compare without case, as figment's own prefix does.
    let foreign: Vec<String> = foreign
        .iter()
        .filter_map(|f| {
            let f = f.to_ascii_lowercase();
            let p = prefix.to_ascii_lowercase();
            f.strip_prefix(&p).map(str::to_owned)
        })
        .collect();
    Env::prefixed(prefix)
        .filter(move |key| {
            let key = key.as_str().to_ascii_lowercase();
            key.contains("__") && !foreign.iter().any(|f| key.starts_with(f.as_str()))
        })
        .split("__")
}

/// A configuration problem that stops start-up. Its `Display` is the one line an
/// operator reads: `configuration error: key `worker.max_retries`: ...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// Dotted key, e.g. `worker.max_retries`; empty when the problem is not one key's.
    pub key: String,
    /// What was wrong and what is allowed.
    pub message: String,
}

impl ConfigError {
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError {
            key: key.into(),
            message: message.into(),
        }
    }

    /// A number outside its allowed range.
    pub fn out_of_range(key: &str, value: impl fmt::Display, min: i64, max: i64) -> Self {
        ConfigError::new(
            key,
            format!("value {value} is out of range; allowed {min}..={max}"),
        )
    }

    /// Converts a figment error into one line. Figment paths start with the profile
    /// name (`default`), which says nothing to an operator, so it is dropped.
    pub fn from_figment(err: figment::Error) -> Self {
        let err = err
            .into_iter()
            .next()
            .unwrap_or_else(|| figment::Error::from("unknown error"));
        let key = err
            .path
            .iter()
            .filter(|p| p.as_str() != "default")
            .cloned()
            .collect::<Vec<_>>()
            .join(".");
        let source = err
            .metadata
            .as_ref()
            .map(|m| match &m.source {
                Some(src) => format!(" (from {} {src})", m.name),
                None => format!(" (from {})", m.name),
            })
            .unwrap_or_default();
        ConfigError::new(key, format!("{}{source}", err.kind))
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            write!(f, "configuration error: {}", self.message)
        } else {
            write!(
                f,
                "configuration error: key `{}`: {}",
                self.key, self.message
            )
        }
    }
}

impl std::error::Error for ConfigError {}

/// Checks `value` against `min..=max` for `key`.
pub fn check_range(key: &str, value: u64, min: u64, max: u64) -> Result<(), ConfigError> {
    if (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(ConfigError::out_of_range(
            key, value, min as i64, max as i64,
        ))
    }
}

/// Parses a `system_parameters` value: JSON when it parses (`5`, `true`, `"x"`),
/// otherwise the text itself as a string (`WEIGHTED`).
pub fn parse_parameter_value(raw: &str) -> serde_json::Value {
    serde_json::from_str(raw.trim())
        .unwrap_or_else(|_| serde_json::Value::String(raw.trim().to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, Serialize, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Cfg {
        worker: Worker,
    }

    #[derive(Debug, PartialEq, Serialize, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Worker {
        max_retries: u32,
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment's Jail returns its own error type.
    fn the_environment_layer_takes_only_section_keys_of_its_own_prefix() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("MERIDIAN_WORKER__MAX_RETRIES", "7");
            // Not parameters: no section separator, or the master's prefix.
            jail.set_env("MERIDIAN_TESSERACT", "/usr/bin/tesseract");
            jail.set_env("MERIDIAN_SOURCE_URL", "postgres://x");
            jail.set_env("MERIDIAN_MASTER_MASTER__POLL_INTERVAL_SECONDS", "2");
            jail.set_env("MERIDIAN_MASTER_FAILPOINTS", "poller=panic");
            let defaults = Cfg {
                worker: Worker { max_retries: 3 },
            };
            let cfg = Layers::new()
                .env("MERIDIAN_", &["MERIDIAN_MASTER_"])
                .extract(&defaults)
                .map_err(|e| e.to_string())?;
            assert_eq!(cfg.worker.max_retries, 7);
            jail.set_env("MERIDIAN_WORKER__MAX_RETIRES", "7");
            let err = Layers::new()
                .env("MERIDIAN_", &["MERIDIAN_MASTER_"])
                .extract(&defaults)
                .unwrap_err();
            assert!(err.to_string().contains("max_retires"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn parameter_values_are_json_or_text() {
        assert_eq!(parse_parameter_value("5"), serde_json::json!(5));
        assert_eq!(parse_parameter_value(" true "), serde_json::json!(true));
        assert_eq!(
            parse_parameter_value("WEIGHTED"),
            serde_json::json!("WEIGHTED")
        );
    }

    #[test]
    fn display_names_the_key() {
        let e = ConfigError::out_of_range("worker.max_retries", 0, 1, 100);
        assert_eq!(
            e.to_string(),
            "configuration error: key `worker.max_retries`: value 0 is out of range; allowed 1..=100"
        );
    }
}
