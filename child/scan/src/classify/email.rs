//! E-mail addresses.

use super::pattern::{Pattern, Prefilter};

use super::{Classifier, Match};
use crate::mask;

pub const NAME: &str = "email";

pub struct Email {
    re: Pattern,
}

impl Email {
    pub fn new() -> Self {
        // Local part, @, dotted domain with a 2+ letter TLD. Deliberately plain: RFC
        // 5322 allows far more, but those forms are rare in documents and noisy to match.
        let re = Pattern::new(r"(?i)(?-u:\b)[a-z0-9][a-z0-9._%+-]{0,63}@(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,24}(?-u:\b)", Prefilter::Literal)
            .expect("static regex");
        Email { re }
    }
}

impl Classifier for Email {
    fn name(&self) -> &str {
        NAME
    }

    fn mask(&self, value: &str) -> String {
        mask::email(value)
    }

    fn scan(&self, text: &str, out: &mut Vec<Match>) {
        if !text.contains('@') {
            return;
        }
        out.extend(self.re.find_iter(text).map(|m| Match {
            start: m.start(),
            end: m.end(),
            confidence: 0.9,
        }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_addresses_not_handles() {
        let out = super::super::scan_one(&Email::new(), "to: jane.doe@example.com, @handle, x@y");
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].masked, "j***@example.com");
    }
}
