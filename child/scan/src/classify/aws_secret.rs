//! AWS secret access keys: 40 characters of base64 alphabet. Such strings are common
//! (hashes, tokens), so one is reported only when its line also names it: `aws`
//! together with `secret`, or `aws_secret_access_key` / `SecretAccessKey` spelled out.
//! A 40-character hex string (a SHA-1) is never taken: real keys mix cases and digits.

use super::pattern::{Pattern, Prefilter};

use super::{Classifier, Match, contains_word, line_around};
use crate::mask;

pub const NAME: &str = "aws_secret_access_key";

pub struct AwsSecretAccessKey {
    re: Pattern,
}

impl AwsSecretAccessKey {
    pub fn new() -> Self {
        let re = Pattern::new(r"[A-Za-z0-9/+]{40,}", Prefilter::Off).expect("static regex");
        AwsSecretAccessKey { re }
    }
}

fn has_context(line: &str) -> bool {
    contains_word(line, "secret_access_key")
        || contains_word(line, "secretaccesskey")
        || contains_word(line, "secret access key")
        || (contains_word(line, "aws") && contains_word(line, "secret"))
}

fn mixed(value: &str) -> bool {
    value.bytes().any(|b| b.is_ascii_uppercase())
        && value.bytes().any(|b| b.is_ascii_lowercase())
        && value.bytes().any(|b| b.is_ascii_digit())
}

impl Classifier for AwsSecretAccessKey {
    fn name(&self) -> &str {
        NAME
    }

    fn mask(&self, value: &str) -> String {
        mask::secret(value)
    }

    fn scan(&self, text: &str, out: &mut Vec<Match>) {
        for m in self.re.find_iter(text) {
            // Exactly 40: a longer run is some other blob (a key body, a hash).
            let v = m.as_str();
            if v.len() != 40 || !mixed(v) {
                continue;
            }
            if has_context(line_around(text, m.start(), m.end())) {
                out.push(Match {
                    start: m.start(),
                    end: m.end(),
                    confidence: 0.9,
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::scan_one;
    use super::*;

    const KEY: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

    #[test]
    fn found_only_with_context() {
        let c = AwsSecretAccessKey::new();
        assert_eq!(
            scan_one(&c, &format!("aws_secret_access_key = {KEY}")).len(),
            1
        );
        assert_eq!(scan_one(&c, &format!("AWS secret: {KEY}")).len(), 1);
        assert!(scan_one(&c, &format!("token {KEY}")).is_empty());
        assert!(scan_one(&c, &format!("aws_secret_access_key\n{KEY}")).is_empty());
    }

    #[test]
    fn hashes_and_longer_blobs_are_not_keys() {
        let c = AwsSecretAccessKey::new();
        let sha1 = "9fceb02d0ae598e95dc970b74767f19372d61af8";
        assert!(scan_one(&c, &format!("aws secret {sha1}")).is_empty());
        assert!(scan_one(&c, &format!("aws secret {KEY}X")).is_empty());
    }
}
