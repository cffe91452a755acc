//! PDF text through `pdf-extract`. The library panics on some malformed files, so a
//! panic is caught and the object reported unreadable rather than the worker lost.

use std::panic::{AssertUnwindSafe, catch_unwind};

/// The document's text, or `None` when it cannot be read (malformed, encrypted).
pub fn text(bytes: &[u8]) -> Option<String> {
    match catch_unwind(AssertUnwindSafe(|| {
        pdf_extract::extract_text_from_mem(bytes)
    })) {
        Ok(Ok(text)) => Some(text),
        Ok(Err(e)) => {
            tracing::debug!("PDF not readable: {e}");
            None
        }
        Err(_) => {
            tracing::debug!("PDF reader panicked");
            None
        }
    }
}
