//! Hand-written checks for the shape a classifier needs on a line, cheaper than running
//! the classifier there. `candidates::line_mask` asks one only after its byte
//! counts passed, for a classifier whose counts let through many more lines than it
//! matches: on the generated corpus the phone classifier saw eight candidate lines
//! (dates, versions, reference numbers have eight digits) for each line with a phone
//! number. The phone check costs a third of what it saves.
//!
//! The same for cards and IBANs cost more than their classifiers saved
//! (measured with callgrind, docs/performance.md), so they have none.
//!
//! A check is a *necessary* condition of its classifier's pattern (the scanner relies
//! on that; the tests check it against the pattern on random text): a line that fails
//! it cannot hold a match.

/// The pattern [`phone`] checks by hand.
#[cfg(test)]
const PHONE_SHAPES: &str = r"\+[1-9]|\([2-9][0-9]{2}\)|[2-9][0-9]{2}[-.][2-9]";

fn digit(b: Option<&u8>, lowest: u8) -> bool {
    b.is_some_and(|b| (lowest..=b'9').contains(b))
}

/// What every phone number contains, per form: `+` and a country digit; `(ddd)`; or
/// the start of the North American `ddd-ddd-dddd` shape with either separator. Exactly
/// the lines [`PHONE_SHAPES`] matches.
pub fn phone(line: &[u8]) -> bool {
    let at = |i: usize| line.get(i);
    let opener = memchr::memchr2_iter(b'+', b'(', line).any(|i| match line[i] {
        b'+' => digit(at(i + 1), b'1'),
        _ => {
            digit(at(i + 1), b'2')
                && digit(at(i + 2), b'0')
                && digit(at(i + 3), b'0')
                && at(i + 4) == Some(&b')')
        }
    });
    opener
        || memchr::memchr2_iter(b'-', b'.', line).any(|i| {
            i >= 3
                && digit(at(i - 3), b'2')
                && digit(at(i - 2), b'0')
                && digit(at(i - 1), b'0')
                && digit(at(i + 1), b'2')
        })
}

#[cfg(test)]
mod tests {
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    use super::super::{built_in, phone as phone_classifier};
    use super::*;

    /// Random lines over the bytes phone numbers are made of, biased towards digits.
    fn lines(seed: u64, n: usize) -> Vec<String> {
        const BYTES: &[u8] = b"0123456789012345678901234567890123456789  --..+()ABx:_";
        let mut rng = StdRng::seed_from_u64(seed);
        (0..n)
            .map(|_| {
                let len = rng.random_range(1..48);
                (0..len)
                    .map(|_| BYTES[rng.random_range(0..BYTES.len())] as char)
                    .collect()
            })
            .collect()
    }

    #[test]
    fn the_phone_check_is_its_pattern() {
        let re = regex::bytes::Regex::new(PHONE_SHAPES).unwrap();
        let mut hits = 0;
        for line in lines(5, 200_000) {
            let want = re.is_match(line.as_bytes());
            assert_eq!(phone(line.as_bytes()), want, "on {line:?}");
            hits += usize::from(want);
        }
        assert!(hits > 1000, "the random lines exercise it ({hits})");
    }

    /// Wherever the classifier finds a phone number, the check passed on that line.
    #[test]
    fn every_phone_number_passes_the_check() {
        let classifiers = built_in();
        let c = classifiers
            .iter()
            .find(|c| c.name() == phone_classifier::NAME)
            .unwrap();
        let (mut found, mut out) = (0, Vec::new());
        for line in lines(11, 200_000) {
            out.clear();
            c.scan(&line, &mut out);
            if !out.is_empty() {
                found += 1;
                assert!(phone(line.as_bytes()), "matched {line:?}, the check failed");
            }
        }
        assert!(found > 100, "the random lines exercise it ({found})");
    }
}
