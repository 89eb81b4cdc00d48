//! A test control-plane handler: our ADS server over loopback, serving a model plus resources the
//! test encodes by hand (for example one a client must reject).

use std::net::SocketAddr;

use control_plane::xds::{AdsServer, ClientRegistry, XdsResource, XdsSnapshot};
use envoy_types::pb::google::protobuf::Any;
use mesh_core::{MeshResources, Snapshot};
use tokio_stream::wrappers::TcpListenerStream;

/// Serves `model` with each `(type_url, name, resource)` of `overrides` replacing or adding a
/// resource; returns the address and the registry that records ACKs and NACKs. Runs until the
/// test's runtime ends.
pub async fn serve_with(
    model: &MeshResources,
    overrides: Vec<(&'static str, String, Any)>,
) -> (SocketAddr, ClientRegistry) {
    let (encoded, errors) = mesh_xds_client::codec::encode_all(model);
    assert!(errors.is_empty(), "{errors:?}");
    let mut items: Vec<(&'static str, XdsResource)> = encoded
        .into_iter()
        .filter(|e| {
            !overrides
                .iter()
                .any(|(t, n, _)| *t == e.type_url && *n == e.name)
        })
        .map(|e| {
            (
                e.type_url,
                XdsResource::new(e.name, e.resource, serde_json::Value::Null),
            )
        })
        .collect();
    items.extend(
        overrides
            .into_iter()
            .map(|(t, n, any)| (t, XdsResource::new(n, any, serde_json::Value::Null))),
    );
    let snapshot = Snapshot::new(XdsSnapshot::new(1, items));
    let registry = ClientRegistry::default();
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let svc = AdsServer::new(snapshot, registry.clone(), shutdown).into_service();
    tokio::spawn(async move {
        let _keep = stop;
        let _ = tonic::transport::Server::builder()
            .add_service(svc)
            .serve_with_incoming(TcpListenerStream::new(listener))
            .await;
    });
    (addr, registry)
}
