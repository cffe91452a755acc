//! Findings of a job, fetched from its sites on demand: they stay at the sites and
//! are already masked there. One page walks the sites in name order; the cursor
//! says which site and where in its list the next page starts. As CSV or JSON Lines
//! (`Accept` or `?format=`) the answer streams every finding of every site.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::header::{ACCEPT, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use meridian_service::ApiError;
use meridian_service::extract::ApiQuery;
use meridian_wire::{Finding, Page};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{Caller, MasterState, store_error};
use crate::auth::Role;
use crate::site_reply::{self, SiteReply};
use crate::store::DispatchState;

pub fn router() -> OpenApiRouter<MasterState> {
    OpenApiRouter::new().routes(routes!(findings))
}

/// Rows fetched from a site per call while exporting.
const EXPORT_PAGE: i64 = 1000;

/// How the findings are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// One page (`Page<SiteFinding>`).
    Json,
    /// Every finding, one CSV row each, after a header row.
    Csv,
    /// Every finding, one JSON object per line.
    Jsonl,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct Query {
    /// `next_cursor` of the previous page (JSON only).
    cursor: Option<String>,
    /// Page size, 1..=1000 (JSON only).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
    /// Overrides `Accept`: `json`, `csv` or `jsonl`.
    #[param(inline)]
    format: Option<Format>,
    /// Only findings of this site.
    site: Option<String>,
    /// Only findings of this classifier.
    classifier: Option<String>,
    /// Only findings in this data source.
    data_source: Option<String>,
}

/// The filter of a findings page or export. The sites filter (a filtered site page
/// reads a bounded run of the job's findings, so it may be short or empty while it
/// has a cursor); the master checks each row again, as a site of the release before
/// does not filter. A data source belongs to one site, so only that site is read.
#[derive(Debug, Clone, Default)]
struct Only {
    classifier: Option<String>,
    data_source: Option<String>,
}

impl Only {
    fn is_empty(&self) -> bool {
        self.classifier.is_none() && self.data_source.is_none()
    }

    fn keeps(&self, f: &Finding) -> bool {
        self.classifier.as_ref().is_none_or(|c| *c == f.classifier)
            && self
                .data_source
                .as_ref()
                .is_none_or(|d| *d == f.data_source)
    }
}

/// Site pages one JSON page may read while a filter skips rows; past that it answers
/// what it has with a cursor, so one request stays short (a filtering site reads at
/// most 20,000 findings a page, so one request looks through up to 400,000).
const MAX_SITE_CALLS: usize = 20;

/// A finding and the site it was found at.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
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

/// The site path of one page of findings; the site's cursor is opaque to the master,
/// so it is escaped rather than trusted to be URL-safe, like the filter's values.
fn site_findings_path(job_id: &str, want: i64, cursor: Option<&str>, only: &Only) -> String {
    let id = utf8_percent_encode(job_id, NON_ALPHANUMERIC);
    let mut path = format!("/jobs/{id}/findings?limit={want}");
    for (key, value) in [
        ("cursor", cursor),
        ("classifier", only.classifier.as_deref()),
        ("data_source", only.data_source.as_deref()),
    ] {
        if let Some(v) = value {
            path.push_str(&format!(
                "&{key}={}",
                utf8_percent_encode(v, NON_ALPHANUMERIC)
            ));
        }
    }
    path
}

