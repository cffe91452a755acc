//! The data-source catalog learned from each site's `GET /data_sources`.

use meridian_wire::DataSourceInfo;
use sqlx::Row;

use super::{Result, Store};

impl Store {
    /// Replaces one site's part of the catalog with what the site reported.
    pub async fn replace_catalog(
        &self,
        site: &str,
        sources: &[DataSourceInfo],
        now_ms: i64,
    ) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("UPDATE sites SET catalog_refreshed_at = $1 WHERE name = $2")
            .bind(now_ms)
            .bind(site)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM catalog WHERE site = $1")
            .bind(site)
            .execute(&mut *tx)
            .await?;
        for ds in sources {
            sqlx::query("INSERT INTO catalog (site, data_source, kind, description) VALUES ($1, $2, $3, $4)")
                .bind(site)
                .bind(&ds.id)
                .bind(&ds.kind)
                .bind(&ds.description)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The whole catalog, by data source id then site.
    pub async fn catalog(&self) -> Result<Vec<DataSourceInfo>> {
        let rows = sqlx::query(
            "SELECT site, data_source, kind, description FROM catalog ORDER BY data_source, site",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(DataSourceInfo {
                    id: r.try_get("data_source")?,
                    kind: r.try_get("kind")?,
                    site: r.try_get("site")?,
                    description: r.try_get("description")?,
                })
            })
            .collect()
    }
}
