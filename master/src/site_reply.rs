//! Calls to a child's site API and what their answers mean to the master.

use meridian_service::request_id;
use meridian_wire::error::ErrorEnvelope;
use serde::de::DeserializeOwned;

/// `req` carrying a W3C `traceparent` that continues `trace_id`, when there is one.
pub fn with_trace(
    req: reqwest::RequestBuilder,
    trace_id: &Option<String>,
) -> reqwest::RequestBuilder {
    match trace_id {
        Some(t) => req.header(request_id::TRACEPARENT, request_id::traceparent(t)),
        None => req,
    }
}

/// How a call to a site ended.
#[derive(Debug)]
pub enum SiteReply<T> {
    Ok(T),
    /// The site answered and refused for good (4xx other than 408/429).
    Refused {
        status: u16,
        message: String,
    },
    /// Worth another try: network error, timeout, 408/429/5xx.
    Retry(String),
}

/// Reads a site's answer into `T`, classifying failures.
pub async fn read<T: DeserializeOwned>(
    result: Result<reqwest::Response, reqwest::Error>,
) -> SiteReply<T> {
    let resp = match result {
        Ok(r) => r,
        Err(e) => return SiteReply::Retry(describe(&e)),
    };
    let status = resp.status();
    if status.is_success() {
        return match resp.json::<T>().await {
            Ok(v) => SiteReply::Ok(v),
            Err(e) => SiteReply::Retry(format!("unreadable answer: {}", describe(&e))),
        };
    }
    let message = match resp.json::<ErrorEnvelope>().await {
        Ok(env) => format!("{}: {}", env.error.code, env.error.message),
        Err(_) => format!("HTTP {status}"),
    };
    let code = status.as_u16();
    if status.is_client_error() && code != 408 && code != 429 {
        SiteReply::Refused {
            status: code,
            message,
        }
    } else {
        SiteReply::Retry(format!("HTTP {code}: {message}"))
    }
}

/// A transport error in one line, with its cause (TLS refusals hide there).
pub fn describe(e: &reqwest::Error) -> String {
    use std::error::Error;
    let mut out = if e.is_timeout() {
        "timed out".to_owned()
    } else if e.is_connect() {
        "cannot connect".to_owned()
    } else {
        "request failed".to_owned()
    };
    let mut src = e.source();
    while let Some(s) = src {
        out.push_str(": ");
        out.push_str(&s.to_string());
        src = s.source();
    }
    out
}
