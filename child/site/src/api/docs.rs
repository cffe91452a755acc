//! The site's OpenAPI documents: the site API (generated from the handlers of
//! `jobs.rs`, `catalog.rs` and `ops.rs`) at `/openapi.json` with Swagger UI at
//! `/docs`, and the worker API at `/worker/openapi.json`. The worker API's handlers
//! live in `tasks.rs`; their contract is written here, one stub per route, and
//! `tests/tests/api_contract.rs` checks it names exactly the routes `tasks.rs` serves.

#![allow(dead_code)]

use axum::Router;
use axum::routing::get;
use meridian_wire::error::ErrorEnvelope;
use meridian_wire::worker::*;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_swagger_ui::SwaggerUi;

use super::{AppState, catalog, jobs, ops};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Meridian site API",
        description = "A site's API, called by the master over mutual TLS (the client certificate is the credential). Every answer carries `X-Request-Id`; errors are the error envelope and quote it. A `traceparent` header is honoured and its trace id logged."
    ),
    components(schemas(ErrorEnvelope)),
    tags(
        (name = "jobs", description = "Jobs of this site"),
        (name = "catalog", description = "Data sources and workers"),
        (name = "ops", description = "Probes and metrics"),
    ),
)]
struct SiteDoc;

/// The site API's document.
pub fn site_openapi() -> utoipa::openapi::OpenApi {
    let (_, mut doc) = OpenApiRouter::<AppState>::with_openapi(SiteDoc::openapi())
        .merge(jobs::routes())
        .merge(catalog::routes())
        .merge(ops::routes())
        .split_for_parts();
    doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
    meridian_service::openapi::finish(&mut doc, None);
    doc
}

/// `/openapi.json` and `/docs` for the site API.
pub fn site_routes() -> Router<AppState> {
    SwaggerUi::new("/docs")
        .url("/openapi.json", site_openapi())
        .into()
}

/// `/worker/openapi.json`.
pub fn worker_routes() -> Router<AppState> {
    let doc = worker_openapi();
    Router::new().route(
        "/worker/openapi.json",
        get(move || {
            let doc = doc.clone();
            async move { axum::Json(doc) }
        }),
    )
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Meridian worker API",
        description = "Served by `--mode orchestrator` to remote workers: long-poll for work packets, then report on each lease. Every report is fenced by its lease token; a stale one writes nothing and is answered 409 `lease_lost`. The credential is a site-scoped worker token (bearer)."
    ),
    paths(get_task, report_heartbeat, update_task_progress, complete_task, fail_task),
    components(schemas(ErrorEnvelope)),
    tags((name = "worker", description = "The worker API")),
)]
struct WorkerDoc;

/// The worker API's document.
pub fn worker_openapi() -> utoipa::openapi::OpenApi {
    let mut doc = WorkerDoc::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
    meridian_service::openapi::finish(
        &mut doc,
        Some(
            "A worker credential of this site (a JWT minted from the site's worker secret); its subject is the worker id the bodies must name.",
        ),
    );
    doc
}

/// Up to `max_tasks` work packets, waiting up to `wait_seconds` when none is ready.
#[utoipa::path(
    post, path = "/get_task", tag = "worker",
    request_body = GetTaskRequest,
    responses(
        (status = 200, description = "Work", body = GetTaskResponse),
        (status = 204, description = "No work within the wait"),
        (status = 404, description = "Not an orchestrator (`not_found`)", body = ErrorEnvelope),
    ),
    security(("bearer" = [])),
)]
fn get_task() {}

/// Extends a lease; says whether the job is being cancelled.
#[utoipa::path(
    post, path = "/report_heartbeat", tag = "worker",
    request_body = HeartbeatRequest,
    responses(
        (status = 200, description = "Extended, or cancelled", body = HeartbeatResponse),
        (status = 404, description = "Not an orchestrator (`not_found`)", body = ErrorEnvelope),
        (status = 409, description = "The lease is no longer current (`lease_lost`)", body = ErrorEnvelope),
    ),
    security(("bearer" = [])),
)]
fn report_heartbeat() {}

/// One discovery batch, written once per (attempt, seq).
#[utoipa::path(
    post, path = "/update_task_progress", tag = "worker",
    request_body = ProgressRequest,
    responses(
        (status = 200, description = "Recorded (or a duplicate)", body = ProgressResponse),
        (status = 404, description = "Not an orchestrator (`not_found`)", body = ErrorEnvelope),
        (status = 409, description = "The lease is no longer current (`lease_lost`)", body = ErrorEnvelope),
    ),
    security(("bearer" = [])),
)]
fn update_task_progress() {}

/// Completions with their results, committed together.
#[utoipa::path(
    post, path = "/complete_task", tag = "worker",
    request_body = CompleteRequest,
    responses(
        (status = 200, description = "Every completion accepted", body = CompleteResponse),
        (status = 404, description = "Not an orchestrator (`not_found`)", body = ErrorEnvelope),
        (status = 409, description = "Some leases were no longer current (`lease_lost`, details: CompleteResponse)", body = ErrorEnvelope),
    ),
    security(("bearer" = [])),
)]
fn complete_task() {}

/// A failed or handed-back task.
#[utoipa::path(
    post, path = "/fail_task", tag = "worker",
    request_body = FailRequest,
    responses(
        (status = 200, description = "Retrying or failed", body = FailResponse),
        (status = 404, description = "Not an orchestrator (`not_found`)", body = ErrorEnvelope),
        (status = 409, description = "The lease is no longer current (`lease_lost`)", body = ErrorEnvelope),
    ),
    security(("bearer" = [])),
)]
fn fail_task() {}
