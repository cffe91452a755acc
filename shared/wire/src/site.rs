//! Wire types of the child site API and of the worker contract.
//! The master and the CLI read the same structs the child writes.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::states::{JobState, Phase};

/// `POST /start_job` body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartJobRequest {
    /// The master's job id; a new UUIDv7 when absent.
    #[serde(default)]
    pub job_id: Option<String>,
    pub name: String,
    pub data_sources: Vec<String>,
    #[serde(default)]
    pub options: JobOptions,
    /// Weight under the `WEIGHTED` fair-sharing policy, 1..=100.
    #[serde(default)]
    pub priority: Option<u32>,
}

/// What a job scans for and how.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JobOptions {
    /// Classifier names to run; all built-in classifiers when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub classifiers: Option<Vec<String>>,
    /// OCR of images; the site's `connector.easyocr_support_enabled` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ocr: Option<bool>,
    /// Tables and images inside documents; `connector.get_table_or_images_enabled` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tables: Option<bool>,
    /// Files larger than this are skipped; the data source's own limit when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_file_size_mb: Option<u64>,
    /// Sampling: discover at most this many objects per data source (the first in key
    /// order), 1..=100000000; every object when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_objects: Option<u64>,
    /// Database sources: rows read per table at most, 1..=10000000; the data
    /// source's `sample_rows` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sample_rows: Option<u64>,
    /// Database sources: percentage of rows sampled, 1..=100; the data source's
    /// `sample_percent` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sample_percent: Option<u32>,
}

/// A job as `POST /start_job` and `GET /get_job_status/{id}` return it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct JobStatus {
    pub job_id: String,
    pub name: String,
    pub state: JobState,
    pub priority: u32,
    pub data_sources: Vec<String>,
    pub options: JobOptions,
    pub created_at: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    /// Increases whenever anything in this status changes; comparable across the
    /// site's jobs, so it doubles as the cursor of `GET /job_statuses`.
    pub status_version: i64,
    pub tasks: TaskCounts,
    pub objects: ObjectCounts,
    pub findings: FindingCounts,
    /// Running tasks that heartbeat but reported no progress for
    /// `orchestrator.stalled_task_seconds`.
    pub stalled_tasks: i64,
    /// True while the site withholds new tasks because CPU is above
    /// `worker.global_cpu_threshold_percent`.
    pub back_pressure: bool,
}

impl JobStatus {
    /// A status with nothing counted yet: for fakes of a site and for tests.
    pub fn new(job_id: &str, state: JobState, status_version: i64) -> JobStatus {
        JobStatus {
            job_id: job_id.to_owned(),
            name: String::new(),
            state,
            priority: 1,
            data_sources: Vec::new(),
            options: JobOptions::default(),
            created_at: String::new(),
            started_at: None,
            finished_at: None,
            status_version,
            tasks: TaskCounts::default(),
            objects: ObjectCounts::default(),
            findings: FindingCounts::default(),
            stalled_tasks: 0,
            back_pressure: false,
        }
    }
}

/// Task counts of a job, by state and by phase then state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TaskCounts {
    pub total: i64,
    pub by_state: BTreeMap<String, i64>,
    pub by_phase: BTreeMap<String, BTreeMap<String, i64>>,
    /// Percentage of the job's tasks that failed permanently.
    pub failed_percent: f64,
}

/// Objects a job discovered and how far each was scanned.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ObjectCounts {
    pub discovered: i64,
    pub processed: i64,
    /// `COMPLETE`, `PARTIAL`, `SKIPPED` → count.
    pub by_outcome: BTreeMap<String, i64>,
    /// Why objects were skipped or partial → count.
    pub by_reason: BTreeMap<String, i64>,
}

/// Findings of a job: the sum of finding counts, in total and per classifier.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FindingCounts {
    pub total: i64,
    pub by_classifier: BTreeMap<String, i64>,
    /// Data source id → how sensitive what was found there is.
    #[serde(default)]
    pub by_data_source: BTreeMap<String, SensitivitySummary>,
}

/// What a job found in one data source, for a glance at where the risk is.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SensitivitySummary {
    /// `HIGH` (credentials, card, bank or national ids), `MEDIUM` (contact data,
    /// tokens), `LOW` (network addresses, custom classifiers) or `NONE`.
    pub level: String,
    /// Sum of finding counts.
    pub findings: i64,
    /// Objects with at least one finding.
    pub objects_with_findings: i64,
    /// Classifier → sum of counts in this data source.
    pub by_classifier: BTreeMap<String, i64>,
}

/// `GET /job_statuses?since_version=N`: every job whose status changed after `N`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StatusDelta {
    pub jobs: Vec<JobStatus>,
    /// Pass this as `since_version` next time.
    pub next_since_version: i64,
    /// More changed jobs are waiting beyond `limit`.
    pub has_more: bool,
}

/// A page of a cursor-paginated list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Opaque; pass as `cursor` for the next page. Absent on the last page.
    pub next_cursor: Option<String>,
}

/// A job in `GET /jobs`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct JobSummary {
    pub job_id: String,
    pub name: String,
    pub state: JobState,
    pub priority: u32,
    pub data_sources: Vec<String>,
    pub created_at: String,
    pub finished_at: Option<String>,
    pub status_version: i64,
}

/// One finding, masked. Raw matched values never leave the worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Finding {
    pub finding_id: i64,
    pub data_source: String,
    pub object: String,
    pub classifier: String,
    /// e.g. `line:17`, or `schema.table.column`.
    pub location: String,
    pub count: i64,
    pub masked_sample: String,
    pub confidence: f64,
}

/// A data source of the site's catalog; connector settings and credentials stay home.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DataSourceInfo {
    pub id: String,
    pub kind: String,
    pub site: String,
    pub description: String,
}

/// A worker registered with the site.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct WorkerInfo {
    pub worker_id: String,
    pub kind: String,
    pub slots: u32,
    pub started_at: String,
    pub last_heartbeat_at: Option<String>,
    pub current_tasks: Vec<i64>,
}

/// What a worker receives for one task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct WorkPacket {
    pub task_id: i64,
    pub lease_token: String,
    pub job_id: String,
    pub phase: Phase,
    pub attempt: u32,
    pub data_source: serde_json::Value,
    pub options: JobOptions,
    pub payload: serde_json::Value,
    pub lease_expires_at: String,
    pub heartbeat_interval_seconds: u64,
    /// The W3C trace id of the job: the worker logs its work on this packet under it.
    /// Absent from orchestrators older than trace ids, and then ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<String>,
}

/// State of one internal component in `/health`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ComponentState {
    Starting,
    Healthy,
    Degraded,
    Failed,
    Stopped,
}

/// One component's line in `/health`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ComponentHealth {
    pub state: ComponentState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub restarts: u32,
    pub since: String,
}

/// `GET /health`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct HealthReport {
    pub status: ComponentState,
    pub node_id: String,
    pub version: String,
    pub uptime_seconds: u64,
    pub resources: Resources,
    pub components: BTreeMap<String, ComponentHealth>,
}

/// Resource use of the process and the machine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Resources {
    pub resident_memory_bytes: u64,
    pub system_cpu_percent: f32,
    pub back_pressure: bool,
}

/// The rule a site name follows, for error messages.
pub const SITE_NAME_RULE: &str = "[a-z0-9-]{1,63}";

/// Whether `name` is a valid site name ([`SITE_NAME_RULE`]): it is also the identity
/// the site's certificate carries, so the master, the site and the dev certificate
/// tool must agree on it.
pub fn is_site_name(name: &str) -> bool {
    (1..=63).contains(&name.len())
        && name
            .bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
}
