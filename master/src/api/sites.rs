//! Sites and their health; the data-source catalog.

use axum::Json;
use axum::extract::State;
use meridian_service::ApiError;
use meridian_wire::DataSourceInfo;
use meridian_wire::time::rfc3339_from_millis;
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{Caller, MasterState, store_error};
use crate::auth::Role;

pub fn router() -> OpenApiRouter<MasterState> {
    OpenApiRouter::new()
        .routes(routes!(sites))
        .routes(routes!(data_sources))
}

/// A site in `GET /api/v1/sites`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SiteHealth {
    pub name: String,
    pub url: String,
    /// `UNKNOWN` before the first poll, then `REACHABLE` or `UNREACHABLE`.
    pub reachability: String,
    pub consecutive_failures: i64,
    pub last_seen_at: Option<String>,
    pub last_polled_at: Option<String>,
    pub latency_ms: Option<i64>,
    pub last_error: Option<String>,
    pub catalog_refreshed_at: Option<String>,
    pub status_cursor: i64,
    /// Seconds since the site last answered a poll, by the master's clock.
    pub seen_seconds_ago: Option<f64>,
    /// `UNREACHABLE`, never answered, or last heard more than two poll intervals
    /// ago: what the master shows of this site may be out of date.
    pub stale: bool,
    /// The notAfter of the certificate the site last answered with (HTTPS sites,
    /// once its catalog was read).
    pub certificate_not_after: Option<String>,
}

/// Every configured site with its reachability and the last poll's outcome.
#[utoipa::path(
    get, path = "/sites", tag = "sites",
    responses((status = 200, description = "The sites", body = Vec<SiteHealth>)),
    security(("bearer" = ["viewer"])),
)]
async fn sites(
    State(m): State<MasterState>,
    caller: Caller,
) -> Result<Json<Vec<SiteHealth>>, ApiError> {
    caller.require(Role::Viewer)?;
    let rows = m.store.sites().await.map_err(store_error)?;
    let now = meridian_wire::time::now_ms();
    let stale_after = (2.0 * m.cfg.master.poll_interval_seconds * 1000.0) as i64;
    let certs = m
        .site_cert_not_after
        .lock()
        .map(|c| c.clone())
        .unwrap_or_default();
    Ok(Json(
        rows.into_iter()
            .map(|s| SiteHealth {
                seen_seconds_ago: s.last_seen_at.map(|t| (now - t).max(0) as f64 / 1000.0),
                stale: s.reachability == "UNREACHABLE"
                    || s.last_seen_at.is_none_or(|t| now - t > stale_after),
                certificate_not_after: certs.get(&s.name).copied().map(rfc3339_from_millis),
                name: s.name,
                url: s.url,
                reachability: s.reachability,
                consecutive_failures: s.consecutive_failures,
                last_seen_at: s.last_seen_at.map(rfc3339_from_millis),
                last_polled_at: s.last_polled_at.map(rfc3339_from_millis),
                latency_ms: s.last_latency_ms,
                last_error: s.last_error,
                catalog_refreshed_at: s.catalog_refreshed_at.map(rfc3339_from_millis),
                status_cursor: s.since_version,
            })
            .collect(),
    ))
}

/// The data-source catalog learned from every site.
#[utoipa::path(
    get, path = "/data_sources", tag = "sites",
    responses((status = 200, description = "The catalog", body = Vec<DataSourceInfo>)),
    security(("bearer" = ["viewer"])),
)]
async fn data_sources(
    State(m): State<MasterState>,
    caller: Caller,
) -> Result<Json<Vec<DataSourceInfo>>, ApiError> {
    caller.require(Role::Viewer)?;
    Ok(Json(m.store.catalog().await.map_err(store_error)?))
}
