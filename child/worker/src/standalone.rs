//! `--mode worker`: a remote worker process. No API, no database credentials: it
//! long-polls `get_task` on the orchestrator URL, runs each packet with the same
//! runner as in-process workers on one of `worker.slot_count` slots, and reports over
//! the worker API. Completions are grouped into one `complete_task` call.
//!
//! A fresh worker id per process start (`<node.id>-<random>`), so a restarted worker
//! never inherits a dead one's leases. Orchestrator unreachable or answering 503:
//! retry with exponential backoff and jitter, forever; the process never exits
//! because of it. SIGTERM: stop asking for work, give running tasks
//! `worker.drain_seconds` to finish, hand back the rest, flush completions, exit 0.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use async_trait::async_trait;
use meridian_service::backoff::Backoff;
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::memory;
use super::runner;
use crate::client::{CallError, OrchestratorClient};
use crate::reporter::Reporter;
use meridian_config::RunMode;
use meridian_config::{ConfigLayers, SystemConfig, distributed};
use meridian_wire::task::FailureKind;
use meridian_wire::task::{
    Completion, DiscoveryBatch, FailOutcome, HeartbeatOutcome, Lease, ObjectResult, ReportOutcome,
};
use meridian_wire::worker::{CompletedTask, FailRequest, ProgressRequest};

/// Delays between attempts to reach an unreachable orchestrator.
const RECONNECT: Backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(15));

/// Most completions in one `complete_task` call.
const COMPLETION_BATCH: usize = 200;

