//! Telephone numbers in the forms people write them: international (`+` country code,
//! 8–15 digits in groups) and North American (`(415) 555-2671`, `415-555-2671`,
//! `415.555.2671`). A bare run of digits is not taken for a phone number: order and
//! reference numbers look the same. Context words raise the confidence.

use super::pattern::{Pattern, Prefilter};

use super::{Classifier, Match, contains_word, line_around};
use crate::mask;

pub const NAME: &str = "phone_number";

const CONTEXT: &[&str] = &["phone", "tel", "mobile", "cell", "call", "fax"];

pub struct Phone {
    re: Pattern,
}

/// The number (group 1) after one character that is not part of a word or a `+`,
/// or at the start of the text. Group 2 is the North American form's separator.
const PATTERN: &str = concat!(
    r"(?:^|[^\w+])(",
    r"\+[1-9][0-9]{0,2}(?:[ .-]?\(?[0-9]{1,4}\)?){2,5}",
    r"|\([2-9][0-9]{2}\) ?[2-9][0-9]{2}-[0-9]{4}",
    r"|(?-u:\b)[2-9][0-9]{2}([-.])[2-9][0-9]{2}[-.][0-9]{4}",
    r")(?-u:\b)"
);

impl Phone {
    pub fn new() -> Self {
        let re = Pattern::new(PATTERN, Prefilter::Off).expect("static regex");
        Phone { re }
    }
}

impl Classifier for Phone {
    fn name(&self) -> &str {
        NAME
    }

    fn mask(&self, value: &str) -> String {
        mask::phone(value)
    }

    /// The groups are worked out from the match instead of by a capturing search,
    /// which cost three quarters of this classifier: the number is the match without
    /// its first character, which is the `[^\w+]` before it everywhere but at the
    /// start of the text (there `^` may have matched instead, and only there a
    /// capturing search tells); the North American form is the only one starting with
    /// a digit, and its separator (group 2) is its fourth byte.
    fn scan(&self, text: &str, out: &mut Vec<Match>) {
        for whole in self.re.find_iter(text) {
            let start = if whole.start() == 0 {
                match self.re.captures_at(text, 0).and_then(|c| c.get(1)) {
                    Some(number) => number.start(),
                    None => continue,
                }
            } else {
                let before = text.get(whole.start()..).and_then(|t| t.chars().next());
                whole.start() + before.map_or(0, char::len_utf8)
            };
            let Some(value) = text.get(start..whole.end()) else {
                continue;
            };
            let m = (start, whole.end());
            // The North American form uses one separator throughout.
            if value.starts_with(|c: char| c.is_ascii_digit())
                && let Some(&sep) = value.as_bytes().get(3)
                && value.bytes().filter(|b| *b == sep).count() != 2
            {
                continue;
            }
            let digits = value.bytes().filter(u8::is_ascii_digit).count();
            if value.starts_with('+') && !(8..=15).contains(&digits) {
                continue;
            }
            let line = line_around(text, m.0, m.1);
            let context = CONTEXT.iter().any(|w| contains_word(line, w));
            out.push(Match {
                start: m.0,
                end: m.1,
                confidence: if context { 0.85 } else { 0.6 },
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::scan_one;
    use super::*;

    #[test]
    fn common_forms_are_found() {
        let c = Phone::new();
        let found = scan_one(
            &c,
            "call +1 415 555 2671, (415) 555-2671, 415-555-2671 or +44 20 7946 0958",
        );
        assert_eq!(found.len(), 4, "{found:?}");
        assert!(found.iter().all(|m| m.confidence > 0.8));
        assert_eq!(found[0].masked, "+* *** *** **71");
    }

    #[test]
    fn digit_runs_dates_and_other_ids_are_not_phones() {
        let c = Phone::new();
        for t in [
            "ref 4155552671",
            "on 2024-05-17",
            "ssn 123-45-6789",
            "card 4111-1111-1111-1111",
            "415-555.2671",
            "+12",
            "v1.2.3",
            "x+1 415 555 2671",
        ] {
            assert!(scan_one(&c, t).is_empty(), "{t}: {:?}", scan_one(&c, t));
        }
        assert_eq!(scan_one(&c, "reach 415.555.2671")[0].confidence, 0.6);
    }

    /// What the classifier did with a capturing search, before it worked the groups
    /// out from the match: the reference the fast path must equal.
    fn with_captures(re: &regex::Regex, text: &str) -> Vec<(usize, usize)> {
        re.captures_iter(text)
            .filter_map(|c| {
                let m = c.get(1)?;
                let same_separator = c
                    .get(2)
                    .is_none_or(|sep| m.as_str().matches(sep.as_str()).count() == 2);
                let digits = m.as_str().bytes().filter(u8::is_ascii_digit).count();
                let plausible = !m.as_str().starts_with('+') || (8..=15).contains(&digits);
                (same_separator && plausible).then_some((m.start(), m.end()))
            })
            .collect()
    }

    #[test]
    fn same_numbers_as_a_capturing_search() {
        use rand::rngs::StdRng;
        use rand::{Rng, SeedableRng};
        const PIECES: &[&str] = &[
            "0", "1", "2", "4", "5", "7", "9", "41", "555", " ", "-", ".", "+", "(", ")", "x", "é",
            "—", "\u{a0}", "€", "\n", "_", "+1 ", "(415) ", "415-", "555.", "2671",
        ];
        let c = Phone::new();
        let reference = regex::Regex::new(PATTERN).unwrap();
        let mut rng = StdRng::seed_from_u64(3);
        let mut found = 0;
        for _ in 0..100_000 {
            let n = rng.random_range(1..16);
            let text: String = (0..n)
                .map(|_| PIECES[rng.random_range(0..PIECES.len())])
                .collect();
            let mut out = Vec::new();
            c.scan(&text, &mut out);
            let got: Vec<(usize, usize)> = out.iter().map(|m| (m.start, m.end)).collect();
            assert_eq!(got, with_captures(&reference, &text), "on {text:?}");
            found += got.len();
        }
        assert!(found > 1000, "the random texts hold numbers ({found})");
    }
}
