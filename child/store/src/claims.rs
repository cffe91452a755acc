//! Leases: which tasks are pending, claiming them, heartbeats that extend them, and
//! what a current lease is about (to check a worker's report against it). A lease is
//! fenced by its token: a call with a token that is no longer current changes nothing.

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

/// What a task whose lease is current is about. A task's job and phase never change,
/// and its objects change only when a failed batch is split, which ends its lease
/// first; so a report checked against these before it is written is checked against
/// what the write (fenced by the token) will touch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeasedTask {
    pub task_id: i64,
    pub job_id: String,
    /// `DISCOVERY` or `PROCESS`.
    pub phase: String,
    /// The objects a `PROCESS` task scans; empty for `DISCOVERY`.
    pub objects: Vec<i64>,
}

/// A row of the `leased_tasks` statement.
#[derive(sqlx::FromRow)]
struct LeaseRow {
    id: i64,
    job_id: String,
    phase: String,
    object_id: Option<i64>,
    payload: String,
    lease_token: Option<String>,
}

/// Those of `leases` that are current, with what their tasks are about; a lease whose
/// token is not the task's current one is absent.
pub(crate) async fn leased_tasks(s: &SqlStore, leases: &[Lease]) -> StoreResult<Vec<LeasedTask>> {
    if leases.is_empty() {
        return Ok(Vec::new());
    }
    let ids = List::Ints(leases.iter().map(|l| l.task_id).collect());
    let rows: Vec<LeaseRow> =
        s.db.read()
            .await?
            .link()
            .all(s.sql.leased_tasks, args![ids])
            .await?;
    Ok(rows
        .into_iter()
        .filter(|r| {
            leases.iter().any(|l| {
                l.task_id == r.id && r.lease_token.as_deref() == Some(l.lease_token.as_str())
            })
        })
        .map(|r| LeasedTask {
            objects: match r.object_id {
                Some(id) => vec![id],
                None if r.phase == "PROCESS" => batch_objects(&r.payload)
                    .into_iter()
                    .map(|o| o.object_id)
                    .collect(),
                None => Vec::new(),
            },
            task_id: r.id,
            job_id: r.job_id,
            phase: r.phase,
        })
        .collect())
}

/// One object of a batched `PROCESS` task's payload (`{"objects": [...]}`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct BatchObject {
    pub object_id: i64,
    pub key: String,
    pub size_bytes: i64,
}

/// The objects of a batched `PROCESS` task's payload; none for any other payload.
/// The store wrote the payload, so it is well formed.
pub(crate) fn batch_objects(payload: &str) -> Vec<BatchObject> {
    #[derive(serde::Deserialize)]
    struct Batch {
        objects: Vec<BatchObject>,
    }
    serde_json::from_str::<Batch>(payload)
        .map(|b| b.objects)
        .unwrap_or_default()
}
