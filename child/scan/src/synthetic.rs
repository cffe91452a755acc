//! The `synthetic` connector: objects that exist only as numbers, for load tests,
//! benchmarks and failure drills. Discovery reports `objects` keys; processing one
//! takes `work_ms` and fails when the source is told to.

use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use meridian_wire::states::ObjectOutcome;

use super::{BatchSink, ObjectScan, ScanError, check};
use crate::settings::SyntheticSource;
use meridian_wire::task::NewObject;

pub fn discover(
    src: &SyntheticSource,
    batch_size: usize,
    sink: &mut BatchSink<'_>,
    abort: &AtomicBool,
) -> Result<(), ScanError> {
    let mut batch = Vec::with_capacity(batch_size.min(src.objects as usize));
    for i in 1..=src.objects {
        batch.push(NewObject {
            key: format!("object-{i:010}"),
            size_bytes: 0,
            modified_at: None,
            skipped_reason: None,
        });
        if batch.len() >= batch_size {
            check(abort)?;
            if !sink(std::mem::take(&mut batch)) {
                return Err(ScanError::Aborted);
            }
        }
    }
    if !batch.is_empty() && !sink(batch) {
        return Err(ScanError::Aborted);
    }
    Ok(())
}

pub fn process(
    src: &SyntheticSource,
    key: &str,
    attempt: u32,
    abort: &AtomicBool,
) -> Result<ObjectScan, ScanError> {
    let index: u64 = key.trim_start_matches("object-").parse().unwrap_or(0);
    let deadline = Instant::now() + Duration::from_millis(src.work_ms);
    while Instant::now() < deadline {
        check(abort)?;
        std::thread::sleep(
            deadline
                .saturating_duration_since(Instant::now())
                .min(Duration::from_millis(50)),
        );
    }
    if src.fail_permanently_every > 0 && index.is_multiple_of(src.fail_permanently_every) {
        return Err(ScanError::Permanent(format!(
            "{key}: synthetic permanent failure"
        )));
    }
    if attempt <= src.fail_retryable_attempts {
        return Err(ScanError::Retryable(format!(
            "{key}: synthetic retryable failure on attempt {attempt}"
        )));
    }
    Ok(ObjectScan {
        outcome: Some(ObjectOutcome::Complete),
        reason: None,
        findings: Vec::new(),
    })
}
