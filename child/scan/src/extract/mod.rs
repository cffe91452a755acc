//! Text extraction by content, not by file name: the first bytes of an object decide
//! whether it is plain text (streamed), a PDF, an office document or spreadsheet (zip
//! or OLE2 container), an image (OCR) or other binary content (skipped). Every
//! extractor turns the object into text for the classifiers; one that cannot marks the
//! object `PARTIAL` or `SKIPPED` with a reason from [`reasons`], never a task failure.

pub mod ocr;
mod office;
pub mod pdf;
mod sheet;
pub mod stream;

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::sync::atomic::AtomicBool;

use meridian_wire::states::ObjectOutcome;

use super::classify::{ClassifierRef, TextScanner};
use super::{ObjectScan, ScanError};

/// Bytes sniffed to tell content types apart.
pub const SNIFF_BYTES: usize = 8192;

/// Reasons an object is `SKIPPED` or `PARTIAL`; status counts objects by reason, so
/// these are a small fixed set (no file names, no values).
pub mod reasons {
    pub const BINARY: &str = "binary content";
    pub const OCR_DISABLED: &str = "image: OCR disabled";
    pub const OCR_MISSING: &str = "image: OCR engine (tesseract) not installed";
    pub const OCR_FAILED: &str = "image: OCR failed";
    pub const IMAGE_TOO_LARGE: &str = "image: more pixels than the site OCRs";
    pub const PDF_UNREADABLE: &str = "unreadable PDF";
    pub const PDF_TOO_LARGE: &str = "PDF streams inflate past the site's limit";
    pub const DOCUMENT_UNREADABLE: &str = "unreadable office document";
    pub const DOCUMENT_TRUNCATED: &str = "document truncated at the site's text limit";
    pub const SHEET_UNREADABLE: &str = "unreadable spreadsheet";
    pub const SHEET_TOO_LARGE: &str = "spreadsheet too large: more cells than the site reads";
    pub const SHEET_TRUNCATED: &str = "spreadsheet truncated at the site's text limit";
    pub const ARCHIVE_UNSUPPORTED: &str = "unsupported archive";
    pub const LEGACY_WORD: &str = "unsupported format: legacy Word document";
    pub const EMBEDDED_IMAGES_NOT_OCRD: &str = "embedded images not OCR'd";
    pub const GREW_PAST_LIMIT: &str = "file grew past the size limit while it was read";
}

/// What the job and site allow extractors to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExtractSettings {
    /// OCR of images (`connector.easyocr_support_enabled`, job option `ocr`).
    pub ocr: bool,
    /// Tables and embedded images in documents (`connector.get_table_or_images_enabled`,
    /// job option `tables`).
    pub tables: bool,
}

impl Default for ExtractSettings {
    fn default() -> Self {
        ExtractSettings {
            ocr: true,
            tables: true,
        }
    }
}

/// What the first bytes say an object is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Text,
    Pdf,
    /// A zip container: DOCX, XLSX, ODT, ODS or something else.
    Zip,
    /// An OLE2 compound file: legacy XLS or DOC.
    Ole2,
    Image,
    Binary,
}

pub fn sniff(head: &[u8]) -> Kind {
    if head.starts_with(b"%PDF-") {
        Kind::Pdf
    } else if head.starts_with(b"PK\x03\x04") {
        Kind::Zip
    } else if head.starts_with(&[0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1]) {
        Kind::Ole2
    } else if head.starts_with(b"\x89PNG\r\n\x1a\n")
        || head.starts_with(&[0xFF, 0xD8, 0xFF])
        || head.starts_with(b"II*\0")
        || head.starts_with(b"MM\0*")
    {
        Kind::Image
    } else if head.iter().take(SNIFF_BYTES).any(|b| *b == 0) {
        Kind::Binary
    } else {
        Kind::Text
    }
}

pub(crate) fn outcome(outcome: ObjectOutcome, reason: Option<&str>) -> ObjectScan {
    ObjectScan {
        outcome: Some(outcome),
        reason: reason.map(str::to_owned),
        findings: Vec::new(),
    }
}

fn io_err(key: &str, e: std::io::Error) -> ScanError {
    if e.get_ref().is_some_and(|inner| inner.is::<ScanError>()) {
        ScanError::Aborted
    } else {
        ScanError::Retryable(format!("cannot read {key}: {e}"))
    }
}

