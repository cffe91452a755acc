//! Opening the pools of either dialect and applying its migrations.

use std::str::FromStr;
use std::sync::LazyLock;
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use crate::db::Db;
use crate::{StoreError, StoreResult};

// Migrations a newer version applied are tolerated: during a rolling upgrade the old
// replicas keep running (and restarting) on the expanded schema next to the new ones.
// Migrations are expand/contract, so an older binary never depends on what a newer
// migration removed (docs/operations.md).
static SQLITE_MIGRATOR: LazyLock<Migrator> = LazyLock::new(|| {
    let mut m = sqlx::migrate!("../../migrations/sqlite");
    m.set_ignore_missing(true);
    m
});
static POSTGRES_MIGRATOR: LazyLock<Migrator> = LazyLock::new(|| {
    let mut m = sqlx::migrate!("../../migrations/postgres");
    m.set_ignore_missing(true);
    m
});

fn migrations(e: sqlx::migrate::MigrateError) -> StoreError {
    StoreError::Internal(format!("migrations: {e}"))
}

/// Opens (creating if missing) and migrates the SQLite database at `url`
/// (`sqlite://PATH` or `sqlite::memory:`): one writer connection (SQLite serialises
/// writers anyway; a single connection turns lock contention into an orderly queue)
/// and a small pool of readers, in WAL mode so that readers never wait for the writer.
pub(crate) async fn sqlite(url: &str, readers: u32) -> StoreResult<Db> {
    let options = SqliteConnectOptions::from_str(url)?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        // NORMAL in WAL mode survives a process crash (SIGKILL); only an OS crash
        // can lose the last commits.
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(Duration::from_secs(10))
        .foreign_keys(true);
    let memory = url.contains(":memory:") || url.contains("mode=memory");
    let pool = |max: u32| {
        let keep = |d: Duration| if memory { None } else { Some(d) };
        SqlitePoolOptions::new()
            .max_connections(max)
            .min_connections(if memory { 1 } else { 0 })
            .idle_timeout(keep(Duration::from_secs(300)))
            .max_lifetime(keep(Duration::from_secs(1800)))
            .acquire_timeout(Duration::from_secs(10))
    };
    let write = pool(1).connect_with(options.clone()).await?;
    SQLITE_MIGRATOR.run(&write).await.map_err(migrations)?;
    // An in-memory database exists once per connection, so readers share the writer.
    let read = if memory {
        write.clone()
    } else {
        pool(readers.max(1))
            .connect_with(options.read_only(true))
            .await?
    };
    Ok(Db::Lite { write, read })
}

/// Connects to the PostgreSQL database at `url` and applies migrations (sqlx takes an
/// advisory lock, so replicas starting together migrate once).
pub(crate) async fn postgres(url: &str, max_connections: u32) -> StoreResult<Db> {
    let options = PgConnectOptions::from_str(url)?;
    // No ping before each acquire: it is a round trip in front of every statement
    // (≈ 0.2 ms here, on the first-task path twice). A connection that died idle
    // fails its next statement instead, which surfaces as `Unavailable` (503, or a
    // retry in the loops) once, and the pool drops it.
    let pool = PgPoolOptions::new()
        .max_connections(max_connections)
        .test_before_acquire(false)
        .acquire_timeout(Duration::from_secs(5))
        .connect_with(options)
        .await?;
    POSTGRES_MIGRATOR.run(&pool).await.map_err(migrations)?;
    Ok(Db::Pg(pool))
}
