//! Which lines of a window can concern which built-in classifier, found in one fast
//! pass instead of one pass per classifier.
//!
//! For each line, [`line_mask`] counts six byte classes (digits, upper-case letters,
//! `-`, `.`, `:`, `@`) in one loop the compiler vectorises, and decides from the
//! counts which classifiers can match there at all (a card needs 13 digits, an e-mail
//! an `@`, …); a hand-written check of the phone number's shapes (`shapes.rs`) and a
//! look for the two rare literals of private keys and JWTs follow when the counts let
//! a line through. Only the classifiers a line concerns run on it, and the lines that
//! concern none (most lines of most files) cost the count alone. The one condition
//! counts cannot give, the word `secret` on an AWS secret key's line, comes from one
//! literal search over the whole window.
//!
//! The conditions only need to be *necessary*, never exact: a classifier that runs on
//! a line where it finds nothing costs one short search. Until the fifth round a lazy
//! DFA over a short "trigger" pattern per classifier chose the lines first; it ran at
//! half this pass's speed and spared the classifiers 7 % of their runs
//! (docs/performance.md).

use std::sync::LazyLock;

use memchr::memmem;
use regex_automata::meta;
use regex_automata::util::syntax;

use super::shapes;

/// The word an AWS secret key's line must hold, in any case (ASCII only, as
/// `contains_word` compares, which the tests use for a line on its own).
static SECRET: LazyLock<meta::Regex> = LazyLock::new(|| {
    meta::Regex::builder()
        .syntax(syntax::Config::new().unicode(false).utf8(false))
        .build("(?i)secret")
        .expect("static pattern")
});

/// One line of a window that can concern at least one built-in: its byte range
/// (without the newline) and a bit per built-in (bit `i` = `NAMES[i]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CandidateLine {
    pub start: usize,
    pub end: usize,
    pub mask: u16,
}

/// Appends the candidate lines of `text` to `out`, in order.
pub fn candidate_lines(text: &[u8], out: &mut Vec<CandidateLine>) {
    let mut secrets = SECRET.find_iter(text).map(|m| m.start()).peekable();
    let mut start = 0;
    for end in memchr::memchr_iter(b'\n', text).chain(std::iter::once(text.len())) {
        // A match of `secret` holds no newline: it is on the line where it starts.
        while secrets.next_if(|&s| s < start).is_some() {}
        let secret = secrets.peek().is_some_and(|&s| s < end);
        let mask = line_mask(&text[start..end], secret);
        if mask != 0 {
            out.push(CandidateLine { start, end, mask });
        }
        start = end + 1;
    }
}

static KEY_HEADER: LazyLock<memmem::Finder<'static>> =
    LazyLock::new(|| memmem::Finder::new(b"-----BEGIN "));
static JWT_PAYLOAD: LazyLock<memmem::Finder<'static>> =
    LazyLock::new(|| memmem::Finder::new(b".eyJ"));

/// Bytes counted per step: one SSE2 register.
const BLOCK: usize = 16;

/// Per class, a byte counter per position of a block.
type Lanes = [[u8; BLOCK]; 6];

/// Counts the classes of one block into `lanes`: fixed-size, branch-free, so that the
/// compiler turns each class into a few vector instructions.
#[inline(always)]
fn add_block(lanes: &mut Lanes, block: &[u8; BLOCK]) {
    for (i, &b) in block.iter().enumerate() {
        lanes[0][i] += u8::from(b.wrapping_sub(b'0') < 10);
        lanes[1][i] += u8::from(b.wrapping_sub(b'A') < 26);
        lanes[2][i] += u8::from(b == b'-');
        lanes[3][i] += u8::from(b == b'.');
        lanes[4][i] += u8::from(b == b':');
        lanes[5][i] += u8::from(b == b'@');
    }
}

/// The sum of a lane's 16 byte counters, eight at a time in a `u64`: neighbouring
/// bytes added into 16-bit fields, the four fields summed by one multiplication (a
/// byte at a time, this cost more than counting a 60-byte line).
fn lane_sum(lane: &[u8; BLOCK]) -> usize {
    const LOW_BYTES: u64 = 0x00ff_00ff_00ff_00ff;
    let half = |bytes: &[u8]| u64::from_le_bytes(bytes.try_into().unwrap_or([0; 8]));
    let pairs = |v: u64| (v & LOW_BYTES) + ((v >> 8) & LOW_BYTES);
    // Four 16-bit fields of at most 4 × 255: their sum fits the top field.
    let fields = pairs(half(&lane[..8])) + pairs(half(&lane[8..]));
    (fields.wrapping_mul(0x0001_0001_0001_0001) >> 48) as usize
}

