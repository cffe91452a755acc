//! Streams text through the classifiers in fixed-size windows, never holding a whole
//! file: memory per object is bounded by `BLOCK_BYTES + 2 * OVERLAP_BYTES` (and the
//! three bytes of a character cut at a block boundary) whatever the file size or line
//! length.
//!
//! Each block is scanned together with `OVERLAP_BYTES` of the block before (so that a
//! match's left context, such as a word boundary, is right) and of the block after (so
//! that a match crossing the boundary is seen whole). Only matches that *start* inside
//! the block itself are counted, so a value on a boundary is found once, never twice.
//! A match longer than `OVERLAP_BYTES` can be missed at a boundary; built-in patterns
//! are all far shorter.

use std::borrow::Cow;
use std::io::Read;
use std::sync::atomic::AtomicBool;

use crate::classify::TextScanner;
use crate::{ScanError, check, newlines};

/// Bytes per block handed to the classifiers.
pub const BLOCK_BYTES: usize = 1 << 20;

/// Context kept on each side of a block.
pub const OVERLAP_BYTES: usize = 4096;

/// Reads `reader` to the end through `scanner`, blocks of `block` bytes.
pub fn scan_reader(
    reader: &mut dyn Read,
    scanner: &mut TextScanner<'_>,
    block: usize,
    abort: &AtomicBool,
) -> Result<(), std::io::Error> {
    let block = block.max(2 * OVERLAP_BYTES);
    // `buf` holds: [lookbehind][current block][lookahead …]. One buffer per scanning
    // thread, kept between objects: a fresh megabyte per file was mapped, faulted in
    // page by page and unmapped again, for every file.
    // The lookbehind can be 3 bytes longer than the overlap (a character cut at the
    // block boundary is kept whole).
    let bound = block + 2 * OVERLAP_BYTES + 4;
    let mut buf = BUFFER.with(|b| b.take());
    buf.clear();
    buf.reserve(bound);
    let scanned = scan_blocks(reader, scanner, block, abort, &mut buf);
    if buf.capacity() <= bound {
        buf.clear();
        BUFFER.with(|b| b.replace(buf));
    }
    scanned
}

thread_local! {
    static BUFFER: std::cell::Cell<Vec<u8>> = const { std::cell::Cell::new(Vec::new()) };
}

