//! Liveness, readiness and metrics; open to probes and scrapers without a token.

use axum::extract::State;
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use meridian_service::ApiError;
use meridian_wire::ComponentState;

use super::{MasterState, store_error};

pub fn router() -> Router<MasterState> {
    Router::new()
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/metrics", get(metrics_text))
}

async fn health(State(m): State<MasterState>) -> (StatusCode, Json<serde_json::Value>) {
    let status = m.health.overall();
    let code = if status == ComponentState::Failed {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    (
        code,
        Json(serde_json::json!({
            "status": status,
            "role": "master",
            "version": env!("CARGO_PKG_VERSION"),
            "uptime_seconds": m.started.elapsed().as_secs(),
            "components": m.health.snapshot(),
        })),
    )
}

async fn ready(State(m): State<MasterState>) -> Result<Json<serde_json::Value>, ApiError> {
    m.store.ping().await.map_err(store_error)?;
    Ok(Json(serde_json::json!({ "ready": true })))
}

async fn metrics_text(State(m): State<MasterState>) -> impl IntoResponse {
    (
        [(CONTENT_TYPE, "text/plain; version=0.0.4")],
        m.metrics.render(),
    )
}
