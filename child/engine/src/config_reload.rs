//! Live configuration: re-reads `system_parameters` every
//! `orchestrator.config_reload_interval_seconds` and swaps in the live keys. A bad row
//! keeps the running configuration and shows the reloader degraded with the reason.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::app::App;
use meridian_config::{finalize, load::apply_live};
use meridian_service::health::component;
use meridian_service::supervisor::{BackgroundLoop, Tick};

pub struct ConfigReloader {
    pub app: Arc<App>,
    /// Start-up-only keys already warned about, so the log says it once.
    pub warned: std::sync::Mutex<std::collections::HashSet<&'static str>>,
}

#[async_trait]
impl BackgroundLoop for ConfigReloader {
    fn name(&self) -> &'static str {
        component::CONFIG
    }

    fn interval(&self) -> Duration {
        Duration::from_secs(self.app.cfg().orchestrator.config_reload_interval_seconds)
    }

    async fn tick(&self) -> anyhow::Result<Tick> {
        let current = self.app.cfg();
        let params = self.app.store.parameters(&current.node.id).await?;
        let fresh = finalize(&self.app.layers, &params, self.app.mode)
            .map_err(|e| anyhow::anyhow!("{e}; keeping the running configuration"))?;
        let (next, restart_needed) = apply_live(&current, &fresh);
        if next != *current {
            tracing::info!("live configuration changed; applied");
            self.app.config.store(Arc::new(next));
            self.app.wake.assigner.notify_one();
        }
        let mut warned = self.warned.lock().unwrap_or_else(|e| e.into_inner());
        for key in restart_needed.into_iter().filter(|k| warned.insert(k)) {
            tracing::warn!(
                key,
                "{key} changed in system_parameters; it takes effect at the next restart"
            );
        }
        Ok(Tick::Idle)
    }
}
