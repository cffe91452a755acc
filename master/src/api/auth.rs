//! The caller of a `/api/v1` request, from its bearer token.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use meridian_service::ApiError;

use super::MasterState;
use crate::auth::{Claims, Role};

/// A verified caller. Extracting it refuses a missing or bad token with 401.
#[derive(Debug, Clone)]
pub struct Caller {
    pub claims: Claims,
    pub role: Option<Role>,
}

impl Caller {
    /// 403 unless the caller holds `role` or a higher one.
    pub fn require(&self, role: Role) -> Result<(), ApiError> {
        match self.role {
            Some(have) if have >= role => Ok(()),
            _ => Err(ApiError::Forbidden(format!(
                "this call needs the `{}` role; the token of `{}` has {:?}",
                format!("{role:?}").to_lowercase(),
                self.claims.sub,
                self.claims.roles
            ))),
        }
    }
}

impl FromRequestParts<MasterState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &MasterState) -> Result<Self, ApiError> {
        let header = parts
            .headers
            .get(AUTHORIZATION)
            .ok_or_else(|| ApiError::Unauthorized("missing Authorization: Bearer token".into()))?;
        let token = header
            .to_str()
            .ok()
            .and_then(|h| {
                h.strip_prefix("Bearer ")
                    .or_else(|| h.strip_prefix("bearer "))
            })
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                ApiError::Unauthorized("the Authorization header is not `Bearer <token>`".into())
            })?;
        let claims = state.verifier.verify(token).map_err(|why| {
            metrics::counter!("meridian_master_auth_refused_total").increment(1);
            ApiError::Unauthorized(why)
        })?;
        let role = claims.role();
        Ok(Caller { claims, role })
    }
}
