//! Runs one work packet: its lease renewed (`heartbeat`) while the connector works,
//! then reports. Whatever happens, the task's in-flight slot is given back, once.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures::FutureExt;
use meridian_service::backoff::Backoff;
use meridian_wire::states::Phase;
use meridian_wire::{JobOptions, WorkPacket};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

pub use crate::heartbeat::{Beat, Heartbeat};
use crate::heartbeat::{Renewal, Stop, heartbeat_loop, renew};
use crate::reporter::Reporter;
use meridian_config::{DataSourceConfig, PostgresSource};
use meridian_scan::extract::ExtractSettings;
use meridian_scan::{ObjectScan, ScanError, classify, filesystem, postgres, synthetic};
use meridian_wire::task::FailureKind;
use meridian_wire::task::{
    Completion, DiscoveryBatch, FailOutcome, FailedObject, Lease, NewFinding, NewObject,
    ObjectResult, ReportOutcome,
};

/// Where a packet's blocking work (reading, extracting and classifying an object) runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScanOn {
    /// The thread driving [`run`]: an in-process worker's own thread, on which nothing
    /// else runs. No hand-over per task (two cross-thread wake-ups, about a third of a
    /// millisecond on a virtual machine, as much as scanning a 30 KB file), and the
    /// regex engines' per-thread state stays warm from one object to the next.
    ThisThread,
    /// Tokio's blocking pool, for callers on the async runtime (remote workers).
    BlockingPool,
}

/// How [`run`] ended for the worker that called it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finished {
    /// Reported; take the next packet.
    Done,
    /// The heartbeat gave the task up as stalled and another worker took this one's
    /// place: this worker's thread, back at last, should end.
    GivenUp,
}

/// Runs `packet` inside a `task` span holding its job's trace id, job id and task
/// id, so that every line logged about it (here, in the heartbeat, in the scanners)
/// can be found from the job's trace.
pub async fn run(
    app: &Arc<dyn Reporter>,
    worker_id: &str,
    packet: WorkPacket,
    deadline: &CancellationToken,
    scan_on: ScanOn,
    heartbeat: Heartbeat<'_>,
) -> Finished {
    let span = tracing::info_span!(
        "task",
        trace_id = tracing::field::Empty,
        job_id = %packet.job_id,
        task_id = packet.task_id,
    );
    if let Some(t) = &packet.trace_id {
        span.record("trace_id", t.as_str());
    }
    run_packet(app, worker_id, packet, deadline, scan_on, heartbeat)
        .instrument(span)
        .await
}

async fn run_packet(
    app: &Arc<dyn Reporter>,
    worker_id: &str,
    packet: WorkPacket,
    deadline: &CancellationToken,
    scan_on: ScanOn,
    heartbeat: Heartbeat<'_>,
) -> Finished {
    let lease = Lease {
        task_id: packet.task_id,
        lease_token: packet.lease_token.clone(),
    };
    let stop = Arc::new(Stop::new(packet.attempt));
    let every = Duration::from_secs(packet.heartbeat_interval_seconds.max(1));
    let renewal = match heartbeat {
        Heartbeat::PerTask => Renewal::Task(tokio::spawn(heartbeat_loop(
            app.clone(),
            worker_id.to_owned(),
            lease.clone(),
            every,
            stop.clone(),
            deadline.clone(),
        ))),
        Heartbeat::Shared(beat) => {
            beat.start(&lease, &stop, every);
            Renewal::Shared(beat)
        }
    };
    // Checked after the task is in the heartbeat's slot: a deadline passed later is
    // seen by the heartbeat loop, which aborts the slot's task as it returns.
    if deadline.is_cancelled() {
        stop.abort.store(true, Ordering::Relaxed);
    }
    let started = std::time::Instant::now();
    let result = execute(app, worker_id, &packet, &lease, &stop, scan_on).await;
    app.task_time(started.elapsed().as_micros() as u64);
    drop(renewal);
    if !stop.settle() {
        tracing::info!(
            task.id = packet.task_id,
            "task {} ended after it was given up as stalled; its result is dropped",
            packet.task_id
        );
        return Finished::GivenUp;
    }
    match result {
        Ok(scanned) => {
            tracing::debug!(
                "task {} ({:?}) done by {worker_id}: {} objects, {} findings",
                packet.task_id,
                packet.phase,
                scanned.objects.len(),
                scanned.findings.len(),
            );
            // The completer gives the in-flight slot back once the batch commits.
            app.complete(Completion {
                lease,
                objects: scanned.objects,
                findings: scanned.findings,
                failed: scanned.failed,
            });
            return Finished::Done;
        }
        Err(ScanError::Aborted) if stop.lost.load(Ordering::Relaxed) => {
            tracing::info!(
                task.id = packet.task_id,
                "task {} stopped: lease lost",
                packet.task_id
            );
        }
        Err(ScanError::Aborted) if stop.cancelled.load(Ordering::Relaxed) => {
            // Back to PENDING; the finisher cancels it with the job's other pending tasks.
            report_failure(
                app,
                &lease,
                packet.attempt,
                "job cancelled",
                FailureKind::Cancelled,
            )
            .await;
        }
        Err(ScanError::Aborted) => {
            tracing::info!(
                task.id = packet.task_id,
                "task {} interrupted by shutdown",
                packet.task_id
            );
            app.interrupted(&lease, packet.attempt).await;
        }
        Err(ScanError::Retryable(e)) => {
            report_failure(app, &lease, packet.attempt, &e, FailureKind::Retryable).await
        }
        Err(ScanError::Permanent(e)) => {
            report_failure(app, &lease, packet.attempt, &e, FailureKind::Permanent).await
        }
    }
    app.released();
    Finished::Done
}

