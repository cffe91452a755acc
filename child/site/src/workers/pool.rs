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
use meridian_worker::runner::{self, Beat, Heartbeat, ScanOn};

/// Starts the workers. `stop` ends intake; `abort` (fired after the grace period)
/// interrupts running tasks.
pub fn spawn(
    app: Arc<App>,
    queue: async_channel::Receiver<WorkPacket>,
    count: u32,
    stop: CancellationToken,
    abort: CancellationToken,
) -> JoinSet<()> {
    let mut set = JoinSet::new();
    let reporter: Arc<dyn Reporter> = Arc::new(InProcess { app: app.clone() });
    for n in 0..count {
        let id = format!("{}/{}/w{n}", app.node_id(), app.incarnation);
        let (app, queue, stop, abort) = (app.clone(), queue.clone(), stop.clone(), abort.clone());
        let reporter = reporter.clone();
        let runtime = tokio::runtime::Handle::current();
        let (done, finished) = tokio::sync::oneshot::channel::<()>();
        // One heartbeat loop per worker for all its tasks; ended with the worker.
        let beat = Arc::new(Beat::default());
        let beating = AbortOnDrop(tokio::spawn(beat.clone().run(
            reporter.clone(),
            id.clone(),
            abort.clone(),
        )));
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
                    runner::run(
                        &reporter,
                        &id,
                        packet,
                        &abort,
                        ScanOn::ThisThread,
                        heartbeat,
                    )
                    .await;
                    app.workers.set_current(&id, None);
                }
                app.workers.unregister(&id);
            });
            // Dropped unsent if the loop panicked: the join below ends either way.
            let _ = done.send(());
        });
        match thread {
            Ok(_) => {
                set.spawn(async move {
                    let _ = finished.await;
                });
            }
            // The pool watch reports the missing worker (degraded health).
            Err(e) => tracing::error!("cannot start worker thread {n}: {e}"),
        }
    }
    app.health.healthy(component::WORKER_POOL);
    set
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
