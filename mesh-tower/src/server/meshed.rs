//! [`serve_meshed`]: one call to serve an app as the control plane says.

use bytes::Bytes;
use http::{Request, Response};
use hyper::body::Incoming;
use mesh_core::identity::Svid;
use mesh_core::rbac::Rbac;
use mesh_core::{MeshResources, Snapshot};
use mesh_xds_client::XdsClient;
use tokio::net::TcpListener;
use tower::Layer;

use std::sync::Arc;

use mesh_core::inbound::FilterChain;

use super::{Acceptor, LocalPolicy, LocalPolicyLayer, serve_with_shutdown};
use crate::authz::AuthzLayer;
use crate::client::BoxError;
use crate::ratelimit::TokenBucket;
use crate::telemetry::TelemetryLayer;

/// Serves `service` on `listener` with the workload's certificate from `identity`, as the
/// inbound listener the control plane sends for the listener's address says (gRFC A36: named by
/// the bootstrap's `server_listener_resource_name_template`, Istio's
/// `xds.istio.io/grpc/lds/inbound/<ip>:<port>` by default):
///
/// - its PeerAuthentication mode (the filter chain for the port: STRICT, PERMISSIVE, DISABLE)
///   applies to each new connection;
/// - its RBAC filters (AuthorizationPolicy) apply to each request — 403, or `grpc-status: 7`
///   for gRPC — through [`AuthzLayer`];
/// - its fault and local rate limit filters apply next, through [`LocalPolicyLayer`] (the
///   client stack's fault decisions and token bucket).
///
/// Metrics, spans and access-log lines are recorded with the process default [`Telemetry`](crate::telemetry::Telemetry)
/// (`reporter="destination"`), if one was installed before the call ([`TelemetryLayer`]).
///
/// Both follow config changes live. As A36 asks, nothing is accepted until the listener has
/// arrived; if it is later removed, the last authorization policy and the acceptor's STRICT mode
/// stay in force (never wider).
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
    S::Error: Into<BoxError> + Send + 'static,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
    F: std::future::Future<Output = ()>,
{
    let addr = match listener.local_addr() {
        Ok(addr) => addr,
        Err(e) => {
            tracing::error!(error = %e, "serve_meshed: the listener has no local address");
            return;
        }
    };
    let name = xds.inbound_listener_name(addr);
    // Held for as long as the server runs: the subscription keeps the listener coming.
    let _subscription = xds.subscribe(&name);
    let resources = xds.state().resources().clone();
    let mut watch = resources.watch();
    tokio::pin!(shutdown);
    loop {
        if resources.load().inbound.contains_key(&name) {
            break;
        }
        tracing::info!(listener = %name, "waiting for the inbound listener before serving");
        tokio::select! {
            _ = watch.changed() => {}
            _ = &mut shutdown => return,
        }
    }
    let filters = Snapshot::new(rbac_of(&resources.load(), &name, addr.port()).unwrap_or_default());
    let local = Snapshot::new(
        local_of(
            &resources.load(),
            &name,
            addr.port(),
            &LocalPolicy::default(),
        )
        .unwrap_or_default(),
    );
    let sync = tokio::spawn(follow(
        resources.clone(),
        filters.clone(),
        local.clone(),
        name.clone(),
        addr.port(),
    ));
    tracing::info!(listener = %name, "serving, following the inbound listener");
    let acceptor = Acceptor::new(identity).inbound(resources, name);
    // The chain's HTTP filters in Envoy's order: authorization, then fault and rate limit;
    // telemetry outside them all, so their answers are observed too.
    let app = TelemetryLayer::global().layer(
        AuthzLayer::new(filters)
            .with_local_port(addr.port())
            .layer(LocalPolicyLayer::new(local).layer(service)),
    );
    serve_with_shutdown(listener, acceptor, app, shutdown).await;
    sync.abort();
}

/// The listener's chain for `port` (the TLS chain, else the plaintext one; the control plane
/// gives every chain of a workload the same filters); `None` while the listener is absent.
fn chain_of<'a>(r: &'a MeshResources, name: &str, port: u16) -> Option<&'a FilterChain> {
    let l = r.inbound.get(name)?;
    l.chain_for(port, true).or_else(|| l.chain_for(port, false))
}

/// The RBAC filters of the chain.
fn rbac_of(r: &MeshResources, name: &str, port: u16) -> Option<Vec<Rbac>> {
    Some(chain_of(r, name, port)?.rbac())
}

/// The chain's fault and rate limit; a bucket whose config did not change keeps its tokens.
fn local_of(
    r: &MeshResources,
    name: &str,
    port: u16,
    previous: &LocalPolicy,
) -> Option<LocalPolicy> {
    let chain = chain_of(r, name, port)?;
    let bucket = chain.rate_limit().map(|rl| match &previous.bucket {
        Some(b) if b.config() == rl => b.clone(),
        _ => Arc::new(TokenBucket::new(rl.clone())),
    });
    Some(LocalPolicy {
        fault: chain.fault().cloned(),
        bucket,
    })
}

async fn follow(
    resources: Snapshot<MeshResources>,
    filters: Snapshot<Vec<Rbac>>,
    local: Snapshot<LocalPolicy>,
    name: String,
    port: u16,
) {
    let mut watch = resources.watch();
    loop {
        let r = watch.changed().await;
        if let Some(next) = rbac_of(&r, &name, port)
            && *filters.load_full() != next
        {
            tracing::info!(listener = %name, filters = next.len(), "authorization policy changed");
            filters.store(next);
        }
        if let Some(next) = local_of(&r, &name, port, &local.load_full()) {
            local.store(next);
        }
    }
}
