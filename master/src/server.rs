//! Start-up in dependency order and graceful shutdown of the master.
//!
//! Build: configuration (already valid) → database and migrations → sites synced
//! from the configuration → site clients (TLS files loaded) → JWT verifier → bind.
//! Run: catalog, dispatcher, poller, canceller and database-probe loops, each
//! supervised (restarted with backoff after an error or a panic, shown in `/health`),
//! then the API. Everything the loops act on is in the database, so a restart
//! resumes where the last run stopped.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use async_trait::async_trait;
use meridian_service::failpoints::Failpoints;
use meridian_service::health::Health;
use meridian_service::supervisor::{BackgroundLoop, Tick, supervise};
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
        });
        master.health.healthy(component::DATABASE);
        Ok(MasterServer { master, listener })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("bound socket has an address")
    }

    pub fn master(&self) -> Arc<Master> {
        self.master.clone()
    }

    /// Runs until `shutdown` fires.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let MasterServer {
            master: m,
            listener,
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
        let api_stop = CancellationToken::new();
        let server = {
            let router = api::router(m.clone());
            let stop = api_stop.clone();
            tokio::spawn(async move {
                axum::serve(listener, router)
                    .with_graceful_shutdown(async move { stop.cancelled().await })
                    .await
            })
        };
        m.health.healthy(component::API);
        tracing::info!(
            sites = m.cfg.sites.len(),
            startup_ms = m.started.elapsed().as_millis() as u64,
            "master ready on http://{addr}"
        );
        shutdown.cancelled().await;
        tracing::info!("master shutting down");
        api_stop.cancel();
        loops.cancel();
        for t in tasks {
            let _ = t.await;
        }
        let _ = server.await;
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
