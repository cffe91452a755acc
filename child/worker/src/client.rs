//! The HTTP side of a remote worker: one call per worker-API endpoint, with the
//! worker's credential attached and answers sorted into what the worker must do
//! (retry later, stop the task, give up on the report).

use std::sync::Mutex;
use std::time::{Duration, Instant};

use meridian_wire::WorkPacket;
use reqwest::StatusCode;
use serde::Serialize;
use serde::de::DeserializeOwned;

use meridian_service::worker_token as token;
use meridian_wire::worker::*;

/// How long a short call (report) may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a call did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// No answer (connection refused, timeout): retry with backoff.
    #[error("orchestrator unreachable: {0}")]
    Unreachable(String),
    /// 503 or another server-side failure: retry with backoff.
    #[error("orchestrator unavailable ({status}): {message}")]
    Unavailable { status: u16, message: String },
    /// 409 `lease_lost`: stop the task; `details` says which completions were refused.
    #[error("lease lost: {message}")]
    LeaseLost {
        message: String,
        details: serde_json::Value,
    },
    /// 4xx: the orchestrator refuses this call (bad credential, bad request).
    #[error("refused ({status}): {message}")]
    Refused { status: u16, message: String },
}

impl CallError {
    /// Worth retrying later.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            CallError::Unreachable(_) | CallError::Unavailable { .. }
        )
    }
}

struct Credential {
    token: String,
    renew_at: Instant,
}

/// A worker's connection to its orchestrators.
pub struct OrchestratorClient {
    http: reqwest::Client,
    base: String,
    key: Vec<u8>,
    site: String,
    pub worker_id: String,
    ttl_seconds: u64,
    credential: Mutex<Option<Credential>>,
}

impl std::fmt::Debug for OrchestratorClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OrchestratorClient")
            .field("base", &self.base)
            .field("worker_id", &self.worker_id)
            .finish_non_exhaustive()
    }
}

impl OrchestratorClient {
    /// `tls` is the trust (and optional client certificate) for an `https://` base
    /// URL; an `https://` base without it is refused rather than trusting the
    /// system's roots, since the site's certificate is issued by the site's own CA.
    pub fn new(
        base: &str,
        tls: Option<rustls::ClientConfig>,
        key: Vec<u8>,
        site: &str,
        worker_id: String,
        ttl_seconds: u64,
    ) -> anyhow::Result<Self> {
        let https = base.starts_with("https://");
        let mut builder = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(3))
            .pool_max_idle_per_host(64)
            .tcp_nodelay(true)
            // A credential must never be replayed to wherever a redirect points.
            .redirect(reqwest::redirect::Policy::none())
            .https_only(https);
        match tls {
            Some(cfg) if https => builder = builder.use_preconfigured_tls(cfg),
            None if https => {
                anyhow::bail!("orchestrator URL {base} is https but no worker.tls.ca_file is set")
            }
            _ => {}
        }
        let http = builder.build()?;
        Ok(OrchestratorClient {
            http,
            base: base.trim_end_matches('/').to_owned(),
            key,
            site: site.to_owned(),
            worker_id,
            ttl_seconds,
            credential: Mutex::new(None),
        })
    }

    /// The current credential, signing a fresh one when a third of its life is left.
    fn bearer(&self) -> String {
        let mut c = self.credential.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(cred) = c.as_ref().filter(|c| Instant::now() < c.renew_at) {
            return cred.token.clone();
        }
        let token = token::mint(
            &self.key,
            &self.site,
            &self.worker_id,
            self.ttl_seconds as i64,
        );
        *c = Some(Credential {
            token: token.clone(),
            renew_at: Instant::now() + Duration::from_secs(self.ttl_seconds * 2 / 3),
        });
        token
    }

    async fn call<B: Serialize, R: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
        timeout: Duration,
    ) -> Result<Option<R>, CallError> {
        let resp = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(self.bearer())
            .json(body)
            .timeout(timeout)
            .send()
            .await
            .map_err(|e| CallError::Unreachable(without_url(e)))?;
        let status = resp.status();
        if status == StatusCode::NO_CONTENT {
            return Ok(None);
        }
        if status.is_success() {
            return resp
                .json::<R>()
                .await
                .map(Some)
                .map_err(|e| CallError::Unreachable(without_url(e)));
        }
        let envelope: serde_json::Value = resp.json().await.unwrap_or_default();
        let message = envelope["error"]["message"]
            .as_str()
            .unwrap_or("no message")
            .to_owned();
        Err(match status.as_u16() {
            409 => CallError::LeaseLost {
                message,
                details: envelope["error"]["details"].clone(),
            },
            s if s >= 500 || s == 429 => CallError::Unavailable { status: s, message },
            s => CallError::Refused { status: s, message },
        })
    }

    /// Long-polls for up to `max` packets; empty after `wait` without work.
    pub async fn get_task(
        &self,
        max: u32,
        slots: u32,
        wait: Duration,
    ) -> Result<Vec<WorkPacket>, CallError> {
        let req = GetTaskRequest {
            worker_id: self.worker_id.clone(),
            slots,
            max_tasks: max,
            wait_seconds: Some(wait.as_secs()),
        };
        let resp: Option<GetTaskResponse> = self
            .call(GET_TASK, &req, wait + Duration::from_secs(10))
            .await?;
        Ok(resp.map(|r| r.tasks).unwrap_or_default())
    }

    pub async fn heartbeat(
        &self,
        task_id: i64,
        lease_token: &str,
    ) -> Result<HeartbeatResponse, CallError> {
        let req = HeartbeatRequest {
            worker_id: self.worker_id.clone(),
            task_id,
            lease_token: lease_token.to_owned(),
        };
        self.call(REPORT_HEARTBEAT, &req, CALL_TIMEOUT)
            .await?
            .ok_or_else(|| CallError::Unreachable("empty heartbeat answer".into()))
    }

    pub async fn progress(&self, req: &ProgressRequest) -> Result<ProgressResponse, CallError> {
        self.call(UPDATE_TASK_PROGRESS, req, CALL_TIMEOUT)
            .await?
            .ok_or_else(|| CallError::Unreachable("empty progress answer".into()))
    }

    pub async fn complete(
        &self,
        completions: Vec<CompletedTask>,
    ) -> Result<CompleteResponse, CallError> {
        let req = CompleteRequest {
            worker_id: self.worker_id.clone(),
            completions,
        };
        self.call(COMPLETE_TASK, &req, CALL_TIMEOUT)
            .await?
            .ok_or_else(|| CallError::Unreachable("empty completion answer".into()))
    }

    pub async fn fail(&self, req: &FailRequest) -> Result<FailResponse, CallError> {
        self.call(FAIL_TASK, req, CALL_TIMEOUT)
            .await?
            .ok_or_else(|| CallError::Unreachable("empty failure answer".into()))
    }
}

/// reqwest's error text without the request URL (kept short; the base URL is logged
/// once at start-up).
fn without_url(e: reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "cannot connect"
    } else if e.is_decode() {
        "unreadable answer"
    } else {
        "request failed"
    };
    // The whole chain: the reason (a certificate the CA does not sign, a refused
    // connection) is usually several sources down. The top error, which names the
    // URL, is left out.
    let mut text = kind.to_owned();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
