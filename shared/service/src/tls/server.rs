//! Serving a router over TCP, plain or TLS, with bounded connections: a cap on
//! concurrent connections, a deadline for a request head once its first byte arrived
//! (and for the TLS handshake), a deadline for reading a request body, and an idle
//! keep-alive timeout. A slow client (slowloris) holds one connection for at most the
//! head deadline and never delays anyone else. On certificate rotation every TLS
//! connection is closed gracefully after its request in flight, so clients reconnect
//! and see the new certificate.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, RwLock};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes, HttpBody};
use axum::http::Request;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use rustls::ServerConfig;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinHandle;
use tokio::time::{Instant, Sleep};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// How long and how many: the bounds every listener applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// From the first byte of a request head (or the TCP accept, for the TLS
    /// handshake) until the head is complete.
    pub header_read_timeout: Duration,
    /// From the end of the head until the body is read.
    pub body_read_timeout: Duration,
    /// A connection with no request in flight and no byte received is closed after this.
    pub idle_timeout: Duration,
    /// Connections served at once; more wait in the kernel's accept queue.
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(60),
            idle_timeout: Duration::from_secs(60),
            max_connections: 1024,
        }
    }
}

/// A TLS server configuration that can be replaced while serving.
#[derive(Debug)]
pub struct ServerTls {
    current: RwLock<Arc<ServerConfig>>,
    generation: watch::Sender<u64>,
}

impl ServerTls {
    pub fn new(cfg: Arc<ServerConfig>) -> Arc<ServerTls> {
        Arc::new(ServerTls {
            current: RwLock::new(cfg),
            generation: watch::Sender::new(0),
        })
    }

    pub fn current(&self) -> Arc<ServerConfig> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// New handshakes use `cfg`; connections made with the previous one are closed
    /// after the request they are serving.
    pub fn rotate(&self, cfg: Arc<ServerConfig>) {
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = cfg;
        self.generation.send_modify(|g| *g += 1);
    }
}

/// Serves `router` on `listener` until `stop` fires, then lets requests in flight
/// finish and returns.
pub fn spawn(
    listener: TcpListener,
    router: Router,
    tls: Option<Arc<ServerTls>>,
    limits: Limits,
    stop: CancellationToken,
) -> JoinHandle<io::Result<()>> {
    tokio::spawn(serve(listener, router, tls, limits, stop))
}

