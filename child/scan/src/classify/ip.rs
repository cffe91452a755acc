//! IP addresses. IPv4: four decimal octets 0–255, not part of a longer dotted run
//! (version numbers like `1.2.3.4.5`, OIDs). IPv6: candidates of hex groups and colons
//! that the standard library parses as an address, with at least three groups or a
//! `::`, so that times (`10:30:45`) and `a:b` labels are not taken.

use std::net::Ipv6Addr;
use std::ops::Range;

use super::pattern::{Pattern, Prefilter};

use super::{Classifier, Match};
use crate::mask;

pub const NAME_V4: &str = "ipv4_address";
pub const NAME_V6: &str = "ipv6_address";

/// An address (group 1) between characters that are neither word characters nor dots
/// (one trailing dot allowed: the end of a sentence).
const V4_PATTERN: &str = r"(?:^|[^\w.])((?:[0-9]{1,3}\.){3}[0-9]{1,3})(?:$|[^\w.]|\.(?:$|[^\w]))";

/// An address candidate (group 1) between characters that are neither word
/// characters nor colons.
const V6_PATTERN: &str = r"(?i)(?:^|[^\w:])([0-9a-f]{0,4}(?::[0-9a-f]{0,4}){2,7})(?:$|[^\w:])";

pub struct Ipv4 {
    re: Pattern,
}

impl Ipv4 {
    pub fn new() -> Self {
        let re = Pattern::new(V4_PATTERN, Prefilter::Off).expect("static regex");
        Ipv4 { re }
    }
}

/// At least three groups or a `::` (not a time or an `a:b` label), and an address.
fn v6_valid(v: &str) -> bool {
    let groups = v.split(':').filter(|g| !g.is_empty()).count();
    let plausible = (v.contains("::") && groups >= 2) || groups == 8;
    plausible && v.parse::<Ipv6Addr>().is_ok()
}

fn octets_valid(s: &str) -> bool {
    s.split('.')
        .all(|o| o.parse::<u16>().is_ok_and(|v| v <= 255) && (o.len() == 1 || !o.starts_with('0')))
}

impl Classifier for Ipv4 {
    fn name(&self) -> &str {
        NAME_V4
    }

    fn mask(&self, value: &str) -> String {
        mask::ipv4(value)
    }

    fn scan(&self, text: &str, out: &mut Vec<Match>) {
        if !text.contains('.') {
            return;
        }
        // Matches may share the separator between two addresses, so search from the
        // end of each address rather than the end of the whole match.
        let mut at = 0;
        while let Some(whole) = self.re.find_at(text, at) {
            let Some(m) = address(text, whole.start(), whole.end(), |b| {
                b.is_ascii_digit() || b == b'.'
            }) else {
                break;
            };
            at = m.end;
            if octets_valid(&text[m.clone()]) {
                out.push(Match {
                    start: m.start,
                    end: m.end,
                    confidence: 0.7,
                });
            }
        }
    }
}

pub struct Ipv6 {
    re: Pattern,
}

impl Ipv6 {
    pub fn new() -> Self {
        let re = Pattern::new(V6_PATTERN, Prefilter::Literal).expect("static regex");
        Ipv6 { re }
    }
}

impl Classifier for Ipv6 {
    fn name(&self) -> &str {
        NAME_V6
    }

    fn mask(&self, value: &str) -> String {
        mask::ipv6(value)
    }

    fn scan(&self, text: &str, out: &mut Vec<Match>) {
        if !text.contains(':') {
            return;
        }
        let mut at = 0;
        while let Some(whole) = self.re.find_at(text, at) {
            let Some(m) = address(text, whole.start(), whole.end(), |b| {
                b.is_ascii_hexdigit() || b == b':'
            }) else {
                break;
            };
            at = m.end.max(at + 1);
            if v6_valid(&text[m.clone()]) {
                out.push(Match {
                    start: m.start,
                    end: m.end,
                    confidence: 0.7,
                });
            }
        }
    }
}