async fn report_failure(
    app: &Arc<dyn Reporter>,
    lease: &Lease,
    attempt: u32,
    error: &str,
    kind: FailureKind,
) {
    match app.failed(lease, attempt, error, kind).await {
        Ok(FailOutcome::Retrying) => tracing::info!(
            task.id = lease.task_id,
            "task {} will retry: {error}",
            lease.task_id
        ),
        Ok(FailOutcome::Failed) => tracing::warn!(
            task.id = lease.task_id,
            "task {} failed: {error}",
            lease.task_id
        ),
        Ok(FailOutcome::LeaseLost) => {}
        // The lease will expire and the reaper will return the task.
        Err(e) => tracing::warn!(
            task.id = lease.task_id,
            "could not report failure of task {}: {e}",
            lease.task_id
        ),
    }
}

async fn execute(
    app: &Arc<dyn Reporter>,
    worker_id: &str,
    packet: &WorkPacket,
    lease: &Lease,
    stop: &Arc<Stop>,
    scan_on: ScanOn,
) -> Result<Scanned, ScanError> {
    // What to read is this worker's own configuration's business: the packet names a
    // data source by id, and the source (a filesystem root, a database and its
    // credentials, which never travel in a packet) is taken from this site's
    // configuration. A packet naming a source this worker does not know, or naming
    // it as another kind, is refused without reading anything.
    let id = packet.data_source["id"].as_str().unwrap_or_default();
    let kind = packet.data_source["kind"].as_str().unwrap_or_default();
    let shown: String = id.chars().take(64).collect();
    let ds = app
        .cfg()
        .data_source(id)
        .filter(|ds| kind_of(ds) == kind)
        .cloned()
        .ok_or_else(|| {
            ScanError::Permanent(format!(
                "data source `{shown}` ({kind}) is not configured at this worker's site"
            ))
        })?;
    match packet.phase {
        Phase::Discovery => discover(app, packet, lease, ds, stop)
            .await
            .map(|()| Scanned::default()),
        Phase::Process => process_all(app, worker_id, packet, lease, ds, stop, scan_on).await,
    }
}

/// A source's `kind` as a packet spells it.
fn kind_of(ds: &DataSourceConfig) -> &'static str {
    match ds {
        DataSourceConfig::Filesystem(_) => "filesystem",
        DataSourceConfig::Postgres(_) => "postgres",
        DataSourceConfig::Synthetic(_) => "synthetic",
    }
}

