//! The assigner: keeps up to `orchestrator.task_cache_size` pending task ids per
//! active job in memory, lets the fair-sharing policy choose which jobs get the free
//! worker slots and leases the chosen tasks in one statement ([`Assigner::lease`]).
//! In single-process mode its loop puts the work packets on the in-memory queue the
//! workers read; in `--mode orchestrator` the `get_task` handler calls `lease` for the
//! remote worker asking.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use async_trait::async_trait;
use meridian_wire::states::Phase;
use meridian_wire::time::rfc3339_from_millis;
use meridian_wire::{JobOptions, WorkPacket};
use tokio::sync::{Mutex, Notify};
use tokio::time::Instant;

use crate::app::App;
use crate::policy::{Candidate, FairShare};
use meridian_config::SystemConfig;
use meridian_service::health::component;
use meridian_service::supervisor::{BackgroundLoop, Tick};
use meridian_store::{ClaimedTask, JobRow, LeaseSpec, StoreResult};

/// How long a job whose cache came back empty is left alone before asking again,
/// unless a wake-up says new tasks exist.
const EMPTY_RETRY: Duration = Duration::from_millis(250);

/// How often the list of active jobs is re-read at most.
const JOBS_REFRESH: Duration = Duration::from_millis(200);

struct JobSlot {
    row: JobRow,
    options: JobOptions,
    cache: VecDeque<i64>,
    empty_since: Option<Instant>,
    /// Highest task id fetched so far; the next refill reads above it. Reset to 0 when
    /// a read comes back short, or when tasks may have become pending again below it
    /// (retries, reaped leases), so that no pending task is missed for long.
    cursor: i64,
}

#[derive(Default)]
struct State {
    jobs: Vec<JobSlot>,
    refreshed: Option<Instant>,
    fair: FairShare,
}

/// Queued work the window aims for, in microseconds of task time per worker.
const QUEUE_TARGET_MICROS: usize = 100_000;

pub struct Assigner {
    app: Arc<App>,
    queue: async_channel::Sender<WorkPacket>,
    /// Workers reading the queue.
    workers: usize,
    state: Mutex<State>,
}

impl Assigner {
    pub fn new(app: Arc<App>, queue: async_channel::Sender<WorkPacket>, workers: usize) -> Self {
        Assigner {
            app,
            queue,
            workers: workers.max(1),
            state: Mutex::new(State::default()),
        }
    }

    /// Most tasks in flight (queued, running or awaiting commit). Two per worker keeps
    /// every worker busy; short tasks get a deeper window, up to about 100 ms of queued
    /// work, so that claims and completions reach the database in large batches. Long
    /// tasks never sit leased in the queue for long, and a new job's tasks wait behind
    /// at most that much work.
    pub fn window(&self) -> usize {
        let floor = 2 * self.workers;
        let cap = floor.max(4 * self.app.cfg().orchestrator.task_cache_size as usize);
        match self.app.task_micros.load(Ordering::Relaxed) as usize {
            0 => floor,
            avg => (self.workers * QUEUE_TARGET_MICROS / avg).clamp(floor, cap),
        }
    }

    async fn refresh_jobs(&self, st: &mut State) -> StoreResult<()> {
        let fresh = st.refreshed.is_some_and(|t| t.elapsed() < JOBS_REFRESH);
        if fresh && !self.app.wake.take_jobs_changed() {
            return Ok(());
        }
        let rows = self.app.store.active_jobs().await?;
        let mut old: HashMap<String, JobSlot> =
            st.jobs.drain(..).map(|j| (j.row.id.clone(), j)).collect();
        st.jobs = rows
            .into_iter()
            .filter(|r| r.state != "CANCELLING")
            .map(|row| match old.remove(&row.id) {
                Some(mut slot) => {
                    slot.row = row;
                    slot
                }
                None => JobSlot {
                    options: serde_json::from_str(&row.options).unwrap_or_default(),
                    row,
                    cache: VecDeque::new(),
                    empty_since: None,
                    cursor: 0,
                },
            })
            .collect();
        st.refreshed = Some(Instant::now());
        Ok(())
    }

    async fn refill(&self, st: &mut State) -> StoreResult<()> {
        let new_tasks = self.app.wake.take_tasks_available();
        let requeued = self.app.wake.take_tasks_requeued();
        let cache_size = i64::from(self.app.cfg().orchestrator.task_cache_size);
        let mut due = Vec::new();
        for (i, slot) in st.jobs.iter_mut().enumerate() {
            if !slot.cache.is_empty()
                || (!new_tasks && slot.empty_since.is_some_and(|t| t.elapsed() < EMPTY_RETRY))
            {
                continue;
            }
            if requeued {
                slot.cursor = 0;
            }
            due.push(i);
        }
        // The reads go out together (one round trip of latency, not one per job): a
        // wake-up after a new job typically finds several recent jobs with empty caches.
        let store = &self.app.store;
        let reads = due.iter().map(|&i| {
            let slot = &st.jobs[i];
            store.pending_task_ids(&slot.row.id, slot.cursor, cache_size)
        });
        let results = futures::future::join_all(reads).await;
        for (i, ids) in due.into_iter().zip(results) {
            let ids = ids?;
            let slot = &mut st.jobs[i];
            let short = (ids.len() as i64) < cache_size;
            slot.empty_since = if ids.is_empty() && slot.cursor == 0 {
                Some(Instant::now())
            } else {
                None
            };
            slot.cursor = if short {
                0
            } else {
                ids.last().copied().unwrap_or(0)
            };
            slot.cache.extend(ids);
        }
        Ok(())
    }

