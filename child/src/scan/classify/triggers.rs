//! Which lines of a window can concern which built-in classifier, found in one fast
//! pass instead of one pass per classifier.
//!
//! Every built-in has a *trigger* (`TRIGGER` beside its own pattern): a short pattern
//! that each of its matches contains. One leftmost-first automaton over all triggers
//! jumps from candidate line to candidate line, stopping at the earliest trigger as
//! ripgrep does with its combined pattern set, so the lines that concern no
//! classifier (most lines of most files) cost one pass of the regex engine's fastest
//! loop. On a candidate line, [`line_mask`] then decides from a few byte counts which
//! classifiers can match there at all (a card needs 13 digits, an e-mail an `@`, …),
//! plus a hand-written check of the phone trigger (`shapes.rs`), and only those run
//! on it.
//!
//! Both steps only need to be *necessary* conditions, never exact: a classifier that
//! runs on a line where it finds nothing costs one short search. An overlapping
//! multi-pattern DFA would tell exactly which triggers fired, but in overlapping mode
//! the counted repetitions of eleven patterns multiply into tens of thousands of DFA
//! states; building them cost more than the scan.

use std::cell::RefCell;
use std::sync::LazyLock;

use memchr::memmem;
use regex_automata::Input;
use regex_automata::hybrid::dfa::{Cache, DFA};
use regex_automata::nfa::thompson;
use regex_automata::util::syntax;

use super::{
    aws, aws_secret, card, contains_word, email, iban, ip, jwt, phone, private_key, shapes, ssn,
};

/// The trigger of each built-in, in the order of [`super::NAMES`].
pub const TRIGGERS: [&str; 11] = [
    email::TRIGGER,
    card::TRIGGER,
    ssn::TRIGGER,
    aws::TRIGGER,
    aws_secret::TRIGGER,
    iban::TRIGGER,
    phone::TRIGGER,
    ip::TRIGGER_V4,
    ip::TRIGGER_V6,
    private_key::TRIGGER,
    jwt::TRIGGER,
];

/// Lazy-DFA state memory per thread, so that the states are built once, not again
/// after every cache clear.
const CACHE_BYTES: usize = 16 << 20;

/// The fast skip: leftmost-first, stops at the earliest trigger; says only *where*.
static FIRST: LazyLock<DFA> = LazyLock::new(|| {
    DFA::builder()
        .configure(DFA::config().cache_capacity(CACHE_BYTES))
        // Byte-oriented: the triggers are ASCII and must not stop at non-ASCII text.
        .syntax(syntax::Config::new().unicode(false).utf8(false))
        .thompson(thompson::Config::new().utf8(false))
        .build_many(&TRIGGERS)
        .expect("static trigger patterns")
});

thread_local! {
    /// The lazy DFA's states, built as the text needs them; one cache per scanning
    /// thread so that states built for one object serve the next. (The raw DFA
    /// rather than `meta::Regex`: the search restarts on every candidate line, and
    /// the meta layer's per-search cost was a tenth of the scan.)
    static CACHE: RefCell<Cache> = RefCell::new(FIRST.create_cache());
}

/// One line of a window where at least one trigger matched: its byte range (without
/// the newline) and a bit per built-in (bit `i` = `NAMES[i]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CandidateLine {
    pub start: usize,
    pub end: usize,
    pub mask: u16,
}

/// Appends the candidate lines of `text` to `out`, in order.
pub fn candidate_lines(text: &[u8], out: &mut Vec<CandidateLine>) {
    CACHE.with(|cache| match cache.try_borrow_mut() {
        Ok(mut cache) => lines_with(&mut cache, text, out),
        // Unreachable (nothing re-enters here), but never worth a panic.
        Err(_) => lines_with(&mut FIRST.create_cache(), text, out),
    })
}

