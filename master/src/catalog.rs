//! The data-source catalog: each site's `GET /data_sources`, read at start and every
//! `master.catalog_refresh_seconds`. A site that cannot be read keeps its last
//! catalog, so a short outage does not make its data sources unknown.

use std::time::Duration;

use meridian_wire::DataSourceInfo;
use tokio_util::sync::CancellationToken;

use crate::app::{SharedMaster, component};
use crate::remote::{self, Remote};
use crate::store::StoreError;
use meridian_wire::time::now_ms;

pub async fn run(m: SharedMaster, stop: CancellationToken) {
    let every = Duration::from_secs_f64(m.cfg.master.catalog_refresh_seconds);
    loop {
        let complete = refresh(&m).await;
        crate::supervise::report(&m, component::CATALOG, complete.as_ref().map(|_| ()));
        // Retry soon while some site has never been read.
        let wait = match complete {
            Ok(true) => every,
            _ => every.min(m.poll_interval()),
        };
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

/// Reads every site's catalog; true when every site answered.
pub async fn refresh(m: &SharedMaster) -> Result<bool, StoreError> {
    let reads = m.clients.all().into_iter().map(|c| async move {
        let sent = c.http.get(c.endpoint("/data_sources")).send().await;
        (c.name, remote::read::<Vec<DataSourceInfo>>(sent).await)
    });
    let mut all = true;
    for (site, got) in futures::future::join_all(reads).await {
        match got {
            Remote::Ok(mut sources) => {
                // The catalog is the site's own word, but the site name is the master's.
                for s in &mut sources {
                    s.site = site.clone();
                }
                m.store.replace_catalog(&site, &sources, now_ms()).await?;
            }
            Remote::Refused { status, message } => {
                all = false;
                tracing::warn!(site = %site, "cannot read the catalog of site {site}: HTTP {status}: {message}");
            }
            Remote::Retry(why) => {
                all = false;
                tracing::debug!(site = %site, "cannot read the catalog of site {site}: {why}");
            }
        }
    }
    Ok(all)
}
