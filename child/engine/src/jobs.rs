//! Job operations behind the site API: start (idempotent on `job_id`), status,
//! delta status, cancel.

use std::collections::{BTreeMap, HashSet};

use meridian_wire::states::JobState;
use meridian_wire::time::rfc3339_from_millis;
use meridian_wire::{
    FindingCounts, JobOptions, JobStatus, JobSummary, ObjectCounts, StartJobRequest, StatusDelta,
    TaskCounts,
};
use sha2::{Digest, Sha256};

use crate::app::App;
use meridian_scan::{classify, sensitivity};
use meridian_store::{CreateOutcome, JobCounts, JobRow, NewJob, StoreError};

/// Why a job operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("{message}")]
    Invalid {
        field: &'static str,
        message: String,
        details: Option<serde_json::Value>,
    },
    #[error("job {0} exists with a different definition")]
    Conflict(String),
    #[error("job {0} not found")]
    NotFound(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn invalid(field: &'static str, message: impl Into<String>) -> JobError {
    JobError::Invalid {
        field,
        message: message.into(),
        details: None,
    }
}

/// The parts of a request that define a job; their canonical JSON is hashed.
#[derive(serde::Serialize)]
struct Definition<'a> {
    name: &'a str,
    data_sources: &'a [String],
    options: &'a JobOptions,
    priority: u32,
}

