//! What workers report under a lease: discovered batches, completions and failures.
//! Each is one transaction fenced by the lease token; a report under a lease that is
//! no longer current writes nothing.

use std::collections::{HashMap, HashSet};

use crate::db::{Arg, Db, List, args};
use crate::findings;
use crate::split;
use crate::sql::sqlite;
use crate::store::{SqlStore, distinct};
use crate::*;

/// The fence, the progress record (the batch's exactly-once key), the objects and the
/// `PROCESS` tasks of the new ones (grouped by `bounds`), then the status version: one
/// transaction.
pub(crate) async fn record_discovery(
    s: &SqlStore,
    lease: &Lease,
    batch: &DiscoveryBatch,
    bounds: &TaskBounds,
) -> StoreResult<Discovered> {
    let mut tx = s.db.begin().await?;
    let task: Option<(String, String)> = tx
        .link()
        .optional(s.sql.touch_task, args![lease.task_id, &lease.lease_token])
        .await?;
    let Some((job_id, data_source_id)) = task else {
        return Ok(Discovered::nothing(ReportOutcome::LeaseLost));
    };
    let record: Option<(i64,)> = tx
        .link()
        .optional(
            s.sql.insert_progress,
            args![
                &job_id,
                lease.task_id,
                batch.attempt,
                batch.seq,
                batch.objects.len() as i64
            ],
        )
        .await?;
    let Some((record,)) = record else {
        tx.commit().await?;
        return Ok(Discovered::nothing(ReportOutcome::Duplicate));
    };
    let tasks = bounds.group(&batch.objects);
    let mut args = args![&job_id, &data_source_id, record];
    match s.db {
        Db::Pg(_) => {
            let count = tasks
                .iter()
                .flatten()
                .max()
                .map_or(0, |t| i64::from(*t) + 1);
            let o = &batch.objects;
            args.extend(args![
                List::Texts(o.iter().map(|o| o.key.clone()).collect()),
                List::Ints(o.iter().map(|o| o.size_bytes).collect()),
                List::OptInts(o.iter().map(|o| o.modified_at).collect()),
                List::OptTexts(o.iter().map(|o| o.skipped_reason.clone()).collect()),
                count,
                List::OptInts(tasks.iter().map(|t| t.map(i64::from)).collect()),
            ]);
        }
        Db::Lite { .. } => {
            let (first_id,): (i64,) = tx.link().one(sqlite::NEXT_TASK_ID, args![]).await?;
            args.extend(args![objects_json(&batch.objects, &tasks), first_id]);
        }
    }
    let mut tasks_created = tx.link().execute(s.sql.insert_objects, args).await?;
    if let Some(tasks) = s.sql.insert_object_tasks {
        tasks_created = tx.link().execute(tasks, args![record, &job_id]).await?;
    }
    s.bump(&mut tx, &[job_id], false).await?;
    tx.commit().await?;
    Ok(Discovered {
        outcome: ReportOutcome::Accepted,
        tasks_created,
    })
}

/// A discovered batch's objects as SQLite's `insert_objects` binds them: one JSON
/// array of objects, each with the index of its task (arrays matched by position
/// would be joined on their index, a scan per row).
fn objects_json(objects: &[NewObject], tasks: &[Option<i32>]) -> String {
    #[derive(serde::Serialize)]
    struct Row<'a> {
        #[serde(flatten)]
        object: &'a NewObject,
        task: Option<i32>,
    }
    let rows: Vec<Row> = objects
        .iter()
        .zip(tasks)
        .map(|(object, &task)| Row { object, task })
        .collect();
    serde_json::to_string(&rows).unwrap_or_default()
}

/// Completes a batch in one transaction: the tasks whose leases are current, then
/// their objects' outcomes and findings, then the status version.
pub(crate) async fn complete(
    s: &SqlStore,
    batch: &[Completion],
) -> StoreResult<Vec<ReportOutcome>> {
    if batch.is_empty() {
        return Ok(Vec::new());
    }
    let ids = batch.iter().map(|c| c.lease.task_id).collect();
    let tokens = batch.iter().map(|c| c.lease.lease_token.clone()).collect();
    let mut tx = s.db.begin().await?;
    let accepted: Vec<(i64, String, String)> = tx
        .link()
        .all(
            s.sql.complete_tasks,
            args![Arg::Rows(vec![List::Ints(ids), List::Texts(tokens)])],
        )
        .await?;
    let ok: HashSet<i64> = accepted.iter().map(|(id, ..)| *id).collect();
    let done: Vec<&Completion> = batch
        .iter()
        .filter(|c| ok.contains(&c.lease.task_id))
        .collect();
    let objects: Vec<&ObjectResult> = done.iter().flat_map(|c| &c.objects).collect();
    if !objects.is_empty() {
        let ids = List::Ints(objects.iter().map(|o| o.object_id).collect());
        let outcomes = List::Texts(
            objects
                .iter()
                .map(|o| o.outcome.as_str().to_owned())
                .collect(),
        );
        let reasons = List::OptTexts(objects.iter().map(|o| o.reason.clone()).collect());
        tx.link()
            .execute(
                s.sql.set_outcomes,
                args![Arg::Rows(vec![ids, outcomes, reasons])],
            )
            .await?;
    }
    for failed in done.iter().flat_map(|c| &c.failed) {
        split::fail_object(s, &mut tx, failed).await?;
    }
    let task_of: HashMap<i64, (&str, &str)> = accepted
        .iter()
        .map(|(id, job, source)| (*id, (job.as_str(), source.as_str())))
        .collect();
    findings::write(s, &mut tx, &done, &task_of).await?;
    let jobs = distinct(accepted.iter().map(|(_, j, _)| j.clone()).collect());
    s.bump(&mut tx, &jobs, false).await?;
    tx.commit().await?;
    Ok(batch
        .iter()
        .map(|c| {
            if ok.contains(&c.lease.task_id) {
                ReportOutcome::Accepted
            } else {
                ReportOutcome::LeaseLost
            }
        })
        .collect())
}

/// Back to `PENDING` after the backoff when retryable with attempts left, else `FAILED`.
pub(crate) async fn fail(
    s: &SqlStore,
    lease: &Lease,
    failure: &Failure,
) -> StoreResult<FailOutcome> {
    let mut tx = s.db.begin().await?;
    let row: Option<(String, String, String, i64, String)> = tx
        .link()
        .optional(
            s.sql.fail,
            args![
                lease.task_id,
                &lease.lease_token,
                failure.retryable,
                i64::from(failure.max_retries),
                failure.backoff_ms,
                &failure.error
            ],
        )
        .await?;
    let Some((state, job_id, phase, attempts, payload)) = row else {
        return Ok(FailOutcome::LeaseLost);
    };
    let split = match split::to_split(&phase, attempts, &payload) {
        Some(objects) if failure.retryable && failure.split => {
            split::split(s, &mut tx, lease.task_id, &objects).await?;
            true
        }
        _ => false,
    };
    s.bump(&mut tx, &[job_id], false).await?;
    tx.commit().await?;
    Ok(if split || state == "PENDING" {
        FailOutcome::Retrying
    } else {
        FailOutcome::Failed
    })
}