async fn serve(
    listener: TcpListener,
    router: Router,
    tls: Option<Arc<ServerTls>>,
    limits: Limits,
    stop: CancellationToken,
) -> io::Result<()> {
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let connections = TaskTracker::new();
    loop {
        let permit = tokio::select! {
            p = slots.clone().acquire_owned() => p.map_err(io::Error::other)?,
            _ = stop.cancelled() => break,
        };
        let stream = tokio::select! {
            r = listener.accept() => match r {
                Ok((s, _)) => s,
                Err(e) => {
                    // Out of file descriptors and the like: pause instead of spinning.
                    tracing::warn!("cannot accept a connection: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = stop.cancelled() => break,
        };
        let _ = stream.set_nodelay(true);
        connections.spawn(connection(
            stream,
            router.clone(),
            tls.clone(),
            limits,
            stop.clone(),
            permit,
        ));
    }
    drop(listener);
    connections.close();
    connections.wait().await;
    Ok(())
}

async fn connection(
    stream: TcpStream,
    router: Router,
    tls: Option<Arc<ServerTls>>,
    limits: Limits,
    stop: CancellationToken,
    _permit: OwnedSemaphorePermit,
) {
    let clock = Arc::new(Mutex::new(Clock::new()));
    match tls {
        None => {
            drive(
                Tracked::new(stream, clock.clone()),
                router,
                limits,
                stop,
                None,
                clock,
            )
            .await
        }
        Some(tls) => {
            let mut rotated = tls.generation.subscribe();
            rotated.mark_unchanged();
            let acceptor = tokio_rustls::TlsAcceptor::from(tls.current());
            let accepted =
                tokio::time::timeout(limits.header_read_timeout, acceptor.accept(stream)).await;
            let stream = match accepted {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    tracing::debug!("TLS handshake failed: {e}");
                    return;
                }
                Err(_) => return,
            };
            let io = Tracked::new(stream, clock.clone());
            drive(io, router, limits, stop, Some(rotated), clock).await
        }
    }
}

/// What the watchdog of one connection looks at.
#[derive(Debug)]
struct Clock {
    in_flight: usize,
    /// When the connection last became idle (accepted, or its last response sent).
    idle_since: Instant,
    /// First byte of the next request head, while no request is in flight.
    head_started: Option<Instant>,
}

impl Clock {
    fn new() -> Self {
        Clock {
            in_flight: 0,
            idle_since: Instant::now(),
            head_started: None,
        }
    }

    /// When the connection must be closed, if nothing changes before.
    fn deadline(&self, limits: &Limits) -> Option<Instant> {
        if self.in_flight > 0 {
            return None;
        }
        Some(match self.head_started {
            Some(t) => t + limits.header_read_timeout,
            None => self.idle_since + limits.idle_timeout,
        })
    }
}

async fn drive<IO>(
    io: IO,
    router: Router,
    limits: Limits,
    stop: CancellationToken,
    mut rotated: Option<watch::Receiver<u64>>,
    clock: Arc<Mutex<Clock>>,
) where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = {
        let clock = clock.clone();
        hyper::service::service_fn(move |req: Request<Incoming>| {
            {
                let mut c = clock.lock().unwrap_or_else(|e| e.into_inner());
                c.in_flight += 1;
                c.head_started = None;
            }
            let req = req.map(|b| Body::new(Deadline::new(b, limits.body_read_timeout)));
            let call = tower::ServiceExt::oneshot(router.clone(), req);
            let clock = clock.clone();
            async move {
                let resp = call.await;
                let mut c = clock.lock().unwrap_or_else(|e| e.into_inner());
                c.in_flight = c.in_flight.saturating_sub(1);
                if c.in_flight == 0 {
                    c.idle_since = Instant::now();
                }
                resp
            }
        })
    };
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        // The watchdog below bounds heads from their first byte, so an idle
        // keep-alive connection is governed by the idle timeout alone.
        .header_read_timeout(None)
        .keep_alive(true);
    let conn = builder.serve_connection(TokioIo::new(io), service);
    tokio::pin!(conn);
    let mut closing = false;
    loop {
        let now = Instant::now();
        let deadline = clock
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .deadline(&limits);
        if deadline.is_some_and(|d| d <= now) {
            // A head that did not complete in time, or an idle connection: close.
            return;
        }
        // Re-read the clock at least every 250 ms: a first byte moves the deadline.
        let wake = deadline
            .unwrap_or(now + Duration::from_secs(1))
            .min(now + Duration::from_millis(250));
        let rotation = async {
            match rotated.as_mut() {
                Some(r) => {
                    if r.changed().await.is_err() {
                        std::future::pending::<()>().await
                    }
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            r = conn.as_mut() => {
                if let Err(e) = r {
                    tracing::debug!("connection ended: {e}");
                }
                return;
            }
            _ = tokio::time::sleep_until(wake) => {}
            _ = stop.cancelled(), if !closing => {
                closing = true;
                conn.as_mut().graceful_shutdown();
            }
            _ = rotation, if !closing => {
                closing = true;
                conn.as_mut().graceful_shutdown();
            }
        }
    }
}

/// The connection's byte stream, noting when the first byte of a request head
/// arrives while no request is in flight.
struct Tracked<IO> {
    inner: IO,
    clock: Arc<Mutex<Clock>>,
}

impl<IO> Tracked<IO> {
    fn new(inner: IO, clock: Arc<Mutex<Clock>>) -> Self {
        Tracked { inner, clock }
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for Tracked<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            let mut c = self.clock.lock().unwrap_or_else(|e| e.into_inner());
            if c.in_flight == 0 && c.head_started.is_none() {
                c.head_started = Some(Instant::now());
            }
        }
        r
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Tracked<IO> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// A request body that must be read within a time bound.
struct Deadline {
    inner: Incoming,
    expires: Pin<Box<Sleep>>,
}

impl Deadline {
    fn new(inner: Incoming, limit: Duration) -> Self {
        Deadline {
            inner,
            expires: Box::pin(tokio::time::sleep(limit)),
        }
    }
}

/// The body did not arrive within the body-read time bound.
#[derive(Debug, thiserror::Error)]
#[error("the request body was not received within the body-read time bound")]
pub struct BodyTimeout;

impl HttpBody for Deadline {
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, axum::BoxError>>> {
        if let Poll::Ready(frame) = Pin::new(&mut self.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        if self.expires.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Some(Err(BodyTimeout.into())));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}
