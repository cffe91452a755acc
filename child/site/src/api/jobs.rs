//! Jobs: start, status, delta status, cancel, list, findings.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use meridian_wire::{Finding, JobStatus, JobSummary, Page, StartJobRequest, StatusDelta};
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::object_key::Outward;
use super::{ApiError, AppState};
use meridian_engine::jobs;
use meridian_service::extract::{ApiJson, ApiQuery};
use meridian_store::FindingsRange;

/// The routes as served (the document is built from [`routes`]).
pub fn router() -> axum::Router<AppState> {
    routes().into()
}

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(start_job))
        .routes(routes!(get_job_status))
        .routes(routes!(job_statuses))
        .routes(routes!(cancel_job))
        .routes(routes!(list_jobs))
        .routes(routes!(list_findings))
}

/// Starts a job over this site's data sources; the master's job id makes a repeat
/// answer the existing job (200) instead of creating another (201).
#[utoipa::path(
    post, path = "/start_job", tag = "jobs",
    request_body = StartJobRequest,
    responses(
        (status = 201, description = "Created", body = JobStatus),
        (status = 200, description = "A job with this id exists already", body = JobStatus),
        (status = 409, description = "The job id exists with another definition (`conflict`)", body = meridian_wire::error::ErrorEnvelope),
    ),
)]
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

/// A job's status with its counts.
#[utoipa::path(
    get, path = "/get_job_status/{job_id}", tag = "jobs",
    params(("job_id" = String, Path, description = "The job's id")),
    responses(
        (status = 200, description = "The status", body = JobStatus),
        (status = 404, description = "No such job (`not_found`)", body = meridian_wire::error::ErrorEnvelope),
    ),
)]
async fn get_job_status(
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<JobStatus>, ApiError> {
    Ok(Json(jobs::status(&app, &id).await?))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct DeltaQuery {
    /// `next_since_version` of the previous answer; 0 for everything.
    #[serde(default)]
    since_version: i64,
    /// Most jobs in the answer, 1..=500; 100 when absent.
    #[param(minimum = 1, maximum = 500)]
    limit: Option<i64>,
}

/// Every job whose status changed after `since_version`: one request per poll round,
/// whatever the number of jobs.
#[utoipa::path(
    get, path = "/job_statuses", tag = "jobs",
    params(DeltaQuery),
    responses((status = 200, description = "The changed jobs", body = StatusDelta)),
)]
async fn job_statuses(
    State(app): State<AppState>,
    ApiQuery(q): ApiQuery<DeltaQuery>,
) -> Result<Json<StatusDelta>, ApiError> {
    let limit = page_limit(q.limit, 500)?;
    Ok(Json(
        jobs::statuses_since(&app, q.since_version, limit).await?,
    ))
}

/// Cancels a job: its pending tasks end, running ones are told at their next heartbeat.
#[utoipa::path(
    post, path = "/cancel_job/{job_id}", tag = "jobs",
    params(("job_id" = String, Path, description = "The job's id")),
    responses(
        (status = 200, description = "The status after the cancel", body = JobStatus),
        (status = 404, description = "No such job (`not_found`)", body = meridian_wire::error::ErrorEnvelope),
    ),
)]
async fn cancel_job(
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<JobStatus>, ApiError> {
    Ok(Json(jobs::cancel(&app, &id).await?))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// Only jobs in this state.
    #[param(value_type = Option<meridian_wire::states::JobState>)]
    state: Option<String>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
    /// Page size, 1..=1000; 100 when absent.
    #[param(minimum = 1, maximum = 1000)]
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

/// Jobs in creation order, one page at a time.
#[utoipa::path(
    get, path = "/jobs", tag = "jobs",
    params(ListQuery),
    responses((status = 200, description = "One page", body = Page<JobSummary>)),
)]
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

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct FindingsQuery {
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
    /// Page size, 1..=1000; 100 when absent.
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
    /// Only findings of this classifier.
    #[param(min_length = 1, max_length = 200)]
    classifier: Option<String>,
    /// Only findings in this data source.
    #[param(min_length = 1, max_length = 200)]
    data_source: Option<String>,
}

/// A job's masked findings, one page at a time. A filtered page reads at most
/// 20,000 of the job's findings: it may hold fewer than `limit` findings, even none,
/// while `next_cursor` says where the next one goes on.
#[utoipa::path(
    get, path = "/jobs/{job_id}/findings", tag = "jobs",
    params(("job_id" = String, Path, description = "The job's id"), FindingsQuery),
    responses(
        (status = 200, description = "One page", body = Page<Finding>),
        (status = 404, description = "No such job (`not_found`)", body = meridian_wire::error::ErrorEnvelope),
    ),
)]
async fn list_findings(
    State(app): State<AppState>,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<FindingsQuery>,
) -> Result<Json<Page<Finding>>, ApiError> {
    let limit = page_limit(q.limit, 1000)?;
    let after = parse_cursor(q.cursor.as_deref())?;
    for (field, v) in [
        ("classifier", &q.classifier),
        ("data_source", &q.data_source),
    ] {
        if v.as_ref()
            .is_some_and(|v| v.is_empty() || v.chars().count() > 200)
        {
            return Err(ApiError::BadRequest(format!(
                "{field} must be 1 to 200 characters"
            )));
        }
    }
    if app.store.job(&id).await?.is_none() {
        return Err(ApiError::NotFound(format!("job {id} not found")));
    }
    let range = FindingsRange {
        classifier: q.classifier,
        data_source: q.data_source,
        ..FindingsRange::after(after, limit + 1)
    };
    let page = app.store.findings_page(&id, &range).await?;
    let rows = page.rows;
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
        page.scanned_to.map(|id| id.to_string())
    };
    Ok(Json(Page { items, next_cursor }))
}
