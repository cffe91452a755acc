//! Leases: which tasks are pending, claiming them, and heartbeats that extend them.
//! A lease is fenced by its token: a call with a token that is no longer current
//! changes nothing.

use crate::db::{List, args};
use crate::store::{SqlStore, distinct};
use crate::*;

pub(crate) async fn pending_task_ids(
    s: &SqlStore,
    job_id: &str,
    after_id: i64,
    limit: i64,
) -> StoreResult<Vec<i64>> {
    let mut conn = s.db.read().await?;
    conn.link()
        .column(s.sql.pending_task_ids, args![job_id, limit, after_id])
        .await
}

/// Leases those of `ids` that are still pending. Where the claim statement takes the
/// status version itself it is the whole unit of work; otherwise the version follows
/// in the same transaction.
pub(crate) async fn claim(
    s: &SqlStore,
    ids: &[i64],
    lease: &LeaseSpec,
) -> StoreResult<Vec<ClaimedTask>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let args = args![
        List::Ints(ids.to_vec()),
        &lease.worker_id,
        &lease.node,
        lease.lease_ms
    ];
    if s.sql.claim_versions {
        return s.db.write().await?.link().all(s.sql.claim, args).await;
    }
    let mut tx = s.db.begin().await?;
    let claimed: Vec<ClaimedTask> = tx.link().all(s.sql.claim, args).await?;
    let jobs = distinct(claimed.iter().map(|c| c.job_id.clone()).collect());
    s.bump(&mut tx, &jobs, true).await?;
    tx.commit().await?;
    Ok(claimed)
}

pub(crate) async fn heartbeat(
    s: &SqlStore,
    lease: &Lease,
    lease_ms: i64,
) -> StoreResult<HeartbeatOutcome> {
    let mut conn = s.db.write().await?;
    let row: Option<(i64, Option<String>)> = conn
        .link()
        .optional(
            s.sql.heartbeat,
            args![lease.task_id, &lease.lease_token, lease_ms],
        )
        .await?;
    Ok(match row {
        None => HeartbeatOutcome::Lost,
        Some((_, Some(state))) if state == "CANCELLING" || state == "CANCELLED" => {
            HeartbeatOutcome::Cancelled
        }
        Some((expires_at, _)) => HeartbeatOutcome::Extended { expires_at },
    })
}
