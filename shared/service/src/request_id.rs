//! Request ids and W3C trace context for every API of the mesh: each answer carries
//! `X-Request-Id` (the caller's when it is sane, else a new one), every log line of
//! the request is inside a `request` span holding it (and the trace id of an incoming
//! `traceparent`), and the error envelope quotes it. Outgoing calls take a
//! `traceparent` from [`traceparent`].

use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

pub const REQUEST_ID: &str = "x-request-id";
pub const TRACEPARENT: &str = "traceparent";

/// Longest caller-chosen request id kept; a longer one is replaced.
pub const MAX_REQUEST_ID: usize = 128;

/// What the handlers of one request run under.
#[derive(Debug, Clone)]
pub struct RequestContext {
    pub request_id: String,
    /// The 32 hex digits of the caller's `traceparent`, when it sent a valid one.
    pub trace_id: Option<String>,
}

tokio::task_local! {
    static CURRENT: RequestContext;
}

/// The id of the request being served by this task, if any.
pub fn current_request_id() -> Option<String> {
    CURRENT.try_with(|c| c.request_id.clone()).ok()
}

/// The trace id the caller of the request being served propagated, if any.
pub fn current_trace_id() -> Option<String> {
    CURRENT.try_with(|c| c.trace_id.clone()).ok().flatten()
}

/// Whether a caller's request id is kept: 1 to 128 characters of letters, digits and
/// `-_.:`, so it can never forge a log line or a header.
pub fn is_sane(id: &str) -> bool {
    (1..=MAX_REQUEST_ID).contains(&id.len())
        && id
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.' | b':'))
}

/// The trace id of a version-00 `traceparent` (`00-<32 hex>-<16 hex>-<2 hex>`);
/// `None` for anything else, including the all-zero ids the format forbids.
pub fn parse_traceparent(v: &str) -> Option<String> {
    let parts: Vec<&str> = v.trim().split('-').collect();
    let hex = |s: &str, n: usize| {
        s.len() == n
            && s.bytes()
                .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
    };
    match parts.as_slice() {
        [ver, trace, span, flags]
            if *ver == "00"
                && hex(trace, 32)
                && hex(span, 16)
                && hex(flags, 2)
                && trace.bytes().any(|c| c != b'0')
                && span.bytes().any(|c| c != b'0') =>
        {
            Some((*trace).to_owned())
        }
        _ => None,
    }
}

/// A `traceparent` continuing `trace_id` with a new span id (sampled).
pub fn traceparent(trace_id: &str) -> String {
    let span = uuid::Uuid::new_v4().simple().to_string();
    format!("00-{trace_id}-{}-01", &span[..16])
}

/// A new trace id (32 hex digits).
pub fn new_trace_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// The middleware (`axum::middleware::from_fn(request_id::layer)`), outermost so
/// that the access log and every handler's lines are inside the span.
pub async fn layer(req: Request, next: Next) -> Response {
    let request_id = req
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| is_sane(v))
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let trace_id = req
        .headers()
        .get(TRACEPARENT)
        .and_then(|v| v.to_str().ok())
        .and_then(parse_traceparent);
    let span = tracing::info_span!(
        "request",
        request_id = %request_id,
        trace_id = tracing::field::Empty,
        method = %req.method(),
        path = %req.uri().path(),
    );
    if let Some(t) = &trace_id {
        span.record("trace_id", t.as_str());
    }
    let ctx = RequestContext {
        request_id: request_id.clone(),
        trace_id,
    };
    let mut resp = CURRENT.scope(ctx, next.run(req).instrument(span)).await;
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        resp.headers_mut().insert(REQUEST_ID, v);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sane_ids_are_kept_and_others_are_not() {
        assert!(is_sane("abc-123_x.y:z"));
        assert!(!is_sane(""));
        assert!(!is_sane("a b"));
        assert!(!is_sane("a\nb"));
        assert!(!is_sane(&"a".repeat(129)));
    }

    #[test]
    fn traceparent_round_trips() {
        let t = new_trace_id();
        assert_eq!(parse_traceparent(&traceparent(&t)), Some(t));
        assert_eq!(
            parse_traceparent("00-00000000000000000000000000000000-0102030405060708-01"),
            None
        );
        assert_eq!(
            parse_traceparent("01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),
            None
        );
        assert_eq!(
            parse_traceparent("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01").as_deref(),
            Some("0af7651916cd43dd8448eb211c80319c")
        );
    }
}
