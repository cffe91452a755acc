//! `GET /api/v1/jobs` filtered, sorted and paged on the master, and
//! `POST /api/v1/jobs/cancel` over ids or the same filter.

use axum::Json;
use axum::extract::State;
use meridian_service::ApiError;
use meridian_service::extract::{ApiJson, ApiQuery};
use meridian_wire::Page;
use meridian_wire::time::{millis_from_rfc3339, rfc3339_from_millis};
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{Caller, MasterState, store_error};
use crate::auth::Role;
use crate::store::{FINAL_STATES, JobFilter, JobKey, JobRow, JobSort};
use crate::view::{ALL_STATES, OverallState};
use meridian_wire::time::now_ms;

pub fn router() -> OpenApiRouter<MasterState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(cancel_many))
}

/// Default and largest page of `GET /api/v1/jobs`.
pub const DEFAULT_LIMIT: i64 = 100;
pub const MAX_LIMIT: i64 = 1000;

/// Most ids, and most jobs a filter cancels, in one `POST /api/v1/jobs/cancel`.
pub const MAX_CANCEL: usize = 1000;

fn invalid(field: &str, message: String) -> ApiError {
    ApiError::Unprocessable {
        message,
        details: Some(serde_json::json!({ "field": field })),
    }
}

/// The filter of a list or a bulk cancel, as the caller writes it (documentation and
/// the cancel body; the list reads the same names from its query).
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct FilterSpec {
    /// Overall states, repeated (`state=A&state=B`) or comma-separated; any state when absent.
    #[serde(default)]
    #[param(explode = true, style = Form)]
    pub state: Option<Vec<OverallState>>,
    /// Jobs with a part at this site.
    #[serde(default)]
    pub site: Option<String>,
    /// A glob on the job's name: `*` any run of characters, `?` one; case-sensitive.
    #[serde(default)]
    pub name: Option<String>,
    /// Created at or after this instant (RFC 3339).
    #[serde(default)]
    #[param(format = DateTime)]
    #[schema(format = DateTime)]
    pub created_after: Option<String>,
    /// Created strictly before this instant (RFC 3339).
    #[serde(default)]
    #[param(format = DateTime)]
    #[schema(format = DateTime)]
    pub created_before: Option<String>,
}

/// Paging and order of `GET /api/v1/jobs` (documentation of the query).
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
struct PageSpec {
    /// `-created_at` (newest first, the default), `created_at` or `name`.
    #[param(inline, value_type = Option<String>, pattern = "^(-created_at|created_at|name)$")]
    sort: Option<String>,
    /// `next_cursor` of the previous page, with the same filter and sort.
    cursor: Option<String>,
    /// Page size, 1..=1000; 100 when absent.
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
}

fn instant(field: &str, v: &Option<String>) -> Result<Option<i64>, ApiError> {
    v.as_deref()
        .map(|s| {
            millis_from_rfc3339(s).ok_or_else(|| {
                invalid(
                    field,
                    format!(
                        "{field} `{s}` is not an RFC 3339 instant such as 2026-05-01T00:00:00Z"
                    ),
                )
            })
        })
        .transpose()
}

impl FilterSpec {
    fn to_filter(&self) -> Result<JobFilter, ApiError> {
        if let Some(s) = &self.site
            && s.is_empty()
        {
            return Err(invalid("site", "site is empty".into()));
        }
        if let Some(n) = &self.name
            && (n.is_empty() || n.len() > 200)
        {
            return Err(invalid(
                "name",
                "name must be a pattern of 1 to 200 characters".into(),
            ));
        }
        Ok(JobFilter {
            states: self
                .state
                .iter()
                .flatten()
                .map(|s| s.as_str().to_owned())
                .collect(),
            site: self.site.clone(),
            name: self.name.clone(),
            created_after: instant("created_after", &self.created_after)?,
            created_before: instant("created_before", &self.created_before)?,
            cancellable: false,
        })
    }

    fn is_empty(&self) -> bool {
        self.state.as_ref().is_none_or(|s| s.is_empty())
            && self.site.is_none()
            && self.name.is_none()
            && self.created_after.is_none()
            && self.created_before.is_none()
    }
}

fn parse_states(v: &str, into: &mut Vec<OverallState>) -> Result<(), ApiError> {
    for s in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let st = OverallState::parse(s).ok_or_else(|| {
            let allowed: Vec<&str> = ALL_STATES.iter().map(|s| s.as_str()).collect();
            invalid(
                "state",
                format!("state `{s}` is unknown; allowed: {}", allowed.join(", ")),
            )
        })?;
        if !into.contains(&st) {
            into.push(st);
        }
    }
    Ok(())
}

/// The opaque cursor: hex of `sort \x1f job id \x1f key`.
fn encode_cursor(sort: JobSort, j: &JobRow) -> String {
    let key = match sort {
        JobSort::NameAsc => j.name.clone(),
        _ => j.created_at.to_string(),
    };
    hex::encode(format!("{}\u{1f}{}\u{1f}{key}", sort.as_str(), j.job_id))
}

