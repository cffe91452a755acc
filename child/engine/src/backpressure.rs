//! Back-pressure: while system CPU is above `worker.global_cpu_threshold_percent` the
//! assigner hands out no new tasks. The resource monitor samples CPU once a second.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use sysinfo::{Pid, ProcessRefreshKind, ProcessesToUpdate, System};
use tokio::sync::Mutex;

use crate::app::App;
use meridian_service::health::component;
use meridian_service::supervisor::{BackgroundLoop, Tick};

/// The latest readings, shared lock-free with the assigner and `/health`.
#[derive(Debug, Default)]
pub struct BackPressure {
    /// System CPU in hundredths of a percent.
    cpu_centi: AtomicU32,
    rss_bytes: AtomicU64,
    active: AtomicBool,
}

impl BackPressure {
    pub fn active(&self) -> bool {
        self.active.load(Ordering::Relaxed)
    }

    pub fn cpu_percent(&self) -> f32 {
        self.cpu_centi.load(Ordering::Relaxed) as f32 / 100.0
    }

    pub fn resident_bytes(&self) -> u64 {
        self.rss_bytes.load(Ordering::Relaxed)
    }

    /// Applies a reading against the threshold; returns whether back-pressure is on.
    pub fn update(&self, cpu_percent: f32, rss_bytes: u64, threshold_percent: u32) -> bool {
        self.cpu_centi
            .store((cpu_percent * 100.0) as u32, Ordering::Relaxed);
        self.rss_bytes.store(rss_bytes, Ordering::Relaxed);
        let on = cpu_percent > threshold_percent as f32;
        let was = self.active.swap(on, Ordering::Relaxed);
        if on != was {
            if on {
                tracing::warn!(
                    cpu = cpu_percent,
                    threshold = threshold_percent,
                    "back-pressure on: CPU {cpu_percent:.0}% is above {threshold_percent}%"
                );
            } else {
                tracing::info!(
                    cpu = cpu_percent,
                    "back-pressure off: CPU {cpu_percent:.0}%"
                );
            }
        }
        metrics::gauge!("meridian_backpressure_active").set(if on { 1.0 } else { 0.0 });
        metrics::gauge!("meridian_system_cpu_percent").set(cpu_percent);
        on
    }
}

/// Samples CPU and this process's memory.
pub struct ResourceMonitor {
    app: Arc<App>,
    /// `None` where the platform gives no statistics; the monitor then reports degraded.
    system: Mutex<Option<System>>,
}

impl ResourceMonitor {
    pub fn new(app: Arc<App>) -> Self {
        ResourceMonitor {
            app,
            system: Mutex::new(System::new().ok()),
        }
    }
}

#[async_trait]
impl BackgroundLoop for ResourceMonitor {
    fn name(&self) -> &'static str {
        component::RESOURCES
    }

    fn interval(&self) -> Duration {
        // sysinfo needs at least its minimum interval between CPU refreshes.
        sysinfo::MINIMUM_CPU_UPDATE_INTERVAL.max(Duration::from_secs(1))
    }

    async fn tick(&self) -> anyhow::Result<Tick> {
        let mut guard = self.system.lock().await;
        let sys = guard.as_mut().ok_or_else(|| {
            anyhow::anyhow!("system statistics are not available; back-pressure is off")
        })?;
        sys.refresh_cpu_usage();
        let pid = Pid::from_u32(std::process::id());
        sys.refresh_processes_specifics(
            ProcessesToUpdate::Some(&[pid]),
            true,
            ProcessRefreshKind::nothing().with_memory(),
        );
        let rss = sys.process(pid).map(|p| p.memory()).unwrap_or(0);
        let threshold = self.app.cfg().worker.global_cpu_threshold_percent;
        self.app
            .backpressure
            .update(sys.global_cpu_usage(), rss, threshold);
        metrics::gauge!("meridian_resident_memory_bytes").set(rss as f64);
        Ok(Tick::Idle)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threshold_is_strictly_above() {
        let bp = BackPressure::default();
        assert!(!bp.update(90.0, 0, 90));
        assert!(bp.update(90.5, 0, 90));
        assert!(!bp.update(10.0, 0, 90));
    }
}
