//! OCR through the `tesseract` command (Debian's `tesseract-ocr` and
//! `tesseract-ocr-eng`): the image goes in on stdin, the text comes back on stdout.
//! Shelling out keeps the build free of C bindings and a crash of the engine away from
//! the worker.
//!
//! An image is hostile input too, so the engine runs bounded: an image whose header
//! declares more than [`MAX_PIXELS`] is never handed to it, it runs under an address
//! space and CPU-time limit (`prlimit`), its output is capped, and it is killed when
//! it outlives [`Limits::timeout`].

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Why an image gave no text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OcrError {
    /// `tesseract` is not on PATH.
    Missing,
    /// The image declares more pixels than the site OCRs.
    TooLarge,
    /// It ran and failed (unsupported image, out of memory, out of time).
    Failed,
}

/// Most pixels an image may declare to be OCR'd (about 8,000 × 5,000).
pub const MAX_PIXELS: u64 = 40_000_000;

/// Most text kept from one image.
const MAX_OUTPUT_BYTES: u64 = 16 << 20;

/// Bounds on one run of the engine.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Killed when it runs longer.
    pub timeout: Duration,
    /// Its address space.
    pub memory_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            timeout: Duration::from_secs(60),
            memory_bytes: 2 << 30,
        }
    }
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
    run(&program(), image, Limits::default())
}

/// Width × height from a PNG or JPEG header; `None` for other formats or a header
/// that cannot be read (the engine's own limits then apply).
pub fn declared_pixels(image: &[u8]) -> Option<u64> {
    if image.starts_with(b"\x89PNG\r\n\x1a\n") && image.len() >= 24 && &image[12..16] == b"IHDR" {
        let w = u32::from_be_bytes(image[16..20].try_into().ok()?);
        let h = u32::from_be_bytes(image[20..24].try_into().ok()?);
        return Some(u64::from(w) * u64::from(h));
    }
    if image.starts_with(&[0xFF, 0xD8]) {
        // Walk the JPEG segments to the first start-of-frame marker.
        let mut i = 2;
        while i + 9 < image.len() {
            if image[i] != 0xFF {
                return None;
            }
            let marker = image[i + 1];
            let len = usize::from(u16::from_be_bytes([image[i + 2], image[i + 3]]));
            let sof = matches!(marker, 0xC0..=0xCF) && !matches!(marker, 0xC4 | 0xC8 | 0xCC);
            if sof {
                let h = u16::from_be_bytes([image[i + 5], image[i + 6]]);
                let w = u16::from_be_bytes([image[i + 7], image[i + 8]]);
                return Some(u64::from(w) * u64::from(h));
            }
            i += 2 + len;
        }
    }
    None
}

/// Runs `program` on `image` within `limits`.
pub fn run(program: &str, image: &[u8], limits: Limits) -> Result<String, OcrError> {
    if declared_pixels(image).is_some_and(|p| p > MAX_PIXELS) {
        return Err(OcrError::TooLarge);
    }
    let cpu_seconds = limits.timeout.as_secs().max(1);
    let mut child = Command::new("prlimit")
        .arg(format!("--as={}", limits.memory_bytes))
        .arg(format!("--cpu={cpu_seconds}"))
        .arg("--")
        .arg(program)
        .args(["stdin", "stdout", "-l", "eng"])
        .env("OMP_THREAD_LIMIT", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|_| OcrError::Failed)?;
    // Write from another thread: tesseract may fill its stdout pipe before it has
    // read all of stdin. Read on another too, so the wait below can time out.
    let mut stdin = child.stdin.take().ok_or(OcrError::Failed)?;
    let input = image.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let stdout = child.stdout.take().ok_or(OcrError::Failed)?;
    let reader = std::thread::spawn(move || {
        let mut out = Vec::new();
        stdout
            .take(MAX_OUTPUT_BYTES)
            .read_to_end(&mut out)
            .map(|_| out)
    });
    let deadline = Instant::now() + limits.timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                tracing::warn!(
                    timeout_s = limits.timeout.as_secs(),
                    "OCR ran out of time and was stopped"
                );
                return Err(OcrError::Failed);
            }
        }
    };
    // The child has exited, so both pipes are closed and these threads end.
    let wrote = writer.join().map_err(|_| OcrError::Failed)?;
    let out = reader.join().map_err(|_| OcrError::Failed)?;
    match status.code() {
        Some(0) if wrote.is_ok() => {}
        // prlimit could not run the engine: not installed, or not executable.
        Some(126 | 127) => return Err(OcrError::Missing),
        _ => return Err(OcrError::Failed),
    }
    let out = out.map_err(|_| OcrError::Failed)?;
    Ok(String::from_utf8_lossy(&out).into_owned())
}
