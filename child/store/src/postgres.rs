//! The PostgreSQL store: production sites, and every replica of a distributed site.
//! Claims, reaps and pipeline passes lock rows with `FOR UPDATE SKIP LOCKED` and
//! re-check state in the same statement, so concurrent replicas never double-apply.
//! Batches travel as one array or JSON parameter per statement.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Postgres, Row, Transaction};

use super::queries::{self, final_state};
use super::*;

/// The database clock in epoch milliseconds.
macro_rules! now {
    () => {
        "(EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::BIGINT"
    };
}

/// Clears a task's lease columns.
macro_rules! no_lease {
    () => {
        "lease_token = NULL, worker_id = NULL, lease_node = NULL, lease_expires_at = NULL"
    };
}

/// Takes the next status version (the counter row stays locked until commit).
macro_rules! bump_counter {
    () => {
        "UPDATE site_counters SET value = value + 1 WHERE name = 'status_version' RETURNING value"
    };
}

/// Lets the current transaction commit without waiting for its WAL to reach the disk
/// (`synchronous_commit = off` for this transaction only), as a select-list item
/// evaluated once. Used by the statements that grant leases and by nothing that
/// writes results: a lease lost in a crash is harmless because every write made
/// under a lease is checked against its token in the database, so a worker holding a
/// lost lease has its reports refused (409) and the task, still `PENDING`, is leased
/// again. Any later synchronous commit flushes the WAL through this one
/// (`Store::flush_commits`).
macro_rules! async_commit {
    () => {
        "(SELECT set_config('synchronous_commit', 'off', true)) AS commit_mode"
    };
}

/// The channel announcing new jobs with pending tasks (see `engine::listen`).
macro_rules! jobs_channel {
    () => {
        "meridian_jobs"
    };
}
pub const JOBS_CHANNEL: &str = jobs_channel!();

/// Creates a job, with the next status version, and its `DISCOVERY` tasks in one
/// statement; no row when the id exists. The counter is taken first: the job and task
/// rows are new, so no one else can hold them.
///
/// Tasks handed off at creation are inserted already leased: `$9..$11` give, per data
/// source (by position), the worker, lease node and lease length, or NULL to leave the
/// task `PENDING` (empty arrays: none handed off). The job then starts at once (`$12`).
/// The lease-history trigger fires on updates only, so this statement, the only one
/// that inserts leased tasks, writes their history rows itself (`h`).
///
/// Tasks left pending are announced on the jobs channel (`<job id> <count>`, delivered
/// at commit), so that long-polls on other replicas take them in one statement
/// ([`hand_off_pending_on`]); the tasks trigger's plain notification follows.
///
/// It commits asynchronously (`async_commit!`): waiting workers get their leases, and
/// other replicas the announcement, without waiting for the disk; `start_job` calls
/// [`Store::flush_commits`] before it answers, so the job is durable when acknowledged.
const CREATE_JOB: &str = concat!(
    "WITH v AS (",
    bump_counter!(),
    "), j AS (INSERT INTO jobs (id, name, definition_hash, data_sources, options, priority, ",
    "state, created_at, started_at, status_version) SELECT $1, $2, $3, $4, $5, $6, ",
    "CASE WHEN $12 THEN 'RUNNING' ELSE 'PENDING' END, n.ms, CASE WHEN $12 THEN n.ms END, v.value ",
    "FROM v, (SELECT ",
    now!(),
    " AS ms) n ON CONFLICT DO NOTHING RETURNING seq, id, name, definition_hash, ",
    "data_sources, options, priority, state, created_at, started_at, finished_at, status_version), ",
    "t AS (INSERT INTO tasks (job_id, data_source_id, phase, payload, state, created_at, ",
    "attempts, worker_id, lease_node, lease_token, lease_expires_at, last_progress_at) ",
    "SELECT j.id, u.ds, 'DISCOVERY', u.payload, ",
    "CASE WHEN u.worker IS NULL THEN 'PENDING' ELSE 'RUNNING' END, j.created_at, ",
    "CASE WHEN u.worker IS NULL THEN 0 ELSE 1 END, u.worker, u.node, ",
    "CASE WHEN u.worker IS NOT NULL THEN gen_random_uuid()::text END, ",
    "j.created_at + u.lease_ms, CASE WHEN u.worker IS NOT NULL THEN j.created_at END ",
    "FROM j, unnest($7::TEXT[], $8::TEXT[], $9::TEXT[], $10::TEXT[], $11::BIGINT[]) ",
    "WITH ORDINALITY AS u(ds, payload, worker, node, lease_ms, n) WHERE u.ds IS NOT NULL ",
    "ORDER BY u.n RETURNING id, data_source_id, worker_id, lease_token, lease_expires_at, created_at), ",
    "h AS (INSERT INTO lease_history (task_id, lease_token, worker_id, leased_at) ",
    "SELECT id, lease_token, worker_id, created_at FROM t WHERE lease_token IS NOT NULL) ",
    "SELECT j.*, ",
    "ARRAY(SELECT data_source_id FROM t WHERE lease_token IS NOT NULL ORDER BY id) AS handed_sources, ",
    "ARRAY(SELECT id FROM t WHERE lease_token IS NOT NULL ORDER BY id) AS handed_ids, ",
    "ARRAY(SELECT lease_token FROM t WHERE lease_token IS NOT NULL ORDER BY id) AS handed_tokens, ",
    "ARRAY(SELECT lease_expires_at FROM t WHERE lease_token IS NOT NULL ORDER BY id) AS handed_expiry, ",
    "CASE WHEN EXISTS (SELECT 1 FROM t WHERE lease_token IS NULL) THEN pg_notify('",
    jobs_channel!(),
    "', j.id || ' ' || (SELECT count(*) FROM t WHERE lease_token IS NULL)) END AS announced, ",
    "set_config('synchronous_commit', 'off', true) AS commit_mode ",
    "FROM j"
);

