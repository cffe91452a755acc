//! Jobs: creating one (step by step where the dialect cannot do it in one statement),
//! reading them and their counts, cancelling; and the system parameters.

use crate::db::{List, args};
use crate::sql::common as q;
use crate::store::SqlStore;
use crate::*;

pub(crate) async fn parameters(s: &SqlStore, node_id: &str) -> StoreResult<Vec<SystemParameter>> {
    let rows: Vec<(String, String, String)> =
        s.db.read()
            .await?
            .link()
            .all(q::PARAMETERS, args![node_id])
            .await?;
    Ok(rows
        .into_iter()
        .map(|(scope, key, value)| SystemParameter { scope, key, value })
        .collect())
}

pub(crate) async fn set_parameter(
    s: &SqlStore,
    scope: &str,
    key: &str,
    value: &str,
) -> StoreResult<()> {
    let mut conn = s.db.write().await?;
    conn.link()
        .execute(s.sql.set_parameter, args![scope, key, value])
        .await?;
    Ok(())
}

/// What a create that found `existing` under the job's id did: nothing when the
/// definitions match (an idempotent retry), a conflict otherwise.
pub(crate) fn found(existing: JobRow, job: &NewJob) -> CreateOutcome {
    if existing.definition_hash == job.definition_hash {
        CreateOutcome::Existing(existing)
    } else {
        CreateOutcome::Conflict(existing)
    }
}

/// `create_job_handing_off` in one transaction of several statements: the job, its
/// tasks, then the hand-off as ordinary claims and the status version (which starts
/// the job when something was handed off).
pub(crate) async fn create_job_step_by_step(
    s: &SqlStore,
    job: &NewJob,
    to: &[HandOff],
) -> StoreResult<(CreateOutcome, Vec<(usize, ClaimedTask)>)> {
    let mut tx = s.db.begin().await?;
    if let Some(existing) = tx.link().optional(q::SELECT_JOB, args![&job.id]).await? {
        return Ok((found(existing, job), Vec::new()));
    }
    let (now,): (i64,) = tx.link().one(s.sql.clock, args![]).await?;
    let sources = serde_json::to_string(&job.data_sources).unwrap_or_default();
    tx.link()
        .execute(
            q::INSERT_JOB,
            args![
                &job.id,
                &job.name,
                &job.definition_hash,
                sources,
                &job.options,
                job.priority,
                now,
                &job.trace_id
            ],
        )
        .await?;
    let mut ids = Vec::with_capacity(job.data_sources.len());
    for ds in &job.data_sources {
        let payload = serde_json::json!({ "data_source_id": ds }).to_string();
        let (id,): (i64,) = tx
            .link()
            .one(q::INSERT_DISCOVERY_TASK, args![&job.id, ds, payload, now])
            .await?;
        ids.push(id);
    }
    let mut handed = Vec::new();
    for (w, ids) in hand_off_rounds(&ids, to).into_iter().enumerate() {
        if ids.is_empty() {
            continue;
        }
        let lease = &to[w].lease;
        let claimed: Vec<ClaimedTask> = tx
            .link()
            .all(
                s.sql.claim,
                args![
                    List::Ints(ids),
                    &lease.worker_id,
                    &lease.node,
                    lease.lease_ms
                ],
            )
            .await?;
        handed.extend(claimed.into_iter().map(|t| (w, t)));
    }
    s.bump(&mut tx, std::slice::from_ref(&job.id), !handed.is_empty())
        .await?;
    let row = tx.link().one(q::SELECT_JOB, args![&job.id]).await?;
    tx.commit().await?;
    Ok((CreateOutcome::Created(row), handed))
}

pub(crate) async fn job(s: &SqlStore, id: &str) -> StoreResult<Option<JobRow>> {
    s.db.read()
        .await?
        .link()
        .optional(q::SELECT_JOB, args![id])
        .await
}

pub(crate) async fn jobs_page(
    s: &SqlStore,
    state: Option<&str>,
    after_seq: i64,
    limit: i64,
) -> StoreResult<Vec<JobRow>> {
    let mut conn = s.db.read().await?;
    match state {
        Some(st) => {
            conn.link()
                .all(q::JOBS_PAGE_BY_STATE, args![after_seq, limit, st])
                .await
        }
        None => conn.link().all(q::JOBS_PAGE, args![after_seq, limit]).await,
    }
}

