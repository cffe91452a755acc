//! The master's `/api/v1` as the CLI reads it: the bodies it renders, and the calls
//! with more to them than one GET — the filtered job list (`GET /api/v1/jobs` with
//! `state`, `site`, `name`, `created_after`, `created_before`, cursor paging), the
//! bulk cancel (`POST /api/v1/jobs/cancel` by ids or by that filter, `dry_run`) and
//! `GET /api/v1/whoami`. Each is one function here, so a change of the API's shape
//! is a change in one place.

use meridian_wire::{FindingCounts, ObjectCounts, Page};
use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::client::{Master, encode};
use crate::exit::CliError;

/// A job in `GET /api/v1/jobs`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobSummary {
    pub job_id: String,
    pub name: String,
    pub state: String,
    #[serde(default)]
    pub cancel_requested: bool,
    #[serde(default)]
    pub created_at: String,
}

/// One site's part in the unified view.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SiteView {
    pub site: String,
    pub state: String,
    #[serde(default)]
    pub progress: f64,
    #[serde(default)]
    pub tasks_total: i64,
    #[serde(default)]
    pub objects: ObjectCounts,
    #[serde(default)]
    pub findings: FindingCounts,
    #[serde(default)]
    pub site_reachability: String,
    #[serde(default)]
    pub status_age_seconds: Option<f64>,
    #[serde(default)]
    pub stale: bool,
    #[serde(default)]
    pub error: Option<String>,
}

/// The unified view (`GET /api/v1/jobs/{id}`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobView {
    pub job_id: String,
    pub name: String,
    pub state: String,
    #[serde(default)]
    pub cancel_requested: bool,
    #[serde(default)]
    pub created_at: String,
    #[serde(default)]
    pub objects: ObjectCounts,
    #[serde(default)]
    pub findings: FindingCounts,
    #[serde(default)]
    pub stale: bool,
    #[serde(default)]
    pub sites: Vec<SiteView>,
}

impl JobView {
    /// Whether one of the job's sites is unreachable now.
    pub fn site_unreachable(&self) -> bool {
        self.sites
            .iter()
            .any(|s| s.site_reachability == "UNREACHABLE")
    }
}

/// What `jobs list` and `jobs cancel` select.
#[derive(Debug, Clone, Default)]
pub struct JobFilter {
    pub state: Option<String>,
    pub site: Option<String>,
    /// A glob on the job's name: `*` any run of characters, `?` one.
    pub name: Option<String>,
    /// RFC 3339 (or a prefix such as `2026-05-01`): created at or after.
    pub since: Option<String>,
    /// RFC 3339 (or a prefix): created before.
    pub until: Option<String>,
}

impl JobFilter {
    pub fn is_empty(&self) -> bool {
        self.state.is_none()
            && self.site.is_none()
            && self.name.is_none()
            && self.since.is_none()
            && self.until.is_none()
    }

    /// The filter's fields under the API's names; a bare date is that day's start in UTC.
    fn fields(&self) -> Vec<(&'static str, String)> {
        let mut v = Vec::new();
        for (k, val) in [
            ("state", &self.state),
            ("site", &self.site),
            ("name", &self.name),
            ("created_after", &self.since),
            ("created_before", &self.until),
        ] {
            if let Some(x) = val {
                let x = if k.starts_with("created_") {
                    instant(x)
                } else {
                    x.clone()
                };
                v.push((k, x));
            }
        }
        v
    }

    /// The filter as the bulk cancel's `filter` object (`state` is a list there).
    fn body(&self) -> Value {
        let mut o = serde_json::Map::new();
        for (k, v) in self.fields() {
            let value = if k == "state" {
                json!(
                    v.split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .collect::<Vec<_>>()
                )
            } else {
                json!(v)
            };
            o.insert(k.to_owned(), value);
        }
        Value::Object(o)
    }
}

/// `2026-05-01` → `2026-05-01T00:00:00Z`; anything else is passed on for the master
/// to judge.
fn instant(s: &str) -> String {
    let b = s.as_bytes();
    if b.len() == 10 && b[4] == b'-' && b[7] == b'-' {
        format!("{s}T00:00:00Z")
    } else {
        s.to_owned()
    }
}

/// Every job matching `filter`, newest first, at most `limit`, page after page.
pub async fn list_jobs(
    m: &Master,
    filter: &JobFilter,
    limit: Option<usize>,
) -> Result<Vec<JobSummary>, CliError> {
    let page_size = limit.unwrap_or(1000).clamp(1, 1000);
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut query = vec![format!("limit={page_size}")];
        for (k, v) in filter.fields() {
            query.push(format!("{k}={}", encode(&v)));
        }
        if let Some(c) = &cursor {
            query.push(format!("cursor={}", encode(c)));
        }
        let page: Page<JobSummary> = m
            .get(&format!("/api/v1/jobs?{}", query.join("&")))
            .await?
            .parse()?;
        for job in page.items {
            out.push(job);
            if limit.is_some_and(|l| out.len() >= l) {
                return Ok(out);
            }
        }
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => return Ok(out),
        }
    }
}

