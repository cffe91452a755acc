//! Chooses the store once at start-up from the database URL.

use std::sync::Arc;

use super::{SqlStore, Store, StoreError, StoreResult};

/// Opens and migrates the store named by `url`: `postgres://` / `postgresql://` for
/// PostgreSQL, `sqlite:` for SQLite. The URL is never echoed in errors (it may hold
/// a password).
pub async fn open(url: &str, max_connections: u32) -> StoreResult<Arc<dyn Store>> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(SqlStore::postgres(url, max_connections).await?))
    } else if url.starts_with("sqlite:") {
        if let Some(path) = url
            .strip_prefix("sqlite://")
            .filter(|p| !p.starts_with(":memory:"))
        {
            let path = path.split('?').next().unwrap_or(path);
            if let Some(dir) = std::path::Path::new(path)
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
            {
                std::fs::create_dir_all(dir).map_err(|e| {
                    StoreError::Unavailable(format!(
                        "cannot create data directory {}: {e}",
                        dir.display()
                    ))
                })?;
            }
        }
        Ok(Arc::new(SqlStore::sqlite(url, max_connections).await?))
    } else {
        let scheme = url.split(':').next().unwrap_or_default();
        Err(StoreError::Internal(format!(
            "database.url has unsupported scheme `{scheme}`; allowed: postgres://, postgresql://, sqlite:"
        )))
    }
}