pub(crate) async fn jobs_changed_since(
    s: &SqlStore,
    version: i64,
    limit: i64,
) -> StoreResult<Vec<JobRow>> {
    let mut conn = s.db.read().await?;
    conn.link()
        .all(q::JOBS_CHANGED_SINCE, args![version, limit])
        .await
}

pub(crate) async fn active_jobs(s: &SqlStore) -> StoreResult<Vec<JobRow>> {
    s.db.read().await?.link().all(q::ACTIVE_JOBS, args![]).await
}

pub(crate) async fn job_counts(
    s: &SqlStore,
    id: &str,
    stalled_after_ms: i64,
) -> StoreResult<JobCounts> {
    let mut c = s.db.read().await?;
    let (objects_discovered,): (i64,) = c.link().one(q::OBJECTS_DISCOVERED, args![id]).await?;
    let (stalled_tasks,): (i64,) = c
        .link()
        .one(s.sql.stalled_tasks, args![id, stalled_after_ms])
        .await?;
    Ok(JobCounts {
        tasks: c.link().all(q::TASK_COUNTS, args![id]).await?,
        objects_discovered,
        objects_by_outcome: c.link().all(q::OBJECTS_BY_OUTCOME, args![id]).await?,
        objects_by_reason: c.link().all(q::OBJECTS_BY_REASON, args![id]).await?,
        findings: c.link().all(q::FINDINGS_BY_CLASSIFIER, args![id]).await?,
        findings_by_source: c.link().all(q::FINDINGS_BY_SOURCE, args![id]).await?,
        objects_with_findings: c.link().all(q::OBJECTS_WITH_FINDINGS, args![id]).await?,
        stalled_tasks,
    })
}

/// Marks a non-terminal job `CANCELLING` and cancels its pending tasks.
pub(crate) async fn request_cancel(s: &SqlStore, id: &str) -> StoreResult<Option<JobRow>> {
    let mut tx = s.db.begin().await?;
    let Some(job) = tx
        .link()
        .optional::<JobRow>(q::SELECT_JOB, args![id])
        .await?
    else {
        return Ok(None);
    };
    if job.job_state().is_terminal() || job.state == "CANCELLING" {
        return Ok(Some(job));
    }
    tx.link().execute(s.sql.cancel_pending, args![id]).await?;
    s.bump(&mut tx, std::slice::from_ref(&job.id), false)
        .await?;
    tx.link().execute(q::MARK_CANCELLING, args![id]).await?;
    let job = tx.link().one(q::SELECT_JOB, args![id]).await?;
    tx.commit().await?;
    Ok(Some(job))
}

pub(crate) async fn findings_page(
    s: &SqlStore,
    job_id: &str,
    r: &FindingsRange,
) -> StoreResult<FindingsPage> {
    let mut conn = s.db.read().await?;
    if !r.is_filtered() {
        let rows = conn
            .link()
            .all(q::FINDINGS_PAGE, args![job_id, r.after_id, r.limit])
            .await?;
        return Ok(FindingsPage {
            rows,
            scanned_to: None,
        });
    }
    // The id of the scan_limit-th finding past the cursor bounds the filtered read,
    // so a classifier that matches nothing still reads a bounded run of the index.
    let scan_end = conn
        .link()
        .column::<i64>(
            q::FINDINGS_SCAN_END,
            args![job_id, r.after_id, r.scan_limit.max(1) - 1],
        )
        .await?
        .first()
        .copied();
    let rows = conn
        .link()
        .all(
            q::FINDINGS_PAGE_FILTERED,
            args![
                job_id,
                r.after_id,
                scan_end.unwrap_or(i64::MAX),
                r.classifier.as_deref(),
                r.data_source.as_deref(),
                r.limit
            ],
        )
        .await?;
    // A full page ends at its last row; a short one read up to the scan end.
    let scanned_to = if rows.len() as i64 >= r.limit {
        None
    } else {
        scan_end
    };
    Ok(FindingsPage { rows, scanned_to })
}
