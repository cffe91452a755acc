//! The user API under `/api/v1` plus `/health`, `/ready`, `/metrics`.
//! Every `/api/v1` call needs a JWT bearer token; errors are the error envelope.
//! Routes are registered through utoipa-axum, so the OpenAPI document served at
//! `/openapi.json` (and `/docs`) is generated from the same handlers.

mod auth;
mod findings;
mod jobs;
mod list;
mod ops;
mod sites;
mod whoami;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use meridian_service::ApiError;
use meridian_service::api_error::{method_not_allowed, not_found};
pub use meridian_service::openapi::BEARER;
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_swagger_ui::SwaggerUi;

use crate::app::Master;
use crate::store::StoreError;

pub use auth::Caller;
pub use list::{CancelManyAnswer, JobSummary};
pub use whoami::Identity;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Meridian master API",
        description = "The federation's user API. Every `/api/v1` call needs a JWT bearer token; the roles a call needs are the scopes of its security requirement (`viewer` reads, `operator` also creates and cancels, `admin` everything). Every answer carries `X-Request-Id`; errors are the error envelope and quote it."
    ),
    components(schemas(meridian_wire::error::ErrorEnvelope)),
    tags(
        (name = "jobs", description = "Federated jobs"),
        (name = "findings", description = "Masked findings, fetched from the sites"),
        (name = "sites", description = "Sites and the data-source catalog"),
        (name = "auth", description = "The caller"),
        (name = "ops", description = "Probes and metrics, without a token"),
    ),
)]
struct ApiDoc;

fn routes() -> OpenApiRouter<MasterState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .nest(
            "/api/v1",
            OpenApiRouter::new()
                .merge(list::router())
                .merge(jobs::router())
                .merge(findings::router())
                .merge(sites::router())
                .merge(whoami::router()),
        )
        .merge(ops::router())
        .merge(crate::console::routes())
}

/// The OpenAPI document of the master's API, as served at `/openapi.json`.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let (_, mut doc) = routes().split_for_parts();
    finish(&mut doc);
    doc
}

fn finish(doc: &mut utoipa::openapi::OpenApi) {
    doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
    meridian_service::openapi::finish(
        doc,
        Some(
            "A JWT signed with the key the master is configured with; its `roles` claim carries viewer, operator or admin.",
        ),
    );
}

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
    let (router, mut doc) = routes().split_for_parts();
    finish(&mut doc);
    let router: Router<MasterState> =
        router.merge(SwaggerUi::new("/docs").url("/openapi.json", doc));
    router
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(limit))
        .layer(axum::middleware::from_fn(meridian_service::nul::path_layer))
        .layer(TraceLayer::new_for_http())
        .layer(axum::middleware::from_fn(
            meridian_service::request_id::layer,
        ))
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
