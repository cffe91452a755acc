//! How SQLite spells the shared templates, and its own statements. Lists travel as
//! one JSON array per parameter, read with `json_each`; lists matched by position
//! travel as one JSON array of rows (`Arg::Rows`), read with `value ->> k`.

use super::{DialectSql, no_lease, start_jobs};

/// The first id a task inserted now may take: tasks use `AUTOINCREMENT`, whose
/// counter is never below the largest id ever given, and the one writer holds the
/// transaction, so ids from here up are free until it commits.
pub(crate) const NEXT_TASK_ID: &str =
    "SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'tasks'), 0) + 1";

pub(crate) const SQL: DialectSql = DialectSql {
    now: "CAST(unixepoch('subsec') * 1000 AS INTEGER)",
    // One writer connection: no other transaction can hold the rows.
    skip_locked: "",
    in_list: "IN (SELECT value FROM json_each($1))",
    process_payload: "json_object('object_id', o.id, 'key', o.object_key, 'size_bytes', o.size_bytes)",
    object_payload: "json_object('objects', json_array(json_object('object_id', o.id, \
         'key', o.object_key, 'size_bytes', o.size_bytes)))",
    // SQLite cannot update two tables in one statement: the counter goes first and
    // the jobs read it (the single writer keeps versions in commit order).
    take_version: Some(super::common::BUMP_COUNTER),
    stamp_version: "UPDATE jobs SET status_version = \
         (SELECT value FROM site_counters WHERE name = 'status_version') \
         WHERE id IN (SELECT value FROM json_each($1))",
    stamp_and_start: concat!(
        "UPDATE jobs SET status_version = ",
        "(SELECT value FROM site_counters WHERE name = 'status_version'), ",
        start_jobs!(),
        " WHERE id IN (SELECT value FROM json_each($1))"
    ),
    claim: "UPDATE tasks SET state = 'RUNNING', attempts = attempts + 1, worker_id = $2, \
         lease_node = $3, lease_token = lower(hex(randomblob(16))), \
         lease_expires_at = {now} + $4, last_progress_at = {now} \
         WHERE id IN (SELECT value FROM json_each($1)) \
         AND +state = 'PENDING' AND not_before <= {now} \
         RETURNING id, job_id, data_source_id, phase, payload, attempts, lease_token, lease_expires_at",
    // (`+state` above: look tasks up by id; an index on state would scan every
    // pending task.)
    claim_versions: false,
    // Each object names its task: `$5` (read first, in the same transaction, by
    // `NEXT_TASK_ID`) plus the object's 0-based `task`, NULL when skipped.
    insert_objects: "INSERT INTO discovered_objects (job_id, data_source_id, object_key, size_bytes, \
         modified_at, progress_record_id, outcome, reason, task_id) \
         SELECT $1, $2, value ->> 'key', value ->> 'size_bytes', value ->> 'modified_at', $3, \
           CASE WHEN value ->> 'skipped_reason' IS NULL THEN NULL ELSE 'SKIPPED' END, \
           value ->> 'skipped_reason', $5 + (value ->> 'task') \
         FROM json_each($4) WHERE true ON CONFLICT DO NOTHING",
    // An INSERT cannot feed another in SQLite: the tasks read back the rows the
    // record just inserted (an object already known keeps its first record's id, and
    // its task), by index, in the same transaction; `$2` is the job.
    insert_object_tasks: Some(
        "INSERT INTO tasks (id, job_id, data_source_id, phase, payload, state, created_at) \
         SELECT o.task_id, o.job_id, o.data_source_id, 'PROCESS', json_object('objects', \
           json_group_array(json_object('object_id', o.id, 'key', o.object_key, 'size_bytes', o.size_bytes))), \
         CASE WHEN (SELECT state FROM jobs WHERE id = $2) = 'CANCELLING' THEN 'CANCELLED' ELSE 'PENDING' END, {now} \
         FROM (SELECT * FROM discovered_objects WHERE progress_record_id = $1 AND task_id IS NOT NULL ORDER BY id) o \
         GROUP BY o.task_id ORDER BY o.task_id",
    ),
    // `$1`: rows of (task id, lease token), bound as `Arg::Rows`.
    complete_tasks: concat!(
        "UPDATE tasks SET state = 'SUCCEEDED', finished_at = {now}, ",
        no_lease!(),
        " FROM (SELECT value ->> 0 AS task_id, value ->> 1 AS token FROM json_each($1)) AS c ",
        "WHERE tasks.id = c.task_id AND tasks.lease_token = c.token AND +tasks.state = 'RUNNING' ",
        "RETURNING tasks.id, tasks.job_id, tasks.data_source_id"
    ),
    // `$1`: rows of (object id, outcome, reason), bound as `Arg::Rows`.
    set_outcomes: "UPDATE discovered_objects SET outcome = c.outcome, reason = c.reason \
         FROM (SELECT value ->> 0 AS object_id, value ->> 1 AS outcome, value ->> 2 AS reason \
           FROM json_each($1)) AS c \
         WHERE discovered_objects.id = c.object_id",
    // `$1`: rows of (job, object, classifier, location, count, sample, confidence),
    // bound as `Arg::Rows`; the rows inserted come back for the counters.
    insert_findings: "INSERT INTO findings \
         (job_id, object_id, classifier, location, count, masked_sample, confidence) \
         SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, value ->> 5, value ->> 6 \
         FROM json_each($1) WHERE true ON CONFLICT DO NOTHING \
         RETURNING job_id, object_id, classifier, count",
    count_findings: Some(super::Counters {
        totals: "INSERT INTO finding_totals (job_id, data_source_id, classifier, total) \
             SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3 FROM json_each($1) WHERE true \
             ON CONFLICT (job_id, data_source_id, classifier) DO UPDATE SET total = total + excluded.total",
        flagged: "INSERT INTO flagged_objects (job_id, data_source_id, objects) \
             SELECT value ->> 0, value ->> 1, value ->> 2 FROM json_each($1) WHERE true \
             ON CONFLICT (job_id, data_source_id) DO UPDATE SET objects = objects + excluded.objects",
    }),
};
