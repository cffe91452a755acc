//! US Social Security numbers in the `AAA-GG-SSSS` form, excluding numbers the SSA
//! never issues: area 000, 666 or 900–999, group 00, serial 0000.

use super::pattern::{Pattern, Prefilter};

use super::{Classifier, Match};
use crate::mask;

pub const NAME: &str = "us_ssn";

pub struct UsSsn {
    re: Pattern,
}

impl UsSsn {
    pub fn new() -> Self {
        let re = Pattern::new(
            r"(?-u:\b)[0-9]{3}-[0-9]{2}-[0-9]{4}(?-u:\b)",
            Prefilter::Off,
        )
        .expect("static regex");
        UsSsn { re }
    }
}

fn issuable(area: u32, group: u32, serial: u32) -> bool {
    area != 0 && area != 666 && area < 900 && group != 0 && serial != 0
}

impl Classifier for UsSsn {
    fn name(&self) -> &str {
        NAME
    }

    fn mask(&self, value: &str) -> String {
        mask::ssn(value)
    }

    fn scan(&self, text: &str, out: &mut Vec<Match>) {
        if !text.contains('-') {
            return;
        }
        // The groups sit at fixed offsets of `ddd-dd-dddd`: slicing them is exact and
        // costs nothing, where a capturing search costs a second engine per match.
        for whole in self.re.find_iter(text) {
            let value = whole.as_str();
            let part = |r: std::ops::Range<usize>| {
                value
                    .get(r)
                    .and_then(|p| p.parse::<u32>().ok())
                    .unwrap_or(0)
            };
            if issuable(part(0..3), part(4..6), part(7..11)) {
                out.push(Match {
                    start: whole.start(),
                    end: whole.end(),
                    confidence: 0.8,
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excludes_never_issued_numbers() {
        let out = super::super::scan_one(
            &UsSsn::new(),
            "123-45-6789 000-12-3456 666-12-3456 912-34-5678 123-00-4567 123-45-0000",
        );
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].masked, "***-**-6789");
    }
}
