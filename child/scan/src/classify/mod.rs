//! Classifiers: each finds one kind of sensitive value in a window of text and returns
//! the matches' byte ranges, and masks a matched value on request (only the sample a
//! finding keeps is masked). Validation (Luhn, mod-97, SSN area rules,
//! context words) happens here so that findings are few and right. The built-in set
//! is compiled once per process; custom classifiers from the site's configuration are
//! compiled once per distinct configuration (`custom.rs`).
//!
//! Built-in patterns use ASCII word boundaries `(?-u:\b)` and ASCII digits: the
//! values they look for are ASCII, and a Unicode `\b` would stop the regex crate's
//! fast DFA at the first non-ASCII byte of a window and fall back to a slow engine.

mod aws;
mod aws_secret;
pub mod candidates;
mod card;
pub mod custom;
mod email;
mod iban;
mod ip;
mod jwt;
mod pattern;
mod phone;
mod private_key;
mod scanner;
mod shapes;
mod ssn;

use std::sync::{Arc, LazyLock};

pub use card::luhn_valid;
pub use iban::mod97_valid;
pub use scanner::TextScanner;

use crate::settings::CustomClassifierConfig;

/// One match: where it starts and ends in the scanned text and how sure the
/// classifier is. The raw value is never kept: only the one match whose sample an
/// object's finding keeps is masked ([`Classifier::mask`]), when it is recorded, so
/// that the other matches (most of them, on dense data) cost no masking.
#[derive(Debug, Clone, PartialEq)]
pub struct Match {
    pub start: usize,
    /// End of the matched value: `mask` takes `text[start..end]`.
    pub end: usize,
    pub confidence: f64,
}

pub trait Classifier: Send + Sync {
    /// The name in job options, findings and status.
    fn name(&self) -> &str;

    /// Appends the matches in `text` (one or more lines). Patterns never cross a
    /// newline, so a match's line is the line its start is on.
    fn scan(&self, text: &str, out: &mut Vec<Match>);

    /// The masked form of a value `scan` matched (`text[m.start..m.end]`), e.g.
    /// `j***@example.com`.
    fn mask(&self, value: &str) -> String;
}

/// A shared handle to a compiled classifier.
pub type ClassifierRef = Arc<dyn Classifier>;

/// Names of the built-in classifiers, in the order they run.
pub const NAMES: &[&str] = &[
    email::NAME,
    card::NAME,
    ssn::NAME,
    aws::NAME,
    aws_secret::NAME,
    iban::NAME,
    phone::NAME,
    ip::NAME_V4,
    ip::NAME_V6,
    private_key::NAME,
    jwt::NAME,
];

/// Every built-in classifier, compiled once per process: regex compilation costs
/// more than scanning a small file.
static BUILT_IN: LazyLock<Vec<ClassifierRef>> = LazyLock::new(|| {
    vec![
        Arc::new(email::Email::new()),
        Arc::new(card::PaymentCard::new()),
        Arc::new(ssn::UsSsn::new()),
        Arc::new(aws::AwsAccessKeyId::new()),
        Arc::new(aws_secret::AwsSecretAccessKey::new()),
        Arc::new(iban::Iban::new()),
        Arc::new(phone::Phone::new()),
        Arc::new(ip::Ipv4::new()),
        Arc::new(ip::Ipv6::new()),
        Arc::new(private_key::PrivateKey::new()),
        Arc::new(jwt::Jwt::new()),
    ]
});

/// Every classifier name a job may ask for at a site with these custom classifiers.
pub fn known_names(custom: &[CustomClassifierConfig]) -> Vec<String> {
    NAMES
        .iter()
        .map(|n| (*n).to_owned())
        .chain(custom.iter().map(|c| c.name.clone()))
        .collect()
}

/// The classifiers named in `names`, or all (built-in and custom) when `None`.
/// Custom classifiers were validated at start-up, so one that fails to compile here
/// is left out with a warning rather than failing the task.
pub fn select(names: Option<&[String]>, custom: &[CustomClassifierConfig]) -> Vec<ClassifierRef> {
    let customs = match custom::compiled(custom) {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!("custom classifiers not compiled: {e}");
            Arc::new(Vec::new())
        }
    };
    BUILT_IN
        .iter()
        .chain(customs.iter())
        .filter(|c| names.is_none_or(|names| names.iter().any(|n| n == c.name())))
        .cloned()
        .collect()
}

/// The built-in classifiers only (unit tests, benches).
pub fn built_in() -> Vec<ClassifierRef> {
    BUILT_IN.to_vec()
}

/// The line of `text` that holds the byte range `start..end`, for context checks.
pub(crate) fn line_around(text: &str, start: usize, end: usize) -> &str {
    let from = text[..start].rfind('\n').map_or(0, |i| i + 1);
    let to = text[end..].find('\n').map_or(text.len(), |i| end + i);
    &text[from..to]
}

/// True when `word` occurs in `line`, ignoring ASCII case. Jumps between occurrences
/// of the word's first letter (either case) with `memchr`: context checks run for
/// every candidate match, so this is on the scan's hot path.
pub(crate) fn contains_word(line: impl AsRef<[u8]>, word: impl AsRef<[u8]>) -> bool {
    let (l, w) = (line.as_ref(), word.as_ref());
    let Some(&first) = w.first() else {
        return false;
    };
    let Some(last_start) = l.len().checked_sub(w.len()) else {
        return false;
    };
    memchr::memchr2_iter(
        first.to_ascii_lowercase(),
        first.to_ascii_uppercase(),
        &l[..=last_start],
    )
    .any(|i| l[i..i + w.len()].eq_ignore_ascii_case(w))
}

/// A match with its masked sample, for the classifiers' unit tests.
#[cfg(test)]
#[derive(Debug)]
pub(crate) struct Found {
    pub confidence: f64,
    pub masked: String,
}

#[cfg(test)]
pub(crate) fn scan_one(c: &dyn Classifier, text: &str) -> Vec<Found> {
    let mut out = Vec::new();
    c.scan(text, &mut out);
    out.into_iter()
        .map(|m| Found {
            confidence: m.confidence,
            masked: c.mask(&text[m.start..m.end]),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_built_in_is_named() {
        let names: Vec<String> = built_in().iter().map(|c| c.name().to_owned()).collect();
        assert_eq!(names, NAMES);
    }

    #[test]
    fn selection_by_name() {
        let names = vec!["us_ssn".to_owned()];
        let cs = select(Some(&names), &[]);
        assert_eq!(cs.len(), 1);
        assert_eq!(cs[0].name(), "us_ssn");
    }

    #[test]
    fn the_line_around_a_match() {
        let t = "one\ntwo secret here\nthree";
        let s = t.find("secret").unwrap();
        assert_eq!(line_around(t, s, s + 6), "two secret here");
        assert!(contains_word("My AWS Key", "aws"));
        assert!(!contains_word("paws", ""));
    }

    /// Prose, near misses and every negative of the corpus generator: nothing found.
    #[test]
    fn ordinary_prose_yields_nothing() {
        let prose = "The quarterly review meeting is at 10:30 on 2024-05-17 in room 4.2.\n\
            Version 1.2.3 shipped; order 1234567890123 and ref 4111111111111112.\n\
            Call me maybe. The key to success is hard work, not secrets.\n\
            DE00 1234 5678 9012 3456 78 is not an IBAN. jane at example dot com.\n";
        let mut out = Vec::new();
        for c in built_in() {
            c.scan(prose, &mut out);
            assert!(out.is_empty(), "{} found {:?}", c.name(), out);
        }
    }
}