fn scan_blocks(
    reader: &mut dyn Read,
    scanner: &mut TextScanner<'_>,
    block: usize,
    abort: &AtomicBool,
    buf: &mut Vec<u8>,
) -> Result<(), std::io::Error> {
    let mut behind = 0usize; // bytes of lookbehind at the front of `buf`
    let mut line_at_buf_start = 1u64;
    let mut eof = false;
    loop {
        if check(abort).is_err() {
            return Err(std::io::Error::other(ScanError::Aborted));
        }
        // Fill up to the block plus its lookahead.
        let want = behind + block + OVERLAP_BYTES;
        while !eof && buf.len() < want {
            // `take` + `read_to_end` appends without zeroing the spare capacity first
            // (zeroing a whole block per small file cost more than reading it).
            match reader.take((want - buf.len()) as u64).read_to_end(buf) {
                Ok(0) => eof = true,
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        let end = if eof {
            buf.len()
        } else {
            char_boundary(buf, behind + block)
        };
        if end <= behind {
            return Ok(());
        }
        let window_end = if eof {
            buf.len()
        } else {
            char_boundary(buf, (end + OVERLAP_BYTES).min(buf.len()))
        };
        let (text, counted) = decode(buf, behind, end, window_end);
        scanner.scan_window(&text, counted, line_at_buf_start);
        if eof && end == buf.len() {
            return Ok(());
        }
        // The tail of this block becomes the next lookbehind.
        let keep_from = char_boundary(buf, end.saturating_sub(OVERLAP_BYTES).max(behind));
        line_at_buf_start += newlines(&buf[..keep_from]);
        buf.drain(..keep_from);
        behind = end - keep_from;
    }
}

/// Scans text that is already in memory (extracted from a document).
pub fn scan_text(
    text: &str,
    scanner: &mut TextScanner<'_>,
    abort: &AtomicBool,
) -> Result<(), ScanError> {
    let mut bytes = text.as_bytes();
    scan_reader(&mut bytes, scanner, BLOCK_BYTES, abort).map_err(|_| ScanError::Aborted)
}

/// The largest index ≤ `i` that does not split a UTF-8 sequence (at most 3 back).
fn char_boundary(buf: &[u8], i: usize) -> usize {
    let mut j = i.min(buf.len());
    while j > 0 && j < buf.len() && i - j < 3 && (buf[j] & 0xC0) == 0x80 {
        j -= 1;
    }
    j
}

/// Decodes `buf[..window_end]`, whose counted block is `behind..end`; returns the
/// window and the counted byte range within it. Valid UTF-8 (the common case) is
/// borrowed as it is. Otherwise the three parts are decoded separately, so that
/// invalid bytes in one part cannot move the counted range.
fn decode(
    buf: &[u8],
    behind: usize,
    end: usize,
    window_end: usize,
) -> (Cow<'_, str>, std::ops::Range<usize>) {
    if let Ok(text) = std::str::from_utf8(&buf[..window_end]) {
        return (Cow::Borrowed(text), behind..end);
    }
    let b = String::from_utf8_lossy(&buf[..behind]);
    let c = String::from_utf8_lossy(&buf[behind..end]);
    let a = String::from_utf8_lossy(&buf[end..window_end]);
    let mut s = String::with_capacity(b.len() + c.len() + a.len());
    s.push_str(&b);
    s.push_str(&c);
    s.push_str(&a);
    (Cow::Owned(s), b.len()..b.len() + c.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::built_in;

    fn scan(text: &str, block: usize) -> Vec<(String, String, i64)> {
        let cs = built_in();
        let mut s = TextScanner::new(&cs, 1);
        let mut r = text.as_bytes();
        scan_reader(&mut r, &mut s, block, &AtomicBool::new(false)).unwrap();
        s.finish()
            .into_iter()
            .map(|f| (f.classifier, f.location, f.count))
            .collect()
    }

    #[test]
    fn values_on_block_boundaries_are_counted_once() {
        let block = 2 * OVERLAP_BYTES;
        // Put an address across every possible offset around the first boundary,
        // on one very long line and on short lines.
        for shift in 0..40 {
            let mut long = "x".repeat(block - 20 + shift);
            long.push_str(" jane.doe@example.com ");
            long.push_str(&"y".repeat(3 * block));
            long.push_str(" 4111 1111 1111 1111\n");
            assert_eq!(
                scan(&long, block),
                [
                    ("email".to_owned(), "line:1".to_owned(), 1),
                    ("payment_card".to_owned(), "line:1".to_owned(), 1)
                ],
                "shift {shift}"
            );
        }
    }

    #[test]
    fn line_numbers_survive_block_cuts() {
        let block = 2 * OVERLAP_BYTES;
        let mut text = String::new();
        for i in 0..5000 {
            if i % 1000 == 999 {
                text.push_str("contact bob@example.org today\n");
            } else {
                text.push_str("plain words on a line\n");
            }
        }
        let found = scan(&text, block);
        let lines: Vec<&str> = found.iter().map(|f| f.1.as_str()).collect();
        assert_eq!(lines, ["lines:1000,2000,3000,4000,5000"]);
    }

    /// Invalid UTF-8 takes the lossy path (the valid path borrows); both count alike.
    #[test]
    fn invalid_bytes_do_not_move_matches() {
        let block = 2 * OVERLAP_BYTES;
        let mut bytes = b"x\xff\xfe bad bytes\n".repeat(block / 10);
        bytes.extend_from_slice(b"mail a@example.com\n");
        bytes.extend_from_slice(&b"\xff\n".repeat(block));
        let cs = built_in();
        let mut s = TextScanner::new(&cs, 1);
        let mut r = bytes.as_slice();
        scan_reader(&mut r, &mut s, block, &AtomicBool::new(false)).unwrap();
        let found: Vec<(String, i64)> = s
            .finish()
            .into_iter()
            .map(|f| (f.classifier, f.count))
            .collect();
        assert_eq!(found, [("email".to_owned(), 1)]);
    }

    #[test]
    fn multibyte_text_is_not_split() {
        let block = 2 * OVERLAP_BYTES;
        let text = format!("{}é a@example.com\n", "é".repeat(block));
        assert_eq!(scan(&text, block).len(), 1);
    }
}
