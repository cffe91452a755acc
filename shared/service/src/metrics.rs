//! The process-wide Prometheus recorder. Counters are recorded where things happen
//! (`metrics` macros); each service renders the recorder at `/metrics`. Every metric
//! either service records is described once, here ([`METRICS`]): its help text is what
//! `/metrics` shows and what docs/operations.md explains.

use std::sync::OnceLock;
use std::time::Duration;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use metrics_util::MetricKindMask;

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
            if metrics::set_global_recorder(recorder).is_ok() {
                describe_all();
            }
            handle
        })
        .clone()
}

/// What kind of series a metric is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

/// Every metric the services record: name, kind, help text.
pub const METRICS: &[(&str, Kind, &str)] = &[
    // A site's engine and workers.
    (
        "meridian_jobs_created_total",
        Kind::Counter,
        "Jobs accepted by start_job.",
    ),
    (
        "meridian_jobs_finished_total",
        Kind::Counter,
        "Jobs that reached a final state, by state.",
    ),
    (
        "meridian_tasks_created_total",
        Kind::Counter,
        "Tasks created by start_job and the pipeliner.",
    ),
    (
        "meridian_tasks_claimed_total",
        Kind::Counter,
        "Tasks leased to a worker.",
    ),
    (
        "meridian_tasks_handed_off_total",
        Kind::Counter,
        "Tasks leased straight to a waiting remote worker.",
    ),
    (
        "meridian_tasks_completed_total",
        Kind::Counter,
        "Task completions committed.",
    ),
    (
        "meridian_tasks_failed_total",
        Kind::Counter,
        "Task failures reported, by whether they will be retried.",
    ),
    (
        "meridian_task_retries_total",
        Kind::Counter,
        "Tasks put back to pending for another attempt.",
    ),
    (
        "meridian_claims_skipped_total",
        Kind::Counter,
        "Claims that found their task taken or gone.",
    ),
    (
        "meridian_lease_expiries_total",
        Kind::Counter,
        "Leases the reaper took back after they expired.",
    ),
    (
        "meridian_heartbeats_total",
        Kind::Counter,
        "Lease renewals accepted.",
    ),
    (
        "meridian_reports_refused_total",
        Kind::Counter,
        "Worker reports refused because their lease was lost.",
    ),
    (
        "meridian_reports_invalid_total",
        Kind::Counter,
        "Worker reports refused (422) for not being about their lease's task or holding an invalid or unmasked finding.",
    ),
    (
        "meridian_objects_discovered_total",
        Kind::Counter,
        "Objects recorded by discovery tasks.",
    ),
    (
        "meridian_task_notifications_total",
        Kind::Counter,
        "Task notifications received from other replicas.",
    ),
    (
        "meridian_long_poll_empty_total",
        Kind::Counter,
        "get_task long-polls that ended without work.",
    ),
    (
        "meridian_worker_auth_refused_total",
        Kind::Counter,
        "Worker API calls refused for their credential.",
    ),
    (
        "meridian_tls_certificate_expiry_timestamp_seconds",
        Kind::Gauge,
        "When a certificate this service presents or trusts expires (Unix time), by role and identity.",
    ),
    (
        "meridian_loop_restarts_total",
        Kind::Counter,
        "Restarts of a supervised background loop after an error or panic, by component.",
    ),
    (
        "meridian_queue_depth",
        Kind::Gauge,
        "Tasks of an active job, by phase and state (read at scrape time).",
    ),
    (
        "meridian_stalled_tasks",
        Kind::Gauge,
        "Running tasks of an active job with no progress for orchestrator.stalled_task_seconds.",
    ),
    (
        "meridian_backpressure_active",
        Kind::Gauge,
        "1 while system CPU is above the back-pressure threshold and no new task is handed out.",
    ),
    (
        "meridian_system_cpu_percent",
        Kind::Gauge,
        "System CPU use as the resource monitor last read it.",
    ),
    (
        "meridian_resident_memory_bytes",
        Kind::Gauge,
        "Resident memory of this process.",
    ),
    (
        "meridian_claim_seconds",
        Kind::Histogram,
        "Time of one claim statement.",
    ),
    (
        "meridian_completion_batch_size",
        Kind::Histogram,
        "Completions committed in one transaction.",
    ),
    (
        "meridian_long_poll_wait_seconds",
        Kind::Histogram,
        "How long a get_task long-poll waited.",
    ),
    // The master.
    (
        "meridian_master_jobs_created_total",
        Kind::Counter,
        "Federated jobs created through the user API.",
    ),
    (
        "meridian_master_dispatch_attempts_total",
        Kind::Counter,
        "start_job calls to sites, by site and outcome.",
    ),
    (
        "meridian_master_poll_requests_total",
        Kind::Counter,
        "Status polls of sites, by site and outcome.",
    ),
    (
        "meridian_master_auth_refused_total",
        Kind::Counter,
        "User API calls refused for their token or role.",
    ),
    (
        "meridian_master_poll_round_seconds",
        Kind::Histogram,
        "Time of one polling round over every site.",
    ),
    (
        "meridian_master_poll_latency_seconds",
        Kind::Histogram,
        "Time of one site's status poll, by site.",
    ),
];

fn describe_all() {
    for (name, kind, help) in METRICS {
        match kind {
            Kind::Counter => metrics::describe_counter!(*name, *help),
            Kind::Gauge => metrics::describe_gauge!(*name, *help),
            Kind::Histogram => metrics::describe_histogram!(*name, *help),
        }
    }
}
