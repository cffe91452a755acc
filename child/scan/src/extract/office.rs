//! Office documents: DOCX and ODT are zip archives of XML whose text runs are read
//! with `quick-xml` (a paragraph, table row or line break ends a line); XLSX, ODS and
//! legacy XLS go to `sheet.rs`. With tables and images enabled, table contents are
//! kept and images embedded in a document are OCR'd; without, both are left out.

use std::io::{BufReader, Cursor, Read};
use std::sync::atomic::AtomicBool;

use meridian_wire::states::ObjectOutcome;
use quick_xml::events::Event;

use super::{ExtractSettings, ocr, outcome, reasons, sheet, stream};
use crate::classify::TextScanner;
use crate::{ObjectScan, ScanError};

/// Bytes of media read from one archive member at most: a zip bomb stops here.
const MEMBER_LIMIT: u64 = 256 << 20;

/// Bytes of a document's body XML read at most (its text is smaller still); past
/// it the document ends `PARTIAL`. The parser may hold one text run of this size
/// next to the text gathered so far, so this bounds a document's memory.
pub const XML_LIMIT: u64 = 64 << 20;

/// Embedded images OCR'd per document at most; a document carrying thousands ends
/// `PARTIAL` instead of holding a worker for hours.
pub const MAX_IMAGES_PER_DOCUMENT: usize = 32;

/// What a zip archive holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Container {
    Docx,
    Odt,
    Spreadsheet,
    Other,
}

fn member_names(archive: &zip::ZipArchive<Cursor<&[u8]>>) -> Vec<String> {
    archive
        .file_names()
        .filter_map(|n| n.ok().map(|n| n.into_owned()))
        .collect()
}

fn container(archive: &mut zip::ZipArchive<Cursor<&[u8]>>) -> Container {
    let names = member_names(archive);
    if names.iter().any(|n| n == "word/document.xml") {
        return Container::Docx;
    }
    if names
        .iter()
        .any(|n| n == "xl/workbook.xml" || n == "xl/workbook.bin")
    {
        return Container::Spreadsheet;
    }
    let mut mimetype = String::new();
    if let Ok(f) = archive.by_name("mimetype") {
        let _ = f.take(200).read_to_string(&mut mimetype);
    }
    match mimetype.trim() {
        "application/vnd.oasis.opendocument.text" => Container::Odt,
        "application/vnd.oasis.opendocument.spreadsheet" => Container::Spreadsheet,
        _ => Container::Other,
    }
}

pub fn scan(
    bytes: &[u8],
    scanner: &mut TextScanner<'_>,
    settings: ExtractSettings,
    abort: &AtomicBool,
) -> Result<ObjectScan, ScanError> {
    if !bytes.starts_with(b"PK") {
        // OLE2: a legacy workbook is readable, a legacy Word file is not.
        return sheet::scan(bytes, scanner, abort, reasons::LEGACY_WORD);
    }
    let Ok(mut archive) = zip::ZipArchive::new(Cursor::new(bytes)) else {
        return Ok(outcome(
            ObjectOutcome::Skipped,
            Some(reasons::DOCUMENT_UNREADABLE),
        ));
    };
    let (member, kind) = match container(&mut archive) {
        Container::Docx => ("word/document.xml", Container::Docx),
        Container::Odt => ("content.xml", Container::Odt),
        Container::Spreadsheet => {
            return sheet::scan(bytes, scanner, abort, reasons::SHEET_UNREADABLE);
        }
        Container::Other => {
            return Ok(outcome(
                ObjectOutcome::Skipped,
                Some(reasons::ARCHIVE_UNSUPPORTED),
            ));
        }
    };
    // The declared size is the most the archive reader inflates for the member.
    let mut truncated = false;
    let text = match archive.by_name(member) {
        Ok(f) => {
            truncated = f.size() > XML_LIMIT;
            document_text(
                BufReader::new(f.take(XML_LIMIT)),
                settings.tables,
                truncated,
            )
        }
        Err(_) => None,
    };
    let Some(text) = text else {
        return Ok(outcome(
            ObjectOutcome::Skipped,
            Some(reasons::DOCUMENT_UNREADABLE),
        ));
    };
    stream::scan_text(&text, scanner, abort)?;
    drop(text);
    if truncated {
        return Ok(outcome(
            ObjectOutcome::Partial,
            Some(reasons::DOCUMENT_TRUNCATED),
        ));
    }
    if !settings.tables {
        return Ok(outcome(ObjectOutcome::Complete, None));
    }
    embedded_images(&mut archive, kind, scanner, settings, abort)
}

