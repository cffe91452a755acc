//! Findings of a job, fetched from its sites on demand: they stay at the sites and
//! are already masked there. One page walks the sites in name order; the cursor
//! says which site and where in its list the next page starts.

use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use meridian_service::ApiError;
use meridian_service::extract::ApiQuery;
use meridian_wire::{Finding, Page};
use serde::{Deserialize, Serialize};

use super::{Caller, MasterState, store_error};
use crate::auth::Role;
use crate::remote::{self, Remote};
use crate::store::DispatchState;

pub fn router() -> Router<MasterState> {
    Router::new().route("/jobs/{job_id}/findings", get(findings))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Query {
    cursor: Option<String>,
    limit: Option<i64>,
}

/// A finding and the site it was found at.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SiteFinding {
    pub site: String,
    #[serde(flatten)]
    pub finding: Finding,
}

/// `<site>~<site cursor>`; an empty site cursor means the site's first page.
fn parse_cursor(c: &str) -> Result<(String, Option<String>), ApiError> {
    let (site, rest) = c.split_once('~').ok_or_else(|| {
        ApiError::BadRequest("cursor is malformed; pass next_cursor of the previous page".into())
    })?;
    Ok((site.to_owned(), (!rest.is_empty()).then(|| rest.to_owned())))
}

async fn findings(
    State(m): State<MasterState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<Query>,
) -> Result<Json<Page<SiteFinding>>, ApiError> {
    caller.require(Role::Viewer)?;
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::Unprocessable {
            message: format!("limit {limit} is out of range; allowed 1..=1000"),
            details: Some(serde_json::json!({"field": "limit"})),
        });
    }
    if m.store.job(&id).await.map_err(store_error)?.is_none() {
        return Err(ApiError::NotFound(format!("job {id} does not exist")));
    }
    let sites: Vec<String> = m
        .store
        .site_jobs(&id)
        .await
        .map_err(store_error)?
        .into_iter()
        .filter(|sj| sj.dispatch_state == DispatchState::Dispatched)
        .map(|sj| sj.site)
        .collect();
    let (mut index, mut site_cursor) = match &q.cursor {
        None => (0, None),
        Some(c) => {
            let (site, cur) = parse_cursor(c)?;
            let i = sites.iter().position(|s| *s == site).ok_or_else(|| {
                ApiError::BadRequest("cursor names a site this job has no part at".into())
            })?;
            (i, cur)
        }
    };
    let mut items = Vec::new();
    while index < sites.len() && (items.len() as i64) < limit {
        let site = &sites[index];
        let client = m
            .clients
            .get(site)
            .ok_or_else(|| ApiError::Unavailable(format!("site `{site}` is not configured")))?;
        let want = limit - items.len() as i64;
        let mut url = client.endpoint(&format!("/jobs/{id}/findings?limit={want}"));
        if let Some(c) = &site_cursor {
            url.push_str(&format!("&cursor={c}"));
        }
        let page = match remote::read::<Page<Finding>>(client.http.get(url).send().await).await {
            Remote::Ok(p) => p,
            Remote::Refused { status: 404, .. } => Page {
                items: vec![],
                next_cursor: None,
            },
            Remote::Refused { status, message } => {
                return Err(ApiError::Unavailable(format!(
                    "site `{site}` refused to list findings (HTTP {status}): {message}"
                )));
            }
            Remote::Retry(why) => {
                return Err(ApiError::Unavailable(format!(
                    "site `{site}` is unreachable ({why}); its findings stay at the site, retry later"
                )));
            }
        };
        items.extend(page.items.into_iter().map(|f| SiteFinding {
            site: site.clone(),
            finding: f,
        }));
        match page.next_cursor {
            Some(c) => site_cursor = Some(c),
            None => {
                index += 1;
                site_cursor = None;
            }
        }
    }
    let next_cursor = (index < sites.len())
        .then(|| format!("{}~{}", sites[index], site_cursor.unwrap_or_default()));
    Ok(Json(Page { items, next_cursor }))
}
