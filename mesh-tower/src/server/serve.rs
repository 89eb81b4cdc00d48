//! [`serve`]: the accept loop.

use std::future::Future;
use std::time::Duration;

use http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tower::Layer;

use super::{Acceptor, PeerIdentityLayer};
use crate::client::BoxError;

/// Serves `service` on `listener` through `acceptor`, forever: each connection is accepted
/// ([`Acceptor::accept`]), then served over HTTP/1.1 or HTTP/2 with the peer's
/// [`PeerIdentity`](mesh_core::identity::PeerIdentity) in each request's extensions.
///
/// `service` is any tower service for `http::Request<hyper::body::Incoming>` (an axum `Router`,
/// a `tower::service_fn`, a `ServiceBuilder` stack), cloned per connection. A refused or failed
/// connection is logged and closed; it never stops the loop. Dropping the future closes every
/// connection; for a graceful stop use [`serve_with_shutdown`].
pub async fn serve<S, B>(listener: TcpListener, acceptor: Acceptor, service: S)
where
    S: tower::Service<Request<Incoming>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    serve_with_shutdown(listener, acceptor, service, std::future::pending()).await
}

/// As [`serve`], until `shutdown` completes: then it stops accepting, lets each connection
/// finish the requests in flight (HTTP/2 peers get a GOAWAY, HTTP/1.1 connections close after
/// their current response), and returns when all are closed.
pub async fn serve_with_shutdown<S, B, F>(
    listener: TcpListener,
    acceptor: Acceptor,
    service: S,
    shutdown: F,
) where
    S: tower::Service<Request<Incoming>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
    F: Future<Output = ()>,
{
    let telemetry = crate::telemetry::Telemetry::global();
    let graceful = GracefulShutdown::new();
    // Owned by the loop: dropping the loop's future aborts every connection.
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let tcp = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((tcp, _)) => tcp,
                Err(e) => {
                    // Out of file descriptors or similar: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let service = service.clone();
        let watcher = graceful.watcher();
        let telemetry = telemetry.clone();
        connections.spawn(async move {
            let (stream, peer) = match acceptor.accept(tcp).await {
                Ok(accepted) => accepted,
                Err(e) if e.is_refused() => {
                    tracing::warn!(error = %e, "connection refused");
                    return;
                }
                Err(e) => {
                    tracing::debug!(error = %e, "connection not accepted");
                    return;
                }
            };
            let remote = stream.tcp().peer_addr().ok();
            let _counted = telemetry
                .as_ref()
                .and_then(|t| t.connection(peer.as_ref().map(|p| &p.0)));
            let service = TowerToHyperService::new(PeerIdentityLayer::new(peer).layer(service));
            let builder = auto::Builder::new(TokioExecutor::new());
            let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
            if let Err(e) = watcher.watch(conn.into_owned()).await {
                tracing::debug!(peer = ?remote, error = %e, "connection ended with an error");
            }
        });
        while connections.try_join_next().is_some() {}
    }
    drop(listener);
    graceful.shutdown().await;
    while connections.join_next().await.is_some() {}
}
