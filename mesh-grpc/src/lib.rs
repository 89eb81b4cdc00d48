//! tonic glue for the mesh.
//!
//! - [`Channel`] / [`channel`]: a channel for `xds:///<host>:<port>` targets that every
//!   tonic-generated client accepts; each call goes through the mesh client stack — routing on
//!   `/package.Service/Method` and headers, weighted clusters, balancing, mTLS — with gRPC's
//!   semantics: retries classified by `grpc-status` (gRFC A44; calls whose request is ready when
//!   they start are buffered up to [`DEFAULT_RETRY_BUFFER`], a streaming request is never
//!   retried once it started), the call's `grpc-timeout` as its deadline (A31), fault aborts
//!   with a gRPC status (A33), and local answers of the mesh (breaker overflow, no healthy
//!   endpoint) as UNAVAILABLE with a message that says why ([`to_status`]).
//! - [`timeout`] and [`status`]: the `grpc-timeout` format and A44's retry classification.
//!
//! - [`server::serve`]: tonic services served meshed (mTLS, peer identity, authorization as
//!   PERMISSION_DENIED, inbound faults and rate limits, from the workload's inbound listener).
//!
//!   [`server::incoming`] and [`server::MeshServerLayer`] do the same for tonic's own
//!   `Server::builder()`.
//!
//! - [`health::Serving`]: the workload's serving status for `grpc.health.v1` checks (tonic-health)
//!   and, through [`health::ServingLayer`], for callers: NOT_SERVING answers calls UNAVAILABLE,
//!   which their outlier detection ejects.
//!
//! Metrics, spans and access logs come from `mesh_tower::telemetry` on both sides: the channel
//! runs on the client stack (`reporter="source"`), and [`server::serve`] and
//! [`server::MeshServerLayer`] add the server stack (`reporter="destination"`), with
//! `grpc_response_status` from trailers.
//!
//! What this crate does not do: resolve `dns:///` or other non-xDS targets, retry a streamed
//! request once it has started, or speak gRPC without tonic.
//!
//! # Example
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use mesh_xds_client::XdsClient;
//! use tonic_health::pb::health_client::HealthClient;
//! use tonic_health::pb::HealthCheckRequest;
//!
//! // GRPC_XDS_BOOTSTRAP (or MESH_XDS_BOOTSTRAP) names the bootstrap file, as for grpcio.
//! let xds = XdsClient::from_env()?;
//! let identity = mesh_core::Snapshot::new(None); // or mesh_xds_client::identity's live SVID
//!
//! // A client: any tonic-generated client takes the channel (here grpc.health.v1).
//! let channel = mesh_grpc::Channel::builder(&xds)
//!     .identity(identity.clone())
//!     .connect("xds:///reviews.default.svc.cluster.local:9080")?;
//! let mut health = HealthClient::new(channel);
//! let reply = health.check(HealthCheckRequest { service: String::new() }).await?;
//! println!("{:?}", reply.into_inner().status);
//!
//! // A server: tonic services served as the workload's inbound listener from xDS says.
//! let (_reporter, health_service) = tonic_health::server::health_reporter();
//! let routes = tonic::service::Routes::new(health_service);
//! let listener = tokio::net::TcpListener::bind("10.0.0.7:50051").await?;
//! let shutdown = async {
//!     let _ = tokio::signal::ctrl_c().await;
//! };
//! mesh_grpc::server::serve(listener, &xds, identity, routes, shutdown).await;
//!
//! // The grpc-timeout format, shared with the client stack.
//! let header = mesh_grpc::timeout::format(std::time::Duration::from_millis(300));
//! assert_eq!(mesh_grpc::timeout::parse(&header), Some(std::time::Duration::from_millis(300)));
//! # Ok(()) }
//! ```

mod body;
mod channel;
mod error;
pub mod health;
pub mod server;
pub mod status;
pub mod timeout;

pub use channel::{Channel, ChannelBuilder, ChannelError, DEFAULT_RETRY_BUFFER, channel};
pub use error::{MeshError, to_status};
