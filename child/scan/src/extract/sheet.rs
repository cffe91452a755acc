//! Spreadsheets (XLSX, XLSB, ODS, legacy XLS) through `calamine`: each row becomes one
//! line of tab-separated cell values, sheet after sheet.
//!
//! A spreadsheet is hostile input: two cells far apart (A1 and XFD1048576) describe
//! a grid of 17 billion cells, and ODS repeat counts do the same in a few bytes. So
//! memory is bounded by construction: XLSX and XLSB are read cell by cell (nothing is
//! allocated for the cells between two stored ones); an ODS is measured before it is
//! parsed (rows × widest row, as its reader would allocate them) and skipped above
//! [`MAX_CELLS`]; the archive's inflated size is capped; and the text produced is
//! capped at [`MAX_TEXT_BYTES`], past which the object is `PARTIAL`.

use std::fmt::Write as _;
use std::io::{Cursor, Read};
use std::sync::atomic::AtomicBool;

use calamine::{Data, Reader};
use meridian_wire::states::ObjectOutcome;
use quick_xml::events::Event;

use super::{outcome, reasons, stream};
use crate::classify::TextScanner;
use crate::{ObjectScan, ScanError};

/// Most cells a workbook read whole (ODS, legacy XLS) may describe.
pub const MAX_CELLS: u64 = 4_000_000;

/// Most text one spreadsheet produces for the classifiers.
pub const MAX_TEXT_BYTES: usize = 64 << 20;

/// Most bytes all members of a spreadsheet archive may inflate to.
const MAX_INFLATED_BYTES: u64 = 512 << 20;

/// Most tab separators written for a run of empty columns between two cells.
const MAX_GAP_TABS: u32 = 64;

/// Scans every sheet; `unreadable` is the reason given when the workbook cannot be
/// opened.
pub fn scan(
    bytes: &[u8],
    scanner: &mut TextScanner<'_>,
    abort: &AtomicBool,
    unreadable: &str,
) -> Result<ObjectScan, ScanError> {
    let text = if bytes.starts_with(b"PK") {
        match zipped(bytes, abort)? {
            Ok(text) => text,
            Err(reason) => return Ok(outcome(ObjectOutcome::Skipped, Some(reason))),
        }
    } else {
        // Legacy XLS: its format caps a sheet at 65,536 × 256 cells.
        match calamine::open_workbook_auto_from_rs(Cursor::new(bytes)) {
            Ok(mut book) => whole(&mut book, abort)?,
            Err(_) => return Ok(outcome(ObjectOutcome::Skipped, Some(unreadable))),
        }
    };
    stream::scan_text(&text.text, scanner, abort)?;
    Ok(if text.truncated {
        outcome(ObjectOutcome::Partial, Some(reasons::SHEET_TRUNCATED))
    } else {
        outcome(ObjectOutcome::Complete, None)
    })
}

/// Text produced from a workbook, bounded by [`MAX_TEXT_BYTES`].
#[derive(Default)]
struct SheetText {
    text: String,
    truncated: bool,
}

impl SheetText {
    /// Appends; false once the cap is reached (the rest is dropped).
    fn push(&mut self, s: &str) -> bool {
        if self.truncated || self.text.len() + s.len() > MAX_TEXT_BYTES {
            self.truncated = true;
            return false;
        }
        self.text.push_str(s);
        true
    }
}

