//! SQL that reads the same in both dialects and needs no placeholder.

pub(crate) const SELECT_JOB: &str = "SELECT seq, id, name, definition_hash, data_sources, options, priority, state, \
     created_at, started_at, finished_at, status_version, trace_id FROM jobs WHERE id = $1";

pub(crate) const JOBS_PAGE: &str = "SELECT seq, id, name, definition_hash, data_sources, options, priority, state, \
     created_at, started_at, finished_at, status_version, trace_id FROM jobs WHERE seq > $1 ORDER BY seq LIMIT $2";

pub(crate) const JOBS_PAGE_BY_STATE: &str = "SELECT seq, id, name, definition_hash, data_sources, options, priority, \
     state, created_at, started_at, finished_at, status_version, trace_id FROM jobs \
     WHERE seq > $1 AND state = $3 ORDER BY seq LIMIT $2";

pub(crate) const JOBS_CHANGED_SINCE: &str = "SELECT seq, id, name, definition_hash, data_sources, options, priority, \
     state, created_at, started_at, finished_at, status_version, trace_id FROM jobs \
     WHERE status_version > $1 ORDER BY status_version, seq LIMIT $2";

pub(crate) const ACTIVE_JOBS: &str = "SELECT seq, id, name, definition_hash, data_sources, options, priority, state, \
     created_at, started_at, finished_at, status_version, trace_id FROM jobs \
     WHERE state IN ('PENDING', 'RUNNING', 'CANCELLING') ORDER BY seq";

pub(crate) const TASK_COUNTS: &str =
    "SELECT phase, state, COUNT(*) FROM tasks WHERE job_id = $1 GROUP BY phase, state";

pub(crate) const OBJECTS_DISCOVERED: &str =
    "SELECT COUNT(*) FROM discovered_objects WHERE job_id = $1";

pub(crate) const OBJECTS_BY_OUTCOME: &str = "SELECT outcome, COUNT(*) FROM discovered_objects \
     WHERE job_id = $1 AND outcome IS NOT NULL GROUP BY outcome";

pub(crate) const OBJECTS_BY_REASON: &str = "SELECT reason, COUNT(*) FROM discovered_objects \
     WHERE job_id = $1 AND reason IS NOT NULL GROUP BY reason";

/// (classifier, sum of counts) of a job, from its counters (a row per data source
/// and classifier, kept by each completion).
pub(crate) const FINDINGS_BY_CLASSIFIER: &str = "SELECT classifier, CAST(SUM(total) AS BIGINT) \
     FROM finding_totals WHERE job_id = $1 GROUP BY classifier";

/// (data source, classifier, sum of counts) of a job.
pub(crate) const FINDINGS_BY_SOURCE: &str =
    "SELECT data_source_id, classifier, total FROM finding_totals WHERE job_id = $1";

/// (data source, objects with at least one finding) of a job.
pub(crate) const OBJECTS_WITH_FINDINGS: &str =
    "SELECT data_source_id, objects FROM flagged_objects WHERE job_id = $1";

pub(crate) const FINDINGS_PAGE: &str = "SELECT f.id, o.data_source_id, o.object_key, f.classifier, f.location, \
     f.count, f.masked_sample, f.confidence FROM findings f \
     JOIN discovered_objects o ON o.id = f.object_id \
     WHERE f.job_id = $1 AND f.id > $2 ORDER BY f.id LIMIT $3";

/// The id of the ($3 + 1)-th finding of a job past id $2: where a filtered page stops
/// reading. No row when fewer remain.
pub(crate) const FINDINGS_SCAN_END: &str =
    "SELECT id FROM findings WHERE job_id = $1 AND id > $2 ORDER BY id LIMIT 1 OFFSET $3";

/// A job's findings in (id $2, id $3], only of classifier $4 and data source $5 when
/// they are not null.
pub(crate) const FINDINGS_PAGE_FILTERED: &str = "SELECT f.id, o.data_source_id, o.object_key, f.classifier, f.location, \
     f.count, f.masked_sample, f.confidence FROM findings f \
     JOIN discovered_objects o ON o.id = f.object_id \
     WHERE f.job_id = $1 AND f.id > $2 AND f.id <= $3 \
     AND ($4 IS NULL OR f.classifier = $4) AND ($5 IS NULL OR o.data_source_id = $5) \
     ORDER BY f.id LIMIT $6";

pub(crate) const PARAMETERS: &str =
    "SELECT scope, key, value FROM system_parameters WHERE scope = 'global' OR scope = $1";

pub(crate) const INSERT_JOB: &str = "INSERT INTO jobs (id, name, definition_hash, data_sources, options, priority, \
     state, created_at, status_version, trace_id) VALUES ($1, $2, $3, $4, $5, $6, 'PENDING', $7, 0, $8)";

pub(crate) const INSERT_DISCOVERY_TASK: &str = "INSERT INTO tasks (job_id, data_source_id, phase, payload, state, \
     created_at) VALUES ($1, $2, 'DISCOVERY', $3, 'PENDING', $4) RETURNING id";

pub(crate) const LEASE_HISTORY: &str = "SELECT task_id, lease_token, worker_id, leased_at, ended_at, end_state \
     FROM lease_history WHERE task_id = $1 ORDER BY id";

/// Pairs of leases of one task that were held at the same time: a later lease that
/// began before an earlier one ended (or while it is still open).
pub(crate) const OVERLAPPING_LEASES: &str = "SELECT COUNT(*) FROM lease_history a \
     JOIN lease_history b ON b.task_id = a.task_id AND b.id > a.id \
     WHERE a.ended_at IS NULL OR b.leased_at < a.ended_at";

pub(crate) const CANCELLING_JOBS: &str = "SELECT id FROM jobs WHERE state = 'CANCELLING'";

pub(crate) const BUMP_COUNTER: &str =
    "UPDATE site_counters SET value = value + 1 WHERE name = 'status_version' RETURNING value";

/// Jobs that have nothing left to run and no progress record left to pipeline, with
/// their units of work and how many failed. A unit is a task of one object (a
/// `DISCOVERY` task, a `PROCESS` task of an older version, which names its object) or
/// an object of a batched `PROCESS` task, which names its task: the failure threshold
/// counts objects whatever the batch size.
pub(crate) const FINISH_CANDIDATES: &str = "SELECT j.id, j.state, \
       (SELECT COUNT(*) FROM tasks t WHERE t.job_id = j.id \
          AND (t.phase = 'DISCOVERY' OR t.object_id IS NOT NULL)) \
       + (SELECT COUNT(*) FROM discovered_objects o WHERE o.job_id = j.id \
          AND o.task_id IS NOT NULL) AS total, \
       (SELECT COUNT(*) FROM tasks t WHERE t.job_id = j.id AND t.state = 'FAILED' \
          AND (t.phase = 'DISCOVERY' OR t.object_id IS NOT NULL)) \
       + (SELECT COUNT(*) FROM discovered_objects o JOIN tasks t ON t.id = o.task_id \
          WHERE o.job_id = j.id AND t.state = 'FAILED') AS failed \
     FROM jobs j WHERE j.state IN ('RUNNING', 'CANCELLING') \
       AND NOT EXISTS (SELECT 1 FROM tasks t WHERE t.job_id = j.id AND t.state IN ('PENDING', 'RUNNING')) \
       AND NOT EXISTS (SELECT 1 FROM progress_records p WHERE p.job_id = j.id AND p.processed = FALSE)";

pub(crate) const MARK_CANCELLING: &str =
    "UPDATE jobs SET state = 'CANCELLING' WHERE id = $1 AND state IN ('PENDING', 'RUNNING')";
