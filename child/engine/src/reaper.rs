//! The reaper: every `orchestrator.reaper_interval_seconds` it returns tasks whose
//! lease expired to `PENDING`, or fails those out of attempts. The state check is in
//! the same statement, so a task that completes between scan and update stays done.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::app::App;
use meridian_service::health::component;
use meridian_service::supervisor::{BackgroundLoop, Tick};

/// Most tasks reaped per statement; a larger backlog takes several ticks back to back.
pub const REAP_BATCH: i64 = 1000;

pub struct Reaper {
    pub app: Arc<App>,
}

#[async_trait]
impl BackgroundLoop for Reaper {
    fn name(&self) -> &'static str {
        component::REAPER
    }

    fn interval(&self) -> Duration {
        Duration::from_secs(self.app.cfg().orchestrator.reaper_interval_seconds)
    }

    async fn tick(&self) -> anyhow::Result<Tick> {
        let max_retries = self.app.cfg().worker.max_retries;
        let counts = self.app.store.reap_expired(REAP_BATCH, max_retries).await?;
        let total = counts.requeued + counts.failed;
        if total == 0 {
            return Ok(Tick::Idle);
        }
        metrics::counter!("meridian_lease_expiries_total").increment(total);
        tracing::info!(
            requeued = counts.requeued,
            failed = counts.failed,
            "reaped {total} expired leases: {} back to PENDING, {} out of attempts",
            counts.requeued,
            counts.failed
        );
        self.app.wake.tasks_requeued();
        self.app.wake.finisher.notify_one();
        Ok(if total as i64 >= REAP_BATCH {
            Tick::Worked
        } else {
            Tick::Idle
        })
    }
}
