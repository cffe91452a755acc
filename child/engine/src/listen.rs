//! `LISTEN meridian_tasks` (PostgreSQL): a trigger notifies when a transaction
//! inserted tasks on any replica (migration 0003); this loop turns each notification
//! into a local wake-up, so that a worker long-polling this replica gets a task another
//! replica created without waiting for a poll. A new job whose tasks its creating
//! replica could not all hand off is also announced on `meridian_jobs` with its id and
//! pending count: long-polls waiting here take those tasks at once, in one statement
//! (`RemoteWorkers::take_announced`). Notifications sent while the connection is down
//! are lost; the long-poll's own poll fallback covers them.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use meridian_service::health::component;
use meridian_service::supervisor::{BackgroundLoop, Tick};
use sqlx::postgres::PgListener;
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;

use crate::app::App;
use meridian_store::JOBS_CHANNEL;

pub const CHANNEL: &str = "meridian_tasks";

/// The listener loop: a tick waits for one notification on its connection, connecting
/// first if it has none. A lost connection is the tick's error, so the supervisor
/// shows the listener degraded and reconnects after its backoff; the long-polls'
/// poll fallback covers what is announced meanwhile. A quiet system sends nothing, so
/// the tick itself marks the listener healthy once it listens, and returns when
/// `stop` fires (the wait is dropped only then, as a whole session was before).
pub struct Listener {
    pub app: Arc<App>,
    pub url: String,
    pub stop: CancellationToken,
    conn: Mutex<Option<PgListener>>,
}

impl Listener {
    pub fn new(app: Arc<App>, url: String, stop: CancellationToken) -> Listener {
        Listener {
            app,
            url,
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

    /// Ticks follow each other at once; this only paces a loop without a connection.
    fn interval(&self) -> Duration {
        Duration::ZERO
    }

    async fn tick(&self) -> anyhow::Result<Tick> {
        let mut conn = self.conn.lock().await;
        let listener = match conn.as_mut() {
            Some(l) => l,
            None => {
                let l = connect(&self.app, &self.url).await.map_err(unavailable)?;
                self.app.health.healthy(component::LISTENER);
                conn.insert(l)
            }
        };
        let received = tokio::select! {
            r = receive(&self.app, listener) => r,
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

/// Never the URL: it may hold a password.
fn unavailable(e: sqlx::Error) -> anyhow::Error {
    let reason = meridian_store::StoreError::from(e);
    anyhow::anyhow!("task notifications unavailable ({reason}); polling meanwhile")
}

/// A new connection, listening on both channels.
async fn connect(app: &App, url: &str) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect(url).await?;
    // The announced hand-off runs on this connection; bounded, so that a lock held
    // elsewhere cannot stall the notifications behind it for long.
    sqlx::query("SET statement_timeout = 2000")
        .execute(&mut listener)
        .await?;
    listener.listen_all([CHANNEL, JOBS_CHANNEL]).await?;
    // Anything created while we were not listening: look once.
    app.wake.jobs_changed();
    Ok(listener)
}

/// Waits for one notification and acts on it.
async fn receive(app: &App, listener: &mut PgListener) -> Result<(), sqlx::Error> {
    // `None`: the connection was lost. The next tick reconnects (sqlx would do it
    // quietly on the next call, without the timeout above), and looks once for what
    // was announced meanwhile.
    let Some(note) = listener.try_recv().await? else {
        return Err(sqlx::Error::Protocol("notification connection lost".into()));
    };
    metrics::counter!("meridian_task_notifications_total").increment(1);
    if note.channel() == JOBS_CHANNEL {
        if let (Some(remote), Some((job, pending))) = (app.remote.get(), announced(note.payload()))
        {
            // Off the queue now, before the tasks notification that follows rings
            // the bell; the claim on this connection, whose backend is awake
            // already (it just sent the announcement).
            let waiters = remote.take_waiters(pending);
            if !waiters.is_empty() {
                remote.take_announced(job, waiters, listener).await;
            }
        }
        return Ok(());
    }
    // A new job or new tasks: re-read active jobs and wake the long-polls.
    app.wake.jobs_changed();
    Ok(())
}

/// `<job id> <pending count>`, as `CREATE_JOB` announces it.
fn announced(payload: &str) -> Option<(&str, usize)> {
    let (job, pending) = payload.split_once(' ')?;
    Some((job, pending.parse().ok()?))
}
