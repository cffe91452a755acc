//! The process-wide Prometheus recorder. Counters are recorded where things happen
//! (`metrics` macros); each service renders the recorder at `/metrics`.

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
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}