/// Adds the lanes to `total` and empties them.
fn flush(lanes: &mut Lanes, total: &mut [usize; 6]) {
    for (t, lane) in total.iter_mut().zip(lanes.iter_mut()) {
        *t += lane_sum(lane);
        *lane = [0; BLOCK];
    }
}

/// Counts the classes in one pass, a block at a time; the last, partial block is
/// padded with zero bytes, which are in no class (a byte-at-a-time tail cost more than
/// the blocks on lines of 60 bytes). Lanes are emptied before they could overflow.
/// Returns the counts of digits, upper-case letters, `-`, `.`, `:` and `@`.
fn counts(line: &[u8]) -> [usize; 6] {
    let mut total = [0usize; 6];
    let mut lanes: Lanes = [[0; BLOCK]; 6];
    let mut blocks = line.chunks_exact(BLOCK);
    for (n, block) in blocks.by_ref().enumerate() {
        add_block(&mut lanes, block.try_into().unwrap_or(&[0; BLOCK]));
        if n % 255 == 254 {
            flush(&mut lanes, &mut total);
        }
    }
    let tail = blocks.remainder();
    if !tail.is_empty() {
        let mut last = [0u8; BLOCK];
        last[..tail.len()].copy_from_slice(tail);
        add_block(&mut lanes, &last);
    }
    flush(&mut lanes, &mut total);
    total
}

/// Bit `i` set when built-in `NAMES[i]` can match somewhere on `line`, told whether
/// the line holds the word `secret`: for each built-in, a condition every one of its
/// matches implies (see each classifier's pattern).
fn line_mask(line: &[u8], secret: bool) -> u16 {
    let [digits, upper, dash, dot, colon, at] = counts(line);
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
        // AWS secret key: 40 characters mixing cases and digits, on a line naming
        // `secret`.
        secret && line.len() >= 40 && upper >= 1 && digits >= 1,
        // IBAN: 2 letters, 2 check digits, at least 11 more of [A-Z0-9].
        upper >= 2 && digits >= 2 && upper + digits >= 15,
        // phone: 8 to 15 digits in every accepted form, and one of its shapes.
        digits >= 8 && shapes::phone(line),
        // IPv4: four dotted groups.
        digits >= 4 && dot >= 3,
        // IPv6: at least two colons.
        colon >= 2,
        // private key block header.
        dash >= 10 && upper >= 5 && has(&KEY_HEADER),
        // JWT: header `eyJ…`, `.`, payload `eyJ…`.
        dot >= 1 && upper >= 2 && has(&JWT_PAYLOAD),
    ];
    conditions
        .iter()
        .enumerate()
        .fold(0, |mask, (i, &c)| if c { mask | (1 << i) } else { mask })
}

#[cfg(test)]
mod tests {
    use super::super::{NAMES, built_in, contains_word};
    use super::*;

    /// The mask of a line on its own, as the window pass must give it.
    fn mask_of(line: &[u8]) -> u16 {
        line_mask(line, contains_word(line, b"secret"))
    }

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

    /// Overlapping values: the `1` after the `+` starts a phone number and is the first
    /// of a card number's 13 digits; the line is a candidate for both.
    #[test]
    fn one_line_can_concern_several_classifiers() {
        let got = lines("x +1 4111111111111 y");
        assert_eq!(got.len(), 1, "{got:?}");
        assert!(got[0].2.contains(&"phone_number"), "{:?}", got[0].2);
        assert!(got[0].2.contains(&"payment_card"), "{:?}", got[0].2);
    }

