//! `App`: everything a site's components share, built once in `Site::build`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

use arc_swap::ArcSwap;
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::sync::Notify;

use crate::backpressure::BackPressure;
use crate::completer::CompleterHandle;
use crate::long_poll::RemoteWorkers;
use crate::registry::WorkerRegistry;
use meridian_config::RunMode;
use meridian_config::{ConfigLayers, SystemConfig};
use meridian_service::failpoints::Failpoints;
use meridian_service::health::Health;
use meridian_store::Store;

/// Wake-ups between components; each has a poll fallback, so a lost one costs latency only.
#[derive(Debug, Default)]
pub struct Wakeups {
    /// Free worker capacity or new pending tasks: the assigner should look again.
    pub assigner: Arc<Notify>,
    /// New progress records: the pipeliner should look again.
    pub pipeliner: Arc<Notify>,
    /// Tasks reached terminal states: a job may be finished.
    pub finisher: Arc<Notify>,
    /// The last task in flight on this node was reported: a job has most likely just
    /// finished, and the finisher cuts its pause short.
    pub drained: Arc<Notify>,
    /// Set when jobs were created, cancelled or finished: re-read the active jobs.
    pub jobs_changed: AtomicBool,
    /// Set when tasks became pending: ask the database even for jobs that had none.
    pub tasks_available: AtomicBool,
    /// Set when tasks became pending again below ids already read (retries, reaped
    /// leases): refills start over from the lowest id.
    pub tasks_requeued: AtomicBool,
}

impl Wakeups {
    /// Says new pending tasks exist and wakes the assigner.
    pub fn tasks_added(&self) {
        self.tasks_available.store(true, Ordering::Release);
        self.assigner.notify_one();
    }

    /// Says earlier tasks are pending again and wakes the assigner.
    pub fn tasks_requeued(&self) {
        self.tasks_requeued.store(true, Ordering::Release);
        self.tasks_added();
    }

    pub fn take_tasks_requeued(&self) -> bool {
        self.tasks_requeued.swap(false, Ordering::AcqRel)
    }

    /// Says the set of active jobs changed and wakes the assigner.
    pub fn jobs_changed(&self) {
        self.jobs_changed.store(true, Ordering::Release);
        self.tasks_available.store(true, Ordering::Release);
        self.assigner.notify_one();
    }

    pub fn take_jobs_changed(&self) -> bool {
        self.jobs_changed.swap(false, Ordering::AcqRel)
    }

    pub fn take_tasks_available(&self) -> bool {
        self.tasks_available.swap(false, Ordering::AcqRel)
    }
}

pub struct App {
    /// The site's persistent state; the only source of truth.
    pub store: Arc<dyn Store>,
    /// Current configuration; the config reloader swaps in live changes.
    pub config: ArcSwap<SystemConfig>,
    /// The file/environment/flag layers, kept to re-finalize on reload.
    pub layers: ConfigLayers,
    /// Which parts this process runs.
    pub mode: RunMode,
    /// `/health` component states.
    pub health: Health,
    /// In-process workers and their current tasks (`/workers`).
    pub workers: WorkerRegistry,
    /// `--mode orchestrator` only: leases for remote workers, their credentials and
    /// what they are doing. Unset in single-process mode (the worker API answers 404).
    pub remote: std::sync::OnceLock<Arc<RemoteWorkers>>,
    /// CPU sampling and the back-pressure switch.
    pub backpressure: BackPressure,
    /// Wake-ups between loops.
    pub wake: Wakeups,
    /// Group commit of task completions.
    pub completer: CompleterHandle,
    /// Tasks leased by this node and not yet reported (claimed, queued or running).
    pub in_flight: AtomicUsize,
    /// Moving average of how long a task takes to run, in microseconds (0: unknown);
    /// sizes the assigner's window.
    pub task_micros: AtomicU64,
    /// Renders `/metrics`.
    pub metrics: PrometheusHandle,
    /// Test failpoints; empty in production.
    pub failpoints: Failpoints,
    /// Unique per process start; prefixes worker ids so that a restarted process never
    /// inherits the leases of the one before.
    pub incarnation: String,
    /// Process start, for uptime.
    pub started: Instant,
    /// True once the API listens and until shutdown begins.
    pub ready: AtomicBool,
    /// True once shutdown begins: no new tasks are handed out.
    pub draining: AtomicBool,
}

impl App {
    /// The current configuration.
    pub fn cfg(&self) -> Arc<SystemConfig> {
        self.config.load_full()
    }

    /// Gives back `n` in-flight slots; the finisher hears when none is left.
    pub fn release_in_flight(&self, n: usize) {
        if self.in_flight.fetch_sub(n, Ordering::AcqRel) == n {
            self.wake.drained.notify_one();
        }
    }

    /// Folds one task's run time into `task_micros` (weight 1/8).
    pub fn record_task_time(&self, micros: u64) {
        let old = self.task_micros.load(Ordering::Relaxed);
        let new = if old == 0 {
            micros.max(1)
        } else {
            (old * 7 + micros) / 8
        }
        .max(1);
        self.task_micros.store(new, Ordering::Relaxed);
    }

    pub fn node_id(&self) -> String {
        self.config.load().node.id.clone()
    }
}

impl meridian_service::supervisor::LoopHost for App {
    fn health(&self) -> &Health {
        &self.health
    }

    fn failpoints(&self) -> &Failpoints {
        &self.failpoints
    }
}
