//! Exit codes of meridianctl and the one error type every command returns; the
//! codes are part of the interface (shown in `--help` and docs/cli.md), so scripts
//! can tell a failed job from a failed call.

use serde_json::{Value, json};

/// Success; for `jobs show` / `jobs watch`: the job is `COMPLETED` (or not finished
/// and every site reachable, for `show`).
pub const OK: u8 = 0;
/// The master refused the call (404, 409, 422, 5xx), answered something unreadable,
/// or a local file could not be read.
pub const ERROR: u8 = 1;
/// Usage error: bad flags (clap's code), or a confirmation that cannot be asked.
pub const USAGE: u8 = 2;
/// No token, or the master refused it (401) or the role it carries (403).
pub const AUTH: u8 = 3;
/// The master cannot be reached (connection refused, DNS, TLS, timeout).
pub const MASTER_UNREACHABLE: u8 = 4;
/// `jobs watch --timeout` elapsed before the job reached a final state.
pub const TIMEOUT: u8 = 5;
/// The job ended `PARTIALLY_COMPLETED`.
pub const PARTIALLY_COMPLETED: u8 = 6;
/// The job ended `FAILED`.
pub const FAILED: u8 = 7;
/// The job ended `CANCELLED`.
pub const CANCELLED: u8 = 8;
/// The job is not finished and at least one of its sites is unreachable (the end of
/// `jobs show`, or of `jobs watch` when its timeout elapses).
pub const SITE_UNREACHABLE: u8 = 9;

/// The exit-code table appended to `--help`.
pub const HELP: &str = "\
Exit codes:
  0  success; the job is COMPLETED (jobs show/watch)
  1  the master refused the call (404, 409, 422, 5xx) or another error
  2  usage error (bad flags; a confirmation needed but stdin is not a terminal)
  3  authentication: no token, token refused (401) or role missing (403)
  4  the master cannot be reached
  5  jobs watch: --timeout elapsed before the job finished
  6  the job is PARTIALLY_COMPLETED
  7  the job is FAILED
  8  the job is CANCELLED
  9  the job is not finished and a site is unreachable

Server, CA file and token come from --server/--ca-file/--token, else
MERIDIAN_SERVER/MERIDIAN_CA_FILE/MERIDIAN_TOKEN, else the config file
($XDG_CONFIG_HOME/meridian/config.yaml, default ~/.config/meridian/config.yaml).";

/// The exit code of a job in overall state `state`; `site_unreachable` says whether
/// one of its sites is unreachable now (it matters only while the job is open).
pub fn for_state(state: &str, site_unreachable: bool) -> u8 {
    match state {
        "COMPLETED" => OK,
        "PARTIALLY_COMPLETED" => PARTIALLY_COMPLETED,
        "FAILED" => FAILED,
        "CANCELLED" => CANCELLED,
        _ if site_unreachable => SITE_UNREACHABLE,
        _ => OK,
    }
}

/// Whether `state` is one a job never leaves.
pub fn is_final(state: &str) -> bool {
    matches!(
        state,
        "COMPLETED" | "PARTIALLY_COMPLETED" | "FAILED" | "CANCELLED"
    )
}

/// An error answer of the master, from its error envelope.
#[derive(Debug, Clone)]
pub struct ApiFailure {
    pub status: u16,
    pub code: String,
    pub message: String,
    pub details: Option<Value>,
    /// The master's `X-Request-Id` of the call, when it names one: what to quote
    /// when asking an operator about the error.
    pub request_id: Option<String>,
}

/// Why a command could not do what it was asked.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("{}", api_line(.0))]
    Api(ApiFailure),
    #[error("cannot reach the master at {url}: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("{0}")]
    Usage(String),
    /// No token to send; the master's own refusals are `Api` with 401/403.
    #[error("{0}")]
    NoToken(String),
    #[error("{0}")]
    Other(String),
}

fn api_line(f: &ApiFailure) -> String {
    let what = match f.status {
        401 => "not authenticated",
        403 => "forbidden",
        404 => "not found",
        409 => "conflict",
        422 => "rejected",
        400 => "bad request",
        503 => "unavailable",
        _ => "the master answered an error",
    };
    let hint = match f.status {
        401 => "; check --token, MERIDIAN_TOKEN or `token` in the config file",
        _ => "",
    };
    let id = f
        .request_id
        .as_ref()
        .map(|r| format!(" [request {r}]"))
        .unwrap_or_default();
    format!("{what} (HTTP {}): {}{hint}{id}", f.status, f.message)
}

impl CliError {
    pub fn code(&self) -> u8 {
        match self {
            CliError::Api(f) if f.status == 401 || f.status == 403 => AUTH,
            CliError::Api(_) | CliError::Other(_) => ERROR,
            CliError::Unreachable { .. } => MASTER_UNREACHABLE,
            CliError::Usage(_) => USAGE,
            CliError::NoToken(_) => AUTH,
        }
    }

    /// The error as one JSON object, for `-o json|jsonl` on stderr.
    pub fn to_json(&self) -> Value {
        let (code, status, details, request_id) = match self {
            CliError::Api(f) => (
                f.code.as_str(),
                Some(f.status),
                f.details.clone(),
                f.request_id.clone(),
            ),
            CliError::Unreachable { .. } => ("master_unreachable", None, None, None),
            CliError::Usage(_) => ("usage", None, None, None),
            CliError::NoToken(_) => ("no_token", None, None, None),
            CliError::Other(_) => ("error", None, None, None),
        };
        let mut error = json!({"code": code, "message": self.to_string()});
        if let Some(s) = status {
            error["http_status"] = json!(s);
        }
        if let Some(d) = details {
            error["details"] = d;
        }
        if let Some(r) = request_id {
            error["request_id"] = json!(r);
        }
        json!({"error": error, "exit_code": self.code()})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn final_states_have_their_own_codes() {
        assert_eq!(for_state("COMPLETED", true), OK);
        assert_eq!(for_state("FAILED", false), FAILED);
        assert_eq!(for_state("CANCELLED", false), CANCELLED);
        assert_eq!(for_state("PARTIALLY_COMPLETED", false), PARTIALLY_COMPLETED);
        assert_eq!(for_state("RUNNING", true), SITE_UNREACHABLE);
        assert_eq!(for_state("RUNNING", false), OK);
    }

    #[test]
    fn auth_refusals_share_one_code() {
        for status in [401, 403] {
            let e = CliError::Api(ApiFailure {
                status,
                code: "x".into(),
                message: "m".into(),
                details: None,
                request_id: None,
            });
            assert_eq!(e.code(), AUTH);
            assert!(!e.to_string().contains('\n'));
        }
    }
}
