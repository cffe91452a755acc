//! The `postgres` connector: discovers the tables of a PostgreSQL database (schema and
//! table include/exclude lists; one object per table, key `schema.table`) and scans a
//! sample of each table's rows, every column cast to text, with the classifiers.
//! Findings are located as `schema.table.column` with a count.
//!
//! Sampling: `sample_percent` below 100 reads a `TABLESAMPLE BERNOULLI (p)
//! REPEATABLE (0)` sample; then at most `sample_rows` rows are read in the order a
//! sequential scan returns them (physical order: `synchronize_seqscans` is off for
//! the session, so every scan starts at the first page and a retry reads the same
//! rows). The connection URL is a secret: errors are redacted before they leave here.
//!
//! The client is tokio-postgres: `target` reads the URL (libpq's defaults and
//! parameters), `tls` makes the TLS sessions its `sslmode` asks for.

use std::collections::HashMap;
use std::pin::pin;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use futures::TryStreamExt;
use meridian_wire::states::ObjectOutcome;
use tokio_postgres::Client;
use tokio_postgres::error::SqlState;

use super::classify::{ClassifierRef, TextScanner};
use super::{BatchSink, ObjectScan, ScanError, check};
use crate::settings::{PostgresSource, SecretString};
use meridian_wire::task::{NewFinding, NewObject};

mod target;
mod tls;

/// Row sampling for one task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sampling {
    pub rows: u64,
    pub percent: u32,
}

// The catalog's names are `sql_identifier`s; cast to text so they read as strings.
const COLUMNS: &str = "SELECT c.table_schema::text, c.table_name::text, c.column_name::text \
     FROM information_schema.columns c JOIN information_schema.tables t \
       ON t.table_schema = c.table_schema AND t.table_name = c.table_name \
     WHERE t.table_type = 'BASE TABLE' \
       AND c.table_schema NOT IN ('pg_catalog', 'information_schema') \
       AND c.table_schema NOT LIKE 'pg\\_toast%' AND c.table_schema NOT LIKE 'pg\\_temp%' \
       AND ($1::text IS NULL OR c.table_schema || '.' || c.table_name = $1) \
     ORDER BY c.table_schema, c.table_name, c.ordinal_position";

/// The session: values cast to text read the same everywhere (times in UTC, ISO
/// dates, floats to the last digit), sequential scans make a sample repeatable, and
/// a customer database is never written and never waited on for long: a sample
/// query blocked on a lock or running away ends with an error (retryable) instead of
/// holding the task's lease for ever.
const SESSION: &str = "SET synchronize_seqscans = off; SET TimeZone = 'UTC'; \
     SET DateStyle = 'ISO, MDY'; SET extra_float_digits = 2; \
     SET default_transaction_read_only = on; SET statement_timeout = '120s'; \
     SET lock_timeout = '10s'; SET idle_in_transaction_session_timeout = '300s'";

/// Removes the URL and its password from a database error, whatever the driver put
/// in its message.
fn redact(message: String, url: &SecretString) -> String {
    let url = url.expose();
    let mut m = message.replace(url, "[redacted]");
    if let Some(rest) = url.split_once("://").map(|(_, r)| r)
        && let Some((userinfo, _)) = rest.split_once('@')
        && let Some((_, password)) = userinfo.split_once(':')
        && !password.is_empty()
    {
        m = m.replace(password, "[redacted]");
    }
    m
}

/// An error's message with its causes, which the client keeps apart (its own
/// message alone says only "db error").
fn describe(e: &tokio_postgres::Error) -> String {
    let mut m = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        m.push_str(": ");
        m.push_str(&c.to_string());
        cause = c.source();
    }
    m
}

/// One open session with a data source, and what to cut from its errors.
struct Conn {
    client: Client,
    /// Drives the socket; ends when `client` is dropped.
    driver: tokio::task::JoinHandle<()>,
    /// Why the socket closed, when it closed on an error.
    closed: Arc<Mutex<Option<String>>>,
    url: SecretString,
    /// The password in every form it was given (escaped, decoded, `.pgpass`).
    secrets: Vec<String>,
}

impl Conn {
    fn scrub(&self, message: String) -> String {
        scrub(message, &self.url, &self.secrets)
    }

    fn error(&self, src: &PostgresSource, e: &tokio_postgres::Error) -> ScanError {
        let mut m = describe(e);
        if e.is_closed()
            && let Some(why) = self.closed.lock().ok().and_then(|c| c.clone())
        {
            m = format!("{m}: {why}");
        }
        ScanError::Retryable(format!("data source {}: {}", src.id, self.scrub(m)))
    }

