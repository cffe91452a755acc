//! Reports of in-process workers: straight into the engine, no HTTP in between.

use std::sync::Arc;

use async_trait::async_trait;
use meridian_config::SystemConfig;
use meridian_engine::app::App;
use meridian_engine::reports;
use meridian_wire::task::{
    Completion, DiscoveryBatch, FailOutcome, FailureKind, HeartbeatOutcome, Lease, ReportOutcome,
};
use meridian_worker::reporter::Reporter;

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
