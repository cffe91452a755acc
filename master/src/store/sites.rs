//! Sites: their URL, the cursor of their delta status call and their health.

use sqlx::Row;

use super::{Result, SiteRow, Store};

impl Store {
    /// Makes the stored site list match the configuration (new sites added, URLs
    /// updated). Sites no longer configured keep their rows: their jobs stay visible.
    pub async fn sync_sites(&self, sites: &[(String, String)]) -> Result<()> {
        for (name, url) in sites {
            sqlx::query(
                "INSERT INTO sites (name, url) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET url = excluded.url",
            )
            .bind(name)
            .bind(url)
            .execute(&self.pool)
            .await?;
        }
        Ok(())
    }

    pub async fn sites(&self) -> Result<Vec<SiteRow>> {
        let rows = sqlx::query(
            "SELECT name, url, since_version, reachability, consecutive_failures, last_seen_at, last_polled_at, \
             last_latency_ms, last_error, catalog_refreshed_at FROM sites ORDER BY name",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(SiteRow {
                    name: r.try_get("name")?,
                    url: r.try_get("url")?,
                    since_version: r.try_get("since_version")?,
                    reachability: r.try_get("reachability")?,
                    consecutive_failures: r.try_get("consecutive_failures")?,
                    last_seen_at: r.try_get("last_seen_at")?,
                    last_polled_at: r.try_get("last_polled_at")?,
                    last_latency_ms: r.try_get("last_latency_ms")?,
                    last_error: r.try_get("last_error")?,
                    catalog_refreshed_at: r.try_get("catalog_refreshed_at")?,
                })
            })
            .collect()
    }

    /// A successful poll: the site is reachable and its cursor moves on. The cursor
    /// never moves back (a late answer of an older round cannot rewind it).
    pub async fn site_polled(
        &self,
        name: &str,
        since_version: i64,
        latency_ms: i64,
        now_ms: i64,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE sites SET since_version = CASE WHEN since_version < $1 THEN $1 ELSE since_version END, \
             reachability = 'REACHABLE', consecutive_failures = 0, last_seen_at = $2, last_polled_at = $2, \
             last_latency_ms = $3, last_error = NULL WHERE name = $4",
        )
        .bind(since_version)
        .bind(now_ms)
        .bind(latency_ms)
        .bind(name)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// A failed poll; after `unreachable_after` failures in a row the site is
    /// `UNREACHABLE`. Returns the new failure count.
    pub async fn site_poll_failed(
        &self,
        name: &str,
        error: &str,
        unreachable_after: i64,
        now_ms: i64,
    ) -> Result<i64> {
        let row = sqlx::query(
            "UPDATE sites SET consecutive_failures = consecutive_failures + 1, last_polled_at = $1, last_error = $2, \
             reachability = CASE WHEN consecutive_failures + 1 >= $3 THEN 'UNREACHABLE' ELSE reachability END \
             WHERE name = $4 RETURNING consecutive_failures",
        )
        .bind(now_ms)
        .bind(error)
        .bind(unreachable_after)
        .bind(name)
        .fetch_optional(&self.pool)
        .await?;
        Ok(match row {
            Some(r) => r.try_get("consecutive_failures")?,
            None => 0,
        })
    }
}
