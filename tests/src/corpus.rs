//! A seeded corpus generator: text files with a known number of each kind of
//! sensitive value, plus near misses (Luhn-failing card numbers, never-issued SSNs,
//! short key ids, spelled-out addresses) that must not be found. The counts are
//! computed while writing, so they are exact whatever the random stream.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

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
const FIRST: &[&str] = &[
    "jane", "john", "amira", "kenji", "lena", "omar", "priya", "tomas",
];
const LAST: &[&str] = &[
    "doe", "roe", "sato", "novak", "haddad", "silva", "khan", "berg",
];
const DOMAINS: &[&str] = &["example.com", "corp.example.org", "mail.example.net"];

/// A generated corpus and what must be found in it.
#[derive(Debug, Clone)]
pub struct Corpus {
    pub root: PathBuf,
    pub files: usize,
    pub bytes: u64,
    /// Classifier name → number of values seeded.
    pub expected: BTreeMap<String, i64>,
}

/// Writes `files` text files under `root` from `seed`. `lines_per_file` bounds each
/// file's length (a file gets between half and all of it).
pub fn generate(root: &Path, seed: u64, files: usize, lines_per_file: usize) -> Corpus {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut expected: BTreeMap<String, i64> =
        ["email", "payment_card", "us_ssn", "aws_access_key_id"]
            .iter()
            .map(|k| (k.to_string(), 0))
            .collect();
    let mut bytes = 0u64;
    for n in 0..files {
        let ext = ["txt", "csv", "log", "md"][n % 4];
        let dir = root.join(format!("dept-{:02}", n % 10));
        std::fs::create_dir_all(&dir).expect("corpus dir");
        let lines = lines_per_file / 2 + rng.random_range(0..=lines_per_file / 2).max(1);
        let mut text = String::new();
        for _ in 0..lines {
            let (line, kind) = line(&mut rng);
            if let Some(kind) = kind {
                *expected.get_mut(kind).expect("known kind") += 1;
            }
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
        expected,
    }
}

fn prose(rng: &mut StdRng, words: usize) -> String {
    (0..words)
        .map(|_| WORDS[rng.random_range(0..WORDS.len())])
        .collect::<Vec<_>>()
        .join(" ")
}

/// One line: prose with at most one seeded value or near miss.
fn line(rng: &mut StdRng) -> (String, Option<&'static str>) {
    let n_before = rng.random_range(2..8);
    let before = prose(rng, n_before);
    let n_after = rng.random_range(1..6);
    let after = prose(rng, n_after);
    let roll = rng.random_range(0..100);
    let (value, kind) = match roll {
        0..=9 => (email(rng), Some("email")),
        10..=14 => (card(rng, true), Some("payment_card")),
        15..=19 => (ssn(rng, true), Some("us_ssn")),
        20..=22 => (aws_key(rng, 16), Some("aws_access_key_id")),
        23..=25 => (card(rng, false), None),
        26..=28 => (ssn(rng, false), None),
        29..=30 => (aws_key(rng, 10), None),
        31..=32 => (
            format!(
                "{} at example dot com",
                FIRST[rng.random_range(0..FIRST.len())]
            ),
            None,
        ),
        33..=34 => (
            format!("ref {}", rng.random_range(1_000_000_000u64..9_999_999_999)),
            None,
        ),
        _ => (String::new(), None),
    };
    if value.is_empty() {
        (format!("{before} {after}"), None)
    } else {
        (format!("{before} {value} {after}"), kind)
    }
}

fn email(rng: &mut StdRng) -> String {
    format!(
        "{}.{}{}@{}",
        FIRST[rng.random_range(0..FIRST.len())],
        LAST[rng.random_range(0..LAST.len())],
        rng.random_range(1..999),
        DOMAINS[rng.random_range(0..DOMAINS.len())]
    )
}

fn luhn_digit(body: &[u8]) -> u8 {
    // The check digit makes the sum over body + digit divisible by 10.
    let mut sum = 0u32;
    for (i, d) in body.iter().rev().enumerate() {
        let mut v = u32::from(*d);
        if i % 2 == 0 {
            v *= 2;
            if v > 9 {
                v -= 9;
            }
        }
        sum += v;
    }
    ((10 - sum % 10) % 10) as u8
}

/// A card number with a real issuer prefix; `valid` decides the Luhn digit.
fn card(rng: &mut StdRng, valid: bool) -> String {
    let (prefix, len): (&[u8], usize) = match rng.random_range(0..3) {
        0 => (&[4], 16),
        1 => (&[5, rng.random_range(1..=5)], 16),
        _ => (&[3, 7], 15),
    };
    let mut digits: Vec<u8> = prefix.to_vec();
    while digits.len() < len - 1 {
        digits.push(rng.random_range(0..10));
    }
    let check = luhn_digit(&digits);
    digits.push(if valid {
        check
    } else {
        (check + 1 + rng.random_range(0..9)) % 10
    });
    let s: String = digits.iter().map(|d| char::from(b'0' + d)).collect();
    match (len, rng.random_range(0..3)) {
        (16, 0) => s
            .as_bytes()
            .chunks(4)
            .map(|c| std::str::from_utf8(c).unwrap_or_default())
            .collect::<Vec<_>>()
            .join(" "),
        (16, 1) => s
            .as_bytes()
            .chunks(4)
            .map(|c| std::str::from_utf8(c).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("-"),
        _ => s,
    }
}

/// An SSN; `valid` picks an issuable one, otherwise area 000, 666 or 9xx.
fn ssn(rng: &mut StdRng, valid: bool) -> String {
    let area = if valid {
        let a = rng.random_range(1..899);
        if a == 666 { 667 } else { a }
    } else {
        [0, 666, rng.random_range(900..1000)][rng.random_range(0..3)]
    };
    let mut s = String::new();
    let _ = write!(
        s,
        "{area:03}-{:02}-{:04}",
        rng.random_range(1..100),
        rng.random_range(1..10000)
    );
    s
}

fn aws_key(rng: &mut StdRng, tail: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let t: String = (0..tail)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect();
    format!("AKIA{t}")
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
        assert!(ca.expected.values().all(|n| *n > 0), "{:?}", ca.expected);
    }

    #[test]
    fn luhn_digit_matches_known_numbers() {
        let body: Vec<u8> = "411111111111111".bytes().map(|b| b - b'0').collect();
        assert_eq!(luhn_digit(&body), 1);
    }
}
