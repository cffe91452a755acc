//! Prometheus metrics. Counters are recorded where things happen (`metrics` macros);
//! queue depth is read from the database when `/metrics` is scraped, so it is exact
//! and costs nothing between scrapes.

use std::sync::OnceLock;
use std::time::Duration;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use metrics_util::MetricKindMask;

use crate::app::App;
use crate::store::StoreError;

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process-wide recorder, installed on first use. Several sites in one test
/// process share it.
pub fn handle() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                // Gauges of finished jobs disappear a minute after their last update.
                .idle_timeout(MetricKindMask::GAUGE, Some(Duration::from_secs(60)))
                .build_recorder();
            let handle = recorder.handle();
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}

/// Sets `meridian_queue_depth{job_id, phase, state}` and
/// `meridian_stalled_tasks{job_id}` for every active job.
pub async fn refresh_queue_depth(app: &App) -> Result<(), StoreError> {
    let stalled_ms = (app.cfg().orchestrator.stalled_task_seconds * 1000) as i64;
    for job in app.store.active_jobs().await? {
        let counts = app.store.job_counts(&job.id, stalled_ms).await?;
        metrics::gauge!("meridian_stalled_tasks", "job_id" => job.id.clone())
            .set(counts.stalled_tasks as f64);
        for (phase, state, n) in counts.tasks {
            if state == "PENDING" || state == "RUNNING" {
                metrics::gauge!("meridian_queue_depth", "job_id" => job.id.clone(), "phase" => phase, "state" => state)
                    .set(n as f64);
            }
        }
    }
    Ok(())
}
