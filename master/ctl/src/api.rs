//! The master's `/api/v1` as the CLI reads it: the bodies it renders, and the three
//! calls whose server side is still to come — filtered job lists, bulk cancel and
//! `whoami`. Each of those is one function here with the planned request shape
//! behind [`SERVER_SIDE`] and today's fallback next to it (list and filter
//! client-side, cancel one by one, read the token's claims locally), so switching
//! is one constant.

use base64::Engine as _;
use meridian_wire::{FindingCounts, ObjectCounts, Page};
use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::client::{Master, encode};
use crate::exit::CliError;

/// Whether the master filters lists by site, name and time, cancels in bulk and
/// answers `GET /api/v1/whoami`. False until that server side lands; then flip it.
pub const SERVER_SIDE: bool = false;

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

    /// The planned query and bulk-cancel field names.
    fn planned_fields(&self) -> Vec<(&'static str, &str)> {
        let mut v = Vec::new();
        for (k, val) in [
            ("state", &self.state),
            ("site", &self.site),
            ("name", &self.name),
            ("created_after", &self.since),
            ("created_before", &self.until),
        ] {
            if let Some(x) = val {
                v.push((k, x.as_str()));
            }
        }
        v
    }

    /// The checks the server does not do today; `site` needs the view (see [`list_jobs`]).
    fn matches_summary(&self, j: &JobSummary) -> bool {
        self.name.as_deref().is_none_or(|p| glob(p, &j.name))
            && self
                .since
                .as_deref()
                .is_none_or(|s| j.created_at.as_str() >= s)
            && self
                .until
                .as_deref()
                .is_none_or(|u| j.created_at.as_str() < u)
    }
}

