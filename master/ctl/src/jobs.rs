//! `jobs create|list|show|cancel|findings`: each prints data on stdout in the
//! chosen format and returns its exit code; `jobs watch` is in `watch.rs`.

use std::io::{BufRead, IsTerminal, Write};

use meridian_wire::{JobOptions, Page};
use reqwest::Method;
use serde_json::{Value, json};

use crate::api::{self, CancelTarget, JobFilter, JobView};
use crate::cli::{CancelArgs, CreateArgs, FilterArgs, FindingsArgs, FindingsFormat, ListArgs};
use crate::client::{Master, encode};
use crate::exit::{self, CliError};
use crate::output::{self, Format, Table, csv_field, freshness, or_dash, paint_state};

impl From<&FilterArgs> for JobFilter {
    fn from(f: &FilterArgs) -> JobFilter {
        JobFilter {
            state: f.state.clone().map(|s| s.to_uppercase()),
            site: f.site.clone(),
            name: f.name.clone(),
            since: f.since.clone(),
            until: f.until.clone(),
        }
    }
}

pub async fn create(m: &Master, fmt: Format, a: CreateArgs) -> Result<u8, CliError> {
    let options = JobOptions {
        classifiers: (!a.classifiers.is_empty()).then_some(a.classifiers),
        ocr: a.ocr,
        tables: a.tables,
        max_file_size_mb: a.max_file_size_mb,
        max_objects: a.max_objects,
        ..JobOptions::default()
    };
    let mut body = json!({"name": a.name, "data_sources": a.data_sources, "options": options});
    if let Some(p) = a.priority {
        body["priority"] = json!(p);
    }
    if let Some(k) = a.idempotency_key {
        body["idempotency_key"] = json!(k);
    }
    let answer = m.call(Method::POST, "/api/v1/jobs", Some(&body)).await?;
    if fmt != Format::Text {
        output::value(fmt, &answer.body);
        return Ok(exit::OK);
    }
    let view: JobView = answer.parse()?;
    if answer.status == 200 {
        eprintln!("meridianctl: the idempotency key was used before; this is the job it created");
    }
    output::line(&format!("created job {}", view.job_id));
    print_view(&view);
    Ok(exit::OK)
}

pub async fn list(m: &Master, fmt: Format, a: ListArgs) -> Result<u8, CliError> {
    let jobs = api::list_jobs(m, &JobFilter::from(&a.filter), a.limit).await?;
    if fmt != Format::Text {
        let items: Vec<Value> = jobs
            .iter()
            .map(|j| serde_json::to_value(j).unwrap_or(Value::Null))
            .collect();
        output::list(fmt, &items);
        return Ok(exit::OK);
    }
    let color = output::color();
    let mut t = Table::new(&["JOB", "NAME", "STATE", "CREATED"]);
    for j in &jobs {
        let state = if j.cancel_requested && !exit::is_final(&j.state) {
            format!("{} (cancel asked)", paint_state(&j.state, color))
        } else {
            paint_state(&j.state, color)
        };
        t.row(vec![
            j.job_id.clone(),
            j.name.clone(),
            state,
            j.created_at.clone(),
        ]);
    }
    t.print("no jobs");
    Ok(exit::OK)
}

pub async fn show(m: &Master, fmt: Format, job: &str) -> Result<u8, CliError> {
    let (raw, view) = api::job_view_raw(m, job).await?;
    if fmt == Format::Text {
        print_view(&view);
    } else {
        output::value(fmt, &raw);
    }
    Ok(exit::for_state(&view.state, view.site_unreachable()))
}

/// The unified view as text: the job, then one row per site.
pub fn print_view(v: &JobView) {
    let color = output::color();
    let mut state = paint_state(&v.state, color);
    if v.cancel_requested && !exit::is_final(&v.state) {
        state.push_str("  (cancel requested)");
    }
    let classifiers: Vec<String> = v
        .findings
        .by_classifier
        .iter()
        .map(|(k, n)| format!("{k} {n}"))
        .collect();
    output::line(&format!("job       {}", v.job_id));
    output::line(&format!("name      {}", v.name));
    output::line(&format!("state     {state}"));
    output::line(&format!("created   {}", v.created_at));
    output::line(&format!(
        "objects   {}/{} processed",
        v.objects.processed, v.objects.discovered
    ));
    output::line(&format!(
        "findings  {}{}",
        v.findings.total,
        if classifiers.is_empty() {
            String::new()
        } else {
            format!(" ({})", classifiers.join(", "))
        }
    ));
    output::line("");
    let mut t = Table::new(&[
        "SITE",
        "STATE",
        "PROGRESS",
        "OBJECTS",
        "FINDINGS",
        "REACHABILITY",
        "FRESHNESS",
        "ERROR",
    ]);
    for s in &v.sites {
        t.row(vec![
            s.site.clone(),
            paint_state(&s.state, color),
            format!("{:.0}%", s.progress * 100.0),
            format!("{}/{}", s.objects.processed, s.objects.discovered),
            s.findings.total.to_string(),
            s.site_reachability.clone(),
            freshness(s.status_age_seconds, s.stale),
            or_dash(s.error.as_deref()),
        ]);
    }
    t.print("no sites");
}

