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
//!
//! **Hand-off at creation.** While it waits, a long-poll also queues itself in
//! `waiting`. A job started on this replica takes the longest-waiting long-polls off
//! that queue and leases its first tasks to them inside the transaction that creates
//! the job ([`Store::create_job_handing_off`]); each waiter gets its packets right
//! after that one commit instead of waking up and claiming in a second transaction.
//! The lease is an ordinary one (fresh token, `lease_history` row from the same
//! trigger); a packet whose long-poll has gone meanwhile is handed back at once.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use meridian_wire::JobOptions;
use meridian_wire::time::{now_ms, rfc3339_from_millis};
use meridian_wire::{WorkPacket, WorkerInfo};
use tokio::sync::{Notify, oneshot};
use tokio::time::Instant;

use crate::app::App;
use crate::assigner::{Assigner, work_packet};
use crate::reports;
use meridian_service::health::component;
use meridian_service::supervisor::{BackgroundLoop, Tick};
use meridian_service::worker_token::Verifier;
use meridian_store::{
    ClaimedTask, CreateOutcome, HandOff, JobContext, Lease, LeaseSpec, NewJob, StoreError,
    StoreResult, TaskListener,
};
use meridian_wire::task::FailureKind;

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

/// A long-poll waiting for work, offered to jobs started on this replica and to jobs
/// other replicas announce.
pub struct Waiter {
    key: u64,
    /// When its long-poll began: a waiter re-queues after each poll fallback, and
    /// the longest-waiting long-poll goes first whatever its place in the queue.
    since: Instant,
    worker_id: String,
    max: usize,
    lease: LeaseSpec,
    /// Gets the packets leased to it at creation (possibly none: look again).
    reply: oneshot::Sender<Vec<WorkPacket>>,
}

/// Takes a waiter out of the queue when its long-poll stops waiting, however it stops.
struct Queued<'a> {
    remote: &'a RemoteWorkers,
    key: u64,
}

