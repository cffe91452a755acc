//! Polling: one round every `master.poll_interval_seconds` asks every site, in
//! parallel, for the statuses that changed since the site's cursor (the child's
//! delta call), so a round costs one request per site whatever the number of jobs.
//! A site that fails `master.unreachable_after_failures` rounds in a row is shown
//! `UNREACHABLE`; its last known statuses stay, with their age. When it answers
//! again the cursor picks up where it was: nothing is dispatched twice.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use meridian_service::supervisor::{BackgroundLoop, Tick};
use meridian_wire::StatusDelta;

use crate::app::{SharedMaster, component};
use crate::clients::SiteClient;
use crate::site_reply::{self, SiteReply, with_trace};
use crate::store::{SiteRow, StoreError};
use crate::view::overall_state;
use meridian_service::request_id;
use meridian_wire::time::now_ms;

/// Changed statuses per request; more pages follow in the same round.
const PAGE: i64 = 500;
/// Pages per site per round at most, so one busy site cannot hold a round up.
const MAX_PAGES: usize = 20;

/// The poller loop: one tick is one round; rounds start every
/// `master.poll_interval_seconds`, however long the last one took.
pub struct Poller {
    pub m: SharedMaster,
    /// When the last round started, so the wait after it is the rest of the interval.
    last_start: Mutex<Instant>,
}

impl Poller {
    pub fn new(m: SharedMaster) -> Poller {
        Poller {
            m,
            last_start: Mutex::new(Instant::now()),
        }
    }
}

#[async_trait]
impl BackgroundLoop for Poller {
    fn name(&self) -> &'static str {
        component::POLLER
    }

    fn interval(&self) -> Duration {
        let started = *self.last_start.lock().unwrap_or_else(|e| e.into_inner());
        self.m.poll_interval().saturating_sub(started.elapsed())
    }

    async fn tick(&self) -> anyhow::Result<Tick> {
        let started = Instant::now();
        *self.last_start.lock().unwrap_or_else(|e| e.into_inner()) = started;
        let result = round(&self.m).await;
        metrics::histogram!("meridian_master_poll_round_seconds")
            .record(started.elapsed().as_secs_f64());
        result?;
        Ok(Tick::Idle)
    }
}

/// One poll round over every site.
pub async fn round(m: &SharedMaster) -> Result<(), StoreError> {
    let sites = m.store.sites().await?;
    let polls = sites.into_iter().filter_map(|s| {
        let client = m.clients.get(&s.name)?;
        Some(poll_site(m, s, client))
    });
    let results = futures::future::join_all(polls).await;
    let mut changed = Vec::new();
    for r in results {
        changed.extend(r?);
    }
    changed.sort();
    changed.dedup();
    for job in changed {
        refresh_state(m, &job).await?;
    }
    Ok(())
}

async fn poll_site(
    m: &SharedMaster,
    site: SiteRow,
    client: SiteClient,
) -> Result<Vec<String>, StoreError> {
    let started = Instant::now();
    let mut since = site.since_version;
    let mut changed = Vec::new();
    // A poll concerns many jobs: it gets a trace of its own, so that the site's lines
    // of one poll round can be told apart from another's.
    let trace = Some(request_id::new_trace_id());
    for _ in 0..MAX_PAGES {
        let url = client.endpoint(&format!("/job_statuses?since_version={since}&limit={PAGE}"));
        metrics::counter!("meridian_master_poll_requests_total", "site" => site.name.clone())
            .increment(1);
        let sent = with_trace(client.http.get(url), &trace).send().await;
        match site_reply::read::<StatusDelta>(sent).await {
            SiteReply::Ok(delta) => {
                changed.extend(
                    m.store
                        .apply_statuses(&site.name, &delta.jobs, now_ms())
                        .await?,
                );
                since = since.max(delta.next_since_version);
                if !delta.has_more {
                    break;
                }
            }
            SiteReply::Refused { status, message } => {
                return failed(m, &site, format!("HTTP {status}: {message}"))
                    .await
                    .map(|_| changed);
            }
            SiteReply::Retry(why) => return failed(m, &site, why).await.map(|_| changed),
        }
    }
    let latency = started.elapsed();
    metrics::histogram!("meridian_master_poll_latency_seconds", "site" => site.name.clone())
        .record(latency.as_secs_f64());
    m.store
        .site_polled(&site.name, since, latency.as_millis() as i64, now_ms())
        .await?;
    if site.reachability == "UNREACHABLE" {
        tracing::info!(site = %site.name, "site {} is reachable again", site.name);
    }
    Ok(changed)
}

async fn failed(m: &SharedMaster, site: &SiteRow, why: String) -> Result<(), StoreError> {
    let threshold = i64::from(m.cfg.master.unreachable_after_failures);
    let n = m
        .store
        .site_poll_failed(&site.name, &why, threshold, now_ms())
        .await?;
    if n == threshold {
        tracing::warn!(site = %site.name, failures = n, "site {} is UNREACHABLE: {why}", site.name);
    } else {
        tracing::debug!(site = %site.name, failures = n, "poll of site {} failed: {why}", site.name);
    }
    Ok(())
}

/// Re-derives and stores a job's overall state from its site-jobs.
pub async fn refresh_state(m: &SharedMaster, job_id: &str) -> Result<(), StoreError> {
    let Some(job) = m.store.job(job_id).await? else {
        return Ok(());
    };
    let site_jobs = m.store.site_jobs(job_id).await?;
    let state = overall_state(&site_jobs, job.cancel_requested);
    m.store
        .set_job_state(job_id, state.as_str(), now_ms())
        .await
}