fn format_of(q: Option<Format>, headers: &HeaderMap) -> Format {
    if let Some(f) = q {
        return f;
    }
    let accept = headers
        .get(ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if accept.contains("text/csv") {
        Format::Csv
    } else if accept.contains("application/x-ndjson") || accept.contains("application/jsonl") {
        Format::Jsonl
    } else {
        Format::Json
    }
}

/// One page of one site's findings, filtered there by `only` (an unknown job there is
/// an empty page). A site of the release before knows no filter and refuses it with
/// 400; it is asked again without one, and the caller filters.
async fn site_page(
    m: &MasterState,
    id: &str,
    site: &str,
    cursor: Option<&str>,
    want: i64,
    only: &Only,
) -> Result<Page<Finding>, ApiError> {
    let client = m
        .clients
        .get(site)
        .ok_or_else(|| ApiError::Unavailable(format!("site `{site}` is not configured")))?;
    let url = client.endpoint(&site_findings_path(id, want, cursor, only));
    let mut reply = site_reply::read::<Page<Finding>>(client.http.get(url).send().await).await;
    if matches!(reply, SiteReply::Refused { status: 400, .. }) && !only.is_empty() {
        let url = client.endpoint(&site_findings_path(id, want, cursor, &Only::default()));
        reply = site_reply::read::<Page<Finding>>(client.http.get(url).send().await).await;
    }
    match reply {
        SiteReply::Ok(p) => Ok(p),
        SiteReply::Refused { status: 404, .. } => Ok(Page {
            items: vec![],
            next_cursor: None,
        }),
        SiteReply::Refused { status, message } => Err(ApiError::Unavailable(format!(
            "site `{site}` refused to list findings (HTTP {status}): {message}"
        ))),
        SiteReply::Retry(why) => Err(ApiError::Unavailable(format!(
            "site `{site}` is unreachable ({why}); its findings stay at the site, retry later"
        ))),
    }
}

/// The sites holding a part of job `id`, in name order; 404 when the job is unknown.
async fn job_sites(
    m: &MasterState,
    id: &str,
    site: Option<&str>,
    data_source: Option<&str>,
) -> Result<Vec<String>, ApiError> {
    if m.store.job(id).await.map_err(store_error)?.is_none() {
        return Err(ApiError::NotFound(format!("job {id} does not exist")));
    }
    Ok(m.store
        .site_jobs(id)
        .await
        .map_err(store_error)?
        .into_iter()
        .filter(|sj| sj.dispatch_state == DispatchState::Dispatched)
        .filter(|sj| site.is_none_or(|s| s == sj.site))
        .filter(|sj| data_source.is_none_or(|d| sj.data_sources.iter().any(|x| x == d)))
        .map(|sj| sj.site)
        .collect())
}

/// The masked findings of a job across its sites: one page as JSON, or all of them
/// streamed as CSV (`Accept: text/csv`, `?format=csv`) or JSON Lines
/// (`Accept: application/x-ndjson`, `?format=jsonl`).
#[utoipa::path(
    get, path = "/jobs/{job_id}/findings", tag = "findings",
    params(("job_id" = String, Path, description = "The job's id"), Query),
    responses(
        (status = 200, description = "A page, or the whole export", content(
            (Page<SiteFinding> = "application/json"),
            (String = "text/csv"),
            (SiteFinding = "application/x-ndjson"),
        )),
        (status = 404, description = "No such job (`not_found`)", body = meridian_wire::error::ErrorEnvelope),
        (status = 422, description = "limit out of range (`invalid`)", body = meridian_wire::error::ErrorEnvelope),
    ),
    security(("bearer" = ["viewer"])),
)]
async fn findings(
    State(m): State<MasterState>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<Query>,
) -> Result<Response, ApiError> {
    caller.require(Role::Viewer)?;
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::Unprocessable {
            message: format!("limit {limit} is out of range; allowed 1..=1000"),
            details: Some(serde_json::json!({"field": "limit"})),
        });
    }
    let format = format_of(q.format, &headers);
    for (field, v) in [
        ("site", &q.site),
        ("classifier", &q.classifier),
        ("data_source", &q.data_source),
    ] {
        if v.as_ref().is_some_and(|v| v.is_empty() || v.len() > 200) {
            return Err(ApiError::Unprocessable {
                message: format!("{field} must be 1 to 200 characters"),
                details: Some(serde_json::json!({ "field": field })),
            });
        }
    }
    let sites = job_sites(&m, &id, q.site.as_deref(), q.data_source.as_deref()).await?;
    let only = Only {
        classifier: q.classifier.clone(),
        data_source: q.data_source.clone(),
    };
    if format != Format::Json {
        return export(m, id, sites, format, only).await;
    }
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
    let mut calls = 0;
    while index < sites.len() && (items.len() as i64) < limit && calls < MAX_SITE_CALLS {
        calls += 1;
        let site = &sites[index];
        let want = limit - items.len() as i64;
        let page = site_page(&m, &id, site, site_cursor.as_deref(), want, &only).await?;
        items.extend(
            page.items
                .into_iter()
                .filter(|f| only.keeps(f))
                .map(|f| SiteFinding {
                    site: site.clone(),
                    finding: f,
                }),
        );
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
    Ok(Json(Page { items, next_cursor }).into_response())
}