/// The unified view of `id`, raw (for JSON output) and typed (for text).
pub async fn job_view_raw(m: &Master, id: &str) -> Result<(Value, JobView), CliError> {
    let answer = m.get(&format!("/api/v1/jobs/{}", encode(id))).await?;
    let typed = answer.parse()?;
    Ok((answer.body, typed))
}

/// What a cancel selects.
#[derive(Debug, Clone)]
pub enum CancelTarget {
    Ids(Vec<String>),
    Filter(JobFilter),
}

/// One job's outcome: `cancelled`, `already_final` or `not_found`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CancelItem {
    pub job_id: String,
    pub outcome: String,
}

/// What a bulk cancel did, or would do with `dry_run` (then `results` is empty).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CancelOutcome {
    pub dry_run: bool,
    /// Jobs selected: the ids given, or the jobs matching the filter that are neither
    /// final nor already being cancelled.
    pub matched: i64,
    pub results: Vec<CancelItem>,
    /// Matching jobs left uncancelled (the master cancels at most 1000 per call).
    pub remaining: i64,
    /// Why a cancel of more than one call stopped after cancelling some jobs; those
    /// stay in `results`.
    #[serde(skip)]
    pub interrupted: Option<String>,
}

/// The most ids, or filtered jobs, the master takes in one bulk cancel.
const MAX_PER_CALL: usize = 1000;

/// Cancels what `target` selects with `POST /api/v1/jobs/cancel`. Ids go 1000 to a
/// call; a filter is repeated while the master says jobs remain and the last call
/// cancelled some (each call makes its jobs unfinished no more).
///
/// `confirmed` is the number of filtered jobs the user agreed to cancel: each call
/// then carries it (then what remained) as `expected`, so the master cancels
/// nothing when the filter has come to match another number of jobs (409).
pub async fn cancel_jobs(
    m: &Master,
    target: &CancelTarget,
    dry_run: bool,
    confirmed: Option<i64>,
) -> Result<CancelOutcome, CliError> {
    let mut total = CancelOutcome {
        dry_run,
        ..CancelOutcome::default()
    };
    match target {
        CancelTarget::Ids(ids) => {
            for chunk in ids.chunks(MAX_PER_CALL) {
                let part = cancel_call(m, json!({"ids": chunk, "dry_run": dry_run})).await?;
                total.matched += part.matched;
                total.results.extend(part.results);
            }
        }
        CancelTarget::Filter(f) => {
            let mut body = json!({"filter": f.body(), "dry_run": dry_run});
            if let Some(n) = confirmed {
                body["expected"] = json!(n);
            }
            let first = cancel_call(m, body.clone()).await?;
            total.matched = first.matched;
            total.remaining = first.remaining;
            total.results = first.results;
            while !dry_run && total.remaining > 0 {
                if confirmed.is_some() {
                    body["expected"] = json!(total.remaining);
                }
                let next = match cancel_call(m, body.clone()).await {
                    Ok(next) => next,
                    Err(e) => {
                        total.interrupted = Some(e.to_string());
                        break;
                    }
                };
                let progressed = next.results.iter().any(|r| r.outcome == "cancelled");
                total.remaining = next.remaining;
                total.results.extend(next.results);
                if !progressed {
                    break;
                }
            }
        }
    }
    Ok(total)
}

async fn cancel_call(m: &Master, body: Value) -> Result<CancelOutcome, CliError> {
    m.call(Method::POST, "/api/v1/jobs/cancel", Some(&body))
        .await?
        .parse()
}

/// `GET /api/v1/whoami`: the caller as the master sees it, after checking the token.
pub async fn whoami(m: &Master) -> Result<Value, CliError> {
    Ok(m.get("/api/v1/whoami").await?.body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_filter_speaks_the_api_names() {
        let f = JobFilter {
            state: Some("RUNNING,PENDING".into()),
            name: Some("nightly*".into()),
            since: Some("2026-05-01".into()),
            ..JobFilter::default()
        };
        assert_eq!(
            f.body(),
            json!({"state": ["RUNNING", "PENDING"], "name": "nightly*",
                   "created_after": "2026-05-01T00:00:00Z"})
        );
        assert!(!f.is_empty());
        assert!(JobFilter::default().is_empty());
    }
}
