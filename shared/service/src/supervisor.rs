//! Runs background loops: each loop is a `tick()` that does one unit of work; the
//! supervisor calls it again at once after work, waits for a wake-up or the poll
//! interval when idle, and after an error or a panic rebuilds the loop from its
//! factory after an exponential backoff, showing it degraded meanwhile.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use crate::backoff::Backoff;
use async_trait::async_trait;
use futures::FutureExt;
use meridian_wire::ComponentState;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::failpoints::{Action, Failpoints};
use crate::health::Health;

/// What one tick did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tick {
    /// Did something; there may be more, so tick again at once.
    Worked,
    /// Nothing to do; wait for a wake-up or the poll interval.
    Idle,
}

/// A background loop body.
#[async_trait]
pub trait BackgroundLoop: Send + Sync + 'static {
    /// Component name in `/health` and the failpoint name.
    fn name(&self) -> &'static str;

    /// Poll fallback when idle: a lost wake-up only costs this much latency.
    fn interval(&self) -> Duration;

    /// Woken early through this, if set.
    fn wake(&self) -> Option<Arc<Notify>> {
        None
    }

    async fn tick(&self) -> anyhow::Result<Tick>;
}

/// What a supervised loop reports to: the service's health registry and its
/// failpoints. Implemented by each service's shared state.
pub trait LoopHost: Send + Sync + 'static {
    fn health(&self) -> &Health;
    fn failpoints(&self) -> &Failpoints;
}

/// Restart delays: 100 ms doubling to 10 s.
const RESTART_BACKOFF: Backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(10));

/// Runs the loop built by `factory` until `cancel` fires.
pub async fn supervise<H, L, F>(host: Arc<H>, cancel: CancellationToken, factory: F)
where
    H: LoopHost + ?Sized,
    L: BackgroundLoop,
    F: Fn() -> L + Send + 'static,
{
    let mut body = factory();
    let name = body.name();
    let mut failures = 0u32;
    host.health().set(name, ComponentState::Starting, None);
    while !cancel.is_cancelled() {
        let wake = body.wake();
        let notified = wake.as_ref().map(|n| n.notified());
        // Registers interest before ticking, so a wake-up during the tick is not lost.
        let mut notified = notified.map(Box::pin);
        if let Some(n) = notified.as_mut() {
            n.as_mut().enable();
        }
        let result = AssertUnwindSafe(async {
            match host.failpoints().hit(name) {
                Some(Action::Panic) => panic!("failpoint {name} triggered"),
                Some(Action::Error) => anyhow::bail!("failpoint {name} triggered"),
                None => body.tick().await,
            }
        })
        .catch_unwind()
        .await;
        let reason = match result {
            Ok(Ok(tick)) => {
                failures = 0;
                host.health().healthy(name);
                if tick == Tick::Worked {
                    tokio::task::yield_now().await;
                    continue;
                }
                let sleep = tokio::time::sleep(body.interval());
                match notified {
                    Some(n) => {
                        tokio::select! { _ = n => {}, _ = sleep => {}, _ = cancel.cancelled() => {} }
                    }
                    None => tokio::select! { _ = sleep => {}, _ = cancel.cancelled() => {} },
                }
                continue;
            }
            Ok(Err(e)) => format!("{e:#}"),
            Err(panic) => format!("panicked: {}", panic_message(&panic)),
        };
        failures += 1;
        let delay = RESTART_BACKOFF.delay(failures);
        tracing::warn!(
            component = name,
            restart_in_ms = delay.as_millis() as u64,
            "{name} failed: {reason}"
        );
        metrics::counter!("meridian_loop_restarts_total", "component" => name).increment(1);
        host.health().restarted(
            name,
            format!("{reason}; restarting in {} ms", delay.as_millis()),
        );
        tokio::select! { _ = tokio::time::sleep(delay) => {}, _ = cancel.cancelled() => {} }
        body = factory();
    }
    host.health().set(name, ComponentState::Stopped, None);
}

fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_owned())
}