    /// Ends the session politely: the driver sends the terminate message once the
    /// client is gone.
    async fn close(self) {
        drop(self.client);
        let _ = self.driver.await;
    }
}

fn scrub(message: String, url: &SecretString, secrets: &[String]) -> String {
    secrets.iter().fold(redact(message, url), |m, s| {
        m.replace(s.as_str(), "[redacted]")
    })
}

async fn connect(src: &PostgresSource) -> Result<Conn, ScanError> {
    let url = src.connection_url().map_err(ScanError::Permanent)?;
    let target = target::parse(url.expose()).map_err(|()| {
        ScanError::Permanent(format!(
            "data source {}: the database URL is invalid",
            src.id
        ))
    })?;
    let cannot = |m: String| {
        ScanError::Retryable(format!(
            "data source {}: cannot connect: {}",
            src.id,
            scrub(m, &url, &target.secrets)
        ))
    };
    let tls = tls::connector(&target.tls).await.map_err(cannot)?;
    let (client, connection) = target
        .config
        .connect(tls)
        .await
        .map_err(|e| cannot(describe(&e)))?;
    let closed = Arc::new(Mutex::new(None));
    let why = closed.clone();
    let driver = tokio::spawn(async move {
        if let Err(e) = connection.await
            && let Ok(mut why) = why.lock()
        {
            *why = Some(describe(&e));
        }
    });
    let conn = Conn {
        client,
        driver,
        closed,
        url,
        secrets: target.secrets,
    };
    if let Err(e) = conn.client.batch_execute(SESSION).await {
        return Err(conn.error(src, &e));
    }
    Ok(conn)
}

/// Whether `name` (e.g. `public.users`) is named by `list`, whose entries may also
/// omit leading parts (`users`, or `users.email` for a column).
fn listed(list: &[String], parts: &[&str]) -> bool {
    list.iter()
        .any(|entry| (0..parts.len()).any(|skip| parts[skip..].join(".") == *entry))
}

fn table_wanted(src: &PostgresSource, schema: &str, table: &str) -> bool {
    (src.schemas.is_empty() || src.schemas.iter().any(|s| s == schema))
        && !src.exclude_schemas.iter().any(|s| s == schema)
        && (src.tables.is_empty() || listed(&src.tables, &[schema, table]))
        && !listed(&src.exclude_tables, &[schema, table])
}

/// (schema, table, columns) of the wanted tables, or of the one named `key`.
async fn tables(
    conn: &Conn,
    src: &PostgresSource,
    key: Option<&str>,
) -> Result<Vec<(String, String, Vec<String>)>, ScanError> {
    let rows = conn
        .client
        .query(COLUMNS, &[&key])
        .await
        .map_err(|e| conn.error(src, &e))?;
    let mut out: Vec<(String, String, Vec<String>)> = Vec::new();
    for r in rows {
        let (Ok(schema), Ok(table), Ok(column)) = (
            r.try_get::<_, String>(0),
            r.try_get::<_, String>(1),
            r.try_get::<_, String>(2),
        ) else {
            continue;
        };
        if !table_wanted(src, &schema, &table)
            || listed(&src.exclude_columns, &[&schema, &table, &column])
        {
            continue;
        }
        match out.last_mut() {
            Some((s, t, cols)) if *s == schema && *t == table => cols.push(column),
            _ => out.push((schema, table, vec![column])),
        }
    }
    Ok(out)
}

/// Lists the wanted tables as objects, in schema then table order. Runs on a
/// blocking thread: the catalog query goes through `rt`, the batches to `sink`
/// outside it (the sink may block).
pub fn discover(
    src: &PostgresSource,
    rt: &tokio::runtime::Handle,
    batch_size: usize,
    sink: &mut BatchSink<'_>,
    abort: &AtomicBool,
) -> Result<(), ScanError> {
    let found = rt.block_on(async {
        let conn = connect(src).await?;
        let found = tables(&conn, src, None).await;
        conn.close().await;
        found
    })?;
    for chunk in found.chunks(batch_size.max(1)) {
        check(abort)?;
        let batch = chunk
            .iter()
            .map(|(s, t, _)| NewObject {
                key: format!("{s}.{t}"),
                size_bytes: 0,
                modified_at: None,
                skipped_reason: None,
            })
            .collect();
        if !sink(batch) {
            return Err(ScanError::Aborted);
        }
    }
    Ok(())
}

