//! What becomes of a batch's objects that cannot be scanned.
//!
//! A `PROCESS` task covering several objects fails whole when one of them cannot be
//! scanned for a reason that might pass (the scanner crashes on it, its read keeps
//! timing out, its worker is killed); retried whole, it would fail again and take its
//! neighbours down with it. So a batch whose retry failed too is split in two: the
//! task keeps the first half of its objects, a new task takes the rest, and both
//! start over with no attempt counted. Each split halves the batch, so after at most
//! log2(size) splits the object at fault is alone in its task and fails there after
//! its own retries, while every other object completes.
//!
//! An object that can never be scanned (a permanent error the worker sees) does not
//! fail its batch: the batch completes, and the object is recorded as a `FAILED` task
//! of its own, the task it would have had alone.

use crate::claims::{BatchObject, batch_objects};
use crate::db::{List, Tx, args};
use crate::store::SqlStore;
use crate::*;

/// The failed attempt from which a batch is split instead of retried whole.
pub(crate) const SPLIT_FROM_ATTEMPT: i64 = 2;

/// Whether a task that just failed (`phase`, `attempts` so far, `payload`) is a batch
/// to split, and its objects if so.
pub(crate) fn to_split(phase: &str, attempts: i64, payload: &str) -> Option<Vec<BatchObject>> {
    if phase != "PROCESS" || attempts < SPLIT_FROM_ATTEMPT {
        return None;
    }
    let objects = batch_objects(payload);
    (objects.len() > 1).then_some(objects)
}

/// Splits task `task_id`, whose lease this transaction has just ended, over `objects`
/// (its payload's): both halves `PENDING`, not before the task's backoff, attempts 0.
/// Returns the new task's id.
pub(crate) async fn split(
    s: &SqlStore,
    tx: &mut Tx,
    task_id: i64,
    objects: &[BatchObject],
) -> StoreResult<i64> {
    let (kept, moved) = objects.split_at(objects.len() / 2);
    let payload = |o: &[BatchObject]| serde_json::json!({ "objects": o }).to_string();
    tx.link()
        .execute(s.sql.keep_half, args![task_id, payload(kept)])
        .await?;
    let (new_id,): (i64,) = tx
        .link()
        .one(s.sql.split_off, args![task_id, payload(moved)])
        .await?;
    let ids = List::Ints(moved.iter().map(|o| o.object_id).collect());
    tx.link()
        .execute(s.sql.move_objects, args![ids, new_id])
        .await?;
    tracing::info!(
        task.id = task_id,
        "task {task_id} failed again over {} objects: split, {} stay, {} go to task {new_id}",
        objects.len(),
        kept.len(),
        moved.len()
    );
    Ok(new_id)
}

/// Records an object of a completed batch that could never be scanned as a `FAILED`
/// task of its own, the task it would have been alone, so that it counts against its
/// job's failure threshold like any failed task.
pub(crate) async fn fail_object(
    s: &SqlStore,
    tx: &mut Tx,
    failed: &FailedObject,
) -> StoreResult<()> {
    let (task,): (i64,) = tx
        .link()
        .one(s.sql.fail_object, args![failed.object_id, &failed.error])
        .await?;
    tx.link()
        .execute(
            s.sql.move_objects,
            args![List::Ints(vec![failed.object_id]), task],
        )
        .await?;
    Ok(())
}
