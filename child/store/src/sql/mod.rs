//! The SQL text: statements written once with `{…}` placeholders for what the
//! dialects spell differently, each dialect's spellings and its own statements
//! (`sqlite.rs`, `postgres.rs`), and [`Statements`], the table the store's logic runs.
//! Statements that read the same in both dialects are the plain `const`s in `common.rs`.

pub(crate) mod common;
pub(crate) mod postgres;
pub(crate) mod sqlite;

use std::sync::LazyLock;

/// Clears a task's lease columns.
macro_rules! no_lease {
    () => {
        "lease_token = NULL, worker_id = NULL, lease_node = NULL, lease_expires_at = NULL"
    };
}
pub(crate) use no_lease;

/// Starts the jobs a statement stamps: the first lease of a job starts it.
macro_rules! start_jobs {
    () => {
        "started_at = COALESCE(started_at, {now}), state = CASE WHEN state = 'PENDING' THEN 'RUNNING' ELSE state END"
    };
}
pub(crate) use start_jobs;

/// How one dialect spells what the shared templates leave open, and the statements
/// it writes its own way. Every text may use the placeholders of [`render`].
pub(crate) struct DialectSql {
    /// `{now}`: the database clock in epoch milliseconds.
    pub now: &'static str,
    /// `{skip_locked}`: appended to the sub-select that picks rows to change, so that
    /// concurrent replicas pick different rows (empty where there is one writer).
    pub skip_locked: &'static str,
    /// `{in_list}`: membership in the list bound as `$1`.
    pub in_list: &'static str,
    /// `{process_payload}`: a `PROCESS` task's payload built from the object `o`, as
    /// versions before batched tasks wrote it.
    pub process_payload: &'static str,
    /// `{object_payload}`: the payload of a batched `PROCESS` task of the one object `o`.
    pub object_payload: &'static str,
    /// Takes the next status version before `stamp_version` reads it, or `None` where
    /// the stamping statement takes it itself.
    pub take_version: Option<&'static str>,
    /// Stamps the current status version on the jobs listed in `$1`.
    pub stamp_version: &'static str,
    /// The same, and starts them.
    pub stamp_and_start: &'static str,
    /// Leases the pending tasks of `$1` to worker `$2` on node `$3` for `$4` ms.
    pub claim: &'static str,
    /// Whether `claim` also takes the status version and starts the jobs (then it
    /// runs outside an explicit transaction).
    pub claim_versions: bool,
    /// Inserts a discovered batch: job `$1`, data source `$2`, progress record `$3`,
    /// then the objects, each with the index of its task in the batch, as the dialect
    /// binds them (see `reports::record_discovery`). Where the dialect can do it in the
    /// same statement, also the `PROCESS` tasks of the new objects not skipped; its row
    /// count is then the tasks created.
    pub insert_objects: &'static str,
    /// Inserts the `PROCESS` tasks of the objects progress record `$1` of job `$2`
    /// just inserted (new, not skipped), or `None` where `insert_objects` did.
    pub insert_object_tasks: Option<&'static str>,
    /// Completes the tasks whose lease tokens are current: task ids and tokens bound
    /// as one `Arg::Rows`; returns (task, job, data source) of each.
    pub complete_tasks: &'static str,
    /// Sets object outcomes: ids, outcomes and reasons bound as one `Arg::Rows`.
    pub set_outcomes: &'static str,
    /// Inserts findings, bound as one `Arg::Rows` (job, object, classifier, location,
    /// count, sample, confidence). Where the dialect can do it in the same statement,
    /// also adds them to the job's counters; otherwise it returns the rows it inserted
    /// (job, object, classifier, count) for `count_findings`.
    pub insert_findings: &'static str,
    /// Adds inserted findings to the job's counters, or `None` where
    /// `insert_findings` did.
    pub count_findings: Option<Counters>,
}

/// Upserts of a job's finding counters from rows bound as `Arg::Rows`.
#[derive(Clone, Copy)]
pub(crate) struct Counters {
    /// (job, data source, classifier, count to add).
    pub totals: &'static str,
    /// (job, data source, objects with findings to add).
    pub flagged: &'static str,
}

/// The statements the store's logic runs, rendered for one dialect.
pub(crate) struct Statements {
    /// Reads the database clock.
    pub clock: &'static str,
    pub set_parameter: &'static str,
    pub stalled_tasks: &'static str,
    pub cancel_pending: &'static str,
    pub pending_task_ids: &'static str,
    pub claim: &'static str,
    pub claim_versions: bool,
    pub heartbeat: &'static str,
    pub touch_task: &'static str,
    pub leased_tasks: &'static str,
    pub insert_progress: &'static str,
    pub insert_objects: &'static str,
    pub insert_object_tasks: Option<&'static str>,
    pub complete_tasks: &'static str,
    pub set_outcomes: &'static str,
    pub insert_findings: &'static str,
    pub count_findings: Option<Counters>,
    pub fail: &'static str,
    pub release: &'static str,
    pub reap: &'static str,
    pub mark_records: &'static str,
    pub create_process_tasks: &'static str,
    pub keep_half: &'static str,
    pub fail_object: &'static str,
    pub split_off: &'static str,
    pub move_objects: &'static str,
    pub finish_job: &'static str,
    pub take_version: Option<&'static str>,
    pub stamp_version: &'static str,
    pub stamp_and_start: &'static str,
}

