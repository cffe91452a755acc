//! International Bank Account Numbers: a country code, two check digits and a
//! country-specific number of alphanumerics, written compact or in groups of four,
//! accepted only when the length fits the country and the ISO 7064 mod-97 check holds.

use super::pattern::{Pattern, Prefilter};

use super::{Classifier, Match};
use crate::mask;

pub const NAME: &str = "iban";

/// IBAN length per country (SWIFT registry), for the countries most seen in Europe
/// and a few beyond; an unknown country code is not an IBAN.
const LENGTHS: &[(&str, usize)] = &[
    ("AD", 24),
    ("AE", 23),
    ("AT", 20),
    ("BE", 16),
    ("BG", 22),
    ("BH", 22),
    ("BR", 29),
    ("CH", 21),
    ("CY", 28),
    ("CZ", 24),
    ("DE", 22),
    ("DK", 18),
    ("EE", 20),
    ("ES", 24),
    ("FI", 18),
    ("FR", 27),
    ("GB", 22),
    ("GI", 23),
    ("GR", 27),
    ("HR", 21),
    ("HU", 28),
    ("IE", 22),
    ("IL", 23),
    ("IS", 26),
    ("IT", 27),
    ("LI", 21),
    ("LT", 20),
    ("LU", 20),
    ("LV", 21),
    ("MC", 27),
    ("MT", 31),
    ("NL", 18),
    ("NO", 15),
    ("PL", 28),
    ("PT", 25),
    ("RO", 24),
    ("SA", 24),
    ("SE", 24),
    ("SI", 19),
    ("SK", 24),
    ("SM", 27),
    ("TR", 26),
];

pub struct Iban {
    re: Pattern,
}

impl Iban {
    pub fn new() -> Self {
        let re = Pattern::new(
            r"(?-u:\b)[A-Z]{2}[0-9]{2}(?:[A-Z0-9]{11,30}|(?: [A-Z0-9]{4}){2,7}(?: [A-Z0-9]{1,4})?)(?-u:\b)", Prefilter::Off
        )
        .expect("static regex");
        Iban { re }
    }
}

/// The ISO 7064 mod-97-10 check of an IBAN (or any value in that scheme): move the
/// first four characters to the end, letters to numbers (A=10 … Z=35), remainder 1.
pub fn mod97_valid(compact: &str) -> bool {
    if compact.len() < 5 || !compact.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return false;
    }
    let (head, tail) = compact.split_at(4);
    let mut rem = 0u32;
    for b in tail.bytes().chain(head.bytes()) {
        let v = match b {
            b'0'..=b'9' => u32::from(b - b'0'),
            b'A'..=b'Z' => u32::from(b - b'A') + 10,
            b'a'..=b'z' => u32::from(b - b'a') + 10,
            _ => return false,
        };
        rem = if v >= 10 {
            (rem * 100 + v) % 97
        } else {
            (rem * 10 + v) % 97
        };
    }
    rem == 1
}

fn valid(compact: &str) -> bool {
    let country = &compact[..2];
    LENGTHS
        .iter()
        .any(|(c, len)| *c == country && *len == compact.len())
        && mod97_valid(compact)
}

impl Classifier for Iban {
    fn name(&self) -> &str {
        NAME
    }

    fn mask(&self, value: &str) -> String {
        let compact: String = value.chars().filter(|c| *c != ' ').collect();
        mask::iban(&compact)
    }

    fn scan(&self, text: &str, out: &mut Vec<Match>) {
        for m in self.re.find_iter(text) {
            let compact: String = m.as_str().chars().filter(|c| *c != ' ').collect();
            if valid(&compact) {
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
    use super::super::scan_one;
    use super::*;

    #[test]
    fn valid_ibans_in_both_forms() {
        let c = Iban::new();
        let found = scan_one(
            &c,
            "pay DE89370400440532013000 or GB82 WEST 1234 5698 7654 32 or NL91ABNA0417164300.",
        );
        assert_eq!(found.len(), 3);
        assert_eq!(found[0].masked, "DE****************3000");
    }

    #[test]
    fn malformed_ibans_are_refused() {
        let c = Iban::new();
        // Wrong check digits, wrong length for the country, unknown country, lower case.
        for t in [
            "DE88370400440532013000",
            "DE8937040044053201300",
            "XX89370400440532013000",
            "de89370400440532013000",
            "GB82 WEST 1234 5698 7654 33",
        ] {
            assert!(scan_one(&c, t).is_empty(), "{t}");
        }
    }

    #[test]
    fn mod97_matches_the_standard_example() {
        assert!(mod97_valid("GB82WEST12345698765432"));
        assert!(!mod97_valid("GB82WEST12345698765433"));
        assert!(!mod97_valid("GB8"));
    }
}
