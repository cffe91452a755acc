//! One HTTP client per site. Over HTTPS it presents the master's certificate and
//! accepts only a certificate naming that site; the clients are rebuilt when the
//! certificate files change, so rotation needs no restart. The scheme is read from
//! the strictly parsed URL, and an `https` site without the master's certificate is
//! an error, so no spelling of a URL gets a client without the site-identity check.
//! Clients never follow redirects: a site answering `start_job` with a redirect must
//! not send the master, with its certificate, somewhere else.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use meridian_service::tls::{self, TlsError};
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
        let where_ = std::path::Path::new(&site.url);
        let url = crate::config::site_url(&site.url).map_err(|e| TlsError::new(where_, e))?;
        let https = url.scheme() == "https";
        let mut builder = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .pool_idle_timeout(Duration::from_secs(30))
            .redirect(reqwest::redirect::Policy::none())
            .https_only(https)
            // The site's certificate is read from each answer to show its expiry.
            .tls_info(https)
            .user_agent(concat!("meridian-master/", env!("CARGO_PKG_VERSION")));
        if https {
            let Some(t) = tls_cfg else {
                return Err(TlsError::new(
                    where_,
                    "an https site needs the master's client certificate (tls.*)",
                ));
            };
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
        tls::keep_current(
            tls_cfg.files(),
            Duration::from_secs(tls_cfg.reload_interval_seconds),
            vec![tls::expiry::role::CLIENT],
            stop,
            || {
                let new = build(&self.sites, Some(&tls_cfg), self.timeout)?;
                self.current.store(Arc::new(new));
                Ok(())
            },
        )
        .await
    }
}
