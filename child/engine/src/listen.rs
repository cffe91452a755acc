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

use meridian_service::backoff::Backoff;
use sqlx::postgres::PgListener;
use tokio_util::sync::CancellationToken;

use crate::app::App;
use meridian_store::JOBS_CHANNEL;

pub const CHANNEL: &str = "meridian_tasks";

const RECONNECT: Backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(10));

/// Listens until `stop` fires, reconnecting with backoff.
pub async fn run(app: Arc<App>, url: String, stop: CancellationToken) {
    let mut failures = 0u32;
    while !stop.is_cancelled() {
        let result = tokio::select! {
            r = session(&app, &url, &mut failures) => r,
            _ = stop.cancelled() => return,
        };
        if let Err(e) = result {
            failures += 1;
            // Never the URL: it may hold a password.
            let reason = meridian_store::StoreError::from(e);
            tracing::warn!("task notifications unavailable ({reason}); polling meanwhile");
        }
        tokio::select! {
            _ = tokio::time::sleep(RECONNECT.delay(failures.max(1))) => {}
            _ = stop.cancelled() => return,
        }
    }
}

/// One connection: listens until it fails.
async fn session(app: &App, url: &str, failures: &mut u32) -> Result<(), sqlx::Error> {
    let mut listener = PgListener::connect(url).await?;
    // The announced hand-off runs on this connection; bounded, so that a lock held
    // elsewhere cannot stall the notifications behind it for long.
    sqlx::query("SET statement_timeout = 2000")
        .execute(&mut listener)
        .await?;
    listener.listen_all([CHANNEL, JOBS_CHANNEL]).await?;
    // Anything created while we were not listening: look once.
    app.wake.jobs_changed();
    loop {
        // `None`: the connection was lost. A new session reconnects (sqlx would do it
        // quietly on the next call, without the timeout above), and looks once for
        // what was announced meanwhile.
        let Some(note) = listener.try_recv().await? else {
            return Err(sqlx::Error::Protocol("notification connection lost".into()));
        };
        *failures = 0;
        metrics::counter!("meridian_task_notifications_total").increment(1);
        if note.channel() == JOBS_CHANNEL {
            if let (Some(remote), Some((job, pending))) =
                (app.remote.get(), announced(note.payload()))
            {
                // Off the queue now, before the tasks notification that follows rings
                // the bell; the claim on this connection, whose backend is awake
                // already (it just sent the announcement).
                let waiters = remote.take_waiters(pending);
                if !waiters.is_empty() {
                    remote.take_announced(job, waiters, &mut listener).await;
                }
            }
            continue;
        }
        // A new job or new tasks: re-read active jobs and wake the long-polls.
        app.wake.jobs_changed();
    }
}

/// `<job id> <pending count>`, as `CREATE_JOB` announces it.
fn announced(payload: &str) -> Option<(&str, usize)> {
    let (job, pending) = payload.split_once(' ')?;
    Some((job, pending.parse().ok()?))
}