async fn discover(
    app: &Arc<dyn Reporter>,
    packet: &WorkPacket,
    lease: &Lease,
    ds: DataSourceConfig,
    stop: &Arc<Stop>,
) -> Result<(), ScanError> {
    let batch_size = app.discovery_batch_size();
    let limit = packet.options.max_file_size_mb;
    let (tx, mut rx) = mpsc::channel::<Vec<NewObject>>(1);
    let walker_stop = stop.clone();
    // Sampling: the sink stops the walk once `max_objects` were handed over. The
    // walk's order is stable, so a retried discovery samples the same objects.
    let cap = packet.options.max_objects.unwrap_or(u64::MAX);
    let handle = tokio::runtime::Handle::current();
    let walker = tokio::task::spawn_blocking(move || {
        let mut sent = 0u64;
        let mut sink = |mut b: Vec<NewObject>| {
            b.truncate(usize::try_from(cap - sent).unwrap_or(usize::MAX));
            sent += b.len() as u64;
            let delivered = b.is_empty() || tx.blocking_send(b).is_ok();
            delivered && sent < cap
        };
        let walked = match &ds {
            DataSourceConfig::Filesystem(fs) => {
                filesystem::discover(fs, limit, batch_size, &mut sink, &walker_stop.abort)
            }
            DataSourceConfig::Synthetic(s) => {
                synthetic::discover(s, batch_size, &mut sink, &walker_stop.abort)
            }
            DataSourceConfig::Postgres(pg) => {
                postgres::discover(pg, &handle, batch_size, &mut sink, &walker_stop.abort)
            }
        };
        match walked {
            Err(ScanError::Aborted)
                if sent >= cap && !walker_stop.abort.load(Ordering::Relaxed) =>
            {
                Ok(())
            }
            other => other,
        }
    });
    let retry = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
    let mut seq = 0;
    let mut report_error = None;
    'batches: while let Some(objects) = rx.recv().await {
        let batch = DiscoveryBatch {
            attempt: i64::from(packet.attempt),
            seq,
            objects,
        };
        let mut tries = 0;
        loop {
            match app.discovered(lease, &batch).await {
                Ok(ReportOutcome::Accepted | ReportOutcome::Duplicate) => {
                    stop.progressed();
                    break;
                }
                Ok(ReportOutcome::LeaseLost) => {
                    stop.lost.store(true, Ordering::Relaxed);
                    stop.abort.store(true, Ordering::Relaxed);
                    break 'batches;
                }
                Err(e) if tries < 5 => {
                    tries += 1;
                    tracing::warn!(
                        task.id = lease.task_id,
                        "discovery batch not recorded yet: {e}"
                    );
                    tokio::time::sleep(retry.delay(tries)).await;
                }
                Err(e) => {
                    report_error = Some(ScanError::Retryable(format!(
                        "discovery batch not recorded: {e}"
                    )));
                    stop.abort.store(true, Ordering::Relaxed);
                    break 'batches;
                }
            }
        }
        seq += 1;
        // Test failpoint: the discovery task dies after recording a batch, as if
        // its worker crashed; the retry must not duplicate what was recorded.
        if app.failpoint("discovery_batch") {
            report_error = Some(ScanError::Retryable(
                "failpoint discovery_batch: interrupted after a batch".into(),
            ));
            stop.abort.store(true, Ordering::Relaxed);
            break;
        }
    }
    drop(rx);
    let walked = walker
        .await
        .map_err(|e| ScanError::Retryable(format!("discovery crashed: {e}")))?;
    match (report_error, walked) {
        (Some(e), _) => Err(e),
        (None, r) => r,
    }
}

/// What a task found: the outcome of each of its objects, their findings, and the
/// objects that could never be scanned.
#[derive(Debug, Default)]
struct Scanned {
    objects: Vec<ObjectResult>,
    findings: Vec<NewFinding>,
    failed: Vec<FailedObject>,
}

/// How often a batch's runner asks, between objects, whether to go on.
const CHECK_EVERY: Duration = Duration::from_secs(1);

/// Longest error reported for an object that could never be scanned (the
/// orchestrator refuses longer ones).
const MAX_ERROR: usize = 1000;

/// Scans a `PROCESS` task's objects one after the other. An error that may pass
/// (`Retryable`, a crash) fails the whole task, to be retried and, if it fails again,
/// split by the orchestrator until the object at fault is alone. An object that can
/// never be scanned (`Permanent`) fails the task when it is alone in it, and
/// otherwise is reported failed on its own, so its neighbours complete.
async fn process_all(
    app: &Arc<dyn Reporter>,
    worker_id: &str,
    packet: &WorkPacket,
    lease: &Lease,
    ds: DataSourceConfig,
    stop: &Arc<Stop>,
    scan_on: ScanOn,
) -> Result<Scanned, ScanError> {
    let objects = packet_objects(&packet.payload);
    if objects.is_empty() {
        return Err(ScanError::Permanent(
            "the PROCESS packet names no object".into(),
        ));
    }
    let alone = objects.len() == 1;
    let mut scanned = Scanned::default();
    let mut checked = std::time::Instant::now();
    for (object_id, key) in objects {
        match process(app, packet, ds.clone(), stop, scan_on, object_id, key).await {
            Ok(scan) => {
                if let Some(outcome) = scan.outcome {
                    scanned.objects.push(ObjectResult {
                        object_id,
                        outcome,
                        reason: scan.reason,
                    });
                }
                scanned.findings.extend(scan.findings);
            }
            Err(ScanError::Permanent(mut error)) if !alone => {
                tracing::warn!(
                    task.id = packet.task_id,
                    "object {object_id} of task {} failed: {error}",
                    packet.task_id
                );
                let cut = (0..=MAX_ERROR.min(error.len()))
                    .rev()
                    .find(|&i| error.is_char_boundary(i))
                    .unwrap_or(0);
                error.truncate(cut);
                scanned.failed.push(FailedObject { object_id, error });
            }
            Err(e) => return Err(e),
        }
        stop.progressed();
        // A batch may run far longer than one object: between objects, at most once
        // per `CHECK_EVERY`, it asks whether its job is being cancelled (a heartbeat
        // says it), instead of running on until the heartbeat interval.
        if checked.elapsed() >= CHECK_EVERY {
            checked = std::time::Instant::now();
            if !renew(app, worker_id, lease, stop).await {
                return Err(ScanError::Aborted);
            }
        }
    }
    Ok(scanned)
}