fn lines_with(cache: &mut Cache, text: &[u8], out: &mut Vec<CandidateLine>) {
    let mut at = 0;
    while at < text.len() {
        let input = Input::new(text).range(at..).earliest(true);
        let hit = match FIRST.try_search_fwd(cache, &input) {
            Ok(Some(hit)) => hit,
            Ok(None) => break,
            // The DFA has no quit bytes and no give-up limit, so this cannot happen;
            // if it did, every remaining line is a candidate for every classifier.
            Err(_) => {
                out.push(CandidateLine {
                    start: at,
                    end: text.len(),
                    mask: u16::MAX,
                });
                break;
            }
        };
        // Triggers are never empty, so the match's last byte is `offset - 1`.
        let last = hit.offset().saturating_sub(1).max(at);
        let start = memchr::memrchr(b'\n', &text[at..last]).map_or(at, |i| at + i + 1);
        let end = memchr::memchr(b'\n', &text[last..]).map_or(text.len(), |i| last + i);
        let mask = line_mask(&text[start..end]);
        if mask != 0 {
            out.push(CandidateLine { start, end, mask });
        }
        at = end + 1;
    }
}

static KEY_HEADER: LazyLock<memmem::Finder<'static>> =
    LazyLock::new(|| memmem::Finder::new(b"-----BEGIN "));
static JWT_PAYLOAD: LazyLock<memmem::Finder<'static>> =
    LazyLock::new(|| memmem::Finder::new(b".eyJ"));

/// Bits of each class counter in [`CLASSES`]' packed lanes.
const LANE: u32 = 12;

/// Per byte, a 1 in the lane of its class: digits, upper-case letters, `-`, `.`, `:`.
static CLASSES: [u64; 256] = {
    let mut t = [0u64; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        t[b] = if c.is_ascii_digit() {
            1
        } else if c.is_ascii_uppercase() {
            1 << LANE
        } else if c == b'-' {
            1 << (2 * LANE)
        } else if c == b'.' {
            1 << (3 * LANE)
        } else if c == b':' {
            1 << (4 * LANE)
        } else {
            0
        };
        b += 1;
    }
    t
};

/// Counts digits, upper-case letters, dashes, dots and colons in one pass: one table
/// lookup and one add per byte, five 12-bit counters packed in a `u64`, emptied
/// before they could overflow.
fn class_counts(line: &[u8]) -> [usize; 5] {
    let mut total = [0usize; 5];
    for chunk in line.chunks((1 << LANE) - 1) {
        let packed = chunk
            .iter()
            .fold(0u64, |acc, &b| acc + CLASSES[usize::from(b)]);
        for (i, t) in total.iter_mut().enumerate() {
            *t += ((packed >> (i as u32 * LANE)) & ((1 << LANE) - 1)) as usize;
        }
    }
    total
}

/// Bit `i` set when built-in `NAMES[i]` can match somewhere on `line`: for each, a
/// condition every one of its matches implies (see each classifier's pattern).
pub fn line_mask(line: &[u8]) -> u16 {
    let [digits, upper, dash, dot, colon] = class_counts(line);
    let at = usize::from(memchr::memchr(b'@', line).is_some());
    let has = |finder: &LazyLock<memmem::Finder<'static>>| finder.find(line).is_some();
    let conditions = [
        // e-mail: an `@`.
        at > 0,
        // payment card: 13 to 19 digits.
        digits >= 13,
        // US SSN: ddd-dd-dddd.
        digits >= 9 && dash >= 2,
        // AWS access key id: a 4-letter prefix and 16 more of [A-Z0-9].
        upper >= 4 && upper + digits >= 20,
        // AWS secret key: 40 characters and a context that names `secret`.
        line.len() >= 40 && contains_word(line, b"secret"),
        // IBAN: 2 letters, 2 check digits, at least 11 more of [A-Z0-9].
        upper >= 2 && digits >= 2 && upper + digits >= 15,
        // phone: 8 to 15 digits in every accepted form; its trigger.
        digits >= 8 && shapes::phone(line),
        // IPv4: four dotted groups.
        digits >= 4 && dot >= 3,
        // IPv6: at least two colons.
        colon >= 2,
        // private key block header.
        dash >= 10 && has(&KEY_HEADER),
        // JWT: header, `.`, payload starting `eyJ`.
        dot >= 1 && has(&JWT_PAYLOAD),
    ];
    conditions
        .iter()
        .enumerate()
        .fold(0, |mask, (i, &c)| if c { mask | (1 << i) } else { mask })
}

