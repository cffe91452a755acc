//! The finisher: moves a job to `COMPLETED`, `FAILED` or `CANCELLED` once discovery
//! is done, every task is terminal and no progress record waits for the pipeliner.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tokio::sync::Notify;

use crate::app::App;
use meridian_service::health::component;
use meridian_service::supervisor::{BackgroundLoop, Tick};

/// Bounds of the pause after a pass.
const MIN_PAUSE: Duration = Duration::from_millis(20);
const MAX_PAUSE: Duration = Duration::from_millis(250);

pub struct Finisher {
    pub app: Arc<App>,
}

#[async_trait]
impl BackgroundLoop for Finisher {
    fn name(&self) -> &'static str {
        component::FINISHER
    }

    fn interval(&self) -> Duration {
        Duration::from_secs(1)
    }

    fn wake(&self) -> Option<Arc<Notify>> {
        Some(self.app.wake.finisher.clone())
    }

    async fn tick(&self) -> anyhow::Result<Tick> {
        let threshold = self.app.cfg().job.failure_threshold_percent;
        let started = Instant::now();
        let finished = self.app.store.finish_jobs(threshold).await?;
        for job in &finished {
            metrics::counter!("meridian_jobs_finished_total", "state" => job.state.as_str())
                .increment(1);
            tracing::info!(job.id = %job.id, state = %job.state, "job {} finished: {}", job.id, job.state);
        }
        if !finished.is_empty() {
            self.app.wake.jobs_changed();
        }
        // Completions arrive in bursts, each with a wake-up; pausing lets one pass cover
        // many. Its query walks the active jobs' task indexes, which is not free on a
        // busy queue: the pause is ten times what the pass took, between 20 and 250 ms
        // (at most 50 passes a second while tasks stay in flight). A pass waits behind
        // the completer's commits on a busy site, so the pause is often the longest;
        // when the node's last task in flight is reported (the moment a job finishes)
        // the pause ends at once, else a finished job showed RUNNING for up to 250 ms
        // more. The wake-up is a hint: a drain that overlaps an assigner's claim is not
        // seen (the pause runs out), and one stored while no pause waits cuts the next
        // pause short (one early pass).
        let pause = (started.elapsed() * 10).clamp(MIN_PAUSE, MAX_PAUSE);
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = self.app.wake.drained.notified() => {}
        }
        Ok(Tick::Idle)
    }
}
