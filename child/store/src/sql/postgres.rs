//! How PostgreSQL spells the shared templates, and its own statements: job creation
//! and claims in one statement each, the hand-off of announced jobs, the durability
//! flush. Lists travel as arrays; lists matched by position are read with
//! `array_position`. Rows to change are picked with `FOR UPDATE SKIP LOCKED` and
//! re-checked in the same statement, so concurrent replicas never double-apply.

use super::{DialectSql, no_lease, start_jobs};

/// Takes the next status version (the counter row stays locked until commit, so
/// versions are handed out in commit order and a delta poll never skips a change).
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
pub(crate) const JOBS_CHANNEL: &str = jobs_channel!();

/// The channel the tasks trigger notifies when a transaction inserted tasks.
pub(crate) const TASKS_CHANNEL: &str = "meridian_tasks";

pub(crate) const SQL: DialectSql = DialectSql {
    now: "(EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::BIGINT",
    skip_locked: " FOR UPDATE SKIP LOCKED",
    in_list: "= ANY($1)",
    process_payload: "json_build_object('object_id', o.id, 'key', o.object_key, 'size_bytes', o.size_bytes)::text",
    object_payload: "json_build_object('objects', json_build_array(json_build_object('object_id', o.id, \
         'key', o.object_key, 'size_bytes', o.size_bytes)))::text",
    // One statement: the counter's row is locked (and incremented) by the CTE before
    // any job row, since a job row is locked only once the join with `v` has produced
    // it; so the lock order stays counter → jobs.
    take_version: None,
    stamp_version: concat!(
        "WITH v AS (",
        bump_counter!(),
        ") UPDATE jobs SET status_version = v.value FROM v WHERE jobs.id = ANY($1)"
    ),
    stamp_and_start: concat!(
        "WITH v AS (",
        bump_counter!(),
        ") UPDATE jobs SET status_version = v.value, ",
        start_jobs!(),
        " FROM v WHERE jobs.id = ANY($1)"
    ),
    // One statement, one round trip: lease (`c`), then the status version (`v`, only
    // when something was leased; `count(*)` reads all of `c` first, so every task row
    // is locked before the counter), then the jobs (`j`, started on their first
    // lease). Lock order tasks → counter → jobs, as everywhere.
    claim: concat!(
        "WITH c AS (UPDATE tasks SET state = 'RUNNING', attempts = attempts + 1, worker_id = $2, ",
        "lease_node = $3, lease_token = gen_random_uuid()::text, lease_expires_at = {now} + $4, ",
        "last_progress_at = {now} WHERE id IN (SELECT id FROM tasks WHERE id = ANY($1) ",
        "AND state = 'PENDING' AND not_before <= {now} FOR UPDATE SKIP LOCKED) AND state = 'PENDING' ",
        "RETURNING id, job_id, data_source_id, phase, payload, attempts, lease_token, lease_expires_at), ",
        "v AS (UPDATE site_counters SET value = value + 1 WHERE name = 'status_version' ",
        "AND (SELECT count(*) FROM c) > 0 RETURNING value), ",
        "j AS (UPDATE jobs SET status_version = v.value, ",
        start_jobs!(),
        " FROM v WHERE jobs.id IN (SELECT job_id FROM c)) ",
        "SELECT id, job_id, data_source_id, phase, payload, attempts, lease_token, lease_expires_at, ",
        async_commit!(),
        " FROM c"
    ),
    claim_versions: true,
    // The objects as arrays by column ($4 keys, $5 sizes, $6 modification times, $7
    // skip reasons, $9 the task of each, 0-based, NULL when skipped), and the tasks of
    // the new ones fed from the insert's own `RETURNING`: one statement, no second
    // read of the rows. Task ids are taken from the sequence first (`n`, one per task
    // the batch may need, `$8`), so each object row is written once, naming its task;
    // a task whose objects were all known already (a retried discovery walks again)
    // gets none returned and is not created (its id is simply never used).
    insert_objects: concat!(
        "WITH n AS MATERIALIZED (SELECT g AS task, nextval(pg_get_serial_sequence('tasks', 'id')) AS id ",
        "FROM generate_series(0, $8 - 1) AS g), ",
        "o AS (INSERT INTO discovered_objects (job_id, data_source_id, object_key, size_bytes, ",
        "modified_at, progress_record_id, outcome, reason, task_id) ",
        "SELECT $1, $2, u.key, u.size_bytes, u.modified_at, $3, ",
        "CASE WHEN u.reason IS NULL THEN NULL ELSE 'SKIPPED' END, u.reason, n.id ",
        "FROM unnest($4::TEXT[], $5::BIGINT[], $6::BIGINT[], $7::TEXT[], $9::BIGINT[]) ",
        "WITH ORDINALITY AS u(key, size_bytes, modified_at, reason, task, i) ",
        "LEFT JOIN n ON n.task = u.task ORDER BY u.i ",
        "ON CONFLICT DO NOTHING RETURNING id, object_key, size_bytes, task_id) ",
        "INSERT INTO tasks (id, job_id, data_source_id, phase, payload, state, created_at) ",
        "SELECT o.task_id, $1, $2, 'PROCESS', json_build_object('objects', json_agg(",
        "json_build_object('object_id', o.id, 'key', o.object_key, 'size_bytes', o.size_bytes) ",
        "ORDER BY o.id))::text, ",
        "CASE WHEN (SELECT state FROM jobs WHERE id = $1) = 'CANCELLING' THEN 'CANCELLED' ELSE 'PENDING' END, ",
        "{now} FROM o WHERE o.task_id IS NOT NULL GROUP BY o.task_id ORDER BY o.task_id"
    ),
    insert_object_tasks: None,
    // Arrays matched by position, and `id = ANY(...)` on the primary key: the plan is
    // an index lookup per task whatever the table's statistics say (a join with a
    // set-returning function can turn into a sequential scan of the whole queue).
    complete_tasks: concat!(
        "UPDATE tasks t SET state = 'SUCCEEDED', finished_at = {now}, ",
        no_lease!(),
        " WHERE t.id = ANY($1) AND t.state = 'RUNNING' ",
        "AND t.lease_token = ($2::TEXT[])[array_position($1::BIGINT[], t.id)] ",
        "RETURNING t.id, t.job_id, t.data_source_id"
    ),
    // Looked up by primary key (`= ANY`), matched to their values by a hash join with
    // the arrays: a batch of batched tasks carries tens of thousands of objects, and
    // `array_position` per row would be quadratic in that.
    set_outcomes: "UPDATE discovered_objects o SET outcome = u.outcome, reason = u.reason \
         FROM unnest($1::BIGINT[], $2::TEXT[], $3::TEXT[]) AS u(id, outcome, reason) \
         WHERE o.id = ANY($1) AND o.id = u.id",
    // The findings from arrays by column (`Arg::Rows`: job, object, classifier,
    // location, count, sample, confidence), and the job's counters from the rows the
    // insert returns (a finding already recorded adds nothing), in one statement.
    // Counter rows are locked in key order, so concurrent completions cannot deadlock.
    insert_findings: concat!(
        "WITH ins AS (INSERT INTO findings ",
        "(job_id, object_id, classifier, location, count, masked_sample, confidence) ",
        "SELECT * FROM unnest($1::TEXT[], $2::BIGINT[], $3::TEXT[], $4::TEXT[], $5::BIGINT[], ",
        "$6::TEXT[], $7::DOUBLE PRECISION[]) ",
        "ON CONFLICT DO NOTHING RETURNING job_id, object_id, classifier, count), ",
        "src AS (SELECT ins.job_id, o.data_source_id, ins.object_id, ins.classifier, ins.count ",
        "FROM ins JOIN discovered_objects o ON o.id = ins.object_id), ",
        "t AS (INSERT INTO finding_totals (job_id, data_source_id, classifier, total) ",
        "SELECT job_id, data_source_id, classifier, SUM(count) FROM src ",
        "GROUP BY job_id, data_source_id, classifier ORDER BY 1, 2, 3 ",
        "ON CONFLICT (job_id, data_source_id, classifier) ",
        "DO UPDATE SET total = finding_totals.total + excluded.total) ",
        "INSERT INTO flagged_objects (job_id, data_source_id, objects) ",
        "SELECT job_id, data_source_id, COUNT(DISTINCT object_id) FROM src ",
        "GROUP BY job_id, data_source_id ORDER BY 1, 2 ",
        "ON CONFLICT (job_id, data_source_id) DO UPDATE SET objects = flagged_objects.objects + excluded.objects"
    ),
    count_findings: None,
};

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
/// (`hand_off_pending_on`); the tasks trigger's plain notification follows.
///
/// It commits asynchronously (`async_commit!`): waiting workers get their leases, and
/// other replicas the announcement, without waiting for the disk; `start_job` calls
/// `Store::flush_commits` before it answers, so the job is durable when acknowledged.
pub(crate) const CREATE_JOB: &str = concat!(
    "WITH v AS (",
    bump_counter!(),
    "), j AS (INSERT INTO jobs (id, name, definition_hash, data_sources, options, priority, ",
    "state, created_at, started_at, status_version, trace_id) SELECT $1, $2, $3, $4, $5, $6, ",
    "CASE WHEN $12 THEN 'RUNNING' ELSE 'PENDING' END, n.ms, CASE WHEN $12 THEN n.ms END, v.value, $13 ",
    "FROM v, (SELECT {now} AS ms) n ON CONFLICT DO NOTHING RETURNING seq, id, name, definition_hash, ",
    "data_sources, options, priority, state, created_at, started_at, finished_at, status_version, trace_id), ",
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

/// Leases a job's pending tasks to the slots of waiting workers: pick (`p`, numbered),
/// lease (`c`), then the status version and the job's start as in `claim` (same lock
/// order: tasks → counter → jobs). `$1` the job, `$2..$4` per slot the worker, node
/// and lease length, `$5` the number of slots.
pub(crate) const HAND_OFF_PENDING: &str = concat!(
    "WITH p AS (SELECT id, row_number() OVER (ORDER BY id) AS slot FROM (",
    "SELECT id FROM tasks WHERE job_id = $1 AND state = 'PENDING' AND not_before <= {now} ",
    "ORDER BY id LIMIT $5 FOR UPDATE SKIP LOCKED) s), ",
    "c AS (UPDATE tasks t SET state = 'RUNNING', attempts = attempts + 1, ",
    "worker_id = ($2::TEXT[])[p.slot], lease_node = ($3::TEXT[])[p.slot], ",
    "lease_token = gen_random_uuid()::text, lease_expires_at = {now} + ($4::BIGINT[])[p.slot], ",
    "last_progress_at = {now} FROM p WHERE t.id = p.id AND t.state = 'PENDING' ",
    "RETURNING t.id, t.job_id, t.data_source_id, t.phase, t.payload, t.attempts, ",
    "t.lease_token, t.lease_expires_at, p.slot), ",
    "v AS (UPDATE site_counters SET value = value + 1 WHERE name = 'status_version' ",
    "AND (SELECT count(*) FROM c) > 0 RETURNING value), ",
    "j AS (UPDATE jobs SET status_version = v.value, ",
    start_jobs!(),
    " FROM v WHERE jobs.id = $1 RETURNING jobs.options, jobs.trace_id) ",
    "SELECT c.*, (SELECT options FROM j) AS options, (SELECT trace_id FROM j) AS trace_id, ",
    async_commit!(),
    " FROM c"
);

/// A transaction that writes WAL and commits with the session's `synchronous_commit`
/// waits for the WAL up to its own commit record, so for every commit before it
/// (locally, and on synchronous standbys when there are any); a transactional
/// logical-decoding message is the smallest such write (no table touched, any
/// `wal_level`; EXECUTE is granted to PUBLIC by default). Skipped when there are no
/// synchronous standbys and the local WAL is flushed up to where it is being
/// inserted: every earlier commit is then on disk. (With standbys, a local flush
/// says nothing about them.)
pub(crate) const FLUSH_COMMITS: &str = "SELECT CASE WHEN current_setting('synchronous_standby_names') <> '' \
     OR pg_current_wal_flush_lsn() < pg_current_wal_insert_lsn() \
     THEN pg_logical_emit_message(true, 'meridian', 'flush') END";
