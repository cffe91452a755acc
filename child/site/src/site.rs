//! `Site`: start-up in dependency order and graceful shutdown.
//!
//! Build: configuration layers → database and migrations → `system_parameters` →
//! `finalize()` → hand back leases a previous run of this node left → bind the API
//! socket. Nothing listens until configuration is valid.
//! Run: engine loops → API → workers. On shutdown: stop handing out work and stop
//! accepting requests, let running tasks finish within the grace period, flush
//! completions, hand back what is left, close the database.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use arc_swap::ArcSwap;
use async_trait::async_trait;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::workers::pool;
use crate::{RunMode, serve};
use meridian_config::{ConfigLayers, distributed, finalize};
use meridian_engine::app::{App, Wakeups};
use meridian_engine::assigner::Assigner;
use meridian_engine::backpressure::{BackPressure, ResourceMonitor};
use meridian_engine::completer::{self, Completer, CompleterHandle, Inbox};
use meridian_engine::config_reload::ConfigReloader;
use meridian_engine::finisher::Finisher;
use meridian_engine::listen::Listener;
use meridian_engine::long_poll::{Relay, RemoteWorkers};
use meridian_engine::pipeliner::Pipeliner;
use meridian_engine::reaper::Reaper;
use meridian_engine::registry::WorkerRegistry;
use meridian_service::failpoints::Failpoints;
use meridian_service::health::{Health, component};
use meridian_service::supervisor::{BackgroundLoop, Tick, supervise};
use meridian_service::worker_token::Verifier;
use meridian_store as store;

/// What a site is started with.
#[derive(Debug)]
pub struct SiteOptions {
    pub layers: ConfigLayers,
    pub mode: RunMode,
    pub failpoints: Failpoints,
}

impl SiteOptions {
    pub fn new(layers: ConfigLayers) -> Self {
        SiteOptions {
            layers,
            mode: RunMode::Single,
            failpoints: Failpoints::default(),
        }
    }
}

/// A built site: configuration valid, database migrated, socket bound.
pub struct Site {
    app: Arc<App>,
    listeners: serve::Listeners,
    completions: Arc<Inbox>,
}

async fn bind(key: &str, value: &str) -> anyhow::Result<TcpListener> {
    let addr: SocketAddr = value.parse().context(key.to_owned())?;
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr} ({key})"))
}

