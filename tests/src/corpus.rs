//! A seeded corpus generator: text files with a known number of each kind of
//! sensitive value, plus near misses (Luhn-failing card numbers, never-issued SSNs,
//! malformed IBANs, short key ids, secrets without context, hashes, spelled-out
//! addresses) that must not be found. The counts are computed while writing, so they
//! are exact whatever the random stream. `documents.rs` puts the same lines into
//! PDF, office and image files.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::values::{self, FIRST};

/// Every classifier the corpus seeds values for.
pub const KINDS: &[&str] = &[
    "email",
    "payment_card",
    "us_ssn",
    "aws_access_key_id",
    "aws_secret_access_key",
    "iban",
    "phone_number",
    "ipv4_address",
    "ipv6_address",
    "private_key",
    "jwt",
];

/// The built-in classifiers' patterns for ripgrep, by classifier name (in [`KINDS`]
/// order): what rg must search for to do the same first step as each classifier (rg
/// does no validation, context check or masking after it). The benches time rg with
/// them next to the site.
pub const RG_PATTERNS: &[(&str, &str)] = &[
    (
        "email",
        r"\b[a-z0-9][a-z0-9._%+-]{0,63}@(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,24}\b",
    ),
    ("payment_card", r"\b\d(?:[ -]?\d){12,18}\b"),
    ("us_ssn", r"\b(\d{3})-(\d{2})-(\d{4})\b"),
    (
        "aws_access_key_id",
        r"\b(?:AKIA|ASIA|ABIA|ACCA|AIDA|AROA|AGPA|ANPA|ANVA|APKA)[A-Z0-9]{16}\b",
    ),
    ("aws_secret_access_key", r"[A-Za-z0-9/+]{40,}"),
    (
        "iban",
        r"\b[A-Z]{2}[0-9]{2}(?:[A-Z0-9]{11,30}|(?: [A-Z0-9]{4}){2,7}(?: [A-Z0-9]{1,4})?)\b",
    ),
    (
        "phone_number",
        r"\+[1-9]\d{0,2}(?:[ .-]?\(?\d{1,4}\)?){2,5}\b|\([2-9]\d{2}\) ?[2-9]\d{2}-\d{4}|\b[2-9]\d{2}[-.][2-9]\d{2}[-.]\d{4}\b",
    ),
    ("ipv4_address", r"\b(?:\d{1,3}\.){3}\d{1,3}\b"),
    (
        "ipv6_address",
        r"[0-9a-fA-F]{0,4}(?::[0-9a-fA-F]{0,4}){2,7}",
    ),
    (
        "private_key",
        r"-----BEGIN ((?:[A-Z0-9]+ ){0,3})PRIVATE KEY-----",
    ),
    (
        "jwt",
        r"\beyJ[A-Za-z0-9_-]{5,1000}\.eyJ[A-Za-z0-9_-]{5,2000}\.[A-Za-z0-9_-]{0,1000}",
    ),
];

const WORDS: &[&str] = &[
    "ledger",
    "quarterly",
    "review",
    "meeting",
    "notes",
    "project",
    "budget",
    "approved",
    "pending",
    "shipment",
    "invoice",
    "customer",
    "support",
    "ticket",
    "resolved",
    "team",
    "roadmap",
    "release",
    "draft",
    "final",
    "summary",
    "action",
    "items",
    "follow",
    "up",
    "with",
    "the",
    "and",
    "for",
    "from",
    "about",
    "report",
];
/// A generated corpus and what must be found in it.
#[derive(Debug, Clone)]
pub struct Corpus {
    pub root: PathBuf,
    pub files: usize,
    pub bytes: u64,
    /// Classifier name → number of values seeded (kinds seeded zero times absent).
    pub expected: BTreeMap<String, i64>,
}

/// Counts of seeded values per classifier.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Counts(pub BTreeMap<String, i64>);

impl Counts {
    pub fn add(&mut self, kind: &str) {
        *self.0.entry(kind.to_owned()).or_default() += 1;
    }

    pub fn merge(&mut self, other: &Counts) {
        for (k, v) in &other.0 {
            *self.0.entry(k.clone()).or_default() += v;
        }
    }
}

/// `n` lines of prose with seeded values; private-key blocks span several lines.
/// `positive` false writes only near misses and prose (the negative corpus).
pub fn lines(rng: &mut StdRng, n: usize, positive: bool, counts: &mut Counts) -> Vec<String> {
    let mut out = Vec::with_capacity(n + 8);
    while out.len() < n {
        let (mut block, kind) = if positive {
            line(rng)
        } else {
            negative_line(rng)
        };
        if let Some(kind) = kind {
            counts.add(kind);
        }
        out.append(&mut block);
    }
    out
}

