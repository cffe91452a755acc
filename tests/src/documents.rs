//! Seeded documents of every supported type, written by hand so the test owns every
//! byte: PDF (a minimal valid file with one text line per seeded line), DOCX and ODT
//! (zip + WordprocessingML / OpenDocument XML, some lines inside a table), XLSX and
//! ODS (one row per line), JSON, CSV, logs, plain text, a PNG whose text only OCR can
//! read, and a PDF saved under a misleading name (content, not the name, decides).
//! Counts per file type are computed while writing.

use std::collections::BTreeMap;
use std::io::{Cursor, Write};
use std::path::{Path, PathBuf};

use rand::SeedableRng;
use rand::rngs::StdRng;
use zip::write::SimpleFileOptions;

use crate::bitmap;
use crate::corpus::{Counts, lines};
use crate::values;

/// A generated document corpus.
#[derive(Debug, Clone)]
pub struct DocCorpus {
    pub root: PathBuf,
    /// Type (the folder under `root`) → classifier → seeded values.
    pub by_type: BTreeMap<String, Counts>,
    /// Everything together.
    pub total: Counts,
}

/// The folder names, one per type.
pub const TYPES: &[&str] = &[
    "txt", "csv", "log", "json", "pdf", "docx", "odt", "xlsx", "ods", "png", "misnamed",
];

/// Writes `files_per_type` files of each type under `root/<type>/`. With `positive`
/// false only prose and near misses are written (the negative corpus; no image then,
/// since OCR of prose proves nothing).
pub fn generate(root: &Path, seed: u64, files_per_type: usize, positive: bool) -> DocCorpus {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut by_type = BTreeMap::new();
    let mut total = Counts::default();
    for ty in TYPES {
        if *ty == "png" && !positive {
            continue;
        }
        let dir = root.join(ty);
        std::fs::create_dir_all(&dir).expect("corpus dir");
        let mut counts = Counts::default();
        for n in 0..files_per_type {
            let (name, bytes) = if *ty == "png" {
                let (lines, c) = ocr_lines(&mut rng);
                counts.merge(&c);
                (format!("scan-{n:03}.png"), bitmap::render_png(&lines))
            } else {
                let text = lines(&mut rng, 40, positive, &mut counts);
                file(ty, n, &text)
            };
            std::fs::write(dir.join(name), bytes).expect("corpus file");
        }
        total.merge(&counts);
        by_type.insert((*ty).to_owned(), counts);
    }
    DocCorpus {
        root: root.to_owned(),
        by_type,
        total,
    }
}

/// Lines an 8×8 bitmap font renders clearly enough for tesseract: upper-case labels,
/// digits, and values whose look-alike glyphs (O/0, l/1) cannot change the meaning.
pub fn ocr_lines(rng: &mut StdRng) -> (Vec<String>, Counts) {
    let mut c = Counts::default();
    let ssn = values::ssn(rng, true);
    c.add("us_ssn");
    let mut card = values::card(rng, true).replace('-', " ");
    if !card.contains(' ') && card.len() == 16 {
        card = card
            .as_bytes()
            .chunks(4)
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect::<Vec<_>>()
            .join(" ");
    }
    c.add("payment_card");
    let email = format!(
        "{}@example.com",
        values::LAST[rand::Rng::random_range(rng, 0..values::LAST.len())]
    );
    c.add("email");
    (
        vec![
            format!("SSN {ssn}"),
            format!("CARD {card}"),
            format!("MAIL {email}"),
        ],
        c,
    )
}

