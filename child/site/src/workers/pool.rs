//! The in-process worker pool: `worker.in_process_thread_count` workers reading one
//! queue, each on an OS thread of its own (`meridian-wN`, driving the worker's loop
//! with `block_on`; not the blocking pool, whose 512 threads a large pool would use up
//! and starve discovery's walker of): a worker scans on the thread it runs on, with
//! no hand-over per task ([`ScanOn::ThisThread`]), while its reports and heartbeats
//! use the async runtime as before. On shutdown a worker takes no new packet and lets its
//! running task finish within the grace period; after that the task is aborted and
//! handed back.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use meridian_wire::{ComponentState, WorkPacket};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use meridian_worker::reporter::Reporter;

use super::in_process::InProcess;
use meridian_engine::app::App;
use meridian_service::health::component;
use meridian_worker::runner::{self, Beat, Finished, Heartbeat, ScanOn};

/// What every worker of the pool shares.
#[derive(Clone)]
struct Shared {
    app: Arc<App>,
    queue: async_channel::Receiver<WorkPacket>,
    stop: CancellationToken,
    abort: CancellationToken,
    reporter: Arc<dyn Reporter>,
}

/// Starts the workers. `stop` ends intake; `abort` (fired after the grace period)
/// interrupts running tasks. Each entry of the set is one worker slot: it ends when
/// the slot's worker ends, and starts a new worker in the slot when the heartbeat
/// gave its task up as stalled (that thread may stay blocked in the kernel).
pub fn spawn(
    app: Arc<App>,
    queue: async_channel::Receiver<WorkPacket>,
    count: u32,
    stop: CancellationToken,
    abort: CancellationToken,
) -> JoinSet<()> {
    let mut set = JoinSet::new();
    let reporter: Arc<dyn Reporter> = Arc::new(InProcess { app: app.clone() });
    let shared = Shared {
        app: app.clone(),
        queue,
        stop,
        abort,
        reporter,
    };
    for n in 0..count {
        let shared = shared.clone();
        set.spawn(async move {
            let mut generation = 0u32;
            loop {
                let beat = Arc::new(Beat::default());
                let Some((id, finished)) = start_worker(&shared, n, generation, beat.clone())
                else {
                    return;
                };
                tokio::select! {
                    _ = finished => return,
                    _ = beat.gave_up.notified() => {
                        tracing::warn!(
                            "worker {n} gave a stalled task up; starting another in its place"
                        );
                        // The stalled worker's slot is free: it no longer counts.
                        shared.app.workers.unregister(&id);
                        generation += 1;
                    }
                }
            }
        });
    }
    app.health.healthy(component::WORKER_POOL);
    set
}

/// Starts worker `n` on a thread of its own; the receiver fires when its loop ends.
fn start_worker(
    shared: &Shared,
    n: u32,
    generation: u32,
    beat: Arc<Beat>,
) -> Option<(String, tokio::sync::oneshot::Receiver<()>)> {
    let Shared {
        app,
        queue,
        stop,
        abort,
        reporter,
    } = shared.clone();
    let id = if generation == 0 {
        format!("{}/{}/w{n}", app.node_id(), app.incarnation)
    } else {
        format!("{}/{}/w{n}.{generation}", app.node_id(), app.incarnation)
    };
    let runtime = tokio::runtime::Handle::current();
    let (done, finished) = tokio::sync::oneshot::channel::<()>();
    // One heartbeat loop per worker for all its tasks; ended with the worker.
    let beating = AbortOnDrop(tokio::spawn(beat.clone().run(
        reporter.clone(),
        id.clone(),
        abort.clone(),
    )));
    let worker_id = id.clone();
    let name = format!("meridian-w{n}");
    let thread = std::thread::Builder::new().name(name).spawn(move || {
        let _beating = beating;
        runtime.block_on(async move {
            app.workers.register(&id);
            loop {
                let packet = tokio::select! {
                    biased;
                    _ = stop.cancelled() => break,
                    p = queue.recv() => match p { Ok(p) => p, Err(_) => break },
                };
                app.workers.set_current(&id, Some(packet.task_id));
                let heartbeat = Heartbeat::Shared(&beat);
                let finished = runner::run(
                    &reporter,
                    &id,
                    packet,
                    &abort,
                    ScanOn::ThisThread,
                    heartbeat,
                )
                .await;
                app.workers.set_current(&id, None);
                if finished == Finished::GivenUp {
                    // Another worker took this slot when the task was given up.
                    break;
                }
            }
            app.workers.unregister(&id);
        });
        // Dropped unsent if the loop panicked: the join ends either way.
        let _ = done.send(());
    });
    match thread {
        Ok(_) => Some((worker_id, finished)),
        // The pool watch reports the missing worker (degraded health).
        Err(e) => {
            tracing::error!("cannot start worker thread {n}: {e}");
            None
        }
    }
}

/// Aborts a spawned task when dropped (a worker's heartbeat loop, with its thread).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Watches the pool: degraded while fewer workers run than configured.
pub async fn watch(app: Arc<App>, expected: usize, stop: CancellationToken) {
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
        let alive = app.workers.len();
        if alive < expected && !app.draining.load(Ordering::Relaxed) {
            app.health.set(
                component::WORKER_POOL,
                ComponentState::Degraded,
                Some(format!("{alive} of {expected} workers running")),
            );
        } else {
            app.health.healthy(component::WORKER_POOL);
        }
    }
}
