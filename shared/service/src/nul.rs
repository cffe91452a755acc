//! Text no store can hold is refused at the edge. PostgreSQL `text` cannot contain a
//! NUL character, so a NUL in a name, an id, a cursor or a worker's report reached
//! the database and came back as a 500. Every API refuses it instead, on SQLite too,
//! so the contract does not depend on the store: in a JSON body (422, naming the
//! field), in a query (400) and in the path (400, with paths that do not decode to
//! UTF-8, which axum would otherwise answer in plain text).

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::ApiError;

/// Where the first NUL of a JSON document is, as `a.b[2].c`, or `None`. The raw bytes
/// are searched first: a NUL can only be written `\u0000` in JSON, so a body without
/// that sequence is not parsed again.
pub fn in_json(body: &[u8]) -> Option<String> {
    body.windows(6).find(|w| w == b"\\u0000")?;
    let value: Value = serde_json::from_slice(body).ok()?;
    let mut path = String::new();
    find(&value, &mut path).then_some(path)
}

fn find(v: &Value, path: &mut String) -> bool {
    match v {
        Value::String(s) => s.contains('\0'),
        Value::Array(items) => items.iter().enumerate().any(|(i, x)| {
            let len = path.len();
            path.push_str(&format!("[{i}]"));
            let found = find(x, path);
            if !found {
                path.truncate(len);
            }
            found
        }),
        Value::Object(map) => map.iter().any(|(k, x)| {
            let len = path.len();
            if !path.is_empty() {
                path.push('.');
            }
            path.push_str(k);
            let found = k.contains('\0') || find(x, path);
            if !found {
                path.truncate(len);
            }
            found
        }),
        _ => false,
    }
}

/// The JSON refusal for a NUL at `field`.
pub fn json_refusal(field: &str) -> ApiError {
    let field = if field.is_empty() { "the body" } else { field };
    ApiError::Unprocessable {
        message: format!(
            "`{}` contains a NUL character (\\u0000), which no text here may hold",
            field.replace('\0', "\\u0000")
        ),
        details: Some(serde_json::json!({ "field": field.replace('\0', "\\u0000") })),
    }
}

/// What is wrong with a percent-encoded URI component, if anything.
pub fn uri_problem(raw: &str) -> Option<&'static str> {
    let bytes: Vec<u8> = percent_encoding::percent_decode_str(raw).collect();
    if bytes.contains(&0) {
        Some("a NUL character (%00)")
    } else if std::str::from_utf8(&bytes).is_err() {
        Some("bytes that are not UTF-8")
    } else {
        None
    }
}

/// Middleware: a path holding a NUL or not decoding to UTF-8 is 400 before routing.
pub async fn path_layer(req: Request, next: Next) -> Response {
    match uri_problem(req.uri().path()) {
        Some(what) => {
            ApiError::BadRequest(format!("the request path contains {what}")).into_response()
        }
        None => next.run(req).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_field_holding_a_nul() {
        let body = br#"{"a":{"b":[1,"x","y\u0000"]},"c":"ok"}"#;
        assert_eq!(in_json(body).as_deref(), Some("a.b[2]"));
        assert_eq!(in_json(br#"{"k\u0000":1}"#).as_deref(), Some("k\u{0}"));
        // An escaped backslash followed by `u0000` is text, not a NUL.
        assert_eq!(in_json(br#"{"a":"\\u0000"}"#), None);
        assert_eq!(in_json(br#"{"a":"plain"}"#), None);
    }

    #[test]
    fn uri_components_with_nul_or_bad_utf8_are_named() {
        assert_eq!(uri_problem("/jobs/a%00b"), Some("a NUL character (%00)"));
        assert_eq!(uri_problem("/jobs/%FF"), Some("bytes that are not UTF-8"));
        assert_eq!(uri_problem("/jobs/caf%C3%A9"), None);
        assert_eq!(uri_problem("/jobs/100%"), None);
        assert_eq!(uri_problem("cursor=%zz"), None);
    }
}
