//! What a worker reports while it holds a lease: heartbeats, discovered batches,
//! completions and failures. In-process workers' completions are batched by the
//! completer; a remote worker's batch comes here ([`completed`]). Every call is fenced
//! by the lease token; a stale one writes nothing.
//!
//! A worker holding a current lease is still not trusted with what it says: before
//! anything is written, a discovered batch is checked against its task's phase, and a
//! completion against its task's phase and object, with every finding checked for a
//! known classifier, bounded strings and count, and a masked sample in which no
//! classifier finds an unmasked value. A report that fails is refused whole
//! ([`ReportError::Refused`]) and writes nothing.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use meridian_scan::classify::{self, ClassifierRef};
use meridian_service::backoff::Backoff;
use meridian_wire::task::FailureKind;

use crate::app::App;
use meridian_store::{
    Completion, DiscoveryBatch, FailOutcome, Failure, HeartbeatOutcome, Lease, LeasedTask,
    NewFinding, ReportOutcome, StoreError, StoreResult, TaskBounds,
};

/// Largest count one finding may carry (matches of one classifier in one object).
pub const MAX_FINDING_COUNT: i64 = 1_000_000_000;

/// Longest location, in bytes: the scanner's longest is a list of
/// `MAX_LINES_LISTED` line numbers, a database column's is its name.
pub const MAX_LOCATION_BYTES: usize = 512;

/// Longest masked sample, in bytes: a mask is about as long as the value it hides.
pub const MAX_SAMPLE_BYTES: usize = 1024;

/// Longest reason of a skipped or partial object (reasons are a small fixed set of
/// short phrases).
pub const MAX_REASON_BYTES: usize = 128;
/// Longest error of an object that could never be scanned.
pub const MAX_OBJECT_ERROR_BYTES: usize = 1000;

