//! [`serve_meshed`]: one call to serve an app as the control plane says.

use http::{Request, Response};
use hyper::body::Incoming;
use mesh_core::Snapshot;
use mesh_core::identity::Svid;
use mesh_xds_client::XdsClient;
use tokio::net::TcpListener;

use super::{Acceptor, serve_with_shutdown};
use crate::client::BoxError;

/// Serves `service` on `listener` with the workload's certificate from `identity`, following
/// the inbound listener the control plane sends for the listener's address (gRFC A36: named by
/// the bootstrap's `server_listener_resource_name_template`, Istio's
/// `xds.istio.io/grpc/lds/inbound/<ip>:<port>` by default): its PeerAuthentication mode applies
/// to each new connection, live. Until the listener arrives the server is STRICT.
///
/// Bind the address the control plane knows the workload by (its `WorkloadEntry` or
/// `ServiceEntry` endpoint address), not a wildcard: the name is derived from it. Runs until
/// `shutdown` completes, then drains as [`serve_with_shutdown`] does.
pub async fn serve_meshed<S, B, F>(
    listener: TcpListener,
    xds: &XdsClient,
    identity: Snapshot<Option<Svid>>,
    service: S,
    shutdown: F,
) where
    S: tower::Service<Request<Incoming>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
    F: std::future::Future<Output = ()>,
{
    let name = match listener.local_addr() {
        Ok(addr) => xds.inbound_listener_name(addr),
        Err(e) => {
            tracing::error!(error = %e, "serve_meshed: the listener has no local address");
            return;
        }
    };
    // Held for as long as the server runs: the subscription keeps the listener coming.
    let _subscription = xds.subscribe(&name);
    tracing::info!(listener = %name, "serving, following the inbound listener");
    let acceptor = Acceptor::new(identity).inbound(xds.state().resources().clone(), name);
    serve_with_shutdown(listener, acceptor, service, shutdown).await;
}