fn file(ty: &str, n: usize, lines: &[String]) -> (String, Vec<u8>) {
    match ty {
        "txt" | "log" => (format!("doc-{n:03}.{ty}"), join(lines).into_bytes()),
        "csv" => {
            let rows: Vec<String> = lines
                .iter()
                .enumerate()
                .map(|(i, l)| format!("{i},\"{}\",ok", l.replace('"', "\"\"")))
                .collect();
            (
                format!("doc-{n:03}.csv"),
                format!("id,text,status\n{}", join(&rows)).into_bytes(),
            )
        }
        "json" => {
            // One string per line: context words stay on their own value's line.
            let body: Vec<String> = lines
                .iter()
                .map(|l| format!("  {}", serde_json::Value::String(l.clone())))
                .collect();
            (
                format!("doc-{n:03}.json"),
                format!("[\n{}\n]\n", body.join(",\n")).into_bytes(),
            )
        }
        "pdf" => (format!("doc-{n:03}.pdf"), pdf(lines)),
        "misnamed" => (format!("scan-{n:03}.dat"), pdf(lines)),
        "docx" => (format!("doc-{n:03}.docx"), docx(lines)),
        "odt" => (format!("doc-{n:03}.odt"), odt(lines)),
        "xlsx" => (format!("doc-{n:03}.xlsx"), xlsx(lines)),
        "ods" => (format!("doc-{n:03}.ods"), ods(lines)),
        other => panic!("unknown corpus type {other}"),
    }
}

fn join(lines: &[String]) -> String {
    let mut s = lines.join("\n");
    s.push('\n');
    s
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A PDF with the standard Helvetica font, one text line per line, 50 lines a page.
pub fn pdf(lines: &[String]) -> Vec<u8> {
    let pages: Vec<&[String]> = lines.chunks(50).collect();
    let mut objects: Vec<String> = Vec::new();
    // 1 catalog, 2 page tree, 3 font, then page + content per page.
    let kids: Vec<String> = (0..pages.len())
        .map(|i| format!("{} 0 R", 4 + 2 * i))
        .collect();
    objects.push("<< /Type /Catalog /Pages 2 0 R >>".into());
    objects.push(format!(
        "<< /Type /Pages /Kids [{}] /Count {} >>",
        kids.join(" "),
        pages.len()
    ));
    objects.push(
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>".into(),
    );
    for (i, page) in pages.iter().enumerate() {
        let mut content = String::from("BT /F1 7 Tf 9 TL 20 770 Td\n");
        for l in *page {
            let esc = l
                .replace('\\', "\\\\")
                .replace('(', "\\(")
                .replace(')', "\\)");
            content.push_str(&format!("({esc}) Tj T*\n"));
        }
        content.push_str("ET");
        objects.push(format!(
            "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 3 0 R >> >> /Contents {} 0 R >>",
            5 + 2 * i
        ));
        objects.push(format!(
            "<< /Length {} >>\nstream\n{content}\nendstream",
            content.len() + 1
        ));
    }
    let mut out = b"%PDF-1.4\n".to_vec();
    let mut offsets = Vec::new();
    for (i, o) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n{o}\nendobj\n", i + 1).as_bytes());
    }
    let xref = out.len();
    out.extend_from_slice(
        format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes(),
    );
    for off in offsets {
        out.extend_from_slice(format!("{off:010} 00000 n \n").as_bytes());
    }
    out.extend_from_slice(
        format!(
            "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
            objects.len() + 1
        )
        .as_bytes(),
    );
    out
}

fn zip(entries: &[(&str, String)]) -> Vec<u8> {
    let owned: Vec<(String, Vec<u8>)> = entries
        .iter()
        .map(|(n, b)| ((*n).to_owned(), b.clone().into_bytes()))
        .collect();
    zip_bytes(&owned)
}

fn zip_bytes(entries: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    for (name, body) in entries {
        // OpenDocument wants `mimetype` first and uncompressed.
        let method = if *name == "mimetype" {
            zip::CompressionMethod::Stored
        } else {
            zip::CompressionMethod::Deflated
        };
        w.start_file(
            name.as_str(),
            SimpleFileOptions::default().compression_method(method),
        )
        .expect("zip entry");
        w.write_all(body).expect("zip write");
    }
    w.finish().expect("zip finish").into_inner()
}

const CONTENT_TYPES_DOCX: &str = r#"<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>"#;
const RELS_DOCX: &str = r#"<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="word/document.xml"/></Relationships>"#;

/// A DOCX: paragraphs, with every fifth line in a one-cell table row.
pub fn docx(lines: &[String]) -> Vec<u8> {
    docx_with_media(lines, &[])
}