/// Runs the worker until `shutdown` fires, then drains.
pub async fn run(layers: ConfigLayers, shutdown: CancellationToken) -> anyhow::Result<()> {
    let cfg = layers.preliminary(RunMode::Worker)?;
    let key = distributed::require(&cfg, RunMode::Worker)?.unwrap_or_default();
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    let worker_id = format!("{}-{}", cfg.node.id, &suffix[..12]);
    let tls = distributed::worker_tls(&cfg)?;
    if let Some(cert) = cfg.worker.tls.as_ref().and_then(|t| t.cert_file.clone()) {
        let roles = vec![meridian_service::tls::expiry::role::CLIENT];
        let stop = shutdown.clone();
        let files = meridian_service::tls::TlsFiles {
            ca_file: cert.clone(),
            cert_file: cert,
            key_file: Default::default(),
        };
        // The client certificate is read at start; the loop keeps its expiry gauge.
        tokio::spawn(meridian_service::tls::keep_current(
            files,
            Duration::from_secs(30),
            roles,
            stop,
            || Ok(()),
        ));
    }
    let status = crate::ops::Status::new(worker_id.clone());
    let probes_stop = CancellationToken::new();
    let probes = match &cfg.worker.ops_listen {
        Some(addr) => Some(crate::ops::spawn(addr, status.clone(), probes_stop.clone()).await?),
        None => None,
    };
    let client = Arc::new(OrchestratorClient::new(
        &cfg.worker.orchestrator_url,
        tls,
        key,
        &cfg.site.name,
        worker_id.clone(),
        cfg.worker.credential_ttl_seconds,
    )?);
    let slots = cfg.worker.slot_count;
    let limit_mb = cfg.worker.process_memory_limit_mb;
    let wait = Duration::from_secs(cfg.orchestrator.long_poll_timeout_seconds);
    let free = Arc::new(Semaphore::new(slots as usize));
    let abort = CancellationToken::new();
    let (completions_tx, completions_rx) = mpsc::unbounded_channel();
    let flusher = tokio::spawn(flush_completions(client.clone(), completions_rx));
    let reporter: Arc<dyn Reporter> = Arc::new(RemoteReporter {
        client: client.clone(),
        completions: completions_tx,
        cfg: Arc::new(cfg.clone()),
    });
    tracing::info!(
        worker.id = %worker_id,
        slots,
        "worker {worker_id} started with {slots} slots; orchestrator {}",
        cfg.worker.orchestrator_url
    );
    let mut running = JoinSet::new();
    let mut failures = 0u32;
    loop {
        let first = tokio::select! {
            p = free.clone().acquire_owned() => p?,
            _ = shutdown.cancelled() => break,
        };
        let mut permits = vec![first];
        while let Ok(p) = free.clone().try_acquire_owned() {
            permits.push(p);
        }
        if !memory::fits(memory::resident_bytes(), 0, limit_mb) {
            tracing::warn!(
                limit_mb,
                "at worker.process_memory_limit_mb ({limit_mb} MB); taking no task until memory is freed"
            );
            drop(permits);
            pause(&shutdown, Duration::from_secs(1)).await;
            continue;
        }
        let polled = tokio::select! {
            r = client.get_task(permits.len() as u32, slots, wait) => r,
            _ = shutdown.cancelled() => break,
        };
        match polled {
            Ok(packets) => {
                status.reachable.store(true, Ordering::Relaxed);
                if failures > 0 {
                    tracing::info!("orchestrator reachable again after {failures} failed polls");
                }
                failures = 0;
                let mut handed_back = false;
                for packet in packets {
                    let Some(permit) = permits.pop() else {
                        // More than asked for: hand it back rather than overcommit.
                        hand_back(&client, &packet, "more packets than free slots").await;
                        continue;
                    };
                    let resident = memory::resident_bytes();
                    if !memory::fits(resident, memory::estimate(&packet), limit_mb) {
                        tracing::info!(
                            task.id = packet.task_id,
                            "task {} would exceed worker.process_memory_limit_mb; handing it back",
                            packet.task_id
                        );
                        hand_back(&client, &packet, "worker memory limit").await;
                        handed_back = true;
                        continue;
                    }
                    let (rep, abort, id) = (reporter.clone(), abort.clone(), worker_id.clone());
                    running.spawn(async move {
                        runner::run(
                            &rep,
                            &id,
                            packet,
                            &abort,
                            runner::ScanOn::BlockingPool,
                            runner::Heartbeat::PerTask,
                        )
                        .await;
                        drop(permit);
                    });
                }
                if handed_back {
                    pause(&shutdown, Duration::from_secs(1)).await;
                }
            }
            Err(e) if matches!(e, CallError::Refused { .. }) => {
                failures += 1;
                tracing::error!(
                    "the orchestrator refuses this worker ({e}); check worker.auth_key_env and site.name"
                );
                pause(&shutdown, RECONNECT.delay(failures.max(8))).await;
            }
            Err(e) => {
                status
                    .reachable
                    .store(!matches!(e, CallError::Unreachable(_)), Ordering::Relaxed);
                failures += 1;
                let delay = RECONNECT.delay(failures);
                if failures == 1 || failures.is_multiple_of(10) {
                    tracing::warn!(
                        retry_in_ms = delay.as_millis() as u64,
                        "cannot get work ({e}); retrying with backoff"
                    );
                }
                pause(&shutdown, delay).await;
            }
        }
        while running.try_join_next().is_some() {}
    }

    status.draining.store(true, Ordering::Relaxed);
    let drain = Duration::from_secs(cfg.worker.drain_seconds);
    tracing::info!(
        running = running.len(),
        "draining: taking no new work; running tasks get {}s",
        drain.as_secs()
    );
    let deadline = tokio::time::sleep(drain);
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            joined = running.join_next() => if joined.is_none() { break },
            _ = &mut deadline, if !abort.is_cancelled() => {
                tracing::warn!("drain window over; handing back running tasks");
                abort.cancel();
            }
        }
    }
    // Dropping the last sender lets the flusher send what is queued and end.
    drop(reporter);
    if tokio::time::timeout(Duration::from_secs(15), flusher)
        .await
        .is_err()
    {
        tracing::warn!(
            "completions not delivered in time; their leases will expire and the tasks re-run"
        );
    }
    probes_stop.cancel();
    if let Some(p) = probes {
        let _ = p.await;
    }
    tracing::info!("worker {worker_id} stopped");
    Ok(())
}

