//! Serving the site API: plain HTTP on loopback, or HTTPS with required client
//! certificates (mutual TLS) whose files are re-read when they change.

use std::sync::Arc;
use std::time::Duration;

use axum_server::tls_rustls::RustlsConfig;
use meridian_service::tls::{self, FileWatch};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::api;
use meridian_engine::app::App;

/// Starts the API server on `listener`; it stops accepting when `stop` fires and
/// finishes the requests in flight.
pub fn spawn(
    app: Arc<App>,
    listener: TcpListener,
    stop: CancellationToken,
    tracker: &TaskTracker,
    loops: CancellationToken,
) -> anyhow::Result<JoinHandle<std::io::Result<()>>> {
    let router = api::router(app.clone());
    let Some(tls_cfg) = app.cfg().api.tls.clone() else {
        return Ok(tokio::spawn(async move {
            axum::serve(listener, router)
                .with_graceful_shutdown(async move { stop.cancelled().await })
                .await
        }));
    };
    let files = tls_cfg.files();
    let rustls = RustlsConfig::from_config(tls::server_config(&files, &tls_cfg.allowed_clients)?);
    tracker.spawn(reload(
        rustls.clone(),
        tls_cfg.clone(),
        Duration::from_secs(tls_cfg.reload_interval_seconds),
        loops,
    ));
    let handle = axum_server::Handle::new();
    {
        let handle = handle.clone();
        tokio::spawn(async move {
            stop.cancelled().await;
            handle.graceful_shutdown(None);
        });
    }
    let listener = listener.into_std()?;
    let server = axum_server::from_tcp_rustls(listener, rustls)?.handle(handle);
    Ok(tokio::spawn(async move {
        server.serve(router.into_make_service()).await
    }))
}

/// Swaps in a new server configuration when the certificate, key or CA file
/// changes. A half-written or bad set keeps the old configuration and says why.
async fn reload(
    rustls: RustlsConfig,
    cfg: meridian_config::ApiTlsConfig,
    every: Duration,
    stop: CancellationToken,
) {
    let files = cfg.files();
    let mut watch = FileWatch::new(&files);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
        if !watch.changed() {
            continue;
        }
        match tls::server_config(&files, &cfg.allowed_clients) {
            Ok(new) => {
                rustls.reload_from_config(new);
                tracing::info!("TLS files changed; new connections use the new certificate");
            }
            Err(e) => tracing::warn!(
                "TLS files changed but cannot be used yet ({e}); keeping the previous ones"
            ),
        }
    }
}