pub async fn cancel(m: &Master, fmt: Format, a: CancelArgs) -> Result<u8, CliError> {
    let filter = JobFilter::from(&a.filter);
    let target = if !a.jobs.is_empty() {
        CancelTarget::Ids(a.jobs.clone())
    } else if !filter.is_empty() {
        CancelTarget::Filter(filter)
    } else {
        return Err(CliError::Usage(
            "name the jobs to cancel: job ids, or a filter (--state, --site, --name, --since, --until)"
                .into(),
        ));
    };
    let preview = api::cancel_jobs(m, &target, true, None).await?;
    if a.dry_run || preview.matched == 0 {
        if fmt == Format::Text {
            if a.dry_run {
                output::line(&format!("{} job(s) would be cancelled", preview.matched));
            } else {
                output::line("no job matches; nothing was cancelled");
            }
        } else {
            output::value(fmt, &serde_json::to_value(&preview).unwrap_or_default());
        }
        return Ok(exit::OK);
    }
    // A number confirmed on the terminal is a promise: the master is told to cancel
    // nothing if the filter matches another number of jobs by now.
    let confirmed = if a.yes {
        None
    } else {
        confirm(preview.matched)?;
        Some(preview.matched)
    };
    let outcome = api::cancel_jobs(m, &target, false, confirmed).await?;
    if fmt == Format::Text {
        for r in outcome.results.iter().filter(|r| r.outcome == "cancelled") {
            output::line(&format!("cancel requested: {}", r.job_id));
        }
    } else {
        output::value(fmt, &serde_json::to_value(&outcome).unwrap_or_default());
    }
    let mut code = exit::OK;
    for r in &outcome.results {
        match r.outcome.as_str() {
            "cancelled" => {}
            "already_final" => eprintln!(
                "meridianctl: job {} is already final; nothing to cancel",
                r.job_id
            ),
            "not_found" => {
                eprintln!("meridianctl: job {} does not exist", r.job_id);
                code = exit::ERROR;
            }
            other => eprintln!("meridianctl: job {}: {other}", r.job_id),
        }
    }
    if let Some(why) = &outcome.interrupted {
        eprintln!("meridianctl: the cancel stopped: {why}");
        code = exit::ERROR;
    }
    if outcome.remaining > 0 {
        eprintln!(
            "meridianctl: {} matching job(s) were left uncancelled; run the command again",
            outcome.remaining
        );
        code = exit::ERROR;
    }
    Ok(code)
}

/// Asks on the terminal; without one there is nobody to ask, so refuse.
fn confirm(n: i64) -> Result<(), CliError> {
    if !std::io::stdin().is_terminal() {
        return Err(CliError::Usage(format!(
            "refusing to cancel {n} job(s) without confirmation: stdin is not a terminal; pass --yes"
        )));
    }
    eprint!("Cancel {n} job(s)? [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .map_err(|e| CliError::Other(format!("cannot read the answer: {e}")))?;
    match answer.trim().to_lowercase().as_str() {
        "y" | "yes" => Ok(()),
        _ => Err(CliError::Other(
            "not confirmed; nothing was cancelled".into(),
        )),
    }
}

/// The columns of the master's own CSV export (`?format=csv`), in its order.
const CSV_HEADER: &str =
    "site,finding_id,data_source,object,classifier,location,count,masked_sample,confidence";

fn csv_row(f: &Value) -> String {
    let text = |k: &str| match &f[k] {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    };
    [
        "site",
        "finding_id",
        "data_source",
        "object",
        "classifier",
        "location",
        "count",
        "masked_sample",
        "confidence",
    ]
    .iter()
    .map(|k| csv_field(&text(k)))
    .collect::<Vec<_>>()
    .join(",")
}

/// Walks every page of the job's findings; csv and jsonl are written as pages
/// arrive, json and the table once all are read.
pub async fn findings(m: &Master, fmt: Format, a: FindingsArgs) -> Result<u8, CliError> {
    let format = a.format.unwrap_or(match fmt {
        Format::Text => FindingsFormat::Table,
        Format::Json => FindingsFormat::Json,
        Format::Jsonl => FindingsFormat::Jsonl,
    });
    if format == FindingsFormat::Csv {
        output::line(CSV_HEADER);
    }
    let mut kept: Vec<Value> = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!("/api/v1/jobs/{}/findings?limit=1000", encode(&a.job));
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={}", encode(c)));
        }
        let page: Page<Value> = m.get(&path).await?.parse()?;
        for f in page.items {
            if a.site.as_deref().is_some_and(|s| f["site"] != s) {
                continue;
            }
            match format {
                FindingsFormat::Csv => output::line(&csv_row(&f)),
                FindingsFormat::Jsonl => output::line(&f.to_string()),
                FindingsFormat::Json | FindingsFormat::Table => kept.push(f),
            }
        }
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    match format {
        FindingsFormat::Json => output::list(Format::Json, &kept),
        FindingsFormat::Table => {
            let mut t = Table::new(&[
                "SITE",
                "DATA_SOURCE",
                "OBJECT",
                "CLASSIFIER",
                "LOCATION",
                "COUNT",
                "SAMPLE",
            ]);
            let s = |f: &Value, k: &str| f[k].as_str().unwrap_or_default().to_owned();
            for f in &kept {
                t.row(vec![
                    s(f, "site"),
                    s(f, "data_source"),
                    s(f, "object"),
                    s(f, "classifier"),
                    s(f, "location"),
                    f["count"].to_string(),
                    s(f, "masked_sample"),
                ]);
            }
            t.print("no findings");
        }
        FindingsFormat::Csv | FindingsFormat::Jsonl => {}
    }
    Ok(exit::OK)
}