/// Every job matching `filter`, newest first as the master lists them, at most `limit`.
pub async fn list_jobs(
    m: &Master,
    filter: &JobFilter,
    limit: Option<usize>,
) -> Result<Vec<JobSummary>, CliError> {
    let page_size = limit.unwrap_or(500).clamp(1, 500);
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut query = vec![format!("limit={page_size}")];
        if SERVER_SIDE {
            for (k, v) in filter.planned_fields() {
                query.push(format!("{k}={}", encode(v)));
            }
        } else if let Some(s) = &filter.state {
            // The one filter the master has today.
            query.push(format!("state={}", encode(s)));
        }
        if let Some(c) = &cursor {
            query.push(format!("cursor={}", encode(c)));
        }
        let page: Page<JobSummary> = m
            .get(&format!("/api/v1/jobs?{}", query.join("&")))
            .await?
            .parse()?;
        for job in page.items {
            if !SERVER_SIDE {
                if !filter.matches_summary(&job) {
                    continue;
                }
                // A job's sites are in its view only: one more call per job, until
                // the master filters by site itself.
                if let Some(site) = &filter.site {
                    let view = job_view(m, &job.job_id).await?;
                    if !view.sites.iter().any(|s| &s.site == site) {
                        continue;
                    }
                }
            }
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

pub async fn job_view(m: &Master, id: &str) -> Result<JobView, CliError> {
    Ok(job_view_raw(m, id).await?.1)
}

/// What a cancel selects.
#[derive(Debug, Clone)]
pub enum CancelTarget {
    Ids(Vec<String>),
    Filter(JobFilter),
}

/// What a cancel did, or would do with `dry_run`.
#[derive(Debug, Clone, Serialize)]
pub struct CancelOutcome {
    pub dry_run: bool,
    /// How many jobs the target selects.
    pub matched: usize,
    pub job_ids: Vec<String>,
    /// Jobs the master accepted the cancel of.
    pub cancelled: Vec<String>,
    /// Jobs whose cancel failed, with why.
    pub errors: Vec<CancelError>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CancelError {
    pub job_id: String,
    pub message: String,
    #[serde(skip)]
    pub exit_code: u8,
}

/// Cancels what `target` selects. A filter never selects finished jobs: cancelling
/// one changes nothing.
pub async fn cancel_jobs(
    m: &Master,
    target: &CancelTarget,
    dry_run: bool,
) -> Result<CancelOutcome, CliError> {
    if SERVER_SIDE {
        let mut body = match target {
            CancelTarget::Ids(ids) => json!({"ids": ids}),
            CancelTarget::Filter(f) => {
                let fields: serde_json::Map<String, Value> = f
                    .planned_fields()
                    .into_iter()
                    .map(|(k, v)| (k.to_owned(), json!(v)))
                    .collect();
                json!({"filter": fields})
            }
        };
        body["dry_run"] = json!(dry_run);
        let answer = m
            .call(Method::POST, "/api/v1/jobs/cancel", Some(&body))
            .await?;
        let ids: Vec<String> = answer.body["job_ids"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        let matched = answer.body["matched"]
            .as_u64()
            .map_or(ids.len(), |n| n as usize);
        return Ok(CancelOutcome {
            dry_run,
            matched,
            cancelled: if dry_run { Vec::new() } else { ids.clone() },
            job_ids: ids,
            errors: Vec::new(),
        });
    }
    let ids: Vec<String> = match target {
        CancelTarget::Ids(ids) => ids.clone(),
        CancelTarget::Filter(f) => list_jobs(m, f, None)
            .await?
            .into_iter()
            .filter(|j| !crate::exit::is_final(&j.state))
            .map(|j| j.job_id)
            .collect(),
    };
    let mut outcome = CancelOutcome {
        dry_run,
        matched: ids.len(),
        job_ids: ids.clone(),
        cancelled: Vec::new(),
        errors: Vec::new(),
    };
    if dry_run {
        return Ok(outcome);
    }
    for id in ids {
        let path = format!("/api/v1/jobs/{}/cancel", encode(&id));
        match m.call::<()>(Method::POST, &path, None).await {
            Ok(_) => outcome.cancelled.push(id),
            // Without the master or the token nothing else can succeed either.
            Err(e @ (CliError::Unreachable { .. } | CliError::NoToken(_))) => return Err(e),
            Err(e) => outcome.errors.push(CancelError {
                job_id: id,
                message: e.to_string(),
                exit_code: e.code(),
            }),
        }
    }
    Ok(outcome)
}

/// Who the token says its bearer is.
#[derive(Debug, Clone, Serialize)]
pub struct Identity {
    pub subject: Option<String>,
    pub roles: Vec<String>,
    pub issuer: Option<String>,
    pub audience: Option<Value>,
    /// Epoch seconds.
    pub expires_at: Option<i64>,
    /// `master` when the master vouched for it; `token (not verified)` when decoded here.
    pub source: String,
}

/// The caller's identity: from `GET /api/v1/whoami` once it exists; today from the
/// token's claims, decoded without checking the signature (the master is then asked
/// for a one-job list so a refused token still fails here).
pub async fn whoami(m: &Master) -> Result<Identity, CliError> {
    if SERVER_SIDE {
        let body = m.get("/api/v1/whoami").await?.body;
        return Ok(Identity {
            subject: body["sub"].as_str().map(str::to_owned),
            roles: strings(&body["roles"]),
            issuer: body["iss"].as_str().map(str::to_owned),
            audience: Some(body["aud"].clone()).filter(|v| !v.is_null()),
            expires_at: body["exp"].as_i64(),
            source: "master".into(),
        });
    }
    let token = m.token().unwrap_or_default().to_owned();
    m.get("/api/v1/jobs?limit=1").await.or_else(|e| match &e {
        // A token without the viewer role is still a token the master accepted.
        CliError::Api(f) if f.status == 403 => Ok(crate::client::Answer {
            status: 403,
            body: Value::Null,
        }),
        _ => Err(e),
    })?;
    let claims = decode_claims(&token)?;
    Ok(Identity {
        subject: claims["sub"].as_str().map(str::to_owned),
        roles: strings(&claims["roles"]),
        issuer: claims["iss"].as_str().map(str::to_owned),
        audience: Some(claims["aud"].clone()).filter(|v| !v.is_null()),
        expires_at: claims["exp"].as_i64(),
        source: "token (decoded locally, signature not verified)".into(),
    })
}

fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::Array(a) => a
            .iter()
            .filter_map(|x| x.as_str().map(str::to_owned))
            .collect(),
        Value::String(s) => vec![s.clone()],
        _ => Vec::new(),
    }
}

/// The claims of a JWT, read without verifying it.
pub fn decode_claims(token: &str) -> Result<Value, CliError> {
    let bad = || CliError::Other("the token is not a JWT (header.claims.signature)".into());
    let mut parts = token.split('.');
    let (_, claims) = (parts.next().ok_or_else(bad)?, parts.next().ok_or_else(bad)?);
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(claims.trim_end_matches('='))
        .map_err(|_| bad())?;
    serde_json::from_slice(&bytes).map_err(|_| bad())
}

/// `*` matches any run of characters, `?` one; everything else itself.
pub fn glob(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_like_a_shell() {
        assert!(glob("nightly*", "nightly 2026-05-01"));
        assert!(glob("*scan*", "first scan"));
        assert!(glob("a?c", "abc"));
        assert!(!glob("nightly*", "a nightly"));
        assert!(glob("*", ""));
        assert!(!glob("a", ""));
    }

    #[test]
    fn claims_are_read_from_the_middle_part() {
        let claims = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(br#"{"sub":"ana","roles":["operator"],"exp":5}"#);
        let v = decode_claims(&format!("e30.{claims}.sig")).unwrap();
        assert_eq!(v["sub"], "ana");
        assert!(decode_claims("not a token").is_err());
    }
}