/// A task `hand_off_pending_on` leased: which slot it filled, and its job's options.
#[derive(sqlx::FromRow)]
struct HandedRow {
    #[sqlx(flatten)]
    task: ClaimedTask,
    slot: i64,
    options: Option<String>,
}

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

/// Cancels a job's pending tasks (on cancel, and for tasks made pending after it).
const CANCEL_PENDING: &str = concat!(
    "UPDATE tasks SET state = 'CANCELLED', finished_at = ",
    now!(),
    " WHERE job_id = $1 AND state = 'PENDING'"
);

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/postgres");

pub struct PostgresStore {
    pool: PgPool,
}

impl PostgresStore {
    /// Connects to `url` and applies migrations (sqlx takes an advisory lock, so
    /// replicas starting together migrate once).
    pub async fn connect(url: &str, max_connections: u32) -> StoreResult<Self> {
        let options = PgConnectOptions::from_str(url)?;
        // No ping before each acquire: it is a round trip in front of every statement
        // (≈ 0.2 ms here, on the first-task path twice). A connection that died idle
        // fails its next statement instead, which surfaces as `Unavailable` (503, or a
        // retry in the loops) once, and the pool drops it.
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .test_before_acquire(false)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(options)
            .await?;
        MIGRATOR
            .run(&pool)
            .await
            .map_err(|e| StoreError::Internal(format!("migrations: {e}")))?;
        Ok(PostgresStore { pool })
    }

    /// Takes the next status version and stamps it on `jobs`. The counter row's lock
    /// is held until commit, so versions are handed out in commit order and a delta
    /// poll never skips a change. Must be the last writes of a transaction.
    async fn bump(
        tx: &mut Transaction<'_, Postgres>,
        jobs: &[String],
        start: bool,
    ) -> StoreResult<()> {
        if jobs.is_empty() {
            return Ok(());
        }
        // One statement: the counter's row is locked (and incremented) by the CTE
        // before any job row, since a job row is locked only once the join with `v`
        // has produced it; so the lock order stays counter → jobs.
        let sql = if start {
            concat!(
                "WITH v AS (",
                bump_counter!(),
                ") UPDATE jobs SET status_version = v.value, ",
                "started_at = COALESCE(started_at, ",
                now!(),
                "), state = CASE WHEN state = 'PENDING' THEN 'RUNNING' ELSE state END FROM v WHERE jobs.id = ANY($1)"
            )
        } else {
            concat!(
                "WITH v AS (",
                bump_counter!(),
                ") UPDATE jobs SET status_version = v.value FROM v WHERE jobs.id = ANY($1)"
            )
        };
        sqlx::query(sql).bind(jobs).execute(&mut **tx).await?;
        Ok(())
    }

