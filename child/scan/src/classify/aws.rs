//! AWS access key ids: a four-letter type prefix and sixteen upper-case alphanumeric
//! characters (`AKIA…` long-term, `ASIA…` temporary).

use super::pattern::{Pattern, Prefilter};

use super::{Classifier, Match};
use crate::mask;

pub const NAME: &str = "aws_access_key_id";

pub struct AwsAccessKeyId {
    re: Pattern,
}

impl AwsAccessKeyId {
    pub fn new() -> Self {
        let re = Pattern::new(
            r"(?-u:\b)(?:AKIA|ASIA|ABIA|ACCA|AIDA|AROA|AGPA|ANPA|ANVA|APKA)[A-Z0-9]{16}(?-u:\b)",
            Prefilter::Literal,
        )
        .expect("static regex");
        AwsAccessKeyId { re }
    }
}

impl Classifier for AwsAccessKeyId {
    fn name(&self) -> &str {
        NAME
    }

    fn mask(&self, value: &str) -> String {
        mask::aws_key_id(value)
    }

    fn scan(&self, text: &str, out: &mut Vec<Match>) {
        if !text.contains('A') {
            return;
        }
        out.extend(self.re.find_iter(text).map(|m| Match {
            start: m.start(),
            end: m.end(),
            confidence: 0.95,
        }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_key_ids_only() {
        let out = super::super::scan_one(
            &AwsAccessKeyId::new(),
            "key=AKIAIOSFODNN7EXAMPLE other=AKIAshort XAKIAIOSFODNN7EXAMPLEX",
        );
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].masked, "AKIA****************");
    }
}
