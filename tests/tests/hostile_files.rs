//! Hostile files: objects written to a share by people the site does not trust.
//! Each must end `COMPLETE`, `PARTIAL` or `SKIPPED` with a reason, in bounded memory
//! and time, without taking the process down.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use meridian_scan::extract::{ExtractSettings, ocr, scan_file};
use meridian_scan::settings::FilesystemSource;
use meridian_scan::{ObjectScan, classify, filesystem};
use meridian_tests::documents::{docx_with_media, ods_with_rows, xlsx_with_rows};
use meridian_wire::states::ObjectOutcome;

fn scan_bytes(bytes: &[u8]) -> ObjectScan {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("object");
    std::fs::write(&path, bytes).unwrap();
    let file = std::fs::File::open(&path).unwrap();
    let classifiers = classify::built_in();
    scan_file(
        file,
        "object",
        1,
        u64::MAX,
        &classifiers,
        ExtractSettings::default(),
        &AtomicBool::new(false),
    )
    .unwrap()
}

/// Resident memory of this process, in bytes.
fn resident_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .unwrap()
        * 1024
}

/// Regression: an XLSX of ~1.5 KB whose only cells are A1 and XFD1048576 made the
/// spreadsheet reader allocate every cell between them (hundreds of GB) and abort.
#[test]
fn an_xlsx_with_two_far_apart_cells_is_read_in_bounded_memory() {
    let rows = r#"<row r="1"><c r="A1" t="inlineStr"><is><t>ada.byron@example.com</t></is></c></row><row r="1048576"><c r="XFD1048576" t="inlineStr"><is><t>x</t></is></c></row>"#;
    let bytes = xlsx_with_rows(rows);
    assert!(
        bytes.len() < 4096,
        "the bomb is small: {} bytes",
        bytes.len()
    );
    let before = resident_bytes();
    let scan = scan_bytes(&bytes);
    let grown = resident_bytes().saturating_sub(before);
    assert!(
        grown < 256 << 20,
        "scanning grew resident memory by {grown} bytes"
    );
    assert!(
        matches!(
            scan.outcome,
            Some(ObjectOutcome::Complete | ObjectOutcome::Partial)
        ),
        "{:?} {:?}",
        scan.outcome,
        scan.reason
    );
    let emails: i64 = scan
        .findings
        .iter()
        .filter(|f| f.classifier == "email")
        .map(|f| f.count)
        .sum();
    assert_eq!(emails, 1, "the real cell is still scanned");
}

/// Regression: ODS repeat counts reach the same path — one cell repeated across
/// every column of every row.
#[test]
fn an_ods_whose_repeat_counts_claim_billions_of_cells_is_skipped_with_a_reason() {
    let rows = r#"<table:table-row table:number-rows-repeated="1048576"><table:table-cell table:number-columns-repeated="16384" office:value-type="string"><text:p>x</text:p></table:table-cell></table:table-row>"#;
    let bytes = ods_with_rows(rows);
    let before = resident_bytes();
    let scan = scan_bytes(&bytes);
    let grown = resident_bytes().saturating_sub(before);
    assert!(
        grown < 256 << 20,
        "scanning grew resident memory by {grown} bytes"
    );
    assert_eq!(scan.outcome, Some(ObjectOutcome::Skipped));
    assert_eq!(
        scan.reason.as_deref(),
        Some(meridian_scan::extract::reasons::SHEET_TOO_LARGE)
    );
}

/// A spreadsheet of ordinary size is still read whole, cell by cell.
#[test]
fn an_ordinary_ods_is_still_scanned() {
    let rows = r#"<table:table-row><table:table-cell office:value-type="string"><text:p>alan.turing@example.org</text:p></table:table-cell></table:table-row><table:table-row table:number-rows-repeated="3"><table:table-cell table:number-columns-repeated="4" office:value-type="string"><text:p>078-05-1120</text:p></table:table-cell></table:table-row>"#;
    let scan = scan_bytes(&ods_with_rows(rows));
    assert_eq!(
        scan.outcome,
        Some(ObjectOutcome::Complete),
        "{:?}",
        scan.reason
    );
    let count = |name: &str| -> i64 {
        scan.findings
            .iter()
            .filter(|f| f.classifier == name)
            .map(|f| f.count)
            .sum()
    };
    assert_eq!(count("email"), 1);
    assert_eq!(count("us_ssn"), 12, "3 rows of 4 repeated cells");
}

fn filesystem_source(root: &std::path::Path, max_file_size_mb: u64) -> FilesystemSource {
    FilesystemSource {
        id: "ds_hostile".into(),
        description: String::new(),
        root: root.to_path_buf(),
        include: vec!["**/*".into()],
        exclude: Vec::new(),
        max_file_size_mb,
        hidden_files: true,
    }
}

