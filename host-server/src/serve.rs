//! The accept loop: HTTP/1.1 connections served by hyper with the timeouts an
//! exposed service needs, and a graceful shutdown.
//!
//! `axum::serve` sets no header-read timeout, so a client that sends half a
//! request head and then nothing holds its socket forever (1,500 of them were
//! all still open after 35 s). hyper's own `header_read_timeout` closes such a
//! connection, and an idle keep-alive one too (hyper waits for the next head
//! under the same timeout). A request that takes too long once its head is in
//! gets `503` from [`request_timeout`].

use std::convert::Infallible;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tower::ServiceExt;

use crate::routes::ApiError;

/// Connection settings.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// A connection that has not sent a complete request head within this is closed.
    pub header: Duration,
    /// A request still running after this gets `503`.
    pub request: Duration,
    /// After a shutdown signal, how long requests in flight may take to finish.
    pub shutdown_grace: Duration,
}

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
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(timeouts.header).keep_alive(true);
    let graceful = GracefulShutdown::new();
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
        let app = app.clone();
        let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            let app = app.clone();
            async move { Ok::<_, Infallible>(app.oneshot(request.map(Body::new)).await.into_response()) }
        });
        let connection = http.serve_connection(TokioIo::new(stream), service);
        let watched = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(error) = watched.await {
                tracing::debug!(%peer, %error, "connection closed with an error");
            }
        });
    }
    drop(listener);
    let grace = timeouts.shutdown_grace;
    tracing::info!(in_flight = graceful.count(), "shutting down: no new connections; waiting up to {grace:?}");
    if tokio::time::timeout(grace, graceful.shutdown()).await.is_err() {
        tracing::warn!("requests still running after {grace:?}; exiting anyway");
    }
    Ok(())
}