impl Site {
    pub async fn build(opts: SiteOptions) -> anyhow::Result<Site> {
        let started = Instant::now();
        if opts.mode == RunMode::Worker {
            anyhow::bail!("--mode worker runs worker::remote, not a Site");
        }
        let preliminary = opts.layers.preliminary(opts.mode)?;
        // Before the database is opened: --mode orchestrator on SQLite, or without the
        // worker key, is a configuration error (exit 2), not a half-started service.
        let worker_key = distributed::require(&preliminary, opts.mode)?;
        let url = preliminary.database_url();
        let store = store::open(&url, preliminary.database.max_connections)
            .await
            .context("cannot open the site database")?;
        let params = store.parameters(&preliminary.node.id).await?;
        let cfg = finalize(&opts.layers, &params, opts.mode)?;
        let released = store
            .release_node_leases(&cfg.node.id, true, cfg.worker.max_retries)
            .await?;
        if released > 0 {
            tracing::info!(
                count = released,
                "handed back {released} tasks leased by a previous run of this node"
            );
        }
        let listeners = serve::Listeners {
            api: bind("api.listen", &cfg.api.listen).await?,
            worker: match &cfg.api.worker_listen {
                Some(a) => Some(bind("api.worker_listen", a).await?),
                None => None,
            },
            ops: match &cfg.api.ops_listen {
                Some(a) => Some(bind("api.ops_listen", a).await?),
                None => None,
            },
        };
        let (completer, completions) = CompleterHandle::channel();
        let app = Arc::new(App {
            store,
            config: ArcSwap::from_pointee(cfg),
            layers: opts.layers,
            mode: opts.mode,
            health: Health::default(),
            workers: WorkerRegistry::default(),
            remote: Default::default(),
            backpressure: BackPressure::default(),
            wake: Wakeups::default(),
            completer,
            in_flight: AtomicUsize::new(0),
            task_micros: AtomicU64::new(0),
            metrics: meridian_service::metrics::handle(),
            failpoints: opts.failpoints,
            incarnation: uuid::Uuid::new_v4().simple().to_string()[..12].to_owned(),
            started,
            ready: AtomicBool::new(false),
            draining: AtomicBool::new(false),
        });
        app.health.healthy(component::DATABASE);
        if let Some(key) = worker_key {
            let verifier = Verifier::new(&key, &app.cfg().site.name);
            let _ = app
                .remote
                .set(Arc::new(RemoteWorkers::new(app.clone(), verifier)));
        }
        Ok(Site {
            app,
            listeners,
            completions,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listeners
            .api
            .local_addr()
            .expect("bound socket has an address")
    }

    /// The worker API's own address, when `api.worker_listen` is set.
    pub fn worker_addr(&self) -> Option<SocketAddr> {
        self.listeners
            .worker
            .as_ref()
            .and_then(|l| l.local_addr().ok())
    }

    /// The probes' address, when `api.ops_listen` is set.
    pub fn ops_addr(&self) -> Option<SocketAddr> {
        self.listeners
            .ops
            .as_ref()
            .and_then(|l| l.local_addr().ok())
    }

    pub fn app(&self) -> Arc<App> {
        self.app.clone()
    }

    /// Runs until `shutdown` fires, then drains and returns.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let Site {
            app,
            listeners,
            completions,
        } = self;
        let cfg = app.cfg();
        let addr = listeners.api.local_addr()?;
        let worker_addr = listeners.worker.as_ref().and_then(|l| l.local_addr().ok());
        let ops_addr = listeners.ops.as_ref().and_then(|l| l.local_addr().ok());
        let loops = CancellationToken::new();
        let tracker = TaskTracker::new();

        // Engine loops first: they need only the database.
        let completer_stop = CancellationToken::new();
        let completer_task = {
            let a = app.clone();
            let inbox = completions.clone();
            tokio::spawn(supervise(app.clone(), completer_stop.clone(), move || {
                Completer {
                    app: a.clone(),
                    inbox: inbox.clone(),
                }
            }))
        };
        let threads = cfg.worker.in_process_thread_count;
        let (queue_tx, queue_rx) = async_channel::unbounded();
        {
            let a = app.clone();
            tracker.spawn(supervise(a.clone(), loops.clone(), move || {
                ResourceMonitor::new(a.clone())
            }));
            let a = app.clone();
            tracker.spawn(supervise(a.clone(), loops.clone(), move || {
                ConfigReloader {
                    app: a.clone(),
                    warned: Default::default(),
                }
            }));
            let a = app.clone();
            tracker.spawn(supervise(a.clone(), loops.clone(), move || Reaper {
                app: a.clone(),
            }));
            let a = app.clone();
            tracker.spawn(supervise(a.clone(), loops.clone(), move || Pipeliner {
                app: a.clone(),
            }));
            let a = app.clone();
            tracker.spawn(supervise(a.clone(), loops.clone(), move || Finisher {
                app: a.clone(),
            }));
            match app.remote.get() {
                // Distributed: leases go to remote workers through get_task.
                Some(r) => {
                    let a = app.clone();
                    let r = r.clone();
                    tracker.spawn(supervise(a.clone(), loops.clone(), move || Relay {
                        app: a.clone(),
                        remote: r.clone(),
                    }));
                    let a = app.clone();
                    let stop = loops.clone();
                    tracker.spawn(supervise(a.clone(), loops.clone(), move || {
                        Listener::new(a.clone(), stop.clone())
                    }));
                }
                None => {
                    let a = app.clone();
                    let q = queue_tx.clone();
                    tracker.spawn(supervise(a.clone(), loops.clone(), move || {
                        Assigner::new(a.clone(), q.clone(), threads as usize)
                    }));
                }
            }
            let a = app.clone();
            tracker.spawn(supervise(a.clone(), loops.clone(), move || Probe {
                app: a.clone(),
            }));
        }

        // Then the API.
        let api_stop = CancellationToken::new();
        let scheme = if cfg.api.tls.is_some() {
            "https"
        } else {
            "http"
        };
        let servers = serve::spawn(
            app.clone(),
            listeners,
            api_stop.clone(),
            &tracker,
            loops.clone(),
        )?;
        app.health.healthy(component::API);

        // Then the workers (single-process mode only).
        let worker_stop = CancellationToken::new();
        let worker_abort = CancellationToken::new();
        let in_process = app.remote.get().is_none();
        let threads = if in_process { threads } else { 0 };
        let mut workers = pool::spawn(
            app.clone(),
            queue_rx,
            threads,
            worker_stop.clone(),
            worker_abort.clone(),
        );
        if in_process {
            tracker.spawn(pool::watch(app.clone(), threads as usize, loops.clone()));
        }
        app.ready.store(true, Ordering::Release);
        tracing::info!(
            node = %cfg.node.id,
            site = %cfg.site.name,
            workers = threads,
            startup_ms = app.started.elapsed().as_millis() as u64,
            worker_api = ?worker_addr,
            ops = ?ops_addr,
            "site {} ready on {scheme}://{addr}",
            cfg.site.name,
        );

        shutdown.cancelled().await;
        let grace = Duration::from_secs(app.cfg().orchestrator.shutdown_grace_seconds);
        tracing::info!(
            grace_s = grace.as_secs(),
            "draining: no new tasks, running tasks get {}s",
            grace.as_secs()
        );
        app.ready.store(false, Ordering::Release);
        app.draining.store(true, Ordering::Release);
        if let Some(r) = app.remote.get() {
            // Long-polls answer at once, so the API server can stop.
            r.bell.notify_waiters();
        }
        worker_stop.cancel();
        api_stop.cancel();
        let deadline = tokio::time::sleep(grace);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                joined = workers.join_next() => if joined.is_none() { break },
                _ = &mut deadline => {
                    if worker_abort.is_cancelled() {
                        // A worker blocked where it cannot see the abort (a hung
                        // read) does not hold the shutdown: its lease is handed back
                        // below with the others.
                        tracing::warn!(
                            stuck = workers.len(),
                            "{} workers did not stop; shutting down without them",
                            workers.len()
                        );
                        break;
                    }
                    tracing::warn!("grace period over; interrupting running tasks");
                    worker_abort.cancel();
                    deadline.as_mut().reset(tokio::time::Instant::now() + HAND_BACK_WAIT);
                }
            }
        }
        queue_tx.close();
        completer_stop.cancel();
        let _ = completer_task.await;
        completer::flush(&app, &completions).await;
        loops.cancel();
        tracker.close();
        tracker.wait().await;
        for server in servers {
            match server.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::warn!("API server ended with an error: {e}"),
                Err(e) => tracing::warn!("API server task failed: {e}"),
            }
        }
        let handed_back = app
            .store
            .release_node_leases(&app.node_id(), false, app.cfg().worker.max_retries)
            .await?;
        if handed_back > 0 {
            tracing::info!(
                count = handed_back,
                "handed back {handed_back} tasks that had not started or finished"
            );
        }
        app.store.close().await;
        tracing::info!("shutdown complete");
        Ok(())
    }
}

/// After the grace period, how long interrupted workers get to hand their tasks
/// back before the site stops without them.
const HAND_BACK_WAIT: Duration = Duration::from_secs(5);

/// Pings the database every few seconds so `/health` shows an outage promptly: a
/// failed ping is the loop's error, so the supervisor shows `database` degraded with
/// the reason and pings again after its backoff.
struct Probe {
    app: Arc<App>,
}

#[async_trait]
impl BackgroundLoop for Probe {
    fn name(&self) -> &'static str {
        component::DATABASE
    }

    fn interval(&self) -> Duration {
        Duration::from_secs(2)
    }

    async fn tick(&self) -> anyhow::Result<Tick> {
        match tokio::time::timeout(Duration::from_secs(3), self.app.store.ping()).await {
            Ok(result) => result?,
            Err(_) => anyhow::bail!("no answer within 3 s"),
        }
        Ok(Tick::Idle)
    }
}
