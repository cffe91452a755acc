//! Storage: `trait Store` and its one implementation, [`SqlStore`], over PostgreSQL
//! (production) or SQLite (the embedded default): the logic is written once and runs
//! each dialect's SQL (`sql/`). Every write that belongs together is one transaction
//! inside one trait method; the engine above never holds a transaction. Both dialects
//! pass the same conformance suite (`tests/tests/store_*.rs`).

mod claims;
mod connect;
mod db;
mod findings;
mod jobs;
mod maintenance;
mod open;
mod pg;
mod records;
mod reports;
mod split;
mod sql;
mod store;

use async_trait::async_trait;

pub use claims::LeasedTask;
pub use meridian_wire::task::*;
pub use open::open;
pub use pg::hand_off_pending_on;
pub use records::*;
pub use store::SqlStore;

/// Which SQL dialect a store speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Postgres,
    Sqlite,
}

/// Why a store call failed. Neither variant carries SQL text or connection strings to
/// clients: the API turns `Unavailable` into 503 and `Internal` into a logged 500.
pub use meridian_db::{StoreError, StoreResult};

/// The site's persistent state. Methods are whole units of work: each either commits
/// everything it writes or nothing.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    fn dialect(&self) -> Dialect;

    /// One round trip; `/ready` and the health probe use it.
    async fn ping(&self) -> StoreResult<()>;

    /// Closes the pools; later calls fail.
    async fn close(&self);

    // ---- system parameters -------------------------------------------------------

    /// The `global` rows and the rows of `node_id`.
    async fn parameters(&self, node_id: &str) -> StoreResult<Vec<SystemParameter>>;

    /// Upserts one row.
    async fn set_parameter(&self, scope: &str, key: &str, value: &str) -> StoreResult<()>;

    // ---- jobs --------------------------------------------------------------------

    /// Creates the job and one `DISCOVERY` task per data source, or finds the job that
    /// already has this id.
    async fn create_job(&self, job: &NewJob) -> StoreResult<CreateOutcome> {
        Ok(self.create_job_handing_off(job, &[]).await?.0)
    }

    /// `create_job`, and in the same transaction leases the new tasks to the waiting
    /// workers `to` (longest-waiting first, see [`hand_off_rounds`]), each with a fresh
    /// token like any claim and a `lease_history` row from the same trigger; the job
    /// then starts (`RUNNING`). Returns each leased task with the index in `to` of the
    /// worker it went to. An existing job hands off nothing. The commit may not be
    /// durable yet: call [`Store::flush_commits`] before acknowledging the job.
    async fn create_job_handing_off(
        &self,
        job: &NewJob,
        to: &[HandOff],
    ) -> StoreResult<(CreateOutcome, Vec<(usize, ClaimedTask)>)>;

    /// Returns once every commit made so far (by any connection) is as durable as the
    /// server's `synchronous_commit` makes a commit (on disk, and on synchronous
    /// standbys if configured).
    /// Statements that create jobs or grant leases may commit without waiting for the
    /// disk (a lease lost in a crash only costs the work done under it: its reports are
    /// refused by token). Anything that leaves the site must not depend on such a
    /// commit: `start_job` calls this before it acknowledges a job, and every read that
    /// hands out status versions calls it after reading, because a version lost in a
    /// crash would be handed out again and a master past it would skip that change.
    /// A no-op where every commit is already as durable as it gets.
    async fn flush_commits(&self) -> StoreResult<()> {
        Ok(())
    }

    /// Notifications of tasks created and jobs announced by any replica, on a
    /// connection of their own; `None` where the database has none (SQLite: one
    /// process, whose own wake-ups say it all).
    async fn listen(&self) -> StoreResult<Option<Box<dyn TaskListener>>> {
        Ok(None)
    }

    async fn job(&self, id: &str) -> StoreResult<Option<JobRow>>;

    /// Jobs in creation order after the cursor `after_seq`.
    async fn jobs_page(
        &self,
        state: Option<&str>,
        after_seq: i64,
        limit: i64,
    ) -> StoreResult<Vec<JobRow>>;

    /// Jobs whose `status_version` is above `version`, lowest version first.
    async fn jobs_changed_since(&self, version: i64, limit: i64) -> StoreResult<Vec<JobRow>>;

    /// Jobs that are `PENDING`, `RUNNING` or `CANCELLING`.
    async fn active_jobs(&self) -> StoreResult<Vec<JobRow>>;

    /// Task, object and finding counts for a job's status.
    async fn job_counts(&self, id: &str, stalled_after_ms: i64) -> StoreResult<JobCounts>;

    /// Marks a non-terminal job `CANCELLING` and cancels its pending tasks. Returns the
    /// job as it is afterwards, `None` for an unknown id.
    async fn request_cancel(&self, id: &str) -> StoreResult<Option<JobRow>>;

    /// One page of a job's findings, in id order (see [`FindingsRange`]).
    async fn findings_page(&self, job_id: &str, range: &FindingsRange)
    -> StoreResult<FindingsPage>;

    // ---- the queue ---------------------------------------------------------------

    /// Ids above `after_id` of a job's pending tasks whose backoff has passed, lowest
    /// first. Callers page with `after_id` so that a scan never re-reads the head of
    /// the queue, where claimed tasks leave dead index entries until vacuum.
    async fn pending_task_ids(
        &self,
        job_id: &str,
        after_id: i64,
        limit: i64,
    ) -> StoreResult<Vec<i64>>;

    /// Leases those of `ids` that are still pending, in one statement, each with a
    /// fresh lease token. Tasks taken meanwhile by someone else are simply absent.
    async fn claim(&self, ids: &[i64], lease: &LeaseSpec) -> StoreResult<Vec<ClaimedTask>>;

    /// Those of `leases` that are current, with what each task is about (job, phase,
    /// object), so that a worker's report can be checked before it is written.
    async fn leased_tasks(&self, leases: &[Lease]) -> StoreResult<Vec<LeasedTask>>;

    /// Extends a lease, or says it is lost.
    async fn heartbeat(&self, lease: &Lease, lease_ms: i64) -> StoreResult<HeartbeatOutcome>;

    /// Writes a discovered batch: progress record, objects, the `PROCESS` tasks of the
    /// new objects not skipped (grouped by `bounds`, each object naming its task), and
    /// the task's progress time, in one transaction fenced by the lease token. A batch
    /// recorded before (same task, attempt and sequence number) writes nothing; an
    /// object already known gets no second task.
    async fn record_discovery(
        &self,
        lease: &Lease,
        batch: &DiscoveryBatch,
        bounds: &TaskBounds,
    ) -> StoreResult<Discovered>;

    /// Completes tasks with their results (object outcomes, findings), one transaction
    /// for the whole batch. A completion whose lease is no longer current writes nothing.
    async fn complete(&self, batch: &[Completion]) -> StoreResult<Vec<ReportOutcome>>;

    /// Fails a task: back to `PENDING` after `backoff_ms` when retryable and attempts
    /// remain, otherwise `FAILED`. A `PROCESS` task of several objects whose retry
    /// failed too (retryable, second attempt or later) is split instead: it keeps the
    /// first half of its objects, a new task takes the rest, both `PENDING` after the
    /// backoff with their attempts counted afresh, so that an object that cannot be
    /// scanned ends up failing alone.
    async fn fail(&self, lease: &Lease, failure: &Failure) -> StoreResult<FailOutcome>;

    /// Hands back every task leased by `node` (shutdown, or start-up after a crash).
    /// `count_attempt` says whether the interrupted attempt counts against the
    /// task's retries; a task out of attempts then fails.
    async fn release_node_leases(
        &self,
        node: &str,
        count_attempt: bool,
        max_retries: u32,
    ) -> StoreResult<u64>;

    // ---- background loops --------------------------------------------------------

    /// Returns up to `limit` tasks whose lease expired to `PENDING`, or fails those
    /// that used `max_retries` attempts. The state check is in the same statement, so
    /// a task completed meanwhile is never reopened.
    async fn reap_expired(&self, limit: i64, max_retries: u32) -> StoreResult<ReapCounts>;

    /// Turns up to `limit` unprocessed progress records into `PROCESS` tasks, exactly
    /// once: marking the record and creating its tasks is one transaction. Records of
    /// this version are written processed (`record_discovery` creates their tasks);
    /// this is for those an older version wrote during a rolling upgrade.
    async fn pipeline(&self, limit: i64) -> StoreResult<PipelineCounts>;

    /// Moves jobs that have nothing left to do to their final state.
    async fn finish_jobs(&self, failure_threshold_percent: f64) -> StoreResult<Vec<FinishedJob>>;

    // ---- lease history -----------------------------------------------------------

    /// Every lease `task_id` was given, oldest first.
    async fn lease_history(&self, task_id: i64) -> StoreResult<Vec<LeaseRecord>>;

    /// Pairs of leases of the same task held at the same time; 0 unless the fencing is
    /// broken. An audit for tests and operators.
    async fn overlapping_leases(&self) -> StoreResult<i64>;
}

/// What a [`TaskListener`] heard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// Some transaction inserted tasks.
    TasksCreated,
    /// A job was created with `pending` tasks its replica could not hand off itself.
    JobAnnounced { job_id: String, pending: usize },
}

/// A listening connection (PostgreSQL `LISTEN`). Notifications sent while it is down
/// are lost: after an error, open a new one and look once for what changed.
#[async_trait]
pub trait TaskListener: Send {
    /// Waits for the next notification; an error means the connection is gone.
    async fn next(&mut self) -> StoreResult<Notice>;

    /// Leases the pending tasks of an announced job to the waiting workers `to`, on
    /// this connection, as [`hand_off_pending_on`]: what the packets carry of the job
    /// and each leased task with the index in `to` of its worker.
    async fn hand_off_pending(
        &mut self,
        job_id: &str,
        to: &[HandOff],
    ) -> StoreResult<(JobContext, Vec<(usize, ClaimedTask)>)>;
}
