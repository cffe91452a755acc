//! Jobs: create over data sources of any sites, the unified view, cancel one job.
//! Lists and bulk cancel are in `list.rs`.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use meridian_service::ApiError;
use meridian_service::extract::ApiJson;
use meridian_service::request_id;
use meridian_wire::JobOptions;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{Caller, MasterState, store_error};
use crate::auth::Role;
use crate::store::{CreateOutcome, NewJob};
use crate::view::{JobView, job_view};
use meridian_wire::time::now_ms;

pub fn router() -> OpenApiRouter<MasterState> {
    OpenApiRouter::new()
        .routes(routes!(create))
        .routes(routes!(view))
        .routes(routes!(cancel))
}

/// `POST /api/v1/jobs`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateJob {
    pub name: String,
    pub data_sources: Vec<String>,
    #[serde(default)]
    pub options: JobOptions,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<u32>,
    /// Repeating a create with the same key returns the first job; also accepted
    /// as the `Idempotency-Key` header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
}

fn invalid(message: String, details: serde_json::Value) -> ApiError {
    ApiError::Unprocessable {
        message,
        details: Some(details),
    }
}

fn check(req: &CreateJob) -> Result<(), ApiError> {
    if req.name.trim().is_empty() || req.name.len() > 200 {
        return Err(invalid(
            "name must be 1 to 200 characters".into(),
            serde_json::json!({"field": "name"}),
        ));
    }
    if req.data_sources.is_empty() {
        return Err(invalid(
            "data_sources is empty; name at least one data source".into(),
            serde_json::json!({"field": "data_sources"}),
        ));
    }
    let mut seen = std::collections::BTreeSet::new();
    for ds in &req.data_sources {
        if !seen.insert(ds) {
            return Err(invalid(
                format!("data source `{ds}` is listed twice"),
                serde_json::json!({"field": "data_sources"}),
            ));
        }
    }
    if let Some(p) = req.priority
        && !(1..=100).contains(&p)
    {
        return Err(invalid(
            format!("priority {p} is out of range; allowed 1..=100"),
            serde_json::json!({"field": "priority"}),
        ));
    }
    if let Some(k) = &req.idempotency_key
        && (k.is_empty() || k.len() > 200)
    {
        return Err(invalid(
            "idempotency_key must be 1 to 200 characters".into(),
            serde_json::json!({"field": "idempotency_key"}),
        ));
    }
    Ok(())
}

