//! Heartbeats: a running task's lease is renewed while its connector works, and
//! stops being renewed when the task is lost, cancelled, past the shutdown deadline,
//! or stalled. A task that makes no progress for `orchestrator.stalled_task_seconds`
//! × [`STALL_FACTOR`] (a read hung in a network file system, say) is given up: failed
//! as retryable and its worker slot freed, whatever its thread is still blocked in.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use meridian_wire::task::{FailureKind, HeartbeatOutcome, Lease};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::reporter::Reporter;

/// A task with no progress for this many times `stalled_task_seconds` is given up.
pub const STALL_FACTOR: u64 = 2;

/// What the heartbeat and the runner know of one running task.
#[derive(Debug)]
pub struct Stop {
    /// Set on lease loss, cancellation, a stall or the shutdown deadline: the
    /// connector checks it.
    pub abort: AtomicBool,
    pub lost: AtomicBool,
    pub cancelled: AtomicBool,
    /// The heartbeat gave the task up as stalled.
    pub stalled: AtomicBool,
    /// Whoever sets this first reports the task's end (the runner when the scan
    /// returns, the heartbeat when it gives a stalled task up); the other stays silent.
    settled: AtomicBool,
    started: Instant,
    /// Milliseconds after `started` of the last progress (a discovered batch).
    progress_ms: AtomicU64,
    attempt: u32,
}

impl Stop {
    pub fn new(attempt: u32) -> Stop {
        Stop {
            abort: AtomicBool::new(false),
            lost: AtomicBool::new(false),
            cancelled: AtomicBool::new(false),
            stalled: AtomicBool::new(false),
            settled: AtomicBool::new(false),
            started: Instant::now(),
            progress_ms: AtomicU64::new(0),
            attempt,
        }
    }

    /// The task moved forward (a batch of objects was recorded).
    pub fn progressed(&self) {
        let ms = self.started.elapsed().as_millis() as u64;
        self.progress_ms.store(ms, Ordering::Relaxed);
    }

    fn idle_for(&self) -> Duration {
        self.started.elapsed().saturating_sub(Duration::from_millis(
            self.progress_ms.load(Ordering::Relaxed),
        ))
    }

    /// True for the first caller only: it reports how the task ended.
    pub fn settle(&self) -> bool {
        !self.settled.swap(true, Ordering::AcqRel)
    }
}

/// How long a task may go without progress.
fn stall_limit(app: &Arc<dyn Reporter>) -> Duration {
    Duration::from_secs(
        app.cfg()
            .orchestrator
            .stalled_task_seconds
            .saturating_mul(STALL_FACTOR),
    )
}

/// Gives a stalled task up: it is aborted (a connector that checks will stop), failed
/// as retryable and its slot given back, unless the runner got there first.
async fn give_up(app: &Arc<dyn Reporter>, lease: &Lease, stop: &Stop, limit: Duration) {
    stop.stalled.store(true, Ordering::Relaxed);
    stop.abort.store(true, Ordering::Relaxed);
    if !stop.settle() {
        return;
    }
    let error = format!(
        "no progress for {} s; the worker gave the task up",
        limit.as_secs()
    );
    tracing::warn!(task.id = lease.task_id, "task {}: {error}", lease.task_id);
    if let Err(e) = app
        .failed(lease, stop.attempt, &error, FailureKind::Retryable)
        .await
    {
        // The lease then expires and the reaper returns the task.
        tracing::warn!(task.id = lease.task_id, "could not fail stalled task: {e}");
    }
    app.released();
}

/// How a running task's lease is renewed.
#[derive(Clone, Copy)]
pub enum Heartbeat<'a> {
    /// A timer task of its own for each packet (remote workers).
    PerTask,
    /// The worker's heartbeat loop ([`Beat::run`]), which renews whatever task the
    /// worker runs: no task spawned and aborted per packet, each a wake-up of the
    /// runtime's threads that could preempt a scanning thread.
    Shared(&'a Beat),
}

/// The task an in-process worker is running, for the worker's heartbeat loop.
#[derive(Default)]
pub struct Beat {
    current: std::sync::Mutex<Option<Current>>,
    /// Notified when the worker's task was given up as stalled: its thread may stay
    /// blocked, so the pool starts another worker in its place.
    pub gave_up: Notify,
}

struct Current {
    lease: Lease,
    stop: Arc<Stop>,
    every: Duration,
    /// When the lease is next renewed.
    due: Instant,
}