/// XLSX, XLSB or ODS; `Err(reason)` when the object is skipped.
fn zipped(bytes: &[u8], abort: &AtomicBool) -> Result<Result<SheetText, &'static str>, ScanError> {
    let Ok(mut archive) = zip::ZipArchive::new(Cursor::new(bytes)) else {
        return Ok(Err(reasons::SHEET_UNREADABLE));
    };
    let mut inflated = 0u64;
    for i in 0..archive.len() {
        if let Ok(member) = archive.by_index_raw(i) {
            inflated = inflated.saturating_add(member.size());
        }
    }
    if inflated > MAX_INFLATED_BYTES {
        return Ok(Err(reasons::SHEET_TOO_LARGE));
    }
    if archive.by_name("content.xml").is_ok() {
        let Some(cells) = ods_cells(&mut archive) else {
            return Ok(Err(reasons::SHEET_UNREADABLE));
        };
        if cells > MAX_CELLS {
            return Ok(Err(reasons::SHEET_TOO_LARGE));
        }
        return Ok(
            match calamine::open_workbook_auto_from_rs(Cursor::new(bytes)) {
                Ok(mut book) => Ok(whole(&mut book, abort)?),
                Err(_) => Err(reasons::SHEET_UNREADABLE),
            },
        );
    }
    let names = |archive: &zip::ZipArchive<Cursor<&[u8]>>, name: &str| {
        archive.file_names().flatten().any(|n| n == name)
    };
    if names(&archive, "xl/workbook.bin") {
        let Ok(mut book) = calamine::Xlsb::new(Cursor::new(bytes)) else {
            return Ok(Err(reasons::SHEET_UNREADABLE));
        };
        let mut out = SheetText::default();
        for name in book.sheet_names() {
            crate::check(abort)?;
            let Ok(mut cells) = book.worksheet_cells_reader(&name) else {
                continue;
            };
            let mut rows = Rows::default();
            while let Ok(Some(cell)) = cells.next_cell() {
                let (row, col) = cell.get_position();
                if !rows.cell(&mut out, row, col, &Data::from(cell.get_value().clone())) {
                    break;
                }
            }
            rows.end(&mut out);
        }
        return Ok(Ok(out));
    }
    let Ok(mut book) = calamine::Xlsx::new(Cursor::new(bytes)) else {
        return Ok(Err(reasons::SHEET_UNREADABLE));
    };
    let mut out = SheetText::default();
    for name in book.sheet_names() {
        crate::check(abort)?;
        let Ok(mut cells) = book.worksheet_cells_reader(&name) else {
            continue;
        };
        let mut rows = Rows::default();
        while let Ok(Some(cell)) = cells.next_cell() {
            let (row, col) = cell.get_position();
            if !rows.cell(&mut out, row, col, &Data::from(cell.get_value().clone())) {
                break;
            }
        }
        rows.end(&mut out);
    }
    Ok(Ok(out))
}

/// Lays cells read in row order out as lines: one line per row (empty rows between
/// two stored ones stay as empty lines, so a finding's line is its row), a tab
/// between neighbouring cells, at most [`MAX_GAP_TABS`] for a run of empty ones.
#[derive(Default)]
struct Rows {
    /// The row of the line being written, and the column of its last cell.
    at: Option<(u32, u32)>,
}

impl Rows {
    /// Adds one cell; false once the text cap is reached.
    fn cell(&mut self, out: &mut SheetText, row: u32, col: u32, value: &Data) -> bool {
        let value = value.to_string();
        if value.is_empty() {
            return true;
        }
        let mut sep = String::new();
        match self.at {
            Some((r, c)) if r == row => {
                for _ in 0..col.saturating_sub(c).clamp(1, MAX_GAP_TABS) {
                    sep.push('\t');
                }
            }
            Some((r, _)) => {
                // Rows come in order; a gap of empty rows is at most a megabyte of
                // newlines (the format has 1,048,576 rows), within the text cap.
                for _ in 0..row.saturating_sub(r).max(1) {
                    sep.push('\n');
                }
            }
            None => {}
        }
        self.at = Some((row, col));
        out.push(&sep) && out.push(&value)
    }

    fn end(self, out: &mut SheetText) {
        if self.at.is_some() {
            out.push("\n");
        }
    }
}

