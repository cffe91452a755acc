//! What only PostgreSQL does: creating a job with its hand-off in one statement, the
//! durability flush, and the notifications of new tasks and announced jobs, with the
//! hand-off of an announced job's tasks on the listening connection.

use std::sync::LazyLock;

use async_trait::async_trait;
use sqlx::PgPool;
use sqlx::postgres::{PgListener, PgPoolOptions};

use crate::jobs::found;
use crate::sql::postgres::{
    CREATE_JOB, FLUSH_COMMITS, HAND_OFF_PENDING, JOBS_CHANNEL, SQL, TASKS_CHANNEL,
};
use crate::sql::render;
use crate::*;

static CREATE: LazyLock<&str> = LazyLock::new(|| render(CREATE_JOB, &SQL));
static HAND_OFF: LazyLock<&str> = LazyLock::new(|| render(HAND_OFF_PENDING, &SQL));

/// What `CREATE_JOB` returns.
#[derive(sqlx::FromRow)]
struct CreatedRow {
    #[sqlx(flatten)]
    job: JobRow,
    handed_sources: Vec<String>,
    handed_ids: Vec<i64>,
    handed_tokens: Vec<String>,
    handed_expiry: Vec<i64>,
}

/// A task `hand_off_pending_on` leased: which slot it filled, and its job's options.
#[derive(sqlx::FromRow)]
struct HandedRow {
    #[sqlx(flatten)]
    task: ClaimedTask,
    slot: i64,
    options: Option<String>,
    trace_id: Option<String>,
}

/// The lease columns of `n` task slots handed out in rounds to the waiters `to` (see
/// [`hand_off_rounds`]): which waiter takes each slot, and one array per column matched
/// by position for the statement, NULL where a slot goes to no one.
struct SlotLeases<'a> {
    owner: Vec<Option<usize>>,
    workers: Vec<Option<&'a str>>,
    nodes: Vec<Option<&'a str>>,
    lease_ms: Vec<Option<i64>>,
}

fn slot_leases(n: usize, to: &[HandOff]) -> SlotLeases<'_> {
    let positions: Vec<i64> = (0..n as i64).collect();
    let mut owner = vec![None; n];
    for (w, taken) in hand_off_rounds(&positions, to).into_iter().enumerate() {
        for p in taken {
            owner[p as usize] = Some(w);
        }
    }
    let lease = |w: &Option<usize>| w.map(|w| &to[w].lease);
    SlotLeases {
        workers: owner
            .iter()
            .map(|w| lease(w).map(|l| l.worker_id.as_str()))
            .collect(),
        nodes: owner
            .iter()
            .map(|w| lease(w).map(|l| l.node.as_str()))
            .collect(),
        lease_ms: owner.iter().map(|w| lease(w).map(|l| l.lease_ms)).collect(),
        owner,
    }
}

/// `create_job_handing_off` in one statement, one round trip, one commit: the job,
/// its tasks and any hand-off (`CREATE_JOB`).
pub(crate) async fn create_job(
    pool: &PgPool,
    job: &NewJob,
    to: &[HandOff],
) -> StoreResult<(CreateOutcome, Vec<(usize, ClaimedTask)>)> {
    let payloads: Vec<String> = job
        .data_sources
        .iter()
        .map(|ds| serde_json::json!({ "data_source_id": ds }).to_string())
        .collect();
    // Which waiter takes the task of each data source (by position), if any.
    let slots = slot_leases(job.data_sources.len(), to);
    let handing = slots.owner.iter().any(Option::is_some);
    // A concurrent create of the same id waits here for the other's commit, then
    // inserts nothing (the version it took is a gap, which delta polls tolerate).
    let created = sqlx::query_as::<_, CreatedRow>(*CREATE)
        .bind(&job.id)
        .bind(&job.name)
        .bind(&job.definition_hash)
        .bind(serde_json::to_string(&job.data_sources).unwrap_or_default())
        .bind(&job.options)
        .bind(job.priority)
        .bind(&job.data_sources)
        .bind(&payloads)
        .bind(&slots.workers)
        .bind(&slots.nodes)
        .bind(&slots.lease_ms)
        .bind(handing)
        .bind(&job.trace_id)
        .fetch_optional(pool)
        .await?;
    let Some(created) = created else {
        let row = sqlx::query_as(crate::sql::common::SELECT_JOB)
            .bind(&job.id)
            .fetch_optional(pool)
            .await?
            .ok_or_else(|| StoreError::Internal("job vanished".into()))?;
        return Ok((found(row, job), Vec::new()));
    };
    let handed = created
        .handed_sources
        .into_iter()
        .zip(created.handed_ids)
        .zip(created.handed_tokens.into_iter().zip(created.handed_expiry))
        .filter_map(|((ds, id), (lease_token, lease_expires_at))| {
            let at = job.data_sources.iter().position(|d| *d == ds)?;
            let task = ClaimedTask {
                id,
                job_id: job.id.clone(),
                payload: payloads[at].clone(),
                data_source_id: ds,
                phase: "DISCOVERY".into(),
                attempts: 1,
                lease_token,
                lease_expires_at,
            };
            Some((slots.owner[at]?, task))
        })
        .collect();
    Ok((CreateOutcome::Created(created.job), handed))
}