#[cfg(test)]
mod tests {
    use super::super::{NAMES, built_in};
    use super::*;

    fn lines(text: &str) -> Vec<(usize, usize, Vec<&'static str>)> {
        let mut out = Vec::new();
        candidate_lines(text.as_bytes(), &mut out);
        out.iter()
            .map(|l| {
                let names = (0..NAMES.len())
                    .filter(|i| l.mask & (1 << i) != 0)
                    .map(|i| NAMES[i])
                    .collect();
                (l.start, l.end, names)
            })
            .collect()
    }

    #[test]
    fn triggers_are_aligned_with_names() {
        assert_eq!(TRIGGERS.len(), NAMES.len());
    }

    #[test]
    fn lines_and_the_classifiers_they_concern() {
        let text = "plain prose\nmail a@example.com\nno\ncard 4111 1111 1111 1111 ssn 123-45-6789";
        let got = lines(text);
        assert_eq!(got.len(), 2, "{got:?}");
        assert_eq!(&text[got[0].0..got[0].1], "mail a@example.com");
        assert_eq!(got[0].2, ["email"]);
        assert_eq!(
            &text[got[1].0..got[1].1],
            &text[text.rfind("card").unwrap()..]
        );
        assert!(got[1].2.contains(&"payment_card"), "{:?}", got[1].2);
        assert!(got[1].2.contains(&"us_ssn"), "{:?}", got[1].2);
    }

    /// Overlapping matches: the `1` after the `+` starts a phone's trigger and is the
    /// first of a card trigger's 13 digits; both must be reported.
    #[test]
    fn one_span_can_trigger_several_classifiers() {
        let got = lines("x +1 4111111111111 y");
        assert_eq!(got.len(), 1, "{got:?}");
        assert!(got[0].2.contains(&"phone_number"), "{:?}", got[0].2);
        assert!(got[0].2.contains(&"payment_card"), "{:?}", got[0].2);
    }

    /// The property the scanner relies on: wherever a classifier matches on a line,
    /// its trigger fired on that line. Checked on every example the classifiers'
    /// own tests use and on the forms the corpus generator writes.
    #[test]
    fn every_match_has_its_trigger() {
        let samples = [
            "to: jane.doe@example.com, x.y+tag@sub.example.co.uk",
            "visa 4111 1111 1111 1111, mc 5555-5555-5555-4444, amex 378282246310005",
            "ssn 123-45-6789",
            "AKIAIOSFODNN7EXAMPLE",
            "aws secret = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            "GB82 WEST 1234 5698 7654 32 and DE89370400440532013000",
            "call +1 415 555 2671, (415) 555-2671, 415-555-2671 or +44 20 7946 0958",
            "reach 415.555.2671",
            "host 192.168.10.1 and 2001:db8::8a2e:370:7334 and ::1",
            "-----BEGIN RSA PRIVATE KEY-----",
            "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.abc",
        ];
        for line in samples {
            let got = lines(line);
            let fired: Vec<&str> = got.iter().flat_map(|l| l.2.clone()).collect();
            for c in built_in() {
                let mut found = Vec::new();
                c.scan(line, &mut found);
                if !found.is_empty() {
                    assert!(
                        fired.contains(&c.name()),
                        "{} matched {line:?} but its trigger did not fire",
                        c.name()
                    );
                }
            }
        }
    }
}
