//! What a worker reports while it holds a lease: heartbeats, discovered batches,
//! completions and failures. In-process workers' completions are batched by the
//! completer; a remote worker's batch comes here ([`completed`]). Every call is fenced
//! by the lease token; a stale one writes nothing.

use std::time::Duration;

use meridian_service::backoff::Backoff;
use meridian_wire::task::FailureKind;

use crate::app::App;
use meridian_store::{
    Completion, DiscoveryBatch, FailOutcome, Failure, HeartbeatOutcome, Lease, ReportOutcome,
    StoreResult,
};

pub async fn heartbeat(app: &App, lease: &Lease) -> StoreResult<HeartbeatOutcome> {
    let lease_ms = (app.cfg().worker.task_timeout_seconds * 1000) as i64;
    let outcome = app.store.heartbeat(lease, lease_ms).await?;
    metrics::counter!("meridian_heartbeats_total").increment(1);
    Ok(outcome)
}

pub async fn discovered(
    app: &App,
    lease: &Lease,
    batch: &DiscoveryBatch,
) -> StoreResult<ReportOutcome> {
    let outcome = app.store.record_discovery(lease, batch).await?;
    if outcome == ReportOutcome::Accepted {
        metrics::counter!("meridian_objects_discovered_total")
            .increment(batch.objects.len() as u64);
        app.wake.pipeliner.notify_one();
    } else if outcome == ReportOutcome::LeaseLost {
        metrics::counter!("meridian_reports_refused_total").increment(1);
    }
    Ok(outcome)
}

/// Completes a remote worker's batch in one transaction; one outcome per completion,
/// in order (`LeaseLost` for those that wrote nothing).
pub async fn completed(app: &App, batch: &[Completion]) -> StoreResult<Vec<ReportOutcome>> {
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
