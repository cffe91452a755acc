//! Cancel fan-out: `POST /cancel_job/{id}` to every site holding the job, retried
//! with backoff until each site acknowledges. A site that was down when the cancel
//! was asked gets it when it is back.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use meridian_service::backoff::Backoff;
use meridian_service::supervisor::{BackgroundLoop, Tick};
use tokio::sync::Notify;

use crate::app::{SharedMaster, component};
use crate::site_reply::{self, SiteReply, with_trace};
use crate::store::{SiteJobRow, StoreError};
use meridian_wire::time::now_ms;

/// Fallback when idle: a cancel wakes the canceller at once through its `Notify`.
const IDLE_POLL: Duration = Duration::from_millis(250);

/// The canceller loop: one tick sends every cancel that is due.
pub struct Canceller {
    pub m: SharedMaster,
}

#[async_trait]
impl BackgroundLoop for Canceller {
    fn name(&self) -> &'static str {
        component::CANCELLER
    }

    fn interval(&self) -> Duration {
        IDLE_POLL
    }

    fn wake(&self) -> Option<Arc<Notify>> {
        Some(self.m.wake_canceller.clone())
    }

    async fn tick(&self) -> anyhow::Result<Tick> {
        round(&self.m).await?;
        Ok(Tick::Idle)
    }
}

async fn round(m: &SharedMaster) -> Result<(), StoreError> {
    let due = m.store.due_cancels(now_ms(), 64).await?;
    let results: Vec<Result<(), StoreError>> = futures::stream::iter(due)
        .map(|sj| cancel_one(m, sj))
        .buffer_unordered(16)
        .collect()
        .await;
    results.into_iter().collect()
}

async fn cancel_one(m: &SharedMaster, sj: SiteJobRow) -> Result<(), StoreError> {
    let attempt = u32::try_from(sj.cancel_attempts + 1).unwrap_or(u32::MAX);
    let backoff = Backoff::new(
        Duration::from_millis(500),
        Duration::from_secs_f64(m.cfg.master.retry_backoff_max_seconds),
    );
    let next = now_ms() + backoff.delay(attempt).as_millis() as i64;
    let Some(client) = m.clients.get(&sj.site) else {
        return m
            .store
            .end_cancel(
                &sj.job_id,
                &sj.site,
                false,
                next,
                Some("site is not configured"),
            )
            .await;
    };
    let path = format!("/cancel_job/{}", sj.job_id);
    let trace_id = m.store.job(&sj.job_id).await?.and_then(|j| j.trace_id);
    let sent = with_trace(client.http.post(client.endpoint(&path)), &trace_id)
        .send()
        .await;
    match site_reply::read::<serde_json::Value>(sent).await {
        SiteReply::Ok(_) => {
            tracing::info!(job_id = %sj.job_id, site = %sj.site, trace_id = trace_id.as_deref().unwrap_or(""), "site {} acknowledged the cancel", sj.site);
            m.store
                .end_cancel(&sj.job_id, &sj.site, true, next, None)
                .await
        }
        // The site never created the job (its dispatch was refused): nothing to cancel.
        SiteReply::Refused { status: 404, .. } => {
            m.store
                .end_cancel(&sj.job_id, &sj.site, true, next, None)
                .await
        }
        SiteReply::Refused { status, message } => {
            let msg = format!("cancel refused (HTTP {status}): {message}");
            m.store
                .end_cancel(&sj.job_id, &sj.site, false, next, Some(&msg))
                .await
        }
        SiteReply::Retry(why) => {
            let msg = format!("cancel attempt {attempt} failed: {why}");
            m.store
                .end_cancel(&sj.job_id, &sj.site, false, next, Some(&msg))
                .await
        }
    }
}
