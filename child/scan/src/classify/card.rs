//! Payment card numbers: 13–19 digits, optionally grouped by spaces or dashes, with a
//! known issuer prefix and a valid Luhn check digit.

use super::pattern::{Pattern, Prefilter};

use super::{Classifier, Match};
use crate::mask;

pub const NAME: &str = "payment_card";

pub struct PaymentCard {
    re: Pattern,
}

impl PaymentCard {
    pub fn new() -> Self {
        let re = Pattern::new(
            r"(?-u:\b)[0-9](?:[ -]?[0-9]){12,18}(?-u:\b)",
            Prefilter::Off,
        )
        .expect("static regex");
        PaymentCard { re }
    }
}

/// The Luhn (mod 10) check.
pub fn luhn_valid(digits: &[u8]) -> bool {
    let mut sum = 0u32;
    for (i, d) in digits.iter().rev().enumerate() {
        let mut v = u32::from(*d);
        if i % 2 == 1 {
            v *= 2;
            if v > 9 {
                v -= 9;
            }
        }
        sum += v;
    }
    !digits.is_empty() && sum.is_multiple_of(10)
}

/// Visa, Mastercard (51–55, 2221–2720), American Express (34, 37), Discover (6011,
/// 65, 644–649), JCB (3528–3589), Diners (36, 300–305).
fn known_issuer(d: &[u8]) -> bool {
    let n = |k: usize| {
        d.iter()
            .take(k)
            .fold(0u32, |acc, x| acc * 10 + u32::from(*x))
    };
    let len = d.len();
    match d.first() {
        Some(4) => matches!(len, 13 | 16 | 19),
        Some(5) => (51..=55).contains(&n(2)) && len == 16,
        Some(2) => (2221..=2720).contains(&n(4)) && len == 16,
        Some(3) => {
            (matches!(n(2), 34 | 37) && len == 15)
                || ((3528..=3589).contains(&n(4)) && (16..=19).contains(&len))
                || ((n(2) == 36 || (300..=305).contains(&n(3))) && len == 14)
        }
        Some(6) => {
            (n(4) == 6011 || n(2) == 65 || (644..=649).contains(&n(3))) && (16..=19).contains(&len)
        }
        _ => false,
    }
}

impl Classifier for PaymentCard {
    fn name(&self) -> &str {
        NAME
    }

    fn mask(&self, value: &str) -> String {
        let digits: String = value.chars().filter(char::is_ascii_digit).collect();
        mask::card(&digits)
    }

    fn scan(&self, text: &str, out: &mut Vec<Match>) {
        for m in self.re.find_iter(text) {
            let digits: Vec<u8> = m
                .as_str()
                .bytes()
                .filter(u8::is_ascii_digit)
                .map(|b| b - b'0')
                .collect();
            if (13..=19).contains(&digits.len()) && known_issuer(&digits) && luhn_valid(&digits) {
                out.push(Match {
                    start: m.start(),
                    end: m.end(),
                    confidence: 0.95,
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(line: &str) -> usize {
        let mut out = Vec::new();
        PaymentCard::new().scan(line, &mut out);
        out.len()
    }

    #[test]
    fn luhn_and_issuer_decide() {
        assert_eq!(count("visa 4111 1111 1111 1111"), 1);
        assert_eq!(count("mc 5555-5555-5555-4444"), 1);
        assert_eq!(count("amex 378282246310005"), 1);
        assert_eq!(count("bad luhn 4111 1111 1111 1112"), 0);
        assert_eq!(count("no issuer 9111111111111119"), 0);
        assert_eq!(count("order 1234567890123"), 0);
    }
}
