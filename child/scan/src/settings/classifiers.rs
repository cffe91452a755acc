//! `classifiers.*`: custom classifiers defined in the site's configuration, next to
//! the built-in ones. Checked at start-up (a bad regex stops the site with the key
//! named); compiled by `scan::classify::custom`.

use serde::{Deserialize, Serialize};

/// `classifiers`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassifiersConfig {
    #[serde(default)]
    pub custom: Vec<CustomClassifierConfig>,
}

/// A check a custom classifier's matches must pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Validator {
    /// The match's digits pass the Luhn check (card-like numbers).
    Luhn,
    /// The match's letters and digits pass ISO 7064 mod-97-10 (IBAN-like).
    Mod97,
}

/// `classifiers.custom[i]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomClassifierConfig {
    /// `[a-z][a-z0-9_]{0,63}`, not a built-in classifier's name.
    pub name: String,
    /// Rust `regex` syntax. It should not match across lines: text is scanned in
    /// windows of many lines and a finding is located at its first line.
    pub regex: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validator: Option<Validator>,
    /// Words (case-insensitive) that, on the same line as a match, raise its
    /// confidence to `context_confidence`.
    #[serde(default)]
    pub context_words: Vec<String>,
    /// Matched values to ignore (test numbers, documented examples).
    #[serde(default)]
    pub allow_list: Vec<String>,
    /// Confidence of a match without context, in (0, 1].
    #[serde(default = "default_confidence")]
    pub confidence: f64,
    /// Confidence of a match with a context word on its line, in (0, 1].
    #[serde(default = "default_context_confidence")]
    pub context_confidence: f64,
}

fn default_confidence() -> f64 {
    0.6
}

fn default_context_confidence() -> f64 {
    0.9
}