async fn pause(shutdown: &CancellationToken, d: Duration) {
    tokio::select! {
        _ = tokio::time::sleep(d) => {}
        _ = shutdown.cancelled() => {}
    }
}

async fn hand_back(client: &OrchestratorClient, packet: &meridian_wire::WorkPacket, why: &str) {
    let req = FailRequest {
        worker_id: client.worker_id.clone(),
        task_id: packet.task_id,
        lease_token: packet.lease_token.clone(),
        attempt: packet.attempt,
        error: format!("handed back: {why}"),
        retryable: true,
        released: true,
    };
    if let Err(e) = client.fail(&req).await {
        tracing::warn!(task.id = packet.task_id, "could not hand back task: {e}");
    }
}

/// A completion as the worker API takes it. One object's outcome goes in `object`, as
/// workers sent it before batched tasks: an orchestrator of that release refuses the
/// fields it does not know, so a worker upgraded first still completes the tasks such
/// an orchestrator hands out (one object each).
fn to_wire(c: Completion) -> CompletedTask {
    let (objects, object) = match <[ObjectResult; 1]>::try_from(c.objects) {
        Ok([one]) if c.failed.is_empty() => (Vec::new(), Some(one)),
        Ok([one]) => (vec![one], None),
        Err(objects) => (objects, None),
    };
    CompletedTask {
        task_id: c.lease.task_id,
        lease_token: c.lease.lease_token,
        objects,
        object,
        findings: c.findings,
        failed: c.failed,
    }
}

/// Sends queued completions in batches until every sender is gone and the queue is empty.
async fn flush_completions(
    client: Arc<OrchestratorClient>,
    mut rx: mpsc::UnboundedReceiver<Completion>,
) {
    let retry = Backoff::new(Duration::from_millis(50), Duration::from_secs(5));
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < COMPLETION_BATCH {
            match rx.try_recv() {
                Ok(c) => batch.push(c),
                Err(_) => break,
            }
        }
        let wire: Vec<CompletedTask> = batch.into_iter().map(to_wire).collect();
        let mut attempt: u32 = 0;
        loop {
            match client.complete(wire.clone()).await {
                Ok(_) => break,
                Err(CallError::LeaseLost { details, .. }) => {
                    tracing::info!(
                        refused = %details["refused"],
                        "some completions refused: their leases were reaped; those tasks run again elsewhere"
                    );
                    break;
                }
                Err(e) if e.is_transient() && attempt < 100 => {
                    attempt += 1;
                    if attempt == 1 || attempt.is_multiple_of(10) {
                        tracing::warn!(
                            count = wire.len(),
                            "completions not delivered yet ({e}); retrying"
                        );
                    }
                    tokio::time::sleep(retry.delay(attempt)).await;
                }
                Err(e) => {
                    tracing::warn!(
                        count = wire.len(),
                        "completions dropped ({e}); their leases will expire and the tasks re-run"
                    );
                    break;
                }
            }
        }
    }
}

/// Reports of a remote worker: the worker API.
struct RemoteReporter {
    client: Arc<OrchestratorClient>,
    completions: mpsc::UnboundedSender<Completion>,
    /// This worker's configuration file and environment (no database rows: a worker
    /// has no database).
    cfg: Arc<SystemConfig>,
}

#[async_trait]
impl Reporter for RemoteReporter {
    fn cfg(&self) -> Arc<SystemConfig> {
        self.cfg.clone()
    }

    async fn heartbeat(&self, lease: &Lease) -> anyhow::Result<HeartbeatOutcome> {
        match self
            .client
            .heartbeat(lease.task_id, &lease.lease_token)
            .await
        {
            Ok(r) if r.cancelled => Ok(HeartbeatOutcome::Cancelled),
            Ok(_) => Ok(HeartbeatOutcome::Extended { expires_at: 0 }),
            Err(CallError::LeaseLost { .. }) => Ok(HeartbeatOutcome::Lost),
            Err(e) => Err(e.into()),
        }
    }

