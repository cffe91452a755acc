//! `GET /api/v1/whoami`: who the bearer token says the caller is, and what its roles
//! allow here, so a console or a CLI can hide what would be refused.

use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{Caller, MasterState};
use crate::auth::Role;

pub fn router() -> OpenApiRouter<MasterState> {
    OpenApiRouter::new().routes(routes!(whoami))
}

/// The caller as the master sees it.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Identity {
    /// The token's `sub`.
    pub subject: String,
    /// The token's roles as written (unknown names included; they grant nothing).
    pub roles: Vec<String>,
    /// What those roles allow on this API, e.g. `jobs:read`, `jobs:cancel`.
    pub permissions: Vec<String>,
    pub issuer: String,
    /// When the token expires (RFC 3339).
    pub expires_at: String,
}

/// What each role adds to the one below it.
pub fn permissions(role: Option<Role>) -> Vec<String> {
    let mut out = Vec::new();
    if role >= Some(Role::Viewer) {
        out.extend([
            "jobs:read",
            "findings:read",
            "sites:read",
            "data_sources:read",
        ]);
    }
    if role >= Some(Role::Operator) {
        out.extend(["jobs:create", "jobs:cancel"]);
    }
    out.into_iter().map(str::to_owned).collect()
}

/// The caller's subject, roles and permissions; any valid token may ask.
#[utoipa::path(
    get, path = "/whoami", tag = "auth",
    responses((status = 200, description = "The caller", body = Identity)),
    security(("bearer" = [])),
)]
async fn whoami(caller: Caller) -> Json<Identity> {
    Json(Identity {
        subject: caller.claims.sub.clone(),
        roles: caller.claims.roles.clone(),
        permissions: permissions(caller.role),
        issuer: caller.claims.iss.clone(),
        expires_at: meridian_wire::time::rfc3339_from_millis(
            (caller.claims.exp as i64).saturating_mul(1000),
        ),
    })
}
