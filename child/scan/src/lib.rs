//! The scanner: connectors that list and read a data source's objects, and
//! classifiers that find sensitive values in their text. Everything here is
//! synchronous and runs on blocking threads; raw values never leave this module,
//! only masked samples and counts.

pub mod beneath;
pub mod classify;
pub mod extract;
pub mod filesystem;
pub mod mask;
pub mod postgres;
pub mod sensitivity;
pub mod settings;
pub mod synthetic;

use std::sync::atomic::{AtomicBool, Ordering};

use meridian_wire::states::ObjectOutcome;

use meridian_wire::task::{NewFinding, NewObject};

/// Why scanning stopped early.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    /// Worth another attempt (I/O hiccup, share briefly unavailable).
    #[error("{0}")]
    Retryable(String),
    /// Another attempt would fail the same way.
    #[error("{0}")]
    Permanent(String),
    /// The lease was lost or the job cancelled.
    #[error("aborted")]
    Aborted,
}

/// What scanning one object produced.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ObjectScan {
    pub outcome: Option<ObjectOutcome>,
    pub reason: Option<String>,
    pub findings: Vec<NewFinding>,
}

/// Set by the heartbeat when the lease is lost or the job cancelled.
pub fn check(abort: &AtomicBool) -> Result<(), ScanError> {
    if abort.load(Ordering::Relaxed) {
        Err(ScanError::Aborted)
    } else {
        Ok(())
    }
}

/// Newlines in `b`, jumping between them with `memchr` (a byte-by-byte count was a
/// twentieth of the scan).
pub(crate) fn newlines(b: &[u8]) -> u64 {
    memchr::memchr_iter(b'\n', b).count() as u64
}

/// Receives discovered objects in batches; `false` means stop (lease lost).
pub type BatchSink<'a> = dyn FnMut(Vec<NewObject>) -> bool + 'a;
