//! Pages of one large job's findings as a site's `GET /jobs/{id}/findings` reads them
//! from its store: the first page unfiltered, the first page of a common classifier
//! (1 finding in 2) and of a rare one (1 in 1,000), and every page of the rare one,
//! on SQLite and PostgreSQL. A filtered page reads at most
//! `FindingsRange::SCAN_LIMIT` findings past its cursor; these figures say what one
//! such page costs and how many it takes to walk a rare classifier.
//!
//! `cargo bench -p meridian-tests --bench findings_pages -- [--findings 1000000]
//!  [--backend sqlite|postgres|both]`
//!
//! PostgreSQL comes from `DATABASE_URL` or a throwaway cluster started here.

use std::time::{Duration, Instant};

use meridian_store::{FindingsRange, Store};
use meridian_tests::Backend;
use meridian_tests::store::{new_job, open};
use sqlx::{AnyConnection, Connection};

struct Args {
    findings: i64,
    backends: Vec<Backend>,
}

fn args() -> Args {
    let mut a = Args {
        findings: 1_000_000,
        backends: vec![Backend::Sqlite, Backend::Postgres],
    };
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < argv.len() {
        let value = argv.get(i + 1).cloned().unwrap_or_default();
        match argv[i].as_str() {
            "--findings" => a.findings = value.parse().expect("--findings N"),
            "--backend" => {
                a.backends = match value.as_str() {
                    "sqlite" => vec![Backend::Sqlite],
                    "postgres" => vec![Backend::Postgres],
                    _ => vec![Backend::Sqlite, Backend::Postgres],
                }
            }
            // cargo bench passes --bench; ignore what is not ours.
            _ => {
                i += 1;
                continue;
            }
        }
        i += 2;
    }
    a
}

/// Objects the findings are spread over.
const OBJECTS: i64 = 10_000;

/// `n` from 1 to `to`, as a subquery with column `n`.
fn series(backend: Backend, to: i64) -> String {
    match backend {
        Backend::Sqlite => format!(
            "WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < {to}) \
             SELECT n FROM s"
        ),
        Backend::Postgres => format!("SELECT n FROM generate_series(1, {to}) AS n"),
    }
}

/// Job `j1`'s objects and `findings` findings, one statement per table: classifier
/// `rare` for every 1,000th, `common` for every other one, `other` for the rest.
async fn seed(url: &str, backend: Backend, findings: i64) {
    let mut conn = AnyConnection::connect(url).await.expect("connect");
    let objects = format!(
        "INSERT INTO discovered_objects (job_id, data_source_id, object_key, size_bytes, progress_record_id) \
         SELECT 'j1', 'ds1', 'obj' || n, 1, 0 FROM ({}) AS g",
        series(backend, OBJECTS)
    );
    let rows = format!(
        "INSERT INTO findings (job_id, object_id, classifier, location, count, masked_sample, confidence) \
         SELECT 'j1', (SELECT MIN(id) FROM discovered_objects WHERE job_id = 'j1') + n % {OBJECTS}, \
         CASE WHEN n % 1000 = 0 THEN 'rare' WHEN n % 2 = 0 THEN 'common' ELSE 'other' END, \
         'line:' || n, 1, '***-**-6789', 0.9 FROM ({}) AS g",
        series(backend, findings)
    );
    for q in [objects, rows] {
        sqlx::query(sqlx::AssertSqlSafe(q))
            .execute(&mut conn)
            .await
            .expect("seed");
    }
    if backend == Backend::Postgres {
        sqlx::query("ANALYZE")
            .execute(&mut conn)
            .await
            .expect("analyze");
    }
}

/// The time of one page, best of five (the first run warms the cache).
async fn page_time(store: &dyn Store, range: &FindingsRange) -> (Duration, usize) {
    let mut best = Duration::MAX;
    let mut rows = 0;
    for _ in 0..5 {
        let t = Instant::now();
        let page = store.findings_page("j1", range).await.expect("page");
        best = best.min(t.elapsed());
        rows = page.rows.len();
    }
    (best, rows)
}

/// Pages through every finding of `range`'s filter: (time, pages, rows).
async fn walk(store: &dyn Store, range: &FindingsRange) -> (Duration, usize, usize) {
    let mut range = range.clone();
    let (mut pages, mut rows) = (0, 0);
    let t = Instant::now();
    loop {
        let page = store.findings_page("j1", &range).await.expect("page");
        pages += 1;
        rows += page.rows.len();
        let full = page.rows.len() as i64 == range.limit;
        range.after_id = match (full, page.rows.last(), page.scanned_to) {
            (true, Some(f), _) => f.id,
            (_, _, Some(to)) => to,
            _ => return (t.elapsed(), pages, rows),
        };
    }
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

#[tokio::main]
async fn main() {
    let a = args();
    sqlx::any::install_default_drivers();
    println!(
        "findings_pages: one job, {} findings over {OBJECTS} objects; pages of 100; \
         a filtered page reads at most {} findings",
        a.findings,
        FindingsRange::SCAN_LIMIT
    );
    for backend in a.backends {
        let db = open(backend).await;
        db.store.create_job(&new_job("j1", "h")).await.expect("job");
        let t = Instant::now();
        seed(&db.url, backend, a.findings).await;
        println!(
            "\n{backend:?}: seeded in {:.1} s",
            t.elapsed().as_secs_f64()
        );
        let store = db.store.as_ref();
        let of = |classifier: Option<&str>| FindingsRange {
            classifier: classifier.map(str::to_owned),
            ..FindingsRange::after(0, 100)
        };
        for (what, range) in [
            ("first page, unfiltered", of(None)),
            ("first page, common classifier", of(Some("common"))),
            ("first page, rare classifier", of(Some("rare"))),
            ("first page, absent classifier", of(Some("absent"))),
        ] {
            let (d, rows) = page_time(store, &range).await;
            println!("  {what:<32} {:>10}  {rows} rows", ms(d));
        }
        for classifier in ["rare", "absent"] {
            let (d, pages, rows) = walk(store, &of(Some(classifier))).await;
            println!(
                "  every page, {classifier:<20} {:>10}  {pages} pages, {rows} rows ({} per page)",
                ms(d),
                ms(d / pages as u32)
            );
        }
    }
}
