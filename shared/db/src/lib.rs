//! What the site store and the master store share: one store error, and one
//! mapping of database failures to it, so the same outage answers the same way
//! (503 `unavailable`) on every Meridian API.

use meridian_service::ApiError;

/// A storage failure, as callers need to tell them apart.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached right now (connection lost, shutting down,
    /// pool exhausted): worth retrying later.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// Anything else; details are logged, never shown to clients.
    #[error("database error: {0}")]
    Internal(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::Io(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Tls(_)
            | sqlx::Error::WorkerCrashed => StoreError::Unavailable(e.to_string()),
            // SQLSTATE class 57P (operator intervention: shutdown, crash recovery)
            // and class 08 (connection exception) mean the server is going away.
            sqlx::Error::Database(db)
                if db
                    .code()
                    .is_some_and(|c| c.starts_with("57P") || c.starts_with("08")) =>
            {
                StoreError::Unavailable(e.to_string())
            }
            _ => StoreError::Internal(e.to_string()),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(msg) => {
                tracing::warn!("request failed, database unavailable: {msg}");
                ApiError::Unavailable("the database is unavailable; retry later".into())
            }
            StoreError::Internal(msg) => {
                tracing::error!("request failed with a database error: {msg}");
                ApiError::Internal
            }
        }
    }
}
