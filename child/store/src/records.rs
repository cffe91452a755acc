//! Rows and arguments that cross the `Store` boundary.

use meridian_wire::states::JobState;

/// A job about to be created.
#[derive(Debug, Clone)]
pub struct NewJob {
    pub id: String,
    pub name: String,
    /// SHA-256 of the canonical definition; equal hashes mean an idempotent retry.
    pub definition_hash: String,
    pub data_sources: Vec<String>,
    /// JSON of `JobOptions`.
    pub options: String,
    pub priority: i64,
    /// The W3C trace id the job's work is logged under (from the caller's
    /// `traceparent`, or new).
    pub trace_id: String,
}

/// What a work packet carries of its job besides the task: the options (JSON of
/// `JobOptions`) and the trace id its work is logged under.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobContext {
    pub options: String,
    pub trace_id: Option<String>,
}

/// What `create_job` did.
#[derive(Debug, Clone)]
pub enum CreateOutcome {
    Created(JobRow),
    /// Same id, same definition: nothing new was written.
    Existing(JobRow),
    /// Same id, another definition.
    Conflict(JobRow),
}

/// A row of `jobs`.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct JobRow {
    pub seq: i64,
    pub id: String,
    pub name: String,
    pub definition_hash: String,
    /// JSON array of data source ids.
    pub data_sources: String,
    /// JSON of `JobOptions`.
    pub options: String,
    pub priority: i64,
    pub state: String,
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    pub status_version: i64,
    /// Absent on jobs created before trace ids were kept.
    pub trace_id: Option<String>,
}

impl JobRow {
    /// What this job's work packets carry of it.
    pub fn context(&self) -> JobContext {
        JobContext {
            options: self.options.clone(),
            trace_id: self.trace_id.clone(),
        }
    }

    /// The state; a name this build does not know reads as `FAILED` rather than panicking.
    pub fn job_state(&self) -> JobState {
        self.state.parse().unwrap_or(JobState::Failed)
    }

    pub fn data_source_ids(&self) -> Vec<String> {
        serde_json::from_str(&self.data_sources).unwrap_or_default()
    }
}

/// Counts behind a job's status.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JobCounts {
    /// (phase, state, count)
    pub tasks: Vec<(String, String, i64)>,
    pub objects_discovered: i64,
    /// (outcome, count) of scanned objects
    pub objects_by_outcome: Vec<(String, i64)>,
    /// (reason, count) of skipped or partial objects
    pub objects_by_reason: Vec<(String, i64)>,
    /// (classifier, sum of counts)
    pub findings: Vec<(String, i64)>,
    /// (data source, classifier, sum of counts)
    pub findings_by_source: Vec<(String, String, i64)>,
    /// (data source, objects with at least one finding)
    pub objects_with_findings: Vec<(String, i64)>,
    pub stalled_tasks: i64,
}

/// Which of a job's findings one page reads: those with ids above `after_id`, at most
/// `limit`, optionally only of one classifier and one data source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FindingsRange {
    pub after_id: i64,
    pub limit: i64,
    pub classifier: Option<String>,
    pub data_source: Option<String>,
    /// With a filter, the most findings of the job one page reads past `after_id`,
    /// matching or not, so that a rare classifier costs a bounded scan per page.
    pub scan_limit: i64,
}

impl FindingsRange {
    /// The most findings a filtered page reads by default.
    pub const SCAN_LIMIT: i64 = 20_000;

    /// Every finding above `after_id`, at most `limit`.
    pub fn after(after_id: i64, limit: i64) -> FindingsRange {
        FindingsRange {
            after_id,
            limit,
            classifier: None,
            data_source: None,
            scan_limit: FindingsRange::SCAN_LIMIT,
        }
    }

    /// Whether only some findings are wanted (and so at most `scan_limit` are read).
    pub fn is_filtered(&self) -> bool {
        self.classifier.is_some() || self.data_source.is_some()
    }
}

/// One page of a job's findings.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FindingsPage {
    /// In id order.
    pub rows: Vec<FindingRow>,
    /// When a filtered page stopped at its scan limit: the last finding id it read.
    /// Findings above it were not looked at, so the next page starts there even if
    /// this one holds fewer than `limit` rows (or none).
    pub scanned_to: Option<i64>,
}

/// A row of `findings` joined with its object.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct FindingRow {
    pub id: i64,
    pub data_source_id: String,
    pub object_key: String,
    pub classifier: String,
    pub location: String,
    pub count: i64,
    pub masked_sample: String,
    pub confidence: f64,
}

/// Who takes a lease and for how long.
#[derive(Debug, Clone)]
pub struct LeaseSpec {
    pub worker_id: String,
    pub node: String,
    pub lease_ms: i64,
}

/// A worker waiting in a long-poll to which a new job's first tasks may be leased in
/// the transaction that creates them (`Store::create_job_handing_off`).
#[derive(Debug, Clone)]
pub struct HandOff {
    pub lease: LeaseSpec,
    /// Most tasks this worker takes.
    pub max: usize,
}

/// Which of `ids` go to which of `to`: in order, one task each per round, up to each
/// one's `max`; so several idle workers each get one before any gets a second.
pub fn hand_off_rounds(ids: &[i64], to: &[HandOff]) -> Vec<Vec<i64>> {
    let mut per = vec![Vec::new(); to.len()];
    let mut next = ids.iter();
    loop {
        let mut gave = false;
        for (w, h) in to.iter().enumerate() {
            if per[w].len() < h.max {
                match next.next() {
                    Some(id) => {
                        per[w].push(*id);
                        gave = true;
                    }
                    None => return per,
                }
            }
        }
        if !gave {
            return per;
        }
    }
}

/// A task that was just leased.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct ClaimedTask {
    pub id: i64,
    pub job_id: String,
    pub data_source_id: String,
    pub phase: String,
    pub payload: String,
    pub attempts: i64,
    pub lease_token: String,
    pub lease_expires_at: i64,
}

/// What one reaper pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReapCounts {
    pub requeued: u64,
    pub failed: u64,
}

/// What recording a discovered batch did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Discovered {
    pub outcome: crate::ReportOutcome,
    /// `PROCESS` tasks created for the batch's new objects (written with them).
    pub tasks_created: u64,
}

impl Discovered {
    pub(crate) fn nothing(outcome: crate::ReportOutcome) -> Discovered {
        Discovered {
            outcome,
            tasks_created: 0,
        }
    }
}

/// What one pipeliner pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PipelineCounts {
    pub records: u64,
    pub tasks_created: u64,
}

/// A job that just reached its final state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FinishedJob {
    pub id: String,
    pub state: JobState,
}

/// One lease a task was given (`lease_history`, written by a trigger).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct LeaseRecord {
    pub task_id: i64,
    pub lease_token: String,
    pub worker_id: Option<String>,
    pub leased_at: i64,
    /// When the token was replaced or cleared; `None` while held.
    pub ended_at: Option<i64>,
    /// The task's state when the lease ended (`SUCCEEDED`, `PENDING` after a reap…).
    pub end_state: Option<String>,
}
