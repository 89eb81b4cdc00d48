//! The xDS side of the mesh: the ADS client, the bootstrap file, and the codec between Envoy xDS
//! v3 protos and the mesh-core model.
//!
//! # What is here
//! - [`codec`]: mesh-core resources ⇄ standard Envoy xDS v3 messages (`Listener`,
//!   `RouteConfiguration`, `Cluster`, `ClusterLoadAssignment`) from the [`envoy_types`] crate. The
//!   control plane encodes with it; the client decodes and validates with it
//!   ([`codec::decode_cluster`] and friends), with a [`codec::Warning`] for each field present but
//!   not implemented and a [`codec::DecodeError`] (to NACK) for what must fail closed.
//! - [`client`], the ADS client an application embeds: [`XdsClient`] reads the gRPC bootstrap
//!   file ([`Bootstrap`]), speaks delta (default) or state-of-the-world ADS, subscribes on demand
//!   from a target (`host:port`) down through its route table, clusters and endpoints, validates
//!   every resource into mesh-core, NACKs precisely (naming the resource and field) while applying
//!   the good resources of the same response, ACKs only after publishing, reconnects with backoff
//!   while serving the last good state, and exposes it all as a [`MeshState`].
//! - [`tls`]: SPIFFE mutual TLS on rustls (ring): client and server configs that present the
//!   workload's live SVID and verify peers against its live trust bundle, [`tls::peer_identity`]
//!   and [`tls::check_san`].
//! - [`identity`]: the workload's SVID from the control plane's CA, in-process, rotated at half
//!   its lifetime. Upstream mTLS travels in clusters as gRFC A29 describes (a TLS
//!   `transport_socket` naming certificate-provider instances and `match_subject_alt_names`).
//!
//! # What is not here (yet)
//! Federation (A47 authorities), several control planes (only the bootstrap's first server is
//! used), and `tls` channel credentials with system roots (parsed, but connecting fails). The
//! stream to the control plane becomes mutual TLS once [`Options::identity`] holds a
//! certificate.
//!
//! # Example
//! An application follows one target and reads the live state:
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use mesh_xds_client::XdsClient;
//!
//! // MESH_XDS_BOOTSTRAP or GRPC_XDS_BOOTSTRAP names the bootstrap file.
//! let xds = XdsClient::from_env()?;
//! let _target = xds.subscribe("reviews.default.svc.cluster.local:9080"); // keep it alive
//! xds.ready("reviews.default.svc.cluster.local:9080", Duration::from_secs(5)).await?;
//! let state = xds.state();
//! println!("{} clusters", state.load().clusters.len()); // lock-free, once per request
//! println!("{}", state.dump()); // CSDS-style: versions, ACK/NACK, errors
//! # Ok(()) }
//! ```
//!
//! The control plane encodes with the codec:
//! ```no_run
//! use mesh_core::MeshResources;
//! use mesh_core::cluster::Cluster;
//! use mesh_core::listener::Listener;
//! use mesh_xds_client::codec::{self, CLUSTER_TYPE};
//!
//! let mut resources = MeshResources::default();
//! let target = mesh_core::target_name("reviews.default.svc.cluster.local", 9080);
//! resources.listeners.insert(target.clone(), Listener::api(target).into());
//! let cluster = mesh_core::cluster_name("reviews.default.svc.cluster.local", 9080, None);
//! resources.clusters.insert(cluster.clone(), Cluster::new(cluster).into());
//!
//! let (encoded, errors) = codec::encode_all(&resources);
//! assert!(errors.is_empty(), "{errors:?}");
//! for r in &encoded {
//!     println!("{} {} ({} bytes)", r.type_url, r.name, r.resource.value.len());
//! }
//! assert!(encoded.iter().any(|r| r.type_url == CLUSTER_TYPE));
//! ```

pub mod bootstrap;
/// Istio's certificate service, `istio.v1.auth.IstioCertificateService` (generated from
/// `proto/ca.proto`): the control plane serves it, the library calls it for its SVID.
#[allow(missing_docs, unreachable_pub, clippy::all, clippy::pedantic)]
pub mod ca_proto {
    tonic::include_proto!("istio.v1.auth");
}
pub mod client;
pub mod codec;
pub mod identity;
pub mod tls;

pub use bootstrap::Bootstrap;
pub use client::{MeshState, Options, Protocol, Target, TargetError, XdsClient};
