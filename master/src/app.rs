//! The master's shared state: configuration, store, site clients, health.

use std::sync::Arc;
use std::time::{Duration, Instant};

use meridian_service::health::Health;
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::sync::Notify;

use crate::auth::Verifier;
use crate::clients::SiteClients;
use crate::config::MasterConfig;
use crate::store::Store;

/// Component names in the master's `/health`.
pub mod component {
    pub const DATABASE: &str = "database";
    pub const DISPATCHER: &str = "dispatcher";
    pub const POLLER: &str = "poller";
    pub const CANCELLER: &str = "canceller";
    pub const CATALOG: &str = "catalog";
    pub const API: &str = "api";
}

pub struct Master {
    pub cfg: MasterConfig,
    pub store: Store,
    pub clients: SiteClients,
    pub verifier: Verifier,
    pub health: Health,
    pub metrics: PrometheusHandle,
    /// Wakes the dispatcher and canceller at once after a create or cancel.
    pub work: Notify,
    pub started: Instant,
}

impl Master {
    pub fn poll_interval(&self) -> Duration {
        Duration::from_secs_f64(self.cfg.master.poll_interval_seconds)
    }
}

pub type SharedMaster = Arc<Master>;
