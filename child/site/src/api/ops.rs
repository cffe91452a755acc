//! Liveness, readiness and metrics.

use std::sync::atomic::Ordering;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use meridian_wire::{ComponentState, HealthReport, Resources};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{ApiError, AppState};

/// The routes as served (the document is built from [`routes`]).
pub fn router() -> axum::Router<AppState> {
    routes().into()
}

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(health))
        .routes(routes!(ready))
        .routes(routes!(metrics))
}

/// Every component with its state. 200 while the process can serve (even degraded),
/// 503 when a component failed.
#[utoipa::path(
    get, path = "/health", tag = "ops",
    responses(
        (status = 200, description = "Serving (possibly degraded)", body = HealthReport),
        (status = 503, description = "A component failed", body = HealthReport),
    ),
)]
async fn health(State(app): State<AppState>) -> (StatusCode, Json<HealthReport>) {
    let status = app.health.overall();
    let report = HealthReport {
        status,
        node_id: app.node_id(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        uptime_seconds: app.started.elapsed().as_secs(),
        resources: Resources {
            resident_memory_bytes: app.backpressure.resident_bytes(),
            system_cpu_percent: app.backpressure.cpu_percent(),
            back_pressure: app.backpressure.active(),
        },
        components: app.health.snapshot(),
    };
    let code = if status == ComponentState::Failed {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    (code, Json(report))
}

/// Ready when start-up finished, the database answers, and shutdown has not begun.
#[utoipa::path(
    get, path = "/ready", tag = "ops",
    responses((status = 200, description = "Ready", body = Object)),
)]
async fn ready(State(app): State<AppState>) -> Result<Json<serde_json::Value>, ApiError> {
    if !app.ready.load(Ordering::Relaxed) {
        return Err(ApiError::Unavailable(
            "not ready: starting or shutting down".into(),
        ));
    }
    app.store.ping().await?;
    Ok(Json(serde_json::json!({ "ready": true })))
}

#[utoipa::path(
    get, path = "/metrics", tag = "ops",
    responses((status = 200, description = "Prometheus text format", body = String, content_type = "text/plain")),
)]
async fn metrics(State(app): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    meridian_engine::queue_depth::refresh_queue_depth(&app).await?;
    Ok((
        [(CONTENT_TYPE, "text/plain; version=0.0.4")],
        app.metrics.render(),
    ))
}
