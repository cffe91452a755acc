//! What every OpenAPI document of the mesh shares, added after utoipa generated
//! the routes: the error answers each operation can give (from what its extractors
//! and the shared layers refuse), the `X-Request-Id` header on every answer, and the
//! bearer scheme. Handlers document only their own successes and domain errors.

use utoipa::openapi::path::{Operation, PathItem};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{
    ContentBuilder, HeaderBuilder, ObjectBuilder, OpenApi, Ref, RefOr, ResponseBuilder, Type,
};

/// Name of the bearer scheme in `components.securitySchemes`.
pub const BEARER: &str = "bearer";

fn error(description: &str) -> RefOr<utoipa::openapi::Response> {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorEnvelope")))
                .build(),
        )
        .build()
        .into()
}

fn operations(item: &mut PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        item.get.as_mut(),
        item.put.as_mut(),
        item.post.as_mut(),
        item.delete.as_mut(),
        item.patch.as_mut(),
    ]
    .into_iter()
    .flatten()
}

/// Completes `doc`: the bearer scheme (described by `bearer`, when the API has one),
/// the shared error answers and the request-id header.
pub fn finish(doc: &mut OpenApi, bearer: Option<&str>) {
    if let Some(text) = bearer {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            BEARER,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(text))
                    .build(),
            ),
        );
    }
    let header = HeaderBuilder::new()
        .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
        .description(Some(
            "The caller's X-Request-Id when sane (1-128 of A-Z a-z 0-9 - _ . :), else a new one; quoted in error bodies and in every log line of the request.",
        ))
        .build();
    for item in doc.paths.paths.values_mut() {
        for op in operations(item) {
            let takes_input =
                op.parameters.as_ref().is_some_and(|p| !p.is_empty()) || op.request_body.is_some();
            let secured = op.security.as_ref().is_some_and(|s| !s.is_empty());
            let responses = &mut op.responses.responses;
            let mut add = |code: &str, text: &str| {
                responses
                    .entry(code.to_owned())
                    .or_insert_with(|| error(text));
            };
            if takes_input {
                add(
                    "400",
                    "The query, path or body is malformed (`bad_request`).",
                );
            }
            if op.request_body.is_some() {
                add(
                    "413",
                    "The body is larger than the configured limit (`payload_too_large`).",
                );
                add(
                    "415",
                    "The body is not `application/json` (`unsupported_media_type`).",
                );
                add(
                    "422",
                    "The body is JSON of the wrong shape or with invalid values (`invalid`).",
                );
            }
            if secured {
                add(
                    "401",
                    "No bearer token, or one expired, forged or for another audience (`unauthorized`).",
                );
                add(
                    "403",
                    "The token lacks the role the operation needs (`forbidden`).",
                );
            }
            add(
                "500",
                "An unexpected failure; details are in the server's log under the request id (`internal`).",
            );
            add(
                "503",
                "A database or a site is unavailable; retry later (`unavailable`).",
            );
            for r in responses.values_mut() {
                if let RefOr::T(r) = r {
                    r.headers
                        .entry("X-Request-Id".to_owned())
                        .or_insert_with(|| RefOr::T(header.clone()));
                }
            }
        }
    }
}

/// The document as stable, reviewable JSON (pretty, keys in a fixed order).
pub fn to_json(doc: &OpenApi) -> String {
    let mut text = doc.to_pretty_json().unwrap_or_default();
    text.push('\n');
    text
}
