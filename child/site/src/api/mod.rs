//! The site API: one module per resource, merged here. Every error is the
//! error envelope; axum's own rejections (bad JSON, wrong content type, oversized
//! body, unknown route or method) are mapped to it too.

mod catalog;
pub mod docs;
mod jobs;
mod object_key;
mod ops;
mod tasks;
pub mod worker_auth;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use tower_http::trace::TraceLayer;

pub use meridian_service::ApiError;

use meridian_engine::app::App;

/// Handler state: the shared `App`.
#[derive(Clone)]
pub struct AppState(pub Arc<App>);

impl std::ops::Deref for AppState {
    type Target = App;
    fn deref(&self) -> &App {
        &self.0
    }
}

/// The whole site API, on `api.listen` when `api.worker_listen` is not set.
pub fn router(app: Arc<App>) -> Router {
    finish(
        Router::new()
            .merge(jobs::router())
            .merge(catalog::router())
            .merge(ops::router())
            .merge(docs::site_routes())
            .merge(docs::worker_routes())
            .merge(tasks::router()),
        app,
    )
}

/// The site API without the worker API (`api.listen` when `api.worker_listen` is set).
pub fn site_router(app: Arc<App>) -> Router {
    finish(
        Router::new()
            .merge(jobs::router())
            .merge(catalog::router())
            .merge(ops::router())
            .merge(docs::site_routes()),
        app,
    )
}

/// The worker API alone (`api.worker_listen`).
pub fn worker_router(app: Arc<App>) -> Router {
    finish(tasks::router().merge(docs::worker_routes()), app)
}

/// `/health`, `/ready` and `/metrics` alone (`api.ops_listen`).
pub fn ops_router(app: Arc<App>) -> Router {
    finish(ops::router(), app)
}

fn finish(routes: Router<AppState>, app: Arc<App>) -> Router {
    let limit = app.cfg().api.max_body_bytes as usize;
    routes
        .fallback(meridian_service::api_error::not_found)
        .method_not_allowed_fallback(meridian_service::api_error::method_not_allowed)
        .layer(DefaultBodyLimit::max(limit))
        .layer(axum::middleware::from_fn(meridian_service::nul::path_layer))
        .layer(TraceLayer::new_for_http())
        .layer(axum::middleware::from_fn(
            meridian_service::request_id::layer,
        ))
        .with_state(AppState(app))
}
