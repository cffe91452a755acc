//! JSON Web Tokens: three base64url segments joined by dots whose first segment
//! decodes to a JSON header with an `alg`. The header is not secret, but the token is
//! a credential, so only the header's algorithm shows in the sample.

use super::pattern::{Pattern, Prefilter};

use super::{Classifier, Match};

pub const NAME: &str = "jwt";

pub struct Jwt {
    re: Pattern,
}

impl Jwt {
    pub fn new() -> Self {
        // Segment lengths are bounded so a match stays inside the scan overlap.
        let re = Pattern::new(
            r"(?-u:\b)eyJ[A-Za-z0-9_-]{5,1000}\.eyJ[A-Za-z0-9_-]{5,2000}\.[A-Za-z0-9_-]{0,1000}",
            Prefilter::Literal,
        )
        .expect("static regex");
        Jwt { re }
    }
}

/// Decodes unpadded base64url; `None` on any other character.
fn base64url(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for b in s.bytes() {
        let v = match b {
            b'A'..=b'Z' => b - b'A',
            b'a'..=b'z' => b - b'a' + 26,
            b'0'..=b'9' => b - b'0' + 52,
            b'-' => 62,
            b'_' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

/// The `alg` of a JOSE header, when it is one.
fn header_alg(segment: &str) -> Option<String> {
    let json: serde_json::Value = serde_json::from_slice(&base64url(segment)?).ok()?;
    let alg = json.get("alg")?.as_str()?;
    // Only the short, well-known names are echoed back.
    Some(
        if alg.len() <= 8 && alg.bytes().all(|b| b.is_ascii_alphanumeric()) {
            alg.to_owned()
        } else {
            "?".to_owned()
        },
    )
}

impl Classifier for Jwt {
    fn name(&self) -> &str {
        NAME
    }

    /// The header is decoded again: only the one kept sample pays for it twice.
    fn mask(&self, value: &str) -> String {
        let header = value.split('.').next().unwrap_or_default();
        let alg = header_alg(header).unwrap_or_else(|| "?".to_owned());
        format!("JWT(alg={alg}).****.****")
    }

    fn scan(&self, text: &str, out: &mut Vec<Match>) {
        if !text.contains("eyJ") {
            return;
        }
        // The header is the match up to its first dot (its characters exclude dots):
        // no capturing search, which on this pattern's long counted repetitions cost
        // 12,000 instructions per token.
        for whole in self.re.find_iter(text) {
            let header = whole.as_str().split('.').next().unwrap_or_default();
            if header_alg(header).is_some() {
                out.push(Match {
                    start: whole.start(),
                    end: whole.end(),
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

    const TOKEN: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c";

    #[test]
    fn tokens_with_a_jose_header() {
        let c = Jwt::new();
        let found = scan_one(&c, &format!("Authorization: Bearer {TOKEN}"));
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].masked, "JWT(alg=HS256).****.****");
    }

    #[test]
    fn look_alikes_are_not_tokens() {
        let c = Jwt::new();
        // Not JSON inside, no alg, and plain dotted words.
        assert!(scan_one(&c, "eyJzzzzzzzzz.eyJzzzzzzzz.abc").is_empty());
        assert!(
            scan_one(
                &c,
                "eyJzdWIiOiIxMjM0NTY3ODkwIn0.eyJzdWIiOiIxMjM0NTY3ODkwIn0.x"
            )
            .is_empty()
        );
        assert!(scan_one(&c, "see the docs.example.com page").is_empty());
        assert_eq!(base64url("YWJj"), Some(b"abc".to_vec()));
    }
}