/// Validates a request and creates the job, or returns the existing one.
/// `Ok((status, true))` when it was created now.
pub async fn start_job(app: &App, req: StartJobRequest) -> Result<(JobStatus, bool), JobError> {
    let cfg = app.cfg();
    let name = req.name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(invalid("name", "name must be 1 to 200 characters"));
    }
    if req.data_sources.is_empty() {
        return Err(invalid(
            "data_sources",
            "data_sources must name at least one data source",
        ));
    }
    let mut seen = HashSet::new();
    if let Some(dup) = req.data_sources.iter().find(|d| !seen.insert(d.as_str())) {
        return Err(invalid(
            "data_sources",
            format!("data source `{dup}` is listed twice"),
        ));
    }
    let unknown: Vec<&String> = req
        .data_sources
        .iter()
        .filter(|d| cfg.data_source(d).is_none())
        .collect();
    if !unknown.is_empty() {
        let list = unknown
            .iter()
            .map(|d| format!("`{d}`"))
            .collect::<Vec<_>>()
            .join(", ");
        return Err(JobError::Invalid {
            field: "data_sources",
            message: format!("unknown data source {list} at site {}", cfg.site.name),
            details: Some(serde_json::json!({ "unknown_data_sources": unknown })),
        });
    }
    if let Some(names) = &req.options.classifiers {
        if names.is_empty() {
            return Err(invalid(
                "options.classifiers",
                "options.classifiers must not be empty; omit it for all",
            ));
        }
        let known = classify::known_names(&cfg.classifiers.custom);
        let unknown: Vec<&String> = names.iter().filter(|n| !known.contains(n)).collect();
        if !unknown.is_empty() {
            return Err(JobError::Invalid {
                field: "options.classifiers",
                message: format!(
                    "options.classifiers: unknown classifier {}; allowed: {}",
                    unknown
                        .iter()
                        .map(|n| format!("`{n}`"))
                        .collect::<Vec<_>>()
                        .join(", "),
                    known.join(", ")
                ),
                details: Some(serde_json::json!({ "unknown_classifiers": unknown })),
            });
        }
    }
    if let Some(n) = req.options.max_objects
        && !(1..=100_000_000).contains(&n)
    {
        return Err(invalid(
            "options.max_objects",
            format!("options.max_objects {n} is out of range; allowed 1..=100000000"),
        ));
    }
    if let Some(n) = req.options.sample_rows
        && !(1..=10_000_000).contains(&n)
    {
        return Err(invalid(
            "options.sample_rows",
            format!("options.sample_rows {n} is out of range; allowed 1..=10000000"),
        ));
    }
    if let Some(p) = req.options.sample_percent
        && !(1..=100).contains(&p)
    {
        return Err(invalid(
            "options.sample_percent",
            format!("options.sample_percent {p} is out of range; allowed 1..=100"),
        ));
    }
    if req.options.max_file_size_mb == Some(0) {
        return Err(invalid(
            "options.max_file_size_mb",
            "options.max_file_size_mb must be at least 1",
        ));
    }
    let priority = req.priority.unwrap_or(1);
    if !(1..=100).contains(&priority) {
        return Err(invalid(
            "priority",
            format!("priority {priority} is out of range; allowed 1..=100"),
        ));
    }
    let id = match &req.job_id {
        Some(id) => uuid::Uuid::parse_str(id)
            .map_err(|_| invalid("job_id", format!("job_id `{id}` is not a UUID")))?
            .hyphenated()
            .to_string(),
        None => uuid::Uuid::now_v7().hyphenated().to_string(),
    };
    let definition = Definition {
        name,
        data_sources: &req.data_sources,
        options: &req.options,
        priority,
    };
    // serde_json's default map is sorted, so this is canonical.
    let canonical = serde_json::to_value(&definition)
        .map(|v| v.to_string())
        .unwrap_or_default();
    let hash = format!("{:x}", Sha256::digest(canonical.as_bytes()));
    let new = NewJob {
        id: id.clone(),
        name: name.to_owned(),
        definition_hash: hash,
        data_sources: req.data_sources.clone(),
        options: serde_json::to_string(&req.options).unwrap_or_else(|_| "{}".into()),
        priority: i64::from(priority),
        trace_id: meridian_service::request_id::current_trace_id()
            .unwrap_or_else(meridian_service::request_id::new_trace_id),
    };
    // In `--mode orchestrator` the job's first tasks go straight to workers waiting in
    // a long-poll on this replica, in the creating transaction.
    let (outcome, handed) = match app.remote.get() {
        Some(remote) => remote.create_job(new).await?,
        None => (app.store.create_job(&new).await?, 0),
    };
    let row = match outcome {
        CreateOutcome::Created(row) => row,
        CreateOutcome::Existing(row) => {
            let status = status_of(app, row).await?;
            app.store.flush_commits().await?;
            return Ok((status, false));
        }
        CreateOutcome::Conflict(_) => return Err(JobError::Conflict(id)),
    };
    // The creating statement may commit without waiting for the disk, so that its
    // tasks reach waiting workers (here, or through the announcement on other replicas)
    // sooner; the job is acknowledged only once durable (`Store::flush_commits`).
    app.store.flush_commits().await?;
    tracing::info!(job.id = %row.id, name = %row.name, trace_id = row.trace_id.as_deref().unwrap_or(""), "job {} created over {}", row.id, req.data_sources.join(", "));
    metrics::counter!("meridian_jobs_created_total").increment(1);
    app.wake.jobs_changed();
    // The status as of the creating commit needs no query: one DISCOVERY task per data
    // source, those handed off running, nothing discovered yet. (Counting would put
    // eight statements between a new job and the workers just handed its tasks.)
    let pending = req.data_sources.len() as i64 - handed;
    let counts = JobCounts {
        tasks: [("PENDING", pending), ("RUNNING", handed)]
            .into_iter()
            .filter(|(_, n)| *n > 0)
            .map(|(state, n)| ("DISCOVERY".to_owned(), state.to_owned(), n))
            .collect(),
        ..JobCounts::default()
    };
    Ok((status_from(app, row, counts), true))
}

/// The status of one job.
pub async fn status(app: &App, id: &str) -> Result<JobStatus, JobError> {
    let row = app
        .store
        .job(id)
        .await?
        .ok_or_else(|| JobError::NotFound(id.to_owned()))?;
    let status = status_of(app, row).await?;
    // Its status version leaves the site: durable first (`Store::flush_commits`).
    app.store.flush_commits().await?;
    Ok(status)
}

/// Every job whose status changed after `since`. Jobs changed in one transaction
/// share a version, so a page never ends inside such a group: the cursor would skip
/// the rest of it. A group larger than `limit` is returned whole.
pub async fn statuses_since(app: &App, since: i64, limit: i64) -> Result<StatusDelta, JobError> {
    let mut rows = app.store.jobs_changed_since(since, limit + 1).await?;
    let has_more = rows.len() as i64 > limit;
    if has_more {
        let boundary = rows[limit as usize].status_version;
        rows.truncate(limit as usize);
        rows.retain(|r| r.status_version != boundary);
        if rows.is_empty() {
            rows = app.store.jobs_changed_since(boundary - 1, i64::MAX).await?;
            rows.retain(|r| r.status_version == boundary);
        }
    }
    let mut jobs = Vec::with_capacity(rows.len());
    let mut next = since;
    for row in rows {
        next = next.max(row.status_version);
        jobs.push(status_of(app, row).await?);
    }
    // A master advances its cursor to these versions: they must not be handed out
    // again after a crash (`Store::flush_commits`).
    app.store.flush_commits().await?;
    Ok(StatusDelta {
        jobs,
        next_since_version: next,
        has_more,
    })
}

