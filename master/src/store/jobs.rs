//! Jobs and their per-site split: creation (idempotent), dispatch and cancel
//! bookkeeping, and the statuses the poller brings back.

use meridian_wire::JobStatus;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{
    CancelState, CreateOutcome, DispatchState, JobRow, NewJob, Result, SiteJobRow, Store,
    StoreError,
};

/// `SELECT <every site_jobs column> FROM site_jobs <rest>`, as a literal.
macro_rules! select_site_jobs {
    ($rest:literal) => {
        concat!(
            "SELECT job_id, site, data_sources, dispatch_state, dispatch_attempts, next_dispatch_at, ",
            "cancel_state, cancel_attempts, last_error, status, status_version, status_at FROM site_jobs ",
            $rest
        )
    };
}

pub(super) fn job_row(r: &AnyRow) -> Result<JobRow> {
    let request: String = r.try_get("request")?;
    Ok(JobRow {
        job_id: r.try_get("job_id")?,
        name: r.try_get("name")?,
        request: serde_json::from_str(&request)
            .map_err(|e| StoreError::Internal(format!("stored request: {e}")))?,
        state: r.try_get("state")?,
        cancel_requested: r.try_get::<i64, _>("cancel_requested")? != 0,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
        trace_id: r.try_get("trace_id")?,
    })
}

fn site_job_row(r: &AnyRow) -> Result<SiteJobRow> {
    let bad = |what: &str| StoreError::Internal(format!("stored site job has a bad {what}"));
    let data_sources: String = r.try_get("data_sources")?;
    let status: Option<String> = r.try_get("status")?;
    Ok(SiteJobRow {
        job_id: r.try_get("job_id")?,
        site: r.try_get("site")?,
        data_sources: serde_json::from_str(&data_sources).map_err(|_| bad("data_sources"))?,
        dispatch_state: DispatchState::parse(&r.try_get::<String, _>("dispatch_state")?)
            .ok_or_else(|| bad("dispatch_state"))?,
        dispatch_attempts: r.try_get("dispatch_attempts")?,
        next_dispatch_at: r.try_get("next_dispatch_at")?,
        cancel_state: CancelState::parse(&r.try_get::<String, _>("cancel_state")?)
            .ok_or_else(|| bad("cancel_state"))?,
        cancel_attempts: r.try_get("cancel_attempts")?,
        last_error: r.try_get("last_error")?,
        status: match status {
            Some(s) => Some(serde_json::from_str(&s).map_err(|_| bad("status"))?),
            None => None,
        },
        status_version: r.try_get("status_version")?,
        status_at: r.try_get("status_at")?,
    })
}

