//! `worker.ops_listen`: plain HTTP `/health`, `/ready` and `/metrics` of a remote
//! worker, so its pods can be probed. No data and no worker API here.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use axum::extract::State;
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use meridian_service::tls::{Limits, server};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// What the probes see of a running worker.
#[derive(Debug)]
pub struct Status {
    pub worker_id: String,
    pub started: Instant,
    /// The last call to the orchestrator got an answer.
    pub reachable: AtomicBool,
    /// SIGTERM received: no new work is taken.
    pub draining: AtomicBool,
}

impl Status {
    pub fn new(worker_id: String) -> Arc<Status> {
        Arc::new(Status {
            worker_id,
            started: Instant::now(),
            reachable: AtomicBool::new(false),
            draining: AtomicBool::new(false),
        })
    }
}

/// Binds `addr` and serves the probes until `stop`.
pub async fn spawn(
    addr: &str,
    status: Arc<Status>,
    stop: CancellationToken,
) -> anyhow::Result<JoinHandle<std::io::Result<()>>> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {addr} (worker.ops_listen): {e}"))?;
    let router = Router::new()
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/metrics", get(metrics))
        .with_state(status);
    tracing::info!("worker probes on http://{}", listener.local_addr()?);
    Ok(server::spawn(
        listener,
        router,
        None,
        Limits::default(),
        stop,
    ))
}

/// 200 while the process runs; says whether the orchestrator answers.
async fn health(State(s): State<Arc<Status>>) -> Json<serde_json::Value> {
    Json(serde_json::json!({
        "status": "healthy",
        "worker_id": s.worker_id,
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_seconds": s.started.elapsed().as_secs(),
        "orchestrator_reachable": s.reachable.load(Ordering::Relaxed),
        "draining": s.draining.load(Ordering::Relaxed),
    }))
}

/// 503 once draining; otherwise 200.
async fn ready(State(s): State<Arc<Status>>) -> (StatusCode, Json<serde_json::Value>) {
    if s.draining.load(Ordering::Relaxed) {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({ "ready": false, "reason": "draining" })),
        );
    }
    (StatusCode::OK, Json(serde_json::json!({ "ready": true })))
}

async fn metrics() -> impl IntoResponse {
    (
        [(CONTENT_TYPE, "text/plain; version=0.0.4")],
        meridian_service::metrics::handle().render(),
    )
}
