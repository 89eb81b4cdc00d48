//! The xDS side of the mesh: the codec between Envoy xDS v3 protos and the mesh-core model.
//!
//! # What is here
//! - [`codec`], the encode half: mesh-core resources → standard Envoy xDS v3 messages
//!   (`Listener`, `RouteConfiguration`, `Cluster`, `ClusterLoadAssignment`) from the
//!   [`envoy_types`] crate, packed as `Any` with their type URLs. The control plane uses it to fill
//!   its snapshot cache. The output has the standard meaning, so a stock Envoy and a stock
//!   proxyless gRPC client read the same intent from it.
//! - [`codec`], the decode half: a received `Any` → a validated mesh-core value
//!   ([`codec::decode_listener`], [`codec::decode_route_table`], [`codec::decode_cluster`],
//!   [`codec::decode_assignment`]), with a [`codec::Warning`] for every field that is set but not
//!   supported and harmless to ignore, and a [`codec::DecodeError`] (to NACK) for every field
//!   that would change routing or security if ignored.
//!
//! # What is not here (yet)
//! The ADS client (state-of-the-world and delta), subscriptions, ACK/NACK, the bootstrap file,
//! and upstream TLS in clusters (encoding a cluster with TLS returns
//! [`codec::EncodeError::Unsupported`] rather than sending plaintext, and decoding a cluster with a
//! `transport_socket` is a [`codec::DecodeError`] rather than a plaintext connection).
//!
//! # Example
//! ```no_run
//! use mesh_core::MeshResources;
//! use mesh_core::cluster::Cluster;
//! use mesh_core::listener::Listener;
//! use mesh_xds_client::codec::{self, CLUSTER_TYPE};
//!
//! let mut resources = MeshResources::default();
//! let target = mesh_core::target_name("reviews.default.svc.cluster.local", 9080);
//! resources.listeners.insert(target.clone(), Listener::api(target));
//! let cluster = mesh_core::cluster_name("reviews.default.svc.cluster.local", 9080, None);
//! resources.clusters.insert(cluster.clone(), Cluster::new(cluster));
//!
//! let (encoded, errors) = codec::encode_all(&resources);
//! assert!(errors.is_empty(), "{errors:?}");
//! for r in &encoded {
//!     println!("{} {} ({} bytes)", r.type_url, r.name, r.resource.value.len());
//! }
//! assert!(encoded.iter().any(|r| r.type_url == CLUSTER_TYPE));
//! ```

pub mod bootstrap;
pub mod codec;