/// Asks a job to stop. Idempotent; a finished job is returned unchanged.
pub async fn cancel(app: &App, id: &str) -> Result<JobStatus, JobError> {
    let row = app
        .store
        .request_cancel(id)
        .await?
        .ok_or_else(|| JobError::NotFound(id.to_owned()))?;
    if row.job_state() == JobState::Cancelling {
        tracing::info!(job.id = %row.id, "job {} cancelling", row.id);
        app.wake.jobs_changed();
        app.wake.finisher.notify_one();
    }
    let status = status_of(app, row).await?;
    app.store.flush_commits().await?;
    Ok(status)
}

pub fn summary(row: &JobRow) -> JobSummary {
    JobSummary {
        job_id: row.id.clone(),
        name: row.name.clone(),
        state: row.job_state(),
        priority: row.priority as u32,
        data_sources: row.data_source_ids(),
        created_at: rfc3339_from_millis(row.created_at),
        finished_at: row.finished_at.map(rfc3339_from_millis),
        status_version: row.status_version,
    }
}

/// Assembles a job's status from its row and counts.
pub async fn status_of(app: &App, row: JobRow) -> Result<JobStatus, StoreError> {
    let stalled_ms = (app.cfg().orchestrator.stalled_task_seconds * 1000) as i64;
    let counts = app.store.job_counts(&row.id, stalled_ms).await?;
    Ok(status_from(app, row, counts))
}

fn status_from(app: &App, row: JobRow, counts: JobCounts) -> JobStatus {
    let mut tasks = TaskCounts::default();
    for (phase, state, n) in &counts.tasks {
        tasks.total += n;
        *tasks.by_state.entry(state.clone()).or_default() += n;
        *tasks
            .by_phase
            .entry(phase.clone())
            .or_default()
            .entry(state.clone())
            .or_default() += n;
    }
    let failed = tasks.by_state.get("FAILED").copied().unwrap_or(0);
    tasks.failed_percent = if tasks.total > 0 {
        failed as f64 * 100.0 / tasks.total as f64
    } else {
        0.0
    };
    let by_outcome: BTreeMap<String, i64> = counts.objects_by_outcome.into_iter().collect();
    let objects = ObjectCounts {
        discovered: counts.objects_discovered,
        processed: by_outcome.values().sum(),
        by_outcome,
        by_reason: counts.objects_by_reason.into_iter().collect(),
    };
    let by_classifier: BTreeMap<String, i64> = counts.findings.into_iter().collect();
    let findings = FindingCounts {
        total: by_classifier.values().sum(),
        by_classifier,
        by_data_source: sensitivity::summarize(
            &row.data_source_ids(),
            &counts.findings_by_source,
            &counts.objects_with_findings,
        ),
    };
    JobStatus {
        job_id: row.id.clone(),
        name: row.name.clone(),
        state: row.job_state(),
        priority: row.priority as u32,
        data_sources: row.data_source_ids(),
        options: serde_json::from_str(&row.options).unwrap_or_default(),
        created_at: rfc3339_from_millis(row.created_at),
        started_at: row.started_at.map(rfc3339_from_millis),
        finished_at: row.finished_at.map(rfc3339_from_millis),
        status_version: row.status_version,
        tasks,
        objects,
        findings,
        stalled_tasks: counts.stalled_tasks,
        back_pressure: app.backpressure.active(),
    }
}

impl From<JobError> for meridian_service::ApiError {
    fn from(e: JobError) -> Self {
        match e {
            JobError::Invalid {
                message, details, ..
            } => meridian_service::ApiError::Unprocessable { message, details },
            JobError::Conflict(_) => meridian_service::ApiError::Conflict(e.to_string()),
            JobError::NotFound(_) => meridian_service::ApiError::NotFound(e.to_string()),
            JobError::Store(s) => s.into(),
        }
    }
}
