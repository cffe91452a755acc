//! The worker API: what remote workers and orchestrators say to each other over
//! HTTP. The site's `api::tasks` answers and the worker crate's client asks; both
//! use these types.
//!
//! Every call names a lease (task id + lease token) it claims to hold; the
//! orchestrator checks the token in the same statement that writes, so a report from
//! a reaped lease writes nothing and is answered 409 `lease_lost`.

use serde::{Deserialize, Serialize};

use crate::WorkPacket;
use crate::task::{FailedObject, NewFinding, NewObject, ObjectResult};

pub const GET_TASK: &str = "/get_task";
pub const REPORT_HEARTBEAT: &str = "/report_heartbeat";
pub const UPDATE_TASK_PROGRESS: &str = "/update_task_progress";
pub const COMPLETE_TASK: &str = "/complete_task";
pub const FAIL_TASK: &str = "/fail_task";

/// `POST /get_task`: up to `max_tasks` packets, waiting up to `wait_seconds` (capped at
/// `orchestrator.long_poll_timeout_seconds`) when none is ready.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GetTaskRequest {
    pub worker_id: String,
    /// Tasks the worker runs at once (shown in `/workers`).
    #[schema(minimum = 1)]
    pub slots: u32,
    /// Free slots: most packets wanted now.
    #[schema(minimum = 1)]
    pub max_tasks: u32,
    #[serde(default)]
    pub wait_seconds: Option<u64>,
}

/// Answer to `get_task` with work (204 without).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct GetTaskResponse {
    pub tasks: Vec<WorkPacket>,
}

/// `POST /report_heartbeat`
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HeartbeatRequest {
    pub worker_id: String,
    pub task_id: i64,
    pub lease_token: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct HeartbeatResponse {
    /// The job is being cancelled: stop the task and report it with `fail_task`.
    pub cancelled: bool,
    /// RFC 3339, from the database clock; absent when cancelled.
    #[serde(default)]
    pub lease_expires_at: Option<String>,
}

/// `POST /update_task_progress`: one progress record with its discovered objects,
/// written in one transaction. `attempt` + `seq` make a resent batch a no-op.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProgressRequest {
    pub worker_id: String,
    pub task_id: i64,
    pub lease_token: String,
    pub attempt: i64,
    pub seq: i64,
    pub objects: Vec<NewObject>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ProgressResponse {
    /// The same batch was already recorded; nothing new was written.
    pub duplicate: bool,
}

/// One finished task with its results.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CompletedTask {
    pub task_id: i64,
    pub lease_token: String,
    /// The outcome of each object the task covers (its packet's `payload.objects`),
    /// at most one per object.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(max_items = 1000)]
    pub objects: Vec<ObjectResult>,
    /// The outcome of a single-object task, as workers older than batched `PROCESS`
    /// tasks send it; taken as a one-element `objects`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object: Option<ObjectResult>,
    #[serde(default)]
    pub findings: Vec<NewFinding>,
    /// Objects of the task that could never be scanned (a permanent error), each with
    /// its error; recorded as `FAILED` tasks of their own. An object is either here or
    /// in `objects`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(max_items = 1000)]
    pub failed: Vec<FailedObject>,
}

impl CompletedTask {
    /// Every object outcome the completion gives, in either spelling.
    pub fn object_results(&self) -> Vec<ObjectResult> {
        self.objects.iter().chain(&self.object).cloned().collect()
    }
}

/// `POST /complete_task`: one or more completions, committed in one transaction.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CompleteRequest {
    pub worker_id: String,
    /// 1 to 1000 completions.
    #[schema(min_items = 1, max_items = 1000)]
    pub completions: Vec<CompletedTask>,
}

/// Answer to `complete_task`: 200 when every completion was accepted; 409
/// `lease_lost` with this in `details` when some were refused (the accepted ones are
/// committed, the refused ones wrote nothing).
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CompleteResponse {
    pub accepted: Vec<i64>,
    pub refused: Vec<i64>,
}

/// `POST /fail_task`
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FailRequest {
    pub worker_id: String,
    pub task_id: i64,
    pub lease_token: String,
    /// The attempt that failed (1-based); sets the retry backoff.
    pub attempt: u32,
    pub error: String,
    /// Try again (after a backoff) while attempts remain.
    pub retryable: bool,
    /// Not a failure: the worker hands the task back (shutdown, cancellation, no
    /// memory for it). Back to `PENDING` at once; it never fails the task.
    #[serde(default)]
    pub released: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FailResponse {
    /// `retrying` or `failed`.
    pub outcome: String,
}

/// Longest worker id accepted.
pub const MAX_WORKER_ID: usize = 128;
