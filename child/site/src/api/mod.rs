//! The site API: one module per resource, merged here. Every error is the
//! error envelope; axum's own rejections (bad JSON, wrong content type, oversized
//! body, unknown route or method) are mapped to it too.

mod catalog;
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

/// The whole site API.
pub fn router(app: Arc<App>) -> Router {
    let limit = app.cfg().api.max_body_bytes as usize;
    Router::new()
        .merge(jobs::router())
        .merge(catalog::router())
        .merge(ops::router())
        .merge(tasks::router())
        .fallback(meridian_service::api_error::not_found)
        .method_not_allowed_fallback(meridian_service::api_error::method_not_allowed)
        .layer(DefaultBodyLimit::max(limit))
        .layer(TraceLayer::new_for_http())
        .with_state(AppState(app))
}