pub(crate) async fn flush_commits(pool: &PgPool) -> StoreResult<()> {
    sqlx::query(FLUSH_COMMITS).execute(pool).await?;
    Ok(())
}

/// Leases a job's pending tasks to the waiting workers `to` (one task each per round,
/// as [`hand_off_rounds`]), lowest id first, skipping tasks someone else holds; starts
/// the job on its first lease. Returns the job's options (empty when nothing was
/// leased) and each leased task with the index in `to` of its worker.
///
/// Used when another replica announces a new job (announcements are `NOTIFY`s), so
/// that a long-poll here gets its task in one statement instead of refreshing its
/// view of every job first. It runs on `executor`, in practice the listener's own
/// connection, whose backend is awake already (it just delivered the announcement)
/// where a pooled one would first have to be woken. Not inside an explicit
/// transaction: it makes its transaction's commit asynchronous.
pub async fn hand_off_pending_on<'e>(
    executor: impl sqlx::PgExecutor<'e>,
    job_id: &str,
    to: &[HandOff],
) -> StoreResult<(JobContext, Vec<(usize, ClaimedTask)>)> {
    // Slot k (the k-th pending task, lowest id first) goes to waiter owner[k].
    let slots = slot_leases(to.iter().map(|h| h.max).sum(), to);
    let rows: Vec<HandedRow> = sqlx::query_as(*HAND_OFF)
        .bind(job_id)
        .bind(&slots.workers)
        .bind(&slots.nodes)
        .bind(&slots.lease_ms)
        .bind(slots.owner.len() as i64)
        .fetch_all(executor)
        .await?;
    let job = rows
        .first()
        .map(|r| JobContext {
            options: r.options.clone().unwrap_or_default(),
            trace_id: r.trace_id.clone(),
        })
        .unwrap_or_default();
    Ok((
        job,
        rows.into_iter()
            .filter_map(|r| {
                let k = usize::try_from(r.slot - 1).ok()?;
                Some((slots.owner.get(k).copied().flatten()?, r.task))
            })
            .collect(),
    ))
}

/// A connection of its own listening on the tasks and jobs channels.
pub(crate) struct PgTaskListener {
    listener: PgListener,
}

impl PgTaskListener {
    /// Opens a connection with the pool's settings but outside it, so that listening
    /// never takes a connection from the statements.
    pub(crate) async fn connect(pool: &PgPool) -> StoreResult<PgTaskListener> {
        let own = PgPoolOptions::new()
            .max_connections(1)
            .max_lifetime(None)
            .idle_timeout(None)
            .connect_with((*pool.connect_options()).clone())
            .await?;
        let mut listener = PgListener::connect_with(&own).await?;
        listener.ignore_pool_close_event(true);
        // The announced hand-off runs on this connection; bounded, so that a lock held
        // elsewhere cannot stall the notifications behind it for long.
        sqlx::query("SET statement_timeout = 2000")
            .execute(&mut listener)
            .await?;
        listener.listen_all([TASKS_CHANNEL, JOBS_CHANNEL]).await?;
        Ok(PgTaskListener { listener })
    }
}

#[async_trait]
impl TaskListener for PgTaskListener {
    async fn next(&mut self) -> StoreResult<Notice> {
        loop {
            // `None`: the connection was lost. The caller opens a new listener (sqlx
            // would reconnect quietly on the next call, without the timeout above) and
            // looks once for what was announced meanwhile.
            let Some(note) = self.listener.try_recv().await? else {
                return Err(StoreError::Unavailable(
                    "notification connection lost".into(),
                ));
            };
            if note.channel() != JOBS_CHANNEL {
                return Ok(Notice::TasksCreated);
            }
            if let Some((job_id, pending)) = announced(note.payload()) {
                return Ok(Notice::JobAnnounced {
                    job_id: job_id.to_owned(),
                    pending,
                });
            }
        }
    }

    async fn hand_off_pending(
        &mut self,
        job_id: &str,
        to: &[HandOff],
    ) -> StoreResult<(JobContext, Vec<(usize, ClaimedTask)>)> {
        hand_off_pending_on(&mut self.listener, job_id, to).await
    }
}

/// `<job id> <pending count>`, as `CREATE_JOB` announces it.
fn announced(payload: &str) -> Option<(&str, usize)> {
    let (job, pending) = payload.split_once(' ')?;
    Some((job, pending.parse().ok()?))
}
