//! Telephone numbers in the forms people write them: international (`+` country code,
//! 8–15 digits in groups) and North American (`(415) 555-2671`, `415-555-2671`,
//! `415.555.2671`). A bare run of digits is not taken for a phone number: order and
//! reference numbers look the same. Context words raise the confidence.

use super::pattern::{Pattern, Prefilter};

use super::{Classifier, Match, contains_word, line_around};
use crate::scan::mask;

pub const NAME: &str = "phone_number";

/// What every match contains, per form: `+` and a country digit; `(ddd)`; or the
/// start of the North American `ddd-ddd-dddd` shape with either separator.
pub const TRIGGER: &str = r"\+[1-9]|\([2-9][0-9]{2}\)|[2-9][0-9]{2}[-.][2-9]";

const CONTEXT: &[&str] = &["phone", "tel", "mobile", "cell", "call", "fax"];

pub struct Phone {
    re: Pattern,
}

impl Phone {
    pub fn new() -> Self {
        let re = Pattern::new(
            concat!(
                r"(?:^|[^\w+])(",
                r"\+[1-9][0-9]{0,2}(?:[ .-]?\(?[0-9]{1,4}\)?){2,5}",
                r"|\([2-9][0-9]{2}\) ?[2-9][0-9]{2}-[0-9]{4}",
                r"|(?-u:\b)[2-9][0-9]{2}([-.])[2-9][0-9]{2}[-.][0-9]{4}",
                r")(?-u:\b)"
            ),
            Prefilter::Off,
        )
        .expect("static regex");
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

    fn scan(&self, text: &str, out: &mut Vec<Match>) {
        for c in self.re.captures_iter(text) {
            let Some(m) = c.get(1) else { continue };
            let value = m.as_str();
            // The North American form uses one separator throughout.
            if let Some(sep) = c.get(2)
                && value.matches(sep.as_str()).count() != 2
            {
                continue;
            }
            let digits = value.bytes().filter(u8::is_ascii_digit).count();
            if value.starts_with('+') && !(8..=15).contains(&digits) {
                continue;
            }
            let line = line_around(text, m.start(), m.end());
            let context = CONTEXT.iter().any(|w| contains_word(line, w));
            out.push(Match {
                start: m.start(),
                end: m.end(),
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
}
