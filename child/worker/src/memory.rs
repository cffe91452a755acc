//! The pre-task memory check of remote workers: a worker does not take a
//! task that would push its resident memory past `worker.process_memory_limit_mb`.
//! A task's need is estimated from its largest object's size (what the extractor may
//! hold at once: a batch's objects are read one after the other); discovery tasks
//! stream and count as nothing extra.

use meridian_wire::WorkPacket;

/// This process's resident memory in bytes (Linux `/proc/self/status`); 0 when unknown,
/// which never blocks work.
pub fn resident_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

/// Bytes a task is expected to need beyond what the process already uses.
pub fn estimate(packet: &WorkPacket) -> u64 {
    let size = |o: &serde_json::Value| o["size_bytes"].as_u64().unwrap_or(0);
    let largest = match packet.payload["objects"].as_array() {
        Some(objects) => objects.iter().map(size).max().unwrap_or(0),
        None => size(&packet.payload),
    };
    largest.saturating_mul(2)
}

/// Whether `extra` more bytes fit under `limit_mb` on top of `resident`.
pub fn fits(resident: u64, extra: u64, limit_mb: u64) -> bool {
    resident.saturating_add(extra) <= limit_mb.saturating_mul(1024 * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_task_that_would_cross_the_limit_does_not_fit() {
        let mb = 1024 * 1024;
        assert!(fits(100 * mb, 10 * mb, 128));
        assert!(!fits(100 * mb, 40 * mb, 128));
        assert!(resident_bytes() > 0, "this process has resident memory");
    }
}
