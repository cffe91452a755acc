//! The data-source catalog: each site's `GET /data_sources`, read at start and every
//! `master.catalog_refresh_seconds`. A site that cannot be read keeps its last
//! catalog, so a short outage does not make its data sources unknown.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use meridian_service::supervisor::{BackgroundLoop, Tick};
use meridian_wire::DataSourceInfo;

use crate::app::{SharedMaster, component};
use crate::site_reply::{self, SiteReply};
use crate::store::StoreError;
use meridian_wire::time::now_ms;

/// The catalog loop: one tick reads every site's catalog.
pub struct Catalog {
    pub m: SharedMaster,
    /// Whether the last read reached every site; until then it is retried every
    /// poll interval instead of every refresh interval.
    complete: AtomicBool,
}

impl Catalog {
    pub fn new(m: SharedMaster) -> Catalog {
        Catalog {
            m,
            complete: AtomicBool::new(false),
        }
    }
}

#[async_trait]
impl BackgroundLoop for Catalog {
    fn name(&self) -> &'static str {
        component::CATALOG
    }

    fn interval(&self) -> Duration {
        let every = Duration::from_secs_f64(self.m.cfg.master.catalog_refresh_seconds);
        if self.complete.load(Ordering::Acquire) {
            every
        } else {
            every.min(self.m.poll_interval())
        }
    }

    async fn tick(&self) -> anyhow::Result<Tick> {
        let complete = refresh(&self.m).await?;
        self.complete.store(complete, Ordering::Release);
        Ok(Tick::Idle)
    }
}

/// Reads every site's catalog; true when every site answered.
pub async fn refresh(m: &SharedMaster) -> Result<bool, StoreError> {
    let reads = m.clients.all().into_iter().map(|c| async move {
        let sent = c.http.get(c.endpoint("/data_sources")).send().await;
        let not_after = sent.as_ref().ok().and_then(peer_not_after);
        (
            c.name,
            not_after,
            site_reply::read::<Vec<DataSourceInfo>>(sent).await,
        )
    });
    let mut all = true;
    for (site, not_after, got) in futures::future::join_all(reads).await {
        if let Some(t) = not_after
            && let Ok(mut seen) = m.site_cert_not_after.lock()
        {
            seen.insert(site.clone(), t);
        }
        match got {
            SiteReply::Ok(mut sources) => {
                // The catalog is the site's own word, but the site name is the master's.
                for s in &mut sources {
                    s.site = site.clone();
                }
                m.store.replace_catalog(&site, &sources, now_ms()).await?;
            }
            SiteReply::Refused { status, message } => {
                all = false;
                tracing::warn!(site = %site, "cannot read the catalog of site {site}: HTTP {status}: {message}");
            }
            SiteReply::Retry(why) => {
                all = false;
                tracing::debug!(site = %site, "cannot read the catalog of site {site}: {why}");
            }
        }
    }
    Ok(all)
}

/// The notAfter (ms) of the certificate a site answered with, when over HTTPS.
fn peer_not_after(resp: &reqwest::Response) -> Option<i64> {
    let der = resp
        .extensions()
        .get::<reqwest::tls::TlsInfo>()?
        .peer_certificate()?;
    meridian_service::tls::expiry::Expiry::of(der).map(|e| e.not_after.saturating_mul(1000))
}
