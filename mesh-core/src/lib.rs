//! The protobuf-free model of the mesh, its validation, and the live-state primitive.
//!
//! Everything else in the workspace speaks these types: the control plane builds them from YAML and
//! encodes them as xDS; the xDS client decodes xDS into them; the tower layers read them per request
//! through a [`Snapshot`].
//!
//! | module | Envoy counterpart |
//! |---|---|
//! | [`route`] | `RouteConfiguration`, `VirtualHost`, `Route`, retry/fault/mirror policies |
//! | [`cluster`] | `Cluster` with LB policy, circuit breakers, outlier detection, TLS |
//! | [`endpoint`] | `ClusterLoadAssignment` |
//! | [`listener`] | API `Listener` with an RDS-fed HTTP connection manager |
//! | [`identity`] | the SPIFFE ID in an SVID's URI SAN |
//! | [`inbound`] | a server's `Listener` (gRFC A36): filter chains, downstream TLS, HTTP filters |
//! | [`rbac`] | the RBAC HTTP filter (`envoy.extensions.filters.http.rbac.v3.RBAC`) and its evaluation |
//!
//! This crate does no I/O and knows nothing of protobuf or of YAML.
//!
//! # Example
//! ```no_run
//! use mesh_core::{Snapshot, Validate};
//! use mesh_core::route::{ForwardAction, Route, RouteAction, RouteMatch, RouteTable, VirtualHost};
//!
//! let table = RouteTable {
//!     name: "reviews:9080".into(),
//!     virtual_hosts: vec![VirtualHost {
//!         name: "reviews".into(),
//!         domains: vec!["*".into()],
//!         routes: vec![Route {
//!             name: "default".into(),
//!             matcher: RouteMatch::default(),
//!             action: RouteAction::Forward(ForwardAction::to_cluster("outbound|9080||reviews")),
//!             request_headers: Default::default(),
//!             response_headers: Default::default(),
//!             fault: None,
//!             rate_limit: None,
//!         }],
//!     }],
//! };
//! table.validate().expect("valid");
//! let live = Snapshot::new(table);
//! assert_eq!(live.load().virtual_hosts.len(), 1);
//! ```

pub mod cluster;
pub mod endpoint;
pub mod identity;
pub mod inbound;
pub mod listener;
pub mod matcher;
pub mod rbac;
mod resources;
pub mod route;
mod snapshot;
pub mod time;
mod validate;

pub use matcher::{Regex, StringMatch};
pub use resources::{MeshResources, cluster_name, target_name};
pub use snapshot::{Snapshot, Watcher};
pub use validate::{FieldError, FieldErrors, Percent, Validate};

#[cfg(test)]
mod tests;