/// OCRs the images stored in the archive's media folder.
fn embedded_images(
    archive: &mut zip::ZipArchive<Cursor<&[u8]>>,
    kind: Container,
    scanner: &mut TextScanner<'_>,
    settings: ExtractSettings,
    abort: &AtomicBool,
) -> Result<ObjectScan, ScanError> {
    let prefix = if kind == Container::Docx {
        "word/media/"
    } else {
        "Pictures/"
    };
    let images: Vec<String> = member_names(archive)
        .into_iter()
        .filter(|n| n.starts_with(prefix))
        .collect();
    if images.is_empty() {
        return Ok(outcome(ObjectOutcome::Complete, None));
    }
    if !settings.ocr {
        return Ok(outcome(
            ObjectOutcome::Partial,
            Some(reasons::EMBEDDED_IMAGES_NOT_OCRD),
        ));
    }
    let mut missed = images.len() > MAX_IMAGES_PER_DOCUMENT;
    for name in images.into_iter().take(MAX_IMAGES_PER_DOCUMENT) {
        crate::check(abort)?;
        let mut data = Vec::new();
        let read = match archive.by_name(&name) {
            Ok(f) => f.take(MEMBER_LIMIT).read_to_end(&mut data).is_ok(),
            Err(_) => false,
        };
        if !read || super::sniff(&data) != super::Kind::Image {
            continue;
        }
        match ocr::image_text(&data) {
            Ok(text) => stream::scan_text(&text, scanner, abort)?,
            Err(_) => missed = true,
        }
    }
    Ok(if missed {
        outcome(
            ObjectOutcome::Partial,
            Some(reasons::EMBEDDED_IMAGES_NOT_OCRD),
        )
    } else {
        outcome(ObjectOutcome::Complete, None)
    })
}

/// The text of a WordprocessingML or OpenDocument body, one paragraph per line.
/// `None` when the XML is malformed, unless it was `cut` at the size limit: then the
/// text up to the cut.
fn document_text(reader: impl std::io::BufRead, tables: bool, cut: bool) -> Option<String> {
    let mut xml = quick_xml::Reader::from_reader(reader);
    let mut buf = Vec::new();
    let mut out = String::new();
    let mut table_depth = 0usize;
    loop {
        let event = match xml.read_event_into(&mut buf) {
            Ok(event) => event,
            Err(_) if cut => return Some(out),
            Err(_) => return None,
        };
        let keep = tables || table_depth == 0;
        match event {
            Event::Start(e) => match e.local_name().as_ref() {
                "tbl" | "table" => table_depth += 1,
                "tab" if keep => out.push('\t'),
                _ => {}
            },
            Event::Empty(e) => match e.local_name().as_ref() {
                "br" | "cr" | "line-break" if keep => out.push('\n'),
                "tab" | "s" if keep => out.push(' '),
                _ => {}
            },
            Event::End(e) => match e.local_name().as_ref() {
                "tbl" | "table" => table_depth = table_depth.saturating_sub(1),
                // Paragraphs, headings and table cells end a line.
                "p" | "h" | "tc" | "table-cell" if keep => out.push('\n'),
                _ => {}
            },
            Event::Text(t) if keep => out.push_str(&t),
            Event::CData(t) if keep => out.push_str(&t),
            Event::GeneralRef(r) if keep => match r.resolve_char_ref() {
                Ok(Some(c)) => out.push(c),
                _ => out.push_str(match &*r {
                    "amp" => "&",
                    "lt" => "<",
                    "gt" => ">",
                    "quot" => "\"",
                    "apos" => "'",
                    _ => "",
                }),
            },
            Event::Eof => return Some(out),
            _ => {}
        }
        buf.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paragraphs_become_lines_and_tables_follow_the_setting() {
        let xml = r#"<w:document xmlns:w="x"><w:body>
            <w:p><w:r><w:t>mail jane@example.com</w:t></w:r></w:p>
            <w:tbl><w:tr><w:tc><w:p><w:r><w:t>a&amp;b</w:t></w:r></w:p></w:tc></w:tr></w:tbl>
            <w:p><w:r><w:t>end</w:t></w:r></w:p></w:body></w:document>"#;
        let with = document_text(xml.as_bytes(), true, false).unwrap();
        assert!(with.contains("mail jane@example.com\n"), "{with:?}");
        assert!(with.contains("a&b"), "{with:?}");
        let without = document_text(xml.as_bytes(), false, false).unwrap();
        assert!(
            !without.contains("a&b") && without.contains("end"),
            "{without:?}"
        );
        assert!(document_text("<a><b></a>".as_bytes(), true, false).is_none());
    }
}
