//! Serving tonic services meshed: one call ([`serve`]), or tonic's own
//! `Server::builder()` with [`incoming`] (mTLS connections from the mesh's acceptor) and
//! [`MeshServerLayer`] (the peer identity into each request, then authorization).
//!
//! ```no_run
//! # async fn demo(identity: mesh_core::Snapshot<Option<mesh_core::identity::Svid>>,
//! #               routes: tonic::service::Routes) -> Result<(), Box<dyn std::error::Error>> {
//! use mesh_core::Snapshot;
//! use mesh_tower::server::Acceptor;
//!
//! let listener = tokio::net::TcpListener::bind("10.0.0.7:50051").await?;
//! let policies = Snapshot::new(Vec::new()); // RBAC filters, e.g. from the inbound listener
//! tonic::transport::Server::builder()
//!     .layer(mesh_grpc::server::MeshServerLayer::new(policies))
//!     .add_routes(routes)
//!     .serve_with_incoming(mesh_grpc::server::incoming(listener, Acceptor::new(identity)))
//!     .await?;
//! # Ok(()) }
//! ```

use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use mesh_core::Snapshot;
use mesh_core::identity::{PeerIdentity, Svid};
use mesh_core::rbac::Rbac;
use mesh_tower::authz::AuthzLayer;
use mesh_tower::server::{Acceptor, ServerStream};
use mesh_tower::telemetry::{ConnectionGuard, Telemetry, TelemetryLayer, TelemetryService};
use mesh_xds_client::XdsClient;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio_stream::wrappers::ReceiverStream;

/// Serves `routes` (tonic services: `Routes::new(svc).add_service(other)`) on `listener` as the
/// workload's inbound listener from xDS says: mTLS per PeerAuthentication with the certificate
/// in `identity`, the caller's [`PeerIdentity`] in each request's extensions (tonic copies them
/// into `tonic::Request::extensions()`), AuthorizationPolicy refusals as PERMISSION_DENIED,
/// inbound faults and rate limits — all of `mesh_tower::server::serve_meshed`, which this is for
/// tonic. Runs until `shutdown`.
pub async fn serve<F>(
    listener: TcpListener,
    xds: &XdsClient,
    identity: Snapshot<Option<Svid>>,
    routes: tonic::service::Routes,
    shutdown: F,
) where
    F: std::future::Future<Output = ()>,
{
    mesh_tower::server::serve_meshed(listener, xds, identity, routes, shutdown).await;
}

/// What a handler learns about its connection (tonic puts it in the request's extensions).
#[derive(Debug, Clone)]
pub struct MeshConnectInfo {
    /// The verified identity of an mTLS peer.
    pub peer: Option<PeerIdentity>,
    /// The peer's address.
    pub remote: Option<SocketAddr>,
}

/// A connection accepted by the mesh's [`Acceptor`] (mTLS, or plaintext in PERMISSIVE mode).
#[derive(Debug)]
pub struct MeshConn {
    stream: ServerStream,
    info: MeshConnectInfo,
    /// Counts the connection in Istio's TCP metrics while it lives.
    _counted: Option<ConnectionGuard>,
}

impl tonic::transport::server::Connected for MeshConn {
    type ConnectInfo = MeshConnectInfo;

    fn connect_info(&self) -> MeshConnectInfo {
        self.info.clone()
    }
}

impl AsyncRead for MeshConn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for MeshConn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

/// The connections `acceptor` accepts on `listener`, for
/// `tonic::transport::Server::serve_with_incoming`. Each handshake runs on its own task (a slow
/// or refused peer never holds up the others); refusals are logged, never returned, so the
/// server keeps serving. Ends when the server drops the stream.
pub fn incoming(
    listener: TcpListener,
    acceptor: Acceptor,
) -> ReceiverStream<std::io::Result<MeshConn>> {
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    let telemetry = Telemetry::global();
    tokio::spawn(async move {
        loop {
            let tcp = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((tcp, _)) => tcp,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                        continue;
                    }
                },
                _ = tx.closed() => return,
            };
            let _ = tcp.set_nodelay(true);
            let (tx, acceptor, telemetry) = (tx.clone(), acceptor.clone(), telemetry.clone());
            tokio::spawn(async move {
                let remote = tcp.peer_addr().ok();
                match acceptor.accept(tcp).await {
                    Ok((stream, peer)) => {
                        let _counted = telemetry
                            .as_ref()
                            .and_then(|t| t.connection(peer.as_ref().map(|p| &p.0)));
                        let info = MeshConnectInfo { peer, remote };
                        let conn = MeshConn {
                            stream,
                            info,
                            _counted,
                        };
                        let _ = tx.send(Ok(conn)).await;
                    }
                    Err(e) if e.is_refused() => tracing::warn!(error = %e, "connection refused"),
                    Err(e) => tracing::debug!(error = %e, "connection not accepted"),
                }
            });
        }
    });
    ReceiverStream::new(rx)
}

type CopyPeer = fn(http::Request<tonic::body::Body>) -> http::Request<tonic::body::Body>;

/// The layer for `tonic::transport::Server::builder().layer(…)` with [`incoming`]: copies the
/// connection's verified peer into each request as [`PeerIdentity`] (where handlers and
/// authorization look), records Istio's metrics with `grpc_response_status`, a server span and
/// an access-log line ([`TelemetryLayer`], the process default telemetry when the layer is
/// made), then applies the RBAC filters in the snapshot you give it (refusals are
/// PERMISSION_DENIED). It does not follow an inbound listener by itself: store the listener's
/// filters in that snapshot (or use [`serve`], which follows it).
#[derive(Debug, Clone)]
pub struct MeshServerLayer {
    authz: AuthzLayer,
    telemetry: TelemetryLayer,
}

impl MeshServerLayer {
    /// The layer for the RBAC filters in `policies` (empty: everything allowed).
    pub fn new(policies: Snapshot<Vec<Rbac>>) -> MeshServerLayer {
        MeshServerLayer {
            authz: AuthzLayer::new(policies),
            telemetry: TelemetryLayer::global(),
        }
    }

    /// Records with `telemetry` instead of the process default.
    pub fn telemetry(mut self, telemetry: Telemetry) -> MeshServerLayer {
        self.telemetry = TelemetryLayer::new(telemetry);
        self
    }
}

impl<S> tower::Layer<S> for MeshServerLayer {
    type Service = tower::util::MapRequest<TelemetryService<mesh_tower::authz::Authz<S>>, CopyPeer>;

    fn layer(&self, inner: S) -> Self::Service {
        tower::util::MapRequest::new(
            self.telemetry.layer(self.authz.layer(inner)),
            copy_peer as CopyPeer,
        )
    }
}

fn copy_peer(mut req: http::Request<tonic::body::Body>) -> http::Request<tonic::body::Body> {
    let peer = req
        .extensions()
        .get::<MeshConnectInfo>()
        .and_then(|c| c.peer.clone());
    if let Some(p) = peer {
        req.extensions_mut().insert(p);
    }
    req
}
