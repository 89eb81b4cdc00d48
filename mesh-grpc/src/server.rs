//! Serving tonic services meshed.

use mesh_core::Snapshot;
use mesh_core::identity::Svid;
use mesh_xds_client::XdsClient;
use tokio::net::TcpListener;

/// Serves `routes` (tonic services: `Routes::new(svc).add_service(other)`) on `listener` as the
/// workload's inbound listener from xDS says: mTLS per PeerAuthentication with the certificate
/// in `identity`, the caller's [`PeerIdentity`](mesh_core::identity::PeerIdentity) in each
/// request's extensions (tonic copies them into `tonic::Request::extensions()`),
/// AuthorizationPolicy refusals as PERMISSION_DENIED, inbound faults and rate limits — all of
/// `mesh_tower::server::serve_meshed`, which this is for tonic. Runs until `shutdown`.
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
