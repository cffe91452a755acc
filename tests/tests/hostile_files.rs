//! Hostile files: objects written to a share by people the site does not trust.
//! Each must end `COMPLETE`, `PARTIAL` or `SKIPPED` with a reason, in bounded memory
//! and time, without taking the process down.

use std::sync::atomic::AtomicBool;

use meridian_scan::classify;
use meridian_scan::extract::{ExtractSettings, scan_file};
use meridian_tests::documents::{ods_with_rows, xlsx_with_rows};
use meridian_wire::states::ObjectOutcome;

fn scan_bytes(bytes: &[u8]) -> meridian_scan::ObjectScan {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("object");
    std::fs::write(&path, bytes).unwrap();
    let file = std::fs::File::open(&path).unwrap();
    let classifiers = classify::built_in();
    scan_file(
        file,
        "object",
        1,
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