const CSV_HEADER: &str =
    "site,finding_id,data_source,object,classifier,location,count,masked_sample,confidence\n";

/// A CSV field, quoted when it holds a separator, a quote or a line break; a field
/// that a spreadsheet would run as a formula is prefixed with `'`.
fn csv_field(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_owned()
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

fn line(format: Format, site: &str, f: Finding) -> String {
    match format {
        Format::Csv => format!(
            "{},{},{},{},{},{},{},{},{}\n",
            csv_field(site),
            f.finding_id,
            csv_field(&f.data_source),
            csv_field(&f.object),
            csv_field(&f.classifier),
            csv_field(&f.location),
            f.count,
            csv_field(&f.masked_sample),
            f.confidence
        ),
        _ => {
            let mut l = serde_json::to_string(&SiteFinding {
                site: site.to_owned(),
                finding: f,
            })
            .unwrap_or_default();
            l.push('\n');
            l
        }
    }
}

/// Streams every finding of every site. The first page is fetched before answering,
/// so a site down at the start is a 503; one failing mid-way ends the body early
/// (the client sees a truncated transfer, never a silently short file).
async fn export(
    m: MasterState,
    id: String,
    sites: Vec<String>,
    format: Format,
    only: Only,
) -> Result<Response, ApiError> {
    struct Walk {
        m: MasterState,
        id: String,
        sites: Vec<String>,
        index: usize,
        cursor: Option<String>,
        format: Format,
        only: Only,
    }
    async fn next(w: &mut Walk) -> Result<Option<String>, ApiError> {
        let Some(site) = w.sites.get(w.index).cloned() else {
            return Ok(None);
        };
        let page = site_page(
            &w.m,
            &w.id,
            &site,
            w.cursor.as_deref(),
            EXPORT_PAGE,
            &w.only,
        )
        .await?;
        match page.next_cursor {
            Some(c) => w.cursor = Some(c),
            None => {
                w.index += 1;
                w.cursor = None;
            }
        }
        Ok(Some(
            page.items
                .into_iter()
                .filter(|f| w.only.keeps(f))
                .map(|f| line(w.format, &site, f))
                .collect(),
        ))
    }
    let mut walk = Walk {
        m,
        id,
        sites,
        index: 0,
        cursor: None,
        format,
        only,
    };
    let mut first = match format {
        Format::Csv => CSV_HEADER.to_owned(),
        _ => String::new(),
    };
    if let Some(chunk) = next(&mut walk).await? {
        first.push_str(&chunk);
    }
    let rest = futures::stream::unfold(walk, |mut w| async move {
        match next(&mut w).await {
            Ok(Some(chunk)) => Some((Ok::<_, std::io::Error>(chunk), w)),
            Ok(None) => None,
            Err(e) => {
                tracing::warn!(job_id = %w.id, "findings export ended early: {e}");
                Some((Err(std::io::Error::other(e.to_string())), w.stop()))
            }
        }
    });
    impl Walk {
        fn stop(mut self) -> Walk {
            self.index = self.sites.len();
            self
        }
    }
    let stream = futures::StreamExt::chain(
        futures::stream::once(async move { Ok::<_, std::io::Error>(first) }),
        rest,
    );
    let mut resp = Body::from_stream(stream).into_response();
    let ct = match format {
        Format::Csv => "text/csv; charset=utf-8",
        _ => "application/x-ndjson",
    };
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(ct));
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_site_cursor_and_the_filter_are_escaped_in_the_query() {
        let p = site_findings_path("j1", 10, Some("a&limit=1000 #x"), &Only::default());
        assert_eq!(
            p,
            "/jobs/j1/findings?limit=10&cursor=a%26limit%3D1000%20%23x"
        );
        let only = Only {
            classifier: Some("us_ssn&x=1".into()),
            data_source: Some("ds 1".into()),
        };
        assert_eq!(
            site_findings_path("j1", 10, None, &only),
            "/jobs/j1/findings?limit=10&classifier=us%5Fssn%26x%3D1&data_source=ds%201"
        );
    }

    #[test]
    fn csv_fields_are_quoted_and_defused() {
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("=SUM(A1)"), "'=SUM(A1)");
        assert_eq!(csv_field("plain"), "plain");
    }
}
