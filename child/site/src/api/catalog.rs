//! The site's catalog of data sources and its workers.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use meridian_wire::{DataSourceInfo, WorkerInfo};

use super::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/data_sources", get(data_sources))
        .route("/workers", get(workers))
}

/// Ids, kinds and descriptions only: connector settings and credentials stay here.
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

async fn workers(State(app): State<AppState>) -> Json<Vec<WorkerInfo>> {
    let mut list = app.workers.list();
    if let Some(remote) = app.remote.get() {
        list.extend(remote.list());
    }
    Json(list)
}
