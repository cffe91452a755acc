//! The pipeliner: turns unprocessed progress records (discovered batches) into
//! `PROCESS` tasks, exactly once. This version writes a batch's tasks with its objects
//! (`Store::record_discovery`) and its records processed; the pipeliner is there for
//! records an older version wrote during a rolling upgrade, and looks once a second.
//! Marking a record processed and inserting its tasks is one transaction, and tasks
//! are unique per (job, object), so neither a crash nor a second replica can create a
//! task twice.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::Notify;

use crate::app::App;
use meridian_service::health::component;
use meridian_service::supervisor::{BackgroundLoop, Tick};

/// Records per transaction.
const RECORDS_PER_PASS: i64 = 64;

pub struct Pipeliner {
    pub app: Arc<App>,
}

#[async_trait]
impl BackgroundLoop for Pipeliner {
    fn name(&self) -> &'static str {
        component::PIPELINER
    }

    fn interval(&self) -> Duration {
        Duration::from_secs(1)
    }

    fn wake(&self) -> Option<Arc<Notify>> {
        Some(self.app.wake.pipeliner.clone())
    }

    async fn tick(&self) -> anyhow::Result<Tick> {
        let counts = self.app.store.pipeline(RECORDS_PER_PASS).await?;
        if counts.records == 0 {
            return Ok(Tick::Idle);
        }
        metrics::counter!("meridian_tasks_created_total", "phase" => "PROCESS")
            .increment(counts.tasks_created);
        tracing::debug!(
            records = counts.records,
            tasks = counts.tasks_created,
            "pipelined progress records"
        );
        self.app.wake.tasks_added();
        self.app.wake.finisher.notify_one();
        Ok(Tick::Worked)
    }
}
