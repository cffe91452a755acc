//! Extractors that turn axum's rejections into our error envelope: malformed JSON is
//! 400, a JSON body of the wrong shape is 422, a missing JSON content type 415, an
//! oversized body 413; a NUL character in a JSON string is 422 and in a query 400
//! (see [`crate::nul`]).

use axum::body::{Body, Bytes};
use axum::extract::rejection::{BytesRejection, JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use super::ApiError;
use crate::nul;

/// `axum::Json` with our rejections.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        // The content type is checked before the body is read, as axum does.
        if !json_content_type(req.headers()) {
            return Err(ApiError::UnsupportedMediaType(
                "expected a body with Content-Type: application/json".into(),
            ));
        }
        // The bytes are kept to look for a NUL once the body has parsed.
        let (parts, body) = req.into_parts();
        let head = parts.clone();
        let bytes = Bytes::from_request(Request::from_parts(parts, body), state)
            .await
            .map_err(bytes_rejection)?;
        let req = Request::from_parts(head, Body::from(bytes.clone()));
        let v = match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => v,
            Err(r) => return Err(json_rejection(r)),
        };
        match nul::in_json(&bytes) {
            Some(field) => Err(nul::json_refusal(&field)),
            None => Ok(ApiJson(v)),
        }
    }
}

/// `application/json` or `application/<anything>+json`, parameters aside: what
/// axum's `Json` accepts.
fn json_content_type(headers: &axum::http::HeaderMap) -> bool {
    let Some(value) = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or_default().trim();
    let Some((kind, sub)) = essence.split_once('/') else {
        return false;
    };
    kind.eq_ignore_ascii_case("application")
        && (sub.eq_ignore_ascii_case("json") || sub.to_ascii_lowercase().ends_with("+json"))
}

fn bytes_rejection(r: BytesRejection) -> ApiError {
    if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::PayloadTooLarge("the request body is larger than api.max_body_bytes".into())
    } else {
        ApiError::BadRequest(r.body_text())
    }
}

fn json_rejection(r: JsonRejection) -> ApiError {
    let text = r.body_text();
    match r {
        JsonRejection::JsonDataError(_) => ApiError::Unprocessable {
            message: text,
            details: None,
        },
        JsonRejection::JsonSyntaxError(_) => ApiError::BadRequest(text),
        JsonRejection::MissingJsonContentType(_) => ApiError::UnsupportedMediaType(
            "expected a body with Content-Type: application/json".into(),
        ),
        other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            ApiError::PayloadTooLarge("the request body is larger than api.max_body_bytes".into())
        }
        other => ApiError::BadRequest(other.body_text()),
    }
}

/// `axum::extract::Query` with our rejections.
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        if let Some(what) = parts.uri.query().and_then(nul::uri_problem) {
            return Err(ApiError::BadRequest(format!("the query contains {what}")));
        }
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => Ok(ApiQuery(v)),
            Err(r @ QueryRejection::FailedToDeserializeQueryString(_)) => {
                Err(ApiError::BadRequest(r.body_text()))
            }
            Err(r) => Err(ApiError::BadRequest(r.body_text())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::json_content_type;
    use axum::http::{HeaderMap, HeaderValue, header};

    fn with(ct: Option<&'static str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(ct) = ct {
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
        }
        h
    }

    #[test]
    fn json_content_types_are_those_axum_accepts() {
        for ok in [
            "application/json",
            "application/json; charset=utf-8",
            "Application/JSON",
            "application/problem+json",
        ] {
            assert!(json_content_type(&with(Some(ok))), "{ok}");
        }
        for no in [
            "text/plain",
            "application/jsonx",
            "json",
            "",
            "application/xml",
        ] {
            assert!(!json_content_type(&with(Some(no))), "{no}");
        }
        assert!(!json_content_type(&with(None)));
    }
}
