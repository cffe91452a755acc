//! Where a running task reports: the same runner serves both worker kinds. In-process
//! workers call the engine directly ([`InProcess`]); remote workers send the same
//! reports over HTTP (`worker::remote`).

use std::sync::Arc;

use async_trait::async_trait;

use crate::app::App;
use crate::config::SystemConfig;
use crate::engine::reports::{self, FailureKind};
use crate::store::{
    Completion, DiscoveryBatch, FailOutcome, HeartbeatOutcome, Lease, ReportOutcome,
};

#[async_trait]
pub trait Reporter: Send + Sync + 'static {
    /// The configuration the worker runs with (the site's, or a remote worker's file).
    fn cfg(&self) -> Arc<SystemConfig>;

    /// Extends the lease, or says it is lost or the job is being cancelled.
    async fn heartbeat(&self, lease: &Lease) -> anyhow::Result<HeartbeatOutcome>;

    /// Records one discovered batch with its progress record.
    async fn discovered(
        &self,
        lease: &Lease,
        batch: &DiscoveryBatch,
    ) -> anyhow::Result<ReportOutcome>;

    /// Fails (or, with `FailureKind::Cancelled`, hands back) the task.
    async fn failed(
        &self,
        lease: &Lease,
        attempt: u32,
        error: &str,
        kind: FailureKind,
    ) -> anyhow::Result<FailOutcome>;

    /// Queues a completion for group commit; the task's slot is given back once it commits.
    fn complete(&self, completion: Completion);

    /// The task ended without a completion: its slot is free again.
    fn released(&self);

    /// The task was interrupted by shutdown.
    async fn interrupted(&self, lease: &Lease, attempt: u32);

    /// How long the task ran, in microseconds.
    fn task_time(&self, _micros: u64) {}

    /// A heartbeat of `worker_id` was accepted.
    fn heartbeat_ok(&self, _worker_id: &str) {}

    /// Whether the test failpoint `name` fires now (in-process workers only).
    fn failpoint(&self, _name: &str) -> bool {
        false
    }

    /// Objects per discovered batch (`connector.discovery_batch_write_size`).
    fn discovery_batch_size(&self) -> usize {
        self.cfg().connector.discovery_batch_write_size as usize
    }
}

/// Reports of in-process workers: straight into the engine.
pub struct InProcess {
    pub app: Arc<App>,
}

#[async_trait]
impl Reporter for InProcess {
    fn cfg(&self) -> Arc<SystemConfig> {
        self.app.cfg()
    }

    async fn heartbeat(&self, lease: &Lease) -> anyhow::Result<HeartbeatOutcome> {
        Ok(reports::heartbeat(&self.app, lease).await?)
    }

    async fn discovered(
        &self,
        lease: &Lease,
        batch: &DiscoveryBatch,
    ) -> anyhow::Result<ReportOutcome> {
        Ok(reports::discovered(&self.app, lease, batch).await?)
    }

    async fn failed(
        &self,
        lease: &Lease,
        attempt: u32,
        error: &str,
        kind: FailureKind,
    ) -> anyhow::Result<FailOutcome> {
        Ok(reports::failed(&self.app, lease, attempt, error, kind).await?)
    }

    fn complete(&self, completion: Completion) {
        self.app.completer.submit(completion);
    }

    fn released(&self) {
        self.app.release_in_flight(1);
        self.app.wake.assigner.notify_one();
    }

    /// Left leased: the site hands back the node's leases when it stops.
    async fn interrupted(&self, _lease: &Lease, _attempt: u32) {}

    fn task_time(&self, micros: u64) {
        self.app.record_task_time(micros);
    }

    fn heartbeat_ok(&self, worker_id: &str) {
        self.app.workers.heartbeat(worker_id);
    }

    fn failpoint(&self, name: &str) -> bool {
        self.app.failpoints.hit(name).is_some()
    }
}