/// How often the shared loop looks whether the current task is due (heartbeat
/// intervals are whole seconds).
const BEAT_TICK: Duration = Duration::from_millis(250);

impl Beat {
    fn slot(&self) -> std::sync::MutexGuard<'_, Option<Current>> {
        self.current.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn start(&self, lease: &Lease, stop: &Arc<Stop>, every: Duration) {
        *self.slot() = Some(Current {
            lease: lease.clone(),
            stop: stop.clone(),
            every,
            due: Instant::now() + every,
        });
    }

    pub(crate) fn end(&self) {
        *self.slot() = None;
    }

    /// Renews the current task's lease once it has run for a heartbeat interval and
    /// every interval after, as [`Heartbeat::PerTask`] does; gives a stalled task up;
    /// on the shutdown deadline aborts the current task and returns. Runs until the
    /// worker aborts it.
    pub async fn run(
        self: Arc<Self>,
        app: Arc<dyn Reporter>,
        worker_id: String,
        deadline: CancellationToken,
    ) {
        loop {
            tokio::select! {
                _ = deadline.cancelled() => {
                    if let Some(c) = self.slot().as_ref() {
                        c.stop.abort.store(true, Ordering::Relaxed);
                    }
                    return;
                }
                _ = tokio::time::sleep(BEAT_TICK) => {}
            }
            let due = {
                let mut slot = self.slot();
                let now = Instant::now();
                match slot.as_mut() {
                    Some(c) if c.due <= now => {
                        c.due = now + c.every;
                        Some((c.lease.clone(), c.stop.clone()))
                    }
                    _ => None,
                }
            };
            let Some((lease, stop)) = due else { continue };
            let limit = stall_limit(&app);
            let keep = if stop.idle_for() > limit {
                give_up(&app, &lease, &stop, limit).await;
                self.gave_up.notify_one();
                false
            } else {
                renew(&app, &worker_id, &lease, &stop).await
            };
            if !keep {
                let mut slot = self.slot();
                // Still the same run of the task (not a later lease of it taken by this
                // worker while the renewal was on its way): it is being stopped, renew
                // it no more.
                if slot.as_ref().is_some_and(|c| Arc::ptr_eq(&c.stop, &stop)) {
                    *slot = None;
                }
            }
        }
    }
}

/// Ends a task's heartbeat when the runner returns or unwinds: a heartbeat left
/// running would keep extending a lease nobody works on.
pub(crate) enum Renewal<'a> {
    Task(tokio::task::JoinHandle<()>),
    Shared(&'a Beat),
}

impl Drop for Renewal<'_> {
    fn drop(&mut self) {
        match self {
            Renewal::Task(handle) => handle.abort(),
            Renewal::Shared(beat) => beat.end(),
        }
    }
}

/// The per-task heartbeat of remote workers.
pub(crate) async fn heartbeat_loop(
    app: Arc<dyn Reporter>,
    worker_id: String,
    lease: Lease,
    every: Duration,
    stop: Arc<Stop>,
    deadline: CancellationToken,
) {
    let mut tick = tokio::time::interval(every);
    tick.tick().await;
    loop {
        tokio::select! {
            _ = deadline.cancelled() => {
                stop.abort.store(true, Ordering::Relaxed);
                return;
            }
            _ = tick.tick() => {}
        }
        let limit = stall_limit(&app);
        if stop.idle_for() > limit {
            give_up(&app, &lease, &stop, limit).await;
            return;
        }
        if !renew(&app, &worker_id, &lease, &stop).await {
            return;
        }
    }
}

/// One heartbeat; false when the task must stop (cancelled, or its lease is lost).
pub(crate) async fn renew(
    app: &Arc<dyn Reporter>,
    worker_id: &str,
    lease: &Lease,
    stop: &Stop,
) -> bool {
    match app.heartbeat(lease).await {
        Ok(HeartbeatOutcome::Extended { .. }) => app.heartbeat_ok(worker_id),
        Ok(HeartbeatOutcome::Cancelled) => {
            stop.cancelled.store(true, Ordering::Relaxed);
            stop.abort.store(true, Ordering::Relaxed);
            return false;
        }
        Ok(HeartbeatOutcome::Lost) => {
            stop.lost.store(true, Ordering::Relaxed);
            stop.abort.store(true, Ordering::Relaxed);
            return false;
        }
        // A missed heartbeat is not fatal; the lease outlasts several intervals.
        Err(e) => tracing::warn!(task.id = lease.task_id, "heartbeat failed: {e}"),
    }
    true
}
