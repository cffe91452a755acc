//! The health registry behind `/health`: one line per internal component with its
//! state, the reason when it is not healthy, and how often it was restarted.

use std::collections::BTreeMap;
use std::sync::Mutex;

use meridian_wire::time::{now_ms, rfc3339_from_millis};
use meridian_wire::{ComponentHealth, ComponentState};

/// Component names as they appear in `/health`.
pub mod component {
    pub const DATABASE: &str = "database";
    pub const ASSIGNER: &str = "assigner";
    pub const REAPER: &str = "reaper";
    pub const PIPELINER: &str = "pipeliner";
    pub const FINISHER: &str = "finisher";
    pub const COMPLETER: &str = "completer";
    /// PostgreSQL `LISTEN` for tasks other replicas created (`--mode orchestrator`).
    pub const LISTENER: &str = "listener";
    /// Wake-ups of waiting long-polls (`--mode orchestrator`).
    pub const RELAY: &str = "long_poll_relay";
    pub const CONFIG: &str = "config_reloader";
    pub const RESOURCES: &str = "resource_monitor";
    pub const WORKER_POOL: &str = "worker_pool";
    pub const API: &str = "api";
}

#[derive(Debug, Default)]
pub struct Health {
    components: Mutex<BTreeMap<String, ComponentHealth>>,
}

fn now_rfc3339() -> String {
    rfc3339_from_millis(now_ms())
}

impl Health {
    /// Records a component's state. `since` changes only when the state does.
    pub fn set(&self, name: &str, state: ComponentState, reason: Option<String>) {
        let mut map = self.components.lock().unwrap_or_else(|e| e.into_inner());
        let entry = map
            .entry(name.to_owned())
            .or_insert_with(|| ComponentHealth {
                state,
                reason: None,
                restarts: 0,
                since: now_rfc3339(),
            });
        if entry.state != state {
            entry.since = now_rfc3339();
        }
        entry.state = state;
        entry.reason = reason;
    }

    pub fn healthy(&self, name: &str) {
        self.set(name, ComponentState::Healthy, None);
    }

    /// Counts a restart and shows the component degraded with `reason`.
    pub fn restarted(&self, name: &str, reason: String) {
        self.set(name, ComponentState::Degraded, Some(reason));
        let mut map = self.components.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = map.get_mut(name) {
            c.restarts += 1;
        }
    }

    pub fn snapshot(&self) -> BTreeMap<String, ComponentHealth> {
        self.components
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The worst state of any component: failed > degraded > starting > healthy.
    pub fn overall(&self) -> ComponentState {
        let rank = |s: ComponentState| match s {
            ComponentState::Failed => 4,
            ComponentState::Degraded => 3,
            ComponentState::Starting => 2,
            ComponentState::Stopped => 1,
            ComponentState::Healthy => 0,
        };
        self.snapshot()
            .values()
            .map(|c| c.state)
            .max_by_key(|s| rank(*s))
            .unwrap_or(ComponentState::Starting)
    }
}
