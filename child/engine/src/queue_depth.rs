//! Queue depth for `/metrics`: read from the database when `/metrics` is scraped, so
//! it is exact and costs nothing between scrapes.

use meridian_db::StoreError;

use crate::app::App;

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