impl Drop for Queued<'_> {
    fn drop(&mut self) {
        self.remote.leave(self.key);
    }
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
    /// Long-polls waiting right now, longest-waiting first.
    waiting: Mutex<VecDeque<Waiter>>,
    next_key: AtomicU64,
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
            waiting: Mutex::new(VecDeque::new()),
            next_key: AtomicU64::new(0),
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
            // restarts must not hand back leases its workers still hold. The holder is
            // namespaced (`worker:` + id; a node id has no `:`), so a worker that
            // names itself after a replica cannot have its leases taken for that
            // replica's when the replica starts up and releases its own.
            node: format!("worker:{worker_id}"),
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
            // Wait in the queue, so that a job started here meanwhile hands us its
            // first tasks in its own transaction.
            let (queued, mut reply) = self.queue(started, worker_id, max, &lease);
            let answer = tokio::select! {
                packets = &mut reply => Some(packets),
                _ = &mut notified => None,
                _ = tokio::time::sleep(nap) => None,
            };
            let answer = match answer {
                // A job start took us off the queue: its answer comes right after its
                // commit (empty if it failed). Claiming now as well would lease this
                // worker more than it asked for.
                None if !self.leave(queued.key) => Some(reply.await),
                other => other,
            };
            drop(queued);
            if let Some(packets) = answer.and_then(|a| self.handed(started, a)) {
                return Ok(packets);
            }
        }
    }

    fn handed(
        &self,
        started: Instant,
        packets: Result<Vec<WorkPacket>, oneshot::error::RecvError>,
    ) -> Option<Vec<WorkPacket>> {
        let packets = packets.ok().filter(|p| !p.is_empty())?;
        metrics::histogram!("meridian_long_poll_wait_seconds")
            .record(started.elapsed().as_secs_f64());
        Some(packets)
    }

    fn queue(
        &self,
        since: Instant,
        worker_id: &str,
        max: usize,
        lease: &LeaseSpec,
    ) -> (Queued<'_>, oneshot::Receiver<Vec<WorkPacket>>) {
        let key = self.next_key.fetch_add(1, Ordering::Relaxed);
        let (reply, rx) = oneshot::channel();
        self.waiting
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push_back(Waiter {
                key,
                since,
                worker_id: worker_id.to_owned(),
                max,
                lease: lease.clone(),
                reply,
            });
        (Queued { remote: self, key }, rx)
    }

    /// Takes `key` off the queue; false when a job start already took it.
    fn leave(&self, key: u64) -> bool {
        let mut waiting = self.waiting.lock().unwrap_or_else(|e| e.into_inner());
        match waiting.iter().position(|w| w.key == key) {
            Some(i) => {
                waiting.remove(i);
                true
            }
            None => false,
        }
    }

    /// Creates a job and leases its first tasks to the long-polls waiting on this
    /// replica, longest-waiting first, in the creating transaction; answers them right
    /// after the commit. Nothing is handed off while draining or under back-pressure.
    ///
    /// Runs as a task of its own, so that a `start_job` whose client goes away cannot
    /// stop it between the commit and the answers. Also returns how many tasks were
    /// handed off.
    pub async fn create_job(self: &Arc<Self>, job: NewJob) -> StoreResult<(CreateOutcome, i64)> {
        let me = self.clone();
        tokio::spawn(async move { me.create_job_here(&job).await })
            .await
            .map_err(|e| StoreError::Internal(format!("job creation task: {e}")))?
    }

    async fn create_job_here(&self, job: &NewJob) -> StoreResult<(CreateOutcome, i64)> {
        let waiters = self.take_waiters(job.data_sources.len());
        if waiters.is_empty() {
            return Ok((self.app.store.create_job(job).await?, 0));
        }
        let to = hand_offs(&waiters);
        // On an error the waiters are dropped with their senders: they look again.
        let (outcome, handed) = self.app.store.create_job_handing_off(job, &to).await?;
        let count = handed.len() as i64;
        let context = JobContext {
            options: job.options.clone(),
            trace_id: Some(job.trace_id.clone()),
        };
        self.answer(waiters, handed, &context).await;
        Ok((outcome, count))
    }

    /// Another replica created job `job_id` with tasks it could not hand off itself (its
    /// `LISTEN` announcement): `waiters`, taken off the queue here, lease them in one
    /// statement, longest-waiting first, rather than each refreshing its view of every
    /// job first. Fair sharing is not bypassed in any way that matters: these workers
    /// were idle, so no other job had tasks for them at their last look.
    /// The statement runs on `listener`'s own connection.
    pub async fn take_announced(
        &self,
        job_id: &str,
        waiters: Vec<Waiter>,
        listener: &mut dyn TaskListener,
    ) {
        let to = hand_offs(&waiters);
        match listener.hand_off_pending(job_id, &to).await {
            Ok((job, handed)) => self.answer(waiters, handed, &job).await,
            // The waiters are dropped with their senders: they look again.
            Err(e) => tracing::warn!("job {job_id}: announced tasks not taken ({e})"),
        }
    }

    /// Up to `n` waiting long-polls, longest-waiting first, off the queue; none while
    /// draining or under back-pressure.
    pub fn take_waiters(&self, n: usize) -> Vec<Waiter> {
        if self.app.draining.load(Ordering::Relaxed) || self.app.backpressure.active() {
            return Vec::new();
        }
        let mut waiting = self.waiting.lock().unwrap_or_else(|e| e.into_inner());
        waiting.retain(|w| !w.reply.is_closed());
        let n = n.min(waiting.len());
        waiting.make_contiguous().sort_by_key(|w| w.since);
        waiting.drain(..n).collect()
    }

    /// Answers each waiter with the tasks leased to it (possibly none: it looks again);
    /// a lease whose long-poll has gone is handed back at once.
    async fn answer(
        &self,
        waiters: Vec<Waiter>,
        handed: Vec<(usize, ClaimedTask)>,
        job: &JobContext,
    ) {
        metrics::counter!("meridian_tasks_claimed_total").increment(handed.len() as u64);
        metrics::counter!("meridian_tasks_handed_off_total").increment(handed.len() as u64);
        let cfg = self.app.cfg();
        let options: JobOptions = serde_json::from_str(&job.options).unwrap_or_default();
        let mut per: Vec<Vec<WorkPacket>> = waiters.iter().map(|_| Vec::new()).collect();
        for (i, task) in handed {
            if let Some(p) = per.get_mut(i) {
                p.push(work_packet(
                    &cfg,
                    task,
                    options.clone(),
                    job.trace_id.clone(),
                ));
            }
        }
        for (w, packets) in waiters.into_iter().zip(per) {
            // Test failpoint: the long-poll went away between its hand-off and its
            // answer (a race too narrow to hit from outside). Its leases go back; the
            // dropped waiter's long-poll, if still there, looks again.
            if !packets.is_empty() && self.app.failpoints.hit("hand_off.long_poll_gone").is_some() {
                hand_back(&self.app, packets).await;
                continue;
            }
            let ids: Vec<i64> = packets.iter().map(|p| p.task_id).collect();
            match w.reply.send(packets) {
                Ok(()) => self.track(&w.worker_id, ids.into_iter(), &[]),
                // In a task of its own: the listener answers announced hand-offs
                // inline and must not wait on the pool.
                Err(lost) => {
                    let app = self.app.clone();
                    tokio::spawn(async move { hand_back(&app, lost).await });
                }
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

/// Leases whose long-poll went away before its answer: back to `PENDING` now rather
/// than after the lease timeout.
async fn hand_back(app: &App, packets: Vec<WorkPacket>) {
    for p in packets {
        let lease = Lease {
            task_id: p.task_id,
            lease_token: p.lease_token,
        };
        let why = "handed off at creation to a long-poll that had gone";
        if let Err(e) = reports::failed(app, &lease, 1, why, FailureKind::Cancelled).await {
            tracing::warn!(
                "task {}: could not hand back ({e}); the reaper will",
                p.task_id
            );
        }
    }
}

fn hand_offs(waiters: &[Waiter]) -> Vec<HandOff> {
    waiters
        .iter()
        .map(|w| HandOff {
            lease: w.lease.clone(),
            max: w.max,
        })
        .collect()
}

/// Relays the assigner's wake-ups (new tasks created on this replica) to waiting
/// long-polls: each tick rings the bell. The wake-up is registered before the tick,
/// so one that arrives while the bell rings is not lost.
pub struct Relay {
    pub app: Arc<App>,
    pub remote: Arc<RemoteWorkers>,
}

#[async_trait]
impl BackgroundLoop for Relay {
    fn name(&self) -> &'static str {
        component::RELAY
    }

    /// A tick after this long without a wake-up rings the bell needlessly: each
    /// waiting long-poll asks once more, which its own fallback does far more often.
    fn interval(&self) -> Duration {
        Duration::from_secs(60)
    }

    fn wake(&self) -> Option<Arc<Notify>> {
        Some(self.app.wake.assigner.clone())
    }

    async fn tick(&self) -> anyhow::Result<Tick> {
        self.remote.bell.notify_waiters();
        Ok(Tick::Idle)
    }
}
