//! The built-in classifiers' compiled patterns: the `regex` crate's engine
//! (`regex_automata::meta`, same syntax and semantics as `regex::Regex`) with a choice
//! the `regex` crate does not offer: whether to use a literal prefilter.
//!
//! The engine's default looks for a pattern's possible first bytes with a SIMD
//! prefilter before running its automaton. For a pattern that starts with a digit or a
//! letter class (a card number, an IBAN, a phone number) that prefilter fires on
//! nearly every byte of the lines the classifiers see, and every hit restarts the
//! search: on the card number's lines that cost 2.6 times the automaton alone
//! (measured, docs/performance.md). Patterns that start with a rare literal
//! (`AKIA…`, `-----BEGIN `, `eyJ`) keep it, where it skips most of a line at once, and
//! so do patterns with a literal inside that the engine searches from and extends in
//! both directions (the `@` of an e-mail, the `:` of an IPv6 address): without it they
//! ran up to nine times slower over whole text.

use regex_automata::meta::{self, BuildError};
use regex_automata::util::captures::Captures;
use regex_automata::{Input, Span};

/// Whether a pattern's search starts with a literal prefilter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prefilter {
    /// The pattern holds a rare literal: let the engine search for it first.
    Literal,
    /// The pattern starts with a byte class: run the automaton throughout.
    Off,
}

pub struct Pattern {
    re: meta::Regex,
}

/// A match (or a capture group) in `text`.
#[derive(Debug, Clone, Copy)]
pub struct Found<'t> {
    text: &'t str,
    span: Span,
}

impl<'t> Found<'t> {
    pub fn start(&self) -> usize {
        self.span.start
    }

    pub fn end(&self) -> usize {
        self.span.end
    }

    pub fn as_str(&self) -> &'t str {
        // The engine matches UTF-8 text on character boundaries; never worth a panic.
        self.text.get(self.span.range()).unwrap_or_default()
    }
}

/// The groups of one match.
pub struct Groups<'t> {
    text: &'t str,
    caps: Captures,
}

impl<'t> Groups<'t> {
    /// Group `i` (0 is the whole match), when it took part in the match.
    pub fn get(&self, i: usize) -> Option<Found<'t>> {
        self.caps.get_group(i).map(|span| Found {
            text: self.text,
            span,
        })
    }
}

impl Pattern {
    pub fn new(pattern: &str, prefilter: Prefilter) -> Result<Pattern, Box<BuildError>> {
        let re = meta::Regex::builder()
            .configure(meta::Config::new().auto_prefilter(prefilter == Prefilter::Literal))
            .build(pattern)
            .map_err(Box::new)?;
        Ok(Pattern { re })
    }

    /// Successive non-overlapping matches, leftmost first.
    pub fn find_iter<'t>(&'t self, text: &'t str) -> impl Iterator<Item = Found<'t>> + 't {
        self.re.find_iter(text).map(move |m| Found {
            text,
            span: m.span(),
        })
    }

    /// The first match at or after byte `at` (looking behind `at` for context).
    pub fn find_at<'t>(&self, text: &'t str, at: usize) -> Option<Found<'t>> {
        self.re
            .search(&Input::new(text).range(at..))
            .map(|m| Found {
                text,
                span: m.span(),
            })
    }

    /// The first match at or after byte `at` (looking behind `at` for context, as the
    /// `regex` crate's `captures_at` does).
    pub fn captures_at<'t>(&self, text: &'t str, at: usize) -> Option<Groups<'t>> {
        let mut caps = self.re.create_captures();
        self.re
            .search_captures(&Input::new(text).range(at..), &mut caps);
        caps.is_match().then_some(Groups { text, caps })
    }
}

#[cfg(test)]
mod tests {
    use std::ops::Range;

    use super::*;

    impl Found<'_> {
        fn range(&self) -> Range<usize> {
            self.start()..self.end()
        }
    }

    /// Both settings find exactly what the `regex` crate finds, groups included.
    #[test]
    fn same_matches_as_the_regex_crate() {
        let text = "a 4111 1111 1111 1111 b x@y.io 12-34 (415) 555-2671 é 1.2.3.4";
        for p in [
            r"(?-u:\b)[0-9](?:[ -]?[0-9]){12,18}(?-u:\b)",
            r"(?:^|[^\w.])((?:[0-9]{1,3}\.){3}[0-9]{1,3})(?:$|[^\w.])",
            r"\(([2-9][0-9]{2})\) ?[2-9][0-9]{2}-[0-9]{4}",
        ] {
            let reference = regex::Regex::new(p).unwrap();
            let want: Vec<(Range<usize>, Option<Range<usize>>)> = reference
                .captures_iter(text)
                .map(|c| (c.get(0).unwrap().range(), c.get(1).map(|g| g.range())))
                .collect();
            assert!(!want.is_empty(), "{p}");
            for prefilter in [Prefilter::Literal, Prefilter::Off] {
                let ours = Pattern::new(p, prefilter).unwrap();
                let got: Vec<(Range<usize>, Option<Range<usize>>)> = ours
                    .find_iter(text)
                    .map(|m| {
                        let groups = ours.captures_at(text, m.start()).unwrap();
                        assert_eq!(groups.get(0).unwrap().range(), m.range());
                        (m.range(), groups.get(1).map(|g| g.range()))
                    })
                    .collect();
                assert_eq!(got, want, "{p} {prefilter:?}");
            }
        }
    }
}