fn decode_cursor(sort: JobSort, c: &str) -> Result<JobKey, ApiError> {
    let bad = || {
        ApiError::BadRequest(
            "cursor is not one this list issued; pass next_cursor of the previous page with the same sort".into(),
        )
    };
    let text = hex::decode(c)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(bad)?;
    let mut parts = text.splitn(3, '\u{1f}');
    let (s, id, key) = (
        parts.next().ok_or_else(bad)?,
        parts.next().ok_or_else(bad)?,
        parts.next().ok_or_else(bad)?,
    );
    if s != sort.as_str() {
        return Err(bad());
    }
    Ok(match sort {
        JobSort::NameAsc => JobKey::Name(key.to_owned(), id.to_owned()),
        _ => JobKey::Created(key.parse().map_err(|_| bad())?, id.to_owned()),
    })
}

/// A job in `GET /api/v1/jobs`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct JobSummary {
    pub job_id: String,
    pub name: String,
    pub state: OverallState,
    pub cancel_requested: bool,
    pub created_at: String,
}

/// Jobs selected by the filter, in `sort` order, one page at a time. Served from an
/// index for each sort; pages never skip or repeat a job while new ones arrive.
#[utoipa::path(
    get, path = "/jobs", tag = "jobs",
    params(FilterSpec, PageSpec),
    responses(
        (status = 200, description = "One page", body = Page<JobSummary>),
        (status = 422, description = "An unknown state, a bad instant, pattern or limit (`invalid`)", body = meridian_wire::error::ErrorEnvelope),
    ),
    security(("bearer" = ["viewer"])),
)]
async fn list(
    State(m): State<MasterState>,
    caller: Caller,
    ApiQuery(pairs): ApiQuery<Vec<(String, String)>>,
) -> Result<Json<Page<JobSummary>>, ApiError> {
    caller.require(Role::Viewer)?;
    let mut spec = FilterSpec::default();
    let mut states = Vec::new();
    let (mut sort, mut cursor, mut limit) = (JobSort::default(), None, DEFAULT_LIMIT);
    for (k, v) in pairs {
        match k.as_str() {
            "state" => parse_states(&v, &mut states)?,
            "site" => spec.site = Some(v),
            "name" => spec.name = Some(v),
            "created_after" => spec.created_after = Some(v),
            "created_before" => spec.created_before = Some(v),
            "sort" => {
                sort = JobSort::parse(&v).ok_or_else(|| {
                    invalid(
                        "sort",
                        format!("sort `{v}` is unknown; allowed: -created_at, created_at, name"),
                    )
                })?
            }
            "cursor" => cursor = Some(v),
            "limit" => {
                limit = v
                    .parse::<i64>()
                    .ok()
                    .filter(|n| (1..=MAX_LIMIT).contains(n))
                    .ok_or_else(|| {
                        invalid(
                            "limit",
                            format!("limit `{v}` is out of range; allowed 1..={MAX_LIMIT}"),
                        )
                    })?
            }
            other => {
                return Err(ApiError::BadRequest(format!(
                    "unknown query parameter `{other}`"
                )));
            }
        }
    }
    spec.state = Some(states);
    let filter = spec.to_filter()?;
    let after = cursor
        .as_deref()
        .map(|c| decode_cursor(sort, c))
        .transpose()?;
    let rows = m
        .store
        .find_jobs(&filter, sort, after.as_ref(), limit + 1)
        .await
        .map_err(store_error)?;
    let more = rows.len() as i64 > limit;
    let page: Vec<&JobRow> = rows.iter().take(limit as usize).collect();
    let next_cursor = if more {
        page.last().map(|j| encode_cursor(sort, j))
    } else {
        None
    };
    let items = page
        .into_iter()
        .map(|j| JobSummary {
            job_id: j.job_id.clone(),
            name: j.name.clone(),
            state: OverallState::parse(&j.state).unwrap_or(OverallState::Pending),
            cancel_requested: j.cancel_requested,
            created_at: rfc3339_from_millis(j.created_at),
        })
        .collect();
    Ok(Json(Page { items, next_cursor }))
}

/// `POST /api/v1/jobs/cancel`: `ids` or `filter`, not both.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelMany {
    /// Jobs to cancel by id, 1 to 1000.
    #[serde(default)]
    #[schema(min_items = 1, max_items = 1000)]
    pub ids: Option<Vec<String>>,
    /// Jobs to cancel by filter; jobs already final, or whose cancel was already
    /// requested, are never selected.
    #[serde(default)]
    pub filter: Option<FilterSpec>,
    /// Answer only how many jobs would be cancelled.
    #[serde(default)]
    pub dry_run: bool,
    /// With `filter`: the count the caller confirmed (a dry run's `matched`). If the
    /// filter now selects another number of jobs (one created since, say),
    /// nothing is cancelled and the answer is 409 with both counts.
    #[serde(default)]
    #[schema(minimum = 0)]
    pub expected: Option<i64>,
}

