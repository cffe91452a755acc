//! The worker API, served by `--mode orchestrator`: `get_task` long-polls
//! for work packets, the other calls report on a lease. Each report is fenced by its
//! lease token in the same statement that writes (every report goes through the
//! engine's `reports` to the store), so a report from a reaped lease writes nothing and gets 409
//! `lease_lost`. A report that is not about its lease's task (another phase, another
//! object) or holds a finding no scanner produces (unknown classifier, unbounded
//! count or strings, an unmasked value) writes nothing and gets 422 naming what was
//! wrong. A database outage is 503: the worker backs off and retries.

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use meridian_wire::time::rfc3339_from_millis;

use super::worker_auth::WorkerAuth;
use super::{ApiError, AppState};
use meridian_engine::reports::{self, ReportError};
use meridian_service::extract::ApiJson;
use meridian_store::{
    Completion, DiscoveryBatch, FailOutcome, HeartbeatOutcome, Lease, ReportOutcome,
};
use meridian_wire::task::FailureKind;
use meridian_wire::worker::*;

/// Most completions in one `complete_task` request.
const MAX_COMPLETIONS: usize = 1000;

/// Most objects in one progress record.
const MAX_OBJECTS: usize = 100_000;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(GET_TASK, post(get_task))
        .route(REPORT_HEARTBEAT, post(report_heartbeat))
        .route(UPDATE_TASK_PROGRESS, post(update_task_progress))
        .route(COMPLETE_TASK, post(complete_task))
        .route(FAIL_TASK, post(fail_task))
}

fn lease_lost(task_id: i64) -> ApiError {
    ApiError::LeaseLost {
        message: format!(
            "task {task_id}: the lease is no longer current (reaped, finished or handed back); stop the task"
        ),
        details: Some(serde_json::json!({ "task_id": task_id })),
    }
}

/// A refused report is the worker's fault (422, naming the task and what was wrong);
/// a store failure answers as everywhere else.
fn report_error(e: ReportError) -> ApiError {
    match e {
        ReportError::Refused { task_id, .. } => ApiError::Unprocessable {
            message: e.to_string(),
            details: Some(serde_json::json!({ "task_id": task_id })),
        },
        ReportError::Store(e) => e.into(),
    }
}

fn check_worker_id(id: &str) -> Result<(), ApiError> {
    if id.is_empty() || id.len() > MAX_WORKER_ID {
        return Err(ApiError::Unprocessable {
            message: format!("worker_id must be 1 to {MAX_WORKER_ID} characters"),
            details: None,
        });
    }
    Ok(())
}

