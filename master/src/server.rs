//! Start-up in dependency order and graceful shutdown of the master.
//!
//! Build: configuration (already valid) → database and migrations → sites synced
//! from the configuration → site clients (TLS files loaded) → JWT verifier → bind.
//! Run: catalog, dispatcher, poller, canceller and database-probe loops, each
//! supervised (restarted with backoff after an error or a panic, shown in `/health`),
//! then the user API (HTTPS when `master.tls` is set) and, when `master.ops_listen`
//! is set, the probes on plain HTTP; both bound their connections. Everything the loops act on is in the database, so a restart
//! resumes where the last run stopped.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use async_trait::async_trait;
use meridian_service::failpoints::Failpoints;
use meridian_service::health::Health;
use meridian_service::supervisor::{BackgroundLoop, Tick, supervise};
use meridian_service::tls::{self, ServerTls, server};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::api;
use crate::app::{Master, component};
use crate::auth::Verifier;
use crate::canceller::Canceller;
use crate::catalog::Catalog;
use crate::clients::SiteClients;
use crate::config::MasterConfig;
use crate::dispatch::Dispatcher;
use crate::poller::Poller;
use crate::store::Store;

pub struct MasterServer {
    master: Arc<Master>,
    listener: TcpListener,
    ops: Option<TcpListener>,
}

impl MasterServer {
    pub async fn build(cfg: MasterConfig) -> anyhow::Result<MasterServer> {
        MasterServer::build_with(cfg, Failpoints::default()).await
    }

