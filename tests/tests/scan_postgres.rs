//! The `postgres` connector against a real PostgreSQL database that the test creates
//! and fills: seeded values are found in the right `schema.table.column` with exact
//! counts, include/exclude lists and row sampling apply, no raw value is stored, and
//! the connection password appears in no log line, status or error.

use std::collections::BTreeMap;
use std::time::Duration;

use meridian_tests::pg;
use meridian_tests::process::{SiteProcess, free_port};
use meridian_tests::values;
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde_json::{Value, json};
use sqlx::Connection;

const PASSWORD: &str = "Pw-canary-7f3e9a1c";

async fn exec(conn: &mut sqlx::PgConnection, sql: String) {
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .execute(&mut *conn)
        .await
        .expect("setup statement");
}

/// Creates the schemas, fills them and returns (scanner URL, raw values written).
async fn seed_database() -> (String, Vec<String>) {
    let admin = pg::fresh_database().await;
    let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap();
    let role = format!("scanner_{}", uuid::Uuid::new_v4().simple());
    exec(
        &mut conn,
        format!("CREATE ROLE {role} LOGIN PASSWORD '{PASSWORD}'"),
    )
    .await;
    for ddl in [
        "CREATE SCHEMA crm",
        "CREATE SCHEMA audit",
        "CREATE TABLE crm.customers (id serial PRIMARY KEY, name text, email text, card text, note text, internal_ref text, balance numeric)",
        "CREATE TABLE crm.orders (id serial PRIMARY KEY, customer_email text, iban text, total numeric)",
        "CREATE TABLE crm.secrets (id serial PRIMARY KEY, value text)",
        "CREATE TABLE audit.log (id serial PRIMARY KEY, entry text)",
        "CREATE VIEW crm.customer_emails AS SELECT email FROM crm.customers",
    ] {
        exec(&mut conn, ddl.to_owned()).await;
    }
    let mut rng = StdRng::seed_from_u64(99);
    let mut raw = Vec::new();
    for i in 0..30 {
        let email = values::email(&mut rng);
        let card = if i % 3 == 0 {
            values::card(&mut rng, true)
        } else {
            "n/a".into()
        };
        let note = if i % 5 == 0 {
            format!("ssn {}", values::ssn(&mut rng, true))
        } else {
            "regular customer".into()
        };
        let internal = format!("owner {}", values::email(&mut rng));
        sqlx::query("INSERT INTO crm.customers (name, email, card, note, internal_ref, balance) VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(format!("customer {i}"))
            .bind(&email)
            .bind(&card)
            .bind(&note)
            .bind(&internal)
            .bind(i64::from(i) * 100)
            .execute(&mut conn)
            .await
            .unwrap();
        raw.push(email);
    }
    for _ in 0..12 {
        let email = values::email(&mut rng);
        let iban = values::iban(&mut rng, true);
        sqlx::query("INSERT INTO crm.orders (customer_email, iban, total) VALUES ($1, $2, 10)")
            .bind(&email)
            .bind(&iban)
            .execute(&mut conn)
            .await
            .unwrap();
        raw.push(iban.replace(' ', ""));
    }
    exec(
        &mut conn,
        "INSERT INTO crm.secrets (value) VALUES ('hidden@example.com')".into(),
    )
    .await;
    exec(
        &mut conn,
        "INSERT INTO audit.log (entry) VALUES ('login by audit@example.com')".into(),
    )
    .await;
    for grant in [
        format!("GRANT USAGE ON SCHEMA crm, audit TO {role}"),
        format!("GRANT SELECT ON ALL TABLES IN SCHEMA crm, audit TO {role}"),
    ] {
        exec(&mut conn, grant).await;
    }
    let _ = conn.close().await;
    let url = admin.replacen("://", &format!("://{role}:{PASSWORD}@"), 1);
    // The admin URL may already carry a user: keep only ours.
    let url = match url.split_once('@') {
        Some((head, tail)) if tail.contains('@') => {
            format!("{head}@{}", tail.split_once('@').unwrap().1)
        }
        _ => url,
    };
    (url, raw)
}

async fn get(http: &reqwest::Client, base: &str, path: &str) -> (Value, String) {
    let text = http
        .get(format!("{base}{path}"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!text.contains(PASSWORD), "password in GET {path}");
    (serde_json::from_str(&text).unwrap_or(Value::Null), text)
}

async fn run_job(http: &reqwest::Client, base: &str, body: Value) -> (String, Value) {
    let resp = http
        .post(format!("{base}/start_job"))
        .json(&body)
        .send()
        .await
        .unwrap();
    let text = resp.text().await.unwrap();
    assert!(!text.contains(PASSWORD));
    let job = serde_json::from_str::<Value>(&text).unwrap()["job_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let start = std::time::Instant::now();
    loop {
        let (s, _) = get(http, base, &format!("/get_job_status/{job}")).await;
        if matches!(s["state"].as_str(), Some("COMPLETED" | "FAILED")) {
            return (job, s);
        }
        assert!(start.elapsed() < Duration::from_secs(120), "{s}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn by_location(
    http: &reqwest::Client,
    base: &str,
    job: &str,
) -> BTreeMap<(String, String), i64> {
    let (page, _) = get(http, base, &format!("/jobs/{job}/findings?limit=1000")).await;
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                (
                    f["location"].as_str().unwrap().to_owned(),
                    f["classifier"].as_str().unwrap().to_owned(),
                ),
                f["count"].as_i64().unwrap(),
            )
        })
        .collect()
}

fn loc(l: &str, c: &str, n: i64) -> ((String, String), i64) {
    ((l.to_owned(), c.to_owned()), n)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seeded_values_are_found_per_column_and_the_password_never_shows() {
    meridian_tests::init();
    let (url, raw) = seed_database().await;
    let bad_url = pg::replace_database(&url, "no_such_database");
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let config = dir.path().join("site.yaml");
    std::fs::write(
        &config,
        format!(
            "node:\n  data_dir: {}\nlog:\n  level: debug\nworker:\n  in_process_thread_count: 2\n  global_cpu_threshold_percent: 100\n  max_retries: 2\n  retry_backoff_base_milliseconds: 50\n  retry_backoff_max_seconds: 1\ndata_sources:\n  - id: crm\n    kind: postgres\n    url: \"{url}\"\n    exclude_schemas: [audit]\n    exclude_tables: [crm.secrets]\n    exclude_columns: [customers.internal_ref]\n  - id: broken\n    kind: postgres\n    url: \"{bad_url}\"\n",
            data.display()
        ),
    )
    .unwrap();
    let log = dir.path().join("site.log");
    let site = SiteProcess::start(&config, free_port(), &log).await;
    let http = reqwest::Client::new();

    let (job, status) = run_job(
        &http,
        &site.base,
        json!({ "name": "crm", "data_sources": ["crm"] }),
    )
    .await;
    assert_eq!(
        status["state"],
        "COMPLETED",
        "{status}\n{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    assert_eq!(
        status["objects"]["discovered"], 2,
        "views, excluded schemas and tables are not objects: {status}"
    );
    let want: BTreeMap<_, _> = [
        loc("crm.customers.card", "payment_card", 10),
        loc("crm.customers.email", "email", 30),
        loc("crm.customers.note", "us_ssn", 6),
        loc("crm.orders.customer_email", "email", 12),
        loc("crm.orders.iban", "iban", 12),
    ]
    .into_iter()
    .collect();
    assert_eq!(by_location(&http, &site.base, &job).await, want);
    assert_eq!(
        status["findings"]["by_data_source"]["crm"]["level"], "HIGH",
        "{status}"
    );

    // Sampling: the first 10 rows of each table in physical order.
    let (job, status) = run_job(
        &http,
        &site.base,
        json!({ "name": "sampled", "data_sources": ["crm"], "options": { "sample_rows": 10 } }),
    )
    .await;
    assert_eq!(status["state"], "COMPLETED", "{status}");
    let want: BTreeMap<_, _> = [
        loc("crm.customers.card", "payment_card", 4),
        loc("crm.customers.email", "email", 10),
        loc("crm.customers.note", "us_ssn", 2),
        loc("crm.orders.customer_email", "email", 10),
        loc("crm.orders.iban", "iban", 10),
    ]
    .into_iter()
    .collect();
    assert_eq!(by_location(&http, &site.base, &job).await, want);

    // A source that cannot be reached fails its job; the error names no secret.
    let (_, status) = run_job(
        &http,
        &site.base,
        json!({ "name": "broken", "data_sources": ["broken"] }),
    )
    .await;
    assert_eq!(status["state"], "FAILED", "{status}");
    for path in [
        "/jobs",
        "/data_sources",
        "/health",
        "/metrics",
        "/job_statuses?since_version=0",
    ] {
        get(&http, &site.base, path).await;
    }
    site.signal("TERM");
    let mut site = site;
    site.wait_exit(Duration::from_secs(30));
    let log_text = std::fs::read_to_string(&log).unwrap();
    assert!(
        log_text.contains("broken"),
        "the failure was logged:\n{log_text}"
    );
    assert!(
        !log_text.contains(PASSWORD),
        "password in the log:\n{log_text}"
    );
    for entry in std::fs::read_dir(&data).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        assert!(!text.contains(PASSWORD), "password in the site database");
        for v in &raw {
            assert!(
                !text.contains(v.as_str()),
                "raw value {v} in the site database"
            );
        }
    }
}