    /// The job a create found already there.
    async fn existing_job(&self, id: &str) -> StoreResult<JobRow> {
        self.job(id)
            .await?
            .ok_or_else(|| StoreError::Internal("job vanished".into()))
    }
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

fn distinct(mut ids: Vec<String>) -> Vec<String> {
    ids.sort();
    ids.dedup();
    ids
}

#[async_trait]
impl Store for PostgresStore {
    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }

    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn close(&self) {
        self.pool.close().await;
    }

    async fn parameters(&self, node_id: &str) -> StoreResult<Vec<SystemParameter>> {
        let rows = sqlx::query(queries::PARAMETERS)
            .bind(node_id)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .into_iter()
            .map(|r| SystemParameter {
                scope: r.get(0),
                key: r.get(1),
                value: r.get(2),
            })
            .collect())
    }

    async fn set_parameter(&self, scope: &str, key: &str, value: &str) -> StoreResult<()> {
        sqlx::query(concat!(
            "INSERT INTO system_parameters (scope, key, value, updated_at) VALUES ($1, $2, $3, ",
            now!(),
            ") ON CONFLICT (scope, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at"
        ))
        .bind(scope)
        .bind(key)
        .bind(value)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn create_job_handing_off(
        &self,
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
        // One statement, one round trip, one commit: the job, its tasks and any hand-off.
        // A concurrent create of the same id waits here for the other's commit, then
        // inserts nothing (the version it took is a gap, which delta polls tolerate).
        let created = sqlx::query_as::<_, CreatedRow>(CREATE_JOB)
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
            .fetch_optional(&self.pool)
            .await?;
        let Some(created) = created else {
            let row = self.existing_job(&job.id).await?;
            let outcome = if row.definition_hash == job.definition_hash {
                CreateOutcome::Existing(row)
            } else {
                CreateOutcome::Conflict(row)
            };
            return Ok((outcome, Vec::new()));
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

    async fn flush_commits(&self) -> StoreResult<()> {
        // A transaction that writes WAL and commits with the session's
        // `synchronous_commit` waits for the WAL up to its own commit record, so for
        // every commit before it (locally, and on synchronous standbys when there are
        // any); a transactional logical-decoding message is the smallest such write (no
        // table touched, any `wal_level`; EXECUTE is granted to PUBLIC by default).
        // Skipped when there are no synchronous standbys and the local WAL is flushed up
        // to where it is being inserted: every earlier commit is then on disk. (With
        // standbys, a local flush says nothing about them.)
        sqlx::query(
            "SELECT CASE WHEN current_setting('synchronous_standby_names') <> '' \
             OR pg_current_wal_flush_lsn() < pg_current_wal_insert_lsn() \
             THEN pg_logical_emit_message(true, 'meridian', 'flush') END",
        )
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn job(&self, id: &str) -> StoreResult<Option<JobRow>> {
        Ok(sqlx::query_as(queries::SELECT_JOB)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?)
    }

    async fn jobs_page(
        &self,
        state: Option<&str>,
        after_seq: i64,
        limit: i64,
    ) -> StoreResult<Vec<JobRow>> {
        let q = match state {
            Some(s) => sqlx::query_as(queries::JOBS_PAGE_BY_STATE)
                .bind(after_seq)
                .bind(limit)
                .bind(s),
            None => sqlx::query_as(queries::JOBS_PAGE)
                .bind(after_seq)
                .bind(limit),
        };
        Ok(q.fetch_all(&self.pool).await?)
    }

    async fn jobs_changed_since(&self, version: i64, limit: i64) -> StoreResult<Vec<JobRow>> {
        Ok(sqlx::query_as(queries::JOBS_CHANGED_SINCE)
            .bind(version)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?)
    }

    async fn active_jobs(&self) -> StoreResult<Vec<JobRow>> {
        Ok(sqlx::query_as(queries::ACTIVE_JOBS)
            .fetch_all(&self.pool)
            .await?)
    }

    async fn job_counts(&self, id: &str, stalled_after_ms: i64) -> StoreResult<JobCounts> {
        let p = &self.pool;
        let tasks = sqlx::query_as(queries::TASK_COUNTS)
            .bind(id)
            .fetch_all(p)
            .await?;
        let objects_discovered = sqlx::query_scalar(queries::OBJECTS_DISCOVERED)
            .bind(id)
            .fetch_one(p)
            .await?;
        let objects_by_outcome = sqlx::query_as(queries::OBJECTS_BY_OUTCOME)
            .bind(id)
            .fetch_all(p)
            .await?;
        let objects_by_reason = sqlx::query_as(queries::OBJECTS_BY_REASON)
            .bind(id)
            .fetch_all(p)
            .await?;
        let findings = sqlx::query_as(queries::FINDINGS_BY_CLASSIFIER)
            .bind(id)
            .fetch_all(p)
            .await?;
        let findings_by_source = sqlx::query_as(queries::FINDINGS_BY_SOURCE)
            .bind(id)
            .fetch_all(p)
            .await?;
        let objects_with_findings = sqlx::query_as(queries::OBJECTS_WITH_FINDINGS)
            .bind(id)
            .fetch_all(p)
            .await?;
        let stalled_tasks = sqlx::query_scalar(concat!(
            "SELECT COUNT(*) FROM tasks WHERE job_id = $1 AND state = 'RUNNING' AND last_progress_at < ",
            now!(),
            " - $2"
        ))
        .bind(id)
        .bind(stalled_after_ms)
        .fetch_one(p)
        .await?;
        Ok(JobCounts {
            tasks,
            objects_discovered,
            objects_by_outcome,
            objects_by_reason,
            findings,
            findings_by_source,
            objects_with_findings,
            stalled_tasks,
        })
    }

    async fn request_cancel(&self, id: &str) -> StoreResult<Option<JobRow>> {
        let mut tx = self.pool.begin().await?;
        let Some(job) = sqlx::query_as::<_, JobRow>(queries::SELECT_JOB)
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
        else {
            return Ok(None);
        };
        if job.job_state().is_terminal() || job.state == "CANCELLING" {
            return Ok(Some(job));
        }
        sqlx::query(CANCEL_PENDING)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        Self::bump(&mut tx, std::slice::from_ref(&job.id), false).await?;
        sqlx::query("UPDATE jobs SET state = 'CANCELLING' WHERE id = $1 AND state IN ('PENDING', 'RUNNING')")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let job = sqlx::query_as::<_, JobRow>(queries::SELECT_JOB)
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Some(job))
    }

    async fn findings_page(
        &self,
        job_id: &str,
        after_id: i64,
        limit: i64,
    ) -> StoreResult<Vec<FindingRow>> {
        Ok(sqlx::query_as(queries::FINDINGS_PAGE)
            .bind(job_id)
            .bind(after_id)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?)
    }

    async fn pending_task_ids(
        &self,
        job_id: &str,
        after_id: i64,
        limit: i64,
    ) -> StoreResult<Vec<i64>> {
        Ok(sqlx::query_scalar(concat!(
            "SELECT id FROM tasks WHERE job_id = $1 AND state = 'PENDING' AND id > $3 AND not_before <= ",
            now!(),
            " ORDER BY id LIMIT $2"
        ))
        .bind(job_id)
        .bind(limit)
        .bind(after_id)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn claim(&self, ids: &[i64], lease: &LeaseSpec) -> StoreResult<Vec<ClaimedTask>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        // One statement, one round trip: lease (`c`), then the status version (`v`,
        // only when something was leased; `count(*)` reads all of `c` first, so every
        // task row is locked before the counter), then the jobs (`j`, started on their
        // first lease). Lock order tasks → counter → jobs, as everywhere.
        Ok(sqlx::query_as(concat!(
            "WITH c AS (UPDATE tasks SET state = 'RUNNING', attempts = attempts + 1, worker_id = $2, lease_node = $3, ",
            "lease_token = gen_random_uuid()::text, lease_expires_at = ",
            now!(),
            " + $4, last_progress_at = ",
            now!(),
            " WHERE id IN (SELECT id FROM tasks WHERE id = ANY($1) AND state = 'PENDING' AND not_before <= ",
            now!(),
            " FOR UPDATE SKIP LOCKED) AND state = 'PENDING' ",
            "RETURNING id, job_id, data_source_id, phase, payload, attempts, lease_token, lease_expires_at), ",
            "v AS (UPDATE site_counters SET value = value + 1 WHERE name = 'status_version' ",
            "AND (SELECT count(*) FROM c) > 0 RETURNING value), ",
            "j AS (UPDATE jobs SET status_version = v.value, started_at = COALESCE(started_at, ",
            now!(),
            "), state = CASE WHEN state = 'PENDING' THEN 'RUNNING' ELSE state END ",
            "FROM v WHERE jobs.id IN (SELECT job_id FROM c)) ",
            "SELECT id, job_id, data_source_id, phase, payload, attempts, lease_token, lease_expires_at, ",
            async_commit!(),
            " FROM c"
        ))
        .bind(ids)
        .bind(&lease.worker_id)
        .bind(&lease.node)
        .bind(lease.lease_ms)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn heartbeat(&self, lease: &Lease, lease_ms: i64) -> StoreResult<HeartbeatOutcome> {
        let row: Option<(i64, String)> = sqlx::query_as(concat!(
            "UPDATE tasks t SET lease_expires_at = ",
            now!(),
            " + $3 WHERE t.id = $1 AND t.lease_token = $2 AND t.state = 'RUNNING' ",
            "RETURNING t.lease_expires_at, (SELECT j.state FROM jobs j WHERE j.id = t.job_id)"
        ))
        .bind(lease.task_id)
        .bind(&lease.lease_token)
        .bind(lease_ms)
        .fetch_optional(&self.pool)
        .await?;
        Ok(match row {
            None => HeartbeatOutcome::Lost,
            Some((_, state)) if state == "CANCELLING" || state == "CANCELLED" => {
                HeartbeatOutcome::Cancelled
            }
            Some((expires_at, _)) => HeartbeatOutcome::Extended { expires_at },
        })
    }

    async fn record_discovery(
        &self,
        lease: &Lease,
        batch: &DiscoveryBatch,
    ) -> StoreResult<ReportOutcome> {
        let mut tx = self.pool.begin().await?;
        let task: Option<(String, String)> = sqlx::query_as(concat!(
            "UPDATE tasks SET last_progress_at = ",
            now!(),
            " WHERE id = $1 AND lease_token = $2 AND state = 'RUNNING' RETURNING job_id, data_source_id"
        ))
        .bind(lease.task_id)
        .bind(&lease.lease_token)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((job_id, data_source_id)) = task else {
            return Ok(ReportOutcome::LeaseLost);
        };
        let record: Option<i64> = sqlx::query_scalar(concat!(
            "INSERT INTO progress_records (job_id, task_id, attempt, seq, object_count, processed, created_at) ",
            "VALUES ($1, $2, $3, $4, $5, FALSE, ",
            now!(),
            ") ON CONFLICT (task_id, attempt, seq) DO NOTHING RETURNING id"
        ))
        .bind(&job_id)
        .bind(lease.task_id)
        .bind(batch.attempt)
        .bind(batch.seq)
        .bind(batch.objects.len() as i64)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(record) = record else {
            tx.commit().await?;
            return Ok(ReportOutcome::Duplicate);
        };
        sqlx::query(
            "INSERT INTO discovered_objects (job_id, data_source_id, object_key, size_bytes, modified_at, \
             progress_record_id, outcome, reason) \
             SELECT $1, $2, x.key, x.size_bytes, x.modified_at, $3, \
               CASE WHEN x.skipped_reason IS NULL THEN NULL ELSE 'SKIPPED' END, x.skipped_reason \
             FROM json_to_recordset($4::json) AS x(key TEXT, size_bytes BIGINT, modified_at BIGINT, skipped_reason TEXT) \
             ON CONFLICT DO NOTHING",
        )
        .bind(&job_id)
        .bind(&data_source_id)
        .bind(record)
        .bind(serde_json::to_string(&batch.objects).unwrap_or_default())
        .execute(&mut *tx)
        .await?;
        Self::bump(&mut tx, &[job_id], false).await?;
        tx.commit().await?;
        Ok(ReportOutcome::Accepted)
    }

    async fn complete(&self, batch: &[Completion]) -> StoreResult<Vec<ReportOutcome>> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        // Arrays matched by position, and `id = ANY(...)` on the primary key: the plan is
        // an index lookup per task whatever the table's statistics say (a join with a
        // set-returning function can turn into a sequential scan of the whole queue).
        let ids: Vec<i64> = batch.iter().map(|c| c.lease.task_id).collect();
        let tokens: Vec<&str> = batch.iter().map(|c| c.lease.lease_token.as_str()).collect();
        let mut tx = self.pool.begin().await?;
        let accepted: Vec<(i64, String)> = sqlx::query_as(concat!(
            "UPDATE tasks t SET state = 'SUCCEEDED', finished_at = ",
            now!(),
            ", ",
            no_lease!(),
            " WHERE t.id = ANY($1) AND t.state = 'RUNNING' ",
            "AND t.lease_token = ($2::TEXT[])[array_position($1::BIGINT[], t.id)] ",
            "RETURNING t.id, t.job_id"
        ))
        .bind(&ids)
        .bind(&tokens)
        .fetch_all(&mut *tx)
        .await?;
        let ok: std::collections::HashSet<i64> = accepted.iter().map(|(id, _)| *id).collect();
        let done: Vec<&Completion> = batch
            .iter()
            .filter(|c| ok.contains(&c.lease.task_id))
            .collect();
        let objects: Vec<&ObjectResult> = done.iter().filter_map(|c| c.object.as_ref()).collect();
        if !objects.is_empty() {
            let object_ids: Vec<i64> = objects.iter().map(|o| o.object_id).collect();
            let outcomes: Vec<&str> = objects.iter().map(|o| o.outcome.as_str()).collect();
            let reasons: Vec<Option<&str>> = objects.iter().map(|o| o.reason.as_deref()).collect();
            sqlx::query(
                "UPDATE discovered_objects o SET \
                   outcome = ($2::TEXT[])[array_position($1::BIGINT[], o.id)], \
                   reason = ($3::TEXT[])[array_position($1::BIGINT[], o.id)] \
                 WHERE o.id = ANY($1)",
            )
            .bind(&object_ids)
            .bind(&outcomes)
            .bind(&reasons)
            .execute(&mut *tx)
            .await?;
        }
        let job_of: std::collections::HashMap<i64, String> = accepted.iter().cloned().collect();
        let findings = queries::findings_json(&done, &job_of);
        if !findings.is_empty() {
            sqlx::query(
                "INSERT INTO findings (job_id, object_id, classifier, location, count, masked_sample, confidence) \
                 SELECT f.job_id, f.object_id, f.classifier, f.location, f.count, f.masked_sample, f.confidence \
                 FROM json_to_recordset($1::json) AS f(job_id TEXT, object_id BIGINT, classifier TEXT, \
                   location TEXT, count BIGINT, masked_sample TEXT, confidence DOUBLE PRECISION) \
                 ON CONFLICT DO NOTHING",
            )
            .bind(findings)
            .execute(&mut *tx)
            .await?;
        }
        let jobs = distinct(accepted.iter().map(|(_, j)| j.clone()).collect());
        Self::bump(&mut tx, &jobs, false).await?;
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

    async fn fail(&self, lease: &Lease, failure: &Failure) -> StoreResult<FailOutcome> {
        let mut tx = self.pool.begin().await?;
        let row: Option<(String, String)> = sqlx::query_as(concat!(
            "UPDATE tasks SET state = CASE WHEN $3 AND attempts < $4 THEN 'PENDING' ELSE 'FAILED' END, ",
            "not_before = ",
            now!(),
            " + $5, finished_at = CASE WHEN $3 AND attempts < $4 THEN NULL ELSE ",
            now!(),
            " END, last_error = $6, ",
            no_lease!(),
            " WHERE id = $1 AND lease_token = $2 AND state = 'RUNNING' RETURNING state, job_id"
        ))
        .bind(lease.task_id)
        .bind(&lease.lease_token)
        .bind(failure.retryable)
        .bind(i64::from(failure.max_retries))
        .bind(failure.backoff_ms)
        .bind(&failure.error)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((state, job_id)) = row else {
            return Ok(FailOutcome::LeaseLost);
        };
        Self::bump(&mut tx, &[job_id], false).await?;
        tx.commit().await?;
        Ok(if state == "PENDING" {
            FailOutcome::Retrying
        } else {
            FailOutcome::Failed
        })
    }

    async fn release_node_leases(
        &self,
        node: &str,
        count_attempt: bool,
        max_retries: u32,
    ) -> StoreResult<u64> {
        let mut tx = self.pool.begin().await?;
        let jobs: Vec<String> = sqlx::query_scalar(concat!(
            "UPDATE tasks SET state = CASE WHEN $2 AND attempts >= $3 THEN 'FAILED' ELSE 'PENDING' END, ",
            "finished_at = CASE WHEN $2 AND attempts >= $3 THEN ",
            now!(),
            " ELSE NULL END, attempts = CASE WHEN $2 THEN attempts ELSE attempts - 1 END, ",
            "last_error = CASE WHEN $2 THEN 'interrupted: node ' || lease_node || ' restarted' ELSE last_error END, ",
            no_lease!(),
            " WHERE state = 'RUNNING' AND lease_node = $1 RETURNING job_id"
        ))
        .bind(node)
        .bind(count_attempt)
        .bind(i64::from(max_retries))
        .fetch_all(&mut *tx)
        .await?;
        let n = jobs.len() as u64;
        Self::bump(&mut tx, &distinct(jobs), false).await?;
        tx.commit().await?;
        Ok(n)
    }

    async fn reap_expired(&self, limit: i64, max_retries: u32) -> StoreResult<ReapCounts> {
        let mut tx = self.pool.begin().await?;
        let rows: Vec<(String, String)> = sqlx::query_as(concat!(
            "UPDATE tasks SET state = CASE WHEN attempts >= $2 THEN 'FAILED' ELSE 'PENDING' END, ",
            "finished_at = CASE WHEN attempts >= $2 THEN ",
            now!(),
            " ELSE NULL END, last_error = 'lease expired: worker ' || COALESCE(worker_id, '?') || ' stopped heartbeating', ",
            no_lease!(),
            " WHERE id IN (SELECT id FROM tasks WHERE state = 'RUNNING' AND lease_expires_at < ",
            now!(),
            " ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED) AND state = 'RUNNING' AND lease_expires_at < ",
            now!(),
            " RETURNING job_id, state"
        ))
        .bind(limit)
        .bind(i64::from(max_retries))
        .fetch_all(&mut *tx)
        .await?;
        let mut counts = ReapCounts::default();
        for (_, state) in &rows {
            if state == "FAILED" {
                counts.failed += 1
            } else {
                counts.requeued += 1
            }
        }
        Self::bump(
            &mut tx,
            &distinct(rows.into_iter().map(|r| r.0).collect()),
            false,
        )
        .await?;
        tx.commit().await?;
        Ok(counts)
    }

    async fn pipeline(&self, limit: i64) -> StoreResult<PipelineCounts> {
        let mut tx = self.pool.begin().await?;
        let records: Vec<(i64, String)> = sqlx::query_as(
            "UPDATE progress_records SET processed = TRUE WHERE id IN \
             (SELECT id FROM progress_records WHERE processed = FALSE ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED) \
             AND processed = FALSE RETURNING id, job_id",
        )
        .bind(limit)
        .fetch_all(&mut *tx)
        .await?;
        if records.is_empty() {
            return Ok(PipelineCounts::default());
        }
        let ids: Vec<i64> = records.iter().map(|r| r.0).collect();
        let created = sqlx::query(concat!(
            "INSERT INTO tasks (job_id, data_source_id, phase, object_id, payload, state, created_at) ",
            "SELECT o.job_id, o.data_source_id, 'PROCESS', o.id, ",
            "json_build_object('object_id', o.id, 'key', o.object_key, 'size_bytes', o.size_bytes)::text, ",
            "CASE WHEN j.state = 'CANCELLING' THEN 'CANCELLED' ELSE 'PENDING' END, ",
            now!(),
            " FROM discovered_objects o JOIN jobs j ON j.id = o.job_id ",
            "WHERE o.progress_record_id = ANY($1) AND o.outcome IS NULL ORDER BY o.id ON CONFLICT DO NOTHING"
        ))
        .bind(&ids)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        Self::bump(
            &mut tx,
            &distinct(records.into_iter().map(|r| r.1).collect()),
            false,
        )
        .await?;
        tx.commit().await?;
        Ok(PipelineCounts {
            records: ids.len() as u64,
            tasks_created: created,
        })
    }

    async fn finish_jobs(&self, failure_threshold_percent: f64) -> StoreResult<Vec<FinishedJob>> {
        let mut tx = self.pool.begin().await?;
        // Tasks the pipeliner or the reaper made pending after the cancel. One indexed
        // statement per cancelling job; with none, this transaction writes nothing.
        let cancelling: Vec<String> = sqlx::query_scalar(queries::CANCELLING_JOBS)
            .fetch_all(&mut *tx)
            .await?;
        for id in &cancelling {
            sqlx::query(CANCEL_PENDING)
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        let candidates: Vec<(String, String, i64, i64)> =
            sqlx::query_as(queries::FINISH_CANDIDATES)
                .fetch_all(&mut *tx)
                .await?;
        if candidates.is_empty() {
            tx.commit().await?;
            return Ok(Vec::new());
        }
        let ids: Vec<String> = candidates.iter().map(|c| c.0.clone()).collect();
        Self::bump(&mut tx, &ids, false).await?;
        let mut finished = Vec::new();
        for (id, state, total, failed) in candidates {
            let next = final_state(&state, total, failed, failure_threshold_percent);
            let changed = sqlx::query(concat!(
                "UPDATE jobs SET state = $2, finished_at = ",
                now!(),
                " WHERE id = $1 AND state = $3"
            ))
            .bind(&id)
            .bind(next.as_str())
            .bind(&state)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if changed == 1 {
                finished.push(FinishedJob { id, state: next });
            }
        }
        tx.commit().await?;
        Ok(finished)
    }

    async fn lease_history(&self, task_id: i64) -> StoreResult<Vec<LeaseRecord>> {
        Ok(sqlx::query_as(queries::LEASE_HISTORY)
            .bind(task_id)
            .fetch_all(&self.pool)
            .await?)
    }

    async fn overlapping_leases(&self) -> StoreResult<i64> {
        Ok(sqlx::query_scalar(queries::OVERLAPPING_LEASES)
            .fetch_one(&self.pool)
            .await?)
    }
}

/// Leases a job's pending tasks to the waiting workers `to` (one task each per round,
/// as [`hand_off_rounds`]), lowest id first, skipping tasks someone else holds; starts
/// the job on its first lease. Returns the job's options (empty when nothing was
/// leased) and each leased task with the index in `to` of its worker.
///
/// Used when another replica announces a new job (PostgreSQL only: announcements are
/// `NOTIFY`s), so that a long-poll here gets its task in one statement instead of
/// refreshing its view of every job first. It runs on `executor`, in practice the
/// listener's own connection, whose backend is awake already (it just delivered the
/// announcement) where a pooled one would first have to be woken. Not inside an
/// explicit transaction: it makes its transaction's commit asynchronous.
pub async fn hand_off_pending_on<'e>(
    executor: impl sqlx::PgExecutor<'e>,
    job_id: &str,
    to: &[HandOff],
) -> StoreResult<(String, Vec<(usize, ClaimedTask)>)> {
    // Slot k (the k-th pending task, lowest id first) goes to waiter owner[k].
    let slots = slot_leases(to.iter().map(|h| h.max).sum(), to);
    // One statement: pick (`p`, numbered), lease (`c`), then the status version and
    // the job's start as in `claim` (same lock order: tasks → counter → jobs).
    let rows: Vec<HandedRow> = sqlx::query_as(concat!(
        "WITH p AS (SELECT id, row_number() OVER (ORDER BY id) AS slot FROM (",
        "SELECT id FROM tasks WHERE job_id = $1 AND state = 'PENDING' AND not_before <= ",
        now!(),
        " ORDER BY id LIMIT $5 FOR UPDATE SKIP LOCKED) s), ",
        "c AS (UPDATE tasks t SET state = 'RUNNING', attempts = attempts + 1, ",
        "worker_id = ($2::TEXT[])[p.slot], lease_node = ($3::TEXT[])[p.slot], ",
        "lease_token = gen_random_uuid()::text, lease_expires_at = ",
        now!(),
        " + ($4::BIGINT[])[p.slot], last_progress_at = ",
        now!(),
        " FROM p WHERE t.id = p.id AND t.state = 'PENDING' ",
        "RETURNING t.id, t.job_id, t.data_source_id, t.phase, t.payload, t.attempts, ",
        "t.lease_token, t.lease_expires_at, p.slot), ",
        "v AS (UPDATE site_counters SET value = value + 1 WHERE name = 'status_version' ",
        "AND (SELECT count(*) FROM c) > 0 RETURNING value), ",
        "j AS (UPDATE jobs SET status_version = v.value, started_at = COALESCE(started_at, ",
        now!(),
        "), state = CASE WHEN state = 'PENDING' THEN 'RUNNING' ELSE state END ",
        "FROM v WHERE jobs.id = $1 RETURNING jobs.options) ",
        "SELECT c.*, (SELECT options FROM j) AS options, ",
        async_commit!(),
        " FROM c"
    ))
    .bind(job_id)
    .bind(&slots.workers)
    .bind(&slots.nodes)
    .bind(&slots.lease_ms)
    .bind(slots.owner.len() as i64)
    .fetch_all(executor)
    .await?;
    let options = rows
        .first()
        .and_then(|r| r.options.clone())
        .unwrap_or_default();
    Ok((
        options,
        rows.into_iter()
            .filter_map(|r| {
                let k = usize::try_from(r.slot - 1).ok()?;
                Some((slots.owner.get(k).copied().flatten()?, r.task))
            })
            .collect(),
    ))
}
