//! Spreadsheets (XLSX, ODS, legacy XLS) through `calamine`: each row becomes one line
//! of tab-separated cell values, sheet after sheet.

use std::io::Cursor;
use std::sync::atomic::AtomicBool;

use calamine::Reader;
use meridian_wire::states::ObjectOutcome;

use super::{outcome, stream};
use crate::classify::TextScanner;
use crate::{ObjectScan, ScanError};

/// Scans every sheet; `unreadable` is the reason given when the workbook cannot be
/// opened.
pub fn scan(
    bytes: &[u8],
    scanner: &mut TextScanner<'_>,
    abort: &AtomicBool,
    unreadable: &str,
) -> Result<ObjectScan, ScanError> {
    let Ok(mut book) = calamine::open_workbook_auto_from_rs(Cursor::new(bytes)) else {
        return Ok(outcome(ObjectOutcome::Skipped, Some(unreadable)));
    };
    let mut text = String::new();
    for (_, range) in book.worksheets() {
        crate::check(abort)?;
        for row in range.rows() {
            let cells: Vec<String> = row.iter().map(|c| c.to_string()).collect();
            text.push_str(cells.join("\t").trim_end());
            text.push('\n');
        }
    }
    stream::scan_text(&text, scanner, abort)?;
    Ok(outcome(ObjectOutcome::Complete, None))
}
