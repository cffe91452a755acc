//! Helpers for layered configuration (figment) shared by the child and the master:
//! one-line error messages that name the key, the bad value and what is allowed.

use std::fmt;

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
