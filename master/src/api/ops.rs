//! Liveness, readiness and metrics; open to probes and scrapers without a token.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use meridian_service::ApiError;
use meridian_wire::ComponentState;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{MasterState, store_error};

pub fn router() -> OpenApiRouter<MasterState> {
    OpenApiRouter::new()
        .routes(routes!(health))
        .routes(routes!(ready))
        .routes(routes!(metrics_text))
}

/// Every loop of the master with its state; 503 when one failed.
#[utoipa::path(
    get, path = "/health", tag = "ops",
    responses(
        (status = 200, description = "Serving (possibly degraded)", body = Object),
        (status = 503, description = "A component failed", body = Object),
    ),
)]
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

/// Ready when the master database answers.
#[utoipa::path(
    get, path = "/ready", tag = "ops",
    responses((status = 200, description = "Ready", body = Object)),
)]
async fn ready(State(m): State<MasterState>) -> Result<Json<serde_json::Value>, ApiError> {
    m.store.ping().await.map_err(store_error)?;
    Ok(Json(serde_json::json!({ "ready": true })))
}

/// Prometheus metrics.
#[utoipa::path(
    get, path = "/metrics", tag = "ops",
    responses((status = 200, description = "Prometheus text format", body = String, content_type = "text/plain")),
)]
async fn metrics_text(State(m): State<MasterState>) -> impl IntoResponse {
    (
        [(CONTENT_TYPE, "text/plain; version=0.0.4")],
        m.metrics.render(),
    )
}
