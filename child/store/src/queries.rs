//! SQL that reads the same in both dialects. Statements that need the database
//! clock, batch parameters or row locks live in `sqlite.rs` and `postgres.rs`.

pub const SELECT_JOB: &str = "SELECT seq, id, name, definition_hash, data_sources, options, priority, state, \
     created_at, started_at, finished_at, status_version FROM jobs WHERE id = $1";

pub const JOBS_PAGE: &str = "SELECT seq, id, name, definition_hash, data_sources, options, priority, state, \
     created_at, started_at, finished_at, status_version FROM jobs WHERE seq > $1 ORDER BY seq LIMIT $2";

pub const JOBS_PAGE_BY_STATE: &str = "SELECT seq, id, name, definition_hash, data_sources, options, priority, \
     state, created_at, started_at, finished_at, status_version FROM jobs \
     WHERE seq > $1 AND state = $3 ORDER BY seq LIMIT $2";

pub const JOBS_CHANGED_SINCE: &str = "SELECT seq, id, name, definition_hash, data_sources, options, priority, \
     state, created_at, started_at, finished_at, status_version FROM jobs \
     WHERE status_version > $1 ORDER BY status_version, seq LIMIT $2";

pub const ACTIVE_JOBS: &str = "SELECT seq, id, name, definition_hash, data_sources, options, priority, state, \
     created_at, started_at, finished_at, status_version FROM jobs \
     WHERE state IN ('PENDING', 'RUNNING', 'CANCELLING') ORDER BY seq";

pub const TASK_COUNTS: &str =
    "SELECT phase, state, COUNT(*) FROM tasks WHERE job_id = $1 GROUP BY phase, state";

pub const OBJECTS_DISCOVERED: &str = "SELECT COUNT(*) FROM discovered_objects WHERE job_id = $1";

pub const OBJECTS_BY_OUTCOME: &str = "SELECT outcome, COUNT(*) FROM discovered_objects \
     WHERE job_id = $1 AND outcome IS NOT NULL GROUP BY outcome";

pub const OBJECTS_BY_REASON: &str = "SELECT reason, COUNT(*) FROM discovered_objects \
     WHERE job_id = $1 AND reason IS NOT NULL GROUP BY reason";

pub const FINDINGS_BY_CLASSIFIER: &str = "SELECT classifier, CAST(SUM(count) AS BIGINT) FROM findings \
     WHERE job_id = $1 GROUP BY classifier";

/// (data source, classifier, sum of counts) of a job.
pub const FINDINGS_BY_SOURCE: &str = "SELECT o.data_source_id, f.classifier, \
     CAST(SUM(f.count) AS BIGINT) FROM findings f \
     JOIN discovered_objects o ON o.id = f.object_id \
     WHERE f.job_id = $1 GROUP BY o.data_source_id, f.classifier";

/// (data source, objects with at least one finding) of a job.
pub const OBJECTS_WITH_FINDINGS: &str = "SELECT o.data_source_id, COUNT(DISTINCT f.object_id) \
     FROM findings f JOIN discovered_objects o ON o.id = f.object_id \
     WHERE f.job_id = $1 GROUP BY o.data_source_id";

pub const FINDINGS_PAGE: &str = "SELECT f.id, o.data_source_id, o.object_key, f.classifier, f.location, \
     f.count, f.masked_sample, f.confidence FROM findings f \
     JOIN discovered_objects o ON o.id = f.object_id \
     WHERE f.job_id = $1 AND f.id > $2 ORDER BY f.id LIMIT $3";

pub const PARAMETERS: &str =
    "SELECT scope, key, value FROM system_parameters WHERE scope = 'global' OR scope = $1";

pub const INSERT_JOB: &str = "INSERT INTO jobs (id, name, definition_hash, data_sources, options, priority, \
     state, created_at, status_version) VALUES ($1, $2, $3, $4, $5, $6, 'PENDING', $7, 0)";

pub const INSERT_DISCOVERY_TASK: &str = "INSERT INTO tasks (job_id, data_source_id, phase, payload, state, \
     created_at) VALUES ($1, $2, 'DISCOVERY', $3, 'PENDING', $4)";

pub const LEASE_HISTORY: &str = "SELECT task_id, lease_token, worker_id, leased_at, ended_at, end_state \
     FROM lease_history WHERE task_id = $1 ORDER BY id";

/// Pairs of leases of one task that were held at the same time: a later lease that
/// began before an earlier one ended (or while it is still open).
pub const OVERLAPPING_LEASES: &str = "SELECT COUNT(*) FROM lease_history a \
     JOIN lease_history b ON b.task_id = a.task_id AND b.id > a.id \
     WHERE a.ended_at IS NULL OR b.leased_at < a.ended_at";

pub const CANCELLING_JOBS: &str = "SELECT id FROM jobs WHERE state = 'CANCELLING'";

pub const BUMP_COUNTER: &str =
    "UPDATE site_counters SET value = value + 1 WHERE name = 'status_version' RETURNING value";

/// Jobs that have nothing left to run and no progress record left to pipeline.
pub const FINISH_CANDIDATES: &str = "SELECT j.id, j.state, \
       (SELECT COUNT(*) FROM tasks t WHERE t.job_id = j.id) AS total, \
       (SELECT COUNT(*) FROM tasks t WHERE t.job_id = j.id AND t.state = 'FAILED') AS failed \
     FROM jobs j WHERE j.state IN ('RUNNING', 'CANCELLING') \
       AND NOT EXISTS (SELECT 1 FROM tasks t WHERE t.job_id = j.id AND t.state IN ('PENDING', 'RUNNING')) \
       AND NOT EXISTS (SELECT 1 FROM progress_records p WHERE p.job_id = j.id AND p.processed = FALSE)";

/// The final state of a finished job: `FAILED` when failed tasks are more
/// than `threshold` percent of its tasks. There is no early abort: a job runs to the
/// end so that its counts are complete.
pub fn final_state(
    state: &str,
    total: i64,
    failed: i64,
    threshold: f64,
) -> meridian_wire::states::JobState {
    use meridian_wire::states::JobState;
    if state == "CANCELLING" {
        JobState::Cancelled
    } else if total > 0 && (failed as f64) * 100.0 > threshold * (total as f64) {
        JobState::Failed
    } else {
        JobState::Completed
    }
}

/// Findings of accepted completions as one JSON array for a set-based insert, each
/// element carrying its job id.
pub fn findings_json(
    done: &[&super::Completion],
    job_of: &std::collections::HashMap<i64, String>,
) -> String {
    let rows: Vec<serde_json::Value> = done
        .iter()
        .flat_map(|c| {
            let job = job_of.get(&c.lease.task_id).cloned();
            c.findings.iter().map(move |f| {
                serde_json::json!({
                    "job_id": job, "object_id": f.object_id, "classifier": f.classifier,
                    "location": f.location, "count": f.count, "masked_sample": f.masked_sample,
                    "confidence": f.confidence,
                })
            })
        })
        .collect();
    if rows.is_empty() {
        String::new()
    } else {
        serde_json::Value::Array(rows).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use meridian_wire::states::JobState;

    #[test]
    fn failure_threshold_is_strictly_above() {
        assert_eq!(final_state("RUNNING", 20, 2, 10.0), JobState::Completed);
        assert_eq!(final_state("RUNNING", 20, 3, 10.0), JobState::Failed);
        assert_eq!(final_state("RUNNING", 20, 0, 0.0), JobState::Completed);
        assert_eq!(final_state("CANCELLING", 20, 20, 10.0), JobState::Cancelled);
    }
}
