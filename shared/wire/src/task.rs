//! What a worker and the orchestrator say about a leased task, whichever side of the
//! wire the worker is on: the lease a report claims to hold, discovered objects,
//! findings and outcomes. In-process workers hand these to the engine directly;
//! remote workers send them in the worker API's bodies. No database types.

use serde::{Deserialize, Serialize};

use crate::states::ObjectOutcome;

/// A task and the token of the lease a report claims to hold.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Lease {
    pub task_id: i64,
    pub lease_token: String,
}

/// Answer to a heartbeat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeartbeatOutcome {
    Extended {
        expires_at: i64,
    },
    /// The lease is still held but the job is being cancelled: stop the task.
    Cancelled,
    /// The lease was reaped or the task finished: stop and discard results.
    Lost,
}

/// One batch of objects found by a discovery task.
#[derive(Debug, Clone, Default)]
pub struct DiscoveryBatch {
    /// The task's attempt number; with `seq` it makes a retried report idempotent.
    pub attempt: i64,
    /// 0-based batch number within the attempt.
    pub seq: i64,
    pub objects: Vec<NewObject>,
}

/// How many objects one `PROCESS` task covers: discovery groups a batch's objects
/// into tasks of at most `objects` objects and `bytes` bytes, whichever comes first;
/// an object of `bytes` or more gets a task of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaskBounds {
    pub objects: usize,
    pub bytes: i64,
}

impl Default for TaskBounds {
    fn default() -> Self {
        TaskBounds {
            objects: 256,
            bytes: 16 << 20,
        }
    }
}

impl TaskBounds {
    /// One object per task, as sites before batched tasks made them.
    pub const ONE: TaskBounds = TaskBounds {
        objects: 1,
        bytes: i64::MAX,
    };

    /// The task (0-based, in batch order) each object goes to; `None` for an object
    /// discovery already skipped, which gets no task.
    pub fn group(&self, objects: &[NewObject]) -> Vec<Option<i32>> {
        let mut task: i32 = -1;
        let (mut count, mut bytes) = (usize::MAX, 0i64);
        objects
            .iter()
            .map(|o| {
                if o.skipped_reason.is_some() {
                    return None;
                }
                let size = o.size_bytes.max(0);
                if count >= self.objects.max(1) || bytes.saturating_add(size) > self.bytes {
                    task += 1;
                    (count, bytes) = (0, 0);
                }
                count += 1;
                bytes = bytes.saturating_add(size);
                Some(task)
            })
            .collect()
    }
}

/// One discovered object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct NewObject {
    pub key: String,
    pub size_bytes: i64,
    pub modified_at: Option<i64>,
    /// Set when discovery already knows the object will not be scanned.
    pub skipped_reason: Option<String>,
}

/// Answer to a progress report or completion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportOutcome {
    Accepted,
    /// The same report was already recorded; nothing new was written.
    Duplicate,
    /// The lease token is not the task's current one; nothing was written.
    LeaseLost,
}

/// A finished task and what it found: the outcome of each object a `PROCESS` task
/// covers (none for a `DISCOVERY` task), the findings in them, and the objects that
/// could never be scanned.
#[derive(Debug, Clone)]
pub struct Completion {
    pub lease: Lease,
    pub objects: Vec<ObjectResult>,
    pub findings: Vec<NewFinding>,
    /// Objects of the task whose scan failed for good (a permanent error): each is
    /// recorded as a `FAILED` task of its own, as if it had been alone in its task,
    /// and counts against the job's failure threshold.
    pub failed: Vec<FailedObject>,
}

/// An object of a `PROCESS` task that could never be scanned, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FailedObject {
    pub object_id: i64,
    pub error: String,
}

/// How far a `PROCESS` task got with one of its objects.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ObjectResult {
    pub object_id: i64,
    pub outcome: ObjectOutcome,
    pub reason: Option<String>,
}

/// A masked finding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct NewFinding {
    pub object_id: i64,
    pub classifier: String,
    pub location: String,
    pub count: i64,
    pub masked_sample: String,
    pub confidence: f64,
}

/// A failure report.
#[derive(Debug, Clone)]
pub struct Failure {
    pub error: String,
    pub retryable: bool,
    /// The task's objects may be at fault: a batch that failed this way on its retry
    /// is split (not when the task was only stopped, by a cancellation say).
    pub split: bool,
    pub max_retries: u32,
    pub backoff_ms: i64,
}

/// What `fail` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailOutcome {
    /// Back to `PENDING`, not before the backoff.
    Retrying,
    Failed,
    LeaseLost,
}

/// How a task ended without completing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// Try again after a backoff while attempts remain.
    Retryable,
    /// Never try again.
    Permanent,
    /// Stopped because its job is being cancelled: back to `PENDING` at once, where
    /// the finisher cancels it with the job's other pending tasks.
    Cancelled,
}

/// One row of the `system_parameters` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SystemParameter {
    /// `global` or a node id.
    pub scope: String,
    /// Dotted key, e.g. `worker.max_retries`.
    pub key: String,
    /// JSON (`5`, `true`) or plain text (`WEIGHTED`).
    pub value: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(size_bytes: i64, skipped: bool) -> NewObject {
        NewObject {
            key: format!("{size_bytes}"),
            size_bytes,
            modified_at: None,
            skipped_reason: skipped.then(|| "too large".to_owned()),
        }
    }

    #[test]
    fn tasks_close_at_the_object_count_or_the_byte_bound_and_skip_skipped_objects() {
        let bounds = TaskBounds {
            objects: 3,
            bytes: 100,
        };
        let objects = [
            object(10, false),
            object(10, false),
            object(0, true),
            object(10, false),
            object(10, false),
            object(95, false),
            object(500, false),
            object(1, false),
            object(-5, false),
        ];
        assert_eq!(
            bounds.group(&objects),
            [
                Some(0),
                Some(0),
                None,
                Some(0),
                Some(1),
                Some(2),
                Some(3),
                Some(4),
                Some(4)
            ]
        );
        assert_eq!(
            TaskBounds::ONE.group(&objects[..3]),
            [Some(0), Some(1), None]
        );
    }
}
