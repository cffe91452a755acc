//! The ops console: a web page served by the master at `/`, its files built into the
//! binary (`master/console/`), plus the one API call made for it (`job_summaries`).
//! Everything it shows comes from the user API with the signed-in user's token.

mod assets;
mod headers;
mod summaries;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use meridian_service::ApiError;
use utoipa_axum::router::OpenApiRouter;

use crate::api::MasterState;

pub use summaries::{JobSummaryLine, SitePart};

/// The console's routes: `/` (the page), `/console/<version>/…` (its files), the
/// dev-token offer, and `GET /api/v1/job_summaries` (documented in the OpenAPI).
pub fn routes() -> OpenApiRouter<MasterState> {
    summaries::router()
        .route("/", get(assets::index))
        .route("/console/dev-token", get(dev_token))
        .route("/console/{version}/{*path}", get(assets::asset))
}

/// The quickstart's token, so the sign-in form can offer it: 404 unless the master was
/// started by the quickstart on a loopback listener (`Master::offer_dev_token`).
async fn dev_token(State(m): State<MasterState>) -> Result<Response, ApiError> {
    let token = m
        .dev_token
        .get()
        .ok_or_else(|| ApiError::NotFound("no dev token is offered here".into()))?;
    let mut resp = Json(serde_json::json!({ "token": token })).into_response();
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers::secure(&mut resp);
    Ok(resp)
}
