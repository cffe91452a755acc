//! Where a running task reports: the same runner serves both worker kinds. The
//! site's in-process workers call the engine directly; remote workers send the same
//! reports over HTTP ([`crate::remote`]).

use std::sync::Arc;

use async_trait::async_trait;
use meridian_config::SystemConfig;
use meridian_wire::task::{
    Completion, DiscoveryBatch, FailOutcome, FailureKind, HeartbeatOutcome, Lease, ReportOutcome,
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
