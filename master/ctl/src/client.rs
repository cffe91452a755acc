//! The HTTP client of the master's API: the bearer token on `/api/v1` calls, the CA
//! file as the only trust root when given, and every failure turned into one
//! [`CliError`] whose message is the server's error envelope or the network cause.

use std::time::Duration;

use meridian_wire::error::ErrorEnvelope;
use reqwest::Method;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::config::Settings;
use crate::exit::{ApiFailure, CliError};

/// One call's time limit; a watch polls with many short calls.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// A connection to one master.
#[derive(Debug, Clone)]
pub struct Master {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
}

/// A successful answer: its status and JSON body.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
}

impl Answer {
    /// The body as `T`; a shape this build does not know is an error, not a panic.
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, CliError> {
        serde_json::from_value(self.body.clone())
            .map_err(|e| CliError::Other(format!("the master answered an unexpected body: {e}")))
    }
}

impl Master {
    pub fn new(s: &Settings) -> Result<Master, CliError> {
        let mut builder = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!("meridianctl/", env!("CARGO_PKG_VERSION")));
        if let Some(path) = &s.ca_file {
            let pem = std::fs::read(path).map_err(|e| {
                CliError::Other(format!("cannot read the CA file {}: {e}", path.display()))
            })?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                CliError::Other(format!("the CA file {} is not PEM: {e}", path.display()))
            })?;
            if certs.is_empty() {
                return Err(CliError::Other(format!(
                    "the CA file {} holds no certificate",
                    path.display()
                )));
            }
            builder = builder.tls_certs_only(certs);
        }
        let http = builder
            .build()
            .map_err(|e| CliError::Other(format!("cannot set up the HTTP client: {e}")))?;
        Ok(Master {
            http,
            base: s.server.clone(),
            token: s.token.clone(),
        })
    }

    fn require_token(&self) -> Result<&str, CliError> {
        self.token.as_deref().ok_or_else(|| {
            CliError::NoToken(
                "no token: pass --token, set MERIDIAN_TOKEN, or put `token:` in the config file"
                    .into(),
            )
        })
    }

    /// An authenticated call under `/api/v1`; an error status is an `Err`.
    pub async fn call<B: Serialize>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<Answer, CliError> {
        let token = self.require_token()?;
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(token);
        if let Some(b) = body {
            req = req.json(b);
        }
        let (status, body) = self.send(req).await?;
        if (200..300).contains(&status) {
            Ok(Answer { status, body })
        } else {
            Err(failure(status, body))
        }
    }

    pub async fn get(&self, path: &str) -> Result<Answer, CliError> {
        self.call::<()>(Method::GET, path, None).await
    }

    /// A call without a token (`/health`), whatever the status.
    pub async fn get_open(&self, path: &str) -> Result<Answer, CliError> {
        let req = self.http.get(format!("{}{path}", self.base));
        let (status, body) = self.send(req).await?;
        Ok(Answer { status, body })
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> Result<(u16, Value), CliError> {
        let resp = req.send().await.map_err(|e| self.unreachable(&e))?;
        let status = resp.status().as_u16();
        let text = resp.text().await.map_err(|e| self.unreachable(&e))?;
        let body = if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        Ok((status, body))
    }

    fn unreachable(&self, e: &reqwest::Error) -> CliError {
        CliError::Unreachable {
            url: self.base.clone(),
            reason: network_cause(e),
        }
    }
}

/// The innermost cause of a network error ("Connection refused (os error 111)"),
/// which is what a person can act on; the outer layers only repeat the URL.
fn network_cause(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        return format!("no answer within {} s", REQUEST_TIMEOUT.as_secs());
    }
    let mut cause: &dyn std::error::Error = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    let text = cause.to_string();
    if text.is_empty() { e.to_string() } else { text }
}

/// An error status as a failure, with the envelope's message when there is one.
fn failure(status: u16, body: Value) -> CliError {
    // Read from the raw body so a field this build's envelope lacks still shows.
    let request_id = body["error"]["request_id"].as_str().map(str::to_owned);
    match serde_json::from_value::<ErrorEnvelope>(body.clone()) {
        Ok(env) => CliError::Api(ApiFailure {
            status,
            code: env.error.code,
            message: one_line(&env.error.message),
            details: env.error.details,
            request_id,
        }),
        Err(_) => {
            let text = match &body {
                Value::String(s) => s.clone(),
                Value::Null => String::new(),
                other => other.to_string(),
            };
            let message = match one_line(&text) {
                m if m.is_empty() => "no error message".to_owned(),
                m => m,
            };
            CliError::Api(ApiFailure {
                status,
                code: format!("http_{status}"),
                message,
                details: None,
                request_id: None,
            })
        }
    }
}

/// The first line of `s`, at most 300 characters: an error is one line.
fn one_line(s: &str) -> String {
    let line = s.lines().next().unwrap_or("").trim();
    match line.char_indices().nth(300) {
        Some((i, _)) => format!("{}…", &line[..i]),
        None => line.to_owned(),
    }
}

/// Percent-encodes a query value (RFC 3986 unreserved characters stay).
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_envelope_becomes_its_message_and_anything_else_one_line() {
        let e = failure(
            404,
            serde_json::json!({"error": {"code": "not_found", "message": "job x does not exist"}}),
        );
        assert_eq!(e.to_string(), "not found (HTTP 404): job x does not exist");
        let e = failure(502, Value::String("bad gateway\n<html>".into()));
        assert_eq!(
            e.to_string(),
            "the master answered an error (HTTP 502): bad gateway"
        );
        assert_eq!(encode("a b*~"), "a%20b%2A~");
    }
}
