//! Remote workers (`--mode orchestrator`): hands leases to workers long-polling
//! `get_task`, and remembers which workers asked (`/workers`).
//!
//! A long-poll waits on `bell`, rung whenever this replica learns of new pending
//! tasks: at once for tasks this replica created (job start, pipeliner, retries,
//! reaps all wake the assigner's `Notify`, relayed here), and through PostgreSQL
//! `LISTEN meridian_tasks` (see `engine::listen`) for tasks another replica created.
//! A waiter also re-checks every `POLL_FALLBACK`, so a lost notification costs
//! latency only. Interest is registered before the database is asked, so a wake-up
//! between the query and the wait is not lost.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use meridian_shared::time::rfc3339_from_millis;
use meridian_shared::wire::{WorkPacket, WorkerInfo};
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::app::App;
use crate::engine::assigner::Assigner;
use crate::protocol::token::Verifier;
use crate::store::{LeaseSpec, StoreResult};

/// How often a waiting `get_task` asks the database even without a wake-up.
pub const POLL_FALLBACK: Duration = Duration::from_millis(500);

/// A remote worker as this replica last saw it.
#[derive(Debug, Clone)]
struct Seen {
    slots: u32,
    first_ms: i64,
    last_ms: i64,
    tasks: Vec<i64>,
}

/// Everything the worker API needs besides the store.
pub struct RemoteWorkers {
    app: Arc<App>,
    assigner: Assigner,
    /// Rung when new pending tasks may exist; waiters re-check.
    pub bell: Notify,
    /// Checks worker credentials.
    pub verifier: Verifier,
    seen: Mutex<BTreeMap<String, Seen>>,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl RemoteWorkers {
    pub fn new(app: Arc<App>, verifier: Verifier) -> RemoteWorkers {
        // The assigner's own loop does not run in this mode; its queue is never read.
        let (queue, _) = async_channel::bounded(1);
        RemoteWorkers {
            assigner: Assigner::new(app.clone(), queue, 1),
            app,
            bell: Notify::new(),
            verifier,
            seen: Mutex::new(BTreeMap::new()),
        }
    }

    /// Leases up to `max` tasks to `worker_id`, waiting up to `wait` for some to exist.
    /// Empty after the wait, or at once when the site is draining or under
    /// back-pressure (the worker asks again).
    pub async fn get_tasks(
        &self,
        worker_id: &str,
        max: usize,
        wait: Duration,
    ) -> StoreResult<Vec<WorkPacket>> {
        let started = Instant::now();
        let deadline = started + wait;
        let lease = LeaseSpec {
            worker_id: worker_id.to_owned(),
            // Remote leases belong to the worker, not to this replica: a replica that
            // restarts must not hand back leases its workers still hold.
            node: worker_id.to_owned(),
            lease_ms: (self.app.cfg().worker.task_timeout_seconds * 1000) as i64,
        };
        loop {
            let notified = self.bell.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.app.draining.load(std::sync::atomic::Ordering::Relaxed) {
                // Shutting down: answer now so the worker moves to another replica.
                return Ok(Vec::new());
            }
            if !self.app.backpressure.active() {
                let packets = self.assigner.lease(max, &lease).await?;
                if !packets.is_empty() {
                    metrics::histogram!("meridian_long_poll_wait_seconds")
                        .record(started.elapsed().as_secs_f64());
                    self.track(worker_id, packets.iter().map(|p| p.task_id), &[]);
                    return Ok(packets);
                }
            }
            let now = Instant::now();
            if now >= deadline {
                metrics::counter!("meridian_long_poll_empty_total").increment(1);
                return Ok(Vec::new());
            }
            let nap = (deadline - now).min(POLL_FALLBACK);
            tokio::select! {
                _ = &mut notified => {}
                _ = tokio::time::sleep(nap) => {}
            }
        }
    }

    /// Records that `worker_id` asked for work with `slots` slots.
    pub fn saw(&self, worker_id: &str, slots: u32) {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        let now = now_ms();
        let e = seen.entry(worker_id.to_owned()).or_insert(Seen {
            slots,
            first_ms: now,
            last_ms: now,
            tasks: Vec::new(),
        });
        e.slots = slots;
        e.last_ms = now;
    }

    /// Adds `started` to and removes `ended` from the worker's current tasks.
    pub fn track(&self, worker_id: &str, started: impl Iterator<Item = i64>, ended: &[i64]) {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(e) = seen.get_mut(worker_id) {
            e.last_ms = now_ms();
            e.tasks.extend(started);
            e.tasks.retain(|t| !ended.contains(t));
        }
    }

    /// Workers heard from within the lease timeout, most recent first. Each replica
    /// knows the workers that talked to it; behind a load balancer every worker
    /// reaches every replica within a few polls.
    pub fn list(&self) -> Vec<WorkerInfo> {
        let horizon = now_ms() - (self.app.cfg().worker.task_timeout_seconds * 1000) as i64;
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        seen.retain(|_, e| e.last_ms >= horizon);
        seen.iter()
            .map(|(id, e)| WorkerInfo {
                worker_id: id.clone(),
                kind: "remote".into(),
                slots: e.slots,
                started_at: rfc3339_from_millis(e.first_ms),
                last_heartbeat_at: Some(rfc3339_from_millis(e.last_ms)),
                current_tasks: e.tasks.clone(),
            })
            .collect()
    }
}

/// Relays the assigner's wake-ups (new tasks created on this replica) to waiting
/// long-polls.
pub async fn relay(app: Arc<App>, remote: Arc<RemoteWorkers>, stop: CancellationToken) {
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = app.wake.assigner.notified() => remote.bell.notify_waiters(),
        }
    }
}
