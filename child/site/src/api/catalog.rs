//! The site's catalog of data sources and its workers.

use axum::Json;
use axum::extract::State;
use meridian_wire::{DataSourceInfo, WorkerInfo};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;

/// The routes as served (the document is built from [`routes`]).
pub fn router() -> axum::Router<AppState> {
    routes().into()
}

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(data_sources))
        .routes(routes!(workers))
}

/// Ids, kinds and descriptions only: connector settings and credentials stay here.
#[utoipa::path(
    get, path = "/data_sources", tag = "catalog",
    responses((status = 200, description = "The catalog", body = Vec<DataSourceInfo>)),
)]
async fn data_sources(State(app): State<AppState>) -> Json<Vec<DataSourceInfo>> {
    let cfg = app.cfg();
    Json(
        cfg.data_sources
            .iter()
            .map(|d| DataSourceInfo {
                id: d.id().to_owned(),
                kind: d.kind().to_owned(),
                site: cfg.site.name.clone(),
                description: d.description().to_owned(),
            })
            .collect(),
    )
}

/// In-process workers and the remote workers seen lately.
#[utoipa::path(
    get, path = "/workers", tag = "catalog",
    responses((status = 200, description = "The workers", body = Vec<WorkerInfo>)),
)]
async fn workers(State(app): State<AppState>) -> Json<Vec<WorkerInfo>> {
    let mut list = app.workers.list();
    if let Some(remote) = app.remote.get() {
        list.extend(remote.list());
    }
    Json(list)
}