pub(crate) static SQLITE: LazyLock<Statements> = LazyLock::new(|| Statements::new(&sqlite::SQL));
pub(crate) static POSTGRES: LazyLock<Statements> =
    LazyLock::new(|| Statements::new(&postgres::SQL));

impl Statements {
    fn new(d: &DialectSql) -> Statements {
        let r = |t: &str| render(t, d);
        Statements {
            clock: r("SELECT {now}"),
            set_parameter: r(SET_PARAMETER),
            stalled_tasks: r(STALLED_TASKS),
            cancel_pending: r(CANCEL_PENDING),
            pending_task_ids: r(PENDING_TASK_IDS),
            claim: r(d.claim),
            claim_versions: d.claim_versions,
            heartbeat: r(HEARTBEAT),
            touch_task: r(TOUCH_TASK),
            leased_tasks: r(LEASED_TASKS),
            insert_progress: r(INSERT_PROGRESS),
            insert_objects: r(d.insert_objects),
            insert_object_tasks: d.insert_object_tasks.map(r),
            complete_tasks: r(d.complete_tasks),
            set_outcomes: r(d.set_outcomes),
            insert_findings: r(d.insert_findings),
            count_findings: d.count_findings,
            fail: r(FAIL),
            release: r(RELEASE),
            reap: r(REAP),
            mark_records: r(MARK_RECORDS),
            create_process_tasks: r(CREATE_PROCESS_TASKS),
            keep_half: r(KEEP_HALF),
            fail_object: r(FAIL_OBJECT),
            split_off: r(SPLIT_OFF),
            move_objects: r(MOVE_OBJECTS),
            finish_job: r(FINISH_JOB),
            take_version: d.take_version.map(r),
            stamp_version: r(d.stamp_version),
            stamp_and_start: r(d.stamp_and_start),
        }
    }
}

/// Fills a template's placeholders with the dialect's spellings. Rendered once per
/// dialect and kept for the life of the process (the driver's statement cache keys
/// on the text).
pub(crate) fn render(template: &str, d: &DialectSql) -> &'static str {
    let text = template
        .replace("{skip_locked}", d.skip_locked)
        .replace("{in_list}", d.in_list)
        .replace("{process_payload}", d.process_payload)
        .replace("{object_payload}", d.object_payload)
        .replace("{now}", d.now);
    debug_assert!(!text.contains("{now}"), "unrendered placeholder in {text}");
    text.leak()
}

const SET_PARAMETER: &str = "INSERT INTO system_parameters (scope, key, value, updated_at) \
     VALUES ($1, $2, $3, {now}) ON CONFLICT (scope, key) \
     DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at";

const STALLED_TASKS: &str = "SELECT COUNT(*) FROM tasks \
     WHERE job_id = $1 AND state = 'RUNNING' AND last_progress_at < {now} - $2";

/// Cancels a job's pending tasks (on cancel, and for tasks made pending after it).
const CANCEL_PENDING: &str = "UPDATE tasks SET state = 'CANCELLED', finished_at = {now} \
     WHERE job_id = $1 AND state = 'PENDING'";

const PENDING_TASK_IDS: &str = "SELECT id FROM tasks WHERE job_id = $1 AND state = 'PENDING' \
     AND id > $3 AND not_before <= {now} ORDER BY id LIMIT $2";

/// Extends a lease and reads its job's state in one statement.
const HEARTBEAT: &str = "UPDATE tasks SET lease_expires_at = {now} + $3 \
     WHERE id = $1 AND lease_token = $2 AND state = 'RUNNING' \
     RETURNING lease_expires_at, (SELECT j.state FROM jobs j WHERE j.id = tasks.job_id)";

/// The fence of a discovered batch: the lease must be current.
const TOUCH_TASK: &str = "UPDATE tasks SET last_progress_at = {now} \
     WHERE id = $1 AND lease_token = $2 AND state = 'RUNNING' RETURNING job_id, data_source_id";

/// What the tasks `$1` are about (job, phase, objects) and their current lease token,
/// to check a report against before it is written.
const LEASED_TASKS: &str = "SELECT id, job_id, phase, object_id, payload, lease_token \
     FROM tasks WHERE id {in_list}";

/// A batch's progress record; no row when this (task, attempt, seq) was recorded.
/// Written processed: the batch's tasks are created in the same transaction, so the
/// pipeliner has nothing to do for it (it still turns records that older versions
/// wrote unprocessed into tasks).
const INSERT_PROGRESS: &str = "INSERT INTO progress_records \
     (job_id, task_id, attempt, seq, object_count, processed, created_at) \
     VALUES ($1, $2, $3, $4, $5, TRUE, {now}) \
     ON CONFLICT (task_id, attempt, seq) DO NOTHING RETURNING id";

