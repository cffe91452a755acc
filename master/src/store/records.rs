//! Rows of the master's store as the rest of the master sees them.

use meridian_wire::JobStatus;
use serde::{Deserialize, Serialize};

/// Where the `start_job` call of one site-job stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DispatchState {
    /// Not yet acknowledged by the site; retried with backoff.
    Pending,
    /// The site holds the child job.
    Dispatched,
    /// The site refused the definition (4xx); retrying would not help.
    Rejected,
    /// Cancelled before any attempt reached the site, so never sent.
    Skipped,
}

/// Where the cancel fan-out of one site-job stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CancelState {
    None,
    Requested,
    Acknowledged,
}

macro_rules! text_enum {
    ($t:ty { $($v:ident => $s:literal),+ $(,)? }) => {
        impl $t {
            pub fn as_str(self) -> &'static str {
                match self { $(<$t>::$v => $s),+ }
            }
            pub fn parse(s: &str) -> Option<Self> {
                match s { $($s => Some(<$t>::$v),)+ _ => None }
            }
        }
    };
}

text_enum!(DispatchState { Pending => "PENDING", Dispatched => "DISPATCHED", Rejected => "REJECTED", Skipped => "SKIPPED" });
text_enum!(CancelState { None => "NONE", Requested => "REQUESTED", Acknowledged => "ACKNOWLEDGED" });

/// A job to create: the parent and its per-site split.
#[derive(Debug, Clone)]
pub struct NewJob {
    pub job_id: String,
    pub name: String,
    /// The accepted request, as JSON.
    pub request: String,
    pub request_hash: String,
    pub idempotency_key: Option<String>,
    /// Site name → that site's data source ids.
    pub sites: Vec<(String, Vec<String>)>,
    pub now_ms: i64,
    /// The W3C trace id the job is followed by through the sites and their workers.
    pub trace_id: String,
}

/// What `create_job` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CreateOutcome {
    Created(String),
    /// The idempotency key was used before with the same request.
    Existing(String),
    /// The idempotency key was used before with another request.
    Conflict(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct JobRow {
    pub job_id: String,
    pub name: String,
    pub request: serde_json::Value,
    pub state: String,
    pub cancel_requested: bool,
    pub created_at: i64,
    pub updated_at: i64,
    /// Absent on jobs created before trace ids were kept.
    pub trace_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SiteJobRow {
    pub job_id: String,
    pub site: String,
    pub data_sources: Vec<String>,
    pub dispatch_state: DispatchState,
    pub dispatch_attempts: i64,
    pub next_dispatch_at: i64,
    pub cancel_state: CancelState,
    pub cancel_attempts: i64,
    pub last_error: Option<String>,
    pub status: Option<JobStatus>,
    pub status_version: i64,
    pub status_at: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteRow {
    pub name: String,
    pub url: String,
    pub since_version: i64,
    pub reachability: String,
    pub consecutive_failures: i64,
    pub last_seen_at: Option<i64>,
    pub last_polled_at: Option<i64>,
    pub last_latency_ms: Option<i64>,
    pub last_error: Option<String>,
    pub catalog_refreshed_at: Option<i64>,
}