    /// [`MasterServer::build`] with test failpoints armed.
    pub async fn build_with(
        cfg: MasterConfig,
        failpoints: Failpoints,
    ) -> anyhow::Result<MasterServer> {
        let started = Instant::now();
        if cfg.database.url.is_empty() {
            std::fs::create_dir_all(&cfg.master.data_dir).with_context(|| {
                format!(
                    "cannot create master.data_dir {}",
                    cfg.master.data_dir.display()
                )
            })?;
        }
        let store = Store::open(&cfg.database_url(), cfg.database.max_connections).await?;
        let sites: Vec<(String, String)> = cfg
            .sites
            .iter()
            .map(|s| (s.name.clone(), s.url.clone()))
            .collect();
        store.sync_sites(&sites).await?;
        let clients = SiteClients::new(&cfg)?;
        let verifier = Verifier::from_config(&cfg.auth)?;
        let addr: SocketAddr = cfg.master.listen.parse().context("master.listen")?;
        let listener = TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on {addr}"))?;
        let ops = match &cfg.master.ops_listen {
            Some(a) => {
                let addr: SocketAddr = a.parse().context("master.ops_listen")?;
                Some(
                    TcpListener::bind(addr)
                        .await
                        .with_context(|| format!("cannot listen on {addr} (master.ops_listen)"))?,
                )
            }
            None => None,
        };
        let master = Arc::new(Master {
            cfg,
            store,
            clients,
            verifier,
            health: Health::default(),
            metrics: meridian_service::metrics::handle(),
            wake_dispatcher: Default::default(),
            wake_canceller: Default::default(),
            failpoints,
            started,
            dev_token: Default::default(),
            site_cert_not_after: Default::default(),
        });
        master.health.healthy(component::DATABASE);
        Ok(MasterServer {
            master,
            listener,
            ops,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("bound socket has an address")
    }

    /// The probes' address, when `master.ops_listen` is set.
    pub fn ops_addr(&self) -> Option<SocketAddr> {
        self.ops.as_ref().and_then(|l| l.local_addr().ok())
    }

    pub fn master(&self) -> Arc<Master> {
        self.master.clone()
    }

    /// Runs until `shutdown` fires.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let MasterServer {
            master: m,
            listener,
            ops,
        } = self;
        let addr = listener.local_addr()?;
        let loops = CancellationToken::new();
        let mut tasks = Vec::new();
        {
            let a = m.clone();
            tasks.push(tokio::spawn(supervise(
                m.clone(),
                loops.clone(),
                move || Catalog::new(a.clone()),
            )));
            let a = m.clone();
            tasks.push(tokio::spawn(supervise(
                m.clone(),
                loops.clone(),
                move || Dispatcher { m: a.clone() },
            )));
            let a = m.clone();
            tasks.push(tokio::spawn(supervise(
                m.clone(),
                loops.clone(),
                move || Poller::new(a.clone()),
            )));
            let a = m.clone();
            tasks.push(tokio::spawn(supervise(
                m.clone(),
                loops.clone(),
                move || Canceller { m: a.clone() },
            )));
            let a = m.clone();
            tasks.push(tokio::spawn(supervise(
                m.clone(),
                loops.clone(),
                move || Probe { m: a.clone() },
            )));
        }
        tasks.push(tokio::spawn(watch_tls(m.clone(), loops.clone())));
        let loops_for_tls = loops.clone();
        let api_stop = CancellationToken::new();
        let limits = m.cfg.master.limits();
        let mut servers = Vec::new();
        let scheme = match &m.cfg.master.tls {
            Some(tls_cfg) => {
                let server_tls = ServerTls::new(tls_cfg.server_config()?);
                servers.push(server::spawn(
                    listener,
                    api::router(m.clone()),
                    Some(server_tls.clone()),
                    limits,
                    api_stop.clone(),
                ));
                let t = tls_cfg.clone();
                tasks.push(tokio::spawn(async move {
                    tls::keep_current(
                        t.files(),
                        Duration::from_secs(t.reload_interval_seconds),
                        vec![tls::expiry::role::MASTER_API],
                        loops_for_tls,
                        || {
                            let cfg = t.server_config().map_err(|e| {
                                tls::TlsError::new(std::path::Path::new(&e.key), e.message)
                            })?;
                            server_tls.rotate(cfg);
                            Ok(())
                        },
                    )
                    .await
                }));
                "https"
            }
            None => {
                servers.push(server::spawn(
                    listener,
                    api::router(m.clone()),
                    None,
                    limits,
                    api_stop.clone(),
                ));
                "http"
            }
        };
        let ops_addr = ops.as_ref().and_then(|l| l.local_addr().ok());
        if let Some(l) = ops {
            servers.push(server::spawn(
                l,
                api::ops_router(m.clone()),
                None,
                limits,
                api_stop.clone(),
            ));
        }
        m.health.healthy(component::API);
        tracing::info!(
            sites = m.cfg.sites.len(),
            startup_ms = m.started.elapsed().as_millis() as u64,
            ops = ?ops_addr,
            "master ready on {scheme}://{addr}"
        );
        shutdown.cancelled().await;
        tracing::info!("master shutting down");
        api_stop.cancel();
        loops.cancel();
        for t in tasks {
            let _ = t.await;
        }
        for server in servers {
            let _ = server.await;
        }
        m.store.close().await;
        tracing::info!("shutdown complete");
        Ok(())
    }
}

/// Rebuilds the site clients when the master's certificate files change.
async fn watch_tls(m: Arc<Master>, stop: CancellationToken) {
    m.clients.watch(stop).await;
}

/// Pings the database every few seconds so `/health` shows an outage promptly: a
/// failed ping is the loop's error, so the supervisor shows `database` degraded with
/// the reason and pings again after its backoff.
struct Probe {
    m: Arc<Master>,
}

#[async_trait]
impl BackgroundLoop for Probe {
    fn name(&self) -> &'static str {
        component::DATABASE
    }

    fn interval(&self) -> Duration {
        Duration::from_secs(5)
    }

    async fn tick(&self) -> anyhow::Result<Tick> {
        match tokio::time::timeout(Duration::from_secs(3), self.m.store.ping()).await {
            Ok(result) => result?,
            Err(_) => anyhow::bail!("ping timed out"),
        }
        Ok(Tick::Idle)
    }
}
