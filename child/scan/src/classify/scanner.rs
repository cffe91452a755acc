//! Runs classifiers over windows of text and aggregates findings per classifier for
//! the object: the count of matches, the best confidence, the first masked sample and
//! the lines they are on (`line:7`, or `lines:3,17,42` listing the first
//! [`MAX_LINES_LISTED`] lines and how many more). One row per object and classifier
//! keeps the site database small and its writes cheap on dense files; a row per line
//! cost more than the scan itself.
//! Windows overlap (see `extract::stream`); only matches that start inside a window's
//! counted range are counted, so a value on a window boundary is found once.

use std::collections::HashMap;
use std::ops::Range;

use super::candidates::{self, CandidateLine};
use super::{Classifier, ClassifierRef, Match, NAMES};
use crate::newlines;
use meridian_wire::task::NewFinding;

/// Lines named in a finding's location at most.
pub const MAX_LINES_LISTED: usize = 20;

struct Acc {
    finding: NewFinding,
    lines: Vec<u64>,
    /// Distinct lines beyond those listed.
    more: u64,
    last_line: u64,
}

pub struct TextScanner<'a> {
    classifiers: &'a [ClassifierRef],
    object_id: i64,
    scratch: Vec<Match>,
    /// Candidate lines of the current window (reused between windows).
    lines: Vec<CandidateLine>,
    /// Built-in number (`NAMES` index) → index in `classifiers`, when selected.
    built_in: [Option<usize>; NAMES.len()],
    /// Indexes in `classifiers` of the custom classifiers, which see whole windows.
    custom: Vec<usize>,
    /// classifier index → finding so far.
    findings: HashMap<usize, Acc>,
}

impl<'a> TextScanner<'a> {
    pub fn new(classifiers: &'a [ClassifierRef], object_id: i64) -> Self {
        let mut built_in = [None; NAMES.len()];
        let mut custom = Vec::new();
        for (index, c) in classifiers.iter().enumerate() {
            match NAMES.iter().position(|n| *n == c.name()) {
                Some(b) => built_in[b] = Some(index),
                None => custom.push(index),
            }
        }
        TextScanner {
            classifiers,
            object_id,
            scratch: Vec::new(),
            lines: Vec::new(),
            built_in,
            custom,
            findings: HashMap::new(),
        }
    }

    /// Scans all of `text`, whose first line is line `first_line` (1-based).
    pub fn scan(&mut self, text: &str, first_line: u64) {
        self.scan_window(text, 0..text.len(), first_line);
    }

    /// Scans `window` but counts only matches starting in `counted`; `first_line` is
    /// the line number at the window's first byte.
    ///
    /// Built-in classifiers run only on the candidate lines that can concern them
    /// (one pass over the window, `candidates.rs`), those lines copied into one
    /// buffer per classifier. Patterns never cross a newline and context checks read
    /// the match's own line, so a line is classified exactly as in place. Custom
    /// classifiers, which that pass knows nothing about, see the whole window.
    pub fn scan_window(&mut self, window: &str, counted: Range<usize>, first_line: u64) {
        if self.built_in.iter().any(Option::is_some) {
            let mut lines = std::mem::take(&mut self.lines);
            lines.clear();
            candidates::candidate_lines(window.as_bytes(), &mut lines);
            self.scan_lines(window, &lines, &counted, first_line);
            self.lines = lines;
        }
        for i in 0..self.custom.len() {
            self.scan_whole(self.custom[i], window, &counted, first_line);
        }
    }