/// A DOCX that also stores `images` (PNG bytes) under `word/media/`, as Word does for
/// pictures in the text.
pub fn docx_with_media(lines: &[String], images: &[Vec<u8>]) -> Vec<u8> {
    let mut body = String::new();
    let para = |l: &str| {
        format!(
            r#"<w:p><w:r><w:t xml:space="preserve">{}</w:t></w:r></w:p>"#,
            xml_escape(l)
        )
    };
    for (i, l) in lines.iter().enumerate() {
        if i % 5 == 4 {
            body.push_str(&format!(
                "<w:tbl><w:tr><w:tc>{}</w:tc></w:tr></w:tbl>",
                para(l)
            ));
        } else {
            body.push_str(&para(l));
        }
    }
    let doc = format!(
        r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body>{body}</w:body></w:document>"#
    );
    let mut entries: Vec<(String, Vec<u8>)> = vec![
        ("[Content_Types].xml".into(), CONTENT_TYPES_DOCX.into()),
        ("_rels/.rels".into(), RELS_DOCX.into()),
        ("word/document.xml".into(), doc.into_bytes()),
    ];
    for (i, png) in images.iter().enumerate() {
        entries.push((format!("word/media/image{}.png", i + 1), png.clone()));
    }
    zip_bytes(&entries)
}

const ODF_NS: &str = r#"xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" office:version="1.2""#;

fn odf(mime: &str, body: String) -> Vec<u8> {
    let manifest = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0" manifest:version="1.2"><manifest:file-entry manifest:full-path="/" manifest:media-type="{mime}"/><manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml"/></manifest:manifest>"#
    );
    let content = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><office:document-content {ODF_NS}><office:body>{body}</office:body></office:document-content>"#
    );
    zip(&[
        ("mimetype", mime.into()),
        ("META-INF/manifest.xml", manifest),
        ("content.xml", content),
    ])
}

/// An ODT: one paragraph per line.
pub fn odt(lines: &[String]) -> Vec<u8> {
    let paras: String = lines
        .iter()
        .map(|l| format!("<text:p>{}</text:p>", xml_escape(l)))
        .collect();
    odf(
        "application/vnd.oasis.opendocument.text",
        format!("<office:text>{paras}</office:text>"),
    )
}

/// An ODS: one row per line, the line in the first cell and its number in the second.
pub fn ods(lines: &[String]) -> Vec<u8> {
    let rows: String = lines
        .iter()
        .enumerate()
        .map(|(i, l)| {
            format!(
                r#"<table:table-row><table:table-cell office:value-type="string"><text:p>{}</text:p></table:table-cell><table:table-cell office:value-type="float" office:value="{i}"><text:p>{i}</text:p></table:table-cell></table:table-row>"#,
                xml_escape(l)
            )
        })
        .collect();
    ods_with_rows(&rows)
}

/// An ODS whose one table has these `<table:table-row>` elements (hostile shapes included).
pub fn ods_with_rows(rows: &str) -> Vec<u8> {
    odf(
        "application/vnd.oasis.opendocument.spreadsheet",
        format!(
            r#"<office:spreadsheet><table:table table:name="Sheet1">{rows}</table:table></office:spreadsheet>"#
        ),
    )
}

/// An XLSX: one row per line with inline strings, the line in A and its number in B.
pub fn xlsx(lines: &[String]) -> Vec<u8> {
    let rows: String = lines
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let r = i + 1;
            format!(
                r#"<row r="{r}"><c r="A{r}" t="inlineStr"><is><t xml:space="preserve">{}</t></is></c><c r="B{r}"><v>{i}</v></c></row>"#,
                xml_escape(l)
            )
        })
        .collect();
    xlsx_with_rows(&rows)
}

/// An XLSX whose one sheet has these `<row>` elements (hostile shapes included).
pub fn xlsx_with_rows(rows: &str) -> Vec<u8> {
    let sheet = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>{rows}</sheetData></worksheet>"#
    );
    zip(&[
        ("[Content_Types].xml", r#"<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/><Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/></Types>"#.into()),
        ("_rels/.rels", r#"<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>"#.into()),
        ("xl/workbook.xml", r#"<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets></workbook>"#.into()),
        ("xl/_rels/workbook.xml.rels", r#"<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/></Relationships>"#.into()),
        ("xl/worksheets/sheet1.xml", sheet),
    ])
}
