//! Seeded sensitive values and near misses for the corpus generators. Each generator
//! returns the text of one value; which classifier must find it is decided by the
//! caller, from what it asked for, never by running a classifier. Values are built so
//! that no other classifier can match inside them (e.g. IBAN bank codes never start
//! with a card issuer digit, key bodies hold letters only).

use std::fmt::Write as _;

use rand::Rng;
use rand::rngs::StdRng;

pub const FIRST: &[&str] = &[
    "jane", "john", "amira", "kenji", "lena", "omar", "priya", "tomas",
];
pub const LAST: &[&str] = &[
    "doe", "roe", "sato", "novak", "haddad", "silva", "khan", "berg",
];
const DOMAINS: &[&str] = &["example.com", "corp.example.org", "mail.example.net"];
const UPPER_DIGITS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const LETTERS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

fn pick(rng: &mut StdRng, alphabet: &[u8], n: usize) -> String {
    (0..n)
        .map(|_| char::from(alphabet[rng.random_range(0..alphabet.len())]))
        .collect()
}

pub fn email(rng: &mut StdRng) -> String {
    format!(
        "{}.{}{}@{}",
        FIRST[rng.random_range(0..FIRST.len())],
        LAST[rng.random_range(0..LAST.len())],
        rng.random_range(1..999),
        DOMAINS[rng.random_range(0..DOMAINS.len())]
    )
}

pub fn luhn_digit(body: &[u8]) -> u8 {
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

fn digits_string(d: &[u8]) -> String {
    d.iter().map(|d| char::from(b'0' + d)).collect()
}

fn grouped(s: &str, sep: &str) -> String {
    s.as_bytes()
        .chunks(4)
        .map(|c| std::str::from_utf8(c).unwrap_or_default())
        .collect::<Vec<_>>()
        .join(sep)
}

/// A card number with a real issuer prefix; `valid` decides the Luhn digit.
pub fn card(rng: &mut StdRng, valid: bool) -> String {
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
    let s = digits_string(&digits);
    match (len, rng.random_range(0..3)) {
        (16, 0) => grouped(&s, " "),
        (16, 1) => grouped(&s, "-"),
        _ => s,
    }
}

/// An SSN; `valid` picks an issuable one, otherwise area 000, 666 or 9xx.
pub fn ssn(rng: &mut StdRng, valid: bool) -> String {
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

/// An AWS access key id (`tail` 16) or a too-short look-alike.
pub fn aws_key(rng: &mut StdRng, tail: usize) -> String {
    format!("AKIA{}", pick(rng, UPPER_DIGITS, tail))
}

/// 40 characters mixing cases and digits, starting with a lower-case letter.
pub fn aws_secret(rng: &mut StdRng) -> String {
    loop {
        let s = format!(
            "{}{}",
            pick(rng, b"abcdefghijklmnopqrstuvwxyz", 1),
            pick(rng, ALNUM, 39)
        );
        if s.bytes().any(|b| b.is_ascii_uppercase()) && s.bytes().any(|b| b.is_ascii_digit()) {
            return s;
        }
    }
}

/// 40 lower-case hex digits, like a SHA-1.
pub fn sha1_like(rng: &mut StdRng) -> String {
    pick(rng, b"0123456789abcdef", 40)
}

fn mod97(s: &str) -> u32 {
    let mut rem = 0u32;
    for b in s.bytes() {
        let v = if b.is_ascii_digit() {
            u32::from(b - b'0')
        } else {
            u32::from(b - b'A') + 10
        };
        rem = if v >= 10 {
            (rem * 100 + v) % 97
        } else {
            (rem * 10 + v) % 97
        };
    }
    rem
}

/// A German IBAN, compact or grouped. The bank code starts with 1, 7, 8 or 9 (no
/// card issuer does), so a grouped IBAN's digits are never a card number. `valid`
/// false gives wrong check digits.
pub fn iban(rng: &mut StdRng, valid: bool) -> String {
    let mut bban = String::new();
    bban.push(char::from(b"1789"[rng.random_range(0..4)]));
    for _ in 0..17 {
        bban.push(char::from(b'0' + rng.random_range(0..10u8)));
    }
    let check = 98 - mod97(&format!("{bban}DE00"));
    let check = if valid {
        check
    } else {
        // Another value in 2..=98: the mod-97 check then fails.
        (check - 2 + 1 + rng.random_range(0..95)) % 97 + 2
    };
    let compact = format!("DE{check:02}{bban}");
    if rng.random_bool(0.5) {
        compact
    } else {
        grouped(&compact, " ")
    }
}

/// A phone number in an international or North American form.
pub fn phone(rng: &mut StdRng) -> String {
    let nxx = |rng: &mut StdRng| rng.random_range(200..1000);
    match rng.random_range(0..4) {
        0 => format!(
            "+1 {} {} {:04}",
            nxx(rng),
            nxx(rng),
            rng.random_range(0..10000)
        ),
        1 => format!(
            "({}) {}-{:04}",
            nxx(rng),
            nxx(rng),
            rng.random_range(0..10000)
        ),
        2 => format!(
            "{}-{}-{:04}",
            nxx(rng),
            nxx(rng),
            rng.random_range(0..10000)
        ),
        _ => format!(
            "+44 20 {:04} {:04}",
            rng.random_range(1000..10000),
            rng.random_range(0..10000)
        ),
    }
}

pub fn ipv4(rng: &mut StdRng) -> String {
    format!(
        "{}.{}.{}.{}",
        rng.random_range(1..=223),
        rng.random_range(0..=255),
        rng.random_range(0..=255),
        rng.random_range(1..=254)
    )
}

pub fn ipv6(rng: &mut StdRng) -> String {
    format!(
        "2001:db8:{:x}:{:x}::{:x}",
        rng.random_range(1..0xffff),
        rng.random_range(0..0xffff),
        rng.random_range(1..0xffff)
    )
}

fn base64url(data: &[u8]) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..=chunk.len() {
            out.push(char::from(A[((n >> (18 - 6 * i)) & 63) as usize]));
        }
    }
    out
}