/// The address inside a match `start..end` of `(?:^|[^\w…])(address)(?:$|[^\w…]…)`,
/// worked out instead of by a capturing search (which cost most of these classifiers):
/// it starts after the one character before it, which is neither a word character nor
/// one of the address's own (`part`), so the match starts with an address byte only at
/// the very start of the text, where `^` matched; it runs over address bytes for as
/// long as they go, because what follows an address is neither.
fn address(
    text: &str,
    start: usize,
    end: usize,
    part: impl Fn(u8) -> bool,
) -> Option<Range<usize>> {
    let bytes = text.as_bytes();
    let from = match bytes.get(start) {
        Some(&b) if part(b) => start,
        _ => start + text.get(start..)?.chars().next()?.len_utf8(),
    };
    let to = from
        + bytes
            .get(from..end)?
            .iter()
            .take_while(|&&b| part(b))
            .count();
    // An IPv4 match may end with a dot that is not the address's (`1.2.3.4.` then a
    // space): the address ends at its last digit.
    let to = from + text.get(from..to)?.trim_end_matches('.').len();
    (to > from).then_some(from..to)
}

#[cfg(test)]
mod tests {
    use super::super::scan_one;
    use super::*;

    #[test]
    fn ipv4_addresses_but_not_versions() {
        let c = Ipv4::new();
        let found = scan_one(&c, "hosts 10.0.0.1, 192.168.1.20 and 8.8.8.8.");
        assert_eq!(found.len(), 3, "{found:?}");
        assert_eq!(found[1].masked, "192.*.*.*");
        for t in [
            "v1.2.3.4.5",
            "256.1.1.1",
            "1.2.3",
            "01.2.3.4",
            "a1.2.3.4",
            "1.2.3.4x",
        ] {
            assert!(scan_one(&c, t).is_empty(), "{t}");
        }
    }

    #[test]
    fn ipv6_addresses_but_not_times() {
        let c = Ipv6::new();
        let found = scan_one(
            &c,
            "via 2001:db8::1 and fe80:0:0:0:202:b3ff:fe1e:8329, then 2001:0db8:85a3:0000:0000:8a2e:0370:7334",
        );
        assert_eq!(found.len(), 3, "{found:?}");
        for t in [
            "at 10:30:45",
            "a:b:c",
            "std::mem",
            "::",
            "12:00",
            "1:2:3:4:5:6:7:8:9",
        ] {
            assert!(scan_one(&c, t).is_empty(), "{t}: {:?}", scan_one(&c, t));
        }
    }

    /// What the classifiers did with a capturing search, before they worked the
    /// address out from the match: the reference the fast path must equal.
    fn with_captures(re: &regex::Regex, text: &str, v6: bool) -> Vec<(usize, usize)> {
        let (mut at, mut out) = (0, Vec::new());
        while let Some(c) = re.captures_at(text, at) {
            let Some(m) = c.get(1) else { break };
            at = if v6 { m.end().max(at + 1) } else { m.end() };
            let valid = if v6 {
                v6_valid(m.as_str())
            } else {
                octets_valid(m.as_str())
            };
            if valid {
                out.push((m.start(), m.end()));
            }
        }
        out
    }

    #[test]
    fn same_addresses_as_a_capturing_search() {
        use rand::rngs::StdRng;
        use rand::{Rng, SeedableRng};
        const PIECES: &[&str] = &[
            "1", "10", "255", "300", "0", ".", ".", ":", "::", "a", "fe80", "F", "g", " ", "_",
            "é", "—", "\u{a0}", "€", "\n", "-", "1.2.3.4", "2001:db8",
        ];
        let cases: [(&str, Box<dyn Classifier>, bool); 2] = [
            (V4_PATTERN, Box::new(Ipv4::new()), false),
            (V6_PATTERN, Box::new(Ipv6::new()), true),
        ];
        for (pattern, c, v6) in cases {
            let reference = regex::Regex::new(pattern).unwrap();
            let mut rng = StdRng::seed_from_u64(7);
            let (mut found, mut out) = (0, Vec::new());
            for _ in 0..100_000 {
                let n = rng.random_range(1..14);
                let text: String = (0..n)
                    .map(|_| PIECES[rng.random_range(0..PIECES.len())])
                    .collect();
                out.clear();
                c.scan(&text, &mut out);
                let got: Vec<(usize, usize)> = out.iter().map(|m| (m.start, m.end)).collect();
                let want = with_captures(&reference, &text, v6);
                assert_eq!(got, want, "{} on {text:?}", c.name());
                found += got.len();
            }
            assert!(
                found > 1000,
                "{}: the random texts hold addresses ({found})",
                c.name()
            );
        }
    }
}
