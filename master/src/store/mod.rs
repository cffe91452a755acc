//! The master's store: everything the master knows, so a restart resumes dispatching,
//! cancelling and polling where it stopped.
//!
//! One implementation for both databases: sqlx's `Any` driver over statements that
//! SQLite and PostgreSQL both accept (`$N` parameters, `ON CONFLICT`, `RETURNING`),
//! with text, integers and Unix-millisecond times only. The conformance suite in
//! `tests/tests/master_store.rs` runs every method on both.

mod catalog;
mod jobs;
mod query;
mod records;
mod sites;

use std::sync::LazyLock;
use std::time::Duration;

use sqlx::AnyPool;
use sqlx::any::AnyPoolOptions;
use sqlx::migrate::Migrator;

pub use query::{FINAL_STATES, JobFilter, JobKey, JobSort, like_pattern};
pub use records::{CancelState, CreateOutcome, DispatchState, JobRow, NewJob, SiteJobRow, SiteRow};

// Migrations a newer master applied are tolerated, so a rollback (or an old replica
// restarting mid-upgrade) starts on the expanded schema; migrations are
// expand/contract (docs/operations.md).
static SQLITE: LazyLock<Migrator> = LazyLock::new(|| {
    let mut m = sqlx::migrate!("../migrations/master/sqlite");
    m.set_ignore_missing(true);
    m
});
static POSTGRES: LazyLock<Migrator> = LazyLock::new(|| {
    let mut m = sqlx::migrate!("../migrations/master/postgres");
    m.set_ignore_missing(true);
    m
});

pub use meridian_db::StoreError;

pub type Result<T> = std::result::Result<T, StoreError>;

/// A handle on the master database.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    /// SQLite rather than PostgreSQL (the two differ only in `EXPLAIN`).
    sqlite: bool,
}

impl Store {
    /// Opens and migrates `url`: `postgres://…` or `sqlite://PATH` / `sqlite::memory:`.
    pub async fn open(url: &str, max_connections: u32) -> anyhow::Result<Store> {
        sqlx::any::install_default_drivers();
        let sqlite = url.starts_with("sqlite:");
        if !sqlite && !url.starts_with("postgres://") && !url.starts_with("postgresql://") {
            anyhow::bail!(
                "database.url has an unsupported scheme; allowed: postgres://, postgresql://, sqlite:"
            );
        }
        let url = if sqlite && !url.contains('?') && !url.contains(":memory:") {
            format!("{url}?mode=rwc")
        } else {
            url.to_owned()
        };
        // An in-memory SQLite database lives as long as its one connection.
        let max = if url.contains(":memory:") {
            1
        } else {
            max_connections
        };
        let pool = AnyPoolOptions::new()
            .max_connections(max)
            .acquire_timeout(Duration::from_secs(5))
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if sqlite {
                        use sqlx::Executor;
                        // LIKE is case-sensitive as on PostgreSQL, so a name filter
                        // selects the same jobs on both.
                        conn.execute("PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 10000; PRAGMA foreign_keys = ON; PRAGMA case_sensitive_like = ON")
                            .await?;
                    }
                    Ok(())
                })
            })
            .connect(&url)
            .await
            .map_err(|e| anyhow::anyhow!("cannot open the master database: {}", StoreError::from(e)))?;
        let migrator: &Migrator = if sqlite { &SQLITE } else { &POSTGRES };
        migrator
            .run(&pool)
            .await
            .map_err(|e| anyhow::anyhow!("cannot migrate the master database: {e}"))?;
        Ok(Store { pool, sqlite })
    }

    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}