impl Store {
    /// Persists a parent job and one site-job per site in one transaction. With an
    /// idempotency key, a second create returns the first job (same request) or a
    /// conflict (another request); concurrent creates race on the unique key.
    pub async fn create_job(&self, job: &NewJob) -> Result<CreateOutcome> {
        let mut tx = self.pool.begin().await?;
        // A write first, so that SQLite takes the write lock at once instead of
        // upgrading a read lock (which can fail without waiting).
        let inserted = sqlx::query(
            "INSERT INTO jobs (job_id, name, request, request_hash, idempotency_key, state, created_at, updated_at, trace_id) \
             VALUES ($1, $2, $3, $4, $5, 'PENDING', $6, $6, $7) \
             ON CONFLICT DO NOTHING RETURNING job_id",
        )
        .bind(&job.job_id)
        .bind(&job.name)
        .bind(&job.request)
        .bind(&job.request_hash)
        .bind(&job.idempotency_key)
        .bind(job.now_ms)
        .bind(&job.trace_id)
        .fetch_optional(&mut *tx)
        .await?;
        if inserted.is_none() {
            tx.rollback().await?;
            let Some(key) = &job.idempotency_key else {
                return Err(StoreError::Internal(format!(
                    "job id {} exists",
                    job.job_id
                )));
            };
            let row =
                sqlx::query("SELECT job_id, request_hash FROM jobs WHERE idempotency_key = $1")
                    .bind(key)
                    .fetch_one(&self.pool)
                    .await?;
            let id: String = row.try_get("job_id")?;
            let hash: String = row.try_get("request_hash")?;
            return Ok(if hash == job.request_hash {
                CreateOutcome::Existing(id)
            } else {
                CreateOutcome::Conflict(id)
            });
        }
        for (site, sources) in &job.sites {
            let sources =
                serde_json::to_string(sources).map_err(|e| StoreError::Internal(e.to_string()))?;
            sqlx::query(
                "INSERT INTO site_jobs (job_id, site, data_sources, dispatch_state, next_dispatch_at) \
                 VALUES ($1, $2, $3, 'PENDING', $4)",
            )
            .bind(&job.job_id)
            .bind(site)
            .bind(sources)
            .bind(job.now_ms)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(CreateOutcome::Created(job.job_id.clone()))
    }

    pub async fn job(&self, job_id: &str) -> Result<Option<JobRow>> {
        let row = sqlx::query(
            "SELECT job_id, name, request, state, cancel_requested, created_at, updated_at, trace_id FROM jobs WHERE job_id = $1",
        )
        .bind(job_id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(job_row).transpose()
    }

    /// Jobs newest first, optionally in one state, after the `before` cursor (a job id).
    pub async fn list_jobs(
        &self,
        state: Option<&str>,
        before: Option<&str>,
        limit: i64,
    ) -> Result<Vec<JobRow>> {
        let rows = sqlx::query(
            "SELECT job_id, name, request, state, cancel_requested, created_at, updated_at, trace_id FROM jobs \
             WHERE ($1 = '' OR state = $1) AND ($2 = '' OR job_id < $2) ORDER BY job_id DESC LIMIT $3",
        )
        .bind(state.unwrap_or(""))
        .bind(before.unwrap_or(""))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(job_row).collect()
    }

    pub async fn site_jobs(&self, job_id: &str) -> Result<Vec<SiteJobRow>> {
        let rows = sqlx::query(select_site_jobs!("WHERE job_id = $1 ORDER BY site"))
            .bind(job_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(site_job_row).collect()
    }

    /// Several jobs in one statement; unknown ids are left out.
    pub async fn jobs_of(&self, job_ids: &[String]) -> Result<Vec<JobRow>> {
        if job_ids.is_empty() {
            return Ok(Vec::new());
        }
        let marks: Vec<String> = (1..=job_ids.len()).map(|i| format!("${i}")).collect();
        let sql = format!(
            "SELECT job_id, name, request, state, cancel_requested, created_at, updated_at, trace_id FROM jobs \
             WHERE job_id IN ({})",
            marks.join(", ")
        );
        // Only numbered placeholders are formatted in; the ids are bound.
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for id in job_ids {
            q = q.bind(id);
        }
        let rows = q.fetch_all(&self.pool).await?;
        rows.iter().map(job_row).collect()
    }

    /// The site-jobs of several jobs in one statement (a page of the console's list).
    pub async fn site_jobs_of(&self, job_ids: &[String]) -> Result<Vec<SiteJobRow>> {
        if job_ids.is_empty() {
            return Ok(Vec::new());
        }
        let marks: Vec<String> = (1..=job_ids.len()).map(|i| format!("${i}")).collect();
        let sql = format!(
            "{}WHERE job_id IN ({}) ORDER BY job_id, site",
            select_site_jobs!(""),
            marks.join(", ")
        );
        // Only numbered placeholders are formatted in; the ids are bound.
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for id in job_ids {
            q = q.bind(id);
        }
        let rows = q.fetch_all(&self.pool).await?;
        rows.iter().map(site_job_row).collect()
    }

    /// Site-jobs whose `start_job` is due.
    pub async fn due_dispatches(&self, now_ms: i64, limit: i64) -> Result<Vec<SiteJobRow>> {
        let rows = sqlx::query(select_site_jobs!(
            "WHERE dispatch_state = 'PENDING' AND next_dispatch_at <= $1 \
             ORDER BY next_dispatch_at LIMIT $2"
        ))
        .bind(now_ms)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(site_job_row).collect()
    }

    /// Records an attempt before it is made (so a cancel knows a request may have
    /// reached the site) and sets when the next one is due. False when another
    /// dispatcher or a cancel got there first.
    pub async fn begin_dispatch(&self, row: &SiteJobRow, next_at_ms: i64) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE site_jobs SET dispatch_attempts = dispatch_attempts + 1, next_dispatch_at = $1 \
             WHERE job_id = $2 AND site = $3 AND dispatch_state = 'PENDING' AND dispatch_attempts = $4",
        )
        .bind(next_at_ms)
        .bind(&row.job_id)
        .bind(&row.site)
        .bind(row.dispatch_attempts)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// The outcome of a dispatch attempt; `error` is kept for the unified view.
    pub async fn end_dispatch(
        &self,
        job_id: &str,
        site: &str,
        state: DispatchState,
        error: Option<&str>,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE site_jobs SET dispatch_state = $1, last_error = $2 \
             WHERE job_id = $3 AND site = $4 AND dispatch_state = 'PENDING'",
        )
        .bind(state.as_str())
        .bind(error)
        .bind(job_id)
        .bind(site)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Records a cancel request. Site-jobs no attempt was ever made for are
    /// skipped for good; the others are cancelled at their site by the canceller.
    /// False when the job is unknown.
    pub async fn request_cancel(&self, job_id: &str, now_ms: i64) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        let found =
            sqlx::query("UPDATE jobs SET cancel_requested = 1, updated_at = $1 WHERE job_id = $2")
                .bind(now_ms)
                .bind(job_id)
                .execute(&mut *tx)
                .await?;
        if found.rows_affected() == 0 {
            tx.rollback().await?;
            return Ok(false);
        }
        sqlx::query(
            "UPDATE site_jobs SET dispatch_state = 'SKIPPED', cancel_state = 'ACKNOWLEDGED' \
             WHERE job_id = $1 AND dispatch_state = 'PENDING' AND dispatch_attempts = 0",
        )
        .bind(job_id)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE site_jobs SET cancel_state = 'REQUESTED', next_cancel_at = $1 \
             WHERE job_id = $2 AND cancel_state = 'NONE'",
        )
        .bind(now_ms)
        .bind(job_id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Cancels due at their site. Only dispatched site-jobs: one whose dispatch is
    /// still being retried is cancelled once the site holds it.
    pub async fn due_cancels(&self, now_ms: i64, limit: i64) -> Result<Vec<SiteJobRow>> {
        let rows = sqlx::query(select_site_jobs!("WHERE cancel_state = 'REQUESTED' \
             AND dispatch_state IN ('DISPATCHED', 'REJECTED') AND next_cancel_at <= $1 ORDER BY next_cancel_at LIMIT $2"))
        .bind(now_ms)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(site_job_row).collect()
    }

    /// The outcome of a cancel call: acknowledged, or retry at `next_at_ms`.
    pub async fn end_cancel(
        &self,
        job_id: &str,
        site: &str,
        acknowledged: bool,
        next_at_ms: i64,
        error: Option<&str>,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE site_jobs SET cancel_state = CASE WHEN $1 = 1 THEN 'ACKNOWLEDGED' ELSE cancel_state END, \
             cancel_attempts = cancel_attempts + 1, next_cancel_at = $2, \
             last_error = CASE WHEN $1 = 1 THEN last_error ELSE $3 END \
             WHERE job_id = $4 AND site = $5 AND cancel_state = 'REQUESTED'",
        )
        .bind(i64::from(acknowledged))
        .bind(next_at_ms)
        .bind(error)
        .bind(job_id)
        .bind(site)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Stores the statuses a site reported for jobs the master knows; older
    /// versions never overwrite newer ones. A status also confirms a dispatch whose
    /// response was lost. Returns the ids of the jobs that changed.
    pub async fn apply_statuses(
        &self,
        site: &str,
        statuses: &[JobStatus],
        now_ms: i64,
    ) -> Result<Vec<String>> {
        let mut changed = Vec::new();
        if statuses.is_empty() {
            return Ok(changed);
        }
        let mut tx = self.pool.begin().await?;
        for s in statuses {
            let json = serde_json::to_string(s).map_err(|e| StoreError::Internal(e.to_string()))?;
            let done = sqlx::query(
                "UPDATE site_jobs SET status = $1, status_version = $2, child_state = $3, status_at = $4, \
                 dispatch_state = CASE WHEN dispatch_state = 'PENDING' THEN 'DISPATCHED' ELSE dispatch_state END, \
                 last_error = CASE WHEN dispatch_state = 'PENDING' THEN NULL ELSE last_error END \
                 WHERE job_id = $5 AND site = $6 AND status_version < $2",
            )
            .bind(json)
            .bind(s.status_version)
            .bind(s.state.as_str())
            .bind(now_ms)
            .bind(&s.job_id)
            .bind(site)
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() == 1 {
                changed.push(s.job_id.clone());
            }
        }
        tx.commit().await?;
        Ok(changed)
    }

    /// Stores the derived overall state of a job (for listing by state).
    pub async fn set_job_state(&self, job_id: &str, state: &str, now_ms: i64) -> Result<()> {
        sqlx::query(
            "UPDATE jobs SET state = $1, updated_at = $2 WHERE job_id = $3 AND state <> $1",
        )
        .bind(state)
        .bind(now_ms)
        .bind(job_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Ids of jobs not yet in a terminal overall state (their view may still change).
    pub async fn active_job_ids(&self) -> Result<Vec<String>> {
        let rows = sqlx::query(
            "SELECT job_id FROM jobs WHERE state NOT IN ('COMPLETED', 'PARTIALLY_COMPLETED', 'FAILED', 'CANCELLED') ORDER BY job_id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| Ok(r.try_get("job_id")?)).collect()
    }
}
