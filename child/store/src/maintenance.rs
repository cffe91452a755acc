//! The background loops' units of work: handing back a node's leases, reaping expired
//! ones, pipelining discovered objects into tasks, finishing jobs; and the lease
//! history audit.

use meridian_wire::states::JobState;

use crate::db::{List, args};
use crate::split;
use crate::sql::common as q;
use crate::store::{SqlStore, distinct};
use crate::*;

pub(crate) async fn release_node_leases(
    s: &SqlStore,
    node: &str,
    count_attempt: bool,
    max_retries: u32,
) -> StoreResult<u64> {
    let mut tx = s.db.begin().await?;
    let jobs: Vec<String> = tx
        .link()
        .column(
            s.sql.release,
            args![node, count_attempt, i64::from(max_retries)],
        )
        .await?;
    let n = jobs.len() as u64;
    s.bump(&mut tx, &distinct(jobs), false).await?;
    tx.commit().await?;
    Ok(n)
}

pub(crate) async fn reap_expired(
    s: &SqlStore,
    limit: i64,
    max_retries: u32,
) -> StoreResult<ReapCounts> {
    let mut tx = s.db.begin().await?;
    let rows: Vec<(String, String, i64, String, i64, String)> = tx
        .link()
        .all(s.sql.reap, args![limit, i64::from(max_retries)])
        .await?;
    let mut counts = ReapCounts::default();
    for (_, state, id, phase, attempts, payload) in &rows {
        // A batch whose worker died on it twice is split (`split.rs`): its workers
        // may have been killed by one of its objects.
        if let Some(objects) = split::to_split(phase, *attempts, payload) {
            split::split(s, &mut tx, *id, &objects).await?;
            counts.requeued += 1
        } else if state == "FAILED" {
            counts.failed += 1
        } else {
            counts.requeued += 1
        }
    }
    let jobs = distinct(rows.into_iter().map(|r| r.0).collect());
    s.bump(&mut tx, &jobs, false).await?;
    tx.commit().await?;
    Ok(counts)
}

/// Marking the records and creating their tasks is one transaction: exactly once.
pub(crate) async fn pipeline(s: &SqlStore, limit: i64) -> StoreResult<PipelineCounts> {
    let mut tx = s.db.begin().await?;
    let records: Vec<(i64, String)> = tx.link().all(s.sql.mark_records, args![limit]).await?;
    if records.is_empty() {
        return Ok(PipelineCounts::default());
    }
    let ids: Vec<i64> = records.iter().map(|r| r.0).collect();
    let count = ids.len() as u64;
    let created = tx
        .link()
        .execute(s.sql.create_process_tasks, args![List::Ints(ids)])
        .await?;
    let jobs = distinct(records.into_iter().map(|r| r.1).collect());
    s.bump(&mut tx, &jobs, false).await?;
    tx.commit().await?;
    Ok(PipelineCounts {
        records: count,
        tasks_created: created,
    })
}

pub(crate) async fn finish_jobs(
    s: &SqlStore,
    failure_threshold_percent: f64,
) -> StoreResult<Vec<FinishedJob>> {
    let mut tx = s.db.begin().await?;
    // Tasks the pipeliner or the reaper made pending after the cancel. One indexed
    // statement per cancelling job; with none, this transaction writes nothing.
    let cancelling: Vec<String> = tx.link().column(q::CANCELLING_JOBS, args![]).await?;
    for id in &cancelling {
        tx.link().execute(s.sql.cancel_pending, args![id]).await?;
    }
    let candidates: Vec<(String, String, i64, i64)> =
        tx.link().all(q::FINISH_CANDIDATES, args![]).await?;
    if candidates.is_empty() {
        tx.commit().await?;
        return Ok(Vec::new());
    }
    let ids: Vec<String> = candidates.iter().map(|c| c.0.clone()).collect();
    s.bump(&mut tx, &ids, false).await?;
    let mut finished = Vec::new();
    for (id, state, total, failed) in candidates {
        let next = final_state(&state, total, failed, failure_threshold_percent);
        let changed = tx
            .link()
            .execute(s.sql.finish_job, args![&id, next.as_str(), &state])
            .await?;
        // Another replica may have finished it between the read and this update.
        if changed == 1 {
            finished.push(FinishedJob { id, state: next });
        }
    }
    tx.commit().await?;
    Ok(finished)
}

/// The final state of a finished job: `FAILED` when failed units (tasks of one
/// object, objects of batched tasks; see `FINISH_CANDIDATES`) are more than
/// `threshold` percent of its units. There is no early abort: a job runs to the end
/// so that its counts are complete.
fn final_state(state: &str, total: i64, failed: i64, threshold: f64) -> JobState {
    if state == "CANCELLING" {
        JobState::Cancelled
    } else if total > 0 && (failed as f64) * 100.0 > threshold * (total as f64) {
        JobState::Failed
    } else {
        JobState::Completed
    }
}

pub(crate) async fn lease_history(s: &SqlStore, task_id: i64) -> StoreResult<Vec<LeaseRecord>> {
    let mut conn = s.db.read().await?;
    conn.link().all(q::LEASE_HISTORY, args![task_id]).await
}

pub(crate) async fn overlapping_leases(s: &SqlStore) -> StoreResult<i64> {
    let mut conn = s.db.read().await?;
    let (n,): (i64,) = conn.link().one(q::OVERLAPPING_LEASES, args![]).await?;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_threshold_is_strictly_above() {
        assert_eq!(final_state("RUNNING", 20, 2, 10.0), JobState::Completed);
        assert_eq!(final_state("RUNNING", 20, 3, 10.0), JobState::Failed);
        assert_eq!(final_state("RUNNING", 20, 0, 0.0), JobState::Completed);
        assert_eq!(final_state("CANCELLING", 20, 20, 10.0), JobState::Cancelled);
    }
}
