//! Group commit of completions: workers hand finished tasks (with their findings) to
//! one writer that commits whatever has accumulated in a single transaction. Under
//! load a batch holds many completions; when idle a completion is written at once.
//! The writer is a supervised loop: a batch that fails to commit, or whose commit
//! panics, stays in the inbox and is committed by the restarted loop, never dropped.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::{Mutex, Notify, mpsc};

use crate::app::App;
use meridian_service::backoff::Backoff;
use meridian_service::health::component;
use meridian_service::supervisor::{BackgroundLoop, Tick};
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
    wake: Arc<Notify>,
}

/// What the completer reads: the channel, and the batch being committed. Both outlive
/// one run of the loop, so a restart after a panic loses nothing.
#[derive(Debug)]
pub struct Inbox {
    wake: Arc<Notify>,
    pending: Mutex<Pending>,
}

#[derive(Debug)]
struct Pending {
    rx: mpsc::UnboundedReceiver<Completion>,
    /// Taken from `rx`, not yet committed.
    batch: Vec<Completion>,
}

impl CompleterHandle {
    pub fn channel() -> (CompleterHandle, Arc<Inbox>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let wake = Arc::new(Notify::new());
        let inbox = Inbox {
            wake: wake.clone(),
            pending: Mutex::new(Pending {
                rx,
                batch: Vec::new(),
            }),
        };
        (CompleterHandle { tx, wake }, Arc::new(inbox))
    }

    /// Queues a completion. Its task stays in flight until the batch commits.
    pub fn submit(&self, c: Completion) {
        if self.tx.send(c).is_err() {
            // Only after shutdown; the task's lease is released with the node's leases.
            tracing::warn!("completion arrived after the completer stopped");
        }
        // A permit is kept if the completer is mid-commit, so this wake-up is not lost.
        self.wake.notify_one();
    }
}

/// The completer loop: one tick commits one batch.
pub struct Completer {
    pub app: Arc<App>,
    pub inbox: Arc<Inbox>,
}

#[async_trait]
impl BackgroundLoop for Completer {
    fn name(&self) -> &'static str {
        component::COMPLETER
    }

    /// Every submit wakes the loop; the interval is only a fallback.
    fn interval(&self) -> Duration {
        Duration::from_secs(1)
    }

    fn wake(&self) -> Option<Arc<Notify>> {
        Some(self.inbox.wake.clone())
    }

    async fn tick(&self) -> anyhow::Result<Tick> {
        let mut p = self.inbox.pending.lock().await;
        let p = &mut *p;
        if p.batch.is_empty() {
            drain(&mut p.rx, &mut p.batch);
        }
        if p.batch.is_empty() {
            return Ok(Tick::Idle);
        }
        linger(&self.app, &mut p.rx, &mut p.batch).await;
        // On an error the batch stays for the restarted loop.
        let outcomes = self
            .app
            .store
            .complete(&p.batch)
            .await
            .map_err(|e| anyhow::anyhow!("{e}; {} completions waiting", p.batch.len()))?;
        let batch = std::mem::take(&mut p.batch);
        committed(&self.app, batch.len(), &outcomes);
        Ok(Tick::Worked)
    }
}

/// More completions are on their way while other tasks are in flight: waits a moment
/// so that one commit covers them. An idle site never waits. The wait wakes for each
/// completion that arrives and at the deadline, not on a timer tick: every wake-up of
/// this task can preempt a worker thread mid-scan.
async fn linger(
    app: &App,
    rx: &mut mpsc::UnboundedReceiver<Completion>,
    batch: &mut Vec<Completion>,
) {
    let deadline = tokio::time::Instant::now() + LINGER;
    while batch.len() < TARGET_BATCH && app.in_flight.load(Ordering::Acquire) > batch.len() {
        tokio::select! {
            c = rx.recv() => match c {
                Some(c) => {
                    batch.push(c);
                    drain(rx, batch);
                }
                None => break,
            },
            _ = tokio::time::sleep_until(deadline) => break,
        }
    }
}

/// Counts a committed batch, frees its in-flight slots and wakes who waits on them.
fn committed(app: &App, n: usize, outcomes: &[ReportOutcome]) {
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
    metrics::histogram!("meridian_completion_batch_size").record(n as f64);
    app.release_in_flight(n);
    app.wake.assigner.notify_one();
    app.wake.finisher.notify_one();
}

/// Commits what is left after the loop stopped (shutdown: the workers are done), a few
/// attempts at most; what cannot be committed is handed back with the node's leases.
pub async fn flush(app: &App, inbox: &Inbox) {
    const ATTEMPTS: u32 = 5;
    let retry = Backoff::new(Duration::from_millis(50), Duration::from_secs(1));
    let mut p = inbox.pending.lock().await;
    let p = &mut *p;
    let mut failures = 0;
    loop {
        if p.batch.is_empty() {
            drain(&mut p.rx, &mut p.batch);
        }
        if p.batch.is_empty() {
            return;
        }
        match app.store.complete(&p.batch).await {
            Ok(outcomes) => {
                let batch = std::mem::take(&mut p.batch);
                committed(app, batch.len(), &outcomes);
            }
            Err(e) => {
                failures += 1;
                if failures >= ATTEMPTS {
                    tracing::warn!(
                        "{} completions not committed at shutdown ({e}); their tasks run again",
                        p.batch.len()
                    );
                    return;
                }
                tokio::time::sleep(retry.delay(failures)).await;
            }
        }
    }
}
