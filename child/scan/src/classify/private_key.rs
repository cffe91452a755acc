//! Private-key blocks in PEM form (`-----BEGIN RSA PRIVATE KEY-----`, `… EC …`,
//! `… OPENSSH …`, `… ENCRYPTED …`, plain PKCS#8). One finding per block, at the line
//! of its header; the key material itself is never looked at.

use super::pattern::{Pattern, Prefilter};

use super::{Classifier, Match};

pub const NAME: &str = "private_key";

pub struct PrivateKey {
    re: Pattern,
}

impl PrivateKey {
    pub fn new() -> Self {
        let re = Pattern::new(
            r"-----BEGIN (?:[A-Z0-9]+ ){0,3}PRIVATE KEY-----",
            Prefilter::Literal,
        )
        .expect("static regex");
        PrivateKey { re }
    }
}

impl Classifier for PrivateKey {
    fn name(&self) -> &str {
        NAME
    }

    fn mask(&self, value: &str) -> String {
        let kind = value
            .strip_prefix("-----BEGIN ")
            .and_then(|v| v.strip_suffix("PRIVATE KEY-----"))
            .unwrap_or_default();
        format!("-----BEGIN {kind}PRIVATE KEY----- ****")
    }

    fn scan(&self, text: &str, out: &mut Vec<Match>) {
        if !text.contains("-----BEGIN ") {
            return;
        }
        for whole in self.re.find_iter(text) {
            out.push(Match {
                start: whole.start(),
                end: whole.end(),
                confidence: 0.99,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::scan_one;
    use super::*;

    #[test]
    fn headers_of_private_keys_only() {
        let c = PrivateKey::new();
        let text = "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA\n-----END RSA PRIVATE KEY-----\n\
                    -----BEGIN PRIVATE KEY-----\nabc\n-----END PRIVATE KEY-----\n\
                    -----BEGIN PUBLIC KEY-----\n-----BEGIN CERTIFICATE-----\n";
        let found = scan_one(&c, text);
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].masked, "-----BEGIN RSA PRIVATE KEY----- ****");
        assert!(scan_one(&c, "the private key is in the vault").is_empty());
    }
}
