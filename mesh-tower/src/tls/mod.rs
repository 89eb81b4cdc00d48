//! Client-side mutual TLS for clusters whose `Cluster.tls` is set: a hyper-util connector that
//! connects over TCP, handshakes with the workload's live SVID (see
//! [`mesh_xds_client::tls`]), and checks the server's SPIFFE ID against the cluster's SAN
//! matchers before hyper sees the connection.
//!
//! [`crate::Client`] builds one connector per TLS cluster, so each such cluster has its own
//! connection pools (as Envoy does); plaintext clusters share the client's plaintext pools. The
//! server side is in [`crate::server`].

mod connector;
mod stream;

pub use connector::{DEFAULT_SNI, TlsConnector};
pub use stream::TlsStream;
