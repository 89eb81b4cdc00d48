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
//! Not yet: gRPC metrics and tracing (the observability issue).
//!
//! # Example
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! // GRPC_XDS_BOOTSTRAP names the bootstrap file, as for grpcio and grpc-go.
//! let channel = mesh_grpc::channel("xds:///reviews.default.svc.cluster.local:9080")?;
//! // let mut client = ReviewsClient::new(channel);   // any tonic-generated client
//! # let _ = channel;
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
