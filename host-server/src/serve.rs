//! The accept loop: HTTP/1.1 connections served by hyper with the timeouts an
//! exposed service needs, and a graceful shutdown.
//!
//! `axum::serve` sets no header-read timeout, so a client that sends half a
//! request head and then nothing holds its socket forever (1,500 of them were
//! all still open after 35 s). hyper's own `header_read_timeout` closes such a
//! connection, and an idle keep-alive one too (hyper waits for the next head
//! under the same timeout). A request that takes too long once its head is in
//! gets `503` from [`request_timeout`].
//!
//! The shutdown loses no request that reached the host: the connections the kernel has
//! queued are accepted and served before the listener closes (closing would reset them),
//! and a connection whose request is on its way is served rather than closed unread, as
//! hyper's own graceful shutdown would. Clients that connect later are refused, which is
//! safe to retry on another host.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::HttpService;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};
use tower::ServiceExt;

use crate::config::Timeouts;
use crate::routes::ApiError;

/// Adds the request timeout to `app`.
pub fn with_request_timeout(app: Router, timeouts: Timeouts) -> Router {
    app.layer(axum::middleware::from_fn_with_state(timeouts.request, request_timeout))
}

/// Answers `503 {"detail"}` for a request that runs past `limit` (its handler is dropped).
async fn request_timeout(State(limit): State<Duration>, request: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::TimedOut.into_response(),
    }
}

/// Serves `app` on `listener` until `shutdown` completes, then lets requests in
/// flight finish (within a grace period) and returns.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    timeouts: Timeouts,
    shutdown: impl std::future::Future<Output = ()>,
) -> std::io::Result<()> {
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(timeouts.header).keep_alive(true);
    // Every connection holds a receiver: `send(true)` asks them to finish, and the sender's
    // `closed()` says they all have.
    let (stop, stopping) = watch::channel(false);
    let serve_connection = |stream: TcpStream, peer: SocketAddr| {
        let app = app.clone();
        let requested = Arc::new(Notify::new());
        let service = hyper::service::service_fn({
            let requested = Arc::clone(&requested);
            move |mut request: hyper::Request<Incoming>| {
                requested.notify_one();
                request.extensions_mut().insert(ConnectInfo(peer));
                let app = app.clone();
                async move { Ok::<_, Infallible>(app.oneshot(request.map(Body::new)).await.into_response()) }
            }
        });
        let connection = http.serve_connection(TokioIo::new(stream), service);
        tokio::spawn(run_connection(connection, requested, stopping.clone(), peer));
    };
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors, say: wait a moment rather than spin.
                    tracing::warn!(%error, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        serve_connection(stream, peer);
    }
    // Closing a listener resets the connections the kernel has completed but we have not
    // accepted, and their clients may already have sent a request. So first stop new
    // handshakes, let those under way complete, accept everything queued, and only then
    // close: a client that connects from now on is refused, which it can safely retry.
    let waiting = drain_backlog(listener).await?;
    let queued = waiting.len();
    for (stream, peer) in waiting {
        serve_connection(stream, peer);
    }
    drop(stopping);
    let grace = timeouts.shutdown_grace;
    tracing::info!(
        in_flight = stop.receiver_count(),
        queued,
        "shutting down: no new connections; waiting up to {grace:?}"
    );
    let _ = stop.send(true);
    if tokio::time::timeout(grace, stop.closed()).await.is_err() {
        tracing::warn!("requests still running after {grace:?}; exiting anyway");
    }
    Ok(())
}

/// How long, once shutting down, a connection that has not sent a request yet gets to send
/// one: its client may have sent it already, unread. (hyper's own graceful shutdown closes
/// such a connection at once, and its client sees the connection closed under its request.)
const FIRST_REQUEST_WAIT: Duration = Duration::from_secs(1);

/// Serves one connection until it ends or, after `stop`, until the request it is serving (or
/// its first one, if it arrives within [`FIRST_REQUEST_WAIT`]) is answered.
async fn run_connection<S>(
    connection: http1::Connection<TokioIo<TcpStream>, S>,
    requested: Arc<Notify>,
    mut stop: watch::Receiver<bool>,
    peer: SocketAddr,
) where
    S: HttpService<Incoming, ResBody = Body>,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let report = |result: hyper::Result<()>| {
        if let Err(error) = result {
            tracing::debug!(%peer, %error, "connection closed with an error");
        }
    };
    tokio::pin!(connection);
    tokio::select! {
        result = connection.as_mut() => return report(result),
        _ = stop.wait_for(|stopping| *stopping) => {}
    }
    // `requested` holds a permit once any request has arrived, so this waits only for a first one.
    tokio::select! {
        result = connection.as_mut() => return report(result),
        _ = tokio::time::timeout(FIRST_REQUEST_WAIT, requested.notified()) => {}
    }
    connection.as_mut().graceful_shutdown();
    report(connection.await);
}

/// How long handshakes already answered get to complete once new ones are ignored: a
/// round trip between the host and its clients (or its load balancer) with a wide margin.
const HANDSHAKE_SETTLE: Duration = Duration::from_millis(50);

/// Stops `listener` taking new connections, accepts every connection queued on it, then
/// closes it. Non-blocking `accept` calls straight on the socket: the reactor's cached
/// readiness could say "nothing waiting" when something is.
async fn drain_backlog(listener: TcpListener) -> std::io::Result<Vec<(TcpStream, SocketAddr)>> {
    let listener = listener.into_std()?;
    listener.set_nonblocking(true)?;
    if crate::platform::ignore_new_connections(&listener) {
        tokio::time::sleep(HANDSHAKE_SETTLE).await;
    }
    let mut drained = Vec::new();
    loop {
        match listener.accept() {
            Ok((stream, peer)) => {
                stream.set_nonblocking(true)?;
                drained.push((TcpStream::from_std(stream)?, peer));
            }
            Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => return Ok(drained),
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(error) => {
                tracing::warn!(%error, "cannot accept a waiting connection");
                return Ok(drained);
            }
        }
    }
}
