//! The worker credential as an extractor: handlers of the worker API receive the
//! verified claims and never parse headers. No credential, an expired one, one of
//! another site, or one signed to live longer than `worker.credential_ttl_seconds`
//! (or issued in the future) is 401 and the handler does not run.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;

use super::{ApiError, AppState};
use meridian_service::worker_token::WorkerClaims;

/// A worker that presented a valid credential of this site.
#[derive(Debug)]
pub struct WorkerAuth(pub WorkerClaims);

impl WorkerAuth {
    /// Refuses a body naming another worker than the credential.
    pub fn check_worker(&self, worker_id: &str) -> Result<(), ApiError> {
        if self.0.sub == worker_id {
            Ok(())
        } else {
            Err(ApiError::Forbidden(
                "worker_id differs from the worker the credential was issued to".into(),
            ))
        }
    }
}

impl FromRequestParts<AppState> for WorkerAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, ApiError> {
        let Some(remote) = app.remote.get() else {
            return Err(ApiError::NotFound(
                "the worker API is served only by --mode orchestrator".into(),
            ));
        };
        let header = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let Some(token) = header.strip_prefix("Bearer ") else {
            metrics::counter!("meridian_worker_auth_refused_total").increment(1);
            return Err(ApiError::Unauthorized(
                "a worker credential is required (Authorization: Bearer …)".into(),
            ));
        };
        let ttl = app.cfg().worker.credential_ttl_seconds;
        match remote.verifier.verify(token.trim(), ttl) {
            Ok(claims) => Ok(WorkerAuth(claims)),
            Err(reason) => {
                metrics::counter!("meridian_worker_auth_refused_total").increment(1);
                Err(ApiError::Unauthorized(reason.into()))
            }
        }
    }
}