/// Writes `files` text files under `root` from `seed`. `lines_per_file` bounds each
/// file's length (a file gets between half and all of it).
pub fn generate(root: &Path, seed: u64, files: usize, lines_per_file: usize) -> Corpus {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut counts = Counts::default();
    let mut bytes = 0u64;
    for n in 0..files {
        let ext = ["txt", "csv", "log", "md"][n % 4];
        let dir = root.join(format!("dept-{:02}", n % 10));
        std::fs::create_dir_all(&dir).expect("corpus dir");
        let lines = lines_per_file / 2 + rng.random_range(0..=lines_per_file / 2).max(1);
        let mut text = String::new();
        for line in lines_of(&mut rng, lines, &mut counts) {
            text.push_str(&line);
            text.push('\n');
        }
        bytes += text.len() as u64;
        std::fs::write(dir.join(format!("doc-{n:06}.{ext}")), text).expect("corpus file");
    }
    Corpus {
        root: root.to_owned(),
        files,
        bytes,
        expected: counts.0,
    }
}

fn lines_of(rng: &mut StdRng, n: usize, counts: &mut Counts) -> Vec<String> {
    lines(rng, n, true, counts)
}

fn prose(rng: &mut StdRng, words: usize) -> String {
    (0..words)
        .map(|_| WORDS[rng.random_range(0..WORDS.len())])
        .collect::<Vec<_>>()
        .join(" ")
}

fn wrap(rng: &mut StdRng, value: String) -> String {
    let n_before = rng.random_range(2..8);
    let before = prose(rng, n_before);
    let n_after = rng.random_range(1..6);
    let after = prose(rng, n_after);
    if value.is_empty() {
        format!("{before} {after}")
    } else {
        format!("{before} {value} {after}")
    }
}

/// One line (or a key block): prose with at most one seeded value or near miss.
fn line(rng: &mut StdRng) -> (Vec<String>, Option<&'static str>) {
    let roll = rng.random_range(0..100);
    let (value, kind) = match roll {
        0..=7 => (values::email(rng), Some("email")),
        8..=11 => (values::card(rng, true), Some("payment_card")),
        12..=15 => (values::ssn(rng, true), Some("us_ssn")),
        16..=18 => (values::aws_key(rng, 16), Some("aws_access_key_id")),
        19..=20 => (
            format!("aws_secret_access_key={}", values::aws_secret(rng)),
            Some("aws_secret_access_key"),
        ),
        21..=23 => (values::iban(rng, true), Some("iban")),
        24..=27 => (values::phone(rng), Some("phone_number")),
        28..=30 => (values::ipv4(rng), Some("ipv4_address")),
        31..=32 => (values::ipv6(rng), Some("ipv6_address")),
        33..=34 => (values::jwt(rng), Some("jwt")),
        35 => return (values::private_key_block(rng), Some("private_key")),
        36..=50 => return negative_line(rng),
        _ => (String::new(), None),
    };
    (vec![wrap(rng, value)], kind)
}

/// A line that must yield no finding: prose or a near miss.
fn negative_line(rng: &mut StdRng) -> (Vec<String>, Option<&'static str>) {
    let value = match rng.random_range(0..14) {
        0 => values::card(rng, false),
        1 => values::ssn(rng, false),
        2 => values::aws_key(rng, 10),
        3 => format!(
            "{} at example dot com",
            FIRST[rng.random_range(0..FIRST.len())]
        ),
        4 => format!("ref {}", rng.random_range(1_000_000_000u64..9_999_999_999)),
        5 => values::iban(rng, false),
        // A secret-shaped string without context, and a hash with it.
        6 => format!("token {}", values::aws_secret(rng)),
        7 => format!("aws secret sha {}", values::sha1_like(rng)),
        8 => format!(
            "build {}.{}.{}.{}.{}",
            rng.random_range(1..9),
            rng.random_range(0..20),
            rng.random_range(0..20),
            rng.random_range(0..20),
            rng.random_range(0..99)
        ),
        9 => format!(
            "at {:02}:{:02}:{:02}",
            rng.random_range(0..24),
            rng.random_range(0..60),
            rng.random_range(0..60)
        ),
        10 => "-----BEGIN PUBLIC KEY-----".to_owned(),
        11 => format!("eyJ{}", values::sha1_like(rng)),
        12 => format!(
            "on {}-{:02}-{:02}",
            rng.random_range(1990..2030),
            rng.random_range(1..13),
            rng.random_range(1..29)
        ),
        _ => String::new(),
    };
    (vec![wrap(rng, value)], None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_counts() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let ca = generate(a.path(), 7, 20, 30);
        let cb = generate(b.path(), 7, 20, 30);
        assert_eq!(ca.expected, cb.expected);
        let kinds: Vec<&str> = ca.expected.keys().map(String::as_str).collect();
        let mut all = KINDS.to_vec();
        all.sort();
        assert_eq!(kinds, all, "every kind is seeded: {:?}", ca.expected);
    }
}