/// Why a report wrote nothing.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The report is not about what its lease is about, or a finding is not what a
    /// scanner produces. Nothing of the report was written.
    #[error("task {task_id}: {reason}")]
    Refused { task_id: i64, reason: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn refuse<T>(task_id: i64, reason: String) -> Result<T, ReportError> {
    Err(ReportError::Refused { task_id, reason })
}

pub async fn heartbeat(app: &App, lease: &Lease) -> StoreResult<HeartbeatOutcome> {
    let lease_ms = (app.cfg().worker.task_timeout_seconds * 1000) as i64;
    let outcome = app.store.heartbeat(lease, lease_ms).await?;
    metrics::counter!("meridian_heartbeats_total").increment(1);
    Ok(outcome)
}

/// Records a discovered batch; refused unless the lease is a `DISCOVERY` task's.
pub async fn discovered(
    app: &App,
    lease: &Lease,
    batch: &DiscoveryBatch,
) -> Result<ReportOutcome, ReportError> {
    let leased = app.store.leased_tasks(std::slice::from_ref(lease)).await?;
    if let Some(t) = leased.first().filter(|t| t.phase != "DISCOVERY") {
        refused();
        return refuse(
            t.task_id,
            format!(
                "a {} task reported discovered objects; only a DISCOVERY task does",
                t.phase
            ),
        );
    }
    let connector = &app.cfg().connector;
    let bounds = TaskBounds {
        objects: connector.objects_per_task as usize,
        bytes: i64::try_from(connector.task_bytes_mb << 20).unwrap_or(i64::MAX),
    };
    let recorded = app.store.record_discovery(lease, batch, &bounds).await?;
    if recorded.outcome == ReportOutcome::Accepted {
        metrics::counter!("meridian_objects_discovered_total")
            .increment(batch.objects.len() as u64);
        metrics::counter!("meridian_tasks_created_total", "phase" => "PROCESS")
            .increment(recorded.tasks_created);
        if recorded.tasks_created > 0 {
            app.wake.tasks_added();
        }
    } else if recorded.outcome == ReportOutcome::LeaseLost {
        metrics::counter!("meridian_reports_refused_total").increment(1);
    }
    Ok(recorded.outcome)
}

/// Completes a remote worker's batch in one transaction; one outcome per completion,
/// in order (`LeaseLost` for those that wrote nothing). The whole batch is refused,
/// and nothing written, when one completion is not about its task's object or holds
/// a finding no scanner would produce.
pub async fn completed(app: &App, batch: &[Completion]) -> Result<Vec<ReportOutcome>, ReportError> {
    if let Err(e) = check_completions(app, batch).await {
        refused();
        return Err(e);
    }
    let outcomes = app.store.complete(batch).await?;
    let refused = outcomes
        .iter()
        .filter(|o| **o == ReportOutcome::LeaseLost)
        .count();
    metrics::counter!("meridian_tasks_completed_total").increment((batch.len() - refused) as u64);
    metrics::histogram!("meridian_completion_batch_size").record(batch.len() as f64);
    if refused > 0 {
        metrics::counter!("meridian_reports_refused_total").increment(refused as u64);
    }
    app.wake.finisher.notify_one();
    Ok(outcomes)
}

fn refused() {
    metrics::counter!("meridian_reports_invalid_total").increment(1);
}

async fn check_completions(app: &App, batch: &[Completion]) -> Result<(), ReportError> {
    let cfg = app.cfg();
    let known = classify::known_names(&cfg.classifiers.custom);
    let classifiers = classify::select(None, &cfg.classifiers.custom);
    for c in batch {
        for f in &c.findings {
            check_finding(c.lease.task_id, f, &known, &classifiers)?;
        }
        if let Some(f) = c
            .failed
            .iter()
            .find(|f| f.error.len() > MAX_OBJECT_ERROR_BYTES)
        {
            return refuse(
                c.lease.task_id,
                format!(
                    "object {}'s error is longer than {MAX_OBJECT_ERROR_BYTES} bytes",
                    f.object_id
                ),
            );
        }
        if let Some(o) = c.objects.iter().find(|o| {
            o.reason
                .as_ref()
                .is_some_and(|r| r.len() > MAX_REASON_BYTES)
        }) {
            return refuse(
                c.lease.task_id,
                format!(
                    "object {}'s reason is longer than {MAX_REASON_BYTES} bytes",
                    o.object_id
                ),
            );
        }
    }
    let leases: Vec<Lease> = batch.iter().map(|c| c.lease.clone()).collect();
    let leased: HashMap<i64, LeasedTask> = app
        .store
        .leased_tasks(&leases)
        .await?
        .into_iter()
        .map(|t| (t.task_id, t))
        .collect();
    // A completion whose lease is not current is left to the store, which refuses it
    // as a lost lease.
    for c in batch {
        if let Some(t) = leased.get(&c.lease.task_id) {
            check_scope(c, t)?;
        }
    }
    Ok(())
}

/// A completion speaks only of its own task's objects: none for a `DISCOVERY` task,
/// those its payload names for a `PROCESS` task, each object's outcome at most once.
fn check_scope(c: &Completion, t: &LeasedTask) -> Result<(), ReportError> {
    let id = t.task_id;
    if t.phase != "PROCESS" {
        if !c.objects.is_empty() || !c.findings.is_empty() || !c.failed.is_empty() {
            return refuse(
                id,
                format!(
                    "a {} task completes with no object outcome and no findings",
                    t.phase
                ),
            );
        }
        return Ok(());
    }
    let objects: HashSet<i64> = t.objects.iter().copied().collect();
    let ours = |object: i64| objects.contains(&object);
    let mut seen = HashSet::new();
    let reported = c
        .objects
        .iter()
        .map(|o| o.object_id)
        .chain(c.failed.iter().map(|f| f.object_id));
    for object in reported {
        if !ours(object) {
            return refuse(
                id,
                format!(
                    "the task scans {}; its completion gives the outcome of object {object}",
                    scanned(&t.objects),
                ),
            );
        }
        if !seen.insert(object) {
            return refuse(
                id,
                format!("the completion gives the outcome of object {object} twice"),
            );
        }
    }
    if let Some(f) = c.findings.iter().find(|f| !ours(f.object_id)) {
        return refuse(
            id,
            format!(
                "the task scans {}; a finding names object {}",
                scanned(&t.objects),
                f.object_id
            ),
        );
    }
    Ok(())
}

/// The objects a task scans, for an error message: the first few ids.
fn scanned(objects: &[i64]) -> String {
    match objects {
        [one] => format!("object {one}"),
        _ if objects.len() <= 4 => format!("objects {objects:?}"),
        _ => format!("{} objects ({:?} …)", objects.len(), &objects[..4]),
    }
}

/// A finding as a scanner makes it: a classifier of this site, a count in range,
/// bounded strings, and a masked sample that is exactly the mask of any value a
/// classifier finds in it (so no raw value can be stored under a finding).
fn check_finding(
    task_id: i64,
    f: &NewFinding,
    known: &[String],
    classifiers: &[ClassifierRef],
) -> Result<(), ReportError> {
    let shown: String = f.classifier.chars().take(64).collect();
    if !known.contains(&f.classifier) {
        return refuse(
            task_id,
            format!("finding classifier `{shown}` is not a classifier of this site"),
        );
    }
    if !(1..=MAX_FINDING_COUNT).contains(&f.count) {
        return refuse(
            task_id,
            format!(
                "a `{shown}` finding has count {}; allowed 1..={MAX_FINDING_COUNT}",
                f.count
            ),
        );
    }
    if f.location.len() > MAX_LOCATION_BYTES {
        return refuse(
            task_id,
            format!("a `{shown}` finding's location is longer than {MAX_LOCATION_BYTES} bytes"),
        );
    }
    if !(f.confidence.is_finite() && (0.0..=1.0).contains(&f.confidence)) {
        return refuse(
            task_id,
            format!("a `{shown}` finding's confidence is not between 0 and 1"),
        );
    }
    let sample = &f.masked_sample;
    if sample.len() > MAX_SAMPLE_BYTES {
        return refuse(
            task_id,
            format!("a `{shown}` finding's masked_sample is longer than {MAX_SAMPLE_BYTES} bytes"),
        );
    }
    let mut found = Vec::new();
    for c in classifiers {
        found.clear();
        c.scan(sample, &mut found);
        // A mask may keep part of what a classifier matches (a private key's header),
        // but then the sample is that match's mask and nothing else; a match whose mask
        // is not the whole sample is a value shown unmasked.
        if found.iter().any(|m| {
            sample
                .get(m.start..m.end)
                .is_none_or(|v| c.mask(v) != *sample)
        }) {
            return refuse(
                task_id,
                format!(
                    "the masked_sample of a `{shown}` finding holds a value the `{}` classifier matches unmasked; raw values are never stored",
                    c.name()
                ),
            );
        }
    }
    Ok(())
}

/// Fails a task; `attempt` is the attempt that failed (1-based) and sets the backoff.
pub async fn failed(
    app: &App,
    lease: &Lease,
    attempt: u32,
    error: &str,
    kind: FailureKind,
) -> StoreResult<FailOutcome> {
    let cfg = app.cfg();
    let backoff = Backoff::new(
        Duration::from_millis(cfg.worker.retry_backoff_base_milliseconds),
        Duration::from_secs(cfg.worker.retry_backoff_max_seconds),
    );
    let failure = Failure {
        error: error.chars().take(2000).collect(),
        retryable: kind != FailureKind::Permanent,
        split: kind == FailureKind::Retryable,
        max_retries: if kind == FailureKind::Cancelled {
            u32::MAX
        } else {
            cfg.worker.max_retries
        },
        backoff_ms: if kind == FailureKind::Cancelled {
            0
        } else {
            backoff.delay(attempt).as_millis() as i64
        },
    };
    let outcome = app.store.fail(lease, &failure).await?;
    match outcome {
        FailOutcome::Retrying => {
            metrics::counter!("meridian_task_retries_total").increment(1);
            app.wake.tasks_requeued();
        }
        FailOutcome::Failed => {
            metrics::counter!("meridian_tasks_failed_total").increment(1);
            app.wake.finisher.notify_one();
        }
        FailOutcome::LeaseLost => metrics::counter!("meridian_reports_refused_total").increment(1),
    }
    Ok(outcome)
}
