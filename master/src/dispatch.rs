//! Dispatch: `POST /start_job` for every site-job the site does not hold yet, with
//! the master's job id as the child's `job_id`. The child is idempotent on that id,
//! so an attempt whose answer was lost is simply made again and finds the job; the
//! poller also confirms a dispatch when the job shows up in the site's statuses.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use meridian_service::backoff::Backoff;
use meridian_service::supervisor::{BackgroundLoop, Tick};
use meridian_wire::{JobStatus, StartJobRequest};
use tokio::sync::Notify;

use crate::app::{SharedMaster, component};
use crate::site_reply::{self, SiteReply, with_trace};
use crate::store::{DispatchState, SiteJobRow, StoreError};
use meridian_wire::time::now_ms;

/// Fallback when idle: a create wakes the dispatcher at once through its `Notify`.
const IDLE_POLL: Duration = Duration::from_millis(250);

/// The dispatcher loop: one tick sends every dispatch that is due.
pub struct Dispatcher {
    pub m: SharedMaster,
}

#[async_trait]
impl BackgroundLoop for Dispatcher {
    fn name(&self) -> &'static str {
        component::DISPATCHER
    }

    fn interval(&self) -> Duration {
        IDLE_POLL
    }

    fn wake(&self) -> Option<Arc<Notify>> {
        Some(self.m.wake_dispatcher.clone())
    }

    async fn tick(&self) -> anyhow::Result<Tick> {
        round(&self.m).await?;
        Ok(Tick::Idle)
    }
}

fn backoff(m: &SharedMaster) -> Backoff {
    Backoff::new(
        Duration::from_millis(500),
        Duration::from_secs_f64(m.cfg.master.retry_backoff_max_seconds),
    )
}

async fn round(m: &SharedMaster) -> Result<(), StoreError> {
    loop {
        let due = m.store.due_dispatches(now_ms(), 64).await?;
        if due.is_empty() {
            return Ok(());
        }
        let results: Vec<Result<(), StoreError>> = futures::stream::iter(due)
            .map(|sj| dispatch_one(m, sj))
            .buffer_unordered(16)
            .collect()
            .await;
        results.into_iter().collect::<Result<(), _>>()?;
    }
}

async fn dispatch_one(m: &SharedMaster, sj: SiteJobRow) -> Result<(), StoreError> {
    let attempt = u32::try_from(sj.dispatch_attempts + 1).unwrap_or(u32::MAX);
    // Persist the attempt (and when the next is due) before sending, so a crash
    // after sending still retries, and a cancel knows the site may hold the job.
    let next = now_ms() + backoff(m).delay(attempt).as_millis() as i64;
    if !m.store.begin_dispatch(&sj, next).await? {
        return Ok(());
    }
    let Some(job) = m.store.job(&sj.job_id).await? else {
        return Ok(());
    };
    let Some(client) = m.clients.get(&sj.site) else {
        let msg = format!("site `{}` is not in the master's configuration", sj.site);
        m.store
            .end_dispatch(&sj.job_id, &sj.site, DispatchState::Rejected, Some(&msg))
            .await?;
        return crate::poller::refresh_state(m, &sj.job_id).await;
    };
    let req = &job.request;
    let body = StartJobRequest {
        job_id: Some(sj.job_id.clone()),
        name: job.name.clone(),
        data_sources: sj.data_sources.clone(),
        options: serde_json::from_value(req["options"].clone()).unwrap_or_default(),
        priority: req["priority"].as_u64().and_then(|p| u32::try_from(p).ok()),
    };
    let sent = with_trace(
        client.http.post(client.endpoint("/start_job")),
        &job.trace_id,
    )
    .json(&body)
    .send()
    .await;
    metrics::counter!("meridian_master_dispatch_attempts_total", "site" => sj.site.clone())
        .increment(1);
    match site_reply::read::<JobStatus>(sent).await {
        SiteReply::Ok(status) => {
            m.store
                .apply_statuses(&sj.site, std::slice::from_ref(&status), now_ms())
                .await?;
            m.store
                .end_dispatch(&sj.job_id, &sj.site, DispatchState::Dispatched, None)
                .await?;
            tracing::info!(job_id = %sj.job_id, site = %sj.site, trace_id = job.trace_id.as_deref().unwrap_or(""), attempt, "dispatched to site {}", sj.site);
        }
        SiteReply::Refused { status, message } => {
            let msg = format!("site refused the job (HTTP {status}): {message}");
            tracing::warn!(job_id = %sj.job_id, site = %sj.site, "{msg}");
            m.store
                .end_dispatch(&sj.job_id, &sj.site, DispatchState::Rejected, Some(&msg))
                .await?;
        }
        SiteReply::Retry(why) => {
            let msg = format!("dispatch attempt {attempt} failed: {why}");
            tracing::warn!(job_id = %sj.job_id, site = %sj.site, "{msg}");
            m.store
                .end_dispatch(&sj.job_id, &sj.site, DispatchState::Pending, Some(&msg))
                .await?;
        }
    }
    crate::poller::refresh_state(m, &sj.job_id).await
}
