//! Group commit of completions: workers hand finished tasks (with their findings) to
//! one writer that commits whatever has accumulated in a single transaction. Under
//! load a batch holds many completions; when idle a completion is written at once.
//! A batch that fails to commit is retried, never dropped.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use meridian_service::backoff::Backoff;
use meridian_wire::ComponentState;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::app::App;
use meridian_service::health::component;
use meridian_store::{Completion, ReportOutcome};

/// Most completions in one transaction.
const MAX_BATCH: usize = 512;

/// A batch this large is committed at once.
const TARGET_BATCH: usize = 100;

/// Longest wait for a batch to fill while other tasks are in flight.
const LINGER: Duration = Duration::from_millis(2);

fn drain(rx: &mut mpsc::UnboundedReceiver<Completion>, batch: &mut Vec<Completion>) {
    while batch.len() < MAX_BATCH {
        match rx.try_recv() {
            Ok(c) => batch.push(c),
            Err(_) => break,
        }
    }
}

/// Where workers send completions.
#[derive(Debug, Clone)]
pub struct CompleterHandle {
    tx: mpsc::UnboundedSender<Completion>,
}

impl CompleterHandle {
    pub fn channel() -> (CompleterHandle, mpsc::UnboundedReceiver<Completion>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (CompleterHandle { tx }, rx)
    }

    /// Queues a completion. Its task stays in flight until the batch commits.
    pub fn submit(&self, c: Completion) {
        if self.tx.send(c).is_err() {
            // Only after shutdown; the task's lease is released with the node's leases.
            tracing::warn!("completion arrived after the completer stopped");
        }
    }
}

/// Writes completions until `stop` fires and the queue is empty.
pub async fn run(
    app: Arc<App>,
    mut rx: mpsc::UnboundedReceiver<Completion>,
    stop: CancellationToken,
) {
    app.health.healthy(component::COMPLETER);
    let retry = Backoff::new(Duration::from_millis(50), Duration::from_secs(5));
    loop {
        let first = tokio::select! {
            c = rx.recv() => c,
            _ = stop.cancelled() => rx.try_recv().ok(),
        };
        let Some(first) = first else { break };
        let mut batch = vec![first];
        drain(&mut rx, &mut batch);
        // More completions are on their way while other tasks are in flight: wait a
        // moment so that one commit covers them. An idle site never waits. The wait
        // wakes for each completion that arrives and at the deadline, not on a timer
        // tick: every wake-up of this task can preempt a worker thread mid-scan.
        let deadline = tokio::time::Instant::now() + LINGER;
        while batch.len() < TARGET_BATCH
            && app.in_flight.load(Ordering::Acquire) > batch.len()
            && !stop.is_cancelled()
        {
            tokio::select! {
                c = rx.recv() => match c {
                    Some(c) => {
                        batch.push(c);
                        drain(&mut rx, &mut batch);
                    }
                    None => break,
                },
                _ = tokio::time::sleep_until(deadline) => break,
                _ = stop.cancelled() => break,
            }
        }
        let mut attempt = 0;
        let outcomes = loop {
            match app.store.complete(&batch).await {
                Ok(o) => break o,
                Err(e) => {
                    attempt += 1;
                    let delay = retry.delay(attempt);
                    app.health.set(
                        component::COMPLETER,
                        ComponentState::Degraded,
                        Some(format!(
                            "{e}; {} completions waiting, retrying",
                            batch.len()
                        )),
                    );
                    tokio::time::sleep(delay).await;
                }
            }
        };
        if attempt > 0 {
            app.health.healthy(component::COMPLETER);
        }
        let accepted = outcomes
            .iter()
            .filter(|o| **o == ReportOutcome::Accepted)
            .count();
        let lost = outcomes.len() - accepted;
        metrics::counter!("meridian_tasks_completed_total").increment(accepted as u64);
        if lost > 0 {
            metrics::counter!("meridian_reports_refused_total").increment(lost as u64);
            tracing::info!(
                count = lost,
                "{lost} completions refused: their leases were no longer current"
            );
        }
        metrics::histogram!("meridian_completion_batch_size").record(batch.len() as f64);
        app.release_in_flight(batch.len());
        app.wake.assigner.notify_one();
        app.wake.finisher.notify_one();
    }
    app.health
        .set(component::COMPLETER, ComponentState::Stopped, None);
}
