//! Runs a background loop and starts it again, with backoff, if it panics, so one
//! bad round never stops dispatching or polling for good. The loop's health line
//! shows the restart.

use std::future::Future;
use std::time::Duration;

use meridian_service::backoff::Backoff;
use meridian_wire::ComponentState;
use tokio_util::sync::CancellationToken;

use crate::app::SharedMaster;

pub fn spawn<F, Fut>(
    m: SharedMaster,
    name: &'static str,
    stop: CancellationToken,
    make: F,
) -> tokio::task::JoinHandle<()>
where
    F: Fn(SharedMaster, CancellationToken) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    tokio::spawn(async move {
        let backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(10));
        let mut restarts = 0u32;
        loop {
            m.health.healthy(name);
            let run = tokio::spawn(make(m.clone(), stop.clone()));
            match run.await {
                Ok(()) => return,
                Err(e) => {
                    restarts += 1;
                    let reason = if e.is_panic() {
                        "panicked"
                    } else {
                        "was cancelled"
                    };
                    tracing::error!(
                        component = name,
                        restarts,
                        "background loop {name} {reason}; restarting"
                    );
                    m.health
                        .restarted(name, format!("{reason}; restarted {restarts} times"));
                    m.health.set(
                        name,
                        ComponentState::Degraded,
                        Some(format!("{reason}; restarting")),
                    );
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        _ = tokio::time::sleep(backoff.delay(restarts)) => {}
                    }
                }
            }
        }
    })
}

/// Marks a loop's round as healthy or degraded with the error.
pub fn report<E: std::fmt::Display>(m: &SharedMaster, name: &str, result: Result<(), E>) {
    match result {
        Ok(()) => m.health.healthy(name),
        Err(e) => {
            tracing::warn!(component = name, "{e}");
            m.health
                .set(name, ComponentState::Degraded, Some(e.to_string()));
        }
    }
}