    /// The property the scanner relies on: wherever a classifier matches on a line,
    /// the line is a candidate for it. Checked on every example the classifiers'
    /// own tests use and on the forms the corpus generator writes.
    #[test]
    fn every_match_is_on_a_candidate_line() {
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
                        "{} matched {line:?} but the line is not its candidate",
                        c.name()
                    );
                }
            }
        }
    }

    /// Values of every kind, pieces of them and the bytes around them: random lines
    /// of these hold matches of every classifier, many of them made of pieces.
    const PIECES: &[&str] = &[
        "jane.doe@example.com",
        "a@b.co",
        "4111 1111 1111 1111",
        "4222222222222",
        "378282246310005",
        "5555-5555-5555-4444",
        "123-45-6789",
        "AKIAIOSFODNN7EXAMPLE",
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "aws_secret_access_key=",
        "SeCrEt",
        "GB82 WEST 1234 5698 7654 32",
        "DE89370400440532013000",
        "+1 415 555 2671",
        "(415) 555-2671",
        "415.555.2671",
        "192.168.10.1",
        "1.2.3.4",
        "2001:db8::8a2e:370:7334",
        "::1",
        "-----BEGIN RSA PRIVATE KEY-----",
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.abc",
        "eyJ",
        "4111",
        "555",
        "AKIA",
        "GB",
        "82",
        "-",
        ".",
        ":",
        "@",
        "+",
        "(",
        ")",
        "/",
        " ",
        " ",
        "x",
        "Q",
        "\u{e9}",
    ];

    fn random_lines(seed: u64, n: usize) -> Vec<String> {
        use rand::rngs::StdRng;
        use rand::{Rng, SeedableRng};
        let mut rng = StdRng::seed_from_u64(seed);
        (0..n)
            .map(|_| {
                let pieces = rng.random_range(1..12);
                (0..pieces)
                    .map(|_| PIECES[rng.random_range(0..PIECES.len())])
                    .collect()
            })
            .collect()
    }

    /// The same property on random lines: a condition too strict for one classifier
    /// (one digit more for a card, a missing class) fails here.
    #[test]
    fn every_match_on_random_lines_is_on_a_candidate_line() {
        let classifiers = built_in();
        let mut matched = vec![0usize; NAMES.len()];
        let mut out = Vec::new();
        for line in random_lines(7, 20_000) {
            let mask = mask_of(line.as_bytes());
            for c in &classifiers {
                let bit = NAMES.iter().position(|n| *n == c.name()).unwrap();
                out.clear();
                c.scan(&line, &mut out);
                if !out.is_empty() {
                    matched[bit] += 1;
                    assert!(
                        mask & (1 << bit) != 0,
                        "{} matched {line:?} but the line is not its candidate",
                        c.name()
                    );
                }
            }
        }
        for (name, n) in NAMES.iter().zip(&matched) {
            assert!(*n > 50, "the random lines exercise {name} ({n})");
        }
    }

    /// The window pass finds the word `secret` with one search over the whole window;
    /// each line still gets the mask it has on its own.
    #[test]
    fn the_window_pass_gives_each_line_its_own_mask() {
        let lines = random_lines(9, 5_000);
        let text = lines.join("\n");
        let mut got = Vec::new();
        candidate_lines(text.as_bytes(), &mut got);
        let mut want = Vec::new();
        let mut start = 0;
        for line in &lines {
            let mask = mask_of(line.as_bytes());
            if mask != 0 {
                want.push(CandidateLine {
                    start,
                    end: start + line.len(),
                    mask,
                });
            }
            start += line.len() + 1;
        }
        assert_eq!(got, want);
        let secret_bit = 1
            << NAMES
                .iter()
                .position(|n| *n == "aws_secret_access_key")
                .unwrap();
        assert!(got.iter().filter(|l| l.mask & secret_bit != 0).count() > 100);
    }

    #[test]
    fn lane_sums_are_exact_up_to_full_lanes() {
        assert_eq!(lane_sum(&[255; BLOCK]), 16 * 255);
        let mut lane = [0u8; BLOCK];
        for (i, n) in lane.iter_mut().enumerate() {
            *n = (i * 17) as u8;
        }
        assert_eq!(
            lane_sum(&lane),
            lane.iter().map(|&n| usize::from(n)).sum::<usize>()
        );
    }

    #[test]
    fn counts_cover_long_lines() {
        // 4,800 bytes: more than one flush of the lanes, and a partial last block.
        let line = "1A-.:@".repeat(800);
        assert_eq!(counts(line.as_bytes()), [800; 6]);
    }
}
