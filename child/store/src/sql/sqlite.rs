//! How SQLite spells the shared templates, and its own statements. Lists travel as
//! one JSON array per parameter, read with `json_each`; lists matched by position
//! are joined on the array index (`key`).

use super::{DialectSql, no_lease, start_jobs};

pub(crate) const SQL: DialectSql = DialectSql {
    now: "CAST(unixepoch('subsec') * 1000 AS INTEGER)",
    // One writer connection: no other transaction can hold the rows.
    skip_locked: "",
    in_list: "IN (SELECT value FROM json_each($1))",
    process_payload: "json_object('object_id', o.id, 'key', o.object_key, 'size_bytes', o.size_bytes)",
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
    insert_objects: "INSERT INTO discovered_objects (job_id, data_source_id, object_key, size_bytes, \
         modified_at, progress_record_id, outcome, reason) \
         SELECT $1, $2, json_extract(value, '$.key'), json_extract(value, '$.size_bytes'), \
           json_extract(value, '$.modified_at'), $3, \
           CASE WHEN json_extract(value, '$.skipped_reason') IS NULL THEN NULL ELSE 'SKIPPED' END, \
           json_extract(value, '$.skipped_reason') \
         FROM json_each($4) WHERE true ON CONFLICT DO NOTHING",
    complete_tasks: concat!(
        "UPDATE tasks SET state = 'SUCCEEDED', finished_at = {now}, ",
        no_lease!(),
        " FROM (SELECT i.value AS task_id, t.value AS token FROM json_each($1) i ",
        "JOIN json_each($2) t ON t.key = i.key) AS c ",
        "WHERE tasks.id = c.task_id AND tasks.lease_token = c.token AND +tasks.state = 'RUNNING' ",
        "RETURNING tasks.id, tasks.job_id"
    ),
    set_outcomes: "UPDATE discovered_objects SET outcome = c.outcome, reason = c.reason \
         FROM (SELECT i.value AS object_id, o.value AS outcome, r.value AS reason \
           FROM json_each($1) i JOIN json_each($2) o ON o.key = i.key \
           JOIN json_each($3) r ON r.key = i.key) AS c \
         WHERE discovered_objects.id = c.object_id",
    insert_findings: "INSERT INTO findings \
         (job_id, object_id, classifier, location, count, masked_sample, confidence) \
         SELECT json_extract(value, '$.job_id'), json_extract(value, '$.object_id'), \
           json_extract(value, '$.classifier'), json_extract(value, '$.location'), \
           json_extract(value, '$.count'), json_extract(value, '$.masked_sample'), \
           json_extract(value, '$.confidence') \
         FROM json_each($1) WHERE true ON CONFLICT DO NOTHING",
};
