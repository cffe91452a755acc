//! IP addresses. IPv4: four decimal octets 0–255, not part of a longer dotted run
//! (version numbers like `1.2.3.4.5`, OIDs). IPv6: candidates of hex groups and colons
//! that the standard library parses as an address, with at least three groups or a
//! `::`, so that times (`10:30:45`) and `a:b` labels are not taken.

use std::net::Ipv6Addr;

use super::pattern::{Pattern, Prefilter};

use super::{Classifier, Match};
use crate::scan::mask;

pub const NAME_V4: &str = "ipv4_address";
pub const NAME_V6: &str = "ipv6_address";

/// What every IPv4 match contains: four dotted groups of digits.
pub const TRIGGER_V4: &str = r"[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]";
/// What every IPv6 match contains: two colons with at most four hex digits between.
pub const TRIGGER_V6: &str = r":[0-9a-fA-F]{0,4}:";

pub struct Ipv4 {
    re: Pattern,
}

impl Ipv4 {
    pub fn new() -> Self {
        let re = Pattern::new(
            r"(?:^|[^\w.])((?:[0-9]{1,3}\.){3}[0-9]{1,3})(?:$|[^\w.]|\.(?:$|[^\w]))",
            Prefilter::Off,
        )
        .expect("static regex");
        Ipv4 { re }
    }
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
        // Captures may share the separator between two addresses, so search from
        // the end of each address rather than the end of the whole match.
        let mut at = 0;
        while let Some(c) = self.re.captures_at(text, at) {
            let Some(m) = c.get(1) else { break };
            at = m.end();
            if octets_valid(m.as_str()) {
                out.push(Match {
                    start: m.start(),
                    end: m.end(),
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
        let re = Pattern::new(
            r"(?i)(?:^|[^\w:])([0-9a-f]{0,4}(?::[0-9a-f]{0,4}){2,7})(?:$|[^\w:])",
            Prefilter::Off,
        )
        .expect("static regex");
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
        while let Some(c) = self.re.captures_at(text, at) {
            let Some(m) = c.get(1) else { break };
            at = m.end().max(at + 1);
            let v = m.as_str();
            let groups = v.split(':').filter(|g| !g.is_empty()).count();
            let plausible = (v.contains("::") && groups >= 2) || groups == 8;
            if plausible && v.parse::<Ipv6Addr>().is_ok() {
                out.push(Match {
                    start: m.start(),
                    end: m.end(),
                    confidence: 0.7,
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
}