fn process(src: &FilesystemSource, key: &str, limit_mb: Option<u64>) -> ObjectScan {
    filesystem::process(
        src,
        key,
        1,
        limit_mb,
        &classify::built_in(),
        ExtractSettings::default(),
        &AtomicBool::new(false),
    )
    .unwrap()
}

/// Runs `f` on a thread of its own and fails the test if it takes longer than `secs`
/// (the thread is left behind: it is what would have hung a worker).
fn within<T: Send + 'static>(secs: u64, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(Duration::from_secs(secs))
        .unwrap_or_else(|_| panic!("still running after {secs} s"))
}

/// Regression: a regular file replaced by a FIFO after discovery blocked `open()`
/// forever, and the heartbeat kept renewing the hung task's lease.
#[test]
fn a_fifo_in_place_of_a_discovered_file_is_skipped_without_blocking() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("report.txt");
    let status = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(status.success());
    let src = filesystem_source(dir.path(), 16);
    let scan = within(10, move || process(&src, "report.txt", None));
    assert_eq!(scan.outcome, Some(ObjectOutcome::Skipped));
    assert_eq!(scan.reason.as_deref(), Some("not a regular file"));
}

/// Regression: the connector checked the path, then opened it by name, following
/// links; a directory swapped for a link between the two let it read outside the
/// root. Swaps race the reads here; not one read may reach the outside file.
#[test]
fn a_directory_swapped_for_a_link_during_a_scan_never_leads_outside_the_root() {
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(
        outside.path().join("secret.txt"),
        "root@site-database.example.com\n",
    )
    .unwrap();
    let share = tempfile::tempdir().unwrap();
    let real = share.path().join("d");
    std::fs::create_dir(&real).unwrap();
    std::fs::write(real.join("secret.txt"), "nothing to see\n").unwrap();
    let parked = share.path().join("d.parked");
    let link = share.path().join("d");
    let target = outside.path().to_path_buf();
    let stop = Arc::new(AtomicBool::new(false));
    let swapper = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                std::fs::rename(&link, &parked).unwrap();
                std::os::unix::fs::symlink(&target, &link).unwrap();
                std::thread::yield_now();
                std::fs::remove_file(&link).unwrap();
                std::fs::rename(&parked, &link).unwrap();
            }
        })
    };
    let src = filesystem_source(share.path(), 16);
    let mut leaked = 0;
    for _ in 0..3000 {
        let scan = process(&src, "d/secret.txt", None);
        leaked += scan.findings.len();
    }
    stop.store(true, Ordering::Relaxed);
    swapper.join().unwrap();
    assert_eq!(leaked, 0, "findings from a file outside the root");
}

/// Regression: a job's `max_file_size_mb` replaced the data source's limit instead
/// of lowering it; the site's limit is a ceiling a job can lower, never raise.
#[test]
fn a_job_cannot_raise_the_sites_file_size_limit() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::new();
    while text.len() < 2 << 20 {
        text.push_str("jane.doe@example.com\n");
    }
    std::fs::write(dir.path().join("big.txt"), &text).unwrap();
    let src = filesystem_source(dir.path(), 1);
    let raised = process(&src, "big.txt", Some(100));
    assert_eq!(
        raised.outcome,
        Some(ObjectOutcome::Skipped),
        "{:?}",
        raised.reason
    );
    assert!(raised.findings.is_empty());
    let small = filesystem_source(dir.path(), 100);
    let lowered = process(&small, "big.txt", Some(1));
    assert_eq!(lowered.outcome, Some(ObjectOutcome::Skipped));
    let allowed = process(&small, "big.txt", None);
    assert_eq!(allowed.outcome, Some(ObjectOutcome::Complete));
}

/// A file that grew past the limit after its size was checked is read only up to
/// the limit: text ends `PARTIAL`, a document (read whole) `SKIPPED`.
#[test]
fn a_file_that_grew_past_the_limit_is_read_only_up_to_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.txt");
    std::fs::write(&path, "a@example.com\n".repeat(1000)).unwrap();
    let classifiers = classify::built_in();
    let scan = scan_file(
        std::fs::File::open(&path).unwrap(),
        "log.txt",
        1,
        140,
        &classifiers,
        ExtractSettings::default(),
        &AtomicBool::new(false),
    )
    .unwrap();
    assert_eq!(scan.outcome, Some(ObjectOutcome::Partial));
    let emails: i64 = scan.findings.iter().map(|f| f.count).sum();
    assert_eq!(emails, 10, "only the first 140 bytes were read");
}

/// A PNG header declaring `width` × `height` pixels, with a tiny image body.
fn png_declaring(width: u32, height: u32) -> Vec<u8> {
    let mut png = meridian_tests::bitmap::render_png(&["x".to_owned()]);
    png[16..20].copy_from_slice(&width.to_be_bytes());
    png[20..24].copy_from_slice(&height.to_be_bytes());
    png
}