/// The objects (id, key) a `PROCESS` payload names: `{"objects": [{object_id, key,
/// size_bytes}, …]}`, or one object's `{object_id, key, size_bytes}` as orchestrators
/// before batched tasks wrote it.
fn packet_objects(payload: &serde_json::Value) -> Vec<(i64, String)> {
    let one =
        |o: &serde_json::Value| Some((o["object_id"].as_i64()?, o["key"].as_str()?.to_owned()));
    match payload["objects"].as_array() {
        Some(list) => list.iter().filter_map(one).collect(),
        None => one(payload).into_iter().collect(),
    }
}

async fn process(
    app: &Arc<dyn Reporter>,
    packet: &WorkPacket,
    ds: DataSourceConfig,
    stop: &Arc<Stop>,
    scan_on: ScanOn,
    object_id: i64,
    key: String,
) -> Result<ObjectScan, ScanError> {
    let limit = packet.options.max_file_size_mb;
    let cfg = app.cfg();
    let classifiers = classify::select(
        packet.options.classifiers.as_deref(),
        &cfg.classifiers.custom,
    );
    let settings = ExtractSettings {
        ocr: packet
            .options
            .ocr
            .unwrap_or(cfg.connector.easyocr_support_enabled),
        tables: packet
            .options
            .tables
            .unwrap_or(cfg.connector.get_table_or_images_enabled),
    };
    // The database connector is async (its queries) and classifies the rows it samples
    // inline: a worker's own thread just awaits it; on the runtime it goes to the
    // blocking pool like a file, driven there by `block_on`.
    if let (DataSourceConfig::Postgres(pg), ScanOn::ThisThread) = (&ds, scan_on) {
        let rows = sampling(&packet.options, pg);
        let scan = postgres::process(pg, &key, object_id, &classifiers, rows, &stop.abort);
        return AssertUnwindSafe(scan)
            .catch_unwind()
            .await
            .unwrap_or_else(|_| Err(crashed()));
    }
    let attempt = packet.attempt;
    let stop = stop.clone();
    let options = packet.options.clone();
    // Test failpoints: the scan panics, as a connector or classifier bug would; or
    // it hangs for an hour without looking at `abort`, as a read from a hung network
    // file system does.
    let panics = app.failpoint("scan_panic");
    let hangs = app.failpoint("scan_hang");
    let handle = tokio::runtime::Handle::current();
    let scan = move || match &ds {
        _ if panics => panic!("failpoint scan_panic"),
        _ if hangs => {
            std::thread::sleep(Duration::from_secs(3600));
            Err(ScanError::Retryable("failpoint scan_hang".into()))
        }
        DataSourceConfig::Filesystem(fs) => filesystem::process(
            fs,
            &key,
            object_id,
            limit,
            &classifiers,
            settings,
            &stop.abort,
        ),
        DataSourceConfig::Postgres(pg) => handle.block_on(postgres::process(
            pg,
            &key,
            object_id,
            &classifiers,
            sampling(&options, pg),
            &stop.abort,
        )),
        DataSourceConfig::Synthetic(s) => synthetic::process(s, &key, attempt, &stop.abort),
    };
    match scan_on {
        // A panic in a connector or classifier fails the task (retryable), as the
        // blocking pool's join error does, instead of ending the worker's loop.
        ScanOn::ThisThread => {
            std::panic::catch_unwind(AssertUnwindSafe(scan)).unwrap_or_else(|_| Err(crashed()))
        }
        ScanOn::BlockingPool => tokio::task::spawn_blocking(scan)
            .await
            .map_err(|e| ScanError::Retryable(format!("scanner crashed: {e}")))?,
    }
}

fn crashed() -> ScanError {
    ScanError::Retryable("scanner crashed (panicked)".into())
}

/// A job's sampling limits for a database source, its own where the job sets none.
fn sampling(options: &JobOptions, pg: &PostgresSource) -> postgres::Sampling {
    postgres::Sampling {
        rows: options.sample_rows.unwrap_or(pg.sample_rows),
        percent: options.sample_percent.unwrap_or(pg.sample_percent),
    }
}