    /// Leases up to `free` pending tasks to `lease.worker_id`, shared between the
    /// active jobs by the fair-sharing policy, in one claim statement. Tasks another
    /// replica took meanwhile are skipped (`SKIP LOCKED`); the answer may be short.
    pub async fn lease(&self, free: usize, lease: &LeaseSpec) -> StoreResult<Vec<WorkPacket>> {
        if free == 0 {
            return Ok(Vec::new());
        }
        let mut guard = self.state.lock().await;
        let st = &mut *guard;
        self.refresh_jobs(st).await?;
        let policy = self.app.cfg().orchestrator.fair_sharing_policy;
        // A window wider than the caches is filled in a few rounds of refill and pick,
        // so that it still goes to the database as one claim.
        let mut picked = Vec::new();
        for _ in 0..4 {
            self.refill(st).await?;
            let mut candidates: Vec<Candidate<'_>> = st
                .jobs
                .iter_mut()
                .map(|s| Candidate {
                    job_id: &s.row.id,
                    weight: s.row.priority,
                    cache: &mut s.cache,
                })
                .collect();
            let round = st.fair.pick(policy, &mut candidates, free - picked.len());
            drop(candidates);
            let exhausted = round.is_empty();
            picked.extend(round);
            if exhausted || picked.len() >= free {
                break;
            }
        }
        if picked.is_empty() {
            return Ok(Vec::new());
        }
        let started = Instant::now();
        let claimed = self.app.store.claim(&picked, lease).await?;
        metrics::histogram!("meridian_claim_seconds").record(started.elapsed().as_secs_f64());
        metrics::counter!("meridian_tasks_claimed_total").increment(claimed.len() as u64);
        if claimed.len() < picked.len() {
            metrics::counter!("meridian_claims_skipped_total")
                .increment((picked.len() - claimed.len()) as u64);
        }
        Ok(claimed
            .into_iter()
            .map(|task| {
                let slot = st.jobs.iter().find(|s| s.row.id == task.job_id);
                self.packet(task, slot)
            })
            .collect())
    }

    fn packet(&self, task: ClaimedTask, slot: Option<&JobSlot>) -> WorkPacket {
        let options = slot.map(|s| s.options.clone()).unwrap_or_default();
        let trace_id = slot.and_then(|s| s.row.trace_id.clone());
        work_packet(&self.app.cfg(), task, options, trace_id)
    }
}

/// The work packet for a task just leased.
pub fn work_packet(
    cfg: &SystemConfig,
    task: ClaimedTask,
    options: JobOptions,
    trace_id: Option<String>,
) -> WorkPacket {
    let data_source = cfg
        .data_source(&task.data_source_id)
        .and_then(|d| serde_json::to_value(d).ok())
        .unwrap_or(serde_json::Value::Null);
    WorkPacket {
        task_id: task.id,
        lease_token: task.lease_token,
        job_id: task.job_id,
        phase: task.phase.parse().unwrap_or(Phase::Process),
        attempt: task.attempts as u32,
        data_source,
        options,
        payload: serde_json::from_str(&task.payload).unwrap_or(serde_json::Value::Null),
        lease_expires_at: rfc3339_from_millis(task.lease_expires_at),
        heartbeat_interval_seconds: cfg.worker.heartbeat_interval_seconds,
        trace_id,
    }
}

#[async_trait]
impl BackgroundLoop for Assigner {
    fn name(&self) -> &'static str {
        component::ASSIGNER
    }

    fn interval(&self) -> Duration {
        Duration::from_millis(250)
    }

    fn wake(&self) -> Option<Arc<Notify>> {
        Some(self.app.wake.assigner.clone())
    }

    async fn tick(&self) -> anyhow::Result<Tick> {
        if self.app.draining.load(Ordering::Relaxed) || self.app.backpressure.active() {
            return Ok(Tick::Idle);
        }
        let in_flight = self.app.in_flight.load(Ordering::Acquire);
        let window = self.window();
        let free = window.saturating_sub(in_flight);
        // Claim in batches: wait for a quarter of the window to free up, unless the
        // workers are about to run dry.
        if free == 0 || (free < window / 4 && self.queue.len() >= self.workers) {
            return Ok(Tick::Idle);
        }
        let cfg = self.app.cfg();
        let lease = LeaseSpec {
            worker_id: format!("{}/{}", cfg.node.id, self.app.incarnation),
            node: cfg.node.id.clone(),
            lease_ms: (cfg.worker.task_timeout_seconds * 1000) as i64,
        };
        // Counted in flight before the claim so that the completer never sees fewer
        // tasks in flight than are committing; the unclaimed rest is given back.
        self.app.in_flight.fetch_add(free, Ordering::AcqRel);
        let packets = match self.lease(free, &lease).await {
            Ok(p) => p,
            Err(e) => {
                self.app.in_flight.fetch_sub(free, Ordering::AcqRel);
                return Err(e.into());
            }
        };
        self.app
            .in_flight
            .fetch_sub(free - packets.len(), Ordering::AcqRel);
        if packets.is_empty() {
            return Ok(Tick::Idle);
        }
        for packet in packets {
            if self.queue.send(packet).await.is_err() {
                // The pool is gone (shutdown): the lease goes back with the node's leases.
                self.app.in_flight.fetch_sub(1, Ordering::AcqRel);
            }
        }
        Ok(Tick::Worked)
    }
}
