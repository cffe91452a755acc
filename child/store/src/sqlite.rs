//! The SQLite store: the embedded default of single-process sites. One writer
//! connection (SQLite serialises writers anyway; a single connection turns lock
//! contention into an orderly queue) and a small pool of readers, in WAL mode so that
//! readers never wait for the writer.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, Sqlite, SqlitePool, Transaction};

use super::queries::{self, final_state};
use super::*;

/// The database clock in epoch milliseconds.
macro_rules! now {
    () => {
        "CAST(unixepoch('subsec') * 1000 AS INTEGER)"
    };
}

/// Leases tasks ($1 their ids as JSON, then worker, node, lease length in ms) with a
/// fresh token; the caller adds its `WHERE` and [`leased_columns!`]. One statement for
/// a claim and for a hand-off at creation, so that both leases are the same.
macro_rules! lease_tasks {
    () => {
        concat!(
            "UPDATE tasks SET state = 'RUNNING', attempts = attempts + 1, worker_id = $2, lease_node = $3, ",
            "lease_token = lower(hex(randomblob(16))), lease_expires_at = ",
            now!(),
            " + $4, last_progress_at = ",
            now!()
        )
    };
}

/// What a leasing statement returns: the columns of a `ClaimedTask`.
macro_rules! leased_columns {
    () => {
        " RETURNING id, job_id, data_source_id, phase, payload, attempts, lease_token, lease_expires_at"
    };
}

/// Clears a task's lease columns.
macro_rules! no_lease {
    () => {
        "lease_token = NULL, worker_id = NULL, lease_node = NULL, lease_expires_at = NULL"
    };
}

/// Cancels a job's pending tasks (on cancel, and for tasks made pending after it).
const CANCEL_PENDING: &str = concat!(
    "UPDATE tasks SET state = 'CANCELLED', finished_at = ",
    now!(),
    " WHERE job_id = $1 AND state = 'PENDING'"
);

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/sqlite");

pub struct SqliteStore {
    write: SqlitePool,
    read: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating if missing) and migrates the database at `url`
    /// (`sqlite://PATH` or `sqlite::memory:`).
    pub async fn connect(url: &str, readers: u32) -> StoreResult<Self> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // NORMAL in WAL mode survives a process crash (SIGKILL); only an OS crash
            // can lose the last commits.
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        let memory = url.contains(":memory:") || url.contains("mode=memory");
        let single = |max: u32| {
            SqlitePoolOptions::new()
                .max_connections(max)
                .min_connections(if memory { 1 } else { 0 })
                .idle_timeout(if memory {
                    None
                } else {
                    Some(Duration::from_secs(300))
                })
                .max_lifetime(if memory {
                    None
                } else {
                    Some(Duration::from_secs(1800))
                })
                .acquire_timeout(Duration::from_secs(10))
        };
        let write = single(1).connect_with(options.clone()).await?;
        MIGRATOR
            .run(&write)
            .await
            .map_err(|e| StoreError::Internal(format!("migrations: {e}")))?;
        // An in-memory database exists once per connection, so readers share the writer.
        let read = if memory {
            write.clone()
        } else {
            single(readers.max(1))
                .connect_with(options.read_only(true))
                .await?
        };
        Ok(SqliteStore { write, read })
    }

    /// Takes the next status version and stamps it on `jobs`. Must be the last writes
    /// of a transaction (see `queries::BUMP_COUNTER`). `start` also moves pending jobs
    /// to `RUNNING`.
    async fn bump(
        tx: &mut Transaction<'_, Sqlite>,
        jobs: &[String],
        start: bool,
    ) -> StoreResult<()> {
        if jobs.is_empty() {
            return Ok(());
        }
        let version: i64 = sqlx::query_scalar(queries::BUMP_COUNTER)
            .fetch_one(&mut **tx)
            .await?;
        let ids = serde_json::to_string(jobs).unwrap_or_default();
        let sql = if start {
            concat!(
                "UPDATE jobs SET status_version = $1, started_at = COALESCE(started_at, ",
                now!(),
                "), state = CASE WHEN state = 'PENDING' THEN 'RUNNING' ELSE state END ",
                "WHERE id IN (SELECT value FROM json_each($2))"
            )
        } else {
            "UPDATE jobs SET status_version = $1 WHERE id IN (SELECT value FROM json_each($2))"
        };
        sqlx::query(sql)
            .bind(version)
            .bind(ids)
            .execute(&mut **tx)
            .await?;
        Ok(())
    }
}

