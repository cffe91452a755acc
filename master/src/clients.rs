//! One HTTP client per site. Over HTTPS it presents the master's certificate and
//! accepts only a certificate naming that site; the clients are rebuilt when the
//! certificate files change, so rotation needs no restart.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use meridian_service::tls::{self, FileWatch, TlsError};
use tokio_util::sync::CancellationToken;

use crate::config::{ClientTls, MasterConfig, SiteEntry};

/// A site's base URL and its client.
#[derive(Debug, Clone)]
pub struct SiteClient {
    pub name: String,
    pub url: String,
    pub http: reqwest::Client,
}

impl SiteClient {
    pub fn endpoint(&self, path: &str) -> String {
        format!("{}{path}", self.url.trim_end_matches('/'))
    }
}

#[derive(Debug)]
pub struct SiteClients {
    current: ArcSwap<BTreeMap<String, SiteClient>>,
    sites: Vec<SiteEntry>,
    tls: Option<ClientTls>,
    timeout: Duration,
}

fn build(
    sites: &[SiteEntry],
    tls_cfg: Option<&ClientTls>,
    timeout: Duration,
) -> Result<BTreeMap<String, SiteClient>, TlsError> {
    let mut out = BTreeMap::new();
    for site in sites {
        let mut builder = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .pool_idle_timeout(Duration::from_secs(30))
            .user_agent(concat!("meridian-master/", env!("CARGO_PKG_VERSION")));
        if site.url.starts_with("https://")
            && let Some(t) = tls_cfg
        {
            builder = builder.use_preconfigured_tls(tls::client_config(&t.files(), &site.name)?);
        }
        let http = builder.build().map_err(|e| {
            TlsError::new(
                std::path::Path::new(&site.url),
                format!("cannot build a client: {e}"),
            )
        })?;
        out.insert(
            site.name.clone(),
            SiteClient {
                name: site.name.clone(),
                url: site.url.clone(),
                http,
            },
        );
    }
    Ok(out)
}

impl SiteClients {
    pub fn new(cfg: &MasterConfig) -> Result<SiteClients, TlsError> {
        let timeout = Duration::from_secs_f64(cfg.master.request_timeout_seconds);
        let current = build(&cfg.sites, cfg.tls.as_ref(), timeout)?;
        Ok(SiteClients {
            current: ArcSwap::from_pointee(current),
            sites: cfg.sites.clone(),
            tls: cfg.tls.clone(),
            timeout,
        })
    }

    pub fn get(&self, site: &str) -> Option<SiteClient> {
        self.current.load().get(site).cloned()
    }

    pub fn all(&self) -> Vec<SiteClient> {
        self.current.load().values().cloned().collect()
    }

    /// Rebuilds the clients whenever the TLS files change, until `stop`.
    pub async fn watch(&self, stop: CancellationToken) {
        let Some(tls_cfg) = self.tls.clone() else {
            return;
        };
        let mut watch = FileWatch::new(&tls_cfg.files());
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(Duration::from_secs(tls_cfg.reload_interval_seconds)) => {}
            }
            if !watch.changed() {
                continue;
            }
            match build(&self.sites, Some(&tls_cfg), self.timeout) {
                Ok(new) => {
                    self.current.store(Arc::new(new));
                    tracing::info!("TLS files changed; calls to sites use the new certificate");
                }
                Err(e) => tracing::warn!(
                    "TLS files changed but cannot be used yet ({e}); keeping the previous ones"
                ),
            }
        }
    }
}
