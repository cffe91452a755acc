//! `LISTEN meridian_tasks` (PostgreSQL): a trigger notifies when a transaction
//! inserted tasks on any replica (migration 0003); this loop turns each notification
//! into a local wake-up, so that a worker long-polling this replica gets a task another
//! replica created without waiting for a poll. A new job whose tasks its creating
//! replica could not all hand off is also announced on `meridian_jobs` with its id and
//! pending count: long-polls waiting here take those tasks at once, in one statement
//! (`RemoteWorkers::take_announced`). Notifications sent while the connection is down
//! are lost; the long-poll's own poll fallback covers them. The SQL lives behind
//! `Store::listen`; SQLite has no notifications and this loop then only idles.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use meridian_service::health::component;
use meridian_service::supervisor::{BackgroundLoop, Tick};
use meridian_store::{Notice, StoreError, TaskListener};
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;

use crate::app::App;

/// The listener loop: a tick waits for one notification on its connection, opening
/// one first if it has none. A lost connection is the tick's error, so the supervisor
/// shows the listener degraded and reconnects after its backoff; the long-polls'
/// poll fallback covers what is announced meanwhile. A quiet system sends nothing, so
/// the tick itself marks the listener healthy once it listens, and returns when
/// `stop` fires (the wait is dropped only then, as a whole session was before).
pub struct Listener {
    pub app: Arc<App>,
    pub stop: CancellationToken,
    conn: Mutex<Option<Box<dyn TaskListener>>>,
}

impl Listener {
    pub fn new(app: Arc<App>, stop: CancellationToken) -> Listener {
        Listener {
            app,
            stop,
            conn: Mutex::new(None),
        }
    }
}

#[async_trait]
impl BackgroundLoop for Listener {
    fn name(&self) -> &'static str {
        component::LISTENER
    }

    /// Between ticks only where the store has no notifications; otherwise ticks
    /// follow each other at once.
    fn interval(&self) -> Duration {
        Duration::from_secs(60)
    }

    async fn tick(&self) -> anyhow::Result<Tick> {
        let mut conn = self.conn.lock().await;
        let listener = match conn.as_mut() {
            Some(l) => l,
            None => {
                let Some(l) = self.app.store.listen().await.map_err(unavailable)? else {
                    return Ok(Tick::Idle);
                };
                self.app.health.healthy(component::LISTENER);
                // Anything created while we were not listening: look once.
                self.app.wake.jobs_changed();
                conn.insert(l)
            }
        };
        let received = tokio::select! {
            r = receive(&self.app, listener.as_mut()) => r,
            _ = self.stop.cancelled() => return Ok(Tick::Idle),
        };
        match received {
            Ok(()) => Ok(Tick::Worked),
            Err(e) => {
                *conn = None;
                Err(unavailable(e))
            }
        }
    }
}

fn unavailable(reason: StoreError) -> anyhow::Error {
    anyhow::anyhow!("task notifications unavailable ({reason}); polling meanwhile")
}

/// Waits for one notification and acts on it.
async fn receive(app: &App, listener: &mut dyn TaskListener) -> Result<(), StoreError> {
    let note = listener.next().await?;
    metrics::counter!("meridian_task_notifications_total").increment(1);
    match note {
        Notice::JobAnnounced { job_id, pending } => {
            if let Some(remote) = app.remote.get() {
                // Off the queue now, before the tasks notification that follows rings
                // the bell; the claim on this connection, whose backend is awake
                // already (it just sent the announcement).
                let waiters = remote.take_waiters(pending);
                if !waiters.is_empty() {
                    remote.take_announced(&job_id, waiters, listener).await;
                }
            }
        }
        // A new job or new tasks: re-read active jobs and wake the long-polls.
        Notice::TasksCreated => app.wake.jobs_changed(),
    }
    Ok(())
}
