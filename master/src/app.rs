//! The master's shared state: configuration, store, site clients, health, the
//! wake-ups between its API and its loops, and test failpoints.

use std::sync::Arc;
use std::time::{Duration, Instant};

use meridian_service::failpoints::Failpoints;
use meridian_service::health::Health;
use meridian_service::supervisor::LoopHost;
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
    /// Wakes the dispatcher at once after a create.
    pub wake_dispatcher: Arc<Notify>,
    /// Wakes the canceller at once after a cancel.
    pub wake_canceller: Arc<Notify>,
    /// Test failpoints (`MERIDIAN_MASTER_FAILPOINTS`); empty in production.
    pub failpoints: Failpoints,
    pub started: Instant,
}

/// The environment variable that sets the master's failpoints, in the site's syntax
/// (`dispatcher=panic*1,poller=error*2`).
pub const FAILPOINTS_ENV: &str = "MERIDIAN_MASTER_FAILPOINTS";

impl Master {
    pub fn poll_interval(&self) -> Duration {
        Duration::from_secs_f64(self.cfg.master.poll_interval_seconds)
    }

    /// Something to dispatch or cancel: wakes both loops. `notify_one` keeps a permit
    /// when a loop is not waiting (mid-round or restarting), so none is lost.
    pub fn work_arrived(&self) {
        self.wake_dispatcher.notify_one();
        self.wake_canceller.notify_one();
    }
}

impl LoopHost for Master {
    fn health(&self) -> &Health {
        &self.health
    }

    fn failpoints(&self) -> &Failpoints {
        &self.failpoints
    }
}

pub type SharedMaster = Arc<Master>;