fn distinct(mut ids: Vec<String>) -> Vec<String> {
    ids.sort();
    ids.dedup();
    ids
}

#[async_trait]
impl Store for SqliteStore {
    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }

    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.read).await?;
        Ok(())
    }

    async fn close(&self) {
        self.read.close().await;
        self.write.close().await;
    }

    async fn parameters(&self, node_id: &str) -> StoreResult<Vec<SystemParameter>> {
        let rows = sqlx::query(queries::PARAMETERS)
            .bind(node_id)
            .fetch_all(&self.read)
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
        .execute(&self.write)
        .await?;
        Ok(())
    }

    async fn create_job_handing_off(
        &self,
        job: &NewJob,
        to: &[HandOff],
    ) -> StoreResult<(CreateOutcome, Vec<(usize, ClaimedTask)>)> {
        let mut tx = self.write.begin().await?;
        if let Some(existing) = sqlx::query_as::<_, JobRow>(queries::SELECT_JOB)
            .bind(&job.id)
            .fetch_optional(&mut *tx)
            .await?
        {
            let outcome = if existing.definition_hash == job.definition_hash {
                CreateOutcome::Existing(existing)
            } else {
                CreateOutcome::Conflict(existing)
            };
            return Ok((outcome, Vec::new()));
        }
        let now: i64 = sqlx::query_scalar(concat!("SELECT ", now!()))
            .fetch_one(&mut *tx)
            .await?;
        sqlx::query(queries::INSERT_JOB)
            .bind(&job.id)
            .bind(&job.name)
            .bind(&job.definition_hash)
            .bind(serde_json::to_string(&job.data_sources).unwrap_or_default())
            .bind(&job.options)
            .bind(job.priority)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        let mut ids = Vec::with_capacity(job.data_sources.len());
        for ds in &job.data_sources {
            let done = sqlx::query(queries::INSERT_DISCOVERY_TASK)
                .bind(&job.id)
                .bind(ds)
                .bind(serde_json::json!({ "data_source_id": ds }).to_string())
                .bind(now)
                .execute(&mut *tx)
                .await?;
            ids.push(done.last_insert_rowid());
        }
        let mut handed = Vec::new();
        for (w, ids) in hand_off_rounds(&ids, to).into_iter().enumerate() {
            if ids.is_empty() {
                continue;
            }
            let lease = &to[w].lease;
            let claimed: Vec<ClaimedTask> = sqlx::query_as(concat!(
                lease_tasks!(),
                " WHERE id IN (SELECT value FROM json_each($1)) AND state = 'PENDING'",
                leased_columns!()
            ))
            .bind(serde_json::to_string(&ids).unwrap_or_default())
            .bind(&lease.worker_id)
            .bind(&lease.node)
            .bind(lease.lease_ms)
            .fetch_all(&mut *tx)
            .await?;
            handed.extend(claimed.into_iter().map(|t| (w, t)));
        }
        Self::bump(&mut tx, std::slice::from_ref(&job.id), !handed.is_empty()).await?;
        let row = sqlx::query_as::<_, JobRow>(queries::SELECT_JOB)
            .bind(&job.id)
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok((CreateOutcome::Created(row), handed))
    }

    async fn job(&self, id: &str) -> StoreResult<Option<JobRow>> {
        Ok(sqlx::query_as(queries::SELECT_JOB)
            .bind(id)
            .fetch_optional(&self.read)
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
        Ok(q.fetch_all(&self.read).await?)
    }

    async fn jobs_changed_since(&self, version: i64, limit: i64) -> StoreResult<Vec<JobRow>> {
        Ok(sqlx::query_as(queries::JOBS_CHANGED_SINCE)
            .bind(version)
            .bind(limit)
            .fetch_all(&self.read)
            .await?)
    }

    async fn active_jobs(&self) -> StoreResult<Vec<JobRow>> {
        Ok(sqlx::query_as(queries::ACTIVE_JOBS)
            .fetch_all(&self.read)
            .await?)
    }

    async fn job_counts(&self, id: &str, stalled_after_ms: i64) -> StoreResult<JobCounts> {
        let r = &self.read;
        let tasks = sqlx::query_as(queries::TASK_COUNTS)
            .bind(id)
            .fetch_all(r)
            .await?;
        let objects_discovered = sqlx::query_scalar(queries::OBJECTS_DISCOVERED)
            .bind(id)
            .fetch_one(r)
            .await?;
        let objects_by_outcome = sqlx::query_as(queries::OBJECTS_BY_OUTCOME)
            .bind(id)
            .fetch_all(r)
            .await?;
        let objects_by_reason = sqlx::query_as(queries::OBJECTS_BY_REASON)
            .bind(id)
            .fetch_all(r)
            .await?;
        let findings = sqlx::query_as(queries::FINDINGS_BY_CLASSIFIER)
            .bind(id)
            .fetch_all(r)
            .await?;
        let findings_by_source = sqlx::query_as(queries::FINDINGS_BY_SOURCE)
            .bind(id)
            .fetch_all(r)
            .await?;
        let objects_with_findings = sqlx::query_as(queries::OBJECTS_WITH_FINDINGS)
            .bind(id)
            .fetch_all(r)
            .await?;
        let stalled_tasks = sqlx::query_scalar(concat!(
            "SELECT COUNT(*) FROM tasks WHERE job_id = $1 AND state = 'RUNNING' AND last_progress_at < ",
            now!(),
            " - $2"
        ))
        .bind(id)
        .bind(stalled_after_ms)
        .fetch_one(r)
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
        let mut tx = self.write.begin().await?;
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
        sqlx::query("UPDATE jobs SET state = 'CANCELLING' WHERE id = $1")
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
            .fetch_all(&self.read)
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
        .fetch_all(&self.read)
        .await?)
    }

    async fn claim(&self, ids: &[i64], lease: &LeaseSpec) -> StoreResult<Vec<ClaimedTask>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut tx = self.write.begin().await?;
        let claimed: Vec<ClaimedTask> = sqlx::query_as(concat!(
            lease_tasks!(),
            // `+state`: look tasks up by id; an index on state would scan every pending task.
            " WHERE id IN (SELECT value FROM json_each($1)) AND +state = 'PENDING' AND not_before <= ",
            now!(),
            leased_columns!()
        ))
        .bind(serde_json::to_string(ids).unwrap_or_default())
        .bind(&lease.worker_id)
        .bind(&lease.node)
        .bind(lease.lease_ms)
        .fetch_all(&mut *tx)
        .await?;
        let jobs = distinct(claimed.iter().map(|c| c.job_id.clone()).collect());
        Self::bump(&mut tx, &jobs, true).await?;
        tx.commit().await?;
        Ok(claimed)
    }

    async fn heartbeat(&self, lease: &Lease, lease_ms: i64) -> StoreResult<HeartbeatOutcome> {
        let row: Option<(String, i64)> = sqlx::query_as(concat!(
            "UPDATE tasks SET lease_expires_at = ",
            now!(),
            " + $3 WHERE id = $1 AND lease_token = $2 AND state = 'RUNNING' RETURNING job_id, lease_expires_at"
        ))
        .bind(lease.task_id)
        .bind(&lease.lease_token)
        .bind(lease_ms)
        .fetch_optional(&self.write)
        .await?;
        let Some((job_id, expires_at)) = row else {
            return Ok(HeartbeatOutcome::Lost);
        };
        let state: Option<String> = sqlx::query_scalar("SELECT state FROM jobs WHERE id = $1")
            .bind(job_id)
            .fetch_optional(&self.read)
            .await?;
        Ok(match state.as_deref() {
            Some("CANCELLING") | Some("CANCELLED") => HeartbeatOutcome::Cancelled,
            _ => HeartbeatOutcome::Extended { expires_at },
        })
    }

    async fn record_discovery(
        &self,
        lease: &Lease,
        batch: &DiscoveryBatch,
    ) -> StoreResult<ReportOutcome> {
        let mut tx = self.write.begin().await?;
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
             SELECT $1, $2, json_extract(value, '$.key'), json_extract(value, '$.size_bytes'), \
               json_extract(value, '$.modified_at'), $3, \
               CASE WHEN json_extract(value, '$.skipped_reason') IS NULL THEN NULL ELSE 'SKIPPED' END, \
               json_extract(value, '$.skipped_reason') \
             FROM json_each($4) WHERE true ON CONFLICT DO NOTHING",
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
        let leases: Vec<&Lease> = batch.iter().map(|c| &c.lease).collect();
        let mut tx = self.write.begin().await?;
        let accepted: Vec<(i64, String)> = sqlx::query_as(concat!(
            "UPDATE tasks SET state = 'SUCCEEDED', finished_at = ",
            now!(),
            ", ",
            no_lease!(),
            " FROM (SELECT json_extract(value, '$.task_id') AS task_id, json_extract(value, '$.lease_token') AS token \
               FROM json_each($1)) AS c \
             WHERE tasks.id = c.task_id AND tasks.lease_token = c.token AND +tasks.state = 'RUNNING' \
             RETURNING tasks.id, tasks.job_id"
        ))
        .bind(serde_json::to_string(&leases).unwrap_or_default())
        .fetch_all(&mut *tx)
        .await?;
        let ok: std::collections::HashSet<i64> = accepted.iter().map(|(id, _)| *id).collect();
        let done: Vec<&Completion> = batch
            .iter()
            .filter(|c| ok.contains(&c.lease.task_id))
            .collect();
        let objects: Vec<&ObjectResult> = done.iter().filter_map(|c| c.object.as_ref()).collect();
        if !objects.is_empty() {
            sqlx::query(
                "UPDATE discovered_objects SET outcome = c.outcome, reason = c.reason \
                 FROM (SELECT json_extract(value, '$.object_id') AS object_id, json_extract(value, '$.outcome') AS outcome, \
                   json_extract(value, '$.reason') AS reason FROM json_each($1)) AS c \
                 WHERE discovered_objects.id = c.object_id",
            )
            .bind(serde_json::to_string(&objects).unwrap_or_default())
            .execute(&mut *tx)
            .await?;
        }
        let job_of: std::collections::HashMap<i64, String> = accepted.iter().cloned().collect();
        let findings = queries::findings_json(&done, &job_of);
        if !findings.is_empty() {
            sqlx::query(
                "INSERT INTO findings (job_id, object_id, classifier, location, count, masked_sample, confidence) \
                 SELECT json_extract(value, '$.job_id'), json_extract(value, '$.object_id'), \
                   json_extract(value, '$.classifier'), json_extract(value, '$.location'), \
                   json_extract(value, '$.count'), json_extract(value, '$.masked_sample'), \
                   json_extract(value, '$.confidence') \
                 FROM json_each($1) WHERE true ON CONFLICT DO NOTHING",
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
        let mut tx = self.write.begin().await?;
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
        let mut tx = self.write.begin().await?;
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
        let mut tx = self.write.begin().await?;
        let rows: Vec<(String, String)> = sqlx::query_as(concat!(
            "UPDATE tasks SET state = CASE WHEN attempts >= $2 THEN 'FAILED' ELSE 'PENDING' END, ",
            "finished_at = CASE WHEN attempts >= $2 THEN ",
            now!(),
            " ELSE NULL END, last_error = 'lease expired: worker ' || COALESCE(worker_id, '?') || ' stopped heartbeating', ",
            no_lease!(),
            " WHERE id IN (SELECT id FROM tasks WHERE state = 'RUNNING' AND lease_expires_at < ",
            now!(),
            " ORDER BY id LIMIT $1) AND state = 'RUNNING' AND lease_expires_at < ",
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
        let mut tx = self.write.begin().await?;
        let records: Vec<(i64, String)> = sqlx::query_as(
            "UPDATE progress_records SET processed = TRUE WHERE id IN \
             (SELECT id FROM progress_records WHERE processed = FALSE ORDER BY id LIMIT $1) \
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
            "json_object('object_id', o.id, 'key', o.object_key, 'size_bytes', o.size_bytes), ",
            "CASE WHEN j.state = 'CANCELLING' THEN 'CANCELLED' ELSE 'PENDING' END, ",
            now!(),
            " FROM discovered_objects o JOIN jobs j ON j.id = o.job_id ",
            "WHERE o.progress_record_id IN (SELECT value FROM json_each($1)) AND o.outcome IS NULL ",
            "ORDER BY o.id ON CONFLICT DO NOTHING"
        ))
        .bind(serde_json::to_string(&ids).unwrap_or_default())
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
        let mut tx = self.write.begin().await?;
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
            sqlx::query(concat!(
                "UPDATE jobs SET state = $2, finished_at = ",
                now!(),
                " WHERE id = $1 AND state = $3"
            ))
            .bind(&id)
            .bind(next.as_str())
            .bind(&state)
            .execute(&mut *tx)
            .await?;
            finished.push(FinishedJob { id, state: next });
        }
        tx.commit().await?;
        Ok(finished)
    }

    async fn lease_history(&self, task_id: i64) -> StoreResult<Vec<LeaseRecord>> {
        Ok(sqlx::query_as(queries::LEASE_HISTORY)
            .bind(task_id)
            .fetch_all(&self.read)
            .await?)
    }

    async fn overlapping_leases(&self) -> StoreResult<i64> {
        Ok(sqlx::query_scalar(queries::OVERLAPPING_LEASES)
            .fetch_one(&self.read)
            .await?)
    }
}
