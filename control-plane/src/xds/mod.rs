//! The ADS server: state-of-the-world and delta streams over one gRPC service.

mod cache;
mod delta;
mod sotw;
mod status;
mod workloads;

use std::pin::Pin;

use envoy_types::pb::envoy::service::discovery::v3::aggregated_discovery_service_server::{
    AggregatedDiscoveryService, AggregatedDiscoveryServiceServer,
};
use envoy_types::pb::envoy::service::discovery::v3::{
    DeltaDiscoveryRequest, DeltaDiscoveryResponse, DiscoveryRequest, DiscoveryResponse,
};
use futures::Stream;
use mesh_core::Snapshot;
use mesh_core::identity::PeerIdentity;
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

pub use cache::{Subscription, TYPES, XdsResource, XdsSnapshot, is_full_state_type, short_type};
pub use status::{
    ClientHandle, ClientRegistry, ClientStatus, ResourceStatus, StreamKind, TypeStatus,
};
pub use workloads::{NodeWorkload, NodeWorkloads};

type ResponseStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

/// Responses queued per stream before the sender waits for the client.
const STREAM_BUFFER: usize = 16;

/// The aggregated discovery service, serving one live [`XdsSnapshot`].
#[derive(Debug, Clone)]
pub struct AdsServer {
    snapshot: Snapshot<XdsSnapshot>,
    registry: ClientRegistry,
    shutdown: watch::Receiver<bool>,
}

impl AdsServer {
    /// A server for `snapshot`, recording clients in `registry`. Every stream ends when
    /// `shutdown` turns true.
    pub fn new(
        snapshot: Snapshot<XdsSnapshot>,
        registry: ClientRegistry,
        shutdown: watch::Receiver<bool>,
    ) -> Self {
        Self {
            snapshot,
            registry,
            shutdown,
        }
    }

    /// The tonic service to add to a server.
    pub fn into_service(self) -> AggregatedDiscoveryServiceServer<Self> {
        AggregatedDiscoveryServiceServer::new(self)
            .max_decoding_message_size(16 * 1024 * 1024)
            .max_encoding_message_size(64 * 1024 * 1024)
    }
}

#[tonic::async_trait]
impl AggregatedDiscoveryService for AdsServer {
    type StreamAggregatedResourcesStream = ResponseStream<DiscoveryResponse>;
    type DeltaAggregatedResourcesStream = ResponseStream<DeltaDiscoveryResponse>;

    async fn stream_aggregated_resources(
        &self,
        request: Request<Streaming<DiscoveryRequest>>,
    ) -> Result<Response<Self::StreamAggregatedResourcesStream>, Status> {
        let (tx, rx) = mpsc::channel(STREAM_BUFFER);
        let peer = request
            .extensions()
            .get::<PeerIdentity>()
            .map(|p| p.0.to_string());
        tokio::spawn(sotw::run(
            request.into_inner(),
            tx,
            self.snapshot.clone(),
            self.registry.clone(),
            self.shutdown.clone(),
            peer,
        ));
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn delta_aggregated_resources(
        &self,
        request: Request<Streaming<DeltaDiscoveryRequest>>,
    ) -> Result<Response<Self::DeltaAggregatedResourcesStream>, Status> {
        let (tx, rx) = mpsc::channel(STREAM_BUFFER);
        let peer = request
            .extensions()
            .get::<PeerIdentity>()
            .map(|p| p.0.to_string());
        tokio::spawn(delta::run(
            request.into_inner(),
            tx,
            self.snapshot.clone(),
            self.registry.clone(),
            self.shutdown.clone(),
            peer,
        ));
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}

#[cfg(test)]
mod tests;

/// Resolves once `shutdown` is true (or its sender is gone).
pub(crate) async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}

/// Waits until a first config is published (generation above 0); false when stopped first.
/// Until then nothing is answered: an empty answer would tell a client that connected while a
/// Kubernetes source was still listing that its resources do not exist.
pub(crate) async fn first_config(
    snapshot: &Snapshot<XdsSnapshot>,
    shutdown: &mut watch::Receiver<bool>,
) -> bool {
    let mut changes = snapshot.watch();
    while snapshot.load().generation == 0 {
        tokio::select! {
            _ = stopped(shutdown) => return false,
            _ = changes.changed() => {}
        }
    }
    true
}
