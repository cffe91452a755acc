//! The user API under `/api/v1` plus `/health`, `/ready`, `/metrics`.
//! Every `/api/v1` call needs a JWT bearer token; errors are the error envelope.

mod auth;
mod findings;
mod jobs;
mod ops;
mod sites;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use meridian_service::ApiError;
use meridian_service::api_error::{method_not_allowed, not_found};
use tower_http::trace::TraceLayer;

use crate::app::Master;
use crate::store::StoreError;

pub use auth::Caller;

/// Handler state.
#[derive(Clone)]
pub struct MasterState(pub Arc<Master>);

impl std::ops::Deref for MasterState {
    type Target = Master;
    fn deref(&self) -> &Master {
        &self.0
    }
}

pub fn router(m: Arc<Master>) -> Router {
    let limit = m.cfg.master.max_body_bytes as usize;
    Router::new()
        .nest(
            "/api/v1",
            Router::new()
                .merge(jobs::router())
                .merge(findings::router())
                .merge(sites::router()),
        )
        .merge(ops::router())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(limit))
        .layer(TraceLayer::new_for_http())
        .with_state(MasterState(m))
}

/// `/health`, `/ready` and `/metrics` alone, for `master.ops_listen`.
pub fn ops_router(m: Arc<Master>) -> Router {
    Router::new()
        .merge(ops::router())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(TraceLayer::new_for_http())
        .with_state(MasterState(m))
}

/// Store failures as API errors: an outage is 503, anything else 500 without detail.
pub fn store_error(e: StoreError) -> ApiError {
    match e {
        StoreError::Unavailable(msg) => {
            tracing::warn!("request failed, master database unavailable: {msg}");
            ApiError::Unavailable("the master database is unavailable; retry later".into())
        }
        StoreError::Internal(msg) => {
            tracing::error!("request failed with a database error: {msg}");
            ApiError::Internal
        }
    }
}
