//! Runs classifiers over windows of text and aggregates findings per (classifier,
//! line): the count of matches, the best confidence and the first masked sample.
//! Windows overlap (see `extract::stream`); only matches that start inside a window's
//! counted range are counted, so a value on a window boundary is found once.

use std::collections::HashMap;
use std::ops::Range;

use super::{ClassifierRef, Match};
use crate::store::NewFinding;

pub struct TextScanner<'a> {
    classifiers: &'a [ClassifierRef],
    object_id: i64,
    scratch: Vec<Match>,
    /// (classifier index, line) → finding.
    findings: HashMap<(usize, u64), NewFinding>,
}

impl<'a> TextScanner<'a> {
    pub fn new(classifiers: &'a [ClassifierRef], object_id: i64) -> Self {
        TextScanner {
            classifiers,
            object_id,
            scratch: Vec::new(),
            findings: HashMap::new(),
        }
    }

    /// Scans all of `text`, whose first line is line `first_line` (1-based).
    pub fn scan(&mut self, text: &str, first_line: u64) {
        self.scan_window(text, 0..text.len(), first_line);
    }

    /// Scans `window` but counts only matches starting in `counted`; `first_line` is
    /// the line number at the window's first byte.
    pub fn scan_window(&mut self, window: &str, counted: Range<usize>, first_line: u64) {
        for (index, c) in self.classifiers.iter().enumerate() {
            self.scratch.clear();
            c.scan(window, &mut self.scratch);
            self.scratch.retain(|m| counted.contains(&m.start));
            if self.scratch.is_empty() {
                continue;
            }
            self.scratch.sort_by_key(|m| m.start);
            // Line numbers by one forward pass over the newlines before each match.
            let (mut line, mut pos) = (first_line, 0usize);
            for m in self.scratch.drain(..) {
                line += window.as_bytes()[pos..m.start]
                    .iter()
                    .filter(|b| **b == b'\n')
                    .count() as u64;
                pos = m.start;
                let entry = self
                    .findings
                    .entry((index, line))
                    .or_insert_with(|| NewFinding {
                        object_id: self.object_id,
                        classifier: c.name().to_owned(),
                        location: format!("line:{line}"),
                        count: 0,
                        masked_sample: m.masked.clone(),
                        confidence: m.confidence,
                    });
                entry.count += 1;
                entry.confidence = entry.confidence.max(m.confidence);
            }
        }
    }

    /// Findings sorted by classifier then line.
    pub fn finish(self) -> Vec<NewFinding> {
        let mut v: Vec<((usize, u64), NewFinding)> = self.findings.into_iter().collect();
        v.sort_by(|a, b| (a.1.classifier.as_str(), a.0.1).cmp(&(b.1.classifier.as_str(), b.0.1)));
        v.into_iter().map(|(_, f)| f).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::super::built_in;
    use super::*;

    #[test]
    fn aggregates_per_line_and_classifier() {
        let cs = built_in();
        let mut s = TextScanner::new(&cs, 7);
        s.scan(
            "mail a@example.com and b@example.org\nnothing here\ncard 4111 1111 1111 1111 ssn 123-45-6789\n",
            1,
        );
        let f = s.finish();
        let summary: Vec<(&str, &str, i64)> = f
            .iter()
            .map(|f| (f.classifier.as_str(), f.location.as_str(), f.count))
            .collect();
        assert_eq!(
            summary,
            [
                ("email", "line:1", 2),
                ("payment_card", "line:3", 1),
                ("us_ssn", "line:3", 1)
            ]
        );
        assert!(f.iter().all(|f| f.object_id == 7));
    }

    #[test]
    fn only_matches_starting_in_the_counted_range_count() {
        let cs = built_in();
        let mut s = TextScanner::new(&cs, 1);
        let w = "x a@example.com y b@example.com";
        let second = w.rfind("b@").unwrap();
        s.scan_window(w, second..w.len(), 5);
        let f = s.finish();
        assert_eq!(f.len(), 1);
        assert_eq!((f[0].count, f[0].location.as_str()), (1, "line:5"));
    }
}
