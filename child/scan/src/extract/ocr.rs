//! OCR through the `tesseract` command (Debian's `tesseract-ocr` and
//! `tesseract-ocr-eng`): the image goes in on stdin, the text comes back on stdout.
//! Shelling out keeps the build free of C bindings and a crash of the engine away from
//! the worker.

use std::io::Write;
use std::process::{Command, Stdio};

/// Why an image gave no text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OcrError {
    /// `tesseract` is not on PATH.
    Missing,
    /// It ran and failed (unsupported image, out of memory).
    Failed,
}

/// The program run; `MERIDIAN_TESSERACT` overrides it (a path, or a name to test the
/// missing-engine path with).
fn program() -> String {
    std::env::var("MERIDIAN_TESSERACT").unwrap_or_else(|_| "tesseract".to_owned())
}

/// True when the engine can be started.
pub fn available() -> bool {
    Command::new(program())
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The text tesseract reads in `image` (PNG, JPEG or TIFF bytes).
pub fn image_text(image: &[u8]) -> Result<String, OcrError> {
    let mut child = Command::new(program())
        .args(["stdin", "stdout", "-l", "eng"])
        .env("OMP_THREAD_LIMIT", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound | std::io::ErrorKind::PermissionDenied => {
                OcrError::Missing
            }
            _ => OcrError::Failed,
        })?;
    // Write from another thread: tesseract may fill its stdout pipe before it has
    // read all of stdin.
    let mut stdin = child.stdin.take().ok_or(OcrError::Failed)?;
    let input = image.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let out = child.wait_with_output().map_err(|_| OcrError::Failed)?;
    let wrote = writer.join().map_err(|_| OcrError::Failed)?;
    if !out.status.success() || wrote.is_err() {
        return Err(OcrError::Failed);
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