async fn get_task(
    State(app): State<AppState>,
    auth: WorkerAuth,
    ApiJson(req): ApiJson<GetTaskRequest>,
) -> Result<Response, ApiError> {
    check_worker_id(&req.worker_id)?;
    auth.check_worker(&req.worker_id)?;
    let cfg = app.cfg();
    let cap = cfg.orchestrator.max_tasks_per_poll;
    if req.max_tasks == 0 || req.slots == 0 {
        return Err(ApiError::Unprocessable {
            message: "max_tasks and slots must be at least 1".into(),
            details: None,
        });
    }
    let max = req.max_tasks.min(cap) as usize;
    let limit = cfg.orchestrator.long_poll_timeout_seconds;
    let wait = Duration::from_secs(req.wait_seconds.unwrap_or(limit).min(limit));
    let Some(remote) = app.remote.get() else {
        return Err(ApiError::NotFound("no worker API here".into()));
    };
    remote.saw(&req.worker_id, req.slots);
    let tasks = remote.get_tasks(&req.worker_id, max, wait).await?;
    if tasks.is_empty() {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    Ok(Json(GetTaskResponse { tasks }).into_response())
}

async fn report_heartbeat(
    State(app): State<AppState>,
    auth: WorkerAuth,
    ApiJson(req): ApiJson<HeartbeatRequest>,
) -> Result<Json<HeartbeatResponse>, ApiError> {
    auth.check_worker(&req.worker_id)?;
    let lease = Lease {
        task_id: req.task_id,
        lease_token: req.lease_token,
    };
    if let Some(remote) = app.remote.get() {
        remote.track(&req.worker_id, std::iter::empty(), &[]);
    }
    match reports::heartbeat(&app, &lease).await? {
        HeartbeatOutcome::Extended { expires_at } => Ok(Json(HeartbeatResponse {
            cancelled: false,
            lease_expires_at: Some(rfc3339_from_millis(expires_at)),
        })),
        HeartbeatOutcome::Cancelled => Ok(Json(HeartbeatResponse {
            cancelled: true,
            lease_expires_at: None,
        })),
        HeartbeatOutcome::Lost => {
            metrics::counter!("meridian_reports_refused_total").increment(1);
            Err(lease_lost(req.task_id))
        }
    }
}

async fn update_task_progress(
    State(app): State<AppState>,
    auth: WorkerAuth,
    ApiJson(req): ApiJson<ProgressRequest>,
) -> Result<Json<ProgressResponse>, ApiError> {
    auth.check_worker(&req.worker_id)?;
    // The worker sizes batches from its own file, which may differ from this replica's
    // live value; only the key's ceiling is enforced (and api.max_body_bytes).
    if req.objects.len() > MAX_OBJECTS {
        return Err(ApiError::Unprocessable {
            message: format!(
                "{} objects in one progress record; at most {MAX_OBJECTS} (the ceiling of connector.discovery_batch_write_size)",
                req.objects.len()
            ),
            details: None,
        });
    }
    let lease = Lease {
        task_id: req.task_id,
        lease_token: req.lease_token,
    };
    let batch = DiscoveryBatch {
        attempt: req.attempt,
        seq: req.seq,
        objects: req.objects,
    };
    match reports::discovered(&app, &lease, &batch)
        .await
        .map_err(report_error)?
    {
        ReportOutcome::Accepted => Ok(Json(ProgressResponse { duplicate: false })),
        ReportOutcome::Duplicate => Ok(Json(ProgressResponse { duplicate: true })),
        ReportOutcome::LeaseLost => Err(lease_lost(req.task_id)),
    }
}

async fn complete_task(
    State(app): State<AppState>,
    auth: WorkerAuth,
    ApiJson(req): ApiJson<CompleteRequest>,
) -> Result<Json<CompleteResponse>, ApiError> {
    auth.check_worker(&req.worker_id)?;
    if req.completions.is_empty() || req.completions.len() > MAX_COMPLETIONS {
        return Err(ApiError::Unprocessable {
            message: format!("completions must hold 1 to {MAX_COMPLETIONS} tasks"),
            details: None,
        });
    }
    let batch: Vec<Completion> = req
        .completions
        .into_iter()
        .map(|c| Completion {
            objects: c.object_results(),
            lease: Lease {
                task_id: c.task_id,
                lease_token: c.lease_token,
            },
            findings: c.findings,
            failed: c.failed,
        })
        .collect();
    let outcomes = reports::completed(&app, &batch)
        .await
        .map_err(report_error)?;
    let mut answer = CompleteResponse::default();
    for (c, o) in batch.iter().zip(outcomes) {
        if o == ReportOutcome::LeaseLost {
            answer.refused.push(c.lease.task_id);
        } else {
            answer.accepted.push(c.lease.task_id);
        }
    }
    if let Some(remote) = app.remote.get() {
        let ended: Vec<i64> = batch.iter().map(|c| c.lease.task_id).collect();
        remote.track(&req.worker_id, std::iter::empty(), &ended);
    }
    if answer.refused.is_empty() {
        return Ok(Json(answer));
    }
    Err(ApiError::LeaseLost {
        message: format!(
            "{} of {} completions refused: their leases are no longer current; nothing was written for them",
            answer.refused.len(),
            answer.refused.len() + answer.accepted.len()
        ),
        details: serde_json::to_value(&answer).ok(),
    })
}

async fn fail_task(
    State(app): State<AppState>,
    auth: WorkerAuth,
    ApiJson(req): ApiJson<FailRequest>,
) -> Result<Json<FailResponse>, ApiError> {
    auth.check_worker(&req.worker_id)?;
    let lease = Lease {
        task_id: req.task_id,
        lease_token: req.lease_token,
    };
    let kind = if req.released {
        FailureKind::Cancelled
    } else if req.retryable {
        FailureKind::Retryable
    } else {
        FailureKind::Permanent
    };
    let outcome = reports::failed(&app, &lease, req.attempt.max(1), &req.error, kind).await?;
    if let Some(remote) = app.remote.get() {
        remote.track(&req.worker_id, std::iter::empty(), &[req.task_id]);
    }
    match outcome {
        FailOutcome::Retrying => Ok(Json(FailResponse {
            outcome: "retrying".into(),
        })),
        FailOutcome::Failed => Ok(Json(FailResponse {
            outcome: "failed".into(),
        })),
        FailOutcome::LeaseLost => Err(lease_lost(req.task_id)),
    }
}