fn quote(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

/// Samples one table and classifies its values column by column.
pub async fn process(
    src: &PostgresSource,
    key: &str,
    object_id: i64,
    classifiers: &[ClassifierRef],
    sampling: Sampling,
    abort: &AtomicBool,
) -> Result<ObjectScan, ScanError> {
    let conn = connect(src).await?;
    let mut found = tables(&conn, src, Some(key)).await?;
    let Some((schema, table, columns)) = found.pop() else {
        return Ok(ObjectScan {
            outcome: Some(ObjectOutcome::Skipped),
            reason: Some("table vanished or excluded before it was scanned".into()),
            findings: Vec::new(),
        });
    };
    let select: Vec<String> = columns
        .iter()
        .map(|c| format!("{}::text", quote(c)))
        .collect();
    let sample = if sampling.percent < 100 {
        format!(
            " TABLESAMPLE BERNOULLI ({}) REPEATABLE (0)",
            sampling.percent
        )
    } else {
        String::new()
    };
    let sql = format!(
        "SELECT {} FROM {}.{}{sample} LIMIT {}",
        select.join(", "),
        quote(&schema),
        quote(&table),
        sampling.rows
    );
    let mut scanners: Vec<TextScanner<'_>> = columns
        .iter()
        .map(|_| TextScanner::new(classifiers, object_id))
        .collect();
    // Ok(true): stopped because the lease was lost or the job cancelled.
    let result: Result<bool, tokio_postgres::Error> = async {
        // Safe: identifiers come from the catalog and are quoted, the rest are numbers.
        let no_params: [&str; 0] = [];
        let mut rows = pin!(conn.client.query_raw(sql.as_str(), no_params).await?);
        let mut n = 0u64;
        while let Some(row) = rows.try_next().await? {
            n += 1;
            for (i, scanner) in scanners.iter_mut().enumerate() {
                if let Ok(Some(v)) = row.try_get::<_, Option<&str>>(i) {
                    scanner.scan(v, n);
                }
            }
            if n.is_multiple_of(256) && check(abort).is_err() {
                return Ok(true);
            }
        }
        Ok(false)
    }
    .await;
    if let Ok(true) = result {
        return Err(ScanError::Aborted);
    }
    if let Err(e) = result {
        if e.code() == Some(&SqlState::INSUFFICIENT_PRIVILEGE) {
            return Ok(ObjectScan {
                outcome: Some(ObjectOutcome::Skipped),
                reason: Some("permission denied".into()),
                findings: Vec::new(),
            });
        }
        return Err(conn.error(src, &e));
    }
    conn.close().await;
    let mut findings = Vec::new();
    for (column, scanner) in columns.iter().zip(scanners) {
        findings.extend(per_column(
            &format!("{schema}.{table}.{column}"),
            scanner.finish(),
        ));
    }
    Ok(ObjectScan {
        outcome: Some(ObjectOutcome::Complete),
        reason: None,
        findings,
    })
}

/// Folds a column's per-row findings into one per classifier, located at the column.
fn per_column(location: &str, rows: Vec<NewFinding>) -> Vec<NewFinding> {
    let mut by: HashMap<String, NewFinding> = HashMap::new();
    for f in rows {
        let e = by
            .entry(f.classifier.clone())
            .or_insert_with(|| NewFinding {
                location: location.to_owned(),
                count: 0,
                ..f.clone()
            });
        e.count += f.count;
        e.confidence = e.confidence.max(f.confidence);
    }
    let mut v: Vec<NewFinding> = by.into_values().collect();
    v.sort_by(|a, b| a.classifier.cmp(&b.classifier));
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_lose_the_url_and_password() {
        let url = SecretString::new("postgres://scan:hunter2-xyz@db.internal/crm");
        let m = redact(
            "error connecting to postgres://scan:hunter2-xyz@db.internal/crm: password hunter2-xyz rejected".into(),
            &url,
        );
        assert!(!m.contains("hunter2-xyz"), "{m}");
    }

    #[test]
    fn lists_match_whole_trailing_parts() {
        let l = vec!["users".to_owned(), "audit.log".to_owned()];
        assert!(listed(&l, &["public", "users"]));
        assert!(listed(&l, &["audit", "log"]));
        assert!(!listed(&l, &["public", "log"]));
        assert!(!listed(&l, &["public", "users2"]));
    }

    #[test]
    fn identifiers_are_quoted() {
        assert_eq!(quote(r#"we"ird"#), r#""we""ird""#);
    }
}
