//! Jobs: start, status, delta status, cancel, list, findings.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use meridian_wire::{Finding, JobStatus, JobSummary, Page, StartJobRequest, StatusDelta};
use serde::Deserialize;

use super::object_key::Outward;
use super::{ApiError, AppState};
use meridian_engine::jobs;
use meridian_service::extract::{ApiJson, ApiQuery};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/start_job", post(start_job))
        .route("/get_job_status/{job_id}", get(get_job_status))
        .route("/job_statuses", get(job_statuses))
        .route("/cancel_job/{job_id}", post(cancel_job))
        .route("/jobs", get(list_jobs))
        .route("/jobs/{job_id}/findings", get(list_findings))
}

async fn start_job(
    State(app): State<AppState>,
    ApiJson(req): ApiJson<StartJobRequest>,
) -> Result<(StatusCode, Json<JobStatus>), ApiError> {
    let (status, created) = jobs::start_job(&app, req).await?;
    // Test failpoint: the job is committed but the caller never hears back (the
    // connection drops), as when a response is lost in the network.
    if app.failpoints.hit("start_job.lose_response").is_some() {
        panic!("failpoint start_job.lose_response: dropping the response");
    }
    Ok((
        if created {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        },
        Json(status),
    ))
}

async fn get_job_status(
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<JobStatus>, ApiError> {
    Ok(Json(jobs::status(&app, &id).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DeltaQuery {
    #[serde(default)]
    since_version: i64,
    limit: Option<i64>,
}

/// Every job whose status changed after `since_version`: one request per poll round,
/// whatever the number of jobs.
async fn job_statuses(
    State(app): State<AppState>,
    ApiQuery(q): ApiQuery<DeltaQuery>,
) -> Result<Json<StatusDelta>, ApiError> {
    let limit = page_limit(q.limit, 500)?;
    Ok(Json(
        jobs::statuses_since(&app, q.since_version, limit).await?,
    ))
}

async fn cancel_job(
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<JobStatus>, ApiError> {
    Ok(Json(jobs::cancel(&app, &id).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    state: Option<String>,
    cursor: Option<String>,
    limit: Option<i64>,
}

fn page_limit(limit: Option<i64>, max: i64) -> Result<i64, ApiError> {
    match limit {
        None => Ok(100.min(max)),
        Some(n) if (1..=max).contains(&n) => Ok(n),
        Some(n) => Err(ApiError::BadRequest(format!(
            "limit {n} is out of range; allowed 1..={max}"
        ))),
    }
}

fn parse_cursor(cursor: Option<&str>) -> Result<i64, ApiError> {
    match cursor {
        None => Ok(0),
        Some(c) => c.parse::<i64>().ok().filter(|n| *n >= 0).ok_or_else(|| {
            ApiError::BadRequest(format!("cursor `{c}` is not one this site issued"))
        }),
    }
}

async fn list_jobs(
    State(app): State<AppState>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<Page<JobSummary>>, ApiError> {
    let limit = page_limit(q.limit, 1000)?;
    let after = parse_cursor(q.cursor.as_deref())?;
    if let Some(s) = &q.state {
        s.parse::<meridian_wire::states::JobState>()
            .map_err(|_| ApiError::BadRequest(format!("state `{s}` is unknown")))?;
    }
    let rows = app
        .store
        .jobs_page(q.state.as_deref(), after, limit + 1)
        .await?;
    // The summaries carry status versions: durable first (`Store::flush_commits`).
    app.store.flush_commits().await?;
    let more = rows.len() as i64 > limit;
    let items: Vec<JobSummary> = rows
        .iter()
        .take(limit as usize)
        .map(jobs::summary)
        .collect();
    let next_cursor = if more {
        rows.get(limit as usize - 1).map(|r| r.seq.to_string())
    } else {
        None
    };
    Ok(Json(Page { items, next_cursor }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FindingsQuery {
    cursor: Option<String>,
    limit: Option<i64>,
}

async fn list_findings(
    State(app): State<AppState>,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<FindingsQuery>,
) -> Result<Json<Page<Finding>>, ApiError> {
    let limit = page_limit(q.limit, 1000)?;
    let after = parse_cursor(q.cursor.as_deref())?;
    if app.store.job(&id).await?.is_none() {
        return Err(ApiError::NotFound(format!("job {id} not found")));
    }
    let rows = app.store.findings_page(&id, after, limit + 1).await?;
    let more = rows.len() as i64 > limit;
    let outward = Outward::new(&app.cfg());
    let items: Vec<Finding> = rows
        .iter()
        .take(limit as usize)
        .map(|r| Finding {
            finding_id: r.id,
            data_source: r.data_source_id.clone(),
            object: outward.key(&r.data_source_id, &r.object_key),
            classifier: r.classifier.clone(),
            location: r.location.clone(),
            count: r.count,
            masked_sample: r.masked_sample.clone(),
            confidence: r.confidence,
        })
        .collect();
    let next_cursor = if more {
        items.last().map(|f| f.finding_id.to_string())
    } else {
        None
    };
    Ok(Json(Page { items, next_cursor }))
}