    async fn discovered(
        &self,
        lease: &Lease,
        batch: &DiscoveryBatch,
    ) -> anyhow::Result<ReportOutcome> {
        let req = ProgressRequest {
            worker_id: self.client.worker_id.clone(),
            task_id: lease.task_id,
            lease_token: lease.lease_token.clone(),
            attempt: batch.attempt,
            seq: batch.seq,
            objects: batch.objects.clone(),
        };
        match self.client.progress(&req).await {
            Ok(r) if r.duplicate => Ok(ReportOutcome::Duplicate),
            Ok(_) => Ok(ReportOutcome::Accepted),
            Err(CallError::LeaseLost { .. }) => Ok(ReportOutcome::LeaseLost),
            Err(e) => Err(e.into()),
        }
    }

    async fn failed(
        &self,
        lease: &Lease,
        attempt: u32,
        error: &str,
        kind: FailureKind,
    ) -> anyhow::Result<FailOutcome> {
        let req = FailRequest {
            worker_id: self.client.worker_id.clone(),
            task_id: lease.task_id,
            lease_token: lease.lease_token.clone(),
            attempt,
            error: error.to_owned(),
            retryable: kind != FailureKind::Permanent,
            released: kind == FailureKind::Cancelled,
        };
        let retry = Backoff::new(Duration::from_millis(100), Duration::from_secs(2));
        let mut tries = 0;
        loop {
            match self.client.fail(&req).await {
                Ok(r) if r.outcome == "failed" => return Ok(FailOutcome::Failed),
                Ok(_) => return Ok(FailOutcome::Retrying),
                Err(CallError::LeaseLost { .. }) => return Ok(FailOutcome::LeaseLost),
                Err(e) if e.is_transient() && tries < 5 => {
                    tries += 1;
                    tokio::time::sleep(retry.delay(tries)).await;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    fn complete(&self, completion: Completion) {
        if self.completions.send(completion).is_err() {
            tracing::warn!("completion after the flusher stopped; the lease will expire");
        }
    }

    fn released(&self) {}

    /// Hands the task back so another worker can take it at once.
    async fn interrupted(&self, lease: &Lease, attempt: u32) {
        let _ = self
            .failed(
                lease,
                attempt,
                "handed back: worker shutting down",
                FailureKind::Cancelled,
            )
            .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use meridian_wire::states::ObjectOutcome;
    use meridian_wire::task::FailedObject;

    fn completion(objects: &[i64], failed: &[i64]) -> Completion {
        Completion {
            lease: Lease {
                task_id: 1,
                lease_token: "t".into(),
            },
            objects: objects
                .iter()
                .map(|&object_id| ObjectResult {
                    object_id,
                    outcome: ObjectOutcome::Complete,
                    reason: None,
                })
                .collect(),
            findings: Vec::new(),
            failed: failed
                .iter()
                .map(|&object_id| FailedObject {
                    object_id,
                    error: "unreadable".into(),
                })
                .collect(),
        }
    }

    #[test]
    fn one_object_travels_as_the_release_before_sends_it_and_a_batch_as_a_list() {
        let one = to_wire(completion(&[7], &[]));
        assert_eq!(one.object.as_ref().map(|o| o.object_id), Some(7));
        assert!(one.objects.is_empty());
        let body = serde_json::to_value(&one).unwrap();
        assert!(body.get("objects").is_none() && body.get("failed").is_none());

        let batch = to_wire(completion(&[7, 8], &[9]));
        assert!(batch.object.is_none());
        assert_eq!(batch.object_results().len(), 2);
        assert_eq!(batch.failed.len(), 1);

        let with_failed = to_wire(completion(&[7], &[8]));
        assert!(with_failed.object.is_none());
        assert_eq!(with_failed.objects.len(), 1);
    }
}