/// Extracts and classifies one opened file, reading at most `max_bytes` of it (a
/// file that grew past the limit after its size was checked is read up to the limit
/// and ends `PARTIAL`). `key` only names the object in retryable errors (never a
/// value from inside it).
pub fn scan_file(
    mut file: File,
    key: &str,
    object_id: i64,
    max_bytes: u64,
    classifiers: &[ClassifierRef],
    settings: ExtractSettings,
    abort: &AtomicBool,
) -> Result<ObjectScan, ScanError> {
    let mut head = Vec::with_capacity(SNIFF_BYTES);
    (&mut file)
        .take(SNIFF_BYTES as u64)
        .read_to_end(&mut head)
        .map_err(|e| io_err(key, e))?;
    file.seek(SeekFrom::Start(0)).map_err(|e| io_err(key, e))?;
    let mut scanner = TextScanner::new(classifiers, object_id);
    let mut result = match sniff(&head) {
        Kind::Text => {
            let mut reader = BufReader::with_capacity(64 * 1024, (&file).take(max_bytes));
            stream::scan_reader(&mut reader, &mut scanner, stream::BLOCK_BYTES, abort)
                .map_err(|e| io_err(key, e))?;
            if grew_past(&mut file, max_bytes) {
                outcome(ObjectOutcome::Partial, Some(reasons::GREW_PAST_LIMIT))
            } else {
                outcome(ObjectOutcome::Complete, None)
            }
        }
        Kind::Binary => return Ok(outcome(ObjectOutcome::Skipped, Some(reasons::BINARY))),
        Kind::Pdf => {
            let Some(bytes) = read_all(file, key, max_bytes)? else {
                return Ok(outcome(
                    ObjectOutcome::Skipped,
                    Some(reasons::GREW_PAST_LIMIT),
                ));
            };
            match pdf::text(&bytes) {
                Ok(text) => {
                    stream::scan_text(&text, &mut scanner, abort)?;
                    outcome(ObjectOutcome::Complete, None)
                }
                Err(pdf::PdfError::Unreadable) => {
                    outcome(ObjectOutcome::Skipped, Some(reasons::PDF_UNREADABLE))
                }
                Err(pdf::PdfError::TooLarge) => {
                    outcome(ObjectOutcome::Skipped, Some(reasons::PDF_TOO_LARGE))
                }
            }
        }
        Kind::Zip | Kind::Ole2 => {
            let Some(bytes) = read_all(file, key, max_bytes)? else {
                return Ok(outcome(
                    ObjectOutcome::Skipped,
                    Some(reasons::GREW_PAST_LIMIT),
                ));
            };
            office::scan(&bytes, &mut scanner, settings, abort)?
        }
        Kind::Image => {
            if !settings.ocr {
                return Ok(outcome(ObjectOutcome::Skipped, Some(reasons::OCR_DISABLED)));
            }
            let Some(bytes) = read_all(file, key, max_bytes)? else {
                return Ok(outcome(
                    ObjectOutcome::Skipped,
                    Some(reasons::GREW_PAST_LIMIT),
                ));
            };
            match ocr::image_text(&bytes) {
                Ok(text) => {
                    stream::scan_text(&text, &mut scanner, abort)?;
                    outcome(ObjectOutcome::Complete, None)
                }
                Err(ocr::OcrError::Missing) => {
                    outcome(ObjectOutcome::Skipped, Some(reasons::OCR_MISSING))
                }
                Err(ocr::OcrError::Failed) => {
                    outcome(ObjectOutcome::Skipped, Some(reasons::OCR_FAILED))
                }
                Err(ocr::OcrError::TooLarge) => {
                    outcome(ObjectOutcome::Skipped, Some(reasons::IMAGE_TOO_LARGE))
                }
            }
        }
    };
    result.findings = scanner.finish();
    Ok(result)
}

/// Documents are parsed in memory, so they are read whole, up to the size limit;
/// `None` when the file holds more (it grew after its size was checked).
fn read_all(file: File, key: &str, max_bytes: u64) -> Result<Option<Vec<u8>>, ScanError> {
    let mut bytes = Vec::new();
    file.take(max_bytes.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| io_err(key, e))?;
    Ok((bytes.len() as u64 <= max_bytes).then_some(bytes))
}

/// Whether the file holds more than `max_bytes` (it grew while it was read).
fn grew_past(file: &mut File, max_bytes: u64) -> bool {
    file.seek(SeekFrom::Start(max_bytes)).is_ok() && file.read(&mut [0u8]).is_ok_and(|n| n > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_decides_not_the_name() {
        assert_eq!(sniff(b"%PDF-1.4\n"), Kind::Pdf);
        assert_eq!(sniff(b"PK\x03\x04rest"), Kind::Zip);
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n...."), Kind::Image);
        assert_eq!(sniff(&[0xFF, 0xD8, 0xFF, 0xE0]), Kind::Image);
        assert_eq!(sniff(b"II*\0"), Kind::Image);
        assert_eq!(sniff(b"hello\0world"), Kind::Binary);
        assert_eq!(sniff(b"name,email\njane,j@example.com\n"), Kind::Text);
        assert_eq!(sniff(b""), Kind::Text);
    }
}
