//! [`SqlStore`], the one implementation of `trait Store`: each method hands over to
//! the file of its verb (`jobs`, `claims`, `reports`, `maintenance`, and `pg` for what
//! only PostgreSQL does), which runs the dialect's [`Statements`]. Also the status
//! version bump every writing transaction ends with.

use async_trait::async_trait;

use crate::db::{Db, List, Tx, args};
use crate::sql::{POSTGRES, SQLITE, Statements};
use crate::*;

/// A site's store over SQLite or PostgreSQL.
pub struct SqlStore {
    pub(crate) db: Db,
    pub(crate) sql: &'static Statements,
}

impl SqlStore {
    /// Opens (creating if missing) and migrates the SQLite database at `url`.
    pub async fn sqlite(url: &str, readers: u32) -> StoreResult<SqlStore> {
        Ok(SqlStore {
            db: connect::sqlite(url, readers).await?,
            sql: &SQLITE,
        })
    }

    /// Connects to PostgreSQL at `url` and applies migrations.
    pub async fn postgres(url: &str, max_connections: u32) -> StoreResult<SqlStore> {
        Ok(SqlStore {
            db: connect::postgres(url, max_connections).await?,
            sql: &POSTGRES,
        })
    }

    /// Takes the next status version and stamps it on `jobs`; `start` also moves
    /// pending jobs to `RUNNING`. Must be the last writes of a transaction that
    /// locks tasks first: the counter row is locked until commit, so versions are
    /// handed out in commit order and a delta poll never skips a change, and the lock
    /// order stays tasks → counter → jobs everywhere.
    pub(crate) async fn bump(&self, tx: &mut Tx, jobs: &[String], start: bool) -> StoreResult<()> {
        if jobs.is_empty() {
            return Ok(());
        }
        if let Some(take) = self.sql.take_version {
            tx.link().execute(take, args![]).await?;
        }
        let stamp = if start {
            self.sql.stamp_and_start
        } else {
            self.sql.stamp_version
        };
        tx.link()
            .execute(stamp, args![List::Texts(jobs.to_vec())])
            .await?;
        Ok(())
    }
}

/// Each job once, in a fixed order.
pub(crate) fn distinct(mut ids: Vec<String>) -> Vec<String> {
    ids.sort();
    ids.dedup();
    ids
}

#[async_trait]
impl Store for SqlStore {
    fn dialect(&self) -> Dialect {
        match self.db {
            Db::Pg(_) => Dialect::Postgres,
            Db::Lite { .. } => Dialect::Sqlite,
        }
    }

    async fn ping(&self) -> StoreResult<()> {
        self.db
            .read()
            .await?
            .link()
            .execute("SELECT 1", args![])
            .await?;
        Ok(())
    }

    async fn close(&self) {
        self.db.close().await
    }

    async fn parameters(&self, node_id: &str) -> StoreResult<Vec<SystemParameter>> {
        jobs::parameters(self, node_id).await
    }

    async fn set_parameter(&self, scope: &str, key: &str, value: &str) -> StoreResult<()> {
        jobs::set_parameter(self, scope, key, value).await
    }

    async fn create_job_handing_off(
        &self,
        job: &NewJob,
        to: &[HandOff],
    ) -> StoreResult<(CreateOutcome, Vec<(usize, ClaimedTask)>)> {
        match &self.db {
            Db::Pg(pool) => pg::create_job(pool, job, to).await,
            Db::Lite { .. } => jobs::create_job_step_by_step(self, job, to).await,
        }
    }

    async fn flush_commits(&self) -> StoreResult<()> {
        match &self.db {
            Db::Pg(pool) => pg::flush_commits(pool).await,
            Db::Lite { .. } => Ok(()),
        }
    }

    async fn listen(&self) -> StoreResult<Option<Box<dyn TaskListener>>> {
        match &self.db {
            Db::Pg(pool) => Ok(Some(Box::new(pg::PgTaskListener::connect(pool).await?))),
            Db::Lite { .. } => Ok(None),
        }
    }

    async fn job(&self, id: &str) -> StoreResult<Option<JobRow>> {
        jobs::job(self, id).await
    }

    async fn jobs_page(
        &self,
        state: Option<&str>,
        after_seq: i64,
        limit: i64,
    ) -> StoreResult<Vec<JobRow>> {
        jobs::jobs_page(self, state, after_seq, limit).await
    }

    async fn jobs_changed_since(&self, version: i64, limit: i64) -> StoreResult<Vec<JobRow>> {
        jobs::jobs_changed_since(self, version, limit).await
    }

    async fn active_jobs(&self) -> StoreResult<Vec<JobRow>> {
        jobs::active_jobs(self).await
    }

    async fn job_counts(&self, id: &str, stalled_after_ms: i64) -> StoreResult<JobCounts> {
        jobs::job_counts(self, id, stalled_after_ms).await
    }

    async fn request_cancel(&self, id: &str) -> StoreResult<Option<JobRow>> {
        jobs::request_cancel(self, id).await
    }

    async fn findings_page(
        &self,
        job_id: &str,
        range: &FindingsRange,
    ) -> StoreResult<FindingsPage> {
        jobs::findings_page(self, job_id, range).await
    }

    async fn pending_task_ids(
        &self,
        job_id: &str,
        after_id: i64,
        limit: i64,
    ) -> StoreResult<Vec<i64>> {
        claims::pending_task_ids(self, job_id, after_id, limit).await
    }

    async fn claim(&self, ids: &[i64], lease: &LeaseSpec) -> StoreResult<Vec<ClaimedTask>> {
        claims::claim(self, ids, lease).await
    }

    async fn leased_tasks(&self, leases: &[Lease]) -> StoreResult<Vec<LeasedTask>> {
        claims::leased_tasks(self, leases).await
    }

    async fn heartbeat(&self, lease: &Lease, lease_ms: i64) -> StoreResult<HeartbeatOutcome> {
        claims::heartbeat(self, lease, lease_ms).await
    }

    async fn record_discovery(
        &self,
        lease: &Lease,
        batch: &DiscoveryBatch,
        bounds: &TaskBounds,
    ) -> StoreResult<Discovered> {
        reports::record_discovery(self, lease, batch, bounds).await
    }

    async fn complete(&self, batch: &[Completion]) -> StoreResult<Vec<ReportOutcome>> {
        reports::complete(self, batch).await
    }

    async fn fail(&self, lease: &Lease, failure: &Failure) -> StoreResult<FailOutcome> {
        reports::fail(self, lease, failure).await
    }

    async fn release_node_leases(
        &self,
        node: &str,
        count_attempt: bool,
        max_retries: u32,
    ) -> StoreResult<u64> {
        maintenance::release_node_leases(self, node, count_attempt, max_retries).await
    }

    async fn reap_expired(&self, limit: i64, max_retries: u32) -> StoreResult<ReapCounts> {
        maintenance::reap_expired(self, limit, max_retries).await
    }

    async fn pipeline(&self, limit: i64) -> StoreResult<PipelineCounts> {
        maintenance::pipeline(self, limit).await
    }

    async fn finish_jobs(&self, failure_threshold_percent: f64) -> StoreResult<Vec<FinishedJob>> {
        maintenance::finish_jobs(self, failure_threshold_percent).await
    }

    async fn lease_history(&self, task_id: i64) -> StoreResult<Vec<LeaseRecord>> {
        maintenance::lease_history(self, task_id).await
    }

    async fn overlapping_leases(&self) -> StoreResult<i64> {
        maintenance::overlapping_leases(self).await
    }
}
