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
///
/// The request must also name a loopback host: a page elsewhere that re-points its
/// own name at 127.0.0.1 (DNS rebinding) is same-origin to itself, and would
/// otherwise read the token; its requests carry its name in `Host`.
async fn dev_token(
    State(m): State<MasterState>,
    headers: axum::http::HeaderMap,
) -> Result<Response, ApiError> {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    let token = m
        .dev_token
        .get()
        .filter(|_| loopback_host(host))
        .ok_or_else(|| ApiError::NotFound("no dev token is offered here".into()))?;
    let mut resp = Json(serde_json::json!({ "token": token })).into_response();
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers::secure(&mut resp);
    Ok(resp)
}

/// `host[:port]` names the loopback interface: `localhost`, `127.x.y.z` or `[::1]`.
fn loopback_host(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => host.rsplit_once(':').map_or(host, |(name, _)| name),
    };
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::loopback_host;

    #[test]
    fn only_loopback_hosts_may_read_the_dev_token() {
        for ok in [
            "127.0.0.1:8080",
            "127.0.0.2",
            "localhost:1",
            "LOCALHOST",
            "[::1]:80",
        ] {
            assert!(loopback_host(ok), "{ok}");
        }
        for no in [
            "",
            "evil.example:8080",
            "127.0.0.1.evil.example",
            "[::2]:80",
            "10.0.0.1",
        ] {
            assert!(!loopback_host(no), "{no}");
        }
    }
}