/// Regression: a small PNG declaring 32k × 32k pixels went to the OCR engine as is.
#[test]
fn an_image_declaring_a_billion_pixels_is_not_handed_to_ocr() {
    let bomb = png_declaring(32_768, 32_768);
    assert!(bomb.len() < 64 << 10);
    let scan = within(20, move || scan_bytes(&bomb));
    assert_eq!(scan.outcome, Some(ObjectOutcome::Skipped));
    assert_eq!(
        scan.reason.as_deref(),
        Some(meridian_scan::extract::reasons::IMAGE_TOO_LARGE)
    );
}

/// Regression: OCR ran without a time limit; an engine that hangs is killed.
#[test]
fn an_ocr_engine_that_hangs_is_killed_at_its_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let engine = dir.path().join("hanging-ocr");
    std::fs::write(&engine, "#!/bin/sh\nexec sleep 600\n").unwrap();
    std::fs::set_permissions(&engine, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let image = meridian_tests::bitmap::render_png(&["hello".to_owned()]);
    let limits = ocr::Limits {
        timeout: Duration::from_secs(1),
        ..ocr::Limits::default()
    };
    let started = std::time::Instant::now();
    let program = engine.to_str().unwrap().to_owned();
    let result = within(20, move || ocr::run(&program, &image, limits));
    assert_eq!(result, Err(ocr::OcrError::Failed));
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

/// Regression: every image embedded in a document was inflated and OCR'd, however
/// many there were; past the cap the document ends `PARTIAL`.
#[test]
fn a_document_with_hundreds_of_embedded_images_ocrs_only_some() {
    let image = png_declaring(1, 1);
    let images = vec![image; 400];
    let docx = docx_with_media(&["nothing here".to_owned()], &images);
    let scan = within(120, move || scan_bytes(&docx));
    assert_eq!(scan.outcome, Some(ObjectOutcome::Partial));
    assert_eq!(
        scan.reason.as_deref(),
        Some(meridian_scan::extract::reasons::EMBEDDED_IMAGES_NOT_OCRD)
    );
}

/// Regression: a PDF whose one Flate stream of about a megabyte inflates to
/// 300 MB was inflated whole, in memory, by the PDF reader.
#[test]
fn a_pdf_decompression_bomb_is_skipped_before_it_is_inflated() {
    use std::io::Write as _;
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..300 {
        z.write_all(&zeros).unwrap();
    }
    let stream = z.finish().unwrap();
    let mut pdf = format!(
        "%PDF-1.4\n1 0 obj\n<< /Length {} /Filter /FlateDecode >>\nstream\n",
        stream.len()
    )
    .into_bytes();
    pdf.extend_from_slice(&stream);
    pdf.extend_from_slice(b"\nendstream\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n");
    assert!(pdf.len() < 2 << 20, "{} bytes", pdf.len());
    let before = resident_bytes();
    let scan = within(60, move || scan_bytes(&pdf));
    let grown = resident_bytes().saturating_sub(before);
    assert!(
        grown < 128 << 20,
        "scanning grew resident memory by {grown} bytes"
    );
    assert_eq!(scan.outcome, Some(ObjectOutcome::Skipped));
    assert_eq!(
        scan.reason.as_deref(),
        Some(meridian_scan::extract::reasons::PDF_TOO_LARGE)
    );
}

/// Regression: a sample query of a customer database waited without limit on a
/// lock (no `statement_timeout`/`lock_timeout`), holding the task's lease for ever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sample_query_blocked_on_a_lock_ends_with_a_retryable_error() {
    use sqlx::Connection as _;
    let url = meridian_tests::pg::fresh_database().await;
    let mut holder = sqlx::PgConnection::connect(&url).await.unwrap();
    sqlx::query("CREATE TABLE people (email text)")
        .execute(&mut holder)
        .await
        .unwrap();
    sqlx::query("INSERT INTO people VALUES ('grace@example.com')")
        .execute(&mut holder)
        .await
        .unwrap();
    sqlx::query("BEGIN").execute(&mut holder).await.unwrap();
    sqlx::query("LOCK TABLE people IN ACCESS EXCLUSIVE MODE")
        .execute(&mut holder)
        .await
        .unwrap();
    let src: meridian_scan::settings::PostgresSource = serde_json::from_value(serde_json::json!({
        "id": "ds_locked",
        "url": url,
    }))
    .unwrap();
    let started = std::time::Instant::now();
    let result = tokio::time::timeout(
        Duration::from_secs(60),
        meridian_scan::postgres::process(
            &src,
            "public.people",
            1,
            &classify::built_in(),
            meridian_scan::postgres::Sampling {
                rows: 100,
                percent: 100,
            },
            &AtomicBool::new(false),
        ),
    )
    .await
    .expect("the scan waited on the lock for a minute");
    assert!(
        matches!(result, Err(meridian_scan::ScanError::Retryable(_))),
        "{result:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(30));
    sqlx::query("ROLLBACK").execute(&mut holder).await.unwrap();
}
