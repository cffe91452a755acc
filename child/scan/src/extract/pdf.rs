//! PDF text through `pdf-extract`. The library panics on some malformed files, so a
//! panic is caught and the object reported unreadable rather than the worker lost.
//!
//! It also inflates every compressed stream in memory, so a 1 MB stream of zeros can
//! become a gigabyte. Before it runs, the streams are inflated here into nothing,
//! counting bytes, and a document whose streams inflate past [`MAX_INFLATED_BYTES`]
//! in all is never handed to it.

use std::io::Read;
use std::panic::{AssertUnwindSafe, catch_unwind};

use memchr::memmem;

/// Most bytes all of a document's streams may inflate to.
pub const MAX_INFLATED_BYTES: u64 = 256 << 20;

/// Why a PDF gave no text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PdfError {
    /// Malformed, encrypted, or the reader panicked.
    Unreadable,
    /// Its streams inflate past [`MAX_INFLATED_BYTES`].
    TooLarge,
}

/// The document's text.
pub fn text(bytes: &[u8]) -> Result<String, PdfError> {
    if inflated_bytes(bytes, MAX_INFLATED_BYTES) > MAX_INFLATED_BYTES {
        return Err(PdfError::TooLarge);
    }
    match catch_unwind(AssertUnwindSafe(|| {
        pdf_extract::extract_text_from_mem(bytes)
    })) {
        Ok(Ok(text)) => Ok(text),
        Ok(Err(e)) => {
            tracing::debug!("PDF not readable: {e}");
            Err(PdfError::Unreadable)
        }
        Err(_) => {
            tracing::debug!("PDF reader panicked");
            Err(PdfError::Unreadable)
        }
    }
}

/// What the document's zlib streams inflate to in all, counted up to just past
/// `cap`. Every `stream … endstream` body is tried: one that is not zlib data stops
/// at its header and counts nothing, so the filter names need not be parsed.
pub fn inflated_bytes(pdf: &[u8], cap: u64) -> u64 {
    let mut total = 0u64;
    let mut at = 0;
    let starts = memmem::Finder::new(b"stream");
    let ends = memmem::Finder::new(b"endstream");
    while let Some(found) = starts.find(&pdf[at..]) {
        let keyword = at + found;
        // `endstream` also contains `stream`: skip it.
        if keyword >= 3 && &pdf[keyword - 3..keyword] == b"end" {
            at = keyword + 6;
            continue;
        }
        let mut body = keyword + 6;
        if pdf.get(body) == Some(&b'\r') {
            body += 1;
        }
        if pdf.get(body) == Some(&b'\n') {
            body += 1;
        }
        let end = ends.find(&pdf[body..]).map_or(pdf.len(), |e| body + e);
        let left = cap.saturating_add(1).saturating_sub(total);
        total += inflate_counting(&pdf[body..end], left);
        if total > cap {
            return total;
        }
        at = end.max(body);
    }
    total
}

/// Bytes `data` inflates to, up to `limit`; what came out before an error counts
/// (a bomb with a broken tail still inflated that much in the reader).
fn inflate_counting(data: &[u8], limit: u64) -> u64 {
    let mut inflater = flate2::read::ZlibDecoder::new(data).take(limit);
    let mut buf = [0u8; 64 * 1024];
    let mut n = 0u64;
    while let Ok(read) = inflater.read(&mut buf) {
        if read == 0 {
            break;
        }
        n += read as u64;
    }
    n
}
