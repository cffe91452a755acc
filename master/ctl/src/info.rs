//! `sites`, `data-sources`, `health` and `whoami`: what the master knows about its
//! federation, itself and the caller.

use meridian_wire::time::{millis_from_rfc3339, now_ms};
use serde_json::Value;

use crate::api;
use crate::client::Master;
use crate::exit::{self, CliError};
use crate::output::{self, Format, Table, or_dash};

/// Items of a JSON array whose `key` is `site`, or all of them.
fn scoped(body: &Value, key: &str, site: Option<&str>) -> Vec<Value> {
    body.as_array()
        .map(|a| {
            a.iter()
                .filter(|v| site.is_none_or(|s| v[key] == s))
                .cloned()
                .collect()
        })
        .unwrap_or_default()
}

fn text(v: &Value, key: &str) -> String {
    match &v[key] {
        Value::Null => "-".into(),
        Value::String(s) if s.is_empty() => "-".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

pub async fn sites(m: &Master, fmt: Format, site: Option<&str>) -> Result<u8, CliError> {
    let rows = scoped(&m.get("/api/v1/sites").await?.body, "name", site);
    if fmt != Format::Text {
        output::list(fmt, &rows);
        return Ok(exit::OK);
    }
    let mut t = Table::new(&[
        "SITE",
        "REACHABILITY",
        "FAILURES",
        "LATENCY",
        "LAST_SEEN",
        "URL",
        "ERROR",
    ]);
    for s in &rows {
        t.row(vec![
            text(s, "name"),
            text(s, "reachability"),
            text(s, "consecutive_failures"),
            or_dash(s["latency_ms"].as_i64().map(|l| format!("{l}ms"))),
            text(s, "last_seen_at"),
            text(s, "url"),
            text(s, "last_error"),
        ]);
    }
    t.print("no sites");
    Ok(exit::OK)
}

pub async fn data_sources(m: &Master, fmt: Format, site: Option<&str>) -> Result<u8, CliError> {
    let rows = scoped(&m.get("/api/v1/data_sources").await?.body, "site", site);
    if fmt != Format::Text {
        output::list(fmt, &rows);
        return Ok(exit::OK);
    }
    let mut t = Table::new(&["SITE", "DATA_SOURCE", "KIND", "DESCRIPTION"]);
    for d in &rows {
        t.row(vec![
            text(d, "site"),
            text(d, "id"),
            text(d, "kind"),
            text(d, "description"),
        ]);
    }
    t.print("no data sources");
    Ok(exit::OK)
}

/// Exit 0 while the master is healthy or degraded, 1 when it reports `failed`.
pub async fn health(m: &Master, fmt: Format) -> Result<u8, CliError> {
    let answer = m.get_open("/health").await?;
    let body = &answer.body;
    if !body.is_object() {
        return Err(CliError::Other(format!(
            "/health answered HTTP {} without a health report",
            answer.status
        )));
    }
    let status = body["status"].as_str().unwrap_or("unknown");
    let code = if status == "failed" {
        exit::ERROR
    } else {
        exit::OK
    };
    if fmt != Format::Text {
        output::value(fmt, body);
        return Ok(code);
    }
    output::line(&format!(
        "master {status}  version {}  up {}s",
        text(body, "version"),
        text(body, "uptime_seconds")
    ));
    let mut t = Table::new(&["COMPONENT", "STATE", "RESTARTS", "SINCE", "REASON"]);
    if let Some(components) = body["components"].as_object() {
        for (name, c) in components {
            t.row(vec![
                name.clone(),
                text(c, "state"),
                text(c, "restarts"),
                text(c, "since"),
                text(c, "reason"),
            ]);
        }
    }
    t.print("no components");
    Ok(code)
}

/// The caller as the master sees it, once it has checked the token.
pub async fn whoami(m: &Master, fmt: Format) -> Result<u8, CliError> {
    let id = api::whoami(m).await?;
    if fmt != Format::Text {
        output::value(fmt, &id);
        return Ok(exit::OK);
    }
    let list = |k: &str| {
        let items: Vec<&str> = id[k]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        or_dash(Some(items.join(", ")))
    };
    let expires = id["expires_at"].as_str().map(|when| {
        match millis_from_rfc3339(when).map(|ms| (ms - now_ms()) / 1000) {
            Some(left) if left >= 0 => format!("{when} (in {}m)", left / 60),
            Some(left) => format!("{when} (EXPIRED {}m ago)", -left / 60),
            None => when.to_owned(),
        }
    });
    output::line(&format!("subject      {}", text(&id, "subject")));
    output::line(&format!("roles        {}", list("roles")));
    output::line(&format!("permissions  {}", list("permissions")));
    output::line(&format!("issuer       {}", text(&id, "issuer")));
    output::line(&format!("expires      {}", or_dash(expires)));
    Ok(exit::OK)
}