/// Every sheet of a workbook read whole (ODS after its size was checked, legacy XLS).
fn whole<RS>(book: &mut calamine::Sheets<RS>, abort: &AtomicBool) -> Result<SheetText, ScanError>
where
    RS: std::io::Read + std::io::Seek,
{
    let mut out = SheetText::default();
    let mut line = String::new();
    for (_, range) in book.worksheets() {
        crate::check(abort)?;
        for row in range.rows() {
            line.clear();
            for (i, cell) in row.iter().enumerate() {
                if i > 0 {
                    line.push('\t');
                }
                let _ = write!(line, "{cell}");
            }
            let kept = line.trim_end().len();
            line.truncate(kept);
            line.push('\n');
            if !out.push(&line) {
                return Ok(out);
            }
        }
    }
    Ok(out)
}

/// The cells an ODS reader would allocate: per table, the bounding box of its
/// non-empty cells (repeats included), rows times widest row. Empty cells and rows,
/// which office suites repeat to the sheet's edge, cost nothing there and count
/// nothing here. Read as a stream, with the archive's inflated size already capped.
/// `None` when content.xml is not readable XML.
fn ods_cells(archive: &mut zip::ZipArchive<Cursor<&[u8]>>) -> Option<u64> {
    let member = archive.by_name("content.xml").ok()?;
    let mut xml =
        quick_xml::Reader::from_reader(std::io::BufReader::new(member.take(MAX_INFLATED_BYTES)));
    let mut buf = Vec::new();
    let mut table = OdsTable::default();
    let mut total = 0u64;
    loop {
        let (e, has_children) = match xml.read_event_into(&mut buf).ok()? {
            Event::Start(e) => (e.into_owned(), true),
            Event::Empty(e) => (e.into_owned(), false),
            Event::End(e) => {
                match e.name().as_ref() {
                    "table:table-row" => table.end_row(),
                    "table:table" => {
                        total = total.saturating_add(table.cells());
                        table = OdsTable::default();
                    }
                    _ => {}
                }
                buf.clear();
                continue;
            }
            Event::Eof => return Some(total),
            _ => {
                buf.clear();
                continue;
            }
        };
        match e.name().as_ref() {
            "table:table-row" => {
                table.start_row(repeat(&e, "table:number-rows-repeated"));
                if !has_children {
                    table.end_row();
                }
            }
            "table:table-cell" | "table:covered-table-cell" => {
                let filled = has_children
                    || e.attributes()
                        .flatten()
                        .any(|a| a.key.as_ref() == "office:value-type");
                table.cell(repeat(&e, "table:number-columns-repeated"), filled);
            }
            _ => {}
        }
        buf.clear();
    }
}

fn repeat(e: &quick_xml::events::BytesStart<'_>, name: &str) -> u64 {
    e.attributes()
        .flatten()
        .find(|a| a.key.as_ref() == name)
        .and_then(|a| a.value.trim().parse().ok())
        .unwrap_or(1)
}

/// The bounding box of one ODS table's non-empty cells, as its rows stream by.
#[derive(Default)]
struct OdsTable {
    /// Rows seen so far, repeats included.
    rows: u64,
    /// Rows up to and including the last one with a non-empty cell.
    rows_used: u64,
    widest: u64,
    /// The current row: its repeat count, width so far, width up to its last
    /// non-empty cell.
    repeat: u64,
    width: u64,
    used: u64,
}

impl OdsTable {
    fn start_row(&mut self, repeat: u64) {
        (self.repeat, self.width, self.used) = (repeat, 0, 0);
    }

    fn cell(&mut self, repeat: u64, filled: bool) {
        self.width = self.width.saturating_add(repeat);
        if filled {
            self.used = self.width;
        }
    }

    fn end_row(&mut self) {
        self.rows = self.rows.saturating_add(self.repeat);
        if self.used > 0 {
            self.rows_used = self.rows;
            self.widest = self.widest.max(self.used);
        }
    }

    fn cells(&self) -> u64 {
        self.rows_used.saturating_mul(self.widest)
    }
}
