//! Rolling upgrades: version N and N+1 run side by side on one database. Migrations
//! are expand/contract, so an older binary starts (and restarts) on a schema a newer
//! one has already expanded. Simulated here by applying a "future" migration (a new
//! column and its row in `_sqlx_migrations`) and opening the store again with this
//! build, on both backends, for the site store and the master's store.

use meridian_store::{CreateOutcome, NewJob};
use meridian_tests::Backend;
use sqlx::Connection;

meridian_tests::on_both!(
    a_site_store_opens_on_a_schema_a_newer_version_expanded,
    a_master_store_opens_on_a_schema_a_newer_version_expanded,
);

const FUTURE: i64 = 9_999_000_001;

/// Applies an expand migration this build does not know, as version N+1 would.
async fn expand_as_a_newer_version(url: &str, table: &str) {
    let checksum = vec![7u8; 48];
    if url.starts_with("sqlite:") {
        let mut conn = sqlx::SqliteConnection::connect(url).await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "ALTER TABLE {table} ADD COLUMN added_by_next_version TEXT"
        )))
        .execute(&mut conn)
        .await
        .unwrap();
        sqlx::query("INSERT INTO _sqlx_migrations (version, description, installed_on, success, checksum, execution_time) VALUES (?, 'expand: next version', CURRENT_TIMESTAMP, 1, ?, 1)")
            .bind(FUTURE)
            .bind(checksum)
            .execute(&mut conn)
            .await
            .unwrap();
    } else {
        let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "ALTER TABLE {table} ADD COLUMN added_by_next_version TEXT"
        )))
        .execute(&mut conn)
        .await
        .unwrap();
        sqlx::query("INSERT INTO _sqlx_migrations (version, description, installed_on, success, checksum, execution_time) VALUES ($1, 'expand: next version', now(), true, $2, 1)")
            .bind(FUTURE)
            .bind(checksum)
            .execute(&mut conn)
            .await
            .unwrap();
    }
}

async fn a_site_store_opens_on_a_schema_a_newer_version_expanded(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let url = meridian_tests::database_url(backend, dir.path()).await;
    let store = meridian_store::open(&url, 2).await.unwrap();
    store.close().await;
    expand_as_a_newer_version(&url, "jobs").await;
    let store = meridian_store::open(&url, 2)
        .await
        .expect("version N opens a schema N+1 expanded");
    let created = store
        .create_job(&NewJob {
            id: "j-upgrade".into(),
            name: "after the expand".into(),
            definition_hash: "h".into(),
            data_sources: vec!["ds".into()],
            options: "{}".into(),
            priority: 1,
            trace_id: "4bf92f3577b34da6a3ce929d0e0e4736".into(),
        })
        .await
        .unwrap();
    assert!(matches!(created, CreateOutcome::Created(_)), "{created:?}");
    store.close().await;
}

async fn a_master_store_opens_on_a_schema_a_newer_version_expanded(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let url = match backend {
        Backend::Sqlite => format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("master.db").display()
        ),
        Backend::Postgres => meridian_tests::pg::fresh_database().await,
    };
    let store = meridian_master::store::Store::open(&url, 2).await.unwrap();
    store.close().await;
    expand_as_a_newer_version(&url, "jobs").await;
    let store = meridian_master::store::Store::open(&url, 2)
        .await
        .expect("version N opens a schema N+1 expanded");
    store.ping().await.unwrap();
    store.close().await;
}

/// `meridian-child --mode migrate` (the Kubernetes migration Job) applies the schema
/// and exits; the store then opens with nothing left to apply.
#[test]
fn the_site_migrate_mode_applies_the_schema_and_exits() {
    let dir = tempfile::tempdir().unwrap();
    let (code, err) = meridian_tests::process::run_to_exit(
        &[
            "--mode",
            "migrate",
            "--data-dir",
            dir.path().to_str().unwrap(),
        ],
        &[],
        std::time::Duration::from_secs(60),
    );
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("migrations applied"), "{err}");
    assert!(dir.path().join("site.db").exists());
}

/// `meridian-master migrate` does the same for the master's database.
#[test]
fn the_master_migrate_command_applies_the_schema_and_exits() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("master.db");
    let certs = dir.path().join("certs");
    let made = std::process::Command::new(meridian_tests::process::master_binary())
        .args(["certs", "init", "--sites", "london", "--out"])
        .arg(&certs)
        .output()
        .unwrap();
    assert!(made.status.success());
    // The Job runs with the master's own configuration; here, the least of it.
    let out = std::process::Command::new(meridian_tests::process::master_binary())
        .arg("migrate")
        .env(
            "MERIDIAN_MASTER_AUTH__PUBLIC_KEY_FILE",
            certs.join("jwt-signing.pub.pem"),
        )
        .env(
            "MERIDIAN_MASTER_DATABASE__URL",
            format!("sqlite://{}?mode=rwc", db.display()),
        )
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("migrations applied"), "{err}");
    assert!(db.exists());
}
