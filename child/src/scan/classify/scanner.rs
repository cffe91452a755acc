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
use std::sync::LazyLock;

use regex::Regex;

use super::{ClassifierRef, Match, NAMES};
use crate::store::NewFinding;

/// Something every built-in classifier's match needs on its line: an `@` (e-mail), a
/// digit (cards, SSNs, IBANs, phones, IPv4), `secret` (the AWS secret key's required
/// context), a key id prefix, `-----BEGIN `, `eyJ` (JWT), or two colons with hex
/// between (IPv6). A line without any of these cannot hold a built-in finding.
static PREFILTER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(concat!(
        r"@|[0-9]|(?i:secret)|-----BEGIN |eyJ",
        r"|AKIA|ASIA|ABIA|ACCA|AIDA|AROA|AGPA|ANPA|ANVA|APKA",
        r"|(?i:[0-9a-f]?:[0-9a-f]{0,4}:)"
    ))
    .expect("static regex")
});

fn newlines(b: &[u8]) -> u64 {
    b.iter().filter(|c| **c == b'\n').count() as u64
}

/// The candidate lines of a window, one after another, and where each came from.
struct Compact {
    text: String,
    /// (start in `text`, start in the window, line number), ascending.
    segments: Vec<(usize, usize, u64)>,
}

impl Compact {
    fn new(window: &str, first_line: u64) -> Self {
        let mut text = String::new();
        let mut segments = Vec::new();
        let (mut pos, mut line) = (0usize, first_line);
        while pos < window.len() {
            let Some(m) = PREFILTER.find_at(window, pos) else {
                break;
            };
            // `pos` is a line start, so the candidate line starts at or after it.
            let start = window[pos..m.start()]
                .rfind('\n')
                .map_or(pos, |i| pos + i + 1);
            line += newlines(&window.as_bytes()[pos..start]);
            let end = window[m.end()..]
                .find('\n')
                .map_or(window.len(), |i| m.end() + i);
            segments.push((text.len(), start, line));
            text.push_str(&window[start..end]);
            text.push('\n');
            line += 1;
            pos = end + 1;
        }
        Compact { text, segments }
    }

    /// The window offset and line of offset `at` in `text`.
    fn locate(&self, at: usize) -> (usize, u64) {
        let i = self
            .segments
            .partition_point(|s| s.0 <= at)
            .saturating_sub(1);
        match self.segments.get(i) {
            Some((c, o, line)) => (o + (at - c), *line),
            None => (at, 0),
        }
    }
}

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
    /// classifier index → finding so far.
    findings: HashMap<usize, Acc>,
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
    ///
    /// Built-in classifiers run once over the window's *candidate lines* only: the
    /// lines where [`PREFILTER`] (a superset of every built-in pattern's necessary
    /// characters) matches, copied into one buffer with their newlines. Patterns never
    /// cross a newline, so each line is classified exactly as in place; the rest of
    /// the text costs one fast pass instead of one pass per classifier. Custom
    /// classifiers, which the prefilter knows nothing about, see the whole window.
    pub fn scan_window(&mut self, window: &str, counted: Range<usize>, first_line: u64) {
        let mut compact: Option<Compact> = None;
        for index in 0..self.classifiers.len() {
            let c = self.classifiers[index].clone();
            self.scratch.clear();
            if NAMES.contains(&c.name()) {
                let cmp = compact.get_or_insert_with(|| Compact::new(window, first_line));
                c.scan(&cmp.text, &mut self.scratch);
                for m in self.scratch.drain(..) {
                    let (orig, line) = cmp.locate(m.start);
                    if counted.contains(&orig) {
                        Self::record(
                            &mut self.findings,
                            self.object_id,
                            index,
                            c.name(),
                            line,
                            &m,
                        );
                    }
                }
                continue;
            }
            c.scan(window, &mut self.scratch);
            self.scratch.retain(|m| counted.contains(&m.start));
            self.scratch.sort_by_key(|m| m.start);
            // Line numbers by one forward pass over the newlines before each match.
            let (mut line, mut pos) = (first_line, 0usize);
            for m in self.scratch.drain(..) {
                line += newlines(&window.as_bytes()[pos..m.start]);
                pos = m.start;
                Self::record(
                    &mut self.findings,
                    self.object_id,
                    index,
                    c.name(),
                    line,
                    &m,
                );
            }
        }
    }

    fn record(
        findings: &mut HashMap<usize, Acc>,
        object_id: i64,
        index: usize,
        name: &str,
        line: u64,
        m: &Match,
    ) {
        let acc = findings.entry(index).or_insert_with(|| Acc {
            finding: NewFinding {
                object_id,
                classifier: name.to_owned(),
                location: String::new(),
                count: 0,
                masked_sample: m.masked.clone(),
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
