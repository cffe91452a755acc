//! The master's filtered job list on both databases: every filter, sort and cursor
//! against a model, and 100,000 jobs whose first page the database plans as an index
//! scan. Timings are printed for docs/performance.md, never asserted.

use std::time::Instant;

use meridian_master::store::{FINAL_STATES, JobFilter, JobKey, JobSort, NewJob, Store};
use meridian_tests::{Backend, database_url, on_both};
use sqlx::Connection;

async fn store(backend: Backend) -> (Store, String, tempfile::TempDir) {
    meridian_tests::init();
    let dir = tempfile::tempdir().unwrap();
    let url = database_url(backend, dir.path()).await;
    (Store::open(&url, 4).await.expect("open"), url, dir)
}

fn job(i: i64, name: &str, site: &str) -> NewJob {
    NewJob {
        job_id: format!("{i:08}"),
        name: name.into(),
        request: "{}".into(),
        request_hash: "h".into(),
        idempotency_key: None,
        sites: vec![(site.into(), vec!["ds".into()])],
        now_ms: 1_000 + i / 2,
        trace_id: "4bf92f3577b34da6a3ce929d0e0e4736".into(),
    }
}

/// Every page of `f` in `sort`, following the cursor by the last row.
async fn all_pages(s: &Store, f: &JobFilter, sort: JobSort, page: i64) -> Vec<String> {
    let mut out = Vec::new();
    let mut after: Option<JobKey> = None;
    loop {
        let rows = s.find_jobs(f, sort, after.as_ref(), page).await.unwrap();
        let Some(last) = rows.last() else { break };
        after = Some(match sort {
            JobSort::NameAsc => JobKey::Name(last.name.clone(), last.job_id.clone()),
            _ => JobKey::Created(last.created_at, last.job_id.clone()),
        });
        let n = rows.len();
        out.extend(rows.into_iter().map(|j| j.job_id));
        if (n as i64) < page {
            break;
        }
    }
    out
}

async fn filters_sorts_and_pages_match_a_model(backend: Backend) {
    let (s, _, _dir) = store(backend).await;
    let names = ["nightly a", "Nightly b", "weekly_x", "100%", "night?"];
    for i in 0..40 {
        let site = if i % 3 == 0 { "london" } else { "tokyo" };
        s.create_job(&job(i, names[i as usize % names.len()], site))
            .await
            .unwrap();
        if i % 4 == 0 {
            s.set_job_state(&format!("{i:08}"), "COMPLETED", 5_000)
                .await
                .unwrap();
        }
    }
    // Newest first by default, paging in threes never skips or repeats.
    let all = all_pages(&s, &JobFilter::default(), JobSort::CreatedDesc, 3).await;
    let mut want: Vec<String> = (0..40).map(|i| format!("{i:08}")).collect();
    want.reverse();
    assert_eq!(all, want);
    let asc = all_pages(&s, &JobFilter::default(), JobSort::CreatedAsc, 7).await;
    want.reverse();
    assert_eq!(asc, want);
    // Names: case-sensitive globs; `%` and `_` are literal.
    let f = |name: &str| JobFilter {
        name: Some(name.into()),
        ..Default::default()
    };
    assert_eq!(
        all_pages(&s, &f("nightly*"), JobSort::NameAsc, 5)
            .await
            .len(),
        8
    );
    assert_eq!(
        all_pages(&s, &f("?ightly*"), JobSort::NameAsc, 5)
            .await
            .len(),
        16
    );
    assert_eq!(
        all_pages(&s, &f("100%"), JobSort::NameAsc, 5).await.len(),
        8
    );
    assert_eq!(
        all_pages(&s, &f("10_%"), JobSort::NameAsc, 5).await.len(),
        0
    );
    assert_eq!(
        all_pages(&s, &f("weekly_x"), JobSort::NameAsc, 5)
            .await
            .len(),
        8
    );
    let by_name = all_pages(&s, &JobFilter::default(), JobSort::NameAsc, 6).await;
    assert_eq!(by_name.len(), 40);
    // Site, state, time range and what a bulk cancel may select combine.
    let london = JobFilter {
        site: Some("london".into()),
        ..Default::default()
    };
    assert_eq!(s.count_jobs(&london).await.unwrap(), 14);
    let done = JobFilter {
        states: vec!["COMPLETED".into()],
        ..Default::default()
    };
    assert_eq!(s.count_jobs(&done).await.unwrap(), 10);
    let open = JobFilter {
        cancellable: true,
        created_after: Some(1_000 + 5),
        created_before: Some(1_000 + 15),
        ..Default::default()
    };
    // Jobs 10..=29 were created in [1005, 1015); of those 10, 12, …, 28 (every 4th) are final.
    let ids = all_pages(&s, &open, JobSort::CreatedAsc, 4).await;
    let want: Vec<String> = (10..30)
        .filter(|i| i % 4 != 0)
        .map(|i| format!("{i:08}"))
        .collect();
    assert_eq!(ids, want);
    // A job being cancelled is not selected again, so the next call of a bulk cancel
    // reaches the jobs after it; the plain list still shows it.
    for id in &want[..3] {
        assert!(s.request_cancel(id, 6_000).await.unwrap());
    }
    let ids = all_pages(&s, &open, JobSort::CreatedAsc, 4).await;
    assert_eq!(ids, want[3..]);
    assert_eq!(s.count_jobs(&open).await.unwrap(), want.len() as i64 - 3);
    let listed = JobFilter {
        cancellable: false,
        ..open.clone()
    };
    assert_eq!(s.count_jobs(&listed).await.unwrap(), 20);
    assert!(FINAL_STATES.contains(&"COMPLETED"));
}