const FAIL: &str = concat!(
    "UPDATE tasks SET state = CASE WHEN $3 AND attempts < $4 THEN 'PENDING' ELSE 'FAILED' END, ",
    "not_before = {now} + $5, finished_at = CASE WHEN $3 AND attempts < $4 THEN NULL ELSE {now} END, ",
    "last_error = $6, ",
    no_lease!(),
    " WHERE id = $1 AND lease_token = $2 AND state = 'RUNNING' ",
    "RETURNING state, job_id, phase, attempts, payload"
);

const RELEASE: &str = concat!(
    "UPDATE tasks SET state = CASE WHEN $2 AND attempts >= $3 THEN 'FAILED' ELSE 'PENDING' END, ",
    "finished_at = CASE WHEN $2 AND attempts >= $3 THEN {now} ELSE NULL END, ",
    "attempts = CASE WHEN $2 THEN attempts ELSE attempts - 1 END, ",
    "last_error = CASE WHEN $2 THEN 'interrupted: node ' || lease_node || ' restarted' ELSE last_error END, ",
    no_lease!(),
    " WHERE state = 'RUNNING' AND lease_node = $1 RETURNING job_id"
);

/// The state check is repeated outside the sub-select, so a task completed meanwhile
/// is never reopened.
const REAP: &str = concat!(
    "UPDATE tasks SET state = CASE WHEN attempts >= $2 THEN 'FAILED' ELSE 'PENDING' END, ",
    "finished_at = CASE WHEN attempts >= $2 THEN {now} ELSE NULL END, ",
    "last_error = 'lease expired: worker ' || COALESCE(worker_id, '?') || ' stopped heartbeating', ",
    no_lease!(),
    " WHERE id IN (SELECT id FROM tasks WHERE state = 'RUNNING' AND lease_expires_at < {now} ",
    "ORDER BY id LIMIT $1{skip_locked}) AND state = 'RUNNING' AND lease_expires_at < {now} ",
    "RETURNING job_id, state, id, phase, attempts, payload"
);

const MARK_RECORDS: &str = "UPDATE progress_records SET processed = TRUE WHERE id IN \
     (SELECT id FROM progress_records WHERE processed = FALSE ORDER BY id LIMIT $1{skip_locked}) \
     AND processed = FALSE RETURNING id, job_id";

/// The `PROCESS` tasks of the objects the progress records `$1` brought, for records
/// the pipeliner marks (written unprocessed by versions that created tasks there).
const CREATE_PROCESS_TASKS: &str = "INSERT INTO tasks \
     (job_id, data_source_id, phase, object_id, payload, state, created_at) \
     SELECT o.job_id, o.data_source_id, 'PROCESS', o.id, {process_payload}, \
     CASE WHEN j.state = 'CANCELLING' THEN 'CANCELLED' ELSE 'PENDING' END, {now} \
     FROM discovered_objects o JOIN jobs j ON j.id = o.job_id \
     WHERE o.progress_record_id {in_list} AND o.outcome IS NULL ORDER BY o.id ON CONFLICT DO NOTHING";

/// A split batch's task keeps the objects `$2` and starts over (see `split.rs`).
const KEEP_HALF: &str = "UPDATE tasks SET state = 'PENDING', attempts = 0, finished_at = NULL, \
     payload = $2 WHERE id = $1";

/// The new task of a split batch's other objects `$2`: like task `$1`, not before its
/// backoff, with its last error.
const SPLIT_OFF: &str = "INSERT INTO tasks (job_id, data_source_id, phase, payload, state, \
     not_before, last_error, created_at) SELECT job_id, data_source_id, phase, $2, 'PENDING', \
     not_before, last_error, {now} FROM tasks WHERE id = $1 RETURNING id";

/// A `FAILED` task of its own for object `$1` of a completed batch, which could never
/// be scanned (error `$2`); the object is then moved to it (`MOVE_OBJECTS`).
const FAIL_OBJECT: &str = "INSERT INTO tasks (job_id, data_source_id, phase, payload, state, \
     attempts, last_error, created_at, finished_at) SELECT o.job_id, o.data_source_id, 'PROCESS', \
     {object_payload}, 'FAILED', 1, $2, {now}, {now} FROM discovered_objects o WHERE o.id = $1 \
     RETURNING id";

/// The objects `$1` now belong to task `$2`.
const MOVE_OBJECTS: &str = "UPDATE discovered_objects SET task_id = $2 WHERE id {in_list}";

const FINISH_JOB: &str =
    "UPDATE jobs SET state = $2, finished_at = {now} WHERE id = $1 AND state = $3";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_placeholder_is_filled() {
        for s in [&*SQLITE, &*POSTGRES] {
            for text in [
                s.claim,
                s.reap,
                s.stamp_and_start,
                s.create_process_tasks,
                s.fail,
            ] {
                assert!(!text.contains('{'), "{text}");
            }
        }
    }
}
