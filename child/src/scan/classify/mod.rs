//! Classifiers: each finds one kind of sensitive value in a line of text and returns
//! masked matches. Validation (Luhn, SSN area rules) happens here so that findings
//! are few and right.

mod aws;
mod card;
mod email;
mod ssn;

use std::collections::HashMap;
use std::sync::LazyLock;

use crate::store::NewFinding;

/// One match: its masked form and how sure the classifier is.
#[derive(Debug, Clone, PartialEq)]
pub struct Match {
    pub masked: String,
    pub confidence: f64,
}

pub trait Classifier: Send + Sync {
    /// The name in job options, findings and status.
    fn name(&self) -> &'static str;

    /// Appends the matches in `line`.
    fn scan(&self, line: &str, out: &mut Vec<Match>);
}

/// Names of the built-in classifiers.
pub const NAMES: &[&str] = &[email::NAME, card::NAME, ssn::NAME, aws::NAME];

/// Every built-in classifier, compiled once per process: regex compilation costs
/// more than scanning a small file.
static ALL: LazyLock<Vec<Box<dyn Classifier>>> = LazyLock::new(|| {
    vec![
        Box::new(email::Email::new()),
        Box::new(card::PaymentCard::new()),
        Box::new(ssn::UsSsn::new()),
        Box::new(aws::AwsAccessKeyId::new()),
    ]
});

/// The classifiers named in `names`, or all when `None`.
pub fn select(names: Option<&[String]>) -> Vec<&'static dyn Classifier> {
    ALL.iter()
        .map(|c| c.as_ref())
        .filter(|c| names.is_none_or(|names| names.iter().any(|n| n == c.name())))
        .collect()
}

/// Runs `classifiers` over text line by line and aggregates findings per
/// (classifier, line): the count of matches and the first masked sample.
pub struct LineScanner<'a> {
    classifiers: &'a [&'static dyn Classifier],
    object_id: i64,
    line: u64,
    scratch: Vec<Match>,
    findings: HashMap<(&'static str, u64), NewFinding>,
}

impl<'a> LineScanner<'a> {
    pub fn new(classifiers: &'a [&'static dyn Classifier], object_id: i64) -> Self {
        LineScanner {
            classifiers,
            object_id,
            line: 0,
            scratch: Vec::new(),
            findings: HashMap::new(),
        }
    }

    /// Scans the next line (1-based numbering).
    pub fn push_line(&mut self, text: &str) {
        self.line += 1;
        for c in self.classifiers.iter() {
            self.scratch.clear();
            c.scan(text, &mut self.scratch);
            if self.scratch.is_empty() {
                continue;
            }
            let count = self.scratch.len() as i64;
            let best = self
                .scratch
                .iter()
                .map(|m| m.confidence)
                .fold(0.0, f64::max);
            let first = self.scratch[0].masked.clone();
            let entry = self
                .findings
                .entry((c.name(), self.line))
                .or_insert_with(|| NewFinding {
                    object_id: self.object_id,
                    classifier: c.name().to_owned(),
                    location: format!("line:{}", self.line),
                    count: 0,
                    masked_sample: first,
                    confidence: best,
                });
            entry.count += count;
        }
    }

    pub fn finish(self) -> Vec<NewFinding> {
        let mut v: Vec<NewFinding> = self.findings.into_values().collect();
        v.sort_by(|a, b| {
            (a.classifier.as_str(), &a.location).cmp(&(b.classifier.as_str(), &b.location))
        });
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aggregates_per_line_and_classifier() {
        let cs = select(None);
        let mut s = LineScanner::new(&cs, 7);
        s.push_line("mail a@example.com and b@example.org");
        s.push_line("nothing here");
        s.push_line("card 4111 1111 1111 1111 ssn 123-45-6789");
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
    fn selection_by_name() {
        let names = vec!["us_ssn".to_owned()];
        let cs = select(Some(&names));
        assert_eq!(cs.len(), 1);
        assert_eq!(cs[0].name(), "us_ssn");
    }
}