/// What happened to one job of a bulk cancel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CancelResult {
    Cancelled,
    AlreadyFinal,
    NotFound,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CancelItem {
    pub job_id: String,
    pub outcome: CancelResult,
}

/// The answer of a bulk cancel.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CancelManyAnswer {
    pub dry_run: bool,
    /// Jobs selected: ids given, or jobs matching the filter that are neither final
    /// nor already being cancelled.
    pub matched: i64,
    /// Each job's outcome; empty on a dry run.
    pub results: Vec<CancelItem>,
    /// Matching jobs left for another call (a filter cancels at most 1000 per call).
    pub remaining: i64,
}

/// Cancels many jobs at once, by id or by the list's filter.
#[utoipa::path(
    post, path = "/jobs/cancel", tag = "jobs",
    request_body = CancelMany,
    responses(
        (status = 200, description = "Each job's outcome, or the count on a dry run", body = CancelManyAnswer),
        (status = 409, description = "The filter matches another number of jobs than `expected`; nothing was cancelled", body = meridian_wire::error::ErrorEnvelope),
        (status = 422, description = "Neither or both of ids and filter, too many ids, a bad filter, `expected` without a filter (`invalid`)", body = meridian_wire::error::ErrorEnvelope),
    ),
    security(("bearer" = ["operator"])),
)]
async fn cancel_many(
    State(m): State<MasterState>,
    caller: Caller,
    ApiJson(req): ApiJson<CancelMany>,
) -> Result<Json<CancelManyAnswer>, ApiError> {
    caller.require(Role::Operator)?;
    let (ids, matched, remaining) = match (&req.ids, &req.filter) {
        (Some(ids), None) => {
            if ids.is_empty() || ids.len() > MAX_CANCEL {
                return Err(invalid(
                    "ids",
                    format!("ids must hold 1 to {MAX_CANCEL} job ids"),
                ));
            }
            if req.expected.is_some() {
                return Err(invalid(
                    "expected",
                    "`expected` goes with `filter`: ids are cancelled as given".into(),
                ));
            }
            let mut uniq = ids.clone();
            uniq.sort();
            uniq.dedup();
            let n = uniq.len() as i64;
            (uniq, n, 0)
        }
        (None, Some(spec)) => {
            if spec.is_empty() {
                return Err(invalid(
                    "filter",
                    "an empty filter would select every job; name at least one criterion".into(),
                ));
            }
            let mut f = spec.to_filter()?;
            f.cancellable = true;
            let matched = m.store.count_jobs(&f).await.map_err(store_error)?;
            if let Some(expected) = req.expected.filter(|e| *e != matched) {
                return Err(ApiError::Conflict(format!(
                    "the filter selects {matched} job(s) to cancel now, not the {expected} \
                     confirmed; nothing was cancelled"
                )));
            }
            if req.dry_run {
                (Vec::new(), matched, matched)
            } else {
                let rows = m
                    .store
                    .find_jobs(&f, JobSort::CreatedAsc, None, MAX_CANCEL as i64)
                    .await
                    .map_err(store_error)?;
                let ids: Vec<String> = rows.into_iter().map(|j| j.job_id).collect();
                let left = (matched - ids.len() as i64).max(0);
                (ids, matched, left)
            }
        }
        _ => {
            return Err(invalid(
                "ids",
                "give exactly one of `ids` and `filter`".into(),
            ));
        }
    };
    if req.dry_run {
        return Ok(Json(CancelManyAnswer {
            dry_run: true,
            matched,
            results: Vec::new(),
            remaining,
        }));
    }
    let mut results = Vec::with_capacity(ids.len());
    let mut any = false;
    for id in ids {
        let outcome = match m.store.job(&id).await.map_err(store_error)? {
            None => CancelResult::NotFound,
            Some(j) if FINAL_STATES.contains(&j.state.as_str()) => CancelResult::AlreadyFinal,
            Some(_) => {
                if m.store
                    .request_cancel(&id, now_ms())
                    .await
                    .map_err(store_error)?
                {
                    crate::poller::refresh_state(&m.0, &id)
                        .await
                        .map_err(store_error)?;
                    any = true;
                    CancelResult::Cancelled
                } else {
                    CancelResult::NotFound
                }
            }
        };
        results.push(CancelItem {
            job_id: id,
            outcome,
        });
    }
    if any {
        tracing::info!(jobs = results.len(), by = %caller.claims.sub, "bulk cancel requested");
        m.work_arrived();
    }
    Ok(Json(CancelManyAnswer {
        dry_run: false,
        matched,
        results,
        remaining,
    }))
}