const MANY: i64 = 100_000;

/// Loads `MANY` jobs in one statement per table (the store's own create is one
/// transaction per job: too slow for a fixture).
async fn load(url: &str, backend: Backend) {
    let sql_jobs = format!(
        "INSERT INTO jobs (job_id, name, request, request_hash, state, created_at, updated_at) \
         SELECT 'j' || lpad_id, 'job ' || n, '{{}}', 'h', \
         CASE WHEN n % 10 = 0 THEN 'RUNNING' ELSE 'COMPLETED' END, 1700000000000 + n, 1700000000000 + n \
         FROM ({}) AS g",
        series(backend)
    );
    let sql_sites = format!(
        "INSERT INTO site_jobs (job_id, site, data_sources, dispatch_state, next_dispatch_at) \
         SELECT 'j' || lpad_id, CASE WHEN n % 2 = 0 THEN 'london' ELSE 'tokyo' END, '[]', 'DISPATCHED', 0 \
         FROM ({}) AS g",
        series(backend)
    );
    match backend {
        Backend::Sqlite => {
            let mut c = sqlx::SqliteConnection::connect(url).await.unwrap();
            for q in [sql_jobs, sql_sites] {
                sqlx::query(sqlx::AssertSqlSafe(q))
                    .execute(&mut c)
                    .await
                    .unwrap();
            }
        }
        Backend::Postgres => {
            let mut c = sqlx::PgConnection::connect(url).await.unwrap();
            for q in [sql_jobs, sql_sites] {
                sqlx::query(sqlx::AssertSqlSafe(q))
                    .execute(&mut c)
                    .await
                    .unwrap();
            }
        }
    }
}

/// `n` from 1 to `MANY` with its zero-padded text (`lpad_id`).
fn series(backend: Backend) -> String {
    match backend {
        Backend::Sqlite => format!(
            "WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < {MANY}) \
             SELECT n, substr('0000000000' || n, -10, 10) AS lpad_id FROM s"
        ),
        Backend::Postgres => format!(
            "SELECT n, lpad(n::text, 10, '0') AS lpad_id FROM generate_series(1, {MANY}) AS n"
        ),
    }
}

fn index_backed(backend: Backend, plan: &[String]) -> bool {
    let text = plan.join("\n");
    match backend {
        // SQLite names the index it walks; a full scan says `SCAN jobs` alone and
        // an ORDER BY it cannot serve adds `USE TEMP B-TREE FOR ORDER BY`.
        Backend::Sqlite => text.contains("USING INDEX") && !text.contains("TEMP B-TREE"),
        Backend::Postgres => text.contains("Index") && !text.contains("Seq Scan on jobs"),
    }
}

async fn the_first_page_of_100k_jobs_comes_from_an_index(backend: Backend) {
    let (s, url, _dir) = store(backend).await;
    let started = Instant::now();
    load(&url, backend).await;
    s.analyze().await.unwrap();
    println!("{backend:?}: loaded {MANY} jobs in {:?}", started.elapsed());
    let cases: Vec<(&str, JobFilter, JobSort)> = vec![
        ("newest first", JobFilter::default(), JobSort::CreatedDesc),
        ("oldest first", JobFilter::default(), JobSort::CreatedAsc),
        ("by name", JobFilter::default(), JobSort::NameAsc),
        (
            "state=RUNNING",
            JobFilter {
                states: vec!["RUNNING".into()],
                ..Default::default()
            },
            JobSort::CreatedDesc,
        ),
        (
            "name prefix",
            JobFilter {
                name: Some("job 99*".into()),
                ..Default::default()
            },
            JobSort::NameAsc,
        ),
        (
            "site=london",
            JobFilter {
                site: Some("london".into()),
                ..Default::default()
            },
            JobSort::CreatedDesc,
        ),
    ];
    for (what, f, sort) in cases {
        let plan = s.explain_find_jobs(&f, sort, None, 101).await.unwrap();
        let t = Instant::now();
        let page = s.find_jobs(&f, sort, None, 101).await.unwrap();
        let first = t.elapsed();
        let after = page.last().map(|j| match sort {
            JobSort::NameAsc => JobKey::Name(j.name.clone(), j.job_id.clone()),
            _ => JobKey::Created(j.created_at, j.job_id.clone()),
        });
        let t = Instant::now();
        s.find_jobs(&f, sort, after.as_ref(), 101).await.unwrap();
        println!(
            "{backend:?} {what}: first page {first:?}, second {:?}, {} rows; plan: {}",
            t.elapsed(),
            page.len(),
            plan.join(" / ")
        );
        assert_eq!(page.len(), 101, "{what}");
        assert!(
            index_backed(backend, &plan),
            "{what} is not index-backed: {plan:?}"
        );
    }
}

on_both!(
    filters_sorts_and_pages_match_a_model,
    the_first_page_of_100k_jobs_comes_from_an_index
);