    /// Runs each built-in over its candidate lines: the lines of one
    /// classifier are copied one after another into one buffer (each with its
    /// newline) and scanned in one call, which costs far less than one call per line.
    fn scan_lines(
        &mut self,
        window: &str,
        lines: &[CandidateLine],
        counted: &Range<usize>,
        first_line: u64,
    ) {
        let mut numbers = Vec::with_capacity(lines.len());
        let (mut line, mut pos) = (first_line, 0usize);
        for l in lines {
            line += newlines(&window.as_bytes()[pos..l.start]);
            pos = l.start;
            numbers.push(line);
        }
        let classifiers = self.classifiers;
        let mut buffer = String::new();
        // (start in `buffer`, start in the window, line number), ascending.
        let mut segments: Vec<(usize, usize, u64)> = Vec::new();
        for b in 0..NAMES.len() {
            let Some(index) = self.built_in[b] else {
                continue;
            };
            buffer.clear();
            segments.clear();
            for (l, number) in lines.iter().zip(&numbers) {
                if l.mask & (1 << b) != 0 {
                    segments.push((buffer.len(), l.start, *number));
                    buffer.push_str(&window[l.start..l.end]);
                    buffer.push('\n');
                }
            }
            if segments.is_empty() {
                continue;
            }
            let c = &classifiers[index];
            self.scratch.clear();
            c.scan(&buffer, &mut self.scratch);
            for m in &self.scratch {
                let i = segments
                    .partition_point(|s| s.0 <= m.start)
                    .saturating_sub(1);
                let (at, origin, number) = segments[i];
                if counted.contains(&(origin + (m.start - at))) {
                    Self::record(
                        &mut self.findings,
                        self.object_id,
                        index,
                        c.as_ref(),
                        &buffer,
                        number,
                        m,
                    );
                }
            }
        }
    }

    /// Runs one classifier over the whole window.
    fn scan_whole(&mut self, index: usize, window: &str, counted: &Range<usize>, first_line: u64) {
        let c = &self.classifiers[index];
        self.scratch.clear();
        c.scan(window, &mut self.scratch);
        self.scratch.retain(|m| counted.contains(&m.start));
        self.scratch.sort_by_key(|m| m.start);
        // Line numbers by one forward pass over the newlines before each match.
        let (mut line, mut pos) = (first_line, 0usize);
        for m in &self.scratch {
            line += newlines(&window.as_bytes()[pos..m.start]);
            pos = m.start;
            Self::record(
                &mut self.findings,
                self.object_id,
                index,
                c.as_ref(),
                window,
                line,
                m,
            );
        }
    }

    /// Counts match `m` of `text`. The first match recorded for a classifier in an
    /// object is the only one masked: its sample is the one the finding keeps.
    fn record(
        findings: &mut HashMap<usize, Acc>,
        object_id: i64,
        index: usize,
        c: &dyn Classifier,
        text: &str,
        line: u64,
        m: &Match,
    ) {
        let acc = findings.entry(index).or_insert_with(|| Acc {
            finding: NewFinding {
                object_id,
                classifier: c.name().to_owned(),
                location: String::new(),
                count: 0,
                masked_sample: c.mask(text.get(m.start..m.end).unwrap_or_default()),
                confidence: m.confidence,
            },
            lines: Vec::new(),
            more: 0,
            last_line: 0,
        });
        acc.finding.count += 1;
        acc.finding.confidence = acc.finding.confidence.max(m.confidence);
        // Windows arrive in order and matches within one in order, so lines only grow.
        if line != acc.last_line {
            acc.last_line = line;
            if acc.lines.len() < MAX_LINES_LISTED {
                acc.lines.push(line);
            } else {
                acc.more += 1;
            }
        }
    }

    /// One finding per classifier that matched, sorted by classifier.
    pub fn finish(self) -> Vec<NewFinding> {
        let mut v: Vec<NewFinding> = self
            .findings
            .into_values()
            .map(|mut a| {
                let list: Vec<String> = a.lines.iter().map(u64::to_string).collect();
                a.finding.location = match (list.len(), a.more) {
                    (1, 0) => format!("line:{}", list[0]),
                    (_, 0) => format!("lines:{}", list.join(",")),
                    (_, more) => format!("lines:{},+{more} more", list.join(",")),
                };
                a.finding
            })
            .collect();
        v.sort_by(|a, b| a.classifier.cmp(&b.classifier));
        v
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
            "mail a@example.com and b@example.org\nnothing here\ncard 4111 1111 1111 1111 ssn 123-45-6789\nc@example.net\n",
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
                ("email", "lines:1,4", 3),
                ("payment_card", "line:3", 1),
                ("us_ssn", "line:3", 1)
            ]
        );
        assert!(f.iter().all(|f| f.object_id == 7));
    }

    #[test]
    fn long_line_lists_are_cut() {
        let cs = built_in();
        let mut s = TextScanner::new(&cs, 1);
        s.scan(&"x@example.com\n".repeat(25), 1);
        let f = s.finish();
        assert_eq!(f[0].count, 25);
        assert!(f[0].location.ends_with(",20,+5 more"), "{}", f[0].location);
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
