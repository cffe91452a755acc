//! The master's shared state: configuration, store, site clients, health, the
//! wake-ups between its API and its loops, and test failpoints.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, OnceLock};
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
    /// A token the console may offer at sign-in: set only by the quickstart, and only
    /// when the user API listens on loopback (`offer_dev_token`); never from config.
    pub dev_token: OnceLock<String>,
    /// Each site's server certificate notAfter (ms), as seen on the last catalog read.
    pub site_cert_not_after: Mutex<BTreeMap<String, i64>>,
}

/// The environment variable that sets the master's failpoints, in the site's syntax
/// (`dispatcher=panic*1,poller=error*2`).
pub const FAILPOINTS_ENV: &str = "MERIDIAN_MASTER_FAILPOINTS";

impl Master {
    /// Lets the console offer `token` at sign-in (dev mode). Refused unless the user
    /// API listens on a loopback address, so no deployment can hand a token out.
    pub fn offer_dev_token(&self, token: String) -> Result<(), String> {
        let loopback = self
            .cfg
            .master
            .listen
            .parse::<std::net::SocketAddr>()
            .is_ok_and(|a| a.ip().is_loopback());
        if !loopback {
            return Err(format!(
                "a dev token is offered only on a loopback listener, not {}",
                self.cfg.master.listen
            ));
        }
        self.dev_token
            .set(token)
            .map_err(|_| "a dev token is already offered".to_owned())
    }

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
