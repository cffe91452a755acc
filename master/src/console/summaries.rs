//! `GET /api/v1/job_summaries?ids=…`: for a page of the job list, each job's parts
//! at its sites in a few words (state, progress, freshness) and its totals — what the
//! console's list shows next to each job, in three statements instead of three per
//! job. The same rules as the unified view (`view.rs`) decide state and staleness.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use meridian_service::ApiError;
use meridian_service::extract::ApiQuery;
use meridian_wire::time::now_ms;
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::{Caller, MasterState, store_error};
use crate::auth::Role;
use crate::store::SiteJobRow;
use crate::view::{OverallState, job_view};

pub fn router() -> OpenApiRouter<MasterState> {
    OpenApiRouter::new().routes(routes!(job_summaries))
}

/// Most ids in one call (the list's largest page).
const MAX_IDS: usize = 1000;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct Query {
    /// Job ids, comma-separated, 1 to 1000.
    ids: String,
}

/// One site's part of a job, in short.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SitePart {
    pub site: String,
    /// The child job's state, or `DISPATCHING`, `REJECTED`, `SKIPPED`.
    pub state: String,
    /// Terminal tasks / all tasks, 0..=1.
    pub progress: f64,
    pub tasks_total: i64,
    pub objects_processed: i64,
    pub objects_discovered: i64,
    pub findings_total: i64,
    pub site_reachability: String,
    pub stale: bool,
    /// Seconds since the site last answered.
    pub status_age_seconds: Option<f64>,
    /// When the site started and finished its part (RFC 3339, the site's clock).
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub error: Option<String>,
}

/// A job in short: its overall state and totals, and one line per site.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct JobSummaryLine {
    pub job_id: String,
    pub name: String,
    pub state: OverallState,
    /// Terminal tasks / all tasks over every site, 0..=1.
    pub progress: f64,
    pub findings_total: i64,
    pub stale: bool,
    pub sites: Vec<SitePart>,
}

/// Each job's state, totals and per-site parts; unknown ids are left out.
#[utoipa::path(
    get, path = "/api/v1/job_summaries", tag = "jobs",
    params(Query),
    responses(
        (status = 200, description = "The jobs found, in the order asked", body = Vec<JobSummaryLine>),
        (status = 422, description = "No id, or more than 1000 (`invalid`)", body = meridian_wire::error::ErrorEnvelope),
    ),
    security(("bearer" = ["viewer"])),
)]
async fn job_summaries(
    State(m): State<MasterState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<Query>,
) -> Result<Json<Vec<JobSummaryLine>>, ApiError> {
    caller.require(Role::Viewer)?;
    let mut ids: Vec<String> = Vec::new();
    for id in q.ids.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        if !ids.iter().any(|i| i == id) {
            ids.push(id.to_owned());
        }
    }
    if ids.is_empty() || ids.len() > MAX_IDS {
        return Err(ApiError::Unprocessable {
            message: format!("ids must name 1 to {MAX_IDS} jobs, comma-separated"),
            details: Some(serde_json::json!({ "field": "ids" })),
        });
    }
    let jobs = m.store.jobs_of(&ids).await.map_err(store_error)?;
    let mut parts: BTreeMap<String, Vec<SiteJobRow>> = BTreeMap::new();
    for sj in m.store.site_jobs_of(&ids).await.map_err(store_error)? {
        parts.entry(sj.job_id.clone()).or_default().push(sj);
    }
    let sites = m.store.sites().await.map_err(store_error)?;
    let now = now_ms();
    let stale_after = (2.0 * m.cfg.master.poll_interval_seconds * 1000.0) as i64;
    let mut out: BTreeMap<String, JobSummaryLine> = BTreeMap::new();
    for job in &jobs {
        let sjs = parts.remove(&job.job_id).unwrap_or_default();
        let v = job_view(job, &sjs, &sites, now, stale_after);
        let (mut done, mut total) = (0.0, 0i64);
        let lines = v
            .sites
            .iter()
            .zip(&sjs)
            .map(|(s, row)| {
                done += s.progress * s.tasks_total as f64;
                total += s.tasks_total;
                let st = row.status.as_ref();
                SitePart {
                    site: s.site.clone(),
                    state: s.state.clone(),
                    progress: s.progress,
                    tasks_total: s.tasks_total,
                    objects_processed: s.objects.processed,
                    objects_discovered: s.objects.discovered,
                    findings_total: s.findings.total,
                    site_reachability: s.site_reachability.clone(),
                    stale: s.stale,
                    status_age_seconds: s.status_age_seconds,
                    started_at: st.and_then(|st| st.started_at.clone()),
                    finished_at: st.and_then(|st| st.finished_at.clone()),
                    error: s.error.clone(),
                }
            })
            .collect();
        out.insert(
            job.job_id.clone(),
            JobSummaryLine {
                job_id: v.job_id,
                name: v.name,
                state: v.state,
                progress: if total > 0 { done / total as f64 } else { 0.0 },
                findings_total: v.findings.total,
                stale: v.stale,
                sites: lines,
            },
        );
    }
    Ok(Json(ids.iter().filter_map(|id| out.remove(id)).collect()))
}
