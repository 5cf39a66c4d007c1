//! Serving connections with limits below the request, so a slow or silent client degrades
//! nothing but itself: a deadline for a request's headers (which also closes an idle
//! keep-alive connection waiting for its next request), a deadline between two pieces of a
//! body (see [`crate::router`]), and a most number of open connections (past it, new ones wait
//! in the kernel's backlog while the timeouts reap the idle ones).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// Limits on connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Longest wait for a request's headers, counted from the connection's start or from the
    /// end of its previous response (so it is also the idle keep-alive timeout).
    pub header_timeout: Duration,
    /// Most connections open at once.
    pub max_connections: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            header_timeout: Duration::from_secs(Self::DEFAULT_HEADER_TIMEOUT_SECONDS),
            max_connections: Self::DEFAULT_MAX_CONNECTIONS,
        }
    }
}

impl ConnectionLimits {
    /// The default header (and idle) timeout, in seconds.
    pub const DEFAULT_HEADER_TIMEOUT_SECONDS: u64 = 10;
    /// The default most open connections: well below a typical 1024 file descriptors.
    pub const DEFAULT_MAX_CONNECTIONS: usize = 512;
}

/// Serves `app` on `listener` within `limits` until `shutdown` resolves, then waits for the
/// connections in flight to finish (the caller bounds that wait with its grace period).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    // HTTP/1.1 only (what OpenAI's and Anthropic's clients speak): its header timer runs from
    // the connection's first moment, where protocol sniffing would wait unbounded.
    let mut builder = http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(limits.header_timeout);
    tokio::pin!(shutdown);
    loop {
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => slot.expect("the semaphore is never closed"),
            () = &mut shutdown => break,
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    // Out of descriptors, say: wait a moment rather than spin.
                    tracing::warn!("accept failed: {error}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(app.clone());
        let connection = graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!("connection closed: {error}");
            }
            drop(slot);
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}