/// A signed-looking JWT; the signature starts with a lower-case letter and holds
/// letters and digits only.
pub fn jwt(rng: &mut StdRng) -> String {
    let header = base64url(br#"{"alg":"HS256","typ":"JWT"}"#);
    let payload = base64url(
        format!(
            r#"{{"sub":"user{}","iat":{}}}"#,
            rng.random_range(1..100_000),
            rng.random_range(1_600_000_000u64..1_800_000_000)
        )
        .as_bytes(),
    );
    let sig = format!(
        "{}{}",
        pick(rng, b"abcdefghijklmnopqrstuvwxyz", 1),
        pick(rng, ALNUM, 42)
    );
    format!("{header}.{payload}.{sig}")
}

/// A PEM private-key block: header, body lines of letters only, footer.
pub fn private_key_block(rng: &mut StdRng) -> Vec<String> {
    let kind = ["RSA ", "EC ", "OPENSSH ", ""][rng.random_range(0..4)];
    let mut lines = vec![format!("-----BEGIN {kind}PRIVATE KEY-----")];
    for _ in 0..rng.random_range(2..5) {
        lines.push(pick(rng, LETTERS, 64));
    }
    lines.push(format!("-----END {kind}PRIVATE KEY-----"));
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn luhn_digit_matches_known_numbers() {
        let body: Vec<u8> = "411111111111111".bytes().map(|b| b - b'0').collect();
        assert_eq!(luhn_digit(&body), 1);
    }

    #[test]
    fn iban_check_digits_follow_the_standard() {
        // DE89 3704 0044 0532 0130 00 is the standard example.
        assert_eq!(98 - mod97("370400440532013000DE00"), 89);
    }

    #[test]
    fn base64url_is_unpadded() {
        assert_eq!(base64url(b"abc"), "YWJj");
        assert_eq!(base64url(b"ab"), "YWI");
        assert_eq!(
            base64url(br#"{"alg":"HS256","typ":"JWT"}"#),
            "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"
        );
    }
}