/// Creates a job over data sources of any sites; the master splits it by site and
/// dispatches each part. Repeating a create with the same idempotency key answers the
/// first job (200) instead of creating another (201).
#[utoipa::path(
    post, path = "/jobs", tag = "jobs",
    request_body = CreateJob,
    params(("Idempotency-Key" = Option<String>, Header, description = "Same as the body's idempotency_key")),
    responses(
        (status = 201, description = "Created", body = JobView),
        (status = 200, description = "An earlier create with the same idempotency key", body = JobView),
        (status = 409, description = "The idempotency key was used with another request (`conflict`)", body = meridian_wire::error::ErrorEnvelope),
    ),
    security(("bearer" = ["operator"])),
)]
async fn create(
    State(m): State<MasterState>,
    caller: Caller,
    headers: HeaderMap,
    ApiJson(mut req): ApiJson<CreateJob>,
) -> Result<(StatusCode, Json<JobView>), ApiError> {
    caller.require(Role::Operator)?;
    if req.idempotency_key.is_none()
        && let Some(h) = headers.get("idempotency-key")
    {
        let key = h
            .to_str()
            .map_err(|_| ApiError::BadRequest("the Idempotency-Key header is not text".into()))?;
        req.idempotency_key = Some(key.to_owned());
    }
    check(&req)?;
    // Group the data sources by site through the catalog.
    let catalog = m.store.catalog().await.map_err(store_error)?;
    let mut by_site: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut unknown = Vec::new();
    let mut ambiguous = Vec::new();
    for ds in &req.data_sources {
        let homes: Vec<&str> = catalog
            .iter()
            .filter(|c| &c.id == ds)
            .map(|c| c.site.as_str())
            .collect();
        match homes.as_slice() {
            [] => unknown.push(ds.clone()),
            [site] => by_site
                .entry((*site).to_owned())
                .or_default()
                .push(ds.clone()),
            _ => ambiguous.push(ds.clone()),
        }
    }
    if !unknown.is_empty() {
        return Err(invalid(
            format!(
                "unknown data source(s): {}; GET /api/v1/data_sources lists the catalog",
                unknown.join(", ")
            ),
            serde_json::json!({"field": "data_sources", "unknown": unknown}),
        ));
    }
    if !ambiguous.is_empty() {
        return Err(invalid(
            format!(
                "data source(s) offered by more than one site: {}",
                ambiguous.join(", ")
            ),
            serde_json::json!({"field": "data_sources", "ambiguous": ambiguous}),
        ));
    }
    // The key is part of the identity of a request, not of its content.
    let key = req.idempotency_key.take();
    let request = serde_json::to_value(&req).map_err(|_| ApiError::Internal)?;
    let text = request.to_string();
    let hash = hex::encode(Sha256::digest(text.as_bytes()));
    let job = NewJob {
        job_id: uuid::Uuid::now_v7().to_string(),
        name: req.name.clone(),
        request: text,
        request_hash: hash,
        idempotency_key: key.clone(),
        sites: by_site.into_iter().collect(),
        now_ms: now_ms(),
        trace_id: request_id::current_trace_id().unwrap_or_else(request_id::new_trace_id),
    };
    let (id, status) = match m.store.create_job(&job).await.map_err(store_error)? {
        CreateOutcome::Created(id) => {
            tracing::info!(job_id = %id, name = %job.name, trace_id = %job.trace_id, sites = job.sites.len(), by = %caller.claims.sub, "job created");
            metrics::counter!("meridian_master_jobs_created_total").increment(1);
            m.work_arrived();
            (id, StatusCode::CREATED)
        }
        CreateOutcome::Existing(id) => (id, StatusCode::OK),
        CreateOutcome::Conflict(id) => {
            return Err(ApiError::Conflict(format!(
                "idempotency key `{}` was used for job {id} with a different request",
                key.unwrap_or_default()
            )));
        }
    };
    Ok((status, Json(load_view(&m, &id).await?)))
}

/// The unified view of job `id`, 404 when unknown.
pub async fn load_view(m: &MasterState, id: &str) -> Result<JobView, ApiError> {
    let job = m
        .store
        .job(id)
        .await
        .map_err(store_error)?
        .ok_or_else(|| ApiError::NotFound(format!("job {id} does not exist")))?;
    let site_jobs = m.store.site_jobs(id).await.map_err(store_error)?;
    let sites = m.store.sites().await.map_err(store_error)?;
    let stale_after = (2.0 * m.cfg.master.poll_interval_seconds * 1000.0) as i64;
    Ok(job_view(&job, &site_jobs, &sites, now_ms(), stale_after))
}

/// The unified view of a job across its sites.
#[utoipa::path(
    get, path = "/jobs/{job_id}", tag = "jobs",
    params(("job_id" = String, Path, description = "The job's id")),
    responses(
        (status = 200, description = "The view", body = JobView),
        (status = 404, description = "No such job (`not_found`)", body = meridian_wire::error::ErrorEnvelope),
    ),
    security(("bearer" = ["viewer"])),
)]
async fn view(
    State(m): State<MasterState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<JobView>, ApiError> {
    caller.require(Role::Viewer)?;
    Ok(Json(load_view(&m, &id).await?))
}

/// Asks every site of the job to cancel its part; answers at once (202).
#[utoipa::path(
    post, path = "/jobs/{job_id}/cancel", tag = "jobs",
    params(("job_id" = String, Path, description = "The job's id")),
    responses(
        (status = 202, description = "Cancel recorded; sites are told in the background", body = JobView),
        (status = 404, description = "No such job (`not_found`)", body = meridian_wire::error::ErrorEnvelope),
    ),
    security(("bearer" = ["operator"])),
)]
async fn cancel(
    State(m): State<MasterState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<JobView>), ApiError> {
    caller.require(Role::Operator)?;
    if !m
        .store
        .request_cancel(&id, now_ms())
        .await
        .map_err(store_error)?
    {
        return Err(ApiError::NotFound(format!("job {id} does not exist")));
    }
    tracing::info!(job_id = %id, by = %caller.claims.sub, "cancel requested");
    m.work_arrived();
    crate::poller::refresh_state(&m.0, &id)
        .await
        .map_err(store_error)?;
    Ok((StatusCode::ACCEPTED, Json(load_view(&m, &id).await?)))
}
