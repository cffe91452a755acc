//! Serving the site's listeners: the site API on `api.listen` (plain HTTP on
//! loopback, or HTTPS with required client certificates), the worker API on
//! `api.worker_listen` when set (HTTPS with the site's certificate, client
//! certificates optional, or plain HTTP on loopback), and probes on `api.ops_listen`
//! (plain HTTP). Every listener bounds its connections (`api.*_timeout_seconds`,
//! `api.max_connections`); the TLS files are re-read when they change and
//! connections made with the old certificate are closed gracefully.

use std::sync::Arc;
use std::time::Duration;

use meridian_service::tls::{self, ServerTls, expiry::role, server};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::api;
use meridian_engine::app::App;

/// The sockets a site serves, bound before anything runs.
pub struct Listeners {
    pub api: TcpListener,
    pub worker: Option<TcpListener>,
    pub ops: Option<TcpListener>,
}

/// Starts every listener; each stops accepting when `stop` fires and finishes the
/// requests in flight. The TLS watcher runs on `tracker` until `loops` fires.
pub fn spawn(
    app: Arc<App>,
    listeners: Listeners,
    stop: CancellationToken,
    tracker: &TaskTracker,
    loops: CancellationToken,
) -> anyhow::Result<Vec<JoinHandle<std::io::Result<()>>>> {
    let cfg = app.cfg();
    let limits = cfg.api.limits();
    let split = listeners.worker.is_some();
    let site_router = if split {
        api::site_router(app.clone())
    } else {
        api::router(app.clone())
    };
    let mut servers = Vec::new();
    match cfg.api.tls.clone() {
        None => {
            servers.push(server::spawn(
                listeners.api,
                site_router,
                None,
                limits,
                stop.clone(),
            ));
            if let Some(l) = listeners.worker {
                servers.push(server::spawn(
                    l,
                    api::worker_router(app.clone()),
                    None,
                    limits,
                    stop.clone(),
                ));
            }
        }
        Some(tls_cfg) => {
            let files = tls_cfg.files();
            let site_tls = ServerTls::new(tls::server_config(&files, &tls_cfg.allowed_clients)?);
            servers.push(server::spawn(
                listeners.api,
                site_router,
                Some(site_tls.clone()),
                limits,
                stop.clone(),
            ));
            let mut roles = vec![role::SITE_API];
            let worker_tls = match listeners.worker {
                Some(l) => {
                    let t = ServerTls::new(tls::worker_server_config(&files)?);
                    servers.push(server::spawn(
                        l,
                        api::worker_router(app.clone()),
                        Some(t.clone()),
                        limits,
                        stop.clone(),
                    ));
                    roles.push(role::WORKER_API);
                    Some(t)
                }
                None => None,
            };
            let allowed = tls_cfg.allowed_clients.clone();
            let swap_files = files.clone();
            tracker.spawn(tls::keep_current(
                files,
                Duration::from_secs(tls_cfg.reload_interval_seconds),
                roles,
                loops,
                move || {
                    let site = tls::server_config(&swap_files, &allowed)?;
                    let worker = match &worker_tls {
                        Some(_) => Some(tls::worker_server_config(&swap_files)?),
                        None => None,
                    };
                    site_tls.rotate(site);
                    if let (Some(t), Some(w)) = (&worker_tls, worker) {
                        t.rotate(w);
                    }
                    Ok(())
                },
            ));
        }
    }
    if let Some(l) = listeners.ops {
        servers.push(server::spawn(
            l,
            api::ops_router(app.clone()),
            None,
            limits,
            stop,
        ));
    }
    Ok(servers)
}
